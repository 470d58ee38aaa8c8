package eventloop

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxl/goxl/internal/osevent"
)

const (
	pIn  = osevent.PollIn
	pOut = osevent.PollOut
	pPri = osevent.PollPri
	pHup = osevent.PollHup
)

func TestFDDeliveryAndDeregister(t *testing.T) {
	l := newLoop(t, Options{})
	c := newFake(t, l, nil)
	r, w := pipe(t)
	defer unix.Close(r)
	defer unix.Close(w)
	f := c.regFD(r, pIn)
	time.Sleep(20 * time.Millisecond)
	if n := c.fdDeliveries.Load(); n != 0 {
		t.Fatalf("%d deliveries for an empty pipe", n)
	}
	unix.Write(w, []byte("x"))
	waitFor(t, "a delivery", 5*time.Second, func() bool { return c.fdDeliveries.Load() > 0 })
	c.with(func() {
		if f.lastRevents != pIn {
			t.Errorf("revents %v, want IN", f.lastRevents)
		}
	})
	c.deregFD(f)
	c.barrier()
	n := c.fdDeliveries.Load()
	time.Sleep(20 * time.Millisecond)
	if m := c.fdDeliveries.Load(); m != n {
		t.Fatalf("%d deliveries after deregister", m-n)
	}
	s := l.Stats()
	if s.FDRegs != 0 || s.FDDeliveries == 0 {
		t.Fatalf("stats %+v", s)
	}
	c.teardown()
	c.viol.check(t)
}

// Two registrations on one fd (libxl's bootloader pty): one epoll entry,
// readiness split back per registration.
func TestTwoRegistrationsOneFD(t *testing.T) {
	l := newLoop(t, Options{})
	c := newFake(t, l, nil)
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sp[0])
	defer unix.Close(sp[1])
	var outSeen, inSeen atomic.Int64
	var fin, fout *fakeFD
	c.onFD = func(c *fakeCtx, f *fakeFD, rev osevent.PollEvents) {
		if f == fin && rev&pOut != 0 || f == fout && rev&pIn != 0 {
			c.viol.add("reg %d got %v", f.id, rev)
		}
		if f == fout {
			outSeen.Add(1)
		}
		if f == fin {
			inSeen.Add(1)
			var buf [16]byte
			unix.Read(f.fd, buf[:])
		}
	}
	c.with(func() {
		var err error
		if fin, err = c.regFDLocked(sp[0], pIn); err != nil {
			t.Fatal(err)
		}
		if fout, err = c.regFDLocked(sp[0], pOut); err != nil {
			t.Fatal(err)
		}
	})
	l.mu.Lock()
	e := l.fds[sp[0]]
	if e == nil || len(e.regs) != 2 || e.mask != unix.EPOLLIN|unix.EPOLLOUT {
		t.Errorf("want one merged entry with IN|OUT, got %+v", e)
	}
	l.mu.Unlock()
	waitFor(t, "OUT", 5*time.Second, func() bool { return outSeen.Load() > 0 })
	if inSeen.Load() != 0 {
		t.Fatal("IN delivered before any data")
	}
	unix.Write(sp[1], []byte("hello"))
	waitFor(t, "IN", 5*time.Second, func() bool { return inSeen.Load() > 0 })
	// Drop OUT: the mask shrinks, and the writable socket stops waking
	// the dispatcher.
	c.deregFD(fout)
	l.mu.Lock()
	if e.mask != unix.EPOLLIN {
		t.Errorf("mask after deregistering OUT: %#x", e.mask)
	}
	l.mu.Unlock()
	r0 := l.Stats().Rounds
	time.Sleep(30 * time.Millisecond)
	if r := l.Stats().Rounds - r0; r > 3 {
		t.Errorf("%d dispatch rounds while idle: the OUT bit is still polled", r)
	}
	c.teardown()
	c.viol.check(t)
}

// events==0 registrations work and generate nothing, even on a hung-up fd.
func TestEventsZero(t *testing.T) {
	l := newLoop(t, Options{})
	c := newFake(t, l, nil)
	r, w := pipe(t)
	defer unix.Close(r)
	unix.Write(w, []byte("x"))
	unix.Close(w) // r is readable and hung up
	f := c.regFD(r, 0)
	r0 := l.Stats().Rounds
	time.Sleep(30 * time.Millisecond)
	if n := c.fdDeliveries.Load(); n != 0 {
		t.Fatalf("%d deliveries with events==0", n)
	}
	if d := l.Stats().Rounds - r0; d > 2 {
		t.Fatalf("%d rounds: a HUP fd with events==0 spins the loop", d)
	}
	c.with(func() {
		if err := c.modFDLocked(f, pIn); err != nil {
			t.Fatal(err)
		}
	})
	waitFor(t, "IN|HUP", 5*time.Second, func() bool { return c.fdDeliveries.Load() > 0 })
	c.with(func() {
		if f.lastRevents&pIn == 0 || f.lastRevents&pHup == 0 {
			t.Errorf("revents %v, want IN|HUP", f.lastRevents)
		}
		if err := c.modFDLocked(f, 0); err != nil {
			t.Fatal(err)
		}
	})
	c.barrier() // one delivery may have been in flight
	n := c.fdDeliveries.Load()
	time.Sleep(20 * time.Millisecond)
	if m := c.fdDeliveries.Load(); m != n {
		t.Fatalf("%d deliveries after modify to 0", m-n)
	}
	c.teardown()
	c.viol.check(t)
}

