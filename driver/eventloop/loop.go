package eventloop

import (
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxl/goxl/internal/epoll"
	"github.com/goxl/goxl/internal/osevent"
)

// Errors returned by the loop. Hook errors reach libxl as
// ERROR_OSEVENT_REG_FAIL through the bridge.
var (
	ErrClosed           = errors.New("eventloop: loop is closed")
	ErrBindingsAttached = errors.New("eventloop: bindings still attached")
	ErrOnDispatcher     = errors.New("eventloop: called on the dispatcher goroutine")
	ErrDetached         = errors.New("eventloop: binding reaped or detached")
	ErrNoSink           = errors.New("eventloop: binding has no Sink yet")
	ErrUnknownReg       = errors.New("eventloop: unknown registration ID")
	// ErrAfterReap marks, in the trace, a deregister hook for a
	// registration the binding already reaped: libxl 4.2's
	// libxl_ctx_free deregisters its own xenstore watch fd after the
	// application reaped it (4.17 asserts it is gone already). Nothing
	// can be delivered to it; it is counted as a late hook.
	ErrAfterReap = errors.New("eventloop: deregister after the binding was reaped")
	ErrBadFD     = errors.New("eventloop: bad fd")
	// ErrCallbackPanic wraps a panic recovered from a Sink or the trace
	// function; it is passed to Options.OnCallbackPanic.
	ErrCallbackPanic = errors.New("eventloop: callback panicked")
)

// Op names a hook or a delivery, for tracing and fault injection.
type Op uint8

const (
	OpFDRegister Op = iota + 1
	OpFDModify
	OpFDDeregister
	OpTimeoutRegister
	OpTimeoutModify
	OpTimeoutDeregister
	OpOccurredFD      // delivery of an fd event
	OpOccurredTimeout // delivery of a timeout
	OpDropped         // a delivery dropped because its registration died
	OpReaped          // a registration forgotten, undelivered, by Reap or Detach
	OpSinkPanic       // a Sink call panicked or exited (Err matches ErrCallbackPanic)
)

var opNames = [...]string{"?", "fd_register", "fd_modify", "fd_deregister", "timeout_register",
	"timeout_modify", "timeout_deregister", "occurred_fd", "occurred_timeout", "dropped", "reaped", "sink_panic"}

func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", o)
}

// Options configure a Loop. The zero value is fine.
type Options struct {
	// Trace, if set, receives every hook call and every delivery. It is
	// called with no loop lock held but possibly with libxl's ctx lock
	// held (from hooks): it must not call libxl. If nil, the GOXL_TRACE
	// environment variable can enable a line trace (see the package doc).
	Trace func(TraceEvent)
	// FailRegister, for tests, is consulted by FDRegister, FDModify,
	// TimeoutRegister and TimeoutModify before they change anything; a
	// non-nil error fails the hook (fd is -1 for timeouts).
	FailRegister func(op Op, fd int) error
	// EventBatch is how many epoll events one wait may return (default 256).
	EventBatch int
	// OnCallbackPanic receives every panic recovered from a Sink or the
	// trace function, as an error matching ErrCallbackPanic that carries
	// the panic value and the stack. It runs on the goroutine that
	// panicked, with no loop lock held; it must not panic. If nil, the
	// error is written with the standard log package.
	OnCallbackPanic func(error)

	// afterRelease, for this package's tests only, runs on the dispatcher
	// right after a delivery's admission is released (Binding.exit). It
	// widens the few instructions between that release and whatever a
	// reordering would move after it, so that the ordering tests kill
	// such a reordering every time (order_test.go).
	afterRelease func()
}

// Stats are a snapshot of a loop's counters.
type Stats struct {
	Bindings          int    // attached bindings
	FDRegs            int    // live fd registrations
	AlwaysReadyFDs    int    // fds epoll refused (regular files), live
	Timeouts          int    // live timeouts (armed or firing)
	Rounds            uint64 // dispatch rounds (returns from epoll wait)
	FDDeliveries      uint64 // OccurredFD calls
	TimeoutDeliveries uint64 // OccurredTimeout calls
	StaleDropped      uint64 // deliveries dropped: registration dead at delivery time
	StaleEpoll        uint64 // epoll events of an fd entry that no longer exists
	Gated             uint64 // deliveries refused by a closed gate
	FireNow           uint64 // TimeoutModify(FireNow) calls that advanced a timeout
	FireNowRaced      uint64 // TimeoutModify(FireNow) on a firing timeout (no-op)
	HookErrors        uint64 // failed register/modify hooks
	UnknownIDs        uint64 // modify/deregister with an unknown ID
	LateHooks         uint64 // deregister hooks after Reap (accepted no-ops)
	Reaped            uint64 // registrations forgotten by Reap
	CallbackPanics    uint64 // panics recovered from a Sink or the trace function
}

