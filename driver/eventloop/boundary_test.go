package eventloop

import (
	"bytes"
	"errors"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxl/goxl/internal/osevent"
)

// idleRounds returns how many dispatch rounds the loop makes in d.
func idleRounds(l *Loop, d time.Duration) uint64 {
	r0 := l.Stats().Rounds
	time.Sleep(d)
	return l.Stats().Rounds - r0
}

// A regular file (epoll refuses it: always ready) whose registrations want
// neither IN nor OUT must not make the dispatcher poll: modified to events
// 0, or registered for POLLPRI only (a regular file never has priority
// data). Before the fix the loop made ~300,000 rounds per 100 ms, the
// always-ready back-off being reset by every empty round.
func TestAlwaysReadyWithoutWantedEventsDoesNotSpin(t *testing.T) {
	l := newLoop(t, Options{})
	c := newFake(t, l, nil)
	file, err := os.Create(filepath.Join(t.TempDir(), "save-image"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	fd := int(file.Fd())
	f := c.regFD(fd, pIn)
	waitFor(t, "always-ready deliveries", 5*time.Second, func() bool { return c.fdDeliveries.Load() >= 3 })
	c.with(func() {
		if err := c.modFDLocked(f, 0); err != nil {
			t.Fatal(err)
		}
	})
	c.barrier()
	if s := l.Stats(); s.AlwaysReadyFDs != 1 {
		t.Fatalf("the file is not always-ready: %+v", s)
	}
	r := idleRounds(l, 100*time.Millisecond)
	t.Logf("%d dispatch rounds in 100 ms with a regular file modified to events 0", r)
	if r > 20 {
		t.Errorf("%d dispatch rounds in 100 ms with a regular file modified to events 0: the dispatcher spins", r)
	}
	c.deregFD(f)
	pri := c.regFD(fd, pPri)
	if s := l.Stats(); s.AlwaysReadyFDs != 1 {
		t.Fatalf("the POLLPRI file is not always-ready: %+v", s)
	}
	c.barrier()
	r = idleRounds(l, 100*time.Millisecond)
	t.Logf("%d dispatch rounds in 100 ms with a regular file registered for POLLPRI only", r)
	if r > 20 {
		t.Errorf("%d dispatch rounds in 100 ms with a regular file registered for POLLPRI only: the dispatcher spins", r)
	}
	if n := c.fdDeliveries.Load(); n == 0 {
		t.Fatal("no delivery at all")
	}
	// The same registration wanting IN again is delivered again.
	n := c.fdDeliveries.Load()
	c.with(func() {
		if err := c.modFDLocked(pri, pIn|pPri); err != nil {
			t.Fatal(err)
		}
	})
	waitFor(t, "deliveries after modify to IN", 5*time.Second, func() bool { return c.fdDeliveries.Load() > n })
	c.deregFD(pri)
	c.teardown()
	c.viol.check(t)
}

// A deadline beyond what time.Duration spans (about 292 years) is "never"
// in practice: it must neither overflow into the past and fire at once,
// nor make the dispatcher poll.
func TestFarDeadlineDoesNotFire(t *testing.T) {
	l := newLoop(t, Options{})
	c := newFake(t, l, nil)
	far := c.regTO(time.Now().AddDate(300, 0, 0))
	farther := c.regTO(time.Now().Add(time.Hour))
	c.with(func() {
		if err := c.b.TimeoutModify(farther.id, time.Now().AddDate(1000, 0, 0).Round(0)); err != nil {
			t.Fatal(err)
		}
		farther.deadline = time.Now().AddDate(1000, 0, 0)
	})
	c.barrier()
	if r := idleRounds(l, 50*time.Millisecond); r > 5 {
		t.Errorf("%d dispatch rounds in 50 ms with only far deadlines pending", r)
	}
	c.with(func() {
		if far.fired != 0 || farther.fired != 0 {
			t.Errorf("a deadline centuries away fired: %d, %d", far.fired, farther.fired)
		}
	})
	if s := l.Stats(); s.Timeouts != 2 {
		t.Errorf("stats %+v, want 2 timeouts pending", s)
	}
	// libxl still cancels them with fire-now.
	c.fireNow(far)
	c.fireNow(farther)
	waitFor(t, "fire-now of far timeouts", 5*time.Second, func() bool { return c.toDeliveries.Load() == 3 })
	c.teardown()
	c.viol.check(t)
}

// waitBlocked waits until n goroutines are parked on a channel receive in
// a function whose name contains fn.
func waitBlocked(t *testing.T, fn string, n int) {
	t.Helper()
	buf := make([]byte, 1<<20)
	waitFor(t, "goroutines blocked in "+fn, 10*time.Second, func() bool {
		k := runtime.Stack(buf, true)
		count := 0
		for _, g := range strings.Split(string(buf[:k]), "\n\n") {
			if strings.Contains(g, fn) && strings.Contains(g, "[chan receive") {
				count++
			}
		}
		return count >= n
	})
}

// parkingSink parks the first fd delivery of cookie park until release is
// closed; every other delivery is counted.
type parkingSink struct {
	park    osevent.ForLibxl
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	fds     atomic.Int64
	tos     atomic.Int64
}

func newParkingSink(park osevent.ForLibxl) *parkingSink {
	return &parkingSink{park: park, entered: make(chan struct{}), release: make(chan struct{})}
}

func (s *parkingSink) OccurredFD(k osevent.ForLibxl, fd int, _, _ osevent.PollEvents, _ osevent.Liveness) {
	s.fds.Add(1)
	if k == s.park {
		s.once.Do(func() {
			close(s.entered)
			<-s.release
			// Consume the readiness: no later (gated) delivery of this
			// level-triggered fd may stand in for the one that parked.
			var buf [8]byte
			unix.Read(fd, buf[:])
		})
	}
}

func (s *parkingSink) OccurredTimeout(osevent.ForLibxl, osevent.Liveness) { s.tos.Add(1) }

// Two CloseGate calls waiting for the same in-flight delivery both return
// when it does (the drain signal is passed on, not consumed by one).
func TestConcurrentCloseGate(t *testing.T) {
	l := newLoop(t, Options{})
	sink := newParkingSink(1)
	b := l.Attach(sink)
	efd := eventfd(t, 1)
	defer unix.Close(efd)
	if _, err := b.FDRegister(efd, pIn, 1); err != nil {
		t.Fatal(err)
	}
	<-sink.entered
	done := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() { done <- b.CloseGate() }()
	}
	waitBlocked(t, "(*Binding).CloseGate", 2)
	close(sink.release)
	for i := 0; i < 2; i++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("CloseGate %d of 2 hangs after the delivery it waited for returned", i+1)
		}
	}
	// A third, later one returns too.
	if err := b.CloseGate(); err != nil {
		t.Fatal(err)
	}
	b.Reap()
	b.Detach()
}

