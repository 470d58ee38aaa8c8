package eventloop

import (
	"container/heap"
	"fmt"
	"time"

	"github.com/goxl/goxl/internal/osevent"
)

// delivery is one Sink call decided by collect. Exactly one of fr, tr is
// set.
type delivery struct {
	fr  *fdReg
	tr  *timeoutReg
	gen uint64 // the timeout's gen when collect popped it
	rev osevent.PollEvents
}

// After this many consecutive rounds in which only always-ready fds were
// delivered, the dispatcher waits up to alwaysReadyBackoff between rounds
// instead of polling.
const (
	alwaysReadySpin    = 1000
	alwaysReadyBackoff = time.Millisecond
)

func (l *Loop) run(started chan<- struct{}) {
	l.dispatcherID.Store(goid())
	if started != nil {
		close(started)
	}
	stopped := false
	defer func() {
		if stopped {
			close(l.done)
			return
		}
		// A callback ended this goroutine with runtime.Goexit (which
		// recover cannot stop; t.FailNow in a test Sink does it). The
		// deferred exits kept the admission counts right: carry on in a
		// new dispatcher, which first makes the rest of the batch.
		l.report(nil, fmt.Errorf("%w: runtime.Goexit on the dispatcher; dispatcher restarted", ErrCallbackPanic))
		go l.run(nil)
	}()
	l.deliver() // the rest of a batch, after a restart
	for !l.stopping.Load() {
		timeout := l.nextTimeout()
		n, err := l.poller.Wait(l.events, timeout)
		if l.stopping.Load() {
			break
		}
		if err != nil {
			// Cannot happen short of a closed epoll fd; do not spin.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		l.stats.rounds.Add(1)
		l.collect(n)
		l.deliver()
	}
	stopped = true
}

// nextTimeout is how long the dispatcher may sleep.
func (l *Loop) nextTimeout() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.alwaysReadyWanted() {
		if l.arRounds >= alwaysReadySpin {
			if len(l.timers) > 0 {
				if d := time.Duration(l.timers[0].deadline - l.now()); d < alwaysReadyBackoff {
					return max(d, 0)
				}
			}
			return alwaysReadyBackoff
		}
		return 0
	}
	if len(l.timers) == 0 {
		return -1
	}
	d := time.Duration(l.timers[0].deadline - l.now())
	return max(d, 0)
}

// alwaysReadyWanted reports whether some always-ready registration wants
// IN or OUT, the only bits collect delivers for them: an always-ready fd
// with events 0 (or PRI only: a regular file never has priority data)
// must not make the dispatcher poll. Loop.mu held.
func (l *Loop) alwaysReadyWanted() bool {
	for _, e := range l.alwaysReady {
		for _, r := range e.regs {
			if osevent.PollEvents(r.events.Load())&(osevent.PollIn|osevent.PollOut) != 0 {
				return true
			}
		}
	}
	return false
}

// collect turns n epoll events, the always-ready fds and the expired
// timeouts into l.batch.
func (l *Loop) collect(n int) {
	batch := l.batch[:0]
	var staleEpoll uint64
	l.mu.Lock()
	for i := 0; i < n; i++ {
		ev := &l.events[i]
		fd := int(ev.Fd)
		var e *fdEntry
		if fd >= 0 && fd < len(l.fds) {
			e = l.fds[fd]
		}
		if e == nil || int32(e.gen) != ev.Pad {
			// An entry deleted (and perhaps replaced) after epoll_wait
			// returned: its readiness belongs to nobody now.
			staleEpoll++
			continue
		}
		rev := fromEpoll(ev.Events)
		for _, r := range e.regs {
			want := osevent.PollEvents(r.events.Load())
			if want == 0 {
				continue
			}
			if got := rev & (want | errHup); got != 0 {
				batch = append(batch, delivery{fr: r, rev: got})
			}
		}
	}
	nonAR := len(batch)
	for _, e := range l.alwaysReady {
		for _, r := range e.regs {
			want := osevent.PollEvents(r.events.Load())
			if got := want & (osevent.PollIn | osevent.PollOut); got != 0 {
				batch = append(batch, delivery{fr: r, rev: got})
			}
		}
	}
	if len(l.timers) > 0 {
		now := l.now()
		for len(l.timers) > 0 && l.timers[0].deadline <= now {
			t := heap.Pop(&l.timers).(*timeoutReg)
			t.state = tFiring
			batch = append(batch, delivery{tr: t, gen: t.gen.Load()})
			nonAR++
		}
	}
	if nonAR == 0 && len(batch) > 0 {
		l.arRounds++
	} else {
		l.arRounds = 0
	}
	l.mu.Unlock()
	if staleEpoll != 0 {
		l.stats.staleEpoll.Add(staleEpoll)
	}
	l.batch = batch
}

