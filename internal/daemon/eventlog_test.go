package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/goxl/goxl/driver"
)

// Every subscriber sees every event from where it started, exactly once
// and in order, while events are appended concurrently.
func TestEventLogExactlyOnceInOrder(t *testing.T) {
	const total = 5000
	l := newEventLog(total)
	const subs = 4
	var wg sync.WaitGroup
	errs := make(chan error, subs)
	for i := 0; i < subs; i++ {
		cursor, err := l.start(1)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			want := cursor
			for want <= total {
				evs, err := l.read(ctx, cursor, 16)
				if err != nil {
					errs <- err
					return
				}
				for _, e := range evs {
					if e.Seq != want || e.Name != fmt.Sprint(want) {
						errs <- fmt.Errorf("got seq %d (%s), want %d", e.Seq, e.Name, want)
						return
					}
					want++
				}
				cursor = want
			}
		}()
	}
	for i := 1; i <= total; i++ {
		l.append(driver.DomainEvent{Name: fmt.Sprint(i)})
		if i%32 == 0 {
			time.Sleep(time.Microsecond)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A reader more than the log's capacity behind is told, with the range
// it lost.
func TestEventLogOverflowReported(t *testing.T) {
	l := newEventLog(8)
	cursor, _ := l.start(0)
	for i := 0; i < 20; i++ {
		l.append(driver.DomainEvent{Kind: "x"})
	}
	_, err := l.read(context.Background(), cursor, 100)
	if !errors.Is(err, driver.ErrStreamOverflow) {
		t.Fatalf("read after being lapped: %v, want ErrStreamOverflow", err)
	}
	if _, err := l.start(1); !errors.Is(err, ErrEventsGone) {
		t.Fatalf("start from a dropped event: %v, want ErrEventsGone", err)
	}
	first, next := l.bounds()
	if first != 13 || next != 21 {
		t.Fatalf("bounds %d..%d, want 13..21", first, next)
	}
	evs, err := l.read(context.Background(), first, 100)
	if err != nil || len(evs) != 8 || evs[0].Seq != 13 {
		t.Fatalf("read from the oldest kept: %v %v", evs, err)
	}
}
