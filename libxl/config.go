package libxl

import (
	"bytes"
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
	VCPUs    int `json:"vcpus"`
	MaxVCPUs int `json:"maxvcpus,omitempty"`
	// Bootloader runs in dom0 to find the kernel (xl's bootloader=, e.g.
	// "pygrub"); libxl runs it at create time. BootloaderArgs are its
	// extra arguments (xl's bootloader_args=).
	Bootloader     string         `json:"bootloader,omitempty"`
	BootloaderArgs []string       `json:"bootloader_args,omitempty"`
	Disks          []DiskConfig   `json:"disks,omitempty"`
	Nics           []NicConfig    `json:"nics,omitempty"`
	OnPoweroff     ShutdownAction `json:"on_poweroff,omitempty"`
	OnReboot       ShutdownAction `json:"on_reboot,omitempty"`
	OnCrash        ShutdownAction `json:"on_crash,omitempty"`
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
		return s, &ConfigError{Key: "name", Msg: "missing: a domain needs a name"}
	}
	if !s.Type.valid() {
		return s, &ConfigError{Key: "type", Msg: fmt.Sprintf("type %q: want pv, pvh or hvm", s.Type)}
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
	// Spec is the xl disk= entry this disk was parsed from. When set,
	// buildDomainConfig hands it to libxlutil's xlu_disk_parse again, so
	// every option of xl-disk-configuration reaches libxl, not only the
	// fields above.
	Spec string `json:"spec,omitempty"`
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
	GatewayDev    string `json:"gatewaydev,omitempty"`
	// Rate is xl's rate= ("10Mb/s", "1MB/s@20ms"), read by libxlutil's
	// xlu_vif_parse_rate when the config is built.
	Rate string `json:"rate,omitempty"`
	// DevID is the vif's device number; nil means its index in the list,
	// as xl does.
	DevID *int `json:"devid,omitempty"`
	// Trusted is xl's trusted / untrusted flag; nil leaves libxl's default.
	Trusted *bool `json:"trusted,omitempty"`
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
		return DomainConfig{}, &ConfigError{Kind: ConfigSyntax, Msg: "libxl JSON: " + err.Error()}
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

// ParseJSONConfig accepts the JSON forms of a domain config: a bare
// libxl_domain_config (what libxl_domain_config_to_json and `xl create -n`
// print), and what `xl list -l` prints: an array of {"domid", "config"}
// objects (which must hold exactly one domain) or one such object. It
// returns the libxl_domain_config, checked with Summary.
func ParseJSONConfig(data []byte) (JSONConfig, error) {
	trimmed := bytes.TrimSpace(data)
	var inner json.RawMessage
	switch {
	case len(trimmed) > 0 && trimmed[0] == '[':
		var list []json.RawMessage
		if err := json.Unmarshal(trimmed, &list); err != nil {
			return "", &ConfigError{Kind: ConfigSyntax, Msg: "JSON: " + err.Error()}
		}
		if len(list) != 1 {
			return "", &ConfigError{Msg: fmt.Sprintf("JSON array (xl list -l output) holds %d domains; a config needs exactly one", len(list))}
		}
		inner = list[0]
	case len(trimmed) > 0 && trimmed[0] == '{':
		inner = trimmed
	default:
		return "", &ConfigError{Kind: ConfigSyntax, Msg: "JSON config: want an object or an array of {domid, config}"}
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(inner, &probe); err != nil {
		return "", &ConfigError{Kind: ConfigSyntax, Msg: "JSON: " + err.Error()}
	}
	if cfg, ok := probe["config"]; ok {
		if _, hasCInfo := probe["c_info"]; !hasCInfo {
			// xl list -l's {"domid": N, "config": {...}}.
			inner = cfg
		}
	}
	j := JSONConfig(bytes.TrimSpace(inner))
	if _, err := j.Summary(); err != nil {
		return "", err
	}
	return j, nil
}

// ConfigErrorKind says what is wrong with a config. Callers tell the
// kinds apart with errors.Is and the sentinels below (ErrConfigSyntax,
// ErrConfigUnknownKey, ErrConfigNotSupported, ErrConfigBadValue); every
// kind also matches ErrConfig.
type ConfigErrorKind int

const (
	// ConfigBadValue: a key's value is refused (not a number, out of
	// range, an unknown action, a missing name, malformed JSON...).
	ConfigBadValue ConfigErrorKind = iota
	// ConfigSyntax: the text is not xl's config syntax (libxlutil's
	// parser refused it), or not JSON.
	ConfigSyntax
	// ConfigUnknownKey: a key xl does not know either: a typo.
	ConfigUnknownKey
	// ConfigNotSupported: a key (or a key's option) that xl knows but
	// goxl's own parser cannot express. LoadConfig hands such configs to
	// xl's parser when xl is installed.
	ConfigNotSupported
)

func (k ConfigErrorKind) String() string {
	switch k {
	case ConfigSyntax:
		return "syntax error"
	case ConfigUnknownKey:
		return "unknown key"
	case ConfigNotSupported:
		return "not supported by goxl"
	}
	return "bad value"
}

// Sentinels for errors.Is on a *ConfigError or ConfigErrors.
var (
	ErrConfig             = errors.New("libxl: config error")
	ErrConfigSyntax       = errors.New("libxl: config syntax error")
	ErrConfigUnknownKey   = errors.New("libxl: unknown config key")
	ErrConfigNotSupported = errors.New("libxl: config key not supported by goxl")
	ErrConfigBadValue     = errors.New("libxl: bad config value")
)

// ConfigError reports a config that cannot be used. Line is 1-based and
// zero when unknown; Key is the top-level key involved, if any.
type ConfigError struct {
	Kind ConfigErrorKind
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
	return b.String() + ": " + e.Kind.String() + ": " + e.Msg
}

// Is matches ErrConfig and the sentinel of the error's Kind.
func (e *ConfigError) Is(target error) bool {
	switch target {
	case ErrConfig:
		return true
	case ErrConfigSyntax:
		return e.Kind == ConfigSyntax
	case ErrConfigUnknownKey:
		return e.Kind == ConfigUnknownKey
	case ErrConfigNotSupported:
		return e.Kind == ConfigNotSupported
	case ErrConfigBadValue:
		return e.Kind == ConfigBadValue
	}
	return false
}

// AsConfigError returns err unchanged if it already matches ErrConfig,
// and otherwise a ConfigError of file with err's message. It is for the
// errors of using a config rather than parsing it (Summary's "no name",
// a bad type), which the CLI and the daemon report as config errors all
// the same; nil stays nil.
func AsConfigError(file string, err error) error {
	if err == nil || errors.Is(err, ErrConfig) {
		return err
	}
	return &ConfigError{File: file, Msg: err.Error()}
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

// XLKeys are the top-level keys of xl's config format that ParseXL maps
// itself. Any other key is reported, never silently dropped.
var XLKeys = []string{
	"name", "type", "builder", "uuid", "kernel", "ramdisk", "cmdline", "extra", "root",
	"memory", "maxmem", "vcpus", "maxvcpus", "disk", "vif",
	"on_poweroff", "on_reboot", "on_crash", "on_watchdog", "on_soft_reset", "bootloader", "bootloader_args",
}

// xlAllKeys are every top-level key xl 4.17's parse_config_data reads
// (tools/xl/xl_parse.c; xl.cfg(5) documents them). A key outside this set
// is a typo ("unknown key"); a key inside it but outside XLKeys is real xl
// syntax that goxl's own parser cannot express ("not supported by goxl").
var xlAllKeys = map[string]bool{}

func init() {
	for _, k := range []string{
		"acpi", "acpi_firmware", "acpi_laptop_slate", "acpi_s3", "acpi_s4", "altp2m", "altp2mhvm", "apic",
		"bios", "bios_path_override", "boot", "bootloader", "bootloader_args", "builder", "cap",
		"channel", "cmdline", "cpu_weight", "cpuid", "cpus", "cpus_soft", "device_model",
		"device_model_args", "device_model_args_hvm", "device_model_args_pv", "device_model_override",
		"device_model_stubdomain_override", "device_model_stubdomain_seclabel", "device_model_user",
		"device_model_version", "device_tree", "disk", "display", "dm_restrict", "driver_domain", "dtdev",
		"e820_host", "extra", "extratime", "firmware", "firmware_override", "gfx_passthru", "gic_version",
		"hap", "hdtype", "hpet", "init_seclabel", "iomem", "ioports", "irqs", "kernel", "keymap",
		"latency", "localtime", "max_event_channels", "max_grant_frames", "max_grant_version",
		"max_maptrack_frames", "maxmem", "maxvcpus", "mca_caps", "memory", "mmio_hole", "ms_vm_genid",
		"msr_relaxed", "name", "nestedhvm", "nographic", "nomigrate", "nx", "on_crash", "on_poweroff",
		"on_reboot", "on_soft_reset", "on_watchdog", "oos", "opengl", "p9", "pae", "passthrough", "pci",
		"pci_msitranslate", "pci_permissive", "pci_power_mgmt", "pci_seize", "period", "pool", "pvcalls",
		"pvshim", "pvshim_cmdline", "pvshim_extra", "pvshim_path", "ramdisk", "rdm", "rdm_mem_boundary",
		"root", "rtc_timeoffset", "sdl", "seclabel", "serial", "shadow_memory", "slice",
		"smbios_firmware", "soundhw", "spice", "spice_clipboard_sharing", "spice_image_compression",
		"spice_streaming_video", "spiceagent_mouse", "spicedisable_ticketing", "spicehost", "spicepasswd",
		"spiceport", "spicetls_port", "spiceusbredirection", "spicevdagent", "stdvga",
		"stubdomain_cmdline", "stubdomain_kernel", "stubdomain_memory", "stubdomain_ramdisk", "tee",
		"timer_mode", "tsc_mode", "type", "usb", "usbctrl", "usbdev", "usbdevice", "usbversion", "uuid",
		"vcpus", "vdispl", "vendor_device", "vfb", "vga", "videoram", "vif", "vif2", "viridian", "vkb",
		"vkb_device", "vmtrace_buf_kb", "vnc", "vncdisplay", "vnclisten", "vncpasswd", "vncunused",
		"vncviewer", "vnuma", "vpmu", "vpt_align", "vsnd", "vtpm", "vuart", "xauthority",
		"xen_platform_pci", "xend_suspend_evtchn_compat",
	} {
		xlAllKeys[k] = true
	}
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

// xmIgnoredKeys are xm's (Xen 3) keys that generated configs still carry
// (xen-tools writes `dhcp = 'dhcp'`) and that xl reads no more: they have
// no effect in xl, so none in goxl either.
var xmIgnoredKeys = map[string]bool{"dhcp": true, "netmask": true, "gateway": true}

// checkXLKeys reports keys outside XLKeys: "not supported by goxl" for
// keys xl knows, "unknown key" for the rest. A key given twice is fine:
// libxlutil keeps the last assignment, and `+=` appends to the one before.
func checkXLKeys(file string, keys []xlKeyAt) error {
	known := map[string]bool{}
	for _, k := range XLKeys {
		known[k] = true
	}
	var errs ConfigErrors
	for _, k := range keys {
		switch {
		case known[k.Key], xmIgnoredKeys[k.Key]:
		case xlAllKeys[k.Key]:
			errs = append(errs, &ConfigError{Kind: ConfigNotSupported, File: file, Line: k.Line, Key: k.Key,
				Msg: "xl key not supported by goxl's own parser (goxl.LoadConfig uses xl's parser for it when xl is installed; or give a libxl JSON config)"})
		default:
			errs = append(errs, &ConfigError{Kind: ConfigUnknownKey, File: file, Line: k.Line, Key: k.Key,
				Msg: "unknown key: xl has no such key (goxl's own parser maps: " + strings.Join(sortedKeys(), ", ") + ")"})
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

// vifNotSupported are options of xl's vif= entry that goxl's own parser
// does not map (COLO replication and the accel option xl ignores).
func vifNotSupported(k string) bool {
	return k == "forwarddev" || k == "accel" || strings.HasPrefix(k, "colo_")
}

// ParseVif parses one xl vif= entry: comma-separated key=value pairs, as
// xl's parse_nic_config reads them. The error is a *ConfigError (key
// "vif") whose Kind says whether an option is unknown, not supported by
// goxl, or has a bad value.
func ParseVif(spec string) (NicConfig, error) {
	var n NicConfig
	bad := func(kind ConfigErrorKind, format string, args ...any) (NicConfig, error) {
		return n, &ConfigError{Kind: kind, Key: "vif", Msg: fmt.Sprintf("vif %q: ", spec) + fmt.Sprintf(format, args...)}
	}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		switch item {
		case "trusted", "untrusted":
			t := item == "trusted"
			n.Trusted = &t
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok {
			return bad(ConfigUnknownKey, "%q is not key=value, trusted or untrusted", item)
		}
		switch k {
		case "mac":
			if _, err := parseMAC(v); err != nil {
				return bad(ConfigBadValue, "%v", err)
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
				return bad(ConfigBadValue, "type %q: want vif or ioemu", v)
			}
			n.Type = v
		case "vifname":
			n.VifName = v
		case "backend":
			n.BackendDomain = v
		case "gatewaydev", "netdev": // netdev: xl's deprecated spelling
			n.GatewayDev = v
		case "rate":
			if v == "" {
				return bad(ConfigBadValue, "empty rate")
			}
			n.Rate = v
		case "mtu", "devid":
			m, err := strconv.ParseUint(v, 10, 31)
			if err != nil || (k == "mtu" && m == 0) {
				return bad(ConfigBadValue, "bad %s %q", k, v)
			}
			if k == "mtu" {
				n.MTU = int(m)
			} else {
				id := int(m)
				n.DevID = &id
			}
		default:
			if vifNotSupported(k) {
				return bad(ConfigNotSupported, "option %q is not supported by goxl's own parser", k)
			}
			return bad(ConfigUnknownKey, "unknown option %q (goxl maps: mac, bridge, ip, script, model, type, vifname, backend, gatewaydev, netdev, rate, mtu, devid, trusted, untrusted)", k)
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
