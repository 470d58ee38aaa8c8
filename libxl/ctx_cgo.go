//go:build cgo

package libxl

/*
#include "helpers.h"
#include <xentoollog.h>
*/
import "C"

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/goxl/goxl"
	"github.com/goxl/goxl/internal/osevent"
)

// Ctx is one libxl_ctx, set up in the order libxl requires and torn down
// in the order that leaves no call reaching freed memory. Methods are safe
// for concurrent use, and from inside libxl's event callbacks.
type Ctx struct {
	raw     *C.libxl_ctx // set by New and never changed; reached only by admitted calls
	hooks   Hooks
	opts    Options
	version VersionInfo

	loggerToken goxl.Token
	userToken   goxl.Token
	callbacks   *goxl.CtxCallbacks

	// mu guards the admission state below. It is a leaf: never held
	// while calling libxl or a user callback, never waited on by a hook.
	// Admission never blocks: a call is admitted or refused at once, so
	// a callback that calls back into the Ctx while Close is pending
	// cannot deadlock (sync.RWMutex would block new readers once a
	// writer waits).
	mu     sync.Mutex
	idle   sync.Cond // broadcast when ops or pins drop to zero
	state  ctxState
	ops    int   // operations admitted by beginOp and not yet ended
	pins   int   // short calls admitted by pin (run while Close is pending)
	broken error // set by libxl's disaster callback; refuses new operations
	logger *C.xentoollog_logger
	// inCallback counts, per goroutine, the user callbacks running
	// (Options.OnEvent, Call's fn): Close there would wait for itself.
	inCallback map[uint64]int

	serial     serialLock // Xen42Serialised mode only
	serialised bool

	closeSig closeSignal // fired when Close begins: operations abort (ao_cgo.go)

	// deferred holds events for Options.OnEvent that arrived while the
	// serial lock was held (Xen42Serialised only); whoever releases the
	// serial lock runs them, so OnEvent may call the Ctx again.
	deferredMu sync.Mutex
	deferred   []Event
	draining   bool

	subsMu sync.Mutex // guards subs; never held while calling libxl
	subs   map[uint64]*Subscription
	nextEv atomic.Uint64

	evgens evgenSet

	closeOnce sync.Once
	closeErr  error

	// Counters for tests and Stats.
	refusedDeliveries atomic.Uint64
	sigchldForwards   atomic.Uint64
}

type ctxState int

const (
	ctxOpen    ctxState = iota
	ctxClosing          // Close began: new operations are refused
	ctxFreed            // libxl_ctx_free is next or done: nothing reaches libxl
)

