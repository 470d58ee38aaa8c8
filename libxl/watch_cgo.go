//go:build cgo

package libxl

/*
#include "lifecycle_helpers.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// WatchDomainDeath subscribes to a domain's DOMAIN_SHUTDOWN and
// DOMAIN_DEATH events (libxl_evenable_domain_death). libxl reports a
// shutdown once per shutdown (with its ShutdownReason), then the death;
// or the death alone. Close the subscription when done.
func (c *Ctx) WatchDomainDeath(domid uint32, opts WatchOptions) (*Subscription, error) {
	return c.watch(opts, fmt.Sprintf("libxl_evenable_domain_death(%d)", domid), func(raw *C.libxl_ctx, user C.libxl_ev_user) (func(*C.libxl_ctx), C.int) {
		var gen *C.libxl_evgen_domain_death
		rc := C.libxl_evenable_domain_death(raw, C.uint32_t(domid), user, &gen)
		return func(raw *C.libxl_ctx) { C.libxl_evdisable_domain_death(raw, gen) }, rc
	})
}

// WatchDiskEject subscribes to the DISK_EJECT events of one of a domain's
// virtual devices, such as "hdc" (libxl_evenable_disk_eject).
func (c *Ctx) WatchDiskEject(domid uint32, vdev string, opts WatchOptions) (*Subscription, error) {
	cv := C.CString(vdev)
	defer C.free(unsafe.Pointer(cv))
	return c.watch(opts, fmt.Sprintf("libxl_evenable_disk_eject(%d, %s)", domid, vdev), func(raw *C.libxl_ctx, user C.libxl_ev_user) (func(*C.libxl_ctx), C.int) {
		var gen *C.libxl_evgen_disk_eject
		rc := C.libxl_evenable_disk_eject(raw, C.uint32_t(domid), cv, user, &gen)
		return func(raw *C.libxl_ctx) { C.libxl_evdisable_disk_eject(raw, gen) }, rc
	})
}

type enableFunc func(raw *C.libxl_ctx, user C.libxl_ev_user) (disable func(*C.libxl_ctx), rc C.int)

// watch subscribes first, so that events libxl raises inside the evenable
// call are routed, then enables the generator and records it in c.evgens
// for Subscription.Close; one the owner leaves enabled is disabled by
// libxl_ctx_free, and Close ends its subscription with ErrClosed.
func (c *Ctx) watch(opts WatchOptions, op string, enable enableFunc) (*Subscription, error) {
	s := newSubscription(opts.Buffer)
	raw, exit, err := c.enter()
	if err != nil {
		return nil, err
	}
	defer exit()
	user := c.subscribe(s)
	disable, rc := enable(raw, C.libxl_ev_user(user))
	if rc != 0 {
		c.unsubscribe(user)
		return nil, &OpError{Op: op, Err: Error(rc)}
	}
	gen := c.evgens.add(disable)
	s.stop = func() {
		c.disableEvgen(gen)
		c.unsubscribe(user)
	}
	return s, nil
}

// disableEvgen disables one generator unless Close already did. It holds
// a pin across take and disable, so the ctx cannot be freed in between;
// it is admitted while Close waits for operations, because a generator
// must be disabled even then.
func (c *Ctx) disableEvgen(id uint64) {
	if !c.pin() {
		return // libxl_ctx_free disabled every generator still enabled
	}
	defer c.unpin()
	disable := c.evgens.take(id)
	if disable == nil {
		return
	}
	c.lockSerial(serialAPI)
	defer c.unlockSerial(serialAPI)
	disable(c.raw)
}
