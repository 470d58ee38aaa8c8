package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/goxl/goxl/driver"
	"github.com/goxl/goxl/libxl"
	"golang.org/x/sys/unix"
)

// Options configure a daemon.
type Options struct {
	// Socket is the unix socket of the local API (DefaultSocket).
	Socket string
	// OwnerDir holds the ownership locks (DefaultOwnerDir).
	OwnerDir string
	// AllowedUIDs may use the API (nil: root only). The socket is mode
	// 0600 as well; the peer-credential check holds whatever the mode.
	AllowedUIDs []uint32
	// EventLog is how many events the daemon keeps for resuming
	// subscribers (0: 4096).
	EventLog int
	// StateDir keeps the event numbering across restarts (events.seq;
	// empty: the socket's directory, /run/goxl).
	StateDir string
	// ResyncInterval is the Domains' resync and the take-over scan period
	// (0: 5 s).
	ResyncInterval time.Duration
	// StopTimeout bounds how long a stop waits for operations in flight
	// after cancelling them (0: 60 s).
	StopTimeout time.Duration
	Logger      *slog.Logger
	// SharedCtx runs create, restore and save on the driver-wide ctx
	// instead of a ctx of their own (the contract model keeps its fake
	// domains per ctx; tests set it).
	SharedCtx bool
	// Driver configures the driver the daemon opens.
	Driver driver.Options
}

// Daemon is one long-lived driver behind the local API.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	drv     *driver.Driver
	doms    *driver.Domains
	keeper  *Keeper
	events  *eventLog
	seqs    seqStore
	started time.Time

	ln       *net.UnixListener
	opCtx    context.Context // cancelled when the daemon stops: ends every operation
	opCancel context.CancelFunc
	stopping chan struct{}
	handlers sync.WaitGroup
	bg       sync.WaitGroup

	// idleMu guards idle: the connections that have not sent their
	// request yet (a client's kept connection, see Client.spare). Stop
	// closes them: nothing is in flight on them. A leaf lock.
	idleMu sync.Mutex
	idle   map[*net.UnixConn]struct{}
}

