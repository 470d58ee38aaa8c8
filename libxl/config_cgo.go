//go:build cgo

package libxl

/*
#include "lifecycle_helpers.h"

// What xl's parse_config_data sets on every config besides the keys:
// run_hotplug_scripts and claim_mode from xl.conf (both true unless
// xl.conf says otherwise), and the on_watchdog / on_soft_reset actions.
static inline void goxl_config_xl_defaults(libxl_domain_config *d)
{
    libxl_defbool_set(&d->c_info.run_hotplug_scripts, true);
#if !GOXL_LIBXL_API_42 // claim_mode: 4.3
    libxl_defbool_set(&d->b_info.claim_mode, true);
#endif
    d->on_watchdog = LIBXL_ACTION_ON_SHUTDOWN_DESTROY;
#ifdef LIBXL_HAVE_SOFT_RESET
    d->on_soft_reset = LIBXL_ACTION_ON_SHUTDOWN_SOFT_RESET;
#endif
}

// A NULL-terminated string array that libxl_domain_config_dispose frees.
static inline char **goxl_strv_new(int n)
{
    return calloc((size_t)n + 1, sizeof(char *));
}

static inline void goxl_strv_set(char **v, int i, char *s)
{
    v[i] = s;
}

static inline void goxl_defbool_set(libxl_defbool *b, int v)
{
    libxl_defbool_set(b, v != 0);
}

static inline int goxl_vif_parse_rate(goxl_xlu *x, const char *rate,
                                      libxl_device_nic *nic)
{
    return xlu_vif_parse_rate(x->cfg, rate, nic);
}
*/
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// ParseXLFile reads an xl config file and parses it with ParseXL.
func ParseXLFile(path string) (*DomainConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseXL(path, data)
}

// ParseXL parses xl's config format (xl.cfg(5)) with Debian's libxlutil
// (xlu_cfg_init, xlu_cfg_readdata, xlu_cfg_get_string/long/list,
// xlu_disk_parse, xlu_cfg_destroy) into goxl's subset. It needs no ctx
// and no Xen. Errors are *ConfigError or ConfigErrors naming the line and
// key; keys outside XLKeys are errors, not silently dropped.
func ParseXL(filename string, data []byte) (*DomainConfig, error) {
	if filename == "" {
		filename = "<config>"
	}
	keys := scanXLKeys(data)
	if i := bytes.IndexByte(data, 0); i >= 0 {
		// libxlutil's lexer asserts (aborting the process) on a NUL
		// inside a quoted string (xlu__cfgl_dequote, found by
		// FuzzParseXL); a config is text, so refuse NULs outright.
		line := bytes.Count(data[:i], []byte("\n")) + 1
		return nil, &ConfigError{File: filename, Line: line, Key: keyForLine(keys, line), Msg: "NUL byte in config (not a text file?)"}
	}

	cname := C.CString(filename)
	defer C.free(unsafe.Pointer(cname))
	x := C.goxl_xlu_new(cname)
	if x == nil {
		return nil, ErrNoMem
	}
	defer C.goxl_xlu_free(x)
	p := xlParser{x: x, file: filename, keys: keys}

	var cdata *C.char
	if len(data) > 0 {
		cdata = (*C.char)(C.CBytes(data))
		defer C.free(unsafe.Pointer(cdata))
	}
	if rc := C.xlu_cfg_readdata(x.cfg, cdata, C.int(len(data))); rc != 0 {
		return nil, p.syntaxError(syscall.Errno(rc))
	}
	// Keys and values are both checked, so that a bad value is reported
	// beside a key goxl does not map (and LoadConfig does not hand a
	// config with a bad value to xl).
	keyErr := checkXLKeys(filename, keys)
	cfg, valErr := p.parse()
	if keyErr == nil {
		return cfg, valErr
	}
	if valErr == nil {
		return nil, keyErr
	}
	all := append(ConfigErrors(nil), keyErr.(ConfigErrors)...)
	var ces ConfigErrors
	var ce *ConfigError
	switch {
	case errors.As(valErr, &ces):
		all = append(all, ces...)
	case errors.As(valErr, &ce):
		all = append(all, ce)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Line < all[j].Line })
	return nil, all
}

