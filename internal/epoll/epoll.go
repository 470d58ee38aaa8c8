package epoll

import (
	"errors"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Typed errors; see the package doc.
var (
	ErrNotPollable   = errors.New("epoll: fd cannot be polled (epoll_ctl: EPERM)")
	ErrClosed        = errors.New("epoll: poller is closed")
	ErrExist         = errors.New("epoll: fd already registered")
	ErrNotRegistered = errors.New("epoll: fd not registered")
)

// Event bits, re-exported for callers that do not want to import x/sys.
const (
	In  = unix.EPOLLIN
	Pri = unix.EPOLLPRI
	Out = unix.EPOLLOUT
	Err = unix.EPOLLERR
	Hup = unix.EPOLLHUP
)

// Poller is an epoll instance with an eventfd for Wake.
type Poller struct {
	// mu is the only lock (a leaf). RLock: any use of epfd/wakefd.
	// Lock: Close.
	mu     sync.RWMutex
	closed bool // guarded by mu
	epfd   int
	wakefd int

	// wakePending coalesces Wake calls: set by the Wake that writes the
	// eventfd, cleared by Wait after draining it.
	wakePending atomic.Bool
	// noPwait2 is set once epoll_pwait2 returned ENOSYS.
	noPwait2 atomic.Bool
}

// New creates a Poller. Both of its fds are close-on-exec.
func New() (*Poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(wakefd)
		unix.Close(epfd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	return &Poller{epfd: epfd, wakefd: wakefd}, nil
}

// Add starts watching fd for events (EPOLL* bits). The event reported by
// Wait carries fd in its Fd field and tag in its Pad field.
func (p *Poller) Add(fd int, events uint32, tag int32) error {
	return p.ctl(unix.EPOLL_CTL_ADD, fd, events, tag)
}

// Modify changes the events and tag of a watched fd.
func (p *Poller) Modify(fd int, events uint32, tag int32) error {
	return p.ctl(unix.EPOLL_CTL_MOD, fd, events, tag)
}

// Delete stops watching fd. If fd was already closed (EBADF) or is not
// watched (ENOENT), Delete returns an error that matches ErrNotRegistered;
// callers that only want the fd gone can ignore it.
func (p *Poller) Delete(fd int) error {
	return p.ctl(unix.EPOLL_CTL_DEL, fd, 0, 0)
}

func (p *Poller) ctl(op, fd int, events uint32, tag int32) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	if fd == p.wakefd || fd == p.epfd {
		return &os.SyscallError{Syscall: "epoll_ctl", Err: unix.EINVAL}
	}
	ev := unix.EpollEvent{Events: events, Fd: int32(fd), Pad: tag}
	err := unix.EpollCtl(p.epfd, op, fd, &ev)
	switch {
	case err == nil:
		return nil
	case err == unix.EPERM:
		return errors.Join(ErrNotPollable, os.NewSyscallError("epoll_ctl", err))
	case err == unix.EEXIST:
		return errors.Join(ErrExist, os.NewSyscallError("epoll_ctl", err))
	case err == unix.ENOENT || (op == unix.EPOLL_CTL_DEL && err == unix.EBADF):
		return errors.Join(ErrNotRegistered, os.NewSyscallError("epoll_ctl", err))
	default:
		return os.NewSyscallError("epoll_ctl", err)
	}
}

// Wake makes a concurrent or the next Wait return early. It is safe from
// any goroutine, never blocks, and is coalesced.
func (p *Poller) Wake() error {
	if !p.wakePending.CompareAndSwap(false, true) {
		return nil
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	var one = [8]byte{1}
	for {
		_, err := unix.Write(p.wakefd, one[:])
		switch err {
		case nil, unix.EAGAIN: // EAGAIN: counter saturated, a wake is pending anyway
			return nil
		case unix.EINTR:
			continue
		default:
			p.wakePending.Store(false)
			return os.NewSyscallError("write eventfd", err)
		}
	}
}

// Wait waits until at least one watched fd is ready, Wake is called, or
// timeout passes (timeout < 0: no limit; 0: do not block). It fills events
// with the ready fds and returns their number, not counting the wake-up
// itself: n == 0 with a nil error means a timeout or a Wake. EINTR is
// retried with the remaining time.
func (p *Poller) Wait(events []unix.EpollEvent, timeout time.Duration) (int, error) {
	if len(events) == 0 {
		return 0, &os.SyscallError{Syscall: "epoll_wait", Err: unix.EINVAL}
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return 0, ErrClosed
	}
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		n, err := p.wait(events, timeout)
		if err == unix.EINTR {
			if timeout > 0 {
				if timeout = time.Until(deadline); timeout < 0 {
					timeout = 0
				}
			}
			continue
		}
		if err != nil {
			return 0, os.NewSyscallError("epoll_wait", err)
		}
		// Filter out the wake-up eventfd.
		for i := 0; i < n; i++ {
			if events[i].Fd == int32(p.wakefd) {
				p.drainWake()
				n--
				events[i] = events[n]
				break
			}
		}
		return n, nil
	}
}

func (p *Poller) drainWake() {
	readWake(p.wakefd)
	// Clear after draining: a Wake that finds the flag still set skipped
	// its write, but its state change is visible to the caller, which
	// looks at its state after Wait returns. Cleared before the read, a
	// Wake landing in between would set the flag and write, the read
	// would consume that write, and the flag would stay set over an empty
	// eventfd: every later Wake would be skipped.
	p.wakePending.Store(false)
}

// readWake empties the wake-up eventfd. It is a variable so that a test
// can land a Wake just before the read.
var readWake = func(wakefd int) {
	var buf [8]byte
	for {
		_, err := unix.Read(wakefd, buf[:])
		if err != unix.EINTR {
			return
		}
	}
}

func (p *Poller) wait(events []unix.EpollEvent, timeout time.Duration) (int, error) {
	if timeout > 0 && !p.noPwait2.Load() {
		ts := unix.NsecToTimespec(int64(timeout))
		r, _, e := unix.Syscall6(unix.SYS_EPOLL_PWAIT2, uintptr(p.epfd),
			uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)),
			uintptr(unsafe.Pointer(&ts)), 0, 0)
		if e == 0 {
			return int(r), nil
		}
		if e != unix.ENOSYS {
			return 0, e
		}
		p.noPwait2.Store(true)
	}
	msec := -1
	switch {
	case timeout == 0:
		msec = 0
	case timeout > 0:
		// Round up: never return before the timeout.
		ms := (timeout + time.Millisecond - 1) / time.Millisecond
		if ms > math.MaxInt32 {
			ms = math.MaxInt32
		}
		msec = int(ms)
	}
	return unix.EpollWait(p.epfd, events, msec)
}

// Close wakes a blocked Wait, waits for it and for in-progress Add,
// Modify, Delete calls to return, and closes both fds. Later calls return
// ErrClosed. Close is idempotent.
func (p *Poller) Close() error {
	p.wakePending.Store(false)
	_ = p.Wake()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	err1 := unix.Close(p.wakefd)
	err2 := unix.Close(p.epfd)
	if err := errors.Join(err1, err2); err != nil {
		return os.NewSyscallError("close", err)
	}
	return nil
}
