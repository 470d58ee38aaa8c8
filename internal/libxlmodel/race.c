//go:build libxlmodel

/*
 * race.c: one-shot timeouts that a test arms and cancels through the
 * public API, so that an application's own serialisation of libxl calls
 * can be put between the cancellation and a delivery already on its way.
 *
 * The workload's worker pthreads (workload.c) cannot do that: they take
 * only libxl's ctx lock, never the application's, so on 4.2-unpatched a
 * worker that deregistered while the application delivers would be
 * libxl's own bug, and the workload never does it. Real 4.2 libxl has no
 * threads: its deregistrations happen inside API calls on application
 * threads. libxlmodel_race_arm/_cancel are such API calls.
 *
 * Handles index a table of entries that are never freed, so a cancel
 * after the timeout fired (its record freed, in 4.2-unpatched) reads only
 * the entry, never the record. An entry's state and record pointer change
 * only under its ctx's lock; the table's array only under races.mu, a
 * leaf lock (ctx->mu -> races.mu).
 */
#include <poll.h>
#include <sys/eventfd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model.h"

typedef enum {
    RACE_ARMED = 1,
    RACE_CANCELLED, /* fire-now modes: until the owed delivery, r is set */
    RACE_FIRED,
} race_state;

typedef struct {
    uint64_t handle;
    model_ctx *ctx;
    uint64_t ctx_id; /* a freed ctx's slot may be reused: compare ids */
    model_reg *r;    /* NULL once libxl gave the record back */
    int state;
} race_entry;

static struct {
    pthread_mutex_t mu;
    race_entry **items; /* items[handle - 1] */
    size_t n, cap;
} races = {.mu = PTHREAD_MUTEX_INITIALIZER};

static libxlmodel_race_counters race_counts; /* __atomic */

#define RACE_COUNT(field) __atomic_add_fetch(&race_counts.field, 1, __ATOMIC_RELAXED)

void model_race_reset(void)
{
    uint64_t *c = (uint64_t *)&race_counts;
    size_t i;
    for (i = 0; i < sizeof race_counts / sizeof(uint64_t); i++)
        __atomic_store_n(&c[i], 0, __ATOMIC_RELAXED);
}

