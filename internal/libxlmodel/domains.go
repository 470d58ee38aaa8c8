//go:build libxlmodel

package libxlmodel

/*
#include "libxlmodel.h"
*/
import "C"

import "unsafe"

// ResetDomains forgets every fake domain and the create delay: a test
// that checks for orphans starts from an empty host.
func ResetDomains() { C.libxlmodel_domains_reset() }

// SetCreateDelay makes libxl_domain_create_new take ms milliseconds (the
// build of a real domain takes seconds), so that a test can close or
// cancel in the middle of it. 0 completes at once.
func SetCreateDelay(ms int) { C.libxlmodel_set_create_delay_ms(C.int(ms)) }

// SetCreateDeviceTimeout makes libxl_domain_create_new wait for a device
// that never connects: its timeout fires after ms milliseconds and the
// create fails with ERROR_TIMEDOUT, cancelling the timeout from its own
// callback as libxl's device code does (see the 4.2 modes' hook call for
// a delivered timeout, doc.go). 0 turns it off; ResetDomains too.
func SetCreateDeviceTimeout(ms int) { C.libxlmodel_set_create_device_timeout_ms(C.int(ms)) }

// SetSaveBehaviour makes libxl_domain_suspend take delayMS and, with
// fail, end in ERROR_FAIL (as on a full disk), leaving the domain
// suspended (shut down, reason suspend) as libxl 4.17 does.
func SetSaveBehaviour(delayMS int, fail bool) {
	f := 0
	if fail {
		f = 1
	}
	C.libxlmodel_set_save_behaviour(C.int(delayMS), C.int(f))
}

// SetShutdownReason makes the guests that libxl_domain_shutdown stops
// from now on report reason (a libxl_shutdown_reason: 1 reboot, 3 crash,
// 4 watchdog, 5 soft reset) instead of poweroff, as a guest that reboots,
// crashes or trips its watchdog does. ResetDomains restores poweroff.
func SetShutdownReason(reason int) { C.libxlmodel_set_shutdown_reason(C.int(reason)) }

// SetDestroyFails makes libxl_domain_destroy of an existing domain fail
// with ERROR_FAIL from now on (false restores it; ResetDomains too), so
// that a test can see what the driver does when an on_* destroy fails.
func SetDestroyFails(fail bool) {
	f := 0
	if fail {
		f = 1
	}
	C.libxlmodel_set_destroy_fails(C.int(f))
}

// Domains returns the domids of the fake host's domains (dom0 excluded),
// whichever ctx built them: a domain that outlived its create's error is
// an orphan.
func Domains() []uint32 {
	for {
		buf := make([]uint32, 64)
		n := int(C.libxlmodel_domains_copy((*C.uint32_t)(unsafe.Pointer(&buf[0])), C.int(len(buf))))
		if n <= len(buf) {
			return buf[:n]
		}
		buf = make([]uint32, n)
		if m := int(C.libxlmodel_domains_copy((*C.uint32_t)(unsafe.Pointer(&buf[0])), C.int(len(buf)))); m <= n {
			return buf[:m]
		}
	}
}
