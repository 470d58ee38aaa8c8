package libxl

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Config is what CreateDomain builds a domain from. Two kinds exist:
//
//   - *DomainConfig: goxl's documented subset, written in Go or read from
//     xl's config format by ParseXL;
//   - JSONConfig: a whole libxl_domain_config in libxl's own JSON (what
//     `xl list -l` prints and libxl_domain_config_to_json writes), passed
//     to libxl_domain_config_from_json untouched: full fidelity.
type Config interface {
	// Summary returns what goxl needs to know before anything is built
	// (name, UUID, type, the on_* actions), without a ctx.
	Summary() (DomainConfig, error)
	isConfig()
}

// DomainConfig is goxl's subset of libxl_domain_config.
type DomainConfig struct {
	Name    string     `json:"name"`
	Type    DomainType `json:"type"`
	UUID    UUID       `json:"-"`
	Kernel  string     `json:"kernel,omitempty"`
	Ramdisk string     `json:"ramdisk,omitempty"`
	Cmdline string     `json:"cmdline,omitempty"`
	// MemoryMB is the target memory (xl's memory=); MaxMemMB is the
	// ceiling (xl's maxmem=), zero meaning MemoryMB.
	MemoryMB int64 `json:"memory_mb"`
	MaxMemMB int64 `json:"maxmem_mb,omitempty"`
	// VCPUs are online at boot; MaxVCPUs (zero: VCPUs) can be brought up.
	VCPUs      int            `json:"vcpus"`
	MaxVCPUs   int            `json:"maxvcpus,omitempty"`
	Disks      []DiskConfig   `json:"disks,omitempty"`
	Nics       []NicConfig    `json:"nics,omitempty"`
	OnPoweroff ShutdownAction `json:"on_poweroff,omitempty"`
	OnReboot   ShutdownAction `json:"on_reboot,omitempty"`
	OnCrash    ShutdownAction `json:"on_crash,omitempty"`
	// OnWatchdog (xl's default: destroy) and OnSoftReset (default:
	// soft-reset) complete xl.cfg(5)'s on_* actions.
	OnWatchdog  ShutdownAction `json:"on_watchdog,omitempty"`
	OnSoftReset ShutdownAction `json:"on_soft_reset,omitempty"`
}

func (*DomainConfig) isConfig() {}

// Summary returns a copy with xl's defaults applied.
func (c *DomainConfig) Summary() (DomainConfig, error) {
	s := *c
	if s.Type == "" {
		s.Type = DomainTypePV
	}
	if s.OnPoweroff == "" {
		s.OnPoweroff = ActionDestroy
	}
	if s.OnReboot == "" {
		s.OnReboot = ActionRestart
	}
	if s.OnCrash == "" {
		s.OnCrash = ActionDestroy
	}
	if s.OnWatchdog == "" {
		s.OnWatchdog = ActionDestroy
	}
	if s.OnSoftReset == "" {
		s.OnSoftReset = ActionSoftReset
	}
	if s.Name == "" {
		return s, errors.New("libxl: config has no name")
	}
	if !s.Type.valid() {
		return s, fmt.Errorf("libxl: config type %q: want pv, pvh or hvm", s.Type)
	}
	return s, nil
}

// DiskConfig is one libxl_device_disk (xl's disk= entry, as parsed by
// libxlutil's xlu_disk_parse).
type DiskConfig struct {
	Target    string `json:"target"`            // pdev_path
	Vdev      string `json:"vdev"`              // xvda, hda, ...
	Format    string `json:"format,omitempty"`  // raw, qcow2, qcow, vhd, qed, empty
	Backend   string `json:"backend,omitempty"` // phy, qdisk, tap, standalone; empty: libxl chooses
	ReadWrite bool   `json:"readwrite"`
	CDROM     bool   `json:"cdrom,omitempty"`
	Script    string `json:"script,omitempty"`
	// BackendDomain names the driver domain; empty is dom0.
	BackendDomain string `json:"backend_domain,omitempty"`
}

