//go:build libxlmodel

/*
 * violations.c: what the model knows about the application's behaviour.
 * Counters, the violation log (each entry carries the registration's
 * history so that a failing test explains itself), per-thread state, and
 * the watchdog thread that catches hooks which block.
 *
 * Violations are stored, never fatal: a test wants all of them, and a
 * model that aborted would hide the second bug behind the first.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "model.h"

model_globals g_model = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .default_mode = LIBXLMODEL_MODE_4_17,
    .hook_block_bound_ms = 2000,
    .early_slack_ms = 20,
};

__thread model_tls_t model_tls;

#define MAX_STORED_VIOLATIONS 256

static struct {
    pthread_mutex_t mu;
    libxlmodel_violation *items;
    int n;
} vlog = {.mu = PTHREAD_MUTEX_INITIALIZER};

static const char *const violation_names[LIBXLMODEL_V_COUNT] = {
    [LIBXLMODEL_V_TIMEOUT_DELIVERED_TWICE] = "timeout_delivered_twice",
    [LIBXLMODEL_V_OCCURRED_INSIDE_HOOK] = "occurred_inside_hook",
    [LIBXLMODEL_V_OCCURRED_AFTER_CTX_FREE] = "occurred_after_ctx_free",
    [LIBXLMODEL_V_UNKNOWN_CTX] = "unknown_ctx",
    [LIBXLMODEL_V_TIMEOUT_NEVER_DELIVERED] = "timeout_never_delivered",
    [LIBXLMODEL_V_FD_NEVER_DELIVERED] = "fd_never_delivered",
    [LIBXLMODEL_V_UNKNOWN_FOR_LIBXL] = "unknown_for_libxl",
    [LIBXLMODEL_V_CORRUPT_FOR_LIBXL] = "corrupt_for_libxl",
    [LIBXLMODEL_V_WRONG_CTX] = "for_libxl_of_another_ctx",
    [LIBXLMODEL_V_DELIVERY_AFTER_DEREGISTER] = "delivery_after_deregister",
    [LIBXLMODEL_V_DELIVERY_TO_FAILED_REGISTRATION] = "delivery_to_failed_registration",
    [LIBXLMODEL_V_APP_KEPT_REGISTRATION] = "app_kept_registration",
    [LIBXLMODEL_V_HOOK_BLOCKED] = "hook_blocked",
    [LIBXLMODEL_V_HOOK_CALLED_LIBXL] = "hook_called_libxl",
    [LIBXLMODEL_V_FD_MISMATCH] = "fd_mismatch",
    [LIBXLMODEL_V_EVENTS_NOT_REQUESTED] = "events_not_requested",
    [LIBXLMODEL_V_TIMEOUT_EARLY] = "timeout_early",
    [LIBXLMODEL_V_CTX_FREE_WITH_AO_RUNNING] = "ctx_free_with_ao_running",
    [LIBXLMODEL_V_API_MISUSE] = "api_misuse",
    [LIBXLMODEL_V_CTX_FREE_WITH_REGISTRATIONS] = "ctx_free_with_registrations",
    [LIBXLMODEL_V_CTX_FREE_WITH_CHILDREN] = "ctx_free_with_children",
    [LIBXLMODEL_V_CHILD_STOLEN] = "child_stolen",
    [LIBXLMODEL_V_CHILD_INHERITED_HANDLES_LOCK] = "child_inherited_handles_lock",
};

const char *libxlmodel_violation_name(int kind)
{
    if (kind < 0 || kind >= LIBXLMODEL_V_COUNT || !violation_names[kind])
        return "unknown";
    return violation_names[kind];
}

static int64_t start_ns;

static int64_t mono_raw(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

__attribute__((constructor)) static void model_start_clock(void)
{
    start_ns = mono_raw();
}

int64_t model_now_ns(void) { return mono_raw() - start_ns; }

void model_wall_now(struct timeval *tv) { gettimeofday(tv, NULL); }

int model_tid(void)
{
    if (!model_tls.tid)
        model_tls.tid = (int)syscall(SYS_gettid);
    return model_tls.tid;
}

static const char *const hist_names[] = {
    [H_FD_REGISTER] = "fd_register",
    [H_FD_MODIFY] = "fd_modify",
    [H_FD_DEREGISTER] = "fd_deregister",
    [H_TIMEOUT_REGISTER] = "timeout_register",
    [H_TIMEOUT_MODIFY] = "timeout_modify",
    [H_TIMEOUT_DEREGISTER] = "timeout_deregister",
    [H_OCCURRED_FD] = "occurred_fd",
    [H_OCCURRED_TIMEOUT] = "occurred_timeout",
    [H_STALE] = "stale-ignored",
    [H_OWNER] = "owner-acted",
    [H_NOTE] = "note",
};

void model_hist(model_reg *r, model_hist_what what, int fd, short events,
                short revents, int rc)
{
    model_hist_entry *e;
    if (!r)
        return;
    e = &r->hist[r->hist_n % HIST_LEN];
    r->hist_n++;
    e->t_ns = model_now_ns();
    e->tid = model_tid();
    e->what = (uint8_t)what;
    e->from_occurred = model_tls.in_occurred > 0;
    e->fd = (int16_t)fd;
    e->events = events;
    e->revents = revents;
    e->rc = rc;
    e->reg_id = r->reg_id;
}

static void poll_bits(char *buf, size_t n, short ev)
{
    buf[0] = 0;
    if (!ev) {
        snprintf(buf, n, "0");
        return;
    }
    snprintf(buf, n, "%s%s%s%s%s%s", ev & POLLIN ? "IN|" : "",
             ev & POLLPRI ? "PRI|" : "", ev & POLLOUT ? "OUT|" : "",
             ev & POLLERR ? "ERR|" : "", ev & POLLHUP ? "HUP|" : "",
             ev & POLLNVAL ? "NVAL|" : "");
    size_t l = strlen(buf);
    if (l && buf[l - 1] == '|')
        buf[l - 1] = 0;
}

static void format_history(model_reg *r, char *out, size_t outlen)
{
    size_t used = 0;
    unsigned first, i;
    out[0] = 0;
    if (!r)
        return;
    static const char *const states[] = {
        [REG_IDLE] = "idle", [REG_FAILED] = "register-failed", [REG_ACTIVE] = "registered",
        [REG_FIRE_NOW] = "fire-now-pending", [REG_DEREGISTERED] = "deregistered",
        [REG_DELIVERED] = "delivered",
    };
    char evs[40];
    poll_bits(evs, sizeof evs, r->events);
    used += (size_t)snprintf(out, outlen,
                             "record %p (%s) kind=%s reg=%llu state=%s fd=%d events=%s\n",
                             (void *)r,
                             r->magic == REG_MAGIC_FREED ? "freed by libxl"
                             : r->magic == REG_MAGIC_CTX_FREED ? "freed with its ctx"
                                                               : "owned by its ctx",
                             r->kind == REG_KIND_FD ? "fd" : "timeout",
                             (unsigned long long)r->reg_id,
                             r->state < sizeof states / sizeof states[0] ? states[r->state] : "?",
                             r->fd, evs);
    first = r->hist_n > HIST_LEN ? r->hist_n - HIST_LEN : 0;
    for (i = first; i < r->hist_n && used < outlen; i++) {
        model_hist_entry *e = &r->hist[i % HIST_LEN];
        char ev[40], rev[40];
        poll_bits(ev, sizeof ev, e->events);
        poll_bits(rev, sizeof rev, e->revents);
        used += (size_t)snprintf(out + used, outlen - used,
                                 "  [%10.6f s tid %d] reg=%llu %-18s fd=%d events=%s revents=%s rc=%d%s\n",
                                 (double)e->t_ns / 1e9, e->tid,
                                 (unsigned long long)e->reg_id,
                                 e->what < sizeof hist_names / sizeof hist_names[0]
                                     ? hist_names[e->what] : "?",
                                 e->fd, ev, rev, e->rc,
                                 e->from_occurred ? " [from occurred_*]" : "");
    }
}

void model_violation(int kind, model_ctx *ctx, model_reg *r, const char *fmt, ...)
{
    va_list ap;
    libxlmodel_violation *v;

    __atomic_add_fetch(&g_model.counters.violations[kind], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&g_model.counters.violations_total, 1, __ATOMIC_RELAXED);

    pthread_mutex_lock(&vlog.mu);
    if (!vlog.items)
        vlog.items = calloc(MAX_STORED_VIOLATIONS, sizeof *vlog.items);
    if (!vlog.items || vlog.n >= MAX_STORED_VIOLATIONS) {
        pthread_mutex_unlock(&vlog.mu);
        return;
    }
    v = &vlog.items[vlog.n++];
    memset(v, 0, sizeof *v);
    v->kind = kind;
    v->ctx = (uintptr_t)ctx;
    v->reg_id = r ? r->reg_id : 0;
    v->when_ns = model_now_ns();
    v->tid = model_tid();
    va_start(ap, fmt);
    vsnprintf(v->message, sizeof v->message, fmt, ap);
    va_end(ap);
    format_history(r, v->history, sizeof v->history);
    pthread_mutex_unlock(&vlog.mu);
}

void libxlmodel_report(int kind, libxl_ctx *ctx, const char *message)
{
    if (kind < 0 || kind >= LIBXLMODEL_V_COUNT)
        kind = LIBXLMODEL_V_API_MISUSE;
    model_violation(kind, (model_ctx *)ctx, NULL, "%s", message ? message : "");
}

int libxlmodel_violations_copy(libxlmodel_violation *out, int max)
{
    int n;
    pthread_mutex_lock(&vlog.mu);
    n = vlog.n;
    if (out && max > 0)
        memcpy(out, vlog.items, sizeof *out * (size_t)(n < max ? n : max));
    pthread_mutex_unlock(&vlog.mu);
    return n;
}

void libxlmodel_counters_read(libxlmodel_counters *out)
{
    uint64_t *src = (uint64_t *)&g_model.counters;
    uint64_t *dst = (uint64_t *)out;
    size_t i;
    for (i = 0; i < sizeof *out / sizeof(uint64_t); i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

void libxlmodel_reset(void)
{
    uint64_t *c = (uint64_t *)&g_model.counters;
    size_t i;
    pthread_mutex_lock(&vlog.mu);
    vlog.n = 0;
    pthread_mutex_unlock(&vlog.mu);
    for (i = 0; i < sizeof g_model.counters / sizeof(uint64_t); i++)
        __atomic_store_n(&c[i], 0, __ATOMIC_RELAXED);
    model_race_reset();
}

void libxlmodel_set_hook_block_bound_ms(int ms)
{
    __atomic_store_n(&g_model.hook_block_bound_ms, ms > 0 ? ms : 2000, __ATOMIC_RELAXED);
}

void libxlmodel_set_early_slack_ms(int ms)
{
    __atomic_store_n(&g_model.early_slack_ms, ms >= 0 ? ms : 20, __ATOMIC_RELAXED);
}

void model_log(model_ctx *ctx, xentoollog_level level, const char *fmt, ...)
{
    va_list ap;
    if (!ctx || !ctx->lg || !ctx->lg->vmessage)
        return;
    va_start(ap, fmt);
    ctx->lg->vmessage(ctx->lg, level, -1, "libxl", fmt, ap);
    va_end(ap);
}

/* ---- hook frames and the watchdog ---- */

