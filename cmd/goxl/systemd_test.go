package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The systemd unit in contrib/ is one systemd accepts without a warning
// (systemd-analyze verify), and it stops the daemon the way the daemon
// stops cleanly: SIGTERM to the daemon only (monitors started by
// `goxl create` are not its to signal), with /run/goxl kept across
// restarts (the ownership locks and building marks live there).
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("../../contrib/systemd/goxld.service")
	if err != nil {
		t.Fatal(err)
	}
	text := string(unit)
	for _, want := range []string{"ExecStart=/usr/local/bin/goxl daemon --foreground\n", "KillSignal=SIGTERM\n", "KillMode=process\n", "RuntimeDirectory=goxl\n", "RuntimeDirectoryPreserve=yes\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("goxld.service lacks %q", strings.TrimSpace(want))
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skipf("systemd-analyze is not installed (Debian package systemd): the unit's syntax is not verified here: %v", err)
	}
	// verify also checks that ExecStart's program exists: point it at an
	// executable that does (this test binary).
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "goxld.service")
	text = regexp.MustCompile(`(?m)^ExecStart=/usr/local/bin/goxl `).ReplaceAllString(text, "ExecStart="+self+" ")
	if err := os.WriteFile(copyPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", copyPath).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Fatalf("systemd-analyze verify goxld.service: %v\n%s", err, out)
	}
}
