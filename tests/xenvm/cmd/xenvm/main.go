// Command xenvm boots real Xen 4.17 with a Debian dom0 under QEMU (TCG) and
// runs one command inside dom0, streaming its output and returning its exit
// status.
//
// The boot files (xen.elf, vmlinuz, initrd.gz) come from
// tests/xenvm/build-image.sh. For each run, xenvm writes a small cpio archive
// holding /payload/run (a shell script that runs the command) and the files
// given with --file, appends it to the cached dom0 initrd, and boots QEMU. The
// dom0 /init runs /payload/run and prints
//
//	XENVM-RESULT rc=<n> id=<run id>
//
// on the serial console before powering off.
//
// Exit status: the payload's rc; 124 on timeout; 125 when Xen or dom0 crashed,
// dom0 setup failed, or QEMU stopped without a result; 2 on usage errors;
// 128+signal when interrupted.
package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	exitTimeout = 124
	exitHarness = 125
	exitUsage   = 2
)

// crashPatterns end a run at once: with `noreboot` a crashed Xen or dom0 would
// otherwise hang QEMU forever.
var crashPatterns = []string{
	"Hardware Dom0 crashed",
	"Panic on CPU",
	"Kernel panic",
}

type fileSpec struct {
	host  string
	guest string // absolute path inside dom0
}

type fileList []fileSpec

func (f *fileList) String() string { return fmt.Sprint(*f) }

func (f *fileList) Set(v string) error {
	host, guest, _ := strings.Cut(v, ":")
	if host == "" {
		return errors.New("empty host path")
	}
	if guest == "" {
		guest = path.Join("/payload", filepath.Base(host))
	} else if strings.HasSuffix(guest, "/") {
		guest = path.Join(guest, filepath.Base(host))
	}
	if !path.IsAbs(guest) {
		guest = path.Join("/payload", guest)
	}
	*f = append(*f, fileSpec{host: host, guest: path.Clean(guest)})
	return nil
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

type config struct {
	timeout     time.Duration
	bootTimeout time.Duration
	mem         string
	smp         int
	cpu         string
	dom0Mem     string
	files       fileList
	env         stringList
	verbose     bool
	timestamps  bool
	quiet       bool
	logPath     string
	imageDir    string
	cacheDir    string
	dom0Kernel  string
	qemu        string
	xenArgs     string
	dom0Args    string
	xenstored   string
	shell       bool
	command     []string
	// extraOut, when set, also receives the payload's output lines.
	extraOut io.Writer
}

func usage() {
	fmt.Fprintf(os.Stderr, `usage:
  xenvm run [flags] -- <command> [args...]   run a command in dom0
  xenvm shell-check [flags]                  boot and check that 'xl list' shows Domain-0
  xenvm shell [flags]                        interactive dom0 shell on the serial console

The command runs in dom0 with cwd /payload and PATH including
/usr/lib/xen-4.17/bin. Files given with --file are copied to
/payload/<basename> unless a guest path is given (relative guest paths are
under /payload; a trailing / means a folder).

Exit status: the command's, 124 on timeout, 125 on crash or harness failure,
2 on usage errors.

flags:
`)
	newFlagSet(&config{}).PrintDefaults()
}

func defaultCache() string {
	if c := os.Getenv("XENVM_CACHE"); c != "" {
		return c
	}
	// Fall back to <repo>/.build/xenvm, found from the working directory.
	dir, err := os.Getwd()
	if err != nil {
		return ".build/xenvm"
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "tests", "xenvm", "build-image.sh")); err == nil {
			return filepath.Join(d, ".build", "xenvm")
		}
		if filepath.Dir(d) == d {
			return filepath.Join(dir, ".build", "xenvm")
		}
	}
}

