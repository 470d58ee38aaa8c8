package driver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/goxl/goxl/libxl"
)

// CreateOptions tune Create and Restore.
type CreateOptions struct {
	// Paused leaves the domain paused after it is built.
	Paused bool
}

// List returns every domain libxl knows (libxl_list_domain), dom0 too.
func (m *Domains) List() ([]libxl.DomainInfo, error) {
	_, end, err := m.begin(context.Background())
	if err != nil {
		return nil, err
	}
	defer end()
	return m.ctx.ListDomains()
}

// Known returns the domains the manager tracks.
func (m *Domains) Known() []DomainSnapshot {
	var out []DomainSnapshot
	for _, d := range m.reg.all() {
		out = append(out, d.Snapshot())
	}
	return out
}

// Info returns libxl's view of one domain.
func (m *Domains) Info(ref string) (libxl.DomainInfo, error) {
	_, end, err := m.begin(context.Background())
	if err != nil {
		return libxl.DomainInfo{}, err
	}
	defer end()
	d, err := m.lookup(ref)
	if err != nil {
		return libxl.DomainInfo{}, err
	}
	d.mu.Lock()
	domid := d.domid
	d.mu.Unlock()
	info, err := m.ctx.DomainInfo(domid)
	if errors.Is(err, libxl.ErrDomainNotFound) {
		d.apply(TrDestroyed, "death")
		m.forget(d)
		return info, notFound(ref, err)
	}
	return info, err
}

// Create builds a domain from cfg and, unless opts.Paused, unpauses it.
// A nil cfg (a nil *libxl.DomainConfig too) gives libxl.ErrNilConfig. A
// name (or UUID) in use is refused with ErrDomainExists before anything
// is built. If the create fails, ctx is cancelled or Close begins at any
// point, what was built is destroyed: an error means no domain was left
// behind.
func (m *Domains) Create(ctx context.Context, cfg libxl.Config, opts CreateOptions) (*Domain, error) {
	if libxl.IsNilConfig(cfg) {
		return nil, fmt.Errorf("driver: create: %w", libxl.ErrNilConfig)
	}
	octx, end, err := m.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	d, err := m.createOrRestore(octx, cfg, "", opts)
	return d, closedErr(octx, err)
}

// Restore creates a domain from a save file (Save's, or `xl save`'s),
// with the config stored in it; see Create for the guarantees.
func (m *Domains) Restore(ctx context.Context, path string, opts CreateOptions) (*Domain, error) {
	octx, end, err := m.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	cfg, err := libxl.ReadSaveFileConfig(path)
	if err != nil {
		return nil, err
	}
	d, err := m.createOrRestore(octx, cfg, path, opts)
	return d, closedErr(octx, err)
}

func (m *Domains) createOrRestore(ctx context.Context, cfg libxl.Config, restorePath string, opts CreateOptions) (*Domain, error) {
	sum, err := cfg.Summary()
	if err != nil {
		return nil, err
	}
	if _, err := m.ctx.DomainIDByName(sum.Name); err == nil {
		return nil, fmt.Errorf("%q: %w", sum.Name, ErrDomainExists)
	}
	d := newDomain(m)
	d.name, d.uuid, d.cfg, d.summary, d.owned = sum.Name, sum.UUID, cfg, sum, true
	if err := m.reg.reserve(d, sum.Name, sum.UUID); err != nil {
		return nil, err
	}
	d.apply(TrCreate, "")
	if err := d.lockJob(ctx); err != nil {
		m.reg.remove(d, 0, sum.Name, sum.UUID)
		return nil, err
	}
	defer d.unlockJob()
	if _, err := m.build(ctx, d, cfg, restorePath, opts.Paused); err != nil {
		d.apply(TrDestroyed, "")
		m.forget(d)
		return nil, err
	}
	return d, nil
}

