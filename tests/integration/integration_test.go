//go:build xenintegration

// Package integration runs goxl's domain lifecycle on real Xen. The tests
// run inside dom0 (tests/xenvm boots Xen 4.17 under QEMU):
//
//	go test -c -tags xenintegration -o /tmp/integ.test ./tests/integration/
//	tests/xenvm/xenvm run --timeout 900s --file /tmp/integ.test -- ./integ.test -test.v
//
// They skip where /proc/xen/capabilities lacks control_d. The test guest
// comes from $GOXL_GUEST_DIR (default /guest): guest.cfg, vmlinuz,
// initrd.gz, as tests/xenvm/build-image.sh puts them in the dom0 image.
// After each test: no domain but dom0, and goroutines and fds back to
// their baseline.
package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goxl/goxl/driver"
	"github.com/goxl/goxl/driver/eventloop"
	"github.com/goxl/goxl/internal/hookcheck"
	"github.com/goxl/goxl/libxl"
)

func needXen(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile("/proc/xen/capabilities")
	if err != nil || !strings.Contains(string(b), "control_d") {
		t.Skip("not a Xen dom0 (/proc/xen/capabilities lacks control_d): run through tests/xenvm")
	}
}

func guestDir() string {
	if d := os.Getenv("GOXL_GUEST_DIR"); d != "" {
		return d
	}
	return "/guest"
}

// guestConfig is the image's test guest, renamed.
func guestConfig(t *testing.T, name string, edit func(*libxl.DomainConfig)) *libxl.DomainConfig {
	t.Helper()
	return imageGuestConfig(t, "guest.cfg", name, edit)
}

// idleGuestConfig is the image's idle guest (tests/xenvm/idle-guest.S),
// renamed: a PV kernel of two pages that blocks in Xen until destroyed.
// Loading it takes libxl milliseconds where the 66 MB Linux test kernel
// takes most of a second under TCG, so tests that only create and destroy
// (the soak) measure goxl and libxl, not the copy of a kernel.
func idleGuestConfig(t *testing.T, name string) *libxl.DomainConfig {
	t.Helper()
	return imageGuestConfig(t, "idle.cfg", name, nil)
}

// imageGuestConfig parses one of the image's xl configs under guestDir.
func imageGuestConfig(t *testing.T, file, name string, edit func(*libxl.DomainConfig)) *libxl.DomainConfig {
	t.Helper()
	c, err := libxl.ParseXLFile(filepath.Join(guestDir(), file))
	if err != nil {
		t.Fatal(err)
	}
	c.Name = name
	if edit != nil {
		edit(c)
	}
	return c
}

func countFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

type env struct {
	t     *testing.T
	drv   *driver.Driver
	doms  *driver.Domains
	hooks *hookcheck.Checker
}

// checkHooks asserts the hook-traffic invariants at a quiescent point:
// every timeout libxl registered got exactly one occurred_timeout, no
// hook failed or named an unknown registration, and the C bridge
// recovered no panic and met no unknown token.
func (e *env) checkHooks(step string) {
	e.t.Helper()
	err := e.hooks.Settle(5 * time.Second)
	if err != nil {
		e.t.Errorf("after %s: %v", step, err)
	}
	if hookTrace != nil {
		fmt.Fprintf(hookTrace, "--- %s: hook invariants after %s: %v\n", e.t.Name(), step, verdict(err))
	}
	if b := e.drv.Stats().Bridge; b.Panics != 0 || b.UnknownTokens != 0 {
		e.t.Errorf("after %s: bridge counters %+v", step, b)
	}
	if s := e.drv.Stats().Loop; s.UnknownIDs != 0 || s.HookErrors != 0 {
		e.t.Errorf("after %s: loop counters %+v", step, s)
	}
}

// hookTraceFile is the file named by GOXL_HOOK_TRACE, opened once for
// appending: every driver a test sets up writes its hook trace there, after
// a "=== TEST name" line (tests/xen42 records real libxl 4.2's this way).
// Nil when the variable is unset.
func hookTraceFile(t *testing.T) *os.File {
	p := os.Getenv("GOXL_HOOK_TRACE")
	if p == "" {
		return nil
	}
	hookTraceOnce.Do(func() {
		hookTrace, hookTraceErr = os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	})
	if hookTraceErr != nil {
		t.Fatalf("GOXL_HOOK_TRACE: %v", hookTraceErr)
	}
	return hookTrace
}

