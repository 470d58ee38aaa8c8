//go:build cgo && !libxlmodel

package libxl

import (
	"errors"
	"strings"
	"testing"
)

// TestConfigAPISelection: under the 4.2 API (-tags xen42) a PVH config
// and a JSON config are refused with ErrNotSupported and a reason before
// libxl sees them; under the default 4.17 API PVH passes the selection
// layer. Run both ways:
//
//	go test -run TestConfigAPISelection ./libxl/
//	CGO_LDFLAGS=-lxentoollog go test -tags xen42 -run TestConfigAPISelection ./libxl/
func TestConfigAPISelection(t *testing.T) {
	pvh := DomainConfig{Name: "g", Type: DomainTypePVH, Kernel: "/k", MemoryMB: 64, VCPUs: 1}
	err := checkConfigAPI(pvh)
	if libxlAPI42 {
		// Refused before the ctx is used: nil is safe here, and only here.
		d, jsonErr := buildConfig(nil, JSONConfig(`{"c_info":{"name":"g","type":"pv"},"b_info":{"type":"pv"}}`))
		if d != nil {
			freeConfigForTest(d)
		}
		for what, e := range map[string]error{"PVH": err, "JSON": jsonErr} {
			if !errors.Is(e, ErrNotSupported) || !strings.Contains(e.Error(), "4.2") {
				t.Errorf("4.2 API: %s config: got %v, want ErrNotSupported with the reason", what, e)
			}
		}
		return
	}
	if err != nil {
		t.Errorf("4.17 API: PVH refused: %v", err)
	}
}

// Every reason names what is missing.
func TestNotInAPIReasons(t *testing.T) {
	for what, reason := range notInAPIReasons {
		e := notInAPI(what)
		if !errors.Is(e, ErrNotSupported) || reason == "" || !strings.Contains(e.Error(), reason) {
			t.Errorf("%s: %v", what, e)
		}
	}
}

// TestNicAndSoftResetAPISelection: nic gatewaydev and trusted, and an
// on_soft_reset other than the default, are refused with ErrNotSupported
// and the reason under the 4.2 API (whose libxl_device_nic and
// libxl_domain_config lack the fields) and built under the default API.
// A plain config (default on_soft_reset) builds under both. Run both ways,
// as TestConfigAPISelection.
func TestNicAndSoftResetAPISelection(t *testing.T) {
	trusted := true
	base := func() DomainConfig {
		return DomainConfig{Name: "g", Type: DomainTypePV, Kernel: "/k", MemoryMB: 64, VCPUs: 1}
	}
	cases := map[string]func(*DomainConfig){
		"gatewaydev":    func(c *DomainConfig) { c.Nics = []NicConfig{{Bridge: "xenbr0", GatewayDev: "eth0"}} },
		"trusted":       func(c *DomainConfig) { c.Nics = []NicConfig{{Bridge: "xenbr0", Trusted: &trusted}} },
		"on_soft_reset": func(c *DomainConfig) { c.OnSoftReset = ActionDestroy },
	}
	build := func(c DomainConfig) error {
		d, err := buildDomainConfig(&c)
		if d != nil {
			freeConfigForTest(d)
		}
		return err
	}
	if err := build(base()); err != nil {
		t.Fatalf("plain config refused: %v", err)
	}
	for what, set := range cases {
		c := base()
		set(&c)
		err := build(c)
		if !libxlAPI42 {
			if err != nil {
				t.Errorf("4.17 API: %s refused: %v", what, err)
			}
			continue
		}
		if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), notInAPIReasons[what]) {
			t.Errorf("4.2 API: %s: got %v, want ErrNotSupported with the reason", what, err)
		}
	}
}
