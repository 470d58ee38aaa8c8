//go:build libxlmodel

package libxl

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/goxl/goxl/internal/osevent"
)

// nopHooks accept every registration and never deliver; enough for a ctx
// whose test does no event work.
type nopHooks struct {
	mu   sync.Mutex
	next osevent.RegID
}

func (h *nopHooks) id() osevent.RegID { h.mu.Lock(); defer h.mu.Unlock(); h.next++; return h.next }
func (h *nopHooks) FDRegister(int, osevent.PollEvents, osevent.ForLibxl) (osevent.RegID, error) {
	return h.id(), nil
}
func (h *nopHooks) FDModify(int, osevent.RegID, osevent.PollEvents) error { return nil }
func (h *nopHooks) FDDeregister(int, osevent.RegID)                       {}
func (h *nopHooks) TimeoutRegister(time.Time, osevent.ForLibxl) (osevent.RegID, error) {
	return h.id(), nil
}
func (h *nopHooks) TimeoutModify(osevent.RegID, time.Time) error { return nil }
func (h *nopHooks) TimeoutDeregister(osevent.RegID)              {}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// libxl's messages reach log/slog through the bridge's logger, with the
// level the user set; lower levels are dropped in C.
func TestLoggerFeedsSlogAtTheChosenLevel(t *testing.T) {
	var out lockedBuffer
	logger := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := New(Options{Hooks: &nopHooks{}, Logger: logger, LogLevel: LogDebug})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "allocated") || !strings.Contains(out.String(), "source=libxl") {
		t.Fatalf("ctx_alloc's debug message did not reach slog: %q", out.String())
	}
	c.SetLogLevel(LogError)
	before := out.String()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if out.String() != before {
		t.Fatalf("a debug message passed a LogError threshold: %q", strings.TrimPrefix(out.String(), before))
	}

	out = lockedBuffer{}
	c, err = New(Options{Hooks: &nopHooks{}, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if out.String() != "" {
		t.Fatalf("the default threshold (warnings) let debug through: %q", out.String())
	}
}

func TestNewNeedsHooks(t *testing.T) {
	if _, err := New(Options{}); err != ErrNoHooks {
		t.Fatalf("got %v, want ErrNoHooks", err)
	}
}

func TestClosedCtxRefusesCalls(t *testing.T) {
	c, err := New(Options{Hooks: &nopHooks{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := c.Call(func(unsafe.Pointer) error { return nil }); err != ErrClosed {
		t.Fatalf("Call after Close: %v", err)
	}
}
