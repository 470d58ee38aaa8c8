// Package leakcheck lets tests fail on leaked file descriptors and
// goroutines. It is pure Go and used by unit, model and real-Xen tests.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// Snapshot is what a test starts from.
type Snapshot struct {
	FDs        map[string]string // fd number → link target
	Goroutines int
}

// Take records the open fds and the goroutine count. It first makes the
// Go runtime create its netpoller (an epoll fd and an eventfd, made once
// per process on the first pollable file and never closed): otherwise
// the first test whose code opens a pipe reports them as leaked, and a
// test passes or fails depending on which tests ran before it.
func Take() Snapshot {
	netpollOnce.Do(func() {
		if r, w, err := os.Pipe(); err == nil {
			r.Close()
			w.Close()
		}
	})
	return Snapshot{FDs: openFDs(), Goroutines: goroutines()}
}

var netpollOnce sync.Once

// processWide are goroutines that the standard library starts once and
// keeps for the life of the process; they are not leaks.
var processWide = []string{"os/signal.signal_recv", "os/signal.loop"}

// goroutines counts the running goroutines, less the process-wide ones.
func goroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.TrimSpace(g) == "" {
			continue
		}
		skip := false
		for _, p := range processWide {
			if strings.Contains(g, p) {
				skip = true
				break
			}
		}
		if !skip {
			count++
		}
	}
	return count
}

func openFDs() map[string]string {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the fd ReadDir itself used, now closed
		}
		out[e.Name()] = target
	}
	return out
}

// TB is the part of testing.TB that Check needs.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
}

// Check fails t if, within settle, fds opened since s are still open or
// more goroutines run than at s. Stacks of the extra goroutines are
// printed to explain a failure.
func (s Snapshot) Check(t TB, settle time.Duration) {
	t.Helper()
	if err := s.Wait(settle); err != nil {
		t.Errorf("leakcheck: %v", err)
	}
}

// Wait returns nil once fds and goroutines are back to s, or an error
// describing what is left after settle.
func (s Snapshot) Wait(settle time.Duration) error {
	deadline := time.Now().Add(settle)
	for {
		leakedFDs := s.newFDs()
		g := goroutines()
		if len(leakedFDs) == 0 && g <= s.Goroutines {
			return nil
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			if len(leakedFDs) > 0 {
				fmt.Fprintf(&b, "%d fds leaked: %s; ", len(leakedFDs), strings.Join(leakedFDs, ", "))
			}
			if g > s.Goroutines {
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				fmt.Fprintf(&b, "%d goroutines now, %d at start:\n%s", g, s.Goroutines, buf[:n])
			}
			return fmt.Errorf("%s", b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s Snapshot) newFDs() []string {
	var leaked []string
	for fd, target := range openFDs() {
		if old, ok := s.FDs[fd]; !ok || old != target {
			leaked = append(leaked, fd+"→"+target)
		}
	}
	sort.Strings(leaked)
	return leaked
}

// FDCount is the number of open fds.
func FDCount() int { return len(openFDs()) }
