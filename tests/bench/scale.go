//go:build libxlmodel

package bench

// Scale: the goxl daemon (internal/daemon, its socket API and its
// driver.Domains) on the contract model's fake domain table, with few
// domains and with many, side by side. Each daemon runs in a child
// process of its own (so that its CPU time and memory are its own): the
// child opens the daemon on the model, creates its domains through the
// daemon's client like `goxl create` does, and then only answers the
// parent's "heap" requests on stdin. The parent measures from outside:
// the child's CPU time (/proc/PID/task/*/schedstat), its Go heap after a
// GC, its RSS, event latency and CPU per event through the socket, and
// `goxl list` through the daemon's client and as a whole CLI process.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/goxl/goxl/internal/daemon"
	"github.com/goxl/goxl/libxl"
)

func init() {
	RunScale = runScale
	scaleChildMain = scaleChild
}

func scaleChild(spec string) error {
	parts := strings.Split(spec, ",")
	if len(parts) != 3 {
		return fmt.Errorf("bad %s=%q", scaleChildEnv, spec)
	}
	n, err := strconv.Atoi(parts[0])
	if err != nil {
		return err
	}
	resync, err := time.ParseDuration(parts[2])
	if err != nil {
		return err
	}
	dir := parts[1]
	d, err := daemon.Open(daemon.Options{
		Socket: filepath.Join(dir, "d.sock"), OwnerDir: filepath.Join(dir, "owners"),
		AllowedUIDs: []uint32{uint32(os.Getuid())}, SharedCtx: true, ResyncInterval: resync,
		StopTimeout: 30 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		EventLog: 1 << 16,
	})
	if err != nil {
		return err
	}
	defer d.Stop()
	c, err := daemon.Dial(d.Socket())
	if err != nil {
		return err
	}
	if err := createDomains(c, n); err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "READY %s\n", d.Socket())
	out.Flush()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "heap":
			runtime.GC()
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			fmt.Fprintf(out, "HEAP %d %d\n", ms.HeapAlloc, ms.HeapObjects)
			out.Flush()
		case "quit":
			return nil
		}
	}
	return nil
}

// createDomains creates n domains through the daemon, four at a time.
func createDomains(c *daemon.Client, n int) error {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				cfg, err := daemon.EncodeConfig(&libxl.DomainConfig{Name: fmt.Sprintf("scale%04d", i), MemoryMB: 64, VCPUs: 1, Kernel: "/k"})
				if err == nil {
					err = c.Do(context.Background(), daemon.Request{Op: daemon.OpCreate, Config: cfg}, nil)
				}
				if err != nil {
					errs <- fmt.Errorf("create %d: %w", i, err)
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	return <-errs
}

// scaleProc is one child daemon, seen from the parent.
type scaleProc struct {
	n      int
	resync time.Duration
	dir    string
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	client *daemon.Client
	domids []uint32
}

func startScaleProc(n int, resync time.Duration) (*scaleProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "goxl-scale-")
	if err != nil {
		return nil, err
	}
	p := &scaleProc{n: n, resync: resync, dir: dir}
	p.cmd = exec.Command(exe)
	p.cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d,%s,%s", scaleChildEnv, n, dir, resync))
	p.cmd.Stderr = os.Stderr
	if p.in, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.out = bufio.NewScanner(stdout)
	if err := p.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	line, err := p.line()
	if err != nil || !strings.HasPrefix(line, "READY ") {
		p.stop()
		return nil, fmt.Errorf("scale child (%d domains): %q %v", n, line, err)
	}
	p.client = &daemon.Client{Socket: strings.TrimPrefix(line, "READY ")}
	var list []libxl.DomainInfo
	if err := p.client.Do(context.Background(), daemon.Request{Op: daemon.OpList}, &list); err != nil {
		p.stop()
		return nil, err
	}
	for _, info := range list {
		if info.DomID != 0 {
			p.domids = append(p.domids, info.DomID)
		}
	}
	if len(p.domids) != n {
		p.stop()
		return nil, fmt.Errorf("scale child: %d domains listed, want %d", len(p.domids), n)
	}
	return p, nil
}

func (p *scaleProc) line() (string, error) {
	if p.out.Scan() {
		return p.out.Text(), nil
	}
	if err := p.out.Err(); err != nil {
		return "", err
	}
	return "", io.ErrUnexpectedEOF
}

// stopHangs counts child daemons that did not stop within stopWait
// (their Stop hung); they are killed, which the model's fake domains
// survive harmlessly.
var stopHangs int

const stopWait = 15 * time.Second