// New allocates a libxl ctx and wires it to opts.Hooks, in the order the
// contract requires: libxl_ctx_alloc, version check,
// libxl_osevent_register_hooks, libxl_childproc_setmode(mainloop),
// libxl_event_register_callbacks. Only then can events be enabled or
// operations started, and only through the returned Ctx.
func New(opts Options) (*Ctx, error) {
	if opts.Hooks == nil {
		return nil, ErrNoHooks
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.LogLevel == 0 {
		opts.LogLevel = LogWarn
	}
	c := &Ctx{hooks: opts.Hooks, opts: opts, subs: map[uint64]*Subscription{}}
	c.idle.L = &c.mu
	c.serial.init()

	logger, loggerToken, err := goxl.NewLogger(slogSink{opts.Logger}, int(opts.LogLevel))
	if err != nil {
		return nil, err
	}
	c.logger = (*C.xentoollog_logger)(logger)
	c.loggerToken = loggerToken

	var raw *C.libxl_ctx
	if rc := C.goxl_ctx_alloc(&raw, C.LIBXL_VERSION, 0, c.logger); rc != 0 {
		c.releaseLogger()
		return nil, fmt.Errorf("libxl_ctx_alloc: %w (is this a Xen dom0 with xenstored running and /proc/xen mounted?)", Error(rc))
	}
	c.raw = raw
	c.version = readVersion(raw)

	if c.version.Is42Unfixed() {
		switch resolveXen42(opts.Xen42, C.goxl_libxl_has_osevent_fix() != 0) {
		case Xen42Refuse:
			C.goxl_ctx_free(raw)
			c.releaseLogger()
			return nil, fmt.Errorf("libxl %s: %w", c.version, ErrUnpatched42)
		case Xen42Serialised:
			c.serialised = true
		}
	}

	if s, ok := opts.Hooks.(SinkSetter); ok {
		s.SetSink(c)
	}
	c.callbacks = &goxl.CtxCallbacks{Hooks: opts.Hooks, Events: eventReceiver{c},
		// 4.2.0 passes timeout_deregister a pointer to the ID, not the ID
		// (xen-patches/README, "Unpatched 4.2.0"). Patched and upstream-
		// fixed libxl never call timeout_deregister, so only an unfixed
		// 4.2.0 is affected.
		TimeoutDeregisterByReference: c.version.Major == 4 && c.version.Minor == 2 && micro42(c.version.Extra) == 0}
	c.userToken = goxl.BindCtx(c.callbacks)
	user := intPtr(uintptr(c.userToken)) // an integer that libxl only passes back
	C.libxl_osevent_register_hooks(raw, (*C.libxl_osevent_hooks)(goxl.OSEventHooksTable()), user)
	C.goxl_setmode_mainloop(raw)
	C.libxl_event_register_callbacks(raw, (*C.libxl_event_hooks)(goxl.EventHooksTable()), user)
	sigchld.add(c)
	return c, nil
}

// micro42 is the micro version in a 4.2 xen_version_extra (".0" → 0,
// ".1-pre" → 1), or -1.
func micro42(extra string) int {
	m := -1
	fmt.Sscanf(extra, ".%d", &m)
	return m
}

// Call runs fn with the raw libxl_ctx*, as one operation of the ctx:
// refused with ErrClosed once Close began, counted so that Close waits for
// it before libxl_ctx_free, and serialised in Xen42Serialised mode. It is
// for synchronous libxl functions goxl does not wrap (ao_how NULL: libxl
// finishes the operation before fn returns). fn must not keep the
// pointer, must not call libxl_ctx_free, and must not start an
// asynchronous operation with an ao_how of its own: libxl would still run
// it after Call returned, uncounted, and Close could free the ctx under it
// (real libxl aborts the process). Use CallAsync for those.
func (c *Ctx) Call(fn func(raw unsafe.Pointer) error) error {
	raw, exit, err := c.enter()
	if err != nil {
		return err
	}
	defer exit()
	leave := c.enterCallback()
	defer leave()
	return fn(unsafe.Pointer(raw))
}

// enterCallback records that the calling goroutine runs user code that
// Close would wait for (it holds an operation or a pin). The returned
// function ends the record.
func (c *Ctx) enterCallback() (leave func()) {
	id := goid()
	c.mu.Lock()
	if c.inCallback == nil {
		c.inCallback = map[uint64]int{}
	}
	c.inCallback[id]++
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		if c.inCallback[id]--; c.inCallback[id] == 0 {
			delete(c.inCallback, id)
		}
		c.mu.Unlock()
	}
}

func (c *Ctx) calledFromCallback() bool {
	id := goid()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inCallback[id] > 0
}

// goid returns the current goroutine's id, parsed from its stack header
// ("goroutine 123 [running]:"). Only Close and user callbacks use it.
func goid() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	var id uint64
	for _, b := range buf[len("goroutine "):n] {
		if b < '0' || b > '9' {
			break
		}
		id = id*10 + uint64(b-'0')
	}
	return id
}