// POLLPRI is delivered: TCP urgent data raises EPOLLPRI.
func TestPOLLPRI(t *testing.T) {
	l := newLoop(t, Options{})
	c := newFake(t, l, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cl, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	sv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sv.Close()
	sf, _ := sv.(*net.TCPConn).File()
	defer sf.Close()
	cf, _ := cl.(*net.TCPConn).File()
	defer cf.Close()
	var pri atomic.Int64
	c.onFD = func(c *fakeCtx, f *fakeFD, rev osevent.PollEvents) {
		if rev&pPri != 0 {
			pri.Add(1)
			c.deregFDLocked(f) // level-triggered PRI would repeat
		}
	}
	c.regFD(int(sf.Fd()), pPri)
	if err := unix.Sendto(int(cf.Fd()), []byte("!"), unix.MSG_OOB, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "POLLPRI", 5*time.Second, func() bool { return pri.Load() > 0 })
	c.teardown()
	c.viol.check(t)
}

// A regular file (the save image) is refused by epoll and treated as
// always ready, without spinning forever.
func TestRegularFileAlwaysReady(t *testing.T) {
	l := newLoop(t, Options{})
	c := newFake(t, l, nil)
	file, err := os.Create(filepath.Join(t.TempDir(), "save-image"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	fd := int(file.Fd())
	f := c.regFD(fd, pIn|pOut)
	if s := l.Stats(); s.AlwaysReadyFDs != 1 || s.FDRegs != 1 {
		t.Fatalf("stats %+v", s)
	}
	waitFor(t, "10 deliveries", 5*time.Second, func() bool { return c.fdDeliveries.Load() >= 10 })
	c.with(func() {
		if f.lastRevents != pIn|pOut {
			t.Errorf("revents %v", f.lastRevents)
		}
	})
	// Once nothing else happens for many rounds, the loop backs off.
	waitFor(t, "back-off", 10*time.Second, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.arRounds >= alwaysReadySpin
	})
	r0 := l.Stats().Rounds
	time.Sleep(100 * time.Millisecond)
	if d := l.Stats().Rounds - r0; d > 150 {
		t.Errorf("%d rounds in 100ms with only an always-ready fd: busy spinning", d)
	}
	// A timer still fires on time while backing off.
	start := time.Now()
	to := c.regTO(time.Now().Add(3 * time.Millisecond))
	waitFor(t, "timeout", 5*time.Second, func() bool { return c.toDeliveries.Load() == 1 })
	c.with(func() {
		if late := to.firedAt.Sub(start); late > 500*time.Millisecond {
			t.Errorf("timeout 3ms fired after %v", late)
		}
	})
	c.deregFD(f)
	c.barrier()
	n := c.fdDeliveries.Load()
	time.Sleep(20 * time.Millisecond)
	if m := c.fdDeliveries.Load(); m != n {
		t.Fatalf("%d deliveries after deregister", m-n)
	}
	if s := l.Stats(); s.AlwaysReadyFDs != 0 {
		t.Fatalf("stats %+v", s)
	}
	// events==0 on a regular file: nothing.
	f = c.regFD(fd, 0)
	time.Sleep(10 * time.Millisecond)
	if m := c.fdDeliveries.Load(); m != n {
		t.Fatalf("%d deliveries for events==0", m-n)
	}
	c.deregFD(f)
	c.teardown()
	c.viol.check(t)
}

// blocker returns a readable fd registration whose delivery blocks until
// release is closed: it holds the dispatcher so that a test can set up
// several ready fds for one batch.
func blocker(t *testing.T, c *fakeCtx) (entered <-chan struct{}, release chan struct{}, cleanup func()) {
	efd := eventfd(t, 1)
	ent := make(chan struct{})
	rel := make(chan struct{})
	var once sync.Once
	c.with(func() {
		f, err := c.regFDLocked(efd, pIn)
		if err != nil {
			t.Fatal(err)
		}
		f.any = func() {
			once.Do(func() {
				close(ent)
				c.mu.Unlock() // do not hold the ctx lock while parked
				<-rel
				c.mu.Lock()
			})
			if !f.deregistered {
				c.deregFDLocked(f)
			}
		}
	})
	return ent, rel, func() { unix.Close(efd) }
}

// test_fdderegrace: inside a delivery, deregister another ready fd, close
// it, reopen the same fd number and register it again; the stale
// readiness of the old fd must not reach the new registration.
func TestFDDeregRace(t *testing.T) {
	l := newLoop(t, Options{})
	c := newFake(t, l, nil)
	entered, release, cleanup := blocker(t, c)
	defer cleanup()
	<-entered // dispatcher parked

	// Two readable fds, ready in the same batch.
	x := eventfd(t, 1)
	a := eventfd(t, 1)
	defer unix.Close(x)
	var fx, fa, fnew *fakeFD
	var swapped bool
	var newPipeW int
	c.onFD = func(c *fakeCtx, f *fakeFD, rev osevent.PollEvents) {
		if f == fnew {
			c.viol.add("stale readiness reached the new registration on fd %d", f.fd)
		}
		if swapped || (f != fx && f != fa) {
			return
		}
		swapped = true
		other := fa
		if f == fa {
			other = fx
		}
		// Deregister the other one, close its fd, reuse its number.
		c.deregFDLocked(other)
		num := other.fd
		unix.Close(num)
		pr, pw := pipe(t) // empty: never readable
		if pr != num {
			if err := unix.Dup3(pr, num, unix.O_CLOEXEC); err != nil {
				t.Error(err)
			}
			unix.Close(pr)
		}
		newPipeW = pw
		var err error
		if fnew, err = c.regFDLocked(num, pIn); err != nil {
			t.Error(err)
		}
		// Stop the one delivered now from repeating.
		c.deregFDLocked(f)
	}
	c.with(func() {
		fx, _ = c.regFDLocked(x, pIn)
		fa, _ = c.regFDLocked(a, pIn)
	})
	close(release)
	waitFor(t, "the swap", 5*time.Second, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return swapped
	})
	time.Sleep(30 * time.Millisecond)
	c.with(func() {
		if fnew.deliveries != 0 {
			t.Errorf("new registration got %d deliveries", fnew.deliveries)
		}
	})
	if s := l.Stats(); s.StaleDropped == 0 {
		t.Errorf("expected the stale event to be dropped by the loop: %+v", s)
	}
	// The new registration does work.
	c.with(func() { fnew.any = func() { c.deregFDLocked(fnew) } })
	unix.Write(newPipeW, []byte("y"))
	waitFor(t, "new fd", 5*time.Second, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return fnew.deregistered
	})
	unix.Close(newPipeW)
	unix.Close(fnew.fd)
	c.teardown()
	c.viol.check(t)
}

