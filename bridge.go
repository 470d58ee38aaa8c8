//go:build cgo

package goxl

/*
#cgo CFLAGS: -Wall -Wno-unused-function
#include <stdlib.h>
#include "cbridge.h"
*/
import "C"

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"
	"unsafe"

	"github.com/goxl/goxl/internal/osevent"
)

// CtxCallbacks is what a ctx's `user` token stands for: the loop that runs
// the ctx's registrations and the receiver of its events.
type CtxCallbacks struct {
	Hooks  osevent.Hooks
	Events EventHandler
	// TimeoutDeregisterByReference is for libxl 4.2.0, whose
	// timeout_deregister passes &ev->for_app_reg (a void ** pointing at
	// libxl's copy of the registration ID) instead of the ID; 4.2.1 fixed
	// it (stable-4.2 f5f20508d2). The bridge then reads the ID through the
	// pointer, in C. Set it before the ctx registers its hooks; it must not
	// change afterwards.
	TimeoutDeregisterByReference bool
}

// EventHandler receives libxl's event callbacks. They run with the ctx
// unlocked, on the thread that was inside libxl, and may call libxl.
type EventHandler interface {
	// EventOccurs takes ownership of event, a libxl_event*, and must free
	// it with libxl_event_free.
	EventOccurs(event unsafe.Pointer)
	Disaster(eventType int, msg string, errnoval int)
}

// LogSink receives libxl's log messages (xentoollog levels, 1..9). It runs
// on any thread, possibly with libxl's ctx lock held: it must not call
// libxl and should not block for long.
type LogSink interface {
	Log(level int, errnoval int, context, msg string)
}

// BindCtx returns the `user` token for libxl_osevent_register_hooks and
// libxl_event_register_callbacks. Release it after libxl_ctx_free.
func BindCtx(cb *CtxCallbacks) Token { return NewToken(cb) }

// OSEventHooksTable returns the static libxl_osevent_hooks table.
func OSEventHooksTable() unsafe.Pointer { return unsafe.Pointer(&C.goxl_osevent_hooks) }

// EventHooksTable returns the static libxl_event_hooks table.
func EventHooksTable() unsafe.Pointer { return unsafe.Pointer(&C.goxl_event_hooks) }

// AOCompletion returns the C function to store in libxl_asyncop_how.callback.
func AOCompletion() unsafe.Pointer { return C.goxl_ao_complete }

// NewAOToken returns the for_callback token of one async operation. done
// runs once, with libxl's rc, on the thread that completes the operation;
// the token is released right after, which is its last C use.
func NewAOToken(done func(rc int)) Token { return NewToken(aoCompletion(done)) }

type aoCompletion func(rc int)

// NewLogger makes a xentoollog_logger that forwards messages at or above
// minLevel to sink. Destroy it with xtl_logger_destroy after the last
// libxl_ctx_free that uses it, then release the token.
func NewLogger(sink LogSink, minLevel int) (logger unsafe.Pointer, token Token, err error) {
	token = NewToken(sink)
	l := C.goxl_logger_new(C.uintptr_t(token), C.int(minLevel))
	if l == nil {
		token.Release()
		return nil, 0, fmt.Errorf("goxl: cannot allocate a logger")
	}
	return unsafe.Pointer(l), token, nil
}

// SetLoggerLevel changes a logger's threshold; safe from any goroutine.
func SetLoggerLevel(logger unsafe.Pointer, minLevel int) {
	C.goxl_logger_set_level((*C.xentoollog_logger)(logger), C.int(minLevel))
}

const (
	errorOSEventRegFail = C.int(C.ERROR_OSEVENT_REG_FAIL)
	errorFail           = C.int(C.ERROR_FAIL)
)

