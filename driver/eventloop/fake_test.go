package eventloop

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxl/goxl/internal/osevent"
)

// fakeCtx imitates one libxl ctx on top of a Binding: a ctx lock held
// around every hook call and every occurred_* call, a table of its own fd
// and timeout records keyed by the for_libxl cookie, callbacks that may
// call hooks re-entrantly (with the lock held, as libxl does), and
// contract checking.
type fakeCtx struct {
	tb     testing.TB
	b      *Binding
	mu     sync.Mutex // libxl's ctx lock
	fds    map[osevent.ForLibxl]*fakeFD
	tos    map[osevent.ForLibxl]*fakeTO
	closed atomic.Bool // set once CloseGate returned
	viol   *violations

	// Callbacks, run with mu held; may call the *Locked methods.
	onFD      func(c *fakeCtx, f *fakeFD, revents osevent.PollEvents)
	onTimeout func(c *fakeCtx, t *fakeTO)

	fdDeliveries atomic.Int64
	toDeliveries atomic.Int64
	staleSeen    atomic.Int64 // deliveries that StillLive flagged, as it should
}

type fakeFD struct {
	cookie       osevent.ForLibxl
	id           osevent.RegID
	fd           int
	events       osevent.PollEvents
	deregistered bool
	deliveries   int
	lastRevents  osevent.PollEvents
	any          any // test data
}

type fakeTO struct {
	cookie       osevent.ForLibxl
	id           osevent.RegID
	deadline     time.Time
	fireNow      bool
	rearmed      bool
	deregistered bool // 4.2 timeout_deregister
	fired        int
	firedAt      time.Time
	any          any
}

var cookieSeq atomic.Uint64

// earlyTolerance absorbs the skew inside one time.Now() reading (wall and
// monotonic clocks are read one after the other, and a thread can be
// preempted in between): libxl deadlines are wall-clock, the loop's are
// monotonic.
const earlyTolerance = 500 * time.Microsecond

type violations struct {
	mu   sync.Mutex
	n    int
	msgs []string
}

func (v *violations) add(format string, args ...any) {
	v.mu.Lock()
	v.n++
	if len(v.msgs) < 20 {
		v.msgs = append(v.msgs, fmt.Sprintf(format, args...))
	}
	v.mu.Unlock()
}

func (v *violations) check(tb testing.TB) {
	tb.Helper()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.n != 0 {
		tb.Errorf("%d contract violations, first: %s", v.n, strings.Join(v.msgs, "; "))
	}
}

func newFake(tb testing.TB, l *Loop, viol *violations) *fakeCtx {
	if viol == nil {
		viol = &violations{}
	}
	c := &fakeCtx{tb: tb, viol: viol,
		fds: make(map[osevent.ForLibxl]*fakeFD), tos: make(map[osevent.ForLibxl]*fakeTO)}
	c.b = l.Attach(nil)
	c.b.SetSink(c)
	return c
}

