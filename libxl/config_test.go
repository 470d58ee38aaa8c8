//go:build cgo && !libxlmodel

package libxl

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// The test guest of tests/xenvm (its /guest/guest.cfg), verbatim.
const guestCfg = `# Test guest: the dom0 kernel as a PV guest with a tiny busybox initramfs.
name = "testguest"
type = "pv"
kernel = "/guest/vmlinuz"
ramdisk = "/guest/initrd.gz"
memory = 128
vcpus = 1
extra = "console=hvc0 guest_sleep=forever"
on_poweroff = "destroy"
on_reboot = "destroy"
on_crash = "destroy"
`

func TestParseXLGuest(t *testing.T) {
	c, err := ParseXL("guest.cfg", []byte(guestCfg))
	if err != nil {
		t.Fatal(err)
	}
	want := DomainConfig{Name: "testguest", Type: DomainTypePV, Kernel: "/guest/vmlinuz", Ramdisk: "/guest/initrd.gz",
		Cmdline: "console=hvc0 guest_sleep=forever", MemoryMB: 128, VCPUs: 1,
		OnPoweroff: ActionDestroy, OnReboot: ActionDestroy, OnCrash: ActionDestroy}
	if c.Name != want.Name || c.Type != want.Type || c.Kernel != want.Kernel || c.Ramdisk != want.Ramdisk ||
		c.Cmdline != want.Cmdline || c.MemoryMB != want.MemoryMB || c.VCPUs != want.VCPUs ||
		c.OnPoweroff != want.OnPoweroff || c.OnReboot != want.OnReboot || c.OnCrash != want.OnCrash {
		t.Fatalf("got %+v\nwant %+v", *c, want)
	}
	if _, err := buildDomainConfig(c); err != nil {
		t.Fatalf("buildDomainConfig: %v", err)
	}
}

