//go:build libxlmodel

/*
 * bench.c: a lean, benchmark-only API over the model (tests/bench).
 *
 * It stands in for "libxl doing some fd and timeout work" without the
 * workload driver's threads: register N fds (or timeouts) with one ctx
 * through the ctx's osevent hooks, count what libxl is told, and, on each
 * live fd delivery, call one no-op hook back into the application
 * (fd_modify with unchanged events), so that every delivered event makes
 * one Go->C crossing (occurred_fd) and one C->Go crossing (the hook).
 *
 * Everything runs inside the model's normal checks (records, histories,
 * hook frames, the re-poll of libxl_osevent_occurred_fd), so the costs
 * measured through it include what the model charges as "libxl".
 *
 * For loops that are not goxl (the benchmark floors) it also provides a
 * ctx whose osevent hooks are a static C table here: fd_register hands
 * out the registration's index, fd_modify calls libxlmodelBenchNoop (a Go
 * export in bench.go), timeouts are refused.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "model.h"
#include "bench.h"
#include "_cgo_export.h"

struct libxlmodel_bench {
    model_ctx *ctx;
    int fd_hook; /* LIBXLMODEL_BENCH_FD_* */
    /* fds */
    model_reg **fd_regs;
    int n_fds;
    /* timeouts */
    model_reg **to_regs; /* slot i: the live record, or NULL */
    int n_to;
    int rearm_min_ms, rearm_max_ms; /* 0: one-shot */
    int stop_rearm;                 /* atomic */
    uint64_t rng;
    uint64_t owed;    /* cancelled timeouts whose fire-now is not delivered yet (atomic) */
    int64_t *late_ns; /* ring of lateness samples */
    int late_cap;
    uint64_t late_n; /* samples taken (atomic) */
    /* counters */
    uint64_t fd_events;  /* live fd deliveries seen by the owner (atomic) */
    uint64_t to_fired;   /* timeouts fired (atomic) */
    uint64_t target;     /* fd_events value that signals done_fd */
    int done_fd;         /* eventfd written once target is reached */
};

typedef struct {
    libxlmodel_bench *b;
    int slot;
    struct timeval abs;
    int cancelled; /* by libxlmodel_bench_remove_timeouts: its fire-now is owed */
} bench_to_arg;

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Locks a live ctx for a bench call, as an API entry would. */
static model_ctx *bench_enter(libxl_ctx *p, const char *api) { return model_enter_locked(p, api); }

static void bench_leave(model_ctx *c, model_egc *egc)
{
    model_ctx_unlock(c);
    model_egc_cleanup(egc);
}

/* ---- fds ---- */

static void bench_fd_ready(model_egc *egc, model_reg *r, short revents)
{
    libxlmodel_bench *b = r->arg;
    uint64_t n;
    (void)revents;
    if (b->fd_hook == LIBXLMODEL_BENCH_FD_NOOP_HOOK)
        model_fd_modify(egc, r, r->events); /* one C->Go crossing */
    n = __atomic_add_fetch(&b->fd_events, 1, __ATOMIC_RELAXED);
    if (n == __atomic_load_n(&b->target, __ATOMIC_RELAXED) && b->done_fd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(b->done_fd, &one, sizeof one);
        (void)w;
    }
}

static const model_reg_ops bench_fd_ops = {.fd_ready = bench_fd_ready};

libxlmodel_bench *libxlmodel_bench_new(libxl_ctx *p, int fd_hook)
{
    libxlmodel_bench *b;
    model_ctx *c = model_ctx_pin(p, "libxlmodel_bench_new", LIBXLMODEL_V_API_MISUSE);
    if (!c)
        return NULL;
    model_ctx_unpin(c);
    b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->ctx = c;
    b->fd_hook = fd_hook;
    b->done_fd = -1;
    b->rng = 0x9e3779b97f4a7c15ull;
    return b;
}

int libxlmodel_bench_add_fds(libxlmodel_bench *b, const int *fds, int n, uintptr_t *for_libxl_out)
{
    model_egc egc;
    model_ctx *c;
    model_reg **regs;
    int i, rc = 0;
    regs = realloc(b->fd_regs, sizeof *regs * (size_t)(b->n_fds + n));
    if (!regs)
        return ERROR_NOMEM;
    b->fd_regs = regs;
    c = bench_enter((libxl_ctx *)b->ctx, "libxlmodel_bench_add_fds");
    if (!c)
        return ERROR_FAIL;
    model_egc_init(&egc, c);
    for (i = 0; i < n; i++) {
        model_reg *r = NULL;
        rc = model_fd_register(&egc, c, fds[i], POLLIN, &bench_fd_ops, b, &r);
        if (rc)
            break;
        b->fd_regs[b->n_fds++] = r;
        if (for_libxl_out)
            for_libxl_out[i] = (uintptr_t)r;
    }
    bench_leave(c, &egc);
    return rc;
}