static model_hook_frame *frames; /* under g_model.mu */
static const char *const hook_names[] = {
    "fd_register", "fd_modify", "fd_deregister",
    "timeout_register", "timeout_modify", "timeout_deregister",
};

void model_hook_enter(model_hook_frame *f, model_ctx *ctx, model_reg *r, int hook)
{
    memset(f, 0, sizeof *f);
    f->start_ns = model_now_ns();
    f->hook = hook;
    f->tid = model_tid();
    f->ctx = (uintptr_t)ctx;
    f->ctx_id = ctx->id;
    f->reg_id = r ? r->reg_id : 0;
    pthread_mutex_lock(&g_model.mu);
    f->next = frames;
    if (frames)
        frames->prev = f;
    frames = f;
    pthread_mutex_unlock(&g_model.mu);
    __atomic_add_fetch(&g_model.counters.hook_calls[hook], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&ctx->hook_events, 1, __ATOMIC_RELAXED);
    model_tls.in_hook++;
}

void model_hook_leave(model_hook_frame *f)
{
    int64_t bound = (int64_t)__atomic_load_n(&g_model.hook_block_bound_ms, __ATOMIC_RELAXED) * 1000000;
    int64_t took = model_now_ns() - f->start_ns;
    bool report;
    model_tls.in_hook--;
    pthread_mutex_lock(&g_model.mu);
    if (f->prev)
        f->prev->next = f->next;
    else
        frames = f->next;
    if (f->next)
        f->next->prev = f->prev;
    report = !f->reported && took > bound;
    f->reported = true;
    pthread_mutex_unlock(&g_model.mu);
    if (report)
        model_violation(LIBXLMODEL_V_HOOK_BLOCKED, (model_ctx *)f->ctx, NULL,
                        "hook %s (reg %llu) blocked %.3f s (bound %.3f s)",
                        hook_names[f->hook], (unsigned long long)f->reg_id,
                        (double)took / 1e9, (double)bound / 1e9);
}

