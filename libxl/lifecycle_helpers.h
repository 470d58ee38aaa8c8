/* lifecycle_helpers.h: C helpers for the domain lifecycle, config and
 * watch files of package libxl. They exist where cgo cannot express a call
 * directly (unions, arrays libxl later frees with free(), FILE* streams)
 * or where an object must live in C memory because libxl writes to it
 * after the initiating call returns. None of them calls into Go. */
#ifndef GOXL_LIFECYCLE_HELPERS_H
#define GOXL_LIFECYCLE_HELPERS_H


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxl.h>
#include <libxl_utils.h>
#include <libxlutil.h>
#include "compat42.h"

/* --- domain configs ---------------------------------------------------- */

/* A libxl_domain_config in C memory, initialised. libxl keeps using it
 * until an async create completes: free it only after runAO returns. */
static inline libxl_domain_config *goxl_config_new(void)
{
    libxl_domain_config *d = calloc(1, sizeof *d);
    if (d)
        libxl_domain_config_init(d);
    return d;
}

static inline void goxl_config_free(libxl_domain_config *d)
{
    if (!d)
        return;
    libxl_domain_config_dispose(d);
    free(d);
}

/* Sets the domain type in c_info and initialises b_info's type union. */
static inline void goxl_config_set_type(libxl_domain_config *d,
                                        libxl_domain_type type)
{
    d->c_info.type = type;
    libxl_domain_build_info_init_type(&d->b_info, type);
}

/* Arrays that libxl_domain_config_dispose frees with free(). */
static inline int goxl_config_alloc_devices(libxl_domain_config *d,
                                            int ndisks, int nnics)
{
    int i;
    if (ndisks > 0) {
        d->disks = calloc((size_t)ndisks, sizeof *d->disks);
        if (!d->disks)
            return -1;
        d->num_disks = ndisks;
        for (i = 0; i < ndisks; i++)
            libxl_device_disk_init(&d->disks[i]);
    }
    if (nnics > 0) {
        d->nics = calloc((size_t)nnics, sizeof *d->nics);
        if (!d->nics)
            return -1;
        d->num_nics = nnics;
        for (i = 0; i < nnics; i++) {
            libxl_device_nic_init(&d->nics[i]);
            d->nics[i].devid = i;
        }
    }
    return 0;
}

static inline libxl_device_disk *goxl_config_disk(libxl_domain_config *d, int i)
{
    return &d->disks[i];
}

static inline libxl_device_nic *goxl_config_nic(libxl_domain_config *d, int i)
{
    return &d->nics[i];
}

/* Fills b_info.avail_vcpus without a ctx (libxl_bitmap_alloc wants one):
 * a malloc'd map of max bits, the first online set. libxl frees it. */
static inline int goxl_config_set_vcpus(libxl_domain_config *d, int max,
                                        int online)
{
    libxl_bitmap *bm = &d->b_info.avail_vcpus;
    int i;
    d->b_info.max_vcpus = max;
    bm->size = (uint32_t)((max + 7) / 8);
    bm->map = calloc(bm->size ? bm->size : 1, 1);
    if (!bm->map)
        return -1;
    for (i = 0; i < online && i < max; i++)
        bm->map[i / 8] |= (uint8_t)(1u << (i % 8));
    return 0;
}

/* --- async outputs ------------------------------------------------------- */

/* The domid that create and restore write later, from the completion
 * path: C memory, freed after runAO returns. */
static inline uint32_t *goxl_domid_new(void)
{
    uint32_t *p = malloc(sizeof *p);
    if (p)
        *p = INVALID_DOMID;
    return p;
}

/* Restore parameters for a stream that libxl_domain_suspend wrote (v2). */
static inline libxl_domain_restore_params *goxl_restore_params_new(void)
{
    libxl_domain_restore_params *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    libxl_domain_restore_params_init(p);
#ifdef LIBXL_HAVE_DOMAIN_CREATE_RESTORE_PARAMS
    p->checkpointed_stream = 0; /* LIBXL_CHECKPOINTED_STREAM_NONE */
    p->stream_version = 2;      /* LIBXL_HAVE_SRM_V2 */
#endif
    return p;
}

static inline void goxl_restore_params_free(libxl_domain_restore_params *p)
{
    if (!p)
        return;
    libxl_domain_restore_params_dispose(p);
    free(p);
}

static inline int goxl_domain_create_restore(libxl_ctx *ctx,
        libxl_domain_config *d, uint32_t *domid, int fd,
        const libxl_domain_restore_params *params,
        const libxl_asyncop_how *how)
{
#if !GOXL_LIBXL_API_42
    return libxl_domain_create_restore(ctx, d, domid, fd, -1, params, how, NULL);
#else /* the 4.2 API: no parameters, no send-back fd */
    (void)params;
    return libxl_domain_create_restore(ctx, d, domid, fd, how, NULL);
#endif
}

/* --- dominfo --------------------------------------------------------------- */

static inline libxl_dominfo *goxl_dominfo_at(libxl_dominfo *list, int i)
{
    return &list[i];
}

/* --- libxlutil with its report stream captured ----------------------------- */

/* libxlutil prints parse errors and warnings, with file names and line
 * numbers, to a FILE*. goxl gives it a memory stream and reads it back. */
typedef struct {
    FILE *report;
    char *buf;
    size_t len;
    size_t seen;
    XLU_Config *cfg;
} goxl_xlu;

static inline goxl_xlu *goxl_xlu_new(const char *filename)
{
    goxl_xlu *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->report = open_memstream(&x->buf, &x->len);
    if (!x->report) {
        free(x);
        return NULL;
    }
    x->cfg = xlu_cfg_init(x->report, filename);
    if (!x->cfg) {
        fclose(x->report);
        free(x->buf);
        free(x);
        return NULL;
    }
    return x;
}

/* Returns what libxlutil reported since the last call (malloc'd). */
static inline char *goxl_xlu_take_report(goxl_xlu *x)
{
    char *out;
    fflush(x->report);
    if (!x->buf || x->len <= x->seen)
        return NULL;
    out = strndup(x->buf + x->seen, x->len - x->seen);
    x->seen = x->len;
    return out;
}

static inline void goxl_xlu_free(goxl_xlu *x)
{
    if (!x)
        return;
    xlu_cfg_destroy(x->cfg); /* before the stream it reports to */
    fclose(x->report);
    free(x->buf);
    free(x);
}

static inline int goxl_xlu_disk_parse(goxl_xlu *x, const char *spec,
                                      libxl_device_disk *disk)
{
    const char *specs[1] = {spec};
    return xlu_disk_parse(x->cfg, 1, specs, disk);
}

#endif