func (l *Loop) deliver() {
	var stale, gated uint64
	for i := range l.batch {
		d := l.batch[i]
		l.batch[i] = delivery{} // let the GC have dead registrations; marks it made
		var ok bool
		switch {
		case d.fr == nil && d.tr == nil:
			continue // made before a restart
		case d.fr != nil:
			ok = l.deliverFD(d.fr, d.rev, &gated)
		default:
			ok = l.deliverTimeout(d.tr, d.gen, &gated)
		}
		if !ok {
			stale++
		}
	}
	l.batch = l.batch[:0]
	if stale -= gated; stale != 0 {
		l.stats.staleDropped.Add(stale)
	}
	if gated != 0 {
		l.stats.gated.Add(gated)
	}
}

// enter admits a delivery to b (race 2): false if b's gate is closed.
func (b *Binding) enter() bool {
	b.inflight.Add(1)
	if b.gate.Load() {
		b.exit()
		return false
	}
	return true
}

func (b *Binding) exit() {
	if b.inflight.Add(-1) == 0 && b.gate.Load() {
		select {
		case b.drained <- struct{}{}:
		default:
		}
	}
	if h := b.l.opts.afterRelease; h != nil {
		h()
	}
}

func (l *Loop) deliverFD(r *fdReg, rev osevent.PollEvents, gated *uint64) bool {
	g := r.gen.Load()
	want := osevent.PollEvents(r.events.Load())
	// Re-check against the registration as it is now: earlier
	// deliveries of this batch may have deregistered or modified it.
	rev &= want | errHup
	if g == 0 || want == 0 || rev == 0 {
		if l.trace != nil {
			l.emit(TraceEvent{Op: OpDropped, Binding: r.b.id, Reg: r.id, Timeout: false, FD: r.fd, Events: want, Revents: rev})
		}
		r.b.stats.staleDropped.Add(1)
		return false
	}
	b := r.b
	if !b.enter() {
		*gated++
		b.stats.gated.Add(1)
		return false
	}
	l.occurredFD(r, want, rev, g)
	return true
}

// occurredFD makes one admitted fd delivery. The deferred exit and
// recover keep the admission count right and the dispatcher alive
// whatever the Sink does.
func (l *Loop) occurredFD(r *fdReg, want, rev osevent.PollEvents, g uint64) {
	b := r.b
	defer b.exit()
	// Counted before the admission is released: once CloseGate returns,
	// Stats include every delivery it drained.
	defer l.countDelivery(b, false)
	r.decided.Store(g)
	if l.trace != nil {
		l.emit(TraceEvent{Op: OpOccurredFD, Binding: b.id, Reg: r.id, FD: r.fd, Events: want, Revents: rev})
	}
	defer l.recoverCallback(OpOccurredFD, b, r.id)
	r.sink.OccurredFD(r.forLibxl, r.fd, want, rev, &r.liveness)
}

func (l *Loop) deliverTimeout(t *timeoutReg, g uint64, gated *uint64) bool {
	b := t.b
	if t.gen.Load() != g {
		// Deregistered or reaped after collect (already unlinked), or
		// re-armed (back in the heap, it will fire at its new time).
		if l.trace != nil {
			l.emit(TraceEvent{Op: OpDropped, Binding: b.id, Reg: t.id, Timeout: true})
		}
		b.stats.staleDropped.Add(1)
		return false
	}
	if !b.enter() {
		l.mu.Lock()
		if t.state == tFiring {
			t.state = tGated // Reap will forget it; never fired
		}
		l.mu.Unlock()
		*gated++
		b.stats.gated.Add(1)
		return false
	}
	l.occurredTimeout(t, g)
	return true
}

func (l *Loop) countDelivery(b *Binding, timeout bool) {
	if timeout {
		l.stats.timeoutDeliveries.Add(1)
		b.stats.timeoutDeliveries.Add(1)
	} else {
		l.stats.fdDeliveries.Add(1)
		b.stats.fdDeliveries.Add(1)
	}
}

// forgetFired forgets a delivered timeout, unless it was re-armed
// meanwhile: libxl considered it deregistered on entry to
// occurred_timeout.
func (l *Loop) forgetFired(t *timeoutReg, g uint64) {
	l.mu.Lock()
	if t.state == tFiring && t.gen.Load() == g {
		t.gen.Store(0)
		delete(t.b.timeouts, t.id)
		l.nTimeouts--
	}
	l.mu.Unlock()
}

// occurredTimeout makes one admitted timeout delivery; see occurredFD.
func (l *Loop) occurredTimeout(t *timeoutReg, g uint64) {
	b := t.b
	defer b.exit()
	// Forgotten before the admission is released (deferred: also after a
	// Goexit in the Sink): once CloseGate's drain returns, a delivered
	// timeout is gone, so Reap never counts it as reaped.
	defer l.forgetFired(t, g)
	defer l.countDelivery(b, true)
	t.decided.Store(g)
	if l.trace != nil {
		l.emit(TraceEvent{Op: OpOccurredTimeout, Binding: b.id, Reg: t.id, Timeout: true})
	}
	defer l.recoverCallback(OpOccurredTimeout, b, t.id)
	t.sink.OccurredTimeout(t.forLibxl, &t.liveness)
}