type xlParser struct {
	x    *C.goxl_xlu
	file string
	keys []xlKeyAt
}

// reportLine matches libxlutil's "<file>:<line>: <message>" reports.
var reportLine = regexp.MustCompile(`:(\d+):\s*(.*)$`)

func (p *xlParser) report() string {
	r := C.goxl_xlu_take_report(p.x)
	if r == nil {
		return ""
	}
	defer C.free(unsafe.Pointer(r))
	return strings.TrimSpace(C.GoString(r))
}

func (p *xlParser) syntaxError(errno syscall.Errno) error {
	var errs ConfigErrors
	for _, l := range strings.Split(p.report(), "\n") {
		m := reportLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		if strings.Contains(m[2], "near <newline>") {
			// libxlutil's lexer counts a NEWLINE token on the line
			// before it; the key whose value is missing is on the next.
			n++
		}
		errs = append(errs, &ConfigError{Kind: ConfigSyntax, File: p.file, Line: n, Key: keyForLine(p.keys, n), Msg: m[2]})
	}
	switch len(errs) {
	case 0:
		return &ConfigError{Kind: ConfigSyntax, File: p.file, Msg: "cannot parse: " + errno.Error()}
	case 1:
		return errs[0]
	}
	return errs
}

// valueError builds the error of a value that libxlutil refused.
// libxlutil words its report as a warning (xl itself goes on without the
// key); goxl refuses the config, so the word goes.
func (p *xlParser) valueError(key string, rc C.int, want string) error {
	msg := p.report()
	if m := reportLine.FindStringSubmatch(msg); m != nil {
		msg = m[2]
	}
	msg = strings.TrimPrefix(msg, "warning: ")
	if msg == "" {
		msg = fmt.Sprintf("want %s (%v)", want, syscall.Errno(rc))
	}
	return &ConfigError{File: p.file, Line: lineOfKey(p.keys, key), Key: key, Msg: msg}
}

func (p *xlParser) str(key string) (string, bool, error) {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var v *C.char
	switch rc := C.xlu_cfg_get_string(p.x.cfg, ck, &v, 0); rc {
	case 0:
		return C.GoString(v), true, nil
	case C.ESRCH:
		return "", false, nil
	default:
		return "", false, p.valueError(key, rc, "a string")
	}
}

func (p *xlParser) long(key string) (int64, bool, error) {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var v C.long
	switch rc := C.xlu_cfg_get_long(p.x.cfg, ck, &v, 0); rc {
	case 0:
		return int64(v), true, nil
	case C.ESRCH:
		return 0, false, nil
	default:
		return 0, false, p.valueError(key, rc, "a number")
	}
}

func (p *xlParser) list(key string) ([]string, error) {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var l *C.XLU_ConfigList
	var n C.int
	switch rc := C.xlu_cfg_get_list(p.x.cfg, ck, &l, &n, 0); rc {
	case 0:
	case C.ESRCH:
		return nil, nil
	default:
		return nil, p.valueError(key, rc, "a list of strings")
	}
	out := make([]string, 0, int(n))
	for i := 0; i < int(n); i++ {
		item := C.xlu_cfg_get_listitem(l, C.int(i))
		if item == nil {
			return nil, &ConfigError{File: p.file, Line: lineOfKey(p.keys, key), Key: key, Msg: fmt.Sprintf("item %d is not a string", i)}
		}
		out = append(out, C.GoString(item))
	}
	return out, nil
}

func (p *xlParser) errAt(key, msg string) error {
	return &ConfigError{File: p.file, Line: lineOfKey(p.keys, key), Key: key, Msg: msg}
}

