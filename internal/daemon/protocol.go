package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/goxl/goxl/driver"
	"github.com/goxl/goxl/libxl"
)

// ProtocolVersion is the version of the local API (docs/protocol.md). A
// request with another version is refused with CodeVersion.
const ProtocolVersion = 1

// DefaultSocket is where the daemon listens.
const DefaultSocket = "/run/goxl/goxld.sock"

// The operations: one per Backend method of the CLI (so every verb),
// plus events, hello and domains.
const (
	OpHello      = "hello"
	OpList       = "list"
	OpInfo       = "info"
	OpConfig     = "config"
	OpCreate     = "create"
	OpRestore    = "restore"
	OpWaitGone   = "wait-gone"
	OpDestroy    = "destroy"
	OpShutdown   = "shutdown"
	OpReboot     = "reboot"
	OpPause      = "pause"
	OpUnpause    = "unpause"
	OpSave       = "save"
	OpConsole    = "console"
	OpEvents     = "events"
	OpDomID      = "domid"
	OpDomName    = "domname"
	OpUptime     = "uptime"
	OpMemSet     = "mem-set"
	OpVCPUSet    = "vcpu-set"
	OpVCPUList   = "vcpu-list"
	OpHostInfo   = "host-info"
	OpXenVersion = "xen-version"
	OpDomains    = "domains" // the daemon's own table: state and ownership
)

// Request is the one request of a connection, a JSON line.
type Request struct {
	V  int    `json:"v"`
	Op string `json:"op"`
	// Dom names the domain (domid, name or UUID) for per-domain verbs.
	Dom string `json:"dom,omitempty"`
	// DomID is domname's argument.
	DomID uint32 `json:"domid,omitempty"`
	// Path is the save file (save, restore); absolute.
	Path string `json:"path,omitempty"`
	// Config is the domain config of create (and of restore, replacing
	// the save file's).
	Config *WireConfig `json:"config,omitempty"`
	// Paused leaves a created or restored domain paused.
	Paused bool `json:"paused,omitempty"`
	// Wait, WaitDeath and Force are shutdown's and reboot's -w, -ww
	// and -F.
	Wait      bool `json:"wait,omitempty"`
	WaitDeath bool `json:"wait_death,omitempty"`
	Force     bool `json:"force,omitempty"`
	// Checkpoint and LeavePaused are save's -c and -p.
	Checkpoint  bool `json:"checkpoint,omitempty"`
	LeavePaused bool `json:"leave_paused,omitempty"`
	// ConsoleType ("pv", "serial", "") and ConsoleNum choose a console.
	ConsoleType string `json:"console_type,omitempty"`
	ConsoleNum  int    `json:"console_num,omitempty"`
	// MemKB is mem-set's target, VCPUs vcpu-set's count.
	MemKB uint64 `json:"mem_kb,omitempty"`
	VCPUs int    `json:"vcpus,omitempty"`
	// Since is the first event sequence number wanted (events); 0 means
	// only events that happen from now on.
	Since uint64 `json:"since,omitempty"`
}

// WireConfig is a domain config on the wire, in one of three formats:
// "xl" (File and Text: an xl config file's text, its key=value overrides
// appended, parsed by the daemon; the goxl built without cgo sends it so,
// as it cannot parse xl configs itself),
// "libxl-json" (JSON: a libxl_domain_config), or "goxl" (Goxl: goxl's
// DomainConfig, as parsed by the CLI with its key=value overrides, and
// UUID).
type WireConfig struct {
	Format string              `json:"format"`
	File   string              `json:"file,omitempty"`
	Text   string              `json:"text,omitempty"`
	JSON   string              `json:"json,omitempty"`
	Goxl   *libxl.DomainConfig `json:"goxl,omitempty"`
	UUID   string              `json:"uuid,omitempty"`
	// Dir is the client's working directory, for "xl": relative kernel
	// and ramdisk paths are resolved against it, as xl resolves them
	// against its own.
	Dir string `json:"dir,omitempty"`
}

// ResolvePaths returns cfg with its relative kernel and ramdisk paths
// made absolute against dir (a client's working directory: the daemon's
// and a monitor's are not the user's). Other configs, and dir "", are
// returned as they are.
func ResolvePaths(cfg libxl.Config, dir string) libxl.Config {
	c, ok := cfg.(*libxl.DomainConfig)
	if !ok || c == nil || dir == "" {
		return cfg
	}
	cp := *c
	for _, p := range []*string{&cp.Kernel, &cp.Ramdisk} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	return &cp
}