// CallAsync runs one asynchronous libxl function goxl does not wrap, as
// one counted operation: start gets the raw libxl_ctx* and the
// libxl_asyncop_how* to pass to libxl, and returns libxl's rc. CallAsync
// returns after the operation completed (Close waits for that), with a
// typed error (*OpError) when it failed. If ctx is cancelled or Close
// begins it calls libxl_ao_abort and still waits for the completion, as
// every goxl operation does. start must not keep either pointer.
func (c *Ctx) CallAsync(ctx context.Context, op string, start func(raw, aoHow unsafe.Pointer) int) error {
	return c.runAO(ctx, op, func(raw *C.libxl_ctx, how *C.libxl_asyncop_how) C.int {
		return C.int(start(unsafe.Pointer(raw), unsafe.Pointer(how)))
	})
}

// Serialised reports whether the ctx runs in Xen42Serialised mode.
func (c *Ctx) Serialised() bool { return c.serialised }

// Version returns what libxl_get_version_info reported at New.
func (c *Ctx) Version() VersionInfo { return c.version }

// SetLogLevel changes the threshold of libxl's messages. After Close
// released the logger it does nothing and returns ErrClosed.
func (c *Ctx) SetLogLevel(l LogLevel) error {
	// mu is held across the store: releaseLogger takes it before it
	// destroys the logger, so the store never reaches freed memory.
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.logger == nil {
		return ErrClosed
	}
	goxl.SetLoggerLevel(unsafe.Pointer(c.logger), int(l))
	return nil
}

// Raw returns the libxl_ctx* for code that calls libxl directly (tests,
// the contract model), or nil once Close began. The pointer is valid
// until Close frees the ctx; prefer Call, which keeps it valid.
func (c *Ctx) Raw() unsafe.Pointer {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != ctxOpen {
		return nil
	}
	return unsafe.Pointer(c.raw)
}

// Err returns nil while the ctx is usable, ErrClosed once Close began, or
// the ErrDisaster error after libxl reported a disaster.
func (c *Ctx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.state != ctxOpen:
		return ErrClosed
	case c.broken != nil:
		return c.broken
	}
	return nil
}

// beginOp admits one operation: a synchronous call, or an asynchronous
// operation from its initiating call to its completion, or a longer
// sequence (a create and the cleanup of what it half-built) that must
// all run before the ctx is freed. It never blocks: once Close began it
// returns ErrClosed, after a disaster the disaster's error. Close waits
// until every admitted operation called end (end is idempotent). Inside
// the operation, reach libxl with enterInOp or runAOInOp.
func (c *Ctx) beginOp() (end func(), err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != ctxOpen {
		return nil, ErrClosed
	}
	if c.broken != nil {
		return nil, c.broken
	}
	c.ops++
	var once sync.Once
	return func() { once.Do(c.endOp) }, nil
}

func (c *Ctx) endOp() {
	c.mu.Lock()
	c.ops--
	if c.ops == 0 {
		c.idle.Broadcast()
	}
	c.mu.Unlock()
}

// enterInOp lets the holder of an operation (beginOp) call libxl. It is
// never refused: the ctx cannot be freed before that operation ends, even
// while Close is pending. exit must be called after the libxl call.
func (c *Ctx) enterInOp() (*C.libxl_ctx, func()) {
	c.lockSerial(serialAPI)
	return c.raw, func() { c.unlockSerial(serialAPI) }
}

// enter admits one synchronous libxl call: beginOp plus enterInOp. The
// returned function ends both.
func (c *Ctx) enter() (*C.libxl_ctx, func(), error) {
	end, err := c.beginOp()
	if err != nil {
		return nil, nil, err
	}
	raw, exit := c.enterInOp()
	return raw, func() { exit(); end() }, nil
}

// pin admits one short libxl call that must still run while Close is
// pending (a delivery, a SIGCHLD forward, an event generator's disable),
// because an operation Close waits for may depend on it. It never blocks;
// it fails only once Close has decided to free the ctx, and Close waits
// for every pin before libxl_ctx_free.
func (c *Ctx) pin() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == ctxFreed {
		return false
	}
	c.pins++
	return true
}

func (c *Ctx) unpin() {
	c.mu.Lock()
	c.pins--
	if c.pins == 0 {
		c.idle.Broadcast()
	}
	c.mu.Unlock()
}