func (p *xlParser) parse() (*DomainConfig, error) {
	var errs ConfigErrors
	add := func(err error) {
		var ce *ConfigError
		if errors.As(err, &ce) {
			errs = append(errs, ce)
		} else if err != nil {
			errs = append(errs, &ConfigError{File: p.file, Msg: err.Error()})
		}
	}
	str := func(key string) (string, bool) {
		v, ok, err := p.str(key)
		add(err)
		return v, ok
	}
	num := func(key string, min, max int64) (int64, bool) {
		v, ok, err := p.long(key)
		add(err)
		if ok && (v < min || v > max) {
			add(p.errAt(key, fmt.Sprintf("%d is out of range [%d, %d]", v, min, max)))
			return 0, false
		}
		return v, ok
	}

	c := &DomainConfig{}
	c.Name, _ = str("name")
	if c.Name == "" && lineOfKey(p.keys, "name") == 0 {
		add(&ConfigError{File: p.file, Key: "name", Msg: "missing: a domain needs a name"})
	}
	typ, haveType := str("type")
	if !haveType {
		// xl's legacy spelling: builder = "hvm" / "generic".
		if b, ok := str("builder"); ok {
			typ, haveType = map[string]string{"hvm": "hvm", "generic": "pv"}[b], true
			if typ == "" {
				add(p.errAt("builder", fmt.Sprintf("builder %q: want hvm or generic", b)))
			}
		}
	}
	if !haveType {
		typ = string(DomainTypePV)
	}
	c.Type = DomainType(typ)
	if !c.Type.valid() {
		add(p.errAt("type", fmt.Sprintf("type %q: want pv, pvh or hvm", typ)))
	}
	if u, ok := str("uuid"); ok {
		var err error
		if c.UUID, err = ParseUUID(u); err != nil {
			add(p.errAt("uuid", err.Error()))
		}
	}
	c.Kernel, _ = str("kernel")
	c.Bootloader, _ = str("bootloader")
	if lineOfKey(p.keys, "bootloader_args") != 0 {
		// A list, or (deprecated in xl) one string split on blanks.
		if args, err := p.list("bootloader_args"); err == nil {
			c.BootloaderArgs = args
		} else if v, ok, err2 := p.str("bootloader_args"); err2 == nil && ok {
			c.BootloaderArgs = strings.Fields(v)
		} else {
			add(err)
		}
	}
	c.Ramdisk, _ = str("ramdisk")
	cmdline, haveCmdline := str("cmdline")
	root, _ := str("root")
	extra, _ := str("extra")
	c.Cmdline = xlCmdline(cmdline, root, extra, haveCmdline)

	const maxMB = 1 << 40 / (1 << 20) // 1 TiB, well past any test guest
	c.MemoryMB, _ = num("memory", 1, maxMB)
	c.MaxMemMB, _ = num("maxmem", 1, maxMB)
	if c.MaxMemMB != 0 && c.MemoryMB != 0 && c.MaxMemMB < c.MemoryMB {
		add(p.errAt("maxmem", fmt.Sprintf("maxmem (%d) is below memory (%d)", c.MaxMemMB, c.MemoryMB)))
	}
	v, _ := num("vcpus", 1, 4096)
	c.VCPUs = int(v)
	v, _ = num("maxvcpus", 1, 4096)
	c.MaxVCPUs = int(v)
	if c.MaxVCPUs != 0 && c.VCPUs > c.MaxVCPUs {
		add(p.errAt("maxvcpus", fmt.Sprintf("maxvcpus (%d) is below vcpus (%d)", c.MaxVCPUs, c.VCPUs)))
	}

	for _, a := range []struct {
		key string
		out *ShutdownAction
	}{{"on_poweroff", &c.OnPoweroff}, {"on_reboot", &c.OnReboot}, {"on_crash", &c.OnCrash}, {"on_watchdog", &c.OnWatchdog}, {"on_soft_reset", &c.OnSoftReset}} {
		s, ok := str(a.key)
		if !ok {
			continue
		}
		act, err := ParseShutdownAction(s)
		if err != nil {
			add(p.errAt(a.key, err.Error()))
			continue
		}
		*a.out = act
	}

	disks, err := p.list("disk")
	add(err)
	for i, spec := range disks {
		d, err := p.disk(spec)
		if err != nil {
			add(p.errAt("disk", fmt.Sprintf("entry %d %q: %v", i, spec, err)))
			continue
		}
		d.Spec = spec
		c.Disks = append(c.Disks, d)
	}
	vifs, err := p.list("vif")
	add(err)
	for i, spec := range vifs {
		n, err := ParseVif(spec)
		if err != nil {
			ce := err.(*ConfigError)
			ce.File, ce.Line = p.file, lineOfKey(p.keys, "vif")
			ce.Msg = fmt.Sprintf("entry %d: %s", i, ce.Msg)
			add(ce)
			continue
		}
		if n.Rate != "" {
			if err := p.checkRate(n.Rate); err != nil {
				add(p.errAt("vif", fmt.Sprintf("entry %d: rate %q: %v", i, n.Rate, err)))
				continue
			}
		}
		c.Nics = append(c.Nics, n)
	}

	if len(errs) > 0 {
		if len(errs) == 1 {
			return nil, errs[0]
		}
		return nil, errs
	}
	s, err := c.Summary()
	if err != nil {
		return nil, &ConfigError{File: p.file, Msg: err.Error()}
	}
	return &s, nil
}

