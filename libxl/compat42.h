/* compat42.h: what goxl needs from libxl that the libxl 4.2 API lacks.
 *
 * Selected by LIBXL_API_VERSION (0x040200 under -tags xen42, see
 * link_xen42.go) and by the LIBXL_HAVE_* macros of the libxl.h in use,
 * never by the version libxl reports at run time. Without -tags xen42
 * LIBXL_API_VERSION is unset, every LIBXL_HAVE_* below is defined by
 * 4.17's libxl.h, and this header adds nothing: the 4.17 build is
 * unchanged.
 *
 * GOXL_ERROR_NOT_IN_API is returned where the API has no such call; the
 * Go side turns it into ErrNotSupported with the reason (compat42.go). It
 * is outside libxl's own error range (ERROR_* are -1 .. about -40). */
#ifndef GOXL_COMPAT42_H
#define GOXL_COMPAT42_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <libxl.h>

#define GOXL_ERROR_NOT_IN_API (-1042)

#if defined(LIBXL_API_VERSION) && LIBXL_API_VERSION < 0x040300
#define GOXL_LIBXL_API_42 1
#else
#define GOXL_LIBXL_API_42 0
#endif

/* libxl_ao_abort: 4.5 (LIBXL_HAVE_AO_ABORT). Without it an operation
 * runs to its end; goxl still stops waiting for it. */
#ifndef LIBXL_HAVE_AO_ABORT
static inline int libxl_ao_abort(libxl_ctx *ctx, const libxl_asyncop_how *how)
{
    (void)ctx; (void)how;
    return GOXL_ERROR_NOT_IN_API;
}
#endif

/* Enum values the 4.2 IDL lacks (PVH 4.10, QED 4.5, the standalone disk
 * backend 4.6, soft reset 4.6). Under the 4.2 API they map to
 * GOXL_ENUM_NOT_IN_API, which the Go side refuses before libxl sees it. */
#define GOXL_ENUM_NOT_IN_API 0x4242 /* libxl enums are unsigned; no libxl value is this large */
#if GOXL_LIBXL_API_42
#define GOXL_DOMAIN_TYPE_PVH GOXL_ENUM_NOT_IN_API
#define GOXL_DISK_FORMAT_QED GOXL_ENUM_NOT_IN_API
#define GOXL_DISK_BACKEND_STANDALONE GOXL_ENUM_NOT_IN_API
#define GOXL_ACTION_ON_SHUTDOWN_SOFT_RESET GOXL_ENUM_NOT_IN_API
#else
#define GOXL_DOMAIN_TYPE_PVH LIBXL_DOMAIN_TYPE_PVH
#define GOXL_DISK_FORMAT_QED LIBXL_DISK_FORMAT_QED
#define GOXL_DISK_BACKEND_STANDALONE LIBXL_DISK_BACKEND_STANDALONE
#define GOXL_ACTION_ON_SHUTDOWN_SOFT_RESET LIBXL_ACTION_ON_SHUTDOWN_SOFT_RESET
#endif

#ifndef INVALID_DOMID /* 4.2 keeps it in libxl_internal.h */
#define INVALID_DOMID ~0
#endif

/* JSON configs as input: 4.2 generates *_to_json only. */
static inline int goxl_domain_config_from_json(libxl_ctx *ctx,
        libxl_domain_config *d, const char *s)
{
#if GOXL_LIBXL_API_42
    (void)ctx; (void)d; (void)s;
    return GOXL_ERROR_NOT_IN_API;
#else
    return libxl_domain_config_from_json(ctx, d, s);
#endif
}

/* 4.2's shutdown and reboot are synchronous (no ao_how): goxl does not
 * block a goroutine inside libxl for them; 4.2's pause and unpause are
 * synchronous too, but immediate (one domctl), so the completion is
 * reported at once, as libxl does for an ao that completes at once. */
static inline int goxl_domain_shutdown(libxl_ctx *ctx, uint32_t domid,
                                       const libxl_asyncop_how *how)
{
#if GOXL_LIBXL_API_42
    (void)ctx; (void)domid; (void)how;
    return GOXL_ERROR_NOT_IN_API;
#else
    return libxl_domain_shutdown(ctx, domid, how);
#endif
}

