//go:build libxlmodel

package libxl

// Boundaries of libxl.Ctx against the contract model: Close pending,
// Close done, re-entry from libxl's callbacks, libxl's disaster, forked
// children. Each test bounds every wait, so a deadlock fails the test
// instead of hanging the run.

import (
	"context"
	"errors"
	"os/exec"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/goxl/goxl/internal/libxlmodel"
	"github.com/goxl/goxl/internal/osevent"
)

const bound = 10 * time.Second

// within runs fn on its own goroutine and fails the test if it has not
// returned within the bound: a deadlock becomes a failure, not a hang.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(bound):
		t.Fatalf("%s did not return within %v (deadlock)", what, bound)
	}
}

// waitFor polls cond until it holds, or fails the test after the bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (c *Ctx) closePending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == ctxClosing
}

func (c *Ctx) opsInFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ops
}

func requireNoModelViolations(t *testing.T) {
	t.Helper()
	if v := libxlmodel.Violations(); len(v) != 0 {
		t.Fatalf("the model recorded %d violation(s); first: %v", len(v), v[0])
	}
}

// newModelCtx makes a ctx on h; serialised selects 4.2-unpatched libxl in
// Xen42Serialised mode.
func newModelCtx(t *testing.T, h Hooks, serialised bool, opts Options) *Ctx {
	t.Helper()
	opts.Hooks = h
	if serialised {
		libxlmodel.SetDefaultMode(libxlmodel.Mode42Unpatched)
		defer libxlmodel.SetDefaultMode(libxlmodel.Mode417)
		opts.Xen42 = Xen42Serialised
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if c.Serialised() != serialised {
		t.Fatalf("Serialised() = %v", c.Serialised())
	}
	return c
}

func eachMode(t *testing.T, fn func(t *testing.T, serialised bool)) {
	t.Run("417", func(t *testing.T) { fn(t, false) })
	t.Run("Xen42Serialised", func(t *testing.T) { fn(t, true) })
}

// pumpHooks record libxl's registrations and deliver them only when the
// test pumps: the test decides when an operation can complete.
type pumpHooks struct {
	mu       sync.Mutex
	next     osevent.RegID
	fds      map[osevent.RegID]pumpFD
	timeouts map[osevent.RegID]pumpTimeout
}

type pumpFD struct {
	fd     int
	events osevent.PollEvents
	f      osevent.ForLibxl
}

type pumpTimeout struct {
	abs time.Time
	f   osevent.ForLibxl
}

func newPumpHooks() *pumpHooks {
	return &pumpHooks{fds: map[osevent.RegID]pumpFD{}, timeouts: map[osevent.RegID]pumpTimeout{}}
}

func (h *pumpHooks) FDRegister(fd int, ev osevent.PollEvents, f osevent.ForLibxl) (osevent.RegID, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next++
	h.fds[h.next] = pumpFD{fd, ev, f}
	return h.next, nil
}

func (h *pumpHooks) FDModify(fd int, id osevent.RegID, ev osevent.PollEvents) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.fds[id]
	r.events = ev
	h.fds[id] = r
	return nil
}

func (h *pumpHooks) FDDeregister(fd int, id osevent.RegID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.fds, id)
}

func (h *pumpHooks) TimeoutRegister(abs time.Time, f osevent.ForLibxl) (osevent.RegID, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next++
	h.timeouts[h.next] = pumpTimeout{abs, f}
	return h.next, nil
}

func (h *pumpHooks) TimeoutModify(id osevent.RegID, abs time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r, ok := h.timeouts[id]; ok {
		r.abs = abs
		h.timeouts[id] = r
	}
	return nil
}

func (h *pumpHooks) TimeoutDeregister(id osevent.RegID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.timeouts, id)
}

func (h *pumpHooks) fdCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.fds)
}

// pump delivers every fd once and every due timeout once (a delivered
// timeout is gone, as libxl's contract says), with no hook lock held.
func (h *pumpHooks) pump(c *Ctx) {
	h.mu.Lock()
	var fds []pumpFD
	for _, r := range h.fds {
		fds = append(fds, r)
	}
	var due []pumpTimeout
	now := time.Now()
	for id, r := range h.timeouts {
		if osevent.IsFireNow(r.abs) || !r.abs.After(now) {
			due = append(due, r)
			delete(h.timeouts, id)
		}
	}
	h.mu.Unlock()
	for _, r := range fds {
		c.OccurredFD(r.f, r.fd, r.events, r.events&(osevent.PollIn|osevent.PollOut), nil)
	}
	for _, r := range due {
		c.OccurredTimeout(r.f, nil)
	}
}

