// Package hookcheck checks the hook-traffic invariants of a running loop
// from its trace: every timeout libxl registered gets exactly one
// occurred_timeout, no hook fails or names an unknown registration, and
// no Sink call panics.
// Tests on real Xen install it as the loop's Options.Trace and call Check
// after each step, once libxl is quiescent.
//
// It is pure Go. Observe runs on whatever thread emitted the event (libxl's
// with its ctx lock held, or the dispatcher): it only takes its own leaf
// lock.
package hookcheck

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/goxl/goxl/driver/eventloop"
	"github.com/goxl/goxl/internal/osevent"
)

type regKey struct {
	binding uint64
	reg     osevent.RegID
}

type timeoutState struct {
	delivered int
	history   []string
}

// Checker accumulates a loop's trace. The zero value is not usable; use New.
type Checker struct {
	next func(eventloop.TraceEvent) // chained trace, may be nil

	mu       sync.Mutex // leaf: never held while calling anything
	timeouts map[regKey]*timeoutState
	problems []string
	counts   map[eventloop.Op]int
}

// New returns a Checker that passes every event on to next (if not nil).
func New(next func(eventloop.TraceEvent)) *Checker {
	return &Checker{next: next, timeouts: map[regKey]*timeoutState{}, counts: map[eventloop.Op]int{}}
}

// Observe is the loop's Options.Trace.
func (c *Checker) Observe(ev eventloop.TraceEvent) {
	c.mu.Lock()
	c.counts[ev.Op]++
	k := regKey{ev.Binding, ev.Reg}
	switch {
	case ev.Op == eventloop.OpSinkPanic:
		c.problems = append(c.problems, "Sink panicked: "+ev.String())
	case ev.Err != nil && errors.Is(ev.Err, eventloop.ErrAfterReap):
		// libxl 4.2's libxl_ctx_free deregistering its own watch fd
		// after the ctx's close reaped it: legal, nothing is owed.
	case ev.Err != nil && errors.Is(ev.Err, eventloop.ErrUnknownReg):
		c.problems = append(c.problems, "unknown registration: "+ev.String())
	case ev.Err != nil:
		c.problems = append(c.problems, "hook failed: "+ev.String())
	case ev.Op == eventloop.OpTimeoutRegister:
		c.timeouts[k] = &timeoutState{history: []string{ev.String()}}
	case ev.Timeout && (ev.Op == eventloop.OpTimeoutModify || ev.Op == eventloop.OpTimeoutDeregister ||
		ev.Op == eventloop.OpDropped || ev.Op == eventloop.OpReaped):
		if t := c.timeouts[k]; t != nil {
			t.history = append(t.history, ev.String())
			// No delivery is owed after a 4.2.0/4.2.1 deregister, nor
			// after the ctx's close reaped the timeout (libxl_ctx_free
			// follows; libxl 4.17 may leave fire-now timeouts pending
			// when an operation completed before they were delivered).
			if ev.Op == eventloop.OpTimeoutDeregister || ev.Op == eventloop.OpReaped {
				delete(c.timeouts, k)
			}
		}
	case ev.Op == eventloop.OpOccurredTimeout:
		t := c.timeouts[k]
		if t == nil {
			c.problems = append(c.problems, "occurred_timeout for a timeout never registered: "+ev.String())
			break
		}
		t.delivered++
		t.history = append(t.history, ev.String())
		if t.delivered > 1 {
			c.problems = append(c.problems, fmt.Sprintf("timeout delivered %d times:\n    %s", t.delivered, strings.Join(t.history, "\n    ")))
		}
	}
	c.mu.Unlock()
	if c.next != nil {
		c.next(ev)
	}
}

// Count returns how many events of op were seen.
func (c *Checker) Count(op eventloop.Op) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[op]
}

// Check reports every problem seen so far, and every timeout that is
// still owed its occurred_timeout. Call it when libxl is quiescent (no
// operation in flight), where libxl 4.3+ has cancelled all its timeouts
// with fire-now and the loop has delivered them. Delivered timeouts are
// forgotten, so Check can be called after each step.
func (c *Checker) Check() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	out = append(out, c.problems...)
	var owed []string
	for k, t := range c.timeouts {
		if t.delivered == 0 {
			owed = append(owed, fmt.Sprintf("binding %d T%d never delivered:\n    %s", k.binding, k.reg, strings.Join(t.history, "\n    ")))
		} else {
			delete(c.timeouts, k)
		}
	}
	sort.Strings(owed)
	out = append(out, owed...)
	c.problems = nil
	if len(out) == 0 {
		return nil
	}
	return fmt.Errorf("hook-traffic invariants broken:\n  %s", strings.Join(out, "\n  "))
}

// Forget drops what is known of a binding, after its ctx closed (its
// pending timeouts were reaped, which is legal at ctx free).
func (c *Checker) Forget(binding uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.timeouts {
		if k.binding == binding {
			delete(c.timeouts, k)
		}
	}
}

// Owed is how many registered timeouts have not been delivered yet.
func (c *Checker) Owed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timeouts {
		if t.delivered == 0 {
			n++
		}
	}
	return n
}

// Settle waits up to d for the owed timeouts to be delivered (a fire-now
// may still be on its way when an operation's completion returns), then
// calls Check.
func (c *Checker) Settle(d time.Duration) error {
	deadline := time.Now().Add(d)
	for c.Owed() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return c.Check()
}
