//go:build xenintegration

package integration

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goxl/goxl/internal/threaddump"
)

// TestMain arms the diagnostics for what Go cannot report by itself: a
// glibc abort on a thread that C created (libxenstore's reader), and a
// thread stuck in C. A minute before -test.timeout it prints every
// thread's C stack and every goroutine, so that a hang on real Xen leaves
// more than the timeout's goroutine dump (make xen sets -test.timeout
// below xenvm's own limit, so that both dumps are printed at all).
func TestMain(m *testing.M) {
	flag.Parse()
	if err := threaddump.Install(); err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
	}
	if f := flag.Lookup("test.timeout"); f != nil {
		if limit, err := time.ParseDuration(f.Value.String()); err == nil && limit > 2*time.Minute {
			time.AfterFunc(limit-time.Minute, func() {
				threaddump.DumpAllThreads(os.Stderr, fmt.Sprintf("one minute before -test.timeout=%v: is a thread stuck?", limit))
				dumpXenstored()
				dumpChildren()
			})
		}
	}
	os.Exit(m.Run())
}

// dumpXenstored prints what the kernel knows of xenstored's threads and
// sockets: a toolstack call that waits forever for a xenstore reply may
// be waiting on a xenstored that is itself blocked.
func dumpXenstored() {
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		comm, err := os.ReadFile("/proc/" + p.Name() + "/comm")
		if err != nil {
			continue
		}
		name := strings.TrimSpace(string(comm))
		if name != "oxenstored" && name != "xenstored" {
			continue
		}
		read := threaddump.ProcFile
		tasks, _ := os.ReadDir("/proc/" + p.Name() + "/task")
		for _, task := range tasks {
			dir := "/proc/" + p.Name() + "/task/" + task.Name()
			fmt.Fprintf(os.Stderr, "xenstored %s thread %s: wchan=%s syscall=%s\nkernel stack:\n%s\n",
				p.Name(), task.Name(), read(dir+"/wchan"), read(dir+"/syscall"), read(dir+"/stack"))
		}
		fmt.Fprintf(os.Stderr, "xenstored %s fds: %s\n", p.Name(), threaddump.OpenFDs("/proc/"+p.Name()))
	}
}

// dumpChildren prints the state of this process's child processes: libxl
// forks children (the domain destroyer, device scripts) whose operation
// waits for them to exit, so a child that never exits is a hang.
func dumpChildren() {
	self := strconv.Itoa(os.Getpid())
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		status, err := os.ReadFile("/proc/" + p.Name() + "/status")
		if err != nil || !strings.Contains(string(status), "\nPPid:\t"+self+"\n") {
			continue
		}
		read := func(name string) string { return threaddump.ProcFile("/proc/" + p.Name() + "/" + name) }
		state := ""
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "State:") || strings.HasPrefix(line, "Threads:") {
				state += " " + strings.Join(strings.Fields(line), " ")
			}
		}
		syscall := read("syscall")
		fmt.Fprintf(os.Stderr, "child %s (%s):%s wchan=%s syscall=%s%s\nkernel stack:\n%s\n",
			p.Name(), read("cmdline"), state, read("wchan"), syscall, futexOwner(p.Name(), syscall), read("stack"))
	}
}

// futexOwner names the mapping (the library's file) that holds the word a
// process waits on in futex(2), given its /proc/PID/syscall line: a
// forked child waiting on a lock it inherited held shows whose lock.
func futexOwner(pid, syscallLine string) string {
	f := strings.Fields(syscallLine)
	if len(f) < 2 || f[0] != "202" {
		return ""
	}
	addr, err := strconv.ParseUint(strings.TrimPrefix(f[1], "0x"), 16, 64)
	if err != nil {
		return ""
	}
	maps, err := os.ReadFile("/proc/" + pid + "/maps")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(maps), "\n") {
		m := strings.Fields(line)
		if len(m) == 0 {
			continue
		}
		lo, hi, ok := strings.Cut(m[0], "-")
		if !ok {
			continue
		}
		l, err1 := strconv.ParseUint(lo, 16, 64)
		h, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 == nil && err2 == nil && addr >= l && addr < h {
			return " (futex word in: " + strings.Join(m[1:], " ") + ")"
		}
	}
	return ""
}
