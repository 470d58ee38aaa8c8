//go:build !cgo

package libxl

import (
	"unsafe"

	"github.com/goxl/goxl/internal/osevent"
)

// Ctx is unusable without cgo: every entry point returns ErrNotSupported.
type Ctx struct{}

// New returns ErrNotSupported: this build has no cgo, so no libxl.
func New(Options) (*Ctx, error) { return nil, ErrNotSupported }

// Version returns the zero VersionInfo.
func (c *Ctx) Version() VersionInfo { return VersionInfo{} }

// SetLogLevel does nothing.
func (c *Ctx) SetLogLevel(LogLevel) {}

// Raw returns nil.
func (c *Ctx) Raw() unsafe.Pointer { return nil }

// Close returns ErrNotSupported.
func (c *Ctx) Close() error { return ErrNotSupported }

// OccurredFD does nothing.
func (c *Ctx) OccurredFD(osevent.ForLibxl, int, osevent.PollEvents, osevent.PollEvents, osevent.Liveness) {
}

// OccurredTimeout does nothing.
func (c *Ctx) OccurredTimeout(osevent.ForLibxl, osevent.Liveness) {}