// OccurredFD delivers an fd event to libxl (libxl_osevent_occurred_fd).
// It implements osevent.Sink; the loop calls it on its dispatcher with no
// loop lock held. It is refused in Go, whatever the Hooks, once Close has
// decided to free the ctx.
func (c *Ctx) OccurredFD(forLibxl osevent.ForLibxl, fd int, events, revents osevent.PollEvents, live osevent.Liveness) {
	if !c.pin() {
		c.refusedDeliveries.Add(1)
		return
	}
	defer c.unpin()
	c.lockSerial(serialDelivery)
	defer c.unlockSerial(serialDelivery)
	if c.serialised && live != nil && !live.StillLive() {
		return
	}
	C.libxl_osevent_occurred_fd(c.raw, forLibxlPtr(forLibxl), C.int(fd), C.short(events), C.short(revents))
}

// OccurredTimeout delivers a timeout to libxl
// (libxl_osevent_occurred_timeout). See OccurredFD.
func (c *Ctx) OccurredTimeout(forLibxl osevent.ForLibxl, live osevent.Liveness) {
	if !c.pin() {
		c.refusedDeliveries.Add(1)
		return
	}
	defer c.unpin()
	c.lockSerial(serialDelivery)
	defer c.unlockSerial(serialDelivery)
	if c.serialised && live != nil && !live.StillLive() {
		return
	}
	C.libxl_osevent_occurred_timeout(c.raw, forLibxlPtr(forLibxl))
}

// forLibxlPtr turns libxl's cookie back into the void* libxl handed out;
// it points into libxl's C heap, never into Go memory.
func forLibxlPtr(f osevent.ForLibxl) unsafe.Pointer { return intPtr(uintptr(f)) }