// Open starts the driver, recovers what a previous owner left (half-built
// domains are destroyed), adopts every domain and takes over those whose
// goxl owner is gone, and listens on the socket.
func Open(opts Options) (*Daemon, error) {
	if opts.Socket == "" {
		opts.Socket = DefaultSocket
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.AllowedUIDs == nil {
		opts.AllowedUIDs = []uint32{0}
	}
	if opts.ResyncInterval == 0 {
		opts.ResyncInterval = 5 * time.Second
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = time.Minute
	}
	if opts.Driver.Logger == nil {
		opts.Driver.Logger = opts.Logger
	}
	owners, err := NewOwners(opts.OwnerDir, "daemon")
	if err != nil {
		return nil, err
	}
	if opts.StateDir == "" {
		opts.StateDir = filepath.Dir(opts.Socket)
	}
	seqs, err := newSeqStore(opts.StateDir)
	if err != nil {
		return nil, err
	}
	numbering, err := seqs.load()
	if err != nil {
		return nil, err
	}
	d := &Daemon{opts: opts, log: opts.Logger, seqs: seqs, started: time.Now(), stopping: make(chan struct{})}
	d.events = newEventLogFrom(opts.EventLog, numbering.Next, func(upTo uint64) error {
		err := seqs.store(seqState{Next: upTo})
		if err != nil {
			opts.Logger.Error("goxl daemon: cannot persist the event numbering", "err", err)
		}
		return err
	})
	if !numbering.Clean {
		opts.Logger.Warn("goxl daemon: the previous daemon did not stop cleanly; event numbers resume above every number it may have used", "next", numbering.Next)
	}
	d.opCtx, d.opCancel = context.WithCancel(context.Background())
	d.keeper = NewKeeper(owners, opts.Logger)
	ln, err := listen(opts.Socket)
	if err != nil {
		return nil, err
	}
	d.ln = ln
	fail := func(err error) (*Daemon, error) {
		ln.Close()
		os.Remove(opts.Socket)
		if d.doms != nil {
			d.doms.Close()
		}
		if d.drv != nil {
			d.drv.Close()
		}
		return nil, err
	}
	if d.drv, err = driver.New(opts.Driver); err != nil {
		return fail(err)
	}
	d.doms, err = driver.NewDomains(d.drv, driver.DomainsOptions{
		Logger: opts.Logger, PerOperationCtx: !opts.SharedCtx, ResyncInterval: opts.ResyncInterval,
		EventBuffer: 256, OnRestart: d.keeper.OnRestart, OnRestarting: d.keeper.OnRestarting,
		Progress: func(msg string) { opts.Logger.Info("goxl daemon: " + msg) },
	})
	if err != nil {
		return fail(err)
	}
	d.keeper.SetDomains(d.doms, d.drv.Ctx())
	sub := d.doms.Subscribe(1 << 16)
	d.recover()
	for _, name := range d.keeper.TakeOver() {
		d.events.append(driver.DomainEvent{Time: time.Now(), Name: name, Kind: "taken-over"})
	}
	d.bg.Add(2)
	go d.pump(sub)
	go d.takeOverLoop()
	d.handlers.Add(1)
	go d.accept()
	return d, nil
}

// Domains returns the daemon's domain manager (for tests and benches).
func (d *Daemon) Domains() *driver.Domains { return d.doms }

// Socket returns the socket path.
func (d *Daemon) Socket() string { return d.opts.Socket }

// listen creates the socket with mode 0600 from the start (umask), after
// refusing to replace a live daemon's socket.
func listen(path string) (*net.UnixListener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("goxl daemon: another daemon answers on %s", path)
	}
	os.Remove(path)
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// pump numbers the driver's events into the log. Should the daemon's own
// subscription overflow (it has a 65,536-event buffer and never blocks),
// a "resync" event marks the gap and the daemon subscribes again.
func (d *Daemon) pump(sub *driver.EventStream) {
	defer d.bg.Done()
	for {
		for e := range sub.C() {
			d.events.append(e)
			d.keeper.Observe(e)
		}
		if !errors.Is(sub.Err(), driver.ErrStreamOverflow) {
			return
		}
		d.events.append(driver.DomainEvent{Time: time.Now(), Kind: "resync"})
		select {
		case <-d.stopping:
			return
		default:
		}
		sub = d.doms.Subscribe(1 << 16)
	}
}

// recover destroys what builders that died left half-built (see
// Keeper.Recover) and reports each.
func (d *Daemon) recover() {
	for _, r := range d.keeper.Recover(d.opCtx) {
		d.events.append(driver.DomainEvent{Time: time.Now(), DomID: r.DomID, Name: r.Name, Kind: "recovered", State: driver.StateDestroyed})
	}
}

// takeOverLoop destroys what a monitor killed mid-build (a create or an
// on_* restart) left half-built, and takes over domains whose goxl owner
// (a monitor) died.
func (d *Daemon) takeOverLoop() {
	defer d.bg.Done()
	if d.opts.ResyncInterval < 0 {
		<-d.stopping
		return
	}
	t := time.NewTicker(d.opts.ResyncInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			d.recover()
			for _, name := range d.keeper.TakeOver() {
				d.events.append(driver.DomainEvent{Time: time.Now(), Name: name, Kind: "taken-over"})
			}
		case <-d.stopping:
			return
		}
	}
}

// Stop is the clean stop of SIGTERM: no new connection or request;
// operations in flight are cancelled (a create that is cut short destroys
// what it built: the driver's guarantee), waited for up to StopTimeout;
// event subscribers get a final "daemon_stopping" error; then the
// manager and the driver close. Domains keep running and keep their
// owner records: the next daemon takes them over.
func (d *Daemon) Stop() error {
	select {
	case <-d.stopping:
		return nil
	default:
	}
	close(d.stopping)
	d.ln.Close()
	d.idleMu.Lock()
	for c := range d.idle {
		c.Close()
	}
	d.idleMu.Unlock()
	d.opCancel()
	d.events.close()
	done := make(chan struct{})
	go func() { d.handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d.opts.StopTimeout):
		d.log.Error("goxl daemon: operations still running after the stop timeout; closing anyway")
	}
	err := d.doms.Close()
	d.bg.Wait()
	// Nothing appends any more: the next daemon numbers on from here.
	_, next := d.events.bounds()
	serr := d.seqs.store(seqState{Next: next, Clean: true})
	return errors.Join(err, d.drv.Close(), serr)
}

