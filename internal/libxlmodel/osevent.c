//go:build libxlmodel

/*
 * osevent.c: libxl's osevent side. The records whose addresses are the
 * for_libxl cookies, the calls into the application's hooks (always with
 * the ctx locked, counted, timed by the watchdog, written into the
 * record's history), and libxl_osevent_occurred_fd/_timeout, which
 * classify every delivery: live, stale-and-tolerated, or a violation.
 *
 * Why records are never free()d: a for_libxl the application kept too
 * long must be recognised (slab membership + magic) rather than read as
 * freed memory. Pooled modes keep deregistered records in the ctx (FIFO,
 * as libxl's nexi); 4.2-unpatched poisons them into a global quarantine.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

#define REG_SLAB 512
#define REG_QUARANTINE 16384
#define POOL_MIN_IDLE 16

static model_reg **reg_slabs; /* under g_model.mu */
static int reg_nslabs;
static model_reg *reg_free_list;
static model_reg *reg_q_head, *reg_q_tail;
static int reg_q_n;
static uint64_t reg_next_id;

static const model_reg_ops orphan_ops;

bool model_slab_contains_reg(const void *p)
{
    return model_in_slabs((void *const *)reg_slabs, reg_nslabs, sizeof(model_reg), REG_SLAB, p);
}

/* g_model.mu held */
static model_reg *reg_take_global(void)
{
    model_reg *r;
    if (!reg_free_list) {
        model_reg *slab = calloc(REG_SLAB, sizeof *slab);
        model_reg **slabs = realloc(reg_slabs, sizeof *slabs * (size_t)(reg_nslabs + 1));
        int i;
        if (slabs)
            reg_slabs = slabs;
        if (!slab || !slabs) {
            free(slab);
            return NULL;
        }
        reg_slabs[reg_nslabs++] = slab;
        for (i = REG_SLAB - 1; i >= 0; i--) {
            slab[i].pool_next = reg_free_list;
            reg_free_list = &slab[i];
        }
    }
    r = reg_free_list;
    reg_free_list = r->pool_next;
    memset(r, 0, sizeof *r);
    return r;
}

/* g_model.mu held */
static void reg_quarantine_locked(model_reg *r, uint32_t poison)
{
    r->magic = poison;
    r->ops = &orphan_ops;
    r->arg = NULL;
    r->pool_next = NULL;
    if (reg_q_tail)
        reg_q_tail->pool_next = r;
    else
        reg_q_head = r;
    reg_q_tail = r;
    if (++reg_q_n > REG_QUARANTINE) {
        model_reg *old = reg_q_head;
        reg_q_head = old->pool_next;
        if (!reg_q_head)
            reg_q_tail = NULL;
        reg_q_n--;
        old->magic = REG_MAGIC_NEVER;
        old->pool_next = reg_free_list;
        reg_free_list = old;
    }
}

static void ctx_list_add(model_ctx *ctx, model_reg *r)
{
    r->ctx_prev = NULL;
    r->ctx_next = ctx->regs;
    if (ctx->regs)
        ctx->regs->ctx_prev = r;
    ctx->regs = r;
    r->in_ctx_list = 1;
}

static void ctx_list_del(model_ctx *ctx, model_reg *r)
{
    if (r->ctx_prev)
        r->ctx_prev->ctx_next = r->ctx_next;
    else
        ctx->regs = r->ctx_next;
    if (r->ctx_next)
        r->ctx_next->ctx_prev = r->ctx_prev;
    r->ctx_next = r->ctx_prev = NULL;
    r->in_ctx_list = 0;
}

