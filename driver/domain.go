package driver

// Domain management (domain*.go, registry*.go, lifecycle*.go): the rules.
//
// Ownership: a Domains manager belongs to one Driver (any CtxSource) and
// uses its driver-wide ctx for queries, event generators and short
// operations. Create, restore and save may run on a short-lived ctx from
// OpenCtx (Options.PerOperationCtx), because libxl_domain_create_new
// builds the domain for seconds inside the initiating call with the
// ctx's lock held, which would stall every other call on a shared ctx.
//
// Threads: libxl's event callbacks run on the thread inside libxl
// (usually the loop's dispatcher). They only do a non-blocking channel
// send (libxl.Subscription). A forwarder goroutine per watched domain
// moves events into the manager's queue; one worker goroutine takes them
// from there and only then takes domain locks. Long follow-ups (destroy,
// restart) run on their own goroutines. So libxl's thread never waits
// for a domain lock: the 2016 libvirt deadlock (an event handler blocking
// on a domain lock held by a thread that waited in libxl) cannot happen.
//
// Locks, in order: Domain.job (one operation at a time per domain, held
// across libxl calls), then Domain.mu (the domain's fields; never held
// while calling libxl or blocking), then the leaf locks of the registry
// and of the event streams. Operations on different domains share no lock
// and proceed in parallel.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/goxl/goxl/libxl"
)

// CtxSource is what the domain layer needs from a Driver.
type CtxSource interface {
	// Ctx returns the long-lived, driver-wide ctx.
	Ctx() *libxl.Ctx
	// OpenCtx opens a short-lived ctx on the same loop.
	OpenCtx() (*libxl.Ctx, error)
}

var _ CtxSource = (*Driver)(nil)

// DomainsOptions configure a Domains manager. The zero value is usable.
type DomainsOptions struct {
	Logger *slog.Logger
	// PerOperationCtx runs create, restore and save on a ctx of their own.
	PerOperationCtx bool
	// ResyncInterval is how often the manager lists the domains to adopt
	// new ones and notice vanished ones (lost events, other toolstacks).
	// Zero means 5 s; negative disables it.
	ResyncInterval time.Duration
	// EventBuffer is each domain watch's buffer (libxl.Subscription).
	EventBuffer int
	// Progress, if set, receives progress lines of long operations.
	Progress func(msg string)
	// OnRestart, if set, is called after an on_* action built a new
	// incarnation of an owned domain (new domid), before it is unpaused:
	// an owner records the new domid there (see actions.go).
	OnRestart func(r Restarted)
	// OnRestarting, if set, is called by an on_* restart (restart,
	// rename-restart, coredump-restart) once the old incarnation is gone
	// or renamed and before the new one is built: an owner marks the
	// name as being built there, so that a process killed mid-restart
	// leaves a half-built domain its successor recognises and destroys.
	// Like OnRestart it runs on the action's goroutine, under the
	// domain's job, with no lock of the driver's held.
	OnRestarting func(name string, oldDomID uint32)
	// CoreDumpDir is where the coredump-* actions write cores (empty:
	// /var/lib/xen/dump, xl's XEN_DUMP_DIR).
	CoreDumpDir string
}

// Domains manages the lifecycle of domains through one driver.
type Domains struct {
	src     CtxSource
	ctx     *libxl.Ctx
	opts    DomainsOptions
	log     *slog.Logger
	reg     *registry
	streams streams

	queue chan queued
	// stop is done once Close began: the manager's goroutines end, and
	// the contexts of operations in flight are cancelled (cause
	// ErrDriverClosed), which aborts their libxl calls.
	stop       <-chan struct{}
	stopCtx    context.Context
	stopCancel context.CancelFunc
	wg         sync.WaitGroup
	once       sync.Once

	opMu   sync.Mutex // guards closed; a leaf
	closed bool
	ops    sync.WaitGroup // public operations in flight; Close waits for them
	drv    *Driver        // the Driver that closes this manager, if any
}

// queued is one libxl event, or an overflow notice, for the worker.
type queued struct {
	dom      *Domain
	gen      uint64
	ev       libxl.Event
	overflow bool
}

