//go:build libxlmodel

/*
 * ctx.c: the libxl_ctx of the model and the small synchronous libxl API
 * (version, domain list, childproc, event callbacks, evgens). It owns the
 * mode table, which is the one place where libxl versions differ, and the
 * live-ctx registry that turns a late call on a freed ctx into a reported
 * violation instead of a crash.
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

static void hold_handles_lock(void); /* xentoolcore's handle lock, below */

/* Sources: libxl-contract.md section 3 and xen-patches/README, section
 * "Semantics for a C model of libxl": the patched 4.2 hands out pooled
 * slots, checks and ignores late calls, and cancels with
 * timeout_modify({0,0}) like 4.17. */
const model_mode_rules model_modes[LIBXLMODEL_MODE_COUNT] = {
    [LIBXLMODEL_MODE_4_17] = {
        .name = "4.17",
        .version_major = 4, .version_minor = 17, .version_extra = ".0",
        .records_pooled = true,
        .stale_fd_tolerated = true,
        .stale_timeout_tolerated = false, /* never deregistered: no stale */
        .cancel = CANCEL_BY_FIRE_NOW,
        .repoll_before_callback = true,
        .cross_thread_deregistration = true,
        .destroy_forks = true,
    },
    [LIBXLMODEL_MODE_4_2_UNPATCHED] = {
        .name = "4.2-unpatched",
        .version_major = 4, .version_minor = 2, .version_extra = ".1",
        .records_pooled = false,
        .stale_fd_tolerated = false,
        .stale_timeout_tolerated = false,
        .cancel = CANCEL_BY_DEREGISTER,
        .repoll_before_callback = false,
        .cross_thread_deregistration = false,
        .fired_self_cancel_calls_hook = true,
        .watch_fd_until_ctx_free = true,
    },
    [LIBXLMODEL_MODE_4_2_PATCHED] = {
        .name = "4.2-patched",
        .version_major = 4, .version_minor = 2, .version_extra = ".1",
        .records_pooled = true,
        .stale_fd_tolerated = true,
        .stale_timeout_tolerated = true, /* a free slot: ignored */
        .cancel = CANCEL_BY_FIRE_NOW,
        .repoll_before_callback = true,
        .cross_thread_deregistration = true,
        .watch_fd_until_ctx_free = true,
    },
    /* xen-patches/README, "Unpatched 4.2.0": as 4.2.1, plus the wrong
     * timeout_deregister argument that stable-4.2 f5f20508d2 fixed. */
    [LIBXLMODEL_MODE_4_2_0_UNPATCHED] = {
        .name = "4.2.0-unpatched",
        .version_major = 4, .version_minor = 2, .version_extra = ".0",
        .records_pooled = false,
        .stale_fd_tolerated = false,
        .stale_timeout_tolerated = false,
        .cancel = CANCEL_BY_DEREGISTER,
        .repoll_before_callback = false,
        .cross_thread_deregistration = false,
        .timeout_deregister_by_reference = true,
        .fired_self_cancel_calls_hook = true,
        .watch_fd_until_ctx_free = true,
    },
    /* xen-patches/README, "4.2.2 - 4.3.x": upstream's stale-event fixes
     * (pooled nexus records, late calls checked, re-poll, cancel by
     * fire-now), and one bug left: a timeout callback that cancels its
     * own delivered timeout makes libxl call timeout_modify({0,0}) with
     * the token just delivered. A second delivery of it would reach a
     * nexus back on the idle list, or handed to the next timeout: not
     * tolerated. */
    [LIBXLMODEL_MODE_4_2_2] = {
        .name = "4.2.2",
        .version_major = 4, .version_minor = 2, .version_extra = ".2",
        .records_pooled = true,
        .stale_fd_tolerated = true,
        .stale_timeout_tolerated = false,
        .cancel = CANCEL_BY_FIRE_NOW,
        .repoll_before_callback = true,
        .cross_thread_deregistration = true,
        .fired_self_cancel_calls_hook = true,
        .fired_self_cancel_modifies = true,
        .watch_fd_until_ctx_free = true,
    },
};

const char *libxlmodel_mode_name(int mode)
{
    if (mode < 0 || mode >= LIBXLMODEL_MODE_COUNT)
        return "unknown";
    return model_modes[mode].name;
}

const model_mode_rules *model_rules(model_ctx *ctx) { return &model_modes[ctx->mode]; }

