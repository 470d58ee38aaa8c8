//go:build libxlmodel

package driver

// These tests run the whole stack (bridge, libxl.Ctx, the loop) against
// the contract model of libxl (internal/libxlmodel), in each of its
// modes. They are the driver's evidence for the two races: the model
// reports any delivery after deregistration, any second or missing
// timeout, and any call that reaches a freed ctx.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/goxl/goxl"
	"github.com/goxl/goxl/driver/eventloop"
	"github.com/goxl/goxl/internal/leakcheck"
	"github.com/goxl/goxl/internal/libxlmodel"
	"github.com/goxl/goxl/internal/osevent"
	"github.com/goxl/goxl/libxl"
)

// policyFor is how a driver opts in on each model mode.
func policyFor(m libxlmodel.Mode) libxl.Xen42Policy {
	switch m {
	case libxlmodel.Mode42Unpatched, libxlmodel.Mode420Unpatched:
		return libxl.Xen42Serialised
	case libxlmodel.Mode42Patched:
		return libxl.Xen42Refuse // the default: the series' marker is detected
	}
	return libxl.Xen42Refuse
}

func requireNoViolations(t *testing.T) {
	t.Helper()
	vs := libxlmodel.Violations()
	if len(vs) == 0 {
		return
	}
	var b strings.Builder
	for i, v := range vs {
		if i == 5 {
			fmt.Fprintf(&b, "... and %d more\n", len(vs)-5)
			break
		}
		b.WriteString(v.String())
		b.WriteString("\n")
	}
	t.Fatalf("the model saw %d contract violations:\n%s", len(vs), b.String())
}

func requireEmptyLoop(t *testing.T, d *Driver) {
	t.Helper()
	s := d.Loop().Stats()
	require.Zero(t, s.FDRegs, "fd registrations left in the loop")
	require.Zero(t, s.Timeouts, "timeouts left in the loop")
	require.Zero(t, s.AlwaysReadyFDs, "always-ready fds left in the loop")
}

func newModelDriver(t *testing.T, m libxlmodel.Mode) *Driver {
	t.Helper()
	libxlmodel.SetDefaultMode(m)
	d, err := New(Options{Xen42: policyFor(m)})
	require.NoError(t, err)
	return d
}

// The setup order is libxl's, enforced by libxl.New: the model flags
// API misuse (events or operations before the hooks are registered).
func TestSetupAndTeardownOrderInEveryMode(t *testing.T) {
	for _, m := range libxlmodel.Modes() {
		t.Run(m.String(), func(t *testing.T) {
			libxlmodel.Reset()
			base := leakcheck.Take()
			d := newModelDriver(t, m)
			c := d.Ctx()
			mode, err := libxlmodel.CtxMode(c.Raw())
			require.NoError(t, err)
			require.Equal(t, m, mode)
			v := c.Version()
			require.Equal(t, 4, v.Major)
			_, err = libxlmodel.Run(c.Raw(), libxlmodel.Workload{Threads: 2, OpsPerThread: 50, Seed: 1})
			require.NoError(t, err)
			require.NoError(t, d.Close())
			requireNoViolations(t)
			cnt := libxlmodel.Counters()
			require.Equal(t, cnt.CtxAllocs, cnt.CtxFrees, "every ctx freed")
			require.NotZero(t, cnt.DeliveriesFD+cnt.DeliveriesTimeout, "the loop delivered nothing")
			base.Check(t, 5*time.Second)
		})
	}
}

func TestPatched42IsDetectedByItsMarker(t *testing.T) {
	libxlmodel.Reset()
	libxlmodel.SetDefaultMode(libxlmodel.Mode42Patched)
	defer libxlmodel.SetDefaultMode(libxlmodel.Mode417)
	d, err := New(Options{})
	require.NoError(t, err)
	require.False(t, d.Ctx().Serialised())
	require.Equal(t, "4.2.1", d.Ctx().Version().String())
	require.NoError(t, d.Close())
}

func TestSafeModeFromTheEnvironment(t *testing.T) {
	t.Setenv("GOXL_LIBXL_SAFE_MODE", "1")
	libxlmodel.Reset()
	libxlmodel.SetDefaultMode(libxlmodel.Mode42Unpatched)
	defer libxlmodel.SetDefaultMode(libxlmodel.Mode417)
	d, err := New(Options{})
	require.NoError(t, err)
	require.True(t, d.Ctx().Serialised())
	require.NoError(t, d.Close())
	requireNoViolations(t)
}

