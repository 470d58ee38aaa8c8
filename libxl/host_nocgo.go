//go:build !cgo

package libxl

import (
	"context"
	"time"
)

// Without cgo the host and vcpu calls return ErrNotSupported.

// Trigger is libxl_trigger.
type Trigger int

// The triggers goxl sends (xl shutdown -F and reboot -F).
const (
	TriggerPower Trigger = 1
	TriggerReset Trigger = 5
)

// HostInfo returns ErrNotSupported.
func (c *Ctx) HostInfo() (HostInfo, error) { return HostInfo{}, ErrNotSupported }

// SetMemoryTarget returns ErrNotSupported.
func (c *Ctx) SetMemoryTarget(uint32, uint64) error { return ErrNotSupported }

// DomainName returns ErrNotSupported.
func (c *Ctx) DomainName(uint32) (string, error) { return "", ErrNotSupported }

// StartTime returns ErrNotSupported.
func (c *Ctx) StartTime(uint32) (time.Time, error) { return time.Time{}, ErrNotSupported }

// SendTrigger returns ErrNotSupported.
func (c *Ctx) SendTrigger(context.Context, uint32, Trigger) error { return ErrNotSupported }

// ResumeDomain returns ErrNotSupported.
func (c *Ctx) ResumeDomain(context.Context, uint32) error { return ErrNotSupported }

// ListVCPUs returns ErrNotSupported.
func (c *Ctx) ListVCPUs(uint32) ([]VCPUInfo, error) { return nil, ErrNotSupported }

// SetVCPUsOnline returns ErrNotSupported.
func (c *Ctx) SetVCPUsOnline(context.Context, uint32, int, int) error { return ErrNotSupported }
