package daemon

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/goxl/goxl/driver"
	"github.com/goxl/goxl/libxl"
)

// Monitor is the per-domain process that goxl create and restore start
// when no daemon runs, as xl forks one: it builds the domain (with the
// same ownership records as the daemon, as owner "monitor"), then carries
// out its on_* actions until the domain is gone. It adopts other domains
// only to watch them; it owns none but its own.
type Monitor struct {
	drv    *driver.Driver
	doms   *driver.Domains
	keeper *Keeper
	quiet  atomic.Bool
}

// MonitorOptions configure a monitor.
type MonitorOptions struct {
	OwnerDir string
	Logger   *slog.Logger
	LogLevel libxl.LogLevel
	// Progress receives the build's progress lines until Silence.
	Progress func(string)
}

// OpenMonitor opens a driver and a domain manager for one domain.
func OpenMonitor(opts MonitorOptions) (*Monitor, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	owners, err := NewOwners(opts.OwnerDir, "monitor")
	if err != nil {
		return nil, err
	}
	m := &Monitor{keeper: NewKeeper(owners, opts.Logger)}
	if m.drv, err = driver.New(driver.Options{Logger: opts.Logger, LogLevel: opts.LogLevel}); err != nil {
		return nil, err
	}
	m.doms, err = driver.NewDomains(m.drv, driver.DomainsOptions{
		Logger: opts.Logger, PerOperationCtx: true, ResyncInterval: 5 * time.Second,
		OnRestart: m.keeper.OnRestart, OnRestarting: m.keeper.OnRestarting,
		Progress: func(msg string) {
			if opts.Progress != nil && !m.quiet.Load() {
				opts.Progress(msg)
			}
		},
	})
	if err != nil {
		m.drv.Close()
		return nil, err
	}
	m.keeper.SetDomains(m.doms, m.drv.Ctx())
	return m, nil
}

// Silence stops progress lines (the CLI that read them has gone).
func (m *Monitor) Silence() { m.quiet.Store(true) }

// Build runs a create or restore request.
func (m *Monitor) Build(ctx context.Context, req *Request) (*driver.Domain, error) {
	opts := driver.CreateOptions{Paused: req.Paused}
	switch req.Op {
	case OpCreate:
		cfg, err := req.Config.Decode()
		if err != nil {
			return nil, err
		}
		return m.keeper.Create(ctx, cfg, opts)
	case OpRestore:
		var cfg libxl.Config
		var err error
		if req.Config != nil {
			cfg, err = req.Config.Decode()
		} else {
			cfg, err = libxl.ReadSaveFileConfig(req.Path)
		}
		if err != nil {
			return nil, err
		}
		return m.keeper.Restore(ctx, req.Path, cfg, opts)
	}
	return nil, usageErr("monitor: only create and restore")
}

// WaitGone returns once the domain is gone for good (destroyed, saved,
// or its restart failed) or ctx ends; its claim is then given up.
func (m *Monitor) WaitGone(ctx context.Context, d *driver.Domain) {
	d.WaitState(ctx, driver.StateDestroyed, driver.StateSaved)
	m.keeper.releaseIfGone(d.Snapshot().Name)
}

// Close closes the manager and the driver; the domain keeps running.
func (m *Monitor) Close() error {
	m.doms.Close()
	return m.drv.Close()
}