static inline int goxl_domain_reboot(libxl_ctx *ctx, uint32_t domid,
                                     const libxl_asyncop_how *how)
{
#if GOXL_LIBXL_API_42
    (void)ctx; (void)domid; (void)how;
    return GOXL_ERROR_NOT_IN_API;
#else
    return libxl_domain_reboot(ctx, domid, how);
#endif
}

#if defined(LIBXL_API_VERSION) && LIBXL_API_VERSION < 0x041300
static inline int goxl_complete_now(libxl_ctx *ctx, int rc,
                                    const libxl_asyncop_how *how)
{
    if (rc)
        return rc; /* an initiating call that fails gets no callback */
    how->callback(ctx, rc, how->u.for_callback);
    return 0;
}
#endif

static inline int goxl_domain_pause(libxl_ctx *ctx, uint32_t domid,
                                    const libxl_asyncop_how *how)
{
#if GOXL_LIBXL_API_42
    return goxl_complete_now(ctx, libxl_domain_pause(ctx, domid), how);
#else
    return libxl_domain_pause(ctx, domid, how);
#endif
}

static inline int goxl_domain_unpause(libxl_ctx *ctx, uint32_t domid,
                                      const libxl_asyncop_how *how)
{
#if GOXL_LIBXL_API_42
    return goxl_complete_now(ctx, libxl_domain_unpause(ctx, domid), how);
#else
    return libxl_domain_unpause(ctx, domid, how);
#endif
}

/* libxl_retrieve_domain_configuration: 4.5 (LIBXL_HAVE_RETRIEVE_DOMAIN_
 * CONFIGURATION), with ao_how from 4.13. */
static inline int goxl_retrieve_domain_configuration(libxl_ctx *ctx,
        uint32_t domid, libxl_domain_config *d, const libxl_asyncop_how *how)
{
#if !defined(LIBXL_HAVE_RETRIEVE_DOMAIN_CONFIGURATION)
    (void)ctx; (void)domid; (void)d; (void)how;
    return GOXL_ERROR_NOT_IN_API;
#elif defined(LIBXL_API_VERSION) && LIBXL_API_VERSION < 0x041300
    return goxl_complete_now(ctx, libxl_retrieve_domain_configuration(ctx, domid, d), how);
#else
    return libxl_retrieve_domain_configuration(ctx, domid, d, how);
#endif
}

/* Restore parameters: 4.5 (LIBXL_HAVE_DOMAIN_CREATE_RESTORE_PARAMS). 4.2
 * restores from a stream of its own format only. */
#ifndef LIBXL_HAVE_DOMAIN_CREATE_RESTORE_PARAMS
typedef struct { int unused; } libxl_domain_restore_params;
static inline void libxl_domain_restore_params_init(libxl_domain_restore_params *p) { p->unused = 0; }
static inline void libxl_domain_restore_params_dispose(libxl_domain_restore_params *p) { (void)p; }
#endif

/* SIGCHLD with libxl_sigchld_owner_mainloop. From 4.4
 * (LIBXL_HAVE_SIGCHLD_OWNER_SELECTIVE_REAP) libxl reaps its own children
 * when told a SIGCHLD occurred. 4.2 wants the application to reap and to
 * pass each status to libxl_childproc_exited; goxl peeks at the first
 * zombie without reaping it (WNOWAIT), hands it to libxl, and reaps it
 * only if libxl knew it. A zombie libxl does not know belongs to the
 * application (its own Wait reaps it), and stops the scan until the next
 * SIGCHLD: in a 4.2 build, reap your own children promptly. */
#ifdef LIBXL_HAVE_SIGCHLD_OWNER_SELECTIVE_REAP
static inline void goxl_childproc_sigchld_occurred(libxl_ctx *ctx)
{
    libxl_childproc_sigchld_occurred(ctx);
}
#else
#include <sys/wait.h>
#include <errno.h>
static inline void goxl_childproc_sigchld_occurred(libxl_ctx *ctx)
{
    for (;;) {
        siginfo_t si;
        int status;
        si.si_pid = 0;
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0)
            return;
        switch (si.si_code) {
        case CLD_EXITED: status = (si.si_status & 0xff) << 8; break;
        case CLD_KILLED: status = si.si_status & 0x7f; break;
        case CLD_DUMPED: status = (si.si_status & 0x7f) | 0x80; break;
        default: return;
        }
        if (libxl_childproc_reaped(ctx, si.si_pid, status) != 0)
            return; /* not libxl's child */
        while (waitpid(si.si_pid, &status, WNOHANG) < 0 && errno == EINTR)
            ;
    }
}
#endif