int libxlmodel_bench_remove_fds(libxlmodel_bench *b)
{
    model_egc egc;
    model_ctx *c = bench_enter((libxl_ctx *)b->ctx, "libxlmodel_bench_remove_fds");
    int i;
    if (!c)
        return ERROR_FAIL;
    model_egc_init(&egc, c);
    for (i = 0; i < b->n_fds; i++)
        if (b->fd_regs[i]->state == REG_ACTIVE && b->fd_regs[i]->arg == b)
            model_fd_deregister(&egc, b->fd_regs[i]);
    b->n_fds = 0;
    bench_leave(c, &egc);
    return 0;
}

void libxlmodel_bench_set_target(libxlmodel_bench *b, uint64_t target, int done_fd)
{
    b->done_fd = done_fd;
    __atomic_store_n(&b->target, target, __ATOMIC_RELAXED);
}

uint64_t libxlmodel_bench_fd_events(libxlmodel_bench *b)
{
    return __atomic_load_n(&b->fd_events, __ATOMIC_RELAXED);
}

/* ---- timeouts ---- */

static uint64_t bench_rand(libxlmodel_bench *b)
{
    /* xorshift64*, under the ctx lock */
    b->rng ^= b->rng >> 12;
    b->rng ^= b->rng << 25;
    b->rng ^= b->rng >> 27;
    return b->rng * 2685821657736338717ull;
}

static void bench_timeout_fired(model_egc *egc, model_reg *r, void *arg);
static void bench_timeout_released(model_egc *egc, void *arg, uint64_t reg_id);
static const model_reg_ops bench_to_ops = {.timeout_fired = bench_timeout_fired,
                                           .released = bench_timeout_released};

static void bench_timeout_released(model_egc *egc, void *arg, uint64_t reg_id)
{
    bench_to_arg *a = arg;
    (void)egc;
    (void)reg_id;
    if (a->cancelled) {
        a->cancelled = 0;
        __atomic_sub_fetch(&a->b->owed, 1, __ATOMIC_RELAXED);
    }
}

static int bench_to_register(model_egc *egc, libxlmodel_bench *b, bench_to_arg *a)
{
    model_reg *r = NULL;
    int rc = model_timeout_register(egc, b->ctx, a->abs, &bench_to_ops, a, &r);
    b->to_regs[a->slot] = rc ? NULL : r;
    return rc;
}

static void bench_timeout_fired(model_egc *egc, model_reg *r, void *arg)
{
    bench_to_arg *a = arg;
    libxlmodel_bench *b = a->b;
    int64_t late = wall_ns() - ((int64_t)a->abs.tv_sec * 1000000000 + (int64_t)a->abs.tv_usec * 1000);
    uint64_t k = __atomic_fetch_add(&b->late_n, 1, __ATOMIC_RELAXED);
    (void)r;
    if (b->late_cap > 0)
        b->late_ns[k % (uint64_t)b->late_cap] = late;
    __atomic_add_fetch(&b->to_fired, 1, __ATOMIC_RELAXED);
    b->to_regs[a->slot] = NULL;
    if (b->rearm_max_ms > 0 && !__atomic_load_n(&b->stop_rearm, __ATOMIC_RELAXED)) {
        struct timeval now;
        int64_t ms = b->rearm_min_ms;
        if (b->rearm_max_ms > b->rearm_min_ms)
            ms += (int64_t)(bench_rand(b) % (uint64_t)(b->rearm_max_ms - b->rearm_min_ms + 1));
        gettimeofday(&now, NULL);
        int64_t us = (int64_t)now.tv_usec + ms * 1000 + (int64_t)(bench_rand(b) % 1000);
        a->abs.tv_sec = now.tv_sec + us / 1000000;
        a->abs.tv_usec = us % 1000000;
        bench_to_register(egc, b, a);
    }
}

int libxlmodel_bench_add_timeouts(libxlmodel_bench *b, const int64_t *abs_ns, int n,
                                  int rearm_min_ms, int rearm_max_ms, int late_cap)
{
    model_egc egc;
    model_ctx *c;
    int i, rc = 0;
    if (b->to_regs)
        return ERROR_INVAL; /* once per bench */
    b->to_regs = calloc((size_t)n, sizeof *b->to_regs);
    b->late_ns = late_cap > 0 ? calloc((size_t)late_cap, sizeof *b->late_ns) : NULL;
    if (!b->to_regs || (late_cap > 0 && !b->late_ns))
        return ERROR_NOMEM;
    b->late_cap = late_cap;
    b->n_to = n;
    b->rearm_min_ms = rearm_min_ms;
    b->rearm_max_ms = rearm_max_ms;
    c = bench_enter((libxl_ctx *)b->ctx, "libxlmodel_bench_add_timeouts");
    if (!c)
        return ERROR_FAIL;
    model_egc_init(&egc, c);
    for (i = 0; i < n; i++) {
        bench_to_arg *a = calloc(1, sizeof *a);
        if (!a) {
            rc = ERROR_NOMEM;
            break;
        }
        a->b = b;
        a->slot = i;
        a->abs.tv_sec = abs_ns[i] / 1000000000;
        a->abs.tv_usec = (abs_ns[i] % 1000000000) / 1000;
        rc = bench_to_register(&egc, b, a);
        if (rc) {
            free(a);
            break;
        }
    }
    bench_leave(c, &egc);
    return rc;
}