// NewDomains starts a manager on src (usually a *Driver). It adopts the
// domains that already exist and watches them.
func NewDomains(src CtxSource, opts DomainsOptions) (*Domains, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ResyncInterval == 0 {
		opts.ResyncInterval = 5 * time.Second
	}
	m := &Domains{
		src: src, ctx: src.Ctx(), opts: opts, log: opts.Logger, reg: newRegistry(),
		queue: make(chan queued, 64),
	}
	m.stopCtx, m.stopCancel = context.WithCancel(context.Background())
	m.stop = m.stopCtx.Done()
	drv, _ := src.(*Driver)
	m.drv = drv
	if err := m.resync(); err != nil {
		// The watches of the domains adopted so far, and their forwarders.
		m.stopCancel()
		m.unwatchAll()
		m.wg.Wait()
		if drv != nil && drv.isClosed() {
			return nil, fmt.Errorf("driver: new domains manager: %w (%w)", ErrDriverClosed, err)
		}
		return nil, err
	}
	m.wg.Add(1)
	go m.worker()
	if opts.ResyncInterval > 0 {
		m.wg.Add(1)
		go m.resyncLoop()
	}
	// Registered last, once it is whole: a Driver.Close from now on
	// closes it; one that came first refuses it.
	if drv != nil && !drv.addManager(m) {
		m.Close()
		return nil, fmt.Errorf("driver: new domains manager: %w", ErrDriverClosed)
	}
	return m, nil
}

// Close ends the manager. Operations in flight (Create, Restore, Save,
// Destroy...) are aborted (libxl_ao_abort) and waited for, their cleanup
// included: a half-built domain is destroyed, a guest whose save failed
// is resumed, so they return an error matching ErrDriverClosed and leave
// nothing behind; one that had already finished keeps its result. Then
// the watches, the manager's goroutines and the event streams end.
// Domains that exist keep running. Later calls return ErrDriverClosed.
// Driver.Close calls it for every Domains built on the driver. The wait
// is bounded by libxl: an aborted create ends at its next step, and each
// cleanup has a one-minute bound.
func (m *Domains) Close() error {
	m.once.Do(func() {
		m.opMu.Lock()
		m.closed = true
		m.opMu.Unlock()
		m.stopCancel()
		m.ops.Wait()
		m.unwatchAll()
		m.wg.Wait()
		// A follow-up (restart) may have watched again before it saw
		// stop; its forwarder has ended, its subscription not.
		m.unwatchAll()
		m.streams.closeAll()
		if m.drv != nil {
			m.drv.removeManager(m)
		}
	})
	return nil
}

func (m *Domains) unwatchAll() {
	for _, d := range m.reg.all() {
		m.unwatch(d)
	}
}

// errDomainsClosed is what a call after Close returns.
var errDomainsClosed = fmt.Errorf("driver: domains manager: %w", ErrDriverClosed)

// begin admits one public operation: refused after Close; otherwise its
// context is also cancelled when Close begins, and end must be called.
func (m *Domains) begin(ctx context.Context) (context.Context, func(), error) {
	m.opMu.Lock()
	if m.closed {
		m.opMu.Unlock()
		return nil, nil, errDomainsClosed
	}
	m.ops.Add(1)
	m.opMu.Unlock()
	octx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(m.stopCtx, func() { cancel(errDomainsClosed) })
	return octx, func() { stop(); cancel(nil); m.ops.Done() }, nil
}

// closedErr makes an error of an operation that Close cut short match
// ErrDriverClosed.
func closedErr(octx context.Context, err error) error {
	if err != nil && errors.Is(context.Cause(octx), ErrDriverClosed) && !errors.Is(err, ErrDriverClosed) {
		return fmt.Errorf("%w: %w", errDomainsClosed, err)
	}
	return err
}

// Subscribe returns a stream of lifecycle events; buffer 0 means 256.
// After Close the stream is already ended (Err: ErrStreamClosed).
func (m *Domains) Subscribe(buffer int) *EventStream {
	s := newEventStream(buffer)
	m.opMu.Lock()
	closed := m.closed
	m.opMu.Unlock()
	if closed {
		s.Close()
		return s
	}
	m.streams.add(s)
	return s
}

func (m *Domains) progress(format string, args ...any) {
	if m.opts.Progress != nil {
		m.opts.Progress(fmt.Sprintf(format, args...))
	}
}

