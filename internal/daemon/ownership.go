package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/goxl/goxl/libxl"
	"golang.org/x/sys/unix"
)

// Ownership: one owner per domain, across processes.
//
// The record is kept where libxl and xl keep per-domain state: libxl's
// domain userdata, under the key "goxl" (xl keeps "xl" there, libxl
// "libxl-json"). It says which goxl process owns the domain and holds the
// config its on_* actions rebuild from. A domain without a "goxl" record
// was made by xl or another toolstack: goxl never owns it, so xl's
// monitor (xl keeps no record of it: it is a process) stays the only one
// to act.
//
// Liveness is a lock: the owner holds an exclusive flock on
// <dir>/<name>.lock for as long as it owns the domain. The kernel drops
// it when the owner exits, however it exits (SIGKILL too), so "the owner
// is gone" is exactly "the lock can be taken", and taking it is atomic:
// two would-be owners can never both win, and a domain is never restarted
// twice. The lock file also says the phase: "building" is written before
// anything is built, so a half-built domain whose builder died is found
// (and destroyed) by the next owner that starts.

// UserdataKey is goxl's key in libxl's domain userdata.
const UserdataKey = "goxl"

// DefaultOwnerDir holds the per-domain lock files.
const DefaultOwnerDir = "/run/goxl/owners"

// Record is goxl's ownership record in a domain's userdata.
type Record struct {
	V     int    `json:"v"`
	Owner string `json:"owner"` // "daemon" or "monitor"
	PID   int    `json:"pid"`
	Name  string `json:"name"`
	// Config is the domain's config, for restarts (goxl's or libxl JSON,
	// as WireConfig carries them).
	Config  *WireConfig `json:"config"`
	Written time.Time   `json:"written"`
}

// lockState is what a lock file says.
type lockState struct {
	Phase string `json:"phase"` // "building" or "owned"
	Owner string `json:"owner"`
	PID   int    `json:"pid"`
	DomID uint32 `json:"domid,omitempty"`
}

// Claim is a held ownership lock.
type Claim struct {
	owners *Owners
	name   string
	f      *os.File
}

// Owners manages this process's ownership locks.
type Owners struct {
	dir  string
	kind string // "daemon" or "monitor"

	mu   sync.Mutex // leaf lock
	held map[string]*Claim
}

// NewOwners prepares dir (mode 0700) for kind's locks.
func NewOwners(dir, kind string) (*Owners, error) {
	if dir == "" {
		dir = DefaultOwnerDir
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &Owners{dir: dir, kind: kind, held: map[string]*Claim{}}, nil
}

func (o *Owners) path(name string) string {
	return filepath.Join(o.dir, url.PathEscape(name)+".lock")
}

// Held returns this process's claim on name, if any.
func (o *Owners) Held(name string) *Claim {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.held[name]
}

// TryClaim takes the lock of name. It fails with ErrOwnedElsewhere while
// another process (or another claim of this one) holds it.
func (o *Owners) TryClaim(name string) (*Claim, error) {
	o.mu.Lock()
	if _, ok := o.held[name]; ok {
		o.mu.Unlock()
		return nil, fmt.Errorf("%q: %w (this process)", name, ErrOwnedElsewhere)
	}
	o.mu.Unlock()
	p := o.path(name)
	for {
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			st, _ := readLockState(f)
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("%q: %w (%s pid %d, %s)", name, ErrOwnedElsewhere, st.Owner, st.PID, st.Phase)
			}
			return nil, err
		}
		// The previous holder may have removed the file between our open
		// and our lock: then we locked an unlinked inode; try again.
		var a, b unix.Stat_t
		if unix.Fstat(int(f.Fd()), &a) == nil && unix.Stat(p, &b) == nil && a.Ino == b.Ino && a.Dev == b.Dev {
			c := &Claim{owners: o, name: name, f: f}
			o.mu.Lock()
			if _, ok := o.held[name]; ok {
				o.mu.Unlock()
				f.Close()
				return nil, fmt.Errorf("%q: %w (this process)", name, ErrOwnedElsewhere)
			}
			o.held[name] = c
			o.mu.Unlock()
			return c, nil
		}
		f.Close()
	}
}

func readLockState(f *os.File) (lockState, error) {
	var st lockState
	b := make([]byte, 4096)
	n, err := f.ReadAt(b, 0)
	if n == 0 {
		return st, err
	}
	return st, json.Unmarshal(b[:n], &st)
}

// State returns what the lock file says.
func (c *Claim) State() lockState {
	st, _ := readLockState(c.f)
	return st
}

// Name is the claimed domain name.
func (c *Claim) Name() string { return c.name }

// set writes the lock file's phase.
func (c *Claim) set(phase string, domid uint32) error {
	b, _ := json.Marshal(lockState{Phase: phase, Owner: c.owners.kind, PID: os.Getpid(), DomID: domid})
	if err := c.f.Truncate(0); err != nil {
		return err
	}
	_, err := c.f.WriteAt(b, 0)
	return err
}

// Building marks the name as being built, before anything is built.
func (c *Claim) Building() error { return c.set("building", 0) }

// Owned records ownership of domid: the userdata record first, then the
// lock file's phase.
func (c *Claim) Owned(ctx *libxl.Ctx, domid uint32, cfg libxl.Config) error {
	w, err := EncodeConfig(cfg)
	if err != nil {
		return err
	}
	rec, _ := json.Marshal(Record{V: 1, Owner: c.owners.kind, PID: os.Getpid(), Name: c.name, Config: w, Written: time.Now().UTC()})
	if err := ctx.StoreUserdata(domid, UserdataKey, rec); err != nil {
		return err
	}
	return c.set("owned", domid)
}

// Release gives the name up and removes its lock file (the domain is
// gone, or was never built).
func (c *Claim) Release() {
	o := c.owners
	o.mu.Lock()
	if o.held[c.name] != c {
		o.mu.Unlock()
		return
	}
	delete(o.held, c.name)
	o.mu.Unlock()
	// Remove while holding the lock: a waiter that opened the old inode
	// notices (TryClaim's inode check).
	os.Remove(o.path(c.name))
	c.f.Close()
}

// ReadRecord returns a domain's goxl record; ErrNoUserdata (from libxl)
// when it has none.
func ReadRecord(ctx *libxl.Ctx, domid uint32) (Record, error) {
	var r Record
	b, err := ctx.RetrieveUserdata(domid, UserdataKey)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("goxl record of domain %d: %w", domid, err)
	}
	return r, nil
}

// orphan is a lock file whose holder is gone.
type orphan struct {
	claim *Claim
	state lockState
}

// Orphans claims every lock file whose holder is gone. The caller decides
// what to do with each (destroy a half-built domain; take over an owned
// one) and releases or keeps the claim.
func (o *Owners) Orphans() []orphan {
	ents, err := os.ReadDir(o.dir)
	if err != nil {
		return nil
	}
	var out []orphan
	for _, e := range ents {
		n := e.Name()
		if filepath.Ext(n) != ".lock" {
			continue
		}
		name, err := url.PathUnescape(n[:len(n)-len(".lock")])
		if err != nil || o.Held(name) != nil {
			continue
		}
		c, err := o.TryClaim(name)
		if err != nil {
			continue
		}
		out = append(out, orphan{claim: c, state: c.State()})
	}
	return out
}
