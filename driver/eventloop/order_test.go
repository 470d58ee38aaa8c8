package eventloop

import (
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxl/goxl/internal/osevent"
)

// The orderings below are a few instructions wide on the dispatcher. The
// loop's afterRelease hook sleeps once, right after the delivery's
// admission is released, so that anything a reordering moves after the
// release happens while CloseGate has already returned: the tests then see
// it every time, not once in a while.

// heldSink blocks inside each delivery until released.
type heldSink struct {
	entered chan struct{}
	release chan struct{}
}

func newHeldSink() *heldSink {
	return &heldSink{entered: make(chan struct{}, 1), release: make(chan struct{})}
}

func (s *heldSink) hold() {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-s.release
}

func (s *heldSink) OccurredFD(osevent.ForLibxl, int, osevent.PollEvents, osevent.PollEvents, osevent.Liveness) {
	s.hold()
}

func (s *heldSink) OccurredTimeout(osevent.ForLibxl, osevent.Liveness) { s.hold() }

// closeGateDuringDelivery waits until a delivery to b is in the Sink,
// starts CloseGate, lets the delivery return once the gate is closed, and
// returns when CloseGate has returned. The loop's afterRelease hook then
// sleeps on the dispatcher.
func closeGateDuringDelivery(t *testing.T, b *Binding, s *heldSink, slowRelease *atomic.Bool) {
	t.Helper()
	select {
	case <-s.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery reached the Sink in 10 s")
	}
	slowRelease.Store(true)
	gateDone := make(chan error, 1)
	go func() { gateDone <- b.CloseGate() }()
	waitFor(t, "the gate to close", 10*time.Second, b.gate.Load)
	close(s.release)
	select {
	case err := <-gateDone:
		if err != nil {
			t.Fatalf("CloseGate: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("CloseGate did not return in 10 s after the delivery returned")
	}
}

func slowReleaseLoop(t *testing.T) (*Loop, *atomic.Bool) {
	var slow atomic.Bool
	l := newLoop(t, Options{afterRelease: func() {
		if slow.CompareAndSwap(true, false) {
			time.Sleep(200 * time.Millisecond)
		}
	}})
	return l, &slow
}

// Once CloseGate has returned, a timeout that was being delivered is gone
// from the registry: libxl took it as deregistered on entry to
// occurred_timeout, so Reap must not count (or trace) it as reaped.
func TestDeliveredTimeoutForgottenBeforeCloseGateReturns(t *testing.T) {
	l, slow := slowReleaseLoop(t)
	s := newHeldSink()
	b := l.Attach(s)
	defer b.Detach()
	if _, err := b.TimeoutRegister(time.Now(), 0); err != nil {
		t.Fatal(err)
	}
	closeGateDuringDelivery(t, b, s, slow)
	if fds, timeouts := b.Reap(); fds != 0 || timeouts != 0 {
		t.Fatalf("Reap after CloseGate forgot %d fds and %d timeouts; want none: the delivered timeout was still registered when the drain returned", fds, timeouts)
	}
}

// Once CloseGate has returned, Stats include every delivery it drained.
func TestDrainedDeliveryCountedBeforeCloseGateReturns(t *testing.T) {
	l, slow := slowReleaseLoop(t)
	s := newHeldSink()
	b := l.Attach(s)
	defer b.Detach()
	fd := eventfd(t, 1) // readable until closed
	defer unix.Close(fd)
	reg, err := b.FDRegister(fd, unix.POLLIN, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.FDDeregister(fd, reg)
	closeGateDuringDelivery(t, b, s, slow)
	if got := b.Stats().FDDeliveries; got != 1 {
		t.Fatalf("Stats after CloseGate: %d fd deliveries, want 1 (the drained one)", got)
	}
}
