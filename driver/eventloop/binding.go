package eventloop

import (
	"container/heap"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/goxl/goxl/internal/osevent"
)

// Binding is one libxl ctx's registrations on a Loop. It implements
// osevent.Hooks (called by libxl through the bridge, on any thread) and
// osevent.Quiescer (teardown).
type Binding struct {
	l  *Loop
	id uint64

	// guarded by Loop.mu:
	sink     osevent.Sink
	fdRegs   map[osevent.RegID]*fdReg
	timeouts map[osevent.RegID]*timeoutReg
	reaped   bool // Reap or Detach ran: hooks are no-ops
	detached bool

	// race 2 admission: see enter/exit.
	gate     atomic.Bool
	inflight atomic.Int32
	drained  chan struct{} // cap 1: "inflight dropped to 0 with the gate closed"

	stats counters
}

var (
	_ osevent.Hooks    = (*Binding)(nil)
	_ osevent.Quiescer = (*Binding)(nil)
)

// Attach creates a Binding for one libxl ctx. sink may be nil and set
// later with SetSink, which must happen before the ctx registers anything
// (in practice: right after libxl_ctx_alloc, before
// libxl_osevent_register_hooks returns control to the application).
// Attach on a closed loop returns a binding whose hooks all fail.
func (l *Loop) Attach(sink osevent.Sink) *Binding {
	b := &Binding{
		l:        l,
		sink:     sink,
		fdRegs:   make(map[osevent.RegID]*fdReg),
		timeouts: make(map[osevent.RegID]*timeoutReg),
		drained:  make(chan struct{}, 1),
	}
	l.mu.Lock()
	l.bindingSeq++
	b.id = l.bindingSeq
	if l.closed {
		b.reaped, b.detached = true, true
		b.gate.Store(true)
	} else {
		l.bindings[b] = struct{}{}
	}
	l.mu.Unlock()
	return b
}

// SetSink sets the Sink that receives this binding's deliveries.
// Registrations capture the Sink current when they are made.
func (b *Binding) SetSink(s osevent.Sink) {
	b.l.mu.Lock()
	b.sink = s
	b.l.mu.Unlock()
}

// ID is the binding's number within its loop (as shown in traces).
func (b *Binding) ID() uint64 { return b.id }

// usable reports why hooks may not register. Loop.mu held.
func (b *Binding) usable() error {
	switch {
	case b.l.closed:
		return ErrClosed
	case b.reaped:
		return ErrDetached
	case b.sink == nil:
		return ErrNoSink
	}
	return nil
}

func (b *Binding) injected(op Op, fd int) error {
	if f := b.l.opts.FailRegister; f != nil {
		return f(op, fd)
	}
	return nil
}

func (b *Binding) hookFailed(_ error) {
	b.l.stats.hookErrors.Add(1)
	b.stats.hookErrors.Add(1)
}

// unknownOrReaped is the trace's error for a deregister naming no live
// registration: after Reap it is a late hook (ErrAfterReap), before it an
// unknown ID.
func unknownOrReaped(reaped bool) error {
	if reaped {
		return ErrAfterReap
	}
	return ErrUnknownReg
}

func (b *Binding) unknown(op Op) {
	if b.reaped {
		b.l.stats.lateHooks.Add(1)
		b.stats.lateHooks.Add(1)
		return
	}
	b.l.stats.unknownIDs.Add(1)
	b.stats.unknownIDs.Add(1)
}

