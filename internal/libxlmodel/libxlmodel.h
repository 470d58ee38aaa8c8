//go:build libxlmodel

/*
 * libxlmodel.h: the model's own C API, for the Go wrappers in this package
 * and for C test harnesses. The libxl API itself is declared by the real
 * Xen headers (libxl.h, libxl_event.h); the model defines those symbols.
 *
 * Everything here is thread-safe unless it says otherwise.
 */
#ifndef LIBXLMODEL_H
#define LIBXLMODEL_H

#include <stdint.h>
#include <libxl.h>
#include <libxl_event.h>

/* Which libxl the model behaves as. See model_modes[] in ctx.c. */
typedef enum {
    LIBXLMODEL_MODE_4_17 = 0,
    LIBXLMODEL_MODE_4_2_UNPATCHED = 1,
    LIBXLMODEL_MODE_4_2_PATCHED = 2,
    /* 4.2-unpatched as 4.2.0: timeout_deregister gets &for_app, a void **
     * pointing at libxl's copy of the token (fixed in 4.2.1). */
    LIBXLMODEL_MODE_4_2_0_UNPATCHED = 3,
    /* Upstream 4.2.2 (to 4.3.x): the stale-event fixes, and a timeout_modify
     * for a delivered timeout whose callback cancels it (fixed in 4.4.0). */
    LIBXLMODEL_MODE_4_2_2 = 4,
    LIBXLMODEL_MODE_COUNT
} libxlmodel_mode;

typedef enum {
    LIBXLMODEL_V_TIMEOUT_DELIVERED_TWICE = 0,
    LIBXLMODEL_V_OCCURRED_INSIDE_HOOK,
    LIBXLMODEL_V_OCCURRED_AFTER_CTX_FREE,
    LIBXLMODEL_V_UNKNOWN_CTX,
    LIBXLMODEL_V_TIMEOUT_NEVER_DELIVERED,
    LIBXLMODEL_V_FD_NEVER_DELIVERED,
    LIBXLMODEL_V_UNKNOWN_FOR_LIBXL,
    LIBXLMODEL_V_CORRUPT_FOR_LIBXL,
    LIBXLMODEL_V_WRONG_CTX,
    LIBXLMODEL_V_DELIVERY_AFTER_DEREGISTER,
    LIBXLMODEL_V_DELIVERY_TO_FAILED_REGISTRATION,
    LIBXLMODEL_V_APP_KEPT_REGISTRATION,
    LIBXLMODEL_V_HOOK_BLOCKED,
    LIBXLMODEL_V_HOOK_CALLED_LIBXL,
    LIBXLMODEL_V_FD_MISMATCH,
    LIBXLMODEL_V_EVENTS_NOT_REQUESTED,
    LIBXLMODEL_V_TIMEOUT_EARLY,
    LIBXLMODEL_V_CTX_FREE_WITH_AO_RUNNING,
    LIBXLMODEL_V_API_MISUSE,
    /* libxl_ctx_free found an fd registered or a timeout armed (4.17 and
     * 4.2 assert efds and etimes are empty and abort). */
    LIBXLMODEL_V_CTX_FREE_WITH_REGISTRATIONS,
    /* libxl_ctx_free found a forked child not yet reaped (4.17's
     * libxl_childproc_setmode asserts ctx->children is empty). */
    LIBXLMODEL_V_CTX_FREE_WITH_CHILDREN,
    /* waitpid on one of libxl's children found none: another waiter of
     * the process reaped it (libxl: an event-loop disaster). */
    LIBXLMODEL_V_CHILD_STOLEN,
    /* A forked child found xentoolcore's handle lock held: a thread of
     * the parent was opening or closing a ctx at the fork. On real Xen
     * the destroyer child waits for that lock forever, and so does the
     * destroy (libxlmodel_set_handles_lock_hold_us). */
    LIBXLMODEL_V_CHILD_INHERITED_HANDLES_LOCK,
    LIBXLMODEL_V_COUNT
} libxlmodel_violation_kind;

