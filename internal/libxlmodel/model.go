//go:build libxlmodel

package libxlmodel

/*
#cgo CFLAGS: -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE -g -O2
#cgo LDFLAGS: -lpthread
#include <stdlib.h>
#include "libxlmodel.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Mode selects which libxl the model behaves as. See doc.go.
type Mode int

const (
	Mode417         Mode = C.LIBXLMODEL_MODE_4_17
	Mode42Unpatched Mode = C.LIBXLMODEL_MODE_4_2_UNPATCHED
	Mode42Patched   Mode = C.LIBXLMODEL_MODE_4_2_PATCHED
	// Mode420Unpatched is Mode42Unpatched as 4.2.0: version extra ".0",
	// and timeout_deregister gets a void ** pointing at libxl's copy of
	// the application's token instead of the token (fixed in 4.2.1).
	Mode420Unpatched Mode = C.LIBXLMODEL_MODE_4_2_0_UNPATCHED
	// Mode422 is upstream 4.2.2 (to 4.3.x): fixed as the series is, but a
	// timeout callback that cancels its own delivered timeout makes libxl
	// call timeout_modify({0,0}) with it (real 4.2.2 does: tests/xen42).
	Mode422 Mode = C.LIBXLMODEL_MODE_4_2_2
)

// Modes lists every mode.
func Modes() []Mode {
	return []Mode{Mode417, Mode42Unpatched, Mode42Patched, Mode420Unpatched, Mode422}
}

func (m Mode) String() string { return C.GoString(C.libxlmodel_mode_name(C.int(m))) }

// SetDefaultMode sets the mode of ctxs allocated from now on.
func SetDefaultMode(m Mode) { C.libxlmodel_set_default_mode(C.int(m)) }

// DefaultMode returns the mode new ctxs get.
func DefaultMode() Mode { return Mode(C.libxlmodel_default_mode()) }

// SetCtxMode overrides the mode of one ctx. It must be called before
// libxl_osevent_register_hooks.
func SetCtxMode(ctx unsafe.Pointer, m Mode) error {
	if C.libxlmodel_set_ctx_mode((*C.libxl_ctx)(ctx), C.int(m)) != 0 {
		return fmt.Errorf("libxlmodel: cannot set mode %v on ctx %p (unknown ctx, or hooks already registered)", m, ctx)
	}
	return nil
}

// CtxMode returns a live ctx's mode.
func CtxMode(ctx unsafe.Pointer) (Mode, error) {
	m := C.libxlmodel_ctx_mode((*C.libxl_ctx)(ctx))
	if m < 0 {
		return 0, fmt.Errorf("libxlmodel: %p is not a live ctx", ctx)
	}
	return Mode(m), nil
}

// SetHookBlockBound sets how long a hook may run before it is reported as
// blocking (default 2 s).
func SetHookBlockBound(d time.Duration) {
	C.libxlmodel_set_hook_block_bound_ms(C.int(d / time.Millisecond))
}

// SetEarlySlack sets how far before its deadline a timeout may be
// delivered before it is reported as early (default 20 ms).
func SetEarlySlack(d time.Duration) { C.libxlmodel_set_early_slack_ms(C.int(d / time.Millisecond)) }

// ViolationKind names a breach of the libxl osevent contract.
type ViolationKind int

const (
	TimeoutDeliveredTwice        ViolationKind = C.LIBXLMODEL_V_TIMEOUT_DELIVERED_TWICE
	OccurredInsideHook           ViolationKind = C.LIBXLMODEL_V_OCCURRED_INSIDE_HOOK
	OccurredAfterCtxFree         ViolationKind = C.LIBXLMODEL_V_OCCURRED_AFTER_CTX_FREE
	UnknownCtx                   ViolationKind = C.LIBXLMODEL_V_UNKNOWN_CTX
	TimeoutNeverDelivered        ViolationKind = C.LIBXLMODEL_V_TIMEOUT_NEVER_DELIVERED
	FDNeverDelivered             ViolationKind = C.LIBXLMODEL_V_FD_NEVER_DELIVERED
	UnknownForLibxl              ViolationKind = C.LIBXLMODEL_V_UNKNOWN_FOR_LIBXL
	CorruptForLibxl              ViolationKind = C.LIBXLMODEL_V_CORRUPT_FOR_LIBXL
	ForLibxlOfAnotherCtx         ViolationKind = C.LIBXLMODEL_V_WRONG_CTX
	DeliveryAfterDeregister      ViolationKind = C.LIBXLMODEL_V_DELIVERY_AFTER_DEREGISTER
	DeliveryToFailedRegistration ViolationKind = C.LIBXLMODEL_V_DELIVERY_TO_FAILED_REGISTRATION
	AppKeptRegistration          ViolationKind = C.LIBXLMODEL_V_APP_KEPT_REGISTRATION
	HookBlocked                  ViolationKind = C.LIBXLMODEL_V_HOOK_BLOCKED
	HookCalledLibxl              ViolationKind = C.LIBXLMODEL_V_HOOK_CALLED_LIBXL
	FDMismatch                   ViolationKind = C.LIBXLMODEL_V_FD_MISMATCH
	EventsNotRequested           ViolationKind = C.LIBXLMODEL_V_EVENTS_NOT_REQUESTED
	TimeoutEarly                 ViolationKind = C.LIBXLMODEL_V_TIMEOUT_EARLY
	CtxFreeWithAORunning         ViolationKind = C.LIBXLMODEL_V_CTX_FREE_WITH_AO_RUNNING
	APIMisuse                    ViolationKind = C.LIBXLMODEL_V_API_MISUSE
	CtxFreeWithRegistrations     ViolationKind = C.LIBXLMODEL_V_CTX_FREE_WITH_REGISTRATIONS
	CtxFreeWithChildren          ViolationKind = C.LIBXLMODEL_V_CTX_FREE_WITH_CHILDREN
	ChildStolen                  ViolationKind = C.LIBXLMODEL_V_CHILD_STOLEN
	ChildInheritedHandlesLock    ViolationKind = C.LIBXLMODEL_V_CHILD_INHERITED_HANDLES_LOCK
	NumViolationKinds                          = int(C.LIBXLMODEL_V_COUNT)
)

func (k ViolationKind) String() string { return C.GoString(C.libxlmodel_violation_name(C.int(k))) }

// Violation is one recorded breach. History lists the hook calls and
// deliveries of the registration concerned, with times and thread ids.
type Violation struct {
	Kind    ViolationKind
	Ctx     uintptr
	RegID   uint64
	When    time.Duration // since the model started
	TID     int
	Message string
	History string
}

func (v Violation) String() string {
	s := fmt.Sprintf("%v at %v (tid %d, ctx %#x, reg %d): %s", v.Kind, v.When, v.TID, v.Ctx, v.RegID, v.Message)
	if v.History != "" {
		s += "\n" + strings.TrimRight(v.History, "\n")
	}
	return s
}

// Violations returns the recorded violations (the first 256; Counters
// counts all of them).
func Violations() []Violation {
	n := int(C.libxlmodel_violations_copy(nil, 0))
	if n == 0 {
		return nil
	}
	size := C.size_t(unsafe.Sizeof(C.libxlmodel_violation{}))
	buf := (*C.libxlmodel_violation)(C.calloc(C.size_t(n), size))
	if buf == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(buf))
	// More may have been recorded since the first call: the copy holds
	// at most the n it had room for.
	n = min(n, int(C.libxlmodel_violations_copy(buf, C.int(n))))
	items := unsafe.Slice(buf, n)
	out := make([]Violation, 0, n)
	for i := range items {
		v := &items[i]
		out = append(out, Violation{
			Kind:    ViolationKind(v.kind),
			Ctx:     uintptr(v.ctx),
			RegID:   uint64(v.reg_id),
			When:    time.Duration(v.when_ns),
			TID:     int(v.tid),
			Message: C.GoString(&v.message[0]),
			History: C.GoString(&v.history[0]),
		})
	}
	return out
}

// Reset forgets recorded violations and zeroes the counters.
func Reset() { C.libxlmodel_reset() }

// HookKind indexes Counts.HookCalls.
type HookKind int

const (
	HookFDRegister HookKind = iota
	HookFDModify
	HookFDDeregister
	HookTimeoutRegister
	HookTimeoutModify
	HookTimeoutDeregister
	NumHookKinds
)

// Counts are the model's process-wide counters since the last Reset.
type Counts struct {
	HookCalls             [NumHookKinds]uint64
	HookFailures          uint64
	DeliveriesFD          uint64
	DeliveriesTimeout     uint64
	StaleFDTolerated      uint64
	StaleTimeoutTolerated uint64
	SpuriousFD            uint64
	OpsStarted            uint64
	OpsCompleted          uint64
	OpsFailed             uint64
	OpsAbandoned          uint64
	CtxAllocs             uint64
	CtxFrees              uint64
	ChildrenForked        uint64 // fake operations' children (destroy, 4.17)
	ChildrenReaped        uint64 // reaped by libxl_childproc_sigchld_occurred or _reaped
	Violations            map[ViolationKind]uint64
	ViolationsTotal       uint64
}

// Counters reads the counters.
func Counters() Counts {
	var c C.libxlmodel_counters
	C.libxlmodel_counters_read(&c)
	out := Counts{
		HookFailures:          uint64(c.hook_failures),
		DeliveriesFD:          uint64(c.deliveries_fd),
		DeliveriesTimeout:     uint64(c.deliveries_timeout),
		StaleFDTolerated:      uint64(c.stale_fd_tolerated),
		StaleTimeoutTolerated: uint64(c.stale_timeout_tolerated),
		SpuriousFD:            uint64(c.spurious_fd),
		OpsStarted:            uint64(c.ops_started),
		OpsCompleted:          uint64(c.ops_completed),
		OpsFailed:             uint64(c.ops_failed),
		OpsAbandoned:          uint64(c.ops_abandoned),
		CtxAllocs:             uint64(c.ctx_allocs),
		CtxFrees:              uint64(c.ctx_frees),
		ChildrenForked:        uint64(c.children_forked),
		ChildrenReaped:        uint64(c.children_reaped),
		Violations:            map[ViolationKind]uint64{},
		ViolationsTotal:       uint64(c.violations_total),
	}
	for i := range out.HookCalls {
		out.HookCalls[i] = uint64(c.hook_calls[i])
	}
	for k := 0; k < NumViolationKinds; k++ {
		if n := uint64(c.violations[k]); n != 0 {
			out.Violations[ViolationKind(k)] = n
		}
	}
	return out
}

// HookEvents is the total of hook calls and deliveries.
func (c Counts) HookEvents() uint64 {
	n := c.DeliveriesFD + c.DeliveriesTimeout
	for _, h := range c.HookCalls {
		n += h
	}
	return n
}

// OpKind is a kind of simulated libxl operation; see libxlmodel.h.
type OpKind int

const (
	OpPipeIn      OpKind = C.LIBXLMODEL_OP_PIPE_IN
	OpPipeOut     OpKind = C.LIBXLMODEL_OP_PIPE_OUT
	OpRegularFile OpKind = C.LIBXLMODEL_OP_REGULAR_FILE
	OpDualReg     OpKind = C.LIBXLMODEL_OP_DUAL_REG
	OpQMPModify   OpKind = C.LIBXLMODEL_OP_QMP_MODIFY
	OpTimerFire   OpKind = C.LIBXLMODEL_OP_TIMER_FIRE
	OpTimerCancel OpKind = C.LIBXLMODEL_OP_TIMER_CANCEL
	OpTimerRace   OpKind = C.LIBXLMODEL_OP_TIMER_RACE
	OpFDReuse     OpKind = C.LIBXLMODEL_OP_FD_REUSE
	OpAOInline    OpKind = C.LIBXLMODEL_OP_AO_INLINE
	NumOpKinds           = int(C.LIBXLMODEL_OP_COUNT)
)

func (k OpKind) String() string { return C.GoString(C.libxlmodel_op_name(C.int(k))) }

// Workload configures Run. Zero values take the defaults in libxlmodel.h.
type Workload struct {
	Threads         int
	OpsPerThread    int    // 0: until TargetEvents (or 100 if that is 0 too)
	TargetEvents    uint64 // stop once the ctx saw this many hook events
	Seed            uint64
	Mix             map[OpKind]uint // weights; nil = default mix
	ShortTimeoutMin time.Duration
	ShortTimeoutMax time.Duration
	LongTimeout     time.Duration
	DeliveryTimeout time.Duration // per operation: how long the app has
	Overall         time.Duration
	// LeaveFireNowPending cancels this many timeouts after the run and
	// returns without waiting for them (4.17: libxl_ctx_free may then find
	// them pending; the app must reap them).
	LeaveFireNowPending int
}

// Result summarises a Run.
type Result struct {
	OpsStarted, OpsCompleted, OpsFailed, OpsAbandoned uint64
	HookEvents                                        uint64
	StaleTolerated                                    uint64
	Violations                                        uint64
	Elapsed                                           time.Duration
	DeadlineHit                                       bool
}

// Run drives ctx (allocated and hooked by the application) with w and
// blocks until done. The application's loop must deliver meanwhile.
func Run(ctx unsafe.Pointer, w Workload) (Result, error) {
	var cw C.libxlmodel_workload
	cw.threads = C.int(w.Threads)
	cw.ops_per_thread = C.int(w.OpsPerThread)
	cw.target_events = C.uint64_t(w.TargetEvents)
	cw.seed = C.uint64_t(w.Seed)
	for k, weight := range w.Mix {
		if int(k) < 0 || int(k) >= NumOpKinds {
			return Result{}, fmt.Errorf("libxlmodel: unknown op kind %d", k)
		}
		cw.mix[k] = C.uint(weight)
	}
	cw.short_timeout_min_us = C.int(w.ShortTimeoutMin / time.Microsecond)
	cw.short_timeout_max_us = C.int(w.ShortTimeoutMax / time.Microsecond)
	cw.long_timeout_ms = C.int(w.LongTimeout / time.Millisecond)
	cw.delivery_timeout_ms = C.int(w.DeliveryTimeout / time.Millisecond)
	cw.overall_timeout_ms = C.int(w.Overall / time.Millisecond)
	cw.leave_fire_now_pending = C.int(w.LeaveFireNowPending)
	var out C.libxlmodel_result
	if rc := C.libxlmodel_run((*C.libxl_ctx)(ctx), &cw, &out); rc != 0 {
		return Result{}, fmt.Errorf("libxlmodel: run did not start: libxl error %d", int(rc))
	}
	return Result{
		OpsStarted:     uint64(out.ops_started),
		OpsCompleted:   uint64(out.ops_completed),
		OpsFailed:      uint64(out.ops_failed),
		OpsAbandoned:   uint64(out.ops_abandoned),
		HookEvents:     uint64(out.hook_events),
		StaleTolerated: uint64(out.stale_tolerated),
		Violations:     uint64(out.violations),
		Elapsed:        time.Duration(out.elapsed_ns),
		DeadlineHit:    out.deadline_hit != 0,
	}, nil
}

// VersionInfo calls libxl_get_version_info on ctx.
func VersionInfo(ctx unsafe.Pointer) (major, minor int, extra string, err error) {
	v := C.libxl_get_version_info((*C.libxl_ctx)(ctx))
	if v == nil {
		return 0, 0, "", errors.New("libxlmodel: libxl_get_version_info returned NULL")
	}
	return int(v.xen_version_major), int(v.xen_version_minor), C.GoString(v.xen_version_extra), nil
}

// Faults turn the reference loop into a broken one; see libxlmodel.h.
type Faults struct {
	DeliverTimeoutTwice    bool
	ForgetFireNow          bool
	DeliverAfterDeregister bool
	OccurredInsideHook     bool
	CallLibxlInsideHook    bool
	BlockInHook            time.Duration
	FailNthRegister        int
	FailEveryNthRegister   int
	SlowDispatch           time.Duration
	NoLivenessRecheck      bool
	SkipTeardown           bool
	// DeregisterArgAsToken takes 4.2.0's timeout_deregister argument for
	// the token itself, as an application written for 4.2.1 would.
	DeregisterArgAsToken bool
}

// RefLoop is the model's reference application loop (refloop.c): poll(2)
// on one dispatcher pthread, serving any number of ctxs. Its ctxs run in
// libxl_sigchld_owner_mainloop mode: a goroutine of the RefLoop forwards
// SIGCHLD to each of them with libxl_childproc_sigchld_occurred (C code
// cannot own a signal in a Go process).
type RefLoop struct {
	p *C.libxlmodel_refloop

	mu      sync.RWMutex // ctxs; held shared while forwarding to them
	ctxs    map[unsafe.Pointer]struct{}
	sigchld chan os.Signal
	done    chan struct{}
}

func (l *RefLoop) forwardSIGCHLD() {
	defer close(l.done)
	for range l.sigchld {
		l.mu.RLock()
		for ctx := range l.ctxs {
			C.libxl_childproc_sigchld_occurred((*C.libxl_ctx)(ctx))
		}
		l.mu.RUnlock()
	}
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// NewRefLoop starts a reference loop.
func NewRefLoop(f Faults) (*RefLoop, error) {
	cf := C.libxlmodel_refloop_faults{
		deliver_timeout_twice:    cbool(f.DeliverTimeoutTwice),
		forget_fire_now:          cbool(f.ForgetFireNow),
		deliver_after_deregister: cbool(f.DeliverAfterDeregister),
		occurred_inside_hook:     cbool(f.OccurredInsideHook),
		call_libxl_inside_hook:   cbool(f.CallLibxlInsideHook),
		block_in_hook_ms:         C.int(f.BlockInHook / time.Millisecond),
		fail_nth_register:        C.int(f.FailNthRegister),
		fail_every_nth_register:  C.int(f.FailEveryNthRegister),
		slow_dispatch_us:         C.int(f.SlowDispatch / time.Microsecond),
		no_liveness_recheck:      cbool(f.NoLivenessRecheck),
		skip_teardown:            cbool(f.SkipTeardown),
		dereg_arg_as_token:       cbool(f.DeregisterArgAsToken),
	}
	p := C.libxlmodel_refloop_new(&cf)
	if p == nil {
		return nil, errors.New("libxlmodel: cannot start the reference loop")
	}
	l := &RefLoop{p: p, ctxs: map[unsafe.Pointer]struct{}{},
		sigchld: make(chan os.Signal, 1), done: make(chan struct{})}
	signal.Notify(l.sigchld, syscall.SIGCHLD)
	go l.forwardSIGCHLD()
	return l, nil
}

// NewCtx allocates a ctx in mode m, hooked to the loop.
func (l *RefLoop) NewCtx(m Mode) (unsafe.Pointer, error) {
	var ctx *C.libxl_ctx
	if rc := C.libxlmodel_refloop_ctx_new(l.p, C.int(m), &ctx); rc != 0 {
		return nil, fmt.Errorf("libxlmodel: refloop ctx_new: libxl error %d", int(rc))
	}
	l.mu.Lock()
	l.ctxs[unsafe.Pointer(ctx)] = struct{}{}
	l.mu.Unlock()
	return unsafe.Pointer(ctx), nil
}

// FreeCtx tears ctx down in the contract's order and frees it.
func (l *RefLoop) FreeCtx(ctx unsafe.Pointer) error {
	l.mu.Lock()
	delete(l.ctxs, ctx)
	l.mu.Unlock()
	if rc := C.libxlmodel_refloop_ctx_free(l.p, (*C.libxl_ctx)(ctx)); rc != 0 {
		return fmt.Errorf("libxlmodel: refloop ctx_free: libxl error %d", int(rc))
	}
	return nil
}

// Deliveries counts the occurred_* calls the loop made.
func (l *RefLoop) Deliveries() uint64 { return uint64(C.libxlmodel_refloop_deliveries(l.p)) }

// Close stops the loop. Free its ctxs first.
func (l *RefLoop) Close() {
	if l.p != nil {
		signal.Stop(l.sigchld)
		close(l.sigchld)
		<-l.done
		C.libxlmodel_refloop_destroy(l.p)
		l.p = nil
	}
}

// DomainScenario runs create/unpause/shutdown/destroy of rounds fake
// domains on ctx through the public libxl API, asynchronously (ao_how
// callbacks) or synchronously, and checks completion order and events.
// It registers its own event callbacks on ctx for the duration.
func DomainScenario(ctx unsafe.Pointer, rounds int, async bool) error {
	if rc := C.libxlmodel_domain_scenario((*C.libxl_ctx)(ctx), C.int(rounds), cbool(async)); rc != 0 {
		return fmt.Errorf("libxlmodel: domain scenario failed at step %d", -int(rc))
	}
	return nil
}