func newFlagSet(c *config) *flag.FlagSet {
	fs := flag.NewFlagSet("xenvm", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cache := defaultCache()
	fs.DurationVar(&c.timeout, "timeout", 600*time.Second, "limit for the whole run, boot included")
	fs.DurationVar(&c.bootTimeout, "boot-timeout", 300*time.Second, "limit from QEMU start to the payload start")
	fs.StringVar(&c.mem, "mem", "3G", "QEMU machine memory (-m)")
	fs.IntVar(&c.smp, "smp", 2, "QEMU vCPUs (-smp)")
	fs.StringVar(&c.cpu, "cpu", "qemu64", "QEMU CPU model; max,-smap,-rdtscp gives SVM for PVH/HVM guests")
	fs.StringVar(&c.dom0Mem, "dom0-mem", "1024M", "dom0 memory (Xen dom0_mem=X,max:X)")
	fs.Var(&c.files, "file", "host-path[:guest-path] to copy into dom0 (repeatable)")
	fs.Var(&c.env, "env", "NAME=VALUE to export for the command (repeatable)")
	fs.BoolVar(&c.verbose, "verbose", false, "show the whole serial console (Xen and kernel boot too)")
	fs.BoolVar(&c.verbose, "v", false, "short for --verbose")
	fs.BoolVar(&c.timestamps, "timestamps", false, "with --verbose: prefix serial lines with seconds since QEMU start")
	fs.BoolVar(&c.quiet, "quiet", false, "no xenvm status lines on stderr")
	fs.StringVar(&c.logPath, "log", "", "file for the full serial log (default: "+filepath.Join(cache, "logs")+
		"/serial-<time>-<id>.log, the newest linked as last-serial.log; the 20 newest are kept)")
	c.cacheDir = cache
	fs.StringVar(&c.imageDir, "image", filepath.Join(cache, "image"), "folder with xen.elf, vmlinuz, initrd.gz")
	fs.StringVar(&c.dom0Kernel, "dom0-kernel", "", "dom0 kernel (default: the image's vmlinux, else vmlinuz)")
	fs.StringVar(&c.qemu, "qemu", "qemu-system-x86_64", "QEMU binary")
	fs.StringVar(&c.xenArgs, "xen-args", "", "extra Xen command line arguments")
	fs.StringVar(&c.dom0Args, "dom0-args", "", "extra dom0 kernel command line arguments")
	fs.StringVar(&c.xenstored, "xenstored", "oxenstored", "xenstore daemon: oxenstored or xenstored (C)")
	return fs
}

func main() {
	os.Exit(mainRC(os.Args[1:]))
}

func mainRC(args []string) int {
	if len(args) == 0 {
		usage()
		return exitUsage
	}
	sub, args := args[0], args[1:]
	c := &config{}
	fs := newFlagSet(c)
	switch sub {
	case "run", "shell-check", "shell":
	case "-h", "-help", "--help", "help":
		usage()
		return 0
	default:
		fmt.Fprintf(os.Stderr, "xenvm: unknown command %q\n", sub)
		usage()
		return exitUsage
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage()
			return 0
		}
		fmt.Fprintf(os.Stderr, "xenvm: %v\n", err)
		return exitUsage
	}
	c.command = fs.Args()
	switch sub {
	case "run":
		if len(c.command) == 0 {
			fmt.Fprintln(os.Stderr, "xenvm run: no command (xenvm run [flags] -- <command> [args...])")
			return exitUsage
		}
		return run(c)
	case "shell-check":
		if len(c.command) != 0 {
			fmt.Fprintln(os.Stderr, "xenvm shell-check: takes no command")
			return exitUsage
		}
		c.command = []string{"/usr/lib/xen-4.17/bin/xl", "list"}
		var out bytes.Buffer
		c.extraOut = &out
		rc := run(c)
		if rc != 0 {
			return rc
		}
		if !regexp.MustCompile(`(?m)^Domain-0\s+0\s`).Match(out.Bytes()) {
			fmt.Fprintln(os.Stderr, "xenvm shell-check: FAIL: 'xl list' did not show Domain-0")
			return 1
		}
		fmt.Fprintln(os.Stderr, "xenvm shell-check: OK: Domain-0 is listed")
		return 0
	case "shell":
		c.shell = true
		return shell(c)
	}
	return exitUsage
}

