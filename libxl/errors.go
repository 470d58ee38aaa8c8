package libxl

import (
	"errors"
	"fmt"
)

// Error is a libxl error code (libxl_error): a negative int returned by
// libxl calls. Compare with errors.Is against the sentinels below.
type Error int

// libxl's error codes, as in Xen 4.17's libxl_types.idl.
const (
	ErrNonspecific                  Error = -1
	ErrVersion                      Error = -2
	ErrFail                         Error = -3
	ErrNotImplemented               Error = -4 // ERROR_NI
	ErrNoMem                        Error = -5
	ErrInval                        Error = -6
	ErrBadFail                      Error = -7
	ErrGuestTimedOut                Error = -8
	ErrTimedOut                     Error = -9
	ErrNoParavirt                   Error = -10
	ErrNotReady                     Error = -11
	ErrOSEventRegFail               Error = -12
	ErrBufferFull                   Error = -13
	ErrUnknownChild                 Error = -14
	ErrLockFail                     Error = -15
	ErrJSONConfigEmpty              Error = -16
	ErrDeviceExists                 Error = -17
	ErrCheckpointDevopsDoesNotMatch Error = -18
	ErrCheckpointDeviceNotSupported Error = -19
	ErrVNUMAConfigInvalid           Error = -20
	ErrDomainNotFound               Error = -21
	ErrAborted                      Error = -22
	ErrNotFound                     Error = -23
	ErrDomainDestroyed              Error = -24
	ErrFeatureRemoved               Error = -25
	ErrProtocolErrorQMP             Error = -26
	ErrUnknownQMPError              Error = -27
	ErrQMPGenericError              Error = -28
	ErrQMPCommandNotFound           Error = -29
	ErrQMPDeviceNotActive           Error = -30
	ErrQMPDeviceNotFound            Error = -31
	ErrQEMUAPI                      Error = -32
)

var errorNames = map[Error]string{
	ErrNonspecific:                  "ERROR_NONSPECIFIC",
	ErrVersion:                      "ERROR_VERSION",
	ErrFail:                         "ERROR_FAIL",
	ErrNotImplemented:               "ERROR_NI",
	ErrNoMem:                        "ERROR_NOMEM",
	ErrInval:                        "ERROR_INVAL",
	ErrBadFail:                      "ERROR_BADFAIL",
	ErrGuestTimedOut:                "ERROR_GUEST_TIMEDOUT",
	ErrTimedOut:                     "ERROR_TIMEDOUT",
	ErrNoParavirt:                   "ERROR_NOPARAVIRT",
	ErrNotReady:                     "ERROR_NOT_READY",
	ErrOSEventRegFail:               "ERROR_OSEVENT_REG_FAIL",
	ErrBufferFull:                   "ERROR_BUFFERFULL",
	ErrUnknownChild:                 "ERROR_UNKNOWN_CHILD",
	ErrLockFail:                     "ERROR_LOCK_FAIL",
	ErrJSONConfigEmpty:              "ERROR_JSON_CONFIG_EMPTY",
	ErrDeviceExists:                 "ERROR_DEVICE_EXISTS",
	ErrCheckpointDevopsDoesNotMatch: "ERROR_CHECKPOINT_DEVOPS_DOES_NOT_MATCH",
	ErrCheckpointDeviceNotSupported: "ERROR_CHECKPOINT_DEVICE_NOT_SUPPORTED",
	ErrVNUMAConfigInvalid:           "ERROR_VNUMA_CONFIG_INVALID",
	ErrDomainNotFound:               "ERROR_DOMAIN_NOTFOUND",
	ErrAborted:                      "ERROR_ABORTED",
	ErrNotFound:                     "ERROR_NOTFOUND",
	ErrDomainDestroyed:              "ERROR_DOMAIN_DESTROYED",
	ErrFeatureRemoved:               "ERROR_FEATURE_REMOVED",
	ErrProtocolErrorQMP:             "ERROR_PROTOCOL_ERROR_QMP",
	ErrUnknownQMPError:              "ERROR_UNKNOWN_QMP_ERROR",
	ErrQMPGenericError:              "ERROR_QMP_GENERIC_ERROR",
	ErrQMPCommandNotFound:           "ERROR_QMP_COMMAND_NOT_FOUND",
	ErrQMPDeviceNotActive:           "ERROR_QMP_DEVICE_NOT_ACTIVE",
	ErrQMPDeviceNotFound:            "ERROR_QMP_DEVICE_NOT_FOUND",
	ErrQEMUAPI:                      "ERROR_QEMU_API",
}

// Name returns libxl's name for the code, such as "ERROR_FAIL".
func (e Error) Name() string {
	if n, ok := errorNames[e]; ok {
		return n
	}
	if e > 0 {
		return fmt.Sprintf("hook error %d", int(e))
	}
	return fmt.Sprintf("libxl error %d", int(e))
}

func (e Error) Error() string { return "libxl: " + e.Name() }

// Errors that goxl itself reports, for cases libxl has no code for.
var (
	// ErrNotSupported: this build of goxl has no cgo, so no libxl.
	ErrNotSupported = errors.New("libxl: not supported: goxl was built without cgo (CGO_ENABLED=0); libxl needs cgo and libxen-dev")
	// ErrClosed: the Ctx was closed, or is closing.
	ErrClosed = errors.New("libxl: ctx is closed")
	// ErrNoHooks: Options.Hooks is nil; goxl runs libxl only hook-driven.
	ErrNoHooks = errors.New("libxl: Options.Hooks is required: goxl runs libxl through an event loop's hooks")
	// ErrUnpatched42: libxl 4.2.0/4.2.1 without goxl's xen-patches/
	// series; its stale-callback races make hook-driven use unsafe.
	ErrUnpatched42 = errors.New("libxl: Xen 4.2.0/4.2.1 libxl has the stale fd/timeout callback races; apply goxl's xen-patches/ series (see xen-patches/README.md), or opt into the slower serialised mode (Options.Xen42 = Xen42Serialised, or GOXL_LIBXL_SAFE_MODE=1)")
	// ErrDisaster: libxl's disaster callback ran: events may have been
	// lost for good. Subscriptions end with it, and the ctx refuses new
	// operations with it; close the ctx and make a new one.
	ErrDisaster = errors.New("libxl: libxl reported a disaster: events may have been lost; the ctx refuses new operations, close it and make a new one")
	// ErrInCallback: the call would wait for the dispatcher it runs on.
	ErrInCallback = errors.New("libxl: Close called from a callback (the dispatcher, Options.OnEvent, Call's fn); it would wait for itself")
)

// OpError reports a failed asynchronous operation.
type OpError struct {
	Op  string
	Err error // an Error from libxl, possibly joined with a context error
}

func (e *OpError) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *OpError) Unwrap() error { return e.Err }
