package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runGoxl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errw bytes.Buffer
	code := run(context.Background(), args, &out, &errw)
	return code, out.String(), errw.String()
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{}, {"bogus"}, {"destroy"}, {"info", "a", "b"}, {"save", "x"}, {"shutdown", "-x", "d"}, {"--nope", "list"}, {"domid", "a", "b"},
	} {
		if code, _, errw := runGoxl(t, args...); code != exitUsage || !strings.Contains(errw, "usage") {
			t.Errorf("%q: exit %d, stderr %q", args, code, errw)
		}
	}
	if code, _, _ := runGoxl(t, "help"); code != exitOK {
		t.Errorf("help: %d", code)
	}
}

func TestNotOnXen(t *testing.T) {
	old := xenCapabilities
	xenCapabilities = filepath.Join(t.TempDir(), "missing")
	defer func() { xenCapabilities = old }()
	for _, args := range [][]string{{"list"}, {"info", "0"}, {"--json", "destroy", "x"}, {"events"}} {
		code, _, errw := runGoxl(t, args...)
		if code != exitNotXen || !strings.Contains(errw, "not running on a Xen dom0") {
			t.Errorf("%q: exit %d, stderr %q", args, code, errw)
		}
	}
	f := filepath.Join(t.TempDir(), "caps")
	os.WriteFile(f, []byte("\n"), 0o644) // a domU
	xenCapabilities = f
	if code, _, errw := runGoxl(t, "list"); code != exitNotXen || !strings.Contains(errw, "control_d") {
		t.Errorf("domU: exit %d, %q", code, errw)
	}
}

func TestCreateDryRun(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "g.cfg")
	os.WriteFile(good, []byte("name='g'\nmemory=64\nvcpus=1\nkernel='/k'\n"), 0o644)
	code, out, errw := runGoxl(t, "create", "-n", good)
	if code != exitOK || !strings.Contains(out, "name g, type pv, 64 MiB") {
		t.Fatalf("exit %d out %q err %q", code, out, errw)
	}
	code, out, _ = runGoxl(t, "--json", "create", "-n", good)
	if code != exitOK || !strings.Contains(out, `"name": "g"`) {
		t.Fatalf("json: %d %q", code, out)
	}
	bad := filepath.Join(dir, "b.cfg")
	os.WriteFile(bad, []byte("name='g'\n\nmemroy=64\n"), 0o644)
	code, _, errw = runGoxl(t, "create", "-n", bad)
	if code != exitConfig || !strings.Contains(errw, "line 3") || !strings.Contains(errw, `"memroy"`) {
		t.Fatalf("bad: %d %q", code, errw)
	}
	js := filepath.Join(dir, "j.json")
	os.WriteFile(js, []byte(`{"c_info":{"name":"j","type":"pvh"},"on_reboot":"destroy"}`), 0o644)
	code, out, _ = runGoxl(t, "create", "-n", js)
	if code != exitOK || !strings.Contains(out, "type pvh") || !strings.Contains(out, "on_reboot=destroy") {
		t.Fatalf("json config: %d %q", code, out)
	}
	code, _, _ = runGoxl(t, "create", "-n", filepath.Join(dir, "missing.cfg"))
	if code != exitFailed {
		t.Fatalf("missing file: %d", code)
	}
}
