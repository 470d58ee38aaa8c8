package eventloop

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxl/goxl/internal/leakcheck"
	"github.com/goxl/goxl/internal/osevent"
)

// The boundary matrix: every exported method of Loop and Binding, called
// (a) concurrently with the teardown (CloseGate, Reap, Detach, Loop.Close)
// at randomised points, (b) after it, and (c) from inside a callback (a
// Sink delivery of an fd or a timeout, or the trace of a delivery) while
// the teardown is pending (CloseGate waiting for that delivery, or
// Loop.Close waiting for the dispatcher). Each call must end in success or
// one of the loop's typed errors within a bound; afterwards the loop must
// close, its registry be empty, and no fd or goroutine be left.

// matrixErrors are the typed errors a call may end in.
var matrixErrors = []error{ErrClosed, ErrDetached, ErrUnknownReg, ErrOnDispatcher, ErrBindingsAttached}

// Bounds are generous: the machine is shared and the test runs with -race.
const (
	matrixCallBound  = 3 * time.Second
	matrixCloseBound = 10 * time.Second
)

type matrixEnv struct {
	l      *Loop
	b      *Binding
	fd     int // an eventfd, readable: level-triggered deliveries until teardown
	parkFD int // an eventfd whose delivery a situation (c) holds
	fdReg  osevent.RegID
	toReg  osevent.RegID

	extraMu sync.Mutex
	extras  []*Binding // bound by the Attach under test

	// situation (c)
	parkCookie atomic.Uint64 // cookie whose delivery parks; 0: none
	parkReg    atomic.Uint64 // reg whose delivery trace parks; 0: none
	parkOnce   sync.Once
	parked     chan struct{}
	goCall     chan struct{}
	result     chan error
	call       func(*matrixEnv) error
}

type matrixMethod struct {
	name string
	call func(*matrixEnv) error
}

var matrixMethods = []matrixMethod{
	{"Loop.Attach", func(e *matrixEnv) error {
		nb := e.l.Attach(e)
		e.extraMu.Lock()
		e.extras = append(e.extras, nb)
		e.extraMu.Unlock()
		return nil
	}},
	{"Loop.Stats", func(e *matrixEnv) error { _ = e.l.Stats(); return nil }},
	{"Loop.Close", func(e *matrixEnv) error { return e.l.Close() }},
	{"Binding.SetSink", func(e *matrixEnv) error { e.b.SetSink(e); return nil }},
	{"Binding.ID", func(e *matrixEnv) error { _ = e.b.ID(); return nil }},
	{"Binding.FDRegister", func(e *matrixEnv) error { _, err := e.b.FDRegister(e.fd, pIn, 3); return err }},
	{"Binding.FDModify", func(e *matrixEnv) error { return e.b.FDModify(e.fd, e.fdReg, pIn|pOut) }},
	{"Binding.FDDeregister", func(e *matrixEnv) error { e.b.FDDeregister(e.fd, e.fdReg); return nil }},
	{"Binding.TimeoutRegister", func(e *matrixEnv) error { _, err := e.b.TimeoutRegister(time.Now().Round(0), 4); return err }},
	{"Binding.TimeoutModify", func(e *matrixEnv) error { return e.b.TimeoutModify(e.toReg, osevent.FireNow) }},
	{"Binding.TimeoutDeregister", func(e *matrixEnv) error { e.b.TimeoutDeregister(e.toReg); return nil }},
	{"Binding.CloseGate", func(e *matrixEnv) error { return e.b.CloseGate() }},
	{"Binding.Reap", func(e *matrixEnv) error { e.b.Reap(); return nil }},
	{"Binding.Detach", func(e *matrixEnv) error { e.b.Detach(); return nil }},
	{"Binding.Stats", func(e *matrixEnv) error { _ = e.b.Stats(); return nil }},
	{"Binding.OnDispatcher", func(e *matrixEnv) error { _ = e.b.OnDispatcher(); return nil }},
}

// OccurredFD implements osevent.Sink: fd deliveries are counted by the
// loop; the parking cookie's first one runs the call under test.
func (e *matrixEnv) OccurredFD(k osevent.ForLibxl, fd int, _, _ osevent.PollEvents, _ osevent.Liveness) {
	if c := e.parkCookie.Load(); c != 0 && uint64(k) == c {
		e.park()
	}
}

func (e *matrixEnv) OccurredTimeout(k osevent.ForLibxl, _ osevent.Liveness) {
	if c := e.parkCookie.Load(); c != 0 && uint64(k) == c {
		e.park()
	}
}

func (e *matrixEnv) trace(ev TraceEvent) {
	if r := e.parkReg.Load(); r != 0 && ev.Op == OpOccurredFD && uint64(ev.Reg) == r {
		e.park()
	}
}

