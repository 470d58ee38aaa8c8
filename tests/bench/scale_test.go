//go:build libxlmodel

package bench

import (
	"os"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	MaybeScaleChild()
	os.Exit(m.Run())
}

// TestScaleMeasures runs the scale measurement small: two child daemons
// per size on the model, every pause/unpause's event arrives, the list
// shows every domain (checked inside), and the figures are measured.
// GOXL_BENCH_GOXL=/path/to/goxl also times `goxl list` through them.
func TestScaleMeasures(t *testing.T) {
	spec := ScaleSpec{Small: 2, Large: 6, Reps: 1, Window: 200 * time.Millisecond,
		Resync: 50 * time.Millisecond, Events: 20, Lists: 1, GoxlBin: os.Getenv("GOXL_BENCH_GOXL")}
	r, err := RunScale(spec, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range r.Sides {
		if s.Lost != 0 || len(s.EventP99us) != 1 || s.EventP99us[0] <= 0 || s.CPUPerEventUs[0] <= 0 ||
			len(s.ListClientMs) != 1 || s.HeapBytes <= 0 || len(s.IdleCPU) != 1 || len(s.ResyncCPU) != 1 {
			t.Fatalf("%d domains: %+v", s.N, s)
		}
	}
	if r.Sides[1].HeapObjects <= r.Sides[0].HeapObjects {
		t.Errorf("heap objects with %d domains %v, with %d %v: domains cost nothing?",
			r.Sides[1].N, r.Sides[1].HeapObjects, r.Sides[0].N, r.Sides[0].HeapObjects)
	}
}