// counters are the atomics behind Stats; the same type serves per
// binding.
type counters struct {
	fdDeliveries, timeoutDeliveries, staleDropped, staleEpoll, gated atomic.Uint64
	fireNow, fireNowRaced, hookErrors, unknownIDs, lateHooks, reaped atomic.Uint64
	rounds, callbackPanics                                           atomic.Uint64
}

func (c *counters) fill(s *Stats) {
	s.Rounds = c.rounds.Load()
	s.FDDeliveries = c.fdDeliveries.Load()
	s.TimeoutDeliveries = c.timeoutDeliveries.Load()
	s.StaleDropped = c.staleDropped.Load()
	s.StaleEpoll = c.staleEpoll.Load()
	s.Gated = c.gated.Load()
	s.FireNow = c.fireNow.Load()
	s.FireNowRaced = c.fireNowRaced.Load()
	s.HookErrors = c.hookErrors.Load()
	s.UnknownIDs = c.unknownIDs.Load()
	s.LateHooks = c.lateHooks.Load()
	s.Reaped = c.reaped.Load()
	s.CallbackPanics = c.callbackPanics.Load()
}

// Loop is an epoll dispatcher shared by any number of Bindings.
type Loop struct {
	// mu guards the registry: everything below up to the dispatcher-only
	// fields, and every Binding's maps and flags.
	// LOCK ORDER: mu → epoll.Poller.mu (leaf). Never held while calling a
	// Sink, the trace function or FailRegister.
	mu          sync.Mutex
	closed      bool
	fds         []*fdEntry // indexed by fd number; nil: no registration
	alwaysReady []*fdEntry // entries epoll refused
	timers      timerHeap
	bindings    map[*Binding]struct{}
	nFD         int
	nTimeouts   int
	entryGen    uint32
	bindingSeq  uint64

	poller  *epoll.Poller
	base    time.Time // monotonic origin of deadlines
	wall0   time.Time // for trace timestamps
	nextID  atomic.Uint64
	opts    Options
	trace   func(TraceEvent)
	traceWr io.Closer
	stats   counters

	// dispatcher-only state
	events   []unix.EpollEvent
	batch    []delivery
	arRounds int // consecutive rounds with only always-ready deliveries

	dispatcherID atomic.Uint64 // goroutine id of the dispatcher
	stopping     atomic.Bool
	done         chan struct{} // closed when the dispatcher goroutine exits
	closeDone    chan struct{} // closed when the first Close has closed the fds
	closeErr     error         // the first Close's result; written before closeDone closes
}

// New creates a Loop and starts its dispatcher goroutine.
func New(opts Options) (*Loop, error) {
	p, err := epoll.New()
	if err != nil {
		return nil, err
	}
	if opts.EventBatch <= 0 {
		opts.EventBatch = 256
	}
	l := &Loop{
		poller:    p,
		base:      time.Now(),
		opts:      opts,
		bindings:  make(map[*Binding]struct{}),
		events:    make([]unix.EpollEvent, opts.EventBatch),
		done:      make(chan struct{}),
		closeDone: make(chan struct{}),
	}
	l.wall0 = l.base
	l.trace = opts.Trace
	if l.trace == nil {
		l.trace, l.traceWr, err = traceFromEnv(l.wall0)
		if err != nil {
			p.Close()
			return nil, err
		}
	}
	started := make(chan struct{})
	go l.run(started)
	<-started
	return l, nil
}