void libxlmodel_set_default_mode(int mode)
{
    if (mode >= 0 && mode < LIBXLMODEL_MODE_COUNT)
        __atomic_store_n(&g_model.default_mode, mode, __ATOMIC_RELAXED);
}

int libxlmodel_default_mode(void) { return __atomic_load_n(&g_model.default_mode, __ATOMIC_RELAXED); }

/* ---- ctx slabs, live set and graveyard (under g_model.mu) ---- */

#define CTX_SLAB 32
#define CTX_QUARANTINE 256

static model_ctx **ctx_slabs;
static int ctx_nslabs;
static model_ctx *ctx_free_list;
static model_ctx *ctx_q_head, *ctx_q_tail;
static int ctx_q_n;
static uint64_t ctx_next_id;

bool model_slab_contains_ctx(const void *p)
{
    return model_in_slabs((void *const *)ctx_slabs, ctx_nslabs, sizeof(model_ctx), CTX_SLAB, p);
}

bool model_in_slabs(void *const *slabs, int nslabs, size_t elem, int per_slab, const void *p)
{
    int i;
    for (i = 0; i < nslabs; i++) {
        const char *base = slabs[i];
        const char *q = p;
        if (q >= base && q < base + elem * (size_t)per_slab)
            return (size_t)(q - base) % elem == 0;
    }
    return false;
}

model_ctx *model_ctx_slab_alloc(void)
{
    model_ctx *c;
    pthread_mutex_lock(&g_model.mu);
    if (!ctx_free_list) {
        model_ctx *slab = calloc(CTX_SLAB, sizeof *slab);
        model_ctx **slabs = realloc(ctx_slabs, sizeof *slabs * (size_t)(ctx_nslabs + 1));
        int i;
        if (!slab || !slabs) {
            free(slab);
            if (slabs)
                ctx_slabs = slabs;
            pthread_mutex_unlock(&g_model.mu);
            return NULL;
        }
        ctx_slabs = slabs;
        ctx_slabs[ctx_nslabs++] = slab;
        for (i = 0; i < CTX_SLAB; i++) {
            pthread_mutexattr_t a;
            pthread_mutexattr_init(&a);
            pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
            pthread_mutex_init(&slab[i].mu, &a);
            pthread_mutexattr_destroy(&a);
            pthread_cond_init(&slab[i].cond, NULL);
            slab[i].pool_next = ctx_free_list;
            ctx_free_list = &slab[i];
        }
    }
    c = ctx_free_list;
    ctx_free_list = c->pool_next;
    c->pool_next = NULL;
    c->id = ++ctx_next_id;
    pthread_mutex_unlock(&g_model.mu);
    return c;
}

/* A freed ctx stays poisoned for CTX_QUARANTINE later frees before its
 * slot can be reused, and never while an occurred_* call has it pinned. */
void model_ctx_quarantine(model_ctx *ctx)
{
    pthread_mutex_lock(&g_model.mu);
    ctx->pool_next = NULL;
    if (ctx_q_tail)
        ctx_q_tail->pool_next = ctx;
    else
        ctx_q_head = ctx;
    ctx_q_tail = ctx;
    ctx_q_n++;
    while (ctx_q_n > CTX_QUARANTINE && ctx_q_head->pins == 0) {
        model_ctx *old = ctx_q_head;
        ctx_q_head = old->pool_next;
        if (!ctx_q_head)
            ctx_q_tail = NULL;
        ctx_q_n--;
        old->magic = 0;
        old->pool_next = ctx_free_list;
        ctx_free_list = old;
    }
    pthread_mutex_unlock(&g_model.mu);
}

model_ctx *model_ctx_pin(libxl_ctx *p, const char *api, int freed_kind)
{
    model_ctx *c = (model_ctx *)p;
    pthread_mutex_lock(&g_model.mu);
    if (!p || !model_slab_contains_ctx(p)) {
        pthread_mutex_unlock(&g_model.mu);
        model_violation(LIBXLMODEL_V_UNKNOWN_CTX, NULL, NULL,
                        "%s called with %p, which is not a ctx the model allocated", api, (void *)p);
        return NULL;
    }
    if (c->magic != CTX_MAGIC_LIVE) {
        pthread_mutex_unlock(&g_model.mu);
        model_violation(freed_kind, c, NULL, "%s called on ctx %p after libxl_ctx_free", api, (void *)p);
        return NULL;
    }
    c->pins++;
    pthread_mutex_unlock(&g_model.mu);
    return c;
}

