//go:build libxlmodel

/*
 * refloop.c: a small, correct application event loop for libxl (poll(2),
 * one dispatcher thread, any number of ctxs), plus switchable faults that
 * turn it into the broken loops the model must catch. It is the checker's
 * check: with no faults it must produce zero violations in every mode.
 *
 * Contract points it honours, and where:
 *   - hooks only take loop->mu, which is never held while calling libxl
 *     (rule (a) of libxl_event.h), and never wait for the dispatcher;
 *   - each delivery re-checks, under loop->mu, that its registration is
 *     still live (ids are never reused), so a deregistration made by an
 *     earlier delivery of the same batch is honoured (4.2 unpatched);
 *   - a timeout leaves the table before it is delivered: exactly once, and
 *     a timeout_modify racing it finds nothing and is a no-op;
 *   - teardown: close the ctx's gate, drain in-flight deliveries, reap its
 *     registrations (pending fire-now timeouts included), then
 *     libxl_ctx_free, whose own fd_deregister calls find nothing.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "model.h"

typedef struct rl_binding {
    struct libxlmodel_refloop *loop;
    libxl_ctx *ctx;
    bool dereg_by_ref; /* libxl 4.2.0: timeout_deregister gets a void ** */
    bool gate_open;
    bool freed;
    int inflight;
    struct rl_binding *next;
} rl_binding;

enum { RL_FD = 1, RL_TIMEOUT = 2 };

typedef struct {
    uint64_t id;
    rl_binding *b;
    int kind;
    int fd;
    short events;
    void *for_libxl;
    struct timeval abs;
    bool fire_now;
    bool zombie; /* fault deliver_after_deregister: one more delivery */
} rl_reg;

struct libxlmodel_refloop {
    libxlmodel_refloop_faults f;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int wake_fd;
    pthread_t thread;
    bool stop;
    rl_reg *regs;
    int nregs, cap;
    uint64_t next_id;
    uint64_t registers_seen;
    uint64_t deliveries;
    int blocked;
    rl_binding *bindings;
};

static const libxl_childproc_hooks rl_childproc = {.chldowner = libxl_sigchld_owner_mainloop};

static void rl_wake(libxlmodel_refloop *loop)
{
    uint64_t one = 1;
    ssize_t n = write(loop->wake_fd, &one, sizeof one);
    (void)n;
}

static rl_reg *rl_find(libxlmodel_refloop *loop, uint64_t id)
{
    int i;
    for (i = 0; i < loop->nregs; i++)
        if (loop->regs[i].id == id)
            return &loop->regs[i];
    return NULL;
}

static void rl_remove(libxlmodel_refloop *loop, rl_reg *r)
{
    *r = loop->regs[--loop->nregs];
}

static rl_reg *rl_add(libxlmodel_refloop *loop)
{
    rl_reg *r;
    if (loop->nregs == loop->cap) {
        int cap = loop->cap ? loop->cap * 2 : 64;
        rl_reg *n = realloc(loop->regs, sizeof *n * (size_t)cap);
        if (!n)
            return NULL;
        loop->regs = n;
        loop->cap = cap;
    }
    r = &loop->regs[loop->nregs++];
    memset(r, 0, sizeof *r);
    r->id = ++loop->next_id;
    return r;
}