// waitingForRequest adds c to (or removes it from) the idle set. It
// refuses to add once the daemon is stopping, so that Stop's sweep of
// the set misses no connection.
func (d *Daemon) waitingForRequest(c *net.UnixConn, waiting bool) bool {
	d.idleMu.Lock()
	defer d.idleMu.Unlock()
	if !waiting {
		delete(d.idle, c)
		return true
	}
	select {
	case <-d.stopping:
		return false
	default:
	}
	if d.idle == nil {
		d.idle = map[*net.UnixConn]struct{}{}
	}
	d.idle[c] = struct{}{}
	return true
}

func (d *Daemon) accept() {
	defer d.handlers.Done()
	for {
		c, err := d.ln.AcceptUnix()
		if err != nil {
			select {
			case <-d.stopping:
				return
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			d.log.Error("goxl daemon: accept", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		d.handlers.Add(1)
		go func() {
			defer d.handlers.Done()
			d.serve(c)
		}()
	}
}

// peerUID is the connecting process's uid (SO_PEERCRED).
func peerUID(c *net.UnixConn) (uint32, int32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, 0, err
	}
	if cerr != nil {
		return 0, 0, cerr
	}
	return cred.Uid, cred.Pid, nil
}

// responder writes a request's lines.
type responder struct {
	mu  sync.Mutex
	enc *json.Encoder
	err error
}

func (r *responder) send(resp Response) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	resp.V = ProtocolVersion
	r.err = r.enc.Encode(resp)
	return r.err
}

func (r *responder) progress(format string, args ...any) {
	r.send(Response{Progress: fmt.Sprintf(format, args...)})
}

// maxRequest bounds a request line (a config is a few KB).
const maxRequest = 4 << 20

func (d *Daemon) serve(c *net.UnixConn) {
	defer c.Close()
	w := &responder{enc: json.NewEncoder(c)}
	br := bufio.NewReaderSize(c, 64<<10)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if !d.waitingForRequest(c, true) {
		return // stopping
	}
	line, err := readLine(br)
	d.waitingForRequest(c, false)
	c.SetReadDeadline(time.Time{})
	if err != nil {
		return
	}
	// The request is read first even from a client that is refused, so
	// that the refusal reaches it (closing with unread data resets).
	uid, pid, err := peerUID(c)
	if err != nil || !d.allowed(uid) {
		d.log.Warn("goxl daemon: refused a client", "uid", uid, "pid", pid, "err", err)
		w.send(Response{Done: true, Error: &WireError{Code: CodePermission,
			Message: fmt.Sprintf("goxl daemon: permission denied: uid %d may not use the local API (root only)", uid)}})
		return
	}
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		w.send(Response{Done: true, Error: &WireError{Code: CodeUsage, Message: "goxl daemon: malformed request: " + err.Error()}})
		return
	}
	if req.V != ProtocolVersion {
		w.send(Response{Done: true, Error: versionError(req.V)})
		return
	}
	select {
	case <-d.stopping:
		w.send(Response{Done: true, Error: wireError(ErrDaemonStopping)})
		return
	default:
	}
	ctx, cancel := context.WithCancel(d.opCtx)
	defer cancel()
	// The client hanging up (or its SIGINT) cancels its operation, as a
	// SIGINT cancels an in-process one.
	go func() {
		var b [1]byte
		br.Read(b[:])
		cancel()
	}()
	result, err := d.dispatch(ctx, &req, w)
	if err != nil {
		select {
		case <-d.stopping:
			if ctx.Err() != nil {
				err = fmt.Errorf("%w: %v", ErrDaemonStopping, err)
			}
		default:
		}
		w.send(Response{Done: true, Error: wireError(err)})
		return
	}
	b, err := json.Marshal(result)
	if err != nil {
		w.send(Response{Done: true, Error: wireError(err)})
		return
	}
	w.send(Response{Done: true, Result: b})
}

func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		part, isPrefix, err := br.ReadLine()
		if err != nil {
			return nil, err
		}
		buf = append(buf, part...)
		if len(buf) > maxRequest {
			return nil, errors.New("request too long")
		}
		if !isPrefix {
			return buf, nil
		}
	}
}

