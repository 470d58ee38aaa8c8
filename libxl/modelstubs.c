//go:build libxlmodel

/* modelstubs.c: weak definitions of the libxl and libxlutil functions that
 * package libxl's lifecycle, config and watch files call, so that the
 * contract-model build (-tags libxlmodel, which links internal/libxlmodel
 * instead of libxenlight and libxlutil) links. The model may define any of
 * them strongly; those definitions win. Operations fail with ERROR_NI;
 * init/dispose functions behave like libxl's (zero the struct, free what
 * they own), so that code paths that merely set up and tear down configs
 * stay memory-safe. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <libxl.h>
#include <libxl_utils.h>
#include <libxlutil.h>

#define WEAK __attribute__((weak))

/* --- config objects --- */
WEAK void libxl_domain_config_init(libxl_domain_config *d) { memset(d, 0, sizeof *d); }
WEAK void libxl_domain_config_dispose(libxl_domain_config *d)
{
    free(d->c_info.name);
    free(d->b_info.kernel);
    free(d->b_info.ramdisk);
    free(d->b_info.cmdline);
    free(d->b_info.avail_vcpus.map);
    free(d->disks);
    free(d->nics);
    memset(d, 0, sizeof *d);
}
WEAK void libxl_domain_build_info_init_type(libxl_domain_build_info *p, libxl_domain_type type) { p->type = type; }
WEAK void libxl_device_disk_init(libxl_device_disk *p) { memset(p, 0, sizeof *p); }
WEAK void libxl_device_disk_dispose(libxl_device_disk *p) { memset(p, 0, sizeof *p); }
WEAK void libxl_device_nic_init(libxl_device_nic *p) { memset(p, 0, sizeof *p); }
WEAK void libxl_device_nic_dispose(libxl_device_nic *p)
{
    free(p->backend_domname);
    free(p->model);
    free(p->ip);
    free(p->bridge);
    free(p->ifname);
    free(p->script);
    free(p->gatewaydev);
    memset(p, 0, sizeof *p);
}
WEAK void libxl_domain_restore_params_init(libxl_domain_restore_params *p) { memset(p, 0, sizeof *p); }
WEAK void libxl_domain_restore_params_dispose(libxl_domain_restore_params *p) { memset(p, 0, sizeof *p); }
WEAK int libxl_domain_config_from_json(libxl_ctx *ctx, libxl_domain_config *p, const char *s) { return ERROR_NI; }
WEAK char *libxl_domain_config_to_json(libxl_ctx *ctx, libxl_domain_config *p) { return NULL; }

/* --- queries --- */
WEAK void libxl_dominfo_init(libxl_dominfo *p) { memset(p, 0, sizeof *p); }
WEAK void libxl_dominfo_dispose(libxl_dominfo *p) { memset(p, 0, sizeof *p); }
WEAK libxl_dominfo *libxl_list_domain(libxl_ctx *ctx, int *nb_domain_out) { *nb_domain_out = 0; return NULL; }
WEAK void libxl_dominfo_list_free(libxl_dominfo *list, int nb_domain) { free(list); }
WEAK int libxl_domain_info(libxl_ctx *ctx, libxl_dominfo *info_r, uint32_t domid) { return ERROR_DOMAIN_NOTFOUND; }
WEAK char *libxl_domid_to_name(libxl_ctx *ctx, uint32_t domid) { return NULL; }
WEAK int libxl_name_to_domid(libxl_ctx *ctx, const char *name, uint32_t *domid) { return ERROR_INVAL; }
WEAK int libxl_console_get_tty(libxl_ctx *ctx, uint32_t domid, int cons_num, libxl_console_type type, char **path) { return ERROR_NI; }
WEAK int libxl_primary_console_get_tty(libxl_ctx *ctx, uint32_t domid_vm, char **path) { return ERROR_NI; }

/* --- asynchronous operations --- */
WEAK int libxl_domain_create_new(libxl_ctx *ctx, libxl_domain_config *d_config, uint32_t *domid,
                                 const libxl_asyncop_how *ao_how, const libxl_asyncprogress_how *aop_console_how) { return ERROR_NI; }
WEAK int libxl_domain_create_restore(libxl_ctx *ctx, libxl_domain_config *d_config, uint32_t *domid, int restore_fd,
                                     int send_back_fd, const libxl_domain_restore_params *params,
                                     const libxl_asyncop_how *ao_how, const libxl_asyncprogress_how *aop_console_how) { return ERROR_NI; }
WEAK int libxl_domain_destroy(libxl_ctx *ctx, uint32_t domid, const libxl_asyncop_how *ao_how) { return ERROR_NI; }
WEAK int libxl_domain_shutdown(libxl_ctx *ctx, uint32_t domid, const libxl_asyncop_how *ao_how) { return ERROR_NI; }
WEAK int libxl_domain_reboot(libxl_ctx *ctx, uint32_t domid, const libxl_asyncop_how *ao_how) { return ERROR_NI; }
WEAK int libxl_domain_pause(libxl_ctx *ctx, uint32_t domid, const libxl_asyncop_how *ao_how) { return ERROR_NI; }
WEAK int libxl_domain_unpause(libxl_ctx *ctx, uint32_t domid, const libxl_asyncop_how *ao_how) { return ERROR_NI; }
WEAK int libxl_domain_suspend(libxl_ctx *ctx, uint32_t domid, int fd, int flags, const libxl_asyncop_how *ao_how) { return ERROR_NI; }
WEAK int libxl_domain_resume(libxl_ctx *ctx, uint32_t domid, int suspend_cancel, const libxl_asyncop_how *ao_how) { return ERROR_NI; }
WEAK int libxl_retrieve_domain_configuration(libxl_ctx *ctx, uint32_t domid, libxl_domain_config *d_config,
                                             const libxl_asyncop_how *ao_how) { return ERROR_NI; }

/* --- event generators --- */
WEAK int libxl_evenable_domain_death(libxl_ctx *ctx, uint32_t domid, libxl_ev_user user, libxl_evgen_domain_death **evgen_out) { return ERROR_NI; }
WEAK void libxl_evdisable_domain_death(libxl_ctx *ctx, libxl_evgen_domain_death *evgen) { }
WEAK int libxl_evenable_disk_eject(libxl_ctx *ctx, uint32_t domid, const char *vdev, libxl_ev_user user, libxl_evgen_disk_eject **evgen_out) { return ERROR_NI; }
WEAK void libxl_evdisable_disk_eject(libxl_ctx *ctx, libxl_evgen_disk_eject *evgen) { }

/* --- what the static libxlutil.a needs from libxenlight --- */
/* The model build links xl's config parser statically (-l:libxlutil.a), so
 * that config parsing is tested for real without Xen; these are the two
 * libxenlight symbols its objects reference. */
WEAK void libxl_defbool_set(libxl_defbool *db, bool b) { db->val = b ? 1 : -1; }
WEAK int libxl_rdm_reserve_policy_from_string(const char *s, libxl_rdm_reserve_policy *e) { return ERROR_INVAL; }