void model_ctx_unpin(model_ctx *ctx)
{
    pthread_mutex_lock(&g_model.mu);
    ctx->pins--;
    pthread_mutex_unlock(&g_model.mu);
}

/* Pins, locks and re-checks liveness (a concurrent ctx_free may have won
 * between the lookup and the lock). Returns NULL, unlocked, if dead. */
model_ctx *model_enter_locked(libxl_ctx *p, const char *api)
{
    model_ctx *c;
    if (!model_api_entry_ok(p, api))
        return NULL;
    c = model_ctx_pin(p, api, LIBXLMODEL_V_API_MISUSE);
    if (!c)
        return NULL;
    model_ctx_lock(c);
    model_ctx_unpin(c);
    if (c->magic != CTX_MAGIC_LIVE) {
        model_ctx_unlock(c);
        model_violation(LIBXLMODEL_V_API_MISUSE, c, NULL, "%s raced libxl_ctx_free", api);
        return NULL;
    }
    return c;
}

model_ctx *model_api_enter(libxl_ctx *p, const char *api) { return model_enter_locked(p, api); }

bool model_api_entry_ok(libxl_ctx *ctx, const char *api)
{
    if (model_tls.in_hook > 0) {
        model_violation(LIBXLMODEL_V_HOOK_CALLED_LIBXL, (model_ctx *)ctx, NULL,
                        "%s called from inside an osevent hook (libxl's ctx lock is held)", api);
        return false;
    }
    return true;
}

void model_ctx_lock(model_ctx *ctx)
{
    pthread_mutex_lock(&ctx->mu);
    if (ctx->lock_depth++ == 0)
        ctx->lock_owner = pthread_self();
}

void model_ctx_unlock(model_ctx *ctx)
{
    if (--ctx->lock_depth == 0)
        ctx->lock_owner = 0;
    pthread_mutex_unlock(&ctx->mu);
}

bool model_ctx_locked_by_me(model_ctx *ctx)
{
    /* lock_owner is only written by the holder; a stale read by anyone
     * else can only be some other thread's id, never ours. */
    return __atomic_load_n(&ctx->lock_depth, __ATOMIC_RELAXED) > 0 &&
           pthread_equal(ctx->lock_owner, pthread_self());
}

/* ---- egc ---- */

void model_egc_init(model_egc *egc, model_ctx *ctx)
{
    egc->ctx = ctx;
    egc->head = NULL;
    egc->tail = &egc->head;
}

void model_egc_defer(model_egc *egc, void (*fn)(model_ctx *, void *, int), void *arg, int rc)
{
    model_deferred *d = calloc(1, sizeof *d);
    if (!d) {
        /* Out of memory: run it now rather than lose a completion. */
        fn(egc->ctx, arg, rc);
        return;
    }
    d->fn = fn;
    d->arg = arg;
    d->rc = rc;
    *egc->tail = d;
    egc->tail = &d->next;
}

void model_egc_cleanup(model_egc *egc)
{
    while (egc->head) {
        model_deferred *d = egc->head;
        egc->head = d->next;
        if (!egc->head)
            egc->tail = &egc->head;
        d->fn(egc->ctx, d->arg, d->rc);
        free(d);
    }
}

/* ---- ctx alloc / free ---- */

