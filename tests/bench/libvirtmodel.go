//go:build libvirtbench && libxlmodel

package bench

/*
#cgo pkg-config: libvirt
#include <libxl.h>
#include "libvirt.h"

libxl_ctx *bench_libvirt_model_ctx_new(void);
int64_t bench_libvirt_model_run(uint64_t warmup, uint64_t target, uint64_t *delivered, uint64_t *modifies, int64_t *cpu);
void bench_libvirt_model_ctx_free(libxl_ctx *ctx);
*/
import "C"

import (
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"github.com/goxl/goxl/internal/libxlmodel"
)

func init() {
	register(&Impl{Name: "libvirt+model", rank: 65,
		Desc: "libvirt's default event loop driving the model's libxl_osevent_occurred_fd as libvirt's libxl driver does " +
			"(fd hooks = virEventAddHandle/UpdateHandle/RemoveHandle): the same work per event as goxl",
		Dispatch: libvirtModelDispatch})
}

// libvirtModelDispatch runs libvirt's loop on the model: the model
// registers the fds through the ctx's hooks (libvirt handles), every
// delivery is the model's occurred_fd, and each live one calls the
// fd_modify hook once (virEventUpdateHandle, unchanged events).
func libvirtModelDispatch(fds []int, _ []int, events uint64) (Result, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	v0 := libxlmodel.Counters().ViolationsTotal
	ctx := C.bench_libvirt_model_ctx_new()
	if ctx == nil {
		return Result{}, fmt.Errorf("libvirt+model: no ctx")
	}
	freed := false
	defer func() {
		if !freed {
			C.bench_libvirt_model_ctx_free(ctx)
		}
	}()
	b, err := libxlmodel.NewBench(unsafe.Pointer(ctx), libxlmodel.BenchNoopHook)
	if err != nil {
		return Result{}, err
	}
	defer b.Free()
	if _, err := b.AddFDs(fds); err != nil {
		return Result{}, err
	}
	live0 := b.FDEvents()
	w := warmup(events)
	var got, modifies C.uint64_t
	var cpu C.int64_t
	ns := C.bench_libvirt_model_run(C.uint64_t(w), C.uint64_t(events), &got, &modifies, &cpu)
	live := b.FDEvents() - live0
	b.RemoveFDs()
	C.bench_libvirt_model_ctx_free(ctx)
	freed = true
	if ns < 0 {
		return Result{}, fmt.Errorf("libvirt+model: loop failed (%d)", int64(ns))
	}
	// Every callback was a live delivery the model saw (warm-up
	// included), and each made exactly one fd_modify hook call.
	if live < w+uint64(got) {
		return Result{}, fmt.Errorf("libvirt+model: the model saw %d live deliveries of %d", live, w+uint64(got))
	}
	if uint64(modifies) != uint64(got) {
		return Result{}, fmt.Errorf("libvirt+model: %d fd_modify hooks for %d deliveries", modifies, got)
	}
	if v := libxlmodel.Counters().ViolationsTotal - v0; v != 0 {
		return Result{}, fmt.Errorf("libvirt+model: the model saw %d contract violations", v)
	}
	return Result{Elapsed: time.Duration(ns), CPU: time.Duration(cpu), Events: uint64(got)}, nil
}
