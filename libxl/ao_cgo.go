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
// If ctx is cancelled first, runAO calls libxl_ao_abort and still waits
// for the completion, so that the C memory the operation uses (owned by
// the caller) can be freed as soon as runAO returns. The error then
// matches both ErrAborted (if libxl cut the operation short) and
// ctx.Err().
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

// runAOInOp is runAO for a caller that already holds an operation
// (beginOp), such as a create that must destroy what it half-built: it is
// never refused for Close, which waits for that operation to end.
func (c *Ctx) runAOInOp(ctx context.Context, op string, start startFunc) error {
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

	select {
	case rc := <-done:
		return opResult(op, rc, nil)
	case <-ctx.Done():
	}
	c.abort(how)
	return opResult(op, <-done, ctx.Err())
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
