package driver

import (
	"fmt"

	"github.com/goxl/goxl/libxl"
)

// DomainState is where a domain is in its lifecycle, as the driver sees
// it. It is libvirt's model, reduced to what libxl reports.
type DomainState int

// The states. Defined: known, nothing built. Creating: libxl is building
// it (or restoring it). Running/Paused: it exists and runs or not.
// ShuttingDown: a shutdown or reboot was requested, the guest has not yet
// stopped. Shutoff: it stopped (poweroff, or reboot awaiting restart) and
// is kept (on_* = preserve). Crashed: it crashed and is kept. Saved: its
// state is in a save file and the domain is gone. Destroyed: gone.
const (
	StateDefined DomainState = iota
	StateCreating
	StateRunning
	StatePaused
	StateShuttingDown
	StateShutoff
	StateCrashed
	StateSaved
	StateDestroyed
)

var stateNames = [...]string{"defined", "creating", "running", "paused", "shutting-down", "shutoff", "crashed", "saved", "destroyed"}

func (s DomainState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// MarshalText makes states readable in --json output.
func (s DomainState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Transition is what happens to a domain.
type Transition int

// The transitions. The Req* ones are the driver's own requests; the
// others report what libxl or the guest did.
const (
	TrCreate       Transition = iota // create or restore started
	TrCreated                        // built, paused
	TrCreateFailed                   // nothing left behind
	TrUnpaused                       // running
	TrPaused                         // paused
	TrReqShutdown                    // shutdown or reboot requested
	TrShutdown                       // DOMAIN_SHUTDOWN, kept (preserve)
	TrCrashed                        // DOMAIN_SHUTDOWN crash/watchdog, kept
	TrSaved                          // state saved, domain gone
	TrDestroyed                      // destroyed or DOMAIN_DEATH
	TrRestart                        // restarting after reboot/crash: a new build
)

var transitionNames = [...]string{"create", "created", "create-failed", "unpaused", "paused", "shutdown-requested", "shutdown", "crashed", "saved", "destroyed", "restart"}

func (t Transition) String() string {
	if int(t) < len(transitionNames) {
		return transitionNames[t]
	}
	return fmt.Sprintf("transition(%d)", int(t))
}

// ErrInvalidTransition is wrapped by Next for a transition the state does
// not allow, such as pausing a domain that is shut off.
var ErrInvalidTransition = fmt.Errorf("driver: invalid state transition")

// live are the states in which a domain exists in Xen.
func (s DomainState) live() bool {
	switch s {
	case StateRunning, StatePaused, StateShuttingDown, StateShutoff, StateCrashed:
		return true
	}
	return false
}

// Next is the lifecycle state machine: the state after t, or an error
// wrapping ErrInvalidTransition. It is pure, so it is tested on its own.
func Next(s DomainState, t Transition) (DomainState, error) {
	bad := func() (DomainState, error) {
		return s, fmt.Errorf("%w: %s in state %s", ErrInvalidTransition, t, s)
	}
	switch t {
	case TrCreate:
		if s == StateDefined || s == StateSaved || s == StateDestroyed || s == StateShutoff || s == StateCrashed {
			return StateCreating, nil
		}
	case TrCreated:
		if s == StateCreating {
			return StatePaused, nil
		}
	case TrCreateFailed:
		if s == StateCreating {
			return StateDestroyed, nil
		}
	case TrUnpaused:
		if s == StatePaused || s == StateRunning {
			return StateRunning, nil
		}
	case TrPaused:
		if s == StateRunning || s == StatePaused {
			return StatePaused, nil
		}
	case TrReqShutdown:
		if s == StateRunning || s == StatePaused || s == StateShuttingDown {
			return StateShuttingDown, nil
		}
	case TrShutdown:
		if s.live() {
			return StateShutoff, nil
		}
	case TrCrashed:
		if s.live() {
			return StateCrashed, nil
		}
	case TrSaved:
		if s.live() {
			return StateSaved, nil
		}
	case TrDestroyed:
		// Death can be reported in any state, even twice.
		return StateDestroyed, nil
	case TrRestart:
		if s.live() {
			return StateCreating, nil
		}
	}
	return bad()
}

// ShutdownPlan is what the driver does after a guest stopped.
type ShutdownPlan int

// The plans. xl.cfg(5)'s on_* actions reduce to these; the coredump-*
// actions are PlanDestroy and PlanRestart preceded by a core dump
// (CoreDumpFirst), as in xl's handle_domain_death.
const (
	PlanNone          ShutdownPlan = iota // suspend: a save is under way; or an adopted domain
	PlanDestroy                           // destroy the domain
	PlanRestart                           // destroy, then build again from the same config
	PlanPreserve                          // keep the stopped domain
	PlanRenameRestart                     // keep the stopped domain under a new name, build a new one
	PlanSoftReset                         // libxl_domain_soft_reset: reset in place (HVM)
)

func (p ShutdownPlan) String() string {
	names := [...]string{"none", "destroy", "restart", "preserve", "rename-restart", "soft-reset"}
	if int(p) < len(names) {
		return names[p]
	}
	return fmt.Sprintf("plan(%d)", int(p))
}

// CoreDumpFirst says whether an action dumps the domain's core before
// its destroy or restart.
func CoreDumpFirst(a libxl.ShutdownAction) bool {
	return a == libxl.ActionCoredumpDestroy || a == libxl.ActionCoredumpRestart
}

// PlanFor maps a shutdown reason and a config's on_* actions to a plan,
// as xl's handle_domain_death does: poweroff → on_poweroff, reboot →
// on_reboot, crash → on_crash, watchdog → on_watchdog, soft reset →
// on_soft_reset, anything else destroys.
func PlanFor(cfg libxl.DomainConfig, reason libxl.ShutdownReason) (ShutdownPlan, libxl.ShutdownAction) {
	var a libxl.ShutdownAction
	switch reason {
	case libxl.ShutdownPoweroff:
		a = cfg.OnPoweroff
	case libxl.ShutdownReboot:
		a = cfg.OnReboot
	case libxl.ShutdownCrash:
		a = cfg.OnCrash
	case libxl.ShutdownWatchdog:
		a = cfg.OnWatchdog
	case libxl.ShutdownSuspend:
		return PlanNone, ""
	case libxl.ShutdownSoftReset:
		a = cfg.OnSoftReset
		if a == "" {
			a = libxl.ActionSoftReset
		}
	default:
		return PlanDestroy, libxl.ActionDestroy
	}
	switch a {
	case libxl.ActionDestroy, libxl.ActionCoredumpDestroy, "":
		return PlanDestroy, a
	case libxl.ActionRestart, libxl.ActionCoredumpRestart:
		return PlanRestart, a
	case libxl.ActionRenameRestart:
		return PlanRenameRestart, a
	case libxl.ActionSoftReset:
		return PlanSoftReset, a
	case libxl.ActionPreserve:
		return PlanPreserve, a
	}
	return PlanDestroy, a
}