// EncodeConfig puts a config on the wire.
func EncodeConfig(cfg libxl.Config) (*WireConfig, error) {
	switch c := cfg.(type) {
	case libxl.JSONConfig:
		return &WireConfig{Format: "libxl-json", JSON: string(c)}, nil
	case *libxl.DomainConfig:
		w := &WireConfig{Format: "goxl", Goxl: c}
		if !c.UUID.IsZero() {
			w.UUID = c.UUID.String()
		}
		return w, nil
	case nil:
		return nil, errors.New("goxl: no config")
	}
	return nil, fmt.Errorf("goxl: config of type %T cannot be sent to the daemon", cfg)
}

// Decode turns a wire config back into a libxl.Config.
func (w *WireConfig) Decode() (libxl.Config, error) {
	if w == nil {
		return nil, usageErr("no config")
	}
	switch w.Format {
	case "xl":
		// The whole of the CLI's config loading: goxl's parser, then
		// xl's for keys goxl does not map.
		cfg, err := libxl.LoadConfig(w.File, []byte(w.Text), libxl.LoadOptions{})
		if err != nil {
			return nil, err
		}
		return ResolvePaths(cfg, w.Dir), nil
	case "libxl-json":
		return ParseConfig("", []byte(w.JSON))
	case "goxl":
		if w.Goxl == nil {
			return nil, &libxl.ConfigError{Msg: "goxl config format without a config"}
		}
		c := *w.Goxl
		if w.UUID != "" {
			u, err := libxl.ParseUUID(w.UUID)
			if err != nil {
				return nil, &libxl.ConfigError{Key: "uuid", Msg: err.Error()}
			}
			c.UUID = u
		}
		return &c, nil
	}
	return nil, usageErr(fmt.Sprintf("config format %q: want xl, libxl-json or goxl", w.Format))
}

