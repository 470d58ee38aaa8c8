package main

// The daemon side of the CLI: `goxl daemon` (one long-lived driver behind
// the local API), the choice between the daemon and in-process mode for
// every verb, and the per-domain monitor that create and restore start
// when no daemon runs (as xl forks one; -e opts out).
//
// Why a verb of the goxl binary and not a cmd/goxld: the daemon, its
// client and the monitor speak one protocol version and parse configs
// with one parser; one binary cannot be upgraded halfway. xl does the
// same: its monitor is xl itself.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/goxl/goxl/driver"
	"github.com/goxl/goxl/internal/daemon"
	"github.com/goxl/goxl/libxl"
)

func init() {
	verbs["daemon"] = &verb{name: "daemon", summary: "run the goxl daemon: one driver that owns domains and serves the CLI", max: 0, run: cmdDaemon,
		opts: []option{
			{long: "foreground", help: "stay in the foreground, log to stderr (systemd, development)"},
			{long: "socket", arg: "PATH", help: "the local API's socket (default " + daemon.DefaultSocket + ")"},
			{long: "log", arg: "FILE", help: "where a backgrounded daemon logs (default /var/log/xen/goxl-daemon.log)"},
			{long: "monitor", help: "internal: the per-domain monitor that create/restore start without a daemon"},
		},
		help: `Without --foreground the daemon detaches (new session, log file) and goxl
returns once its socket answers. SIGTERM stops it cleanly: operations in
flight are cancelled (a create cut short leaves nothing), subscribers get a
final error, domains keep running and keep their owner records, and the next
daemon takes them over. While the socket answers, every goxl verb goes
through the daemon (GOXL_NO_DAEMON=1 forces in-process mode). The protocol
is in docs/protocol.md.`,
		result: `{"socket": PATH, "pid": N} once the daemon answers`}
}

// socketPath is the daemon's socket: $GOXL_SOCKET or the default.
func socketPath() string {
	if s := os.Getenv("GOXL_SOCKET"); s != "" {
		return s
	}
	return daemon.DefaultSocket
}

// openBackend chooses the backend of a verb: the daemon when its socket
// answers, else this process, with a monitor for create and restore.
func openBackend(e *env, o openOptions) (Backend, error) {
	sock := socketPath()
	if os.Getenv("GOXL_NO_DAEMON") == "" {
		if _, err := os.Stat(sock); err == nil {
			c, err := daemon.Dial(sock)
			switch {
			case err == nil:
				return newRemoteBackend(e, c), nil
			case errors.Is(err, daemon.ErrNotRoot):
				return nil, errNotRootRemote(sock, err)
			}
		}
	}
	if err := handOff("in-process mode (no goxl daemon answers on " + sock + ")"); err != nil {
		return nil, err
	}
	b, err := openXen(e, o)
	if err != nil {
		return nil, err
	}
	return &monitoredBackend{Backend: b, e: e}, nil
}

// monitoredBackend is the in-process backend whose create and restore
// hand the domain to a monitor process that outlives the CLI.
type monitoredBackend struct {
	Backend
	e *env
}

func (b *monitoredBackend) Create(ctx context.Context, cfg libxl.Config, opts CreateOptions) (driver.DomainSnapshot, error) {
	if opts.NoMonitor {
		return b.Backend.Create(ctx, cfg, opts)
	}
	w, err := encodeConfig(cfg, opts.Unparsed)
	if err != nil {
		return driver.DomainSnapshot{}, err
	}
	return startMonitor(ctx, b.e, daemon.Request{Op: daemon.OpCreate, Config: w, Paused: opts.Paused})
}

func (b *monitoredBackend) Restore(ctx context.Context, path string, opts RestoreOptions) (driver.DomainSnapshot, error) {
	if opts.NoMonitor {
		return b.Backend.Restore(ctx, path, opts)
	}
	p, err := abs(path)
	if err != nil {
		return driver.DomainSnapshot{}, err
	}
	req := daemon.Request{Op: daemon.OpRestore, Path: p, Paused: opts.Paused}
	if opts.Config != nil || opts.Unparsed != nil {
		if req.Config, err = encodeConfig(opts.Config, opts.Unparsed); err != nil {
			return driver.DomainSnapshot{}, err
		}
	}
	return startMonitor(ctx, b.e, req)
}