// checkRate checks a vif rate= value with libxlutil's own parser.
func (p *xlParser) checkRate(rate string) error {
	cs := C.CString(rate)
	defer C.free(unsafe.Pointer(cs))
	var n C.libxl_device_nic
	C.libxl_device_nic_init(&n)
	defer C.libxl_device_nic_dispose(&n)
	if rc := C.goxl_vif_parse_rate(p.x, cs, &n); rc != 0 {
		msg := p.report()
		if m := reportLine.FindStringSubmatch(msg); m != nil {
			msg = m[2]
		}
		if msg == "" {
			msg = syscall.Errno(rc).Error()
		}
		return errors.New(strings.TrimSpace(msg))
	}
	return nil
}

// disk parses one disk= entry with xlu_disk_parse.
func (p *xlParser) disk(spec string) (DiskConfig, error) {
	cs := C.CString(spec)
	defer C.free(unsafe.Pointer(cs))
	var d C.libxl_device_disk
	C.libxl_device_disk_init(&d)
	defer C.libxl_device_disk_dispose(&d)
	if rc := C.goxl_xlu_disk_parse(p.x, cs, &d); rc != 0 {
		msg := p.report()
		if m := reportLine.FindStringSubmatch(msg); m != nil {
			msg = m[2]
		}
		if msg == "" {
			msg = syscall.Errno(rc).Error()
		}
		return DiskConfig{}, errors.New(msg)
	}
	out := DiskConfig{
		Target:        goStr(d.pdev_path),
		Vdev:          goStr(d.vdev),
		Format:        diskFormatName[int(d.format)],
		Backend:       diskBackendName[int(d.backend)],
		ReadWrite:     d.readwrite != 0,
		CDROM:         d.is_cdrom != 0,
		Script:        goStr(d.script),
		BackendDomain: goStr(C.goxl_disk_backend_domname(&d)),
	}
	if out.Vdev == "" {
		return out, errors.New("no vdev (target device such as xvda)")
	}
	return out, nil
}

// goStrFree copies and frees a malloc'd C string (NULL gives "").
func goStrFree(s *C.char) string {
	if s == nil {
		return ""
	}
	defer C.free(unsafe.Pointer(s))
	return C.GoString(s)
}

func goStr(s *C.char) string {
	if s == nil {
		return ""
	}
	return C.GoString(s)
}

var diskFormatName = map[int]string{
	C.LIBXL_DISK_FORMAT_UNKNOWN: "", C.LIBXL_DISK_FORMAT_QCOW: "qcow", C.LIBXL_DISK_FORMAT_QCOW2: "qcow2",
	C.LIBXL_DISK_FORMAT_VHD: "vhd", C.LIBXL_DISK_FORMAT_RAW: "raw", C.LIBXL_DISK_FORMAT_EMPTY: "empty",
	C.GOXL_DISK_FORMAT_QED: "qed",
}

var diskBackendName = map[int]string{
	C.LIBXL_DISK_BACKEND_UNKNOWN: "", C.LIBXL_DISK_BACKEND_PHY: "phy", C.LIBXL_DISK_BACKEND_TAP: "tap",
	C.LIBXL_DISK_BACKEND_QDISK: "qdisk", C.GOXL_DISK_BACKEND_STANDALONE: "standalone",
}