// park runs on the dispatcher: it waits until the test has made the
// teardown pending, then makes the call under test from inside the
// callback.
func (e *matrixEnv) park() {
	e.parkOnce.Do(func() {
		close(e.parked)
		<-e.goCall
		e.result <- e.call(e)
	})
}

func checkMatrixErr(err error) error {
	if err == nil {
		return nil
	}
	for _, want := range matrixErrors {
		if errors.Is(err, want) {
			return nil
		}
	}
	return fmt.Errorf("untyped error: %w", err)
}

// within runs f on a new goroutine and waits up to d for it.
func within(d time.Duration, f func() error) (err error, ok bool) {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	select {
	case err := <-ch:
		return err, true
	case <-time.After(d):
		return nil, false
	}
}

func newMatrixEnv(t *testing.T) *matrixEnv {
	e := &matrixEnv{parked: make(chan struct{}), goCall: make(chan struct{}), result: make(chan error, 1)}
	l, err := New(Options{Trace: e.trace})
	if err != nil {
		t.Fatal(err)
	}
	e.l = l
	e.b = l.Attach(e)
	e.fd = eventfd(t, 1)
	e.parkFD = eventfd(t, 1)
	if e.fdReg, err = e.b.FDRegister(e.fd, pIn, 1); err != nil {
		t.Fatal(err)
	}
	if e.toReg, err = e.b.TimeoutRegister(time.Now().Add(time.Hour).Round(0), 2); err != nil {
		t.Fatal(err)
	}
	return e
}

// teardown is what libxl.Ctx.Close and Driver.Close do, with optional
// pauses at randomised points.
func (e *matrixEnv) teardown(pause func()) error {
	if err := e.b.CloseGate(); err != nil {
		return err
	}
	pause()
	e.b.Reap()
	pause()
	e.b.Detach()
	pause()
	return e.l.Close()
}

// finish detaches what the call attached, closes the loop for good and
// checks that nothing is left: registry, fds, goroutines.
func (e *matrixEnv) finish(t *testing.T, where string, snap leakcheck.Snapshot) {
	t.Helper()
	e.extraMu.Lock()
	for _, nb := range e.extras {
		nb.Detach()
	}
	e.extraMu.Unlock()
	e.b.Detach()
	if err, ok := within(matrixCloseBound, e.l.Close); !ok || err != nil {
		t.Fatalf("%s: final Close: %v (returned: %v)", where, err, ok)
	}
	l := e.l
	l.mu.Lock()
	for fd, ent := range l.fds {
		if ent != nil {
			t.Errorf("%s: registry keeps fd %d", where, fd)
		}
	}
	if len(l.timers) != 0 || len(l.bindings) != 0 || l.nFD != 0 || l.nTimeouts != 0 || len(l.alwaysReady) != 0 {
		t.Errorf("%s: registry not empty: %d timers, %d bindings, %d fd regs, %d timeouts, %d always-ready",
			where, len(l.timers), len(l.bindings), l.nFD, l.nTimeouts, len(l.alwaysReady))
	}
	l.mu.Unlock()
	unix.Close(e.fd)
	unix.Close(e.parkFD)
	if err := snap.Wait(5 * time.Second); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
}

// matrixRounds is a multiple of 6: situation (c) cycles through its three
// callback kinds × two pending teardowns.
func matrixRounds() int {
	if testing.Short() {
		return 6
	}
	return 12
}

func TestBoundaryMatrix(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	t.Logf("seed %d", seed)
	rounds := matrixRounds()
	situations := []string{"concurrent with Close", "after Close", "inside a callback, Close pending"}
	start := time.Now()
	var calls, errs int
	for _, m := range matrixMethods {
		for si, sit := range situations {
			for r := 0; r < rounds; r++ {
				where := fmt.Sprintf("%s %s, round %d", m.name, sit, r)
				snap := leakcheck.Take()
				e := newMatrixEnv(t)
				var err error
				switch si {
				case 0:
					err = matrixConcurrent(t, e, m, rng, where)
				case 1:
					err = matrixAfter(t, e, m, where)
				case 2:
					err = matrixInside(t, e, m, r, where)
				}
				if err != nil {
					errs++
				}
				calls++
				e.finish(t, where, snap)
			}
		}
	}
	t.Logf("boundary matrix: %d methods × %d situations × %d rounds = %d calls (%d ended in a typed error) in %v",
		len(matrixMethods), len(situations), rounds, calls, errs, time.Since(start).Round(time.Millisecond))
	if calls != len(matrixMethods)*len(situations)*rounds {
		t.Fatalf("ran %d calls", calls)
	}
}

// randomPause yields or sleeps for a random short time.
func randomPause(rng *rand.Rand, mu *sync.Mutex) func() {
	return func() {
		mu.Lock()
		n := rng.IntN(4)
		d := time.Duration(rng.IntN(300)) * time.Microsecond
		mu.Unlock()
		switch n {
		case 0:
		case 1:
			runtime.Gosched()
		default:
			time.Sleep(d)
		}
	}
}

