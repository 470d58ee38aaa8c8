package eventloop

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxl/goxl/internal/osevent"
)

// stressCtx is a fakeCtx with a set of eventfd slots that worker
// goroutines (libxl API callers) and deliveries (re-entrant callbacks)
// register, modify, deregister and recycle. All of its state is guarded
// by the fake's ctx lock.
type stressCtx struct {
	*fakeCtx
	mode42 bool // uses timeout_deregister
	slots  []*stressSlot
	regs   []*fakeFD // live registrations
	tos    []*fakeTO // unfired, not deregistered
	rng    *rand.Rand
}

type stressSlot struct {
	fd   int
	regs []*fakeFD
}

var stressEvents = []osevent.PollEvents{pIn, pOut, pIn | pOut, 0, pPri, pOut}

func newStressCtx(tb testing.TB, l *Loop, viol *violations, nslots int, mode42 bool, seed uint64) *stressCtx {
	s := &stressCtx{fakeCtx: newFake(tb, l, viol), mode42: mode42, rng: rand.New(rand.NewPCG(seed, 1))}
	for i := 0; i < nslots; i++ {
		s.slots = append(s.slots, &stressSlot{fd: eventfd(tb, uint(i%2))})
	}
	s.onFD = s.fdCallback
	s.onTimeout = s.timeoutCallback
	return s
}

func (s *stressCtx) regLocked(sl *stressSlot, ev osevent.PollEvents) {
	f, err := s.regFDLocked(sl.fd, ev)
	if err != nil {
		s.viol.add("register: %v", err)
		return
	}
	f.any = sl
	sl.regs = append(sl.regs, f)
	s.regs = append(s.regs, f)
}

func removeFD(list []*fakeFD, f *fakeFD) []*fakeFD {
	for i, x := range list {
		if x == f {
			list[i] = list[len(list)-1]
			return list[:len(list)-1]
		}
	}
	return list
}

func removeTO(list []*fakeTO, t *fakeTO) []*fakeTO {
	for i, x := range list {
		if x == t {
			list[i] = list[len(list)-1]
			return list[:len(list)-1]
		}
	}
	return list
}

func (s *stressCtx) deregLocked(f *fakeFD) {
	s.deregFDLocked(f)
	sl := f.any.(*stressSlot)
	sl.regs = removeFD(sl.regs, f)
	s.regs = removeFD(s.regs, f)
}

func (s *stressCtx) newTOLocked() {
	if len(s.tos) > 200 {
		return
	}
	d := time.Duration(s.rng.IntN(3000)-200) * time.Microsecond
	t, err := s.regTOLocked(time.Now().Add(d))
	if err != nil {
		s.viol.add("timeout register: %v", err)
		return
	}
	s.tos = append(s.tos, t)
}