// libxl closes an fd without deregistering it, reopens the number and
// registers it again: the loop must watch the new file (MOD → ENOENT → ADD).
func TestFDNumberReuseWithoutDeregister(t *testing.T) {
	l := newLoop(t, Options{})
	c := newFake(t, l, nil)
	r1, w1 := pipe(t)
	old := c.regFD(r1, pIn)
	unix.Close(r1)
	unix.Close(w1)
	r2, w2 := pipe(t)
	defer unix.Close(w2)
	if r2 != r1 {
		if err := unix.Dup3(r2, r1, unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		unix.Close(r2)
	}
	var got atomic.Int64
	c.onFD = func(c *fakeCtx, f *fakeFD, rev osevent.PollEvents) {
		if f != old {
			got.Add(1)
			var b [8]byte
			unix.Read(f.fd, b[:])
		}
	}
	nf := c.regFD(r1, pIn)
	unix.Write(w2, []byte("z"))
	waitFor(t, "delivery on the reused number", 5*time.Second, func() bool { return got.Load() > 0 })
	c.deregFD(old)
	c.deregFD(nf)
	unix.Close(r1)
	// And the plain case: deregister, close, reuse.
	r3, w3 := pipe(t)
	f3 := c.regFD(r3, pIn)
	c.deregFD(f3)
	unix.Close(r3)
	unix.Close(w3)
	r4, w4 := pipe(t)
	got.Store(0)
	f4 := c.regFD(r4, pIn)
	unix.Write(w4, []byte("z"))
	waitFor(t, "delivery after plain reuse", 5*time.Second, func() bool { return got.Load() > 0 })
	c.deregFD(f4)
	unix.Close(r4)
	unix.Close(w4)
	c.teardown()
	c.viol.check(t)
}

func TestTimeoutsFireOnceInOrder(t *testing.T) {
	l := newLoop(t, Options{})
	c := newFake(t, l, nil)
	var order []osevent.RegID
	c.onTimeout = func(c *fakeCtx, to *fakeTO) { order = append(order, to.id) }
	now := time.Now()
	t3 := c.regTO(now.Add(30 * time.Millisecond))
	t1 := c.regTO(now.Add(10 * time.Millisecond))
	t2 := c.regTO(now.Add(20 * time.Millisecond))
	past := c.regTO(now.Add(-time.Second)) // already due
	waitFor(t, "4 timeouts", 5*time.Second, func() bool { return c.toDeliveries.Load() == 4 })
	time.Sleep(20 * time.Millisecond)
	c.with(func() {
		want := []osevent.RegID{past.id, t1.id, t2.id, t3.id}
		if len(order) != 4 {
			t.Fatalf("order %v", order)
		}
		for i := range want {
			if order[i] != want[i] {
				t.Errorf("order %v, want %v", order, want)
				break
			}
		}
	})
	if s := l.Stats(); s.Timeouts != 0 || s.TimeoutDeliveries != 4 {
		t.Errorf("stats %+v", s)
	}
	// After delivery the registration is gone: modify is an unknown ID.
	if err := c.b.TimeoutModify(t1.id, osevent.FireNow); !errors.Is(err, ErrUnknownReg) {
		t.Errorf("modify after delivery: %v", err)
	}
	c.teardown()
	c.viol.check(t)
}

// test_timedereg, in 4.2 terms: several timeouts; from inside a firing,
// deregister another (one due later and one due in the same batch) and
// register a new one.
func TestTimedereg42(t *testing.T) {
	l := newLoop(t, Options{})
	c := newFake(t, l, nil)
	now := time.Now()
	var t1, t2, t3, t4, s1, s2, fresh *fakeTO
	c.with(func() {
		t1, _ = c.regTOLocked(now.Add(10 * time.Millisecond))
		t2, _ = c.regTOLocked(now.Add(40 * time.Millisecond))
		t3, _ = c.regTOLocked(now.Add(50 * time.Millisecond))
		// s1 and s2 are due together: whichever fires first
		// deregisters the other, which was already collected.
		s1, _ = c.regTOLocked(now.Add(20 * time.Millisecond))
		s2, _ = c.regTOLocked(now.Add(20 * time.Millisecond))
	})
	c.onTimeout = func(c *fakeCtx, to *fakeTO) {
		switch to {
		case t1:
			c.deregTOLocked(t2)
			fresh, _ = c.regTOLocked(time.Now().Add(5 * time.Millisecond))
			t4, _ = c.regTOLocked(time.Now().Add(15 * time.Millisecond))
			// deregister and re-register the same one
			c.deregTOLocked(t4)
			t4, _ = c.regTOLocked(time.Now().Add(25 * time.Millisecond))
		case s1:
			c.deregTOLocked(s2)
		case s2:
			c.deregTOLocked(s1)
		}
	}
	waitFor(t, "t3", 5*time.Second, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return t3.fired == 1 && t4 != nil && t4.fired == 1
	})
	time.Sleep(20 * time.Millisecond)
	c.with(func() {
		if t1.fired != 1 || t2.fired != 0 || fresh.fired != 1 {
			t.Errorf("fired: t1=%d t2=%d fresh=%d", t1.fired, t2.fired, fresh.fired)
		}
		if s1.fired+s2.fired != 1 {
			t.Errorf("s1+s2 fired %d times, want 1", s1.fired+s2.fired)
		}
		for _, to := range c.tos {
			if to.fired > 1 {
				t.Errorf("reg %d fired %d times", to.id, to.fired)
			}
		}
	})
	if s := l.Stats(); s.Timeouts != 0 || s.StaleDropped == 0 {
		t.Errorf("stats %+v (want the same-batch deregistered timeout dropped)", s)
	}
	c.teardown()
	c.viol.check(t)
}