static model_reg *reg_alloc(model_ctx *ctx, model_reg_kind kind)
{
    int k = kind - 1;
    model_reg *r = NULL;
    if (model_rules(ctx)->records_pooled && ctx->idle_n[k] > POOL_MIN_IDLE) {
        r = ctx->idle_head[k];
        ctx->idle_head[k] = r->pool_next;
        if (!ctx->idle_head[k])
            ctx->idle_tail[k] = NULL;
        ctx->idle_n[k]--;
        r->pool_next = NULL;
        r->past[r->past_n % PAST_REGS].reg_id = r->reg_id;
        r->past[r->past_n % PAST_REGS].fd = r->kind == REG_KIND_FD ? r->fd : -1;
        r->past_n++;
    }
    pthread_mutex_lock(&g_model.mu);
    if (!r) {
        r = reg_take_global();
        if (!r) {
            pthread_mutex_unlock(&g_model.mu);
            return NULL;
        }
        r->ctx = ctx;
        ctx_list_add(ctx, r);
    }
    r->magic = kind == REG_KIND_FD ? REG_MAGIC_FD : REG_MAGIC_TIMEOUT;
    r->reg_id = ++reg_next_id;
    pthread_mutex_unlock(&g_model.mu);
    r->kind = (uint8_t)kind;
    r->state = REG_IDLE;
    r->for_app = NULL;
    r->fd = -1;
    r->events = r->events_ever = 0;
    r->abs.tv_sec = r->abs.tv_usec = 0;
    r->fire_now_ns = 0;
    r->overdue_reported = false;
    r->ops = &orphan_ops;
    r->arg = NULL;
    r->hist_n = 0;
    return r;
}

/* The application owes nothing more for r: pool it or poison it. */
static void reg_release(model_ctx *ctx, model_reg *r, model_reg_state final)
{
    int k = r->kind - 1;
    r->state = (uint8_t)final;
    r->ops = &orphan_ops;
    r->arg = NULL;
    if (model_rules(ctx)->records_pooled) {
        r->pool_next = NULL;
        if (ctx->idle_tail[k])
            ctx->idle_tail[k]->pool_next = r;
        else
            ctx->idle_head[k] = r;
        ctx->idle_tail[k] = r;
        ctx->idle_n[k]++;
        return;
    }
    pthread_mutex_lock(&g_model.mu);
    ctx_list_del(ctx, r);
    reg_quarantine_locked(r, REG_MAGIC_FREED);
    pthread_mutex_unlock(&g_model.mu);
}

void model_reg_orphan(model_reg *r)
{
    r->ops = &orphan_ops;
    r->arg = NULL;
}

/* ---- hook calls ---- */

static void hook_check_locked(model_ctx *ctx)
{
    if (!model_ctx_locked_by_me(ctx))
        /* A bug in the model, not in the application. */
        fprintf(stderr, "libxlmodel: BUG: hook called without the ctx lock\n");
}

int model_fd_register(model_egc *egc, model_ctx *ctx, int fd, short events,
                      const model_reg_ops *ops, void *arg, model_reg **out)
{
    model_hook_frame f;
    model_reg *r;
    void *for_app = NULL;
    int rc = 0;
    (void)egc;
    hook_check_locked(ctx);
    r = reg_alloc(ctx, REG_KIND_FD);
    if (!r)
        return ERROR_NOMEM;
    r->fd = fd;
    r->events = r->events_ever = events;
    if (ctx->hooks) {
        model_hook_enter(&f, ctx, r, LIBXLMODEL_HOOK_FD_REGISTER);
        rc = ctx->hooks->fd_register(ctx->hooks_user, fd, &for_app, events, r);
        model_hook_leave(&f);
    }
    model_hist(r, H_FD_REGISTER, fd, events, 0, rc);
    if (rc) {
        MODEL_COUNT(hook_failures);
        reg_release(ctx, r, REG_FAILED);
        return rc;
    }
    r->for_app = for_app;
    r->state = REG_ACTIVE;
    r->ops = ops ? ops : &orphan_ops;
    r->arg = arg;
    *out = r;
    return 0;
}

int model_fd_modify(model_egc *egc, model_reg *r, short events)
{
    model_ctx *ctx = r->ctx;
    model_hook_frame f;
    int rc = 0;
    (void)egc;
    hook_check_locked(ctx);
    if (r->state != REG_ACTIVE || r->kind != REG_KIND_FD) {
        fprintf(stderr, "libxlmodel: BUG: fd_modify on a record that is not a live fd\n");
        return ERROR_FAIL;
    }
    if (ctx->hooks) {
        model_hook_enter(&f, ctx, r, LIBXLMODEL_HOOK_FD_MODIFY);
        /* On failure a changed token is honoured, per libxl_event.h. */
        rc = ctx->hooks->fd_modify(ctx->hooks_user, r->fd, &r->for_app, events);
        model_hook_leave(&f);
    }
    model_hist(r, H_FD_MODIFY, r->fd, events, r->events, rc);
    if (rc) {
        MODEL_COUNT(hook_failures);
        return rc;
    }
    r->events = events;
    r->events_ever |= events;
    return 0;
}

