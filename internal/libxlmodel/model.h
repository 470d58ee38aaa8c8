//go:build libxlmodel

/*
 * model.h: the model's "libxl internals". One layer, shared by every
 * simulated operation, so that more operations can be added in their own
 * file without touching the osevent machinery:
 *
 *   model_ctx    a libxl_ctx: recursive mutex, hooks, mode, records, AOs.
 *   model_reg    one fd or timeout record; its address is the for_libxl
 *                cookie handed to the application.
 *   model_egc    an "event generation context" on the stack of every API
 *                entry: callbacks queued on it run after the ctx is
 *                unlocked, as libxl's egc does.
 *   model_ao     an asynchronous operation with libxl_asyncop_how.
 *
 * Memory rule: ctx and record structs come from slabs that are never
 * handed back to malloc. A freed one is poisoned and queued in a
 * quarantine, so a late for_libxl or ctx pointer from the application is
 * recognised and reported instead of crashing the process.
 *
 * Lock order: ctx->mu (recursive) -> g_model.mu (leaf). The violation log
 * has its own leaf lock. No model lock is held while a hook runs except
 * the ctx mutex, which libxl also holds.
 */
#ifndef LIBXLMODEL_MODEL_H
#define LIBXLMODEL_MODEL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>

#include <libxl.h>
#include <libxl_event.h>
#include <xentoollog.h>

#include "libxlmodel.h"

/* ---- Modes: every behavioural difference between libxl versions ---- */

typedef enum {
    CANCEL_BY_FIRE_NOW,  /* timeout_modify({0,0}); app still delivers once */
    CANCEL_BY_DEREGISTER /* timeout_deregister; no delivery may follow */
} model_cancel_style;

typedef struct {
    const char *name;
    int version_major, version_minor;
    const char *version_extra;
    /* Records are pooled in the ctx until ctx_free (4.2.2+ nexus, or the
     * patched 4.2 slots) instead of freed at deregistration. */
    bool records_pooled;
    /* A late occurred_fd / occurred_timeout on a deregistered record is
     * checked and ignored (counted) rather than a use-after-free. */
    bool stale_fd_tolerated;
    bool stale_timeout_tolerated;
    model_cancel_style cancel;
    /* libxl re-polls the fd before calling back (4.2.2+, patched 4.2);
     * unpatched 4.2 trusts the application's revents & events. */
    bool repoll_before_callback;
    /* The workload may deregister from a worker while the application
     * might be delivering. Off where that race is libxl's own bug. */
    bool cross_thread_deregistration;
    /* 4.2.0: timeout_deregister's argument is &for_app (a void ** to
     * libxl's copy of the token), not the token. */
    bool timeout_deregister_by_reference;
    /* A timeout callback that cancels its own, just delivered, timeout
     * (4.2's devstate_timeout, device_hotplug_timeout_cb,
     * device_qemu_timeout) still makes libxl call the cancel hook with
     * that registration: timeout_deregister in 4.2.0/4.2.1, although
     * 4.2.1's libxl_event.h says it will not after _occurred_timeout
     * (4.2.2-4.3: timeout_modify({0,0}); fixed in 4.4.0, 15347ebb35).
     * Seen on real 4.2.1, a device timeout during a create
     * (tests/xen42/traces). */
    bool fired_self_cancel_calls_hook;
    /* That cancel hook is timeout_modify({0,0}) (4.2.2-4.3: the cancel
     * of a timeout is a fire-now there), not timeout_deregister. Seen on
     * real 4.2.2 (tests/xen42/traces/4.2.2.txt). */
    bool fired_self_cancel_modifies;
    /* The xenstore watch fd, registered with the first watch, stays
     * registered until libxl_ctx_free, which deregisters it itself
     * (4.2.x: ctx->watch_efd; real 4.2.1 does so after the application
     * reaped it). Otherwise it goes with the last evgen. */
    bool watch_fd_until_ctx_free;
    /* libxl_domain_destroy forks a child (libxl__destroy_domid's
     * "destroyer", 4.6+) and completes when it is reaped. */
    bool destroy_forks;
} model_mode_rules;

extern const model_mode_rules model_modes[LIBXLMODEL_MODE_COUNT];

/* ---- Records ---- */

#define REG_MAGIC_FD 0x46445245u        /* "FDRE" registered or pooled */
#define REG_MAGIC_TIMEOUT 0x544d4f55u   /* "TMOU" */
#define REG_MAGIC_FREED 0xdeadf5eeu     /* quarantined after deregister */
#define REG_MAGIC_CTX_FREED 0xdeadc7f5u /* quarantined by ctx_free */
#define REG_MAGIC_NEVER 0u              /* slab slot never used */