// shQuote quotes s for a POSIX shell.
func shQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// runScript is /payload/run: export the --env variables, then exec the command.
func runScript(env []string, command []string) (string, error) {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# generated by xenvm\n")
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !envName.MatchString(k) {
			return "", fmt.Errorf("bad --env %q (want NAME=VALUE)", kv)
		}
		fmt.Fprintf(&b, "export %s=%s\n", k, shQuote(v))
	}
	if len(command) > 0 {
		b.WriteString("exec")
		for _, a := range command {
			b.WriteString(" " + shQuote(a))
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}

func newRunID() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	return hex.EncodeToString(b[:])
}

// prepare writes the combined initrd (cached dom0 initrd + payload cpio) into
// dir and returns its path.
func prepare(c *config, dir string) (string, error) {
	base := filepath.Join(c.imageDir, "initrd.gz")
	for _, f := range []string{"xen.elf", "vmlinuz", "initrd.gz"} {
		if _, err := os.Stat(filepath.Join(c.imageDir, f)); err != nil {
			return "", fmt.Errorf("image file missing (%v); run tests/xenvm/build-image.sh (make xenvm-image)", err)
		}
	}
	script, err := runScript(c.env, c.command)
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "initrd.img")
	f, err := os.Create(out)
	if err != nil {
		return "", err
	}
	defer f.Close()
	in, err := os.Open(base)
	if err != nil {
		return "", err
	}
	n, err := io.Copy(f, in)
	in.Close()
	if err != nil {
		return "", err
	}
	// The kernel wants each archive after the first at a 4-byte aligned
	// offset; zeros between archives are skipped.
	if pad := (512 - n%512) % 512; pad != 0 {
		if _, err := f.Write(make([]byte, pad)); err != nil {
			return "", err
		}
	}
	w := newCpioWriter(f)
	if err := w.addDirs("/payload"); err != nil {
		return "", err
	}
	if !c.shell || len(c.command) > 0 {
		if err := w.addFile("/payload/run", 0o755, time.Now(), []byte(script)); err != nil {
			return "", err
		}
	}
	for _, fs := range c.files {
		if err := w.addHostPath(fs.host, fs.guest); err != nil {
			return "", err
		}
	}
	if err := w.close(); err != nil {
		return "", err
	}
	return out, f.Close()
}

