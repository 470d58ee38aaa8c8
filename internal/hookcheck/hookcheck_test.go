package hookcheck

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/goxl/goxl/driver/eventloop"
)

func ev(op eventloop.Op, reg uint64) eventloop.TraceEvent {
	return eventloop.TraceEvent{Op: op, Binding: 1, Reg: osRegID(reg), Timeout: op != eventloop.OpOccurredFD}
}

func TestExactlyOnce(t *testing.T) {
	c := New(nil)
	c.Observe(ev(eventloop.OpTimeoutRegister, 1))
	c.Observe(ev(eventloop.OpTimeoutModify, 1))
	c.Observe(ev(eventloop.OpOccurredTimeout, 1))
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestOwedTimeoutIsReported(t *testing.T) {
	c := New(nil)
	c.Observe(ev(eventloop.OpTimeoutRegister, 2))
	c.Observe(ev(eventloop.OpTimeoutModify, 2))
	err := c.Check()
	if err == nil || !strings.Contains(err.Error(), "T2 never delivered") {
		t.Fatalf("got %v", err)
	}
}

func TestTwiceIsReported(t *testing.T) {
	c := New(nil)
	c.Observe(ev(eventloop.OpTimeoutRegister, 3))
	c.Observe(ev(eventloop.OpOccurredTimeout, 3))
	c.Observe(ev(eventloop.OpOccurredTimeout, 3))
	if err := c.Check(); err == nil || !strings.Contains(err.Error(), "delivered 2 times") {
		t.Fatalf("got %v", err)
	}
}

func TestHookErrorsAndUnknownIDs(t *testing.T) {
	c := New(nil)
	e := ev(eventloop.OpFDModify, 9)
	e.Err = eventloop.ErrUnknownReg
	c.Observe(e)
	e = ev(eventloop.OpFDRegister, 10)
	e.Err = errors.New("injected")
	c.Observe(e)
	err := c.Check()
	if err == nil || !strings.Contains(err.Error(), "unknown registration") || !strings.Contains(err.Error(), "hook failed") {
		t.Fatalf("got %v", err)
	}
}

func TestReapedAtCloseIsNotOwed(t *testing.T) {
	c := New(nil)
	c.Observe(ev(eventloop.OpTimeoutRegister, 8))
	c.Observe(ev(eventloop.OpTimeoutModify, 8))
	c.Observe(ev(eventloop.OpReaped, 8))
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestForgetAfterClose(t *testing.T) {
	c := New(nil)
	c.Observe(ev(eventloop.OpTimeoutRegister, 4))
	c.Forget(1)
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestChainsTheTrace(t *testing.T) {
	n := 0
	c := New(func(eventloop.TraceEvent) { n++ })
	c.Observe(ev(eventloop.OpOccurredFD, 5))
	if n != 1 || c.Count(eventloop.OpOccurredFD) != 1 {
		t.Fatalf("n=%d count=%d", n, c.Count(eventloop.OpOccurredFD))
	}
}

func TestSettleWaitsForAFireNowOnItsWay(t *testing.T) {
	c := New(nil)
	c.Observe(ev(eventloop.OpTimeoutRegister, 6))
	c.Observe(ev(eventloop.OpTimeoutModify, 6))
	go func() {
		time.Sleep(30 * time.Millisecond)
		c.Observe(ev(eventloop.OpOccurredTimeout, 6))
	}()
	if err := c.Settle(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	c.Observe(ev(eventloop.OpTimeoutRegister, 7))
	if err := c.Settle(50 * time.Millisecond); err == nil {
		t.Fatal("a timeout never delivered passed Settle")
	}
}

func TestSinkPanicIsReported(t *testing.T) {
	c := New(nil)
	e := ev(eventloop.OpSinkPanic, 11)
	e.Err = fmt.Errorf("%w: Sink.OccurredFD: boom\nstack", eventloop.ErrCallbackPanic)
	c.Observe(e)
	err := c.Check()
	if err == nil || !strings.Contains(err.Error(), "Sink panicked") || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("got %v", err)
	}
}

// libxl 4.2.1's libxl_ctx_free deregisters its own xenstore watch fd after
// the ctx's close reaped it (real 4.2.1, tests/xen42/traces): the loop
// traces it as ErrAfterReap, which is legal; an unknown ID before any
// reap still is not.
func TestDeregisterAfterReapIsLegal(t *testing.T) {
	c := New(nil)
	e := ev(eventloop.OpFDDeregister, 11)
	e.Timeout = false
	e.Err = eventloop.ErrAfterReap
	c.Observe(e)
	if err := c.Check(); err != nil {
		t.Fatalf("a deregister after reap was reported: %v", err)
	}
	e.Err = eventloop.ErrUnknownReg
	c.Observe(e)
	if err := c.Check(); err == nil {
		t.Fatal("an unknown deregister was not reported")
	}
}
