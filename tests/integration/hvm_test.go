//go:build xenintegration

package integration

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxl/goxl/driver"
	"github.com/goxl/goxl/driver/eventloop"
	"github.com/goxl/goxl/libxl"
)

// needHVM skips unless Xen offers HVM guests: under QEMU that takes
// `--cpu max,-smap,-rdtscp` (SVM with nested paging); `make xen` runs
// the HVM tests in a second boot with that CPU.
func needHVM(t *testing.T) {
	t.Helper()
	needXen(t)
	out, err := exec.Command(xlBinary, "info").Output()
	if err != nil {
		t.Fatalf("xl info: %v", err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "virt_caps" {
			if strings.Contains(v, "hvm") && strings.Contains(v, "hap") {
				return
			}
			t.Skipf("Xen has no HVM with HAP here (virt_caps:%s): boot QEMU with --cpu max,-smap,-rdtscp", v)
		}
	}
	t.Skip("xl info shows no virt_caps")
}

// qmpWatch follows the loop's trace and picks out the fds that are QMP
// sockets of a device model (/var/run/xen/qmp-libxl-<domid>): how many
// were registered with the loop, and how many events the loop delivered
// on them to libxl.
type qmpWatch struct {
	mu         sync.Mutex
	regs       map[[2]uint64]string // (binding, reg) -> socket path
	registered int
	delivered  int
}

func newQMPWatch() *qmpWatch { return &qmpWatch{regs: map[[2]uint64]string{}} }

func peerPath(fd int) string {
	sa, err := unix.Getpeername(fd)
	if err != nil {
		return ""
	}
	if u, ok := sa.(*unix.SockaddrUnix); ok {
		return u.Name
	}
	return ""
}

func (w *qmpWatch) observe(ev eventloop.TraceEvent) {
	if ev.Timeout || (ev.Op != eventloop.OpFDRegister && ev.Op != eventloop.OpOccurredFD) {
		return
	}
	key := [2]uint64{ev.Binding, uint64(ev.Reg)}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch ev.Op {
	case eventloop.OpFDRegister:
		delete(w.regs, key)
		if p := peerPath(ev.FD); strings.Contains(p, "qmp-libxl-") {
			w.regs[key] = p
			w.registered++
		}
	case eventloop.OpOccurredFD:
		if _, ok := w.regs[key]; ok {
			w.delivered++
		}
	}
}

func (w *qmpWatch) counts() (int, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.registered, w.delivered
}

const hvmGuestCfg = `# An HVM guest with no OS: hvmloader and SeaBIOS run, find nothing
# to boot and wait. The device model is qemu-xen (Debian's
# qemu-system-xen); vnc and sdl are off (no display in dom0).
type = "hvm"
name = "hvm1"
memory = 64
vcpus = 1
vnc = 0
sdl = 0
serial = "pty"
on_poweroff = "destroy"
on_reboot = "destroy"
on_crash = "destroy"
`

// TestHVMLifecycle: an HVM guest is created paused, unpaused, paused,
// saved, restored, asked to shut down and destroyed, with the device
// model's QMP traffic going through goxl's loop. The guest has no PV
// drivers, so a shutdown request fails as xl's does ("PV control
// interface not available", ERROR_NOPARAVIRT) and the guest is destroyed.
func TestHVMLifecycle(t *testing.T) {
	needHVM(t)
	w := newQMPWatch()
	e := setupTraced(t, w.observe)
	ctx := ctxT(t, 30*time.Minute)
	path := filepath.Join(t.TempDir(), "hvm.cfg")
	if err := os.WriteFile(path, []byte(hvmGuestCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// vnc=, sdl= and serial= are xl keys goxl's own parser does not map:
	// LoadConfig builds this config with xl's parser.
	cfg, err := libxl.LoadConfigFile(path, libxl.LoadOptions{XL: xlBinary})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg.(libxl.JSONConfig); !ok {
		t.Fatalf("config built by %T, want xl's parser (JSONConfig)", cfg)
	}
	// libxl gives qemu-xen 60 s to start (LIBXL_DEVICE_MODEL_START_TIMEOUT,
	// fixed at build time); a TCG host at load 30 missed it once
	// ("device model: startup timed out"). One more try, after checking
	// the failed create left nothing behind.
	var d *driver.Domain
	for try := 1; ; try++ {
		err := timed(t, "HVM create", func() (err error) {
			d, err = e.doms.Create(ctx, cfg, driver.CreateOptions{Paused: true})
			return
		})
		if err == nil {
			break
		}
		if try == 2 {
			t.Fatal(err)
		}
		e.noGuests()
	}
	info, err := e.doms.Info("hvm1")
	if err != nil || info.Type != libxl.DomainTypeHVM || !info.Paused {
		t.Fatalf("after create: %+v %v", info, err)
	}
	if reg, del := w.counts(); reg == 0 || del == 0 {
		t.Fatalf("device model QMP through goxl's loop: %d sockets registered, %d deliveries", reg, del)
	}
	for _, step := range []struct {
		name string
		f    func() error
	}{
		{"unpause", func() error { return e.doms.Unpause(ctx, "hvm1") }},
		{"pause", func() error { return e.doms.Pause(ctx, "hvm1") }},
		{"unpause", func() error { return e.doms.Unpause(ctx, "hvm1") }},
	} {
		if err := timed(t, step.name, step.f); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
	}
	save := filepath.Join(t.TempDir(), "hvm1.save")
	regBefore, _ := w.counts()
	// libxl gives the device model 10 s to switch on log-dirty mode over
	// QMP; under a loaded TCG host qemu can miss that (ERROR_GUEST_TIMEDOUT,
	// "logdirty switch: wait for device model timed out", seen at load
	// 34). The guest keeps running then (checked), and xl would retry too.
	for try := 1; ; try++ {
		err := timed(t, "HVM save", func() error { return e.doms.Save(ctx, "hvm1", save) })
		if err == nil {
			break
		}
		if !errors.Is(err, libxl.ErrGuestTimedOut) || try == 3 {
			t.Fatal(err)
		}
		if info, ierr := e.doms.Info("hvm1"); ierr != nil || info.Shutdown || info.Dying {
			t.Fatalf("after a failed save the guest is not left running: %+v %v", info, ierr)
		}
	}
	e.noGuests()
	if reg, _ := w.counts(); reg == regBefore {
		t.Errorf("save reached the device model (its state) without a QMP socket on goxl's loop")
	}
	if err := timed(t, "HVM restore", func() (err error) {
		d, err = e.doms.Restore(ctx, save, driver.CreateOptions{})
		return
	}); err != nil {
		t.Fatal(err)
	}
	if s := d.Snapshot(); s.Name != "hvm1" || s.State != driver.StateRunning {
		t.Fatalf("restored %+v", s)
	}
	// No PV drivers in the guest: libxl cannot ask it to shut down.
	err = e.doms.Shutdown(ctx, "hvm1", false)
	if !errors.Is(err, libxl.ErrNoParavirt) {
		t.Fatalf("shutdown of an HVM guest without PV drivers: %v, want ERROR_NOPARAVIRT as xl reports", err)
	}
	// xl's -F: the same requests fall back to ACPI triggers. Shutdown
	// presses the power button (Xen's sendtrigger); the guest has no OS
	// to act on it, so the domain stays, with its domid. Reboot sends the
	// reset trigger, which Xen 4.17 does not implement on x86 (ENOSYS):
	// xl fails there too, and goxl must agree with xl either way.
	domid := d.Snapshot().DomID
	if err := e.doms.ShutdownWith(ctx, "hvm1", driver.ShutdownOptions{Force: true}); err != nil {
		t.Fatalf("shutdown -F of an HVM guest without PV drivers: %v", err)
	}
	xlOut, xlErr := exec.Command("xl", "reboot", "-F", strconv.Itoa(int(domid))).CombinedOutput()
	goxlErr := e.doms.RebootWith(ctx, "hvm1", driver.ShutdownOptions{Force: true})
	t.Logf("reboot -F: xl says %q (%v); goxl: %v", strings.TrimSpace(string(xlOut)), xlErr, goxlErr)
	if (xlErr == nil) != (goxlErr == nil) {
		t.Fatalf("reboot -F: xl %v, goxl %v; want the same outcome", xlErr, goxlErr)
	}
	if info, err := e.drv.Ctx().DomainInfo(domid); err != nil || info.Shutdown || info.Dying {
		t.Fatalf("after the ACPI triggers domain %d is %+v, %v; want it running", domid, info, err)
	}
	if err := timed(t, "HVM destroy", func() error { return e.doms.Destroy(ctx, "hvm1") }); err != nil {
		t.Fatal(err)
	}
	e.noGuests()
	reg, del := w.counts()
	t.Logf("QMP sockets registered with goxl's loop: %d, events delivered on them: %d", reg, del)
}

// TestPygrubBoot: a PV guest boots through bootloader = "pygrub" (Debian
// 12's xen-utils-4.17 ships pygrub) from an ext2 disk holding a grub.cfg,
// the test kernel and initramfs. The config goes through goxl's own
// parser.
func TestPygrubBoot(t *testing.T) {
	e := setup(t)
	mke2fs := "/sbin/mke2fs" // e2fsprogs' (busybox's applet has no -d)
	if _, err := os.Stat(mke2fs); err != nil {
		t.Fatalf("%s: %v (the dom0 image carries e2fsprogs for this test)", mke2fs, err)
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(filepath.Join(root, "boot/grub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"vmlinux", "initrd.gz"} {
		if err := os.Link(filepath.Join(guestDir(), f), filepath.Join(root, "boot", f)); err != nil {
			t.Fatal(err)
		}
	}
	grub := "set default=0\nset timeout=0\nmenuentry 'goxl test guest' {\n\tlinux /boot/vmlinux console=hvc0 guest_sleep=forever\n\tinitrd /boot/initrd.gz\n}\n"
	if err := os.WriteFile(filepath.Join(root, "boot/grub/grub.cfg"), []byte(grub), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "boot.img")
	if err := timed(t, "mke2fs", func() error {
		out, err := exec.Command(mke2fs, "-q", "-t", "ext2", "-d", root, img, "96M").CombinedOutput()
		if err != nil {
			t.Logf("%s", out)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// -q: pygrub picks the default entry without its curses menu (the
	// dom0 image has no terminfo; libxl runs the menu on a pty with
	// TERM=vt100 when -q is not given).
	cfgText := "name = 'pygrub1'\nbootloader = 'pygrub'\nbootloader_args = [ '-q' ]\nmemory = 128\n" +
		"disk = [ 'format=raw, vdev=xvda, access=ro, backendtype=qdisk, target=" + img + "' ]\n" +
		"on_poweroff = 'destroy'\non_reboot = 'destroy'\non_crash = 'destroy'\n"
	cfg, err := libxl.LoadConfig("pygrub1.cfg", []byte(cfgText), libxl.LoadOptions{NoXL: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 20*time.Minute)
	if err := timed(t, "create through pygrub", func() error {
		_, err := e.doms.Create(ctx, cfg, driver.CreateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	log := "/var/log/xen/console/guest-pygrub1.log"
	deadline := time.Now().Add(10 * time.Minute)
	for {
		b, _ := os.ReadFile(log)
		if strings.Contains(string(b), "XENVM-GUEST up") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the guest pygrub loaded did not come up; console:\n%s", b)
		}
		time.Sleep(2 * time.Second)
	}
	if err := timed(t, "shutdown -w", func() error { return e.doms.Shutdown(ctx, "pygrub1", true) }); err != nil {
		t.Fatal(err)
	}
	e.waitDestroyed(ctx, "pygrub1")
	e.noGuests()
}