// A second Close, concurrent with the first, returns only once the
// dispatcher has exited and the loop's fds are closed.
func TestConcurrentLoopClose(t *testing.T) {
	check := leakCheck(t)
	l, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	sink := newParkingSink(1)
	b := l.Attach(sink)
	efd := eventfd(t, 1)
	if _, err := b.FDRegister(efd, pIn, 1); err != nil {
		t.Fatal(err)
	}
	<-sink.entered
	b.Detach() // does not wait for the delivery: the dispatcher stays busy
	first := make(chan error, 1)
	go func() { first <- l.Close() }()
	waitFor(t, "the first Close to start", 5*time.Second, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.closed
	})
	type result struct {
		err        error
		dispatcher bool // the dispatcher had exited when Close returned
	}
	second := make(chan result, 1)
	go func() {
		err := l.Close()
		exited := false
		select {
		case <-l.done:
			exited = true
		default:
		}
		second <- result{err, exited}
	}()
	var r result
	select {
	case r = <-second:
		t.Errorf("the second Close returned (%v) while the dispatcher was still in a Sink", r.err)
		close(sink.release)
	case <-time.After(50 * time.Millisecond):
		close(sink.release)
		r = <-second
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if r.err != nil || !r.dispatcher {
		t.Errorf("second Close: %v, dispatcher exited: %v", r.err, r.dispatcher)
	}
	if err := l.Close(); err != nil {
		t.Errorf("third Close: %v", err)
	}
	unix.Close(efd)
	check()
}