// 4.2 libxl may modify a timeout to a new absolute time: it re-arms.
func TestTimeoutModifyRearm(t *testing.T) {
	l := newLoop(t, Options{})
	c := newFake(t, l, nil)
	to := c.regTO(time.Now().Add(time.Hour))
	c.with(func() {
		to.deadline = time.Now().Add(15 * time.Millisecond)
		if err := c.b.TimeoutModify(to.id, to.deadline); err != nil {
			t.Fatal(err)
		}
	})
	waitFor(t, "rearmed timeout", 5*time.Second, func() bool { return c.toDeliveries.Load() == 1 })
	// Re-arming from inside its own firing: the delivery in flight is no
	// longer live, and it fires again at the new time.
	var liveAfter []bool
	to2 := c.regTO(time.Now().Add(5 * time.Millisecond))
	c.b.SetSink(sinkFunc{fd: c.OccurredFD, to: func(ck osevent.ForLibxl, live osevent.Liveness) {
		c.mu.Lock()
		tt := c.tos[ck]
		if tt == to2 && !tt.rearmed {
			tt.rearmed = true
			before := live.StillLive()
			if err := c.b.TimeoutModify(tt.id, time.Now().Add(10*time.Millisecond)); err != nil {
				t.Error(err)
			}
			liveAfter = append(liveAfter, before, live.StillLive())
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		c.OccurredTimeout(ck, live)
	}})
	// to2's sink was captured at registration: re-register to use it.
	c.deregTO(to2)
	c.with(func() { delete(c.tos, to2.cookie) })
	to2 = c.regTO(time.Now().Add(5 * time.Millisecond))
	waitFor(t, "second firing", 5*time.Second, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return to2.fired == 1
	})
	c.with(func() {
		if len(liveAfter) != 2 || !liveAfter[0] || liveAfter[1] {
			t.Errorf("StillLive before/after re-arm: %v, want [true false]", liveAfter)
		}
	})
	c.teardown()
	c.viol.check(t)
}

