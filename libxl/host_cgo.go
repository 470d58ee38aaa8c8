//go:build cgo

package libxl

/*
#include "host_helpers.h"
*/
import "C"

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func cstr(s *C.char) string {
	if s == nil {
		return ""
	}
	return C.GoString(s)
}

// HostInfo describes the host as `xl info` does (libxl_get_physinfo,
// libxl_get_version_info, libxl_get_scheduler, and uname(2)).
func (c *Ctx) HostInfo() (HostInfo, error) {
	raw, exit, err := c.enter()
	if err != nil {
		return HostInfo{}, err
	}
	defer exit()
	var pi C.libxl_physinfo
	C.libxl_physinfo_init(&pi)
	defer C.libxl_physinfo_dispose(&pi)
	if rc := C.libxl_get_physinfo(raw, &pi); rc != 0 {
		return HostInfo{}, &OpError{Op: "libxl_get_physinfo", Err: Error(rc)}
	}
	vi := C.libxl_get_version_info(raw)
	if vi == nil {
		return HostInfo{}, &OpError{Op: "libxl_get_version_info", Err: ErrFail}
	}
	h := HostInfo{
		NrCPUs:         int(pi.nr_cpus),
		MaxCPUID:       int(pi.max_cpu_id),
		NrNodes:        int(pi.nr_nodes),
		CoresPerSocket: int(pi.cores_per_socket),
		ThreadsPerCore: int(pi.threads_per_core),
		CPUMHz:         int(pi.cpu_khz / 1000),

		XenMajor:       int(vi.xen_version_major),
		XenMinor:       int(vi.xen_version_minor),
		XenExtra:       cstr(vi.xen_version_extra),
		XenCaps:        cstr(vi.capabilities),
		XenPagesize:    int(vi.pagesize),
		XenChangeset:   cstr(vi.changeset),
		XenCommandline: cstr(vi.commandline),
		CCCompiler:     cstr(vi.compiler),
		CCCompileBy:    cstr(vi.compile_by),
		CCCompileDom:   cstr(vi.compile_domain),
		CCCompileDate:  cstr(vi.compile_date),
		BuildID:        cstr(C.goxl_version_build_id(vi)),
	}
	h.XenVersion = fmt.Sprintf("%d.%d%s", h.XenMajor, h.XenMinor, h.XenExtra)
	caps := make([]string, 0, 8)
	for i := 0; i < 8; i++ {
		caps = append(caps, fmt.Sprintf("%08x", uint32(C.goxl_hwcap_at(&pi, C.int(i)))))
	}
	h.HWCaps = strings.Join(caps, ":")
	for _, f := range []struct {
		on   C.bool
		name string
	}{
		{C.goxl_physinfo_cap_pv(&pi), "pv"}, {pi.cap_hvm, "hvm"}, {pi.cap_hvm_directio, "hvm_directio"},
		{C.goxl_physinfo_cap_hap(&pi), "hap"}, {C.goxl_physinfo_cap_shadow(&pi), "shadow"},
		{C.goxl_physinfo_cap_iommu_hap_pt_share(&pi), "iommu_hap_pt_share"},
		{C.goxl_physinfo_cap_vmtrace(&pi), "vmtrace"}, {C.goxl_physinfo_cap_vpmu(&pi), "vpmu"},
		{C.goxl_physinfo_cap_gnttab_v1(&pi), "gnttab-v1"}, {C.goxl_physinfo_cap_gnttab_v2(&pi), "gnttab-v2"},
	} {
		if bool(f.on) {
			h.VirtCaps = append(h.VirtCaps, f.name)
		}
	}
	page := uint64(h.XenPagesize)
	if page == 0 {
		page = 4096
	}
	mb := func(pages C.uint64_t) uint64 { return uint64(pages) * page >> 20 }
	h.TotalMemoryMB = mb(pi.total_pages)
	h.FreeMemoryMB = mb(pi.free_pages)
	h.SharingFreedMB = mb(pi.sharing_freed_pages)
	h.SharingUsedMB = mb(pi.sharing_used_frames)
	h.OutstandingClaimsMB = mb(C.goxl_physinfo_outstanding_pages(&pi))
	if s := C.libxl_get_scheduler(raw); s >= 0 {
		h.XenScheduler = cstr(C.libxl_scheduler_to_string(C.libxl_scheduler(s)))
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		h.Host, h.Release = unix.ByteSliceToString(u.Nodename[:]), unix.ByteSliceToString(u.Release[:])
		h.Version, h.Machine = unix.ByteSliceToString(u.Version[:]), unix.ByteSliceToString(u.Machine[:])
	}
	return h, nil
}

