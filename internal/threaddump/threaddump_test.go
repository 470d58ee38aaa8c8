package threaddump

import (
	"bytes"
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
