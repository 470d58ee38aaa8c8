/* helpers.h: small C helpers for package libxl. They exist where cgo
 * cannot express a call directly (function pointers, unions, static
 * tables libxl keeps a pointer to). None of them calls into Go. */
#ifndef GOXL_LIBXL_HELPERS_H
#define GOXL_LIBXL_HELPERS_H

#include <stdint.h>
#include <stdlib.h>
#include <libxl.h>
#include <libxl_event.h>
#include "compat42.h"

/* libxl_ctx_alloc and libxl_ctx_free, exclusive with every fork of the
 * process (forkguard.c says why). */
int goxl_ctx_alloc(libxl_ctx **pctx, int version, unsigned flags,
                   xentoollog_logger *lg);
int goxl_ctx_free(libxl_ctx *ctx);

/* libxl keeps this pointer for the ctx's life: static storage. */
static const libxl_childproc_hooks goxl_childproc_mainloop = {
    .chldowner = libxl_sigchld_owner_mainloop,
};

static inline void goxl_setmode_mainloop(libxl_ctx *ctx)
{
    libxl_childproc_setmode(ctx, &goxl_childproc_mainloop, NULL);
}

/* An ao_how in C memory, naming the bridge's completion trampoline. */
static inline libxl_asyncop_how *goxl_new_ao_how(void *callback,
                                                 uintptr_t token)
{
    libxl_asyncop_how *how = calloc(1, sizeof *how);
    if (!how)
        return NULL;
    how->callback = (void (*)(libxl_ctx *, int, void *))callback;
    how->u.for_callback = (void *)token;
    return how;
}

static inline uint8_t goxl_event_shutdown_reason(const libxl_event *ev)
{
    return ev->u.domain_shutdown.shutdown_reason;
}

static inline const char *goxl_event_disk_eject_vdev(const libxl_event *ev)
{
    return ev->u.disk_eject.vdev;
}

static inline int goxl_event_operation_rc(const libxl_event *ev)
{
    return ev->u.operation_complete.rc;
}

/* goxl's xen-patches/ series for 4.2.0/4.2.1 exports this marker. A weak
 * reference links against any libxl and is NULL where it is absent. */
extern int libxl_goxl_osevent_fix(void) __attribute__((weak));

static inline int goxl_libxl_has_osevent_fix(void)
{
    return libxl_goxl_osevent_fix ? libxl_goxl_osevent_fix() : 0;
}

#endif