func TestUnpatched42IsRefusedByDefault(t *testing.T) {
	libxlmodel.Reset()
	libxlmodel.SetDefaultMode(libxlmodel.Mode42Unpatched)
	defer libxlmodel.SetDefaultMode(libxlmodel.Mode417)
	base := leakcheck.Take()
	_, err := New(Options{})
	require.ErrorIs(t, err, libxl.ErrUnpatched42)
	require.Contains(t, err.Error(), "xen-patches")
	cnt := libxlmodel.Counters()
	require.Equal(t, cnt.CtxAllocs, cnt.CtxFrees, "the refused ctx was freed")
	requireNoViolations(t)
	base.Check(t, 5*time.Second)
}

// panickingHooks wraps a Binding and panics on chosen registrations.
type panickingHooks struct {
	*eventloop.Binding
	every  int64
	n      atomic.Int64
	panics atomic.Int64
}

func (p *panickingHooks) FDRegister(fd int, ev osevent.PollEvents, f osevent.ForLibxl) (osevent.RegID, error) {
	if p.n.Add(1)%p.every == 0 {
		p.panics.Add(1)
		panic("a bug in a Go hook")
	}
	return p.Binding.FDRegister(fd, ev, f)
}

// A panicking Go hook gives libxl an error code and the process goes on:
// the failed registrations fail their operations, nothing else.
func TestPanickingHookBecomesAnErrorCode(t *testing.T) {
	libxlmodel.Reset()
	libxlmodel.SetDefaultMode(libxlmodel.Mode417)
	quiet := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil))) // the panics are expected
	defer slog.SetDefault(quiet)
	loop, err := eventloop.New(eventloop.Options{})
	require.NoError(t, err)
	defer loop.Close()
	hooks := &panickingHooks{Binding: loop.Attach(nil), every: 7}
	c, err := libxl.New(libxl.Options{Hooks: hooks})
	require.NoError(t, err)

	before := goxl.ReadStats().Panics
	res, err := libxlmodel.Run(c.Raw(), libxlmodel.Workload{
		Threads: 2, OpsPerThread: 100, Seed: 3,
		Mix: map[libxlmodel.OpKind]uint{libxlmodel.OpPipeIn: 1, libxlmodel.OpDualReg: 1},
	})
	require.NoError(t, err)
	require.NoError(t, c.Close())

	require.Greater(t, hooks.panics.Load(), int64(0), "no hook panicked: the test proved nothing")
	require.Equal(t, uint64(hooks.panics.Load()), goxl.ReadStats().Panics-before, "every panic recovered and counted")
	require.NotZero(t, res.OpsFailed, "libxl never saw a hook error")
	require.NotZero(t, res.OpsCompleted, "the process did not go on")
	require.GreaterOrEqual(t, libxlmodel.Counters().HookFailures, uint64(hooks.panics.Load()))
	requireNoViolations(t)
}

// A failing register hook leaves the loop unchanged, and libxl sees the
// error.
func TestFailingRegisterHook(t *testing.T) {
	libxlmodel.Reset()
	libxlmodel.SetDefaultMode(libxlmodel.Mode417)
	var n atomic.Int64
	d, err := New(Options{Loop: eventloop.Options{FailRegister: func(op eventloop.Op, fd int) error {
		// Only registrations: libxl ignores timeout_modify's result, so a
		// loop must never fail a fire-now.
		if op != eventloop.OpFDRegister && op != eventloop.OpTimeoutRegister {
			return nil
		}
		if n.Add(1)%5 == 0 {
			return errors.New("injected")
		}
		return nil
	}}})
	require.NoError(t, err)
	res, err := libxlmodel.Run(d.Ctx().Raw(), libxlmodel.Workload{Threads: 2, OpsPerThread: 200, Seed: 4})
	require.NoError(t, err)
	require.NotZero(t, res.OpsFailed)
	require.NotZero(t, res.OpsCompleted)
	require.NoError(t, d.Close())
	require.Zero(t, res.OpsAbandoned)
	requireNoViolations(t)
}

// blockingSink holds the dispatcher inside a delivery of another binding
// on the same loop until released, so that nothing is delivered meanwhile.
type blockingSink struct {
	entered chan struct{} // one value per delivery
	release chan struct{}
}

func (s *blockingSink) OccurredFD(_ osevent.ForLibxl, fd int, _, _ osevent.PollEvents, _ osevent.Liveness) {
	var b [8]byte
	_, _ = syscall.Read(fd, b[:])
	s.entered <- struct{}{}
	<-s.release
}