// pumpUntil pumps until done is closed (bounded).
func (h *pumpHooks) pumpUntil(t *testing.T, c *Ctx, what string, done <-chan struct{}) {
	t.Helper()
	deadline := time.After(bound)
	for {
		select {
		case <-done:
			return
		case <-deadline:
			t.Fatalf("%s did not finish within %v", what, bound)
		case <-time.After(time.Millisecond):
			h.pump(c)
		}
	}
}

// createPumped creates a fake domain on c, pumping h until it exists.
func createPumped(t *testing.T, c *Ctx, h *pumpHooks) uint32 {
	t.Helper()
	var domid uint32
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		domid, err = c.CreateDomain(context.Background(), &DomainConfig{Name: "b", Type: DomainTypePV, Kernel: "/dev/null", MemoryMB: 64, VCPUs: 1})
	}()
	h.pumpUntil(t, c, "CreateDomain", done)
	if err != nil {
		t.Fatal(err)
	}
	return domid
}

// Issue 11 item 4: SetLogLevel after Close used to SIGSEGV (the logger
// pointer was NULL) and, concurrent with Close, to write freed memory.
func TestSetLogLevelAfterAndDuringClose(t *testing.T) {
	c := newModelCtx(t, &nopHooks{}, false, Options{})
	if err := c.SetLogLevel(LogDebug); err != nil {
		t.Fatalf("SetLogLevel on a live ctx: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.SetLogLevel(LogError); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetLogLevel after Close = %v, want ErrClosed", err)
	}
	for round := 0; round < 30; round++ {
		c := newModelCtx(t, &nopHooks{}, false, Options{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				err := c.SetLogLevel(LogLevel(1 + i%9))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("SetLogLevel: %v", err)
					return
				}
			}
		}()
		if round%2 == 0 {
			time.Sleep(time.Duration(round) * 10 * time.Microsecond)
		}
		within(t, "Close", func() { c.Close() })
		wg.Wait()
	}
}