func reverse(m map[int]string) map[string]int {
	r := make(map[string]int, len(m))
	for k, v := range m {
		r[v] = k
	}
	return r
}

var (
	diskFormatValue  = reverse(diskFormatName)
	diskBackendValue = reverse(diskBackendName)
)

var actionValue = map[ShutdownAction]C.libxl_action_on_shutdown{
	ActionDestroy:         C.LIBXL_ACTION_ON_SHUTDOWN_DESTROY,
	ActionRestart:         C.LIBXL_ACTION_ON_SHUTDOWN_RESTART,
	ActionRenameRestart:   C.LIBXL_ACTION_ON_SHUTDOWN_RESTART_RENAME,
	ActionPreserve:        C.LIBXL_ACTION_ON_SHUTDOWN_PRESERVE,
	ActionCoredumpDestroy: C.LIBXL_ACTION_ON_SHUTDOWN_COREDUMP_DESTROY,
	ActionCoredumpRestart: C.LIBXL_ACTION_ON_SHUTDOWN_COREDUMP_RESTART,
	ActionSoftReset:       C.GOXL_ACTION_ON_SHUTDOWN_SOFT_RESET,
}

var domainTypeValue = map[DomainType]C.libxl_domain_type{
	DomainTypePV: C.LIBXL_DOMAIN_TYPE_PV, DomainTypePVH: C.GOXL_DOMAIN_TYPE_PVH, DomainTypeHVM: C.LIBXL_DOMAIN_TYPE_HVM,
}

var domainTypeName = map[C.libxl_domain_type]DomainType{
	C.LIBXL_DOMAIN_TYPE_PV: DomainTypePV, C.GOXL_DOMAIN_TYPE_PVH: DomainTypePVH, C.LIBXL_DOMAIN_TYPE_HVM: DomainTypeHVM,
}

// cString returns a malloc'd copy that libxl_domain_config_dispose frees,
// or NULL for "".
func cString(s string) *C.char {
	if s == "" {
		return nil
	}
	return C.CString(s)
}

// buildConfig turns a Config into a libxl_domain_config in C memory. Free
// it with goxl_config_free, after any operation using it has completed.
// raw is needed only for JSONConfig (libxl_domain_config_from_json).
func buildConfig(raw *C.libxl_ctx, cfg Config) (*C.libxl_domain_config, error) {
	switch cfg := cfg.(type) {
	case JSONConfig:
		if _, err := cfg.Summary(); err != nil {
			return nil, err
		}
		d := C.goxl_config_new()
		if d == nil {
			return nil, ErrNoMem
		}
		cs := C.CString(string(cfg))
		defer C.free(unsafe.Pointer(cs))
		if rc := C.goxl_domain_config_from_json(raw, d, cs); rc != 0 {
			C.goxl_config_free(d)
			if rc == C.GOXL_ERROR_NOT_IN_API {
				return nil, notInAPI("libxl_domain_config_from_json")
			}
			return nil, &ConfigError{Msg: "libxl_domain_config_from_json rejected the config: " + Error(rc).Error()}
		}
		return d, nil
	case *DomainConfig:
		return buildDomainConfig(cfg)
	case nil:
		return nil, errors.New("libxl: nil config")
	}
	return nil, fmt.Errorf("libxl: unsupported config type %T", cfg)
}