func (p *scaleProc) stop() {
	if p.in != nil {
		fmt.Fprintln(p.in, "quit")
		p.in.Close()
	}
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(stopWait):
		// SIGQUIT makes the Go runtime print every goroutine's stack to
		// the child's stderr (ours): where the stop hung.
		stopHangs++
		fmt.Fprintf(os.Stderr, "scale: the daemon with %d domains did not stop within %v; stacks follow, then it is killed\n", p.n, stopWait)
		p.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
			return
		case <-time.After(2 * time.Second):
		}
		p.cmd.Process.Kill()
		<-done
	}
	os.RemoveAll(p.dir)
}

// cpu is the child's CPU time so far: the sum of its threads' run time.
func (p *scaleProc) cpu() (time.Duration, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", p.cmd.Process.Pid, t.Name()))
		if err != nil {
			continue // a thread that just exited
		}
		f := strings.Fields(string(b))
		if len(f) > 0 {
			v, _ := strconv.ParseInt(f[0], 10, 64)
			sum += v
		}
	}
	return time.Duration(sum), nil
}

func (p *scaleProc) heap() (bytes, objects float64, err error) {
	fmt.Fprintln(p.in, "heap")
	line, err := p.line()
	if err != nil {
		return 0, 0, err
	}
	var b, o uint64
	if _, err := fmt.Sscanf(line, "HEAP %d %d", &b, &o); err != nil {
		return 0, 0, fmt.Errorf("scale child: %q: %w", line, err)
	}
	return float64(b), float64(o), nil
}

func (p *scaleProc) rss() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb * 1024
		}
	}
	return 0
}

// runScale starts four child daemons (Small and Large, each with the
// daemon's default resync period and with spec.Resync), and measures
// them interleaved.
func runScale(spec ScaleSpec, logf func(string, ...any)) (*ScaleResult, error) {
	res := &ScaleResult{Spec: spec, Sides: []ScaleSide{{N: spec.Small, Events: spec.Events}, {N: spec.Large, Events: spec.Events}}}
	var procs []*scaleProc
	h0 := stopHangs
	defer func() {
		for _, p := range procs {
			p.stop()
		}
		res.StopHangs = stopHangs - h0
	}()
	idle := make([]*scaleProc, 2)
	busy := make([]*scaleProc, 2)
	for i, n := range []int{spec.Small, spec.Large} {
		t0 := time.Now()
		p, err := startScaleProc(n, 0) // 0: the daemon's default period
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
		idle[i] = p
		if p2, err := startScaleProc(n, spec.Resync); err != nil {
			return nil, err
		} else {
			procs = append(procs, p2)
			busy[i] = p2
		}
		logf("scale: two daemons with %d domains each up in %v", n, time.Since(t0).Round(time.Millisecond))
	}
	for i, p := range idle {
		b, o, err := p.heap()
		if err != nil {
			return nil, err
		}
		res.Sides[i].HeapBytes, res.Sides[i].HeapObjects, res.Sides[i].RSSBytes = b, o, p.rss()
	}
	for r := 0; r < spec.Reps; r++ {
		// CPU: one window for all four daemons at once, nothing else
		// running in this process meanwhile.
		all := []*scaleProc{idle[0], idle[1], busy[0], busy[1]}
		c0 := make([]time.Duration, 4)
		for i, p := range all {
			c0[i], _ = p.cpu()
		}
		t0 := time.Now()
		time.Sleep(spec.Window)
		el := time.Since(t0).Seconds()
		for i, p := range all {
			c1, err := p.cpu()
			if err != nil {
				return nil, err
			}
			v := (c1 - c0[i]).Seconds() / el
			if i < 2 {
				res.Sides[i].IdleCPU = append(res.Sides[i].IdleCPU, v)
			} else {
				res.Sides[i-2].ResyncCPU = append(res.Sides[i-2].ResyncCPU, v)
			}
		}
		order := []int{0, 1}
		if r%2 == 1 {
			order = []int{1, 0}
		}
		for _, i := range order {
			if err := eventBurst(idle[i], spec.Events, &res.Sides[i]); err != nil {
				return nil, err
			}
		}
		for l := 0; l < spec.Lists; l++ {
			for _, i := range order {
				if err := timeList(idle[i], spec.GoxlBin, &res.Sides[i]); err != nil {
					return nil, err
				}
			}
		}
		for i := range res.Sides {
			s := &res.Sides[i]
			logf("scale: rep %d, %d domains: idle %.2f%%, resync every %v %.2f%% of a core; event p99 %.0f µs, %.1f µs CPU/event; list %.1f ms (client), %.1f ms (goxl CLI)",
				r, s.N, 100*last(s.IdleCPU), spec.Resync, 100*last(s.ResyncCPU), last(s.EventP99us), last(s.CPUPerEventUs),
				last(s.ListClientMs), last(s.ListCLIMs))
		}
	}
	return res, nil
}

