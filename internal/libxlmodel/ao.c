//go:build libxlmodel

/*
 * ao.c: asynchronous operations (libxl_asyncop_how) and libxl_ao_abort.
 * Completion is queued on the egc and runs with the ctx unlocked, on the
 * thread that was inside libxl: inside the initiating call when the
 * operation finishes at once (like libxl_domain_unpause), or on the
 * application's dispatcher inside occurred_* (often before the last
 * fire-now timeout of the operation is delivered, like create).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"

model_ao *model_ao_create(model_ctx *ctx, const libxl_asyncop_how *how)
{
    model_ao *ao = calloc(1, sizeof *ao);
    if (!ao)
        return NULL;
    ao->magic = AO_MAGIC;
    ao->ctx = ctx;
    if (how) {
        ao->has_how = true;
        ao->how = *how; /* *ao_how need not outlive the initiating call */
    }
    ao->next = ctx->aos;
    if (ctx->aos)
        ctx->aos->prev = ao;
    ctx->aos = ao;
    ctx->aos_running++;
    return ao;
}

void model_ao_set_internal(model_ao *ao, void (*fn)(model_ctx *, void *, int), void *arg)
{
    ao->internal_done = fn;
    ao->internal_arg = arg;
}

static void ao_unlink(model_ao *ao)
{
    model_ctx *ctx = ao->ctx;
    if (ao->prev)
        ao->prev->next = ao->next;
    else if (ctx->aos == ao)
        ctx->aos = ao->next;
    if (ao->next)
        ao->next->prev = ao->prev;
    ao->next = ao->prev = NULL;
    ctx->aos_running--;
}

/* Runs unlocked, after the egc that completed the AO. */
static void ao_deliver(model_ctx *ctx, void *arg, int rc)
{
    model_ao *ao = arg;
    if (ao->internal_done)
        ao->internal_done(ctx, ao->internal_arg, rc);
    if (ao->internal_done && !ao->has_how) {
        free(ao);
        return;
    }
    if (ao->has_how) {
        if (ao->how.callback) {
            ao->how.callback((libxl_ctx *)ctx, rc, ao->how.u.for_callback);
        } else if (ctx->event_hooks && ctx->event_hooks->event_occurs &&
                   (ctx->event_hooks->event_occurs_mask &
                    ((uint64_t)1 << LIBXL_EVENT_TYPE_OPERATION_COMPLETE))) {
            libxl_event *ev = calloc(1, sizeof *ev);
            if (ev) {
                ev->type = LIBXL_EVENT_TYPE_OPERATION_COMPLETE;
                ev->for_user = ao->how.u.for_event;
                ev->u.operation_complete.rc = rc;
                ctx->event_hooks->event_occurs(ctx->event_user, ev);
            }
        }
        free(ao);
        return;
    }
}

void model_ao_complete(model_egc *egc, model_ao *ao, int rc)
{
    if (ao->aborted && rc == 0)
        rc = ERROR_ABORTED;
    ao_unlink(ao);
    if (!ao->has_how && !ao->internal_done) {
        /* Synchronous: the caller is waiting in model_ao_inprogress, or
         * is still inside it on this very thread. */
        if (ao->waiter_gone) {
            free(ao);
            return;
        }
        ao->complete = true;
        ao->rc = rc;
        pthread_cond_broadcast(&ao->ctx->cond);
        return;
    }
    model_egc_defer(egc, ao_deliver, ao, rc);
}

void model_ao_fail_initiation(model_ao *ao)
{
    ao_unlink(ao);
    free(ao);
}

int model_ao_inprogress(model_egc *egc, model_ao *ao)
{
    model_ctx *ctx = ao->ctx;
    int rc;
    (void)egc;
    if (ao->has_how)
        return 0;
    /* Synchronous: real libxl runs its own poller here; the model lets the
     * application's loop deliver and waits for the completion. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    while (!ao->complete) {
        int depth = ctx->lock_depth, r;
        if (depth != 1) {
            /* pthread_cond_wait needs the recursive mutex held once. */
            model_violation(LIBXLMODEL_V_API_MISUSE, ctx, NULL,
                            "synchronous libxl operation called re-entrantly");
            ao->waiter_gone = true;
            return ERROR_FAIL;
        }
        ctx->lock_depth = 0;
        ctx->lock_owner = 0;
        r = pthread_cond_timedwait(&ctx->cond, &ctx->mu, &until);
        ctx->lock_depth = depth;
        ctx->lock_owner = pthread_self();
        if (r == ETIMEDOUT && !ao->complete) {
            model_violation(LIBXLMODEL_V_FD_NEVER_DELIVERED, ctx, NULL,
                            "synchronous operation: the application did not deliver its "
                            "registrations within 30 s");
            ao->waiter_gone = true;
            return ERROR_TIMEDOUT;
        }
    }
    rc = ao->rc;
    free(ao);
    return rc;
}

void model_ao_abandon_all(model_ctx *ctx)
{
    while (ctx->aos) {
        model_ao *ao = ctx->aos;
        ao_unlink(ao);
        ao->magic = 0;
        /* Leaked on purpose: an operation of the application may still
         * hold it; libxl would have aborted the process here. */
    }
}

int libxl_ao_abort(libxl_ctx *p, const libxl_asyncop_how *how)
{
    model_ctx *c;
    model_ao *ao;
    int rc = ERROR_NOTFOUND;
    if (!model_api_entry_ok(p, "libxl_ao_abort"))
        return ERROR_FAIL;
    c = model_ctx_pin(p, "libxl_ao_abort", LIBXLMODEL_V_API_MISUSE);
    if (!c)
        return ERROR_FAIL;
    model_ctx_lock(c);
    model_ctx_unpin(c);
    for (ao = c->aos; ao; ao = ao->next) {
        bool same;
        if (!ao->has_how != !how)
            continue;
        if (how) {
            if (ao->how.callback != how->callback)
                continue;
            same = how->callback ? ao->how.u.for_callback == how->u.for_callback
                                 : ao->how.u.for_event == how->u.for_event;
            if (!same)
                continue;
        }
        if (ao->aborted) {
            rc = ERROR_ABORTED;
        } else {
            ao->aborted = true;
            rc = 0;
        }
        break;
    }
    model_ctx_unlock(c);
    return rc;
}
