//go:build xenintegration

package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/goxl/goxl/libxl"
	"github.com/goxl/goxl/tests/configs"
)

// xlBinary is the xl of the Xen under test: Debian's 4.17 (its /usr/sbin/xl
// is a wrapper); xen42_test.go names 4.2's own for -tags xen42.
var xlBinary = "/usr/lib/xen-4.17/bin/xl"

// A config that sets uuid= or asks for a fresh VM generation ID: where it
// does not, each side draws its own value.
var (
	setsUUID       = regexp.MustCompile(`(?m)^\s*uuid\s*=`)
	generatesGenID = regexp.MustCompile(`(?m)^\s*ms_vm_genid\s*=\s*["']generate["']`)
)

// xlDryRun returns what `xl create -n` prints for a config: the
// libxl_domain_config xl would create, in libxl's JSON.
func xlDryRun(t *testing.T, path string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(xlBinary, "create", "-n", path)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("xl create -n %s: %v\n%s", path, err, stderr.String())
	}
	return stdout.String()
}

// jsonDiff lists the fields where two libxl JSON documents differ, by
// path ("b_info.type.hvm.vnc.enable: xl "True", goxl absent").
func jsonDiff(path string, xl, goxl any) []string {
	switch x := xl.(type) {
	case map[string]any:
		g, ok := goxl.(map[string]any)
		if !ok {
			break
		}
		keys := map[string]bool{}
		for k := range x {
			keys[k] = true
		}
		for k := range g {
			keys[k] = true
		}
		var names []string
		for k := range keys {
			names = append(names, k)
		}
		sort.Strings(names)
		var out []string
		for _, k := range names {
			xv, xok := x[k]
			gv, gok := g[k]
			p := strings.TrimPrefix(path+"."+k, ".")
			switch {
			case !xok:
				out = append(out, fmt.Sprintf("%s: xl absent, goxl %s", p, show(gv)))
			case !gok:
				out = append(out, fmt.Sprintf("%s: xl %s, goxl absent", p, show(xv)))
			default:
				out = append(out, jsonDiff(p, xv, gv)...)
			}
		}
		return out
	case []any:
		g, ok := goxl.([]any)
		if !ok || len(g) != len(x) {
			break
		}
		var out []string
		for i := range x {
			out = append(out, jsonDiff(fmt.Sprintf("%s[%d]", path, i), x[i], g[i])...)
		}
		return out
	}
	if reflect.DeepEqual(xl, goxl) {
		return nil
	}
	return []string{fmt.Sprintf("%s: xl %s, goxl %s", path, show(xl), show(goxl))}
}

func show(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

type corpusConfig struct {
	name, path string
	own        bool // goxl's own parser must build it (else xl's, through LoadConfig)
}

// corpus writes the embedded corpus to a folder and adds Xen's own
// examples from /etc/xen (Debian's xen-utils-common installs them).
func corpus(t *testing.T) []corpusConfig {
	dir := t.TempDir()
	files, err := fs.Glob(configs.FS, "*.cfg")
	if err != nil || len(files) == 0 {
		t.Fatalf("corpus: %v", err)
	}
	var out []corpusConfig
	for _, f := range files {
		data, _ := configs.FS.ReadFile(f)
		p := filepath.Join(dir, f)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, corpusConfig{name: f, path: p, own: bytes.HasPrefix(data, []byte("# goxl: own\n"))})
	}
	// Xen's examples, and which parser goxl uses for each: the HVM one
	// has sdl=, which goxl's own parser does not map.
	for name, own := range map[string]bool{"xlexample.pvlinux": true, "xlexample.pvhlinux": true, "xlexample.hvm": false} {
		p := filepath.Join("/etc/xen", name)
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("Xen's example %s: %v (the dom0 image installs xen-utils-common)", p, err)
		}
		out = append(out, corpusConfig{name: name, path: p, own: own})
	}
	return out
}

// TestConfigFidelity: for every config of the corpus, goxl builds the
// libxl_domain_config that `xl create -n` prints, field by field. The
// UUID is compared only where the config sets one (otherwise each side
// draws its own).
func TestConfigFidelity(t *testing.T) {
	e := setup(t)
	ctx := e.drv.Ctx()
	for _, cc := range corpus(t) {
		t.Run(cc.name, func(t *testing.T) {
			data, _ := os.ReadFile(cc.path)
			xlJSON := xlDryRun(t, cc.path)
			cfg, err := libxl.LoadConfigFile(cc.path, libxl.LoadOptions{XL: xlBinary})
			if err != nil {
				t.Fatalf("goxl: %v", err)
			}
			_, own := cfg.(*libxl.DomainConfig)
			if own != cc.own {
				t.Fatalf("parsed by goxl's own parser: %v, want %v (%T)", own, cc.own, cfg)
			}
			if cc.own {
				// And never through xl: the own parser alone.
				if _, err := libxl.LoadConfigFile(cc.path, libxl.LoadOptions{NoXL: true}); err != nil {
					t.Fatalf("goxl's own parser: %v", err)
				}
			}
			goJSON, err := ctx.ConfigToJSON(cfg)
			if err != nil {
				t.Fatalf("goxl ConfigToJSON: %v", err)
			}
			var xv, gv map[string]any
			if err := json.Unmarshal([]byte(xlJSON), &xv); err != nil {
				t.Fatalf("xl's JSON: %v\n%s", err, xlJSON)
			}
			if err := json.Unmarshal([]byte(goJSON), &gv); err != nil {
				t.Fatalf("goxl's JSON: %v\n%s", err, goJSON)
			}
			if !setsUUID.Match(data) {
				delete(xv["c_info"].(map[string]any), "uuid")
				delete(gv["c_info"].(map[string]any), "uuid")
			}
			if generatesGenID.Match(data) {
				// xl draws a VM generation ID per run: both must have one.
				for side, v := range map[string]map[string]any{"xl": xv, "goxl": gv} {
					hvm, _ := v["b_info"].(map[string]any)["type.hvm"].(map[string]any)
					if id, _ := hvm["ms_vm_genid"].([]any); len(id) != 16 {
						t.Errorf("%s: ms_vm_genid = \"generate\" gave %v", side, hvm["ms_vm_genid"])
					}
					delete(hvm, "ms_vm_genid")
				}
			}
			if diff := jsonDiff("", xv, gv); len(diff) > 0 {
				t.Fatalf("goxl's libxl_domain_config differs from xl's in %d fields:\n  %s\n--- xl create -n:\n%s\n--- goxl:\n%s",
					len(diff), strings.Join(diff, "\n  "), xlJSON, goJSON)
			}
			t.Logf("%s: %d bytes of libxl JSON, same as xl's (parser: %s)", cc.name, len(xlJSON), map[bool]string{true: "goxl", false: "xl"}[own])
		})
	}
}