func TestParseXLFull(t *testing.T) {
	cfg := `name = "g1"; type = "pvh"
uuid = "12345678-9abc-def0-1234-56789abcdef0"
kernel = "/k"
root = "/dev/xvda1"
extra = "quiet"
memory = 256
maxmem = 512
vcpus = 2
maxvcpus = 4
disk = [ '/img/a.raw,raw,xvda,rw',
         'format=qcow2, vdev=xvdb, access=ro, target=/img/b.qcow2',
         'vdev=hdc, devtype=cdrom, target=/iso/x.iso' ]
vif = [ 'mac=00:16:3e:01:02:03,bridge=xenbr0', 'bridge=br1,mtu=9000' ]
on_reboot = "rename-restart"
on_crash = 'preserve'
`
	c, err := ParseXL("full.cfg", []byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if c.Type != DomainTypePVH || c.UUID.String() != "12345678-9abc-def0-1234-56789abcdef0" {
		t.Errorf("type/uuid: %v %v", c.Type, c.UUID)
	}
	if c.Cmdline != "root=/dev/xvda1 quiet" {
		t.Errorf("cmdline %q", c.Cmdline)
	}
	if c.MemoryMB != 256 || c.MaxMemMB != 512 || c.VCPUs != 2 || c.MaxVCPUs != 4 {
		t.Errorf("sizes %+v", c)
	}
	if len(c.Disks) != 3 {
		t.Fatalf("disks %+v", c.Disks)
	}
	if d := c.Disks[0]; d.Target != "/img/a.raw" || d.Vdev != "xvda" || d.Format != "raw" || !d.ReadWrite {
		t.Errorf("disk0 %+v", d)
	}
	if d := c.Disks[1]; d.Target != "/img/b.qcow2" || d.Format != "qcow2" || d.ReadWrite {
		t.Errorf("disk1 %+v", d)
	}
	if d := c.Disks[2]; !d.CDROM || d.Vdev != "hdc" {
		t.Errorf("disk2 %+v", d)
	}
	if len(c.Nics) != 2 || c.Nics[0].MAC != "00:16:3e:01:02:03" || c.Nics[0].Bridge != "xenbr0" || c.Nics[1].MTU != 9000 {
		t.Errorf("nics %+v", c.Nics)
	}
	if c.OnPoweroff != ActionDestroy || c.OnReboot != ActionRenameRestart || c.OnCrash != ActionPreserve {
		t.Errorf("actions %v %v %v", c.OnPoweroff, c.OnReboot, c.OnCrash)
	}
	if _, err := buildDomainConfig(c); err != nil {
		t.Fatalf("buildDomainConfig: %v", err)
	}
}

func TestParseXLCmdlineWins(t *testing.T) {
	c, err := ParseXL("", []byte("name='a'\ncmdline='x y'\nroot='/dev/z'\nextra='e'\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Cmdline != "x y" {
		t.Fatalf("cmdline %q", c.Cmdline)
	}
}

func TestParseXLErrors(t *testing.T) {
	for _, tc := range []struct {
		name, cfg string
		line      int
		key, msg  string
	}{
		{"syntax missing value", "name = \"a\"\nmemory = \nvcpus = 1\n", 2, "memory", "syntax error"},
		{"syntax extra token", "name = \"a\"\n\n\nmemory = 3 4\n", 4, "memory", "syntax error"},
		{"syntax inside list", "name = \"a\"\ndisk = [ 'a',\n 'b'\n 'c' ]\n", 4, "disk", "syntax error"},
		{"unknown key", "name = \"a\"\nmemroy = 128\n", 2, "memroy", "unknown key"},
		{"unsupported key", "name = \"a\"\n\nvfb = [ 'vnc=1' ]\n", 3, "vfb", "not supported"},
		{"unterminated quote", "name = \"a\"\nkernel = \"/k\nmemory = 128\nvcpus = 1\n", 2, "kernel", "lexical error"},
		{"unterminated quote in list", "name = 'a'\ndisk = [ '/x,raw,xvda,rw',\n  '/y,raw,xvdb ]\nmemory = 1\n", 3, "disk", "lexical error"},
		{"not a number", "name = \"a\"\nmemory = 'lots'\n", 2, "memory", "not a valid number"},
		{"list for string", "name = [ 'a' ]\n", 1, "name", "list"},
		{"bad type", "name = 'a'\ntype = 'xen'\n", 2, "type", "want pv, pvh or hvm"},
		{"bad action", "name = 'a'\n\non_crash = 'explode'\n", 3, "on_crash", "unknown action"},
		{"bad disk", "name = 'a'\ndisk = [ 'bogus=1' ]\n", 2, "disk", "disk specification"},
		{"bad vif", "name = 'a'\nvif = [ 'colour=red' ]\n", 2, "vif", "unknown option"},
		{"bad vif rate", "name = 'a'\n\nvif = [ 'rate=fast' ]\n", 3, "vif", "rate"},
		{"bad uuid", "name = 'a'\nuuid = 'nope'\n", 2, "uuid", "malformed UUID"},
		{"maxmem below memory", "name = 'a'\nmemory = 512\nmaxmem = 256\n", 3, "maxmem", "below memory"},
		{"no name", "memory = 128\n", 0, "name", "missing"},
		{"memory out of range", "name='a'\nmemory = 0\n", 2, "memory", "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseXL("t.cfg", []byte(tc.cfg))
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T) is not a *ConfigError", err, err)
			}
			if ce.Line != tc.line || ce.Key != tc.key || !strings.Contains(ce.Msg, tc.msg) {
				t.Fatalf("got line %d key %q msg %q; want line %d key %q msg containing %q", ce.Line, ce.Key, ce.Msg, tc.line, tc.key, tc.msg)
			}
			if !strings.Contains(err.Error(), "t.cfg") {
				t.Errorf("error does not name the file: %v", err)
			}
			if strings.Contains(err.Error(), "warning") {
				t.Errorf("a fatal error is labelled a warning: %v", err)
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("not errors.Is(ErrConfig): %v", err)
			}
		})
	}
}

// Each kind of config error has its own sentinel, so that callers (the
// CLI's exit codes, LoadConfig's hand-over to xl) can tell them apart.
func TestParseXLErrorKinds(t *testing.T) {
	for _, tc := range []struct {
		cfg  string
		want error
	}{
		{"name = \"a\nmemory = 1\n", ErrConfigSyntax},
		{"name = 'a'\nmemory = \n", ErrConfigSyntax},
		{"name = 'a'\nmemroy = 128\n", ErrConfigUnknownKey},
		{"name = 'a'\nvif = [ 'colour=red' ]\n", ErrConfigUnknownKey},
		{"name = 'a'\ncpus = '0-1'\n", ErrConfigNotSupported},
		{"name = 'a'\nnomigrate = 1\n", ErrConfigNotSupported},
		{"name = 'a'\ndevice_model_args = [ '-x' ]\n", ErrConfigNotSupported},
		{"name = 'a'\nvif = [ 'colo_sock_mirror_id=1' ]\n", ErrConfigNotSupported},
		{"name = 'a'\nmemory = 'lots'\n", ErrConfigBadValue},
		{"memory = 1\n", ErrConfigBadValue},
	} {
		_, err := ParseXL("k.cfg", []byte(tc.cfg))
		if !errors.Is(err, tc.want) {
			t.Errorf("%q: got %v, want %v", tc.cfg, err, tc.want)
		}
		for _, other := range []error{ErrConfigSyntax, ErrConfigUnknownKey, ErrConfigNotSupported, ErrConfigBadValue} {
			if other != tc.want && errors.Is(err, other) {
				t.Errorf("%q: %v also matches %v", tc.cfg, err, other)
			}
		}
	}
}

