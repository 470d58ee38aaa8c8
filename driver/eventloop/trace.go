package eventloop

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/goxl/goxl/internal/osevent"
)

// TraceEvent is one hook call or delivery.
type TraceEvent struct {
	Time     time.Time
	Since    time.Duration // since the loop was created
	Op       Op
	Binding  uint64
	Reg      osevent.RegID
	Timeout  bool // Reg names a timeout
	FD       int
	Events   osevent.PollEvents
	Revents  osevent.PollEvents
	Deadline time.Time // timeout register/modify; FireNow shows as {0,0}
	Err      error     // a failed hook, or ErrUnknownReg for an unknown ID
}

func (ev TraceEvent) regName() string {
	if ev.Reg == 0 {
		return "-"
	}
	if ev.Timeout {
		return fmt.Sprintf("T%d", ev.Reg)
	}
	return fmt.Sprintf("F%d", ev.Reg)
}

// String formats the event like libxl-4.17-hook-trace.txt.
func (ev TraceEvent) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%8.3f] ", ev.Since.Seconds())
	switch ev.Op {
	case OpOccurredFD:
		fmt.Fprintf(&b, "  loop: occurred_fd %s fd=%d events=%v revents=%v b%d", ev.regName(), ev.FD, ev.Events, ev.Revents, ev.Binding)
	case OpOccurredTimeout:
		fmt.Fprintf(&b, "  loop: occurred_timeout %s b%d", ev.regName(), ev.Binding)
	case OpDropped:
		fmt.Fprintf(&b, "  loop: dropped %s (no longer live) b%d", ev.regName(), ev.Binding)
	case OpReaped:
		fmt.Fprintf(&b, "  loop: reaped %s at ctx close b%d", ev.regName(), ev.Binding)
	case OpSinkPanic:
		msg := ""
		if ev.Err != nil {
			msg, _, _ = strings.Cut(ev.Err.Error(), "\n")
		}
		fmt.Fprintf(&b, "  loop: sink for %s panicked b%d: %s", ev.regName(), ev.Binding, msg)
	default:
		fmt.Fprintf(&b, "HOOK %-18s b%d", ev.Op, ev.Binding)
		switch ev.Op {
		case OpFDRegister:
			fmt.Fprintf(&b, " fd=%d events=%v", ev.FD, ev.Events)
		case OpFDModify:
			fmt.Fprintf(&b, " fd=%d reg %s events=%v", ev.FD, ev.regName(), ev.Events)
		case OpFDDeregister:
			fmt.Fprintf(&b, " fd=%d reg %s", ev.FD, ev.regName())
		case OpTimeoutRegister:
			fmt.Fprintf(&b, " abs=%s", fmtDeadline(ev.Deadline, ev.Time))
		case OpTimeoutModify:
			fmt.Fprintf(&b, " reg %s abs=%s", ev.regName(), fmtDeadline(ev.Deadline, ev.Time))
		case OpTimeoutDeregister:
			fmt.Fprintf(&b, " reg %s", ev.regName())
		}
		switch {
		case ev.Err != nil:
			fmt.Fprintf(&b, " -> error: %v", ev.Err)
		case ev.Op == OpFDRegister || ev.Op == OpTimeoutRegister:
			fmt.Fprintf(&b, " -> reg %s", ev.regName())
		}
	}
	return b.String()
}

func fmtDeadline(abs, now time.Time) string {
	if osevent.IsFireNow(abs) {
		return "{0,0} (ASAP)"
	}
	return fmt.Sprintf("%d.%06d (in %.3fs)", abs.Unix(), abs.Nanosecond()/1000, abs.Sub(now).Seconds())
}

// TraceWriter returns a trace function that writes one line per event to
// w, serialised by a mutex of its own (a leaf, never held while calling
// anything but w.Write).
func TraceWriter(w io.Writer) func(TraceEvent) {
	var mu sync.Mutex
	return func(ev TraceEvent) {
		line := ev.String() + "\n"
		mu.Lock()
		_, _ = io.WriteString(w, line)
		mu.Unlock()
	}
}

// TraceEnv is the environment variable that enables tracing when
// Options.Trace is nil: "1" writes to standard error, any other non-empty
// value other than "0" names a file to append to.
const TraceEnv = "GOXL_TRACE"

func traceFromEnv(t0 time.Time) (func(TraceEvent), io.Closer, error) {
	v := os.Getenv(TraceEnv)
	switch v {
	case "", "0":
		return nil, nil, nil
	case "1":
		return TraceWriter(os.Stderr), nil, nil
	}
	f, err := os.OpenFile(v, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("eventloop: %s: %w", TraceEnv, err)
	}
	fmt.Fprintf(f, "=== goxl eventloop trace, loop created %s\n", t0.Format(time.RFC3339Nano))
	return TraceWriter(f), f, nil
}