// FDRegister implements osevent.Hooks.
func (b *Binding) FDRegister(fd int, events osevent.PollEvents, forLibxl osevent.ForLibxl) (id osevent.RegID, err error) {
	l := b.l
	if l.trace != nil {
		defer func() {
			l.emit(TraceEvent{Op: OpFDRegister, Binding: b.id, Reg: id, FD: fd, Events: events, Err: err})
		}()
	}
	if fd < 0 {
		b.hookFailed(ErrBadFD)
		return 0, fmt.Errorf("%w: %d", ErrBadFD, fd)
	}
	if err := b.injected(OpFDRegister, fd); err != nil {
		b.hookFailed(err)
		return 0, err
	}
	l.mu.Lock()
	if err := b.usable(); err != nil {
		l.mu.Unlock()
		b.hookFailed(err)
		return 0, err
	}
	e := (*fdEntry)(nil)
	if fd < len(l.fds) {
		e = l.fds[fd]
	}
	isNew := e == nil
	if isNew {
		l.entryGen++
		e = &fdEntry{fd: fd, gen: l.entryGen}
	}
	wasRefused := e.refused
	if err := l.applyMask(e, e.union(nil)|toEpoll(events), true); err != nil {
		l.mu.Unlock()
		b.hookFailed(err)
		return 0, err
	}
	if isNew {
		if fd >= len(l.fds) {
			l.fds = append(l.fds, make([]*fdEntry, fd+1-len(l.fds))...)
		}
		l.fds[fd] = e
	}
	id = l.newID()
	r := &fdReg{id: id, fd: fd, forLibxl: forLibxl, b: b, sink: b.sink, entry: e}
	r.events.Store(int32(events))
	r.gen.Store(1)
	e.regs = append(e.regs, r)
	b.fdRegs[id] = r
	l.nFD++
	// An fd in epoll needs no wake-up: the kernel wakes epoll_wait when
	// it becomes ready. An always-ready one needs the dispatcher to
	// switch to polling.
	needWake := e.refused
	if e.refused && !wasRefused {
		l.arRounds = 0
	}
	l.mu.Unlock()
	if needWake {
		l.wake()
	}
	return id, nil
}

// FDModify implements osevent.Hooks.
func (b *Binding) FDModify(fd int, reg osevent.RegID, events osevent.PollEvents) (err error) {
	l := b.l
	if l.trace != nil {
		defer func() {
			l.emit(TraceEvent{Op: OpFDModify, Binding: b.id, Reg: reg, FD: fd, Events: events, Err: err})
		}()
	}
	if err := b.injected(OpFDModify, fd); err != nil {
		b.hookFailed(err)
		return err
	}
	l.mu.Lock()
	r := b.fdRegs[reg]
	if r == nil {
		b.unknown(OpFDModify)
		l.mu.Unlock()
		return fmt.Errorf("%w: fd_modify %d", ErrUnknownReg, reg)
	}
	if r.fd != fd {
		l.mu.Unlock()
		b.hookFailed(ErrBadFD)
		return fmt.Errorf("%w: fd_modify of reg %d: fd %d, registered %d", ErrBadFD, reg, fd, r.fd)
	}
	e := r.entry
	wasRefused := e.refused
	if err := l.applyMask(e, e.union(r)|toEpoll(events), false); err != nil {
		l.mu.Unlock()
		b.hookFailed(err)
		return err
	}
	r.events.Store(int32(events))
	needWake := e.refused
	if e.refused && !wasRefused {
		l.arRounds = 0
	}
	l.mu.Unlock()
	if needWake {
		l.wake()
	}
	return nil
}

// FDDeregister implements osevent.Hooks. An unknown ID is a counted no-op.
func (b *Binding) FDDeregister(fd int, reg osevent.RegID) {
	l := b.l
	l.mu.Lock()
	r := b.fdRegs[reg]
	reaped := b.reaped
	if r == nil {
		b.unknown(OpFDDeregister)
	} else {
		l.unlinkFD(r)
	}
	l.mu.Unlock()
	if l.trace != nil {
		var err error
		if r == nil {
			err = unknownOrReaped(reaped)
		}
		l.emit(TraceEvent{Op: OpFDDeregister, Binding: b.id, Reg: reg, FD: fd, Err: err})
	}
}