void libxlmodel_bench_stop_rearm(libxlmodel_bench *b)
{
    __atomic_store_n(&b->stop_rearm, 1, __ATOMIC_RELAXED);
}

/* Cancels every pending timeout the way libxl does when the operation
 * that owns it ends, and stops re-arming, so that the ctx can be freed
 * without timeouts armed (libxl asserts that). Under 4.17's rules a
 * cancelled timeout becomes fire-now and the application still owes its
 * delivery: libxlmodel_bench_timeouts_owed counts those down. */
int libxlmodel_bench_remove_timeouts(libxlmodel_bench *b)
{
    model_egc egc;
    model_ctx *c;
    int i;
    __atomic_store_n(&b->stop_rearm, 1, __ATOMIC_RELAXED);
    c = bench_enter((libxl_ctx *)b->ctx, "libxlmodel_bench_remove_timeouts");
    if (!c)
        return ERROR_FAIL;
    model_egc_init(&egc, c);
    for (i = 0; i < b->n_to; i++) {
        model_reg *r = b->to_regs[i];
        if (!r)
            continue;
        b->to_regs[i] = NULL;
        bench_to_arg *a = r->arg;
        a->cancelled = 1;
        __atomic_add_fetch(&b->owed, 1, __ATOMIC_RELAXED);
        if (model_timeout_cancel(&egc, r)) {
            a->cancelled = 0;
            __atomic_sub_fetch(&b->owed, 1, __ATOMIC_RELAXED);
        }
    }
    bench_leave(c, &egc);
    return 0;
}

uint64_t libxlmodel_bench_timeouts_owed(libxlmodel_bench *b)
{
    return __atomic_load_n(&b->owed, __ATOMIC_RELAXED);
}

uint64_t libxlmodel_bench_timeouts_fired(libxlmodel_bench *b)
{
    return __atomic_load_n(&b->to_fired, __ATOMIC_RELAXED);
}

/* Copies the lateness samples (the last late_cap ones) into out. */
int libxlmodel_bench_lateness(libxlmodel_bench *b, int64_t *out, int max)
{
    uint64_t n = __atomic_load_n(&b->late_n, __ATOMIC_RELAXED);
    int k = (int)(n < (uint64_t)b->late_cap ? n : (uint64_t)b->late_cap);
    if (k > max)
        k = max;
    memcpy(out, b->late_ns, sizeof *out * (size_t)k);
    return k;
}

/* Call after libxl_ctx_free: the records are gone, the args are ours. */
void libxlmodel_bench_free(libxlmodel_bench *b)
{
    /* The args of timeouts still pending leak by design of the record
     * API (ctx_free released them); a benchmark frees its bench once. */
    free(b->fd_regs);
    free(b->to_regs);
    free(b->late_ns);
    free(b);
}

/* ---- a ctx for loops that are not goxl ---- */

static int floor_fd_register(void *user, int fd, void **for_app_out, short events, void *for_libxl)
{
    (void)user;
    (void)fd;
    (void)events;
    (void)for_libxl;
    *for_app_out = (void *)(uintptr_t)1;
    return 0;
}

static int floor_fd_modify(void *user, int fd, void **for_app, short events)
{
    (void)fd;
    (void)for_app;
    (void)events;
    libxlmodelBenchNoop((uintptr_t)user);
    return 0;
}

static void floor_fd_deregister(void *user, int fd, void *for_app)
{
    (void)user;
    (void)fd;
    (void)for_app;
}

static int floor_timeout_register(void *user, void **for_app_out, struct timeval abs, void *for_libxl)
{
    (void)user;
    (void)for_app_out;
    (void)abs;
    (void)for_libxl;
    return ERROR_OSEVENT_REG_FAIL;
}

static int floor_timeout_modify(void *user, void **for_app, struct timeval abs)
{
    (void)user;
    (void)for_app;
    (void)abs;
    return ERROR_OSEVENT_REG_FAIL;
}

static void floor_timeout_deregister(void *user, void *for_app)
{
    (void)user;
    (void)for_app;
}

static const libxl_osevent_hooks floor_hooks = {
    .fd_register = floor_fd_register,
    .fd_modify = floor_fd_modify,
    .fd_deregister = floor_fd_deregister,
    .timeout_register = floor_timeout_register,
    .timeout_modify = floor_timeout_modify,
    .timeout_deregister = floor_timeout_deregister,
};

int libxlmodel_bench_floor_ctx_new(uintptr_t user, libxl_ctx **out)
{
    int rc = libxl_ctx_alloc(out, LIBXL_VERSION, 0, NULL);
    if (rc)
        return rc;
    libxl_osevent_register_hooks(*out, &floor_hooks, (void *)user);
    return 0;
}

void libxlmodel_bench_occurred_in(libxl_ctx *ctx, uintptr_t for_libxl, int fd)
{
    libxl_osevent_occurred_fd(ctx, (void *)for_libxl, fd, POLLIN, POLLIN);
}
