package driver

import (
	"errors"
	"sync"
	"time"

	"github.com/goxl/goxl/internal/bounded"
	"github.com/goxl/goxl/libxl"
)

// DomainEvent is a lifecycle event as the driver reports it: libxl's
// events (shutdown with its reason, death) and the driver's own steps.
type DomainEvent struct {
	Time   time.Time            `json:"time"`
	DomID  uint32               `json:"domid"`
	Name   string               `json:"name"`
	Kind   string               `json:"event"` // created, unpaused, paused, shutdown, crashed, death, destroyed, saved, restored, restarted, resync
	Reason libxl.ShutdownReason `json:"-"`
	// ReasonName is set for shutdown events: poweroff, reboot, crash...
	ReasonName string      `json:"reason,omitempty"`
	State      DomainState `json:"state"`
	// Action is the on_* action taken, for shutdown and crash events.
	Action libxl.ShutdownAction `json:"action,omitempty"`
	// Err is why an on_* action failed ("action-failed" events); Error
	// is its text, for the daemon's protocol.
	Err   error  `json:"-"`
	Error string `json:"error,omitempty"`
}

// ErrStreamOverflow is what EventStream.Err returns when the consumer
// fell behind: the stream stopped; list the domains and subscribe again.
var ErrStreamOverflow = errors.New("driver: event stream overflowed: events were dropped; resync and subscribe again")

// ErrStreamClosed is what EventStream.Err returns after Close.
var ErrStreamClosed = errors.New("driver: event stream closed")

// EventStream delivers DomainEvents with the same bounded, explicit
// overflow policy as libxl.Subscription: the driver never blocks on a
// consumer; a full buffer ends the stream (its channel closes after the
// events already buffered) and Err returns ErrStreamOverflow.
type EventStream struct {
	events *bounded.Chan[DomainEvent]
	remove func()
}

func newEventStream(buffer int) *EventStream {
	if buffer <= 0 {
		buffer = 256
	}
	return &EventStream{events: bounded.New[DomainEvent](buffer, ErrStreamOverflow)}
}

// C returns the events; it is closed when the stream ends.
func (s *EventStream) C() <-chan DomainEvent { return s.events.C() }

// Err returns nil while the stream runs, then why it ended.
func (s *EventStream) Err() error { return s.events.Err() }

func (s *EventStream) send(e DomainEvent) { s.events.Send(e) }

// Close ends the stream; buffered events stay readable.
func (s *EventStream) Close() {
	s.events.End(ErrStreamClosed)
	if s.remove != nil {
		s.remove()
	}
}

// streams is the set of a driver's event streams.
type streams struct {
	mu  sync.Mutex // leaf lock
	set map[*EventStream]struct{}
}

func (ss *streams) add(s *EventStream) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.set == nil {
		ss.set = map[*EventStream]struct{}{}
	}
	ss.set[s] = struct{}{}
	s.remove = func() {
		ss.mu.Lock()
		delete(ss.set, s)
		ss.mu.Unlock()
	}
}

func (ss *streams) publish(e DomainEvent) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	ss.mu.Lock()
	list := make([]*EventStream, 0, len(ss.set))
	for s := range ss.set {
		list = append(list, s)
	}
	ss.mu.Unlock()
	for _, s := range list {
		s.send(e)
	}
}

func (ss *streams) closeAll() {
	ss.mu.Lock()
	list := make([]*EventStream, 0, len(ss.set))
	for s := range ss.set {
		list = append(list, s)
	}
	ss.mu.Unlock()
	for _, s := range list {
		s.Close()
	}
}