func (d *Daemon) allowed(uid uint32) bool {
	for _, u := range d.opts.AllowedUIDs {
		if u == uid {
			return true
		}
	}
	return false
}

type usageErr string

func (u usageErr) Error() string { return string(u) }

func (d *Daemon) dispatch(ctx context.Context, req *Request, w *responder) (any, error) {
	needDom := func() error {
		if req.Dom == "" {
			return usageErr(req.Op + ": no domain named")
		}
		return nil
	}
	switch req.Op {
	case OpHello:
		first, next := d.events.bounds()
		return Hello{Protocol: ProtocolVersion, PID: os.Getpid(), Started: d.started, Domains: len(d.doms.Known()), Owned: d.keeper.Tracked(), FirstSeq: first, NextSeq: next}, nil
	case OpList:
		return d.doms.List()
	case OpDomains:
		var out []OwnedDomain
		for _, s := range d.doms.Known() {
			out = append(out, OwnedDomain{DomainSnapshot: s, Owner: d.keeper.OwnerOf(s)})
		}
		return out, nil
	case OpInfo:
		if err := needDom(); err != nil {
			return nil, err
		}
		return d.doms.Info(req.Dom)
	case OpConfig:
		if err := needDom(); err != nil {
			return nil, err
		}
		js, err := d.doms.DomainConfig(ctx, req.Dom)
		if err != nil {
			return nil, err
		}
		return json.RawMessage(js), nil
	case OpCreate:
		cfg, err := req.Config.Decode()
		if err != nil {
			return nil, err
		}
		sum, err := cfg.Summary()
		if err != nil {
			// A config that parses but cannot be used (no name, a bad
			// type) is a config error, as the CLI reports it.
			return nil, libxl.AsConfigError(req.Config.File, err)
		}
		w.progress("creating %s", sum.Name)
		dom, err := d.keeper.Create(ctx, cfg, driver.CreateOptions{Paused: req.Paused})
		if err != nil {
			return nil, err
		}
		return dom.Snapshot(), nil
	case OpRestore:
		if !filepath.IsAbs(req.Path) {
			return nil, usageErr("restore: the path must be absolute (the client resolves it)")
		}
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
		w.progress("restoring from %s", req.Path)
		dom, err := d.keeper.Restore(ctx, req.Path, cfg, driver.CreateOptions{Paused: req.Paused})
		if err != nil {
			return nil, err
		}
		return dom.Snapshot(), nil
	case OpWaitGone:
		if err := needDom(); err != nil {
			return nil, err
		}
		if err := d.doms.WaitGone(ctx, req.Dom); err != nil {
			return nil, err
		}
		return map[string]string{"domain": req.Dom, "done": req.Op}, nil
	case OpDestroy, OpPause, OpUnpause:
		if err := needDom(); err != nil {
			return nil, err
		}
		op := map[string]func(context.Context, string) error{
			OpDestroy: d.doms.Destroy, OpPause: d.doms.Pause, OpUnpause: d.doms.Unpause,
		}[req.Op]
		if err := op(ctx, req.Dom); err != nil {
			return nil, err
		}
		return map[string]string{"domain": req.Dom, "done": req.Op}, nil
	case OpShutdown, OpReboot:
		if err := needDom(); err != nil {
			return nil, err
		}
		if req.Wait || req.WaitDeath {
			w.progress("waiting for %s to %s", req.Dom, req.Op)
		}
		opts := driver.ShutdownOptions{Wait: req.Wait, WaitDeath: req.WaitDeath, Force: req.Force}
		var err error
		if req.Op == OpShutdown {
			err = d.doms.ShutdownWith(ctx, req.Dom, opts)
		} else {
			err = d.doms.RebootWith(ctx, req.Dom, opts)
		}
		if err != nil {
			return nil, err
		}
		return map[string]string{"domain": req.Dom, "done": req.Op}, nil
	case OpSave:
		if err := needDom(); err != nil {
			return nil, err
		}
		if !filepath.IsAbs(req.Path) {
			return nil, usageErr("save: the path must be absolute (the client resolves it)")
		}
		w.progress("saving %s to %s", req.Dom, req.Path)
		if err := d.doms.SaveWith(ctx, req.Dom, req.Path, driver.SaveOptions{Checkpoint: req.Checkpoint, LeavePaused: req.LeavePaused}); err != nil {
			return nil, err
		}
		return map[string]string{"domain": req.Dom, "done": req.Op, "file": req.Path}, nil
	case OpConsole:
		if err := needDom(); err != nil {
			return nil, err
		}
		tty, err := d.consoleTTY(req)
		if err != nil {
			return nil, err
		}
		return ConsoleResult{TTY: tty}, nil
	case OpDomID:
		if err := needDom(); err != nil {
			return nil, err
		}
		id, err := d.drv.Ctx().DomainIDByName(req.Dom)
		if err != nil {
			return nil, err
		}
		return DomIDResult{DomID: id}, nil
	case OpDomName:
		name, err := d.doms.DomainName(req.DomID)
		if err != nil {
			return nil, err
		}
		return DomNameResult{Name: name}, nil
	case OpUptime:
		if err := needDom(); err != nil {
			return nil, err
		}
		up, err := d.doms.Uptime(req.Dom)
		if err != nil {
			return nil, err
		}
		return UptimeResult{Seconds: up.Seconds()}, nil
	case OpMemSet:
		if err := needDom(); err != nil {
			return nil, err
		}
		if err := d.doms.SetMemory(ctx, req.Dom, req.MemKB); err != nil {
			return nil, err
		}
		return map[string]string{"domain": req.Dom, "done": req.Op}, nil
	case OpVCPUSet:
		if err := needDom(); err != nil {
			return nil, err
		}
		if err := d.doms.SetVCPUs(ctx, req.Dom, req.VCPUs); err != nil {
			return nil, err
		}
		return map[string]string{"domain": req.Dom, "done": req.Op}, nil
	case OpVCPUList:
		if err := needDom(); err != nil {
			return nil, err
		}
		return d.doms.VCPUs(req.Dom)
	case OpHostInfo:
		return d.doms.HostInfo()
	case OpXenVersion:
		return d.doms.XenVersion(), nil
	case OpEvents:
		return nil, d.stream(ctx, req.Since, w)
	}
	return nil, usageErr(fmt.Sprintf("unknown operation %q", req.Op))
}

