package bounded

import (
	"errors"
	"sync"
	"testing"
)

var errOverflow = errors.New("overflow")

func TestOverflowEndsAfterTheBufferedValues(t *testing.T) {
	c := New[int](2, errOverflow)
	if !c.Send(1) || !c.Send(2) {
		t.Fatal("values that fit were refused")
	}
	if c.Send(3) {
		t.Fatal("a value that does not fit was accepted")
	}
	var got []int
	for v := range c.C() {
		got = append(got, v)
	}
	if len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("got %v", got)
	}
	if !errors.Is(c.Err(), errOverflow) {
		t.Fatalf("Err = %v", c.Err())
	}
	if c.Send(4) {
		t.Fatal("Send after the end")
	}
}

func TestFirstReasonWins(t *testing.T) {
	closed := errors.New("closed")
	c := New[int](1, errOverflow)
	if c.Err() != nil {
		t.Fatal("Err before the end")
	}
	c.End(closed)
	c.End(errOverflow)
	if c.Err() != closed {
		t.Fatalf("Err = %v", c.Err())
	}
}

func TestConcurrentSendAndEnd(t *testing.T) {
	c := New[int](1000, errOverflow)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				c.Send(i)
			}
		}()
	}
	c.End(errors.New("stop"))
	wg.Wait()
	n := 0
	for range c.C() {
		n++
	}
	if n > 1000 {
		t.Fatalf("%d values in a channel of 1000", n)
	}
}