/* Kernel, ramdisk and command line: in b_info itself from 4.5
 * (LIBXL_HAVE_BUILDINFO_KERNEL); in 4.2 only a PV domain has them, in
 * b_info.u.pv. Returns -1 where the API cannot hold them. Call after the
 * domain type is set. The strings become libxl's (dispose frees them). */
static inline int goxl_config_set_kernel(libxl_domain_config *d, char *kernel,
                                         char *ramdisk, char *cmdline)
{
#ifdef LIBXL_HAVE_BUILDINFO_KERNEL
    d->b_info.kernel = kernel;
    d->b_info.ramdisk = ramdisk;
    d->b_info.cmdline = cmdline;
    return 0;
#else
    if (d->b_info.type != LIBXL_DOMAIN_TYPE_PV) {
        free(kernel); free(ramdisk); free(cmdline);
        return (kernel || ramdisk || cmdline) ? -1 : 0;
    }
    d->b_info.u.pv.kernel = kernel;
    d->b_info.u.pv.ramdisk = ramdisk;
    d->b_info.u.pv.cmdline = cmdline;
    return 0;
#endif
}

/* The bootloader: in b_info from 4.5 (with the kernel); in 4.2 in
 * b_info.u.pv. The strings become libxl's. Call after the type is set. */
static inline int goxl_config_set_bootloader(libxl_domain_config *d, char *bl,
                                             char **args)
{
#ifdef LIBXL_HAVE_BUILDINFO_KERNEL
    d->b_info.bootloader = bl;
    d->b_info.bootloader_args = args;
    return 0;
#else
    if (d->b_info.type != LIBXL_DOMAIN_TYPE_PV) {
        int i;
        free(bl);
        for (i = 0; args && args[i]; i++)
            free(args[i]);
        free(args);
        return (bl || args) ? -1 : 0;
    }
    d->b_info.u.pv.bootloader = bl;
    d->b_info.u.pv.bootloader_args = args;
    return 0;
#endif
}

/* Backend domain by name: 4.3 (LIBXL_HAVE_DEVICE_BACKEND_DOMNAME). In 4.2
 * only backend_domid; a name there is refused (-1). */
#ifdef LIBXL_HAVE_DEVICE_BACKEND_DOMNAME
#define GOXL_BACKEND_DOMNAME(dev) ((dev)->backend_domname)
#define GOXL_SET_BACKEND_DOMNAME(dev, name) ((dev)->backend_domname = (name), 0)
#else
#define GOXL_BACKEND_DOMNAME(dev) ((char *)0)
#define GOXL_SET_BACKEND_DOMNAME(dev, name) ((name) ? (free(name), -1) : 0)
#endif
static inline char *goxl_disk_backend_domname(libxl_device_disk *d) { return GOXL_BACKEND_DOMNAME(d); }
static inline int goxl_disk_set_backend_domname(libxl_device_disk *d, char *name) { return GOXL_SET_BACKEND_DOMNAME(d, name); }
static inline int goxl_nic_set_backend_domname(libxl_device_nic *n, char *name) { return GOXL_SET_BACKEND_DOMNAME(n, name); }

/* libxl_dominfo.domain_type: 4.7; not in the 4.2 API (0: unknown). */
static inline libxl_domain_type goxl_dominfo_type(const libxl_dominfo *info)
{
#if GOXL_LIBXL_API_42
    (void)info;
    return (libxl_domain_type)0;
#else
    return info->domain_type;
#endif
}

/* libxl_userdata_unlink: 4.5 (LIBXL_HAVE_USERDATA_UNLINK). */
static inline int goxl_userdata_unlink(libxl_ctx *ctx, uint32_t domid,
                                       const char *key)
{
#ifdef LIBXL_HAVE_USERDATA_UNLINK
    return libxl_userdata_unlink(ctx, domid, key);
#else
    (void)ctx; (void)domid; (void)key;
    return GOXL_ERROR_NOT_IN_API;
#endif
}

