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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "model.h"

#define MAX_FAKE_DOMAINS 4096 /* tests/bench scales the daemon to 1,000 domains */
#define MAX_WATCHERS 4096

/* The fake hypervisor: one table for the whole process, as Xen has one
 * for the host. Every ctx sees every domain, whichever ctx built it, and a
 * domain outlives the ctx that built it (a per-operation ctx). Its lock is
 * a leaf: taken with a ctx locked, never the other way round. */
static struct {
    pthread_mutex_t mu;
    struct {
        uint32_t domid;
        char name[64];
        bool paused, shutdown;
        int reason;
    } d[MAX_FAKE_DOMAINS];
    int n;
    uint32_t next_domid;
    int create_delay_ms;
    int create_device_timeout_ms; /* > 0: the create's device never connects */
    int save_delay_ms; /* how long libxl_domain_suspend takes */
    bool save_fails;   /* libxl_domain_suspend fails like a full disk */
    bool destroy_fails; /* libxl_domain_destroy refuses with ERROR_FAIL */
    int shutdown_reason; /* what libxl_domain_shutdown makes the guest report */
    /* Write ends of every ctx's "@releaseDomain" watch pipe. */
    int watchers[MAX_WATCHERS];
    int nwatchers;
} g_doms = {.mu = PTHREAD_MUTEX_INITIALIZER, .next_domid = 1};

enum { DOM_DESTROY, DOM_SHUTDOWN, DOM_CREATE, DOM_SUSPEND };

typedef struct {
    model_ctx *ctx;
    model_ao *ao;
    int kind;
    uint32_t domid;
    uint32_t *domid_out;
    model_reg *fd, *tm, *ready;
    int fds[2];
} dom_op;

/* g_doms.mu held. */
/* The wall-clock time ms milliseconds from now: the abs of a timeout. */
static struct timeval wall_in_ms(int ms)
{
    struct timeval abs;
    model_wall_now(&abs);
    abs.tv_sec += ms / 1000;
    abs.tv_usec += (ms % 1000) * 1000;
    if (abs.tv_usec >= 1000000) {
        abs.tv_sec++;
        abs.tv_usec -= 1000000;
    }
    return abs;
}

static int find_domain_locked(uint32_t domid)
{
    int i;
    for (i = 0; i < g_doms.n; i++)
        if (g_doms.d[i].domid == domid)
            return i;
    return -1;
}

static bool domain_exists(uint32_t domid)
{
    bool ok;
    pthread_mutex_lock(&g_doms.mu);
    ok = find_domain_locked(domid) >= 0;
    pthread_mutex_unlock(&g_doms.mu);
    return ok;
}

/* Fires every ctx's watch, as xenstore fires @releaseDomain for all
 * watchers; each ctx then rescans (model_domains_scan). g_doms.mu held. */
static void notify_watchers_locked(void)
{
    int i;
    for (i = 0; i < g_doms.nwatchers; i++)
        if (write(g_doms.watchers[i], "r", 1) < 0) {
            /* full pipe: a scan is pending anyway */
        }
}

void model_domains_watch_add(int wfd)
{
    pthread_mutex_lock(&g_doms.mu);
    if (g_doms.nwatchers < MAX_WATCHERS)
        g_doms.watchers[g_doms.nwatchers++] = wfd;
    pthread_mutex_unlock(&g_doms.mu);
}

/* Before the fd is closed, so that no write reaches a reused number. */
void model_domains_watch_remove(int wfd)
{
    int i;
    pthread_mutex_lock(&g_doms.mu);
    for (i = 0; i < g_doms.nwatchers; i++)
        if (g_doms.watchers[i] == wfd) {
            g_doms.watchers[i] = g_doms.watchers[--g_doms.nwatchers];
            break;
        }
    pthread_mutex_unlock(&g_doms.mu);
}

int model_domains_state(uint32_t domid, bool *shutdown, int *reason)
{
    int i;
    pthread_mutex_lock(&g_doms.mu);
    i = find_domain_locked(domid);
    if (i >= 0) {
        *shutdown = g_doms.d[i].shutdown;
        *reason = g_doms.d[i].reason;
    }
    pthread_mutex_unlock(&g_doms.mu);
    return i >= 0 ? 0 : -1;
}