func (s *blockingSink) OccurredTimeout(osevent.ForLibxl, osevent.Liveness) {}

// atCtxFree is a slog handler that runs fn when the model logs, from inside
// libxl_ctx_free, that the ctx whose %p is ctx is being freed.
type atCtxFree struct {
	ctx atomic.Value // string
	fn  func()
}

func (h *atCtxFree) Enabled(context.Context, slog.Level) bool { return true }
func (h *atCtxFree) Handle(_ context.Context, r slog.Record) error {
	if want, _ := h.ctx.Load().(string); want != "" && r.Message == "libxlmodel: ctx "+want+" freed" {
		h.fn()
	}
	return nil
}
func (h *atCtxFree) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *atCtxFree) WithGroup(string) slog.Handler      { return h }

// Race 2: a ctx is closed while fire-now timeouts are pending (only the
// fire-now modes have them: 4.17 and 4.2-patched cancel with
// timeout_modify({0,0}), and libxl then owes nothing to etimes but the
// application still owes one delivery). The dispatcher is held inside
// another binding's delivery, so each cancelled timeout is still pending
// when Close runs: all of them are reaped, none is delivered before or
// after libxl_ctx_free, and none is force-fired.
func TestCloseWithFireNowPending(t *testing.T) {
	const pending = 8
	for _, m := range []libxlmodel.Mode{libxlmodel.Mode417, libxlmodel.Mode42Patched} {
		t.Run(m.String(), func(t *testing.T) {
			libxlmodel.Reset()
			defer libxlmodel.SetDefaultMode(libxlmodel.Mode417)
			libxlmodel.SetDefaultMode(m)
			var d *Driver
			var reapedAtFree atomic.Int64
			reapedAtFree.Store(-1)
			freeing := &atCtxFree{fn: func() { reapedAtFree.Store(int64(d.Loop().Stats().Reaped)) }}
			d, err := New(Options{Xen42: policyFor(m), Logger: slog.New(freeing), LogLevel: libxl.LogDebug})
			require.NoError(t, err)
			c, err := d.OpenCtx()
			require.NoError(t, err)
			freeing.ctx.Store(fmt.Sprintf("%p", c.Raw()))

			sink := &blockingSink{entered: make(chan struct{}, 1), release: make(chan struct{})}
			blocker := d.Loop().Attach(sink)
			efd, err := unix.Eventfd(1, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK) // readable at once
			require.NoError(t, err)
			defer unix.Close(efd)
			reg, err := blocker.FDRegister(efd, osevent.PollIn, 1)
			require.NoError(t, err)
			<-sink.entered // the dispatcher is now held

			for i := 0; i < pending; i++ {
				require.NoError(t, c.Call(func(raw unsafe.Pointer) error {
					h, err := libxlmodel.RaceArm(raw, time.Hour)
					if err != nil {
						return err
					}
					ok, err := libxlmodel.RaceCancel(raw, h)
					if err == nil && !ok {
						err = errors.New("not cancelled")
					}
					return err
				}))
			}
			reaped0 := d.Loop().Stats().Reaped
			closed := make(chan error, 1)
			go func() { closed <- c.Close() }()
			select {
			case err := <-closed:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				close(sink.release)
				t.Fatal("Close waited for the dispatcher (held in another binding's delivery)")
			}
			require.Equal(t, int64(reaped0+pending), reapedAtFree.Load(),
				"every pending fire-now timeout reaped before libxl_ctx_free")

			// Let the dispatcher go, and make it complete one more round.
			close(sink.release) // later deliveries pass straight through
			_, err = unix.Write(efd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
			require.NoError(t, err)
			<-sink.entered
			blocker.FDDeregister(efd, reg)
			blocker.Detach()

			rc := libxlmodel.RaceCounters()
			require.Equal(t, uint64(pending), rc.Cancelled)
			require.Zero(t, rc.FireNowDelivered, "a reaped timeout was delivered")
			require.Zero(t, rc.Fired, "a timeout was force-fired")
			require.NoError(t, d.Close())
			requireNoViolations(t) // a delivery after libxl_ctx_free is occurred_after_ctx_free
			requireEmptyLoop(t, d)
		})
	}
}

// The stress run: every mode, concurrent workloads on several ctxs that
// share one loop, at least a million hook events in all, with -race.
func TestStressEveryMode(t *testing.T) {
	// Per mode, so that all modes together make ≥ 1,200,000 events.
	target := uint64(1_200_000/len(libxlmodel.Modes())) + 1
	if testing.Short() {
		target = 20_000
	}
	var total atomic.Uint64
	for _, m := range libxlmodel.Modes() {
		t.Run(m.String(), func(t *testing.T) {
			libxlmodel.Reset()
			base := leakcheck.Take()
			d := newModelDriver(t, m)
			const ctxs = 4
			var wg sync.WaitGroup
			errs := make(chan error, ctxs)
			for i := 0; i < ctxs; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					c, err := d.OpenCtx()
					if err != nil {
						errs <- err
						return
					}
					res, err := libxlmodel.Run(c.Raw(), libxlmodel.Workload{
						Threads: 3, TargetEvents: target / ctxs, Seed: uint64(100 + i),
					})
					if err == nil && (res.OpsAbandoned != 0 || res.DeadlineHit) {
						err = fmt.Errorf("ctx %d: %+v", i, res)
					}
					if cerr := c.Close(); err == nil {
						err = cerr
					}
					total.Add(res.HookEvents)
					errs <- err
				}(i)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			requireEmptyLoop(t, d)
			require.NoError(t, d.Close())
			requireNoViolations(t)
			base.Check(t, 5*time.Second)
		})
	}
	t.Logf("hook events in all modes: %d", total.Load())
	if !testing.Short() {
		require.GreaterOrEqual(t, total.Load(), uint64(1_000_000))
	}
}

