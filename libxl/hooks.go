package libxl

import "github.com/goxl/goxl/internal/osevent"

// The osevent vocabulary, re-exported: a loop that runs libxl's
// registrations implements Hooks; the Ctx is its Sink.
type (
	// Hooks mirrors libxl_osevent_hooks; see osevent.Hooks for the rules.
	Hooks = osevent.Hooks
	// Sink receives deliveries; *Ctx implements it.
	Sink = osevent.Sink
	// Liveness tells a Sink whether a delivery is still wanted.
	Liveness = osevent.Liveness
	// Quiescer lets Close drain and reap a ctx's registrations.
	Quiescer = osevent.Quiescer
	// PollEvents is a set of poll(2) bits.
	PollEvents = osevent.PollEvents
	// RegID names a registration.
	RegID = osevent.RegID
	// ForLibxl is libxl's opaque per-registration cookie.
	ForLibxl = osevent.ForLibxl
)

// Poll bits, as libxl passes them.
const (
	PollIn  = osevent.PollIn
	PollPri = osevent.PollPri
	PollOut = osevent.PollOut
	PollErr = osevent.PollErr
	PollHup = osevent.PollHup
)