// Response is one line the daemon writes back. A request gets any number
// of progress and event lines, then exactly one line with Done set
// (Result or Error). A connection that ends without it means the daemon
// went away mid-request.
type Response struct {
	V        int             `json:"v"`
	Progress string          `json:"progress,omitempty"`
	Event    *Event          `json:"event,omitempty"`
	Done     bool            `json:"done,omitempty"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    *WireError      `json:"error,omitempty"`
}

// Event is a driver event with its sequence number in the daemon's log.
type Event struct {
	Seq uint64 `json:"seq"`
	driver.DomainEvent
}

// Error codes on the wire; the client maps each to a typed error.
const (
	CodeUsage       = "usage"
	CodeNotFound    = "not_found"
	CodeExists      = "exists"
	CodeConfig      = "config"
	CodeFailed      = "failed"
	CodePermission  = "permission"
	CodeVersion     = "version"
	CodeOverflow    = "overflow"
	CodeCancelled   = "cancelled"
	CodeShutdown    = "daemon_stopping"
	CodeOwnedByPeer = "owned_elsewhere"
)

// WireError is an error as the daemon reports it.
type WireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Config details, for CodeConfig.
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Key  string `json:"key,omitempty"`
}

// Typed errors of the local API. Errors from the daemon match the
// driver's and libxl's sentinels too (ErrDomainNotFound, ErrDomainExists,
// *libxl.ConfigError, ErrStreamOverflow), so a caller handles a remote
// error as it would a local one.
var (
	// ErrNotRoot: the local API is root only.
	ErrNotRoot = errors.New("goxl daemon: permission denied: the local API is for root only")
	// ErrNoDaemon: nothing answers on the socket.
	ErrNoDaemon = errors.New("goxl daemon: not running")
	// ErrDaemonLost: the daemon went away before answering.
	ErrDaemonLost = errors.New("goxl daemon: the daemon went away before answering (stopped or killed); a create it was running is destroyed when it starts again")
	// ErrVersion: client and daemon speak different protocol versions.
	ErrVersion = errors.New("goxl daemon: protocol version mismatch")
	// ErrProtocol: an answer that is not a protocol line.
	ErrProtocol = errors.New("goxl daemon: protocol error")
	// ErrOwnedElsewhere: another goxl process owns a domain of that name.
	ErrOwnedElsewhere = errors.New("goxl: the domain is owned by another goxl process")
	// ErrDaemonStopping: the daemon is stopping and takes no new work.
	ErrDaemonStopping = errors.New("goxl daemon: stopping")
	// ErrEventsGone: the events asked for are older than the daemon keeps.
	ErrEventsGone = errors.New("goxl daemon: the events asked for are no longer kept")
)

// RemoteError is an error the daemon reported; errors.Is matches the
// sentinel of its code.
type RemoteError struct {
	Code    string
	Message string
	config  *libxl.ConfigError
}

func (e *RemoteError) Error() string { return e.Message }

// Unwrap returns the typed errors the code stands for.
func (e *RemoteError) Unwrap() []error {
	switch e.Code {
	case CodeNotFound:
		return []error{driver.ErrDomainNotFound, libxl.ErrDomainNotFound}
	case CodeExists:
		return []error{driver.ErrDomainExists}
	case CodeConfig:
		return []error{e.config}
	case CodeOverflow:
		return []error{driver.ErrStreamOverflow, ErrEventsGone}
	case CodePermission:
		return []error{ErrNotRoot}
	case CodeVersion:
		return []error{ErrVersion}
	case CodeOwnedByPeer:
		return []error{ErrOwnedElsewhere}
	case CodeShutdown:
		return []error{ErrDaemonStopping}
	}
	return nil
}

func (w *WireError) toError() error {
	e := &RemoteError{Code: w.Code, Message: w.Message}
	if w.Code == CodeConfig {
		e.config = &libxl.ConfigError{File: w.File, Line: w.Line, Key: w.Key, Msg: w.Message}
	}
	return e
}

// wireError turns a daemon-side error into its wire form.
func wireError(err error) *WireError {
	w := &WireError{Code: CodeFailed, Message: err.Error()}
	var ce *libxl.ConfigError
	var ces libxl.ConfigErrors
	switch {
	case errors.Is(err, driver.ErrDomainNotFound), errors.Is(err, libxl.ErrDomainNotFound):
		w.Code = CodeNotFound
	case errors.Is(err, driver.ErrDomainExists):
		w.Code = CodeExists
	case errors.As(err, &ce):
		w.Code, w.File, w.Line, w.Key = CodeConfig, ce.File, ce.Line, ce.Key
	case errors.As(err, &ces) && len(ces) > 0:
		w.Code, w.File, w.Line, w.Key = CodeConfig, ces[0].File, ces[0].Line, ces[0].Key
	case errors.Is(err, ErrOwnedElsewhere):
		w.Code = CodeOwnedByPeer
	case errors.Is(err, ErrDaemonStopping):
		w.Code = CodeShutdown
	case errors.Is(err, driver.ErrStreamOverflow), errors.Is(err, ErrEventsGone):
		w.Code = CodeOverflow
	case errors.Is(err, errCancelled):
		w.Code = CodeCancelled
	}
	return w
}

var errCancelled = errors.New("cancelled")

// Hello is the answer to OpHello.
type Hello struct {
	Protocol int       `json:"protocol"`
	PID      int       `json:"pid"`
	Started  time.Time `json:"started"`
	Domains  int       `json:"domains"`
	Owned    int       `json:"owned"`
	// FirstSeq and NextSeq bound the events the daemon still keeps.
	FirstSeq uint64 `json:"first_seq"`
	NextSeq  uint64 `json:"next_seq"`
}

// DomainResult is the answer to create and restore.
type DomainResult = driver.DomainSnapshot

// ConsoleResult is the answer to console.
type ConsoleResult struct {
	TTY string `json:"tty"`
}

// DomIDResult, DomNameResult and UptimeResult answer domid, domname and
// uptime.
type DomIDResult struct {
	DomID uint32 `json:"domid"`
}

type DomNameResult struct {
	Name string `json:"name"`
}

type UptimeResult struct {
	Seconds float64 `json:"seconds"`
}

// OwnedDomain is one line of OpDomains.
type OwnedDomain struct {
	driver.DomainSnapshot
	// Owner is who carries out its on_* actions: "daemon" (this one),
	// "monitor pid N", "goxl pid N (gone)", or "" (xl or another
	// toolstack: left alone).
	Owner string `json:"owner"`
}

func versionError(v int) *WireError {
	return &WireError{Code: CodeVersion, Message: fmt.Sprintf("goxl daemon: protocol version %d asked, this daemon speaks %d", v, ProtocolVersion)}
}

// WireErrorOf is the wire form of an error (for processes that answer
// in the protocol's lines, like the monitor).
func WireErrorOf(err error) *WireError { return wireError(err) }

// RemoteErrorOf turns a wire error back into a typed error.
func RemoteErrorOf(w *WireError) error { return w.toError() }

// FixDomainInfos restores the UUID of DomainInfos read from the wire
// (their JSON carries it as a string only).
func FixDomainInfos(infos []libxl.DomainInfo) {
	for i := range infos {
		if u, err := libxl.ParseUUID(infos[i].UUIDString); err == nil {
			infos[i].UUID = u
		}
	}
}
