package goxl

import "sync/atomic"

// Stats counts what went wrong at the crossing. It is process-wide.
type Stats struct {
	// Panics recovered in exported callbacks.
	Panics uint64
	// Calls whose token or registration ID found nothing.
	UnknownTokens uint64
}

var stats struct{ panics, unknown atomic.Uint64 }

// ReadStats returns the crossing's counters.
func ReadStats() Stats {
	return Stats{Panics: stats.panics.Load(), UnknownTokens: stats.unknown.Load()}
}
