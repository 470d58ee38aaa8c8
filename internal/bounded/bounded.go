// Package bounded is the event channel shared by libxl.Subscription and
// driver.EventStream: bounded, never blocking its sender, and explicit
// about overflow.
//
// Policy: Send never blocks (it runs on libxl's thread or the driver's
// event goroutine). When a value does not fit, the channel ends: it is
// closed after the values already buffered, and Err returns the overflow
// error the owner chose. A value is never dropped silently.
//
// Lock rule: mu is a leaf; it is never held while blocking or calling out.
package bounded

import "sync"

// Chan is a bounded, closable channel of T with a reason for its end.
type Chan[T any] struct {
	ch       chan T
	overflow error

	mu   sync.Mutex // guards done, err and the close of ch
	done bool
	err  error
}

// New returns a Chan with the given capacity (at least 1) that ends with
// overflow when a Send does not fit.
func New[T any](capacity int, overflow error) *Chan[T] {
	if capacity < 1 {
		capacity = 1
	}
	return &Chan[T]{ch: make(chan T, capacity), overflow: overflow}
}

// C returns the receive side; it is closed when the Chan ends.
func (c *Chan[T]) C() <-chan T { return c.ch }

// Err is nil while the Chan runs, then why it ended.
func (c *Chan[T]) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Send queues v without blocking; see the package's overflow policy. It
// reports whether v was queued.
func (c *Chan[T]) Send(v T) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return false
	}
	select {
	case c.ch <- v:
		return true
	default:
		c.endLocked(c.overflow)
		return false
	}
}

// End closes the channel with err as the reason; the first reason wins.
func (c *Chan[T]) End(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endLocked(err)
}

func (c *Chan[T]) endLocked(err error) {
	if c.done {
		return
	}
	c.done, c.err = true, err
	close(c.ch)
}