// Close stops the dispatcher and closes the loop's fds. It refuses with
// ErrBindingsAttached while bindings are attached (nothing is changed
// then: detach them and call Close again), and with ErrOnDispatcher when
// called from a Sink. When it returns nil, the dispatcher goroutine has
// exited and no fd of the loop remains open. Close is idempotent: a
// later or concurrent Close waits until the first one has finished and
// returns its result.
func (l *Loop) Close() error {
	if l.onDispatcher() {
		return ErrOnDispatcher
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.closeDone
		return l.closeErr
	}
	if n := len(l.bindings); n > 0 {
		l.mu.Unlock()
		return fmt.Errorf("%w: %d", ErrBindingsAttached, n)
	}
	l.closed = true
	l.mu.Unlock()
	l.stopping.Store(true)
	_ = l.poller.Wake()
	<-l.done
	err := l.poller.Close()
	if l.traceWr != nil {
		err = errors.Join(err, l.traceWr.Close())
	}
	l.closeErr = err
	close(l.closeDone)
	return err
}

// Stats returns a snapshot of the loop's counters.
func (l *Loop) Stats() Stats {
	var s Stats
	l.stats.fill(&s)
	l.mu.Lock()
	s.Bindings = len(l.bindings)
	s.FDRegs = l.nFD
	s.Timeouts = l.nTimeouts
	s.AlwaysReadyFDs = len(l.alwaysReady)
	l.mu.Unlock()
	return s
}

// now is the loop's monotonic clock, in nanoseconds since New.
func (l *Loop) now() int64 { return int64(time.Since(l.base)) }

// monoDeadline converts libxl's wall-clock deadline to the monotonic clock.
func (l *Loop) monoDeadline(abs time.Time) int64 {
	now := time.Now()
	mono := int64(now.Sub(l.base))
	if osevent.IsFireNow(abs) {
		return mono
	}
	// abs has no monotonic reading, so this subtraction is wall-clock.
	// Sub saturates at about ±292 years; the sum must saturate too, or
	// a far deadline would wrap around to "long overdue".
	d := int64(abs.Sub(now.Round(0)))
	if d > 0 && mono > math.MaxInt64-d {
		return math.MaxInt64
	}
	return mono + d
}

func (l *Loop) newID() osevent.RegID { return osevent.RegID(l.nextID.Add(1)) }

func (l *Loop) onDispatcher() bool {
	id := l.dispatcherID.Load()
	return id != 0 && id == goid()
}

// goid returns the current goroutine's id, parsed from its stack header
// ("goroutine 123 [running]:"). Only used off the hot path.
func goid() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	var id uint64
	for _, c := range buf[len("goroutine "):n] {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}

func (l *Loop) wake() { _ = l.poller.Wake() }

func (l *Loop) emit(ev TraceEvent) {
	defer l.recoverCallback(0, nil, ev.Reg)
	ev.Time = time.Now()
	ev.Since = ev.Time.Sub(l.wall0)
	l.trace(ev)
}

// recoverCallback is deferred around every call of a Sink (op is
// OpOccurredFD or OpOccurredTimeout) or the trace function (op is 0, b
// nil): a panic there is counted and reported (Options.OnCallbackPanic or
// the standard log), a Sink's also traced as OpSinkPanic, and the caller
// carries on as if the call had returned.
func (l *Loop) recoverCallback(op Op, b *Binding, reg osevent.RegID) {
	v := recover()
	if v == nil {
		return
	}
	what := "trace"
	var bid uint64
	if b != nil {
		what = "Sink." + map[Op]string{OpOccurredFD: "OccurredFD", OpOccurredTimeout: "OccurredTimeout"}[op]
		bid = b.id
	}
	stack := make([]byte, 8<<10)
	stack = stack[:runtime.Stack(stack, false)]
	err := fmt.Errorf("%w: %s (binding %d, reg %d): %v\n%s", ErrCallbackPanic, what, bid, reg, v, stack)
	l.report(b, err)
	if b != nil && l.trace != nil {
		l.emit(TraceEvent{Op: OpSinkPanic, Binding: bid, Reg: reg, Timeout: op == OpOccurredTimeout, Err: err})
	}
}

// report counts and reports a callback that panicked or exited.
func (l *Loop) report(b *Binding, err error) {
	l.stats.callbackPanics.Add(1)
	if b != nil {
		b.stats.callbackPanics.Add(1)
	}
	if f := l.opts.OnCallbackPanic; f != nil {
		f(err)
		return
	}
	log.Print(err)
}