// buildDomainConfig sets what xl's parse_config_data sets for goxl's
// subset. It needs no ctx.
func buildDomainConfig(cfg *DomainConfig) (*C.libxl_domain_config, error) {
	s, err := cfg.Summary()
	if err != nil {
		return nil, err
	}
	d := C.goxl_config_new()
	if d == nil {
		return nil, ErrNoMem
	}
	ok := false
	defer func() {
		if !ok {
			C.goxl_config_free(d)
		}
	}()
	if err := checkConfigAPI(s); err != nil {
		return nil, err
	}
	C.goxl_config_set_type(d, domainTypeValue[s.Type])
	d.c_info.name = cString(s.Name)
	if s.UUID.IsZero() {
		// libxl uses a nil UUID as given; xl generates one, and so do we.
		s.UUID = NewUUID()
	}
	C.memcpy(unsafe.Pointer(&d.c_info.uuid), unsafe.Pointer(&s.UUID[0]), 16)
	C.goxl_config_xl_defaults(d)
	if C.goxl_config_set_kernel(d, cString(s.Kernel), cString(s.Ramdisk), cString(s.Cmdline)) != 0 {
		return nil, notInAPI("kernel")
	}
	var bootloaderArgs **C.char
	if len(s.BootloaderArgs) > 0 {
		v := C.goxl_strv_new(C.int(len(s.BootloaderArgs)))
		if v == nil {
			return nil, ErrNoMem
		}
		bootloaderArgs = v
		for i, a := range s.BootloaderArgs {
			C.goxl_strv_set(v, C.int(i), C.CString(a))
		}
	}
	if C.goxl_config_set_bootloader(d, cString(s.Bootloader), bootloaderArgs) != 0 {
		return nil, notInAPI("kernel")
	}
	if s.MemoryMB > 0 {
		max := s.MaxMemMB
		if max == 0 {
			max = s.MemoryMB
		}
		d.b_info.target_memkb = C.uint64_t(s.MemoryMB * 1024)
		d.b_info.max_memkb = C.uint64_t(max * 1024)
	}
	if s.VCPUs > 0 {
		max := s.MaxVCPUs
		if max < s.VCPUs {
			max = s.VCPUs
		}
		if C.goxl_config_set_vcpus(d, C.int(max), C.int(s.VCPUs)) != 0 {
			return nil, ErrNoMem
		}
	}
	if C.goxl_config_alloc_devices(d, C.int(len(s.Disks)), C.int(len(s.Nics))) != 0 {
		return nil, ErrNoMem
	}
	var xlu *C.goxl_xlu // for disk specs and vif rates, made on first use
	defer func() { C.goxl_xlu_free(xlu) }()
	xluParse := func(key string, i int, what string, parse func(x *C.goxl_xlu, cs *C.char) C.int) error {
		if xlu == nil {
			name := C.CString(key)
			xlu = C.goxl_xlu_new(name)
			C.free(unsafe.Pointer(name))
			if xlu == nil {
				return ErrNoMem
			}
		}
		cs := C.CString(what)
		defer C.free(unsafe.Pointer(cs))
		if rc := parse(xlu, cs); rc != 0 {
			msg := strings.TrimSpace(goStrFree(C.goxl_xlu_take_report(xlu)))
			if m := reportLine.FindStringSubmatch(msg); m != nil {
				msg = m[2]
			}
			return &ConfigError{Key: key, Msg: fmt.Sprintf("%s %d: %q: %s", key, i, what, msg)}
		}
		return nil
	}
	for i, dk := range s.Disks {
		cd := C.goxl_config_disk(d, C.int(i))
		if dk.Spec != "" {
			// The entry as xl reads it: every option, not only goxl's fields.
			C.libxl_device_disk_dispose(cd)
			C.libxl_device_disk_init(cd)
			if err := xluParse("disk", i, dk.Spec, func(x *C.goxl_xlu, cs *C.char) C.int { return C.goxl_xlu_disk_parse(x, cs, cd) }); err != nil {
				return nil, err
			}
			continue
		}
		f, okf := diskFormatValue[dk.Format]
		b, okb := diskBackendValue[dk.Backend]
		if !okf || !okb {
			return nil, &ConfigError{Key: "disk", Msg: fmt.Sprintf("disk %d: unknown format %q or backend %q", i, dk.Format, dk.Backend)}
		}
		if dk.Vdev == "" {
			return nil, &ConfigError{Key: "disk", Msg: fmt.Sprintf("disk %d: no vdev", i)}
		}
		cd.pdev_path = cString(dk.Target)
		cd.vdev = cString(dk.Vdev)
		if f == C.LIBXL_DISK_FORMAT_UNKNOWN {
			f = C.LIBXL_DISK_FORMAT_RAW // xlu_disk_parse's default
		}
		cd.format = C.libxl_disk_format(f)
		cd.backend = C.libxl_disk_backend(b)
		cd.script = cString(dk.Script)
		if C.goxl_disk_set_backend_domname(cd, cString(dk.BackendDomain)) != 0 {
			return nil, notInAPI("backend_domname")
		}
		if dk.ReadWrite {
			cd.readwrite = 1
		}
		if dk.CDROM {
			cd.is_cdrom = 1
			cd.removable = 1
		}
	}
	for i, n := range s.Nics {
		cn := C.goxl_config_nic(d, C.int(i))
		if n.MAC != "" {
			mac, err := parseMAC(n.MAC)
			if err != nil {
				return nil, &ConfigError{Key: "vif", Msg: err.Error()}
			}
			for j, b := range mac {
				cn.mac[j] = C.uint8_t(b)
			}
		}
		cn.bridge = cString(n.Bridge)
		cn.ip = cString(n.IP)
		cn.script = cString(n.Script)
		cn.model = cString(n.Model)
		cn.ifname = cString(n.VifName)
		if C.goxl_nic_set_backend_domname(cn, cString(n.BackendDomain)) != 0 {
			return nil, notInAPI("backend_domname")
		}
		cn.mtu = C.int(n.MTU)
		if C.goxl_nic_set_gatewaydev(cn, cString(n.GatewayDev)) != 0 {
			return nil, fmt.Errorf("vif %d: %w", i, notInAPI("gatewaydev"))
		}
		cn.devid = C.libxl_devid(i)
		if n.DevID != nil {
			cn.devid = C.libxl_devid(*n.DevID)
		}
		if n.Trusted != nil {
			v := 0
			if *n.Trusted {
				v = 1
			}
			if C.goxl_nic_set_trusted(cn, C.int(v)) != 0 {
				return nil, fmt.Errorf("vif %d: %w", i, notInAPI("trusted"))
			}
		}
		if n.Rate != "" {
			if err := xluParse("vif", i, n.Rate, func(x *C.goxl_xlu, cs *C.char) C.int { return C.goxl_vif_parse_rate(x, cs, cn) }); err != nil {
				return nil, err
			}
		}
		switch n.Type {
		case "vif":
			cn.nictype = C.LIBXL_NIC_TYPE_VIF
		case "ioemu":
			cn.nictype = C.LIBXL_NIC_TYPE_VIF_IOEMU
		}
	}
	d.on_poweroff = actionValue[s.OnPoweroff]
	d.on_reboot = actionValue[s.OnReboot]
	d.on_crash = actionValue[s.OnCrash]
	d.on_watchdog = actionValue[s.OnWatchdog]
	if C.goxl_config_set_on_soft_reset(d, actionValue[s.OnSoftReset]) != 0 {
		return nil, notInAPI("on_soft_reset")
	}
	ok = true
	return d, nil
}

