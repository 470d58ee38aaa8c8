package main

import (
	"context"
	"time"

	"github.com/goxl/goxl/driver"
	"github.com/goxl/goxl/internal/daemon"
	"github.com/goxl/goxl/libxl"
)

// Backend is everything goxl's verbs ask of Xen. Every verb talks to Xen
// only through a Backend, so the same verbs run in-process (localBackend,
// over a *driver.Domains) or as a client of a goxl daemon (a remote
// implementation that forwards each method over the daemon's socket).
//
// Rules every implementation keeps:
//
//   - A domain reference (ref) is what a user types: a domid, a name or a
//     UUID. A reference that names no domain gives an error matching
//     driver.ErrDomainNotFound (errors.Is); the CLI exits 3 on it.
//   - A name already in use gives an error matching driver.ErrDomainExists
//     (exit 6); a bad config an error matching *libxl.ConfigError (exit 5).
//   - ctx bounds the whole call; cancelling it (SIGINT) ends the call with
//     an error matching context.Canceled, and nothing is left half-made
//     (the driver's Create/Restore/Save guarantees).
//   - Methods are safe for concurrent use (shutdown -a runs Shutdown on
//     every domain at once).
//   - Close releases the backend; it never stops domains.
//
// Operations over several domains (shutdown -a, reboot -a, list DOMAIN…)
// are done by the CLI, one call per domain, as xl does: the interface
// stays per domain. The interface only grows: new methods or new fields
// in the option structs, whose zero value keeps today's behaviour.
type Backend interface {
	// List returns every domain, dom0 included (xl list).
	List(ctx context.Context) ([]libxl.DomainInfo, error)
	// Info returns one domain's libxl_dominfo.
	Info(ctx context.Context, ref string) (libxl.DomainInfo, error)
	// Config returns the libxl_domain_config JSON of a running domain, as
	// libxl_retrieve_domain_configuration builds it (xl list -l).
	Config(ctx context.Context, ref string) (libxl.JSONConfig, error)

	// Create builds and starts a domain from cfg.
	Create(ctx context.Context, cfg libxl.Config, opts CreateOptions) (driver.DomainSnapshot, error)
	// Restore builds a domain from a save file. opts.Config, if not nil,
	// replaces the config stored in the file (xl restore CFG FILE).
	Restore(ctx context.Context, path string, opts RestoreOptions) (driver.DomainSnapshot, error)
	// WaitGone returns once the domain is gone for good (destroyed or
	// saved; a restart by on_reboot/on_crash is not gone) or ctx ends.
	// create -F uses it.
	WaitGone(ctx context.Context, ref string) error

	// Destroy destroys a domain at once.
	Destroy(ctx context.Context, ref string) error
	// Shutdown asks a guest to power off.
	Shutdown(ctx context.Context, ref string, opts ShutdownOptions) error
	// Reboot asks a guest to reboot; its on_reboot decides what follows.
	Reboot(ctx context.Context, ref string, opts ShutdownOptions) error
	// Pause and Unpause pause and unpause a domain.
	Pause(ctx context.Context, ref string) error
	Unpause(ctx context.Context, ref string) error
	// Save writes the domain's state to path in xl's save-file format.
	// Without opts.Checkpoint or opts.LeavePaused the domain is destroyed.
	Save(ctx context.Context, ref, path string, opts SaveOptions) error

	// ConsoleTTY returns the pty path of a console of the domain. The
	// client opens the pty itself (the daemon runs on the same host).
	ConsoleTTY(ctx context.Context, ref string, opts ConsoleOptions) (string, error)
	// Events streams lifecycle events until the stream is closed or ctx
	// ends.
	Events(ctx context.Context, opts EventsOptions) (EventStream, error)

	// DomID resolves a domain name to its domid (xl domid).
	DomID(ctx context.Context, name string) (uint32, error)
	// DomName resolves a domid to its name (xl domname).
	DomName(ctx context.Context, domid uint32) (string, error)
	// Uptime returns how long the domain has run: since its start time in
	// xenstore, or since the host booted for dom0 (xl uptime).
	Uptime(ctx context.Context, ref string) (time.Duration, error)

	// SetMemory sets the balloon target in KiB (xl mem-set).
	SetMemory(ctx context.Context, ref string, targetKB uint64) error
	// SetVCPUs sets how many vcpus are online (xl vcpu-set).
	SetVCPUs(ctx context.Context, ref string, count int) error
	// VCPUs lists the domain's vcpus (xl vcpu-list).
	VCPUs(ctx context.Context, ref string) ([]libxl.VCPUInfo, error)

	// HostInfo describes the host and the hypervisor (xl info).
	HostInfo(ctx context.Context) (libxl.HostInfo, error)
	// XenVersion returns the version of Xen that libxl runs on.
	XenVersion(ctx context.Context) (libxl.VersionInfo, error)

	// Close releases the backend; domains keep running.
	Close() error
}

// CreateOptions tune Backend.Create.
type CreateOptions struct {
	// Paused leaves the domain paused (create -p).
	Paused bool
	// NoMonitor asks for no per-domain monitor to carry out the domain's
	// on_* actions after the CLI exits (create -e). A backend without
	// monitors ignores it.
	NoMonitor bool
	// Unparsed is an xl config that this goxl, built without cgo, could
	// not parse: its text, for the daemon to parse. Create's config is
	// nil then; only the daemon's backend takes it.
	Unparsed *daemon.WireConfig
}

// RestoreOptions tune Backend.Restore.
type RestoreOptions struct {
	// Config replaces the config stored in the save file when not nil.
	Config libxl.Config
	// Unparsed: as CreateOptions.Unparsed, in place of Config.
	Unparsed *daemon.WireConfig
	// Paused leaves the domain paused (restore -p).
	Paused bool
	// NoMonitor: as CreateOptions.NoMonitor (restore -e).
	NoMonitor bool
}

// ShutdownOptions tune Backend.Shutdown and Backend.Reboot.
type ShutdownOptions struct {
	// Wait returns once the request was carried out: the guest is down
	// (shutdown) or its old incarnation is gone (reboot).
	Wait bool
	// WaitDeath (-ww) waits until the old incarnation is dead (its
	// on_* action destroyed it, or a restart replaced it).
	WaitDeath bool
	// Force falls back to an ACPI power (shutdown) or reset (reboot)
	// event when the guest has no PV drivers, as xl's -F.
	Force bool
}

// SaveOptions tune Backend.Save.
type SaveOptions struct {
	// Checkpoint leaves the guest running after the save (save -c).
	Checkpoint bool
	// LeavePaused leaves the guest paused after the save (save -p).
	LeavePaused bool
}

// ConsoleOptions choose a console for Backend.ConsoleTTY.
type ConsoleOptions struct {
	// Type is "pv", "serial" or "" (the primary console: PV for PV and
	// PVH guests, serial for HVM guests).
	Type string
	// Num is the console number (console -n).
	Num int
}

// EventsOptions tune Backend.Events.
type EventsOptions struct {
	// Buffer is the stream's buffer; 0 means the backend's default.
	Buffer int
}

// EventStream is a stream of lifecycle events. C is closed when the
// stream ends; Err then says why (nil when Close ended it). Overflow is
// reported by Err as driver's event streams do.
type EventStream interface {
	C() <-chan driver.DomainEvent
	Err() error
	Close()
}

var _ EventStream = (*driver.EventStream)(nil)
