//go:build libxlmodel

package driver

import (
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/goxl/goxl/driver/eventloop"
	"github.com/goxl/goxl/internal/libxlmodel"
	"github.com/goxl/goxl/internal/osevent"
	"github.com/goxl/goxl/libxl"
)

// holdingHooks is a loop binding whose timeout deliveries can be held on
// the dispatcher before they reach the ctx: the ctx's Sink is wrapped.
type holdingHooks struct {
	*eventloop.Binding
	entered chan struct{} // one token per held delivery that began
	release chan struct{} // closed to let held deliveries through
	done    chan struct{} // one token per held delivery that returned
}

func (h *holdingHooks) SetSink(s osevent.Sink) { h.Binding.SetSink(holdingSink{s, h}) }

type holdingSink struct {
	osevent.Sink
	h *holdingHooks
}

func (s holdingSink) OccurredTimeout(f osevent.ForLibxl, live osevent.Liveness) {
	s.h.entered <- struct{}{}
	<-s.h.release
	s.Sink.OccurredTimeout(f, live)
	s.h.done <- struct{}{}
}

// blockedIn reports whether some goroutine's stack shows fn.
func blockedIn(fn string) bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), fn)
}

// Close step 2 (libxl.Ctx.Close closes the binding's gate and drains it
// before Reap) makes "reaped: forgotten, never fired" true when a delivery
// is in flight on the dispatcher as Close runs. The ctx owes one fire-now
// delivery (a cancelled timeout, 4.17 mode) and the dispatcher holds it
// just before the Sink call. Close must let it finish before Reap, so that
// the timeout is delivered and not reaped; without the gate Reap counts
// it as reaped (the trace shows OpReaped) while the delivery still reaches
// libxl. To make the unprotected order deterministic, the trace releases
// the held delivery when it sees the Reap and waits for it; the protected
// order releases it once Close is seen waiting in CloseGate.
func TestCloseDrainsDeliveryInFlightBeforeReap(t *testing.T) {
	libxlmodel.Reset()
	defer libxlmodel.SetDefaultMode(libxlmodel.Mode417)
	libxlmodel.SetDefaultMode(libxlmodel.Mode417)

	var (
		mu         sync.Mutex
		reaped     = map[osevent.RegID]bool{}
		delivered  = map[osevent.RegID]bool{}
		releaseOne sync.Once
		h          *holdingHooks
	)
	let := func() {
		releaseOne.Do(func() { close(h.release) })
	}
	loop, err := eventloop.New(eventloop.Options{Trace: func(ev eventloop.TraceEvent) {
		switch ev.Op {
		case eventloop.OpOccurredTimeout:
			mu.Lock()
			delivered[ev.Reg] = true
			mu.Unlock()
		case eventloop.OpReaped:
			mu.Lock()
			held := delivered[ev.Reg]
			reaped[ev.Reg] = true
			mu.Unlock()
			if held { // Reap reached a delivery still in flight: let it finish first
				let()
				select {
				case <-h.done:
				case <-time.After(10 * time.Second):
				}
			}
		}
	}})
	require.NoError(t, err)
	defer loop.Close()
	h = &holdingHooks{Binding: loop.Attach(nil), entered: make(chan struct{}, 1),
		release: make(chan struct{}), done: make(chan struct{}, 1)}
	c, err := libxl.New(libxl.Options{Hooks: h})
	require.NoError(t, err)

	require.NoError(t, c.Call(func(raw unsafe.Pointer) error {
		r, err := libxlmodel.RaceArm(raw, time.Hour)
		if err != nil {
			return err
		}
		ok, err := libxlmodel.RaceCancel(raw, r)
		require.True(t, ok, "cancelled")
		return err
	}))
	select {
	case <-h.entered: // the owed fire-now delivery is in flight
	case <-time.After(10 * time.Second):
		t.Fatal("the fire-now delivery never began")
	}

	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(reaped)
		mu.Unlock()
		if n > 0 || blockedIn("eventloop.(*Binding).CloseGate") || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	let()
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, delivered, 1)
	for reg := range delivered {
		require.False(t, reaped[reg], "timeout %d was reaped and still delivered to libxl", reg)
	}
	rc := libxlmodel.RaceCounters()
	require.Equal(t, uint64(1), rc.FireNowDelivered, "the owed delivery reached libxl once, before libxl_ctx_free")
	require.Zero(t, rc.Fired, "a timeout was force-fired")
	requireNoViolations(t)
	require.Zero(t, h.Stats().Timeouts)
}

// A manager goroutine (a follow-up such as a restart or a one-domain
// resync) may watch a domain again while Close runs, after Close's first
// unwatchAll: nothing closes that subscription until Close's wg.Wait has
// returned. Its forwarder must therefore end on the manager's stop, not
// on the end of its subscription, or Close waits for it forever (seen
// once in 3 runs of tests/bench TestScaleMeasures, a forwarder blocked on
// its subscription's channel). Here the follow-up is made to watch again
// exactly in that window.
func TestWatchStartedDuringCloseDoesNotHangIt(t *testing.T) {
	freshModelHost(t)
	d := newModelDriver(t, libxlmodel.Mode417) // closed at the end: after a hang, Driver.Close would wait too
	m, err := NewDomains(d, DomainsOptions{ResyncInterval: -1})
	require.NoError(t, err)
	dom, err := m.Create(t.Context(), modelGuest("rewatched"), CreateOptions{})
	require.NoError(t, err)
	domid := dom.Snapshot().DomID
	watching := func() bool {
		dom.mu.Lock()
		defer dom.mu.Unlock()
		return dom.watch != nil
	}
	require.True(t, watching())

	rewatched := make(chan error, 1)
	m.wg.Add(1) // as the worker does for a follow-up
	go func() {
		defer m.wg.Done()
		deadline := time.Now().Add(10 * time.Second)
		for watching() { // until Close's first unwatchAll
			if time.Now().After(deadline) {
				rewatched <- errors.New("Close never unwatched the domain")
				return
			}
			time.Sleep(100 * time.Microsecond)
		}
		rewatched <- m.watch(dom, domid)
	}()

	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(5 * time.Second): // a model manager with one domain closes in milliseconds
		buf := make([]byte, 1<<20)
		t.Fatalf("Domains.Close hung with a watch started during it:\n%s", buf[:runtime.Stack(buf, true)])
	}
	require.NoError(t, <-rewatched, "the follow-up's watch (the driver's ctx is still open)")
	require.False(t, watching(), "Close left the watch started during it open")
	require.NoError(t, d.Close())
	requireNoViolations(t)
	requireEmptyLoop(t, d)
}