// ConfigToJSON builds cfg as CreateDomain would and prints it in libxl's
// JSON (libxl_domain_config_to_json). For a JSONConfig this is libxl's
// normalised form: ConfigToJSON(JSONConfig(ConfigToJSON(x))) is stable.
func (c *Ctx) ConfigToJSON(cfg Config) (string, error) {
	raw, exit, err := c.enter()
	if err != nil {
		return "", err
	}
	defer exit()
	d, err := buildConfig(raw, cfg)
	if err != nil {
		return "", err
	}
	defer C.goxl_config_free(d)
	js := C.libxl_domain_config_to_json(raw, d)
	if js == nil {
		return "", &OpError{Op: "libxl_domain_config_to_json", Err: ErrFail}
	}
	defer C.free(unsafe.Pointer(js))
	return C.GoString(js), nil
}

// CheckConfig builds cfg without creating anything: a JSONConfig goes
// through libxl_domain_config_from_json, so libxl's own parser judges it.
func (c *Ctx) CheckConfig(cfg Config) error {
	raw, exit, err := c.enter()
	if err != nil {
		return err
	}
	defer exit()
	d, err := buildConfig(raw, cfg)
	if err != nil {
		return err
	}
	C.goxl_config_free(d)
	return nil
}

// freeConfigForTest lets tests (which cannot use cgo) free a built config.
func freeConfigForTest(d *C.libxl_domain_config) { C.goxl_config_free(d) }