const char *libxlmodel_violation_name(int kind);

typedef enum {
    LIBXLMODEL_HOOK_FD_REGISTER = 0,
    LIBXLMODEL_HOOK_FD_MODIFY,
    LIBXLMODEL_HOOK_FD_DEREGISTER,
    LIBXLMODEL_HOOK_TIMEOUT_REGISTER,
    LIBXLMODEL_HOOK_TIMEOUT_MODIFY,
    LIBXLMODEL_HOOK_TIMEOUT_DEREGISTER,
    LIBXLMODEL_HOOK_COUNT
} libxlmodel_hook_kind;

typedef struct {
    uint64_t hook_calls[LIBXLMODEL_HOOK_COUNT];
    uint64_t hook_failures; /* register/modify hooks that returned nonzero */
    uint64_t deliveries_fd; /* occurred_fd calls, whatever their fate */
    uint64_t deliveries_timeout;
    uint64_t stale_fd_tolerated;      /* ignored as real libxl does */
    uint64_t stale_timeout_tolerated; /* 4.2-patched: after deregister */
    uint64_t spurious_fd; /* live, but a re-poll found nothing ready */
    uint64_t ops_started, ops_completed, ops_failed, ops_abandoned;
    uint64_t ctx_allocs, ctx_frees;
    uint64_t children_forked, children_reaped;
    uint64_t violations[LIBXLMODEL_V_COUNT];
    uint64_t violations_total;
} libxlmodel_counters;

void libxlmodel_counters_read(libxlmodel_counters *out);

typedef struct {
    int kind;
    uintptr_t ctx;
    uint64_t reg_id; /* 0 when no registration is concerned */
    int64_t when_ns; /* since the model started */
    int tid;
    char message[320];
    char history[3072]; /* the registration's hook calls and deliveries */
} libxlmodel_violation;

/* Copies up to max stored violations (the first ones recorded) and
 * returns how many are stored. Counters keep counting past the store. */
int libxlmodel_violations_copy(libxlmodel_violation *out, int max);
/* Forgets violations and zeroes counters. Live ctxs keep their state. */
void libxlmodel_reset(void);

void libxlmodel_set_default_mode(int mode);
int libxlmodel_default_mode(void);
/* Per-ctx override; only before libxl_osevent_register_hooks. Returns 0
 * or -1 (unknown ctx, hooks already registered, or a bad mode). */
int libxlmodel_set_ctx_mode(libxl_ctx *ctx, int mode);
int libxlmodel_ctx_mode(libxl_ctx *ctx);
const char *libxlmodel_mode_name(int mode);

/* Hooks blocking longer than this are violations (default 2000 ms). */
void libxlmodel_set_hook_block_bound_ms(int ms);
/* A delivery this much before a timeout's deadline is "early". */
void libxlmodel_set_early_slack_ms(int ms);

/* For application loops that check their own bookkeeping (see refloop.c):
 * record a violation the model could not see by itself. */
void libxlmodel_report(int kind, libxl_ctx *ctx, const char *message);

/* ---- Workloads (workload.c) ---- */

typedef enum {
    LIBXLMODEL_OP_PIPE_IN = 0, /* pipe or eventfd, IN or IN|PRI, re-armed */
    LIBXLMODEL_OP_PIPE_OUT,    /* write end, POLLOUT */
    LIBXLMODEL_OP_REGULAR_FILE, /* save/restore image: always ready */
    LIBXLMODEL_OP_DUAL_REG,     /* one fd registered for IN and for OUT */
    LIBXLMODEL_OP_QMP_MODIFY,   /* fd_modify IN->IN, IN->IN|OUT->IN */
    LIBXLMODEL_OP_TIMER_FIRE,   /* short timeouts that fire, re-registered */
    LIBXLMODEL_OP_TIMER_CANCEL, /* long timeout cancelled; AO done first */
    LIBXLMODEL_OP_TIMER_RACE,   /* cancel from a worker at the deadline */
    LIBXLMODEL_OP_FD_REUSE,     /* deregister, close, reopen same number */
    LIBXLMODEL_OP_AO_INLINE,    /* completes inside the initiating call */
    LIBXLMODEL_OP_COUNT
} libxlmodel_op_kind;

