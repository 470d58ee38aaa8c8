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