// monitorLogDir is where monitors log, as xl's do (xl-NAME.log).
var monitorLogDir = "/var/log/xen"

// startMonitor runs `goxl daemon --monitor` in a new session: it builds
// the domain, reports on fd 3 (progress lines, then the result, in the
// protocol's Response lines), and stays to carry out the domain's on_*
// actions until the domain is gone. SIGINT here cancels the build there
// (nothing is left).
func startMonitor(ctx context.Context, e *env, req daemon.Request) (driver.DomainSnapshot, error) {
	var snap driver.DomainSnapshot
	exe, err := os.Executable()
	if err != nil {
		return snap, err
	}
	req.V = daemon.ProtocolVersion
	in, _ := json.Marshal(req)
	rr, rw, err := os.Pipe()
	if err != nil {
		return snap, err
	}
	defer rr.Close()
	os.MkdirAll(monitorLogDir, 0o755)
	logf, err := os.OpenFile(filepath.Join(monitorLogDir, fmt.Sprintf("goxl-monitor-%d.log", os.Getpid())), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		logf, _ = os.Open(os.DevNull)
	}
	defer logf.Close()
	args := []string{"daemon", "--monitor"}
	if e.logLvl != 0 {
		args = append([]string{"-v"}, args...)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdin = strings.NewReader(string(in) + "\n")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{rw}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		rw.Close()
		return snap, err
	}
	rw.Close()
	stop := context.AfterFunc(ctx, func() { cmd.Process.Signal(syscall.SIGTERM) })
	defer stop()
	// The monitor stays; reap it only if it exits (failed create).
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()

	br := bufio.NewReader(rr)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			if ctx.Err() != nil {
				return snap, ctx.Err()
			}
			return snap, fmt.Errorf("goxl monitor (pid %d) ended without an answer; see %s: %w", cmd.Process.Pid, logf.Name(), daemon.ErrDaemonLost)
		}
		var resp daemon.Response
		if err := json.Unmarshal(line, &resp); err != nil {
			return snap, fmt.Errorf("goxl monitor: malformed answer: %w", err)
		}
		switch {
		case resp.Progress != "":
			e.progress("%s", resp.Progress)
		case resp.Done && resp.Error != nil:
			<-exited
			err := daemon.RemoteErrorOf(resp.Error)
			if ctx.Err() != nil {
				return snap, errors.Join(ctx.Err(), err)
			}
			return snap, err
		case resp.Done:
			if err := json.Unmarshal(resp.Result, &snap); err != nil {
				return snap, err
			}
			e.progress("monitor pid %d carries out the on_* actions of %s (log: %s)", cmd.Process.Pid, snap.Name, logf.Name())
			return snap, nil
		}
	}
}

func cmdDaemon(e *env, p *parsed) error {
	if err := handOff("goxl daemon"); err != nil {
		return err
	}
	sock := socketPath()
	if p.flag("socket") {
		sock = p.value("socket")
	}
	switch {
	case p.flag("monitor"):
		return runMonitor(e)
	case p.flag("foreground"):
		return runDaemon(e, sock)
	}
	return detachDaemon(e, sock, p.value("log"))
}

func daemonLogger(e *env) *slog.Logger {
	level := slog.LevelInfo
	if e.logLvl != 0 {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(e.errw, &slog.HandlerOptions{Level: level}))
}

