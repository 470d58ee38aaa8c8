package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/goxl/goxl/driver"
	"github.com/goxl/goxl/libxl"
)

func writeCfg(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "g.cfg")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const guestCfg = "name='g'\nmemory=64\nvcpus=1\nkernel='/k'\n"

// envelope decodes a --json document.
type envelope struct {
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Kind    string `json:"kind"`
		Message string `json:"message"`
	} `json:"error"`
}

func decode(t *testing.T, out string) envelope {
	t.Helper()
	var e envelope
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("not JSON: %v: %q", err, out)
	}
	if dec.More() {
		t.Fatalf("more than one JSON document on stdout: %q", out)
	}
	return e
}

func TestCreateOptions(t *testing.T) {
	cfg := writeCfg(t, guestCfg)
	for _, tc := range []struct {
		args []string
		want CreateOptions
	}{
		{[]string{"create", cfg}, CreateOptions{}},
		{[]string{"create", cfg, "-p"}, CreateOptions{Paused: true}},
		{[]string{"create", "-pe", cfg}, CreateOptions{Paused: true, NoMonitor: true}},
		{[]string{"create", "-e", "-f", cfg}, CreateOptions{NoMonitor: true}},
		{[]string{"create", "-f" + cfg, "-p"}, CreateOptions{Paused: true}},
	} {
		f := newFake()
		code, out, errw := runFake(t, f, tc.args...)
		if code != exitOK || f.create != tc.want || len(f.created) != 1 || f.created[0].Name != "g" {
			t.Errorf("%q: exit %d (%s), options %+v, created %v", tc.args, code, errw, f.create, f.created)
		}
		if !strings.Contains(out, "g: domain 9") {
			t.Errorf("%q: stdout %q", tc.args, out)
		}
	}
	// -q: no progress and no result line.
	f := newFake()
	if code, out, errw := runFake(t, f, "create", "-q", cfg); code != exitOK || out != "" || errw != "" {
		t.Errorf("-q: exit %d, %q %q", code, out, errw)
	}
	// -F waits until the domain is gone.
	f = newFake()
	if code, _, _ := runFake(t, f, "create", cfg, "-F"); code != exitOK || f.calls[len(f.calls)-1] != "waitgone g" {
		t.Errorf("-F: exit %d, calls %q", code, f.calls)
	}
}

// Trailing key=value arguments override the file, as xl's: appended
// after it, so they win.
func TestCreateOverrides(t *testing.T) {
	cfg := writeCfg(t, guestCfg)
	f := newFake()
	code, _, errw := runFake(t, f, "create", cfg, "maxmem=256", "on_reboot='destroy'", "-p")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errw)
	}
	got := f.created[0]
	if got.MaxMemMB != 256 || got.OnReboot != libxl.ActionDestroy || got.MemoryMB != 64 || !f.create.Paused {
		t.Errorf("overrides not applied: %+v", got)
	}
	// A key the file sets: the override wins, as the last assignment.
	f = newFake()
	code, _, errw = runFake(t, f, "create", cfg, "memory=96", "vcpus=2")
	if code != exitOK || f.created[0].MemoryMB != 96 || f.created[0].VCPUs != 2 {
		t.Errorf("override of a key in the file: exit %d %s %+v", code, errw, f.created)
	}
	// Only overrides: the config is the command line.
	f = newFake()
	code, _, errw = runFake(t, f, "create", "name='cl'", "memory=32", "kernel='/k'")
	if code != exitOK || f.created[0].Name != "cl" || f.created[0].MemoryMB != 32 {
		t.Errorf("overrides only: exit %d %s %+v", code, errw, f.created)
	}
	// A bad override is a config error.
	f = newFake()
	if code, _, errw := runFake(t, f, "create", cfg, "memroy=32"); code != exitConfig || !strings.Contains(errw, "memroy") || len(f.created) != 0 {
		t.Errorf("bad override: exit %d %q", code, errw)
	}
	// JSON configs take no overrides.
	js := filepath.Join(t.TempDir(), "j.json")
	os.WriteFile(js, []byte(`{"c_info":{"name":"j","type":"pvh"}}`), 0o644)
	if code, _, _ := runFake(t, newFake(), "create", js, "memory=3"); code != exitUsage {
		t.Errorf("json + override: exit %d", code)
	}
}

