//go:build xenintegration

package integration

// The goxl CLI on real Xen: every verb as a user types it, its output and
// its exit codes. `make xen` ships the binary to /usr/local/bin/goxl.

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func goxlBinary(t *testing.T) string {
	t.Helper()
	p := os.Getenv("GOXL_CLI")
	if p == "" {
		p = "/usr/local/bin/goxl"
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no goxl binary at %s (make xen ships it; or set GOXL_CLI): %v", p, err)
	}
	return p
}

// goxl runs the CLI and returns stdout, stderr and the exit code.
func goxl(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(goxlBinary(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("goxl %v: %v", args, err)
	}
	t.Logf("$ goxl %s → %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	return out.String(), errb.String(), code
}

func mustGoxl(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := goxl(t, args...)
	if code != 0 {
		t.Fatalf("goxl %v exited %d: %s", args, code, errs)
	}
	return out
}

func TestCLIVerbs(t *testing.T) {
	e := setup(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cli.cfg")
	raw, err := os.ReadFile(filepath.Join(guestDir(), "guest.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(raw), `name = "testguest"`, `name = "cli1"`, 1)
	text = strings.Replace(text, `on_poweroff = "destroy"`, `on_poweroff = "preserve"`, 1)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}

	// events streams until SIGINT.
	events := exec.Command(goxlBinary(t), "events")
	var evOut bytes.Buffer
	events.Stdout = &evOut
	if err := events.Start(); err != nil {
		t.Fatal(err)
	}
	defer events.Process.Kill()
	time.Sleep(time.Second)

	if out := mustGoxl(t, "list"); !strings.Contains(out, "Domain-0") {
		t.Fatalf("list without Domain-0:\n%s", out)
	}
	var list struct {
		OK     bool             `json:"ok"`
		Result []map[string]any `json:"result"`
	}
	if err := json.Unmarshal([]byte(mustGoxl(t, "--json", "list")), &list); err != nil || !list.OK || len(list.Result) == 0 {
		t.Fatalf("--json list: %v %v", list, err)
	}
	if _, _, code := goxl(t, "info", "no-such-guest"); code != 3 {
		t.Fatalf("info on an unknown domain exited %d, want 3", code)
	}
	if _, _, code := goxl(t, "frobnicate"); code != 2 {
		t.Fatalf("an unknown verb exited %d, want 2", code)
	}
	bad := filepath.Join(dir, "bad.cfg")
	os.WriteFile(bad, []byte("name = \"x\"\nmemroy = 128\n"), 0o644)
	if _, errs, code := goxl(t, "create", bad); code != 5 || !strings.Contains(errs, "memroy") {
		t.Fatalf("a config with an unknown key exited %d (%q), want 5 naming the key", code, errs)
	}

	mustGoxl(t, "create", cfg)
	if _, _, code := goxl(t, "create", cfg); code != 6 {
		t.Fatalf("a second create of cli1 exited %d, want 6", code)
	}
	mustGoxl(t, "pause", "cli1")
	if out := mustGoxl(t, "info", "cli1"); !strings.Contains(out, "p") {
		t.Fatalf("info after pause:\n%s", out)
	}
	mustGoxl(t, "unpause", "cli1")
	if out := mustGoxl(t, "console", "--json", "cli1"); !strings.Contains(out, `"tty": "/dev/pts/`) {
		t.Fatalf("console --json printed %q", out)
	}
	save := filepath.Join(dir, "cli1.save")
	var saved bool
	for try := 0; try < 5 && !saved; try++ {
		// A PV guest still booting cannot be suspended yet (libxc: "Bad
		// mfn"); the guest is up within seconds.
		_, _, code := goxl(t, "save", "cli1", save)
		saved = code == 0
		if !saved {
			time.Sleep(5 * time.Second)
		}
	}
	if !saved {
		t.Fatal("save never succeeded")
	}
	mustGoxl(t, "restore", save)
	mustGoxl(t, "shutdown", "-w", "cli1")
	mustGoxl(t, "destroy", "cli1")
	if _, _, code := goxl(t, "destroy", "cli1"); code != 3 {
		t.Fatalf("destroy of a vanished domain exited %d, want 3", code)
	}

	time.Sleep(time.Second)
	events.Process.Signal(syscall.SIGINT)
	err = events.Wait()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && (exit.ExitCode() == 130 || exit.ExitCode() == 0)) {
		t.Fatalf("events after SIGINT: %v", err)
	}
	got := evOut.String()
	t.Logf("goxl events printed:\n%s", got)
	for _, kind := range []string{"shutdown", "death"} {
		if !strings.Contains(got, kind) {
			t.Errorf("goxl events never printed %q", kind)
		}
	}
	e.noGuests()
}
