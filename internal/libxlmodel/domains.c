//go:build libxlmodel

/*
 * domains.c: simulated domain operations on a per-ctx fake domain table,
 * following the hook patterns of libxl-4.17-hook-trace.txt. They exist so
 * that the ao_how completion rules are exercised through the real API:
 *
 *   pause/unpause   complete inside the initiating call (no hooks);
 *   destroy         4.17 with libxl_sigchld_owner_mainloop: forks a real
 *                   child (libxl__destroy_domid's destroyer) that exits
 *                   after a millisecond or two, and completes when
 *                   libxl_childproc_sigchld_occurred reaps it (waitpid on
 *                   its own pid only); otherwise registers a "child exit"
 *                   pipe and completes when the application delivers it
 *                   (deregistered from occurred_*); then raises
 *                   DOMAIN_DEATH for the domain's evgens;
 *   shutdown        60 s timeout + a watch pipe; on the watch delivery the
 *                   timeout is cancelled and the AO completes before the
 *                   fire-now timeout is delivered; raises DOMAIN_SHUTDOWN;
 *   create_new      10 s timeout + a pipe; same order as shutdown; writes
 *                   *domid at completion, not in the initiating call.
 *
 * The "device" side is a pipe the model writes at once: what matters here is
 * the order of hook calls, deliveries and completions, not Xen.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "model.h"

#define MAX_FAKE_DOMAINS 256

struct model_domains {
    struct {
        uint32_t domid;
        bool paused, shutdown;
    } d[MAX_FAKE_DOMAINS];
    int n;
    uint32_t next_domid;
};

enum { DOM_DESTROY, DOM_SHUTDOWN, DOM_CREATE };

typedef struct {
    model_ctx *ctx;
    model_ao *ao;
    int kind;
    uint32_t domid;
    uint32_t *domid_out;
    model_reg *fd, *tm;
    int fds[2];
} dom_op;

static struct model_domains *domains_of(model_ctx *ctx)
{
    if (!ctx->domains) {
        ctx->domains = calloc(1, sizeof *ctx->domains);
        if (ctx->domains)
            ctx->domains->next_domid = 1;
    }
    return ctx->domains;
}

static int find_domain(model_ctx *ctx, uint32_t domid)
{
    struct model_domains *ds = domains_of(ctx);
    int i;
    for (i = 0; ds && i < ds->n; i++)
        if (ds->d[i].domid == domid)
            return i;
    return -1;
}

libxl_dominfo *model_domains_list(model_ctx *ctx, int *n_out)
{
    struct model_domains *ds = domains_of(ctx);
    int n = 1 + (ds ? ds->n : 0), i;
    libxl_dominfo *list = calloc((size_t)n, sizeof *list);
    if (!list)
        return NULL;
    model_fill_dominfo(&list[0], 0, false, false);
    for (i = 1; i < n; i++)
        model_fill_dominfo(&list[i], ds->d[i - 1].domid, ds->d[i - 1].paused, ds->d[i - 1].shutdown);
    *n_out = n;
    return list;
}

void model_domains_ctx_free(model_ctx *ctx)
{
    free(ctx->domains);
    ctx->domains = NULL;
}

static model_ctx *dom_enter(libxl_ctx *p, const char *api, model_egc *egc)
{
    model_ctx *c = model_enter_locked(p, api);
    if (c)
        model_egc_init(egc, c);
    return c;
}

static int dom_leave(model_ctx *c, model_egc *egc, int rc)
{
    model_ctx_unlock(c);
    model_egc_cleanup(egc);
    return rc;
}

static int pause_or_unpause(libxl_ctx *p, uint32_t domid, const libxl_asyncop_how *how,
                            bool pause, const char *api)
{
    model_egc egc;
    model_ctx *c = dom_enter(p, api, &egc);
    model_ao *ao;
    int i;
    if (!c)
        return ERROR_FAIL;
    i = find_domain(c, domid);
    if (domid != 0 && i < 0)
        return dom_leave(c, &egc, ERROR_DOMAIN_NOTFOUND);
    ao = model_ao_create(c, how);
    if (!ao)
        return dom_leave(c, &egc, ERROR_NOMEM);
    if (i >= 0)
        c->domains->d[i].paused = pause;
    model_ao_complete(&egc, ao, 0); /* inside the initiating call */
    return dom_leave(c, &egc, model_ao_inprogress(&egc, ao));
}

int libxl_domain_pause(libxl_ctx *ctx, uint32_t domid, const libxl_asyncop_how *ao_how)
{
    return pause_or_unpause(ctx, domid, ao_how, true, "libxl_domain_pause");
}

int libxl_domain_unpause(libxl_ctx *ctx, uint32_t domid, const libxl_asyncop_how *ao_how)
{
    return pause_or_unpause(ctx, domid, ao_how, false, "libxl_domain_unpause");
}

static void dom_op_free(dom_op *op)
{
    if (op->fds[0] >= 0) {
        close(op->fds[0]);
        close(op->fds[1]);
    }
    free(op);
}

