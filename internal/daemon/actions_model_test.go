//go:build libxlmodel

package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goxl/goxl/driver"
	"github.com/goxl/goxl/internal/libxlmodel"
	"github.com/goxl/goxl/libxl"
)

// libxl_shutdown_reason values the model's guests can be made to report.
const (
	reasonReboot   = 1
	reasonWatchdog = 4
)

// waitDaemonEvent reads the daemon's events from since until one of
// name's has kind, and returns it.
// waitDaemonEvent waits for name's first event of one of kinds.
func waitDaemonEvent(t *testing.T, c *Client, since uint64, name string, kinds ...string) Event {
	t.Helper()
	// The model delivers in milliseconds; 10 s is a wide margin under
	// -race, and a mutation that loses the event waits this long.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got Event
	var seen []string
	c.Call(ctx, Request{Op: OpEvents, Since: since}, func(e Event) bool {
		seen = append(seen, e.Name+":"+e.Kind)
		if e.Name == name && slices.Contains(kinds, e.Kind) {
			got = e
			return false
		}
		return true
	})
	if got.Kind == "" {
		t.Fatalf("no %s event for %s; saw %v", strings.Join(kinds, " or "), name, seen)
	}
	return got
}

func nextSeq(t *testing.T, c *Client) uint64 {
	t.Helper()
	var h Hello
	if err := c.Do(context.Background(), Request{Op: OpHello}, &h); err != nil {
		t.Fatal(err)
	}
	return h.NextSeq
}

// A guest whose watchdog fires is handled by on_watchdog (not on_crash,
// though both are "crashed" states): here on_watchdog=restart builds a
// new incarnation while on_crash=destroy would have removed it. The test
// guest on real Xen has no watchdog driver, so this runs on the model.
func TestWatchdogActionThroughTheDaemon(t *testing.T) {
	libxlmodel.ResetDomains()
	t.Cleanup(libxlmodel.ResetDomains)
	_, c := openModelDaemon(t, nil)
	ctx := context.Background()
	w, _ := EncodeConfig(&libxl.DomainConfig{Name: "wd", MemoryMB: 64, VCPUs: 1, Kernel: "/k",
		OnCrash: libxl.ActionDestroy, OnWatchdog: libxl.ActionRestart})
	var snap driver.DomainSnapshot
	if err := c.Do(ctx, Request{Op: OpCreate, Config: w}, &snap); err != nil {
		t.Fatal(err)
	}
	since := nextSeq(t, c)
	libxlmodel.SetShutdownReason(reasonWatchdog)
	if err := c.Do(ctx, Request{Op: OpShutdown, Dom: "wd"}, nil); err != nil {
		t.Fatal(err)
	}
	ev := waitDaemonEvent(t, c, since, "wd", "crashed")
	if ev.ReasonName != libxl.ShutdownWatchdog.String() || ev.Action != libxl.ActionRestart {
		t.Fatalf("watchdog stop reported as %+v, want reason watchdog and action restart (on_watchdog)", ev)
	}
	re := waitDaemonEvent(t, c, since, "wd", "restarted")
	if re.DomID == snap.DomID {
		t.Fatalf("restarted with the old domid %d", re.DomID)
	}
}

// An on_* restart marks the name "building" before it builds the new
// incarnation, as a create does, and records the new domid once built:
// a daemon killed in between leaves a lock file saying "building", and
// the next daemon destroys the half-built domain
// (TestHalfBuiltDomainIsDestroyedOnStart) instead of taking it over.
func TestRestartMarksTheNameBuilding(t *testing.T) {
	libxlmodel.ResetDomains()
	t.Cleanup(libxlmodel.ResetDomains)
	owners := filepath.Join(t.TempDir(), "owners")
	_, c := openModelDaemon(t, func(o *Options) { o.OwnerDir = owners })
	ctx := context.Background()
	w, _ := EncodeConfig(&libxl.DomainConfig{Name: "rb", MemoryMB: 64, VCPUs: 1, Kernel: "/k", OnReboot: libxl.ActionRestart})
	var snap driver.DomainSnapshot
	if err := c.Do(ctx, Request{Op: OpCreate, Config: w}, &snap); err != nil {
		t.Fatal(err)
	}
	lock := func() lockState {
		f, err := os.Open(filepath.Join(owners, "rb.lock"))
		if err != nil {
			return lockState{}
		}
		defer f.Close()
		st, _ := readLockState(f)
		return st
	}
	if st := lock(); st.Phase != "owned" || st.DomID != snap.DomID {
		t.Fatalf("lock after create: %+v, want owned %d", st, snap.DomID)
	}
	since := nextSeq(t, c)
	libxlmodel.SetCreateDelay(1500)
	libxlmodel.SetShutdownReason(reasonReboot)
	if err := c.Do(ctx, Request{Op: OpShutdown, Dom: "rb"}, nil); err != nil {
		t.Fatal(err)
	}
	sawBuilding := false
	deadline := time.Now().Add(20 * time.Second)
	for !sawBuilding && time.Now().Before(deadline) {
		sawBuilding = lock().Phase == "building"
		time.Sleep(5 * time.Millisecond)
	}
	if !sawBuilding {
		t.Fatalf("the restart never marked rb building; lock: %+v", lock())
	}
	re := waitDaemonEvent(t, c, since, "rb", "restarted")
	if st := lock(); st.Phase != "owned" || st.DomID != re.DomID || re.DomID == snap.DomID {
		t.Fatalf("lock after the restart: %+v, want owned by the new domid %d (old %d)", st, re.DomID, snap.DomID)
	}
}

