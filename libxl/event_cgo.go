//go:build cgo

package libxl

/*
#include "helpers.h"
*/
import "C"

import (
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
	C.libxl_event_free(r.c.ctx, ev)
	r.c.route(e)
}

func (r eventReceiver) Disaster(eventType int, msg string, errnoval int) {
	r.c.opts.Logger.Error("libxl reported a disaster: the ctx may have lost events",
		"event_type", EventType(eventType).String(), "msg", msg, "errno", errnoval)
}

// route hands an event to the subscription named by its for_user.
func (c *Ctx) route(e Event) {
	c.subsMu.Lock()
	deliver := c.subs[e.ForUser]
	c.subsMu.Unlock()
	switch {
	case deliver != nil:
		deliver(e)
	case c.opts.OnEvent != nil:
		c.opts.OnEvent(e)
	default:
		c.opts.Logger.Debug("libxl event with no subscriber", slog.String("event", e.String()))
	}
}

// subscribe registers deliver for events whose for_user is the returned
// value. deliver must not block.
func (c *Ctx) subscribe(deliver func(Event)) uint64 {
	id := c.nextEv.Add(1)
	c.subsMu.Lock()
	c.subs[id] = deliver
	c.subsMu.Unlock()
	return id
}

func (c *Ctx) unsubscribe(id uint64) {
	c.subsMu.Lock()
	delete(c.subs, id)
	c.subsMu.Unlock()
}

// evgenSet tracks the ctx's enabled event generators so that Close can
// disable them before libxl_ctx_free.
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

// disableAll runs during Close, after new calls are refused and before
// the gate closes: the ctx is still fully alive.
func (s *evgenSet) disableAll(c *Ctx) {
	s.mu.Lock()
	all := s.live
	s.live = nil
	s.mu.Unlock()
	if len(all) == 0 {
		return
	}
	c.life.RLock()
	defer c.life.RUnlock()
	if c.serialised {
		c.serial.Lock()
		defer c.serial.Unlock()
	}
	for _, disable := range all {
		disable(c.ctx)
	}
}