// stream sends events from since on until the client leaves (nil), it
// falls behind (overflow) or the daemon stops.
func (d *Daemon) stream(ctx context.Context, since uint64, w *responder) error {
	cursor, err := d.events.start(since)
	if err != nil {
		return err
	}
	// The first line tells the client where its stream starts.
	if err := w.send(Response{Progress: fmt.Sprintf("events from %d", cursor)}); err != nil {
		return nil
	}
	for {
		evs, err := d.events.read(ctx, cursor, 256)
		if err != nil {
			if ctx.Err() != nil && !errors.Is(err, ErrDaemonStopping) {
				select {
				case <-d.stopping:
					return ErrDaemonStopping
				default:
					return nil // the client left
				}
			}
			return err
		}
		for i := range evs {
			if err := w.send(Response{Event: &evs[i]}); err != nil {
				return nil
			}
		}
		cursor = evs[len(evs)-1].Seq + 1
	}
}

// consoleTTY resolves a console as the CLI's local backend does.
func (d *Daemon) consoleTTY(req *Request) (string, error) {
	if req.ConsoleType == "" && req.ConsoleNum == 0 {
		return d.doms.Console(req.Dom)
	}
	typ := libxl.ConsolePV
	switch req.ConsoleType {
	case "", "pv":
	case "serial":
		typ = libxl.ConsoleSerial
	default:
		return "", usageErr(fmt.Sprintf("console type %q: want pv or serial", req.ConsoleType))
	}
	dom, err := d.doms.Lookup(req.Dom)
	if err != nil {
		return "", err
	}
	return d.doms.ConsoleTTYOf(dom.Snapshot().DomID, req.ConsoleNum, typ)
}

// ParseConfig reads a config as the CLI does: libxl JSON when it starts
// with '{', xl's format otherwise.
func ParseConfig(file string, data []byte) (libxl.Config, error) {
	if t := strings.TrimSpace(string(data)); strings.HasPrefix(t, "{") {
		cfg := libxl.JSONConfig(t)
		if _, err := cfg.Summary(); err != nil {
			return nil, err
		}
		return cfg, nil
	}
	return libxl.ParseXL(file, data)
}
