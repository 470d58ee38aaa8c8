// Command benchtable runs tests/bench's measurements side by side in one
// process (runs interleaved, medians of several repetitions) and prints
// one table of ratios. Raw figures go to -out (raw.json), with the table
// (table.md) and the plot's data (dispatch.dat, plot.gp).
//
// Build it with -tags 'libxlmodel libvirtbench' for the goxl and libvirt
// columns; without them it measures only the floors. See
// docs/benchmarks.md and `make bench`.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"time"

	"github.com/goxl/goxl/tests/bench"
)

var (
	reps     = flag.Int("reps", 5, "repetitions of each dispatch run (interleaved)")
	runTime  = flag.Duration("run", 150*time.Millisecond, "target wall time of one dispatch run")
	treps    = flag.Int("treps", 3, "repetitions of the timeout and CPU runs (interleaved)")
	window   = flag.Duration("window", 3*time.Second, "measurement window of the timeout and CPU runs")
	outDir   = flag.String("out", ".build/bench", "directory for raw.json, table.md, dispatch.dat, plot.gp")
	xenFile  = flag.String("xen", "", "XenResult JSON from the Xen-under-QEMU step (optional)")
	quick    = flag.Bool("quick", false, "tiny runs, for a smoke test")
	onlyDisp = flag.Bool("dispatch-only", false, "skip timeouts, CPU and memory")
	cpuOnly  = flag.String("cpu-profile-timeouts", "", "profile: run only goxl's CPU (timeouts) workload once, writing a CPU profile here")
	from     = flag.String("from", "", "measure nothing: re-render the table and plot from this raw.json")
	verbFile = flag.String("verbs", "", "every CLI verb's wall times (xenbench's XENBENCH-VERBS-JSON) from the Xen-under-QEMU step (optional)")
	scaleOn  = flag.Bool("scale", true, "measure the daemon with -scale-small and -scale-large domains on the model")
	small    = flag.Int("scale-small", bench.DefaultScale.Small, "domains of the small daemon")
	large    = flag.Int("scale-large", bench.DefaultScale.Large, "domains of the large daemon")
	goxlBin  = flag.String("goxl", ".build/bench/goxl", "the goxl CLI, for `goxl list` through the scale daemons (skipped if missing)")
)

// Raw is everything measured, as written to raw.json.
type Raw struct {
	Started  time.Time            `json:"started"`
	Machine  bench.Machine        `json:"machine"`
	Impls    map[string]string    `json:"impls"`
	Dispatch []DispatchRaw        `json:"dispatch"`
	Lateness map[string][]TimeRaw `json:"lateness"`
	CPU      map[string][]TimeRaw `json:"cpu"`
	Memory   *bench.Memory        `json:"memory,omitempty"`
	Xen      *bench.XenResult     `json:"xen,omitempty"`
	// Verbs: verb → tool (daemon, direct, xl) → wall ms per repetition.
	Verbs map[string]map[string][]float64 `json:"verbs,omitempty"`
	Scale *bench.ScaleResult              `json:"scale,omitempty"`
	Notes []string                        `json:"notes,omitempty"`
}

type DispatchRaw struct {
	N, K          int
	Impl          string
	Events        uint64    // per run
	NsPerEvent    []float64 // wall time per event, one per repetition, in run order
	CPUNsPerEvent []float64 // process CPU time per event, likewise
	Median        float64   // of CPUNsPerEvent: the figure the tables use
	MedianWall    float64   // of NsPerEvent
}

type TimeRaw struct {
	Fired    uint64  `json:"fired"`
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
	MaxUs    float64 `json:"max_us"`
	EarlyPct float64 `json:"early_pct"` // share of deliveries before the deadline
	CPUms    float64 `json:"cpu_ms"`
	WindowMs float64 `json:"window_ms"`
	FDEvents uint64  `json:"fd_events"`
	// The machine's own timer lateness meanwhile (1 ms sleeps in a C thread).
	ProbeP50us float64 `json:"probe_p50_us"`
	ProbeP99us float64 `json:"probe_p99_us"`
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "benchtable: "+format+"\n", args...)
}

