package libxl

import (
	"errors"
	"sync"

	"github.com/goxl/goxl/internal/bounded"
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
// dispatcher) and takes only the channel's leaf lock (internal/bounded).
type Subscription struct {
	events *bounded.Chan[Event]
	stop   func() // disables the generator and unsubscribes; set once armed
	close  sync.Once
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
	return &Subscription{events: bounded.New[Event](buffer, ErrEventOverflow)}
}

// C returns the channel of events. It is closed after Close, after an
// overflow, or after the ctx closed; Err says which.
func (s *Subscription) C() <-chan Event { return s.events.C() }

// Err returns nil while the subscription runs, then why it ended:
// ErrEventOverflow, ErrSubscriptionClosed, ErrClosed (the ctx closed) or
// ErrDisaster (libxl reported that events may never come again).
func (s *Subscription) Err() error { return s.events.Err() }

// deliver hands one event on without blocking; see the overflow policy.
func (s *Subscription) deliver(e Event) { s.events.Send(e) }

func (s *Subscription) finish(err error) { s.events.End(err) }

// Close disables the event generator in libxl (libxl_evdisable_*), then
// stops routing to this subscription and closes the channel. Events
// already buffered stay readable. It is idempotent, and safe after the
// ctx closed (libxl_ctx_free disabled the generator then). Do not call it from
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