// A panic in a Sink or in the trace function is recovered on the
// goroutine that made the call, counted (Stats.CallbackPanics) and
// reported (Options.OnCallbackPanic, else the standard log) as an error
// matching ErrCallbackPanic. The loop stays alive: later deliveries are
// made, a panicking timeout counts as delivered, and CloseGate is not
// left waiting for the delivery that panicked.
func TestCallbackPanicIsRecovered(t *testing.T) {
	var mu sync.Mutex
	var reported []error
	var tracePanics atomic.Bool
	var sinkPanicTraces atomic.Int64
	l := newLoop(t, Options{
		OnCallbackPanic: func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() },
		Trace: func(ev TraceEvent) {
			if ev.Op == OpSinkPanic && errors.Is(ev.Err, ErrCallbackPanic) && strings.Contains(ev.String(), "panicked") {
				sinkPanicTraces.Add(1)
			}
			if tracePanics.Load() && ev.Op == OpTimeoutRegister {
				panic("trace boom")
			}
		},
	})
	var panicking atomic.Bool
	panicking.Store(true)
	var fdCalls, toCalls atomic.Int64
	b := l.Attach(sinkFunc{
		fd: func(osevent.ForLibxl, int, osevent.PollEvents, osevent.PollEvents, osevent.Liveness) {
			fdCalls.Add(1)
			if panicking.Load() {
				panic("sink boom (fd)")
			}
		},
		to: func(osevent.ForLibxl, osevent.Liveness) {
			toCalls.Add(1)
			if panicking.Load() {
				panic(errors.New("sink boom (timeout)"))
			}
		},
	})
	efd := eventfd(t, 1)
	fid, err := b.FDRegister(efd, pIn, 1)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "repeated panicking fd deliveries", 5*time.Second, func() bool { return fdCalls.Load() >= 3 })
	if _, err := b.TimeoutRegister(time.Now(), 2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the panicking timeout", 5*time.Second, func() bool { return toCalls.Load() == 1 })
	b.FDDeregister(efd, fid)
	unix.Close(efd)
	tracePanics.Store(true)
	id, err := b.TimeoutRegister(time.Now().Add(time.Hour), 3)
	if err != nil || id == 0 {
		t.Fatalf("a hook whose trace panics: %v", err)
	}
	tracePanics.Store(false)
	panicking.Store(false)
	if err := b.TimeoutModify(id, osevent.FireNow); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a delivery after the panics", 5*time.Second, func() bool { return toCalls.Load() == 2 })
	s := b.Stats()
	if s.CallbackPanics < 4 || s.Timeouts != 0 || s.TimeoutDeliveries != 2 {
		t.Errorf("binding stats %+v: want >= 4 panics, the panicking timeout delivered and forgotten", s)
	}
	if n := sinkPanicTraces.Load(); n != int64(s.CallbackPanics) {
		t.Errorf("%d Sink panics traced as OpSinkPanic, %d counted", n, s.CallbackPanics)
	}
	if ls := l.Stats(); ls.CallbackPanics != s.CallbackPanics+1 {
		t.Errorf("loop counts %d panics, binding %d, plus 1 in the trace", ls.CallbackPanics, s.CallbackPanics)
	}
	gate := make(chan error, 1)
	go func() { gate <- b.CloseGate() }()
	select {
	case err := <-gate:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("CloseGate hangs: a panicking delivery never left")
	}
	b.Reap()
	b.Detach()
	mu.Lock()
	if len(reported) < 5 {
		t.Errorf("%d panics reported", len(reported))
	}
	for _, err := range reported {
		if !errors.Is(err, ErrCallbackPanic) || !strings.Contains(err.Error(), "boom") {
			t.Errorf("reported %v", err)
		}
	}
	mu.Unlock()

	// Without OnCallbackPanic the error goes to the standard log.
	var buf bytes.Buffer
	log.SetOutput(&buf)
	defer log.SetOutput(os.Stderr)
	l2 := newLoop(t, Options{})
	b2 := l2.Attach(sinkFunc{to: func(osevent.ForLibxl, osevent.Liveness) { panic("logged boom") }})
	if _, err := b2.TimeoutRegister(time.Now(), 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the logged panic", 5*time.Second, func() bool { return l2.Stats().CallbackPanics == 1 })
	if err := b2.CloseGate(); err != nil {
		t.Fatal(err)
	}
	b2.Reap()
	b2.Detach()
	if !strings.Contains(buf.String(), "callback panicked") || !strings.Contains(buf.String(), "logged boom") {
		t.Errorf("log output %q", buf.String())
	}
}

// waitDispatcherAsleep returns once the dispatcher has made a round after
// r0 and is blocked in epoll wait again: its sleep was computed from the
// registry as it was after the round started.
func waitDispatcherAsleep(t *testing.T, l *Loop, r0 uint64) {
	t.Helper()
	waitFor(t, "a dispatch round", 5*time.Second, func() bool { return l.Stats().Rounds > r0 })
	buf := make([]byte, 1<<20)
	waitFor(t, "the dispatcher asleep in epoll wait", 10*time.Second, func() bool {
		k := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:k]), "\n\n") {
			if strings.Contains(g, "(*Loop).run") {
				return strings.Contains(g, "(*Poller).wait") && strings.Contains(g, "[syscall")
			}
		}
		return false
	})
}

