//go:build cgo

package libxl

/*
#include "helpers.h"
*/
import "C"

import (
	"fmt"
	"log/slog"
	"sync"
	"unsafe"
)

// eventReceiver implements goxl.EventHandler for one Ctx. It runs on the
// thread that was inside libxl (usually the dispatcher) with the ctx
// unlocked; it copies the event, frees it and hands the copy on without
// blocking.
type eventReceiver struct{ c *Ctx }

func (r eventReceiver) EventOccurs(p unsafe.Pointer) {
	ev := (*C.libxl_event)(p)
	e := Event{
		Type:    EventType(ev._type),
		DomID:   uint32(ev.domid),
		ForUser: uint64(ev.for_user),
	}
	C.memcpy(unsafe.Pointer(&e.UUID[0]), unsafe.Pointer(&ev.domuuid), 16)
	switch e.Type {
	case EventDomainShutdown:
		e.Shutdown = ShutdownReason(C.goxl_event_shutdown_reason(ev))
	case EventDiskEject:
		if v := C.goxl_event_disk_eject_vdev(ev); v != nil {
			e.Vdev = C.GoString(v)
		}
	case EventOperationComplete:
		e.RC = int(C.goxl_event_operation_rc(ev))
	}
	// libxl_event_free needs no ctx lock and is safe here: the ctx is
	// alive while libxl calls us.
	C.libxl_event_free(r.c.raw, ev)
	r.c.route(e)
}

// Disaster is libxl's disaster callback: events of eventType may never
// come again (libxl_event.h). The ctx is marked broken: subscriptions end
// with the disaster's error (so that whoever waits for a shutdown or a
// death stops waiting), and new operations are refused with it. Close
// still works and must be called.
func (r eventReceiver) Disaster(eventType int, msg string, errnoval int) {
	c := r.c
	err := fmt.Errorf("%w: %s (event type %s, errno %d)", ErrDisaster, msg, EventType(eventType), errnoval)
	c.mu.Lock()
	if c.broken == nil {
		c.broken = err
	}
	c.mu.Unlock()
	c.opts.Logger.Error("libxl reported a disaster: the ctx may have lost events; it refuses new operations",
		"event_type", EventType(eventType).String(), "msg", msg, "errno", errnoval)
	c.endSubscriptions(err)
}

// endSubscriptions ends every subscription with err (a no-op for those
// that already ended). Their generators stay recorded in evgens, so that
// Subscription.Close still disables them in libxl (or libxl_ctx_free does).
func (c *Ctx) endSubscriptions(err error) {
	c.subsMu.Lock()
	all := make([]*Subscription, 0, len(c.subs))
	for _, s := range c.subs {
		all = append(all, s)
	}
	c.subsMu.Unlock()
	for _, s := range all {
		s.finish(err)
	}
}

// route hands an event to the subscription named by its for_user, or to
// Options.OnEvent. In Xen42Serialised mode the serial lock is held by the
// libxl call this runs in, so OnEvent is deferred until it is released
// (see runDeferred): a re-entrant Ctx call would wait for that lock.
func (c *Ctx) route(e Event) {
	c.subsMu.Lock()
	sub := c.subs[e.ForUser]
	c.subsMu.Unlock()
	switch {
	case sub != nil:
		sub.deliver(e)
	case c.opts.OnEvent != nil && c.serialised:
		c.deferredMu.Lock()
		c.deferred = append(c.deferred, e)
		c.deferredMu.Unlock()
	case c.opts.OnEvent != nil:
		leave := c.enterCallback()
		defer leave()
		c.opts.OnEvent(e)
	default:
		c.opts.Logger.Debug("libxl event with no subscriber", slog.String("event", e.String()))
	}
}

// runDeferred runs deferred OnEvent callbacks in arrival order, one
// drainer at a time, with no goxl lock held. A panic in OnEvent is logged
// and does not reach the caller that happened to release the lock.
func (c *Ctx) runDeferred() {
	c.deferredMu.Lock()
	if c.draining || len(c.deferred) == 0 {
		c.deferredMu.Unlock()
		return
	}
	c.draining = true
	for len(c.deferred) > 0 {
		evs := c.deferred
		c.deferred = nil
		c.deferredMu.Unlock()
		for _, e := range evs {
			c.runOnEvent(e)
		}
		c.deferredMu.Lock()
	}
	c.draining = false
	c.deferredMu.Unlock()
}

func (c *Ctx) runOnEvent(e Event) {
	leave := c.enterCallback()
	defer leave()
	defer func() {
		if p := recover(); p != nil {
			c.opts.Logger.Error("libxl: panic in Options.OnEvent", "event", e.String(), "panic", fmt.Sprint(p))
		}
	}()
	c.opts.OnEvent(e)
}

// subscribe registers s for events whose for_user is the returned value.
func (c *Ctx) subscribe(s *Subscription) uint64 {
	id := c.nextEv.Add(1)
	c.subsMu.Lock()
	c.subs[id] = s
	c.subsMu.Unlock()
	return id
}

func (c *Ctx) unsubscribe(id uint64) {
	c.subsMu.Lock()
	delete(c.subs, id)
	c.subsMu.Unlock()
}

// evgenSet tracks the ctx's enabled event generators so that
// Subscription.Close disables each in libxl at most once. Close does not
// use it: libxl_ctx_free disables the generators still enabled.
type evgenSet struct {
	mu   sync.Mutex // never held while calling libxl
	next uint64
	live map[uint64]func(raw *C.libxl_ctx)
}

func (s *evgenSet) add(disable func(raw *C.libxl_ctx)) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live == nil {
		s.live = map[uint64]func(raw *C.libxl_ctx){}
	}
	s.next++
	s.live[s.next] = disable
	return s.next
}

// take removes and returns one generator's disable function, or nil if
// it is already gone (disabled by Close or by its owner).
func (s *evgenSet) take(id uint64) func(raw *C.libxl_ctx) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.live[id]
	delete(s.live, id)
	return d
}
