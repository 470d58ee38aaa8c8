package threaddump

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// The tests run the test binary itself as a child that installs the
// handlers and then dumps or aborts: both end (or could end) the process.
const childEnv = "GOXL_THREADDUMP_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "dump":
		if err := Install(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		DumpAllThreads(os.Stderr, "asked by the test")
		os.Exit(0)
	case "abort":
		if err := Install(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		syscall.Kill(os.Getpid(), syscall.SIGABRT)
		select {}
	case "abort-on-c-thread":
		if err := Install(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		abortOnReaderLikeThread()
		fmt.Fprintln(os.Stderr, "could not make the C thread")
		os.Exit(4)
	}
	os.Exit(m.Run())
}

func runChild(t *testing.T, mode string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func TestDumpAllThreadsPrintsEveryThreadsCStack(t *testing.T) {
	if !Supported {
		t.Skip("C stacks need cgo")
	}
	out, err := runChild(t, "dump")
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	views := strings.Count(out, "threaddump: thread ")
	stacks := strings.Count(out, "threaddump: dump on thread ")
	if views == 0 || stacks != views {
		t.Fatalf("%d threads listed, %d C stacks printed:\n%s", views, stacks, out)
	}
	// backtrace_symbols_fd prints a frame as "object(symbol+off)[0xaddr]".
	if frames := strings.Count(out, ")[0x") + strings.Count(out, "test[0x"); frames < stacks {
		t.Errorf("%d backtrace frames for %d threads:\n%s", frames, stacks, out)
	}
	if !strings.Contains(out, "goroutine ") {
		t.Errorf("no goroutine stacks in the dump:\n%s", out)
	}
}

func TestAbortPrintsTheCStackThenGoesToGo(t *testing.T) {
	if !Supported {
		t.Skip("C stacks need cgo")
	}
	out, err := runChild(t, "abort")
	if err == nil {
		t.Fatalf("the child survived SIGABRT:\n%s", out)
	}
	if !strings.Contains(out, "threaddump: SIGABRT on thread ") {
		t.Errorf("no C stack for the abort:\n%s", out)
	}
	// Go's own handler ran after ours: the abort still reports goroutines.
	if !strings.Contains(out, "SIGABRT: abort") {
		t.Errorf("Go's SIGABRT handler did not run after ours:\n%s", out)
	}
}

// The one HVM abort seen on real Xen ("double free or corruption (out)",
// exit 134) printed no goroutines: Go's handler, on a thread without a g,
// re-raises the signal with the default action. So the abort came from a
// thread that C created, and the C stack is all there is to read. Such a
// thread runs the handler on its own stack: libxenstore's reader thread
// has 16 KiB of it and every signal blocked (abort unblocks SIGABRT).
func TestAbortOnALibxenstoreLikeThreadPrintsItsCStack(t *testing.T) {
	if !Supported {
		t.Skip("C stacks need cgo")
	}
	out, err := runChild(t, "abort-on-c-thread")
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("the child did not fail: %v\n%s", err, out)
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGABRT {
		t.Errorf("the child ended with %v, want death by SIGABRT (exit 134 from a shell)\n%s", err, out)
	}
	if !strings.Contains(out, "threaddump: SIGABRT on thread ") {
		t.Fatalf("no C stack for the abort:\n%s", out)
	}
	// abort's frame, then its caller's (the thread's start function, a
	// static symbol: an address to give addr2line).
	at := strings.Index(out, "(abort+")
	if at < 0 {
		t.Fatalf("the C stack has no frame of abort:\n%s", out)
	}
	if rest := out[at:]; strings.Count(rest, "[0x") < 2 {
		t.Errorf("the C stack ends at abort, without its caller:\n%s", out)
	}
	if strings.Contains(out, "goroutine ") {
		t.Errorf("goroutines printed for an abort on a C thread: Go's handler ran with a g\n%s", out)
	}
}
