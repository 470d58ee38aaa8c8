//go:build cgo && libxlmodel

package libxl

// Test helpers that play libxl's part in callbacks the contract model does
// not raise on its own: an event no subscription claimed, and a disaster.
// They call goxl's real event hooks table with the ctx's real `user`
// token, exactly as libxl does; cgo is not available in _test files.

/*
#include <stdlib.h>
#include <libxl.h>
#include <libxl_event.h>

static void goxl_t_event_occurs(void *hooks, uintptr_t user, int type, uint32_t domid, uint64_t for_user)
{
    const libxl_event_hooks *h = hooks;
    libxl_event *ev = calloc(1, sizeof *ev);
    if (!ev)
        return;
    ev->type = (libxl_event_type)type;
    ev->domid = domid;
    ev->for_user = for_user;
    h->event_occurs((void *)user, ev);
}

static void goxl_t_disaster(void *hooks, uintptr_t user, int type, const char *msg, int errnoval)
{
    const libxl_event_hooks *h = hooks;
    h->disaster((void *)user, (libxl_event_type)type, msg, errnoval);
}

static int goxl_t_destroy(void *raw, uint32_t domid, void *how)
{
    return libxl_domain_destroy(raw, domid, how);
}

static int goxl_t_shutdown(void *raw, uint32_t domid, void *how)
{
    return libxl_domain_shutdown(raw, domid, how);
}
*/
import "C"

import (
	"unsafe"

	"github.com/goxl/goxl"
)

// raiseEventForTest calls the ctx's event_occurs callback as libxl does at
// the end of a libxl call (an egc), on the calling thread.
func (c *Ctx) raiseEventForTest(typ EventType, domid uint32, forUser uint64) {
	C.goxl_t_event_occurs(goxl.EventHooksTable(), C.uintptr_t(c.userToken), C.int(typ), C.uint32_t(domid), C.uint64_t(forUser))
}

// raiseDisasterForTest calls the ctx's disaster callback as libxl does.
func (c *Ctx) raiseDisasterForTest(typ EventType, msg string, errnoval int) {
	cs := C.CString(msg)
	defer C.free(unsafe.Pointer(cs))
	C.goxl_t_disaster(goxl.EventHooksTable(), C.uintptr_t(c.userToken), C.int(typ), cs, C.int(errnoval))
}

// shutdownStartForTest is a CallAsync start function that calls
// libxl_domain_shutdown, as a user's unwrapped libxl function would.
func shutdownStartForTest(domid uint32) func(raw, aoHow unsafe.Pointer) int {
	return func(raw, aoHow unsafe.Pointer) int {
		return int(C.goxl_t_shutdown(raw, C.uint32_t(domid), aoHow))
	}
}

// destroySyncForTest calls libxl_domain_destroy synchronously (ao_how
// NULL): on 4.17 the model's destroy forks a child and returns only after
// libxl_childproc_sigchld_occurred reaped it.
func destroySyncForTest(raw unsafe.Pointer, domid uint32) error {
	if rc := C.goxl_t_destroy(raw, C.uint32_t(domid), nil); rc != 0 {
		return Error(rc)
	}
	return nil
}
