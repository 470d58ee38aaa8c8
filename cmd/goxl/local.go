package main

import (
	"context"
	"fmt"
	"time"

	"github.com/goxl/goxl/driver"
	"github.com/goxl/goxl/libxl"
)

// localBackend runs every operation in this process, on a driver and a
// domain manager of its own (goxl's mode without a daemon). Domains keep
// running when it is closed; on_* actions are honoured only while it
// lives.
type localBackend struct {
	doms  *driver.Domains
	close func()
}

var _ Backend = (*localBackend)(nil)

// newLocalBackend wraps a domain manager; closeFn releases it and its
// driver.
func newLocalBackend(doms *driver.Domains, closeFn func()) *localBackend {
	return &localBackend{doms: doms, close: closeFn}
}

func (b *localBackend) List(context.Context) ([]libxl.DomainInfo, error) { return b.doms.List() }

func (b *localBackend) Info(_ context.Context, ref string) (libxl.DomainInfo, error) {
	return b.doms.Info(ref)
}

func (b *localBackend) Config(ctx context.Context, ref string) (libxl.JSONConfig, error) {
	return b.doms.DomainConfig(ctx, ref)
}

func (b *localBackend) Create(ctx context.Context, cfg libxl.Config, opts CreateOptions) (driver.DomainSnapshot, error) {
	if opts.Unparsed != nil {
		return driver.DomainSnapshot{}, errUnparsedInProcess
	}
	d, err := b.doms.Create(ctx, cfg, driver.CreateOptions{Paused: opts.Paused})
	if err != nil {
		return driver.DomainSnapshot{}, err
	}
	return d.Snapshot(), nil
}

func (b *localBackend) Restore(ctx context.Context, path string, opts RestoreOptions) (driver.DomainSnapshot, error) {
	if opts.Unparsed != nil {
		return driver.DomainSnapshot{}, errUnparsedInProcess
	}
	d, err := b.doms.RestoreWith(ctx, path, opts.Config, driver.CreateOptions{Paused: opts.Paused})
	if err != nil {
		return driver.DomainSnapshot{}, err
	}
	return d.Snapshot(), nil
}

func (b *localBackend) WaitGone(ctx context.Context, ref string) error {
	return b.doms.WaitGone(ctx, ref)
}

func (b *localBackend) Destroy(ctx context.Context, ref string) error {
	return b.doms.Destroy(ctx, ref)
}

func (b *localBackend) Shutdown(ctx context.Context, ref string, opts ShutdownOptions) error {
	return b.doms.ShutdownWith(ctx, ref, driver.ShutdownOptions{Wait: opts.Wait, WaitDeath: opts.WaitDeath, Force: opts.Force})
}

func (b *localBackend) Reboot(ctx context.Context, ref string, opts ShutdownOptions) error {
	return b.doms.RebootWith(ctx, ref, driver.ShutdownOptions{Wait: opts.Wait, WaitDeath: opts.WaitDeath, Force: opts.Force})
}

func (b *localBackend) Pause(ctx context.Context, ref string) error { return b.doms.Pause(ctx, ref) }
func (b *localBackend) Unpause(ctx context.Context, ref string) error {
	return b.doms.Unpause(ctx, ref)
}

func (b *localBackend) Save(ctx context.Context, ref, path string, opts SaveOptions) error {
	return b.doms.SaveWith(ctx, ref, path, driver.SaveOptions{Checkpoint: opts.Checkpoint, LeavePaused: opts.LeavePaused})
}

func (b *localBackend) ConsoleTTY(_ context.Context, ref string, opts ConsoleOptions) (string, error) {
	if opts.Type == "" && opts.Num == 0 {
		return b.doms.Console(ref)
	}
	typ, err := consoleType(opts.Type)
	if err != nil {
		return "", err
	}
	d, err := b.doms.Lookup(ref)
	if err != nil {
		return "", err
	}
	return b.doms.ConsoleTTYOf(d.Snapshot().DomID, opts.Num, typ)
}

// consoleType maps console -t's names to libxl's console types; "" (with
// -n) means the PV console.
func consoleType(name string) (libxl.ConsoleType, error) {
	switch name {
	case "", "pv":
		return libxl.ConsolePV, nil
	case "serial":
		return libxl.ConsoleSerial, nil
	}
	return 0, usageError{fmt.Sprintf("console type %q: want pv or serial", name)}
}

func (b *localBackend) Events(_ context.Context, opts EventsOptions) (EventStream, error) {
	return b.doms.Subscribe(opts.Buffer), nil
}

func (b *localBackend) DomID(_ context.Context, name string) (uint32, error) {
	d, err := b.doms.Lookup(name)
	if err != nil {
		return 0, err
	}
	return d.Snapshot().DomID, nil
}

func (b *localBackend) DomName(_ context.Context, domid uint32) (string, error) {
	return b.doms.DomainName(domid)
}

func (b *localBackend) Uptime(_ context.Context, ref string) (time.Duration, error) {
	return b.doms.Uptime(ref)
}

func (b *localBackend) SetMemory(ctx context.Context, ref string, targetKB uint64) error {
	return b.doms.SetMemory(ctx, ref, targetKB)
}

func (b *localBackend) SetVCPUs(ctx context.Context, ref string, count int) error {
	return b.doms.SetVCPUs(ctx, ref, count)
}

func (b *localBackend) VCPUs(_ context.Context, ref string) ([]libxl.VCPUInfo, error) {
	return b.doms.VCPUs(ref)
}

func (b *localBackend) HostInfo(context.Context) (libxl.HostInfo, error) { return b.doms.HostInfo() }

func (b *localBackend) XenVersion(context.Context) (libxl.VersionInfo, error) {
	return b.doms.XenVersion(), nil
}

func (b *localBackend) Close() error {
	b.close()
	return nil
}

// errUnparsedInProcess: an unparsed xl config comes only from a goxl
// without cgo, which hands in-process mode to the cgo goxl; it never
// reaches this backend.
var errUnparsedInProcess = fmt.Errorf("goxl: an unparsed xl config in process: %w", libxl.ErrNotSupported)
