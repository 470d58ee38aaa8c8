//go:build libxlmodel

package libxlmodel

import (
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// start resets the model and returns a reference loop with ctx in mode m.
func start(t *testing.T, f Faults, m Mode) (*RefLoop, unsafe.Pointer) {
	t.Helper()
	Reset()
	loop, err := NewRefLoop(f)
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := loop.NewCtx(m)
	if err != nil {
		loop.Close()
		t.Fatal(err)
	}
	return loop, ctx
}

func dump(vs []Violation, max int) string {
	var b strings.Builder
	for i, v := range vs {
		if i == max {
			fmt.Fprintf(&b, "... and %d more\n", len(vs)-max)
			break
		}
		b.WriteString(v.String())
		b.WriteString("\n")
	}
	return b.String()
}

func requireClean(t *testing.T) {
	t.Helper()
	if c := Counters(); c.ViolationsTotal != 0 {
		t.Fatalf("%d violations %v:\n%s", c.ViolationsTotal, c.Violations, dump(Violations(), 5))
	}
}

func requireKind(t *testing.T, k ViolationKind) {
	t.Helper()
	c := Counters()
	if c.Violations[k] == 0 {
		t.Fatalf("expected %v violations, got %v:\n%s", k, c.Violations, dump(Violations(), 3))
	}
	for _, v := range Violations() {
		if v.Kind == k {
			t.Logf("caught as expected: %v", v)
			return
		}
	}
}

func TestReferenceLoopIsCleanInEveryMode(t *testing.T) {
	// -short is make asan's: AddressSanitizer finds a bad access on the
	// first pass over a path, and 20,000 events walk every path of the
	// workload many times.
	target := uint64(100000)
	if testing.Short() {
		target = 20000
	}
	for _, m := range Modes() {
		t.Run(m.String(), func(t *testing.T) {
			loop, ctx := start(t, Faults{}, m)
			defer loop.Close()
			res, err := Run(ctx, Workload{Threads: 4, TargetEvents: target, Seed: 42})
			if err != nil {
				t.Fatal(err)
			}
			if err := loop.FreeCtx(ctx); err != nil {
				t.Fatal(err)
			}
			c := Counters()
			t.Logf("mode %v: %d hook events in %v (%d ops: %d completed, %d failed, %d abandoned; %d stale tolerated, %d spurious); hook calls %v",
				m, res.HookEvents, res.Elapsed, res.OpsStarted, res.OpsCompleted, res.OpsFailed, res.OpsAbandoned,
				res.StaleTolerated, c.SpuriousFD, c.HookCalls)
			requireClean(t)
			if res.HookEvents < target {
				t.Fatalf("only %d hook events", res.HookEvents)
			}
			if res.OpsAbandoned != 0 || res.OpsFailed != 0 || res.DeadlineHit {
				t.Fatalf("result %+v", res)
			}
		})
	}
}

func runBroken(t *testing.T, f Faults, m Mode, w Workload) Result {
	t.Helper()
	loop, ctx := start(t, f, m)
	defer loop.Close()
	res, err := Run(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	if err := loop.FreeCtx(ctx); err != nil {
		t.Fatal(err)
	}
	return res
}

func only(kinds ...OpKind) map[OpKind]uint {
	m := map[OpKind]uint{}
	for _, k := range kinds {
		m[k] = 1
	}
	return m
}

func TestCatchesTimeoutDeliveredTwice(t *testing.T) {
	for _, m := range Modes() {
		t.Run(m.String(), func(t *testing.T) {
			runBroken(t, Faults{DeliverTimeoutTwice: true}, m,
				Workload{Threads: 2, OpsPerThread: 20, Mix: only(OpTimerFire, OpTimerCancel)})
			requireKind(t, TimeoutDeliveredTwice)
		})
	}
}

func TestCatchesForgottenFireNow(t *testing.T) {
	// 4.2 unpatched cancels with timeout_deregister instead.
	for _, m := range []Mode{Mode417, Mode42Patched} {
		t.Run(m.String(), func(t *testing.T) {
			runBroken(t, Faults{ForgetFireNow: true}, m,
				Workload{Threads: 2, OpsPerThread: 3, Mix: only(OpTimerCancel), DeliveryTimeout: 300 * time.Millisecond})
			requireKind(t, TimeoutNeverDelivered)
		})
	}
}

func TestCatchesDeliveryAfterDeregisterIn42Unpatched(t *testing.T) {
	for _, m := range []Mode{Mode42Unpatched, Mode420Unpatched} {
		t.Run(m.String(), func(t *testing.T) {
			runBroken(t, Faults{DeliverAfterDeregister: true}, m,
				Workload{Threads: 2, OpsPerThread: 20, Mix: only(OpPipeIn, OpPipeOut, OpTimerCancel)})
			requireKind(t, DeliveryAfterDeregister)
		})
	}
}

func TestLateDeliveriesAreToleratedWhereLibxlChecks(t *testing.T) {
	for _, m := range []Mode{Mode417, Mode42Patched} {
		t.Run(m.String(), func(t *testing.T) {
			res := runBroken(t, Faults{DeliverAfterDeregister: true}, m,
				Workload{Threads: 2, OpsPerThread: 40, Mix: only(OpPipeIn, OpPipeOut, OpTimerCancel, OpDualReg)})
			requireClean(t)
			c := Counters()
			if res.StaleTolerated == 0 || c.StaleFDTolerated == 0 {
				t.Fatalf("no stale delivery was exercised: %+v", res)
			}
			t.Logf("stale fd %d, stale timeout %d tolerated", c.StaleFDTolerated, c.StaleTimeoutTolerated)
		})
	}
}

func TestCatchesOccurredInsideHook(t *testing.T) {
	for _, m := range Modes() {
		t.Run(m.String(), func(t *testing.T) {
			runBroken(t, Faults{OccurredInsideHook: true}, m,
				Workload{Threads: 1, OpsPerThread: 5, Mix: only(OpTimerFire)})
			requireKind(t, OccurredInsideHook)
		})
	}
}

func TestCatchesHookCallingLibxl(t *testing.T) {
	runBroken(t, Faults{CallLibxlInsideHook: true}, Mode417,
		Workload{Threads: 1, OpsPerThread: 5, Mix: only(OpPipeIn)})
	requireKind(t, HookCalledLibxl)
}

func TestCatchesBlockingHook(t *testing.T) {
	SetHookBlockBound(100 * time.Millisecond)
	defer SetHookBlockBound(2 * time.Second)
	runBroken(t, Faults{BlockInHook: 400 * time.Millisecond}, Mode417,
		Workload{Threads: 1, OpsPerThread: 2, Mix: only(OpPipeOut)})
	requireKind(t, HookBlocked)
}

func TestCatchesOccurredAfterCtxFree(t *testing.T) {
	// A loop that frees the ctx without closing its gate or reaping goes
	// on to deliver the fire-now timeouts libxl_ctx_free left pending.
	loop, ctx := start(t, Faults{SkipTeardown: true, SlowDispatch: 2 * time.Millisecond}, Mode417)
	defer loop.Close()
	if _, err := Run(ctx, Workload{Threads: 1, OpsPerThread: 1, Mix: only(OpAOInline), LeaveFireNowPending: 8}); err != nil {
		t.Fatal(err)
	}
	if err := loop.FreeCtx(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for Counters().Violations[OccurredAfterCtxFree] == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	requireKind(t, OccurredAfterCtxFree)
}

func TestCtxFreeWithPendingFireNowIsLegal(t *testing.T) {
	loop, ctx := start(t, Faults{SlowDispatch: time.Millisecond}, Mode417)
	defer loop.Close()
	if _, err := Run(ctx, Workload{Threads: 2, OpsPerThread: 20, LeaveFireNowPending: 16}); err != nil {
		t.Fatal(err)
	}
	if err := loop.FreeCtx(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	requireClean(t)
}

func TestHookFailuresReachTheOperation(t *testing.T) {
	for _, m := range []Mode{Mode417, Mode42Patched} {
		t.Run(m.String(), func(t *testing.T) {
			res := runBroken(t, Faults{FailNthRegister: 3, FailEveryNthRegister: 7}, m,
				Workload{Threads: 3, OpsPerThread: 100})
			requireClean(t)
			c := Counters()
			if res.OpsFailed == 0 || c.HookFailures == 0 {
				t.Fatalf("no failure propagated: %+v, %d hook failures", res, c.HookFailures)
			}
			if res.OpsAbandoned != 0 {
				t.Fatalf("%d operations abandoned", res.OpsAbandoned)
			}
			t.Logf("%d hook failures, %d operations failed, %d completed", c.HookFailures, res.OpsFailed, res.OpsCompleted)
		})
	}
}

func TestStaleDeliveriesFromASlowDispatcher(t *testing.T) {
	res := runBroken(t, Faults{SlowDispatch: 100 * time.Microsecond, NoLivenessRecheck: true}, Mode417,
		Workload{Threads: 4, OpsPerThread: 100, Mix: only(OpFDReuse, OpPipeIn, OpDualReg)})
	requireClean(t)
	t.Logf("%d stale deliveries tolerated, %d spurious", res.StaleTolerated, Counters().SpuriousFD)
	if res.StaleTolerated == 0 {
		t.Fatal("no stale delivery happened")
	}
}

func TestManyCtxsAtOnce(t *testing.T) {
	loop, err := NewRefLoop(Faults{})
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	Reset()
	var wg sync.WaitGroup
	errs := make(chan error, 24)
	for i := 0; i < 24; i++ {
		m := Modes()[i%3]
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, err := loop.NewCtx(m)
			if err != nil {
				errs <- err
				return
			}
			pending := 0
			if m != Mode42Unpatched { // fire-now modes
				pending = 4
			}
			if _, err := Run(ctx, Workload{Threads: 2, OpsPerThread: 50, Seed: uint64(i), LeaveFireNowPending: pending}); err != nil {
				errs <- err
			}
			errs <- loop.FreeCtx(ctx)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	requireClean(t)
	if c := Counters(); c.CtxAllocs != 24 || c.CtxFrees != 24 {
		t.Fatalf("allocs %d frees %d", c.CtxAllocs, c.CtxFrees)
	}
}

func TestVersionPerMode(t *testing.T) {
	want := map[Mode][3]any{Mode417: {4, 17, ".0"}, Mode42Unpatched: {4, 2, ".1"}, Mode42Patched: {4, 2, ".1"},
		Mode420Unpatched: {4, 2, ".0"}, Mode422: {4, 2, ".2"}}
	loop, err := NewRefLoop(Faults{})
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	for _, m := range Modes() {
		ctx, err := loop.NewCtx(m)
		if err != nil {
			t.Fatal(err)
		}
		major, minor, extra, err := VersionInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := [3]any{major, minor, extra}; got != want[m] {
			t.Errorf("mode %v: version %v, want %v", m, got, want[m])
		}
		if got, _ := CtxMode(ctx); got != m {
			t.Errorf("CtxMode = %v, want %v", got, m)
		}
		if err := SetCtxMode(ctx, Mode417); err == nil {
			t.Errorf("SetCtxMode after register_hooks succeeded")
		}
		if err := loop.FreeCtx(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDomainLifecycleThroughTheAPI(t *testing.T) {
	for _, m := range Modes() {
		for _, async := range []bool{true, false} {
			t.Run(fmt.Sprintf("%v/async=%v", m, async), func(t *testing.T) {
				loop, ctx := start(t, Faults{}, m)
				defer loop.Close()
				if err := DomainScenario(ctx, 20, async); err != nil {
					t.Fatal(err)
				}
				if err := loop.FreeCtx(ctx); err != nil {
					t.Fatal(err)
				}
				requireClean(t)
				// 4.17's destroy forks; the loop's SIGCHLD forwarding
				// reaped every child before its destroy completed.
				c := Counters()
				want := uint64(0)
				if m == Mode417 {
					want = 20
				}
				if c.ChildrenForked != want || c.ChildrenReaped != want {
					t.Fatalf("children forked %d, reaped %d; want %d each", c.ChildrenForked, c.ChildrenReaped, want)
				}
			})
		}
	}
}

// libxl_ctx_free asserts that no fd is registered and no timeout armed
// (ctx->efds, ctx->etimes) and aborts otherwise; the model records the
// breach and, like libxl, deregisters nothing on the application's behalf.
func TestCtxFreeWithRegistrationsIsCaught(t *testing.T) {
	for _, m := range Modes() {
		for _, what := range []string{"fd", "armed-timeout"} {
			t.Run(m.String()+"/"+what, func(t *testing.T) {
				loop, ctx := start(t, Faults{}, m)
				defer loop.Close()
				fd := -1
				switch what {
				case "fd":
					var err error
					if fd, err = HoldFD(ctx); err != nil {
						t.Fatal(err)
					}
				case "armed-timeout":
					if _, err := RaceArm(ctx, time.Minute); err != nil {
						t.Fatal(err)
					}
				}
				before := Counters().HookCalls
				if err := loop.FreeCtx(ctx); err != nil {
					t.Fatal(err)
				}
				if fd >= 0 {
					syscall.Close(fd)
				}
				requireKind(t, CtxFreeWithRegistrations)
				after := Counters().HookCalls
				for _, h := range []HookKind{HookFDDeregister, HookTimeoutModify, HookTimeoutDeregister} {
					if after[h] != before[h] {
						t.Errorf("libxl_ctx_free called hook %d itself (%d -> %d)", h, before[h], after[h])
					}
				}
			})
		}
	}
}
