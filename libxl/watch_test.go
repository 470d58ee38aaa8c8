package libxl

import (
	"errors"
	"sync"
	"testing"
)

// The overflow policy: a full buffer never blocks the deliverer; the
// channel closes after the events already buffered, and Err says
// ErrEventOverflow.
func TestSubscriptionOverflow(t *testing.T) {
	s := newSubscription(3)
	for i := 0; i < 10; i++ {
		s.deliver(Event{Type: EventDomainShutdown, DomID: uint32(i)})
	}
	var got []uint32
	for e := range s.C() {
		got = append(got, e.DomID)
	}
	if len(got) != 3 || got[0] != 0 || got[2] != 2 {
		t.Fatalf("buffered events %v", got)
	}
	if !errors.Is(s.Err(), ErrEventOverflow) {
		t.Fatalf("Err = %v", s.Err())
	}
	s.Close() // after overflow: harmless
	if !errors.Is(s.Err(), ErrEventOverflow) {
		t.Fatalf("Close changed Err to %v", s.Err())
	}
}

func TestSubscriptionCloseKeepsBuffered(t *testing.T) {
	s := newSubscription(0)
	stopped := 0
	s.stop = func() { stopped++ }
	s.deliver(Event{Type: EventDomainDeath, DomID: 7})
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
	s.Close()
	s.Close()
	s.deliver(Event{Type: EventDomainDeath, DomID: 8}) // after close: dropped, no panic
	var got []Event
	for e := range s.C() {
		got = append(got, e)
	}
	if len(got) != 1 || got[0].DomID != 7 || stopped != 1 || !errors.Is(s.Err(), ErrSubscriptionClosed) {
		t.Fatalf("got %v stopped %d err %v", got, stopped, s.Err())
	}
}

// Concurrent delivery, overflow and close: run with -race.
func TestSubscriptionConcurrent(t *testing.T) {
	for round := 0; round < 50; round++ {
		s := newSubscription(4)
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 10; i++ {
					s.deliver(Event{DomID: uint32(i)})
				}
			}()
		}
		wg.Add(1)
		go func() { defer wg.Done(); s.Close() }()
		n := 0
		for range s.C() {
			n++
		}
		wg.Wait()
		if n > 40 || s.Err() == nil {
			t.Fatalf("n=%d err=%v", n, s.Err())
		}
	}
}
