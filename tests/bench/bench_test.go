package bench

import (
	"fmt"
	"testing"
	"time"
)

// TestDispatchDelivers runs every implementation compiled in on a small
// shape and checks that it delivers what it claims (each impl verifies
// its own counts: C->Go calls, the model's live deliveries, contract
// violations).
func TestDispatchDelivers(t *testing.T) {
	for _, im := range Impls() {
		if im.Dispatch == nil {
			continue
		}
		for _, s := range []Shape{{10, 1}, {50, 5}} {
			t.Run(im.Name+"/"+s.String(), func(t *testing.T) {
				r, err := RunDispatch(im, s, 2000)
				if err != nil {
					t.Fatal(err)
				}
				if r.Events < 2000 || r.Elapsed <= 0 {
					t.Fatalf("result %+v", r)
				}
			})
		}
	}
}

// BenchmarkDispatch reports ns per delivered fd event (ns/op) for every
// implementation compiled in (see the package doc for build tags).
func BenchmarkDispatch(b *testing.B) {
	for _, s := range Shapes {
		for _, im := range Impls() {
			if im.Dispatch == nil {
				continue
			}
			b.Run(fmt.Sprintf("N=%d/active=%d/impl=%s", s.N, s.K, im.Name), func(b *testing.B) {
				r, err := RunDispatch(im, s, uint64(max(b.N, 1)))
				if err != nil {
					b.Fatal(err)
				}
				// ns/op as the testing package computes it is wall time
				// per b.N including setup; report the timed part instead.
				b.ReportMetric(r.NsPerEvent(), "ns/event")
				b.ReportMetric(r.CPUNsPerEvent(), "cpu-ns/event")
			})
		}
	}
}

// TestTimeoutsFire runs each timeout workload briefly: timeouts fire, no
// contract violation, CPU is measured.
func TestTimeoutsFire(t *testing.T) {
	spec := TimeoutSpec{Pending: 200, Lead: 20 * time.Millisecond, Spread: 100 * time.Millisecond,
		RearmMin: 50 * time.Millisecond, RearmMax: 100 * time.Millisecond, Window: 200 * time.Millisecond, BusyN: 10, BusyK: 2}
	for _, im := range Impls() {
		if im.Timeouts == nil {
			continue
		}
		t.Run(im.Name, func(t *testing.T) {
			r, err := RunTimeouts(im, spec)
			if err != nil {
				t.Fatal(err)
			}
			if r.Fired == 0 || len(r.Late) == 0 || r.FDEvents == 0 {
				t.Fatalf("fired %d, %d samples, %d fd events", r.Fired, len(r.Late), r.FDEvents)
			}
			SortDurations(r.Late)
			if min := r.Late[0]; min < -2*time.Millisecond {
				t.Errorf("a timeout fired %v early", -min)
			}
		})
	}
}