// op is one random libxl-like action, ctx lock held.
func (s *stressCtx) opLocked() {
	r := s.rng
	switch k := r.IntN(100); {
	case k < 25:
		if len(s.regs) < 4*len(s.slots) {
			s.regLocked(s.slots[r.IntN(len(s.slots))], stressEvents[r.IntN(len(stressEvents))])
		}
	case k < 40:
		if len(s.regs) > 0 {
			f := s.regs[r.IntN(len(s.regs))]
			if err := s.modFDLocked(f, stressEvents[r.IntN(len(stressEvents))]); err != nil {
				s.viol.add("modify: %v", err)
			}
		}
	case k < 55:
		if len(s.regs) > 0 {
			s.deregLocked(s.regs[r.IntN(len(s.regs))])
		}
	case k < 60:
		// Recycle an fd: deregister everything on it, close it, open a
		// new one (which usually gets the same number).
		sl := s.slots[r.IntN(len(s.slots))]
		for len(sl.regs) > 0 {
			s.deregLocked(sl.regs[0])
		}
		unix.Close(sl.fd)
		fd, err := unix.Eventfd(uint(r.IntN(2)), unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
		if err != nil {
			s.viol.add("eventfd: %v", err)
			return
		}
		sl.fd = fd
	case k < 65:
		var one = [8]byte{1}
		unix.Write(s.slots[r.IntN(len(s.slots))].fd, one[:])
	case k < 85:
		s.newTOLocked()
	case k < 95:
		if len(s.tos) > 0 {
			t := s.tos[r.IntN(len(s.tos))]
			s.fireNowLocked(t)
		}
	default:
		if s.mode42 && len(s.tos) > 0 {
			t := s.tos[r.IntN(len(s.tos))]
			s.deregTOLocked(t)
			s.tos = removeTO(s.tos, t)
		}
	}
}

func (s *stressCtx) fdCallback(_ *fakeCtx, f *fakeFD, rev osevent.PollEvents) {
	r := s.rng
	sl := f.any.(*stressSlot)
	switch k := r.IntN(200); {
	case k < 4:
		s.deregLocked(f)
	case k < 6:
		// Deregister this one and register anew on the same fd.
		s.deregLocked(f)
		s.regLocked(sl, stressEvents[r.IntN(len(stressEvents))])
	case k < 8:
		if len(sl.regs) > 0 {
			g := sl.regs[r.IntN(len(sl.regs))]
			if err := s.modFDLocked(g, stressEvents[r.IntN(len(stressEvents))]); err != nil {
				s.viol.add("modify: %v", err)
			}
		}
	case k < 9:
		s.opLocked()
	case k < 20:
		if rev&pIn != 0 {
			var buf [8]byte
			unix.Read(sl.fd, buf[:])
		}
	}
}

func (s *stressCtx) timeoutCallback(_ *fakeCtx, t *fakeTO) {
	s.tos = removeTO(s.tos, t)
	if s.rng.IntN(3) == 0 {
		s.newTOLocked()
	}
	if s.rng.IntN(4) == 0 && len(s.tos) > 0 {
		s.fireNowLocked(s.tos[s.rng.IntN(len(s.tos))])
	}
	if s.mode42 && s.rng.IntN(4) == 0 && len(s.tos) > 0 {
		x := s.tos[s.rng.IntN(len(s.tos))]
		s.deregTOLocked(x)
		s.tos = removeTO(s.tos, x)
	}
}

// finish waits for the pending timeouts to fire, checks exactly-once, and
// tears the ctx down.
func (s *stressCtx) finish(tb testing.TB) {
	tb.Helper()
	s.with(func() {
		for _, f := range append([]*fakeFD(nil), s.regs...) {
			s.deregLocked(f)
		}
	})
	waitFor(tb, "pending timeouts", 10*time.Second, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.tos) == 0
	})
	s.with(func() {
		for _, t := range s.fakeCtx.tos {
			switch {
			case t.deregistered && t.fired != 0:
				s.viol.add("deregistered timeout %d fired", t.id)
			case !t.deregistered && t.fired != 1:
				s.viol.add("timeout %d fired %d times", t.id, t.fired)
			}
		}
	})
	fds, tos := s.teardown()
	if fds != 0 || tos != 0 {
		tb.Errorf("reaped %d fds and %d timeouts, want none left", fds, tos)
	}
	for _, sl := range s.slots {
		unix.Close(sl.fd)
	}
}

func (s *stressCtx) deliveries() int64 { return s.fdDeliveries.Load() + s.toDeliveries.Load() }

// TestStress: many goroutines register, modify and deregister fds and
// timeouts on several ctxs while deliveries fly and callbacks do the same
// re-entrantly; at least 1,000,000 deliveries (100,000 with -short), with
// no contract violation.
func TestStress(t *testing.T) {
	target := int64(1_000_000)
	if testing.Short() {
		target = 100_000
	}
	l := newLoop(t, Options{})
	viol := &violations{}
	const nctx, workers = 6, 1
	var ctxs []*stressCtx
	for i := 0; i < nctx; i++ {
		ctxs = append(ctxs, newStressCtx(t, l, viol, 24, i%2 == 1, uint64(i)))
	}
	total := func() int64 {
		var n int64
		for _, c := range ctxs {
			n += c.deliveries()
		}
		return n
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ops atomic.Int64
	for _, c := range ctxs {
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					// An API caller: a few hook calls, then a pause
					// (libxl's callers do not hold the ctx lock
					// continuously, and neither may we, or the
					// dispatcher starves on it).
					c.with(func() {
						for i := 0; i < 4; i++ {
							c.opLocked()
						}
					})
					ops.Add(4)
					time.Sleep(time.Millisecond)
				}
			}()
		}
	}
	start := time.Now()
	deadline := start.Add(stressMax)
	for total() < target && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	for _, c := range ctxs {
		c.finish(t)
	}
	n := total()
	s := l.Stats()
	t.Logf("%d deliveries in %v (%d hook ops from workers), stats %+v", n, time.Since(start), ops.Load(), s)
	if n < target {
		t.Errorf("only %d deliveries", n)
	}
	if s.TimeoutDeliveries == 0 || s.FireNow == 0 || s.StaleDropped == 0 || s.UnknownIDs != 0 || s.HookErrors != 0 {
		t.Errorf("unexpected stats %+v", s)
	}
	viol.check(t)
}

