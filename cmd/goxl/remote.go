package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/goxl/goxl/driver"
	"github.com/goxl/goxl/internal/daemon"
	"github.com/goxl/goxl/libxl"
)

// remoteBackend forwards every Backend call to a goxl daemon over its
// socket (docs/protocol.md), one connection per call. It opens no libxl
// ctx and adopts nothing: that is what makes the CLI as fast as xl.
type remoteBackend struct {
	c *daemon.Client
}

var _ Backend = (*remoteBackend)(nil)

// newRemoteBackend sends the verb's requests through c (from daemon.Dial:
// its connection serves the first one).
func newRemoteBackend(e *env, c *daemon.Client) *remoteBackend {
	c.Progress = func(msg string) { e.progress("%s", msg) }
	return &remoteBackend{c: c}
}

type done = map[string]string

func (b *remoteBackend) do(ctx context.Context, req daemon.Request, out any) error {
	if out == nil {
		out = &done{}
	}
	return b.c.Do(ctx, req, out)
}

// abs resolves a path on the client's side: the daemon's working
// directory is not the user's.
func abs(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	return filepath.Abs(path)
}

// absConfig makes the file paths of a goxl config absolute, for the same
// reason.
func absConfig(cfg libxl.Config) libxl.Config {
	dir, err := os.Getwd()
	if err != nil {
		return cfg
	}
	return daemon.ResolvePaths(cfg, dir)
}

// encodeConfig puts a create's or restore's config on the wire: the
// parsed config, or the text of an xl config this goxl could not parse.
func encodeConfig(cfg libxl.Config, unparsed *daemon.WireConfig) (*daemon.WireConfig, error) {
	if cfg == nil && unparsed != nil {
		return unparsed, nil
	}
	return daemon.EncodeConfig(absConfig(cfg))
}

func (b *remoteBackend) List(ctx context.Context) ([]libxl.DomainInfo, error) {
	var out []libxl.DomainInfo
	err := b.do(ctx, daemon.Request{Op: daemon.OpList}, &out)
	daemon.FixDomainInfos(out)
	return out, err
}

func (b *remoteBackend) Info(ctx context.Context, ref string) (libxl.DomainInfo, error) {
	var out [1]libxl.DomainInfo
	err := b.do(ctx, daemon.Request{Op: daemon.OpInfo, Dom: ref}, &out[0])
	daemon.FixDomainInfos(out[:])
	return out[0], err
}

func (b *remoteBackend) Config(ctx context.Context, ref string) (libxl.JSONConfig, error) {
	var out json.RawMessage
	err := b.do(ctx, daemon.Request{Op: daemon.OpConfig, Dom: ref}, &out)
	return libxl.JSONConfig(out), err
}

func (b *remoteBackend) Create(ctx context.Context, cfg libxl.Config, opts CreateOptions) (driver.DomainSnapshot, error) {
	var out driver.DomainSnapshot
	w, err := encodeConfig(cfg, opts.Unparsed)
	if err != nil {
		return out, err
	}
	return out, b.do(ctx, daemon.Request{Op: daemon.OpCreate, Config: w, Paused: opts.Paused}, &out)
}

func (b *remoteBackend) Restore(ctx context.Context, path string, opts RestoreOptions) (driver.DomainSnapshot, error) {
	var out driver.DomainSnapshot
	p, err := abs(path)
	if err != nil {
		return out, err
	}
	req := daemon.Request{Op: daemon.OpRestore, Path: p, Paused: opts.Paused}
	if opts.Config != nil || opts.Unparsed != nil {
		if req.Config, err = encodeConfig(opts.Config, opts.Unparsed); err != nil {
			return out, err
		}
	}
	return out, b.do(ctx, req, &out)
}

func (b *remoteBackend) WaitGone(ctx context.Context, ref string) error {
	return b.do(ctx, daemon.Request{Op: daemon.OpWaitGone, Dom: ref}, nil)
}

func (b *remoteBackend) Destroy(ctx context.Context, ref string) error {
	return b.do(ctx, daemon.Request{Op: daemon.OpDestroy, Dom: ref}, nil)
}

func (b *remoteBackend) Shutdown(ctx context.Context, ref string, opts ShutdownOptions) error {
	return b.do(ctx, daemon.Request{Op: daemon.OpShutdown, Dom: ref, Wait: opts.Wait, WaitDeath: opts.WaitDeath, Force: opts.Force}, nil)
}

func (b *remoteBackend) Reboot(ctx context.Context, ref string, opts ShutdownOptions) error {
	return b.do(ctx, daemon.Request{Op: daemon.OpReboot, Dom: ref, Wait: opts.Wait, WaitDeath: opts.WaitDeath, Force: opts.Force}, nil)
}

func (b *remoteBackend) Pause(ctx context.Context, ref string) error {
	return b.do(ctx, daemon.Request{Op: daemon.OpPause, Dom: ref}, nil)
}

func (b *remoteBackend) Unpause(ctx context.Context, ref string) error {
	return b.do(ctx, daemon.Request{Op: daemon.OpUnpause, Dom: ref}, nil)
}