type sinkFunc struct {
	fd func(osevent.ForLibxl, int, osevent.PollEvents, osevent.PollEvents, osevent.Liveness)
	to func(osevent.ForLibxl, osevent.Liveness)
}

func (s sinkFunc) OccurredFD(k osevent.ForLibxl, fd int, e, r osevent.PollEvents, l osevent.Liveness) {
	s.fd(k, fd, e, r, l)
}
func (s sinkFunc) OccurredTimeout(k osevent.ForLibxl, l osevent.Liveness) { s.to(k, l) }

func TestFireNow(t *testing.T) {
	l := newLoop(t, Options{})
	c := newFake(t, l, nil)
	to := c.regTO(time.Now().Add(time.Hour))
	start := time.Now()
	c.fireNow(to)
	waitFor(t, "fire-now", 5*time.Second, func() bool { return c.toDeliveries.Load() == 1 })
	if d := time.Since(start); d > time.Second {
		t.Errorf("fire-now took %v", d)
	}
	// Fire-now from inside a firing of another timeout (the usual 4.17
	// path: libxl cancels its timers re-entrantly).
	a := c.regTO(time.Now().Add(time.Hour))
	b := c.regTO(time.Now().Add(time.Hour))
	c.onTimeout = func(c *fakeCtx, x *fakeTO) {
		if x == a {
			c.fireNowLocked(b)
			// itself, in flight: a no-op
			if err := c.b.TimeoutModify(a.id, osevent.FireNow); err != nil {
				t.Error(err)
			}
		}
	}
	c.fireNow(a)
	waitFor(t, "both", 5*time.Second, func() bool { return c.toDeliveries.Load() == 3 })
	time.Sleep(10 * time.Millisecond)
	s := l.Stats()
	if s.FireNow != 3 || s.FireNowRaced != 1 || s.TimeoutDeliveries != 3 {
		t.Errorf("stats %+v", s)
	}
	c.teardown()
	c.viol.check(t)
}

// A fire-now that lands after the dispatcher picked the timeout but before
// the Sink runs is a no-op: exactly one delivery.
func TestFireNowRacesFiring(t *testing.T) {
	var c *fakeCtx
	var target atomic.Uint64
	var raced atomic.Int64
	l := newLoop(t, Options{Trace: func(ev TraceEvent) {
		if ev.Op == OpOccurredTimeout && uint64(ev.Reg) == c.targetLocked(&target) {
			// The dispatcher has decided; another thread now asks
			// for fire-now and finishes before the Sink runs.
			done := make(chan struct{})
			go func() {
				defer close(done)
				if err := c.b.TimeoutModify(ev.Reg, osevent.FireNow); err != nil {
					t.Error(err)
				}
				raced.Add(1)
			}()
			<-done
		}
	}})
	c = newFake(t, l, nil)
	for i := 0; i < 20; i++ {
		var to *fakeTO
		c.with(func() {
			to, _ = c.regTOLocked(time.Now().Add(time.Millisecond))
			target.Store(uint64(to.id))
		})
		waitFor(t, "firing", 5*time.Second, func() bool { return c.toDeliveries.Load() == int64(i+1) })
	}
	time.Sleep(10 * time.Millisecond)
	if s := l.Stats(); s.FireNowRaced != 20 || s.TimeoutDeliveries != 20 || raced.Load() != 20 {
		t.Errorf("stats %+v raced=%d", s, raced.Load())
	}
	c.teardown()
	c.viol.check(t)
}