void model_fd_deregister(model_egc *egc, model_reg *r)
{
    model_ctx *ctx = r->ctx;
    model_hook_frame f;
    (void)egc;
    hook_check_locked(ctx);
    if (r->state != REG_ACTIVE || r->kind != REG_KIND_FD) {
        fprintf(stderr, "libxlmodel: BUG: fd_deregister on a record that is not a live fd\n");
        return;
    }
    if (ctx->hooks) {
        model_hook_enter(&f, ctx, r, LIBXLMODEL_HOOK_FD_DEREGISTER);
        ctx->hooks->fd_deregister(ctx->hooks_user, r->fd, r->for_app);
        model_hook_leave(&f);
    }
    model_hist(r, H_FD_DEREGISTER, r->fd, r->events, 0, 0);
    reg_release(ctx, r, REG_DEREGISTERED);
}

int model_timeout_register(model_egc *egc, model_ctx *ctx, struct timeval abs,
                           const model_reg_ops *ops, void *arg, model_reg **out)
{
    model_hook_frame f;
    model_reg *r;
    void *for_app = NULL;
    int rc = 0;
    (void)egc;
    hook_check_locked(ctx);
    r = reg_alloc(ctx, REG_KIND_TIMEOUT);
    if (!r)
        return ERROR_NOMEM;
    r->abs = abs;
    if (ctx->hooks) {
        model_hook_enter(&f, ctx, r, LIBXLMODEL_HOOK_TIMEOUT_REGISTER);
        rc = ctx->hooks->timeout_register(ctx->hooks_user, &for_app, abs, r);
        model_hook_leave(&f);
    }
    model_hist(r, H_TIMEOUT_REGISTER, -1, 0, 0, rc);
    if (rc) {
        MODEL_COUNT(hook_failures);
        reg_release(ctx, r, REG_FAILED);
        return rc;
    }
    r->for_app = for_app;
    r->state = REG_ACTIVE;
    r->ops = ops ? ops : &orphan_ops;
    r->arg = arg;
    *out = r;
    return 0;
}

/* timeout_modify({0,0}) through the application's hook, as libxl cancels
 * a timeout where cancelling is a fire-now (libxl ignores the result;
 * the model counts a failure). ctx->hooks is set. */
static int hook_timeout_modify_asap(model_ctx *ctx, model_reg *r)
{
    struct timeval asap = {0, 0};
    model_hook_frame f;
    int rc;
    model_hook_enter(&f, ctx, r, LIBXLMODEL_HOOK_TIMEOUT_MODIFY);
    rc = ctx->hooks->timeout_modify(ctx->hooks_user, &r->for_app, asap);
    model_hook_leave(&f);
    if (rc)
        MODEL_COUNT(hook_failures);
    model_hist(r, H_TIMEOUT_MODIFY, -1, 0, 0, rc);
    return rc;
}

bool model_timeout_cancel(model_egc *egc, model_reg *r)
{
    model_ctx *ctx = r->ctx;
    model_hook_frame f;
    (void)egc;
    hook_check_locked(ctx);
    if (r->kind != REG_KIND_TIMEOUT || (r->state != REG_ACTIVE && r->state != REG_FIRE_NOW)) {
        fprintf(stderr, "libxlmodel: BUG: timeout cancel on a record that is not a live timeout\n");
        return true;
    }
    if (model_rules(ctx)->cancel == CANCEL_BY_DEREGISTER) {
        if (ctx->hooks) {
            /* 4.2.0 passes &ev->for_app_reg: the application must read
             * its token through it. The record (and so the pointer) stays
             * valid until the hook returns. */
            void *arg = model_rules(ctx)->timeout_deregister_by_reference ? (void *)&r->for_app
                                                                          : r->for_app;
            model_hook_enter(&f, ctx, r, LIBXLMODEL_HOOK_TIMEOUT_DEREGISTER);
            ctx->hooks->timeout_deregister(ctx->hooks_user, arg);
            model_hook_leave(&f);
        }
        model_hist(r, H_TIMEOUT_DEREGISTER, -1, 0, 0, 0);
        reg_release(ctx, r, REG_DEREGISTERED);
        return true;
    }
    if (r->state == REG_FIRE_NOW)
        return false;
    if (ctx->hooks)
        hook_timeout_modify_asap(ctx, r);
    else
        model_hist(r, H_TIMEOUT_MODIFY, -1, 0, 0, 0);
    r->state = REG_FIRE_NOW;
    r->fire_now_ns = model_now_ns();
    if (!ctx->hooks) {
        /* Nobody will deliver it: nothing is owed. */
        reg_release(ctx, r, REG_DELIVERED);
        return true;
    }
    return false;
}

