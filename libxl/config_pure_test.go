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
	for _, bad := range []string{"mac=zz", "bridge", "type=tap", "mtu=-1", "rate=10Mb/s"} {
		if _, err := ParseVif(bad); err == nil {
			t.Errorf("%q accepted", bad)
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
