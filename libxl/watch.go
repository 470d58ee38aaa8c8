package libxl

import (
	"errors"
	"sync"
)

// ErrEventOverflow is what Subscription.Err returns after the buffer
// overflowed: events were lost, and the consumer must resync (list the
// domains again and re-subscribe).
var ErrEventOverflow = errors.New("libxl: event subscription overflowed: events were dropped; resync and subscribe again")

// ErrSubscriptionClosed is what Subscription.Err returns after Close.
var ErrSubscriptionClosed = errors.New("libxl: event subscription closed")

// DefaultEventBuffer is the buffer of a subscription when none is given.
// A domain makes at most a few lifecycle events; 64 absorbs bursts.
const DefaultEventBuffer = 64

// Subscription delivers the events of one libxl event generator
// (libxl_evenable_domain_death, libxl_evenable_disk_eject) on a channel.
//
// Overflow policy: libxl's thread never blocks on a consumer. The channel
// is bounded; when an event does not fit, the subscription stops: the
// channel is closed after the events already buffered, and Err returns
// ErrEventOverflow. The consumer reads until the channel closes, then
// checks Err and resyncs. An event is never dropped silently.
//
// Lock rule: deliver runs on the thread inside libxl (usually the
// dispatcher) and takes only mu, which is never held while calling libxl
// or while blocking.
type Subscription struct {
	ch    chan Event
	mu    sync.Mutex
	done  bool
	err   error
	stop  func() // disables the generator and unsubscribes; set once armed
	close sync.Once
}

// WatchOptions tune a subscription.
type WatchOptions struct {
	// Buffer is the channel's capacity; zero means DefaultEventBuffer.
	Buffer int
}

func newSubscription(buffer int) *Subscription {
	if buffer <= 0 {
		buffer = DefaultEventBuffer
	}
	return &Subscription{ch: make(chan Event, buffer)}
}

// C returns the channel of events. It is closed after Close, after an
// overflow, or after the ctx closed; Err says which.
func (s *Subscription) C() <-chan Event { return s.ch }

// Err returns nil while the subscription runs, then why it ended:
// ErrEventOverflow, ErrSubscriptionClosed or ErrClosed (the ctx closed).
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// deliver hands one event on without blocking; see the overflow policy.
func (s *Subscription) deliver(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	select {
	case s.ch <- e:
	default:
		s.finishLocked(ErrEventOverflow)
	}
}

func (s *Subscription) finish(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finishLocked(err)
}

func (s *Subscription) finishLocked(err error) {
	if s.done {
		return
	}
	s.done = true
	s.err = err
	close(s.ch)
}

// Close disables the event generator in libxl (libxl_evdisable_*), then
// stops routing to this subscription and closes the channel. Events
// already buffered stay readable. It is idempotent, and safe after the
// ctx closed (Close disabled the generator then). Do not call it from
// code that holds a lock that is held while calling libxl.
func (s *Subscription) Close() error {
	s.close.Do(func() {
		// Finish first: events that race with the disable are the
		// caller's to ignore, and Err says the caller closed it.
		s.finish(ErrSubscriptionClosed)
		if s.stop != nil {
			s.stop()
		}
	})
	return nil
}
