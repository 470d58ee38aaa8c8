//go:build cgo

package libxl

/*
#include "helpers.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"github.com/goxl/goxl"
)

// startFunc starts one libxl operation with the given ao_how and returns
// libxl's immediate rc.
type startFunc func(raw *C.libxl_ctx, how *C.libxl_asyncop_how) C.int

// Operations in flight at Close (see doc.go, "Operations and Close").
//
// An operation is counted in c.aos from its admission to the end of its
// own cleanup (the destroy of a half-built domain, the resume of a guest
// whose save failed). Close waits for that count to drop to zero before
// it disables anything, so cleanup always runs on a ctx that is still
// fully alive. Close also fires closeSig first: every operation that is
// waiting for libxl's completion then calls libxl_ao_abort, so Close ends
// as soon as libxl has cut the operations short, not when they would
// have finished.

// closeSignal is closed when Close begins. The zero value is ready.
type closeSignal struct {
	once sync.Once
	ch   chan struct{}
	fire sync.Once
}

func (s *closeSignal) C() <-chan struct{} {
	s.once.Do(func() { s.ch = make(chan struct{}) })
	return s.ch
}

// Fire is called by Close before its barrier.
func (s *closeSignal) Fire() {
	s.C()
	s.fire.Do(func() { close(s.ch) })
}

// heldOp is one admitted operation. While it is held, Close waits, and
// the calls made with it are admitted even though Close has begun.
type heldOp struct{ c *Ctx }

// beginOp admits an operation: refused (ErrClosed) once Close began.
func (c *Ctx) beginOp() (*heldOp, error) {
	c.life.RLock()
	defer c.life.RUnlock()
	if c.closing.Load() || c.freed {
		return nil, ErrClosed
	}
	c.aos.Add(1) // under the life lock: Close's barrier sees it
	return &heldOp{c: c}, nil
}

func (op *heldOp) end() { op.c.aos.Done() }

// enter admits one libxl call of a held operation. The ctx cannot be
// freed meanwhile (Close waits for the operation), so only the lock
// discipline of enter is kept, not its closing check.
func (op *heldOp) enter() (*C.libxl_ctx, func()) {
	c := op.c
	c.life.RLock()
	if c.serialised {
		c.serial.Lock()
		return c.ctx, func() { c.serial.Unlock(); c.life.RUnlock() }
	}
	return c.ctx, c.life.RUnlock
}

// aoMode says what may cut an asynchronous operation short.
type aoMode int

const (
	// abortOnClose: the caller's context and Close abort it.
	abortOnClose aoMode = iota
	// cleanupAO: only the caller's context; a cleanup must finish even
	// while Close waits for it.
	cleanupAO
)

// runAO runs one asynchronous libxl operation to its end as its own held
// operation. See runHeld.
func (c *Ctx) runAO(ctx context.Context, op string, start startFunc) error {
	if err := ctx.Err(); err != nil {
		return &OpError{Op: op, Err: err}
	}
	h, err := c.beginOp()
	if err != nil {
		return &OpError{Op: op, Err: err}
	}
	defer h.end()
	return h.runAO(ctx, abortOnClose, op, start)
}

// runAO runs one asynchronous libxl operation within a held operation.
// The initiating call runs on the calling goroutine (it can build a
// domain for seconds: never the loop's); completion arrives through the
// bridge on whatever thread is inside libxl, usually the dispatcher, and
// only signals a channel.
//
// If ctx is cancelled first, or (mode abortOnClose) Close begins, runAO
// calls libxl_ao_abort and still waits for the completion, so that the C
// memory the operation uses (owned by the caller) can be freed as soon
// as runAO returns. The error then matches ErrAborted (if libxl cut the
// operation short) and ctx.Err() or ErrClosed.
func (h *heldOp) runAO(ctx context.Context, mode aoMode, op string, start startFunc) error {
	c := h.c
	if err := ctx.Err(); err != nil {
		return &OpError{Op: op, Err: err}
	}
	done := make(chan int, 1)
	token := goxl.NewAOToken(func(rc int) { done <- rc })
	how := C.goxl_new_ao_how(goxl.AOCompletion(), C.uintptr_t(token))
	if how == nil {
		token.Release()
		return &OpError{Op: op, Err: ErrNoMem}
	}
	defer C.free(unsafe.Pointer(how))

	raw, exit := h.enter()
	rc := start(raw, how)
	exit()
	if rc != 0 {
		// libxl does not call back when the initiating call fails.
		token.Release()
		return &OpError{Op: op, Err: Error(rc)}
	}

	var closing <-chan struct{}
	if mode == abortOnClose {
		closing = c.closeSig.C()
	}
	var cause error
	select {
	case rc := <-done:
		return opResult(op, rc, nil)
	case <-ctx.Done():
		cause = ctx.Err()
	case <-closing:
		cause = ErrClosed
	}
	h.abort(how)
	return opResult(op, <-done, cause)
}

func opResult(op string, rc int, cause error) error {
	switch {
	case rc == 0 && cause == nil:
		return nil
	case rc == 0:
		// Finished despite the abort request: report success; callers
		// that must undo work on cancellation check ctx themselves.
		return nil
	case cause != nil:
		return &OpError{Op: op, Err: errors.Join(Error(rc), cause)}
	default:
		return &OpError{Op: op, Err: Error(rc)}
	}
}

// abort asks libxl to cut an operation short (libxl_ao_abort). The ctx
// is alive: the operation is held, and Close waits for it.
func (h *heldOp) abort(how *C.libxl_asyncop_how) {
	raw, exit := h.enter()
	defer exit()
	if rc := C.libxl_ao_abort(raw, how); rc != 0 && Error(rc) != ErrNotFound && Error(rc) != ErrAborted {
		h.c.opts.Logger.Warn("libxl_ao_abort failed", "err", fmt.Sprint(Error(rc)))
	}
}