static void dom_fd_ready(model_egc *egc, model_reg *r, short revents);
static void dom_timeout_fired(model_egc *egc, model_reg *r, void *arg);

static const model_reg_ops dom_ops = {
    .fd_ready = dom_fd_ready,
    .timeout_fired = dom_timeout_fired,
};

static void dom_cancel_timeout(model_egc *egc, dom_op *op)
{
    if (op->tm && !model_timeout_cancel(egc, op->tm))
        model_reg_orphan(op->tm); /* still owed by the app; nobody waits */
    op->tm = NULL;
}

static void dom_finish(model_egc *egc, dom_op *op, int rc)
{
    model_ctx *c = op->ctx;
    struct model_domains *ds = domains_of(c);
    int i = find_domain(c, op->domid);
    if (op->fd)
        model_fd_deregister(egc, op->fd);
    op->fd = NULL;
    dom_cancel_timeout(egc, op);
    if (!rc) {
        switch (op->kind) {
        case DOM_DESTROY:
            if (i >= 0)
                ds->d[i] = ds->d[--ds->n];
            model_evgen_domain_event(egc, c, op->domid, LIBXL_EVENT_TYPE_DOMAIN_DEATH, 0);
            break;
        case DOM_SHUTDOWN:
            if (i >= 0)
                ds->d[i].shutdown = true;
            model_evgen_domain_event(egc, c, op->domid, LIBXL_EVENT_TYPE_DOMAIN_SHUTDOWN,
                                     LIBXL_SHUTDOWN_REASON_POWEROFF);
            break;
        case DOM_CREATE:
            if (ds && ds->n < MAX_FAKE_DOMAINS) {
                ds->d[ds->n].domid = op->domid;
                ds->d[ds->n].paused = true;
                ds->d[ds->n].shutdown = false;
                ds->n++;
                *op->domid_out = op->domid; /* written late, as libxl does */
            } else {
                rc = ERROR_NOMEM;
            }
            break;
        }
    }
    /* Completes before the fire-now timeout is delivered. */
    model_ao_complete(egc, op->ao, rc);
    dom_op_free(op);
}

static void dom_fd_ready(model_egc *egc, model_reg *r, short revents)
{
    dom_op *op = r->arg;
    char buf[16];
    (void)revents;
    while (read(op->fds[0], buf, sizeof buf) > 0)
        ;
    dom_finish(egc, op, 0);
}

static void dom_child_exited(model_egc *egc, model_child *ch, int status)
{
    dom_op *op = ch->arg;
    dom_finish(egc, op, WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : ERROR_FAIL);
}

static void dom_timeout_fired(model_egc *egc, model_reg *r, void *arg)
{
    dom_op *op = arg;
    (void)r;
    op->tm = NULL;
    dom_finish(egc, op, ERROR_TIMEDOUT);
}

static int dom_async(libxl_ctx *p, const char *api, int kind, uint32_t domid, uint32_t *domid_out,
                     int timeout_s, const libxl_asyncop_how *how)
{
    model_egc egc;
    model_ctx *c = dom_enter(p, api, &egc);
    dom_op *op;
    int rc;
    if (!c)
        return ERROR_FAIL;
    if (kind != DOM_CREATE && (domid == 0 || find_domain(c, domid) < 0))
        return dom_leave(c, &egc, domid == 0 ? ERROR_INVAL : ERROR_DOMAIN_NOTFOUND);
    op = calloc(1, sizeof *op);
    if (!op)
        return dom_leave(c, &egc, ERROR_NOMEM);
    op->ctx = c;
    op->kind = kind;
    op->domid = kind == DOM_CREATE ? domains_of(c)->next_domid++ : domid;
    op->domid_out = domid_out;
    op->fds[0] = op->fds[1] = -1;
    op->ao = model_ao_create(c, how);
    if (!op->ao) {
        rc = ERROR_FAIL;
        goto fail;
    }
    if (kind == DOM_DESTROY && model_rules(c)->destroy_forks && model_children_mainloop(c)) {
        /* 1-2 ms, so that the child is often still running when the
         * initiating call returns, and sometimes not. */
        if (model_child_fork(c, 1000 + (int)(op->domid % 2) * 1000, 0, dom_child_exited, op) < 0) {
            model_log(c, XTL_ERROR, "libxlmodel: fork failed: %s", strerror(errno));
            rc = ERROR_FAIL;
            goto fail;
        }
        return dom_leave(c, &egc, model_ao_inprogress(&egc, op->ao));
    }
    if (pipe2(op->fds, O_NONBLOCK | O_CLOEXEC) < 0) {
        rc = ERROR_FAIL;
        goto fail;
    }
    if (timeout_s) {
        struct timeval abs;
        model_wall_now(&abs);
        abs.tv_sec += timeout_s;
        rc = model_timeout_register(&egc, c, abs, &dom_ops, op, &op->tm);
        if (rc)
            goto fail;
    }
    rc = model_fd_register(&egc, c, op->fds[0], POLLIN, &dom_ops, op, &op->fd);
    if (rc)
        goto fail;
    if (write(op->fds[1], "d", 1) < 0) {
        rc = ERROR_FAIL;
        goto fail;
    }
    return dom_leave(c, &egc, model_ao_inprogress(&egc, op->ao));

fail:
    /* The initiating call fails: undo, and no completion is reported. */
    if (op->tm) {
        if (!model_timeout_cancel(&egc, op->tm))
            model_reg_orphan(op->tm);
    }
    if (op->ao)
        model_ao_fail_initiation(op->ao);
    dom_op_free(op);
    return dom_leave(c, &egc, rc);
}

