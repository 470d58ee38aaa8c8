//go:build libxlmodel

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The goxl built without cgo is the daemon's client: with a daemon up,
// every verb runs in it alone, an xl config going to the daemon as text
// for the daemon to parse; a config to parse here (create -n),
// in-process mode and the daemon itself are handed to the cgo goxl by
// exec (here the companion is this test binary running as goxl against
// the contract model, behind a script that records each hand-off). With
// no companion, a verb that needs libxl fails and says what to install.
func TestCgoFreeClientHandsOffToTheCgoGoxl(t *testing.T) {
	if testing.Short() {
		t.Skip("builds goxl without cgo")
	}
	dir := t.TempDir()
	client := filepath.Join(dir, "bin", "goxl")
	build := exec.Command("go", "build", "-o", client, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build without cgo: %v\n%s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	handoffs := filepath.Join(dir, "handoffs")
	companion := filepath.Join(dir, "companion")
	script := "#!/bin/sh\necho \"$*\" >>" + handoffs + "\nexec " + self + " \"$@\"\n"
	if err := os.WriteFile(companion, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	caps := filepath.Join(dir, "capabilities")
	os.WriteFile(caps, []byte("control_d\n"), 0o644)
	sock := filepath.Join(dir, "goxld.sock")
	env := append(os.Environ(), asGoxlEnv+"="+caps, "GOXL_SOCKET="+sock, "GOXL_NO_DAEMON=", "GOXL_LIBXL_BIN="+companion)
	run := func(env []string, args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(client, args...)
		cmd.Env = env
		var out, errw strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errw
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, out.String(), errw.String()
	}
	handedOff := func() []string {
		b, _ := os.ReadFile(handoffs)
		os.Remove(handoffs)
		return strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", " | "))
	}

	// The daemon itself: handed off (it runs libxl), detached.
	code, out, errw := run(env, "--json", "daemon", "--log", filepath.Join(dir, "daemon.log"))
	if code != exitOK {
		t.Fatalf("goxl daemon through the cgo-free goxl: exit %d\n%s%s", code, out, errw)
	}
	pid := daemonPID(t, out)
	defer func() {
		syscall.Kill(pid, syscall.SIGTERM)
		deadline := time.Now().Add(30 * time.Second)
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}()
	if h := handedOff(); len(h) == 0 || h[0] != "--json" {
		t.Fatalf("goxl daemon was not handed to the cgo goxl (hand-offs: %q)", h)
	}

	// An xl config: the daemon parses it (libxlutil is in the cgo
	// daemon), overrides and all; no exec of the cgo goxl.
	xlCfg := filepath.Join(dir, "g1.cfg")
	os.WriteFile(xlCfg, []byte("name = \"g0\"\ntype = \"pv\"\nkernel = \"/k\"\nmemory = 64\n"), 0o644)
	if code, out, errw := run(env, "create", xlCfg, `name="g1"`); code != exitOK || !strings.Contains(out, "g1: domain") {
		t.Fatalf("create of an xl config through the daemon: exit %d\n%s%s", code, out, errw)
	}
	if h := handedOff(); len(h) != 0 {
		t.Fatalf("create of an xl config through the daemon was handed off: %q", h)
	}
	// A config error found by the daemon's parser is still exit 5.
	badCfg := filepath.Join(dir, "bad.cfg")
	os.WriteFile(badCfg, []byte("name = \"bad\"\nmemory = \n"), 0o644)
	if code, _, errw := run(env, "create", badCfg); code != exitConfig || !strings.Contains(errw, "bad.cfg") {
		t.Fatalf("create of a malformed xl config through the daemon: exit %d (%s), want %d naming the file", code, errw, exitConfig)
	}
	if h := handedOff(); len(h) != 0 {
		t.Fatalf("create of a malformed xl config through the daemon was handed off: %q", h)
	}
	// A config parsed here (create -n): the cgo goxl's.
	if code, out, errw := run(env, "create", "-n", xlCfg); code != exitOK || !strings.Contains(out, "name g0") {
		t.Fatalf("create -n of an xl config: exit %d\n%s%s", code, out, errw)
	}
	if h := handedOff(); len(h) == 0 || h[0] != "create" {
		t.Fatalf("create -n of an xl config was not handed off: %q", h)
	}
	// Verbs through the daemon: no hand-off.
	for _, args := range [][]string{{"--json", "list"}, {"pause", "g1"}, {"unpause", "g1"}, {"--json", "domid", "g1"}, {"destroy", "g1"}} {
		if code, out, errw := run(env, args...); code != exitOK {
			t.Fatalf("%q through the daemon: exit %d\n%s%s", args, code, out, errw)
		}
		if h := handedOff(); len(h) != 0 {
			t.Fatalf("%q through the daemon was handed off: %q", args, h)
		}
	}
	if code, _, errw := run(env, "domid", "g1"); code != exitNotFound {
		t.Fatalf("g1 after its destroy through the daemon: exit %d (%s), want not found", code, errw)
	}
	handedOff()

	// No daemon: in-process mode is the cgo goxl's.
	noDaemon := append(env, "GOXL_NO_DAEMON=1")
	if code, out, errw := run(noDaemon, "--json", "list"); code != exitOK || !strings.Contains(out, `"ok": true`) {
		t.Fatalf("list in-process: exit %d\n%s%s", code, out, errw)
	}
	if h := handedOff(); len(h) == 0 || h[len(h)-1] != "list" {
		t.Fatalf("list without a daemon was not handed off: %q", h)
	}
	// No companion: a clear error, not a crash or a silent nothing.
	alone := append(noDaemon, "GOXL_LIBXL_BIN=")
	code, _, errw = run(alone, "list")
	if code == exitOK || !strings.Contains(errw, "goxl-libxl") || !strings.Contains(errw, "without cgo") {
		t.Fatalf("list with no daemon and no companion: exit %d, stderr %q; want a failure naming goxl-libxl", code, errw)
	}
}
