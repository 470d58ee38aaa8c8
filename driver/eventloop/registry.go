package eventloop

import (
	"errors"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/goxl/goxl/internal/epoll"
	"github.com/goxl/goxl/internal/osevent"
)

// liveness is the osevent.Liveness of one registration. gen is the
// registration's generation: 0 once it is dead (deregistered, reaped,
// delivered for a timeout), bumped when a timeout is re-armed. decided is
// the gen the dispatcher saw when it decided the current delivery.
type liveness struct {
	gen     atomic.Uint64 // written under Loop.mu
	decided atomic.Uint64 // written by the dispatcher
}

// StillLive reports whether the registration is still due: registered and,
// for a timeout, not re-armed since the delivery was decided. It is meant
// to be called during the Sink call it was passed to.
func (v *liveness) StillLive() bool {
	g := v.gen.Load()
	return g != 0 && g == v.decided.Load()
}

type fdReg struct {
	liveness
	events   atomic.Int32 // osevent.PollEvents; written under Loop.mu
	id       osevent.RegID
	fd       int
	forLibxl osevent.ForLibxl
	b        *Binding
	sink     osevent.Sink
	entry    *fdEntry // guarded by Loop.mu
}

// fdEntry merges the registrations of one fd number into one epoll entry.
// All fields are guarded by Loop.mu.
type fdEntry struct {
	fd      int
	gen     uint32 // tag of the epoll entry, unique per entry
	regs    []*fdReg
	mask    uint32 // epoll events currently registered
	inEpoll bool
	refused bool // epoll said EPERM: always ready
}

const errHup = osevent.PollErr | osevent.PollHup

// toEpoll maps poll(2) bits to epoll bits. (They coincide on Linux; the
// mapping is spelled out so that no bit is lost if they ever did not.)
func toEpoll(e osevent.PollEvents) uint32 {
	var m uint32
	if e&osevent.PollIn != 0 {
		m |= unix.EPOLLIN
	}
	if e&osevent.PollPri != 0 {
		m |= unix.EPOLLPRI
	}
	if e&osevent.PollOut != 0 {
		m |= unix.EPOLLOUT
	}
	return m
}

func fromEpoll(m uint32) osevent.PollEvents {
	var e osevent.PollEvents
	if m&unix.EPOLLIN != 0 {
		e |= osevent.PollIn
	}
	if m&unix.EPOLLPRI != 0 {
		e |= osevent.PollPri
	}
	if m&unix.EPOLLOUT != 0 {
		e |= osevent.PollOut
	}
	if m&unix.EPOLLERR != 0 {
		e |= osevent.PollErr
	}
	if m&unix.EPOLLHUP != 0 {
		e |= osevent.PollHup
	}
	return e
}

// union returns the epoll mask of e's registrations, except skip.
func (e *fdEntry) union(skip *fdReg) uint32 {
	var m uint32
	for _, r := range e.regs {
		if r != skip {
			m |= toEpoll(osevent.PollEvents(r.events.Load()))
		}
	}
	return m
}

func (e *fdEntry) remove(r *fdReg) {
	for i, x := range e.regs {
		if x == r {
			last := len(e.regs) - 1
			e.regs[i] = e.regs[last]
			e.regs[last] = nil
			e.regs = e.regs[:last]
			return
		}
	}
}

// applyMask makes the epoll entry of e watch mask. On error, neither e nor
// the epoll set changed. With force, epoll_ctl is called even if the mask
// did not change: a new registration on a known fd number may be for a
// new file that reuses the number (closed without deregistration), which
// MOD then finds missing (ENOENT) and ADDs. Called with Loop.mu held.
func (l *Loop) applyMask(e *fdEntry, mask uint32, force bool) error {
	if e.refused {
		return nil
	}
	if mask == 0 {
		// No wanted events: keep the fd out of epoll, so that ERR/HUP
		// (always reported by epoll) cannot spin the dispatcher.
		if e.inEpoll {
			_ = l.poller.Delete(e.fd) // EBADF/ENOENT: already gone
			e.inEpoll = false
			e.mask = 0
		}
		return nil
	}
	if e.inEpoll && mask == e.mask && !force {
		return nil
	}
	var err error
	if e.inEpoll {
		err = l.poller.Modify(e.fd, mask, int32(e.gen))
		if errors.Is(err, epoll.ErrNotRegistered) {
			// The fd number was closed and reopened behind our back.
			err = l.poller.Add(e.fd, mask, int32(e.gen))
		}
	} else {
		err = l.poller.Add(e.fd, mask, int32(e.gen))
		if errors.Is(err, epoll.ErrExist) {
			// A stale entry for this fd number (deregistered after it
			// was reopened): take it over.
			err = l.poller.Modify(e.fd, mask, int32(e.gen))
		}
	}
	switch {
	case err == nil:
		e.inEpoll = true
		e.mask = mask
		return nil
	case errors.Is(err, epoll.ErrNotPollable):
		e.refused = true
		e.inEpoll = false
		l.alwaysReady = append(l.alwaysReady, e)
		return nil
	default:
		return err
	}
}

// dropEntry removes an entry without registrations. Loop.mu held.
func (l *Loop) dropEntry(e *fdEntry) {
	if e.inEpoll {
		_ = l.poller.Delete(e.fd) // EBADF/ENOENT: closed already
		e.inEpoll = false
	}
	if e.refused {
		for i, x := range l.alwaysReady {
			if x == e {
				last := len(l.alwaysReady) - 1
				l.alwaysReady[i] = l.alwaysReady[last]
				l.alwaysReady[last] = nil
				l.alwaysReady = l.alwaysReady[:last]
				break
			}
		}
	}
	if e.fd < len(l.fds) && l.fds[e.fd] == e {
		l.fds[e.fd] = nil
	}
}

// unlinkFD removes a live fd registration from the registry and kills it.
// Loop.mu held.
func (l *Loop) unlinkFD(r *fdReg) {
	r.gen.Store(0)
	delete(r.b.fdRegs, r.id)
	l.nFD--
	e := r.entry
	e.remove(r)
	if len(e.regs) == 0 {
		l.dropEntry(e)
		return
	}
	if err := l.applyMask(e, e.union(nil), false); err != nil {
		// Shrinking failed (the fd is probably closed). A superset
		// mask is harmless: deliveries are filtered per registration.
		_ = err
	}
}

// timeoutReg is one one-shot timeout.
type timeoutReg struct {
	liveness
	id       osevent.RegID
	forLibxl osevent.ForLibxl
	b        *Binding
	sink     osevent.Sink
	// guarded by Loop.mu:
	deadline int64 // monotonic ns since Loop.base
	index    int   // in the heap, or -1
	state    timeoutState
}

type timeoutState uint8

const (
	tArmed  timeoutState = iota // in the heap
	tFiring                     // popped by the dispatcher, delivery pending or in flight
	tGated                      // popped, but its binding's gate was closed: waits for Reap
)

// timerHeap is a container/heap of armed timeouts, earliest first.
type timerHeap []*timeoutReg

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].deadline != h[j].deadline {
		return h[i].deadline < h[j].deadline
	}
	return h[i].id < h[j].id
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*timeoutReg)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	n := len(old) - 1
	t := old[n]
	old[n] = nil
	t.index = -1
	*h = old[:n]
	return t
}