const char *libxlmodel_op_name(int kind);

typedef struct {
    int threads;           /* worker pthreads; default 4 */
    int ops_per_thread;    /* 0: until target_events or the deadline */
    uint64_t target_events; /* stop once the ctx saw this many hook events */
    uint64_t seed;
    unsigned mix[LIBXLMODEL_OP_COUNT]; /* weights; all 0 = default mix */
    int short_timeout_min_us, short_timeout_max_us; /* default 200..5000 */
    int long_timeout_ms;     /* default 10000: cancelled, never reached */
    int delivery_timeout_ms; /* per op, default 5000 */
    int overall_timeout_ms;  /* default 120000 */
    int leave_fire_now_pending; /* cancel this many timeouts at the end
                                   and return without waiting (fire-now
                                   modes: 4.17, 4.2-patched) */
} libxlmodel_workload;

typedef struct {
    uint64_t ops_started, ops_completed, ops_failed, ops_abandoned;
    uint64_t hook_events; /* hook calls + occurred_* calls on this ctx */
    uint64_t stale_tolerated;
    uint64_t violations;
    int64_t elapsed_ns;
    int deadline_hit;
} libxlmodel_result;

/* Runs w against ctx, which the application allocated and hooked; blocks
 * until done. The application's own loop must deliver meanwhile.
 * Returns 0, or a libxl ERROR_* code when the run could not start. */
int libxlmodel_run(libxl_ctx *ctx, const libxlmodel_workload *w,
                   libxlmodel_result *out);

/* Create, unpause, shutdown, destroy `rounds` fake domains through the
 * public API (domains.c), with ao_how callbacks (async) or synchronously,
 * checking completion order and DOMAIN_SHUTDOWN/DEATH events. Returns 0
 * or the negative number of the step that failed. The application's loop
 * must deliver meanwhile. */
int libxlmodel_domain_scenario(libxl_ctx *ctx, int rounds, int async);

/* The fake host's domains (domains.c): one table for the process, seen by
 * every ctx. reset forgets them all; a create delay makes
 * libxl_domain_create_new take that long (0: at once); copy lists the
 * live domids (returns how many there are). */
void libxlmodel_domains_reset(void);
void libxlmodel_set_create_delay_ms(int ms);
void libxlmodel_set_create_device_timeout_ms(int ms);
/* libxl_domain_suspend takes delay_ms; with fails it ends in ERROR_FAIL
 * (a full disk), leaving the domain suspended as libxl does. */
void libxlmodel_set_save_behaviour(int delay_ms, int fails);
/* The reason a guest asked to shut down reports (libxl_shutdown_reason;
 * LIBXL_SHUTDOWN_REASON_POWEROFF after a reset): a test makes the guest
 * "reboot", "crash" or trip its watchdog through libxl_domain_shutdown. */
void libxlmodel_set_shutdown_reason(int reason);
/* With fails, libxl_domain_destroy of an existing domain fails at once
 * with ERROR_FAIL (as when Xen refuses to kill it); reset clears it. */
void libxlmodel_set_destroy_fails(int fails);
int libxlmodel_domains_copy(uint32_t *out, int max);

/* ---- One-shot race timeouts (race.c) ----
 *
 * For tests of an application's serialisation: each function is a libxl
 * API call (it takes the ctx lock and calls the hooks with it held, on the
 * calling thread), so an application that serialises its libxl calls must
 * make these calls under that serialisation too. On 4.2-unpatched this is
 * how libxl's own deregistrations happen: inside some API call made by an
 * application thread, since 4.2 libxl has no threads of its own. */

