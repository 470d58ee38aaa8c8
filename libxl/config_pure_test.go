package libxl

import (
	"errors"
	"reflect"
	"testing"
)

func TestScanXLKeys(t *testing.T) {
	cfg := "# comment with key = 1\nname = \"a # not a comment\"; type='pv'\n" +
		"disk = [ 'x=1',\n  # inner comment\n  \"y = 2\" ]\n" +
		"extra += 'more'\n  memory=1 # trailing\n'str' = 3\nvcpus\n= 2\n"
	got := scanXLKeys([]byte(cfg))
	want := []xlKeyAt{{"name", 2}, {"type", 2}, {"disk", 3}, {"extra", 6}, {"memory", 7}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	if keyForLine(got, 5) != "disk" || keyForLine(got, 1) != "" || lineOfKey(got, "memory") != 7 {
		t.Fatal("keyForLine/lineOfKey")
	}
}

func TestParseVif(t *testing.T) {
	n, err := ParseVif("mac=00:16:3e:aa:bb:cc, bridge=xenbr0,ip=10.0.0.2,script=vif-bridge,model=e1000,type=ioemu,vifname=v1,backend=dd,mtu=1500")
	if err != nil {
		t.Fatal(err)
	}
	want := NicConfig{MAC: "00:16:3e:aa:bb:cc", Bridge: "xenbr0", IP: "10.0.0.2", Script: "vif-bridge", Model: "e1000", Type: "ioemu", VifName: "v1", BackendDomain: "dd", MTU: 1500}
	if n != want {
		t.Fatalf("got %+v", n)
	}
	n, err = ParseVif("rate=10Mb/s@20ms, devid=7, gatewaydev=eth1, trusted")
	if err != nil || n.Rate != "10Mb/s@20ms" || n.DevID == nil || *n.DevID != 7 || n.GatewayDev != "eth1" || n.Trusted == nil || !*n.Trusted {
		t.Fatalf("got %+v %v", n, err)
	}
	if n, err = ParseVif("netdev=eth2,untrusted"); err != nil || n.GatewayDev != "eth2" || n.Trusted == nil || *n.Trusted {
		t.Fatalf("netdev/untrusted: %+v %v", n, err)
	}
	for bad, kind := range map[string]ConfigErrorKind{
		"mac=zz": ConfigBadValue, "bridge": ConfigUnknownKey, "type=tap": ConfigBadValue, "mtu=-1": ConfigBadValue,
		"devid=x": ConfigBadValue, "colour=red": ConfigUnknownKey, "colo_sock_mirror_id=1": ConfigNotSupported,
		"forwarddev=eth0": ConfigNotSupported, "accel=x": ConfigNotSupported, "rate=": ConfigBadValue,
	} {
		var ce *ConfigError
		if _, err := ParseVif(bad); !errors.As(err, &ce) || ce.Kind != kind || ce.Key != "vif" {
			t.Errorf("%q: got %v, want kind %v", bad, err, kind)
		}
	}
}

func TestJSONConfigSummary(t *testing.T) {
	js := JSONConfig(`{"c_info":{"type":"pv","name":"j1","uuid":"00112233-4455-6677-8899-aabbccddeeff"},
		"b_info":{"max_vcpus":2,"max_memkb":262144,"target_memkb":131072,"kernel":"/k","type.pv":{}},
		"on_poweroff":"destroy","on_reboot":"restart","on_crash":"coredump_destroy"}`)
	s, err := js.Summary()
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "j1" || s.Type != DomainTypePV || s.UUID.String() != "00112233-4455-6677-8899-aabbccddeeff" ||
		s.MemoryMB != 128 || s.MaxMemMB != 256 || s.VCPUs != 2 || s.OnCrash != ActionCoredumpDestroy || s.OnReboot != ActionRestart {
		t.Fatalf("summary %+v", s)
	}
	// libxl's defaults where the JSON is silent.
	s, err = JSONConfig(`{"c_info":{"name":"j2"}}`).Summary()
	if err != nil || s.Type != DomainTypePV || s.OnReboot != ActionRestart {
		t.Fatalf("defaults %+v %v", s, err)
	}
	for _, bad := range []string{`{`, `[]`, `{"c_info":{}}`, `{"c_info":{"name":"a","uuid":"x"}}`, `{"c_info":{"name":"a"},"on_crash":"boom"}`, `{"c_info":{"name":"a","type":"xen"}}`} {
		var ce *ConfigError
		if _, err := JSONConfig(bad).Summary(); err == nil || (!errors.As(err, &ce) && bad != `{"c_info":{}}` && bad != `{"c_info":{"name":"a","type":"xen"}}`) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestParseJSONConfigForms(t *testing.T) {
	inner := `{"c_info":{"type":"pv","name":"j1"},"b_info":{"max_memkb":131072,"target_memkb":131072}}`
	for name, in := range map[string]string{
		"bare":            inner,
		"xl list -l":      `[ {"domid": 3, "config": ` + inner + `} ]`,
		"xl list -l dom":  `{"domid": 3, "config": ` + inner + `}`,
		"spaces and tabs": "\n\t " + `[{"domid":null,"config":` + inner + `}]` + "\n",
	} {
		j, err := ParseJSONConfig([]byte(in))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if s, err := j.Summary(); err != nil || s.Name != "j1" || s.MemoryMB != 128 {
			t.Errorf("%s: summary %+v %v", name, s, err)
		}
	}
	for name, tc := range map[string]struct {
		in   string
		want error
	}{
		"no name":       {`{"c_info":{"type":"pv"}}`, ErrConfigBadValue},
		"no name, list": {`[{"domid":1,"config":{"c_info":{}}}]`, ErrConfigBadValue},
		"two domains":   {`[{"domid":1,"config":` + inner + `},{"domid":2,"config":` + inner + `}]`, ErrConfigBadValue},
		"empty list":    {`[]`, ErrConfigBadValue},
		"truncated":     {`{"c_info":`, ErrConfigSyntax},
		"not JSON":      {`name = "x"`, ErrConfigSyntax},
	} {
		_, err := ParseJSONConfig([]byte(tc.in))
		var ce *ConfigError
		if !errors.As(err, &ce) || !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v (%T), want %v", name, err, err, tc.want)
		}
	}
}

func TestUUIDAndActions(t *testing.T) {
	u, err := ParseUUID("12345678-9abc-def0-1234-56789abcdef0")
	if err != nil || u.String() != "12345678-9abc-def0-1234-56789abcdef0" || u.IsZero() {
		t.Fatal(u, err)
	}
	for _, bad := range []string{"", "12345678x9abc-def0-1234-56789abcdef0", "1234567g-9abc-def0-1234-56789abcdef0"} {
		if _, err := ParseUUID(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	for in, want := range map[string]ShutdownAction{"rename-restart": ActionRenameRestart, "restart_rename": ActionRenameRestart,
		"Destroy": ActionDestroy, "coredump-restart": ActionCoredumpRestart, "soft-reset": ActionSoftReset, "preserve": ActionPreserve} {
		if got, err := ParseShutdownAction(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
}

func TestDomainInfoState(t *testing.T) {
	d := DomainInfo{Running: true, Paused: true}
	if d.State() != "r-p---" {
		t.Fatal(d.State())
	}
	d = DomainInfo{Shutdown: true, ShutdownReason: ShutdownCrash, Dying: true}
	if d.State() != "----cd" {
		t.Fatal(d.State())
	}
}

func TestAsConfigError(t *testing.T) {
	if AsConfigError("a.cfg", nil) != nil {
		t.Fatal("nil became an error")
	}
	syntax := &ConfigError{Kind: ConfigSyntax, File: "a.cfg", Line: 3, Msg: "unterminated string"}
	if got := AsConfigError("b.cfg", syntax); got != error(syntax) {
		t.Fatalf("a config error was rewrapped: %v", got)
	}
	several := ConfigErrors{syntax, {Kind: ConfigUnknownKey, File: "a.cfg", Key: "bogus"}}
	if got := AsConfigError("b.cfg", several); !reflect.DeepEqual(got, error(several)) {
		t.Fatalf("config errors were rewrapped: %v", got)
	}
	plain := errors.New("domain config has no name")
	got := AsConfigError("c.cfg", plain)
	var ce *ConfigError
	if !errors.Is(got, ErrConfig) || !errors.As(got, &ce) || ce.File != "c.cfg" || ce.Msg != plain.Error() {
		t.Fatalf("a plain error became %#v", got)
	}
}