void libxlmodel_race_counters_read(libxlmodel_race_counters *out)
{
    uint64_t *src = (uint64_t *)&race_counts;
    uint64_t *dst = (uint64_t *)out;
    size_t i;
    for (i = 0; i < sizeof *out / sizeof(uint64_t); i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

/* ---- the owner's callbacks (ctx locked, inside occurred_timeout) ---- */

static void race_fired(model_egc *egc, model_reg *r, void *arg)
{
    race_entry *e = arg;
    (void)egc;
    (void)r;
    e->state = RACE_FIRED;
    e->r = NULL; /* given back before this callback */
    RACE_COUNT(fired);
}

static void race_released(model_egc *egc, void *arg, uint64_t reg_id)
{
    race_entry *e = arg;
    (void)egc;
    (void)reg_id;
    if (e->state == RACE_CANCELLED && e->r) {
        e->r = NULL;
        RACE_COUNT(fire_now_delivered);
    }
}

static const model_reg_ops race_ops = {
    .timeout_fired = race_fired,
    .released = race_released,
};

/* ---- the API ---- */

static struct timeval wall_after_us(int64_t us)
{
    struct timeval tv;
    model_wall_now(&tv);
    us += tv.tv_usec;
    tv.tv_sec += us / 1000000;
    tv.tv_usec = us % 1000000;
    return tv;
}

/* races.mu held. Returns the handle, or 0 if out of memory. */
static uint64_t race_insert_locked(race_entry *e)
{
    if (races.n == races.cap) {
        size_t cap = races.cap ? races.cap * 2 : 256;
        race_entry **items = realloc(races.items, sizeof *items * cap);
        if (!items)
            return 0;
        races.items = items;
        races.cap = cap;
    }
    races.items[races.n++] = e;
    e->handle = races.n;
    return e->handle;
}

static race_entry *race_lookup(uint64_t handle)
{
    race_entry *e = NULL;
    pthread_mutex_lock(&races.mu);
    if (handle >= 1 && handle <= races.n)
        e = races.items[handle - 1];
    pthread_mutex_unlock(&races.mu);
    return e;
}

uint64_t libxlmodel_race_arm(libxl_ctx *p, int delay_us)
{
    model_egc egc;
    model_ctx *c;
    model_reg *r = NULL;
    race_entry *e;
    uint64_t handle = 0;

    c = model_api_enter(p, "libxlmodel_race_arm");
    if (!c)
        return 0;
    if (!model_tls.role)
        model_tls.role = "app";
    e = calloc(1, sizeof *e);
    if (!e) {
        model_ctx_unlock(c);
        return 0;
    }
    model_egc_init(&egc, c);
    e->ctx = c;
    e->ctx_id = c->id;
    e->state = RACE_ARMED;
    if (model_timeout_register(&egc, c, wall_after_us(delay_us > 0 ? delay_us : 0), &race_ops, e,
                               &r) != 0) {
        /* The record went back; nothing refers to e. */
        model_ctx_unlock(c);
        model_egc_cleanup(&egc);
        free(e);
        return 0;
    }
    e->r = r;
    pthread_mutex_lock(&races.mu);
    handle = race_insert_locked(e);
    pthread_mutex_unlock(&races.mu);
    if (!handle) {
        /* Out of memory for the table: take the timeout back; a fire-now
         * delivery still owed goes to no owner, so nothing refers to e. */
        if (!model_timeout_cancel(&egc, r))
            model_reg_orphan(r);
        free(e);
    } else {
        RACE_COUNT(armed);
    }
    model_ctx_unlock(c);
    model_egc_cleanup(&egc);
    return handle;
}

int libxlmodel_race_cancel(libxl_ctx *p, uint64_t handle)
{
    model_egc egc;
    model_ctx *c;
    race_entry *e = race_lookup(handle);
    int rc;

    if (!e)
        return -1;
    c = model_api_enter(p, "libxlmodel_race_cancel");
    if (!c)
        return -1;
    if (e->ctx != c || e->ctx_id != c->id) {
        model_ctx_unlock(c);
        model_violation(LIBXLMODEL_V_API_MISUSE, c, NULL,
                        "libxlmodel_race_cancel: handle %llu belongs to another ctx",
                        (unsigned long long)handle);
        return -1;
    }
    model_egc_init(&egc, c);
    if (e->state != RACE_ARMED) {
        RACE_COUNT(cancel_late);
        rc = 0;
    } else {
        model_reg *r = e->r;
        e->state = RACE_CANCELLED;
        /* true: deregistered and freed (4.2-unpatched); false: a
         * fire-now delivery is owed and race_released sees it. */
        if (model_timeout_cancel(&egc, r))
            e->r = NULL;
        RACE_COUNT(cancelled);
        rc = 1;
    }
    model_ctx_unlock(c);
    model_egc_cleanup(&egc);
    return rc;
}

/* ---- an fd held outside any operation (for ctx_free's assertions) ---- */

static void held_fd_ready(model_egc *egc, model_reg *r, short revents)
{
    (void)egc;
    (void)r;
    (void)revents;
}

static const model_reg_ops held_fd_ops = {.fd_ready = held_fd_ready};

int libxlmodel_hold_fd(libxl_ctx *p)
{
    model_egc egc;
    model_ctx *c;
    model_reg *r = NULL;
    int fd, rc;

    c = model_api_enter(p, "libxlmodel_hold_fd");
    if (!c)
        return -1;
    fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); /* never ready for POLLIN */
    if (fd < 0) {
        model_ctx_unlock(c);
        return -1;
    }
    model_egc_init(&egc, c);
    rc = model_fd_register(&egc, c, fd, POLLIN, &held_fd_ops, NULL, &r);
    model_ctx_unlock(c);
    model_egc_cleanup(&egc);
    if (rc) {
        close(fd);
        return -1;
    }
    return fd;
}