int libxl_ctx_alloc(libxl_ctx **pctx, int version, unsigned flags, xentoollog_logger *lg)
{
    model_ctx *c;
    (void)flags;
    if (!model_api_entry_ok(NULL, "libxl_ctx_alloc"))
        return ERROR_FAIL;
    if (!pctx)
        return ERROR_INVAL;
    if (version != LIBXL_VERSION)
        return ERROR_VERSION;
    model_watchdog_start();
    hold_handles_lock();
    c = model_ctx_slab_alloc();
    if (!c)
        return ERROR_NOMEM;
    model_ctx_lock(c);
    c->mode = libxlmodel_default_mode();
    c->lg = lg;
    c->hooks = NULL;
    c->hooks_user = NULL;
    c->hooks_registered = false;
    c->event_hooks = NULL;
    c->event_user = NULL;
    c->child_hooks = NULL;
    c->child_user = NULL;
    c->regs = NULL;
    memset(c->idle_head, 0, sizeof c->idle_head);
    memset(c->idle_tail, 0, sizeof c->idle_tail);
    memset(c->idle_n, 0, sizeof c->idle_n);
    c->aos = NULL;
    c->aos_running = 0;
    c->evgens = NULL;
    c->watch_reg = NULL;
    c->watch_fds[0] = c->watch_fds[1] = -1;
    c->hook_events = 0;
    c->stale = 0;
    c->sigchld_calls = 0;
    c->children = NULL;
    c->domains = NULL;
    memset(&c->version, 0, sizeof c->version);
    c->version.xen_version_major = model_modes[c->mode].version_major;
    c->version.xen_version_minor = model_modes[c->mode].version_minor;
    c->version.xen_version_extra = (char *)model_modes[c->mode].version_extra;
    c->version.compiler = (char *)"goxl libxlmodel";
    c->version.capabilities = (char *)"xen-3.0-x86_64 model";
    c->version.changeset = (char *)"libxlmodel";
    c->version.pagesize = 4096;
    c->version.commandline = (char *)"";
    c->version.build_id = (char *)"";
    c->version.compile_by = c->version.compile_domain = c->version.compile_date = (char *)"";
    pthread_mutex_lock(&g_model.mu);
    c->magic = CTX_MAGIC_LIVE;
    pthread_mutex_unlock(&g_model.mu);
    model_ctx_unlock(c);
    MODEL_COUNT(ctx_allocs);
    model_log(c, XTL_DEBUG, "libxlmodel: ctx %p allocated, behaving as libxl %s", (void *)c,
              model_modes[c->mode].name);
    *pctx = (libxl_ctx *)c;
    return 0;
}

static void free_evgens(model_egc *egc, model_ctx *ctx);

int libxl_ctx_free(libxl_ctx *p)
{
    model_ctx *c;
    model_egc egc;
    if (!p)
        return 0;
    if (!model_api_entry_ok(p, "libxl_ctx_free"))
        return ERROR_FAIL;
    c = model_ctx_pin(p, "libxl_ctx_free", LIBXLMODEL_V_API_MISUSE);
    if (!c)
        return ERROR_INVAL;
    hold_handles_lock();
    model_egc_init(&egc, c);
    model_ctx_lock(c);
    model_ctx_unpin(c);
    if (c->magic != CTX_MAGIC_LIVE) {
        model_ctx_unlock(c);
        model_violation(LIBXLMODEL_V_API_MISUSE, c, NULL, "libxl_ctx_free called twice concurrently");
        return ERROR_INVAL;
    }
    if (c->aos_running) {
        /* libxl >= 4.6 asserts here. */
        model_violation(LIBXLMODEL_V_CTX_FREE_WITH_AO_RUNNING, c, NULL,
                        "libxl_ctx_free with %d asynchronous operation(s) still running",
                        c->aos_running);
        model_ao_abandon_all(c);
    }
    free_evgens(&egc, c);
    if (c->children) {
        /* 4.17: libxl_ctx_free calls libxl_childproc_setmode(ctx,0,0),
         * which asserts ctx->children is empty. Children belong to
         * operations, so this comes with ctx_free_with_ao_running. The
         * application inherits them, as in libxl. */
        int n = 0;
        model_child *ch;
        for (ch = c->children; ch; ch = ch->next)
            n++;
        model_violation(LIBXLMODEL_V_CTX_FREE_WITH_CHILDREN, c, NULL,
                        "libxl_ctx_free with %d child(ren) not yet reaped (first pid %d)", n,
                        (int)c->children->pid);
        while ((ch = c->children)) {
            c->children = ch->next;
            free(ch);
        }
    }
    model_domains_ctx_free(c);
    model_log(c, XTL_DEBUG, "libxlmodel: ctx %p freed", (void *)c);
    model_osevent_ctx_free(&egc, c);
    pthread_mutex_lock(&g_model.mu);
    c->magic = CTX_MAGIC_FREED;
    pthread_mutex_unlock(&g_model.mu);
    c->lg = NULL;
    model_ctx_unlock(c);
    model_egc_cleanup(&egc);
    model_ctx_quarantine(c);
    MODEL_COUNT(ctx_frees);
    return 0;
}