func main() {
	bench.MaybeScaleChild()
	flag.Parse()
	if *from != "" {
		var raw Raw
		b, err := os.ReadFile(*from)
		if err == nil {
			err = json.Unmarshal(b, &raw)
		}
		must(err)
		if n := len(raw.Dispatch); n > 0 {
			*reps = len(raw.Dispatch[0].CPUNsPerEvent)
		}
		// A Xen step run apart (make bench-xen) joins the table.
		loadXen(&raw)
		var tbl strings.Builder
		writeTable(&tbl, &raw)
		fmt.Print(tbl.String())
		must(os.MkdirAll(*outDir, 0o755))
		must(os.WriteFile(filepath.Join(*outDir, "table.md"), []byte(tbl.String()), 0o644))
		must(writePlot(*outDir, &raw))
		return
	}
	if *cpuOnly != "" {
		f, err := os.Create(*cpuOnly)
		must(err)
		must(pprof.StartCPUProfile(f))
		spec := bench.CPUSpec
		spec.Window = *window
		r, err := bench.RunTimeouts(bench.Lookup("goxl"), spec)
		pprof.StopCPUProfile()
		must(err)
		logf("goxl: %.1f ms CPU in %v, %d fired", float64(r.CPU.Nanoseconds())/1e6, r.Window, r.Fired)
		return
	}
	if *quick {
		*reps, *treps, *runTime, *window = 1, 1, 20*time.Millisecond, 300*time.Millisecond
	}
	raw := Raw{Started: time.Now(), Machine: bench.ThisMachine(), Impls: map[string]string{},
		Lateness: map[string][]TimeRaw{}, CPU: map[string][]TimeRaw{}}
	impls := bench.Impls()
	for _, im := range impls {
		raw.Impls[im.Name] = im.Desc
	}
	logf("machine: %d cpus, %s, kernel %s, %s, load %s", raw.Machine.NProc, raw.Machine.CPU,
		raw.Machine.Kernel, raw.Machine.Go, raw.Machine.Load)

	if err := runDispatch(&raw, impls); err != nil {
		fail(err)
	}
	if !*onlyDisp {
		if err := runTimeouts(&raw, impls); err != nil {
			fail(err)
		}
		if bench.MeasureMemory != nil {
			logf("memory")
			m, err := bench.MeasureMemory()
			if err != nil {
				fail(err)
			}
			raw.Memory = &m
		}
	}
	if *scaleOn && !*onlyDisp && bench.RunScale != nil {
		spec := bench.DefaultScale
		spec.Small, spec.Large = *small, *large
		if *quick {
			spec.Reps, spec.Window, spec.Events, spec.Lists = 1, 300*time.Millisecond, 50, 1
		}
		if _, err := os.Stat(*goxlBin); err == nil {
			spec.GoxlBin, _ = filepath.Abs(*goxlBin)
		} else {
			raw.Notes = append(raw.Notes, fmt.Sprintf("scale: no goxl CLI at %s: `goxl list` not timed", *goxlBin))
		}
		sc, err := bench.RunScale(spec, logf)
		if err != nil { // the other figures still count
			logf("scale: %v", err)
			raw.Notes = append(raw.Notes, fmt.Sprintf("scale: failed: %v", err))
		}
		raw.Scale = sc
	}
	loadXen(&raw)

	var tbl strings.Builder
	writeTable(&tbl, &raw)
	fmt.Print(tbl.String())
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		fail(err)
	}
	js, _ := json.MarshalIndent(raw, "", "  ")
	must(os.WriteFile(filepath.Join(*outDir, "raw.json"), append(js, '\n'), 0o644))
	must(os.WriteFile(filepath.Join(*outDir, "table.md"), []byte(tbl.String()), 0o644))
	must(writePlot(*outDir, &raw))
	logf("raw figures: %s", filepath.Join(*outDir, "raw.json"))
}

