//go:build libxlmodel

package bench

import (
	"fmt"
	"io"
	"log/slog"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/goxl/goxl/driver/eventloop"
	"github.com/goxl/goxl/internal/libxlmodel"
	"github.com/goxl/goxl/libxl"
)

func init() {
	register(&Impl{Name: "floor+model", rank: 30,
		Desc:     "floor, with the Go->C call being libxl_osevent_occurred_fd on the model and the C->Go call its no-op hook",
		Dispatch: floorModelDispatch})
	register(&Impl{Name: "goxl", rank: 50,
		Desc:     "driver/eventloop + libxl.Ctx.OccurredFD + the model + its no-op fd_modify hook through the C bridge",
		Dispatch: goxlDispatch, Timeouts: goxlTimeouts})
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// GoxlCtx is one libxl.Ctx on the model, bound to a fresh loop.
type GoxlCtx struct {
	Loop    *eventloop.Loop
	Binding *eventloop.Binding
	Ctx     *libxl.Ctx
	Bench   *libxlmodel.Bench
}

// NewGoxlCtx makes a loop, a binding, a ctx and a bench on it.
func NewGoxlCtx(hook libxlmodel.BenchFDHook) (*GoxlCtx, error) {
	l, err := eventloop.New(eventloop.Options{})
	if err != nil {
		return nil, err
	}
	bd := l.Attach(nil)
	ctx, err := libxl.New(libxl.Options{Hooks: bd, Logger: quiet})
	if err != nil {
		bd.Detach()
		l.Close()
		return nil, err
	}
	b, err := libxlmodel.NewBench(ctx.Raw(), hook)
	if err != nil {
		ctx.Close()
		l.Close()
		return nil, err
	}
	return &GoxlCtx{Loop: l, Binding: bd, Ctx: ctx, Bench: b}, nil
}

// Close tears everything down in goxl's order.
func (g *GoxlCtx) Close() error {
	g.Bench.StopRearm()
	// libxl requires no timeout armed at libxl_ctx_free: cancel the
	// bench's timeouts and let the loop deliver the fire-now ones first.
	if err := g.Bench.RemoveTimeouts(); err != nil {
		return err
	}
	for deadline := time.Now().Add(10 * time.Second); g.Bench.TimeoutsOwed() > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("goxl: %d cancelled timeouts not delivered within 10 s", g.Bench.TimeoutsOwed())
		}
	}
	err := g.Ctx.Close()
	g.Bench.Free()
	if cerr := g.Loop.Close(); err == nil {
		err = cerr
	}
	return err
}

// doneFD is a blocking eventfd that bench.c writes to at its target.
type doneFD int

func newDoneFD() (doneFD, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	return doneFD(fd), err
}

func (d doneFD) wait() {
	var buf [8]byte
	for {
		if _, err := unix.Read(int(d), buf[:]); err != unix.EINTR {
			return
		}
	}
}

func (d doneFD) close() { unix.Close(int(d)) }

// runTo times the next n fd events the bench sees.
func runTo(b *libxlmodel.Bench, done doneFD, n uint64) Result {
	sw := startWatch()
	b.SetTarget(b.FDEvents()+n, int(done))
	done.wait()
	return sw.result(n)
}

func goxlDispatch(fds []int, active []int, events uint64) (Result, error) {
	g, err := NewGoxlCtx(libxlmodel.BenchNoopHook)
	if err != nil {
		return Result{}, err
	}
	done, err := newDoneFD()
	if err != nil {
		g.Close()
		return Result{}, err
	}
	defer done.close()
	if _, err := g.Bench.AddFDs(fds); err != nil {
		g.Close()
		return Result{}, err
	}
	runTo(g.Bench, done, warmup(events))
	res := runTo(g.Bench, done, events)
	Drain(fds, active)
	g.Bench.RemoveFDs()
	if err := g.Close(); err != nil {
		return Result{}, err
	}
	if v := libxlmodel.Counters().ViolationsTotal; v != 0 {
		return Result{}, fmt.Errorf("goxl: the model saw %d contract violations", v)
	}
	return res, nil
}