// libxlutil's semantics: a key given again wins; `+=` appends to a string
// or a list.
func TestParseXLRepeatAndAppend(t *testing.T) {
	c, err := ParseXL("r.cfg", []byte("name = 'first'\nname = 'second'\nmemory = 64\nmemory = 96\n"+
		"extra = 'console=hvc0'\nextra += ' quiet'\ndisk = [ '/a,raw,xvda,rw' ]\ndisk += [ '/b,raw,xvdb,r' ]\n"+
		"vif = [ 'bridge=br0' ]\nvif = [ 'bridge=br1' ]\ndhcp = 'dhcp'\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "second" || c.MemoryMB != 96 || c.Cmdline != "console=hvc0 quiet" {
		t.Errorf("got name %q memory %d cmdline %q", c.Name, c.MemoryMB, c.Cmdline)
	}
	if len(c.Disks) != 2 || c.Disks[1].Target != "/b" || c.Disks[1].Spec != "/b,raw,xvdb,r" {
		t.Errorf("disks %+v", c.Disks)
	}
	if len(c.Nics) != 1 || c.Nics[0].Bridge != "br1" {
		t.Errorf("nics %+v", c.Nics)
	}
}

func TestParseXLBootloader(t *testing.T) {
	c, err := ParseXL("b.cfg", []byte("name='pg'\nbootloader='pygrub'\nbootloader_args=[ '--entry=1', '-q' ]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Bootloader != "pygrub" || strings.Join(c.BootloaderArgs, "|") != "--entry=1|-q" {
		t.Fatalf("got %q %q", c.Bootloader, c.BootloaderArgs)
	}
	// xl's deprecated single-string form, split on blanks.
	c, err = ParseXL("b.cfg", []byte("name='pg'\nbootloader='pygrub'\nbootloader_args='--entry=1  -q'\n"))
	if err != nil || strings.Join(c.BootloaderArgs, "|") != "--entry=1|-q" {
		t.Fatalf("string form: %+v %v", c, err)
	}
	if _, err := buildDomainConfig(c); err != nil {
		t.Fatal(err)
	}
}

func TestParseXLReportsAllUnknownKeys(t *testing.T) {
	_, err := ParseXL("t.cfg", []byte("name='a'\nfoo=1\nbar=2\n"))
	var ces ConfigErrors
	if !errors.As(err, &ces) || len(ces) != 2 || ces[0].Key != "foo" || ces[1].Key != "bar" || ces[1].Line != 3 {
		t.Fatalf("got %v", err)
	}
}

func TestBuildDomainConfigRejects(t *testing.T) {
	if _, err := buildDomainConfig(&DomainConfig{}); err == nil {
		t.Error("nameless config built")
	}
	if _, err := buildDomainConfig(&DomainConfig{Name: "a", Type: "xen"}); err == nil {
		t.Error("bad type built")
	}
	if _, err := buildDomainConfig(&DomainConfig{Name: "a", Disks: []DiskConfig{{Target: "/x", Vdev: "xvda", Format: "zip"}}}); err == nil {
		t.Error("bad disk format built")
	}
	if _, err := buildDomainConfig(&DomainConfig{Name: "a", Nics: []NicConfig{{MAC: "zz"}}}); err == nil {
		t.Error("bad MAC built")
	}
}

func TestSaveHeaderRoundTrip(t *testing.T) {
	var b bytes.Buffer
	cfg := JSONConfig(`{"c_info":{"name":"x","type":"pv"}}`)
	if err := writeSaveHeader(&b, cfg); err != nil {
		t.Fatal(err)
	}
	b.WriteString("STREAM")
	got, err := readSaveHeader(&b)
	if err != nil || got != cfg {
		t.Fatalf("got %q, %v", got, err)
	}
	if rest := b.String(); rest != "STREAM" {
		t.Fatalf("reader left at %q", rest)
	}
	if !bytes.HasPrefix(saveMagic[:], []byte("Xen saved domain, xl format\n")) || saveMagic[29] != 0 || saveMagic[31] != '\r' {
		t.Fatalf("magic %q", saveMagic)
	}
	if _, err := readSaveHeader(strings.NewReader("not a save file at all, really not at all")); !errors.Is(err, ErrBadSaveFile) {
		t.Fatalf("garbage: %v", err)
	}
}
