//go:build libxlmodel

package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// asGoxlEnv makes this test binary run as goxl (main) when it is started
// again by the command under test: `goxl daemon` detaches by starting
// its own executable, which here is the test binary.
const asGoxlEnv = "GOXL_TEST_RUN_AS_GOXL"

func TestMain(m *testing.M) {
	if caps := os.Getenv(asGoxlEnv); caps != "" {
		xenCapabilities = caps
		main()
	}
	os.Exit(m.Run())
}

// `goxl daemon` without --foreground detaches: it returns once the
// daemon answers, the daemon runs in a session of its own with its log
// in a file, and SIGTERM stops it cleanly (its log says so, its socket
// is gone, and its event numbering is recorded as a clean stop). The
// daemon runs against the contract model.
func TestDetachedDaemonStopsCleanlyOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	caps := filepath.Join(dir, "capabilities")
	os.WriteFile(caps, []byte("control_d\n"), 0o644)
	old := xenCapabilities
	xenCapabilities = caps
	defer func() { xenCapabilities = old }()
	t.Setenv(asGoxlEnv, caps)
	sock, logPath := filepath.Join(dir, "goxld.sock"), filepath.Join(dir, "daemon.log")

	code, out, errw := runGoxl(t, "--json", "daemon", "--socket", sock, "--log", logPath)
	if code != exitOK {
		t.Fatalf("goxl daemon: exit %d\n%s%s", code, out, errw)
	}
	pid := daemonPID(t, out)
	defer syscall.Kill(pid, syscall.SIGKILL) // only if the test failed before its SIGTERM
	if sid, err := unix.Getsid(pid); err != nil || sid != pid {
		t.Fatalf("the daemon (pid %d) is in session %d (%v), want a session of its own", pid, sid, err)
	}
	t.Setenv("GOXL_SOCKET", sock)
	t.Setenv("GOXL_NO_DAEMON", "")
	if code, out, errw := runGoxl(t, "--json", "list"); code != exitOK || !strings.Contains(out, `"ok": true`) {
		t.Fatalf("list through the detached daemon: exit %d %s%s", code, out, errw)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// detachDaemon's goroutine reaps it: then the pid is gone.
	deadline := time.Now().Add(60 * time.Second)
	for !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not exit within 60 s of SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(logPath)
	if !strings.Contains(string(log), "goxl daemon: stopped") {
		t.Fatalf("the daemon's log does not end with a clean stop:\n%s", log)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("the socket is left after the stop: %v", err)
	}
	seq, _ := os.ReadFile(filepath.Join(dir, "events.seq"))
	if !strings.Contains(string(seq), `"clean":true`) {
		t.Fatalf("events.seq after SIGTERM: %q, want a clean stop recorded", seq)
	}
}

// daemonPID is the pid that `goxl --json daemon` printed.
func daemonPID(t *testing.T, out string) int {
	t.Helper()
	var doc struct {
		Result struct {
			PID int `json:"pid"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.Result.PID <= 0 {
		t.Fatalf("goxl daemon printed %q: no pid", out)
	}
	return doc.Result.PID
}