func matrixConcurrent(t *testing.T, e *matrixEnv, m matrixMethod, rng *rand.Rand, where string) error {
	t.Helper()
	var mu sync.Mutex
	pause := randomPause(rng, &mu)
	closer := make(chan error, 1)
	go func() { closer <- e.teardown(pause) }()
	pause()
	err, ok := within(matrixCallBound, func() error { return m.call(e) })
	if !ok {
		t.Fatalf("%s: the call hangs", where)
	}
	if cerr := checkMatrixErr(err); cerr != nil {
		t.Errorf("%s: %v", where, cerr)
	}
	select {
	case cerr := <-closer:
		if cerr != nil && !errors.Is(cerr, ErrBindingsAttached) {
			t.Errorf("%s: teardown: %v", where, cerr)
		}
	case <-time.After(matrixCloseBound):
		t.Fatalf("%s: the teardown hangs", where)
	}
	return err
}

func matrixAfter(t *testing.T, e *matrixEnv, m matrixMethod, where string) error {
	t.Helper()
	if err := e.teardown(func() {}); err != nil {
		t.Fatalf("%s: teardown: %v", where, err)
	}
	err, ok := within(matrixCallBound, func() error { return m.call(e) })
	if !ok {
		t.Fatalf("%s: the call hangs", where)
	}
	if cerr := checkMatrixErr(err); cerr != nil {
		t.Errorf("%s: %v", where, cerr)
	}
	return err
}

// matrixInside holds a delivery (the callback kind cycles), makes the
// teardown pending behind it (CloseGate waiting for it, or Loop.Close
// waiting for the dispatcher), and makes the call from inside it.
func matrixInside(t *testing.T, e *matrixEnv, m matrixMethod, round int, where string) error {
	t.Helper()
	e.call = func(e *matrixEnv) error { return m.call(e) }
	kind := round % 3
	gatePending := round/3%2 == 0
	where = fmt.Sprintf("%s (callback %s, %s pending)", where,
		[]string{"OccurredFD", "OccurredTimeout", "trace"}[kind], map[bool]string{true: "CloseGate", false: "Loop.Close"}[gatePending])
	switch kind {
	case 0:
		e.parkCookie.Store(100)
		if _, err := e.b.FDRegister(e.parkFD, pIn, 100); err != nil {
			t.Fatal(err)
		}
	case 1:
		e.parkCookie.Store(200)
		if _, err := e.b.TimeoutRegister(time.Now().Round(0), 200); err != nil {
			t.Fatal(err)
		}
	case 2:
		id, err := e.b.FDRegister(e.parkFD, 0, 300)
		if err != nil {
			t.Fatal(err)
		}
		e.parkReg.Store(uint64(id))
		if err := e.b.FDModify(e.parkFD, id, pIn); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-e.parked:
	case <-time.After(matrixCloseBound):
		t.Fatalf("%s: the callback never came", where)
	}
	closer := make(chan error, 1)
	if gatePending {
		go func() { closer <- e.teardown(func() {}) }()
		waitGateWaiting(t, e.b)
	} else {
		go func() {
			e.b.Detach() // does not wait for the delivery
			closer <- e.l.Close()
		}()
		waitFor(t, "Loop.Close to start", matrixCloseBound, func() bool {
			e.l.mu.Lock()
			defer e.l.mu.Unlock()
			return e.l.closed
		})
	}
	close(e.goCall)
	var err error
	select {
	case err = <-e.result:
		if cerr := checkMatrixErr(err); cerr != nil {
			t.Errorf("%s: %v", where, cerr)
		}
	case <-time.After(matrixCallBound):
		t.Fatalf("%s: the call hangs on the dispatcher", where)
	}
	if (m.name == "Binding.CloseGate" || m.name == "Loop.Close") && !errors.Is(err, ErrOnDispatcher) {
		t.Errorf("%s: %v, want ErrOnDispatcher", where, err)
	}
	select {
	case cerr := <-closer:
		if cerr != nil && !errors.Is(cerr, ErrBindingsAttached) {
			t.Errorf("%s: teardown: %v", where, cerr)
		}
	case <-time.After(matrixCloseBound):
		t.Fatalf("%s: the teardown hangs after the callback returned", where)
	}
	return err
}

// waitGateWaiting waits until a CloseGate of b waits for a delivery.
func waitGateWaiting(t *testing.T, b *Binding) {
	t.Helper()
	buf := make([]byte, 1<<20)
	waitFor(t, "CloseGate to wait", matrixCloseBound, func() bool {
		if !b.gate.Load() {
			return false
		}
		k := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:k]), "\n\n") {
			if strings.Contains(g, "(*Binding).CloseGate") && strings.Contains(g, "[chan receive") {
				return true
			}
		}
		return false
	})
}