// loadXen reads the Xen step's results (-xen, -verbs) into raw.
func loadXen(raw *Raw) {
	if *verbFile != "" {
		b, err := os.ReadFile(*verbFile)
		if err == nil {
			err = json.Unmarshal(b, &raw.Verbs)
		}
		if err != nil {
			raw.Notes = append(raw.Notes, fmt.Sprintf("verbs: reading %s: %v", *verbFile, err))
		}
	}
	if *xenFile != "" {
		var x bench.XenResult
		b, err := os.ReadFile(*xenFile)
		if err == nil {
			err = json.Unmarshal(b, &x)
		}
		if err != nil {
			x.Error = fmt.Sprintf("reading %s: %v", *xenFile, err)
		}
		raw.Xen = &x
	}
}

func must(err error) {
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	logf("error: %v", err)
	os.Exit(1)
}

func runDispatch(raw *Raw, impls []*bench.Impl) error {
	for _, s := range bench.Shapes {
		rows := make([]*DispatchRaw, 0, len(impls))
		run := make([]*bench.Impl, 0, len(impls))
		for _, im := range impls {
			if im.Dispatch == nil {
				continue
			}
			ev, err := bench.Calibrate(im, s, *runTime)
			if err != nil {
				return err
			}
			rows = append(rows, &DispatchRaw{N: s.N, K: s.K, Impl: im.Name, Events: ev})
			run = append(run, im)
		}
		for r := 0; r < *reps; r++ {
			for i, im := range run { // A B C ... A B C ...
				res, err := bench.RunDispatch(im, s, rows[i].Events)
				if err != nil {
					return err
				}
				rows[i].NsPerEvent = append(rows[i].NsPerEvent, res.NsPerEvent())
				rows[i].CPUNsPerEvent = append(rows[i].CPUNsPerEvent, res.CPUNsPerEvent())
			}
		}
		var line []string
		for _, row := range rows {
			row.Median = median(row.CPUNsPerEvent)
			row.MedianWall = median(row.NsPerEvent)
			raw.Dispatch = append(raw.Dispatch, *row)
			line = append(line, fmt.Sprintf("%s %.0f/%.0f", row.Impl, row.Median, row.MedianWall))
		}
		logf("dispatch %v (CPU/wall ns per event, medians of %d): %s", s, *reps, strings.Join(line, ", "))
	}
	return nil
}

func timeRaw(r bench.TimeoutResult) TimeRaw {
	late := r.Late
	bench.SortDurations(late)
	early := 0
	for _, d := range late {
		if d < 0 {
			early++
		}
	}
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	tr := TimeRaw{Fired: r.Fired, CPUms: float64(r.CPU.Nanoseconds()) / 1e6,
		WindowMs: float64(r.Window.Nanoseconds()) / 1e6, FDEvents: r.FDEvents}
	if p := r.Probe; len(p) > 0 {
		bench.SortDurations(p)
		tr.ProbeP50us, tr.ProbeP99us = us(bench.Percentile(p, 0.5)), us(bench.Percentile(p, 0.99))
	}
	if len(late) > 0 {
		tr.P50us, tr.P99us, tr.MaxUs = us(bench.Percentile(late, 0.5)), us(bench.Percentile(late, 0.99)), us(late[len(late)-1])
		tr.EarlyPct = 100 * float64(early) / float64(len(late))
	}
	return tr
}

