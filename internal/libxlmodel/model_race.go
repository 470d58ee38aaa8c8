//go:build libxlmodel

package libxlmodel

/*
#include "libxlmodel.h"
*/
import "C"

import (
	"fmt"
	"time"
	"unsafe"
)

// RaceHandle names one timeout armed by RaceArm. Handles are never reused.
type RaceHandle uint64

// RaceArm registers a one-shot timeout on ctx due after delay, calling the
// application's timeout_register hook with libxl's ctx lock held, as a
// libxl API call would (libxlmodel_race_arm in race.c).
//
// It is a libxl API call: an application that serialises its libxl calls
// must make it under that serialisation. With goxl, call it through
// libxl.Ctx.Call. On 4.2-unpatched this is the only way the model
// deregisters from a thread other than the one delivering, the way real
// 4.2 libxl does (it has no threads: its deregistrations happen inside API
// calls made by application threads).
func RaceArm(ctx unsafe.Pointer, delay time.Duration) (RaceHandle, error) {
	h := C.libxlmodel_race_arm((*C.libxl_ctx)(ctx), C.int(delay/time.Microsecond))
	if h == 0 {
		return 0, fmt.Errorf("libxlmodel: race arm on ctx %p failed (refused call or failed registration)", ctx)
	}
	return RaceHandle(h), nil
}

// RaceCancel cancels the timeout h unless it has fired, the way ctx's mode
// cancels (4.2-unpatched: timeout_deregister, then the record is freed, so
// a later occurred_timeout on it is a DeliveryAfterDeregister violation;
// 4.17 and 4.2-patched: timeout_modify({0,0}), a delivery still owed). It
// reports whether it cancelled (false: it fired, or was cancelled before).
// Like RaceArm, it is a libxl API call.
func RaceCancel(ctx unsafe.Pointer, h RaceHandle) (cancelled bool, err error) {
	switch C.libxlmodel_race_cancel((*C.libxl_ctx)(ctx), C.uint64_t(h)) {
	case 1:
		return true, nil
	case 0:
		return false, nil
	}
	return false, fmt.Errorf("libxlmodel: race cancel of handle %d on ctx %p refused (unknown handle, another ctx's, or a dead ctx)", h, ctx)
}

// RaceCounts are the race API's process-wide counters since the last Reset.
type RaceCounts struct {
	Armed            uint64 // RaceArm calls that registered
	Cancelled        uint64 // RaceCancel calls that cancelled
	Fired            uint64 // delivered while armed
	CancelLate       uint64 // RaceCancel calls that found it fired or cancelled
	FireNowDelivered uint64 // fire-now modes: owed deliveries that came
}

// RaceCounters reads the race API's counters.
func RaceCounters() RaceCounts {
	var c C.libxlmodel_race_counters
	C.libxlmodel_race_counters_read(&c)
	return RaceCounts{
		Armed:            uint64(c.armed),
		Cancelled:        uint64(c.cancelled),
		Fired:            uint64(c.fired),
		CancelLate:       uint64(c.cancel_late),
		FireNowDelivered: uint64(c.fire_now_delivered),
	}
}

// HoldFD registers, outside any operation, a never-ready eventfd on ctx (a
// libxl API call, like RaceArm) and returns it; close it after
// libxl_ctx_free. It stands for an fd of an operation still in progress:
// libxl_ctx_free finding it registered is CtxFreeWithRegistrations.
func HoldFD(ctx unsafe.Pointer) (int, error) {
	fd := int(C.libxlmodel_hold_fd((*C.libxl_ctx)(ctx)))
	if fd < 0 {
		return -1, fmt.Errorf("libxlmodel: hold fd on ctx %p failed", ctx)
	}
	return fd, nil
}