// OccurredFD implements osevent.Sink like libxl_osevent_occurred_fd.
func (c *fakeCtx) OccurredFD(cookie osevent.ForLibxl, fd int, events, revents osevent.PollEvents, live osevent.Liveness) {
	if c.closed.Load() {
		c.viol.add("occurred_fd after CloseGate returned (cookie %d)", cookie)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.fds[cookie]
	switch {
	case f == nil:
		c.viol.add("occurred_fd for unknown cookie %d", cookie)
		return
	case f.deregistered:
		if live.StillLive() {
			c.viol.add("occurred_fd for deregistered reg %d, StillLive true", f.id)
		}
		c.staleSeen.Add(1)
		return
	case !live.StillLive():
		c.viol.add("occurred_fd for live reg %d, StillLive false", f.id)
		return
	case f.fd != fd:
		c.viol.add("occurred_fd reg %d: fd %d, registered %d", f.id, fd, f.fd)
	case revents == 0 || revents&^(events|osevent.PollErr|osevent.PollHup) != 0:
		c.viol.add("occurred_fd reg %d: revents %v not within events %v", f.id, revents, events)
	}
	f.deliveries++
	f.lastRevents = revents
	c.fdDeliveries.Add(1)
	if fn, ok := f.any.(func()); ok {
		fn()
		return
	}
	if c.onFD != nil {
		c.onFD(c, f, revents)
	}
}

// OccurredTimeout implements osevent.Sink like libxl_osevent_occurred_timeout.
func (c *fakeCtx) OccurredTimeout(cookie osevent.ForLibxl, live osevent.Liveness) {
	if c.closed.Load() {
		c.viol.add("occurred_timeout after CloseGate returned (cookie %d)", cookie)
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.tos[cookie]
	switch {
	case t == nil:
		c.viol.add("occurred_timeout for unknown cookie %d", cookie)
		return
	case t.deregistered:
		if live.StillLive() {
			c.viol.add("occurred_timeout for deregistered reg %d, StillLive true", t.id)
		}
		c.staleSeen.Add(1)
		return
	case !live.StillLive():
		if !t.rearmed {
			c.viol.add("occurred_timeout for live reg %d, StillLive false", t.id)
		}
		c.staleSeen.Add(1)
		return
	case t.fired != 0:
		c.viol.add("timeout reg %d fired twice", t.id)
	case !t.fireNow && now.Round(0).Add(earlyTolerance).Before(t.deadline):
		c.viol.add("timeout reg %d fired %v early", t.id, t.deadline.Sub(now.Round(0)))
	}
	t.fired++
	t.firedAt = now
	c.toDeliveries.Add(1)
	if c.onTimeout != nil {
		c.onTimeout(c, t)
	}
}

// --- hook calls, with the ctx lock held (as inside libxl) ---

func (c *fakeCtx) regFDLocked(fd int, events osevent.PollEvents) (*fakeFD, error) {
	f := &fakeFD{cookie: osevent.ForLibxl(cookieSeq.Add(1)), fd: fd, events: events}
	id, err := c.b.FDRegister(fd, events, f.cookie)
	if err != nil {
		return nil, err
	}
	f.id = id
	c.fds[f.cookie] = f
	return f, nil
}

func (c *fakeCtx) modFDLocked(f *fakeFD, events osevent.PollEvents) error {
	if err := c.b.FDModify(f.fd, f.id, events); err != nil {
		return err
	}
	f.events = events
	return nil
}

func (c *fakeCtx) deregFDLocked(f *fakeFD) {
	if f.deregistered {
		c.viol.add("test bug: double deregister of %d", f.id)
	}
	c.b.FDDeregister(f.fd, f.id)
	f.deregistered = true
}

func (c *fakeCtx) regTOLocked(abs time.Time) (*fakeTO, error) {
	// Like the bridge: a wall-clock time without a monotonic reading.
	abs = abs.Round(0)
	t := &fakeTO{cookie: osevent.ForLibxl(cookieSeq.Add(1)), deadline: abs}
	id, err := c.b.TimeoutRegister(abs, t.cookie)
	if err != nil {
		return nil, err
	}
	t.id = id
	c.tos[t.cookie] = t
	return t, nil
}

// fireNowLocked is 4.17's timeout_modify({0,0}); libxl only does it for a
// timeout that has not occurred yet.
func (c *fakeCtx) fireNowLocked(t *fakeTO) {
	if t.fired != 0 || t.deregistered {
		return
	}
	t.fireNow = true
	_ = c.b.TimeoutModify(t.id, osevent.FireNow)
}

func (c *fakeCtx) deregTOLocked(t *fakeTO) {
	if t.fired != 0 {
		return // libxl considers it deregistered already
	}
	c.b.TimeoutDeregister(t.id)
	t.deregistered = true
}

// --- the same from an "API call" on another goroutine ---

func (c *fakeCtx) regFD(fd int, events osevent.PollEvents) *fakeFD {
	c.tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	f, err := c.regFDLocked(fd, events)
	if err != nil {
		c.tb.Fatalf("fd_register(%d): %v", fd, err)
	}
	return f
}

func (c *fakeCtx) deregFD(f *fakeFD) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deregFDLocked(f)
}

func (c *fakeCtx) regTO(abs time.Time) *fakeTO {
	c.tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	t, err := c.regTOLocked(abs)
	if err != nil {
		c.tb.Fatalf("timeout_register: %v", err)
	}
	return t
}

func (c *fakeCtx) fireNow(t *fakeTO) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fireNowLocked(t)
}