// TimeoutRegister implements osevent.Hooks.
func (b *Binding) TimeoutRegister(abs time.Time, forLibxl osevent.ForLibxl) (id osevent.RegID, err error) {
	l := b.l
	if l.trace != nil {
		defer func() {
			l.emit(TraceEvent{Op: OpTimeoutRegister, Binding: b.id, Reg: id, Timeout: true, Deadline: abs, Err: err})
		}()
	}
	if err := b.injected(OpTimeoutRegister, -1); err != nil {
		b.hookFailed(err)
		return 0, err
	}
	deadline := l.monoDeadline(abs)
	l.mu.Lock()
	if err := b.usable(); err != nil {
		l.mu.Unlock()
		b.hookFailed(err)
		return 0, err
	}
	id = l.newID()
	t := &timeoutReg{id: id, forLibxl: forLibxl, b: b, sink: b.sink, deadline: deadline, state: tArmed}
	t.gen.Store(1)
	heap.Push(&l.timers, t)
	b.timeouts[id] = t
	l.nTimeouts++
	needWake := t.index == 0
	l.mu.Unlock()
	if needWake {
		l.wake()
	}
	return id, nil
}

// TimeoutModify implements osevent.Hooks. FireNow makes an armed timeout
// due at once, and is a no-op on a timeout that is already firing. Any
// other deadline re-arms the timeout, even one that is firing: the
// delivery in flight then sees StillLive() == false.
func (b *Binding) TimeoutModify(reg osevent.RegID, abs time.Time) (err error) {
	l := b.l
	if l.trace != nil {
		defer func() {
			l.emit(TraceEvent{Op: OpTimeoutModify, Binding: b.id, Reg: reg, Timeout: true, Deadline: abs, Err: err})
		}()
	}
	if err := b.injected(OpTimeoutModify, -1); err != nil {
		b.hookFailed(err)
		return err
	}
	fireNow := osevent.IsFireNow(abs)
	deadline := l.monoDeadline(abs)
	l.mu.Lock()
	t := b.timeouts[reg]
	if t == nil {
		b.unknown(OpTimeoutModify)
		l.mu.Unlock()
		return fmt.Errorf("%w: timeout_modify %d", ErrUnknownReg, reg)
	}
	needWake := false
	switch {
	case fireNow && t.state != tArmed:
		// Racing its own firing (or gated): the firing wins.
		l.stats.fireNowRaced.Add(1)
		b.stats.fireNowRaced.Add(1)
	case fireNow:
		if deadline < t.deadline {
			t.deadline = deadline
			heap.Fix(&l.timers, t.index)
		}
		needWake = t.index == 0
		l.stats.fireNow.Add(1)
		b.stats.fireNow.Add(1)
	case t.state == tArmed:
		t.deadline = deadline
		t.gen.Add(1)
		heap.Fix(&l.timers, t.index)
		needWake = true
	default: // firing or gated: re-arm for the new deadline
		t.deadline = deadline
		t.state = tArmed
		t.gen.Add(1)
		heap.Push(&l.timers, t)
		needWake = true
	}
	l.mu.Unlock()
	if needWake {
		l.wake()
	}
	return nil
}

// TimeoutDeregister implements osevent.Hooks (libxl 4.2.0/4.2.1 only).
// After it returns no delivery of reg starts, and one in flight sees
// StillLive() == false. An unknown ID is a counted no-op.
func (b *Binding) TimeoutDeregister(reg osevent.RegID) {
	l := b.l
	l.mu.Lock()
	t := b.timeouts[reg]
	reaped := b.reaped
	if t == nil {
		b.unknown(OpTimeoutDeregister)
	} else {
		l.unlinkTimeout(t)
	}
	l.mu.Unlock()
	if l.trace != nil {
		var err error
		if t == nil {
			err = unknownOrReaped(reaped)
		}
		l.emit(TraceEvent{Op: OpTimeoutDeregister, Binding: b.id, Reg: reg, Timeout: true, Err: err})
	}
}

// unlinkTimeout kills a timeout and forgets it. Loop.mu held.
func (l *Loop) unlinkTimeout(t *timeoutReg) {
	t.gen.Store(0)
	if t.index >= 0 {
		heap.Remove(&l.timers, t.index)
	}
	delete(t.b.timeouts, t.id)
	l.nTimeouts--
}