// Domain is one guest known to the driver.
type Domain struct {
	m   *Domains
	job chan struct{} // one operation at a time; held across libxl calls

	mu       sync.Mutex // guards the fields below; a leaf except for registry/streams
	name     string
	uuid     libxl.UUID
	domid    uint32
	state    DomainState
	reason   libxl.ShutdownReason
	cfg      libxl.Config
	summary  libxl.DomainConfig
	owned    bool // created by this manager: its on_* actions are honoured
	watch    *libxl.Subscription
	watchGen uint64
	changed  chan struct{} // closed and replaced on every state change and death
	// deadDomID is the incarnation whose "death" was published: each
	// incarnation ends with exactly one, whichever path saw it first
	// (libxl's event, the driver's destroy, a lookup or resync that
	// found it gone).
	deadDomID uint32
}

func newDomain(m *Domains) *Domain {
	return &Domain{m: m, job: make(chan struct{}, 1), changed: make(chan struct{}), reason: libxl.ShutdownUnknown}
}

// DomainSnapshot is a Domain's state at one moment.
type DomainSnapshot struct {
	Name  string      `json:"name"`
	DomID uint32      `json:"domid"`
	UUID  string      `json:"uuid"`
	State DomainState `json:"state"`
	// Owned: created or restored by this manager, which then carries out
	// its on_poweroff/on_reboot/on_crash actions.
	Owned bool `json:"owned"`
	// LastShutdown is the reason of the last shutdown seen, if any.
	LastShutdown string `json:"last_shutdown,omitempty"`
}

// Snapshot returns the domain's current state.
func (d *Domain) Snapshot() DomainSnapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := DomainSnapshot{Name: d.name, DomID: d.domid, UUID: d.uuid.String(), State: d.state, Owned: d.owned}
	if d.reason != libxl.ShutdownUnknown {
		s.LastShutdown = d.reason.String()
	}
	return s
}

// setStateLocked applies a transition. d.mu must be held.
func (d *Domain) setStateLocked(t Transition) error {
	next, err := Next(d.state, t)
	if err != nil {
		return err
	}
	d.enterLocked(next)
	return nil
}

// enterLocked sets the state and wakes WaitState's waiters if it changed.
func (d *Domain) enterLocked(s DomainState) {
	if s != d.state {
		d.state = s
		d.wakeLocked()
	}
}

// wakeLocked wakes the goroutines waiting on d.changed: for a new state,
// or a death that left the state as it was (a restart's destroy).
func (d *Domain) wakeLocked() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// apply applies a transition and publishes an event of the given kind
// ("death" through publishDeathLocked: once per incarnation).
func (d *Domain) apply(t Transition, kind string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.setStateLocked(t)
	if err == nil && kind != "" {
		d.publishLocked(DomainEvent{DomID: d.domid, Name: d.name, Kind: kind, State: d.state})
	}
	return err
}

// publishLocked publishes while d.mu is held, so that one domain's events
// reach the streams in the order they happened (the streams' lock is a
// leaf and a send never blocks). A "death" is published once per domid.
func (d *Domain) publishLocked(e DomainEvent) {
	if e.Kind == "death" {
		if e.DomID == 0 || d.deadDomID == e.DomID {
			return
		}
		d.deadDomID = e.DomID
		d.wakeLocked()
	}
	d.m.streams.publish(e)
}

// actionFailedLocked publishes an "action-failed" event: the on_*
// action of incarnation domid could not be carried out, and err says why.
func (d *Domain) actionFailedLocked(domid uint32, action libxl.ShutdownAction, err error) {
	d.publishLocked(DomainEvent{DomID: domid, Name: d.name, Kind: "action-failed", State: d.state, Action: action, Err: err, Error: err.Error()})
}

// rollBackRestartLocked puts a domain whose restart could not begin (the
// old incarnation could not be destroyed) back into the state it stopped
// in. The state machine has no such transition on purpose: nothing but
// this undo may take a domain from creating back to stopped.
func (d *Domain) rollBackRestartLocked(stopped DomainState) {
	if d.state == StateCreating {
		d.enterLocked(stopped)
	}
}

// endIncarnationLocked publishes the death of domid unless it was
// published: the domain is known to be gone (destroyed by the driver,
// or found missing) and its watch may be closed before libxl's event.
func (d *Domain) endIncarnationLocked(domid uint32) {
	d.publishLocked(DomainEvent{DomID: domid, Name: d.name, Kind: "death", State: StateDestroyed})
}