typedef enum {
    REG_KIND_FD = 1,
    REG_KIND_TIMEOUT = 2,
} model_reg_kind;

typedef enum {
    REG_IDLE = 0,        /* pooled, no application registration */
    REG_FAILED,          /* its register hook failed; pooled or freed */
    REG_ACTIVE,          /* registered with the application */
    REG_FIRE_NOW,        /* timeout cancelled by modify({0,0}) */
    REG_DEREGISTERED,    /* fd_deregister / timeout_deregister done */
    REG_DELIVERED,       /* timeout delivered (its registration used up) */
} model_reg_state;

typedef enum {
    H_FD_REGISTER = 0,
    H_FD_MODIFY,
    H_FD_DEREGISTER,
    H_TIMEOUT_REGISTER,
    H_TIMEOUT_MODIFY,
    H_TIMEOUT_DEREGISTER,
    H_OCCURRED_FD,
    H_OCCURRED_TIMEOUT,
    H_STALE,
    H_OWNER, /* the owning operation acted on a delivery */
    H_NOTE,
} model_hist_what;

typedef struct {
    int64_t t_ns;
    int tid;
    uint8_t what;
    uint8_t from_occurred; /* the call was made inside occurred_* */
    int16_t fd;
    int16_t events;
    int16_t revents;
    int32_t rc;
    uint64_t reg_id;
} model_hist_entry;

#define HIST_LEN 24
#define PAST_REGS 8

struct model_ctx;
struct model_reg;
struct model_egc;

/* How a record's owner (an operation) hears about its record. All run
 * with the ctx locked, usually on the dispatcher inside occurred_*. */
typedef struct {
    /* fd: a live delivery that a re-poll confirmed; revents are real. */
    void (*fd_ready)(struct model_egc *egc, struct model_reg *r, short revents);
    /* timeout: it fired (not called for a cancelled timeout). The record
     * has already been given back. */
    void (*timeout_fired)(struct model_egc *egc, struct model_reg *r, void *arg);
    /* timeout: the application owes nothing more (a fire-now timeout
     * was delivered, or one that fired). Not called for fds, nor when
     * model_timeout_cancel returned true. */
    void (*released)(struct model_egc *egc, void *arg, uint64_t reg_id);
} model_reg_ops;

typedef struct model_reg {
    uint32_t magic;
    uint8_t kind;
    uint8_t state;
    uint8_t in_ctx_list;
    uint64_t reg_id; /* unique, never reused */
    struct model_ctx *ctx;
    void *for_app; /* the application's registration token */
    /* fd */
    int fd;
    short events;
    short events_ever; /* union since register: stale old sets are legal */
    /* timeout */
    struct timeval abs;
    int64_t fire_now_ns; /* when it was cancelled by modify({0,0}) */
    bool overdue_reported;
    /* owner */
    const model_reg_ops *ops;
    void *arg;
    /* lists */
    struct model_reg *ctx_next, *ctx_prev; /* ctx's records (all states) */
    struct model_reg *pool_next;           /* idle pool / quarantine / free */
    /* earlier registrations this record hosted, to classify stale calls */
    struct { uint64_t reg_id; int fd; } past[PAST_REGS];
    unsigned past_n;
    /* history of the current (or last) registration */
    model_hist_entry hist[HIST_LEN];
    unsigned hist_n; /* total appended; ring index = n % HIST_LEN */
} model_reg;

/* ---- Egc and AOs ---- */

typedef struct model_deferred {
    struct model_deferred *next;
    void (*fn)(struct model_ctx *ctx, void *arg, int rc);
    void *arg;
    int rc;
} model_deferred;

typedef struct model_egc {
    struct model_ctx *ctx;
    model_deferred *head, **tail;
} model_egc;

#define AO_MAGIC 0x414f4f50u

typedef struct model_ao {
    uint32_t magic;
    struct model_ctx *ctx;
    bool has_how;
    libxl_asyncop_how how;
    /* internal completion (workload ops); runs unlocked */
    void (*internal_done)(struct model_ctx *ctx, void *arg, int rc);
    void *internal_arg;
    bool aborted;
    bool complete;
    bool waiter_gone; /* a synchronous caller stopped waiting */
    int rc;
    struct model_ao *next, *prev; /* ctx->aos: running ones */
} model_ao;

/* ---- Ctx ---- */

#define CTX_MAGIC_LIVE 0x4c43545855u
#define CTX_MAGIC_FREED 0xdeadc7c7u

typedef struct model_evgen {
    uint64_t user;
    uint32_t domid;
    bool shutdown_reported, death_reported; /* once each, as libxl's evgens */
    struct model_evgen *next;
} model_evgen;

/* A forked child libxl waits for (libxl__ev_child). Reaped only by
 * waitpid on its own pid, from libxl_childproc_sigchld_occurred, or handed
 * over by libxl_childproc_reaped. exited runs with the ctx locked. */