// 1,000 short-lived ctxs are opened and closed on one loop while a
// long-lived ctx keeps events flying.
func TestThousandCtxsWhileEventsFly(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 100
	}
	for _, m := range libxlmodel.Modes() {
		t.Run(m.String(), func(t *testing.T) {
			libxlmodel.Reset()
			base := leakcheck.Take()
			d := newModelDriver(t, m)
			stop := make(chan struct{})
			background := make(chan error, 1)
			go func() {
				var err error
				for err == nil {
					select {
					case <-stop:
						background <- nil
						return
					default:
					}
					_, err = libxlmodel.Run(d.Ctx().Raw(), libxlmodel.Workload{Threads: 2, OpsPerThread: 20, Seed: 9})
				}
				background <- err
			}()
			var wg sync.WaitGroup
			sem := make(chan struct{}, 8)
			errs := make(chan error, n)
			for i := 0; i < n; i++ {
				wg.Add(1)
				sem <- struct{}{}
				go func(i int) {
					defer func() { <-sem; wg.Done() }()
					c, err := d.OpenCtx()
					if err != nil {
						errs <- err
						return
					}
					w := libxlmodel.Workload{Threads: 1, OpsPerThread: 3, Seed: uint64(i)}
					if i%3 == 0 {
						w.LeaveFireNowPending = 2
					}
					_, err = libxlmodel.Run(c.Raw(), w)
					errs <- errors.Join(err, c.Close())
				}(i)
			}
			wg.Wait()
			close(stop)
			require.NoError(t, <-background)
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			require.NoError(t, d.Close())
			requireEmptyLoop(t, d)
			requireNoViolations(t)
			cnt := libxlmodel.Counters()
			require.Equal(t, cnt.CtxAllocs, cnt.CtxFrees)
			require.GreaterOrEqual(t, cnt.CtxAllocs, uint64(n+1))
			base.Check(t, 5*time.Second)
		})
	}
}

// closingSink calls Close from inside a delivery, as a careless event
// handler would.
type closingHooks struct {
	*eventloop.Binding
	ctx  atomic.Pointer[libxl.Ctx]
	errs chan error
}

func (h *closingHooks) SetSink(s osevent.Sink) { h.Binding.SetSink(closingSink{s, h}) }

type closingSink struct {
	osevent.Sink
	h *closingHooks
}

func (s closingSink) OccurredFD(f osevent.ForLibxl, fd int, ev, rev osevent.PollEvents, live osevent.Liveness) {
	if c := s.h.ctx.Load(); c != nil {
		select {
		case s.h.errs <- c.Close():
		default:
		}
	}
	s.Sink.OccurredFD(f, fd, ev, rev, live)
}