func (b *remoteBackend) Save(ctx context.Context, ref, path string, opts SaveOptions) error {
	p, err := abs(path)
	if err != nil {
		return err
	}
	return b.do(ctx, daemon.Request{Op: daemon.OpSave, Dom: ref, Path: p, Checkpoint: opts.Checkpoint, LeavePaused: opts.LeavePaused}, nil)
}

func (b *remoteBackend) ConsoleTTY(ctx context.Context, ref string, opts ConsoleOptions) (string, error) {
	var out daemon.ConsoleResult
	err := b.do(ctx, daemon.Request{Op: daemon.OpConsole, Dom: ref, ConsoleType: opts.Type, ConsoleNum: opts.Num}, &out)
	return out.TTY, err
}

func (b *remoteBackend) DomID(ctx context.Context, name string) (uint32, error) {
	var out daemon.DomIDResult
	err := b.do(ctx, daemon.Request{Op: daemon.OpDomID, Dom: name}, &out)
	return out.DomID, err
}

func (b *remoteBackend) DomName(ctx context.Context, domid uint32) (string, error) {
	var out daemon.DomNameResult
	err := b.do(ctx, daemon.Request{Op: daemon.OpDomName, DomID: domid}, &out)
	return out.Name, err
}

func (b *remoteBackend) Uptime(ctx context.Context, ref string) (time.Duration, error) {
	var out daemon.UptimeResult
	err := b.do(ctx, daemon.Request{Op: daemon.OpUptime, Dom: ref}, &out)
	return time.Duration(out.Seconds * float64(time.Second)), err
}

func (b *remoteBackend) SetMemory(ctx context.Context, ref string, targetKB uint64) error {
	return b.do(ctx, daemon.Request{Op: daemon.OpMemSet, Dom: ref, MemKB: targetKB}, nil)
}

func (b *remoteBackend) SetVCPUs(ctx context.Context, ref string, count int) error {
	return b.do(ctx, daemon.Request{Op: daemon.OpVCPUSet, Dom: ref, VCPUs: count}, nil)
}

func (b *remoteBackend) VCPUs(ctx context.Context, ref string) ([]libxl.VCPUInfo, error) {
	var out []libxl.VCPUInfo
	return out, b.do(ctx, daemon.Request{Op: daemon.OpVCPUList, Dom: ref}, &out)
}

func (b *remoteBackend) HostInfo(ctx context.Context) (libxl.HostInfo, error) {
	var out libxl.HostInfo
	return out, b.do(ctx, daemon.Request{Op: daemon.OpHostInfo}, &out)
}

func (b *remoteBackend) XenVersion(ctx context.Context) (libxl.VersionInfo, error) {
	var out libxl.VersionInfo
	return out, b.do(ctx, daemon.Request{Op: daemon.OpXenVersion}, &out)
}

func (b *remoteBackend) Close() error { return b.c.Close() }

// Events subscribes from now on. If the connection drops (daemon
// restart), the stream ends with ErrDaemonLost; a caller that wants to
// resume passes the last Seq it saw as daemon.Request.Since.
func (b *remoteBackend) Events(ctx context.Context, opts EventsOptions) (EventStream, error) {
	buf := opts.Buffer
	if buf <= 0 {
		buf = 256
	}
	s := &remoteStream{ch: make(chan driver.DomainEvent, buf), stop: make(chan struct{})}
	sctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	go func() {
		defer close(s.ch)
		_, err := b.c.Call(sctx, daemon.Request{Op: daemon.OpEvents}, func(ev daemon.Event) bool {
			select {
			case s.ch <- ev.DomainEvent:
				return true
			case <-sctx.Done():
				return false
			default:
				// The consumer fell behind: as the driver's streams, end
				// with an overflow rather than block the daemon's socket.
				s.err = driver.ErrStreamOverflow
				return false
			}
		})
		if s.err == nil && err != nil && !errors.Is(err, context.Canceled) {
			s.err = err
		}
	}()
	return s, nil
}

// streamEvents prints the daemon's numbered events from since (0: from
// now on) until ctx ends (nil) or the stream fails (overflow, the daemon
// gone).
func (b *remoteBackend) streamEvents(ctx context.Context, since uint64, print func(daemon.Event)) error {
	_, err := b.c.Call(ctx, daemon.Request{Op: daemon.OpEvents, Since: since}, func(ev daemon.Event) bool {
		print(ev)
		return true
	})
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil // SIGINT: the usual end of a stream
	}
	return err
}

type remoteStream struct {
	ch     chan driver.DomainEvent
	err    error // written before ch is closed
	cancel context.CancelFunc
	stop   chan struct{}
}

func (s *remoteStream) C() <-chan driver.DomainEvent { return s.ch }
func (s *remoteStream) Err() error                   { return s.err }
func (s *remoteStream) Close()                       { s.cancel() }

// errNotRootRemote explains why a non-root user gets no in-process mode
// either when a daemon runs.
func errNotRootRemote(socket string, err error) error {
	return fmt.Errorf("%w: a goxl daemon runs on %s, and its API is for root only", err, socket)
}
