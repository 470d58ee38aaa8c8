//go:build cgo

package goxl

/*
#include <stdlib.h>
#include <string.h>
#include "cbridge.h"

// Calls every hook and callback of the bridge once, through the C tables
// libxl uses, with the given `user` and for_callback tokens; rcs gets the
// return codes of the four hooks that return one.
static void goxl_ec_call_all(uintptr_t user, uintptr_t for_callback, int rcs[4])
{
    void *reg = 0;
    struct timeval tv = {1, 0};
    libxl_event *ev = calloc(1, sizeof *ev);
    rcs[0] = goxl_osevent_hooks.fd_register((void *)user, 0, &reg, POLLIN, (void *)0x10);
    reg = (void *)1;
    rcs[1] = goxl_osevent_hooks.fd_modify((void *)user, 0, &reg, POLLIN);
    goxl_osevent_hooks.fd_deregister((void *)user, 0, (void *)1);
    rcs[2] = goxl_osevent_hooks.timeout_register((void *)user, &reg, tv, (void *)0x20);
    reg = (void *)1;
    rcs[3] = goxl_osevent_hooks.timeout_modify((void *)user, &reg, tv);
    goxl_osevent_hooks.timeout_deregister((void *)user, (void *)1);
    if (ev)
        goxl_event_hooks.event_occurs((void *)user, ev); // the test handler does not free it
    free(ev);
    goxl_event_hooks.disaster((void *)user, LIBXL_EVENT_TYPE_DOMAIN_DEATH, "test", 0);
    goxl_ao_complete(NULL, 0, (void *)for_callback);
}
*/
import "C"

// callEveryExportForTest drives every export through libxl's C tables
// (tests; cgo is not available in _test files). It returns the rcs of
// fd_register, fd_modify, timeout_register and timeout_modify.
func callEveryExportForTest(user, forCallback Token) [4]int {
	var rcs [4]C.int
	C.goxl_ec_call_all(C.uintptr_t(user), C.uintptr_t(forCallback), &rcs[0])
	return [4]int{int(rcs[0]), int(rcs[1]), int(rcs[2]), int(rcs[3])}
}

// errorOSEventRegFailForTest is ERROR_OSEVENT_REG_FAIL.
const errorOSEventRegFailForTest = int(errorOSEventRegFail)