libxl_dominfo *model_domains_list(model_ctx *ctx, int *n_out)
{
    libxl_dominfo *list;
    int n, i;
    (void)ctx;
    pthread_mutex_lock(&g_doms.mu);
    n = 1 + g_doms.n;
    list = calloc((size_t)n, sizeof *list);
    if (list) {
        model_fill_dominfo(&list[0], 0, false, false);
        for (i = 1; i < n; i++) {
            model_fill_dominfo(&list[i], g_doms.d[i - 1].domid, g_doms.d[i - 1].paused,
                               g_doms.d[i - 1].shutdown);
            list[i].shutdown_reason = g_doms.d[i - 1].reason;
        }
        *n_out = n;
    }
    pthread_mutex_unlock(&g_doms.mu);
    return list;
}

int model_domains_info(uint32_t domid, libxl_dominfo *info)
{
    int i;
    if (domid == 0) {
        if (info)
            model_fill_dominfo(info, 0, false, false);
        return 0;
    }
    pthread_mutex_lock(&g_doms.mu);
    i = find_domain_locked(domid);
    if (i >= 0 && info) {
        model_fill_dominfo(info, domid, g_doms.d[i].paused, g_doms.d[i].shutdown);
        info->shutdown_reason = g_doms.d[i].reason;
    }
    pthread_mutex_unlock(&g_doms.mu);
    return i >= 0 ? 0 : ERROR_DOMAIN_NOTFOUND;
}

void model_domains_ctx_free(model_ctx *ctx)
{
    (void)ctx; /* domains belong to the host, not to a ctx */
}

/* ---- test controls (libxlmodel.h) ---- */

void libxlmodel_domains_reset(void)
{
    pthread_mutex_lock(&g_doms.mu);
    g_doms.n = 0;
    g_doms.create_delay_ms = 0;
    g_doms.create_device_timeout_ms = 0;
    g_doms.save_delay_ms = 0;
    g_doms.save_fails = false;
    g_doms.destroy_fails = false;
    g_doms.shutdown_reason = LIBXL_SHUTDOWN_REASON_POWEROFF;
    pthread_mutex_unlock(&g_doms.mu);
}

void libxlmodel_set_shutdown_reason(int reason)
{
    pthread_mutex_lock(&g_doms.mu);
    g_doms.shutdown_reason = reason;
    pthread_mutex_unlock(&g_doms.mu);
}

void libxlmodel_set_destroy_fails(int fails)
{
    pthread_mutex_lock(&g_doms.mu);
    g_doms.destroy_fails = fails != 0;
    pthread_mutex_unlock(&g_doms.mu);
}

void libxlmodel_set_create_delay_ms(int ms)
{
    pthread_mutex_lock(&g_doms.mu);
    g_doms.create_delay_ms = ms > 0 ? ms : 0;
    pthread_mutex_unlock(&g_doms.mu);
}

void libxlmodel_set_create_device_timeout_ms(int ms)
{
    pthread_mutex_lock(&g_doms.mu);
    g_doms.create_device_timeout_ms = ms > 0 ? ms : 0;
    pthread_mutex_unlock(&g_doms.mu);
}

void libxlmodel_set_save_behaviour(int delay_ms, int fails)
{
    pthread_mutex_lock(&g_doms.mu);
    g_doms.save_delay_ms = delay_ms > 0 ? delay_ms : 0;
    g_doms.save_fails = fails != 0;
    pthread_mutex_unlock(&g_doms.mu);
}

int libxlmodel_domains_copy(uint32_t *out, int max)
{
    int i, n;
    pthread_mutex_lock(&g_doms.mu);
    n = g_doms.n;
    for (i = 0; i < n && i < max; i++)
        out[i] = g_doms.d[i].domid;
    pthread_mutex_unlock(&g_doms.mu);
    return n;
}

char *libxl_domid_to_name(libxl_ctx *p, uint32_t domid)
{
    model_ctx *c = model_enter_locked(p, "libxl_domid_to_name");
    char *name = NULL;
    int i;
    if (!c)
        return NULL;
    if (domid == 0) {
        name = strdup("Domain-0");
    } else {
        pthread_mutex_lock(&g_doms.mu);
        i = find_domain_locked(domid);
        if (i >= 0 && g_doms.d[i].name[0])
            name = strdup(g_doms.d[i].name);
        pthread_mutex_unlock(&g_doms.mu);
    }
    model_ctx_unlock(c);
    return name;
}

