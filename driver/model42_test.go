//go:build libxlmodel

package driver

// Evidence that the serialised safe mode (libxl.Xen42Serialised) closes
// unpatched 4.2.0/4.2.1's window: a delivery the loop decided on before
// another thread deregistered its timeout reaches libxl after libxl freed
// the record (for_libxl points at libxl's own libxl__ev_time there).
//
// Real 4.2 libxl has no threads of its own: every deregistration happens
// inside a libxl API call made by an application thread, which in safe
// mode holds the ctx's serial lock. The model's workload pthreads take
// only libxl's ctx lock, so they cannot play that part. The model's race
// API can: libxlmodel.RaceArm and RaceCancel are libxl API calls
// (timeout_register / timeout_deregister with the ctx lock held, on the
// calling thread), and these tests make them through Ctx.Call, as an
// application thread would make any libxl call.

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/goxl/goxl/driver/eventloop"
	"github.com/goxl/goxl/internal/libxlmodel"
	"github.com/goxl/goxl/internal/osevent"
	"github.com/goxl/goxl/libxl"
)

// raceHooks put raceSink between the loop and the ctx.
type raceHooks struct {
	*eventloop.Binding
	sink *raceSink
}

func (h *raceHooks) SetSink(s osevent.Sink) {
	h.sink.Sink = s
	h.Binding.SetSink(h.sink)
}

// raceSink widens the window between the loop's decision to deliver and
// the call into libxl (libxl.Ctx's OccurredTimeout/FD, which in safe mode
// takes the serial lock and re-checks liveness under it). It either
// sleeps for delay, or, when hold is armed, parks the next timeout
// delivery until the test has cancelled that timeout: the window,
// opened on purpose.
type raceSink struct {
	osevent.Sink
	delay   time.Duration
	mu      sync.Mutex
	hold    bool          // park the next timeout delivery
	held    chan struct{} // a delivery is parked
	release chan struct{} // let it go on
}

func newRaceSink(delay time.Duration) *raceSink {
	return &raceSink{delay: delay, held: make(chan struct{}), release: make(chan struct{})}
}

func (s *raceSink) OccurredFD(f osevent.ForLibxl, fd int, ev, rev osevent.PollEvents, live osevent.Liveness) {
	time.Sleep(s.delay)
	s.Sink.OccurredFD(f, fd, ev, rev, live)
}

func (s *raceSink) OccurredTimeout(f osevent.ForLibxl, live osevent.Liveness) {
	s.mu.Lock()
	hold := s.hold
	s.hold = false
	s.mu.Unlock()
	if hold {
		s.held <- struct{}{}
		<-s.release
	} else {
		time.Sleep(s.delay)
	}
	s.Sink.OccurredTimeout(f, live)
}

func (s *raceSink) holdNext() {
	s.mu.Lock()
	s.hold = true
	s.mu.Unlock()
}

// race42Ctx is one ctx on its own loop, in model mode m, behind a raceSink.
func race42Ctx(t *testing.T, m libxlmodel.Mode, policy libxl.Xen42Policy, delay time.Duration) (*libxl.Ctx, *eventloop.Loop, *raceSink) {
	t.Helper()
	libxlmodel.Reset()
	libxlmodel.SetDefaultMode(m)
	t.Cleanup(func() { libxlmodel.SetDefaultMode(libxlmodel.Mode417) })
	loop, err := eventloop.New(eventloop.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = loop.Close() })
	sink := newRaceSink(delay)
	c, err := libxl.New(libxl.Options{Hooks: &raceHooks{Binding: loop.Attach(nil), sink: sink}, Xen42: policy})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c, loop, sink
}

func policyName(p libxl.Xen42Policy) string {
	switch p {
	case libxl.Xen42Patched:
		return "Xen42Patched"
	case libxl.Xen42Serialised:
		return "Xen42Serialised"
	}
	return "Xen42Refuse"
}

// arm and cancel are libxl API calls, admitted (and in safe mode
// serialised) by Ctx.Call like any other.
func arm(c *libxl.Ctx, d time.Duration) (h libxlmodel.RaceHandle, err error) {
	err = c.Call(func(raw unsafe.Pointer) (err error) {
		h, err = libxlmodel.RaceArm(raw, d)
		return err
	})
	return h, err
}

func cancel(c *libxl.Ctx, h libxlmodel.RaceHandle) (ok bool, err error) {
	err = c.Call(func(raw unsafe.Pointer) (err error) {
		ok, err = libxlmodel.RaceCancel(raw, h)
		return err
	})
	return ok, err
}