// Issue 11 item 5: with Hooks that are no osevent.Quiescer, a delivery
// after Close reached libxl with a freed ctx. It is refused in Go.
func TestDeliveriesAfterCloseAreRefusedWhateverTheHooks(t *testing.T) {
	c := newModelCtx(t, &nopHooks{}, false, Options{})
	if _, ok := Hooks(&nopHooks{}).(osevent.Quiescer); ok {
		t.Fatal("nopHooks must not be a Quiescer for this test")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	libxlmodel.Reset()
	c.OccurredFD(osevent.ForLibxl(0x1000), 3, osevent.PollIn, osevent.PollIn, nil)
	c.OccurredTimeout(osevent.ForLibxl(0x2000), nil)
	requireNoModelViolations(t)
	if n := c.refusedDeliveries.Load(); n != 2 {
		t.Fatalf("refused deliveries = %d, want 2", n)
	}
}

// Issue 11 item 6a: a Ctx.Call whose libxl operation waits for a child
// must see SIGCHLD forwarded while Close is pending on its ctx, and that
// Close must not stop SIGCHLD for another ctx. The forwarder used to block
// on the pending ctx's lock (an RWMutex with a writer waiting), and it is
// shared by every ctx of the process.
func TestSigchldFlowsWhileClosePending(t *testing.T) {
	eachMode(t, func(t *testing.T, serialised bool) {
		ha := newPumpHooks()
		a := newModelCtx(t, ha, serialised, Options{})
		b := newModelCtx(t, &nopHooks{}, serialised, Options{})
		defer b.Close()
		domid := createPumped(t, a, ha)
		closed := make(chan error, 1)
		var callErr error
		within(t, "Call waiting for its child with Close pending", func() {
			callErr = a.Call(func(raw unsafe.Pointer) error {
				go func() { closed <- a.Close() }()
				waitFor(t, "Close to be pending", a.closePending)
				fa, fb := a.sigchldForwards.Load(), b.sigchldForwards.Load()
				if !serialised {
					// 4.17: the model's destroy forks a child and, called
					// synchronously, returns only once SIGCHLD was
					// forwarded and the child reaped.
					if err := destroySyncForTest(raw, domid); err != nil {
						return err
					}
				}
				if err := exec.Command("true").Run(); err != nil {
					return err
				}
				// What a synchronous libxl operation does here: wait
				// until libxl_childproc_sigchld_occurred reaped its child.
				deadline := time.Now().Add(bound / 2)
				for a.sigchldForwards.Load() == fa || b.sigchldForwards.Load() == fb {
					if time.Now().After(deadline) {
						return errors.New("SIGCHLD was not forwarded to both ctxs while Close was pending on one")
					}
					time.Sleep(time.Millisecond)
				}
				return nil
			})
		})
		if callErr != nil {
			t.Fatal(callErr)
		}
		select {
		case err := <-closed:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(bound):
			t.Fatal("Close did not return after the Call ended")
		}
		// b still gets SIGCHLD after a closed.
		fb := b.sigchldForwards.Load()
		if err := exec.Command("true").Run(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "SIGCHLD forwarded to the ctx still open", func() bool { return b.sigchldForwards.Load() > fb })
	})
}

// Issue 11 items 6b and 6c: libxl allows libxl calls from event_occurs.
// An Options.OnEvent that calls the Ctx, from inside a libxl call (the
// serial lock held in Xen42Serialised mode) and while Close is pending,
// must end in success or ErrClosed, never deadlock.
func TestOnEventMayCallTheCtx(t *testing.T) {
	eachMode(t, func(t *testing.T, serialised bool) {
		var mu sync.Mutex
		var got []error
		var c *Ctx
		var closeErrs []error
		onEvent := func(e Event) {
			_, err := c.DomainInfo(0)
			_, lerr := c.ListDomains()
			cerr := c.Close() // would wait for the call this runs in
			mu.Lock()
			got = append(got, err, lerr)
			closeErrs = append(closeErrs, cerr)
			mu.Unlock()
		}
		c = newModelCtx(t, &nopHooks{}, serialised, Options{OnEvent: onEvent})
		results := func() []error {
			mu.Lock()
			defer mu.Unlock()
			r := got
			got = nil
			return r
		}

		// Open: the re-entrant calls succeed.
		within(t, "a Call whose libxl call raises an event", func() {
			if err := c.Call(func(unsafe.Pointer) error {
				c.raiseEventForTest(EventDomainShutdown, 0, 1<<40)
				return nil
			}); err != nil {
				t.Errorf("Call: %v", err)
			}
		})
		r := results()
		if len(r) != 2 || r[0] != nil || r[1] != nil {
			t.Fatalf("OnEvent's calls on an open ctx: %v", r)
		}

		// Close pending: they end with ErrClosed, at once.
		closed := make(chan error, 1)
		within(t, "OnEvent calling the Ctx with Close pending", func() {
			if err := c.Call(func(unsafe.Pointer) error {
				go func() { closed <- c.Close() }()
				waitFor(t, "Close to be pending", c.closePending)
				c.raiseEventForTest(EventDomainDeath, 0, 1<<40)
				return nil
			}); err != nil {
				t.Errorf("Call: %v", err)
			}
		})
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		r = results()
		if len(r) != 2 || !errors.Is(r[0], ErrClosed) || !errors.Is(r[1], ErrClosed) {
			t.Fatalf("OnEvent's calls with Close pending: %v, want ErrClosed", r)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(closeErrs) != 2 || !errors.Is(closeErrs[0], ErrInCallback) || !errors.Is(closeErrs[1], ErrInCallback) {
			t.Fatalf("Close from OnEvent: %v, want ErrInCallback", closeErrs)
		}
	})
}

// Issue 11 item 6b: cancelling an operation while Close is pending calls
// libxl_ao_abort; that must not wait for Close (which waits for the
// operation). It used to take the ctx's RWMutex, blocked by Close's
// pending writer while a Call held it shared.
func TestAbortWhileClosePending(t *testing.T) {
	eachMode(t, func(t *testing.T, serialised bool) {
		h := newPumpHooks()
		c := newModelCtx(t, h, serialised, Options{})
		domid := createPumped(t, c, h)

		opCtx, cancel := context.WithCancel(context.Background())
		opDone := make(chan struct{})
		var opErr error
		go func() {
			defer close(opDone)
			opErr = c.ShutdownDomain(opCtx, domid)
		}()
		waitFor(t, "shutdown in flight", func() bool { return c.opsInFlight() == 1 && h.fdCount() > 0 })

		closed := make(chan error, 1)
		abortWithClosePending := func(unsafe.Pointer) error {
			go func() { closed <- c.Close() }()
			waitFor(t, "Close to be pending", c.closePending)
			cancel()
			// libxl_ao_abort runs on the operation's goroutine; let
			// the loop deliver so the aborted operation completes.
			h.pumpUntil(t, c, "the aborted shutdown", opDone)
			return nil
		}
		within(t, "aborting an operation with Close pending", func() {
			if !serialised {
				if err := c.Call(abortWithClosePending); err != nil {
					t.Errorf("Call: %v", err)
				}
				return
			}
			// In Xen42Serialised mode a Call holds the serial lock, so
			// no delivery can reach libxl until it returns: waiting in
			// there for an operation is the caller's deadlock. Another
			// operation in flight keeps Close pending instead.
			end, err := c.beginOp()
			if err != nil {
				t.Errorf("beginOp: %v", err)
				return
			}
			defer end()
			abortWithClosePending(nil)
		})
		// Close aborts the operations in flight itself (doc.go,
		// "Operations and Close"): either cause may have come first.
		if !errors.Is(opErr, context.Canceled) && !errors.Is(opErr, ErrClosed) {
			t.Fatalf("aborted shutdown: %v", opErr)
		}
		h.pumpUntil(t, c, "Close", chanOf(closed))
	})
}

// chanOf turns "a value arrived on ch" into a closed channel (and keeps
// the value out of the way).
func chanOf(ch <-chan error) <-chan struct{} {
	done := make(chan struct{})
	go func() { <-ch; close(done) }()
	return done
}

// Issue 11 item 7: libxl's disaster callback used to be only logged, so
// subscriptions and whoever waited on them waited forever. They end with
// ErrDisaster, and the ctx refuses new operations with it; Close works.
func TestDisasterEndsSubscriptionsAndBreaksTheCtx(t *testing.T) {
	h := newPumpHooks()
	c := newModelCtx(t, h, false, Options{})
	libxlmodel.Reset()
	domid := createPumped(t, c, h)
	sub, err := c.WatchDomainDeath(domid, WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waiterDone := make(chan error, 1)
	go func() { // a Shutdown(wait)-style waiter
		for range sub.C() {
		}
		waiterDone <- sub.Err()
	}()
	c.raiseDisasterForTest(EventDomainDeath, "xenstore watch lost", 5)
	select {
	case err := <-waiterDone:
		if !errors.Is(err, ErrDisaster) {
			t.Fatalf("the subscription ended with %v, want ErrDisaster", err)
		}
	case <-time.After(bound):
		t.Fatal("a waiter on the subscription still waits after libxl's disaster")
	}
	if _, err := c.DomainInfo(domid); !errors.Is(err, ErrDisaster) {
		t.Fatalf("DomainInfo after the disaster: %v", err)
	}
	if _, err := c.WatchDomainDeath(domid, WatchOptions{}); !errors.Is(err, ErrDisaster) {
		t.Fatalf("WatchDomainDeath after the disaster: %v", err)
	}
	if !errors.Is(c.Err(), ErrDisaster) {
		t.Fatalf("Err() = %v", c.Err())
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(sub.Err(), ErrDisaster) {
		t.Fatalf("Err changed to %v", sub.Err())
	}
	requireNoModelViolations(t)
}

// Issue 11 item 8: only "no domain has that name" is ErrNoSuchDomain.
func TestDomainIDByNameKeepsLibxlErrors(t *testing.T) {
	c := newModelCtx(t, &nopHooks{}, false, Options{})
	defer c.Close()
	if _, err := c.DomainIDByName("nobody"); !errors.Is(err, ErrNoSuchDomain) {
		t.Fatalf("unknown name: %v", err)
	}
	err := nameToDomidError("web", ErrNoMem)
	if errors.Is(err, ErrNoSuchDomain) || errors.Is(err, ErrDomainNotFound) || !errors.Is(err, ErrNoMem) {
		t.Fatalf("ERROR_NOMEM from libxl_name_to_domid became %v", err)
	}
	if err := nameToDomidError("web", ErrInval); !errors.Is(err, ErrNoSuchDomain) {
		t.Fatalf("ERROR_INVAL (no such name) became %v", err)
	}
}

// Issue 11 item 11: an asynchronous operation started through the raw ctx
// is counted (CallAsync): Close waits for its completion before
// libxl_ctx_free, which real libxl 4.17 would abort on (aos_inprogress).
func TestCallAsyncIsCountedByClose(t *testing.T) {
	eachMode(t, func(t *testing.T, serialised bool) {
		h := newPumpHooks()
		c := newModelCtx(t, h, serialised, Options{})
		libxlmodel.Reset()
		domid := createPumped(t, c, h)

		opDone := make(chan struct{})
		var opErr error
		go func() {
			defer close(opDone)
			opErr = c.CallAsync(context.Background(), "libxl_domain_shutdown", shutdownStartForTest(domid))
		}()
		waitFor(t, "the shutdown's initiating call", func() bool { return h.fdCount() > 0 })

		closed := make(chan error, 1)
		go func() { closed <- c.Close() }()
		waitFor(t, "Close to begin", func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.state != ctxOpen
		})
		time.Sleep(20 * time.Millisecond)
		select {
		case err := <-closed:
			t.Fatalf("Close returned (%v) while an operation started through CallAsync was in flight", err)
		default:
		}
		h.pumpUntil(t, c, "the shutdown", opDone)
		// Close aborted it (libxl_ao_abort) and waited for its completion.
		if opErr != nil && !errors.Is(opErr, ErrClosed) {
			t.Fatal(opErr)
		}
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		requireNoModelViolations(t)
	})
}

// Close's order, step by step: operations (TestCallAsyncIsCountedByClose),
// the gate drained before Reap (driver TestCloseDrainsDeliveryInFlightBeforeReap),
// a generator left enabled disabled by libxl_ctx_free (the strict model
// reports any fd left registered), SIGCHLD forwarding stopped,
// short calls under way waited for, libxl_ctx_free, tokens and logger
// released, OnClosed last.
func TestCloseOrder(t *testing.T) {
	h := newPumpHooks()
	var freesAtOnClosed []uint64
	c := newModelCtx(t, h, false, Options{OnClosed: func() { freesAtOnClosed = append(freesAtOnClosed, libxlmodel.Counters().CtxFrees) }})
	libxlmodel.Reset()
	domid := createPumped(t, c, h)
	sub, err := c.WatchDomainDeath(domid, WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.pump(c)

	// A short call under way (what a delivery or a SIGCHLD forward holds).
	if !c.pin() {
		t.Fatal("pin refused on an open ctx")
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	waitFor(t, "Close to refuse further calls into libxl", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.state == ctxFreed
	})
	time.Sleep(20 * time.Millisecond)
	if n := libxlmodel.Counters().CtxFrees; n != 0 {
		t.Fatalf("libxl_ctx_free ran (%d) while a call into libxl was under way", n)
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a call into libxl was under way", err)
	default:
	}
	if c.pin() {
		t.Fatal("a new call into libxl was admitted after Close decided to free the ctx")
	}
	c.unpin()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(bound):
		t.Fatal("Close did not return after the last call under way ended")
	}

	if !errors.Is(sub.Err(), ErrClosed) {
		t.Fatalf("subscription after Close: %v", sub.Err())
	}
	requireNoModelViolations(t)
	if n := libxlmodel.Counters().CtxFrees; n != 1 || len(freesAtOnClosed) != 1 || freesAtOnClosed[0] != 1 {
		t.Fatalf("libxl_ctx_free ran %d time(s); OnClosed ran after %v of them", n, freesAtOnClosed)
	}
	sigchld.mu.Lock()
	_, forwarded := sigchld.ctxs[c]
	sigchld.mu.Unlock()
	if forwarded {
		t.Fatal("SIGCHLD is still forwarded to the closed ctx")
	}
	if c.userToken.Lookup() != nil || c.loggerToken.Lookup() != nil {
		t.Fatal("the ctx's user or logger token outlived Close")
	}
	if c.Raw() != nil || !errors.Is(c.Err(), ErrClosed) {
		t.Fatalf("Raw/Err after Close: %v %v", c.Raw(), c.Err())
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
}