// CloseGate implements osevent.Quiescer: no new delivery to this binding
// starts after it is called, and it returns once the ones in flight have
// returned. Any number of CloseGate calls may wait at once. It fails with
// ErrOnDispatcher on the dispatcher goroutine (from inside a Sink), where
// waiting would deadlock.
func (b *Binding) CloseGate() error {
	if b.l.onDispatcher() {
		return ErrOnDispatcher
	}
	b.gate.Store(true)
	for b.inflight.Load() != 0 {
		<-b.drained
	}
	// drained holds one token for any number of waiters: pass it on, so
	// that a concurrent CloseGate waiting for the same drain wakes too.
	select {
	case b.drained <- struct{}{}:
	default:
	}
	return nil
}

// Reap implements osevent.Quiescer: it forgets every registration of the
// binding without delivering any (a timeout is never fired early), and
// returns how many it forgot. Later deregister hooks are accepted as
// no-ops (counted as LateHooks); later registrations fail with
// ErrDetached. Reap does not wait for deliveries in flight: call
// CloseGate first.
func (b *Binding) Reap() (fds, timeouts int) {
	l := b.l
	l.mu.Lock()
	fds, timeouts, reaped := l.reapLocked(b)
	l.mu.Unlock()
	l.emitAll(reaped)
	return fds, timeouts
}

// reapLocked forgets b's registrations. With tracing on it returns their
// trace events, for the caller to emit once Loop.mu is released.
func (l *Loop) reapLocked(b *Binding) (fds, timeouts int, reaped []TraceEvent) {
	for _, r := range b.fdRegs {
		if l.trace != nil {
			reaped = append(reaped, TraceEvent{Op: OpReaped, Binding: b.id, Reg: r.id, FD: r.fd})
		}
		l.unlinkFD(r)
		fds++
	}
	for _, t := range b.timeouts {
		if l.trace != nil {
			reaped = append(reaped, TraceEvent{Op: OpReaped, Binding: b.id, Reg: t.id, Timeout: true})
		}
		l.unlinkTimeout(t)
		timeouts++
	}
	b.reaped = true
	if n := uint64(fds + timeouts); n != 0 {
		l.stats.reaped.Add(n)
		b.stats.reaped.Add(n)
	}
	return fds, timeouts, reaped
}

func (l *Loop) emitAll(evs []TraceEvent) {
	for _, ev := range evs {
		l.emit(ev)
	}
}

// Detach implements osevent.Quiescer: it closes the gate (without
// waiting), reaps what is left and removes the binding from the loop.
// Afterwards every hook is a no-op or fails with ErrDetached, and nothing
// of the binding remains in the loop's registry.
func (b *Binding) Detach() {
	b.gate.Store(true)
	l := b.l
	var reaped []TraceEvent
	l.mu.Lock()
	if !b.detached {
		_, _, reaped = l.reapLocked(b)
		b.detached = true
		delete(l.bindings, b)
	}
	l.mu.Unlock()
	l.emitAll(reaped)
}

// Stats returns the binding's counters. Rounds and StaleEpoll are
// loop-wide and left 0; Bindings is 1 while attached.
func (b *Binding) Stats() Stats {
	var s Stats
	b.stats.fill(&s)
	b.l.mu.Lock()
	if !b.detached {
		s.Bindings = 1
	}
	s.FDRegs = len(b.fdRegs)
	s.Timeouts = len(b.timeouts)
	for _, r := range b.fdRegs {
		if r.entry.refused {
			s.AlwaysReadyFDs++
		}
	}
	b.l.mu.Unlock()
	return s
}

// OnDispatcher reports whether the caller runs on the loop's dispatcher
// goroutine, i.e. inside a Sink call. libxl.Ctx.Close uses it to refuse a
// teardown that would wait for its own goroutine.
func (b *Binding) OnDispatcher() bool { return b.l.onDispatcher() }