/* libxl_domain_soft_reset: 4.6 (LIBXL_HAVE_SOFT_RESET). */
static inline int goxl_domain_soft_reset(libxl_ctx *ctx, libxl_domain_config *d,
        uint32_t domid, const libxl_asyncop_how *how)
{
#ifdef LIBXL_HAVE_SOFT_RESET
    return libxl_domain_soft_reset(ctx, d, domid, how, NULL);
#else
    (void)ctx; (void)d; (void)domid; (void)how;
    return GOXL_ERROR_NOT_IN_API;
#endif
}

/* --- host and vcpu calls (host_cgo.go, vcpu_cgo.go) ------------------- */

/* libxl_version_info.build_id: LIBXL_HAVE_BUILD_ID (4.7); NULL without. */
static inline const char *goxl_version_build_id(const libxl_version_info *vi)
{
#ifdef LIBXL_HAVE_BUILD_ID
    return vi->build_id;
#else
    (void)vi;
    return NULL;
#endif
}

/* libxl_physinfo capability flags and claims. A libxl without the field
 * reports false / 0, as its own xl info prints nothing for them (4.2's
 * xl lists only hvm and hvm_directio in virt_caps). */
static inline bool goxl_physinfo_cap_pv(const libxl_physinfo *p)
{
#ifdef LIBXL_HAVE_PHYSINFO_CAP_PV
    return p->cap_pv;
#else
    (void)p;
    return false;
#endif
}

static inline bool goxl_physinfo_cap_hap(const libxl_physinfo *p)
{
#ifdef LIBXL_HAVE_PHYSINFO_CAP_HAP_SHADOW
    return p->cap_hap;
#else
    (void)p;
    return false;
#endif
}

static inline bool goxl_physinfo_cap_shadow(const libxl_physinfo *p)
{
#ifdef LIBXL_HAVE_PHYSINFO_CAP_HAP_SHADOW
    return p->cap_shadow;
#else
    (void)p;
    return false;
#endif
}

static inline bool goxl_physinfo_cap_iommu_hap_pt_share(const libxl_physinfo *p)
{
#ifdef LIBXL_HAVE_PHYSINFO_CAP_IOMMU_HAP_PT_SHARE
    return p->cap_iommu_hap_pt_share;
#else
    (void)p;
    return false;
#endif
}

static inline bool goxl_physinfo_cap_vmtrace(const libxl_physinfo *p)
{
#ifdef LIBXL_HAVE_PHYSINFO_CAP_VMTRACE
    return p->cap_vmtrace;
#else
    (void)p;
    return false;
#endif
}

static inline bool goxl_physinfo_cap_vpmu(const libxl_physinfo *p)
{
#ifdef LIBXL_HAVE_PHYSINFO_CAP_VPMU
    return p->cap_vpmu;
#else
    (void)p;
    return false;
#endif
}

static inline bool goxl_physinfo_cap_gnttab_v1(const libxl_physinfo *p)
{
#ifdef LIBXL_HAVE_PHYSINFO_CAP_GNTTAB
    return p->cap_gnttab_v1;
#else
    (void)p;
    return false;
#endif
}

static inline bool goxl_physinfo_cap_gnttab_v2(const libxl_physinfo *p)
{
#ifdef LIBXL_HAVE_PHYSINFO_CAP_GNTTAB
    return p->cap_gnttab_v2;
#else
    (void)p;
    return false;
#endif
}

static inline uint64_t goxl_physinfo_outstanding_pages(const libxl_physinfo *p)
{
#ifdef LIBXL_HAVE_PHYSINFO_OUTSTANDING_PAGES
    return p->outstanding_pages;
#else
    (void)p;
    return 0;
#endif
}

/* libxl_domain_info: ERROR_DOMAIN_NOTFOUND for a domid with no domain
 * from LIBXL_HAVE_ERROR_DOMAIN_NOTFOUND (4.7); 4.2's returns ERROR_INVAL,
 * and only then (xc_domain_getinfolist found no such domain). Measured on
 * real 4.2.1: without this, a destroyed domain never read as gone. */
static inline int goxl_domain_info(libxl_ctx *ctx, libxl_dominfo *info, uint32_t domid)
{
    int rc = libxl_domain_info(ctx, info, domid);
#ifndef LIBXL_HAVE_ERROR_DOMAIN_NOTFOUND
    if (rc == ERROR_INVAL)
        rc = -21; /* ERROR_DOMAIN_NOTFOUND, ErrDomainNotFound */
#endif
    return rc;
}

