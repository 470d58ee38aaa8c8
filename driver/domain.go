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
	stop  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
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
		queue: make(chan queued, 64), stop: make(chan struct{}),
	}
	if err := m.resync(); err != nil {
		return nil, err
	}
	m.wg.Add(1)
	go m.worker()
	if opts.ResyncInterval > 0 {
		m.wg.Add(1)
		go m.resyncLoop()
	}
	return m, nil
}

// Close stops watching, ends the event streams and the manager's
// goroutines. Domains keep running; the Driver is not closed.
func (m *Domains) Close() error {
	m.once.Do(func() {
		close(m.stop)
		for _, d := range m.reg.all() {
			d.mu.Lock()
			w := d.watch
			d.watch = nil
			d.watchGen++
			d.mu.Unlock()
			if w != nil {
				w.Close()
			}
		}
		m.wg.Wait()
		m.streams.closeAll()
	})
	return nil
}

// Subscribe returns a stream of lifecycle events; buffer 0 means 256.
func (m *Domains) Subscribe(buffer int) *EventStream {
	s := newEventStream(buffer)
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
	changed  chan struct{} // closed and replaced on every state change
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
	if next != d.state {
		d.state = next
		close(d.changed)
		d.changed = make(chan struct{})
	}
	return nil
}

// apply applies a transition and publishes an event of the given kind.
func (d *Domain) apply(t Transition, kind string) error {
	d.mu.Lock()
	err := d.setStateLocked(t)
	ev := DomainEvent{DomID: d.domid, Name: d.name, Kind: kind, State: d.state}
	d.mu.Unlock()
	if err == nil && kind != "" {
		d.m.streams.publish(ev)
	}
	return err
}

// WaitState waits until the domain is in one of states.
func (d *Domain) WaitState(ctx context.Context, states ...DomainState) (DomainState, error) {
	for {
		d.mu.Lock()
		s, ch := d.state, d.changed
		d.mu.Unlock()
		for _, want := range states {
			if s == want {
				return s, nil
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return s, ctx.Err()
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
	info, err := m.ctx.LookupDomain(ref)
	if err != nil {
		if errors.Is(err, libxl.ErrDomainNotFound) {
			return nil, notFound(fmt.Sprintf("%q", ref), err)
		}
		return nil, err
	}
	return m.adopt(info)
}

// adopt registers a domain the manager did not create, and watches it.
func (m *Domains) adopt(info libxl.DomainInfo) (*Domain, error) {
	m.reg.mu.Lock()
	if d := m.reg.byID[info.DomID]; d != nil {
		m.reg.mu.Unlock()
		return d, nil
	}
	d := newDomain(m)
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
	return d, nil
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
	for ev := range sub.C() {
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

// forget removes a domain from the registry and stops watching it.
func (m *Domains) forget(d *Domain) {
	m.unwatch(d)
	d.mu.Lock()
	domid, name, uuid := d.domid, d.name, d.uuid
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
		d.mu.Unlock()
		m.log.Warn("driver: domain event watch overflowed; resyncing", "domain", d.name)
		m.streams.publish(DomainEvent{DomID: q.ev.DomID, Name: d.name, Kind: "resync"})
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
		d.mu.Unlock()
		m.streams.publish(e)
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
			d.mu.Unlock()
			m.streams.publish(DomainEvent{DomID: ev.DomID, Name: d.name, Kind: "suspended", Reason: ev.Shutdown, ReasonName: ev.Shutdown.String()})
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
		d.mu.Unlock()
		if err != nil {
			m.log.Debug("driver: shutdown event", "domain", e.Name, "err", err)
		}
		m.streams.publish(e)
		if plan != PlanNone && plan != PlanPreserve {
			m.wg.Add(1)
			go func() { defer m.wg.Done(); m.afterShutdown(d, ev.DomID, plan, action) }()
		}
	case libxl.EventDomainDeath:
		restarting := d.state == StateCreating || d.state == StateSaved
		if !restarting {
			d.setStateLocked(TrDestroyed)
		}
		e := DomainEvent{DomID: ev.DomID, Name: d.name, Kind: "death", State: d.state}
		d.mu.Unlock()
		m.streams.publish(e)
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
	name, cfg := d.name, d.cfg
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
			return
		}
	}
	if plan == PlanDestroy {
		d.apply(TrDestroyed, "destroyed")
		m.forget(d)
		return
	}
	m.unwatch(d)
	newID, err := m.build(ctx, d, cfg, "", true)
	if err == nil {
		err = m.finishRestart(ctx, d, domid, newID, name)
	}
	if err != nil {
		m.log.Error("driver: restart failed", "domain", name, "err", err)
		d.apply(TrCreateFailed, "destroyed")
		m.forget(d)
		return
	}
	m.streams.publish(DomainEvent{DomID: newID, Name: name, Kind: "restarted", State: StateRunning})
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
			if _, err := m.adopt(info); err == nil {
				m.streams.publish(DomainEvent{DomID: info.DomID, Name: info.Name, Kind: "discovered"})
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
		}
		e := DomainEvent{DomID: d.domid, Name: d.name, Kind: "death", State: d.state}
		d.mu.Unlock()
		if gone {
			m.streams.publish(e)
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
	if err != nil {
		d.apply(TrDestroyed, "death")
		m.forget(d)
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
