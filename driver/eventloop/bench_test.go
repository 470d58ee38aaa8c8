package eventloop

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxl/goxl/internal/epoll"
	"github.com/goxl/goxl/internal/osevent"
)

// cpuClock returns the process's user+system CPU time. Reported per event
// it is steadier than wall time on a shared machine.
func cpuClock() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(cpuClock()-cpu0)/float64(b.N), "cpu-ns/event")
}

// countSink is a trivial Sink: it counts deliveries (only the dispatcher
// calls it) and closes done when target is reached.
type countSink struct {
	n      int64
	target atomic.Int64
	done   chan struct{}
}

func (s *countSink) OccurredFD(_ osevent.ForLibxl, _ int, _, _ osevent.PollEvents, _ osevent.Liveness) {
	s.n++
	if s.n == s.target.Load() {
		close(s.done)
	}
}

func (s *countSink) OccurredTimeout(osevent.ForLibxl, osevent.Liveness) {}

var benchShapes = []struct{ regs, active int }{
	{10, 1}, {10, 10}, {1000, 1}, {1000, 100}, {10000, 1}, {10000, 100},
}

// BenchmarkFDEvents reports ns per delivered fd event (ns/op) with regs
// registered eventfds of which active are readable (level-triggered, so
// every dispatch round delivers each active one).
func BenchmarkFDEvents(b *testing.B) {
	for _, sh := range benchShapes {
		b.Run(fmt.Sprintf("regs=%d/active=%d", sh.regs, sh.active), func(b *testing.B) {
			l, err := New(Options{})
			if err != nil {
				b.Fatal(err)
			}
			sink := &countSink{done: make(chan struct{})}
			sink.target.Store(-1)
			bd := l.Attach(sink)
			fds := make([]int, sh.regs)
			for i := range fds {
				fds[i] = eventfd(b, 0)
				if _, err := bd.FDRegister(fds[i], osevent.PollIn, osevent.ForLibxl(i+1)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			var one = [8]byte{1}
			b.ResetTimer()
			cpu0 := cpuClock()
			sink.target.Store(int64(b.N))
			for i := 0; i < sh.active; i++ {
				unix.Write(fds[i*(sh.regs/sh.active)], one[:])
			}
			<-sink.done
			b.StopTimer()
			reportCPU(b, cpu0)
			bd.CloseGate()
			bd.Reap()
			bd.Detach()
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
			for _, fd := range fds {
				unix.Close(fd)
			}
		})
	}
}

// BenchmarkBareEpoll is the floor: the same shapes on internal/epoll with
// no registry, no Sink and no locks.
func BenchmarkBareEpoll(b *testing.B) {
	for _, sh := range benchShapes {
		b.Run(fmt.Sprintf("regs=%d/active=%d", sh.regs, sh.active), func(b *testing.B) {
			p, err := epoll.New()
			if err != nil {
				b.Fatal(err)
			}
			fds := make([]int, sh.regs)
			for i := range fds {
				fds[i] = eventfd(b, 0)
				if err := p.Add(fds[i], epoll.In, int32(i)); err != nil {
					b.Fatal(err)
				}
			}
			var one = [8]byte{1}
			for i := 0; i < sh.active; i++ {
				unix.Write(fds[i*(sh.regs/sh.active)], one[:])
			}
			evs := make([]unix.EpollEvent, 256)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuClock()
			var sum int64
			for n := 0; n < b.N; {
				k, err := p.Wait(evs, -1)
				if err != nil {
					b.Fatal(err)
				}
				for i := 0; i < k; i++ {
					sum += int64(evs[i].Pad)
				}
				n += k
			}
			b.StopTimer()
			reportCPU(b, cpu0)
			_ = sum
			p.Close()
			for _, fd := range fds {
				unix.Close(fd)
			}
		})
	}
}

// latencySink records how late each timeout fired. Lateness is measured
// on the monotonic clock (the loop converts libxl's wall-clock deadline
// once, at registration); the wall-clock figure is kept to notice clock
// steps.
type latencySink struct {
	deadlines []time.Time // with a monotonic reading; passed to the loop without
	late      []time.Duration
	wallLate  []time.Duration
	fired     atomic.Int64
}

func (s *latencySink) OccurredFD(osevent.ForLibxl, int, osevent.PollEvents, osevent.PollEvents, osevent.Liveness) {
}

func (s *latencySink) OccurredTimeout(k osevent.ForLibxl, _ osevent.Liveness) {
	now := time.Now()
	s.late = append(s.late, now.Sub(s.deadlines[k]))
	s.wallLate = append(s.wallLate, now.Round(0).Sub(s.deadlines[k].Round(0)))
	s.fired.Add(1)
}

// measureLateness registers n timeouts spread over spread (starting after
// lead) and returns the lateness percentiles.
func measureLateness(tb testing.TB, n int, lead, spread time.Duration) (p50, p99, pmax, pmin time.Duration) {
	l, err := New(Options{})
	if err != nil {
		tb.Fatal(err)
	}
	sink := &latencySink{deadlines: make([]time.Time, n), late: make([]time.Duration, 0, n)}
	bd := l.Attach(sink)
	start := time.Now().Add(lead)
	for i := 0; i < n; i++ {
		// Pseudo-random order of deadlines, all distinct.
		j := (i * 7919) % n
		sink.deadlines[i] = start.Add(spread * time.Duration(j) / time.Duration(n))
		if _, err := bd.TimeoutRegister(sink.deadlines[i].Round(0), osevent.ForLibxl(i)); err != nil {
			tb.Fatal(err)
		}
	}
	waitFor(tb, "all timeouts", lead+spread+30*time.Second, func() bool { return sink.fired.Load() == int64(n) })
	bd.CloseGate()
	bd.Reap()
	bd.Detach()
	if err := l.Close(); err != nil {
		tb.Fatal(err)
	}
	late := sink.late
	sortDurations(late)
	sortDurations(sink.wallLate)
	if d := sink.wallLate[len(late)/2] - late[len(late)/2]; d > time.Millisecond || d < -time.Millisecond {
		tb.Logf("wall-clock lateness differs from monotonic by %v at the median: the wall clock moved", d)
	}
	return percentile(late, 0.5), percentile(late, 0.99), late[len(late)-1], late[0]
}

// TestTimeoutLateness: 10,000 pending timeouts all fire, none early. How
// late they fire is a speed figure: it is logged here and measured by
// BenchmarkTimeoutLateness (make bench), never asserted (shared machines).
func TestTimeoutLateness(t *testing.T) {
	p50, p99, pmax, pmin := measureLateness(t, 10000, 200*time.Millisecond, time.Second)
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("timeout lateness with 10,000 pending: p50=%v p99=%v max=%v (loadavg %s)", p50, p99, pmax, strings.TrimSpace(string(load)))
	if pmin < -earlyTolerance {
		t.Fatalf("a timeout fired %v early", -pmin)
	}
}

// BenchmarkTimeoutLateness reports lateness percentiles (µs) with 10,000
// pending timeouts; run with -benchtime=1x.
func BenchmarkTimeoutLateness(b *testing.B) {
	for i := 0; i < b.N; i++ {
		p50, p99, pmax, _ := measureLateness(b, 10000, 200*time.Millisecond, time.Second)
		b.ReportMetric(float64(p50.Nanoseconds())/1e3, "p50-µs")
		b.ReportMetric(float64(p99.Nanoseconds())/1e3, "p99-µs")
		b.ReportMetric(float64(pmax.Nanoseconds())/1e3, "max-µs")
	}
}
