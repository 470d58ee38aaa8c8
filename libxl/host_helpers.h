/* host_helpers.h: C helpers for host_cgo.go and vcpu_cgo.go (array
 * indexing and bitmaps in C memory, which libxl reads after the initiating
 * call of an async operation returns). None of them calls into Go. */
#ifndef GOXL_HOST_HELPERS_H
#define GOXL_HOST_HELPERS_H

#include <stdlib.h>
#include <libxl.h>
#include <libxl_utils.h>
#include "compat42.h"

static inline libxl_vcpuinfo *goxl_vcpuinfo_at(libxl_vcpuinfo *list, int i)
{
    return &list[i];
}

static inline uint32_t goxl_hwcap_at(libxl_physinfo *p, int i)
{
    return p->hw_cap[i];
}

/* A bitmap with the first count bits set, in C memory; NULL on failure.
 * Free it with goxl_bitmap_free after the operation completed. */
static inline libxl_bitmap *goxl_bitmap_first(libxl_ctx *ctx, int nbits, int count)
{
    int i;
    libxl_bitmap *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    libxl_bitmap_init(m);
    if (libxl_bitmap_alloc(ctx, m, nbits)) {
        free(m);
        return NULL;
    }
    for (i = 0; i < count && i < nbits; i++)
        libxl_bitmap_set(m, i);
    return m;
}

static inline void goxl_bitmap_free(libxl_bitmap *m)
{
    if (!m)
        return;
    libxl_bitmap_dispose(m);
    free(m);
}
#endif