func floorModelDispatch(fds []int, _ []int, events uint64) (Result, error) {
	ctx, err := libxlmodel.NewBenchFloorCtx()
	if err != nil {
		return Result{}, err
	}
	defer libxlmodel.FreeCtx(ctx)
	b, err := libxlmodel.NewBench(ctx, libxlmodel.BenchNoopHook)
	if err != nil {
		return Result{}, err
	}
	defer b.Free()
	cookies, err := b.AddFDs(fds)
	if err != nil {
		return Result{}, err
	}
	defer b.RemoveFDs()
	noops0 := libxlmodel.BenchNoops()
	var calls uint64
	r, err := EpollLoop(fds, events, func(i int) uint64 {
		libxlmodel.OccurredFD(ctx, cookies[i], fds[i])
		calls++
		return 1
	})
	if err != nil {
		return r, err
	}
	if got := b.FDEvents(); got != calls {
		return r, fmt.Errorf("floor+model: the model saw %d live deliveries of %d", got, calls)
	}
	if got := libxlmodel.BenchNoops() - noops0; got != calls {
		return r, fmt.Errorf("floor+model: %d no-op hooks for %d deliveries", got, calls)
	}
	return r, nil
}

func goxlTimeouts(spec TimeoutSpec, busy []int, active []int) (TimeoutResult, error) {
	g, err := NewGoxlCtx(libxlmodel.BenchNoopHook)
	if err != nil {
		return TimeoutResult{}, err
	}
	closed := false
	defer func() {
		if !closed {
			g.Close()
		}
	}()
	start := time.Now()
	const lateCap = 1 << 20
	if err := g.Bench.AddTimeouts(InitialDeadlines(spec, start), spec.RearmMin, spec.RearmMax, lateCap); err != nil {
		return TimeoutResult{}, err
	}
	if len(busy) > 0 {
		if _, err := g.Bench.AddFDs(busy); err != nil {
			return TimeoutResult{}, err
		}
	}
	time.Sleep(time.Until(start.Add(spec.Lead)))
	k0, fd0, cpu0, t0 := g.Bench.TimeoutsFired(), g.Bench.FDEvents(), CPUTime(), time.Now()
	time.Sleep(spec.Window)
	k1, fd1, cpu1, t1 := g.Bench.TimeoutsFired(), g.Bench.FDEvents(), CPUTime(), time.Now()
	late := g.Bench.Lateness()
	if k1 > lateCap || int(k1) > len(late) {
		return TimeoutResult{}, fmt.Errorf("goxl: %d lateness samples, %d kept", k1, len(late))
	}
	res := TimeoutResult{Late: append([]time.Duration(nil), late[k0:k1]...), Fired: k1 - k0,
		CPU: cpu1 - cpu0, Window: t1.Sub(t0), FDEvents: fd1 - fd0}
	Drain(busy, active)
	g.Bench.RemoveFDs()
	closed = true
	if err := g.Close(); err != nil {
		return res, err
	}
	if v := libxlmodel.Counters().ViolationsTotal; v != 0 {
		return res, fmt.Errorf("goxl: the model saw %d contract violations", v)
	}
	return res, nil
}

var _ = unsafe.Pointer(nil)

func init() { MeasureMemory = goxlMemory }

// goxlMemory measures the Go heap that registrations and ctxs cost (the
// model's C memory, standing in for libxl's, is not counted).
func goxlMemory() (Memory, error) {
	const n, nctx = 10000, 100
	m := Memory{N: n, Ctxs: nctx}
	fds, err := EventFDs(n)
	if err != nil {
		return m, err
	}
	defer CloseFDs(fds)

	g, err := NewGoxlCtx(libxlmodel.BenchCountOnly)
	if err != nil {
		return m, err
	}
	a := snapHeap()
	cookies, err := g.Bench.AddFDs(fds)
	if err != nil {
		g.Close()
		return m, err
	}
	cookies = nil
	b := snapHeap()
	m.FDBytes, m.FDAllocs = perItem(a, b, n)
	far := make([]time.Time, n)
	for i := range far {
		far[i] = time.Now().Add(time.Hour + time.Duration(i)*time.Millisecond)
	}
	a = snapHeap()
	if err := g.Bench.AddTimeouts(far, 0, 0, 0); err != nil {
		g.Close()
		return m, err
	}
	b = snapHeap()
	m.TimeoutBytes, m.TimeoutAllocs = perItem(a, b, n)
	far = nil
	g.Bench.RemoveFDs()
	if err := g.Close(); err != nil {
		return m, err
	}

	l, err := eventloop.New(eventloop.Options{})
	if err != nil {
		return m, err
	}
	defer l.Close()
	ctxs := make([]*libxl.Ctx, 0, nctx)
	a = snapHeap()
	for i := 0; i < nctx; i++ {
		c, err := libxl.New(libxl.Options{Hooks: l.Attach(nil), Logger: quiet})
		if err != nil {
			return m, err
		}
		ctxs = append(ctxs, c)
	}
	b = snapHeap()
	m.CtxBytes, m.CtxAllocs = perItem(a, b, nctx)
	for _, c := range ctxs {
		if err := c.Close(); err != nil {
			return m, err
		}
	}
	_ = cookies
	return m, nil
}
