//go:build libxlmodel

package libxlmodel

import (
	"testing"
	"time"
)

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// The race API's bookkeeping, without any race: a cancel before the
// deadline cancels, a second cancel and a cancel after the firing report
// false, and nothing touches a freed record.
func TestRaceArmAndCancel(t *testing.T) {
	for _, m := range Modes() {
		t.Run(m.String(), func(t *testing.T) {
			loop, ctx := start(t, Faults{}, m)
			defer loop.Close()
			long, err := RaceArm(ctx, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := RaceCancel(ctx, long); !ok || err != nil {
				t.Fatalf("cancel of an armed timeout: %v, %v", ok, err)
			}
			if ok, err := RaceCancel(ctx, long); ok || err != nil {
				t.Fatalf("second cancel: %v, %v", ok, err)
			}
			short, err := RaceArm(ctx, time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if short == long {
				t.Fatalf("handle %d reused", short)
			}
			waitFor(t, "the short timeout to fire", func() bool { return RaceCounters().Fired == 1 })
			if ok, err := RaceCancel(ctx, short); ok || err != nil {
				t.Fatalf("cancel after firing: %v, %v", ok, err)
			}
			if _, err := RaceCancel(ctx, 1<<40); err == nil {
				t.Fatal("cancel of an unknown handle succeeded")
			}
			if m == Mode417 || m == Mode42Patched || m == Mode422 {
				waitFor(t, "the fire-now delivery", func() bool { return RaceCounters().FireNowDelivered == 1 })
			}
			if err := loop.FreeCtx(ctx); err != nil {
				t.Fatal(err)
			}
			requireClean(t)
			got := RaceCounters()
			want := RaceCounts{Armed: 2, Cancelled: 1, Fired: 1, CancelLate: 2}
			if m == Mode417 || m == Mode42Patched || m == Mode422 {
				want.FireNowDelivered = 1
			}
			if got != want {
				t.Fatalf("counters %+v, want %+v", got, want)
			}
			hooks := Counters().HookCalls
			if m == Mode42Unpatched || m == Mode420Unpatched {
				if hooks[HookTimeoutDeregister] != 1 || hooks[HookTimeoutModify] != 0 {
					t.Fatalf("4.2 unpatched cancels with timeout_deregister only: %v", hooks)
				}
			} else if hooks[HookTimeoutDeregister] != 0 || hooks[HookTimeoutModify] != 1 {
				t.Fatalf("fire-now modes cancel with timeout_modify only: %v", hooks)
			}
		})
	}
}

func TestRaceCancelOnAnotherCtxIsMisuse(t *testing.T) {
	loop, ctx := start(t, Faults{}, Mode417)
	defer loop.Close()
	other, err := loop.NewCtx(Mode417)
	if err != nil {
		t.Fatal(err)
	}
	h, err := RaceArm(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RaceCancel(other, h); err == nil {
		t.Fatal("cancel through another ctx succeeded")
	}
	requireKind(t, APIMisuse)
	if err := loop.FreeCtx(other); err != nil {
		t.Fatal(err)
	}
	if err := loop.FreeCtx(ctx); err != nil {
		t.Fatal(err)
	}
}

// 4.2.0 hands timeout_deregister a pointer to its copy of the token. The
// reference loop reads the token through it and the cancelled timeouts
// never come back; a loop that takes the pointer for the token keeps
// them, and delivers them after libxl freed them.
func TestTimeoutDeregisterArgumentOf420(t *testing.T) {
	const n = 20
	run := func(t *testing.T, f Faults) {
		loop, ctx := start(t, f, Mode420Unpatched)
		defer loop.Close()
		for i := 0; i < n; i++ {
			h, err := RaceArm(ctx, 20*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := RaceCancel(ctx, h); !ok || err != nil {
				t.Fatalf("cancel %d: %v, %v", i, ok, err)
			}
		}
		if f.DeregisterArgAsToken {
			waitFor(t, "the kept timeouts to be delivered", func() bool {
				return Counters().Violations[DeliveryAfterDeregister] == n
			})
		} else {
			time.Sleep(80 * time.Millisecond) // well past the deadlines
		}
		if err := loop.FreeCtx(ctx); err != nil {
			t.Fatal(err)
		}
		if c := Counters(); c.HookCalls[HookTimeoutDeregister] != n {
			t.Fatalf("%d timeout_deregister calls, want %d", c.HookCalls[HookTimeoutDeregister], n)
		}
	}
	t.Run("reads-through-the-pointer", func(t *testing.T) {
		run(t, Faults{})
		requireClean(t)
		if c := RaceCounters(); c.Cancelled != n || c.Fired != 0 {
			t.Fatalf("race counters %+v", c)
		}
	})
	t.Run("takes-the-pointer-for-the-token", func(t *testing.T) {
		run(t, Faults{DeregisterArgAsToken: true})
		requireKind(t, DeliveryAfterDeregister)
	})
}