static void *watchdog_main(void *arg)
{
    (void)arg;
    model_tls.role = "watchdog";
    for (;;) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        int64_t bound, now;
        model_hook_frame *f;
        struct { uintptr_t ctx; int hook; uint64_t reg; int64_t took; int tid; } hits[16];
        int nhits = 0, i;
        nanosleep(&ts, NULL);
        bound = (int64_t)__atomic_load_n(&g_model.hook_block_bound_ms, __ATOMIC_RELAXED) * 1000000;
        now = model_now_ns();
        pthread_mutex_lock(&g_model.mu);
        for (f = frames; f && nhits < 16; f = f->next) {
            if (!f->reported && now - f->start_ns > bound) {
                f->reported = true;
                hits[nhits].ctx = f->ctx;
                hits[nhits].hook = f->hook;
                hits[nhits].reg = f->reg_id;
                hits[nhits].took = now - f->start_ns;
                hits[nhits].tid = f->tid;
                nhits++;
            }
        }
        pthread_mutex_unlock(&g_model.mu);
        for (i = 0; i < nhits; i++)
            model_violation(LIBXLMODEL_V_HOOK_BLOCKED, (model_ctx *)hits[i].ctx, NULL,
                            "hook %s (reg %llu) on tid %d still blocked after %.3f s (bound %.3f s)",
                            hook_names[hits[i].hook], (unsigned long long)hits[i].reg,
                            hits[i].tid, (double)hits[i].took / 1e9, (double)bound / 1e9);
    }
    return NULL;
}

static pthread_once_t watchdog_once = PTHREAD_ONCE_INIT;

static void watchdog_spawn(void)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, watchdog_main, NULL) != 0)
        fprintf(stderr, "libxlmodel: cannot start the hook watchdog: %s\n", strerror(errno));
    pthread_attr_destroy(&attr);
}

void model_watchdog_start(void) { pthread_once(&watchdog_once, watchdog_spawn); }