func (c *fakeCtx) deregTO(t *fakeTO) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deregTOLocked(t)
}

// barrier returns once every delivery decided before it was called has
// finished: it registers a timeout due now and waits for it. (A batch
// collected after the registration contains it; batches are delivered in
// order, one at a time.)
func (c *fakeCtx) barrier() {
	c.tb.Helper()
	t := c.regTO(time.Now())
	waitFor(c.tb, "barrier timeout", 10*time.Second, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return t.fired == 1
	})
}

// with runs f with the ctx lock held.
func (c *fakeCtx) with(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f()
}

// teardown does what libxl.Ctx.Close does: close the gate, libxl_ctx_free
// (which deregisters the fds it still has), Reap, Detach.
func (c *fakeCtx) teardown() (fds, tos int) {
	c.tb.Helper()
	if err := c.b.CloseGate(); err != nil {
		c.tb.Fatalf("CloseGate: %v", err)
	}
	c.closed.Store(true)
	fds, tos = c.b.Reap()
	c.mu.Lock()
	for _, f := range c.fds {
		if !f.deregistered {
			c.deregFDLocked(f) // accepted no-op after Reap
		}
	}
	c.mu.Unlock()
	c.b.Detach()
	return fds, tos
}

// --- test plumbing ---

func countFDs(tb testing.TB) int {
	tb.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Fatal(err)
	}
	return len(ents)
}

// leakCheck records the open fds and goroutines; the returned function
// fails the test if either grew (goroutines get a few seconds to settle).
func leakCheck(tb testing.TB) func() {
	fds := countFDs(tb)
	gs := runtime.NumGoroutine()
	return func() {
		tb.Helper()
		if n := countFDs(tb); n != fds {
			tb.Errorf("fd leak: %d open before, %d after", fds, n)
		}
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > gs {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				buf = buf[:runtime.Stack(buf, true)]
				tb.Errorf("goroutine leak: %d before, %d after\n%s", gs, runtime.NumGoroutine(), buf)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// newLoop makes a loop that the test must leave empty: at cleanup it is
// closed and checked for leaks and an empty registry.
func newLoop(tb testing.TB, opts Options) *Loop {
	tb.Helper()
	check := leakCheck(tb)
	l, err := New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		s := l.Stats()
		if s.Bindings != 0 || s.FDRegs != 0 || s.Timeouts != 0 || s.AlwaysReadyFDs != 0 {
			tb.Errorf("registry not empty at the end: %+v", s)
		}
		l.mu.Lock()
		for fd, e := range l.fds {
			if e != nil {
				tb.Errorf("fd table still has an entry for fd %d", fd)
			}
		}
		if len(l.timers) != 0 {
			tb.Errorf("timer heap still has %d entries", len(l.timers))
		}
		l.mu.Unlock()
		if err := l.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
		check()
	})
	return l
}

func pipe(tb testing.TB) (r, w int) {
	tb.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		tb.Fatal(err)
	}
	return p[0], p[1]
}

func eventfd(tb testing.TB, initval uint) int {
	tb.Helper()
	fd, err := unix.Eventfd(initval, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		tb.Fatal(err)
	}
	return fd
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, d time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}

func sortDurations(d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
}