func verdict(err error) string {
	if err == nil {
		return "hold"
	}
	return "BROKEN: " + err.Error()
}

// checkHooksAfterClose: the hook checker runs once more after the
// driver's close (xen42_test.go turns it on for 4.2, whose libxl_ctx_free
// makes hook calls after the close reaped).
var checkHooksAfterClose = false

// wantLibxlMinor is the libxl release under test: 4.17 (Debian 12), 4.2
// with -tags xen42.
var wantLibxlMinor = 17

var (
	hookTraceOnce sync.Once
	hookTrace     *os.File
	hookTraceErr  error
)

// setup opens a driver and a domain manager and registers the leak
// checks: no domain left, goroutines and fds back to baseline.
var warmup sync.Once

func setup(t *testing.T) *env { return setupTraced(t, nil) }

// setupTraced is setup with a second observer of the loop's trace (called
// after the hook checker, under the same rules: no libxl calls).
func setupTraced(t *testing.T, extra func(eventloop.TraceEvent)) *env {
	needXen(t)
	// The first driver starts process-wide goroutines that never end
	// (os/signal's loop, for the SIGCHLD forwarder): start them before
	// taking the baseline.
	warmup.Do(func() {
		if drv, err := driver.New(driver.Options{}); err == nil {
			drv.Close()
		}
	})
	traceFile := hookTraceFile(t) // opened before the fd baseline: it stays open
	baseG, baseFD := runtime.NumGoroutine(), countFDs()
	hooks := hookcheck.New(nil)
	trace := hooks.Observe
	if extra != nil {
		trace = func(ev eventloop.TraceEvent) { hooks.Observe(ev); extra(ev) }
	}
	if w := traceFile; w != nil {
		fmt.Fprintf(w, "=== TEST %s\n", t.Name())
		observe, write := trace, eventloop.TraceWriter(w)
		trace = func(ev eventloop.TraceEvent) { observe(ev); write(ev) }
	}
	drv, err := driver.New(driver.Options{Loop: eventloop.Options{Trace: trace}})
	if err != nil {
		t.Fatal(err)
	}
	doms, err := driver.NewDomains(drv, driver.DomainsOptions{ResyncInterval: -1, PerOperationCtx: true,
		Progress: func(m string) { t.Logf("progress: %s", m) }})
	if err != nil {
		drv.Close()
		t.Fatal(err)
	}
	e := &env{t: t, drv: drv, doms: doms, hooks: hooks}
	t.Cleanup(func() {
		e.checkHooks("the test")
		left := e.liveGuests(30 * time.Second)
		for _, d := range left {
			// Through libxl directly: the driver's view of a leftover
			// may be what the test found wrong.
			e.drv.Ctx().DestroyDomain(context.Background(), d.DomID)
		}
		doms.Close()
		if err := drv.Close(); err != nil {
			t.Errorf("driver close: %v", err)
		}
		if checkHooksAfterClose {
			// Close reaps, then libxl_ctx_free may still call hooks.
			err := hooks.Check()
			if err != nil {
				t.Errorf("after close: %v", err)
			}
			if hookTrace != nil {
				fmt.Fprintf(hookTrace, "--- %s: hook invariants after close: %v\n", t.Name(), verdict(err))
			}
		}
		if len(left) > 0 {
			t.Errorf("domains left behind: %v", left)
		}
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) && (runtime.NumGoroutine() > baseG || countFDs() > baseFD) {
			time.Sleep(50 * time.Millisecond)
		}
		if g := runtime.NumGoroutine(); g > baseG {
			buf := make([]byte, 1<<16)
			t.Errorf("goroutines: %d, baseline %d\n%s", g, baseG, buf[:runtime.Stack(buf, true)])
		}
		if fd := countFDs(); fd > baseFD {
			t.Errorf("fds: %d, baseline %d", fd, baseFD)
		}
	})
	return e
}

// guests lists domains other than dom0.
func (e *env) guests() []libxl.DomainInfo {
	list, err := e.drv.Ctx().ListDomains()
	if err != nil {
		e.t.Fatal(err)
	}
	var out []libxl.DomainInfo
	for _, d := range list {
		if d.DomID != 0 {
			out = append(out, d)
		}
	}
	return out
}