// WaitState waits until the domain is in one of states.
func (d *Domain) WaitState(ctx context.Context, states ...DomainState) (DomainState, error) {
	var s DomainState
	err := d.waitUntil(ctx, func() bool {
		s = d.state
		return slices.Contains(states, s)
	})
	return s, err
}

// waitUntil waits until done, called with d.mu held, reports true; it is
// asked again after every wake-up (a state change or a death).
func (d *Domain) waitUntil(ctx context.Context, done func() bool) error {
	for {
		d.mu.Lock()
		ok, ch := done(), d.changed
		d.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// lockJob takes the domain's operation slot.
func (d *Domain) lockJob(ctx context.Context) error {
	select {
	case d.job <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *Domain) unlockJob() { <-d.job }

// --- lookup and adoption ------------------------------------------------

// Lookup finds a domain by domid, UUID or name: first among the domains
// the manager knows, then in libxl (adopting it). A domain that does not
// exist gives an error matching ErrDomainNotFound.
func (m *Domains) Lookup(ref string) (*Domain, error) {
	_, end, err := m.begin(context.Background())
	if err != nil {
		return nil, err
	}
	defer end()
	return m.lookup(ref)
}

func (m *Domains) lookup(ref string) (*Domain, error) {
	if id, ok := libxl.ParseDomID(ref); ok {
		if d := m.reg.byDomID(id); d != nil {
			return d, nil
		}
	} else if u, err := libxl.ParseUUID(ref); err == nil {
		if d := m.reg.byNameOrUUID("", u, true); d != nil {
			return d, nil
		}
	} else if d := m.reg.byNameOrUUID(ref, libxl.UUID{}, false); d != nil {
		d.mu.Lock()
		live := d.state.live()
		d.mu.Unlock()
		if live {
			return d, nil
		}
	}
	mark := m.reg.mark()
	info, err := m.ctx.LookupDomain(ref)
	if err != nil {
		if errors.Is(err, libxl.ErrDomainNotFound) {
			return nil, notFound(fmt.Sprintf("%q", ref), err)
		}
		return nil, err
	}
	d, _, err := m.adopt(info, mark)
	return d, err
}

// adopt registers a domain the manager did not create, and watches it.
// adopted is false when the domain was already known. mark is the
// registry's mark taken before info was read: a domain forgotten since
// (destroyed meanwhile) is not adopted again (ErrDomainNotFound).
func (m *Domains) adopt(info libxl.DomainInfo, mark uint64) (d *Domain, adopted bool, err error) {
	m.reg.mu.Lock()
	if d := m.reg.byID[info.DomID]; d != nil {
		m.reg.mu.Unlock()
		return d, false, nil
	}
	if m.reg.forgottenSinceLocked(info.DomID, mark) {
		m.reg.mu.Unlock()
		return nil, false, notFound(fmt.Sprintf("domain %d (destroyed while it was being listed)", info.DomID), nil)
	}
	if d := m.reg.byName[info.Name]; d != nil && info.Name != "" {
		// The name is reserved by a create or restore in progress, whose
		// domid the registry learns only when libxl completes: that
		// Domain is this domain. A second Domain (and a second death
		// watch) for it would report its events twice.
		d.mu.Lock()
		mine := d.state == StateCreating || d.domid == info.DomID
		d.mu.Unlock()
		if mine {
			m.reg.mu.Unlock()
			return d, false, nil
		}
	}
	d = newDomain(m)
	d.name, d.uuid, d.domid = info.Name, info.UUID, info.DomID
	switch {
	case info.Shutdown && (info.ShutdownReason == libxl.ShutdownCrash || info.ShutdownReason == libxl.ShutdownWatchdog):
		d.state, d.reason = StateCrashed, info.ShutdownReason
	case info.Shutdown:
		d.state, d.reason = StateShutoff, info.ShutdownReason
	case info.Paused:
		d.state = StatePaused
	default:
		d.state = StateRunning
	}
	m.reg.byID[info.DomID] = d
	if _, taken := m.reg.byName[info.Name]; !taken && info.Name != "" {
		m.reg.byName[info.Name] = d
	}
	m.reg.byUUID[info.UUID] = d
	m.reg.mu.Unlock()
	if info.DomID != 0 {
		if err := m.watch(d, info.DomID); err != nil {
			m.log.Warn("driver: cannot watch adopted domain", "domid", info.DomID, "err", err)
		}
	}
	return d, true, nil
}

// watch enables the death/shutdown events of domid for d, replacing any
// earlier watch, and starts its forwarder.
func (m *Domains) watch(d *Domain, domid uint32) error {
	sub, err := m.ctx.WatchDomainDeath(domid, libxl.WatchOptions{Buffer: m.opts.EventBuffer})
	if err != nil {
		return err
	}
	d.mu.Lock()
	old := d.watch
	d.watch = sub
	d.watchGen++
	gen := d.watchGen
	d.mu.Unlock()
	if old != nil {
		old.Close()
	}
	m.wg.Add(1)
	go m.forward(d, sub, gen)
	return nil
}

// unwatch closes d's watch (libxl_evdisable_domain_death).
func (m *Domains) unwatch(d *Domain) {
	d.mu.Lock()
	w := d.watch
	d.watch = nil
	d.watchGen++
	d.mu.Unlock()
	if w != nil {
		w.Close()
	}
}

// forward moves one watch's events to the worker. It may block (it is
// the manager's goroutine, not libxl's thread).
func (m *Domains) forward(d *Domain, sub *libxl.Subscription, gen uint64) {
	defer m.wg.Done()
	for {
		var ev libxl.Event
		var ok bool
		select {
		case ev, ok = <-sub.C():
		case <-m.stop:
			return
		}
		if !ok {
			break
		}
		select {
		case m.queue <- queued{dom: d, gen: gen, ev: ev}:
		case <-m.stop:
			return
		}
	}
	if errors.Is(sub.Err(), libxl.ErrEventOverflow) {
		select {
		case m.queue <- queued{dom: d, gen: gen, overflow: true}:
		case <-m.stop:
		}
	}
}

// forget removes a domain that is gone from the registry and stops
// watching it; its incarnation's death is published if libxl's event has
// not been (the closed watch would drop it).
func (m *Domains) forget(d *Domain) {
	m.unwatch(d)
	d.mu.Lock()
	domid, name, uuid := d.domid, d.name, d.uuid
	d.endIncarnationLocked(domid)
	d.mu.Unlock()
	m.reg.remove(d, domid, name, uuid)
}

// --- the event worker -----------------------------------------------------

func (m *Domains) worker() {
	defer m.wg.Done()
	for {
		select {
		case q := <-m.queue:
			m.handle(q)
		case <-m.stop:
			return
		}
	}
}

// handle runs on the worker goroutine: it may take domain locks (briefly)
// but never waits for a domain's job; follow-ups get their own goroutine.
func (m *Domains) handle(q queued) {
	d := q.dom
	d.mu.Lock()
	if q.gen != d.watchGen {
		d.mu.Unlock()
		return // a watch that was replaced or closed
	}
	if q.overflow {
		d.publishLocked(DomainEvent{DomID: d.domid, Name: d.name, Kind: "resync"})
		d.mu.Unlock()
		m.log.Warn("driver: domain event watch overflowed; resyncing", "domain", d.name)
		m.wg.Add(1)
		go func() { defer m.wg.Done(); m.resyncDomain(d) }()
		return
	}
	ev := q.ev
	if ev.DomID != d.domid {
		// An event of an earlier incarnation: the death of the old domid
		// of a domain restarted by on_reboot=restart can arrive after the
		// new one runs. Report it; it says nothing about the current one.
		e := DomainEvent{DomID: ev.DomID, Name: d.name, Kind: "death", State: StateDestroyed}
		if ev.Type == libxl.EventDomainShutdown {
			e.Kind, e.Reason, e.ReasonName, e.State = "shutdown", ev.Shutdown, ev.Shutdown.String(), StateShutoff
		}
		d.publishLocked(e)
		d.mu.Unlock()
		return
	}
	switch ev.Type {
	case libxl.EventDomainShutdown:
		d.reason = ev.Shutdown
		crashed := ev.Shutdown == libxl.ShutdownCrash || ev.Shutdown == libxl.ShutdownWatchdog
		plan, action := PlanNone, libxl.ShutdownAction("")
		if d.owned {
			plan, action = PlanFor(d.summary, ev.Shutdown)
		}
		kind := "shutdown"
		if ev.Shutdown == libxl.ShutdownSuspend {
			// A save is under way; SaveDomain sets the state.
			d.publishLocked(DomainEvent{DomID: ev.DomID, Name: d.name, Kind: "suspended", Reason: ev.Shutdown, ReasonName: ev.Shutdown.String()})
			d.mu.Unlock()
			return
		}
		var err error
		if crashed {
			kind = "crashed"
			err = d.setStateLocked(TrCrashed)
		} else {
			err = d.setStateLocked(TrShutdown)
		}
		e := DomainEvent{DomID: ev.DomID, Name: d.name, Kind: kind, Reason: ev.Shutdown, ReasonName: ev.Shutdown.String(), State: d.state, Action: action}
		d.publishLocked(e)
		d.mu.Unlock()
		if err != nil {
			m.log.Debug("driver: shutdown event", "domain", e.Name, "err", err)
		}
		if plan != PlanNone && plan != PlanPreserve {
			m.wg.Add(1)
			go func() { defer m.wg.Done(); m.afterShutdown(d, ev.DomID, plan, action) }()
		}
	case libxl.EventDomainDeath:
		restarting := d.state == StateCreating || d.state == StateSaved
		if !restarting {
			d.setStateLocked(TrDestroyed)
		}
		d.publishLocked(DomainEvent{DomID: ev.DomID, Name: d.name, Kind: "death", State: d.state})
		d.mu.Unlock()
		if !restarting {
			m.wg.Add(1)
			go func() { defer m.wg.Done(); m.forgetIfGone(d, ev.DomID) }()
		}
	default:
		d.mu.Unlock()
	}
}

// forgetIfGone forgets d if its domid is still the dead one (a restart
// may have replaced it).
func (m *Domains) forgetIfGone(d *Domain, domid uint32) {
	d.mu.Lock()
	same := d.domid == domid && d.state == StateDestroyed
	d.mu.Unlock()
	if same {
		m.forget(d)
	}
}

// afterShutdown carries out on_poweroff/on_reboot/on_crash/on_watchdog/
// on_soft_reset (see actions.go for the plans beyond destroy/restart).
func (m *Domains) afterShutdown(d *Domain, domid uint32, plan ShutdownPlan, action libxl.ShutdownAction) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-m.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := d.lockJob(ctx); err != nil {
		return
	}
	defer d.unlockJob()
	d.mu.Lock()
	if d.domid != domid || (d.state != StateShutoff && d.state != StateCrashed) {
		d.mu.Unlock()
		return // someone else acted on it (destroy, save) meanwhile
	}
	name, cfg, stopped := d.name, d.cfg, d.state
	d.mu.Unlock()

	if CoreDumpFirst(action) {
		m.coreDump(ctx, name, domid)
	}
	if plan == PlanSoftReset {
		m.softReset(ctx, d, domid, name, cfg)
		return
	}
	if plan == PlanRenameRestart {
		// The old domain is kept, renamed; it never dies under d.
		if err := m.preserveRenamed(d, domid, name); err != nil {
			// As xl: if the old domain cannot be kept, leave it in place.
			m.log.Error("driver: rename-restart could not rename the old domain; it stays", "domain", name, "domid", domid, "err", err)
			return
		}
	}
	if plan == PlanRestart || plan == PlanRenameRestart {
		// Before the destroy: its DOMAIN_DEATH must find the domain
		// restarting, not shut off, or it would be marked destroyed.
		m.progress("restarting %s", name)
		d.apply(TrRestart, "restarting")
	}
	if plan != PlanRenameRestart {
		if err := m.ctx.DestroyDomain(ctx, domid); err != nil && !errors.Is(err, libxl.ErrDomainNotFound) {
			m.log.Error("driver: on_* destroy failed", "domain", name, "domid", domid, "err", err)
			// The stopped domain is still there, as it was: a restart
			// that never began is no longer under way.
			d.mu.Lock()
			if plan == PlanRestart {
				d.rollBackRestartLocked(stopped)
			}
			if ctx.Err() == nil {
				// (When the manager stops, the action is not lost: the
				// next owner finds the domain stopped and carries it out.)
				d.actionFailedLocked(domid, action, fmt.Errorf("%s (domain %d): on_* %s: destroy: %w", name, domid, action, err))
			}
			d.mu.Unlock()
			return
		}
	}
	if plan == PlanDestroy {
		d.terminal(TrDestroyed, "destroyed", domid)
		m.forget(d)
		return
	}
	m.unwatch(d)
	if plan != PlanRenameRestart {
		// Destroyed above, and its watch is closed: libxl's death of it
		// would be dropped. (A renamed domain lives on.)
		d.mu.Lock()
		d.endIncarnationLocked(domid)
		d.mu.Unlock()
	}
	if m.opts.OnRestarting != nil {
		m.opts.OnRestarting(name, domid)
	}
	newID, err := m.build(ctx, d, cfg, "", true)
	if err == nil {
		err = m.finishRestart(ctx, d, domid, newID, name)
	}
	if err != nil {
		m.log.Error("driver: restart failed", "domain", name, "err", err)
		d.mu.Lock()
		d.setStateLocked(TrCreateFailed)
		d.actionFailedLocked(domid, action, fmt.Errorf("%s (domain %d): on_* %s: build of the new incarnation: %w", name, domid, action, err))
		d.mu.Unlock()
		m.forget(d)
		return
	}
	d.mu.Lock()
	d.publishLocked(DomainEvent{DomID: newID, Name: name, Kind: "restarted", State: d.state})
	d.mu.Unlock()
}

// --- resync ------------------------------------------------------------------

func (m *Domains) resyncLoop() {
	defer m.wg.Done()
	t := time.NewTicker(m.opts.ResyncInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := m.resync(); err != nil {
				m.log.Debug("driver: resync", "err", err)
			}
		case <-m.stop:
			return
		}
	}
}

// resync adopts domains the manager does not know and marks the ones
// that vanished without an event (a lost or overflowed watch).
func (m *Domains) resync() error {
	mark := m.reg.mark()
	infos, err := m.ctx.ListDomains()
	if err != nil {
		return err
	}
	present := map[uint32]bool{}
	for _, info := range infos {
		present[info.DomID] = true
		if info.DomID == 0 || info.Dying {
			continue
		}
		if d := m.reg.byDomID(info.DomID); d == nil {
			if info.Name == "" {
				// libxl is still building it (the name comes later): a
				// create of this manager may be the builder, which
				// registers it on completion. Adopt it next time.
				continue
			}
			if nd, adopted, err := m.adopt(info, mark); err == nil && adopted {
				nd.mu.Lock()
				nd.publishLocked(DomainEvent{DomID: info.DomID, Name: info.Name, Kind: "discovered", State: nd.state})
				nd.mu.Unlock()
			}
		} else if info.Name != "" {
			// A domain adopted while libxl was still building it had no
			// name in xenstore yet.
			m.reg.learnName(d, info.Name)
		}
	}
	for _, d := range m.reg.all() {
		d.mu.Lock()
		gone := d.state.live() && !present[d.domid]
		if gone {
			d.setStateLocked(TrDestroyed)
			d.endIncarnationLocked(d.domid)
		}
		d.mu.Unlock()
		if gone {
			m.forget(d)
		}
	}
	return nil
}

// resyncDomain re-reads one domain after its watch overflowed, and
// watches it again.
func (m *Domains) resyncDomain(d *Domain) {
	d.mu.Lock()
	domid := d.domid
	d.mu.Unlock()
	info, err := m.ctx.DomainInfo(domid)
	if errors.Is(err, libxl.ErrDomainNotFound) {
		d.apply(TrDestroyed, "death")
		m.forget(d)
		return
	}
	if err != nil {
		m.log.Warn("driver: resync of one domain", "domid", domid, "err", err)
		return
	}
	if err := m.watch(d, domid); err != nil {
		m.log.Warn("driver: re-watch failed", "domid", domid, "err", err)
	}
	if info.Shutdown {
		// The shutdown event may be among the lost ones: replay it.
		select {
		case m.queue <- queued{dom: d, gen: d.currentGen(), ev: libxl.Event{Type: libxl.EventDomainShutdown, DomID: domid, Shutdown: info.ShutdownReason}}:
		case <-m.stop:
		}
	}
}

func (d *Domain) currentGen() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.watchGen
}
