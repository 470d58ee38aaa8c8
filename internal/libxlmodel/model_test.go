//go:build libxlmodel

package libxlmodel

import (
	"fmt"
	"strings"
	"testing"
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
	for _, m := range Modes() {
		t.Run(m.String(), func(t *testing.T) {
			loop, ctx := start(t, Faults{}, m)
			defer loop.Close()
			res, err := Run(ctx, Workload{Threads: 4, TargetEvents: 100000, Seed: 42})
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
			if res.HookEvents < 100000 {
				t.Fatalf("only %d hook events", res.HookEvents)
			}
			if res.OpsAbandoned != 0 || res.OpsFailed != 0 || res.DeadlineHit {
				t.Fatalf("result %+v", res)
			}
		})
	}
}
