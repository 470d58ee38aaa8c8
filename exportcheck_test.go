//go:build cgo

package goxl

import (
	"io"
	"log/slog"
	"testing"
	"time"
	"unsafe"

	"github.com/goxl/goxl/internal/osevent"
)

type panicHooks struct{}

func (panicHooks) FDRegister(int, osevent.PollEvents, osevent.ForLibxl) (osevent.RegID, error) {
	panic("fd_register")
}
func (panicHooks) FDModify(int, osevent.RegID, osevent.PollEvents) error { panic("fd_modify") }
func (panicHooks) FDDeregister(int, osevent.RegID)                       { panic("fd_deregister") }
func (panicHooks) TimeoutRegister(time.Time, osevent.ForLibxl) (osevent.RegID, error) {
	panic("timeout_register")
}
func (panicHooks) TimeoutModify(osevent.RegID, time.Time) error { panic("timeout_modify") }
func (panicHooks) TimeoutDeregister(osevent.RegID)              { panic("timeout_deregister") }

type panicEvents struct{}

func (panicEvents) EventOccurs(unsafe.Pointer) { panic("event_occurs") }
func (panicEvents) Disaster(int, string, int)  { panic("disaster") }

type panicSink struct{}

func (panicSink) Log(int, int, string, string) { panic("log") }

// Every export recovers a panic: a panic must never unwind through
// libxl's frames (its ctx mutex would stay locked). Hooks that return a
// code return ERROR_OSEVENT_REG_FAIL; each panic is counted.
func TestEveryExportRecoversPanics(t *testing.T) {
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer slog.SetDefault(old)
	user := BindCtx(&CtxCallbacks{Hooks: panicHooks{}, Events: panicEvents{}})
	defer user.Release()
	ao := NewAOToken(func(int) { panic("ao_complete") })
	before := ReadStats().Panics
	rcs := callEveryExportForTest(user, ao)
	for i, rc := range rcs {
		if rc != errorOSEventRegFailForTest {
			t.Errorf("hook %d returned %d, want ERROR_OSEVENT_REG_FAIL", i, rc)
		}
	}
	logger, token, err := NewLogger(panicSink{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer token.Release()
	defer destroyLogger(logger)
	logHere(logger, 8, "boom")
	// fd_register, fd_modify, fd_deregister, timeout_register,
	// timeout_modify, timeout_deregister, event_occurs, disaster,
	// ao_complete, log.
	if got := ReadStats().Panics - before; got != 10 {
		t.Fatalf("%d panics recovered, want 10 (one per export)", got)
	}
	if ao.Lookup() != nil {
		t.Fatal("the ao token was not released after its completion panicked")
	}
}