void model_timeout_fired_self_cancel(model_egc *egc, model_reg *r)
{
    model_ctx *ctx = r->ctx;
    const model_mode_rules *rules = model_rules(ctx);
    model_hook_frame f;
    (void)egc;
    hook_check_locked(ctx);
    if (!rules->fired_self_cancel_calls_hook || !ctx->hooks || r->state != REG_DELIVERED)
        return;
    if (rules->fired_self_cancel_modifies) {
        /* 4.2.2-4.3: the same cancel, as the fire-now these versions
         * cancel with. */
        hook_timeout_modify_asap(ctx, r);
        return;
    }
    /* libxl__ev_time_deregister on the libxl__ev_time whose
     * occurred_timeout is running: its func is still set, so 4.2.0/4.2.1
     * call timeout_deregister with the registration the application
     * has just delivered (and take it off etimes a second time). The
     * record stays readable: it is quarantined, never freed. */
    void *arg = rules->timeout_deregister_by_reference ? (void *)&r->for_app : r->for_app;
    model_hook_enter(&f, ctx, r, LIBXLMODEL_HOOK_TIMEOUT_DEREGISTER);
    ctx->hooks->timeout_deregister(ctx->hooks_user, arg);
    model_hook_leave(&f);
    model_hist(r, H_TIMEOUT_DEREGISTER, -1, 0, 0, 0);
}

/* ---- deliveries ---- */

static bool fd_in_past(model_reg *r, int fd)
{
    unsigned i, n = r->past_n < PAST_REGS ? r->past_n : PAST_REGS;
    for (i = 0; i < n; i++)
        if (r->past[i].fd == fd)
            return true;
    return false;
}

static void stale_tolerated(model_ctx *ctx, model_reg *r, model_hist_what what, int fd, short revents,
                            bool timeout)
{
    if (timeout)
        MODEL_COUNT(stale_timeout_tolerated);
    else
        MODEL_COUNT(stale_fd_tolerated);
    __atomic_add_fetch(&ctx->stale, 1, __ATOMIC_RELAXED);
    model_hist(r, H_STALE, fd, (short)what, revents, 0);
}

/* Finds the live record for_libxl names, or handles the call (stale,
 * violation) and returns NULL. ctx is locked by this thread. */
