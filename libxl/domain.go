package libxl

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// This file holds the lifecycle API's types; they need no cgo. The calls
// are in domain_cgo.go (and return ErrNotSupported in domain_nocgo.go).

// UUID is a domain's libxl_uuid.
type UUID [16]byte

// ParseUUID parses the canonical 8-4-4-4-12 hex form.
func ParseUUID(s string) (UUID, error) {
	var u UUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, fmt.Errorf("libxl: malformed UUID %q", s)
	}
	h := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	if _, err := hex.Decode(u[:], []byte(h)); err != nil {
		return u, fmt.Errorf("libxl: malformed UUID %q", s)
	}
	return u, nil
}

// NewUUID returns a random (version 4) UUID.
func NewUUID() UUID {
	var u UUID
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// IsZero reports the all-zero UUID, which libxl reads as "generate one".
func (u UUID) IsZero() bool { return u == UUID{} }

func (u UUID) String() string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// DomainType is libxl_domain_type.
type DomainType string

// The domain types goxl creates.
const (
	DomainTypePV  DomainType = "pv"
	DomainTypePVH DomainType = "pvh"
	DomainTypeHVM DomainType = "hvm"
)

func (t DomainType) valid() bool {
	return t == DomainTypePV || t == DomainTypePVH || t == DomainTypeHVM
}

// ShutdownAction is libxl_action_on_shutdown: what a toolstack does when a
// guest powers off, reboots or crashes. libxl stores it; the toolstack
// (goxl's driver, or xl) carries it out.
type ShutdownAction string

// The actions. The names are libxl's JSON names; ParseShutdownAction also
// accepts xl's dashed spellings.
const (
	ActionDestroy         ShutdownAction = "destroy"
	ActionRestart         ShutdownAction = "restart"
	ActionRenameRestart   ShutdownAction = "restart_rename"
	ActionPreserve        ShutdownAction = "preserve"
	ActionCoredumpDestroy ShutdownAction = "coredump_destroy"
	ActionCoredumpRestart ShutdownAction = "coredump_restart"
	ActionSoftReset       ShutdownAction = "soft_reset"
)

// ParseShutdownAction accepts libxl's names and xl's ("rename-restart",
// "coredump-destroy", ...).
func ParseShutdownAction(s string) (ShutdownAction, error) {
	switch strings.ReplaceAll(strings.ToLower(s), "-", "_") {
	case "destroy":
		return ActionDestroy, nil
	case "restart":
		return ActionRestart, nil
	case "rename_restart", "restart_rename":
		return ActionRenameRestart, nil
	case "preserve":
		return ActionPreserve, nil
	case "coredump_destroy":
		return ActionCoredumpDestroy, nil
	case "coredump_restart":
		return ActionCoredumpRestart, nil
	case "soft_reset":
		return ActionSoftReset, nil
	}
	return "", fmt.Errorf("unknown action %q (want destroy, restart, rename-restart, preserve, coredump-destroy, coredump-restart or soft-reset)", s)
}

// DomainInfo is libxl_dominfo plus the domain's name.
type DomainInfo struct {
	DomID          uint32         `json:"domid"`
	Name           string         `json:"name"`
	UUID           UUID           `json:"-"`
	UUIDString     string         `json:"uuid"`
	Type           DomainType     `json:"type,omitempty"`
	Running        bool           `json:"running"`
	Blocked        bool           `json:"blocked"`
	Paused         bool           `json:"paused"`
	Shutdown       bool           `json:"shutdown"`
	Dying          bool           `json:"dying"`
	ShutdownReason ShutdownReason `json:"shutdown_reason"`
	CurrentMemKB   uint64         `json:"current_memkb"`
	MaxMemKB       uint64         `json:"max_memkb"`
	CPUTime        time.Duration  `json:"cpu_time_ns"`
	VCPUsOnline    uint32         `json:"vcpus_online"`
	VCPUMaxID      uint32         `json:"vcpu_max_id"`
}

// State is xl's one-letter-per-flag state column: r b p s c d.
func (d DomainInfo) State() string {
	b := []byte("------")
	if d.Running {
		b[0] = 'r'
	}
	if d.Blocked {
		b[1] = 'b'
	}
	if d.Paused {
		b[2] = 'p'
	}
	if d.Shutdown && d.ShutdownReason != ShutdownCrash {
		b[3] = 's'
	}
	if d.Shutdown && d.ShutdownReason == ShutdownCrash {
		b[4] = 'c'
	}
	if d.Dying {
		b[5] = 'd'
	}
	return string(b)
}

// ConsoleType is libxl_console_type.
type ConsoleType int

// The console types of libxl_console_get_tty.
const (
	ConsolePV     ConsoleType = 2
	ConsoleSerial ConsoleType = 1
	ConsoleVUART  ConsoleType = 3
)

// ErrNoSuchDomain is returned by lookups (by name, UUID or a string that
// names none) that find no domain. Lookups by domid return libxl's
// ErrDomainNotFound; errors.Is(err, ErrDomainNotFound) holds for both.
var ErrNoSuchDomain = fmt.Errorf("%w: no such domain", ErrDomainNotFound)

// ErrBadSaveFile is returned by RestoreDomain for a file that does not
// start with xl's save-file header.
var ErrBadSaveFile = errors.New("libxl: not a save file (no xl save-file header)")

// ParseDomID parses a numeric domain id.
func ParseDomID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(n), true
}

// ErrNilConfig is returned by CreateDomain, RestoreDomain's callers and
// the driver's Create for a nil Config, including a nil *DomainConfig
// (what a failed parse returns): nothing is built.
var ErrNilConfig = errors.New("libxl: nil domain config")

// IsNilConfig reports a nil Config, or one holding a nil pointer.
func IsNilConfig(cfg Config) bool {
	switch c := cfg.(type) {
	case nil:
		return true
	case *DomainConfig:
		return c == nil
	}
	return false
}