// Every config problem exits 5, a JSON config without a name included.
func TestConfigErrorsExit5(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"noname.json":  `{"c_info":{"type":"pv"}}`,
		"badtype.json": `{"c_info":{"name":"x","type":"qemu"}}`,
		"syntax.cfg":   "name='x\nmemory=1\n",
		"unknown.cfg":  "name='x'\nmemroy=1\n",
		"noname.cfg":   "memory=64\nkernel='/k'\n",
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(text), 0o644)
		for _, args := range [][]string{{"create", p}, {"create", "-n", p}, {"--json", "create", p}} {
			f := newFake()
			code, out, errw := runFake(t, f, args...)
			if code != exitConfig || len(f.created) != 0 {
				t.Errorf("%s %q: exit %d, stderr %q", name, args, code, errw)
			}
			if args[0] == "--json" {
				if e := decode(t, out); e.OK || e.Error.Code != exitConfig || e.Error.Kind != "config" {
					t.Errorf("%s: json %q", name, out)
				}
			}
		}
	}
	// restore CFG FILE with a bad CFG.
	save := filepath.Join(dir, "s.save")
	os.WriteFile(save, []byte("x"), 0o644)
	if code, _, _ := runFake(t, newFake(), "restore", filepath.Join(dir, "unknown.cfg"), save); code != exitConfig {
		t.Errorf("restore with a bad config: exit %d", code)
	}
}

func TestShutdownAndReboot(t *testing.T) {
	f := newFake()
	if code, _, errw := runFake(t, f, "shutdown", "web", "-wF"); code != exitOK || f.shut["shutdown web"] != (ShutdownOptions{Wait: true, Force: true}) {
		t.Errorf("shutdown -wF: %d %s %v", code, errw, f.shut)
	}
	f = newFake()
	code, out, _ := runFake(t, f, "--json", "shutdown", "-a", "-w")
	if code != exitOK || len(f.shut) != 2 || f.shut["shutdown 3"] != (ShutdownOptions{Wait: true}) || f.shut["shutdown 7"] != (ShutdownOptions{Wait: true}) {
		t.Errorf("shutdown -a -w: exit %d, %v", code, f.shut)
	}
	if _, ok := f.shut["shutdown 0"]; ok {
		t.Error("shutdown -a shut dom0 down")
	}
	var res struct {
		Op      string   `json:"op"`
		Domains []string `json:"domains"`
		Waited  bool     `json:"waited"`
	}
	e := decode(t, out)
	json.Unmarshal(e.Result, &res)
	sort.Strings(res.Domains)
	if !e.OK || res.Op != "shutdown" || !reflect.DeepEqual(res.Domains, []string{"3", "7"}) || !res.Waited {
		t.Errorf("shutdown --json: %q", out)
	}
	f = newFake()
	if code, _, _ := runFake(t, f, "reboot", "--all", "-F"); code != exitOK || f.shut["reboot 3"] != (ShutdownOptions{Force: true}) || f.shut["reboot 7"] != (ShutdownOptions{Force: true}) || len(f.shut) != 2 {
		t.Errorf("reboot -a -F: %d %v", code, f.shut)
	}
	f = newFake()
	if code, _, _ := runFake(t, f, "reboot", "-w", "db"); code != exitOK || f.shut["reboot db"] != (ShutdownOptions{Wait: true}) {
		t.Errorf("reboot -w: %d %v", code, f.shut)
	}
	// xl's -ww, however it is spelled: wait for the death.
	for _, args := range [][]string{{"shutdown", "-ww", "db"}, {"shutdown", "-w", "db", "-w"}, {"shutdown", "--wait", "--wait", "db"}, {"reboot", "-wwF", "db"}} {
		f = newFake()
		want := ShutdownOptions{Wait: true, WaitDeath: true, Force: args[0] == "reboot"}
		if code, _, _ := runFake(t, f, args...); code != exitOK || f.shut[args[0]+" db"] != want {
			t.Errorf("%v: %d %v, want %+v", args, code, f.shut, want)
		}
	}
	// A domain that does not exist: exit 3, and a JSON error saying so.
	code, out, _ = runFake(t, newFake(), "shutdown", "nope", "--json")
	if e := decode(t, out); code != exitNotFound || e.OK || e.Error.Kind != "not-found" || e.Error.Code != exitNotFound || !strings.Contains(e.Error.Message, "nope") {
		t.Errorf("shutdown nope: %d %q", code, out)
	}
}