/* libxl_set_memory_target: a 64-bit target from LIBXL_HAVE_MEMKB_64BITS
 * (4.8); 4.2 takes an int32_t, so a larger target is not expressible. */
static inline int goxl_set_memory_target(libxl_ctx *ctx, uint32_t domid,
        int64_t target_memkb, int relative, int enforce)
{
#ifdef LIBXL_HAVE_MEMKB_64BITS
    return libxl_set_memory_target(ctx, domid, target_memkb, relative, enforce);
#else
    if (target_memkb > INT32_MAX || target_memkb < INT32_MIN)
        return GOXL_ERROR_NOT_IN_API;
    /* 4.2.x returns xc_domain_getinfolist's count, 1, on success (its xl
     * ignores the value): measured on real 4.2.1, where mem-set failed
     * with "hook error 1" until this. */
    int rc = libxl_set_memory_target(ctx, domid, (int32_t)target_memkb,
                                     relative, enforce);
    return rc > 0 ? 0 : rc;
#endif
}

/* libxl_send_trigger and libxl_set_vcpuonline take an ao_how from 4.13;
 * before, they are synchronous and immediate (one domctl, one xenstore
 * transaction), so the completion is reported at once. */
static inline int goxl_send_trigger(libxl_ctx *ctx, uint32_t domid,
        libxl_trigger trigger, uint32_t vcpuid, const libxl_asyncop_how *how)
{
#if defined(LIBXL_API_VERSION) && LIBXL_API_VERSION < 0x041300
    return goxl_complete_now(ctx, libxl_send_trigger(ctx, domid, trigger, vcpuid), how);
#else
    return libxl_send_trigger(ctx, domid, trigger, vcpuid, how);
#endif
}

static inline int goxl_set_vcpuonline(libxl_ctx *ctx, uint32_t domid,
        libxl_bitmap *cpumap, const libxl_asyncop_how *how)
{
#if defined(LIBXL_API_VERSION) && LIBXL_API_VERSION < 0x041300
    return goxl_complete_now(ctx, libxl_set_vcpuonline(ctx, domid, cpumap), how);
#else
    return libxl_set_vcpuonline(ctx, domid, cpumap, how);
#endif
}

/* libxl_vcpuinfo.cpumap_soft: LIBXL_HAVE_VCPUINFO_SOFT_AFFINITY (4.5);
 * NULL without (no soft affinity at all). */
static inline libxl_bitmap *goxl_vcpuinfo_cpumap_soft(libxl_vcpuinfo *v)
{
#ifdef LIBXL_HAVE_VCPUINFO_SOFT_AFFINITY
    return &v->cpumap_soft;
#else
    (void)v;
    return NULL;
#endif
}

/* --- nic fields and actions the 4.2 IDL lacks (config_cgo.go) --------- */

/* libxl_device_nic.gatewaydev: 4.3's IDL, with no LIBXL_HAVE_* macro, so
 * selected by the 4.2 API version. A gateway there is refused (-1). The
 * string becomes libxl's. */
static inline int goxl_nic_set_gatewaydev(libxl_device_nic *n, char *dev)
{
#if GOXL_LIBXL_API_42
    (void)n;
    if (!dev)
        return 0;
    free(dev);
    return -1;
#else
    n->gatewaydev = dev;
    return 0;
#endif
}

/* libxl_device_nic.trusted: LIBXL_HAVE_NIC_TRUSTED (4.14). */
static inline int goxl_nic_set_trusted(libxl_device_nic *n, int trusted)
{
#ifdef LIBXL_HAVE_NIC_TRUSTED
    libxl_defbool_set(&n->trusted, trusted != 0);
    return 0;
#else
    (void)n; (void)trusted;
    return -1;
#endif
}

/* libxl_domain_config.on_soft_reset: LIBXL_HAVE_SOFT_RESET (4.6). Without
 * soft reset a guest cannot ask for one, so the default (soft-reset, or
 * unset) means nothing there; any other action is refused (-1). */
static inline int goxl_config_set_on_soft_reset(libxl_domain_config *d,
        libxl_action_on_shutdown action)
{
#ifdef LIBXL_HAVE_SOFT_RESET
    d->on_soft_reset = action;
    return 0;
#else
    (void)d;
    return (action == 0 || action == GOXL_ACTION_ON_SHUTDOWN_SOFT_RESET) ? 0 : -1;
#endif
}

#endif
