//go:build libvirtbench

package bench

/*
#cgo pkg-config: libvirt
#include <stdlib.h>
#include "libvirt.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"time"
	"unsafe"
)

func init() {
	register(&Impl{Name: "libvirt", rank: 60,
		Desc:     "libvirt's default event loop (libvirt-dev, public virEvent* API)",
		Dispatch: libvirtDispatch, Timeouts: libvirtTimeouts})
}

func libvirtDispatch(fds []int, _ []int, events uint64) (Result, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cfds := make([]C.int, len(fds))
	for i, fd := range fds {
		cfds[i] = C.int(fd)
	}
	var got C.uint64_t
	var cpu C.int64_t
	ns := C.bench_libvirt_dispatch(&cfds[0], C.int(len(fds)), C.uint64_t(warmup(events)), C.uint64_t(events), &got, &cpu)
	if ns < 0 {
		return Result{}, fmt.Errorf("libvirt dispatch failed (%d)", int64(ns))
	}
	return Result{Elapsed: time.Duration(ns), CPU: time.Duration(cpu), Events: uint64(got)}, nil
}

func libvirtTimeouts(spec TimeoutSpec, busy []int, _ []int) (TimeoutResult, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const lateCap = 1 << 20
	late := (*C.int64_t)(C.calloc(lateCap, 8))
	if late == nil {
		return TimeoutResult{}, fmt.Errorf("libvirt: out of memory")
	}
	defer C.free(unsafe.Pointer(late))
	cbusy := (*C.int)(C.calloc(C.size_t(len(busy)+1), 4))
	defer C.free(unsafe.Pointer(cbusy))
	cb := unsafe.Slice(cbusy, len(busy)+1)
	for i, fd := range busy {
		cb[i] = C.int(fd)
	}
	s := C.bench_libvirt_timeouts_spec{
		pending: C.int(spec.Pending), lead_ns: C.int64_t(spec.Lead), spread_ns: C.int64_t(spec.Spread),
		rearm_min_ms: C.int(spec.RearmMin / time.Millisecond), rearm_max_ms: C.int(spec.RearmMax / time.Millisecond),
		window_ns: C.int64_t(spec.Window), busy: cbusy, busy_n: C.int(len(busy)),
		late_ns: late, late_cap: lateCap,
	}
	if rc := C.bench_libvirt_timeouts(&s); rc != 0 {
		return TimeoutResult{}, fmt.Errorf("libvirt timeouts failed (%d)", int(rc))
	}
	samples := unsafe.Slice(late, int(s.late_n))
	res := TimeoutResult{Fired: uint64(s.fired), CPU: time.Duration(s.cpu_ns),
		Window: time.Duration(s.window_wall_ns), FDEvents: uint64(s.fd_events)}
	res.Late = make([]time.Duration, len(samples))
	for i, v := range samples {
		res.Late[i] = time.Duration(v)
	}
	return res, nil
}