// 4.2's timeout_deregister while the delivery is in flight: StillLive must
// answer false when consulted afterwards.
func TestTimeoutDeregisterInFlight(t *testing.T) {
	var c *fakeCtx
	var target atomic.Uint64
	l := newLoop(t, Options{Trace: func(ev TraceEvent) {
		if ev.Op == OpOccurredTimeout && uint64(ev.Reg) == c.targetLocked(&target) {
			done := make(chan struct{})
			go func() { defer close(done); c.deregTO(c.byID(ev.Reg)) }()
			<-done
		}
	}})
	c = newFake(t, l, nil)
	var to *fakeTO
	c.with(func() {
		to, _ = c.regTOLocked(time.Now().Add(time.Millisecond))
		target.Store(uint64(to.id))
	})
	waitFor(t, "stale delivery flagged", 5*time.Second, func() bool { return c.staleSeen.Load() == 1 })
	c.with(func() {
		if to.fired != 0 {
			t.Errorf("fired %d", to.fired)
		}
	})
	c.teardown()
	c.viol.check(t)
}

// targetLocked reads a target that the test stores in the same ctx-lock
// critical section as the registration (c.with: regTOLocked, then Store).
// A 1 ms timeout can be decided, and its delivery traced, before
// regTOLocked even returns; taking the lock orders this read after the
// Store, so the trace never compares against the previous target. It
// cannot deadlock: the dispatcher holds no lock of the loop while it
// traces, and TimeoutRegister never waits for the dispatcher.
func (c *fakeCtx) targetLocked(target *atomic.Uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return target.Load()
}

func (c *fakeCtx) byID(id osevent.RegID) *fakeTO {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.tos {
		if t.id == id {
			return t
		}
	}
	return nil
}

// Tearing down one binding with fire-now timeouts pending: they are
// reaped, never fired, and the other binding is unaffected.
func TestTeardownWithFireNowPending(t *testing.T) {
	l := newLoop(t, Options{})
	viol := &violations{}
	a := newFake(t, l, viol)
	other := newFake(t, l, viol)
	entered, release, cleanup := blocker(t, other)
	defer cleanup()
	<-entered
	var tos []*fakeTO
	for i := 0; i < 5; i++ {
		tos = append(tos, a.regTO(time.Now().Add(time.Hour)))
	}
	r, w := pipe(t)
	defer unix.Close(r)
	defer unix.Close(w)
	unix.Write(w, []byte("x"))
	a.regFD(r, pIn)
	for _, to := range tos {
		a.fireNow(to)
	}
	oto := other.regTO(time.Now().Add(5 * time.Millisecond))
	fds, n := a.teardown()
	if fds != 1 || n != 5 {
		t.Errorf("reaped %d fds, %d timeouts; want 1, 5", fds, n)
	}
	close(release)
	waitFor(t, "other's timeout", 5*time.Second, func() bool { return other.toDeliveries.Load() == 1 })
	time.Sleep(10 * time.Millisecond)
	if a.toDeliveries.Load() != 0 || a.fdDeliveries.Load() != 0 {
		t.Errorf("torn-down binding got %d timeouts, %d fds", a.toDeliveries.Load(), a.fdDeliveries.Load())
	}
	other.with(func() {
		if oto.fired != 1 {
			t.Errorf("other binding's timeout fired %d", oto.fired)
		}
	})
	if s := a.b.Stats(); s.Reaped != 6 || s.LateHooks != 1 || s.Bindings != 0 || s.FDRegs != 0 || s.Timeouts != 0 {
		t.Errorf("binding stats %+v", s)
	}
	other.teardown()
	viol.check(t)
}