// recoverInto turns a panic in an export into an error code for C. It must
// be deferred directly.
func recoverInto(rc *C.int, where string) {
	if r := recover(); r != nil {
		stats.panics.Add(1)
		slog.Error("goxl: panic in a callback from libxl; returning an error to libxl instead",
			"callback", where, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		if rc != nil {
			*rc = errorOSEventRegFail
		}
	}
}

func hooksOf(user C.uintptr_t) osevent.Hooks {
	cb, _ := Token(user).Lookup().(*CtxCallbacks)
	if cb == nil || cb.Hooks == nil {
		stats.unknown.Add(1)
		return nil
	}
	return cb.Hooks
}

func hookResult(err error) C.int {
	if err != nil {
		return errorOSEventRegFail
	}
	return 0
}

func wallTime(sec, usec C.int64_t) time.Time {
	if sec == 0 && usec == 0 {
		return osevent.FireNow
	}
	return time.Unix(int64(sec), int64(usec)*1000)
}

//export goxlFDRegister
func goxlFDRegister(user C.uintptr_t, fd C.int, events C.short, forLibxl C.uintptr_t, out *C.uint64_t) (rc C.int) {
	defer recoverInto(&rc, "fd_register")
	h := hooksOf(user)
	if h == nil {
		return errorOSEventRegFail
	}
	id, err := h.FDRegister(int(fd), osevent.PollEvents(events), osevent.ForLibxl(forLibxl))
	if err == nil {
		*out = C.uint64_t(id)
	}
	return hookResult(err)
}

//export goxlFDModify
func goxlFDModify(user C.uintptr_t, fd C.int, reg C.uint64_t, events C.short) (rc C.int) {
	defer recoverInto(&rc, "fd_modify")
	h := hooksOf(user)
	if h == nil {
		return errorOSEventRegFail
	}
	return hookResult(h.FDModify(int(fd), osevent.RegID(reg), osevent.PollEvents(events)))
}

//export goxlFDDeregister
func goxlFDDeregister(user C.uintptr_t, fd C.int, reg C.uint64_t) {
	defer recoverInto(nil, "fd_deregister")
	if h := hooksOf(user); h != nil {
		h.FDDeregister(int(fd), osevent.RegID(reg))
	}
}

//export goxlTimeoutRegister
func goxlTimeoutRegister(user C.uintptr_t, sec, usec C.int64_t, forLibxl C.uintptr_t, out *C.uint64_t) (rc C.int) {
	defer recoverInto(&rc, "timeout_register")
	h := hooksOf(user)
	if h == nil {
		return errorOSEventRegFail
	}
	id, err := h.TimeoutRegister(wallTime(sec, usec), osevent.ForLibxl(forLibxl))
	if err == nil {
		*out = C.uint64_t(id)
	}
	return hookResult(err)
}

//export goxlTimeoutModify
func goxlTimeoutModify(user C.uintptr_t, reg C.uint64_t, sec, usec C.int64_t) (rc C.int) {
	defer recoverInto(&rc, "timeout_modify")
	h := hooksOf(user)
	if h == nil {
		return errorOSEventRegFail
	}
	return hookResult(h.TimeoutModify(osevent.RegID(reg), wallTime(sec, usec)))
}

//export goxlTimeoutDeregister
func goxlTimeoutDeregister(user C.uintptr_t, reg C.uint64_t) {
	defer recoverInto(nil, "timeout_deregister")
	cb, _ := Token(user).Lookup().(*CtxCallbacks)
	if cb == nil || cb.Hooks == nil {
		stats.unknown.Add(1)
		return
	}
	if cb.TimeoutDeregisterByReference {
		// libxl 4.2.0: reg is the address of libxl's copy of the ID.
		reg = C.goxl_token_at(C.uintptr_t(reg))
	}
	cb.Hooks.TimeoutDeregister(osevent.RegID(reg))
}

//export goxlEventOccurs
func goxlEventOccurs(user C.uintptr_t, event C.uintptr_t) {
	defer recoverInto(nil, "event_occurs")
	cb, _ := Token(user).Lookup().(*CtxCallbacks)
	if cb == nil || cb.Events == nil {
		// Cannot happen while tokens are released after libxl_ctx_free;
		// the event leaks rather than reach libxl_event_free from here,
		// which keeps this package free of libxenlight symbols.
		stats.unknown.Add(1)
		return
	}
	cb.Events.EventOccurs(cAddr(uintptr(event)))
}

//export goxlDisaster
func goxlDisaster(user C.uintptr_t, eventType C.int, msg *C.char, errnoval C.int) {
	defer recoverInto(nil, "disaster")
	cb, _ := Token(user).Lookup().(*CtxCallbacks)
	if cb == nil || cb.Events == nil {
		stats.unknown.Add(1)
		slog.Error("goxl: libxl reported a disaster for an unknown ctx", "msg", C.GoString(msg))
		return
	}
	cb.Events.Disaster(int(eventType), C.GoString(msg), int(errnoval))
}

//export goxlAOComplete
func goxlAOComplete(forCallback C.uintptr_t, rc C.int) {
	token := Token(forCallback)
	defer token.Release()
	defer recoverInto(nil, "ao_complete")
	done, _ := token.Lookup().(aoCompletion)
	if done == nil {
		stats.unknown.Add(1)
		return
	}
	done(int(rc))
}

//export goxlLog
func goxlLog(token C.uintptr_t, level C.int, errnoval C.int, context *C.char, msg *C.char) {
	defer recoverInto(nil, "log")
	sink, _ := Token(token).Lookup().(LogSink)
	if sink == nil {
		stats.unknown.Add(1)
		return
	}
	ctxName := ""
	if context != nil {
		ctxName = C.GoString(context)
	}
	sink.Log(int(level), int(errnoval), ctxName, C.GoString(msg))
}

// Supported reports whether this build can reach libxl.
const Supported = true