// liveGuests waits up to grace for dying domains to go, then returns the
// guests left.
func (e *env) liveGuests(grace time.Duration) []libxl.DomainInfo {
	deadline := time.Now().Add(grace)
	for {
		g := e.guests()
		dying := len(g) > 0
		for _, d := range g {
			dying = dying && d.Dying
		}
		if !dying || time.Now().After(deadline) {
			return g
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// noGuests fails unless only dom0 is left. A destroyed domain can stay
// "dying" in Xen for a moment after libxl_domain_destroy completed (Xen
// frees it once the last page reference is dropped): those get a grace
// period; a live one fails at once.
func (e *env) noGuests() {
	e.t.Helper()
	if g := e.liveGuests(30 * time.Second); len(g) != 0 {
		e.t.Fatalf("domains left: %+v", g)
	}
}

// waitDestroyed waits for the on_poweroff destroy that follows a
// shutdown -w (whose wait ends when the guest is down, as xl -w's).
func (e *env) waitDestroyed(ctx context.Context, name string) {
	e.t.Helper()
	d, err := e.doms.Lookup(name)
	if errors.Is(err, driver.ErrDomainNotFound) {
		return // already destroyed and forgotten
	}
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := d.WaitState(ctx, driver.StateDestroyed); err != nil {
		e.t.Fatalf("%s after its shutdown: %s, %v; want destroyed by its on_poweroff", name, d.Snapshot().State, err)
	}
}

func timed(t *testing.T, what string, f func() error) error {
	start := time.Now()
	err := f()
	t.Logf("timing: %s took %v (err=%v)", what, time.Since(start).Round(time.Millisecond), err)
	return err
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitEvent reads a libxl subscription until want arrives.
func waitEvent(t *testing.T, sub *libxl.Subscription, want libxl.EventType, d time.Duration) libxl.Event {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case ev, ok := <-sub.C():
			if !ok {
				t.Fatalf("subscription ended: %v", sub.Err())
			}
			t.Logf("libxl event: %s", ev)
			if ev.Type == want {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s within %v", want, d)
		}
	}
}

// The full lifecycle, as libxl reports it: create → unpause → shutdown →
// DOMAIN_SHUTDOWN(poweroff) → destroy (on_poweroff) → DOMAIN_DEATH.
func TestLifecycleEvents(t *testing.T) {
	e := setup(t)
	stream := e.doms.Subscribe(0)
	defer stream.Close()
	var d *driver.Domain
	clearConsoleLog("lc1")
	if err := timed(t, "create", func() (err error) {
		d, err = e.doms.Create(ctxT(t, 10*time.Minute), guestConfig(t, "lc1", nil), driver.CreateOptions{Paused: true})
		return
	}); err != nil {
		t.Fatal(err)
	}
	domid := d.Snapshot().DomID
	sub, err := e.drv.Ctx().WatchDomainDeath(domid, libxl.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := timed(t, "unpause", func() error { return e.doms.Unpause(ctxT(t, 10*time.Minute), "lc1") }); err != nil {
		t.Fatal(err)
	}
	e.waitGuestUp("lc1") // a request before init's traps would be lost
	if err := timed(t, "shutdown -w", func() error { return e.doms.Shutdown(ctxT(t, 10*time.Minute), "lc1", true) }); err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, sub, libxl.EventDomainShutdown, time.Minute)
	if ev.Shutdown != libxl.ShutdownPoweroff {
		t.Fatalf("shutdown reason %s", ev.Shutdown)
	}
	waitEvent(t, sub, libxl.EventDomainDeath, time.Minute)
	if _, err := d.WaitState(ctxT(t, 30*time.Second), driver.StateDestroyed); err != nil {
		t.Fatalf("state %s: %v", d.Snapshot().State, err)
	}
	var kinds []string
	for len(stream.C()) > 0 {
		ev := <-stream.C()
		kinds = append(kinds, ev.Kind)
	}
	t.Logf("driver events: %v", kinds)
	joined := strings.Join(kinds, ",")
	for _, k := range []string{"created", "unpaused", "shutdown-requested", "shutdown"} {
		if !strings.Contains(joined, k) {
			t.Errorf("driver event %q missing from %v", k, kinds)
		}
	}
	// The on_poweroff destroy and libxl's DOMAIN_DEATH race: the driver
	// reports whichever it sees first ("destroyed" or "death").
	if !strings.Contains(joined, "destroyed") && !strings.Contains(joined, "death") {
		t.Errorf("no end event in %v", kinds)
	}
	e.noGuests()
}

func TestVerbs(t *testing.T) {
	e := setup(t)
	ctx := ctxT(t, 10*time.Minute)
	d, err := e.doms.Create(ctx, guestConfig(t, "verbs1", nil), driver.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprint(d.Snapshot().DomID)
	info, err := e.doms.Info("verbs1")
	if err != nil || info.Name != "verbs1" || info.Paused {
		t.Fatalf("info %+v %v", info, err)
	}
	if info2, err := e.doms.Info(info.UUIDString); err != nil || info2.DomID != info.DomID {
		t.Fatalf("info by UUID: %v", err)
	}
	for _, step := range []struct {
		name string
		f    func() error
	}{
		{"pause", func() error { return e.doms.Pause(ctx, id) }},
		{"unpause", func() error { return e.doms.Unpause(ctx, "verbs1") }},
	} {
		if err := timed(t, step.name, step.f); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
	}
	if info, _ := e.doms.Info(id); info.Paused {
		t.Fatal("still paused")
	}
	tty, err := e.doms.Console("verbs1")
	if err != nil || !strings.HasPrefix(tty, "/dev/pts/") {
		t.Fatalf("console %q %v", tty, err)
	}
	if _, err := e.doms.Create(ctx, guestConfig(t, "verbs1", nil), driver.CreateOptions{}); !errors.Is(err, driver.ErrDomainExists) {
		t.Fatalf("duplicate name: %v", err)
	}
	if err := timed(t, "destroy", func() error { return e.doms.Destroy(ctx, "verbs1") }); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() error{
		"destroy": func() error { return e.doms.Destroy(ctx, id) },
		"pause":   func() error { return e.doms.Pause(ctx, "verbs1") },
		"info":    func() error { _, err := e.doms.Info("verbs1"); return err },
		"console": func() error { _, err := e.doms.Console(id); return err },
	} {
		if err := f(); !errors.Is(err, driver.ErrDomainNotFound) {
			t.Errorf("%s on a vanished domain: %v", name, err)
		}
	}
	e.noGuests()
}

func TestRebootHonoursOnReboot(t *testing.T) {
	e := setup(t)
	ctx := ctxT(t, 10*time.Minute)
	cfg := guestConfig(t, "rb1", func(c *libxl.DomainConfig) { c.OnReboot = libxl.ActionRestart })
	clearConsoleLog("rb1")
	d, err := e.doms.Create(ctx, cfg, driver.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old := d.Snapshot().DomID
	e.waitGuestUp("rb1") // a request before init's traps would be lost
	stream := e.doms.Subscribe(0)
	defer stream.Close()
	if err := e.doms.Reboot(ctx, "rb1"); err != nil {
		t.Fatal(err)
	}
	for ev := range stream.C() {
		t.Logf("driver event: %+v", ev)
		if ev.Kind == "restarted" {
			break
		}
	}
	if s := d.Snapshot(); s.DomID == old || s.State != driver.StateRunning {
		t.Fatalf("after restart: %+v (old domid %d)", s, old)
	}
	if err := e.doms.Destroy(ctx, "rb1"); err != nil {
		t.Fatal(err)
	}
	e.noGuests()
}

func TestCreateFailureLeavesNothing(t *testing.T) {
	e := setup(t)
	cfg := guestConfig(t, "bad1", func(c *libxl.DomainConfig) { c.Kernel = "/nonexistent/vmlinuz" })
	err := timed(t, "failing create", func() error {
		_, err := e.doms.Create(ctxT(t, 10*time.Minute), cfg, driver.CreateOptions{})
		return err
	})
	if err == nil {
		t.Fatal("create with a missing kernel succeeded")
	}
	e.noGuests()
	if _, err := e.doms.Info("bad1"); !errors.Is(err, driver.ErrDomainNotFound) {
		t.Fatalf("bad1 known after failure: %v", err)
	}
}

func TestCreateCancelLeavesNothing(t *testing.T) {
	e := setup(t)
	// Two cancellation points: early (a fixed delay into the build), and
	// mid-build (as soon as libxl has made the domain, before create
	// returns). A create that finished before the cancel took effect is a
	// success and its domain is destroyed here; one that was cut short
	// must leave nothing.
	points := map[string]func(cancel context.CancelFunc){
		"after 300ms": func(cancel context.CancelFunc) { time.AfterFunc(300*time.Millisecond, cancel) },
		"once the domain exists": func(cancel context.CancelFunc) {
			go func() {
				for i := 0; i < 6000; i++ {
					if _, err := e.drv.Ctx().DomainIDByName("cancel1"); err == nil {
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
				cancel()
			}()
		},
	}
	aborted := 0
	for name, arm := range points {
		ctx, cancel := context.WithCancel(context.Background())
		arm(cancel)
		var dom *driver.Domain
		err := timed(t, "create cancelled "+name, func() error {
			var err error
			dom, err = e.doms.Create(ctx, guestConfig(t, "cancel1", nil), driver.CreateOptions{})
			return err
		})
		cancel()
		switch {
		case err == nil:
			t.Logf("%s: create completed before the cancel took effect", name)
			if err := e.doms.Destroy(ctxT(t, time.Minute), fmt.Sprint(dom.Snapshot().DomID)); err != nil {
				t.Fatal(err)
			}
		case errors.Is(err, context.Canceled):
			aborted++
		default:
			t.Fatalf("cancelled create (%s): %v", name, err)
		}
		e.noGuests()
	}
	if aborted == 0 {
		t.Fatal("no create was cut short by its cancellation: the test proved nothing")
	}
}

func TestConcurrentGuests(t *testing.T) {
	e := setup(t)
	ctx := ctxT(t, 10*time.Minute)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("par%d", i)
			if _, err := e.doms.Create(ctx, guestConfig(t, name, nil), driver.CreateOptions{}); err != nil {
				errs[i] = err
				return
			}
			if err := e.doms.Pause(ctx, name); err != nil {
				errs[i] = err
				return
			}
			if err := e.doms.Unpause(ctx, name); err != nil {
				errs[i] = err
				return
			}
			errs[i] = e.doms.Destroy(ctx, name)
		}()
	}
	wg.Wait()
	t.Logf("timing: two guests create/pause/unpause/destroy in parallel: %v", time.Since(start).Round(time.Millisecond))
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	e.noGuests()
}

func TestSaveRestore(t *testing.T) {
	e := setup(t)
	ctx := ctxT(t, 10*time.Minute)
	clearConsoleLog("sr1")
	if _, err := e.doms.Create(ctx, guestConfig(t, "sr1", nil), driver.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sr1.save")
	if err := e.saveWhenReady("sr1", path); err != nil {
		t.Fatal(err)
	}
	e.noGuests()
	fi, err := os.Stat(path)
	if err != nil || fi.Size() < 1<<20 {
		t.Fatalf("save file: %v %v", fi, err)
	}
	var d *driver.Domain
	if err := timed(t, "restore", func() (err error) {
		d, err = e.doms.Restore(ctx, path, driver.CreateOptions{})
		return
	}); err != nil {
		t.Fatal(err)
	}
	if s := d.Snapshot(); s.Name != "sr1" || s.State != driver.StateRunning {
		t.Fatalf("restored %+v", s)
	}
	if err := e.doms.Shutdown(ctx, "sr1", true); err != nil {
		t.Fatal(err)
	}
	e.waitDestroyed(ctx, "sr1")
	e.noGuests()
}

func TestJSONConfigRoundTrip(t *testing.T) {
	e := setup(t)
	c := e.drv.Ctx()
	js, err := c.ConfigToJSON(guestConfig(t, "json1", nil))
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.ConfigToJSON(libxl.JSONConfig(js))
	if err != nil || again != js {
		t.Fatalf("libxl JSON round trip differs (%v):\n%s\n---\n%s", err, js, again)
	}
	sum, err := libxl.JSONConfig(js).Summary()
	if err != nil || sum.Name != "json1" || sum.MemoryMB != 128 || sum.OnPoweroff != libxl.ActionDestroy {
		t.Fatalf("summary of libxl's JSON: %+v %v", sum, err)
	}
	if _, err := e.doms.Create(ctxT(t, 10*time.Minute), libxl.JSONConfig(js), driver.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.doms.Destroy(ctxT(t, 10*time.Minute), "json1"); err != nil {
		t.Fatal(err)
	}
	e.noGuests()
}