func TestFailRegister(t *testing.T) {
	injected := errors.New("injected")
	var failOp atomic.Int32
	var failFD atomic.Int64
	l := newLoop(t, Options{FailRegister: func(op Op, fd int) error {
		if Op(failOp.Load()) == op && int64(fd) == failFD.Load() {
			return injected
		}
		return nil
	}})
	c := newFake(t, l, nil)
	r, w := pipe(t)
	defer unix.Close(r)
	defer unix.Close(w)
	unix.Write(w, []byte("x"))

	failOp.Store(int32(OpFDRegister))
	failFD.Store(int64(r))
	c.with(func() {
		if _, err := c.regFDLocked(r, pIn); !errors.Is(err, injected) {
			t.Fatalf("register: %v", err)
		}
	})
	time.Sleep(10 * time.Millisecond)
	if s := l.Stats(); s.FDRegs != 0 || s.HookErrors != 1 || s.FDDeliveries != 0 {
		t.Fatalf("after failed register: %+v", s)
	}
	l.mu.Lock()
	if len(l.fds) > r && l.fds[r] != nil {
		t.Error("failed register left an fd entry")
	}
	l.mu.Unlock()

	// A failing modify leaves the events as they were.
	failOp.Store(0)
	f := c.regFD(r, 0)
	failOp.Store(int32(OpFDModify))
	c.with(func() {
		if err := c.modFDLocked(f, pIn); !errors.Is(err, injected) {
			t.Fatalf("modify: %v", err)
		}
	})
	time.Sleep(10 * time.Millisecond)
	if n := c.fdDeliveries.Load(); n != 0 {
		t.Fatalf("%d deliveries after a failed modify to IN", n)
	}
	failOp.Store(0)
	c.deregFD(f)

	// A real failure: a closed fd number.
	c.with(func() {
		if _, err := c.regFDLocked(w+1000, pIn); err == nil || !errors.Is(err, unix.EBADF) {
			t.Errorf("register of a closed fd: %v", err)
		}
	})

	// Timeouts.
	failOp.Store(int32(OpTimeoutRegister))
	failFD.Store(-1)
	c.with(func() {
		if _, err := c.regTOLocked(time.Now()); !errors.Is(err, injected) {
			t.Fatalf("timeout register: %v", err)
		}
	})
	failOp.Store(int32(OpTimeoutModify))
	to := c.regTO(time.Now().Add(time.Hour))
	if err := c.b.TimeoutModify(to.id, osevent.FireNow); !errors.Is(err, injected) {
		t.Fatalf("timeout modify: %v", err)
	}
	time.Sleep(10 * time.Millisecond)
	if s := l.Stats(); s.Timeouts != 1 || s.TimeoutDeliveries != 0 || s.HookErrors != 5 {
		t.Fatalf("after failed timeout hooks: %+v", s)
	}
	failOp.Store(0)
	fds, tos := c.teardown()
	if fds != 0 || tos != 1 {
		t.Errorf("reaped %d %d", fds, tos)
	}
	c.viol.check(t)
}

func TestCloseGateOnDispatcher(t *testing.T) {
	l := newLoop(t, Options{})
	c := newFake(t, l, nil)
	other := l.Attach(nil)
	var gateErr, closeErr, otherErr error
	done := make(chan struct{})
	c.onTimeout = func(c *fakeCtx, _ *fakeTO) {
		gateErr = c.b.CloseGate()
		otherErr = other.CloseGate()
		closeErr = l.Close()
		close(done)
	}
	c.regTO(time.Now())
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("CloseGate on the dispatcher deadlocked")
	}
	if !errors.Is(gateErr, ErrOnDispatcher) || !errors.Is(otherErr, ErrOnDispatcher) || !errors.Is(closeErr, ErrOnDispatcher) {
		t.Fatalf("CloseGate: %v, other: %v, Close: %v", gateErr, otherErr, closeErr)
	}
	other.Detach()
	c.teardown()
	c.viol.check(t)
}

// CloseGate waits for the delivery in flight, and none starts after it.
func TestCloseGateWaitsForInflight(t *testing.T) {
	l := newLoop(t, Options{})
	c := newFake(t, l, nil)
	efd := eventfd(t, 1)
	defer unix.Close(efd)
	inSink := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	c.onFD = func(c *fakeCtx, f *fakeFD, _ osevent.PollEvents) {
		once.Do(func() {
			close(inSink)
			c.mu.Unlock()
			<-release
			c.mu.Lock()
		})
	}
	c.regFD(efd, pIn)
	<-inSink
	gateDone := make(chan error)
	go func() { gateDone <- c.b.CloseGate() }()
	select {
	case err := <-gateDone:
		t.Fatalf("CloseGate returned (%v) while a delivery was in flight", err)
	case <-time.After(30 * time.Millisecond):
	}
	close(release)
	if err := <-gateDone; err != nil {
		t.Fatal(err)
	}
	c.closed.Store(true)
	n := c.fdDeliveries.Load()
	time.Sleep(20 * time.Millisecond)
	if m := c.fdDeliveries.Load(); m != n {
		t.Fatalf("%d deliveries after CloseGate", m-n)
	}
	waitFor(t, "a gated delivery (the fd is level-triggered)", 10*time.Second, func() bool { return c.b.Stats().Gated > 0 })
	if m := c.fdDeliveries.Load(); m != n {
		t.Fatalf("%d deliveries after CloseGate", m-n)
	}
	c.teardown()
	c.viol.check(t)
}

