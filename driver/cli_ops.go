package driver

// Operations the goxl CLI needs beyond the lifecycle core: xl's options
// (shutdown/reboot -F and -w, save -c/-p, restore with a config) and its
// small verbs (mem-set, vcpu-set, vcpu-list, uptime, info, list -l). Each
// runs under the domain's job like the core operations.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/goxl/goxl/libxl"
)

// ShutdownOptions tune ShutdownWith and RebootWith.
type ShutdownOptions struct {
	// Wait: Shutdown returns once the guest is down (xl shutdown -w: its
	// on_poweroff action follows); Reboot once the incarnation that was
	// asked is gone.
	Wait bool
	// WaitDeath (xl -ww) waits longer: until the incarnation that was
	// asked is dead, destroyed by its on_* action or by a restart (or
	// saved), not merely down. A domain its action preserves never dies,
	// so then only ctx ends the wait, as with xl.
	WaitDeath bool
	// Force sends an ACPI power (shutdown) or reset (reboot) trigger when
	// the guest has no PV drivers (libxl's ERROR_NOPARAVIRT), as xl -F.
	Force bool
}

// ShutdownWith is Shutdown with xl's -F, -w and -ww.
func (m *Domains) ShutdownWith(ctx context.Context, ref string, opts ShutdownOptions) error {
	if opts.WaitDeath {
		return m.untilDead(ctx, ref, func(ctx context.Context) error {
			return m.ShutdownWith(ctx, ref, ShutdownOptions{Force: opts.Force})
		})
	}
	if !opts.Force {
		return m.Shutdown(ctx, ref, opts.Wait)
	}
	err := m.Shutdown(ctx, ref, opts.Wait)
	if !errors.Is(err, libxl.ErrNoParavirt) {
		return err
	}
	m.progress("%s has no PV drivers: sending an ACPI power event", ref)
	if err := m.op(ctx, ref, func(ctx context.Context, d *Domain, domid uint32) error {
		return m.ctx.SendTrigger(ctx, domid, libxl.TriggerPower)
	}); err != nil {
		return err
	}
	if !opts.Wait {
		return nil
	}
	// Shutdown's own wait did not run: its request failed.
	return m.waitIncarnationGone(ctx, ref)
}

// untilDead runs request (a shutdown or reboot of ref, without a wait)
// and then waits until the incarnation ref named before it is dead
// (xl -ww).
func (m *Domains) untilDead(ctx context.Context, ref string, request func(context.Context) error) error {
	d, err := m.Lookup(ref)
	if err != nil {
		return err
	}
	domid := d.Snapshot().DomID
	if err := request(ctx); err != nil {
		return err
	}
	// The wait ends with Close too (ErrDriverClosed): no event comes then.
	ctx, end, err := m.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	m.progress("waiting for %s (domain %d) to die", d.Snapshot().Name, domid)
	return closedErr(ctx, waitDead(ctx, d, domid))
}

// waitDead waits until incarnation domid of d is dead: its death was
// published (a destroy, a restart's destroy, libxl's death), it was
// saved, or a build replaced it.
func waitDead(ctx context.Context, d *Domain, domid uint32) error {
	return d.waitUntil(ctx, func() bool {
		return d.domid != domid || d.deadDomID == domid || d.state == StateDestroyed || d.state == StateSaved
	})
}

// RebootWith is Reboot with xl's -F, -w and -ww.
func (m *Domains) RebootWith(ctx context.Context, ref string, opts ShutdownOptions) error {
	if opts.WaitDeath {
		return m.untilDead(ctx, ref, func(ctx context.Context) error {
			return m.RebootWith(ctx, ref, ShutdownOptions{Force: opts.Force})
		})
	}
	d, err := m.Lookup(ref)
	if err != nil {
		return err
	}
	old := d.Snapshot().DomID
	err = m.Reboot(ctx, ref)
	if opts.Force && errors.Is(err, libxl.ErrNoParavirt) {
		m.progress("%s has no PV drivers: sending an ACPI reset event", ref)
		err = m.op(ctx, ref, func(ctx context.Context, d *Domain, domid uint32) error {
			return m.ctx.SendTrigger(ctx, domid, libxl.TriggerReset)
		})
		if err == nil {
			// A reset trigger restarts the guest inside the same domain:
			// no shutdown follows, so there is nothing to wait for.
			return nil
		}
	}
	if err != nil || !opts.Wait {
		return err
	}
	return waitLeft(ctx, d, old)
}