// dom0Kernel is the dom0 kernel image: --dom0-kernel, else the image's
// uncompressed vmlinux (Xen loads it without decompressing: ~4 s faster
// under TCG), else vmlinuz.
func dom0Kernel(c *config) string {
	if c.dom0Kernel != "" {
		return c.dom0Kernel
	}
	if p := filepath.Join(c.imageDir, "vmlinux"); fileExists(p) {
		return p
	}
	return filepath.Join(c.imageDir, "vmlinuz")
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// qemuArgs builds the QEMU command line.
func qemuArgs(c *config, initrd, id string) []string {
	xen := "console=com1 com1=115200,8n1 dom0_mem=" + c.dom0Mem + ",max:" + c.dom0Mem +
		" dom0_max_vcpus=" + strconv.Itoa(min(c.smp, 2)) + " noreboot bootscrub=0"
	if c.xenArgs != "" {
		xen += " " + c.xenArgs
	}
	// cryptomgr.notests and mitigations=off make the kernel boot faster under
	// TCG (measured on the test guest: about a quarter less boot time).
	dom0 := "console=hvc0 earlyprintk=xen rdinit=/init panic=-1 quiet cryptomgr.notests mitigations=off xenvm.id=" + id +
		" xenvm.xenstored=" + c.xenstored
	if c.shell {
		dom0 += " xenvm.shell=1"
	}
	if c.dom0Args != "" {
		dom0 += " " + c.dom0Args
	}
	// QEMU's multiboot -initrd splits modules at commas; ",," is a literal comma.
	esc := func(s string) string { return strings.ReplaceAll(s, ",", ",,") }
	modules := esc(dom0Kernel(c)+" "+dom0) + "," + esc(initrd)
	return []string{
		"-machine", "pc,accel=tcg", "-cpu", c.cpu, "-m", c.mem, "-smp", strconv.Itoa(c.smp),
		"-nographic", "-serial", "stdio", "-monitor", "none", "-nic", "none", "-no-reboot",
		"-kernel", filepath.Join(c.imageDir, "xen.elf"),
		"-append", xen,
		"-initrd", modules,
	}
}

type status struct {
	quiet bool
	start time.Time
}

func (s *status) printf(format string, a ...any) {
	if s.quiet {
		return
	}
	fmt.Fprintf(os.Stderr, "xenvm: [%6.1fs] %s\n", time.Since(s.start).Seconds(), fmt.Sprintf(format, a...))
}

// qemuProc wraps the QEMU child so that it is stopped exactly once, by PID.
type qemuProc struct {
	cmd      *exec.Cmd
	done     chan struct{} // closed when Wait returned
	waitErr  error
	stopOnce sync.Once
}

func startQEMU(c *config, args []string, stdout io.Writer) (*qemuProc, error) {
	cmd := exec.Command(c.qemu, args...)
	cmd.Stdout = stdout
	cmd.Stderr = stdout
	// A pipe that is never written: QEMU's stdio chardev gets no input and
	// does not touch the runner's terminal.
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdin = pr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("starting %s: %w", c.qemu, err)
	}
	pr.Close()
	q := &qemuProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		q.waitErr = cmd.Wait()
		pw.Close()
		close(q.done)
	}()
	return q, nil
}

// stop ends QEMU by its PID: SIGTERM, then SIGKILL after a grace period.
// It returns once QEMU is gone (bounded: at most grace + 5s).
func (q *qemuProc) stop(grace time.Duration) {
	q.stopOnce.Do(func() {
		select {
		case <-q.done:
			return
		default:
		}
		_ = q.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-q.done:
			return
		case <-time.After(grace):
		}
		_ = q.cmd.Process.Kill()
		select {
		case <-q.done:
		case <-time.After(5 * time.Second):
		}
	})
}

var (
	resultRe = regexp.MustCompile(`XENVM-RESULT rc=(\d+) id=([0-9a-z]+)`)
	beginRe  = regexp.MustCompile(`XENVM-PAYLOAD-BEGIN id=([0-9a-z]+)`)
	endRe    = regexp.MustCompile(`XENVM-PAYLOAD-END id=([0-9a-z]+)`)
	failRe   = regexp.MustCompile(`XENVM-SETUP-FAILED id=([0-9a-z]+)(.*)`)
	ansiRe   = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)
)

// lineSplitter turns the serial byte stream into lines, strips CR, and also
// writes the raw bytes to the log.
type lineSplitter struct {
	log   io.Writer
	lines chan<- string
	buf   []byte
}

func (l *lineSplitter) Write(p []byte) (int, error) {
	if l.log != nil {
		_, _ = l.log.Write(p)
	}
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(l.buf[:i]), "\r")
		l.buf = l.buf[i+1:]
		l.lines <- line
	}
	return len(p), nil
}

func (l *lineSplitter) flush() {
	if len(l.buf) > 0 {
		l.lines <- strings.TrimRight(string(l.buf), "\r")
		l.buf = nil
	}
}

// tailBuffer keeps the last n lines of the serial console for error reports.
type tailBuffer struct {
	n     int
	lines []string
}

func (t *tailBuffer) add(s string) {
	t.lines = append(t.lines, s)
	if len(t.lines) > t.n {
		t.lines = t.lines[len(t.lines)-t.n:]
	}
}