// on_*=soft-reset of a PV guest: Xen soft-resets HVM (and PVH) domains
// only, so the action fails with driver.ErrSoftResetNotSupported before
// libxl is asked (libxl 4.17 would first tear the guest's devices
// down), the domain is destroyed, and an "action-failed" event carries
// the error, typed in-process and as text on the daemon's stream.
func TestSoftResetOfPVGuestFailsTyped(t *testing.T) {
	libxlmodel.ResetDomains()
	t.Cleanup(libxlmodel.ResetDomains)
	d, c := openModelDaemon(t, nil)
	ctx := context.Background()
	sub := d.Domains().Subscribe(64)
	defer sub.Close()
	w, _ := EncodeConfig(&libxl.DomainConfig{Name: "sr", MemoryMB: 64, VCPUs: 1, Kernel: "/k", OnReboot: libxl.ActionSoftReset})
	var snap driver.DomainSnapshot
	if err := c.Do(ctx, Request{Op: OpCreate, Config: w}, &snap); err != nil {
		t.Fatal(err)
	}
	since := nextSeq(t, c)
	libxlmodel.SetShutdownReason(reasonReboot)
	if err := c.Do(ctx, Request{Op: OpShutdown, Dom: "sr"}, nil); err != nil {
		t.Fatal(err)
	}
	ev := waitDaemonEvent(t, c, since, "sr", "action-failed")
	if !strings.Contains(ev.Error, "not supported for PV") {
		t.Fatalf("action-failed on the wire says %q, want the PV reason", ev.Error)
	}
	for e := range sub.C() {
		if e.Kind == "action-failed" {
			if !errors.Is(e.Err, driver.ErrSoftResetNotSupported) {
				t.Fatalf("action-failed carries %v, want ErrSoftResetNotSupported", e.Err)
			}
			break
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := d.drv.Ctx().DomainInfo(snap.DomID); errors.Is(err, libxl.ErrDomainNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sr (domain %d) not destroyed after its failed soft reset", snap.DomID)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Event numbers never go back across daemon restarts: after a clean stop
// the next daemon numbers on from the last event; a subscriber resuming
// with the next number gets the new daemon's events from exactly there,
// and one asking for a number only the old daemon held is told those
// events are gone (never handed another event under a number it saw).
// After a daemon that was killed, numbering resumes above the block of
// numbers it had reserved.
func TestEventNumberingSurvivesARestart(t *testing.T) {
	libxlmodel.ResetDomains()
	t.Cleanup(libxlmodel.ResetDomains)
	dir := t.TempDir()
	same := func(o *Options) {
		o.Socket, o.OwnerDir = filepath.Join(dir, "d.sock"), filepath.Join(dir, "owners")
	}
	ctx := context.Background()
	churn := func(c *Client, name string) {
		var snap driver.DomainSnapshot
		if err := c.Do(ctx, Request{Op: OpCreate, Config: goxlConfig(name)}, &snap); err != nil {
			t.Fatal(err)
		}
		if err := c.Do(ctx, Request{Op: OpDestroy, Dom: name}, nil); err != nil {
			t.Fatal(err)
		}
	}
	d1, c1 := openModelDaemon(t, same)
	churn(c1, "n1")
	// One terminal event per incarnation: "destroyed" when Destroy's
	// step publishes first, "death" when libxl's event wins the race.
	waitDaemonEvent(t, c1, 1, "n1", "destroyed", "death")
	if err := d1.Stop(); err != nil {
		t.Fatal(err)
	}
	_, last := d1.events.bounds() // the last event's number + 1, after the stop
	if last < 3 {
		t.Fatalf("the first daemon numbered %d events, want at least created and destroyed", last-1)
	}
	d2, c2 := openModelDaemon(t, same)
	var h Hello
	if err := c2.Do(ctx, Request{Op: OpHello}, &h); err != nil {
		t.Fatal(err)
	}
	if h.FirstSeq != last || h.NextSeq != last {
		t.Fatalf("after a clean stop at %d the new daemon keeps %d..%d, want to start at %d", last, h.FirstSeq, h.NextSeq, last)
	}
	_, err := c2.Call(ctx, Request{Op: OpEvents, Since: last - 1}, func(Event) bool { return false })
	if !errors.Is(err, ErrEventsGone) {
		t.Fatalf("events from %d (held by the old daemon only): %v, want ErrEventsGone", last-1, err)
	}
	churn(c2, "n2")
	if ev := waitDaemonEvent(t, c2, last, "n2", "created"); ev.Seq != last {
		t.Fatalf("resumed at %d: n2's created is %d, want %d", last, ev.Seq, last)
	}

	// A daemon killed: its state file still holds the reservation it
	// made before handing numbers out.
	b, err := os.ReadFile(filepath.Join(dir, seqFile))
	if err != nil {
		t.Fatal(err)
	}
	used := nextSeq(t, c2) - 1
	var st seqState
	if err := json.Unmarshal(b, &st); err != nil || st.Clean || st.Next <= used {
		t.Fatalf("state while running: %s (%v), want an unclean reservation above %d", b, err, used)
	}
	// (The model cannot be SIGKILLed without the test: stop, then put
	// the running daemon's state back, as a kill would have left it.)
	if err := d2.Stop(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, seqFile), b, 0o600)
	_, c3 := openModelDaemon(t, same)
	if n := nextSeq(t, c3); n != st.Next {
		t.Fatalf("after a kill the new daemon numbers from %d, want %d (above every number the killed one used, %d)", n, st.Next, used)
	}
}

// A monitor killed in the middle of a build (its lock says "building",
// nobody holds it) leaves a half-built domain; a running daemon finds it
// on its next scan and destroys it, as it would at start.
func TestRunningDaemonDestroysWhatADeadMonitorHalfBuilt(t *testing.T) {
	libxlmodel.ResetDomains()
	t.Cleanup(libxlmodel.ResetDomains)
	owners := filepath.Join(t.TempDir(), "owners")
	d, c := openModelDaemon(t, func(o *Options) { o.OwnerDir = owners; o.ResyncInterval = 50 * time.Millisecond })
	mon, err := NewOwners(owners, "monitor")
	if err != nil {
		t.Fatal(err)
	}
	claim, err := mon.TryClaim("mhalf")
	if err != nil {
		t.Fatal(err)
	}
	claim.Building()
	dom, err := d.Domains().Create(context.Background(), &libxl.DomainConfig{Name: "mhalf", MemoryMB: 64, VCPUs: 1, Kernel: "/k"}, driver.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	domid := dom.Snapshot().DomID
	since := nextSeq(t, c)
	// The monitor dies: the kernel drops its flock, the file stays.
	claim.f.Close()
	ev := waitDaemonEvent(t, c, since, "mhalf", "recovered")
	if ev.DomID != domid {
		t.Fatalf("recovered %+v, want domain %d", ev, domid)
	}
	if _, err := d.drv.Ctx().DomainInfo(domid); !errors.Is(err, libxl.ErrDomainNotFound) {
		t.Fatalf("the half-built domain %d is still there: %v", domid, err)
	}
}

// on_reboot=coredump-restart restarts the guest after its core dump, and
// a dump that fails (the model has no core dump: ERROR_NI) is logged
// and the restart goes on, as xl goes on.
func TestCoredumpRestartRestartsEvenIfTheDumpFails(t *testing.T) {
	libxlmodel.ResetDomains()
	t.Cleanup(libxlmodel.ResetDomains)
	_, c := openModelDaemon(t, nil)
	ctx := context.Background()
	w, _ := EncodeConfig(&libxl.DomainConfig{Name: "cdr", MemoryMB: 64, VCPUs: 1, Kernel: "/k", OnReboot: libxl.ActionCoredumpRestart})
	var snap driver.DomainSnapshot
	if err := c.Do(ctx, Request{Op: OpCreate, Config: w}, &snap); err != nil {
		t.Fatal(err)
	}
	since := nextSeq(t, c)
	libxlmodel.SetShutdownReason(reasonReboot)
	if err := c.Do(ctx, Request{Op: OpShutdown, Dom: "cdr"}, nil); err != nil {
		t.Fatal(err)
	}
	ev := waitDaemonEvent(t, c, since, "cdr", "shutdown")
	if ev.Action != libxl.ActionCoredumpRestart {
		t.Fatalf("shutdown reported %+v, want action coredump-restart", ev)
	}
	if re := waitDaemonEvent(t, c, since, "cdr", "restarted"); re.DomID == snap.DomID {
		t.Fatalf("restarted with the old domid %d", re.DomID)
	}
}

// An on_reboot=restart whose new incarnation cannot be built (here a
// device that never connects) is reported: an "action-failed" event
// names the action and carries the build's error, nothing of the domain
// is left, and its name is free for a new create.
func TestFailedRestartIsReported(t *testing.T) {
	libxlmodel.ResetDomains()
	t.Cleanup(libxlmodel.ResetDomains)
	_, c := openModelDaemon(t, nil)
	ctx := context.Background()
	w, _ := EncodeConfig(&libxl.DomainConfig{Name: "rf", MemoryMB: 64, VCPUs: 1, Kernel: "/k", OnReboot: libxl.ActionRestart})
	var snap driver.DomainSnapshot
	if err := c.Do(ctx, Request{Op: OpCreate, Config: w}, &snap); err != nil {
		t.Fatal(err)
	}
	since := nextSeq(t, c)
	libxlmodel.SetCreateDeviceTimeout(50)
	libxlmodel.SetShutdownReason(reasonReboot)
	if err := c.Do(ctx, Request{Op: OpShutdown, Dom: "rf"}, nil); err != nil {
		t.Fatal(err)
	}
	ev := waitDaemonEvent(t, c, since, "rf", "action-failed", "restarted")
	if ev.Kind != "action-failed" || ev.Action != libxl.ActionRestart || !strings.Contains(ev.Error, "new incarnation") {
		t.Fatalf("a restart whose build failed was reported as %+v, want action-failed for restart with the build's error", ev)
	}
	if doms := libxlmodel.Domains(); len(doms) != 0 {
		t.Fatalf("domains left after the failed restart: %v", doms)
	}
	libxlmodel.SetCreateDeviceTimeout(0)
	if err := c.Do(ctx, Request{Op: OpCreate, Config: w}, nil); err != nil {
		t.Fatalf("create of rf after its failed restart: %v (the name must be free)", err)
	}
}

// An on_* action whose destroy fails is reported, and the stopped domain
// stays as it was: after a failed on_poweroff=destroy it is shut off; after
// a restart that could not destroy the old incarnation it is shut off too,
// not left "creating" (where no verb reaches it), so that the admin can
// destroy it once Xen lets go.
func TestFailedDestroyActionIsReported(t *testing.T) {
	for _, tc := range []struct {
		name   string
		reason int
		cfg    libxl.DomainConfig
		action libxl.ShutdownAction
	}{
		{"df", 0, libxl.DomainConfig{OnPoweroff: libxl.ActionDestroy}, libxl.ActionDestroy},
		{"dr", reasonReboot, libxl.DomainConfig{OnReboot: libxl.ActionRestart}, libxl.ActionRestart},
	} {
		t.Run(tc.name, func(t *testing.T) {
			libxlmodel.ResetDomains()
			t.Cleanup(libxlmodel.ResetDomains)
			_, c := openModelDaemon(t, nil)
			ctx := context.Background()
			cfg := tc.cfg
			cfg.Name, cfg.MemoryMB, cfg.VCPUs, cfg.Kernel = tc.name, 64, 1, "/k"
			w, _ := EncodeConfig(&cfg)
			var snap driver.DomainSnapshot
			if err := c.Do(ctx, Request{Op: OpCreate, Config: w}, &snap); err != nil {
				t.Fatal(err)
			}
			since := nextSeq(t, c)
			libxlmodel.SetDestroyFails(true)
			if tc.reason != 0 {
				libxlmodel.SetShutdownReason(tc.reason)
			}
			if err := c.Do(ctx, Request{Op: OpShutdown, Dom: tc.name}, nil); err != nil {
				t.Fatal(err)
			}
			ev := waitDaemonEvent(t, c, since, tc.name, "action-failed", "destroyed", "restarted")
			if ev.Kind != "action-failed" || ev.Action != tc.action || !strings.Contains(ev.Error, "destroy") {
				t.Fatalf("an on_* %s whose destroy failed was reported as %+v, want action-failed naming the destroy", tc.action, ev)
			}
			if ev.State != driver.StateShutoff {
				t.Fatalf("after the failed action %s is %s, want shutoff (as it stopped)", tc.name, ev.State)
			}
			libxlmodel.SetDestroyFails(false)
			if err := c.Do(ctx, Request{Op: OpDestroy, Dom: tc.name}, nil); err != nil {
				t.Fatalf("destroy of %s after its failed action: %v", tc.name, err)
			}
			if doms := libxlmodel.Domains(); len(doms) != 0 {
				t.Fatalf("domains left: %v", doms)
			}
		})
	}
}

// shutdown -w through the daemon returns once the guest is down, as xl -w
// and goxl in-process do; the on_poweroff action follows on its own.
// Here that destroy fails, and the wait ends all the same.
func TestShutdownWaitEndsWhenTheGuestIsDown(t *testing.T) {
	libxlmodel.ResetDomains()
	t.Cleanup(libxlmodel.ResetDomains)
	_, c := openModelDaemon(t, nil)
	w, _ := EncodeConfig(&libxl.DomainConfig{Name: "sw", MemoryMB: 64, VCPUs: 1, Kernel: "/k", OnPoweroff: libxl.ActionDestroy})
	if err := c.Do(context.Background(), Request{Op: OpCreate, Config: w}, nil); err != nil {
		t.Fatal(err)
	}
	libxlmodel.SetDestroyFails(true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Do(ctx, Request{Op: OpShutdown, Dom: "sw", Wait: true}, nil); err != nil {
		t.Fatalf("shutdown -w of a guest that powered off: %v (the wait must end when it is down)", err)
	}
	libxlmodel.SetDestroyFails(false)
	if err := c.Do(context.Background(), Request{Op: OpDestroy, Dom: "sw"}, nil); err != nil {
		t.Fatal(err)
	}
}

// shutdown -ww (xl's "wait for domain death only"): through a restart,
// the wait ends at the old incarnation's death, while the new one is
// still being built; for a domain its on_poweroff preserves (shut down,
// never dead) it does not end at all (-w would end at the shutdown:
// TestShutdownWaitEndsWhenTheGuestIsDown).
func TestShutdownWaitDeath(t *testing.T) {
	libxlmodel.ResetDomains()
	t.Cleanup(libxlmodel.ResetDomains)
	_, c := openModelDaemon(t, nil)
	ctx := context.Background()
	stateOf := func(name string) driver.DomainSnapshot {
		t.Helper()
		var list []OwnedDomain
		if err := c.Do(ctx, Request{Op: OpDomains}, &list); err != nil {
			t.Fatal(err)
		}
		for _, s := range list {
			if s.Name == name {
				return s.DomainSnapshot
			}
		}
		t.Fatalf("%s is not listed: %+v", name, list)
		return driver.DomainSnapshot{}
	}

	w, _ := EncodeConfig(&libxl.DomainConfig{Name: "wr", MemoryMB: 64, VCPUs: 1, Kernel: "/k", OnPoweroff: libxl.ActionRestart})
	var old driver.DomainSnapshot
	if err := c.Do(ctx, Request{Op: OpCreate, Config: w}, &old); err != nil {
		t.Fatal(err)
	}
	// The restart's build takes 5 s: long enough to tell the death from
	// the new incarnation, even on a loaded machine.
	libxlmodel.SetCreateDelay(5000)
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := c.Do(wctx, Request{Op: OpShutdown, Dom: "wr", Wait: true, WaitDeath: true}, nil); err != nil {
		t.Fatalf("shutdown -ww through a restart: %v", err)
	}
	if s := stateOf("wr"); s.State != driver.StateCreating {
		t.Errorf("shutdown -ww returned with wr %s (domid %d, was %d); want it at the old incarnation's death, the restart still building", s.State, s.DomID, old.DomID)
	}

	libxlmodel.SetCreateDelay(0)
	w, _ = EncodeConfig(&libxl.DomainConfig{Name: "wp", MemoryMB: 64, VCPUs: 1, Kernel: "/k", OnPoweroff: libxl.ActionPreserve})
	if err := c.Do(ctx, Request{Op: OpCreate, Config: w}, nil); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	defer cancelShort()
	err := c.Do(short, Request{Op: OpShutdown, Dom: "wp", Wait: true, WaitDeath: true}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("shutdown -ww of a preserved domain ended with %v; it never dies, so only the deadline may end it", err)
	}
	if s := stateOf("wp"); s.State != driver.StateShutoff {
		t.Errorf("wp is %s after its shutdown, want shutoff (preserved)", s.State)
	}
	for _, name := range []string{"wr", "wp"} {
		if err := c.Do(ctx, Request{Op: OpDestroy, Dom: name}, nil); err != nil {
			t.Errorf("destroy %s: %v", name, err)
		}
	}
}