int libxlmodel_set_ctx_mode(libxl_ctx *p, int mode)
{
    model_ctx *c;
    int rc = -1;
    if (mode < 0 || mode >= LIBXLMODEL_MODE_COUNT)
        return -1;
    c = model_enter_locked(p, "libxlmodel_set_ctx_mode");
    if (!c)
        return -1;
    if (!c->hooks_registered && !c->regs) {
        c->mode = mode;
        c->version.xen_version_major = model_modes[mode].version_major;
        c->version.xen_version_minor = model_modes[mode].version_minor;
        c->version.xen_version_extra = (char *)model_modes[mode].version_extra;
        rc = 0;
    }
    model_ctx_unlock(c);
    return rc;
}

int libxlmodel_ctx_mode(libxl_ctx *p)
{
    model_ctx *c = model_enter_locked(p, "libxlmodel_ctx_mode");
    int mode;
    if (!c)
        return -1;
    mode = c->mode;
    model_ctx_unlock(c);
    return mode;
}

/* ---- registration of the application's callbacks ---- */

void libxl_osevent_register_hooks(libxl_ctx *p, const libxl_osevent_hooks *hooks, void *user)
{
    model_ctx *c = model_enter_locked(p, "libxl_osevent_register_hooks");
    if (!c)
        return;
    if (c->hooks_registered || c->regs)
        /* libxl >= 4.5 asserts that nothing is registered yet. */
        model_violation(LIBXLMODEL_V_API_MISUSE, c, NULL,
                        "libxl_osevent_register_hooks called %s",
                        c->hooks_registered ? "twice" : "after registrations were made");
    c->hooks = hooks;
    c->hooks_user = user;
    c->hooks_registered = true;
    model_ctx_unlock(c);
}

void libxl_event_register_callbacks(libxl_ctx *p, const libxl_event_hooks *hooks, void *user)
{
    model_ctx *c = model_enter_locked(p, "libxl_event_register_callbacks");
    if (!c)
        return;
    c->event_hooks = hooks;
    c->event_user = user;
    model_ctx_unlock(c);
}

void libxl_childproc_setmode(libxl_ctx *p, const libxl_childproc_hooks *hooks, void *user)
{
    model_ctx *c = model_enter_locked(p, "libxl_childproc_setmode");
    if (!c)
        return;
    if (c->children)
        /* 4.17 asserts XEN_LIST_EMPTY(&CTX->children). */
        model_violation(LIBXLMODEL_V_API_MISUSE, c, NULL,
                        "libxl_childproc_setmode with children running");
    c->child_hooks = hooks;
    c->child_user = user;
    model_ctx_unlock(c);
}

/* ---- xentoolcore's handle lock ----
 *
 * Xen's libraries register every open handle in one process-wide list
 * under one mutex, with no fork handler. libxl_ctx_alloc and
 * libxl_ctx_free take it (opening and closing the ctx's handles), and
 * the child that libxl's destroy forks takes it again in
 * xc_interface_open. A fork while another thread holds it leaves the
 * child waiting forever. The model holds it for handles_hold_us in alloc
 * and free, to widen that window, and its child gives up after a second
 * with CHILD_HANDLES_LOCK_EXIT, which the parent reports as a violation
 * instead of hanging. */
static pthread_mutex_t handles_lock = PTHREAD_MUTEX_INITIALIZER;
static int handles_hold_us;
#define CHILD_HANDLES_LOCK_EXIT 117

void libxlmodel_set_handles_lock_hold_us(int us) { __atomic_store_n(&handles_hold_us, us, __ATOMIC_RELAXED); }

static void hold_handles_lock(void)
{
    int us = __atomic_load_n(&handles_hold_us, __ATOMIC_RELAXED);
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};
    if (us <= 0)
        return;
    pthread_mutex_lock(&handles_lock);
    nanosleep(&ts, NULL);
    pthread_mutex_unlock(&handles_lock);
}

/* In a forked child: xc_interface_open's registration. */
static void child_open_handle(void)
{
    struct timespec deadline;
    if (__atomic_load_n(&handles_hold_us, __ATOMIC_RELAXED) <= 0)
        return;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 1;
    if (pthread_mutex_timedlock(&handles_lock, &deadline) != 0)
        _exit(CHILD_HANDLES_LOCK_EXIT);
    pthread_mutex_unlock(&handles_lock);
}

bool model_children_mainloop(model_ctx *ctx)
{
    return ctx->child_hooks && ctx->child_hooks->chldowner == libxl_sigchld_owner_mainloop;
}