func TestSaveRestore(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want SaveOptions
	}{
		{[]string{"save", "web", "/s"}, SaveOptions{}},
		{[]string{"save", "web", "/s", "-c"}, SaveOptions{Checkpoint: true}},
		{[]string{"save", "-p", "web", "/s"}, SaveOptions{LeavePaused: true}},
		{[]string{"save", "-cp", "web", "/s"}, SaveOptions{Checkpoint: true, LeavePaused: true}},
	} {
		f := newFake()
		code, out, _ := runFake(t, f, append(tc.args, "--json")...)
		if code != exitOK || f.save != tc.want || f.calls[0] != "save web /s" {
			t.Errorf("%q: exit %d, %+v", tc.args, code, f.save)
		}
		var res map[string]any
		json.Unmarshal(decode(t, out).Result, &res)
		if res["op"] != "save" || res["file"] != "/s" || res["checkpoint"] != tc.want.Checkpoint || res["kept"] != (tc.want.Checkpoint || tc.want.LeavePaused) {
			t.Errorf("%q: result %v", tc.args, res)
		}
	}
	dir := t.TempDir()
	save := filepath.Join(dir, "s.save")
	os.WriteFile(save, []byte("x"), 0o644)
	f := newFake()
	if code, _, _ := runFake(t, f, "restore", save, "-p"); code != exitOK || f.restore.Config != nil || !f.restore.Paused {
		t.Errorf("restore -p: %d %+v", code, f.restore)
	}
	cfg := writeCfg(t, guestCfg)
	f = newFake()
	if code, _, errw := runFake(t, f, "restore", "-e", cfg, save); code != exitOK || f.restore.Config == nil || !f.restore.NoMonitor {
		t.Errorf("restore CFG FILE: %d %s %+v", code, errw, f.restore)
	} else if s, _ := f.restore.Config.Summary(); s.Name != "g" {
		t.Errorf("restore CFG: config %+v", s)
	}
	if code, _, _ := runFake(t, newFake(), "restore", filepath.Join(dir, "missing")); code != exitFailed {
		t.Errorf("restore of a missing file: %d", code)
	}
}