func (t *tailBuffer) dump(w io.Writer, title string) {
	fmt.Fprintf(w, "xenvm: ---- %s: last %d serial lines ----\n", title, len(t.lines))
	for _, l := range t.lines {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintln(w, "xenvm: ---- end ----")
}

func run(c *config) int {
	st := &status{quiet: c.quiet, start: time.Now()}
	id := newRunID()

	tmp, err := os.MkdirTemp("", "xenvm-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "xenvm: %v\n", err)
		return exitHarness
	}
	defer os.RemoveAll(tmp)

	initrd, err := prepare(c, tmp)
	if err != nil {
		fmt.Fprintf(os.Stderr, "xenvm: %v\n", err)
		return exitHarness
	}

	if c.logPath == "" {
		c.logPath = newLogPath(c.cacheDir, id)
	}
	var logw io.Writer
	if c.logPath != "" {
		if err := os.MkdirAll(filepath.Dir(c.logPath), 0o755); err == nil {
			if lf, err := os.Create(c.logPath); err == nil {
				defer lf.Close()
				logw = lf
			}
		}
		if logw == nil {
			fmt.Fprintf(os.Stderr, "xenvm: warning: cannot write serial log %s\n", c.logPath)
		} else if c.verbose {
			st.printf("serial log: %s", c.logPath)
		}
	}

	lines := make(chan string, 1024)
	splitter := &lineSplitter{log: logw, lines: lines}
	// QEMU writes into a pipe; a goroutine copies it into the splitter so
	// that the main loop can select on lines, timers and signals.
	pr, pw, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(os.Stderr, "xenvm: %v\n", err)
		return exitHarness
	}
	args := qemuArgs(c, initrd, id)
	if c.verbose {
		st.printf("%s %s", c.qemu, strings.Join(quoteAll(args), " "))
	}

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	q, err := startQEMU(c, args, pw)
	pw.Close()
	if err != nil {
		pr.Close()
		fmt.Fprintf(os.Stderr, "xenvm: %v\n", err)
		return exitHarness
	}
	defer q.stop(2 * time.Second)
	st.printf("booting Xen + dom0 (QEMU pid %d, run id %s)", q.cmd.Process.Pid, id)

	readerDone := make(chan struct{})
	go func() {
		_, _ = io.Copy(splitter, pr)
		splitter.flush()
		pr.Close()
		close(readerDone)
		close(lines)
	}()

	overall := time.NewTimer(c.timeout)
	defer overall.Stop()
	boot := time.NewTimer(c.bootTimeout)
	defer boot.Stop()
	var afterResult <-chan time.Time // set once the result is known

	tail := &tailBuffer{n: 60}
	var out io.Writer = os.Stdout
	if c.extraOut != nil {
		out = io.MultiWriter(os.Stdout, c.extraOut)
	}
	inPayload := false
	rc := -1
	why := ""

	fail := func(code int, reason string) int {
		q.stop(2 * time.Second)
		if !c.verbose {
			tail.dump(os.Stderr, reason)
		}
		st.printf("%s (exit %d); serial log: %s", reason, code, c.logPath)
		return code
	}

	for {
		select {
		case line, ok := <-lines:
			if !ok {
				// QEMU closed its output: it exited.
				<-q.done
				if rc >= 0 {
					st.printf("done: rc=%d", rc)
					return rc
				}
				if why == "" {
					why = "QEMU exited without a result"
					if q.waitErr != nil {
						why += " (" + q.waitErr.Error() + ")"
					}
				}
				return fail(exitHarness, why)
			}
			clean := ansiRe.ReplaceAllString(line, "")
			tail.add(clean)
			if c.verbose {
				if c.timestamps {
					fmt.Fprintf(out, "%7.2f %s\n", time.Since(st.start).Seconds(), clean)
				} else {
					fmt.Fprintln(out, clean)
				}
			}
			for _, p := range crashPatterns {
				if strings.Contains(clean, p) {
					return fail(exitHarness, "crash: "+p)
				}
			}
			if m := failRe.FindStringSubmatch(clean); m != nil && m[1] == id {
				return fail(exitHarness, "dom0 setup failed:"+m[2])
			}
			if m := beginRe.FindStringSubmatch(clean); m != nil && m[1] == id {
				inPayload = true
				boot.Stop()
				st.printf("payload started")
				continue
			}
			if m := endRe.FindStringSubmatch(clean); m != nil && m[1] == id {
				inPayload = false
				continue
			}
			if m := resultRe.FindStringSubmatch(clean); m != nil && m[2] == id {
				rc, _ = strconv.Atoi(m[1])
				st.printf("payload finished: rc=%d; waiting for power-off", rc)
				// dom0 powers off right away; do not wait long for it.
				afterResult = time.After(15 * time.Second)
				continue
			}
			if c.verbose {
				continue
			}
			if inPayload {
				// Everything, (XEN) lines included: the payload may print
				// them itself (xl dmesg), and Xen is quiet after boot.
				fmt.Fprintln(out, clean)
			} else if strings.HasPrefix(clean, "xenvm-init:") {
				st.printf("%s", clean)
			}
		case <-afterResult:
			q.stop(2 * time.Second)
			st.printf("done: rc=%d (QEMU stopped after the result)", rc)
			return rc
		case <-boot.C:
			if inPayload || rc >= 0 {
				continue // fired just as the payload started
			}
			return fail(exitTimeout, fmt.Sprintf("timeout: payload did not start within %v", c.bootTimeout))
		case <-overall.C:
			if rc >= 0 {
				return rc
			}
			return fail(exitTimeout, fmt.Sprintf("timeout after %v", c.timeout))
		case s := <-sigs:
			q.stop(2 * time.Second)
			st.printf("interrupted by %v; QEMU stopped", s)
			if n, ok := s.(syscall.Signal); ok {
				return 128 + int(n)
			}
			return exitHarness
		}
	}
}

