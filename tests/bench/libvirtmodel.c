//go:build libvirtbench && libxlmodel

/* libvirt's default event loop driving the contract model's libxl the
 * way libvirt's libxl driver drives libxl (libxl_domain.c: the
 * libxlFD*EventHook functions): the ctx's fd_register hook adds a libvirt
 * handle whose callback calls libxl_osevent_occurred_fd, fd_modify becomes
 * virEventUpdateHandle, fd_deregister virEventRemoveHandle. The work per
 * event is the model's occurred_fd (re-poll, checks) and its one fd_modify
 * hook per live delivery, as on goxl's path: what differs is the loop.
 * Timeouts are not used by this workload and are refused. */
#include <poll.h>
#include <stdlib.h>

#include <libxl.h>
#include <libvirt/libvirt.h>

#include "libvirt.h"

typedef struct {
    libxl_ctx *ctx;
    void *for_libxl;
    int watch;
} lvm_fd;

static libxl_ctx *lvm_ctx;
static uint64_t lvm_count, lvm_modifies;

static int lvm_events_to_libvirt(short events)
{
    int e = 0;
    if (events & POLLIN)
        e |= VIR_EVENT_HANDLE_READABLE;
    if (events & POLLOUT)
        e |= VIR_EVENT_HANDLE_WRITABLE;
    return e;
}

static short lvm_events_to_poll(int events)
{
    short e = 0;
    if (events & VIR_EVENT_HANDLE_READABLE)
        e |= POLLIN;
    if (events & VIR_EVENT_HANDLE_WRITABLE)
        e |= POLLOUT;
    if (events & VIR_EVENT_HANDLE_ERROR)
        e |= POLLERR;
    if (events & VIR_EVENT_HANDLE_HANGUP)
        e |= POLLHUP;
    return e;
}

/* libxlFDEventCallback */
static void lvm_fd_cb(int watch, int fd, int events, void *opaque)
{
    lvm_fd *f = opaque;
    (void)watch;
    lvm_count++;
    libxl_osevent_occurred_fd(f->ctx, f->for_libxl, fd, 0, lvm_events_to_poll(events));
}

static int lvm_fd_register(void *user, int fd, void **for_app_out, short events, void *for_libxl)
{
    lvm_fd *f = calloc(1, sizeof *f);
    (void)user;
    if (!f)
        return ERROR_NOMEM;
    f->ctx = lvm_ctx;
    f->for_libxl = for_libxl;
    f->watch = virEventAddHandle(fd, lvm_events_to_libvirt(events), lvm_fd_cb, f, NULL);
    if (f->watch < 0) {
        free(f);
        return ERROR_OSEVENT_REG_FAIL;
    }
    *for_app_out = f;
    return 0;
}

static int lvm_fd_modify(void *user, int fd, void **for_app, short events)
{
    lvm_fd *f = *for_app;
    (void)user;
    (void)fd;
    lvm_modifies++;
    virEventUpdateHandle(f->watch, lvm_events_to_libvirt(events));
    return 0;
}

static void lvm_fd_deregister(void *user, int fd, void *for_app)
{
    lvm_fd *f = for_app;
    (void)user;
    (void)fd;
    /* Registered without a free function: f is ours. libvirt never calls
     * a removed handle's callback again. */
    virEventRemoveHandle(f->watch);
    free(f);
}

static int lvm_timeout_register(void *user, void **for_app_out, struct timeval abs, void *for_libxl)
{
    (void)user;
    (void)for_app_out;
    (void)abs;
    (void)for_libxl;
    return ERROR_OSEVENT_REG_FAIL;
}

static int lvm_timeout_modify(void *user, void **for_app, struct timeval abs)
{
    (void)user;
    (void)for_app;
    (void)abs;
    return ERROR_OSEVENT_REG_FAIL;
}

static void lvm_timeout_deregister(void *user, void *for_app)
{
    (void)user;
    (void)for_app;
}

static const libxl_osevent_hooks lvm_hooks = {
    .fd_register = lvm_fd_register,
    .fd_modify = lvm_fd_modify,
    .fd_deregister = lvm_fd_deregister,
    .timeout_register = lvm_timeout_register,
    .timeout_modify = lvm_timeout_modify,
    .timeout_deregister = lvm_timeout_deregister,
};

libxl_ctx *bench_libvirt_model_ctx_new(void)
{
    libxl_ctx *ctx = NULL;
    if (bench_libvirt_init() < 0)
        return NULL;
    if (libxl_ctx_alloc(&ctx, LIBXL_VERSION, 0, NULL))
        return NULL;
    libxl_osevent_register_hooks(ctx, &lvm_hooks, NULL);
    lvm_ctx = ctx;
    return ctx;
}

int64_t bench_libvirt_model_run(uint64_t warmup, uint64_t target, uint64_t *delivered, uint64_t *modifies, int64_t *cpu)
{
    int64_t t0 = 0, c0 = 0;
    for (int timed = 0; timed < 2; timed++) {
        uint64_t want = timed ? target : warmup;
        lvm_count = 0;
        lvm_modifies = 0;
        if (timed) {
            t0 = bench_libvirt_mono_ns();
            c0 = bench_libvirt_cpu_ns();
        }
        while (lvm_count < want)
            if (virEventRunDefaultImpl() < 0)
                return -3;
    }
    *cpu = bench_libvirt_cpu_ns() - c0;
    *delivered = lvm_count;
    *modifies = lvm_modifies;
    return bench_libvirt_mono_ns() - t0;
}

void bench_libvirt_model_ctx_free(libxl_ctx *ctx)
{
    libxl_ctx_free(ctx);
    lvm_ctx = NULL;
    bench_libvirt_flush();
}
