package libxl

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzJSONConfig checks the Go side of the JSON path, which needs no ctx:
// Summary never panics; what it accepts has a name and a valid type; and
// a summary re-encoded as libxl JSON summarises to the same thing. The
// libxl side (libxl_domain_config_from_json/_to_json) is round-tripped on
// real Xen by tests/integration.
func FuzzJSONConfig(f *testing.F) {
	f.Add([]byte(`{"c_info":{"type":"pv","name":"j1","uuid":"00112233-4455-6677-8899-aabbccddeeff"},"b_info":{"max_vcpus":2,"max_memkb":262144,"target_memkb":131072,"kernel":"/k","type.pv":{}},"on_poweroff":"destroy","on_reboot":"restart","on_crash":"coredump_destroy"}`))
	f.Add([]byte(`{"c_info":{"name":"x"}}`))
	f.Add([]byte(`{"c_info":{"name":"x","type":"hvm"},"on_reboot":"restart_rename"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"c_info":{"name":1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := JSONConfig(data).Summary()
		if err != nil {
			return
		}
		if s.Name == "" || !s.Type.valid() {
			t.Fatalf("accepted %q as %+v", data, s)
		}
		again, err := JSONConfig(summaryJSON(t, s)).Summary()
		if err != nil {
			t.Fatalf("re-encoded summary refused: %v", err)
		}
		if again.Name != s.Name || again.Type != s.Type || again.UUID != s.UUID || again.OnPoweroff != s.OnPoweroff ||
			again.OnReboot != s.OnReboot || again.OnCrash != s.OnCrash || again.VCPUs != s.VCPUs {
			t.Fatalf("round trip changed %+v into %+v", s, again)
		}
	})
}

// summaryJSON writes the summarised fields in libxl's JSON layout.
func summaryJSON(t *testing.T, s DomainConfig) []byte {
	cinfo := map[string]any{"name": s.Name, "type": string(s.Type)}
	if !s.UUID.IsZero() {
		cinfo["uuid"] = s.UUID.String()
	}
	var b bytes.Buffer
	err := json.NewEncoder(&b).Encode(map[string]any{
		"c_info":      cinfo,
		"b_info":      map[string]any{"max_vcpus": s.VCPUs},
		"on_poweroff": string(s.OnPoweroff), "on_reboot": string(s.OnReboot), "on_crash": string(s.OnCrash),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
