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

// DestroyDomainSync calls libxl_domain_destroy(ctx, domid, NULL): the
// synchronous form, which returns only when the operation is complete. In
// Mode417 with libxl_sigchld_owner_mainloop it forks a child and returns
// only after the application forwarded SIGCHLD
// (libxl_childproc_sigchld_occurred) and the model reaped it. It is a
// libxl API call: with goxl, make it through libxl.Ctx.Call.
func DestroyDomainSync(ctx unsafe.Pointer, domid uint32) error {
	if rc := C.libxl_domain_destroy((*C.libxl_ctx)(ctx), C.uint32_t(domid), nil); rc != 0 {
		return fmt.Errorf("libxlmodel: libxl_domain_destroy(%d): libxl error %d", domid, int(rc))
	}
	return nil
}

// SetDestroyChildDelay sets how long the child that libxl_domain_destroy
// forks lives before it exits (Mode417, mainloop SIGCHLD mode), so that a
// test can act while libxl waits for it. d < 0 restores the default (1 or
// 2 ms).
func SetDestroyChildDelay(d time.Duration) {
	us := -1
	if d >= 0 {
		us = int(d / time.Microsecond)
	}
	C.libxlmodel_set_destroy_child_us(C.int(us))
}

// SetHandlesLockHold models xentoolcore's process-wide handle lock:
// libxl_ctx_alloc and libxl_ctx_free hold it for d, and the child that
// destroy forks takes it as xc_interface_open does. A child forked while
// another thread holds it gives up after a second and is reported as
// ChildInheritedHandlesLock (on real Xen it would wait forever, and the
// destroy with it). d <= 0, the default, leaves the lock out.
func SetHandlesLockHold(d time.Duration) {
	C.libxlmodel_set_handles_lock_hold_us(C.int(d / time.Microsecond))
}