// NicConfig is one libxl_device_nic (xl's vif= entry).
type NicConfig struct {
	MAC           string `json:"mac,omitempty"`
	Bridge        string `json:"bridge,omitempty"`
	IP            string `json:"ip,omitempty"`
	Script        string `json:"script,omitempty"`
	Model         string `json:"model,omitempty"`
	Type          string `json:"type,omitempty"` // vif or ioemu
	VifName       string `json:"vifname,omitempty"`
	BackendDomain string `json:"backend,omitempty"`
	MTU           int    `json:"mtu,omitempty"`
}

// JSONConfig is a libxl_domain_config in libxl's JSON.
type JSONConfig string

func (JSONConfig) isConfig() {}

// Summary reads the fields goxl needs from libxl's JSON in Go; the rest
// is libxl's to read when the domain is built.
func (j JSONConfig) Summary() (DomainConfig, error) {
	var raw struct {
		CInfo struct {
			Type string `json:"type"`
			Name string `json:"name"`
			UUID string `json:"uuid"`
		} `json:"c_info"`
		BInfo struct {
			MaxVCPUs    int    `json:"max_vcpus"`
			MaxMemKB    int64  `json:"max_memkb"`
			TargetMemKB int64  `json:"target_memkb"`
			Kernel      string `json:"kernel"`
			Ramdisk     string `json:"ramdisk"`
			Cmdline     string `json:"cmdline"`
		} `json:"b_info"`
		OnPoweroff string `json:"on_poweroff"`
		OnReboot   string `json:"on_reboot"`
		OnCrash    string `json:"on_crash"`
		OnWatchdog string `json:"on_watchdog"`
		OnSoftRst  string `json:"on_soft_reset"`
	}
	if err := json.Unmarshal([]byte(j), &raw); err != nil {
		return DomainConfig{}, &ConfigError{Msg: "libxl JSON: " + err.Error()}
	}
	s := DomainConfig{
		Name:     raw.CInfo.Name,
		Type:     DomainType(raw.CInfo.Type),
		Kernel:   raw.BInfo.Kernel,
		Ramdisk:  raw.BInfo.Ramdisk,
		Cmdline:  raw.BInfo.Cmdline,
		MemoryMB: raw.BInfo.TargetMemKB / 1024,
		MaxMemMB: raw.BInfo.MaxMemKB / 1024,
		VCPUs:    raw.BInfo.MaxVCPUs,
	}
	if raw.CInfo.UUID != "" {
		u, err := ParseUUID(raw.CInfo.UUID)
		if err != nil {
			return s, &ConfigError{Key: "c_info.uuid", Msg: err.Error()}
		}
		s.UUID = u
	}
	for _, a := range []struct {
		key string
		in  string
		out *ShutdownAction
	}{{"on_poweroff", raw.OnPoweroff, &s.OnPoweroff}, {"on_reboot", raw.OnReboot, &s.OnReboot}, {"on_crash", raw.OnCrash, &s.OnCrash},
		{"on_watchdog", raw.OnWatchdog, &s.OnWatchdog}, {"on_soft_reset", raw.OnSoftRst, &s.OnSoftReset}} {
		if a.in == "" {
			continue
		}
		act, err := ParseShutdownAction(a.in)
		if err != nil {
			return s, &ConfigError{Key: a.key, Msg: err.Error()}
		}
		*a.out = act
	}
	return s.Summary()
}

// ConfigError reports a config that cannot be used. Line is 1-based and
// zero when unknown; Key is the top-level key involved, if any.
type ConfigError struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("config")
	if e.File != "" {
		b.WriteString(" " + e.File)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, " key %q", e.Key)
	}
	return b.String() + ": " + e.Msg
}

// ConfigErrors is several ConfigErrors, in line order.
type ConfigErrors []*ConfigError