// jitteredArmCancel runs goroutines × rounds of: arm a timeout due in
// 0.3..2 ms, sleep until about its deadline (from 0.5 ms before to 3 ms
// after), cancel it. Some cancels win, some find it fired, and some land
// while its delivery is on the way: the window.
func jitteredArmCancel(t *testing.T, c *libxl.Ctx, goroutines, rounds int, seed uint64) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			for i := 0; i < rounds; i++ {
				d := time.Duration(300+rng.IntN(1700)) * time.Microsecond
				h, err := arm(c, d)
				if err != nil {
					errs <- err
					return
				}
				time.Sleep(d + time.Duration(rng.IntN(3500)-500)*time.Microsecond)
				if _, err := cancel(c, h); err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// The window on unpatched 4.2.0/4.2.1 and its closing. Each mode runs
// twice on the unpatched model:
//
//   - Xen42Patched, a lie: no serialisation, no liveness re-check. The
//     violations must appear, or the test proves nothing.
//   - Xen42Serialised: none may appear.
//
// Phase A is deterministic: the sink parks a timeout's delivery after the
// loop decided on it; the test cancels the timeout (timeout_deregister,
// record freed) and only then lets the delivery go on. Without
// serialisation every one of them is a use-after-free in libxl; with it,
// the delivery takes the serial lock after the cancel, sees the
// registration dead and never calls libxl. Phase B is the same race left
// to timing, with four goroutines and a 2 ms delay on every delivery.
//
// On 4.2.0 the safe run also depends on the bridge reading
// timeout_deregister's argument through the pointer: otherwise the loop
// would not find the registration, its liveness would stay true, and the
// parked deliveries would reach freed records.
func TestSerialisedModeCloses42Window(t *testing.T) {
	const parked = 10
	for _, m := range []libxlmodel.Mode{libxlmodel.Mode42Unpatched, libxlmodel.Mode420Unpatched} {
		t.Run(m.String(), func(t *testing.T) {
			run := func(t *testing.T, policy libxl.Xen42Policy) (violations int) {
				c, loop, sink := race42Ctx(t, m, policy, 2*time.Millisecond)
				require.Equal(t, policy == libxl.Xen42Serialised, c.Serialised())

				// Phase A: the window, opened on purpose.
				for i := 0; i < parked; i++ {
					sink.holdNext()
					h, err := arm(c, time.Millisecond)
					require.NoError(t, err)
					select {
					case <-sink.held:
					case <-time.After(10 * time.Second):
						t.Fatal("the timeout was never delivered")
					}
					ok, err := cancel(c, h)
					sink.release <- struct{}{} // before any require: a parked dispatcher would hang Close
					require.NoError(t, err)
					require.True(t, ok, "the parked delivery has not reached libxl: the timeout is still armed there")
				}
				// Phase B: the window, left to timing.
				jitteredArmCancel(t, c, 4, 40, uint64(m)+1)

				require.NoError(t, c.Close()) // drains the deliveries in flight
				rc := libxlmodel.RaceCounters()
				cnt := libxlmodel.Counters()
				vs := libxlmodel.Violations()
				for _, v := range vs {
					require.Equal(t, libxlmodel.DeliveryAfterDeregister, v.Kind, v.String())
				}
				// Each timeout ended exactly one way.
				require.Equal(t, rc.Armed, rc.Cancelled+rc.CancelLate, "%+v", rc)
				require.Equal(t, rc.Fired, rc.CancelLate, "%+v", rc)
				// What reached libxl: the timeouts that fired, plus the late
				// deliveries to freed records (the violations).
				require.Equal(t, rc.Fired+cnt.Violations[libxlmodel.DeliveryAfterDeregister], cnt.DeliveriesTimeout)
				ls := loop.Stats()
				require.Zero(t, ls.UnknownIDs, "a timeout_deregister found no registration")
				// Deliveries the loop handed to the ctx that never reached
				// libxl: the safe mode's liveness re-check under the serial
				// lock dropped them. Each is the window, hit and closed.
				dropped := ls.TimeoutDeliveries - cnt.DeliveriesTimeout
				if policy == libxl.Xen42Serialised {
					require.GreaterOrEqual(t, dropped, uint64(parked))
				} else {
					require.Zero(t, dropped)
				}
				t.Logf("%s: armed %d, cancelled %d, fired %d; the loop delivered %d, %d reached libxl, %d of them after deregistration; %d dropped under the serial lock",
					policyName(policy), rc.Armed, rc.Cancelled, rc.Fired, ls.TimeoutDeliveries, cnt.DeliveriesTimeout, len(vs), dropped)
				return int(cnt.Violations[libxlmodel.DeliveryAfterDeregister])
			}
			var unserialised, serialised int
			t.Run("unserialised", func(t *testing.T) { unserialised = run(t, libxl.Xen42Patched) }) // a lie: the model is unpatched
			t.Run("serialised", func(t *testing.T) { serialised = run(t, libxl.Xen42Serialised) })
			t.Logf("late deliveries: %d without serialisation, %d with", unserialised, serialised)
			require.GreaterOrEqual(t, unserialised, parked, "the window was never hit: the test proves nothing")
			require.Zero(t, serialised)
		})
	}
}

// 4.2.0 passes timeout_deregister a pointer to the application's token.
// In safe mode the driver must find the registration through it: the
// cancelled timeouts leave the loop at once and never reach libxl.
// (Without the bridge's dereference the loop would keep all of them, and
// deliver each to a freed record once due.)
func TestSerialised420CancelledTimeoutsNeverDelivered(t *testing.T) {
	const n = 50
	c, loop, _ := race42Ctx(t, libxlmodel.Mode420Unpatched, libxl.Xen42Serialised, 0)
	require.True(t, c.Serialised())
	require.Equal(t, "4.2.0", c.Version().String())
	handles := make([]libxlmodel.RaceHandle, n)
	for i := range handles {
		h, err := arm(c, 20*time.Millisecond+time.Duration(i)*100*time.Microsecond)
		require.NoError(t, err)
		handles[i] = h
	}
	require.Equal(t, n, loop.Stats().Timeouts)
	for _, h := range handles {
		ok, err := cancel(c, h)
		require.NoError(t, err)
		require.True(t, ok)
	}
	require.Zero(t, loop.Stats().Timeouts, "timeout_deregister left registrations in the loop")
	require.Zero(t, loop.Stats().UnknownIDs)
	time.Sleep(60 * time.Millisecond) // past every deadline
	require.NoError(t, c.Close())
	cnt := libxlmodel.Counters()
	require.Equal(t, uint64(n), cnt.HookCalls[libxlmodel.HookTimeoutDeregister])
	require.Zero(t, cnt.DeliveriesTimeout, "a cancelled timeout was delivered")
	require.Zero(t, libxlmodel.RaceCounters().Fired)
	requireNoViolations(t)
}

// Stress: safe mode on the unpatched model, with goroutines racing
// arm/cancel through Ctx.Call while a regular workload (libxlmodel.Run)
// runs on the same ctx.
//
// Run is not called through Ctx.Call, and must not be: it blocks inside C
// until the loop has delivered what its operations wait for, and in safe
// mode every delivery takes the serial lock that Ctx.Call would hold, so
// Run would wait for deliveries that wait for Run (until its 5 s delivery
// bound, then abandon its operations). Run itself never takes the serial
// lock; its worker pthreads take only libxl's ctx lock. That is safe here
// because on 4.2-unpatched the workload deregisters only from inside
// libxl_osevent_occurred_*, i.e. on the dispatcher, which holds the
// serial lock; from the workers it only registers, modifies fds in ways
// that keep a pending delivery valid (IN -> IN), and pokes fds, none of
// which can make a decided delivery stale. (It would deregister from a
// worker only on a failed registration or an abandoned operation, neither
// of which happens here: the test requires none.) So every deregistration
// on this ctx still happens under the serial lock, as on real 4.2 where
// libxl has no threads.
func TestSerialised42StressWithWorkload(t *testing.T) {
	goroutines, rounds, ops := 4, 150, 150
	if testing.Short() {
		goroutines, rounds, ops = 3, 40, 40
	}
	for _, m := range []libxlmodel.Mode{libxlmodel.Mode42Unpatched, libxlmodel.Mode420Unpatched} {
		t.Run(m.String(), func(t *testing.T) {
			c, loop, _ := race42Ctx(t, m, libxl.Xen42Serialised, 100*time.Microsecond)
			require.True(t, c.Serialised())
			var res libxlmodel.Result
			var runErr error
			done := make(chan struct{})
			go func() {
				defer close(done)
				res, runErr = libxlmodel.Run(c.Raw(), libxlmodel.Workload{Threads: 3, OpsPerThread: ops, Seed: uint64(m) + 7})
			}()
			jitteredArmCancel(t, c, goroutines, rounds, uint64(m)+70)
			<-done
			require.NoError(t, runErr)
			require.Zero(t, res.OpsAbandoned, "%+v", res)
			require.Zero(t, res.OpsFailed, "%+v", res)
			require.False(t, res.DeadlineHit)
			require.NoError(t, c.Close())
			requireNoViolations(t)
			rc := libxlmodel.RaceCounters()
			require.Equal(t, uint64(goroutines*rounds), rc.Armed)
			require.Equal(t, rc.Armed, rc.Cancelled+rc.CancelLate, "%+v", rc)
			require.Equal(t, rc.Fired, rc.CancelLate, "%+v", rc)
			require.Zero(t, loop.Stats().UnknownIDs)
			t.Logf("workload: %d ops, %d hook events; race: %+v; loop: %d timeouts dropped as stale",
				res.OpsCompleted, res.HookEvents, rc, loop.Stats().StaleDropped)
		})
	}
}