func runTimeouts(raw *Raw, impls []*bench.Impl) error {
	lat, cpu := bench.LatenessSpec, bench.CPUSpec
	lat.Window, cpu.Window = *window, *window
	if *quick {
		lat.Pending, cpu.Pending = 1000, 1000
	}
	for r := 0; r < *treps; r++ {
		for _, im := range impls {
			if im.Timeouts == nil {
				continue
			}
			res, err := bench.RunTimeouts(im, lat)
			if err != nil {
				return err
			}
			tr := timeRaw(res)
			raw.Lateness[im.Name] = append(raw.Lateness[im.Name], tr)
			logf("lateness %s: fired %d, p50 %.0f µs, p99 %.0f µs, max %.0f µs, early %.1f%%, %d busy fd events; machine timer probe p50 %.0f µs, p99 %.0f µs",
				im.Name, tr.Fired, tr.P50us, tr.P99us, tr.MaxUs, tr.EarlyPct, tr.FDEvents, tr.ProbeP50us, tr.ProbeP99us)
		}
		for _, im := range impls {
			if im.Timeouts == nil {
				continue
			}
			res, err := bench.RunTimeouts(im, cpu)
			if err != nil {
				return err
			}
			tr := timeRaw(res)
			raw.CPU[im.Name] = append(raw.CPU[im.Name], tr)
			logf("cpu %s: %.1f ms CPU in %.0f ms, %d timeouts fired", im.Name, tr.CPUms, tr.WindowMs, tr.Fired)
		}
	}
	return nil
}

func dispatchMedian(raw *Raw, n, k int, impl string) float64 {
	for _, d := range raw.Dispatch {
		if d.N == n && d.K == k && d.Impl == impl {
			return d.Median
		}
	}
	return 0
}

func dispatchMedianWall(raw *Raw, n, k int, impl string) float64 {
	for _, d := range raw.Dispatch {
		if d.N == n && d.K == k && d.Impl == impl {
			return d.MedianWall
		}
	}
	return 0
}

func ns(v float64) string {
	switch {
	case v == 0:
		return "—"
	case v >= 1e6:
		return fmt.Sprintf("%.2f ms", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1f µs", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.2f µs", v/1e3)
	}
	return fmt.Sprintf("%.0f ns", v)
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "—"
	}
	r := a / b
	switch {
	case r >= 100:
		return fmt.Sprintf("%.0f×", r)
	case r >= 10:
		return fmt.Sprintf("%.1f×", r)
	}
	return fmt.Sprintf("%.2f×", r)
}

func verdict(ok, have bool) string {
	if !have {
		return "n/a"
	}
	if ok {
		return "met"
	}
	return "**missed**"
}

func medianOf(rs []TimeRaw, f func(TimeRaw) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	return median(v)
}

