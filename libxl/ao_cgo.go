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

// runAO runs one asynchronous libxl operation to its end. The initiating
// call runs on the calling goroutine (it can build a domain for seconds:
// never the loop's); completion arrives through the bridge on whatever
// thread is inside libxl, usually the dispatcher, and only signals a
// channel.
//
// If ctx is cancelled first, or Close begins, runAO calls libxl_ao_abort
// and still waits for the completion, so that the C memory the operation
// uses (owned by the caller) can be freed as soon as runAO returns. The
// error then matches ErrAborted (if libxl cut the operation short) and
// ctx.Err() or ErrClosed.
func (c *Ctx) runAO(ctx context.Context, op string, start startFunc) error {
	if err := ctx.Err(); err != nil {
		return &OpError{Op: op, Err: err}
	}
	end, err := c.beginOp()
	if err != nil {
		return &OpError{Op: op, Err: err}
	}
	defer end()
	return c.runAOInOp(ctx, op, start)
}

// Operations in flight at Close (see doc.go, "Operations and Close").
// Close fires closeSig before it waits for the operations: every
// operation waiting for libxl's completion then calls libxl_ao_abort, so
// Close ends once libxl has cut them short, not when they would have
// finished. A cleanup (the destroy of a half-built domain, the resume of
// a guest whose save failed) runs with cleanupAO: Close does not abort
// it, it waits for it.

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

// Fire is called by Close before it waits for the operations.
func (s *closeSignal) Fire() {
	s.C()
	s.fire.Do(func() { close(s.ch) })
}

// aoMode says what may cut an asynchronous operation short.
type aoMode int

const (
	// abortOnClose: the caller's context and Close abort it.
	abortOnClose aoMode = iota
	// cleanupAO: only the caller's context; a cleanup must finish even
	// while Close waits for it.
	cleanupAO
	// neverAbort: libxl_ao_abort is never called; the operation runs to
	// its completion and the caller undoes it if its context ended or
	// Close began meanwhile. For restore and save: libxl 4.17 crashed
	// (a NULL abort hook, SIGSEGV in libxl_ao_abort) when a restore was
	// aborted on real Xen (tests/integration TestSaveRestoreBoundaries),
	// and save and restore share libxl's stream machinery.
	neverAbort
)

// runAOInOp is runAO for a caller that already holds an operation
// (beginOp), such as a create that must destroy what it half-built: it is
// never refused for Close, which waits for that operation to end. Close
// aborts it like runAO; see runCleanupInOp for the cleanups.
func (c *Ctx) runAOInOp(ctx context.Context, op string, start startFunc) error {
	return c.runAOMode(ctx, abortOnClose, op, start)
}

// runCleanupInOp runs a cleanup within a held operation: Close waits for
// it instead of aborting it.
func (c *Ctx) runCleanupInOp(ctx context.Context, op string, start startFunc) error {
	return c.runAOMode(ctx, cleanupAO, op, start)
}

func (c *Ctx) runAOMode(ctx context.Context, mode aoMode, op string, start startFunc) error {
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

	raw, exit := c.enterInOp()
	rc := start(raw, how)
	exit()
	if rc != 0 {
		// libxl does not call back when the initiating call fails.
		token.Release()
		if err, ok := notInAPIResult(op, rc); ok {
			return err
		}
		return &OpError{Op: op, Err: Error(rc)}
	}

	if mode == neverAbort {
		return opResult(op, <-done, nil)
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
	c.abort(how)
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

// abort asks libxl to cut an operation short (libxl_ao_abort). The caller
// holds the operation, so the ctx is alive even while Close is pending.
func (c *Ctx) abort(how *C.libxl_asyncop_how) {
	raw, exit := c.enterInOp()
	rc := C.libxl_ao_abort(raw, how)
	exit()
	if rc != 0 && Error(rc) != ErrNotFound && Error(rc) != ErrAborted {
		c.opts.Logger.Warn("libxl_ao_abort failed", "err", fmt.Sprint(Error(rc)))
	}
}

// isClosing reports whether Close has begun.
func (c *Ctx) isClosing() bool {
	select {
	case <-c.closeSig.C():
		return true
	default:
		return false
	}
}
