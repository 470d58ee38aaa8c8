//go:build libxlmodel

/* modelstubs_host.c: weak definitions of the libxl functions that
 * host_cgo.go and vcpu_cgo.go call, so that the contract-model build
 * (-tags libxlmodel) links; see modelstubs.c. They fail with ERROR_NI or
 * return "nothing". */
#include <stdlib.h>
#include <string.h>
#include <libxl.h>
#include <libxl_utils.h>

#define WEAK __attribute__((weak))

WEAK void libxl_physinfo_init(libxl_physinfo *p) { memset(p, 0, sizeof *p); }
WEAK void libxl_physinfo_dispose(libxl_physinfo *p) { memset(p, 0, sizeof *p); }
WEAK int libxl_get_physinfo(libxl_ctx *ctx, libxl_physinfo *p) { return ERROR_NI; }
WEAK int libxl_get_scheduler(libxl_ctx *ctx) { return ERROR_NI; }
WEAK const char *libxl_scheduler_to_string(libxl_scheduler p) { return NULL; }
WEAK int libxl_set_memory_target(libxl_ctx *ctx, uint32_t domid, int64_t target_memkb, int relative, int enforce) { return ERROR_NI; }
WEAK uint32_t libxl_vm_get_start_time(libxl_ctx *ctx, uint32_t domid) { return (uint32_t)-1; }
WEAK int libxl_send_trigger(libxl_ctx *ctx, uint32_t domid, libxl_trigger trigger, uint32_t vcpuid, const libxl_asyncop_how *ao_how) { return ERROR_NI; }
WEAK int libxl_domain_resume(libxl_ctx *ctx, uint32_t domid, int suspend_cancel, const libxl_asyncop_how *ao_how) { return ERROR_NI; }
WEAK libxl_vcpuinfo *libxl_list_vcpu(libxl_ctx *ctx, uint32_t domid, int *nb_vcpu, int *nr_cpus_out) { return NULL; }
WEAK void libxl_vcpuinfo_list_free(libxl_vcpuinfo *list, int n) { free(list); }
WEAK int libxl_set_vcpuonline(libxl_ctx *ctx, uint32_t domid, libxl_bitmap *cpumap, const libxl_asyncop_how *ao_how) { return ERROR_NI; }
WEAK void libxl_bitmap_init(libxl_bitmap *map) { memset(map, 0, sizeof *map); }
WEAK void libxl_bitmap_dispose(libxl_bitmap *map) { free(map->map); memset(map, 0, sizeof *map); }
WEAK int libxl_bitmap_alloc(libxl_ctx *ctx, libxl_bitmap *m, int n_bits) { m->size = (n_bits + 7) / 8; m->map = calloc(m->size ? m->size : 1, 1); return m->map ? 0 : ERROR_NOMEM; }
WEAK int libxl_bitmap_test(const libxl_bitmap *m, int bit) { return bit >= 0 && (unsigned)bit < m->size * 8 && (m->map[bit / 8] & (1 << (bit & 7))); }
WEAK void libxl_bitmap_set(libxl_bitmap *m, int bit) { if (bit >= 0 && (unsigned)bit < m->size * 8) m->map[bit / 8] |= 1 << (bit & 7); }

/* Used by config_cgo.go (the nic of a vif spec); missing from the model
 * build's stubs, which broke linking every -tags libxlmodel test binary
 * that links package libxl. Weak: another weak definition may coexist. */
WEAK void libxl_device_nic_dispose(libxl_device_nic *p) { memset(p, 0, sizeof *p); }