// Fire-now on an armed timeout while the dispatcher sleeps towards a
// deadline an hour away must wake it.
func TestFireNowWakesSleepingDispatcher(t *testing.T) {
	l := newLoop(t, Options{})
	c := newFake(t, l, nil)
	r0 := l.Stats().Rounds
	to := c.regTO(time.Now().Add(time.Hour))
	waitDispatcherAsleep(t, l, r0)
	c.fireNow(to)
	deadline := time.Now().Add(3 * time.Second)
	for c.toDeliveries.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if c.toDeliveries.Load() != 1 {
		t.Errorf("fire-now of an armed timeout did not wake the sleeping dispatcher")
		c.b.TimeoutModify(to.id, time.Now().Add(-time.Second).Round(0)) // let teardown proceed
	}
	c.teardown()
	c.viol.check(t)
}

// Stale readiness of a closed and reused fd number never reaches the new
// registration. Here the old file lives on (a dup holds it), so epoll
// keeps its entry, keyed by (file, fd number), after the number was
// closed: it cannot be deleted any more and keeps reporting the old
// file's readiness under the reused number. Only the per-entry
// generation (epoll's data.Pad) tells it from the new file's events.
func TestStaleEpollEntryOfReusedNumber(t *testing.T) {
	l := newLoop(t, Options{})
	c := newFake(t, l, nil)
	oldR, oldW := pipe(t)
	defer unix.Close(oldW)
	unix.Write(oldW, []byte("old")) // the old file is readable for good
	again := c.regFD(oldR, pIn)
	waitFor(t, "the old file's delivery", 5*time.Second, func() bool { return c.fdDeliveries.Load() > 0 })
	// Lose the number without deregistering, keeping the file open.
	keep, err := unix.Dup(oldR)
	if err != nil {
		t.Fatal(err)
	}
	var newW int
	var fresh *fakeFD
	c.with(func() {
		// All of this with the ctx lock held: the old registration's
		// deliveries wait, as in libxl.
		unix.Close(oldR)
		nr, nw := pipe(t) // empty: never readable
		newW = nw
		if nr != oldR {
			if err := unix.Dup3(nr, oldR, unix.O_CLOEXEC); err != nil {
				t.Fatal(err)
			}
			unix.Close(nr)
		}
		c.deregFDLocked(again) // epoll_ctl DEL of the number finds the new file: ENOENT
		var err error
		if fresh, err = c.regFDLocked(oldR, pIn); err != nil {
			t.Fatal(err)
		}
	})
	defer unix.Close(newW)
	waitFor(t, "stale epoll events", 5*time.Second, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return l.Stats().StaleEpoll > 10 || fresh.deliveries > 0
	})
	c.with(func() {
		if fresh.deliveries != 0 {
			t.Errorf("the old file's readiness reached the new registration %d times", fresh.deliveries)
		}
	})
	unix.Close(keep) // the old file is gone now, and its epoll entry with it
	c.deregFD(fresh)
	unix.Close(oldR)
	c.teardown()
	c.viol.check(t)
}