// build runs create or restore, watches the new domain and unpauses it.
// The caller holds d's job. On error nothing is left behind.
func (m *Domains) build(ctx context.Context, d *Domain, cfg libxl.Config, restorePath string, paused bool) (uint32, error) {
	c, release, err := m.operationCtx()
	if err != nil {
		return 0, err
	}
	defer release()
	start := time.Now()
	var id uint32
	if restorePath != "" {
		m.progress("restoring %s from %s", d.name, restorePath)
		id, err = c.RestoreDomain(ctx, restorePath, cfg)
	} else {
		m.progress("creating %s", d.name)
		id, err = c.CreateDomain(ctx, cfg)
	}
	if err != nil {
		return 0, err // libxl destroyed what it built
	}
	m.progress("%s built as domain %d in %v", d.name, id, time.Since(start).Round(time.Millisecond))
	fail := func(err error) (uint32, error) {
		m.unwatch(d)
		if derr := m.destroyQuietly(id); derr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup of domain %d: %w", id, derr))
		} else {
			d.mu.Lock()
			d.endIncarnationLocked(id)
			d.mu.Unlock()
		}
		return 0, err
	}
	info, err := m.ctx.DomainInfo(id)
	if err != nil {
		return fail(err)
	}
	if dup := m.reg.byDomID(id); dup != nil && dup != d {
		// A lookup adopted the domain while it was being built: this
		// Domain is its owner; the duplicate's watch would outlive it
		// (its Domain leaves the registry below) and Close would wait
		// for that watch's forwarder for ever.
		m.unwatch(dup)
	}
	kind := "created"
	if restorePath != "" {
		kind = "restored"
	}
	d.mu.Lock()
	old := d.domid
	d.domid, d.uuid = id, info.UUID
	d.setStateLocked(TrCreated)
	// Published before the watch exists, so that this incarnation's
	// first event comes first.
	d.publishLocked(DomainEvent{DomID: id, Name: d.name, Kind: kind, State: d.state})
	d.mu.Unlock()
	m.reg.setID(d, old, id, info.UUID)
	if err := m.watch(d, id); err != nil {
		return fail(err)
	}
	if !paused {
		if err := m.ctx.UnpauseDomain(ctx, id); err != nil {
			return fail(err)
		}
		d.apply(TrUnpaused, "")
	}
	if err := ctx.Err(); err != nil {
		return fail(fmt.Errorf("create of %s: %w", d.name, err))
	}
	return id, nil
}

// destroyQuietly destroys a domain with a fresh context (the caller's
// may be cancelled); a domain already gone is fine.
func (m *Domains) destroyQuietly(domid uint32) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := m.ctx.DestroyDomain(ctx, domid)
	if err == nil || errors.Is(err, libxl.ErrDomainNotFound) {
		return nil
	}
	if _, ierr := m.ctx.DomainInfo(domid); errors.Is(ierr, libxl.ErrDomainNotFound) {
		return nil
	}
	return err
}

// op runs fn under the domain's job with its current domid. An error
// from a domain that vanished meanwhile becomes ErrDomainNotFound.
func (m *Domains) op(ctx context.Context, ref string, fn func(ctx context.Context, d *Domain, domid uint32) error) error {
	octx, end, err := m.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	return closedErr(octx, m.opLocked(octx, ref, fn))
}

func (m *Domains) opLocked(ctx context.Context, ref string, fn func(ctx context.Context, d *Domain, domid uint32) error) error {
	d, err := m.lookup(ref)
	if err != nil {
		return err
	}
	if err := d.lockJob(ctx); err != nil {
		return err
	}
	defer d.unlockJob()
	d.mu.Lock()
	domid, state := d.domid, d.state
	d.mu.Unlock()
	if !state.live() {
		return notFound(fmt.Sprintf("%q (%s)", ref, state), nil)
	}
	err = fn(ctx, d, domid)
	if err == nil {
		return nil
	}
	if _, ierr := m.ctx.DomainInfo(domid); errors.Is(ierr, libxl.ErrDomainNotFound) {
		d.apply(TrDestroyed, "death")
		m.forget(d)
		return notFound(fmt.Sprintf("%q", ref), err)
	}
	return err
}

// Destroy destroys a domain at once.
func (m *Domains) Destroy(ctx context.Context, ref string) error {
	return m.op(ctx, ref, func(ctx context.Context, d *Domain, domid uint32) error {
		m.progress("destroying domain %d", domid)
		if err := m.ctx.DestroyDomain(ctx, domid); err != nil {
			return err
		}
		d.terminal(TrDestroyed, "destroyed", domid)
		m.forget(d)
		return nil
	})
}