/* Registers a one-shot timeout due delay_us from now (timeout_register).
 * Returns its handle, never reused and never 0; 0 if the registration
 * failed or the call was refused (both reported as usual). */
uint64_t libxlmodel_race_arm(libxl_ctx *ctx, int delay_us);
/* If the timeout has not fired, cancels it the way the ctx's mode does
 * (4.2-unpatched: timeout_deregister, then the record is freed and
 * poisoned, so a later occurred_timeout on it is the violation
 * delivery_after_deregister; 4.17 / 4.2-patched: timeout_modify({0,0}),
 * and one delivery is still owed) and returns 1. Returns 0 if it already
 * fired or was cancelled before, -1 for an unknown handle or a handle of
 * another ctx. Never touches a freed record: handles are looked up in a
 * table of the model's own. */
int libxlmodel_race_cancel(libxl_ctx *ctx, uint64_t handle);

typedef struct {
    uint64_t armed;        /* successful libxlmodel_race_arm calls */
    uint64_t cancelled;    /* libxlmodel_race_cancel calls that returned 1 */
    uint64_t fired;        /* delivered while armed: the owner's callback ran */
    uint64_t cancel_late;  /* libxlmodel_race_cancel calls that returned 0 */
    uint64_t fire_now_delivered; /* fire-now modes: owed deliveries that came */
} libxlmodel_race_counters;

void libxlmodel_race_counters_read(libxlmodel_race_counters *out);

/* Registers, outside any operation, an eventfd for POLLIN (never ready)
 * and returns it, or -1. libxl
 * holds an fd only for an operation in progress or its own watches, so a
 * ctx freed with it still registered is the violation
 * ctx_free_with_registrations. Close the fd after libxl_ctx_free. */
int libxlmodel_hold_fd(libxl_ctx *ctx);

/* How long the child that libxl_domain_destroy forks (Mode417, mainloop
 * SIGCHLD mode) lives before it exits; < 0 restores the default, 1-2 ms. */
void libxlmodel_set_destroy_child_us(int us);
/* Models xentoolcore's process-wide handle lock: libxl_ctx_alloc and
 * libxl_ctx_free hold it for us microseconds, and destroy's child takes
 * it as xc_interface_open does. 0 (the default) leaves it out. */
void libxlmodel_set_handles_lock_hold_us(int us);

/* ---- Reference application loop (refloop.c) ---- */

typedef struct {
    int deliver_timeout_twice;    /* every timeout goes to libxl twice */
    int forget_fire_now;          /* timeout_modify({0,0}) is ignored */
    int deliver_after_deregister; /* one more delivery after deregister */
    int occurred_inside_hook;     /* occurred_timeout from inside a hook */
    int call_libxl_inside_hook;   /* libxl_get_version_info from a hook */
    int block_in_hook_ms;         /* sleep this long in one hook */
    int fail_nth_register;        /* fd/timeout register number N fails */
    int fail_every_nth_register;  /* ... and every Nth after that */
    int slow_dispatch_us;         /* sleep before each delivery */
    int no_liveness_recheck;      /* deliver from the poll snapshot */
    int skip_teardown;            /* ctx_free without closing the gate */
    int dereg_arg_as_token;       /* 4.2.0: ignore that timeout_deregister
                                     gets a void ** (an app for 4.2.1) */
} libxlmodel_refloop_faults;

typedef struct libxlmodel_refloop libxlmodel_refloop;

libxlmodel_refloop *libxlmodel_refloop_new(const libxlmodel_refloop_faults *f);
/* mode < 0: the process default. */
int libxlmodel_refloop_ctx_new(libxlmodel_refloop *loop, int mode,
                               libxl_ctx **ctx_out);
int libxlmodel_refloop_ctx_free(libxlmodel_refloop *loop, libxl_ctx *ctx);
void libxlmodel_refloop_destroy(libxlmodel_refloop *loop);
uint64_t libxlmodel_refloop_deliveries(libxlmodel_refloop *loop);

#endif