// intPtr makes a void* out of an integer that C only stores or passes back
// (a token), or out of a C address. The GC never follows either.
func intPtr(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

// sigchldOccurred forwards SIGCHLD (libxl_childproc_sigchld_occurred).
// It runs while Close waits for operations, because those may be waiting
// for a child (destroy forks one) to be reaped, and it never waits for a
// Go lock of the ctx: a pin never blocks, and in Xen42Serialised mode it
// shares the serial lock with an API call (which may be the one waiting
// for this child), excluding only deliveries.
func (c *Ctx) sigchldOccurred() {
	if !c.pin() {
		return
	}
	defer c.unpin()
	c.lockSerial(serialSigchld)
	defer c.unlockSerial(serialSigchld)
	C.goxl_childproc_sigchld_occurred(c.raw)
	c.sigchldForwards.Add(1)
}

// Close tears the ctx down in the order that closes libvirt's race 2:
//
//  1. refuse new operations (ErrClosed, at once, never blocking), abort
//     the asynchronous operations in flight (libxl_ao_abort), and wait
//     for the operations in flight: synchronous calls, Call and
//     CallAsync, and asynchronous operations up to their completion and
//     their own cleanup (doc.go, "Operations and Close").
//     Deliveries and SIGCHLD keep flowing meanwhile, since the
//     operations may need them;
//  2. close the hooks' admission gate and drain in-flight deliveries, so
//     that a registration Reap forgets was never delivered;
//  3. reap pending registrations: forgotten, never force-fired;
//  4. stop SIGCHLD forwarding to this ctx;
//  5. refuse every further call into libxl in Go (deliveries included,
//     whatever the Hooks) and wait for the short ones under way;
//  6. libxl_ctx_free, with the hook machinery still alive: it disables
//     the event generators still enabled itself (libxl 4.2 to 4.17:
//     free_disable_deaths and the disk-eject list) and deregisters its
//     own fds, hooks that are no-ops after Reap;
//  7. release the `user` token and the logger; detach from the loop;
//     end the subscriptions still open with ErrClosed.
//
// Close does not disable the generators itself before the gate closes:
// libxl_ctx_free does it under its own lock, and the Go side of a
// generator is reached only through a pin, which is refused from step 5.
//
// An operation Close aborted returns an error matching ErrClosed and,
// for a create, leaves no domain. Called from a callback Close would wait
// for itself, so it returns ErrInCallback there: on the dispatcher, inside
// Options.OnEvent, inside Call's fn. It is idempotent; a concurrent second
// Close waits for the first.
func (c *Ctx) Close() error {
	if d, ok := c.hooks.(interface{ OnDispatcher() bool }); ok && d.OnDispatcher() {
		return ErrInCallback
	}
	if c.calledFromCallback() {
		return ErrInCallback
	}
	c.closeOnce.Do(func() { c.closeErr = c.close() })
	return c.closeErr
}

func (c *Ctx) close() error {
	c.mu.Lock()
	c.state = ctxClosing
	c.closeSig.Fire() // operations in flight abort, then clean up
	for c.ops > 0 {
		c.idle.Wait()
	}
	c.mu.Unlock()

	q, _ := c.hooks.(osevent.Quiescer)
	if q != nil {
		if err := q.CloseGate(); err != nil {
			return fmt.Errorf("libxl: close: %w", err)
		}
		q.Reap()
	}
	sigchld.remove(c)

	c.mu.Lock()
	c.state = ctxFreed
	for c.pins > 0 {
		c.idle.Wait()
	}
	c.mu.Unlock()
	c.lockSerial(serialAPI)
	C.goxl_ctx_free(c.raw)
	c.unlockSerial(serialAPI)

	c.userToken.Release()
	c.releaseLogger()
	if q != nil {
		q.Detach()
	}
	c.endSubscriptions(ErrClosed)
	if c.opts.OnClosed != nil {
		c.opts.OnClosed()
	}
	return nil
}

func (c *Ctx) releaseLogger() {
	c.mu.Lock()
	l := c.logger
	c.logger = nil
	c.mu.Unlock()
	if l != nil {
		C.xtl_logger_destroy(l)
	}
	c.loggerToken.Release()
}

// serialKind says what a holder of the serial lock is doing.
type serialKind int

const (
	serialAPI      serialKind = iota // an API call: excludes other API calls and deliveries
	serialDelivery                   // occurred_fd/_timeout: excludes everything
	serialSigchld                    // a SIGCHLD forward: excludes deliveries only
)

// serialLock is the Xen42Serialised lock. 4.2's hazard is a delivery
// racing a deregistration made on another thread, so a delivery runs
// alone; API calls run one at a time; a SIGCHLD forward may run beside
// an API call, because that call may be a synchronous operation waiting
// for the very child being reaped. Hooks never take it. Its mutex is a
// leaf held only to change the counts.
type serialLock struct {
	mu       sync.Mutex
	free     sync.Cond
	api      bool
	delivery bool
	sigchld  int
}

func (s *serialLock) init() { s.free.L = &s.mu }

func (s *serialLock) lock(k serialKind) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		switch {
		case s.delivery:
		case k == serialAPI && !s.api:
			s.api = true
			return
		case k == serialDelivery && !s.api && s.sigchld == 0:
			s.delivery = true
			return
		case k == serialSigchld:
			s.sigchld++
			return
		}
		s.free.Wait()
	}
}

func (s *serialLock) unlock(k serialKind) {
	s.mu.Lock()
	switch k {
	case serialAPI:
		s.api = false
	case serialDelivery:
		s.delivery = false
	case serialSigchld:
		s.sigchld--
	}
	s.free.Broadcast()
	s.mu.Unlock()
}

// lockSerial takes the serial lock in Xen42Serialised mode; otherwise it
// does nothing.
func (c *Ctx) lockSerial(k serialKind) {
	if c.serialised {
		c.serial.lock(k)
	}
}

// unlockSerial releases the serial lock, then runs the OnEvent callbacks
// deferred while it was held, with no goxl lock held.
func (c *Ctx) unlockSerial(k serialKind) {
	if c.serialised {
		c.serial.unlock(k)
		c.runDeferred()
	}
}
