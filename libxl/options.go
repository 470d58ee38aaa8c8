package libxl

import (
	"log/slog"
	"os"

	"github.com/goxl/goxl/internal/osevent"
)

// Xen42Policy says what New does on Xen 4.2.0/4.2.1, whose libxl frees a
// registration's record at deregistration (see xen-patches/README.md).
// Later versions ignore it.
type Xen42Policy int

const (
	// Xen42Refuse, the default, makes New fail with ErrUnpatched42 on
	// 4.2.0/4.2.1, unless libxl carries goxl's xen-patches/ series (it
	// exports libxl_goxl_osevent_fix) or the environment says otherwise:
	// GOXL_LIBXL_PATCHED=1 declares the series applied,
	// GOXL_LIBXL_SAFE_MODE=1 selects Xen42Serialised.
	Xen42Refuse Xen42Policy = iota
	// Xen42Patched declares that libxl carries the series, which has the
	// 4.2.2+ semantics.
	Xen42Patched
	// Xen42Serialised runs every libxl call on the ctx, deliveries
	// included, under one per-ctx lock, and re-checks a registration's
	// liveness under that lock before delivering. Hooks never take that
	// lock, so libxl's lock rule holds. It is slower: one thread at a time
	// per ctx.
	Xen42Serialised
)

// resolveXen42 applies the marker and the environment to the default.
func resolveXen42(p Xen42Policy, libxlHasFix bool) Xen42Policy {
	if p != Xen42Refuse {
		return p
	}
	switch {
	case libxlHasFix, os.Getenv("GOXL_LIBXL_PATCHED") == "1":
		return Xen42Patched
	case os.Getenv("GOXL_LIBXL_SAFE_MODE") == "1":
		return Xen42Serialised
	}
	return Xen42Refuse
}

// Options configure New. Hooks is required.
type Options struct {
	// Hooks runs libxl's fd and timeout registrations: typically a
	// driver/eventloop Binding. If it implements SinkSetter, New hands
	// it the Ctx before registering the hooks. If it implements
	// osevent.Quiescer, Close uses it to drain and reap.
	Hooks Hooks
	// Logger receives libxl's messages; nil means slog.Default().
	Logger *slog.Logger
	// LogLevel drops messages below it in C, before any crossing.
	// Zero means LogWarn. SetLogLevel changes it later.
	LogLevel LogLevel
	// Xen42 applies only on libxl 4.2.0 and 4.2.1.
	Xen42 Xen42Policy
	// OnEvent receives events that no subscription claimed. It runs on
	// the thread that was inside libxl, usually the dispatcher (in
	// Xen42Serialised mode: right after the serial lock is released, on
	// the goroutine that released it): it must not block. It may call the
	// Ctx: the calls succeed, or return ErrClosed once Close began; Close
	// itself returns ErrInCallback there. Nil drops the events.
	OnEvent func(Event)
	// OnClosed runs once at the end of Close, after libxl_ctx_free, so an
	// owner can forget the ctx.
	OnClosed func()
}

// SinkSetter is implemented by Hooks that need to know where to deliver.
type SinkSetter interface {
	SetSink(osevent.Sink)
}