int libxl_domain_destroy(libxl_ctx *ctx, uint32_t domid, const libxl_asyncop_how *ao_how)
{
    return dom_async(ctx, "libxl_domain_destroy", DOM_DESTROY, domid, NULL, 0, ao_how);
}

int libxl_domain_shutdown(libxl_ctx *ctx, uint32_t domid, const libxl_asyncop_how *ao_how)
{
    return dom_async(ctx, "libxl_domain_shutdown", DOM_SHUTDOWN, domid, NULL, 60, ao_how);
}

int libxl_domain_create_new(libxl_ctx *ctx, libxl_domain_config *d_config, uint32_t *domid,
                            const libxl_asyncop_how *ao_how,
                            const libxl_asyncprogress_how *aop_console_how)
{
    (void)d_config;
    (void)aop_console_how;
    if (!domid)
        return ERROR_INVAL;
    return dom_async(ctx, "libxl_domain_create_new", DOM_CREATE, 0, domid, 10, ao_how);
}

/* ---- a lifecycle scenario through the public API, for tests ---- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int completions, last_rc;
    int shutdowns, deaths;
} scen_state;

static void scen_ao_done(libxl_ctx *ctx, int rc, void *for_callback)
{
    scen_state *s = for_callback;
    (void)ctx;
    pthread_mutex_lock(&s->mu);
    s->completions++;
    s->last_rc = rc;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

static void scen_event(void *user, libxl_event *ev)
{
    scen_state *s = user;
    pthread_mutex_lock(&s->mu);
    if (ev->type == LIBXL_EVENT_TYPE_DOMAIN_SHUTDOWN)
        s->shutdowns++;
    else if (ev->type == LIBXL_EVENT_TYPE_DOMAIN_DEATH)
        s->deaths++;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
    libxl_event_free(NULL, ev);
}

static const libxl_event_hooks scen_hooks = {
    .event_occurs_mask = ~(uint64_t)0,
    .event_occurs = scen_event,
};

/* Waits until *counter reaches want (10 s bound). */
static int scen_wait(scen_state *s, int *counter, int want)
{
    struct timespec until;
    int ok;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&s->mu);
    while (*counter < want)
        if (pthread_cond_timedwait(&s->cond, &s->mu, &until) != 0)
            break;
    ok = *counter >= want && s->last_rc == 0;
    pthread_mutex_unlock(&s->mu);
    return ok ? 0 : -1;
}

int libxlmodel_domain_scenario(libxl_ctx *ctx, int rounds, int async)
{
    scen_state s;
    libxl_asyncop_how how = {.callback = scen_ao_done};
    const libxl_asyncop_how *h = async ? &how : NULL;
    int r, rc = 0, want = 0;

    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cond, NULL);
    how.u.for_callback = &s;
    libxl_event_register_callbacks(ctx, &scen_hooks, &s);
    for (r = 0; r < rounds && !rc; r++) {
        uint32_t domid = 0;
        libxl_evgen_domain_death *evg = NULL;
        int c0;

        if (libxl_domain_create_new(ctx, NULL, &domid, h, NULL)) { rc = -1; break; }
        if (async && scen_wait(&s, &s.completions, ++want)) { rc = -2; break; }
        if (domid == 0) { rc = -3; break; }
        if (libxl_evenable_domain_death(ctx, domid, 1000 + (uint64_t)r, &evg)) { rc = -4; break; }

        pthread_mutex_lock(&s.mu);
        c0 = s.completions;
        pthread_mutex_unlock(&s.mu);
        if (libxl_domain_unpause(ctx, domid, h)) { rc = -5; break; }
        if (async) {
            /* unpause completes inside the initiating call */
            pthread_mutex_lock(&s.mu);
            if (s.completions != c0 + 1)
                rc = -6;
            pthread_mutex_unlock(&s.mu);
            want++;
            if (rc)
                break;
        }
        if (libxl_domain_shutdown(ctx, domid, h)) { rc = -7; break; }
        if (async && scen_wait(&s, &s.completions, ++want)) { rc = -8; break; }
        if (scen_wait(&s, &s.shutdowns, r + 1)) { rc = -9; break; }
        if (libxl_domain_destroy(ctx, domid, h)) { rc = -10; break; }
        if (async && scen_wait(&s, &s.completions, ++want)) { rc = -11; break; }
        if (scen_wait(&s, &s.deaths, r + 1)) { rc = -12; break; }
        libxl_evdisable_domain_death(ctx, evg);
    }
    libxl_event_register_callbacks(ctx, NULL, NULL);
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.cond);
    return rc;
}
