//go:build cgo && !libxlmodel

package libxl

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goxl/goxl/tests/configs"
)

// fakeXL writes a stand-in for `xl` that records its arguments and prints
// json (or fails when json is empty).
func fakeXL(t *testing.T, json string) (xl, argsFile string) {
	t.Helper()
	dir := t.TempDir()
	argsFile = filepath.Join(dir, "args")
	out := filepath.Join(dir, "out.json")
	if err := os.WriteFile(out, []byte(json), 0o600); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho \"$@\" >" + argsFile + "\n"
	if json == "" {
		script += "echo 'xl: parse failure' >&2\nexit 3\n"
	} else {
		script += "echo 'Parsing config from x' >&2\ncat " + out + "\n"
	}
	xl = filepath.Join(dir, "xl")
	if err := os.WriteFile(xl, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return xl, argsFile
}

const fakeXLJSON = `{"c_info":{"type":"hvm","name":"from-xl"},"b_info":{"max_memkb":65536,"target_memkb":65536,"type.hvm":{"vnc":{"enable":"False"}}}}`

func TestLoadConfigHandsNotSupportedToXL(t *testing.T) {
	xl, argsFile := fakeXL(t, fakeXLJSON)
	cfg, err := LoadConfig("hvm.cfg", []byte("name='from-xl'\ntype='hvm'\nmemory=64\nvnc=0\n"), LoadOptions{XL: xl, Overrides: []string{"memory=64"}})
	if err != nil {
		t.Fatal(err)
	}
	j, ok := cfg.(JSONConfig)
	if !ok || !strings.Contains(string(j), `"from-xl"`) {
		t.Fatalf("got %T %v", cfg, cfg)
	}
	args, _ := os.ReadFile(argsFile)
	if a := strings.Fields(string(args)); len(a) != 4 || a[0] != "create" || a[1] != "-n" || a[3] != "memory=64" {
		t.Fatalf("xl called with %q", args)
	}
	// NoXL: goxl's own parser only, and its error names the key.
	_, err = LoadConfig("hvm.cfg", []byte("name='x'\nvnc=0\n"), LoadOptions{XL: xl, NoXL: true})
	var ce *ConfigError
	if !errors.Is(err, ErrConfigNotSupported) || !errors.As(err, &ce) || ce.Key != "vnc" || ce.Line != 2 {
		t.Fatalf("NoXL: %v", err)
	}
	// xl refusing the config is a config error, and keeps goxl's own.
	xlBad, _ := fakeXL(t, "")
	_, err = LoadConfig("hvm.cfg", []byte("name='x'\nvnc=0\n"), LoadOptions{XL: xlBad})
	if !errors.Is(err, ErrConfig) || !errors.Is(err, ErrConfigNotSupported) || !strings.Contains(err.Error(), "parse failure") {
		t.Fatalf("xl failing: %v", err)
	}
}

// Typos, syntax errors and bad values are goxl's to report: xl would
// ignore an unknown key, so handing it on would hide the typo.
func TestLoadConfigKeepsOtherErrors(t *testing.T) {
	xl, argsFile := fakeXL(t, fakeXLJSON)
	for cfg, want := range map[string]error{
		"name='x'\nvnc=0\nmemroy=64\n":  ErrConfigUnknownKey,
		"name='x'\nvnc=0\nmemory='a'\n": ErrConfigBadValue,
		"name='x\nvnc=0\n":              ErrConfigSyntax,
	} {
		if _, err := LoadConfig("t.cfg", []byte(cfg), LoadOptions{XL: xl}); !errors.Is(err, want) {
			t.Errorf("%q: got %v, want %v", cfg, err, want)
		}
	}
	if _, err := os.Stat(argsFile); err == nil {
		t.Error("xl was called for a config with a typo, a bad value or a syntax error")
	}
}

func TestLoadConfigForms(t *testing.T) {
	dir := t.TempDir()
	js := filepath.Join(dir, "list.json")
	os.WriteFile(js, []byte(`[{"domid":4,"config":{"c_info":{"name":"listed"}}}]`), 0o600)
	cfg, err := LoadConfigFile(js, LoadOptions{NoXL: true})
	if j, ok := cfg.(JSONConfig); err != nil || !ok || !strings.Contains(string(j), "listed") {
		t.Fatalf("xl list -l file: %T %v", cfg, err)
	}
	os.WriteFile(js, []byte(`{"c_info":{"type":"pv"}}`), 0o600)
	var ce *ConfigError
	if _, err := LoadConfigFile(js, LoadOptions{NoXL: true}); !errors.As(err, &ce) || ce.File != js || ce.Key != "name" {
		t.Fatalf("nameless JSON: %v", err)
	}
	if _, err := LoadConfigFile(filepath.Join(dir, "missing.cfg"), LoadOptions{}); !errors.Is(err, ErrConfig) {
		t.Fatalf("missing file: %v", err)
	}
	c, err := LoadConfig("o.cfg", []byte("name='a'\nmemory=64\n"), LoadOptions{NoXL: true, Overrides: []string{"memory=96", `name="b"`}})
	if d, ok := c.(*DomainConfig); err != nil || !ok || d.MemoryMB != 96 || d.Name != "b" {
		t.Fatalf("overrides: %+v %v", c, err)
	}
}

// The corpus: each file parses with the parser its first line names.
func TestConfigCorpusParsers(t *testing.T) {
	files, err := fs.Glob(configs.FS, "*.cfg")
	if err != nil || len(files) < 5 {
		t.Fatalf("corpus: %v %v", files, err)
	}
	for _, f := range files {
		data, _ := configs.FS.ReadFile(f)
		first, _, _ := strings.Cut(string(data), "\n")
		_, err := ParseXL(f, data)
		switch first {
		case "# goxl: own":
			if err != nil {
				t.Errorf("%s: goxl's own parser refuses it: %v", f, err)
			}
		case "# goxl: xl":
			if err == nil || !onlyNotSupported(err) {
				t.Errorf("%s: want only not-supported errors (handed to xl), got %v", f, err)
			}
		default:
			t.Errorf("%s: first line %q names no parser", f, first)
		}
	}
}
