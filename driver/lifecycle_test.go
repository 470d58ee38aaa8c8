package driver

import (
	"errors"
	"testing"

	"github.com/goxl/goxl/libxl"
)

func TestNextFullLifecycle(t *testing.T) {
	s := StateDefined
	for _, step := range []struct {
		tr   Transition
		want DomainState
	}{
		{TrCreate, StateCreating}, {TrCreated, StatePaused}, {TrUnpaused, StateRunning}, {TrPaused, StatePaused},
		{TrUnpaused, StateRunning}, {TrReqShutdown, StateShuttingDown}, {TrShutdown, StateShutoff},
		{TrRestart, StateCreating}, {TrCreated, StatePaused}, {TrUnpaused, StateRunning}, {TrCrashed, StateCrashed},
		{TrDestroyed, StateDestroyed}, {TrCreate, StateCreating}, {TrCreateFailed, StateDestroyed},
		{TrCreate, StateCreating}, {TrCreated, StatePaused}, {TrSaved, StateSaved}, {TrCreate, StateCreating},
	} {
		next, err := Next(s, step.tr)
		if err != nil || next != step.want {
			t.Fatalf("%s --%s--> %s, %v; want %s", s, step.tr, next, err, step.want)
		}
		s = next
	}
}

func TestNextRefuses(t *testing.T) {
	for _, c := range []struct {
		s  DomainState
		tr Transition
	}{
		{StateDefined, TrUnpaused}, {StateShutoff, TrPaused}, {StateDestroyed, TrReqShutdown}, {StateSaved, TrUnpaused},
		{StateRunning, TrCreate}, {StateCreating, TrCreate}, {StateDestroyed, TrShutdown}, {StateSaved, TrRestart},
		{StateRunning, TrCreated}, {StateShutoff, TrReqShutdown},
	} {
		got, err := Next(c.s, c.tr)
		if !errors.Is(err, ErrInvalidTransition) || got != c.s {
			t.Errorf("%s --%s--> %s, %v: want refusal", c.s, c.tr, got, err)
		}
	}
	// Death is accepted everywhere: it is a fact, not a request.
	for s := StateDefined; s <= StateDestroyed; s++ {
		if got, err := Next(s, TrDestroyed); err != nil || got != StateDestroyed {
			t.Errorf("death in %s: %s %v", s, got, err)
		}
	}
}

func TestPlanFor(t *testing.T) {
	cfg := libxl.DomainConfig{OnPoweroff: libxl.ActionDestroy, OnReboot: libxl.ActionRestart, OnCrash: libxl.ActionPreserve, OnWatchdog: libxl.ActionPreserve}
	for _, c := range []struct {
		r    libxl.ShutdownReason
		want ShutdownPlan
	}{
		{libxl.ShutdownPoweroff, PlanDestroy}, {libxl.ShutdownReboot, PlanRestart}, {libxl.ShutdownCrash, PlanPreserve},
		{libxl.ShutdownWatchdog, PlanPreserve}, {libxl.ShutdownSuspend, PlanNone}, {libxl.ShutdownSoftReset, PlanSoftReset},
		{libxl.ShutdownUnknown, PlanDestroy},
	} {
		if got, _ := PlanFor(cfg, c.r); got != c.want {
			t.Errorf("%s: %s, want %s", c.r, got, c.want)
		}
	}
	cfg = libxl.DomainConfig{OnPoweroff: libxl.ActionRestart, OnReboot: libxl.ActionRenameRestart, OnCrash: libxl.ActionCoredumpDestroy}
	if p, _ := PlanFor(cfg, libxl.ShutdownPoweroff); p != PlanRestart {
		t.Error("poweroff→restart")
	}
	if p, _ := PlanFor(cfg, libxl.ShutdownReboot); p != PlanRenameRestart {
		t.Error("rename-restart")
	}
	if p, a := PlanFor(cfg, libxl.ShutdownCrash); p != PlanDestroy || !CoreDumpFirst(a) {
		t.Error("coredump-destroy→dump, then destroy")
	}
	// on_watchdog is its own action, not on_crash's.
	cfg.OnWatchdog = libxl.ActionCoredumpRestart
	if p, a := PlanFor(cfg, libxl.ShutdownWatchdog); p != PlanRestart || !CoreDumpFirst(a) {
		t.Error("watchdog→coredump-restart")
	}
	cfg.OnSoftReset = libxl.ActionPreserve
	if p, _ := PlanFor(cfg, libxl.ShutdownSoftReset); p != PlanPreserve {
		t.Error("soft reset→on_soft_reset")
	}
}

func TestStateText(t *testing.T) {
	b, _ := StateShuttingDown.MarshalText()
	if string(b) != "shutting-down" || DomainState(99).String() != "state(99)" {
		t.Fatal(string(b))
	}
}
