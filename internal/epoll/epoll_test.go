package epoll

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func countFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// checkFDs fails the test if it leaves more fds open than it found.
func checkFDs(t *testing.T) {
	before := countFDs(t)
	t.Cleanup(func() {
		if after := countFDs(t); after != before {
			t.Errorf("fd leak: %d open before, %d after", before, after)
		}
	})
}

func newPoller(t *testing.T) *Poller {
	t.Helper()
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

func pipe(t *testing.T) (r, w int) {
	t.Helper()
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

func TestReadinessAndTag(t *testing.T) {
	checkFDs(t)
	p := newPoller(t)
	r, w := pipe(t)
	if err := p.Add(r, In, 42); err != nil {
		t.Fatal(err)
	}
	evs := make([]unix.EpollEvent, 8)
	n, err := p.Wait(evs, 0)
	if err != nil || n != 0 {
		t.Fatalf("empty pipe: n=%d err=%v", n, err)
	}
	unix.Write(w, []byte("x"))
	n, err = p.Wait(evs, time.Second)
	if err != nil || n != 1 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if evs[0].Fd != int32(r) || evs[0].Pad != 42 || evs[0].Events&In == 0 {
		t.Fatalf("bad event %+v", evs[0])
	}
	if err := p.Modify(r, Out, 7); err != nil {
		t.Fatal(err)
	}
	if n, _ = p.Wait(evs, 0); n != 0 {
		t.Fatalf("read end never writable, got %d events", n)
	}
	if err := p.Add(r, In, 0); !errors.Is(err, ErrExist) {
		t.Fatalf("double add: %v", err)
	}
	if err := p.Delete(r); err != nil {
		t.Fatal(err)
	}
	if err := p.Delete(r); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("double delete: %v", err)
	}
	if err := p.Modify(r, In, 0); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("modify of deleted fd: %v", err)
	}
	if err := p.Delete(9999); !errors.Is(err, ErrNotRegistered) || !errors.Is(err, unix.EBADF) {
		t.Fatalf("delete of closed fd: %v", err)
	}
}

