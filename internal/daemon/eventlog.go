package daemon

import (
	"context"
	"fmt"
	"sync"

	"github.com/goxl/goxl/driver"
)

// eventLog numbers the driver's events and keeps the last capacity of
// them, so that a subscriber can start where it asks and resume after a
// reconnect. Each subscriber reads with its own cursor: it gets every
// event from its start exactly once, in order, and never blocks the
// daemon; one that falls more than capacity events behind is ended with
// an overflow error (it resubscribes from what it last saw, or lists).
type eventLog struct {
	mu      sync.Mutex // leaf lock
	ring    []Event
	base    uint64        // sequence number of this log's first event (1, or where the previous daemon stopped)
	next    uint64        // sequence number of the next event
	changed chan struct{} // closed and replaced on every append
	closed  bool

	// reserved is the highest number handed out so far plus one, as
	// persisted: numbers below it may have been seen by a client. When
	// next reaches it, reserve is called (under mu) to persist a new one.
	reserved uint64
	reserve  func(upTo uint64) error
}

func newEventLog(capacity int) *eventLog {
	return newEventLogFrom(capacity, 1, nil)
}

// newEventLogFrom starts numbering at base; reserve, if set, persists
// the numbers in blocks (seqStore) so that a later daemon never numbers
// an event with a number a client may have seen.
func newEventLogFrom(capacity int, base uint64, reserve func(upTo uint64) error) *eventLog {
	if capacity <= 0 {
		capacity = 4096
	}
	if base == 0 {
		base = 1
	}
	return &eventLog{ring: make([]Event, capacity), base: base, next: base, reserved: base, reserve: reserve, changed: make(chan struct{})}
}

// reserveBlock is how many sequence numbers are persisted at a time.
const reserveBlock = 1024

// append numbers e and keeps it. Its cost does not depend on the number
// of domains or subscribers (subscribers are woken by one close).
func (l *eventLog) append(e driver.DomainEvent) uint64 {
	l.mu.Lock()
	seq := l.next
	if l.reserve != nil && seq >= l.reserved {
		// Persisted before the number is used: a daemon killed now
		// starts above it.
		if err := l.reserve(seq + reserveBlock); err == nil {
			l.reserved = seq + reserveBlock
		}
	}
	l.ring[seq%uint64(len(l.ring))] = Event{Seq: seq, DomainEvent: e}
	l.next++
	if l.closed {
		// Stopping: readers were woken for good by close.
		l.mu.Unlock()
		return seq
	}
	ch := l.changed
	l.changed = make(chan struct{})
	l.mu.Unlock()
	close(ch)
	return seq
}

// close wakes every reader for good.
func (l *eventLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.changed)
	}
}

// bounds returns the oldest kept and the next sequence number.
func (l *eventLog) bounds() (first, next uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.firstLocked(), l.next
}

func (l *eventLog) firstLocked() uint64 {
	if l.next-l.base > uint64(len(l.ring)) {
		return l.next - uint64(len(l.ring))
	}
	return l.base
}

// start resolves a subscriber's Since: 0 is "from now on".
func (l *eventLog) start(since uint64) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if since == 0 {
		return l.next, nil
	}
	if first := l.firstLocked(); since < first {
		return 0, fmt.Errorf("%w: event %d asked, the oldest kept is %d", ErrEventsGone, since, first)
	}
	if since > l.next {
		return l.next, nil
	}
	return since, nil
}

// read returns the events from cursor on (at most max), waiting for one
// if there is none yet. It fails with an overflow error when the reader
// fell behind by more than the log keeps.
func (l *eventLog) read(ctx context.Context, cursor uint64, max int) ([]Event, error) {
	for {
		l.mu.Lock()
		if first := l.firstLocked(); cursor < first {
			l.mu.Unlock()
			return nil, fmt.Errorf("%w: subscriber fell behind: events %d to %d were dropped; list the domains and subscribe again from %d",
				driver.ErrStreamOverflow, cursor, first-1, first)
		}
		if cursor < l.next {
			n := l.next - cursor
			if n > uint64(max) {
				n = uint64(max)
			}
			out := make([]Event, 0, n)
			for s := cursor; s < cursor+n; s++ {
				out = append(out, l.ring[s%uint64(len(l.ring))])
			}
			l.mu.Unlock()
			return out, nil
		}
		ch, closed := l.changed, l.closed
		l.mu.Unlock()
		if closed {
			return nil, ErrDaemonStopping
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
