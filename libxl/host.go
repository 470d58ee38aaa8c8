package libxl

import "time"

// HostInfo describes the host and its hypervisor, as `xl info` does: the
// dom0 kernel's uname, libxl_physinfo and libxl_version_info.
type HostInfo struct {
	Host    string `json:"host"`
	Release string `json:"release"`
	Version string `json:"version"`
	Machine string `json:"machine"`

	NrCPUs         int      `json:"nr_cpus"`
	MaxCPUID       int      `json:"max_cpu_id"`
	NrNodes        int      `json:"nr_nodes"`
	CoresPerSocket int      `json:"cores_per_socket"`
	ThreadsPerCore int      `json:"threads_per_core"`
	CPUMHz         int      `json:"cpu_mhz"`
	HWCaps         string   `json:"hw_caps"`
	VirtCaps       []string `json:"virt_caps"`

	TotalMemoryMB       uint64 `json:"total_memory"`
	FreeMemoryMB        uint64 `json:"free_memory"`
	SharingFreedMB      uint64 `json:"sharing_freed_memory"`
	SharingUsedMB       uint64 `json:"sharing_used_memory"`
	OutstandingClaimsMB uint64 `json:"outstanding_claims"`

	XenMajor       int    `json:"xen_major"`
	XenMinor       int    `json:"xen_minor"`
	XenExtra       string `json:"xen_extra"`
	XenVersion     string `json:"xen_version"`
	XenCaps        string `json:"xen_caps"`
	XenScheduler   string `json:"xen_scheduler"`
	XenPagesize    int    `json:"xen_pagesize"`
	XenChangeset   string `json:"xen_changeset"`
	XenCommandline string `json:"xen_commandline"`
	CCCompiler     string `json:"cc_compiler"`
	CCCompileBy    string `json:"cc_compile_by"`
	CCCompileDom   string `json:"cc_compile_domain"`
	CCCompileDate  string `json:"cc_compile_date"`
	BuildID        string `json:"build_id"`
}

// VCPUInfo is one libxl_vcpuinfo.
type VCPUInfo struct {
	VCPUID  uint32        `json:"vcpuid"`
	CPU     uint32        `json:"cpu"`
	Online  bool          `json:"online"`
	Blocked bool          `json:"blocked"`
	Running bool          `json:"running"`
	CPUTime time.Duration `json:"cpu_time_ns"`
	// Affinity and SoftAffinity list the host cpus the vcpu may run on
	// (hard) and prefers (soft). AffinityAll/SoftAffinityAll: every cpu
	// of the host, which xl prints as "all".
	Affinity        []int `json:"affinity"`
	SoftAffinity    []int `json:"soft_affinity"`
	AffinityAll     bool  `json:"affinity_all"`
	SoftAffinityAll bool  `json:"soft_affinity_all"`
}

// State is xl vcpu-list's state column: "-b-" style r/b, or "--p"
// offline.
func (v VCPUInfo) State() string {
	b := []byte("---")
	if !v.Online {
		b[2] = 'p'
		return string(b)
	}
	if v.Running {
		b[0] = 'r'
	}
	if v.Blocked {
		b[1] = 'b'
	}
	return string(b)
}
