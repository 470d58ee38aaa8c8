//go:build xenintegration

package integration

// Boundaries on real Xen 4.17 (issue 11): Close while a create, a restore
// or a save runs; a save into a full file system; truncated and corrupted
// save files; os/exec children beside libxl's forked save helper; and
// the event stream of concurrent creates on per-operation ctxs.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goxl/goxl/driver"
	"github.com/goxl/goxl/internal/eventcheck"
	"github.com/goxl/goxl/libxl"
)

// secondDriver opens another driver and manager, as a second daemon or
// a CLI would; the test closes it itself (that is what it tests).
func secondDriver(t *testing.T) (*driver.Driver, *driver.Domains) {
	t.Helper()
	drv, err := driver.New(driver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	doms, err := driver.NewDomains(drv, driver.DomainsOptions{ResyncInterval: -1, PerOperationCtx: true})
	if err != nil {
		drv.Close()
		t.Fatal(err)
	}
	return drv, doms
}

// closeWhenNamed closes drv once libxl has made the domain called name
// (the build or restore is then under way), or after limit.
func (e *env) closeWhenNamed(drv *driver.Driver, name string, limit time.Duration) <-chan time.Duration {
	closed := make(chan time.Duration, 1)
	go func() {
		deadline := time.Now().Add(limit)
		for time.Now().Before(deadline) {
			if _, err := e.drv.Ctx().DomainIDByName(name); err == nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		start := time.Now()
		if err := drv.Close(); err != nil {
			e.t.Errorf("close: %v", err)
		}
		closed <- time.Since(start)
	}()
	return closed
}

// Item 1: Close about 400 ms into a create, and as soon as libxl has
// made the domain. Create returns an error matching ErrDriverClosed and
// no domain is left (libxl 4.17 keeps an aborted create's domain: the
// driver destroys it before Close returns).
func TestCloseDuringCreate(t *testing.T) {
	e := setup(t)
	for _, when := range []string{"400ms", "named"} {
		drv, doms := secondDriver(t)
		done := make(chan error, 1)
		go func() {
			_, err := doms.Create(ctxT(t, 5*time.Minute), guestConfig(t, "closecreate", nil), driver.CreateOptions{})
			done <- err
		}()
		var closed <-chan time.Duration
		if when == "400ms" {
			time.Sleep(400 * time.Millisecond)
			closed = e.closeWhenNamed(drv, "no-such-name", 0)
		} else {
			closed = e.closeWhenNamed(drv, "closecreate", 2*time.Minute)
		}
		took := <-closed
		err := <-done
		t.Logf("%s: Close took %v; Create returned %v", when, took.Round(time.Millisecond), err)
		if !errors.Is(err, driver.ErrDriverClosed) {
			t.Fatalf("%s: Create after Close: %v, want ErrDriverClosed", when, err)
		}
		e.noGuests()
	}
	e.checkHooks("close during create")
}

// mountTiny mounts a tmpfs of the given size (the full file system a
// save runs into) and unmounts it at cleanup.
func mountTiny(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mount a %s tmpfs: %v", size, err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, 0) })
	return dir
}

// saveWhenReady saves the guest name to path once its init is up (a PV
// guest cannot be suspended before its kernel set up its p2m list), and
// again while libxl reports that the guest did not answer the suspend.
// The guest's console log must have been cleared before its create.
func (e *env) saveWhenReady(name, path string) error {
	e.waitGuestUp(name)
	var err error
	for try := 0; try < 12; try++ {
		if err = timed(e.t, "save", func() error { return e.doms.Save(ctxT(e.t, 5*time.Minute), name, path) }); !errors.Is(err, libxl.ErrGuestTimedOut) {
			break
		}
		time.Sleep(5 * time.Second)
	}
	return err
}

// requireRunningAs checks that the guest runs with the domid it had.
func (e *env) requireRunningAs(name string, domid uint32, step string) {
	e.t.Helper()
	var info libxl.DomainInfo
	var err error
	// The resume completes inside Save; give Xen a moment to report it.
	for i := 0; i < 50; i++ {
		info, err = e.drv.Ctx().DomainByName(name)
		if err == nil && !info.Shutdown && !info.Dying {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		e.t.Fatalf("%s: guest %s gone: %v", step, name, err)
	}
	if info.DomID != domid || info.Shutdown || info.Dying {
		e.t.Fatalf("%s: guest %s is %+v; want it running as domain %d", step, name, info, domid)
	}
}

// Items 2 and 7: save, restore and Close at their boundaries, in one
// guest's life to keep the wall time down.
func TestSaveRestoreBoundaries(t *testing.T) {
	e := setup(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "bsave.save")
	clearConsoleLog("bsave")
	if _, err := e.doms.Create(ctxT(t, 5*time.Minute), guestConfig(t, "bsave", nil), driver.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// os/exec children run while the save forks libxl's save helper:
	// libxl reaps its own children and Go reaps its own, each gets its
	// exit status.
	stopChildren := make(chan struct{})
	var children sync.WaitGroup
	var childRuns, childBad int
	var childMu sync.Mutex
	for g := 0; g < 2; g++ {
		children.Add(1)
		go func() {
			defer children.Done()
			for {
				select {
				case <-stopChildren:
					return
				default:
				}
				err := exec.Command("sh", "-c", "sleep 0.05; exit 7").Run()
				var ee *exec.ExitError
				childMu.Lock()
				childRuns++
				if !errors.As(err, &ee) || ee.ExitCode() != 7 {
					childBad++
					t.Errorf("child beside the save: %v", err)
				}
				childMu.Unlock()
			}
		}()
	}
	err := e.saveWhenReady("bsave", good)
	close(stopChildren)
	children.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("os/exec children run beside the save: %d, wrong exits: %d", childRuns, childBad)
	if childRuns == 0 {
		t.Fatal("no child ran beside the save")
	}
	e.noGuests()
	fi, err := os.Stat(good)
	if err != nil || fi.Size() < 1<<20 {
		t.Fatalf("save file: %v %v", fi, err)
	}

	// A truncated save file: a clean error, nothing left. (dom0's /tmp
	// is in RAM: a prefix, not a second copy of the whole file.)
	truncated := filepath.Join(dir, "truncated.save")
	if err := copyPrefix(good, truncated, 8<<20); err != nil {
		t.Fatal(err)
	}
	e.restoreFails(truncated)
	os.Remove(truncated)

	// Close during a restore: nothing left.
	{
		drv, doms := secondDriver(t)
		done := make(chan error, 1)
		go func() {
			_, err := doms.Restore(ctxT(t, 5*time.Minute), good, driver.CreateOptions{})
			done <- err
		}()
		took := <-e.closeWhenNamed(drv, "bsave", 2*time.Minute)
		err := <-done
		t.Logf("Close during restore took %v; Restore returned %v", took.Round(time.Millisecond), err)
		if !errors.Is(err, driver.ErrDriverClosed) {
			t.Fatalf("Restore after Close: %v, want ErrDriverClosed", err)
		}
		e.noGuests()
	}

	// The guest back, for the failing saves.
	d, err := e.doms.Restore(ctxT(t, 5*time.Minute), good, driver.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	domid := d.Snapshot().DomID

	// A save into a full file system fails; the guest runs on as it was,
	// with its domid, and no partial file is left.
	tiny := mountTiny(t, "4m")
	full := filepath.Join(tiny, "bsave.save")
	err = timed(t, "save into a full file system", func() error { return e.doms.Save(ctxT(t, 5*time.Minute), "bsave", full) })
	if err == nil {
		t.Fatal("a save into a 4 MiB file system succeeded")
	}
	e.requireRunningAs("bsave", domid, "after the failed save")
	if _, serr := os.Stat(full); !errors.Is(serr, os.ErrNotExist) {
		t.Fatalf("the partial save file is still there: %v", serr)
	}

	// Close during a save (on another driver, which adopts the guest):
	// the guest runs on, same domid, no file.
	{
		drv, doms := secondDriver(t)
		path := filepath.Join(dir, "closed.save")
		done := make(chan error, 1)
		go func() { done <- doms.Save(ctxT(t, 5*time.Minute), "bsave", path) }()
		time.Sleep(400 * time.Millisecond)
		start := time.Now()
		if err := drv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		err := <-done
		t.Logf("Close during save took %v; Save returned %v", time.Since(start).Round(time.Millisecond), err)
		if !errors.Is(err, driver.ErrDriverClosed) {
			t.Fatalf("Save after Close: %v, want ErrDriverClosed", err)
		}
		e.requireRunningAs("bsave", domid, "after Close during the save")
		if _, serr := os.Stat(path); !errors.Is(serr, os.ErrNotExist) {
			t.Fatalf("the interrupted save's file is still there: %v", serr)
		}
	}

	if err := e.doms.Destroy(ctxT(t, time.Minute), "bsave"); err != nil {
		t.Fatal(err)
	}
	e.noGuests()

	// A corrupted save file (libxl's stream header and first records
	// overwritten, in place): a clean error, nothing left.
	if err := corruptAfterHeader(good, 256); err != nil {
		t.Fatal(err)
	}
	e.restoreFails(good)
	e.checkHooks("save and restore boundaries")
}

// restoreFails restores a bad save file: it must fail with a libxl error
// or ErrBadSaveFile and leave no domain.
func (e *env) restoreFails(path string) {
	e.t.Helper()
	_, err := e.doms.Restore(ctxT(e.t, 5*time.Minute), path, driver.CreateOptions{})
	e.t.Logf("restore of %s: %v", filepath.Base(path), err)
	if err == nil {
		e.t.Fatalf("restore of %s succeeded", filepath.Base(path))
	}
	var le libxl.Error
	if !errors.As(err, &le) && !errors.Is(err, libxl.ErrBadSaveFile) {
		e.t.Fatalf("restore of %s: %v is neither a libxl error nor ErrBadSaveFile", filepath.Base(path), err)
	}
	e.noGuests()
}

func copyPrefix(from, to string, n int64) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	buf := make([]byte, n)
	m, err := io.ReadFull(src, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return err
	}
	return os.WriteFile(to, buf[:m], 0o600)
}

// corruptAfterHeader flips n bytes just after xl's header, where libxl's
// stream begins.
func corruptAfterHeader(path string, n int) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	// xl's header: 32 bytes of magic, four uint32 (the last is the
	// length of the optional data that follows), then the data.
	var optLen [4]byte
	if _, err := f.ReadAt(optLen[:], 44); err != nil {
		return err
	}
	off := 48 + int64(binary.NativeEndian.Uint32(optLen[:]))
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, off); err != nil {
		return err
	}
	for i := range buf {
		buf[i] ^= 0x5a
	}
	_, err = f.WriteAt(buf, off)
	return err
}

// Item 3: three guests created at once on per-operation ctxs, one
// destroyed while a fourth is created, lookups running meanwhile. Every
// incarnation's events reach the stream once, in order: one start first,
// exactly one death last.
func TestConcurrentCreatesEventsOnce(t *testing.T) {
	e := setup(t)
	stream := e.doms.Subscribe(4096)
	ctx := ctxT(t, 10*time.Minute)
	stopLook := make(chan struct{})
	var lookers sync.WaitGroup
	lookers.Add(1)
	go func() {
		defer lookers.Done()
		for {
			select {
			case <-stopLook:
				return
			case <-time.After(50 * time.Millisecond):
			}
			for i := 1; i <= 4; i++ {
				e.doms.Info(fmt.Sprintf("evx%d", i))
			}
		}
	}()
	var mu sync.Mutex
	domids := map[uint32]string{}
	create := func(name string) error {
		// Paused: the guests need not boot (under TCG four booting
		// guests take minutes); their events are the same.
		d, err := e.doms.Create(ctx, guestConfig(t, name, nil), driver.CreateOptions{Paused: true})
		if err != nil {
			return err
		}
		mu.Lock()
		domids[d.Snapshot().DomID] = name
		mu.Unlock()
		return nil
	}
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for i := 1; i <= 3; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- create(fmt.Sprintf("evx%d", i)) }()
	}
	wg.Wait()
	wg.Add(2)
	go func() { defer wg.Done(); errs <- create("evx4") }()
	go func() { defer wg.Done(); time.Sleep(time.Second); errs <- e.doms.Destroy(ctx, "evx1") }()
	wg.Wait()
	close(stopLook)
	lookers.Wait()
	for i := 2; i <= 4; i++ {
		if err := e.doms.Destroy(ctx, fmt.Sprintf("evx%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second) // late libxl events
	stream.Close()
	var all []string
	var pairs []eventcheck.Event
	for ev := range stream.C() {
		pairs = append(pairs, eventcheck.Event{DomID: ev.DomID, Kind: ev.Kind})
		all = append(all, fmt.Sprintf("%d:%s", ev.DomID, ev.Kind))
	}
	t.Logf("stream: %s", strings.Join(all, " "))
	for _, p := range eventcheck.Incarnations(pairs, domids) {
		t.Error(p)
	}
	e.noGuests()
	e.checkHooks("concurrent creates")
}
