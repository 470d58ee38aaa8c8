package bench

import (
	"fmt"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// TimeoutSpec is the timeout workload: Pending one-shot timeouts, each
// replaced when it fires by one due RearmMin..RearmMax later (as libxl
// registers new ones), so that Pending stay pending. The first deadlines
// are spread uniformly over [Lead, Lead+Spread). Optionally a busy fd
// load runs meanwhile: BusyN eventfds registered, BusyK always readable.
type TimeoutSpec struct {
	Pending            int
	Lead, Spread       time.Duration
	RearmMin, RearmMax time.Duration
	Window             time.Duration // measured from Lead
	BusyN, BusyK       int
	// Probe runs the machine timer probe meanwhile (see TimeoutResult).
	// Never in CPU runs: its 1,000 wake-ups a second are the process's.
	Probe bool
}

// LatenessSpec is the lateness workload: 10,000 pending, a busy
// fd load.
var LatenessSpec = TimeoutSpec{Pending: 10000, Lead: 300 * time.Millisecond, Spread: 10 * time.Second,
	RearmMin: 5 * time.Second, RearmMax: 15 * time.Second, Window: 3 * time.Second, BusyN: 100, BusyK: 10, Probe: true}

// CPUSpec is the CPU workload: 10,000 pending, idle otherwise
// (about 1,000 of them fire per second and are replaced).
var CPUSpec = TimeoutSpec{Pending: 10000, Lead: 300 * time.Millisecond, Spread: 10 * time.Second,
	RearmMin: 5 * time.Second, RearmMax: 15 * time.Second, Window: 3 * time.Second}

// TimeoutResult is one run of the timeout workload.
type TimeoutResult struct {
	Late     []time.Duration // lateness of timeouts fired in the window: delivery minus wall deadline
	Fired    uint64          // timeouts fired in the window
	CPU      time.Duration   // process user+system time over the window
	Window   time.Duration   // the window's wall time
	FDEvents uint64          // busy fd events delivered in the window
	// Probe is the machine's own timer lateness during the run (a C
	// thread sleeping to 1 ms deadlines): the floor under any loop's
	// lateness on a shared machine. Empty where cgo is off.
	Probe []time.Duration
}

// TimeoutFunc runs spec. busy are the spec.BusyN eventfds; the ones in
// active are readable.
type TimeoutFunc func(spec TimeoutSpec, busy []int, active []int) (TimeoutResult, error)

// RunTimeouts runs im's timeout workload.
func RunTimeouts(im *Impl, spec TimeoutSpec) (TimeoutResult, error) {
	if im.Timeouts == nil {
		return TimeoutResult{}, fmt.Errorf("%s: no timeout benchmark", im.Name)
	}
	fds, err := EventFDs(spec.BusyN)
	if err != nil {
		return TimeoutResult{}, err
	}
	defer CloseFDs(fds)
	active := ActiveSet(spec.BusyN, spec.BusyK)
	if spec.BusyN > 0 {
		if err := Activate(fds, active); err != nil {
			return TimeoutResult{}, err
		}
	}
	var probe interface{ Stop() []time.Duration }
	if spec.Probe && startProbe != nil {
		probe = startProbe()
	}
	res, err := im.Timeouts(spec, fds, active)
	if probe != nil {
		res.Probe = probe.Stop()
	}
	return res, err
}

// startProbe is set where cgo is on (floor.go).
var startProbe func() interface{ Stop() []time.Duration }

// InitialDeadlines spreads spec.Pending wall-clock deadlines over
// [start+Lead, start+Lead+Spread) in a scrambled order.
func InitialDeadlines(spec TimeoutSpec, start time.Time) []time.Time {
	n := spec.Pending
	out := make([]time.Time, n)
	for i := range out {
		j := (i * 7919) % n
		out[i] = start.Add(spec.Lead + spec.Spread*time.Duration(j)/time.Duration(n))
	}
	return out
}

// CPUTime is the process's user+system time.
func CPUTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Percentile returns the p-quantile (0..1) of sorted durations.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}

// SortDurations sorts d in place.
func SortDurations(d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
}