// shell boots dom0 with an interactive shell on the serial console; the
// terminal is handed to QEMU as it is.
func shell(c *config) int {
	tmp, err := os.MkdirTemp("", "xenvm-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "xenvm: %v\n", err)
		return exitHarness
	}
	defer os.RemoveAll(tmp)
	initrd, err := prepare(c, tmp)
	if err != nil {
		fmt.Fprintf(os.Stderr, "xenvm: %v\n", err)
		return exitHarness
	}
	cmd := exec.Command(c.qemu, qemuArgs(c, initrd, newRunID())...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	fmt.Fprintln(os.Stderr, "xenvm: dom0 shell; 'exit' powers off; Ctrl-a x3 switches the console to Xen")
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "xenvm: %v\n", err)
		return exitHarness
	}
	timer := time.AfterFunc(c.timeout, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	if err := cmd.Wait(); err != nil {
		fmt.Fprintf(os.Stderr, "xenvm: %v\n", err)
		return exitHarness
	}
	return 0
}

// newLogPath returns a fresh per-run log path under cache/logs, points
// cache/last-serial.log at it, and drops all but the newest logs.
func newLogPath(cache, id string) string {
	dir := filepath.Join(cache, "logs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return filepath.Join(os.TempDir(), "xenvm-serial-"+id+".log")
	}
	p := filepath.Join(dir, "serial-"+time.Now().Format("20060102-150405")+"-"+id+".log")
	link := filepath.Join(cache, "last-serial.log")
	tmpLink := link + ".tmp." + id
	if err := os.Symlink(p, tmpLink); err == nil {
		if err := os.Rename(tmpLink, link); err != nil {
			os.Remove(tmpLink)
		}
	}
	if old, err := filepath.Glob(filepath.Join(dir, "serial-*.log")); err == nil && len(old) > 20 {
		sort.Strings(old) // names start with the time
		for _, f := range old[:len(old)-20] {
			os.Remove(f)
		}
	}
	return p
}

func quoteAll(args []string) []string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shQuote(a)
	}
	return q
}

// cpioWriter writes a "newc" cpio archive, the format the kernel's initramfs
// unpacker reads.
type cpioWriter struct {
	w    *bufio.Writer
	ino  uint32
	dirs map[string]bool
	err  error
}

