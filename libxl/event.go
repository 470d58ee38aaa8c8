package libxl

import "fmt"

// EventType is libxl_event_type.
type EventType int

// libxl's event types.
const (
	EventDomainShutdown           EventType = 1
	EventDomainDeath              EventType = 2
	EventDiskEject                EventType = 3
	EventOperationComplete        EventType = 4
	EventDomainCreateConsoleAvail EventType = 5
)

func (t EventType) String() string {
	switch t {
	case EventDomainShutdown:
		return "domain_shutdown"
	case EventDomainDeath:
		return "domain_death"
	case EventDiskEject:
		return "disk_eject"
	case EventOperationComplete:
		return "operation_complete"
	case EventDomainCreateConsoleAvail:
		return "domain_create_console_available"
	}
	return fmt.Sprintf("event_type(%d)", int(t))
}

// ShutdownReason is libxl_shutdown_reason.
type ShutdownReason int

// The reasons a domain shut down.
const (
	ShutdownUnknown   ShutdownReason = -1
	ShutdownPoweroff  ShutdownReason = 0
	ShutdownReboot    ShutdownReason = 1
	ShutdownSuspend   ShutdownReason = 2
	ShutdownCrash     ShutdownReason = 3
	ShutdownWatchdog  ShutdownReason = 4
	ShutdownSoftReset ShutdownReason = 5
)

func (r ShutdownReason) String() string {
	switch r {
	case ShutdownPoweroff:
		return "poweroff"
	case ShutdownReboot:
		return "reboot"
	case ShutdownSuspend:
		return "suspend"
	case ShutdownCrash:
		return "crash"
	case ShutdownWatchdog:
		return "watchdog"
	case ShutdownSoftReset:
		return "soft_reset"
	}
	return "unknown"
}

// Event is a libxl_event copied into Go memory; the C event is freed
// before any Go code sees it.
type Event struct {
	Type    EventType
	DomID   uint32
	UUID    [16]byte
	ForUser uint64
	// Shutdown is set for EventDomainShutdown.
	Shutdown ShutdownReason
	// Vdev is set for EventDiskEject.
	Vdev string
	// RC is set for EventOperationComplete.
	RC int
}

func (e Event) String() string {
	switch e.Type {
	case EventDomainShutdown:
		return fmt.Sprintf("%s domid=%d reason=%s", e.Type, e.DomID, e.Shutdown)
	case EventDiskEject:
		return fmt.Sprintf("%s domid=%d vdev=%s", e.Type, e.DomID, e.Vdev)
	}
	return fmt.Sprintf("%s domid=%d", e.Type, e.DomID)
}