// SetMemoryTarget sets a domain's balloon target in KiB
// (libxl_set_memory_target, absolute, enforce=1 as xl mem-set).
func (c *Ctx) SetMemoryTarget(domid uint32, targetKB uint64) error {
	raw, exit, err := c.enter()
	if err != nil {
		return err
	}
	defer exit()
	op := fmt.Sprintf("libxl_set_memory_target(%d)", domid)
	rc := C.goxl_set_memory_target(raw, C.uint32_t(domid), C.int64_t(targetKB), 0, 1)
	if err, ok := notInAPIResult(op, rc); ok {
		return err
	}
	if rc != 0 {
		return &OpError{Op: op, Err: Error(rc)}
	}
	return nil
}

// DomainName returns the name of a domid (libxl_domid_to_name); a domid
// that names no domain gives ErrNoSuchDomain.
func (c *Ctx) DomainName(domid uint32) (string, error) {
	raw, exit, err := c.enter()
	if err != nil {
		return "", err
	}
	defer exit()
	name := C.libxl_domid_to_name(raw, C.uint32_t(domid))
	if name == nil {
		return "", fmt.Errorf("domain %d: %w", domid, ErrNoSuchDomain)
	}
	defer C.free(unsafe.Pointer(name))
	return C.GoString(name), nil
}

// StartTime returns when a domain was started, from xenstore
// (libxl_vm_get_start_time).
func (c *Ctx) StartTime(domid uint32) (time.Time, error) {
	raw, exit, err := c.enter()
	if err != nil {
		return time.Time{}, err
	}
	defer exit()
	t := uint32(C.libxl_vm_get_start_time(raw, C.uint32_t(domid)))
	if t == ^uint32(0) {
		return time.Time{}, &OpError{Op: fmt.Sprintf("libxl_vm_get_start_time(%d)", domid), Err: ErrFail}
	}
	return time.Unix(int64(t), 0), nil
}

// Trigger is libxl_trigger.
type Trigger int

// The triggers goxl sends (xl shutdown -F and reboot -F).
const (
	TriggerPower Trigger = C.LIBXL_TRIGGER_POWER
	TriggerReset Trigger = C.LIBXL_TRIGGER_RESET
)

// SendTrigger sends an ACPI-like trigger to vcpu 0 of an HVM guest
// (libxl_send_trigger).
func (c *Ctx) SendTrigger(ctx context.Context, domid uint32, trigger Trigger) error {
	return c.domidAO(ctx, "libxl_send_trigger", domid, func(r *C.libxl_ctx, d C.uint32_t, h *C.libxl_asyncop_how) C.int {
		return C.goxl_send_trigger(r, d, C.libxl_trigger(trigger), 0, h)
	})
}

// ResumeDomain resumes a domain left suspended by SuspendDomain
// (libxl_domain_resume with suspend_cancel=1, as xl save -c).
func (c *Ctx) ResumeDomain(ctx context.Context, domid uint32) error {
	return c.domidAO(ctx, "libxl_domain_resume", domid, func(r *C.libxl_ctx, d C.uint32_t, h *C.libxl_asyncop_how) C.int {
		return C.libxl_domain_resume(r, d, 1, h)
	})
}
