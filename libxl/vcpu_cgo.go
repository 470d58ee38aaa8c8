//go:build cgo

package libxl

/*
#include "host_helpers.h"
*/
import "C"

import (
	"context"
	"fmt"
	"time"
)

// ListVCPUs returns a domain's vcpus (libxl_list_vcpu).
func (c *Ctx) ListVCPUs(domid uint32) ([]VCPUInfo, error) {
	raw, exit, err := c.enter()
	if err != nil {
		return nil, err
	}
	defer exit()
	var n, nrCPUs C.int
	list := C.libxl_list_vcpu(raw, C.uint32_t(domid), &n, &nrCPUs)
	if list == nil {
		return nil, &OpError{Op: fmt.Sprintf("libxl_list_vcpu(%d)", domid), Err: ErrFail}
	}
	defer C.libxl_vcpuinfo_list_free(list, n)
	out := make([]VCPUInfo, 0, int(n))
	for i := 0; i < int(n); i++ {
		v := C.goxl_vcpuinfo_at(list, C.int(i))
		info := VCPUInfo{
			VCPUID: uint32(v.vcpuid), CPU: uint32(v.cpu),
			Online: bool(v.online), Blocked: bool(v.blocked), Running: bool(v.running),
			CPUTime: time.Duration(v.vcpu_time),
		}
		info.Affinity, info.AffinityAll = bitmapCPUs(&v.cpumap, int(nrCPUs))
		if soft := C.goxl_vcpuinfo_cpumap_soft(v); soft != nil {
			info.SoftAffinity, info.SoftAffinityAll = bitmapCPUs(soft, int(nrCPUs))
		}
		out = append(out, info)
	}
	return out, nil
}

// bitmapCPUs lists the cpus set in m (libxl_bitmap_test) and whether all
// nrCPUs host cpus are.
func bitmapCPUs(m *C.libxl_bitmap, nrCPUs int) ([]int, bool) {
	var cpus []int
	for i := 0; i < int(m.size)*8; i++ {
		if C.libxl_bitmap_test(m, C.int(i)) != 0 {
			cpus = append(cpus, i)
		}
	}
	all := nrCPUs > 0
	for i := 0; i < nrCPUs && all; i++ {
		all = C.libxl_bitmap_test(m, C.int(i)) != 0
	}
	return cpus, all
}

// SetVCPUsOnline brings the first count of a domain's maxVCPUs vcpus
// online and the rest offline (libxl_set_vcpuonline).
func (c *Ctx) SetVCPUsOnline(ctx context.Context, domid uint32, maxVCPUs, count int) error {
	if count < 1 || count > maxVCPUs {
		return &OpError{Op: fmt.Sprintf("libxl_set_vcpuonline(%d)", domid), Err: fmt.Errorf("%w: %d vcpus requested, the domain has 1 to %d", ErrInval, count, maxVCPUs)}
	}
	var bitmap *C.libxl_bitmap
	defer func() { C.goxl_bitmap_free(bitmap) }()
	return c.domidAO(ctx, "libxl_set_vcpuonline", domid, func(r *C.libxl_ctx, d C.uint32_t, h *C.libxl_asyncop_how) C.int {
		bitmap = C.goxl_bitmap_first(r, C.int(maxVCPUs), C.int(count))
		if bitmap == nil {
			return C.ERROR_NOMEM
		}
		return C.goxl_set_vcpuonline(r, d, bitmap, h)
	})
}
