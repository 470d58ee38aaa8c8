package threaddump

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DumpAllThreads writes, for every thread of the process, the kernel's
// view (name, state, wait channel, system call) to w, then asks each
// thread for its C stack (printed to stderr by the thread itself, when
// Install has run), then writes every goroutine's stack to w.
func DumpAllThreads(w io.Writer, why string) {
	fmt.Fprintf(w, "threaddump: %s\n", why)
	tids := threadIDs()
	for _, tid := range tids {
		fmt.Fprintf(w, "threaddump: thread %d %s\n", tid, kernelView(tid))
	}
	fmt.Fprintf(w, "threaddump: fds %s\n", OpenFDs("/proc/self"))
	if Supported && DumpSignal != 0 {
		pid := os.Getpid()
		for _, tid := range tids {
			before := dumpsDone()
			if syscall.Tgkill(pid, tid, DumpSignal) != nil {
				continue // the thread has ended
			}
			// One at a time, so that the stacks do not interleave; a
			// thread that cannot take the signal (stopped, or with it
			// blocked) is given up on after a second.
			for deadline := time.Now().Add(time.Second); dumpsDone() == before && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
		}
	}
	pprof.Lookup("goroutine").WriteTo(w, 2)
}

func threadIDs() []int {
	entries, _ := os.ReadDir("/proc/self/task")
	var tids []int
	for _, e := range entries {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	sort.Ints(tids)
	return tids
}

// kernelView is "comm=… state=… wchan=… syscall=…" from /proc: a thread
// blocked in a futex or a read shows it here even when its stack cannot
// be walked.
func kernelView(tid int) string {
	dir := filepath.Join("/proc/self/task", strconv.Itoa(tid))
	read := func(name string) string { return ProcFile(filepath.Join(dir, name)) }
	state := "?"
	if stat := read("stat"); stat != "?" {
		// After the ")" that ends the name: the state letter.
		if i := strings.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
			state = stat[i+2 : i+3]
		}
	}
	return fmt.Sprintf("comm=%s state=%s wchan=%s syscall=%s", read("comm"), state, read("wchan"), read("syscall"))
}

// OpenFDs is "N=target" for each open fd of the process at procDir
// (/proc/self, /proc/PID): which are sockets, pipes, devices, so that a
// system call's fd argument can be read.
func OpenFDs(procDir string) string {
	entries, _ := os.ReadDir(filepath.Join(procDir, "fd"))
	var b strings.Builder
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join(procDir, "fd", e.Name()))
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, " %s=%s", e.Name(), target)
	}
	return strings.TrimSpace(b.String())
}

// ProcFile is a /proc file's text, trimmed, with NULs as spaces (cmdline),
// or "?" when it cannot be read: for dumps, where a missing field must
// not stop the rest.
func ProcFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}