func writeTable(w io.Writer, raw *Raw) {
	fmt.Fprintf(w, "\n| measurement | goxl | compared with | ratio | target | |\n|---|---|---|---|---|---|\n")
	for _, s := range bench.Shapes {
		g := dispatchMedian(raw, s.N, s.K, "goxl")
		f := dispatchMedian(raw, s.N, s.K, "floor")
		fm := dispatchMedian(raw, s.N, s.K, "floor+model")
		fmt.Fprintf(w, "| dispatch N=%d active=%d: CPU per event | %s | floor %s | %s | ≤1.5× | %s |\n",
			s.N, s.K, ns(g), ns(f), ratio(g, f), verdict(g <= 1.5*f, g > 0 && f > 0))
		fmt.Fprintf(w, "| … same, floor with the model as libxl | %s | floor+model %s | %s | (goxl's own share) | |\n",
			ns(g), ns(fm), ratio(g, fm))
	}
	for _, impl := range []string{"libvirt+model", "libvirt"} {
		for _, s := range bench.Shapes {
			g := dispatchMedian(raw, s.N, s.K, "goxl")
			lv := dispatchMedian(raw, s.N, s.K, impl)
			if lv == 0 && impl == "libvirt+model" {
				continue
			}
			target, met := "", ""
			switch {
			case s.N == 10000 && s.K == 1:
				target, met = "≥100× faster", verdict(lv >= 100*g, g > 0 && lv > 0)
			case s.N == 1000 && s.K == 1:
				target, met = "≥10× faster", verdict(lv >= 10*g, g > 0 && lv > 0)
			}
			what := "libvirt's loop driving the model's occurred_fd (same work) ÷ goxl"
			if impl == "libvirt" {
				what = "libvirt's loop, empty callback (old row: goxl does the model's work, libvirt none) ÷ goxl"
			}
			fmt.Fprintf(w, "| dispatch N=%d active=%d: %s | %s | %s %s | %s | %s | %s |\n",
				s.N, s.K, what, ns(g), impl, ns(lv), ratio(lv, g), target, met)
		}
	}
	if g, lv := raw.Lateness["goxl"], raw.Lateness["libvirt"]; len(g) > 0 {
		gp50, gp99 := medianOf(g, func(r TimeRaw) float64 { return r.P50us }), medianOf(g, func(r TimeRaw) float64 { return r.P99us })
		lp50, lp99 := medianOf(lv, func(r TimeRaw) float64 { return r.P50us }), medianOf(lv, func(r TimeRaw) float64 { return r.P99us })
		fmt.Fprintf(w, "| timeout lateness p50, 10,000 pending + busy fds | %s | libvirt %s | %s | | |\n",
			ns(gp50*1e3), ns(lp50*1e3), ratio(lp50, gp50))
		fmt.Fprintf(w, "| timeout lateness p99, 10,000 pending + busy fds | %s | libvirt %s | %s | goxl ≤0.5 ms | %s |\n",
			ns(gp99*1e3), ns(lp99*1e3), ratio(lp99, gp99), verdict(gp99 <= 500, true))
		pr := medianOf(g, func(r TimeRaw) float64 { return r.ProbeP99us })
		fmt.Fprintf(w, "| … the machine's own timer lateness p99 meanwhile (C thread, 1 ms sleeps) | %s | | | (floor) | |\n", ns(pr*1e3))
	}
	if g, lv := raw.CPU["goxl"], raw.CPU["libvirt"]; len(g) > 0 {
		gc := medianOf(g, func(r TimeRaw) float64 { return r.CPUms / r.WindowMs })
		lc := medianOf(lv, func(r TimeRaw) float64 { return r.CPUms / r.WindowMs })
		fmt.Fprintf(w, "| CPU, 10,000 pending timeouts, otherwise idle | %.1f%% of a core | libvirt %.1f%% | %s | ≤10%% of libvirt's | %s |\n",
			100*gc, 100*lc, ratio(gc, lc), verdict(gc <= 0.10*lc, lc > 0))
	}
	if m := raw.Memory; m != nil {
		fmt.Fprintf(w, "| memory per fd registration (Go heap) | %.0f B, %.1f allocs | | | | |\n", m.FDBytes, m.FDAllocs)
		fmt.Fprintf(w, "| memory per timeout registration (Go heap) | %.0f B, %.1f allocs | | | | |\n", m.TimeoutBytes, m.TimeoutAllocs)
		fmt.Fprintf(w, "| memory per ctx: libxl.Ctx + Binding (Go heap) | %.0f B, %.0f allocs | | | | |\n", m.CtxBytes, m.CtxAllocs)
	}
	if x := raw.Xen; x != nil {
		if x.Error != "" {
			fmt.Fprintf(w, "| Xen under QEMU: create, destroy | not measured: %s | | | ≤1.05× | n/a |\n", x.Error)
		} else {
			gc, xc := median(x.GoxlCreateMS), median(x.XLCreateMS)
			gd, xd := median(x.GoxlDestroyMS), median(x.XLDestroyMS)
			fmt.Fprintf(w, "| Xen: PV create→running, median of %d | %.0f ms | xl create %.0f ms | %s | ≤1.05× | %s |\n",
				len(x.GoxlCreateMS), gc, xc, ratio(gc, xc), verdict(gc <= 1.05*xc, gc > 0 && xc > 0))
			fmt.Fprintf(w, "| Xen: destroy→death, median of %d | %.0f ms | xl destroy %.0f ms | %s | ≤1.05× | %s |\n",
				len(x.GoxlDestroyMS), gd, xd, ratio(gd, xd), verdict(gd <= 1.05*xd, gd > 0 && xd > 0))
			if len(x.LibCreateMS) > 0 {
				lc, ld := median(x.LibCreateMS), median(x.LibDestroyMS)
				fmt.Fprintf(w, "| Xen: PV create→running through the library (daemon, ctx open), median of %d | %.0f ms | xl create %.0f ms | %s | ≤1.05× | %s |\n",
					len(x.LibCreateMS), lc, xc, ratio(lc, xc), verdict(lc <= 1.05*xc, lc > 0 && xc > 0))
				fmt.Fprintf(w, "| Xen: destroy→death through the library (daemon, ctx open), median of %d | %.0f ms | xl destroy %.0f ms | %s | ≤1.05× | %s |\n",
					len(x.LibDestroyMS), ld, xd, ratio(ld, xd), verdict(ld <= 1.05*xd, ld > 0 && xd > 0))
			}
		}
	}

	writeScale(w, raw.Scale)
	writeVerbs(w, raw.Verbs)

	// The dispatch matrix: every implementation as a ratio to the C floor.
	names := []string{}
	for _, im := range bench.Impls() {
		if im.Dispatch != nil && im.Name != "c-epoll" {
			names = append(names, im.Name)
		}
	}
	for _, kind := range []struct {
		what string
		get  func(*Raw, int, int, string) float64
	}{{"process CPU time", dispatchMedian}, {"wall time", dispatchMedianWall}} {
		fmt.Fprintf(w, "\nDispatch, %s per event as a ratio to the C epoll floor (medians of %d interleaved runs):\n\n", kind.what, *reps)
		fmt.Fprintf(w, "| N | active | c-epoll | %s |\n|---|---|---|%s\n", strings.Join(names, " | "), strings.Repeat("---|", len(names)))
		for _, s := range bench.Shapes {
			c := kind.get(raw, s.N, s.K, "c-epoll")
			cells := make([]string, len(names))
			for i, n := range names {
				cells[i] = ratio(kind.get(raw, s.N, s.K, n), c)
			}
			fmt.Fprintf(w, "| %d | %d | %s | %s |\n", s.N, s.K, ns(c), strings.Join(cells, " | "))
		}
	}
	fmt.Fprintf(w, "\n%d cpus, %s, Linux %s, %s, load average at start %s, at the end %s.\n",
		raw.Machine.NProc, raw.Machine.CPU, raw.Machine.Kernel, raw.Machine.Go, raw.Machine.Load, bench.ThisMachine().Load)
	for _, n := range raw.Notes {
		fmt.Fprintf(w, "\nNote: %s\n", n)
	}
}

