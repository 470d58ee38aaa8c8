//go:build xenintegration && xen42

package integration

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/goxl/goxl/driver"
	"github.com/goxl/goxl/driver/eventloop"
	"github.com/goxl/goxl/internal/osevent"
	"github.com/goxl/goxl/libxl"
)

// TestDeviceTimeoutDuringCreate is goxl's side of tests/xen42's control
// (issue 14, item 5): the scenario tests/xen42/control/naiveloop.c runs
// without goxl's protections. A PV guest with one vif whose backend never
// answers (dom0 has no xen-netback loaded) makes libxl's 10 s device
// timeout fire during the create; libxl 4.2.1 then deregisters the
// timeout it has just been handed (4.2.2 modifies it), which crashes a
// loop that trusts 4.2.1's header. Through goxl the create fails cleanly,
// nothing is left, and the hook-trace invariants hold (setup's cleanup).
// Built only with -tags xen42: on 4.17 it would add a 20 s device timeout
// to `make xen`.
func TestDeviceTimeoutDuringCreate(t *testing.T) {
	if _, err := os.Stat("/sys/module/xen_netback"); err == nil {
		t.Fatal("xen-netback is loaded: the vif's backend would answer and no device timeout would fire (run this test before anything loads it)")
	}
	// Timeouts delivered at their deadline, not cancelled with a fire-now
	// (4.2.2 and the series cancel that way): the device timeout.
	type key struct {
		binding uint64
		reg     osevent.RegID
	}
	var mu sync.Mutex
	cancelled := map[key]bool{}
	expired := 0
	e := setupTraced(t, func(ev eventloop.TraceEvent) {
		mu.Lock()
		defer mu.Unlock()
		k := key{ev.Binding, ev.Reg}
		switch {
		case ev.Op == eventloop.OpTimeoutRegister:
			delete(cancelled, k)
		case ev.Op == eventloop.OpTimeoutModify && osevent.IsFireNow(ev.Deadline):
			cancelled[k] = true
		case ev.Op == eventloop.OpOccurredTimeout && !cancelled[k]:
			expired++
		}
	})
	cfg := guestConfig(t, "devtimeout", func(c *libxl.DomainConfig) {
		c.Nics = []libxl.NicConfig{{Bridge: "xenbr0"}}
	})
	start := time.Now()
	d, err := e.doms.Create(ctxT(t, 5*time.Minute), cfg, driver.CreateOptions{Paused: true})
	t.Logf("create with an unanswered vif: %v after %v", err, time.Since(start).Round(time.Millisecond))
	if err == nil {
		t.Fatalf("create succeeded (domain %d) although the vif's backend never connects", d.Snapshot().DomID)
	}
	mu.Lock()
	n := expired
	mu.Unlock()
	if n == 0 {
		t.Fatal("no timeout expired: the device timeout this control needs did not happen")
	}
	t.Logf("timeouts expired: %d, delivered: %d, registered: %d, deregistered by libxl: %d, modified: %d",
		n, e.hooks.Count(eventloop.OpOccurredTimeout), e.hooks.Count(eventloop.OpTimeoutRegister),
		e.hooks.Count(eventloop.OpTimeoutDeregister), e.hooks.Count(eventloop.OpTimeoutModify))
	e.noGuests()
	e.checkHooks("the device timeout")
}

// libxl 4.2.x's libxl_set_memory_target returns 1 (xc_domain_getinfolist's
// count) on success, and its xl ignores the value; libxl/compat42.h maps
// it to 0. Without that, mem-set failed on real 4.2.1 with "hook error 1".
func TestSetMemoryTargetOn42(t *testing.T) {
	e := setup(t)
	d, err := e.doms.Create(ctxT(t, 5*time.Minute), guestConfig(t, "memset42", nil), driver.CreateOptions{Paused: true})
	if err != nil {
		t.Fatal(err)
	}
	domid := d.Snapshot().DomID
	defer e.drv.Ctx().DestroyDomain(context.Background(), domid)
	if err := e.drv.Ctx().SetMemoryTarget(domid, 96*1024); err != nil {
		t.Fatalf("SetMemoryTarget(%d, 96 MiB): %v", domid, err)
	}
	if err := e.doms.Destroy(ctxT(t, 5*time.Minute), "memset42"); err != nil {
		t.Fatal(err)
	}
	e.noGuests()
}
