//go:build !cgo

package libxl

import (
	"context"
	"unsafe"

	"github.com/goxl/goxl/internal/osevent"
)

// Ctx is unusable without cgo: every entry point returns ErrNotSupported.
type Ctx struct{}

// New returns ErrNotSupported: this build has no cgo, so no libxl.
func New(Options) (*Ctx, error) { return nil, ErrNotSupported }

// Version returns the zero VersionInfo.
func (c *Ctx) Version() VersionInfo { return VersionInfo{} }

// SetLogLevel returns ErrNotSupported.
func (c *Ctx) SetLogLevel(LogLevel) error { return ErrNotSupported }

// Call returns ErrNotSupported.
func (c *Ctx) Call(func(raw unsafe.Pointer) error) error { return ErrNotSupported }

// CallAsync returns ErrNotSupported.
func (c *Ctx) CallAsync(context.Context, string, func(raw, aoHow unsafe.Pointer) int) error {
	return ErrNotSupported
}

// Serialised returns false.
func (c *Ctx) Serialised() bool { return false }

// Err returns ErrNotSupported.
func (c *Ctx) Err() error { return ErrNotSupported }

// Raw returns nil.
func (c *Ctx) Raw() unsafe.Pointer { return nil }

// Close returns ErrNotSupported.
func (c *Ctx) Close() error { return ErrNotSupported }

// OccurredFD does nothing.
func (c *Ctx) OccurredFD(osevent.ForLibxl, int, osevent.PollEvents, osevent.PollEvents, osevent.Liveness) {
}

// OccurredTimeout does nothing.
func (c *Ctx) OccurredTimeout(osevent.ForLibxl, osevent.Liveness) {}
