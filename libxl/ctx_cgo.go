//go:build cgo

package libxl

/*
#include "helpers.h"
#include <xentoollog.h>
*/
import "C"

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/goxl/goxl"
	"github.com/goxl/goxl/internal/osevent"
)

// Ctx is one libxl_ctx, set up in the order libxl requires and torn down
// in the order that leaves no call reaching freed memory. Methods are safe
// for concurrent use.
type Ctx struct {
	ctx     *C.libxl_ctx
	hooks   Hooks
	opts    Options
	version VersionInfo

	logger      *C.xentoollog_logger
	loggerToken goxl.Token
	userToken   goxl.Token
	callbacks   *goxl.CtxCallbacks

	// life guards the ctx pointer: API calls hold it shared, Close takes
	// it exclusively before libxl_ctx_free. Hooks never touch it.
	life    sync.RWMutex
	closing atomic.Bool
	freed   bool

	// serial is held around every libxl call, deliveries included, in
	// Xen42Serialised mode only. Hooks never take it.
	serial     sync.Mutex
	serialised bool

	aos sync.WaitGroup // async operations started and not yet completed

	subsMu sync.Mutex // guards subs; never held while calling libxl
	subs   map[uint64]func(Event)
	nextEv atomic.Uint64

	evgens evgenSet

	closeOnce sync.Once
	closeErr  error
}

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
	c := &Ctx{hooks: opts.Hooks, opts: opts, subs: map[uint64]func(Event){}}

	logger, loggerToken, err := goxl.NewLogger(slogSink{opts.Logger}, int(opts.LogLevel))
	if err != nil {
		return nil, err
	}
	c.logger = (*C.xentoollog_logger)(logger)
	c.loggerToken = loggerToken

	var raw *C.libxl_ctx
	if rc := C.libxl_ctx_alloc(&raw, C.LIBXL_VERSION, 0, c.logger); rc != 0 {
		c.releaseLogger()
		return nil, fmt.Errorf("libxl_ctx_alloc: %w (is this a Xen dom0 with xenstored running and /proc/xen mounted?)", Error(rc))
	}
	c.ctx = raw
	c.version = readVersion(raw)

	if c.version.Is42Unfixed() {
		switch resolveXen42(opts.Xen42, C.goxl_libxl_has_osevent_fix() != 0) {
		case Xen42Refuse:
			C.libxl_ctx_free(raw)
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

// Call runs fn with the raw libxl_ctx*, admitted like any other libxl call
// on this ctx: refused once Close began, and serialised in
// Xen42Serialised mode. It is for libxl functions goxl does not wrap.
// fn must not keep the pointer, and must not call libxl_ctx_free.
func (c *Ctx) Call(fn func(raw unsafe.Pointer) error) error {
	raw, exit, err := c.enter()
	if err != nil {
		return err
	}
	defer exit()
	return fn(unsafe.Pointer(raw))
}

// Serialised reports whether the ctx runs in Xen42Serialised mode.
func (c *Ctx) Serialised() bool { return c.serialised }

// Version returns what libxl_get_version_info reported at New.
func (c *Ctx) Version() VersionInfo { return c.version }

// SetLogLevel changes the threshold of libxl's messages.
func (c *Ctx) SetLogLevel(l LogLevel) { goxl.SetLoggerLevel(unsafe.Pointer(c.logger), int(l)) }

// Raw returns the libxl_ctx* for code that calls libxl directly (tests,
// the contract model). It is valid until Close begins.
func (c *Ctx) Raw() unsafe.Pointer { return unsafe.Pointer(c.ctx) }

// enter admits one libxl call on the ctx. The returned function ends it.
func (c *Ctx) enter() (*C.libxl_ctx, func(), error) {
	c.life.RLock()
	// closing is read under the lock: Close's barrier (life.Lock) then
	// guarantees that no call admitted after it can start an operation.
	if c.closing.Load() || c.freed {
		c.life.RUnlock()
		return nil, nil, ErrClosed
	}
	if c.serialised {
		c.serial.Lock()
		return c.ctx, func() { c.serial.Unlock(); c.life.RUnlock() }, nil
	}
	return c.ctx, c.life.RUnlock, nil
}

// OccurredFD delivers an fd event to libxl (libxl_osevent_occurred_fd).
// It implements osevent.Sink; the loop calls it on its dispatcher with no
// loop lock held, and only while the ctx's gate is open.
func (c *Ctx) OccurredFD(forLibxl osevent.ForLibxl, fd int, events, revents osevent.PollEvents, live osevent.Liveness) {
	if c.serialised {
		c.serial.Lock()
		defer c.serial.Unlock()
		if live != nil && !live.StillLive() {
			return
		}
	}
	C.libxl_osevent_occurred_fd(c.ctx, forLibxlPtr(forLibxl), C.int(fd), C.short(events), C.short(revents))
}

// OccurredTimeout delivers a timeout to libxl
// (libxl_osevent_occurred_timeout). See OccurredFD.
func (c *Ctx) OccurredTimeout(forLibxl osevent.ForLibxl, live osevent.Liveness) {
	if c.serialised {
		c.serial.Lock()
		defer c.serial.Unlock()
		if live != nil && !live.StillLive() {
			return
		}
	}
	C.libxl_osevent_occurred_timeout(c.ctx, forLibxlPtr(forLibxl))
}

// forLibxlPtr turns libxl's cookie back into the void* libxl handed out;
// it points into libxl's C heap, never into Go memory.
func forLibxlPtr(f osevent.ForLibxl) unsafe.Pointer { return intPtr(uintptr(f)) }

// intPtr makes a void* out of an integer that C only stores or passes back
// (a token), or out of a C address. The GC never follows either.
func intPtr(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

// sigchldOccurred forwards SIGCHLD (libxl_childproc_sigchld_occurred).
// It runs while Close waits for operations, because those may be waiting
// for a child (destroy forks one) to be reaped; only a freed ctx is
// skipped.
func (c *Ctx) sigchldOccurred() {
	c.life.RLock()
	defer c.life.RUnlock()
	if c.freed {
		return
	}
	if c.serialised {
		c.serial.Lock()
		defer c.serial.Unlock()
	}
	C.goxl_childproc_sigchld_occurred(c.ctx)
}

// Close tears the ctx down in the order that closes libvirt's race 2:
//
//  1. refuse new calls, and wait for the async operations in flight;
//  2. disable every event generator;
//  3. close the hooks' admission gate and drain in-flight deliveries;
//  4. reap pending registrations: forgotten, never force-fired;
//  5. stop SIGCHLD forwarding to this ctx;
//  6. libxl_ctx_free, with the hook machinery still alive (libxl
//     deregisters its own fds in there);
//  7. release the `user` token and the logger; detach from the loop.
//
// Close must not be called from a libxl callback running on the
// dispatcher. It is idempotent.
func (c *Ctx) Close() error {
	if d, ok := c.hooks.(interface{ OnDispatcher() bool }); ok && d.OnDispatcher() {
		return ErrInCallback
	}
	c.closeOnce.Do(func() { c.closeErr = c.close() })
	return c.closeErr
}

func (c *Ctx) close() error {
	c.closing.Store(true)
	// Barrier: calls admitted before closing was set finish their
	// initiating call (an operation registers in c.aos under the shared
	// lock); none is admitted after. Then wait for the operations.
	c.life.Lock()
	c.life.Unlock()
	c.aos.Wait()
	c.evgens.disableAll(c)

	q, _ := c.hooks.(osevent.Quiescer)
	if q != nil {
		if err := q.CloseGate(); err != nil {
			return fmt.Errorf("libxl: close: %w", err)
		}
		q.Reap()
	}
	sigchld.remove(c)

	c.life.Lock()
	c.freed = true
	raw := c.ctx
	c.ctx = nil
	c.life.Unlock()
	C.libxl_ctx_free(raw)

	c.userToken.Release()
	c.releaseLogger()
	if q != nil {
		q.Detach()
	}
	if c.opts.OnClosed != nil {
		c.opts.OnClosed()
	}
	return nil
}

func (c *Ctx) releaseLogger() {
	if c.logger != nil {
		C.xtl_logger_destroy(c.logger)
		c.logger = nil
	}
	c.loggerToken.Release()
}