// runDaemon serves until SIGTERM or SIGINT (e.ctx), then stops cleanly.
func runDaemon(e *env, sock string) error {
	if err := checkDom0(); err != nil {
		return err
	}
	logger := daemonLogger(e)
	d, err := daemon.Open(daemon.Options{Socket: sock, Logger: logger, Driver: driver.Options{Logger: logger, LogLevel: e.logLvl}})
	if err != nil {
		return err
	}
	logger.Info("goxl daemon: serving", "socket", sock, "pid", os.Getpid(), "protocol", daemon.ProtocolVersion)
	<-e.ctx.Done()
	logger.Info("goxl daemon: stopping")
	// A stop that hangs is a bug: say where, once, before systemd's
	// TimeoutStopSec (90 s in contrib/systemd/goxld.service) kills it.
	watchdog := time.AfterFunc(75*time.Second, func() {
		logger.Error("goxl daemon: still stopping after 75 s; goroutines follow")
		pprof.Lookup("goroutine").WriteTo(e.errw, 2)
	})
	defer watchdog.Stop()
	if err := d.Stop(); err != nil {
		return err
	}
	logger.Info("goxl daemon: stopped")
	return nil
}

// detachDaemon starts `goxl daemon --foreground` in a new session with
// its output in a log file, and returns once its socket answers.
func detachDaemon(e *env, sock, logPath string) error {
	if err := checkDom0(); err != nil {
		return err
	}
	if ok, _ := daemon.SocketAnswers(sock); ok {
		return fmt.Errorf("a goxl daemon already answers on %s", sock)
	}
	if logPath == "" {
		logPath = "/var/log/xen/goxl-daemon.log"
	}
	os.MkdirAll(filepath.Dir(logPath), 0o755)
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, "daemon", "--foreground", "--socket", sock)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(60 * time.Second)
	for {
		if c, err := daemon.Dial(sock); err == nil {
			var h daemon.Hello
			if err := c.Do(e.ctx, daemon.Request{Op: daemon.OpHello}, &h); err == nil {
				e.progress("daemon pid %d answers on %s (log: %s)", h.PID, sock, logPath)
				if e.json {
					return e.result(map[string]any{"socket": sock, "pid": h.PID})
				}
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("the daemon exited before answering (%v); see %s", err, logPath)
		case <-deadline:
			return fmt.Errorf("the daemon (pid %d) did not answer on %s within 60 s; see %s", cmd.Process.Pid, sock, logPath)
		case <-e.ctx.Done():
			return e.ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// runMonitor is the monitor process: it builds one domain as asked on
// stdin, answers on fd 3, then carries out the domain's on_* actions
// until it is gone. SIGTERM before the answer cancels the build; after
// it, the monitor leaves (the domain keeps running; a daemon started
// later takes it over).
func runMonitor(e *env) error {
	answer := os.NewFile(3, "answer")
	if answer == nil {
		return usageError{"--monitor is internal: goxl create starts it"}
	}
	w := json.NewEncoder(answer)
	reply := func(r daemon.Response) { r.V = daemon.ProtocolVersion; w.Encode(r) }
	fail := func(err error) error {
		reply(daemon.Response{Done: true, Error: daemon.WireErrorOf(err)})
		answer.Close()
		return err
	}
	var req daemon.Request
	line, err := bufio.NewReader(os.Stdin).ReadBytes('\n')
	if err == nil || errors.Is(err, io.EOF) {
		err = json.Unmarshal(line, &req)
	}
	if err != nil {
		return fail(usageError{"monitor: malformed request: " + err.Error()})
	}
	if err := checkDom0(); err != nil {
		return fail(err)
	}
	logger := daemonLogger(e)
	m, err := daemon.OpenMonitor(daemon.MonitorOptions{Logger: logger, LogLevel: e.logLvl,
		Progress: func(msg string) { reply(daemon.Response{Progress: msg}) }})
	if err != nil {
		return fail(err)
	}
	defer m.Close()
	dom, err := m.Build(e.ctx, &req)
	if err != nil {
		return fail(err)
	}
	b, _ := json.Marshal(dom.Snapshot())
	reply(daemon.Response{Done: true, Result: b})
	answer.Close()
	m.Silence()
	logger.Info("goxl monitor: watching", "domain", dom.Snapshot().Name, "pid", os.Getpid())
	m.WaitGone(e.ctx, dom)
	logger.Info("goxl monitor: done", "domain", dom.Snapshot().Name, "state", dom.Snapshot().State)
	return nil
}