static model_reg *classify(model_ctx *ctx, void *for_libxl, model_reg_kind want, int fd,
                           short revents, const char *api)
{
    model_reg *r = for_libxl;
    const model_mode_rules *rules = model_rules(ctx);
    bool timeout = want == REG_KIND_TIMEOUT;
    model_hist_what what = timeout ? H_OCCURRED_TIMEOUT : H_OCCURRED_FD;

    pthread_mutex_lock(&g_model.mu);
    if (!for_libxl || !model_slab_contains_reg(for_libxl)) {
        pthread_mutex_unlock(&g_model.mu);
        model_violation(LIBXLMODEL_V_UNKNOWN_FOR_LIBXL, ctx, NULL,
                        "%s: for_libxl %p was never handed out by this libxl", api, for_libxl);
        return NULL;
    }
    switch (r->magic) {
    case REG_MAGIC_FD:
    case REG_MAGIC_TIMEOUT:
        if (r->ctx != ctx) {
            model_violation(LIBXLMODEL_V_WRONG_CTX, ctx, r,
                            "%s: for_libxl %p belongs to ctx %p, not %p", api, for_libxl,
                            (void *)r->ctx, (void *)ctx);
            pthread_mutex_unlock(&g_model.mu);
            return NULL;
        }
        pthread_mutex_unlock(&g_model.mu);
        break;
    case REG_MAGIC_FREED:
        if (r->state == REG_FAILED)
            model_violation(LIBXLMODEL_V_DELIVERY_TO_FAILED_REGISTRATION, ctx, r,
                            "%s on reg %llu, whose register hook had failed (record freed)", api,
                            (unsigned long long)r->reg_id);
        else if (timeout && r->state == REG_DELIVERED)
            model_violation(LIBXLMODEL_V_TIMEOUT_DELIVERED_TWICE, ctx, r,
                            "%s: timeout reg %llu was already delivered; libxl freed it "
                            "(use after free in libxl %s)",
                            api, (unsigned long long)r->reg_id, rules->name);
        else
            model_violation(LIBXLMODEL_V_DELIVERY_AFTER_DEREGISTER, ctx, r,
                            "%s on reg %llu after its deregistration; libxl %s freed the record "
                            "(use after free)",
                            api, (unsigned long long)r->reg_id, rules->name);
        pthread_mutex_unlock(&g_model.mu);
        return NULL;
    case REG_MAGIC_CTX_FREED:
        model_violation(LIBXLMODEL_V_WRONG_CTX, ctx, r,
                        "%s: for_libxl %p belongs to ctx %p, which was freed", api, for_libxl,
                        (void *)r->ctx);
        pthread_mutex_unlock(&g_model.mu);
        return NULL;
    default:
        model_violation(LIBXLMODEL_V_CORRUPT_FOR_LIBXL, ctx, NULL,
                        "%s: for_libxl %p has magic %#x: not a record in use", api, for_libxl,
                        r->magic);
        pthread_mutex_unlock(&g_model.mu);
        return NULL;
    }

    /* A record of this ctx; stable while we hold the ctx lock. */
    if (r->kind != want) {
        model_violation(LIBXLMODEL_V_CORRUPT_FOR_LIBXL, ctx, r,
                        "%s: for_libxl %p is a %s record", api, for_libxl,
                        r->kind == REG_KIND_FD ? "fd" : "timeout");
        return NULL;
    }
    model_hist(r, what, fd, timeout ? 0 : r->events, revents, 0);
    switch (r->state) {
    case REG_ACTIVE:
    case REG_FIRE_NOW:
        return r;
    case REG_FAILED:
        model_violation(LIBXLMODEL_V_DELIVERY_TO_FAILED_REGISTRATION, ctx, r,
                        "%s on reg %llu, whose register hook had failed", api,
                        (unsigned long long)r->reg_id);
        return NULL;
    case REG_DELIVERED:
        model_violation(LIBXLMODEL_V_TIMEOUT_DELIVERED_TWICE, ctx, r,
                        "%s: timeout reg %llu was already delivered", api,
                        (unsigned long long)r->reg_id);
        return NULL;
    default: /* deregistered, pooled */
        if (!timeout && !fd_in_past(r, fd) && fd != r->fd) {
            model_violation(LIBXLMODEL_V_FD_MISMATCH, ctx, r,
                            "%s: fd %d was never registered with for_libxl %p", api, fd, for_libxl);
            return NULL;
        }
        if (timeout ? rules->stale_timeout_tolerated : rules->stale_fd_tolerated) {
            stale_tolerated(ctx, r, what, fd, revents, timeout);
        } else {
            model_violation(LIBXLMODEL_V_DELIVERY_AFTER_DEREGISTER, ctx, r,
                            "%s on reg %llu after its deregistration (libxl %s)", api,
                            (unsigned long long)r->reg_id, rules->name);
        }
        return NULL;
    }
}

/* Common entry: returns the locked ctx, or NULL if the call was refused. */
static model_ctx *occurred_enter(libxl_ctx *p, const char *api, void *for_libxl)
{
    model_ctx *c;
    if (model_tls.in_hook > 0) {
        /* libxl asserts !osevent_in_hook: the process would abort. */
        model_violation(LIBXLMODEL_V_OCCURRED_INSIDE_HOOK, (model_ctx *)p, NULL,
                        "%s(for_libxl=%p) called from inside an osevent hook", api, for_libxl);
        return NULL;
    }
    c = model_ctx_pin(p, api, LIBXLMODEL_V_OCCURRED_AFTER_CTX_FREE);
    if (!c)
        return NULL;
    model_ctx_lock(c);
    model_ctx_unpin(c);
    if (c->magic != CTX_MAGIC_LIVE) {
        model_ctx_unlock(c);
        model_violation(LIBXLMODEL_V_OCCURRED_AFTER_CTX_FREE, c, NULL,
                        "%s(for_libxl=%p) on a ctx freed while the call was on its way in",
                        api, for_libxl);
        return NULL;
    }
    __atomic_add_fetch(&c->hook_events, 1, __ATOMIC_RELAXED);
    model_tls.in_occurred++;
    if (!model_tls.role)
        model_tls.role = "app";
    return c;
}