// runtime.Goexit in a Sink (t.FailNow does it) cannot be recovered: the
// dispatcher goroutine ends. The admission count is kept right (CloseGate
// does not hang), the exit is reported as ErrCallbackPanic, and a new
// dispatcher makes the rest of the batch and carries on.
func TestGoexitInSinkRestartsDispatcher(t *testing.T) {
	var reported atomic.Int64
	l := newLoop(t, Options{OnCallbackPanic: func(err error) {
		if errors.Is(err, ErrCallbackPanic) && strings.Contains(err.Error(), "Goexit") {
			reported.Add(1)
		}
	}})
	sink := newParkingSink(1)
	var order []osevent.ForLibxl
	var mu sync.Mutex
	var exited atomic.Bool
	b := l.Attach(sinkFunc{fd: func(k osevent.ForLibxl, fd int, e, r osevent.PollEvents, live osevent.Liveness) {
		if k == 5 {
			var buf [8]byte
			unix.Read(fd, buf[:]) // once
			runtime.Goexit()
		}
		sink.OccurredFD(k, fd, e, r, live)
	}, to: func(k osevent.ForLibxl, _ osevent.Liveness) {
		mu.Lock()
		order = append(order, k)
		mu.Unlock()
		// The first of the batch exits. (Which one that is may vary:
		// equal wall-clock deadlines convert to monotonic ones a few
		// ns apart.)
		if k != 4 && exited.CompareAndSwap(false, true) {
			runtime.Goexit()
		}
	}})
	efd := eventfd(t, 1)
	fid, err := b.FDRegister(efd, pIn, 1)
	if err != nil {
		t.Fatal(err)
	}
	<-sink.entered
	due := time.Now().Add(-time.Second).Round(0)
	for k := osevent.ForLibxl(2); k <= 3; k++ { // one batch: one exits, the other follows
		if _, err := b.TimeoutRegister(due, k); err != nil {
			t.Fatal(err)
		}
	}
	close(sink.release)
	waitFor(t, "the timeout after the Goexit", 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(order) == 2 && reported.Load() > 0
	})
	if n := reported.Load(); n != 1 {
		t.Errorf("%d Goexits reported", n)
	}
	if _, err := b.TimeoutRegister(time.Now(), 4); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a later timeout", 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(order) == 3
	})
	if s := b.Stats(); s.Timeouts != 0 {
		t.Errorf("stats %+v: the timeout whose Sink exited is not forgotten", s)
	}
	// The same from an fd delivery.
	efd2 := eventfd(t, 1)
	fid2, err := b.FDRegister(efd2, pIn, 5)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second Goexit", 5*time.Second, func() bool { return reported.Load() == 2 })
	if _, err := b.TimeoutRegister(time.Now(), 6); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a timeout after the second Goexit", 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(order) == 4
	})
	b.FDDeregister(efd2, fid2)
	unix.Close(efd2)
	b.FDDeregister(efd, fid)
	unix.Close(efd)
	gate := make(chan error, 1)
	go func() { gate <- b.CloseGate() }()
	select {
	case err := <-gate:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("CloseGate hangs after a Goexit in a Sink")
	}
	b.Reap()
	b.Detach()
}

// libxl 4.2's libxl_ctx_free deregisters its xenstore watch fd after the
// application's close reaped it (real 4.2.1, tests/xen42/traces): the
// trace says ErrAfterReap, not ErrUnknownReg, and it counts as a late
// hook; a deregister of an unknown ID before any reap stays unknown.
func TestDeregisterAfterReapIsTracedAsLate(t *testing.T) {
	var mu sync.Mutex
	var errs []error
	l := newLoop(t, Options{Trace: func(ev TraceEvent) {
		if ev.Op == OpFDDeregister || ev.Op == OpTimeoutDeregister {
			mu.Lock()
			errs = append(errs, ev.Err)
			mu.Unlock()
		}
	}})
	b := l.Attach(silentSink{})
	efd := eventfd(t, 0)
	defer unix.Close(efd)
	id, err := b.FDRegister(efd, pIn, 1)
	if err != nil {
		t.Fatal(err)
	}
	b.FDDeregister(efd, id+100) // unknown, before any reap
	if _, err := b.FDRegister(efd, pIn, 2); err != nil {
		t.Fatal(err)
	}
	b.Reap()
	b.FDDeregister(efd, id)
	b.TimeoutDeregister(id + 200)
	b.Detach()
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 3 || !errors.Is(errs[0], ErrUnknownReg) || !errors.Is(errs[1], ErrAfterReap) || !errors.Is(errs[2], ErrAfterReap) {
		t.Fatalf("deregister trace errors %v, want [unknown, after reap, after reap]", errs)
	}
	if s := l.Stats(); s.LateHooks != 2 || s.UnknownIDs != 1 {
		t.Fatalf("late hooks %d, unknown IDs %d; want 2 and 1", s.LateHooks, s.UnknownIDs)
	}
}