// writeScale prints the daemon at Small and at Large domains, and the
// Large÷Small ratios of what must not grow per domain or per event.
func writeScale(w io.Writer, sc *bench.ScaleResult) {
	if sc == nil || len(sc.Sides) != 2 {
		return
	}
	a, b := sc.Sides[0], sc.Sides[1]
	m := bench.MedianF
	fmt.Fprintf(w, "\nThe daemon on the contract model's fake domain table, %d against %d domains (one child process per daemon; medians of %d interleaved repetitions):\n\n",
		b.N, a.N, sc.Spec.Reps)
	fmt.Fprintf(w, "| measurement | %d domains | %d domains | %d÷%d | target | |\n|---|---|---|---|---|---|\n", a.N, b.N, b.N, a.N)
	perDom := (b.HeapBytes - a.HeapBytes) / float64(b.N-a.N)
	perObj := (b.HeapObjects - a.HeapObjects) / float64(b.N-a.N)
	perRSS := (b.RSSBytes - a.RSSBytes) / float64(b.N-a.N)
	fmt.Fprintf(w, "| Go heap after GC | %.1f MB | %.1f MB | per domain: %.1f KB, %.0f objects | | |\n", a.HeapBytes/1e6, b.HeapBytes/1e6, perDom/1e3, perObj)
	fmt.Fprintf(w, "| RSS (the model's C memory included) | %.1f MB | %.1f MB | per domain: %.1f KB | | |\n", a.RSSBytes/1e6, b.RSSBytes/1e6, perRSS/1e3)
	fmt.Fprintf(w, "| CPU at idle (resync every 5 s, the default) | %.2f%% of a core | %.2f%% | %s | | |\n",
		100*m(a.IdleCPU), 100*m(b.IdleCPU), ratio(m(b.IdleCPU), m(a.IdleCPU)))
	fmt.Fprintf(w, "| CPU during resync (resync every %v) | %.2f%% of a core | %.2f%% | %s | | |\n",
		sc.Spec.Resync, 100*m(a.ResyncCPU), 100*m(b.ResyncCPU), ratio(m(b.ResyncCPU), m(a.ResyncCPU)))
	per := func(s bench.ScaleSide) float64 {
		return (m(s.ResyncCPU) - m(s.IdleCPU)) * sc.Spec.Resync.Seconds() / (1 - sc.Spec.Resync.Seconds()/5) * 1e6
	}
	fmt.Fprintf(w, "| … CPU per resync (the difference, per resync) | %.0f µs | %.0f µs | %s (per domain: %.2f µs) | | |\n",
		per(a), per(b), ratio(per(b), per(a)), per(b)/float64(b.N))
	fmt.Fprintf(w, "| event latency p50: client sends pause/unpause → its event arrives on a subscription | %s | %s | %s | | |\n",
		ns(1e3*m(a.EventP50us)), ns(1e3*m(b.EventP50us)), ratio(m(b.EventP50us), m(a.EventP50us)))
	fmt.Fprintf(w, "| event latency p99, same | %s | %s | %s | | |\n",
		ns(1e3*m(a.EventP99us)), ns(1e3*m(b.EventP99us)), ratio(m(b.EventP99us), m(a.EventP99us)))
	fmt.Fprintf(w, "| … delivery alone p99: driver publishes → subscriber reads | %s | %s | %s | | |\n",
		ns(1e3*m(a.DeliverP99us)), ns(1e3*m(b.DeliverP99us)), ratio(m(b.DeliverP99us), m(a.DeliverP99us)))
	ca, cb := m(a.CPUPerEventUs), m(b.CPUPerEventUs)
	fmt.Fprintf(w, "| daemon CPU per event (one pause/unpause request + its event to one subscriber) | %s | %s | %s | must not grow: ≤1.25× | %s |\n",
		ns(1e3*ca), ns(1e3*cb), ratio(cb, ca), verdict(cb <= 1.25*ca, ca > 0 && cb > 0))
	fmt.Fprintf(w, "| `list` through the daemon's client (in-process) | %.2f ms | %.2f ms | %s | | |\n",
		m(a.ListClientMs), m(b.ListClientMs), ratio(m(b.ListClientMs), m(a.ListClientMs)))
	if len(a.ListCLIMs) > 0 {
		fmt.Fprintf(w, "| `goxl list` through the daemon, whole process | %.1f ms | %.1f ms | %s | | |\n",
			m(a.ListCLIMs), m(b.ListCLIMs), ratio(m(b.ListCLIMs), m(a.ListCLIMs)))
	}
	if a.Lost+b.Lost > 0 || sc.StopHangs > 0 {
		fmt.Fprintf(w, "\nEvents not received within 10 s: %d (%d domains), %d (%d domains). Daemons whose Stop hung (killed): %d.\n",
			a.Lost, a.N, b.Lost, b.N, sc.StopHangs)
	}
}