func newCpioWriter(w io.Writer) *cpioWriter {
	return &cpioWriter{w: bufio.NewWriterSize(w, 1<<20), ino: 1000, dirs: map[string]bool{"/": true}}
}

func (c *cpioWriter) header(name string, mode uint32, mtime time.Time, size int64) error {
	if size > 0xffffffff {
		return fmt.Errorf("%s: too large for cpio", name)
	}
	name = strings.TrimPrefix(name, "/")
	c.ino++
	nlink := 1
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	mt := mtime.Unix()
	if mt < 0 {
		mt = 0
	}
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, mode, 0, 0, nlink, uint32(mt), uint32(size), 0, 0, 0, 0, len(name)+1, 0)
	if _, err := c.w.WriteString(hdr); err != nil {
		return err
	}
	if _, err := c.w.WriteString(name + "\x00"); err != nil {
		return err
	}
	return c.pad(int64(len(hdr) + len(name) + 1))
}

func (c *cpioWriter) pad(n int64) error {
	if r := n % 4; r != 0 {
		_, err := c.w.Write(make([]byte, 4-r))
		return err
	}
	return nil
}

// addDirs adds p and its parents as directories (once each).
func (c *cpioWriter) addDirs(p string) error {
	p = path.Clean(p)
	if c.dirs[p] {
		return nil
	}
	if err := c.addDirs(path.Dir(p)); err != nil {
		return err
	}
	c.dirs[p] = true
	return c.header(p, 0o040755, time.Now(), 0)
}

func (c *cpioWriter) addFile(p string, perm os.FileMode, mtime time.Time, data []byte) error {
	return c.addReader(p, perm, mtime, int64(len(data)), bytes.NewReader(data))
}

func (c *cpioWriter) addReader(p string, perm os.FileMode, mtime time.Time, size int64, r io.Reader) error {
	if err := c.addDirs(path.Dir(p)); err != nil {
		return err
	}
	if err := c.header(p, 0o100000|uint32(perm.Perm()), mtime, size); err != nil {
		return err
	}
	n, err := io.CopyN(c.w, r, size)
	if err != nil {
		return fmt.Errorf("%s: %w (copied %d of %d bytes)", p, err, n, size)
	}
	return c.pad(size)
}

func (c *cpioWriter) addSymlink(p, target string) error {
	if err := c.addDirs(path.Dir(p)); err != nil {
		return err
	}
	if err := c.header(p, 0o120777, time.Now(), int64(len(target))); err != nil {
		return err
	}
	if _, err := c.w.WriteString(target); err != nil {
		return err
	}
	return c.pad(int64(len(target)))
}

// addHostPath adds a host file or folder (recursively) at guest path g.
// Symlinks to files are followed; symlinks inside folders are kept as links.
func (c *cpioWriter) addHostPath(host, g string) error {
	fi, err := os.Stat(host)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		f, err := os.Open(host)
		if err != nil {
			return err
		}
		defer f.Close()
		return c.addReader(g, fi.Mode(), fi.ModTime(), fi.Size(), f)
	}
	return filepath.Walk(host, func(hp string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(host, hp)
		if err != nil {
			return err
		}
		gp := path.Join(g, filepath.ToSlash(rel))
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			t, err := os.Readlink(hp)
			if err != nil {
				return err
			}
			return c.addSymlink(gp, t)
		case info.IsDir():
			return c.addDirs(gp)
		case info.Mode().IsRegular():
			f, err := os.Open(hp)
			if err != nil {
				return err
			}
			defer f.Close()
			return c.addReader(gp, info.Mode(), info.ModTime(), info.Size(), f)
		default:
			return nil // sockets, devices: skipped
		}
	})
}

func (c *cpioWriter) close() error {
	c.ino = 0
	if err := c.header("TRAILER!!!", 0, time.Unix(0, 0), 0); err != nil {
		return err
	}
	return c.w.Flush()
}