// waitIncarnationGone waits until the domain ref names now stopped, was
// replaced by a restart, or is gone.
func (m *Domains) waitIncarnationGone(ctx context.Context, ref string) error {
	d, err := m.Lookup(ref)
	if errors.Is(err, ErrDomainNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return waitLeft(ctx, d, d.Snapshot().DomID)
}

// waitLeft waits until incarnation domid of d stopped (shut off, crashed)
// or was replaced (a restart built a new domid) or d is gone.
func waitLeft(ctx context.Context, d *Domain, domid uint32) error {
	return d.waitUntil(ctx, func() bool {
		switch d.state {
		case StateShutoff, StateCrashed, StateDestroyed, StateSaved, StateCreating:
			return true
		}
		return d.domid != domid
	})
}

// WaitGone returns once the domain is destroyed or saved; restarts by
// on_reboot/on_crash do not end the wait.
func (m *Domains) WaitGone(ctx context.Context, ref string) error {
	d, err := m.Lookup(ref)
	if err != nil {
		return err
	}
	_, err = d.WaitState(ctx, StateDestroyed, StateSaved)
	return err
}

// SaveOptions tune SaveWith.
type SaveOptions struct {
	// Checkpoint resumes the guest after the save (xl save -c).
	Checkpoint bool
	// LeavePaused leaves the guest paused after the save (xl save -p).
	LeavePaused bool
}

// SaveWith is Save with xl's -c and -p: with either, the guest is resumed
// (libxl_domain_resume, suspend cancelled) instead of destroyed, paused
// first with -p, as xl does. A failed save resumes the guest too: no
// guest is left suspended.
func (m *Domains) SaveWith(ctx context.Context, ref, path string, opts SaveOptions) error {
	if !opts.Checkpoint && !opts.LeavePaused {
		return m.Save(ctx, ref, path)
	}
	return m.op(ctx, ref, func(ctx context.Context, d *Domain, domid uint32) error {
		c, release, err := m.operationCtx()
		if err != nil {
			return err
		}
		defer release()
		start := time.Now()
		m.progress("checkpointing domain %d to %s", domid, path)
		saveErr := c.SaveDomain(ctx, domid, path)
		bg := context.WithoutCancel(ctx)
		if saveErr == nil && opts.LeavePaused {
			if err := m.ctx.PauseDomain(bg, domid); err != nil {
				saveErr = fmt.Errorf("saved to %s, but pause failed: %w", path, err)
			} else {
				d.apply(TrPaused, "paused")
			}
		}
		// A save the guest never answered (a guest still booting times
		// out) left it running: only a suspended guest is resumed.
		if saveErr == nil || m.suspended(domid) {
			if err := m.ctx.ResumeDomain(bg, domid); err != nil {
				return errors.Join(saveErr, fmt.Errorf("resume of domain %d: %w", domid, err))
			}
		}
		// libxl reports a domain's shutdown once per watch: the suspend
		// used it up. A fresh watch sees the guest's next shutdown.
		if err := m.watch(d, domid); err != nil {
			return errors.Join(saveErr, fmt.Errorf("re-watching domain %d: %w", domid, err))
		}
		if saveErr == nil {
			m.progress("checkpoint written in %v; domain %d resumed", time.Since(start).Round(time.Millisecond), domid)
		}
		return saveErr
	})
}

// suspended reports a domain shut down with reason suspend.
func (m *Domains) suspended(domid uint32) bool {
	info, err := m.ctx.DomainInfo(domid)
	return err == nil && info.Shutdown && info.ShutdownReason == libxl.ShutdownSuspend
}

// RestoreWith is Restore with the config replaced by cfg when cfg is not
// nil (xl restore CFG FILE).
func (m *Domains) RestoreWith(ctx context.Context, path string, cfg libxl.Config, opts CreateOptions) (*Domain, error) {
	if cfg == nil {
		return m.Restore(ctx, path, opts)
	}
	if _, err := libxl.ReadSaveFileConfig(path); err != nil {
		return nil, err
	}
	octx, end, err := m.begin(ctx) // counted: Close aborts it and waits
	if err != nil {
		return nil, err
	}
	defer end()
	d, err := m.createOrRestore(octx, cfg, path, opts)
	return d, closedErr(octx, err)
}

// domid resolves ref to its current domid.
func (m *Domains) domid(ref string) (uint32, error) {
	d, err := m.Lookup(ref)
	if err != nil {
		return 0, err
	}
	return d.Snapshot().DomID, nil
}

// DomainConfig returns the config libxl keeps for a domain
// (libxl_retrieve_domain_configuration), as xl list -l prints it.
func (m *Domains) DomainConfig(ctx context.Context, ref string) (libxl.JSONConfig, error) {
	id, err := m.domid(ref)
	if err != nil {
		return "", err
	}
	return m.ctx.RetrieveDomainConfig(ctx, id)
}

// SetMemory sets a domain's balloon target in KiB.
func (m *Domains) SetMemory(ctx context.Context, ref string, targetKB uint64) error {
	return m.op(ctx, ref, func(ctx context.Context, d *Domain, domid uint32) error {
		return m.ctx.SetMemoryTarget(domid, targetKB)
	})
}

// SetVCPUs brings count vcpus online (the first ones) and the others
// offline.
func (m *Domains) SetVCPUs(ctx context.Context, ref string, count int) error {
	return m.op(ctx, ref, func(ctx context.Context, d *Domain, domid uint32) error {
		info, err := m.ctx.DomainInfo(domid)
		if err != nil {
			return err
		}
		return m.ctx.SetVCPUsOnline(ctx, domid, int(info.VCPUMaxID)+1, count)
	})
}

// VCPUs lists a domain's vcpus.
func (m *Domains) VCPUs(ref string) ([]libxl.VCPUInfo, error) {
	id, err := m.domid(ref)
	if err != nil {
		return nil, err
	}
	return m.ctx.ListVCPUs(id)
}

// DomainName returns the name of a domid.
func (m *Domains) DomainName(domid uint32) (string, error) {
	name, err := m.ctx.DomainName(domid)
	if errors.Is(err, libxl.ErrDomainNotFound) {
		return "", notFound(strconv.FormatUint(uint64(domid), 10), err)
	}
	return name, err
}

// procUptime is where dom0's uptime is read (xl uptime does the same).
var procUptime = "/proc/uptime"

// Uptime returns how long a domain has run: from its start time in
// xenstore, or the dom0 kernel's uptime for domain 0.
func (m *Domains) Uptime(ref string) (time.Duration, error) {
	id, err := m.domid(ref)
	if err != nil {
		return 0, err
	}
	if id == 0 {
		b, err := os.ReadFile(procUptime)
		if err != nil {
			return 0, err
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, fmt.Errorf("%s: empty", procUptime)
		}
		secs, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", procUptime, err)
		}
		return time.Duration(secs) * time.Second, nil
	}
	start, err := m.ctx.StartTime(id)
	if err != nil {
		return 0, err
	}
	return time.Since(start).Truncate(time.Second), nil
}

// HostInfo describes the host (xl info).
func (m *Domains) HostInfo() (libxl.HostInfo, error) { return m.ctx.HostInfo() }

// XenVersion returns the Xen version libxl reports.
func (m *Domains) XenVersion() libxl.VersionInfo { return m.ctx.Version() }

// ConsoleTTYOf returns the pty of console num of the given type.
func (m *Domains) ConsoleTTYOf(domid uint32, num int, typ libxl.ConsoleType) (string, error) {
	return m.ctx.ConsoleTTY(domid, num, typ)
}