pid_t model_child_fork(model_ctx *ctx, int sleep_us, int exit_code,
                       void (*exited)(model_egc *, model_child *, int), void *arg)
{
    model_child *ch = calloc(1, sizeof *ch);
    pid_t pid;
    if (!ch) {
        errno = ENOMEM;
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        free(ch);
        return -1;
    }
    if (pid == 0) {
        /* A copy of a multi-threaded process: async-signal-safe calls
         * only, and _exit (no atexit handlers, no sanitizer reports). */
        struct timespec ts = {.tv_sec = sleep_us / 1000000, .tv_nsec = (long)(sleep_us % 1000000) * 1000};
        child_open_handle();
        if (sleep_us > 0)
            nanosleep(&ts, NULL);
        _exit(exit_code);
    }
    ch->pid = pid;
    ch->exited = exited;
    ch->arg = arg;
    ch->next = ctx->children;
    ctx->children = ch;
    MODEL_COUNT(children_forked);
    return pid;
}

/* ctx locked. Unlinks ch and reports its exit to its owner. */
static void child_reaped(model_egc *egc, model_ctx *c, model_child *ch, int status)
{
    model_child **pp;
    for (pp = &c->children; *pp; pp = &(*pp)->next)
        if (*pp == ch) {
            *pp = ch->next;
            break;
        }
    MODEL_COUNT(children_reaped);
    if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_HANDLES_LOCK_EXIT)
        model_violation(LIBXLMODEL_V_CHILD_INHERITED_HANDLES_LOCK, c, NULL,
                        "child %d was forked while another thread held xentoolcore's handle lock "
                        "(a ctx was being allocated or freed): on real Xen it never exits",
                        (int)ch->pid);
    ch->exited(egc, ch, status);
    free(ch);
}

void libxl_childproc_sigchld_occurred(libxl_ctx *p)
{
    model_egc egc;
    model_ctx *c = model_enter_locked(p, "libxl_childproc_sigchld_occurred");
    bool again = true;
    if (!c)
        return;
    if (!model_children_mainloop(c))
        model_violation(LIBXLMODEL_V_API_MISUSE, c, NULL,
                        "libxl_childproc_sigchld_occurred without libxl_sigchld_owner_mainloop");
    c->sigchld_calls++;
    model_egc_init(&egc, c);
    /* childproc_checkall: waitpid(WNOHANG) on each of libxl's own pids,
     * never on -1, so that no other child of the process is taken. */
    while (again) {
        model_child *ch;
        again = false;
        for (ch = c->children; ch; ch = ch->next) {
            int status = 0;
            pid_t got;
            do
                got = waitpid(ch->pid, &status, WNOHANG);
            while (got < 0 && errno == EINTR);
            if (got == 0)
                continue;
            if (got < 0) {
                /* libxl: "waitpid() gave ECHILD but we have a child", a
                 * disaster; someone else reaped libxl's child. */
                model_violation(LIBXLMODEL_V_CHILD_STOLEN, c, NULL,
                                "waitpid(%d) failed (%s): another waiter reaped libxl's child",
                                (int)ch->pid, strerror(errno));
                status = 255 << 8;
            }
            child_reaped(&egc, c, ch, status);
            again = true; /* the list may have changed */
            break;
        }
    }
    model_ctx_unlock(c);
    model_egc_cleanup(&egc);
}

int libxl_childproc_reaped(libxl_ctx *p, pid_t pid, int status)
{
    model_egc egc;
    model_child *ch;
    int rc = ERROR_UNKNOWN_CHILD;
    model_ctx *c = model_enter_locked(p, "libxl_childproc_reaped");
    if (!c)
        return ERROR_FAIL;
    if (!model_children_mainloop(c))
        model_violation(LIBXLMODEL_V_API_MISUSE, c, NULL,
                        "libxl_childproc_reaped without libxl_sigchld_owner_mainloop");
    model_egc_init(&egc, c);
    for (ch = c->children; ch; ch = ch->next)
        if (ch->pid == pid) {
            child_reaped(&egc, c, ch, status);
            rc = 0;
            break;
        }
    model_ctx_unlock(c);
    model_egc_cleanup(&egc);
    return rc;
}

const libxl_version_info *libxl_get_version_info(libxl_ctx *p)
{
    model_ctx *c = model_enter_locked(p, "libxl_get_version_info");
    if (!c)
        return NULL;
    model_ctx_unlock(c);
    return &c->version;
}