func TestNotPollable(t *testing.T) {
	checkFDs(t)
	p := newPoller(t)
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "image"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := p.Add(int(f.Fd()), In, 0); !errors.Is(err, ErrNotPollable) || !errors.Is(err, unix.EPERM) {
		t.Fatalf("regular file: %v", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := p.Add(int(d.Fd()), In, 0); !errors.Is(err, ErrNotPollable) {
		t.Fatalf("directory: %v", err)
	}
}

func TestWakeCoalesced(t *testing.T) {
	checkFDs(t)
	p := newPoller(t)
	evs := make([]unix.EpollEvent, 4)
	for i := 0; i < 100; i++ {
		if err := p.Wake(); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	n, err := p.Wait(evs, 5*time.Second)
	if err != nil || n != 0 || time.Since(start) > time.Second {
		t.Fatalf("wake: n=%d err=%v after %v", n, err, time.Since(start))
	}
	// All the wakes were coalesced into one: the next Wait times out.
	start = time.Now()
	n, err = p.Wait(evs, 20*time.Millisecond)
	if err != nil || n != 0 || time.Since(start) < 20*time.Millisecond {
		t.Fatalf("second wait: n=%d err=%v after %v", n, err, time.Since(start))
	}
	// A Wake from another goroutine interrupts a blocked Wait.
	go func() { time.Sleep(10 * time.Millisecond); p.Wake() }()
	start = time.Now()
	if _, err := p.Wait(evs, -1); err != nil || time.Since(start) > 5*time.Second {
		t.Fatalf("blocked wait: %v", err)
	}
}

func TestTimeoutAccuracy(t *testing.T) {
	p := newPoller(t)
	evs := make([]unix.EpollEvent, 4)
	for _, d := range []time.Duration{300 * time.Microsecond, 2*time.Millisecond + 500*time.Microsecond} {
		start := time.Now()
		if _, err := p.Wait(evs, d); err != nil {
			t.Fatal(err)
		}
		el := time.Since(start)
		if el < d {
			t.Errorf("Wait(%v) returned early after %v", d, el)
		}
		if el > d+time.Second { // generous: shared, loaded machines
			t.Errorf("Wait(%v) took %v", d, el)
		}
	}
}

func TestPriFromTCPUrgentData(t *testing.T) {
	checkFDs(t)
	p := newPoller(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sf, err := s.(*net.TCPConn).File() // a dup, blocking mode is irrelevant
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	fd := int(sf.Fd())
	if err := p.Add(fd, Pri, 1); err != nil {
		t.Fatal(err)
	}
	cf, err := c.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()
	if err := unix.Sendto(int(cf.Fd()), []byte("!"), unix.MSG_OOB, nil); err != nil {
		t.Fatal(err)
	}
	evs := make([]unix.EpollEvent, 4)
	n, err := p.Wait(evs, 5*time.Second)
	if err != nil || n != 1 || evs[0].Events&Pri == 0 {
		t.Fatalf("want EPOLLPRI: n=%d err=%v ev=%+v", n, err, evs[:n])
	}
}

func TestCloseWakesWaitAndRefusesLaterUse(t *testing.T) {
	checkFDs(t)
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var werr error
	go func() {
		defer wg.Done()
		_, werr = p.Wait(make([]unix.EpollEvent, 4), -1)
	}()
	time.Sleep(10 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if werr != nil && !errors.Is(werr, ErrClosed) {
		t.Fatalf("wait: %v", werr)
	}
	if _, err := p.Wait(make([]unix.EpollEvent, 4), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("wait after close: %v", err)
	}
	if err := p.Add(0, In, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("add after close: %v", err)
	}
	if err := p.Wake(); !errors.Is(err, ErrClosed) {
		t.Fatalf("wake after close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

func TestConcurrentCtlAndWait(t *testing.T) {
	checkFDs(t)
	p := newPoller(t)
	stop := make(chan struct{})
	var got int
	done := make(chan struct{})
	go func() {
		defer close(done)
		evs := make([]unix.EpollEvent, 64)
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, err := p.Wait(evs, 10*time.Millisecond)
			if err != nil {
				t.Error(err)
				return
			}
			got += n
		}
	}()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				efd, err := unix.Eventfd(1, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
				if err != nil {
					t.Error(err)
					return
				}
				if err := p.Add(efd, In, int32(i)); err != nil {
					t.Error(err)
				}
				p.Wake()
				if err := p.Delete(efd); err != nil {
					t.Error(err)
				}
				unix.Close(efd)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-done
}

// A Wake racing Wait's drain of the eventfd must not be lost: drainWake
// reads the eventfd first and only then clears the pending flag. Cleared
// first, a Wake landing in between sets the flag and writes, the read
// consumes that write, and the flag stays set over an empty eventfd:
// every later Wake is skipped as "already pending" and Wait sleeps
// forever. The test lands a Wake just before the read, every time.
func TestWakeRacingDrainIsNotLost(t *testing.T) {
	checkFDs(t)
	p := newPoller(t)
	evs := make([]unix.EpollEvent, 4)
	realRead := readWake
	defer func() { readWake = realRead }()
	raced := 0
	readWake = func(fd int) {
		if raced == 0 {
			raced++
			_ = p.Wake() // another thread's Wake, just before the read
		}
		realRead(fd)
	}
	if err := p.Wake(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(evs, 2*time.Second); err != nil || raced != 1 {
		t.Fatalf("first wait: %v, raced %d", err, raced)
	}
	// Whatever the racing Wake did, a Wake now must end the next Wait.
	_ = p.Wake()
	start := time.Now()
	if _, err := p.Wait(evs, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d >= time.Second {
		t.Fatalf("a Wake was lost: Wait took %v; the pending flag is stuck over an empty eventfd", d)
	}
}