// Close on the dispatcher would wait for itself; it is refused with a
// typed error and the ctx stays usable.
func TestCloseFromCallbackIsRefused(t *testing.T) {
	libxlmodel.Reset()
	libxlmodel.SetDefaultMode(libxlmodel.Mode417)
	loop, err := eventloop.New(eventloop.Options{})
	require.NoError(t, err)
	defer loop.Close()
	h := &closingHooks{Binding: loop.Attach(nil), errs: make(chan error, 1)}
	c, err := libxl.New(libxl.Options{Hooks: h})
	require.NoError(t, err)
	h.ctx.Store(c)
	_, err = libxlmodel.Run(c.Raw(), libxlmodel.Workload{Threads: 1, OpsPerThread: 5, Seed: 2,
		Mix: map[libxlmodel.OpKind]uint{libxlmodel.OpPipeIn: 1}})
	require.NoError(t, err)
	require.ErrorIs(t, <-h.errs, libxl.ErrInCallback)
	h.ctx.Store(nil)
	require.NoError(t, c.Close())
	requireNoViolations(t)
}

// Close races operations that are being started on the same ctx: each
// operation is either refused with ErrClosed or runs to its end before
// libxl_ctx_free (the model flags a ctx freed with an operation running).
func TestCloseRacesOperations(t *testing.T) {
	libxlmodel.Reset()
	libxlmodel.SetDefaultMode(libxlmodel.Mode417)
	d := newModelDriver(t, libxlmodel.Mode417)
	defer d.Close()
	cfg := &libxl.DomainConfig{Name: "racer", Type: libxl.DomainTypePV, Kernel: "/dev/null", MemoryMB: 64, VCPUs: 1}
	var refused, ran atomic.Int64
	for i := 0; i < 100; i++ {
		c, err := d.OpenCtx()
		require.NoError(t, err)
		errs := make(chan error, 2)
		for g := 0; g < 2; g++ {
			go func() {
				id, err := c.CreateDomain(context.Background(), cfg)
				if err == nil {
					err = c.DestroyDomain(context.Background(), id)
				}
				errs <- err
			}()
		}
		time.Sleep(time.Duration(i%7) * 100 * time.Microsecond)
		require.NoError(t, c.Close())
		for g := 0; g < 2; g++ {
			switch err := <-errs; {
			case err == nil:
				ran.Add(1)
			case errors.Is(err, libxl.ErrClosed):
				refused.Add(1)
			default:
				t.Fatalf("operation: %v", err)
			}
		}
	}
	t.Logf("operations run to the end: %d, refused as closed: %d", ran.Load(), refused.Load())
	requireNoViolations(t)
	requireEmptyLoop(t, d)
}

// 4.17's destroy forks a child, reaped only by libxl_childproc_sigchld_occurred
// (goxl's SIGCHLD forwarder, libxl_sigchld_owner_mainloop), which waits
// for libxl's own pids only. os/exec children of the same process run
// beside it: every one of them and every destroy gets its own exit, none
// is taken by the other side and none is lost.
func TestExecChildrenBesideForkingDestroys(t *testing.T) {
	libxlmodel.Reset()
	base := leakcheck.Take()
	d := newModelDriver(t, libxlmodel.Mode417)
	cfg := &libxl.DomainConfig{Name: "forker", Type: libxl.DomainTypePV, Kernel: "/dev/null", MemoryMB: 64, VCPUs: 1}
	const rounds, workers = 20, 3
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers*rounds)
	for w := 0; w < workers; w++ {
		wg.Add(2)
		go func() { // libxl side: create then destroy (forks)
			defer wg.Done()
			c, err := d.OpenCtx()
			if err != nil {
				errs <- err
				return
			}
			for i := 0; i < rounds; i++ {
				id, err := c.CreateDomain(context.Background(), cfg)
				if err == nil {
					err = c.DestroyDomain(context.Background(), id)
				}
				if err != nil {
					errs <- fmt.Errorf("destroy round %d: %w", i, err)
				}
			}
			errs <- c.Close()
		}()
		go func(w int) { // os/exec side: exit codes that name the child
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				code := 1 + (w*rounds+i)%100
				err := exec.Command("/bin/sh", "-c", fmt.Sprintf("exit %d", code)).Run()
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != code {
					errs <- fmt.Errorf("exec child %d: want exit %d, got %v", i, code, err)
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, d.Close())
	requireNoViolations(t)
	cnt := libxlmodel.Counters()
	require.Equal(t, uint64(workers*rounds), cnt.ChildrenForked, "every destroy forked")
	require.Equal(t, cnt.ChildrenForked, cnt.ChildrenReaped, "every libxl child reaped by libxl")
	base.Check(t, 5*time.Second)
}