func TestUnknownIDsAndLateHooks(t *testing.T) {
	l := newLoop(t, Options{})
	b := l.Attach(nil)
	if _, err := b.FDRegister(0, pIn, 1); !errors.Is(err, ErrNoSink) {
		t.Fatalf("register without sink: %v", err)
	}
	if _, err := b.TimeoutRegister(time.Now(), 1); !errors.Is(err, ErrNoSink) {
		t.Fatalf("timeout register without sink: %v", err)
	}
	b.SetSink(sinkFunc{})
	if err := b.FDModify(3, 12345, pIn); !errors.Is(err, ErrUnknownReg) {
		t.Fatalf("modify unknown: %v", err)
	}
	if err := b.TimeoutModify(12345, osevent.FireNow); !errors.Is(err, ErrUnknownReg) {
		t.Fatalf("timeout modify unknown: %v", err)
	}
	b.FDDeregister(3, 12345)
	b.TimeoutDeregister(12345)
	if s := l.Stats(); s.UnknownIDs != 4 || s.HookErrors != 2 {
		t.Fatalf("stats %+v", s)
	}
	// An ID of another binding is unknown here.
	efd := eventfd(t, 0)
	defer unix.Close(efd)
	b2 := l.Attach(sinkFunc{})
	id, err := b2.FDRegister(efd, pIn, 7)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.FDModify(efd, id, pOut); !errors.Is(err, ErrUnknownReg) {
		t.Fatalf("modify of another binding's ID: %v", err)
	}
	if _, err := b2.FDRegister(-1, pIn, 8); !errors.Is(err, ErrBadFD) {
		t.Fatalf("negative fd: %v", err)
	}
	if err := b2.FDModify(efd+1, id, pOut); !errors.Is(err, ErrBadFD) {
		t.Fatalf("modify with another fd: %v", err)
	}
	if fds, tos := b2.Reap(); fds != 1 || tos != 0 {
		t.Fatalf("reap %d %d", fds, tos)
	}
	b2.FDDeregister(efd, id) // libxl_ctx_free, after Reap
	if _, err := b2.FDRegister(efd, pIn, 9); !errors.Is(err, ErrDetached) {
		t.Fatalf("register after reap: %v", err)
	}
	if s := b2.Stats(); s.LateHooks != 1 || s.UnknownIDs != 0 {
		t.Fatalf("b2 stats %+v", s)
	}
	b2.Detach()
	b2.Detach() // idempotent
	b.Detach()
}

func TestLoopCloseRefusesWhileAttached(t *testing.T) {
	check := leakCheck(t)
	l, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := newFake(t, l, nil)
	efd := eventfd(t, 1)
	c.regFD(efd, pIn)
	c.regTO(time.Now().Add(time.Hour))
	if err := l.Close(); !errors.Is(err, ErrBindingsAttached) {
		t.Fatalf("Close with a binding: %v", err)
	}
	// The loop still works after the refusal.
	n := c.fdDeliveries.Load()
	waitFor(t, "deliveries", 5*time.Second, func() bool { return c.fdDeliveries.Load() > n })
	c.teardown()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	unix.Close(efd)
	b := l.Attach(sinkFunc{})
	if _, err := b.TimeoutRegister(time.Now(), 1); !errors.Is(err, ErrClosed) && !errors.Is(err, ErrDetached) {
		t.Fatalf("register on a closed loop: %v", err)
	}
	b.Detach()
	check()
	c.viol.check(t)
}

func TestTrace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trace")
	t.Setenv(TraceEnv, path)
	var mu sync.Mutex
	var events []TraceEvent
	l1 := newLoop(t, Options{Trace: func(ev TraceEvent) { mu.Lock(); events = append(events, ev); mu.Unlock() }})
	l2 := newLoop(t, Options{}) // traced to the file
	for _, l := range []*Loop{l1, l2} {
		c := newFake(t, l, nil)
		efd := eventfd(t, 1)
		c.onFD = func(c *fakeCtx, f *fakeFD, _ osevent.PollEvents) { c.deregFDLocked(f) }
		c.regFD(efd, pIn)
		to := c.regTO(time.Now().Add(time.Hour))
		c.fireNow(to)
		waitFor(t, "deliveries", 5*time.Second, func() bool {
			return c.fdDeliveries.Load() == 1 && c.toDeliveries.Load() == 1
		})
		c.teardown()
		unix.Close(efd)
	}
	mu.Lock()
	ops := map[Op]int{}
	for _, ev := range events {
		ops[ev.Op]++
	}
	mu.Unlock()
	for _, op := range []Op{OpFDRegister, OpFDDeregister, OpTimeoutRegister, OpTimeoutModify, OpOccurredFD, OpOccurredTimeout} {
		if ops[op] == 0 {
			t.Errorf("no %v in the trace: %v", op, ops)
		}
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"HOOK fd_register", "events=IN -> reg F", "HOOK timeout_modify", "{0,0} (ASAP)",
		"loop: occurred_fd F", "loop: occurred_timeout T", "HOOK fd_deregister"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("trace file lacks %q:\n%s", want, data)
		}
	}
}