static void occurred_leave(model_ctx *c, model_egc *egc)
{
    model_tls.in_occurred--;
    model_ctx_unlock(c);
    model_egc_cleanup(egc);
}

void libxl_osevent_occurred_fd(libxl_ctx *p, void *for_libxl, int fd, short events, short revents)
{
    const short always = POLLERR | POLLHUP | POLLNVAL;
    model_egc egc;
    model_ctx *c;
    model_reg *r;

    MODEL_COUNT(deliveries_fd);
    c = occurred_enter(p, "libxl_osevent_occurred_fd", for_libxl);
    if (!c)
        return;
    model_egc_init(&egc, c);
    r = classify(c, for_libxl, REG_KIND_FD, fd, revents, "libxl_osevent_occurred_fd");
    if (r && fd != r->fd) {
        if (fd_in_past(r, fd) && model_rules(c)->stale_fd_tolerated) {
            /* The record was reused; libxl checks the fd and ignores. */
            stale_tolerated(c, r, H_OCCURRED_FD, fd, revents, false);
        } else {
            model_violation(LIBXLMODEL_V_FD_MISMATCH, c, r,
                            "libxl_osevent_occurred_fd: fd %d, but reg %llu is for fd %d", fd,
                            (unsigned long long)r->reg_id, r->fd);
        }
        r = NULL;
    }
    if (r && ((revents & ~(r->events_ever | always)) || (events & ~r->events_ever))) {
        model_violation(LIBXLMODEL_V_EVENTS_NOT_REQUESTED, c, r,
                        "libxl_osevent_occurred_fd: events=%#x revents=%#x, but reg %llu only "
                        "ever asked for %#x",
                        (unsigned)(unsigned short)events, (unsigned)(unsigned short)revents,
                        (unsigned long long)r->reg_id, (unsigned)(unsigned short)r->events_ever);
    }
    if (r && !model_rules(c)->repoll_before_callback) {
        /* 4.2 unpatched: revents &= ev->events, no re-poll. */
        short got = revents & r->events;
        if (!got) {
            MODEL_COUNT(spurious_fd);
        } else if (r->ops->fd_ready) {
            model_hist(r, H_OWNER, r->fd, r->events, got, 0);
            r->ops->fd_ready(&egc, r, got);
        }
    } else if (r) {
        /* libxl re-polls before acting: stale readiness is harmless. */
        struct pollfd pfd = {.fd = r->fd, .events = r->events};
        int n;
        do
            n = poll(&pfd, 1, 0);
        while (n < 0 && errno == EINTR);
        if (n <= 0 || !(pfd.revents & (r->events | always))) {
            MODEL_COUNT(spurious_fd);
        } else if (r->ops->fd_ready) {
            model_hist(r, H_OWNER, r->fd, r->events, pfd.revents, 0);
            r->ops->fd_ready(&egc, r, pfd.revents);
        }
    }
    occurred_leave(c, &egc);
}

void libxl_osevent_occurred_timeout(libxl_ctx *p, void *for_libxl)
{
    model_egc egc;
    model_ctx *c;
    model_reg *r;

    MODEL_COUNT(deliveries_timeout);
    c = occurred_enter(p, "libxl_osevent_occurred_timeout", for_libxl);
    if (!c)
        return;
    model_egc_init(&egc, c);
    r = classify(c, for_libxl, REG_KIND_TIMEOUT, -1, 0, "libxl_osevent_occurred_timeout");
    if (r) {
        const model_reg_ops *ops = r->ops;
        void *arg = r->arg;
        uint64_t reg_id = r->reg_id;
        bool fired = r->state == REG_ACTIVE;
        if (fired) {
            struct timeval now;
            int64_t early_us;
            model_wall_now(&now);
            early_us = ((int64_t)r->abs.tv_sec - now.tv_sec) * 1000000 + (r->abs.tv_usec - now.tv_usec);
            if (early_us > (int64_t)__atomic_load_n(&g_model.early_slack_ms, __ATOMIC_RELAXED) * 1000)
                model_violation(LIBXLMODEL_V_TIMEOUT_EARLY, c, r,
                                "occurred_timeout for reg %llu %.3f ms before its deadline "
                                "(a double delivery of an older registration of this record?)",
                                (unsigned long long)reg_id, (double)early_us / 1000.0);
        }
        /* "On entry the timeout has been deregistered." */
        reg_release(c, r, REG_DELIVERED);
        if (fired && ops->timeout_fired)
            ops->timeout_fired(&egc, r, arg);
        if (ops->released)
            ops->released(&egc, arg, reg_id);
    }
    occurred_leave(c, &egc);
}