typedef struct model_child {
    pid_t pid;
    void (*exited)(struct model_egc *egc, struct model_child *ch, int status);
    void *arg;
    struct model_child *next;
} model_child;

typedef struct model_ctx {
    uint64_t magic;
    uint64_t id;
    pthread_mutex_t mu; /* recursive: the libxl ctx lock */
    int lock_depth;
    pthread_t lock_owner;
    pthread_cond_t cond; /* signalled on AO completion (sync callers) */
    int mode;
    xentoollog_logger *lg;
    const libxl_osevent_hooks *hooks;
    void *hooks_user;
    bool hooks_registered;
    const libxl_event_hooks *event_hooks;
    void *event_user;
    const libxl_childproc_hooks *child_hooks;
    void *child_user;
    libxl_version_info version;
    model_reg *regs;    /* every record this ctx owns */
    /* FIFO pools per kind (pooled modes), like libxl's idle nexi */
    model_reg *idle_head[2], *idle_tail[2];
    int idle_n[2];
    model_ao *aos; /* running */
    int aos_running;
    model_evgen *evgens;
    model_reg *watch_reg; /* the shared "xenstore watch" fd record */
    int watch_fds[2];
    int pins; /* occurred_* calls between lookup and lock (g_model.mu) */
    uint64_t hook_events; /* atomic */
    uint64_t stale; /* atomic */
    struct model_ctx *pool_next;
    uint64_t sigchld_calls;
    model_child *children; /* forked, not yet reaped */
    struct model_domains *domains; /* domains.c */
} model_ctx;

/* ---- Thread-local state ---- */

typedef struct {
    int tid;
    int in_hook;      /* inside an application hook */
    int in_occurred;  /* inside libxl_osevent_occurred_* */
    const char *role; /* "worker", "dispatcher", ... for histories */
} model_tls_t;

extern __thread model_tls_t model_tls;
int model_tid(void);

/* ---- Globals (violations.c) ---- */

typedef struct {
    pthread_mutex_t mu; /* slabs, quarantines, live set, hook frames */
    int default_mode;
    int hook_block_bound_ms;
    int early_slack_ms;
    libxlmodel_counters counters; /* updated with __atomic */
} model_globals;

extern model_globals g_model;

#define MODEL_COUNT(field) __atomic_add_fetch(&g_model.counters.field, 1, __ATOMIC_RELAXED)

int64_t model_now_ns(void); /* monotonic, since the model started */
void model_wall_now(struct timeval *tv);