int libxl_name_to_domid(libxl_ctx *p, const char *name, uint32_t *domid)
{
    model_ctx *c = model_enter_locked(p, "libxl_name_to_domid");
    int i, rc = ERROR_INVAL;
    if (!c)
        return ERROR_FAIL;
    if (name && strcmp(name, "Domain-0") == 0) {
        *domid = 0;
        rc = 0;
    } else if (name) {
        pthread_mutex_lock(&g_doms.mu);
        for (i = 0; i < g_doms.n; i++)
            if (strcmp(g_doms.d[i].name, name) == 0) {
                *domid = g_doms.d[i].domid;
                rc = 0;
                break;
            }
        pthread_mutex_unlock(&g_doms.mu);
    }
    model_ctx_unlock(c);
    return rc;
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
    if (domid != 0 && !domain_exists(domid))
        return dom_leave(c, &egc, ERROR_DOMAIN_NOTFOUND);
    ao = model_ao_create(c, how);
    if (!ao)
        return dom_leave(c, &egc, ERROR_NOMEM);
    pthread_mutex_lock(&g_doms.mu);
    i = find_domain_locked(domid);
    if (i >= 0)
        g_doms.d[i].paused = pause;
    pthread_mutex_unlock(&g_doms.mu);
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
static void dom_ready_fired(model_egc *egc, model_reg *r, void *arg);

static const model_reg_ops dom_ops = {
    .fd_ready = dom_fd_ready,
    .timeout_fired = dom_timeout_fired,
};

static const model_reg_ops dom_ready_ops = {
    .timeout_fired = dom_ready_fired,
};

static void dom_cancel(model_egc *egc, model_reg **tm)
{
    if (*tm && !model_timeout_cancel(egc, *tm))
        model_reg_orphan(*tm); /* still owed by the app; nobody waits */
    *tm = NULL;
}

static void remove_domain_locked(uint32_t domid)
{
    int i = find_domain_locked(domid);
    if (i >= 0)
        g_doms.d[i] = g_doms.d[--g_doms.n];
}

static void dom_finish(model_egc *egc, dom_op *op, int rc)
{
    if (op->fd)
        model_fd_deregister(egc, op->fd);
    op->fd = NULL;
    dom_cancel(egc, &op->tm);
    dom_cancel(egc, &op->ready);
    pthread_mutex_lock(&g_doms.mu);
    switch (op->kind) {
    case DOM_DESTROY:
        if (!rc) {
            remove_domain_locked(op->domid);
            notify_watchers_locked();
        }
        break;
    case DOM_SHUTDOWN:
        if (!rc) {
            int i = find_domain_locked(op->domid);
            if (i >= 0) {
                g_doms.d[i].shutdown = true;
                g_doms.d[i].reason = g_doms.shutdown_reason;
            }
            notify_watchers_locked();
        }
        break;
    case DOM_SUSPEND:
        /* The guest suspended at the start; a failed or aborted save
         * leaves it suspended (shut down, reason suspend), as libxl does:
         * resuming it is the application's job. */
        if (op->ao->aborted && !rc)
            rc = ERROR_ABORTED;
        if (!rc && g_doms.save_fails)
            rc = ERROR_FAIL;
        break;
    case DOM_CREATE:
        /* libxl 4.17 (domcreate_complete, retain_domain): the domain is
         * kept on success AND on ERROR_ABORTED, and *domid is written in
         * both cases; on any other failure libxl destroys it. */
        if (op->ao->aborted && !rc)
            rc = ERROR_ABORTED;
        if (!rc || rc == ERROR_ABORTED) {
            *op->domid_out = op->domid; /* written late, as libxl does */
        } else {
            remove_domain_locked(op->domid);
            notify_watchers_locked();
        }
        break;
    }
    pthread_mutex_unlock(&g_doms.mu);
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

/* How long destroy's child lives; < 0: 1 or 2 ms. */
static int destroy_child_us = -1;

void libxlmodel_set_destroy_child_us(int us) { __atomic_store_n(&destroy_child_us, us, __ATOMIC_RELAXED); }

static void dom_child_exited(model_egc *egc, model_child *ch, int status)
{
    dom_op *op = ch->arg;
    dom_finish(egc, op, WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : ERROR_FAIL);
}

static void dom_timeout_fired(model_egc *egc, model_reg *r, void *arg)
{
    dom_op *op = arg;
    /* As libxl's devstate_timeout: cancel the wait, its timeout included. */
    model_timeout_fired_self_cancel(egc, r);
    op->tm = NULL;
    dom_finish(egc, op, ERROR_TIMEDOUT);
}

/* A slow create (libxlmodel_set_create_delay_ms): the build ends here. */
static void dom_ready_fired(model_egc *egc, model_reg *r, void *arg)
{
    dom_op *op = arg;
    (void)r;
    op->ready = NULL;
    dom_finish(egc, op, 0);
}

static int dom_async(libxl_ctx *p, const char *api, int kind, uint32_t domid, uint32_t *domid_out,
                     int timeout_s, const char *name, const libxl_asyncop_how *how)
{
    model_egc egc;
    model_ctx *c = dom_enter(p, api, &egc);
    dom_op *op;
    int rc, delay_ms = 0, device_timeout_ms = 0;
    if (!c)
        return ERROR_FAIL;
    if (kind != DOM_CREATE && (domid == 0 || !domain_exists(domid)))
        return dom_leave(c, &egc, domid == 0 ? ERROR_INVAL : ERROR_DOMAIN_NOTFOUND);
    if (kind == DOM_DESTROY) {
        bool refuse;
        pthread_mutex_lock(&g_doms.mu);
        refuse = g_doms.destroy_fails;
        pthread_mutex_unlock(&g_doms.mu);
        if (refuse)
            return dom_leave(c, &egc, ERROR_FAIL);
    }
    op = calloc(1, sizeof *op);
    if (!op)
        return dom_leave(c, &egc, ERROR_NOMEM);
    op->ctx = c;
    op->kind = kind;
    op->domid = domid;
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
        int us = __atomic_load_n(&destroy_child_us, __ATOMIC_RELAXED);
        if (us < 0)
            us = 1000 + (int)(op->domid % 2) * 1000;
        if (model_child_fork(c, us, 0, dom_child_exited, op) < 0) {
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
    if (kind == DOM_CREATE) {
        /* The domain exists from early in the build, as in Xen. */
        pthread_mutex_lock(&g_doms.mu);
        delay_ms = g_doms.create_delay_ms;
        device_timeout_ms = g_doms.create_device_timeout_ms;
        if (g_doms.n >= MAX_FAKE_DOMAINS) {
            pthread_mutex_unlock(&g_doms.mu);
            rc = ERROR_NOMEM;
            goto fail;
        }
        op->domid = g_doms.next_domid++;
        g_doms.d[g_doms.n].domid = op->domid;
        g_doms.d[g_doms.n].paused = true;
        g_doms.d[g_doms.n].shutdown = false;
        g_doms.d[g_doms.n].reason = 0;
        snprintf(g_doms.d[g_doms.n].name, sizeof g_doms.d[g_doms.n].name, "%s", name ? name : "");
        g_doms.n++;
        pthread_mutex_unlock(&g_doms.mu);
        timeout_s += delay_ms / 1000;
    }
    if (kind == DOM_SUSPEND) {
        int i;
        pthread_mutex_lock(&g_doms.mu);
        delay_ms = g_doms.save_delay_ms;
        i = find_domain_locked(domid);
        if (i >= 0) {
            g_doms.d[i].shutdown = true;
            g_doms.d[i].reason = LIBXL_SHUTDOWN_REASON_SUSPEND;
        }
        notify_watchers_locked();
        pthread_mutex_unlock(&g_doms.mu);
        timeout_s = 10 + delay_ms / 1000;
    }
    if (device_timeout_ms) {
        /* A device that never connects (libxlmodel_set_create_device_
         * timeout_ms): the wait's timeout fires and fails the create,
         * as libxl's LIBXL_INIT_TIMEOUT does for a vif whose backend
         * never answers. */
        rc = model_timeout_register(&egc, c, wall_in_ms(device_timeout_ms), &dom_ops, op, &op->tm);
        if (rc)
            goto fail;
        return dom_leave(c, &egc, model_ao_inprogress(&egc, op->ao));
    }
    if (timeout_s) {
        struct timeval abs;
        model_wall_now(&abs);
        abs.tv_sec += timeout_s;
        rc = model_timeout_register(&egc, c, abs, &dom_ops, op, &op->tm);
        if (rc)
            goto fail;
    }
    if (delay_ms) {
        rc = model_timeout_register(&egc, c, wall_in_ms(delay_ms), &dom_ready_ops, op, &op->ready);
        if (rc)
            goto fail;
        return dom_leave(c, &egc, model_ao_inprogress(&egc, op->ao));
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
    dom_cancel(&egc, &op->tm);
    dom_cancel(&egc, &op->ready);
    if (op->fd)
        model_fd_deregister(&egc, op->fd);
    if (kind == DOM_CREATE && op->domid) {
        pthread_mutex_lock(&g_doms.mu);
        remove_domain_locked(op->domid);
        pthread_mutex_unlock(&g_doms.mu);
    }
    if (op->ao)
        model_ao_fail_initiation(op->ao);
    dom_op_free(op);
    return dom_leave(c, &egc, rc);
}

int libxl_domain_destroy(libxl_ctx *ctx, uint32_t domid, const libxl_asyncop_how *ao_how)
{
    return dom_async(ctx, "libxl_domain_destroy", DOM_DESTROY, domid, NULL, 0, NULL, ao_how);
}

int libxl_domain_shutdown(libxl_ctx *ctx, uint32_t domid, const libxl_asyncop_how *ao_how)
{
    return dom_async(ctx, "libxl_domain_shutdown", DOM_SHUTDOWN, domid, NULL, 60, NULL, ao_how);
}

/* The stream: a page of "memory" written in the initiating call (libxl's
 * save helper writes from a child; the model has none). */
int libxl_domain_suspend(libxl_ctx *ctx, uint32_t domid, int fd, int flags,
                         const libxl_asyncop_how *ao_how)
{
    char page[4096];
    (void)flags;
    memset(page, 0x5a, sizeof page);
    if (fd < 0)
        return ERROR_INVAL;
    if (write(fd, page, sizeof page) < 0) {
    }
    return dom_async(ctx, "libxl_domain_suspend", DOM_SUSPEND, domid, NULL, 0, NULL, ao_how);
}

/* Completes inside the initiating call, as pause does. */
int libxl_domain_resume(libxl_ctx *p, uint32_t domid, int suspend_cancel,
                        const libxl_asyncop_how *how)
{
    model_egc egc;
    model_ctx *c = dom_enter(p, "libxl_domain_resume", &egc);
    model_ao *ao;
    int i;
    (void)suspend_cancel;
    if (!c)
        return ERROR_FAIL;
    pthread_mutex_lock(&g_doms.mu);
    i = find_domain_locked(domid);
    if (i >= 0) {
        g_doms.d[i].shutdown = false;
        g_doms.d[i].reason = 0;
    }
    pthread_mutex_unlock(&g_doms.mu);
    if (i < 0)
        return dom_leave(c, &egc, ERROR_DOMAIN_NOTFOUND);
    ao = model_ao_create(c, how);
    if (!ao)
        return dom_leave(c, &egc, ERROR_NOMEM);
    model_ao_complete(&egc, ao, 0);
    return dom_leave(c, &egc, model_ao_inprogress(&egc, ao));
}

int libxl_retrieve_domain_configuration(libxl_ctx *p, uint32_t domid, libxl_domain_config *d_config,
                                        const libxl_asyncop_how *how)
{
    model_egc egc;
    model_ctx *c = dom_enter(p, "libxl_retrieve_domain_configuration", &egc);
    model_ao *ao;
    int i;
    if (!c)
        return ERROR_FAIL;
    pthread_mutex_lock(&g_doms.mu);
    i = find_domain_locked(domid);
    if (i >= 0 && d_config)
        d_config->c_info.name = strdup(g_doms.d[i].name);
    pthread_mutex_unlock(&g_doms.mu);
    if (i < 0)
        return dom_leave(c, &egc, ERROR_DOMAIN_NOTFOUND);
    ao = model_ao_create(c, how);
    if (!ao)
        return dom_leave(c, &egc, ERROR_NOMEM);
    model_ao_complete(&egc, ao, 0);
    return dom_leave(c, &egc, model_ao_inprogress(&egc, ao));
}

char *libxl_domain_config_to_json(libxl_ctx *ctx, libxl_domain_config *d)
{
    char buf[256];
    (void)ctx;
    snprintf(buf, sizeof buf,
             "{\"c_info\":{\"type\":\"pv\",\"name\":\"%s\"},\"b_info\":{\"max_vcpus\":1,"
             "\"max_memkb\":65536,\"target_memkb\":65536,\"type.pv\":{\"kernel\":\"/dev/null\"}}}",
             d && d->c_info.name ? d->c_info.name : "");
    return strdup(buf);
}

int libxl_domain_create_new(libxl_ctx *ctx, libxl_domain_config *d_config, uint32_t *domid,
                            const libxl_asyncop_how *ao_how,
                            const libxl_asyncprogress_how *aop_console_how)
{
    (void)aop_console_how;
    if (!domid)
        return ERROR_INVAL;
    return dom_async(ctx, "libxl_domain_create_new", DOM_CREATE, 0, domid, 10,
                     d_config ? d_config->c_info.name : NULL, ao_how);
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
