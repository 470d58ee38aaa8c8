package driver

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/goxl/goxl"
	"github.com/goxl/goxl/driver/eventloop"
	"github.com/goxl/goxl/libxl"
)

// Options configure a Driver. The zero value is usable.
type Options struct {
	// Logger receives the driver's and libxl's messages (nil: slog.Default()).
	Logger *slog.Logger
	// LogLevel is libxl's threshold (zero: warnings and above).
	LogLevel libxl.LogLevel
	// Xen42 says what to do on libxl 4.2.0/4.2.1; see libxl.Xen42Policy.
	Xen42 libxl.Xen42Policy
	// Loop configures the event loop (tracing, fault injection).
	Loop eventloop.Options
}

// ErrDriverClosed is returned by a Driver after Close.
var ErrDriverClosed = errors.New("driver: closed")

// Driver owns one event loop and one driver-wide libxl ctx, as modern
// libvirt does. It can also open short-lived ctxs on the same loop (the
// per-domain model of older libvirt), so that both lifetimes share one
// dispatcher.
type Driver struct {
	opts Options
	loop *eventloop.Loop
	ctx  *libxl.Ctx

	mu     sync.Mutex // guards ctxs and closed; never held while calling libxl
	ctxs   map[*libxl.Ctx]struct{}
	closed bool
}

// New starts the loop and opens the driver-wide ctx.
func New(opts Options) (*Driver, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	loop, err := eventloop.New(opts.Loop)
	if err != nil {
		return nil, fmt.Errorf("driver: %w", err)
	}
	d := &Driver{opts: opts, loop: loop, ctxs: map[*libxl.Ctx]struct{}{}}
	ctx, err := d.newCtx(nil)
	if err != nil {
		loop.Close()
		return nil, err
	}
	d.ctx = ctx
	return d, nil
}

// Ctx returns the driver-wide ctx. It lives until Close.
func (d *Driver) Ctx() *libxl.Ctx { return d.ctx }

// Loop returns the driver's event loop, for its counters and tracing.
func (d *Driver) Loop() *eventloop.Loop { return d.loop }

// OpenCtx opens another ctx on the driver's loop. Close it with its own
// Close when done; Driver.Close closes any left open.
func (d *Driver) OpenCtx() (*libxl.Ctx, error) {
	return d.newCtx(func(c *libxl.Ctx) {
		d.mu.Lock()
		delete(d.ctxs, c)
		d.mu.Unlock()
	})
}

func (d *Driver) newCtx(onClosed func(*libxl.Ctx)) (*libxl.Ctx, error) {
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return nil, ErrDriverClosed
	}
	binding := d.loop.Attach(nil)
	var c *libxl.Ctx
	opts := libxl.Options{
		Hooks:    binding,
		Logger:   d.opts.Logger,
		LogLevel: d.opts.LogLevel,
		Xen42:    d.opts.Xen42,
	}
	if onClosed != nil {
		opts.OnClosed = func() { onClosed(c) }
	}
	c, err := libxl.New(opts)
	if err != nil {
		binding.Detach()
		return nil, fmt.Errorf("driver: %w", err)
	}
	if onClosed != nil {
		d.mu.Lock()
		d.ctxs[c] = struct{}{}
		d.mu.Unlock()
	}
	return c, nil
}

// Stats combines the loop's counters with the C bridge's.
type Stats struct {
	Loop   eventloop.Stats
	Bridge goxl.Stats
}

// Stats returns a snapshot of the driver's counters.
func (d *Driver) Stats() Stats {
	return Stats{Loop: d.loop.Stats(), Bridge: goxl.ReadStats()}
}

// Close closes every ctx the driver opened, the driver-wide one last, then
// stops the loop. Each ctx is closed in libxl's teardown order (see
// libxl.Ctx.Close), so no call reaches a freed ctx.
func (d *Driver) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	open := make([]*libxl.Ctx, 0, len(d.ctxs))
	for c := range d.ctxs {
		open = append(open, c)
	}
	d.mu.Unlock()

	var errs []error
	for _, c := range open {
		errs = append(errs, c.Close())
	}
	errs = append(errs, d.ctx.Close(), d.loop.Close())
	return errors.Join(errs...)
}