// Shutdown asks a guest to power off. With wait, it returns once the
// guest is down (shut off, crashed, destroyed or saved) or ctx ends, as
// xl shutdown -w returns at the shutdown or the death, whichever it sees
// first: the on_poweroff action follows, and a domain the manager does
// not own (a monitor's, xl's) ends the wait just the same.
func (m *Domains) Shutdown(ctx context.Context, ref string, wait bool) error {
	var d *Domain
	err := m.op(ctx, ref, func(ctx context.Context, dom *Domain, domid uint32) error {
		d = dom
		if err := d.apply(TrReqShutdown, "shutdown-requested"); err != nil {
			return err
		}
		return m.ctx.ShutdownDomain(ctx, domid)
	})
	if err != nil || !wait {
		return err
	}
	// The wait ends with Close too (ErrDriverClosed): no event comes then.
	ctx, end, err := m.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	m.progress("waiting for %s to shut down", d.Snapshot().Name)
	_, err = d.WaitState(ctx, StateShutoff, StateCrashed, StateDestroyed, StateSaved)
	return closedErr(ctx, err)
}

// Reboot asks a guest to reboot; on_reboot decides what follows.
func (m *Domains) Reboot(ctx context.Context, ref string) error {
	return m.op(ctx, ref, func(ctx context.Context, d *Domain, domid uint32) error {
		if err := d.apply(TrReqShutdown, "reboot-requested"); err != nil {
			return err
		}
		return m.ctx.RebootDomain(ctx, domid)
	})
}

// Pause pauses a domain.
func (m *Domains) Pause(ctx context.Context, ref string) error {
	return m.op(ctx, ref, func(ctx context.Context, d *Domain, domid uint32) error {
		if err := m.ctx.PauseDomain(ctx, domid); err != nil {
			return err
		}
		return d.apply(TrPaused, "paused")
	})
}

// Unpause unpauses a domain.
func (m *Domains) Unpause(ctx context.Context, ref string) error {
	return m.op(ctx, ref, func(ctx context.Context, d *Domain, domid uint32) error {
		if err := m.ctx.UnpauseDomain(ctx, domid); err != nil {
			return err
		}
		return d.apply(TrUnpaused, "unpaused")
	})
}

// Save saves a domain to path (xl's save-file format) and destroys it.
func (m *Domains) Save(ctx context.Context, ref, path string) error {
	return m.op(ctx, ref, func(ctx context.Context, d *Domain, domid uint32) error {
		c, release, err := m.operationCtx()
		if err != nil {
			return err
		}
		defer release()
		start := time.Now()
		m.progress("saving domain %d to %s", domid, path)
		if err := c.SaveDomain(ctx, domid, path); err != nil {
			// SaveDomain resumed the guest. libxl reports one shutdown
			// per death watch, and the suspend was it: watch again, or
			// the guest's next shutdown would go unseen.
			if _, ierr := m.ctx.DomainInfo(domid); ierr == nil {
				if werr := m.watch(d, domid); werr != nil {
					err = errors.Join(err, fmt.Errorf("re-watch after the failed save: %w", werr))
				}
			}
			return err
		}
		m.progress("saved in %v; destroying domain %d", time.Since(start).Round(time.Millisecond), domid)
		if err := m.ctx.DestroyDomain(context.WithoutCancel(ctx), domid); err != nil {
			return fmt.Errorf("saved to %s, but destroy failed: %w", path, err)
		}
		d.terminal(TrSaved, "saved", domid)
		m.forget(d)
		return nil
	})
}

// Console returns the pty of a domain's primary console.
func (m *Domains) Console(ref string) (string, error) {
	_, end, err := m.begin(context.Background())
	if err != nil {
		return "", err
	}
	defer end()
	d, err := m.lookup(ref)
	if err != nil {
		return "", err
	}
	d.mu.Lock()
	domid := d.domid
	d.mu.Unlock()
	return m.ctx.PrimaryConsoleTTY(domid)
}

// terminal records the driver's own end of an incarnation (destroyed,
// saved) unless libxl's death of it was already published: each
// incarnation's events end with exactly one "death", nothing after it.
func (d *Domain) terminal(t Transition, kind string, domid uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.setStateLocked(t)
	if d.deadDomID != domid {
		d.publishLocked(DomainEvent{DomID: domid, Name: d.name, Kind: kind, State: d.state})
	}
}

// operationCtx is the ctx an operation runs on: with PerOperationCtx a
// short-lived ctx of its own (release closes it), else the shared one.
func (m *Domains) operationCtx() (c *libxl.Ctx, release func(), err error) {
	if !m.opts.PerOperationCtx {
		return m.ctx, func() {}, nil
	}
	oc, err := m.src.OpenCtx()
	if err != nil {
		return nil, nil, err
	}
	return oc, func() { oc.Close() }, nil
}