// TestBindingChurn: 1,000 bindings attached, used and torn down while a
// long-lived binding keeps receiving events; nothing reaches a binding
// after its gate closed, and the long-lived one is unaffected.
func TestBindingChurn(t *testing.T) {
	nbind := 1000
	if testing.Short() {
		nbind = 200
	}
	l := newLoop(t, Options{})
	viol := &violations{}
	bg := newStressCtx(t, l, viol, 8, false, 99)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			bg.with(bg.opLocked)
			time.Sleep(100 * time.Microsecond)
		}
	}()
	const par = 4
	var churned, reapedTOs atomic.Int64
	var cwg sync.WaitGroup
	for g := 0; g < par; g++ {
		cwg.Add(1)
		go func(g int) {
			defer cwg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for i := g; i < nbind; i += par {
				c := newFake(t, l, viol)
				efds := []int{eventfd(t, 1), eventfd(t, 0)}
				var long *fakeTO
				c.with(func() {
					for _, fd := range efds {
						if _, err := c.regFDLocked(fd, pIn|pOut); err != nil {
							viol.add("register: %v", err)
						}
					}
					c.regTOLocked(time.Now().Add(time.Duration(rng.IntN(500)) * time.Microsecond))
					long, _ = c.regTOLocked(time.Now().Add(time.Hour))
					if rng.IntN(2) == 0 {
						c.fireNowLocked(long) // may or may not fire before teardown
					}
				})
				waitFor(t, "a delivery", 10*time.Second, func() bool { return c.fdDeliveries.Load() > 0 })
				if rng.IntN(2) == 0 {
					time.Sleep(time.Duration(rng.IntN(300)) * time.Microsecond)
				}
				_, tos := c.teardown()
				reapedTOs.Add(int64(tos))
				c.with(func() {
					if long.fired > 1 || (!long.fireNow && long.fired != 0) {
						viol.add("hour-long timeout fired %d times (fireNow=%v)", long.fired, long.fireNow)
					}
				})
				for _, fd := range efds {
					unix.Close(fd)
				}
				churned.Add(1)
			}
		}(g)
	}
	cwg.Wait()
	bgBefore := bg.deliveries()
	waitFor(t, "background deliveries", 10*time.Second, func() bool { return bg.deliveries() > bgBefore+100 })
	close(stop)
	wg.Wait()
	bg.finish(t)
	s := l.Stats()
	t.Logf("%d bindings churned, %d timeouts reaped, stats %+v", churned.Load(), reapedTOs.Load(), s)
	if churned.Load() != int64(nbind) || reapedTOs.Load() == 0 {
		t.Errorf("churned %d, reaped timeouts %d", churned.Load(), reapedTOs.Load())
	}
	viol.check(t)
}

// TestConcurrentFireNow: timeouts due now are fire-now'd from other
// goroutines at the same moment the dispatcher fires them; each is
// delivered exactly once.
func TestConcurrentFireNow(t *testing.T) {
	l := newLoop(t, Options{})
	c := newFake(t, l, nil)
	const n = 3000
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/4; i++ {
				var to *fakeTO
				c.with(func() { to, _ = c.regTOLocked(time.Now().Add(time.Duration(i%50) * time.Microsecond)) })
				if i%3 != 0 {
					runtime.Gosched()
				}
				c.fireNow(to)
			}
		}()
	}
	wg.Wait()
	waitFor(t, "all timeouts", 10*time.Second, func() bool { return c.toDeliveries.Load() == n })
	time.Sleep(10 * time.Millisecond)
	c.with(func() {
		for _, to := range c.tos {
			if to.fired != 1 {
				t.Errorf("timeout %d fired %d times", to.id, to.fired)
			}
		}
	})
	if s := l.Stats(); s.TimeoutDeliveries != n || s.Timeouts != 0 {
		t.Errorf("stats %+v", s)
	}
	c.teardown()
	c.viol.check(t)
}

var stressMax = 90 * time.Second