void model_violation(int kind, model_ctx *ctx, model_reg *r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void model_hist(model_reg *r, model_hist_what what, int fd, short events,
                short revents, int rc);
void model_log(model_ctx *ctx, xentoollog_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Hook frames, watched by the watchdog thread. */
typedef struct model_hook_frame {
    struct model_hook_frame *next, *prev;
    int64_t start_ns;
    int hook;
    int tid;
    uint64_t ctx_id;
    uintptr_t ctx;
    uint64_t reg_id;
    bool reported;
} model_hook_frame;

void model_hook_enter(model_hook_frame *f, model_ctx *ctx, model_reg *r, int hook);
void model_hook_leave(model_hook_frame *f);
void model_watchdog_start(void);

/* ---- Ctx layer (ctx.c) ---- */

void model_ctx_lock(model_ctx *ctx);
void model_ctx_unlock(model_ctx *ctx);
bool model_ctx_locked_by_me(model_ctx *ctx);
const model_mode_rules *model_rules(model_ctx *ctx);

/* Looks ctx up in the live set and pins it; reports a violation and
 * returns NULL if it is unknown or freed. Unpin after locking. */
model_ctx *model_ctx_pin(libxl_ctx *ctx, const char *api, int freed_kind);
void model_ctx_unpin(model_ctx *ctx);

/* API entry check: reports a hook calling back into libxl. */
bool model_api_entry_ok(libxl_ctx *ctx, const char *api);
/* A libxl API entry: checks, pins, locks the ctx and re-checks that it is
 * live. Returns it locked, or NULL (reported) if the call is refused. */
model_ctx *model_api_enter(libxl_ctx *ctx, const char *api);

/* ---- Race API (race.c) ---- */

/* libxlmodel_reset's share: zero the race counters. */
void model_race_reset(void);

void model_egc_init(model_egc *egc, model_ctx *ctx);
void model_egc_defer(model_egc *egc, void (*fn)(model_ctx *, void *, int),
                     void *arg, int rc);
/* Runs deferred callbacks; the ctx must be unlocked by this thread. */
void model_egc_cleanup(model_egc *egc);

/* ---- Osevent layer (osevent.c) ---- */

/* All of these are called with the ctx locked. They call the hooks. */
int model_fd_register(model_egc *egc, model_ctx *ctx, int fd, short events,
                      const model_reg_ops *ops, void *arg, model_reg **out);
int model_fd_modify(model_egc *egc, model_reg *r, short events);
void model_fd_deregister(model_egc *egc, model_reg *r);
int model_timeout_register(model_egc *egc, model_ctx *ctx,
                           struct timeval abs, const model_reg_ops *ops,
                           void *arg, model_reg **out);
/* Cancels a timeout the way the ctx's mode does. The owner's
 * timeout_fired will not be called. Returns true if the application owes
 * nothing more (deregister); false if a fire-now delivery is still due,
 * and then the owner's released() runs when it comes. */
bool model_timeout_cancel(model_egc *egc, model_reg *r);
/* From a timeout_fired callback: the operation cancels its own delivered
 * timeout, as libxl's device callbacks do; see fired_self_cancel_calls_hook. */
void model_timeout_fired_self_cancel(model_egc *egc, model_reg *r);
/* Re-points a record at a no-op owner (an operation gave up on it). */
void model_reg_orphan(model_reg *r);

/* ctx_free's share: deregister the fds libxl still has, release every
 * record to the quarantine. */
void model_osevent_ctx_free(model_egc *egc, model_ctx *ctx);
/* Reports timeouts of ctx that are due (or fire-now) for longer than
 * grace_ms; returns how many. */
int model_osevent_check_overdue(model_ctx *ctx, int grace_ms);

bool model_slab_contains_reg(const void *p);
bool model_slab_contains_ctx(const void *p);
model_ctx *model_ctx_slab_alloc(void);
void model_ctx_quarantine(model_ctx *ctx);

/* ---- AO layer (ao.c) ---- */

model_ao *model_ao_create(model_ctx *ctx, const libxl_asyncop_how *how);
void model_ao_set_internal(model_ao *ao,
                           void (*fn)(model_ctx *, void *, int), void *arg);
/* Queues completion on egc (runs after unlock). Frees ao afterwards. */
void model_ao_complete(model_egc *egc, model_ao *ao, int rc);
/* For API calls with ao_how: finish the initiation. With how == NULL the
 * caller waits (ctx unlocked meanwhile) for completion, which the
 * application's loop drives. Called locked; returns the API's rc. */
int model_ao_inprogress(model_egc *egc, model_ao *ao);
void model_ao_abandon_all(model_ctx *ctx);
/* The initiating call fails: no completion will be reported. */
void model_ao_fail_initiation(model_ao *ao);

/* ---- Children (ctx.c) ---- */

/* Whether the application reaps for libxl (libxl_sigchld_owner_mainloop):
 * only then does the model fork (it installs no SIGCHLD handler of its
 * own, so libxl's default mode is not modelled). ctx locked. */
bool model_children_mainloop(model_ctx *ctx);
/* Forks a child that sleeps sleep_us and exits with exit_code; records it
 * in ctx->children. ctx locked. Returns the pid, or -1 (errno set). */
pid_t model_child_fork(model_ctx *ctx, int sleep_us, int exit_code,
                       void (*exited)(model_egc *, model_child *, int), void *arg);

/* ---- Fake domains (domains.c) ---- */

/* ctx locked. Returns a calloc'd list including dom0. */
libxl_dominfo *model_domains_list(model_ctx *ctx, int *n_out);
void model_domains_ctx_free(model_ctx *ctx);
/* The host's domain table (any lock state; its own lock is a leaf). */
int model_domains_info(uint32_t domid, libxl_dominfo *info);
int model_domains_state(uint32_t domid, bool *shutdown, int *reason);
/* A ctx's watch pipe joins/leaves the "@releaseDomain" watchers. */
void model_domains_watch_add(int wfd);
void model_domains_watch_remove(int wfd);
void model_fill_dominfo(libxl_dominfo *d, uint32_t domid, bool paused, bool shutdown);
/* Event generation for evgens (ctx.c): queues DOMAIN_SHUTDOWN/DEATH. */
void model_evgen_domain_event(model_egc *egc, model_ctx *ctx, uint32_t domid,
                              libxl_event_type type, int shutdown_reason);

/* The start of every libxl entry point: pins, locks and re-checks that the
 * ctx is live; NULL (unlocked, violation recorded) if it is not. */
model_ctx *model_enter_locked(libxl_ctx *p, const char *api);

/* Whether p is the start of an element of one of nslabs arrays of
 * per_slab elements of size elem: how a pointer from the application is
 * recognised without reading through it. Caller holds the slabs' lock. */
bool model_in_slabs(void *const *slabs, int nslabs, size_t elem, int per_slab, const void *p);

#endif
