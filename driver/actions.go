package driver

// The on_* actions beyond destroy, restart and preserve (xl.cfg(5)):
// coredump-destroy and coredump-restart dump the core first
// (libxl_domain_core_dump), rename-restart keeps the stopped domain under
// a new name and builds a new one, soft-reset resets the domain in place
// (libxl_domain_soft_reset, which libxl supports for HVM guests). They run
// on afterShutdown's goroutine, under the domain's job, as destroy and
// restart do; the same lock rules hold (domain.go).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/goxl/goxl/libxl"
)

// Restarted tells an owner that an on_* action built a new incarnation.
type Restarted struct {
	Domain   *Domain
	Name     string
	OldDomID uint32
	NewDomID uint32
	Config   libxl.Config
}

// ErrSoftResetNotSupported is why an on_*=soft-reset action of a PV
// domain fails: Xen soft-resets HVM domains only (PVH is one), and
// libxl 4.17 would first tear the PV domain's devices down before Xen
// refuses. The domain is destroyed instead, as xl leaves no half-reset
// domain, and an "action-failed" event carries this error.
var ErrSoftResetNotSupported = errors.New("driver: soft reset is not supported for PV domains (Xen resets HVM and PVH domains only)")

// xenDumpDir is xl's XEN_DUMP_DIR on Debian.
const xenDumpDir = "/var/lib/xen/dump"

// coreDump writes the domain's core as xl does (<dir>/<name>); a failure
// is logged and the action goes on, as in xl.
func (m *Domains) coreDump(ctx context.Context, name string, domid uint32) {
	dir := m.opts.CoreDumpDir
	if dir == "" {
		dir = xenDumpDir
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		m.log.Error("driver: core dump", "domain", name, "err", err)
		return
	}
	path := filepath.Join(dir, name)
	m.progress("dumping the core of %s to %s", name, path)
	// libxl 4.17 dumps inside libxl_domain_core_dump, holding the ctx's
	// lock for the whole dump (a minute for a 128 MB guest under
	// emulation): on the manager's ctx that would stall every other call
	// and event of it. A ctx of its own, where the manager has them.
	dctx, release, err := m.operationCtx()
	if err != nil {
		m.log.Error("driver: core dump", "domain", name, "err", err)
		return
	}
	defer release()
	if err := dctx.CoreDumpDomain(ctx, domid, path); err != nil {
		m.log.Error("driver: core dump failed; going on", "domain", name, "domid", domid, "err", err)
		return
	}
	m.streams.publish(DomainEvent{DomID: domid, Name: name, Kind: "core-dumped"})
}

// preserveRenamed renames the stopped domain to <name>--<UTC time>, as
// xl's preserve_domain does, and lets it go: it is no longer this
// Domain's incarnation (resync adopts it as an unowned domain).
func (m *Domains) preserveRenamed(d *Domain, domid uint32, name string) error {
	newName := fmt.Sprintf("%s--%s", name, time.Now().UTC().Format("20060102T150405"))
	if err := m.ctx.RenameDomain(domid, name, newName); err != nil {
		return err
	}
	m.unwatch(d)
	m.reg.mu.Lock()
	if m.reg.byID[domid] == d {
		delete(m.reg.byID, domid)
	}
	m.reg.mu.Unlock()
	m.streams.publish(DomainEvent{DomID: domid, Name: newName, Kind: "renamed", State: StateShutoff})
	return nil
}

// finishRestart tells the owner about the new incarnation (built paused)
// and then unpauses it.
func (m *Domains) finishRestart(ctx context.Context, d *Domain, oldID, newID uint32, name string) error {
	if m.opts.OnRestart != nil {
		d.mu.Lock()
		cfg := d.cfg
		d.mu.Unlock()
		m.opts.OnRestart(Restarted{Domain: d, Name: name, OldDomID: oldID, NewDomID: newID, Config: cfg})
	}
	if err := m.ctx.UnpauseDomain(ctx, newID); err != nil {
		if derr := m.destroyQuietly(newID); derr != nil {
			err = errors.Join(err, derr)
		}
		return err
	}
	d.apply(TrUnpaused, "")
	return nil
}

// softReset resets the domain in place and lets it run again; where
// libxl refuses (PV guests), the domain is destroyed, as xl leaves no
// half-reset domain either.
func (m *Domains) softReset(ctx context.Context, d *Domain, domid uint32, name string, cfg libxl.Config) {
	m.progress("soft-resetting %s", name)
	d.apply(TrRestart, "restarting")
	m.unwatch(d)
	var err error
	if sum, serr := cfg.Summary(); serr != nil {
		err = serr
	} else if sum.Type == libxl.DomainTypePV {
		err = fmt.Errorf("%s (domain %d): %w", name, domid, ErrSoftResetNotSupported)
	} else {
		err = m.ctx.SoftResetDomain(ctx, domid, cfg)
	}
	if err == nil {
		d.apply(TrCreated, "")
		if err = m.watch(d, domid); err == nil {
			err = m.finishRestart(ctx, d, domid, domid, name)
		}
	}
	if err != nil {
		m.log.Error("driver: soft reset failed; destroying", "domain", name, "domid", domid, "err", err)
		if derr := m.destroyQuietly(domid); derr != nil {
			m.log.Error("driver: destroy after failed soft reset", "domain", name, "err", derr)
		}
		m.streams.publish(DomainEvent{DomID: domid, Name: name, Kind: "action-failed", State: StateDestroyed, Action: libxl.ActionSoftReset, Err: err, Error: err.Error()})
		d.apply(TrCreateFailed, "destroyed")
		m.forget(d)
		return
	}
	m.streams.publish(DomainEvent{DomID: domid, Name: name, Kind: "restarted", State: StateRunning})
}

// Own makes the manager the owner of a domain it adopted: from now on it
// carries out the domain's on_* actions from cfg. If the domain already
// stopped while nobody owned it, its action is carried out now. The
// caller must be the domain's only owner (see internal/daemon's
// ownership records): the driver does not arbitrate between processes.
func (m *Domains) Own(d *Domain, cfg libxl.Config) error {
	sum, err := cfg.Summary()
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.cfg, d.summary, d.owned = cfg, sum, true
	domid, state, reason, gen := d.domid, d.state, d.reason, d.watchGen
	d.mu.Unlock()
	if state == StateShutoff || state == StateCrashed {
		// Replay the shutdown through the worker, which plans it as if
		// the event came now.
		select {
		case m.queue <- queued{dom: d, gen: gen, ev: libxl.Event{Type: libxl.EventDomainShutdown, DomID: domid, Shutdown: reason}}:
		case <-m.stop:
			return ErrDriverClosed
		}
	}
	return nil
}

// Config returns the config a domain was created (or is owned) with; nil
// for a domain adopted without one.
func (d *Domain) Config() libxl.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// UnmarshalText reads a state as MarshalText writes it (the daemon's
// protocol carries states as text).
func (s *DomainState) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = DomainState(i)
			return nil
		}
	}
	return fmt.Errorf("driver: unknown domain state %q", b)
}
