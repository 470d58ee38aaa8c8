package bench

import (
	"fmt"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// Result is one timed dispatch run.
type Result struct {
	Elapsed time.Duration // wall time
	CPU     time.Duration // process CPU time (all threads) in the same interval
	Events  uint64        // fd events delivered in Elapsed
}

// NsPerEvent is the wall time per delivered event.
func (r Result) NsPerEvent() float64 {
	if r.Events == 0 {
		return 0
	}
	return float64(r.Elapsed.Nanoseconds()) / float64(r.Events)
}

// CPUNsPerEvent is the process CPU time per delivered event: on a shared
// machine, what the loop costs, without the time other processes took.
func (r Result) CPUNsPerEvent() float64 {
	if r.Events == 0 {
		return 0
	}
	return float64(r.CPU.Nanoseconds()) / float64(r.Events)
}

// ProcessCPU is the process's CPU time (CLOCK_PROCESS_CPUTIME_ID).
func ProcessCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// stopwatch measures wall and process CPU time together.
type stopwatch struct {
	wall time.Time
	cpu  time.Duration
}

func startWatch() stopwatch { return stopwatch{wall: time.Now(), cpu: ProcessCPU()} }

func (s stopwatch) result(events uint64) Result {
	cpu := ProcessCPU()
	return Result{Elapsed: time.Since(s.wall), CPU: cpu - s.cpu, Events: events}
}

// DispatchFunc registers fds (all for POLLIN; fds[i] for i in active are
// already readable), delivers at least events events after a short
// warm-up, times that, and deregisters everything again. It returns how
// many events it delivered in the timed part.
type DispatchFunc func(fds []int, active []int, events uint64) (Result, error)

// Impl is one event loop under test.
type Impl struct {
	Name string
	Desc string
	rank int

	Dispatch DispatchFunc
	// Timeouts runs the timeout workload (nil: not supported).
	Timeouts TimeoutFunc
}

var impls = map[string]*Impl{}

func register(im *Impl) {
	if impls[im.Name] != nil {
		panic("bench: impl registered twice: " + im.Name)
	}
	impls[im.Name] = im
}

// Impls lists the implementations compiled in, in a fixed order.
func Impls() []*Impl {
	out := make([]*Impl, 0, len(impls))
	for _, im := range impls {
		out = append(out, im)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rank < out[j].rank })
	return out
}

// Lookup returns the implementation named name, or nil.
func Lookup(name string) *Impl { return impls[name] }

// Shape is one dispatch workload: N registered fds, K of them active.
type Shape struct{ N, K int }

func (s Shape) String() string { return fmt.Sprintf("N=%d/active=%d", s.N, s.K) }

// Shapes are the dispatch workloads of the issue.
var Shapes = []Shape{{10, 1}, {10, 10}, {1000, 1}, {1000, 100}, {10000, 1}, {10000, 100}}

// warmup is how many events each impl delivers before timing.
func warmup(events uint64) uint64 { return min(max(events/10, 16), 10000) }

// RunDispatch opens s.N eventfds, makes s.K readable and runs im on them.
func RunDispatch(im *Impl, s Shape, events uint64) (Result, error) {
	if im.Dispatch == nil {
		return Result{}, fmt.Errorf("%s: no dispatch benchmark", im.Name)
	}
	fds, err := EventFDs(s.N)
	if err != nil {
		return Result{}, err
	}
	defer CloseFDs(fds)
	active := ActiveSet(s.N, s.K)
	if err := Activate(fds, active); err != nil {
		return Result{}, err
	}
	r, err := im.Dispatch(fds, active, events)
	if err != nil {
		return r, fmt.Errorf("%s %v: %w", im.Name, s, err)
	}
	if r.Events < events {
		return r, fmt.Errorf("%s %v: delivered %d events, want >= %d", im.Name, s, r.Events, events)
	}
	return r, nil
}

// Calibrate returns an event count that makes one run of im on s take
// about d.
func Calibrate(im *Impl, s Shape, d time.Duration) (uint64, error) {
	events := uint64(1000)
	for {
		r, err := RunDispatch(im, s, events)
		if err != nil {
			return 0, err
		}
		if r.Elapsed >= d/8 || events >= 1<<26 {
			n := uint64(float64(events) * float64(d) / float64(max(r.Elapsed, time.Microsecond)))
			return max(n, 100), nil
		}
		events *= 8
	}
}