func TestListVerb(t *testing.T) {
	code, out, _ := runFake(t, newFake(), "list")
	if code != exitOK || !strings.Contains(out, "Domain-0") || !strings.Contains(out, "web") || !strings.Contains(out, "-b----") || !strings.Contains(out, "--p---") {
		t.Errorf("list: %d %q", code, out)
	}
	code, out, _ = runFake(t, newFake(), "list", "web", "-v")
	if code != exitOK || strings.Contains(out, "Domain-0") || !strings.Contains(out, "5f0a1b2c-0000-4000-8000-000000000003") || !strings.Contains(out, "UUID") {
		t.Errorf("list -v web: %d %q", code, out)
	}
	if code, _, _ := runFake(t, newFake(), "list", "web", "nope"); code != exitNotFound {
		t.Errorf("list nope: %d", code)
	}
	// list -l is xl's array of {domid, config}; dom0, without a config,
	// is left out as xl does.
	code, out, _ = runFake(t, newFake(), "list", "-l")
	var long []struct {
		DomID  uint32         `json:"domid"`
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal([]byte(out), &long); code != exitOK || err != nil || len(long) != 2 || long[0].DomID != 3 || long[0].Config["c_info"] == nil {
		t.Errorf("list -l: %d %v %q", code, err, out)
	}
	code, out, _ = runFake(t, newFake(), "--json", "list", "-l", "db")
	json.Unmarshal(decode(t, out).Result, &long)
	if code != exitOK || len(long) != 1 || long[0].DomID != 7 {
		t.Errorf("list -l db --json: %q", out)
	}
	code, out, _ = runFake(t, newFake(), "list", "--json")
	var infos []libxl.DomainInfo
	json.Unmarshal(decode(t, out).Result, &infos)
	if code != exitOK || len(infos) != 3 || infos[1].Name != "web" {
		t.Errorf("list --json: %q", out)
	}
}

func TestInfoVerbs(t *testing.T) {
	code, out, _ := runFake(t, newFake(), "info")
	if code != exitOK || !strings.Contains(out, "host                   : dom0host") || !strings.Contains(out, "total_memory           : 4096") {
		t.Errorf("info: %d %q", code, out)
	}
	code, out, _ = runFake(t, newFake(), "info", "web")
	if code != exitOK || !strings.Contains(out, "name:     web") || !strings.Contains(out, "memory:   512 MiB") {
		t.Errorf("info web: %d %q", code, out)
	}
	code, out, _ = runFake(t, newFake(), "info", "--json")
	var h map[string]any
	json.Unmarshal(decode(t, out).Result, &h)
	if code != exitOK || h["host"] != "dom0host" || h["nr_cpus"] != 4.0 {
		t.Errorf("info --json: %q", out)
	}
}

func TestSmallVerbs(t *testing.T) {
	if code, out, _ := runFake(t, newFake(), "domid", "db"); code != exitOK || out != "7\n" {
		t.Errorf("domid: %d %q", code, out)
	}
	if code, out, _ := runFake(t, newFake(), "domname", "3"); code != exitOK || out != "web\n" {
		t.Errorf("domname: %d %q", code, out)
	}
	if code, _, _ := runFake(t, newFake(), "domname", "42"); code != exitNotFound {
		t.Errorf("domname 42: %d", code)
	}
	code, out, _ := runFake(t, newFake(), "uptime")
	// Fake uptimes: domid × (25h 1m 1s).
	if code != exitOK || !strings.Contains(out, "Domain-0                             0  0:00:00") ||
		!strings.Contains(out, "web                                  3 3 days,  3:03:03") {
		t.Errorf("uptime: %d %q", code, out)
	}
	code, out, _ = runFake(t, newFake(), "uptime", "web", "--json")
	var up []uptimeEntry
	json.Unmarshal(decode(t, out).Result, &up)
	if code != exitOK || len(up) != 1 || up[0].Seconds != 3*(25*3600+61) {
		t.Errorf("uptime --json: %q", out)
	}
	for arg, kb := range map[string]uint64{"1024": 1024, "512m": 512 << 10, "2G": 2 << 20, "1t": 1 << 30, "4096b": 4, "7k": 7} {
		f := newFake()
		if code, _, _ := runFake(t, f, "mem-set", "web", arg); code != exitOK || f.memKB != kb {
			t.Errorf("mem-set %s: %d → %d KiB, want %d", arg, code, f.memKB, kb)
		}
	}
	f := newFake()
	if code, _, _ := runFake(t, f, "vcpu-set", "db", "2"); code != exitOK || f.vcpus != 2 {
		t.Errorf("vcpu-set: %d %d", code, f.vcpus)
	}
	code, out, _ = runFake(t, newFake(), "vcpu-list", "db")
	if code != exitOK || !strings.Contains(out, "0-2,5 / all") || strings.Count(out, "\ndb ") != 2 || !strings.Contains(out, "r--") {
		t.Errorf("vcpu-list: %d %q", code, out)
	}
	code, out, _ = runFake(t, newFake(), "version")
	if code != exitOK || !strings.HasPrefix(out, "goxl ") || !strings.Contains(out, "xen 4.17.5") {
		t.Errorf("version: %d %q", code, out)
	}
	code, out, _ = runFake(t, newFake(), "version", "--json")
	var v map[string]string
	json.Unmarshal(decode(t, out).Result, &v)
	if code != exitOK || v["goxl"] == "" || v["xen"] != "4.17.5" || !strings.HasPrefix(v["go"], "go") {
		t.Errorf("version --json: %q", out)
	}
	for _, verb := range []string{"pause", "unpause", "destroy"} {
		f := newFake()
		code, out, _ := runFake(t, f, verb, "web", "--json")
		var r map[string]string
		json.Unmarshal(decode(t, out).Result, &r)
		if code != exitOK || f.calls[0] != verb+" web" || r["op"] != verb || r["domain"] != "web" {
			t.Errorf("%s: %d %q %q", verb, code, f.calls, out)
		}
	}
}

// goxl version works without Xen: the goxl part prints, Xen's is noted.
func TestVersionWithoutXen(t *testing.T) {
	old := xenCapabilities
	xenCapabilities = filepath.Join(t.TempDir(), "missing")
	defer func() { xenCapabilities = old }()
	code, out, errw := runGoxl(t, "version")
	if code != exitOK || !strings.HasPrefix(out, "goxl ") || strings.Contains(out, "xen") || !strings.Contains(errw, "Xen version unavailable") {
		t.Errorf("version: %d %q %q", code, out, errw)
	}
}

// Every --json error is one {"ok":false,"error":{...}} document on
// stdout, whatever failed, with the exit code and its kind.
func TestJSONErrors(t *testing.T) {
	failing := newFake()
	failing.failOp["pause"] = errors.New("libxl: ERROR_FAIL")
	exists := newFake()
	exists.failOp["create"] = driver.ErrDomainExists
	cfg := writeCfg(t, guestCfg)
	for _, tc := range []struct {
		f    *fakeBackend
		args []string
		code int
		kind string
	}{
		{newFake(), []string{"--json", "bogus"}, exitUsage, "usage"},
		{newFake(), []string{"--json", "create", "-x"}, exitUsage, "usage"},
		{newFake(), []string{"--json", "info", "nope"}, exitNotFound, "not-found"},
		{failing, []string{"--json", "pause", "web"}, exitFailed, "failed"},
		{exists, []string{"create", cfg, "--json"}, exitExists, "exists"},
		{newFake(), []string{"--json", "create", "-c", cfg}, exitUsage, "usage"},
	} {
		code, out, errw := runFake(t, tc.f, tc.args...)
		e := decode(t, out)
		if code != tc.code || e.OK || e.Error == nil || e.Error.Code != tc.code || e.Error.Kind != tc.kind || e.Error.Message == "" || errw == "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", tc.args, code, out, errw)
		}
	}
}