/* Faults that act at the start of a hook, before loop->mu. */
static void rl_hook_faults(rl_binding *b)
{
    libxlmodel_refloop *loop = b->loop;
    if (loop->f.call_libxl_inside_hook)
        (void)libxl_get_version_info(b->ctx);
    if (loop->f.block_in_hook_ms && !__atomic_exchange_n(&loop->blocked, 1, __ATOMIC_RELAXED)) {
        struct timespec ts = {loop->f.block_in_hook_ms / 1000,
                              (long)(loop->f.block_in_hook_ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
}

/* loop->mu held */
static bool rl_register_fails(libxlmodel_refloop *loop)
{
    uint64_t n = ++loop->registers_seen;
    uint64_t nth = (uint64_t)loop->f.fail_nth_register;
    uint64_t every = (uint64_t)loop->f.fail_every_nth_register;
    if (!nth)
        return false;
    return n == nth || (every && n > nth && (n - nth) % every == 0);
}

/* The part fd and timeout registrations share: injected faults, the
 * record, the for_app token. Returns the record with loop->mu held for the
 * caller to finish, or NULL (unlocked) when the registration fails. */
static rl_reg *rl_register_locked(rl_binding *b, int kind, void *for_libxl, void **for_app_out)
{
    libxlmodel_refloop *loop = b->loop;
    rl_reg *r;
    rl_hook_faults(b);
    pthread_mutex_lock(&loop->mu);
    if (rl_register_fails(loop) || !(r = rl_add(loop))) {
        pthread_mutex_unlock(&loop->mu);
        return NULL;
    }
    r->b = b;
    r->kind = kind;
    r->for_libxl = for_libxl;
    *for_app_out = (void *)(uintptr_t)r->id;
    return r;
}

static int rl_fd_register(void *user, int fd, void **for_app_out, short events, void *for_libxl)
{
    rl_binding *b = user;
    libxlmodel_refloop *loop = b->loop;
    rl_reg *r = rl_register_locked(b, RL_FD, for_libxl, for_app_out);
    if (!r)
        return ERROR_OSEVENT_REG_FAIL;
    r->fd = fd;
    r->events = events;
    pthread_mutex_unlock(&loop->mu);
    rl_wake(loop);
    return 0;
}

static int rl_fd_modify(void *user, int fd, void **for_app_update, short events)
{
    rl_binding *b = user;
    libxlmodel_refloop *loop = b->loop;
    rl_reg *r;
    (void)fd;
    rl_hook_faults(b);
    pthread_mutex_lock(&loop->mu);
    r = rl_find(loop, (uint64_t)(uintptr_t)*for_app_update);
    if (!r) {
        pthread_mutex_unlock(&loop->mu);
        return ERROR_OSEVENT_REG_FAIL;
    }
    r->events = events;
    pthread_mutex_unlock(&loop->mu);
    rl_wake(loop);
    return 0;
}

static void rl_deregister(rl_binding *b, void *for_app)
{
    libxlmodel_refloop *loop = b->loop;
    rl_reg *r;
    rl_hook_faults(b);
    pthread_mutex_lock(&loop->mu);
    /* Not found: reaped before libxl_ctx_free, which deregisters too. */
    r = rl_find(loop, (uint64_t)(uintptr_t)for_app);
    if (r) {
        if (loop->f.deliver_after_deregister)
            r->zombie = true;
        else
            rl_remove(loop, r);
    }
    pthread_mutex_unlock(&loop->mu);
    rl_wake(loop);
}

static void rl_fd_deregister(void *user, int fd, void *for_app)
{
    (void)fd;
    rl_deregister(user, for_app);
}

static int rl_timeout_register(void *user, void **for_app_out, struct timeval abs, void *for_libxl)
{
    rl_binding *b = user;
    libxlmodel_refloop *loop = b->loop;
    rl_reg *r = rl_register_locked(b, RL_TIMEOUT, for_libxl, for_app_out);
    if (!r)
        return ERROR_OSEVENT_REG_FAIL;
    r->abs = abs;
    pthread_mutex_unlock(&loop->mu);
    if (loop->f.occurred_inside_hook)
        /* The classic mistake: "it is due, deliver it right here". */
        libxl_osevent_occurred_timeout(b->ctx, for_libxl);
    rl_wake(loop);
    return 0;
}

static int rl_timeout_modify(void *user, void **for_app_update, struct timeval abs)
{
    rl_binding *b = user;
    libxlmodel_refloop *loop = b->loop;
    rl_reg *r;
    rl_hook_faults(b);
    pthread_mutex_lock(&loop->mu);
    /* Not found: it is being delivered right now; libxl_event.h says the
     * modify must then be ignored. */
    r = rl_find(loop, (uint64_t)(uintptr_t)*for_app_update);
    if (r && !(loop->f.forget_fire_now && abs.tv_sec == 0 && abs.tv_usec == 0)) {
        r->abs = abs;
        r->fire_now = abs.tv_sec == 0 && abs.tv_usec == 0;
    }
    pthread_mutex_unlock(&loop->mu);
    rl_wake(loop);
    return 0;
}

static void rl_timeout_deregister(void *user, void *for_app)
{
    rl_binding *b = user;
    /* libxl 4.2.0 passes the address of its copy of our token. */
    if (b->dereg_by_ref && !b->loop->f.dereg_arg_as_token)
        for_app = for_app ? *(void **)for_app : NULL;
    rl_deregister(user, for_app);
}

static const libxl_osevent_hooks rl_hooks = {
    .fd_register = rl_fd_register,
    .fd_modify = rl_fd_modify,
    .fd_deregister = rl_fd_deregister,
    .timeout_register = rl_timeout_register,
    .timeout_modify = rl_timeout_modify,
    .timeout_deregister = rl_timeout_deregister,
};

/* ---- the dispatcher ---- */

typedef struct {
    rl_reg snap; /* what the loop knew when it polled */
    short revents;
} rl_delivery;

static int64_t us_until(const struct timeval *abs)
{
    struct timeval now;
    gettimeofday(&now, NULL);
    return ((int64_t)abs->tv_sec - now.tv_sec) * 1000000 + (abs->tv_usec - now.tv_usec);
}

static void *rl_main(void *arg)
{
    libxlmodel_refloop *loop = arg;
    struct pollfd *pfds = NULL;
    rl_reg *snaps = NULL;
    rl_delivery *dl = NULL;
    int cap = 0;

    model_tls.role = "dispatcher";
    for (;;) {
        int n = 1, nd = 0, i, timeout_ms = -1;
        pthread_mutex_lock(&loop->mu);
        if (loop->stop) {
            pthread_mutex_unlock(&loop->mu);
            break;
        }
        if (cap < loop->nregs + 1) {
            cap = (loop->nregs + 1) * 2;
            pfds = realloc(pfds, sizeof *pfds * (size_t)cap);
            snaps = realloc(snaps, sizeof *snaps * (size_t)cap);
            dl = realloc(dl, sizeof *dl * (size_t)cap);
            if (!pfds || !snaps || !dl) {
                fprintf(stderr, "libxlmodel refloop: out of memory\n");
                abort();
            }
        }
        pfds[0].fd = loop->wake_fd;
        pfds[0].events = POLLIN;
        for (i = 0; i < loop->nregs; i++) {
            rl_reg *r = &loop->regs[i];
            if (!r->b->gate_open)
                continue;
            if (r->zombie) {
                timeout_ms = 0;
                continue;
            }
            if (r->kind == RL_FD) {
                pfds[n].fd = r->fd;
                pfds[n].events = r->events;
                snaps[n] = *r;
                n++;
            } else {
                int64_t us = r->fire_now ? 0 : us_until(&r->abs);
                int ms = us <= 0 ? 0 : (int)((us + 999) / 1000);
                if (timeout_ms < 0 || ms < timeout_ms)
                    timeout_ms = ms;
            }
        }
        pthread_mutex_unlock(&loop->mu);

        if (poll(pfds, (nfds_t)n, timeout_ms) < 0 && errno != EINTR) {
            perror("libxlmodel refloop: poll");
            abort();
        }
        if (pfds[0].revents) {
            uint64_t v;
            ssize_t rd = read(loop->wake_fd, &v, sizeof v);
            (void)rd;
        }

        pthread_mutex_lock(&loop->mu);
        for (i = 1; i < n; i++) {
            short want = snaps[i].events | POLLERR | POLLHUP | POLLNVAL;
            if (pfds[i].revents & want) {
                dl[nd].snap = snaps[i];
                dl[nd].revents = pfds[i].revents & want;
                nd++;
            }
        }
        for (i = 0; i < loop->nregs && nd < cap; i++) {
            rl_reg *r = &loop->regs[i];
            if (!r->b->gate_open)
                continue;
            if (r->zombie || (r->kind == RL_TIMEOUT && (r->fire_now || us_until(&r->abs) <= 0))) {
                dl[nd].snap = *r;
                dl[nd].revents = r->kind == RL_FD ? (r->events & (POLLIN | POLLOUT | POLLPRI)) : 0;
                nd++;
            }
        }
        pthread_mutex_unlock(&loop->mu);

        for (i = 0; i < nd; i++) {
            rl_delivery *d = &dl[i];
            rl_binding *b = d->snap.b;
            rl_reg *r;
            if (loop->f.slow_dispatch_us) {
                struct timespec ts = {0, (long)loop->f.slow_dispatch_us * 1000};
                nanosleep(&ts, NULL);
            }
            pthread_mutex_lock(&loop->mu);
            if (!b->gate_open) {
                pthread_mutex_unlock(&loop->mu);
                continue;
            }
            r = rl_find(loop, d->snap.id);
            if (d->snap.kind == RL_TIMEOUT || d->snap.zombie) {
                /* Leaves the table before delivery: exactly once. */
                if (!r) {
                    pthread_mutex_unlock(&loop->mu);
                    continue;
                }
                rl_remove(loop, r);
            } else if (!r && !loop->f.no_liveness_recheck) {
                pthread_mutex_unlock(&loop->mu);
                continue;
            }
            b->inflight++;
            pthread_mutex_unlock(&loop->mu);

            if (d->snap.kind == RL_FD) {
                libxl_osevent_occurred_fd(b->ctx, d->snap.for_libxl, d->snap.fd, d->snap.events,
                                          d->revents);
            } else {
                libxl_osevent_occurred_timeout(b->ctx, d->snap.for_libxl);
                if (loop->f.deliver_timeout_twice)
                    libxl_osevent_occurred_timeout(b->ctx, d->snap.for_libxl);
            }

            pthread_mutex_lock(&loop->mu);
            b->inflight--;
            loop->deliveries++;
            pthread_cond_broadcast(&loop->cond);
            pthread_mutex_unlock(&loop->mu);
        }
    }
    free(pfds);
    free(snaps);
    free(dl);
    return NULL;
}

libxlmodel_refloop *libxlmodel_refloop_new(const libxlmodel_refloop_faults *f)
{
    libxlmodel_refloop *loop = calloc(1, sizeof *loop);
    if (!loop)
        return NULL;
    if (f)
        loop->f = *f;
    pthread_mutex_init(&loop->mu, NULL);
    pthread_cond_init(&loop->cond, NULL);
    loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wake_fd < 0 || pthread_create(&loop->thread, NULL, rl_main, loop) != 0) {
        if (loop->wake_fd >= 0)
            close(loop->wake_fd);
        free(loop);
        return NULL;
    }
    return loop;
}

int libxlmodel_refloop_ctx_new(libxlmodel_refloop *loop, int mode, libxl_ctx **ctx_out)
{
    libxl_ctx *ctx = NULL;
    rl_binding *b;
    int rc = libxl_ctx_alloc(&ctx, LIBXL_VERSION, 0, NULL);
    if (rc)
        return rc;
    if (mode >= 0 && libxlmodel_set_ctx_mode(ctx, mode) != 0) {
        libxl_ctx_free(ctx);
        return ERROR_INVAL;
    }
    b = calloc(1, sizeof *b);
    if (!b) {
        libxl_ctx_free(ctx);
        return ERROR_NOMEM;
    }
    b->loop = loop;
    b->ctx = ctx;
    b->gate_open = true;
    {
        /* Like any application: 4.2.0 is known by its version alone. */
        const libxl_version_info *v = libxl_get_version_info(ctx);
        b->dereg_by_ref = v && v->xen_version_major == 4 && v->xen_version_minor == 2 &&
                          v->xen_version_extra && strncmp(v->xen_version_extra, ".0", 2) == 0 &&
                          (v->xen_version_extra[2] < '0' || v->xen_version_extra[2] > '9');
    }
    pthread_mutex_lock(&loop->mu);
    b->next = loop->bindings;
    loop->bindings = b;
    pthread_mutex_unlock(&loop->mu);
    /* The setup order of libxl-contract.md section 5. */
    libxl_osevent_register_hooks(ctx, &rl_hooks, b);
    libxl_childproc_setmode(ctx, &rl_childproc, NULL);
    *ctx_out = ctx;
    return 0;
}

static int rl_drop_regs(libxlmodel_refloop *loop, rl_binding *b)
{
    int i, n = 0;
    for (i = 0; i < loop->nregs;) {
        if (loop->regs[i].b == b) {
            rl_remove(loop, &loop->regs[i]);
            n++;
        } else {
            i++;
        }
    }
    return n;
}

int libxlmodel_refloop_ctx_free(libxlmodel_refloop *loop, libxl_ctx *ctx)
{
    rl_binding *b;
    int rc, left;
    pthread_mutex_lock(&loop->mu);
    for (b = loop->bindings; b; b = b->next)
        if (b->ctx == ctx && !b->freed)
            break;
    if (!b) {
        pthread_mutex_unlock(&loop->mu);
        return ERROR_INVAL;
    }
    if (!loop->f.skip_teardown) {
        b->gate_open = false;
        while (b->inflight > 0)
            pthread_cond_wait(&loop->cond, &loop->mu);
        rl_drop_regs(loop, b); /* reap: pending fire-now timeouts too */
    }
    pthread_mutex_unlock(&loop->mu);

    rc = libxl_ctx_free(ctx);

    pthread_mutex_lock(&loop->mu);
    b->freed = true;
    if (!loop->f.skip_teardown) {
        /* libxl_ctx_free must not have registered anything new. */
        left = rl_drop_regs(loop, b);
        if (left) {
            char msg[128];
            snprintf(msg, sizeof msg, "refloop: %d registration(s) appeared during libxl_ctx_free", left);
            libxlmodel_report(LIBXLMODEL_V_APP_KEPT_REGISTRATION, ctx, msg);
        }
    }
    pthread_mutex_unlock(&loop->mu);
    rl_wake(loop);
    return rc;
}

uint64_t libxlmodel_refloop_deliveries(libxlmodel_refloop *loop)
{
    uint64_t n;
    pthread_mutex_lock(&loop->mu);
    n = loop->deliveries;
    pthread_mutex_unlock(&loop->mu);
    return n;
}

void libxlmodel_refloop_destroy(libxlmodel_refloop *loop)
{
    rl_binding *b;
    if (!loop)
        return;
    pthread_mutex_lock(&loop->mu);
    loop->stop = true;
    pthread_mutex_unlock(&loop->mu);
    rl_wake(loop);
    pthread_join(loop->thread, NULL);
    while ((b = loop->bindings)) {
        loop->bindings = b->next;
        free(b);
    }
    free(loop->regs);
    close(loop->wake_fd);
    pthread_mutex_destroy(&loop->mu);
    pthread_cond_destroy(&loop->cond);
    free(loop);
}