/* goxl's xen-patches/ series exports this marker; the model answers for the
 * mode new ctxs get, so that goxl's detection can be tested per mode. */
int libxl_goxl_osevent_fix(void)
{
    return libxlmodel_default_mode() == LIBXLMODEL_MODE_4_2_PATCHED;
}

void libxl_event_free(libxl_ctx *ctx, libxl_event *event)
{
    (void)ctx;
    if (!model_api_entry_ok(ctx, "libxl_event_free"))
        return;
    free(event); /* the model's events own no other memory */
}

/* ---- domains: the model has only dom0 for now ---- */

void libxl_dominfo_init(libxl_dominfo *p) { memset(p, 0, sizeof *p); }

void libxl_dominfo_dispose(libxl_dominfo *p)
{
    free(p->ssid_label);
    memset(p, 0, sizeof *p);
}

void model_fill_dominfo(libxl_dominfo *d, uint32_t domid, bool paused, bool shutdown)
{
    libxl_dominfo_init(d);
    d->domid = domid;
    d->running = !paused && !shutdown;
    d->paused = paused;
    d->shutdown = shutdown;
    d->current_memkb = d->max_memkb = 1048576;
    d->vcpu_online = 2;
    d->vcpu_max_id = 1;
    d->domain_type = LIBXL_DOMAIN_TYPE_PV;
}

libxl_dominfo *libxl_list_domain(libxl_ctx *p, int *nb_domain_out)
{
    model_ctx *c = model_enter_locked(p, "libxl_list_domain");
    libxl_dominfo *list;
    if (!c)
        return NULL;
    list = model_domains_list(c, nb_domain_out);
    model_ctx_unlock(c);
    return list;
}

void libxl_dominfo_list_free(libxl_dominfo *list, int nb_domain)
{
    int i;
    for (i = 0; list && i < nb_domain; i++)
        libxl_dominfo_dispose(&list[i]);
    free(list);
}

int libxl_domain_info(libxl_ctx *p, libxl_dominfo *info_r, uint32_t domid)
{
    model_ctx *c = model_enter_locked(p, "libxl_domain_info");
    int rc;
    if (!c)
        return ERROR_FAIL;
    /* dom0 and the fake host's domains, as libxl_list_domain sees them. */
    rc = model_domains_info(domid, info_r);
    model_ctx_unlock(c);
    return rc;
}

/* ---- evgens: one shared "xenstore watch" fd, as in libxl ---- */

struct libxl__evgen_domain_death {
    model_evgen g;
};

static void emit_event(model_ctx *ctx, void *arg, int rc);

static void evgen_emit(model_egc *egc, model_evgen *g, libxl_event_type type, int reason)
{
    libxl_event *ev = calloc(1, sizeof *ev);
    if (!ev)
        return;
    ev->domid = g->domid;
    ev->for_user = g->user;
    ev->type = type;
    if (type == LIBXL_EVENT_TYPE_DOMAIN_SHUTDOWN)
        ev->u.domain_shutdown.shutdown_reason = (uint8_t)reason;
    model_egc_defer(egc, emit_event, ev, 0);
}

/* The "@releaseDomain" watch fired: like libxl's
 * domain_death_xswatch_callback, compare every evgen of this ctx with the
 * host's domains and report each shutdown and each death once per evgen. */
static void watch_fd_ready(model_egc *egc, model_reg *r, short revents)
{
    char buf[64];
    model_evgen *g;
    (void)revents;
    while (read(r->fd, buf, sizeof buf) > 0)
        ;
    for (g = egc->ctx->evgens; g; g = g->next) {
        bool shutdown = false;
        int reason = 0;
        if (g->death_reported)
            continue;
        if (model_domains_state(g->domid, &shutdown, &reason) < 0) {
            evgen_emit(egc, g, LIBXL_EVENT_TYPE_DOMAIN_DEATH, 0);
            g->death_reported = true;
        } else if (shutdown && !g->shutdown_reported) {
            evgen_emit(egc, g, LIBXL_EVENT_TYPE_DOMAIN_SHUTDOWN, reason);
            g->shutdown_reported = true;
        }
    }
}

static const model_reg_ops watch_ops = {.fd_ready = watch_fd_ready};