func (es ConfigErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap lets errors.As find the first *ConfigError.
func (es ConfigErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// XLKeys are the top-level keys of xl's config format that ParseXL maps.
// Any other key is reported, never silently dropped.
var XLKeys = []string{
	"name", "type", "builder", "uuid", "kernel", "ramdisk", "cmdline", "extra", "root",
	"memory", "maxmem", "vcpus", "maxvcpus", "disk", "vif",
	"on_poweroff", "on_reboot", "on_crash", "on_watchdog", "on_soft_reset",
}

// xlKnownUnsupported are keys xl understands but goxl's subset does not:
// they get a clearer message than a typo does.
var xlKnownUnsupported = map[string]bool{
	"bootloader": true, "bootloader_args": true, "cpus": true, "cpu_weight": true, "cap": true,
	"vfb": true, "vkb": true, "vtpm": true, "p9": true, "pci": true, "usb": true, "usbctrl": true,
	"usbdev": true, "channel": true, "serial": true, "sdl": true, "vnc": true, "vnclisten": true,
	"device_model_version": true, "device_model_override": true, "boot": true, "acpi": true,
	"apic": true, "pae": true, "hap": true, "nestedhvm": true, "viridian": true,
	"seclabel": true, "pool": true, "driver_domain": true, "vga": true,
	"videoram": true, "stdvga": true, "soundhw": true, "xen_platform_pci": true, "localtime": true,
	"rtc_timeoffset": true, "shadow_memory": true, "firmware": true, "bios": true, "max_grant_frames": true,
	"max_maptrack_frames": true, "e820_host": true, "gfx_passthru": true, "tsc_mode": true,
	"dtdev": true, "iomem": true, "ioports": true, "irqs": true, "vdispl": true, "vsnd": true,
}

// xlKeyAt is one top-level assignment found by scanXLKeys.
type xlKeyAt struct {
	Key  string
	Line int
}

// scanXLKeys finds the top-level `key =` and `key +=` assignments of an
// xl config and their lines. libxlutil parses the values; this scanner
// exists only because libxlutil cannot list the keys it read, and an
// unknown key must be reported. It follows libxlutil's lexer: # comments
// to end of line, '...' and "..." strings with backslash escapes, [ ]
// lists that may span lines, statements ended by newline or ';'.
func scanXLKeys(data []byte) []xlKeyAt {
	var out []xlKeyAt
	line, depth := 1, 0
	atStart := true
	for i := 0; i < len(data); {
		ch := data[i]
		switch {
		case ch == '\n':
			line++
			i++
			if depth == 0 {
				atStart = true
			}
		case ch == ' ' || ch == '\t' || ch == '\r':
			i++
		case ch == '#':
			for i < len(data) && data[i] != '\n' {
				i++
			}
		case ch == ';':
			i++
			if depth == 0 {
				atStart = true
			}
		case ch == '\'' || ch == '"':
			i++
			for i < len(data) && data[i] != ch {
				if data[i] == '\\' && i+1 < len(data) {
					i++
				}
				if data[i] == '\n' {
					line++
				}
				i++
			}
			i++
			atStart = false
		case ch == '[':
			depth++
			i++
			atStart = false
		case ch == ']':
			if depth > 0 {
				depth--
			}
			i++
			atStart = false
		case isIdentStart(ch):
			j := i
			for j < len(data) && isIdentChar(data[j]) {
				j++
			}
			word := string(data[i:j])
			if atStart && depth == 0 {
				k := j
				for k < len(data) && (data[k] == ' ' || data[k] == '\t') {
					k++
				}
				if k < len(data) && (data[k] == '=' || (data[k] == '+' && k+1 < len(data) && data[k+1] == '=')) {
					out = append(out, xlKeyAt{Key: word, Line: line})
				}
			}
			atStart = false
			i = j
		default:
			i++
			atStart = false
		}
	}
	return out
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool {
	return isIdentStart(c) || (c >= '0' && c <= '9') || c == '.'
}

// checkXLKeys reports keys outside XLKeys, and keys given twice.
func checkXLKeys(file string, keys []xlKeyAt) error {
	known := map[string]bool{}
	for _, k := range XLKeys {
		known[k] = true
	}
	seen := map[string]int{}
	var errs ConfigErrors
	for _, k := range keys {
		switch {
		case xlKnownUnsupported[k.Key]:
			errs = append(errs, &ConfigError{File: file, Line: k.Line, Key: k.Key, Msg: "xl key not supported by goxl's config subset (use a libxl JSON config for full fidelity)"})
		case !known[k.Key]:
			errs = append(errs, &ConfigError{File: file, Line: k.Line, Key: k.Key, Msg: "unknown key (supported: " + strings.Join(sortedKeys(), ", ") + ")"})
		case seen[k.Key] != 0:
			errs = append(errs, &ConfigError{File: file, Line: k.Line, Key: k.Key, Msg: fmt.Sprintf("set twice (first on line %d); goxl refuses rather than guess", seen[k.Key])})
		default:
			seen[k.Key] = k.Line
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

func sortedKeys() []string {
	s := append([]string(nil), XLKeys...)
	sort.Strings(s)
	return s
}

// keyForLine returns the key whose assignment covers line: the last one
// that starts at or before it.
func keyForLine(keys []xlKeyAt, line int) string {
	key := ""
	for _, k := range keys {
		if k.Line <= line {
			key = k.Key
		}
	}
	return key
}

// lineOfKey returns the line where key is first assigned, or 0.
func lineOfKey(keys []xlKeyAt, key string) int {
	for _, k := range keys {
		if k.Key == key {
			return k.Line
		}
	}
	return 0
}

// ParseVif parses one xl vif= entry: comma-separated key=value pairs, as
// xl's parse_nic_config reads them. Unknown keys are an error.
func ParseVif(spec string) (NicConfig, error) {
	var n NicConfig
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			return n, fmt.Errorf("vif %q: %q is not key=value", spec, item)
		}
		switch strings.TrimSpace(k) {
		case "mac":
			if _, err := parseMAC(v); err != nil {
				return n, fmt.Errorf("vif %q: %w", spec, err)
			}
			n.MAC = v
		case "bridge":
			n.Bridge = v
		case "ip":
			n.IP = v
		case "script":
			n.Script = v
		case "model":
			n.Model = v
		case "type":
			if v != "vif" && v != "ioemu" {
				return n, fmt.Errorf("vif %q: type %q: want vif or ioemu", spec, v)
			}
			n.Type = v
		case "vifname":
			n.VifName = v
		case "backend":
			n.BackendDomain = v
		case "mtu":
			m, err := strconv.Atoi(v)
			if err != nil || m <= 0 {
				return n, fmt.Errorf("vif %q: bad mtu %q", spec, v)
			}
			n.MTU = m
		default:
			return n, fmt.Errorf("vif %q: unknown key %q (supported: mac, bridge, ip, script, model, type, vifname, backend, mtu)", spec, k)
		}
	}
	return n, nil
}

func parseMAC(s string) ([6]byte, error) {
	var m [6]byte
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return m, fmt.Errorf("bad MAC %q", s)
	}
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 16, 8)
		if err != nil || len(p) != 2 {
			return m, fmt.Errorf("bad MAC %q", s)
		}
		m[i] = byte(v)
	}
	return m, nil
}

// xlCmdline combines xl's cmdline=, root= and extra= as xl does: cmdline
// wins; otherwise "root=<root> <extra>".
func xlCmdline(cmdline, root, extra string, haveCmdline bool) string {
	if haveCmdline {
		return cmdline
	}
	switch {
	case root != "" && extra != "":
		return "root=" + root + " " + extra
	case root != "":
		return "root=" + root
	}
	return extra
}