/* ---- ctx teardown and checks ---- */

void model_osevent_ctx_free(model_egc *egc, model_ctx *ctx)
{
    model_reg *r;
    int fds = 0, timeouts = 0;
    (void)egc;
    /* By now libxl has dropped its own fds (the watch fd with the last
     * evgen, the SIGCHLD self-pipe with childproc_setmode(0,0)), and
     * asserts that nothing else is left: ctx->efds (registered fds) and
     * ctx->etimes (armed timeouts) must be empty, or it aborts
     * (libxl_ctx_free, 4.17 and 4.2 alike). A fire-now timeout is already
     * off etimes (time_deregister), so the one delivery still owed for it
     * is the application's to reap. The model records the breach instead
     * of aborting, and does not deregister anything on the application's
     * behalf: the record is quarantined, so a delivery that the
     * application still makes is reported as occurred_after_ctx_free. */
    for (r = ctx->regs; r; r = r->ctx_next) {
        if (r->state != REG_ACTIVE)
            continue;
        if (r->kind == REG_KIND_FD) {
            fds++;
            model_violation(LIBXLMODEL_V_CTX_FREE_WITH_REGISTRATIONS, ctx, r,
                            "libxl_ctx_free with fd %d (reg %llu) still registered: "
                            "libxl asserts ctx->efds is empty and aborts",
                            r->fd, (unsigned long long)r->reg_id);
        } else {
            timeouts++;
            model_violation(LIBXLMODEL_V_CTX_FREE_WITH_REGISTRATIONS, ctx, r,
                            "libxl_ctx_free with timeout reg %llu still armed: "
                            "libxl asserts ctx->etimes is empty and aborts",
                            (unsigned long long)r->reg_id);
        }
        model_hist(r, H_NOTE, r->kind == REG_KIND_FD ? r->fd : -1, 0, 0, 0);
    }
    if (fds || timeouts)
        model_log(ctx, XTL_CRITICAL,
                  "libxlmodel: libxl_ctx_free with %d fd(s) and %d timeout(s) still registered "
                  "(real libxl aborts here)", fds, timeouts);
    pthread_mutex_lock(&g_model.mu);
    while ((r = ctx->regs)) {
        ctx_list_del(ctx, r);
        reg_quarantine_locked(r, REG_MAGIC_CTX_FREED);
    }
    pthread_mutex_unlock(&g_model.mu);
    memset(ctx->idle_head, 0, sizeof ctx->idle_head);
    memset(ctx->idle_tail, 0, sizeof ctx->idle_tail);
    memset(ctx->idle_n, 0, sizeof ctx->idle_n);
}

int model_osevent_check_overdue(model_ctx *ctx, int grace_ms)
{
    model_reg *r;
    struct timeval now;
    int n = 0;
    int64_t now_ns = model_now_ns();
    model_wall_now(&now);
    for (r = ctx->regs; r; r = r->ctx_next) {
        int64_t late_ms;
        if (r->kind != REG_KIND_TIMEOUT || r->overdue_reported)
            continue;
        if (r->state == REG_FIRE_NOW) {
            late_ms = (now_ns - r->fire_now_ns) / 1000000;
        } else if (r->state == REG_ACTIVE) {
            late_ms = ((int64_t)now.tv_sec - r->abs.tv_sec) * 1000 + (now.tv_usec - r->abs.tv_usec) / 1000;
        } else {
            continue;
        }
        if (late_ms <= grace_ms)
            continue;
        r->overdue_reported = true;
        n++;
        model_violation(LIBXLMODEL_V_TIMEOUT_NEVER_DELIVERED, ctx, r,
                        "%s timeout reg %llu not delivered %lld ms after it was due",
                        r->state == REG_FIRE_NOW ? "fire-now" : "expired",
                        (unsigned long long)r->reg_id, (long long)late_ms);
    }
    return n;
}