// writeVerbs prints every CLI verb through the daemon and in-process
// against xl, whole processes on one boot (xenbench -verbs).
func writeVerbs(w io.Writer, v map[string]map[string][]float64) {
	if v == nil {
		return
	}
	fmt.Fprintf(w, "\nEvery CLI verb as a whole process on real Xen under QEMU, one boot, interleaved (medians; the daemon already running):\n\n")
	fmt.Fprintf(w, "| verb | goxl via daemon | goxl direct (in-process) | xl | daemon ÷ xl | direct ÷ xl | target daemon ≤1.0× | |\n|---|---|---|---|---|---|---|---|\n")
	for _, verb := range []string{"list", "create", "destroy", "shutdown -w", "pause", "unpause", "save", "restore"} {
		r := v[verb]
		d, di, x := median(r["daemon"]), median(r["direct"]), median(r["xl"])
		fmt.Fprintf(w, "| %s | %.0f ms (n=%d) | %.0f ms (n=%d) | %.0f ms (n=%d) | %s | %s | ≤1.0× | %s |\n",
			verb, d, len(r["daemon"]), di, len(r["direct"]), x, len(r["xl"]), ratio(d, x), ratio(di, x), verdict(d <= x, d > 0 && x > 0))
	}
}

// writePlot writes dispatch.dat (ns/event per N, active=1 and active=100)
// and plot.gp, a gnuplot script that renders dispatch.png from it.
func writePlot(dir string, raw *Raw) error {
	impls := []string{"c-epoll", "floor", "goxl", "libvirt", "libvirt+model"}
	var b strings.Builder
	fmt.Fprintf(&b, "# process CPU ns per delivered event (medians); columns: N %s\n", strings.Join(impls, " "))
	for i, k := range []int{1, 100} { // gnuplot index 0: active=1, index 1: active=100
		if i > 0 {
			b.WriteString("\n\n")
		}
		fmt.Fprintf(&b, "# active=%d\n", k)
		for _, s := range bench.Shapes {
			if s.K != k {
				continue
			}
			fmt.Fprintf(&b, "%d", s.N)
			for _, im := range impls {
				if v := dispatchMedian(raw, s.N, s.K, im); v == 0 {
					b.WriteString(" NaN")
				} else {
					fmt.Fprintf(&b, " %.1f", v)
				}
			}
			b.WriteString("\n")
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "dispatch.dat"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	gp := `set terminal pngcairo size 900,560 font "DejaVu Sans,11"
set output "dispatch.png"
set title "Cost per delivered fd event vs registered eventfds (one dispatcher thread)"
set xlabel "registered eventfds (log scale)"
set ylabel "process CPU ns per event (log scale)"
set logscale xy
set xrange [6:16000]
set grid xtics ytics mytics
set key top left
set style data linespoints
f = "dispatch.dat"
plot f index 0 using 1:2 title "C epoll floor, 1 active" lw 2 pt 7 lc rgb "#777777", \
     f index 0 using 1:3 title "Go floor (epoll + Go→C + C→Go), 1 active" lw 2 pt 5 lc rgb "#2b8cbe", \
     f index 0 using 1:4 title "goxl (loop + bridge + model as libxl), 1 active" lw 2 pt 9 lc rgb "#31a354", \
     f index 0 using 1:5 title "libvirt default event loop, empty callback, 1 active" lw 2 pt 11 lc rgb "#de2d26", \
     f index 0 using 1:6 title "libvirt loop driving the model (same work as goxl), 1 active" lw 2 pt 13 lc rgb "#756bb1", \
     f index 1 using 1:4 title "goxl, 100 active" lw 1 dt 2 pt 8 lc rgb "#31a354", \
     f index 1 using 1:5 title "libvirt, 100 active" lw 1 dt 2 pt 10 lc rgb "#de2d26"
`
	return os.WriteFile(filepath.Join(dir, "plot.gp"), []byte(gp), 0o644)
}
