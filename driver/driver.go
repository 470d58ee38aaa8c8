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

	mu      sync.Mutex // guards ctxs, managers, closed; never held while calling libxl
	ctxs    map[*libxl.Ctx]struct{}
	closed  bool
	opening sync.WaitGroup // newCtx calls admitted before Close; Close waits for them
	// managers are the Domains built on this driver: Close closes them
	// first, so that their operations end (aborted and cleaned up) while
	// every ctx is still open.
	managers map[*Domains]struct{}
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
	d := &Driver{opts: opts, loop: loop, ctxs: map[*libxl.Ctx]struct{}{}, managers: map[*Domains]struct{}{}}
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

// newCtx opens a ctx on the loop. A ctx it makes is either recorded in
// d.ctxs before Close takes its snapshot, or closed here: Close waits
// for every newCtx admitted before it, so no binding is left attached
// when the loop closes.
func (d *Driver) newCtx(onClosed func(*libxl.Ctx)) (*libxl.Ctx, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, ErrDriverClosed
	}
	d.opening.Add(1)
	d.mu.Unlock()
	defer d.opening.Done()

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

// addManager records a Domains built on the driver; false once closed.
func (d *Driver) addManager(m *Domains) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	d.managers[m] = struct{}{}
	return true
}

func (d *Driver) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

func (d *Driver) removeManager(m *Domains) {
	d.mu.Lock()
	delete(d.managers, m)
	d.mu.Unlock()
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

// Close ends everything built on the driver, in this order:
//
//  1. refuse new ctxs and new Domains (ErrDriverClosed), and wait for the
//     OpenCtx calls already admitted;
//  2. close every Domains built on it (Domains.Close): operations in
//     flight are aborted and waited for, their cleanup included (a
//     half-built domain is destroyed, a guest whose save failed is
//     resumed), while every ctx is still open;
//  3. close the short-lived ctxs, then the driver-wide one, each in
//     libxl's teardown order (libxl.Ctx.Close, which also aborts and
//     waits for the operations started on it directly);
//  4. stop the loop.
//
// So an operation that Close interrupts returns an error matching
// ErrDriverClosed (or libxl.ErrClosed) and leaves no domain behind.
// Close is idempotent.
func (d *Driver) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.opening.Wait()

	d.mu.Lock()
	managers := make([]*Domains, 0, len(d.managers))
	for m := range d.managers {
		managers = append(managers, m)
	}
	d.mu.Unlock()
	var errs []error
	for _, m := range managers {
		errs = append(errs, m.Close())
	}

	d.mu.Lock()
	open := make([]*libxl.Ctx, 0, len(d.ctxs))
	for c := range d.ctxs {
		open = append(open, c)
	}
	d.mu.Unlock()
	for _, c := range open {
		errs = append(errs, c.Close())
	}
	errs = append(errs, d.ctx.Close(), d.loop.Close())
	return errors.Join(errs...)
}