int libxl_evenable_domain_death(libxl_ctx *p, uint32_t domid, libxl_ev_user user,
                                libxl_evgen_domain_death **evgen_out)
{
    model_ctx *c;
    model_egc egc;
    struct libxl__evgen_domain_death *e;
    int rc = 0;
    c = model_enter_locked(p, "libxl_evenable_domain_death");
    if (!c)
        return ERROR_FAIL;
    model_egc_init(&egc, c);
    e = calloc(1, sizeof *e);
    if (!e) {
        rc = ERROR_NOMEM;
        goto out;
    }
    if (c->watch_fds[0] < 0) {
        if (pipe2(c->watch_fds, O_CLOEXEC | O_NONBLOCK) < 0) {
            rc = ERROR_FAIL;
            goto out;
        }
        rc = model_fd_register(&egc, c, c->watch_fds[0], POLLIN, &watch_ops, NULL, &c->watch_reg);
        if (rc) {
            close(c->watch_fds[0]);
            close(c->watch_fds[1]);
            c->watch_fds[0] = c->watch_fds[1] = -1;
            c->watch_reg = NULL;
            goto out;
        }
        model_domains_watch_add(c->watch_fds[1]);
    }
    if (!c->evgens) {
        /* The first watch fires at once in libxl too. */
        if (write(c->watch_fds[1], "w", 1) < 0) {
        }
    }
    e->g.user = user;
    e->g.domid = domid;
    e->g.next = c->evgens;
    c->evgens = &e->g;
    *evgen_out = e;
    e = NULL;
out:
    free(e);
    model_ctx_unlock(c);
    model_egc_cleanup(&egc);
    return rc;
}

static void watch_drop(model_egc *egc, model_ctx *c)
{
    if (c->watch_reg)
        model_fd_deregister(egc, c->watch_reg);
    c->watch_reg = NULL;
    if (c->watch_fds[0] >= 0) {
        model_domains_watch_remove(c->watch_fds[1]);
        close(c->watch_fds[0]);
        close(c->watch_fds[1]);
    }
    c->watch_fds[0] = c->watch_fds[1] = -1;
}

void libxl_evdisable_domain_death(libxl_ctx *p, libxl_evgen_domain_death *evgen)
{
    model_ctx *c;
    model_egc egc;
    model_evgen **pp;
    c = model_enter_locked(p, "libxl_evdisable_domain_death");
    if (!c)
        return;
    model_egc_init(&egc, c);
    for (pp = &c->evgens; *pp; pp = &(*pp)->next)
        if (*pp == &evgen->g)
            break;
    if (!*pp) {
        model_violation(LIBXLMODEL_V_API_MISUSE, c, NULL,
                        "libxl_evdisable_domain_death(%p): not an evgen of this ctx", (void *)evgen);
    } else {
        *pp = evgen->g.next;
        free(evgen);
        if (!c->evgens && !model_rules(c)->watch_fd_until_ctx_free)
            watch_drop(&egc, c);
    }
    model_ctx_unlock(c);
    model_egc_cleanup(&egc);
}

static void free_evgens(model_egc *egc, model_ctx *c)
{
    while (c->evgens) {
        model_evgen *g = c->evgens;
        c->evgens = g->next;
        free(g);
    }
    watch_drop(egc, c);
}

static void emit_event(model_ctx *ctx, void *arg, int rc)
{
    libxl_event *ev = arg;
    (void)rc;
    /* Unlocked, on the thread that was inside libxl, as libxl does. */
    if (ctx->event_hooks && ctx->event_hooks->event_occurs &&
        (ctx->event_hooks->event_occurs_mask & ((uint64_t)1 << ev->type)))
        ctx->event_hooks->event_occurs(ctx->event_user, ev);
    else
        free(ev); /* the model keeps no queue for libxl_event_check */
}

void model_evgen_domain_event(model_egc *egc, model_ctx *ctx, uint32_t domid,
                              libxl_event_type type, int shutdown_reason)
{
    model_evgen *g;
    for (g = ctx->evgens; g; g = g->next) {
        libxl_event *ev;
        if (g->domid != domid)
            continue;
        ev = calloc(1, sizeof *ev);
        if (!ev)
            continue;
        ev->domid = domid;
        ev->for_user = g->user;
        ev->type = type;
        if (type == LIBXL_EVENT_TYPE_DOMAIN_SHUTDOWN)
            ev->u.domain_shutdown.shutdown_reason = (uint8_t)shutdown_reason;
        model_egc_defer(egc, emit_event, ev, 0);
    }
}
