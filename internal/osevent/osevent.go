package osevent

import (
	"strings"
	"time"
)

// PollEvents is a set of poll(2) bits, the unit libxl uses for fd
// registrations and for the events/revents of libxl_osevent_occurred_fd.
type PollEvents int16

// The poll(2) bits on Linux. They are spelled out rather than taken from
// x/sys/unix so that this package builds everywhere.
const (
	PollIn   PollEvents = 0x001
	PollPri  PollEvents = 0x002
	PollOut  PollEvents = 0x004
	PollErr  PollEvents = 0x008
	PollHup  PollEvents = 0x010
	PollNval PollEvents = 0x020
)

func (e PollEvents) String() string {
	if e == 0 {
		return "0"
	}
	var parts []string
	for _, b := range []struct {
		bit  PollEvents
		name string
	}{{PollIn, "IN"}, {PollPri, "PRI"}, {PollOut, "OUT"}, {PollErr, "ERR"}, {PollHup, "HUP"}, {PollNval, "NVAL"}} {
		if e&b.bit != 0 {
			parts = append(parts, b.name)
			e &^= b.bit
		}
	}
	if e != 0 {
		parts = append(parts, "0x"+strings.ToUpper(hex(uint16(e))))
	}
	return strings.Join(parts, "|")
}

func hex(v uint16) string {
	const digits = "0123456789abcdef"
	if v == 0 {
		return "0"
	}
	var b []byte
	for v > 0 {
		b = append([]byte{digits[v&0xf]}, b...)
		v >>= 4
	}
	return string(b)
}

// RegID names one fd or timeout registration. Zero is never a valid ID.
type RegID uint64

// ForLibxl is libxl's opaque per-registration cookie (the for_libxl
// argument of the register hooks). It is an address inside libxl, carried
// as an integer so that Go never treats it as a pointer.
type ForLibxl uintptr

// FireNow is the deadline libxl passes to timeout_modify to ask for a
// timeout to occur as soon as possible (abs={0,0}).
var FireNow = time.Time{}

// IsFireNow reports whether a timeout_modify deadline means "as soon as
// possible": the zero time or the Unix epoch, as libxl passes {0,0}.
func IsFireNow(abs time.Time) bool {
	return abs.IsZero() || (abs.Unix() == 0 && abs.Nanosecond() == 0)
}

// Hooks is what an event loop implements to run libxl's registrations.
// The methods mirror libxl_osevent_hooks. See the package doc for the
// thread and lock rules; in short: never block, never call libxl.
//
// A register or modify that fails must leave the loop's state unchanged
// and return an error; the bridge turns it into ERROR_OSEVENT_REG_FAIL.
type Hooks interface {
	FDRegister(fd int, events PollEvents, forLibxl ForLibxl) (RegID, error)
	FDModify(fd int, reg RegID, events PollEvents) error
	FDDeregister(fd int, reg RegID)
	// TimeoutRegister arms a one-shot timeout at the wall-clock deadline
	// abs (libxl uses gettimeofday).
	TimeoutRegister(abs time.Time, forLibxl ForLibxl) (RegID, error)
	// TimeoutModify re-arms a timeout. Since 4.2.2 libxl only ever passes
	// FireNow. A modify that races the timeout's own firing is a no-op.
	TimeoutModify(reg RegID, abs time.Time) error
	// TimeoutDeregister is only called by libxl 4.2.0/4.2.1: after it
	// returns no occurred_timeout for reg may start.
	TimeoutDeregister(reg RegID)
}

// Sink receives the deliveries of one ctx, on the dispatcher goroutine.
// The implementation calls libxl_osevent_occurred_fd/_timeout.
//
// live reports whether the registration is still due at the moment it is
// called. A Sink that serialises its libxl calls (the safe mode for
// unpatched 4.2.0/4.2.1) calls live under that serialisation and skips the
// delivery when it answers false; others may ignore it, since libxl 4.2.2+
// tolerates stale calls.
type Sink interface {
	OccurredFD(forLibxl ForLibxl, fd int, events, revents PollEvents, live Liveness)
	OccurredTimeout(forLibxl ForLibxl, live Liveness)
}

// Liveness answers whether a delivery decided earlier is still wanted.
type Liveness interface {
	StillLive() bool
}

// Quiescer is implemented by Hooks that belong to one ctx and can be shut
// down in the order libxl's teardown needs (see libxl.Ctx.Close).
type Quiescer interface {
	// CloseGate stops new deliveries to the ctx and waits until the
	// in-flight ones have returned. Concurrent calls all wait and all
	// return. It must not be called on the dispatcher goroutine.
	CloseGate() error
	// Reap forgets every registration the ctx still has, without firing
	// any: libxl is about to be freed and will not need them. Hooks
	// called after Reap (libxl_ctx_free deregisters its own fds) must be
	// accepted as no-ops.
	Reap() (fds, timeouts int)
	// Detach releases the loop-side state once libxl_ctx_free returned.
	Detach()
}
