//go:build xenintegration

package integration

// The CLI's xl conventions on real Xen: the new verbs and options (issue
// 13), and an interactive console through a pty.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// jsonResult runs goxl --json and decodes its result.
func jsonResult(t *testing.T, v any, args ...string) {
	t.Helper()
	out := mustGoxl(t, append([]string{"--json"}, args...)...)
	var env struct {
		OK     bool            `json:"ok"`
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal([]byte(out), &env); err != nil || !env.OK {
		t.Fatalf("goxl --json %v: %v %q", args, err, out)
	}
	if err := json.Unmarshal(env.Result, v); err != nil {
		t.Fatalf("goxl --json %v: result %v", args, err)
	}
}

// cliGuestConfig writes the test guest's config without its name line:
// the name comes as an override, as xl's trailing key=value.
func cliGuestConfig(t *testing.T, dir string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(guestDir(), "guest.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(l, "name") {
			lines = append(lines, l)
		}
	}
	cfg := filepath.Join(dir, "noname.cfg")
	if err := os.WriteFile(cfg, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func openPtyPair(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// leaveConsole types Ctrl-] on the terminal and expects the attached
// goxl process to exit 0 soon after.
func leaveConsole(t *testing.T, what string, term *os.File, exited <-chan error, cmd *exec.Cmd, stderr *bytes.Buffer) {
	t.Helper()
	term.Write([]byte{0x1d})
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("%s after Ctrl-]: %v (%s)", what, err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Errorf("Ctrl-] did not leave %s", what)
	}
}

func TestCLIXLConventions(t *testing.T) {
	e := setup(t)
	dir := t.TempDir()
	cfg := cliGuestConfig(t, dir)

	if out := mustGoxl(t, "version"); !strings.HasPrefix(out, "goxl ") || !strings.Contains(out, "xen 4.") {
		t.Errorf("version printed %q", out)
	}
	var host map[string]any
	jsonResult(t, &host, "info")
	if v, _ := host["xen_version"].(string); !strings.HasPrefix(v, "4.") || host["total_memory"].(float64) <= 0 || host["nr_cpus"].(float64) < 1 {
		t.Errorf("info: %v", host)
	}
	if out := mustGoxl(t, "info"); !strings.Contains(out, "xen_version") || !strings.Contains(out, "free_memory") {
		t.Errorf("info printed %q", out)
	}

	// Options after the positional, combined, and an override naming it;
	// -c attaches to the console of the guest just built (paused by -p),
	// through a pty: the guest's boot output arrives once it is
	// unpaused, and Ctrl-] leaves.
	term, termSlave := openPtyPair(t)
	create := exec.Command(goxlBinary(t), "create", cfg, "-pqc", `name="cli2"`)
	create.Stdin, create.Stdout = termSlave, termSlave
	var createErr bytes.Buffer
	create.Stderr = &createErr
	if err := create.Start(); err != nil {
		t.Fatal(err)
	}
	createExited := make(chan error, 1)
	go func() { createExited <- create.Wait() }()
	e.waitFor("create -c to build cli2", 5*time.Minute, func() bool {
		_, ok := e.domainByName("cli2")
		return ok
	})
	jsonResult(t, &host, "info", "cli2")
	if host["paused"] != true {
		t.Fatalf("create -p: cli2 is not paused: %v", host)
	}
	// Give create -c the moment it needs to attach after the build.
	select {
	case err := <-createExited:
		t.Fatalf("create -c exited before Ctrl-]: %v (%s)", err, createErr.String())
	case <-time.After(2 * time.Second):
	}
	mustGoxl(t, "unpause", "cli2")
	var seen bytes.Buffer
	buf := make([]byte, 4096)
	// The boot line also says the guest is up, so that save -c below
	// finds it ready to suspend. TCG on a loaded host boots slowly.
	deadline := time.Now().Add(5 * time.Minute)
	for !strings.Contains(seen.String(), "XENVM-GUEST up") && time.Now().Before(deadline) {
		term.SetReadDeadline(time.Now().Add(time.Second))
		n, _ := term.Read(buf)
		seen.Write(buf[:n])
	}
	if !strings.Contains(seen.String(), "XENVM-GUEST up") {
		t.Errorf("create -c never showed the guest's boot line; got %d bytes, stderr %q", seen.Len(), createErr.String())
	}
	leaveConsole(t, "create -c", term, createExited, create, &createErr)
	id := strings.TrimSpace(mustGoxl(t, "domid", "cli2"))
	if name := strings.TrimSpace(mustGoxl(t, "domname", id)); name != "cli2" {
		t.Errorf("domname %s = %q", id, name)
	}
	if out := mustGoxl(t, "uptime", "cli2"); !strings.Contains(out, "cli2") {
		t.Errorf("uptime printed %q", out)
	}
	var vcpus []map[string]any
	jsonResult(t, &vcpus, "vcpu-list", "cli2")
	if len(vcpus) != 1 || vcpus[0]["name"] != "cli2" {
		t.Errorf("vcpu-list: %v", vcpus)
	}
	mustGoxl(t, "vcpu-set", "cli2", "1")
	mustGoxl(t, "mem-set", "cli2", "96m")
	var long []struct {
		DomID  uint32 `json:"domid"`
		Config struct {
			CInfo struct {
				Name string `json:"name"`
			} `json:"c_info"`
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(mustGoxl(t, "list", "-l", "cli2")), &long); err != nil || len(long) != 1 || long[0].Config.CInfo.Name != "cli2" {
		t.Errorf("list -l cli2: %v %+v", err, long)
	}

	// The console verb attaches to the running guest (the data path is
	// the one create -c used) and Ctrl-] leaves.
	console := exec.Command(goxlBinary(t), "console", "cli2")
	console.Stdin, console.Stdout = termSlave, termSlave
	var consErr bytes.Buffer
	console.Stderr = &consErr
	if err := console.Start(); err != nil {
		t.Fatal(err)
	}
	consoleExited := make(chan error, 1)
	go func() { consoleExited <- console.Wait() }()
	select {
	case err := <-consoleExited:
		t.Fatalf("console exited before Ctrl-]: %v (%s)", err, consErr.String())
	case <-time.After(2 * time.Second):
	}
	leaveConsole(t, "console", term, consoleExited, console, &consErr)

	// save -c: a checkpoint; the guest keeps running and still shuts down
	// on request afterwards.
	save := filepath.Join(dir, "cli2.save")
	var saved bool
	for try := 0; try < 5 && !saved; try++ {
		_, _, code := goxl(t, "save", "-c", "cli2", save)
		saved = code == 0
		if !saved {
			time.Sleep(5 * time.Second)
		}
	}
	if !saved {
		t.Fatal("save -c never succeeded")
	}
	jsonResult(t, &host, "info", "cli2")
	if host["running"] != true && host["blocked"] != true || host["shutdown"] == true {
		t.Fatalf("cli2 after save -c: %v", host)
	}
	// restore CFG FILE: the config given replaces the saved one.
	cfg3 := filepath.Join(dir, "cli3.cfg")
	raw, _ := os.ReadFile(cfg)
	os.WriteFile(cfg3, append(raw, []byte("\nname = \"cli3\"\non_reboot = \"restart\"\n")...), 0o644)
	var snap map[string]any
	jsonResult(t, &snap, "restore", cfg3, save)
	if snap["name"] != "cli3" {
		t.Errorf("restore CFG FILE made %v", snap)
	}
	var res map[string]any
	jsonResult(t, &res, "shutdown", "-w", "cli2")
	if res["op"] != "shutdown" || res["waited"] != true {
		t.Errorf("shutdown --json: %v", res)
	}
	// reboot -ww (xl's "wait for the death") returns once the
	// incarnation asked is dead: cli3's monitor (restore started one)
	// carries out its on_reboot = "restart", as xl's does, destroying it
	// and building a new incarnation.
	oldID := strings.TrimSpace(mustGoxl(t, "domid", "cli3"))
	jsonResult(t, &res, "reboot", "-ww", "cli3")
	if res["op"] != "reboot" || res["waited"] != true {
		t.Errorf("reboot --json: %v", res)
	}
	if old, err := strconv.Atoi(oldID); err != nil {
		t.Fatalf("domid cli3 printed %q", oldID)
	} else if info, err := e.drv.Ctx().DomainInfo(uint32(old)); err == nil && !info.Dying {
		t.Errorf("reboot -ww returned while domain %d is still there: %+v", old, info)
	}
	e.waitFor("cli3's next incarnation", 2*time.Minute, func() bool {
		info, ok := e.domainByName("cli3")
		return ok && strconv.Itoa(int(info.DomID)) != oldID && !info.Shutdown && !info.Dying
	})
	// cli2 powered off; with no owner of its on_poweroff in this mode it
	// may still be there, shut down.
	if _, _, code := goxl(t, "destroy", "cli2"); code != 0 && code != 3 {
		t.Errorf("destroy of the shut-down cli2 exited %d", code)
	}
	mustGoxl(t, "destroy", "cli3")
	if _, _, code := goxl(t, "domid", "cli3"); code != 3 {
		t.Errorf("domid of a destroyed domain exited %d, want 3", code)
	}
	e.noGuests()
}
