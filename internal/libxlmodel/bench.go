//go:build libxlmodel

package libxlmodel

/*
#include <stdlib.h>
#include "bench.h"
*/
import "C"

import (
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"
)

// Bench is the benchmark-only API of bench.c: it makes one ctx register
// fds and timeouts through its osevent hooks, counts what the
// application delivers and, per live fd delivery, calls one no-op hook
// (fd_modify with unchanged events) back into the application. It is
// for tests/bench; tests of the contract use Run and the RefLoop.
type Bench struct{ p *C.libxlmodel_bench }

// BenchFDHook selects what a live fd delivery does besides counting.
type BenchFDHook int

const (
	BenchCountOnly BenchFDHook = C.LIBXLMODEL_BENCH_FD_COUNT_ONLY
	BenchNoopHook  BenchFDHook = C.LIBXLMODEL_BENCH_FD_NOOP_HOOK
)

// NewBench attaches a Bench to a live ctx (a libxl_ctx*).
func NewBench(ctx unsafe.Pointer, hook BenchFDHook) (*Bench, error) {
	p := C.libxlmodel_bench_new((*C.libxl_ctx)(ctx), C.int(hook))
	if p == nil {
		return nil, fmt.Errorf("libxlmodel: bench: %p is not a live ctx", ctx)
	}
	return &Bench{p: p}, nil
}

// AddFDs registers fds for POLLIN and returns their for_libxl cookies.
func (b *Bench) AddFDs(fds []int) ([]uintptr, error) {
	if len(fds) == 0 {
		return nil, nil
	}
	cfds := make([]C.int, len(fds))
	for i, fd := range fds {
		cfds[i] = C.int(fd)
	}
	out := make([]C.uintptr_t, len(fds))
	if rc := C.libxlmodel_bench_add_fds(b.p, &cfds[0], C.int(len(fds)), &out[0]); rc != 0 {
		return nil, fmt.Errorf("libxlmodel: bench: fd registration failed: libxl error %d", int(rc))
	}
	cookies := make([]uintptr, len(fds))
	for i := range out {
		cookies[i] = uintptr(out[i])
	}
	return cookies, nil
}

// RemoveFDs deregisters every fd the bench registered.
func (b *Bench) RemoveFDs() { C.libxlmodel_bench_remove_fds(b.p) }

// SetTarget makes the bench write 1 to the eventfd doneFD once FDEvents
// reaches target.
func (b *Bench) SetTarget(target uint64, doneFD int) {
	C.libxlmodel_bench_set_target(b.p, C.uint64_t(target), C.int(doneFD))
}

// FDEvents counts live fd deliveries.
func (b *Bench) FDEvents() uint64 { return uint64(C.libxlmodel_bench_fd_events(b.p)) }

// AddTimeouts registers one timeout per deadline. A fired timeout records
// its lateness (the last lateCap are kept) and, if rearmMax > 0, is
// replaced by one due rearmMin..rearmMax later.
func (b *Bench) AddTimeouts(deadlines []time.Time, rearmMin, rearmMax time.Duration, lateCap int) error {
	if len(deadlines) == 0 {
		return nil
	}
	abs := make([]C.int64_t, len(deadlines))
	for i, d := range deadlines {
		abs[i] = C.int64_t(d.UnixNano())
	}
	rc := C.libxlmodel_bench_add_timeouts(b.p, &abs[0], C.int(len(abs)),
		C.int(rearmMin/time.Millisecond), C.int(rearmMax/time.Millisecond), C.int(lateCap))
	if rc != 0 {
		return fmt.Errorf("libxlmodel: bench: timeout registration failed: libxl error %d", int(rc))
	}
	return nil
}

// StopRearm stops replacing fired timeouts.
func (b *Bench) StopRearm() { C.libxlmodel_bench_stop_rearm(b.p) }

// RemoveTimeouts cancels every pending timeout as libxl does when their
// operation ends (no more re-arming). Under 4.17's rules each becomes a
// fire-now timeout the application must still deliver: wait for
// TimeoutsOwed to reach 0 before closing the ctx, which libxl requires
// to have no timeout armed.
func (b *Bench) RemoveTimeouts() error {
	if rc := C.libxlmodel_bench_remove_timeouts(b.p); rc != 0 {
		return fmt.Errorf("libxlmodel: bench: removing timeouts failed: libxl error %d", int(rc))
	}
	return nil
}

// TimeoutsOwed counts cancelled timeouts whose fire-now delivery is due.
func (b *Bench) TimeoutsOwed() uint64 { return uint64(C.libxlmodel_bench_timeouts_owed(b.p)) }

// TimeoutsFired counts timeouts delivered while live.
func (b *Bench) TimeoutsFired() uint64 { return uint64(C.libxlmodel_bench_timeouts_fired(b.p)) }

// Lateness returns the recorded lateness samples (delivery time minus the
// wall-clock deadline, as libxl sees it).
func (b *Bench) Lateness() []time.Duration {
	n := int(C.libxlmodel_bench_timeouts_fired(b.p))
	if n == 0 {
		return nil
	}
	buf := make([]C.int64_t, n)
	k := int(C.libxlmodel_bench_lateness(b.p, &buf[0], C.int(n)))
	out := make([]time.Duration, k)
	for i := range out {
		out[i] = time.Duration(buf[i])
	}
	return out
}

// Free releases the bench; call it after libxl_ctx_free.
func (b *Bench) Free() {
	if b.p != nil {
		C.libxlmodel_bench_free(b.p)
		b.p = nil
	}
}

// benchNoops counts calls of the floor ctx's fd_modify hook.
var benchNoops atomic.Uint64

//export libxlmodelBenchNoop
func libxlmodelBenchNoop(user C.uintptr_t) { benchNoops.Add(1) }

// BenchNoops counts the no-op hook calls made into Go by floor ctxs.
func BenchNoops() uint64 { return benchNoops.Load() }

// NewBenchFloorCtx allocates a ctx whose osevent hooks are bench.c's C
// table: fd registrations always succeed, fd_modify calls one no-op Go
// function, timeouts are refused. For benchmark floors that deliver with
// OccurredFD themselves. Free it with FreeCtx.
func NewBenchFloorCtx() (unsafe.Pointer, error) {
	var ctx *C.libxl_ctx
	if rc := C.libxlmodel_bench_floor_ctx_new(0, &ctx); rc != 0 {
		return nil, fmt.Errorf("libxlmodel: bench floor ctx: libxl error %d", int(rc))
	}
	return unsafe.Pointer(ctx), nil
}

// FreeCtx calls libxl_ctx_free.
func FreeCtx(ctx unsafe.Pointer) { C.libxl_ctx_free((*C.libxl_ctx)(ctx)) }

// OccurredFD calls libxl_osevent_occurred_fd(ctx, forLibxl, fd, POLLIN,
// POLLIN): one Go->C crossing, for benchmark floors.
func OccurredFD(ctx unsafe.Pointer, forLibxl uintptr, fd int) {
	C.libxlmodel_bench_occurred_in((*C.libxl_ctx)(ctx), C.uintptr_t(forLibxl), C.int(fd))
}
