package eventloop

import (
	"sync"
	"testing"
	"time"

	"github.com/goxl/goxl/internal/osevent"
)

type silentSink struct{}

func (silentSink) OccurredFD(osevent.ForLibxl, int, osevent.PollEvents, osevent.PollEvents, osevent.Liveness) {
}
func (silentSink) OccurredTimeout(osevent.ForLibxl, osevent.Liveness) {}

// What Reap forgets shows in the trace, so a checker knows no delivery is
// owed for it.
func TestReapTracesWhatItForgets(t *testing.T) {
	var mu sync.Mutex
	reaped := map[osevent.RegID]bool{}
	l, err := New(Options{Trace: func(ev TraceEvent) {
		if ev.Op == OpReaped {
			mu.Lock()
			reaped[ev.Reg] = ev.Timeout
			mu.Unlock()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b := l.Attach(silentSink{})
	id, err := b.TimeoutRegister(time.Now().Add(time.Hour), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CloseGate(); err != nil {
		t.Fatal(err)
	}
	if _, n := b.Reap(); n != 1 {
		t.Fatalf("reaped %d timeouts", n)
	}
	b.Detach()
	mu.Lock()
	defer mu.Unlock()
	if timeout, ok := reaped[id]; !ok || !timeout {
		t.Fatalf("no reaped event for T%d: %v", id, reaped)
	}
	if got := (TraceEvent{Op: OpReaped, Reg: id, Timeout: true}).String(); got == "" || OpReaped.String() != "reaped" {
		t.Fatalf("trace line %q, op %q", got, OpReaped)
	}
}