func last(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return v[len(v)-1]
}

type arrival struct {
	ev daemon.Event
	at time.Time
}

// eventBurst pauses and unpauses domains in turn (every domain is used),
// one operation at a time, each followed by waiting for its event on a
// subscription opened before the burst.
func eventBurst(p *scaleProc, n int, side *ScaleSide) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	arrivals := make(chan arrival, 4*n+64)
	ready := make(chan struct{})
	sub := &daemon.Client{Socket: p.client.Socket, Progress: func(string) {
		select {
		case <-ready:
		default:
			close(ready)
		}
	}}
	subDone := make(chan error, 1)
	go func() {
		_, err := sub.Call(ctx, daemon.Request{Op: daemon.OpEvents}, func(e daemon.Event) bool {
			select {
			case arrivals <- arrival{ev: e, at: time.Now()}:
			default:
			}
			return true
		})
		subDone <- err
	}()
	select {
	case <-ready:
	case err := <-subDone:
		return fmt.Errorf("event subscription: %v", err)
	case <-time.After(30 * time.Second):
		return errors.New("event subscription: no answer")
	}
	paused := map[uint32]bool{}
	var e2e, deliver []time.Duration
	lost := 0
	c0, err := p.cpu()
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		domid := p.domids[i%len(p.domids)]
		op, kind := daemon.OpPause, "paused"
		if paused[domid] {
			op, kind = daemon.OpUnpause, "unpaused"
		}
		t0 := time.Now()
		if err := p.client.Do(ctx, daemon.Request{Op: op, Dom: strconv.FormatUint(uint64(domid), 10)}, nil); err != nil {
			return fmt.Errorf("%s %d: %w", op, domid, err)
		}
		paused[domid] = !paused[domid]
		timeout := time.After(10 * time.Second)
	wait:
		for {
			select {
			case a := <-arrivals:
				if a.ev.DomID == domid && a.ev.Kind == kind {
					e2e = append(e2e, a.at.Sub(t0))
					deliver = append(deliver, a.at.Sub(a.ev.Time))
					break wait
				}
			case <-timeout:
				lost++
				break wait
			}
		}
	}
	c1, err := p.cpu()
	if err != nil {
		return err
	}
	// Leave every domain running again, untimed.
	for domid, isPaused := range paused {
		if isPaused {
			p.client.Do(ctx, daemon.Request{Op: daemon.OpUnpause, Dom: strconv.FormatUint(uint64(domid), 10)}, nil)
		}
	}
	cancel()
	<-subDone
	side.Lost += lost
	if len(e2e) == 0 {
		return fmt.Errorf("scale: no event arrived of %d", n)
	}
	SortDurations(e2e)
	SortDurations(deliver)
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	side.EventP50us = append(side.EventP50us, us(Percentile(e2e, 0.5)))
	side.EventP99us = append(side.EventP99us, us(Percentile(e2e, 0.99)))
	side.DeliverP99us = append(side.DeliverP99us, us(Percentile(deliver, 0.99)))
	side.CPUPerEventUs = append(side.CPUPerEventUs, us(c1-c0)/float64(len(e2e)))
	return nil
}

// timeList times one list through the daemon's client and one `goxl
// list` (GOXL_SOCKET pointing at the child's daemon), checking that
// each shows every domain.
func timeList(p *scaleProc, goxl string, side *ScaleSide) error {
	t0 := time.Now()
	var list []libxl.DomainInfo
	if err := p.client.Do(context.Background(), daemon.Request{Op: daemon.OpList}, &list); err != nil {
		return err
	}
	side.ListClientMs = append(side.ListClientMs, float64(time.Since(t0).Microseconds())/1e3)
	if len(list) != p.n+1 {
		return fmt.Errorf("list through the client: %d entries, want %d", len(list), p.n+1)
	}
	if goxl == "" {
		return nil
	}
	cmd := exec.Command(goxl, "list")
	cmd.Env = append(os.Environ(), "GOXL_SOCKET="+p.client.Socket)
	t0 = time.Now()
	out, err := cmd.CombinedOutput()
	side.ListCLIMs = append(side.ListCLIMs, float64(time.Since(t0).Microseconds())/1e3)
	if err != nil {
		return fmt.Errorf("goxl list: %v\n%s", err, out)
	}
	// The model's domains have no names in `goxl list` (libxl reads
	// them from xenstore): count the rows, Domain-0 and the header
	// included.
	if got := len(strings.Split(strings.TrimSpace(string(out)), "\n")); got != p.n+2 {
		return fmt.Errorf("goxl list through the daemon showed %d rows for %d domains:\n%s", got, p.n, out)
	}
	return nil
}
