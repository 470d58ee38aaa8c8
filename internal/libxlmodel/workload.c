//go:build libxlmodel

/*
 * workload.c: drives an application-hooked ctx the way libxl 4.17 does.
 * Worker pthreads start operations (each an AO with registrations, like
 * the phases of libxl-4.17-hook-trace.txt); the application's loop
 * delivers; the operations react inside occurred_* (re-entrant
 * deregister/register/modify), and the worker waits, with a bound, until
 * the application has delivered everything it owes. A bound that expires
 * is reported as "never delivered" with the registration's history.
 *
 * Which races a mode may produce is decided by model_modes[]: 4.2
 * unpatched has no defence against a deregistration racing a delivery, so
 * there the operations deregister only from inside occurred_*.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "model.h"

static const char *const op_names[LIBXLMODEL_OP_COUNT] = {
    "pipe_in", "pipe_out", "regular_file", "dual_reg", "qmp_modify",
    "timer_fire", "timer_cancel", "timer_race", "fd_reuse", "ao_inline",
};

const char *libxlmodel_op_name(int kind)
{
    return kind >= 0 && kind < LIBXLMODEL_OP_COUNT ? op_names[kind] : "unknown";
}

static const unsigned default_mix[LIBXLMODEL_OP_COUNT] = {3, 2, 1, 2, 2, 3, 2, 2, 2, 1};

typedef struct wl_run {
    model_ctx *ctx;
    libxlmodel_workload w;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    uint64_t events_at_start;
    int64_t deadline_ns;
    bool deadline_hit;
    uint64_t ops_started, ops_completed, ops_failed, ops_abandoned; /* atomic */
} wl_run;

#define MAX_OWED 4

typedef struct wl_op {
    wl_run *run;
    int kind;
    uint64_t rng;
    int rounds;
    int state;
    bool use_eventfd;
    model_reg *fa, *fb, *tm, *tm2;
    int fds[4];
    model_reg *owed[MAX_OWED]; /* fire-now timeouts the app still owes */
    uint64_t owed_id[MAX_OWED];
    bool ao_pending;
    model_ao *ao;
    bool failed;
    bool done; /* under run->mu */
} wl_op;

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static unsigned rng_below(uint64_t *s, unsigned n) { return n ? (unsigned)(rng_next(s) % n) : 0; }

static void sleep_us(unsigned us)
{
    struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
    if (us)
        nanosleep(&ts, NULL);
}

static struct timeval wall_in_us(int64_t us)
{
    struct timeval tv;
    model_wall_now(&tv);
    us += tv.tv_usec;
    tv.tv_sec += us / 1000000;
    tv.tv_usec = us % 1000000;
    return tv;
}

static void poke(wl_op *op, int fd)
{
    ssize_t n;
    if (op->use_eventfd) {
        uint64_t one = 1;
        n = write(fd, &one, sizeof one);
    } else {
        n = write(fd, "x", 1);
    }
    (void)n;
}

static void drain(int fd)
{
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

static void close_fds(wl_op *op)
{
    int i, j;
    for (i = 0; i < 4; i++) {
        if (op->fds[i] < 0)
            continue;
        for (j = i + 1; j < 4; j++) /* an eventfd is both ends */
            if (op->fds[j] == op->fds[i])
                op->fds[j] = -1;
        close(op->fds[i]);
        op->fds[i] = -1;
    }
}

/* ---- completion bookkeeping (ctx locked) ---- */

static void op_check_done(wl_op *op)
{
    int i;
    if (op->ao_pending || op->fa || op->fb || op->tm || op->tm2)
        return;
    for (i = 0; i < MAX_OWED; i++)
        if (op->owed[i])
            return;
    pthread_mutex_lock(&op->run->mu);
    op->done = true;
    pthread_cond_broadcast(&op->run->cond);
    pthread_mutex_unlock(&op->run->mu);
}

static void op_ao_done(model_ctx *ctx, void *arg, int rc)
{
    wl_op *op = arg;
    model_ctx_lock(ctx);
    if (rc)
        op->failed = true;
    /* Under run->mu too: an abandoning worker waits for this. */
    pthread_mutex_lock(&op->run->mu);
    op->ao_pending = false;
    pthread_cond_broadcast(&op->run->cond);
    pthread_mutex_unlock(&op->run->mu);
    op_check_done(op);
    model_ctx_unlock(ctx);
}

static void op_complete(model_egc *egc, wl_op *op, int rc)
{
    if (op->ao) {
        model_ao_complete(egc, op->ao, rc);
        op->ao = NULL;
    }
}

static void op_released(model_egc *egc, void *arg, uint64_t reg_id)
{
    wl_op *op = arg;
    int i;
    (void)egc;
    for (i = 0; i < MAX_OWED; i++)
        if (op->owed[i] && op->owed_id[i] == reg_id)
            op->owed[i] = NULL;
    op_check_done(op);
}

static void op_fd_ready(model_egc *egc, model_reg *r, short revents);
static void op_timeout_fired(model_egc *egc, model_reg *r, void *arg);

static const model_reg_ops op_reg_ops = {
    .fd_ready = op_fd_ready,
    .timeout_fired = op_timeout_fired,
    .released = op_released,
};

static int op_fd_reg(model_egc *egc, wl_op *op, model_reg **slot, int fd, short events)
{
    return model_fd_register(egc, op->run->ctx, fd, events, &op_reg_ops, op, slot);
}

static void op_fd_dereg(model_egc *egc, model_reg **slot)
{
    if (*slot)
        model_fd_deregister(egc, *slot);
    *slot = NULL;
}

static int op_tm_reg(model_egc *egc, wl_op *op, model_reg **slot, int64_t in_us)
{
    return model_timeout_register(egc, op->run->ctx, wall_in_us(in_us), &op_reg_ops, op, slot);
}

static void op_tm_cancel(model_egc *egc, wl_op *op, model_reg **slot)
{
    model_reg *r = *slot;
    int i;
    if (!r)
        return;
    *slot = NULL;
    if (model_timeout_cancel(egc, r))
        return;
    for (i = 0; i < MAX_OWED; i++) {
        if (!op->owed[i]) {
            op->owed[i] = r;
            op->owed_id[i] = r->reg_id;
            return;
        }
    }
    model_reg_orphan(r); /* cannot happen with MAX_OWED >= 2 per op */
}

/* An operation fails the way libxl's do: undo what it holds, report rc
 * through the AO. */
static void op_fail(model_egc *egc, wl_op *op, int rc)
{
    op->failed = true;
    op_fd_dereg(egc, &op->fa);
    op_fd_dereg(egc, &op->fb);
    op_tm_cancel(egc, op, &op->tm);
    op_tm_cancel(egc, op, &op->tm2);
    close_fds(op);
    op_complete(egc, op, rc ? rc : ERROR_FAIL);
}

static void op_finish(model_egc *egc, wl_op *op)
{
    close_fds(op);
    op_complete(egc, op, 0);
}

static bool cross_thread(wl_op *op) { return model_rules(op->run->ctx)->cross_thread_deregistration; }

static int64_t short_us(wl_op *op)
{
    const libxlmodel_workload *w = &op->run->w;
    return w->short_timeout_min_us +
           rng_below(&op->rng, (unsigned)(w->short_timeout_max_us - w->short_timeout_min_us + 1));
}

static int open_regular_file(void)
{
    char path[] = "/tmp/libxlmodel-image-XXXXXX";
    int fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0)
        unlink(path);
    return fd;
}

/* ---- operations: start (worker, ctx locked) ---- */

enum { QMP_WANT_IN = 0, QMP_WANT_OUT = 1 };

static int op_start(model_egc *egc, wl_op *op)
{
    int rc = 0;
    switch (op->kind) {
    case LIBXLMODEL_OP_PIPE_IN:
        op->use_eventfd = rng_below(&op->rng, 3) == 0;
        if (op->use_eventfd) {
            op->fds[0] = op->fds[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
            if (op->fds[0] < 0)
                return ERROR_FAIL;
        } else if (pipe2(op->fds, O_NONBLOCK | O_CLOEXEC) < 0) {
            return ERROR_FAIL;
        }
        op->rounds = 1 + (int)rng_below(&op->rng, 3);
        /* libxl's save helper pipe asks for POLLPRI too. */
        op->state = POLLIN | (rng_below(&op->rng, 4) == 0 ? POLLPRI : 0);
        rc = op_fd_reg(egc, op, &op->fa, op->fds[0], (short)op->state);
        break;
    case LIBXLMODEL_OP_PIPE_OUT:
        if (pipe2(op->fds, O_NONBLOCK | O_CLOEXEC) < 0)
            return ERROR_FAIL;
        rc = op_fd_reg(egc, op, &op->fa, op->fds[1], POLLOUT);
        break;
    case LIBXLMODEL_OP_REGULAR_FILE:
        op->fds[0] = open_regular_file();
        if (op->fds[0] < 0)
            return ERROR_FAIL;
        op->rounds = 2; /* register, deregister, register again (suspend) */
        op->state = rng_below(&op->rng, 2) ? POLLOUT : POLLIN;
        rc = op_fd_reg(egc, op, &op->fa, op->fds[0], (short)op->state);
        break;
    case LIBXLMODEL_OP_DUAL_REG:
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, op->fds) < 0)
            return ERROR_FAIL;
        rc = op_fd_reg(egc, op, &op->fa, op->fds[0], POLLIN);
        if (!rc)
            rc = op_fd_reg(egc, op, &op->fb, op->fds[0], POLLOUT);
        break;
    case LIBXLMODEL_OP_QMP_MODIFY:
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, op->fds) < 0)
            return ERROR_FAIL;
        op->rounds = 1 + (int)rng_below(&op->rng, 3);
        op->state = QMP_WANT_IN;
        rc = op_fd_reg(egc, op, &op->fa, op->fds[0], POLLIN);
        break;
    case LIBXLMODEL_OP_TIMER_FIRE:
        op->rounds = 1 + (int)rng_below(&op->rng, 3);
        rc = op_tm_reg(egc, op, &op->tm, short_us(op));
        break;
    case LIBXLMODEL_OP_TIMER_CANCEL:
        if (pipe2(op->fds, O_NONBLOCK | O_CLOEXEC) < 0)
            return ERROR_FAIL;
        rc = op_tm_reg(egc, op, &op->tm, (int64_t)op->run->w.long_timeout_ms * 1000);
        if (!rc)
            rc = op_fd_reg(egc, op, &op->fa, op->fds[0], POLLIN);
        break;
    case LIBXLMODEL_OP_TIMER_RACE:
        rc = op_tm_reg(egc, op, &op->tm, rng_below(&op->rng, 1500));
        break;
    case LIBXLMODEL_OP_FD_REUSE:
        if (pipe2(op->fds, O_NONBLOCK | O_CLOEXEC) < 0)
            return ERROR_FAIL;
        rc = op_fd_reg(egc, op, &op->fa, op->fds[0], POLLIN);
        if (!rc)
            poke(op, op->fds[1]);
        break;
    case LIBXLMODEL_OP_AO_INLINE:
        /* libxl_domain_unpause: done before the initiating call returns. */
        op_complete(egc, op, 0);
        break;
    }
    return rc;
}

/* ---- operations: worker steps after the initiating call ---- */

static void op_after_start(wl_op *op)
{
    model_ctx *ctx = op->run->ctx;
    model_egc egc;
    int rc;
    switch (op->kind) {
    case LIBXLMODEL_OP_PIPE_IN:
    case LIBXLMODEL_OP_DUAL_REG:
    case LIBXLMODEL_OP_TIMER_CANCEL:
        sleep_us(rng_below(&op->rng, 200));
        poke(op, op->fds[1]);
        break;
    case LIBXLMODEL_OP_QMP_MODIFY:
        model_egc_init(&egc, ctx);
        model_ctx_lock(ctx);
        if (op->fa && op->state == QMP_WANT_IN) {
            rc = model_fd_modify(&egc, op->fa, POLLIN); /* a no-op modify */
            if (rc)
                op_fail(&egc, op, rc);
        }
        model_ctx_unlock(ctx);
        model_egc_cleanup(&egc);
        poke(op, op->fds[1]);
        break;
    case LIBXLMODEL_OP_TIMER_RACE:
        if (!cross_thread(op))
            break;
        /* Cancel from this thread at about the deadline, racing the
         * application's own firing of the timeout. */
        sleep_us(rng_below(&op->rng, 1500));
        model_egc_init(&egc, ctx);
        model_ctx_lock(ctx);
        if (op->tm) {
            op_tm_cancel(&egc, op, &op->tm);
            op_complete(&egc, op, 0);
        }
        op_check_done(op);
        model_ctx_unlock(ctx);
        model_egc_cleanup(&egc);
        break;
    case LIBXLMODEL_OP_FD_REUSE:
        if (!cross_thread(op))
            break;
        /* The application has probably seen the fd readable and is about
         * to deliver: deregister, close, reopen (same number), register. */
        sleep_us(rng_below(&op->rng, 300));
        model_egc_init(&egc, ctx);
        model_ctx_lock(ctx);
        if (op->fa && op->state == 0) {
            op_fd_dereg(&egc, &op->fa);
            close_fds(op);
            op->state = 1;
            if (pipe2(op->fds, O_NONBLOCK | O_CLOEXEC) < 0) {
                op_fail(&egc, op, ERROR_FAIL);
            } else {
                rc = op_fd_reg(&egc, op, &op->fa, op->fds[0], POLLIN);
                if (rc)
                    op_fail(&egc, op, rc);
                else
                    poke(op, op->fds[1]);
            }
        }
        op_check_done(op);
        model_ctx_unlock(ctx);
        model_egc_cleanup(&egc);
        break;
    default:
        break;
    }
}

/* ---- operations: deliveries (dispatcher, inside occurred_*, locked) ---- */

static void op_fd_ready(model_egc *egc, model_reg *r, short revents)
{
    wl_op *op = r->arg;
    int rc;
    switch (op->kind) {
    case LIBXLMODEL_OP_PIPE_IN:
        drain(r->fd);
        if (--op->rounds > 0) {
            if (rng_below(&op->rng, 2)) {
                short events = r->events;
                op_fd_dereg(egc, &op->fa);
                rc = op_fd_reg(egc, op, &op->fa, op->fds[0], events);
                if (rc) {
                    op_fail(egc, op, rc);
                    break;
                }
            }
            poke(op, op->fds[1]);
        } else {
            op_fd_dereg(egc, &op->fa);
            op_finish(egc, op);
        }
        break;
    case LIBXLMODEL_OP_PIPE_OUT:
        op_fd_dereg(egc, &op->fa);
        op_finish(egc, op);
        break;
    case LIBXLMODEL_OP_REGULAR_FILE: {
        char buf[512];
        ssize_t n;
        memset(buf, 'i', sizeof buf);
        if (op->state == POLLOUT)
            n = write(r->fd, buf, sizeof buf);
        else
            n = read(r->fd, buf, sizeof buf);
        (void)n;
        op_fd_dereg(egc, &op->fa);
        if (--op->rounds > 0) {
            rc = op_fd_reg(egc, op, &op->fa, op->fds[0], (short)op->state);
            if (rc)
                op_fail(egc, op, rc);
        } else {
            op_finish(egc, op);
        }
        break;
    }
    case LIBXLMODEL_OP_DUAL_REG:
        if (r == op->fb && (revents & POLLOUT))
            op_fd_dereg(egc, &op->fb);
        if (r == op->fa && (revents & POLLIN)) {
            drain(r->fd);
            op_fd_dereg(egc, &op->fa);
        }
        if (!op->fa && !op->fb)
            op_finish(egc, op);
        break;
    case LIBXLMODEL_OP_QMP_MODIFY:
        if (op->state == QMP_WANT_OUT && (revents & POLLOUT)) {
            rc = model_fd_modify(egc, op->fa, POLLIN);
            if (rc) {
                op_fail(egc, op, rc);
                break;
            }
            op->state = QMP_WANT_IN;
            poke(op, op->fds[1]); /* "QEMU" answers */
        } else if (op->state == QMP_WANT_IN && (revents & POLLIN)) {
            drain(r->fd);
            if (--op->rounds > 0) {
                rc = model_fd_modify(egc, op->fa, POLLIN | POLLOUT);
                op->state = QMP_WANT_OUT;
            } else {
                rc = model_fd_modify(egc, op->fa, POLLIN); /* IN -> IN */
                if (!rc) {
                    op_fd_dereg(egc, &op->fa);
                    op_finish(egc, op);
                }
            }
            if (rc)
                op_fail(egc, op, rc);
        }
        break;
    case LIBXLMODEL_OP_TIMER_CANCEL:
        drain(r->fd);
        op_fd_dereg(egc, &op->fa);
        close_fds(op);
        op_tm_cancel(egc, op, &op->tm);
        if (rng_below(&op->rng, 2)) {
            /* Register another and cancel it at once (the suspend trace's
             * T3 -> T4). */
            rc = op_tm_reg(egc, op, &op->tm2, (int64_t)op->run->w.long_timeout_ms * 1000);
            if (rc) {
                op_fail(egc, op, rc);
                break;
            }
            op_tm_cancel(egc, op, &op->tm2);
        }
        /* The AO completes before the fire-now timeouts are delivered. */
        op_complete(egc, op, 0);
        break;
    case LIBXLMODEL_OP_FD_REUSE:
        if (op->state == 0 && !cross_thread(op)) {
            op_fd_dereg(egc, &op->fa);
            close_fds(op);
            op->state = 1;
            if (pipe2(op->fds, O_NONBLOCK | O_CLOEXEC) < 0) {
                op_fail(egc, op, ERROR_FAIL);
                break;
            }
            rc = op_fd_reg(egc, op, &op->fa, op->fds[0], POLLIN);
            if (rc) {
                op_fail(egc, op, rc);
                break;
            }
            poke(op, op->fds[1]);
        } else {
            drain(r->fd);
            op_fd_dereg(egc, &op->fa);
            op_finish(egc, op);
        }
        break;
    default:
        break;
    }
    op_check_done(op);
}

static void op_timeout_fired(model_egc *egc, model_reg *r, void *arg)
{
    wl_op *op = arg;
    int rc;
    if (op->tm == r)
        op->tm = NULL;
    else if (op->tm2 == r)
        op->tm2 = NULL;
    switch (op->kind) {
    case LIBXLMODEL_OP_TIMER_FIRE:
        if (--op->rounds > 0) {
            /* libxl requeues by registering again, from inside occurred_*. */
            rc = op_tm_reg(egc, op, &op->tm, short_us(op));
            if (rc)
                op_fail(egc, op, rc);
        } else {
            op_complete(egc, op, 0);
        }
        break;
    case LIBXLMODEL_OP_TIMER_RACE:
        op_complete(egc, op, 0);
        break;
    default:
        /* A long timeout really expired: the operation times out. */
        op_fail(egc, op, ERROR_TIMEDOUT);
        break;
    }
    op_check_done(op);
}

/* ---- the worker ---- */

static void report_undelivered(wl_op *op)
{
    model_ctx *ctx = op->run->ctx;
    model_reg *fds[2] = {op->fa, op->fb};
    model_reg *tms[2 + MAX_OWED] = {op->tm, op->tm2};
    int i;
    for (i = 0; i < MAX_OWED; i++)
        tms[2 + i] = op->owed[i];
    for (i = 0; i < 2; i++)
        if (fds[i])
            model_violation(LIBXLMODEL_V_FD_NEVER_DELIVERED, ctx, fds[i],
                            "app never delivered fd %d (reg %llu) of operation %s within %d ms",
                            fds[i]->fd, (unsigned long long)fds[i]->reg_id,
                            op_names[op->kind], op->run->w.delivery_timeout_ms);
    for (i = 0; i < 2 + MAX_OWED; i++)
        if (tms[i]) {
            tms[i]->overdue_reported = true;
            model_violation(LIBXLMODEL_V_TIMEOUT_NEVER_DELIVERED, ctx, tms[i],
                            "app never delivered %s timeout reg %llu of operation %s within %d ms",
                            tms[i]->state == REG_FIRE_NOW ? "fire-now" : "a",
                            (unsigned long long)tms[i]->reg_id, op_names[op->kind],
                            op->run->w.delivery_timeout_ms);
        }
    if (op->ao_pending && !op->fa && !op->fb && !op->tm && !op->tm2)
        model_violation(LIBXLMODEL_V_API_MISUSE, ctx, NULL,
                        "operation %s: completion never ran (the application's loop never "
                        "returned from a delivery?)", op_names[op->kind]);
}

/* Gives up on an operation whose deliveries did not come (ctx locked). */
static void op_abandon(model_egc *egc, wl_op *op)
{
    int i;
    op_fd_dereg(egc, &op->fa);
    op_fd_dereg(egc, &op->fb);
    if (op->tm)
        model_reg_orphan(op->tm);
    if (op->tm2)
        model_reg_orphan(op->tm2);
    for (i = 0; i < MAX_OWED; i++)
        if (op->owed[i])
            model_reg_orphan(op->owed[i]);
    op->tm = op->tm2 = NULL;
    memset(op->owed, 0, sizeof op->owed);
    close_fds(op);
    op_complete(egc, op, ERROR_TIMEDOUT);
}

typedef struct {
    wl_run *run;
    int index;
} wl_worker;

static int pick_kind(wl_run *run, uint64_t *rng)
{
    unsigned total = 0, x;
    int k;
    for (k = 0; k < LIBXLMODEL_OP_COUNT; k++)
        total += run->w.mix[k];
    x = rng_below(rng, total);
    for (k = 0; k < LIBXLMODEL_OP_COUNT; k++) {
        if (x < run->w.mix[k])
            return k;
        x -= run->w.mix[k];
    }
    return 0;
}

static bool run_should_stop(wl_run *run, int done_ops)
{
    uint64_t events;
    if (model_now_ns() > run->deadline_ns) {
        run->deadline_hit = true;
        return true;
    }
    if (run->w.ops_per_thread > 0 && done_ops >= run->w.ops_per_thread)
        return true;
    events = __atomic_load_n(&run->ctx->hook_events, __ATOMIC_RELAXED) - run->events_at_start;
    return run->w.target_events > 0 && events >= run->w.target_events;
}

static void *worker_main(void *arg)
{
    wl_worker *wk = arg;
    wl_run *run = wk->run;
    model_ctx *ctx = run->ctx;
    uint64_t rng = run->w.seed ^ (0x632be59bd9b4e019ull * (uint64_t)(wk->index + 1));
    int done_ops = 0;

    model_tls.role = "worker";
    while (!run_should_stop(run, done_ops)) {
        wl_op *op = calloc(1, sizeof *op);
        model_egc egc;
        struct timespec until;
        int rc, i;
        bool done;
        if (!op)
            break;
        op->run = run;
        op->kind = pick_kind(run, &rng);
        op->rng = rng_next(&rng);
        for (i = 0; i < 4; i++)
            op->fds[i] = -1;
        __atomic_add_fetch(&run->ops_started, 1, __ATOMIC_RELAXED);
        MODEL_COUNT(ops_started);

        model_egc_init(&egc, ctx);
        model_ctx_lock(ctx);
        if (ctx->magic != CTX_MAGIC_LIVE) {
            model_ctx_unlock(ctx);
            model_violation(LIBXLMODEL_V_API_MISUSE, ctx, NULL,
                            "the application freed the ctx while a workload was running");
            free(op);
            break;
        }
        op->ao = model_ao_create(ctx, NULL);
        if (!op->ao) {
            model_ctx_unlock(ctx);
            free(op);
            break;
        }
        model_ao_set_internal(op->ao, op_ao_done, op);
        op->ao_pending = true;
        rc = op_start(&egc, op);
        if (rc)
            op_fail(&egc, op, rc); /* the hook's error reaches the AO */
        op_check_done(op);
        model_ctx_unlock(ctx);
        model_egc_cleanup(&egc); /* inline completions run here */

        if (!rc)
            op_after_start(op);

        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += run->w.delivery_timeout_ms / 1000;
        until.tv_nsec += (long)(run->w.delivery_timeout_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&run->mu);
        while (!op->done) {
            if (pthread_cond_timedwait(&run->cond, &run->mu, &until) == ETIMEDOUT)
                break;
        }
        done = op->done;
        pthread_mutex_unlock(&run->mu);

        model_egc_init(&egc, ctx);
        model_ctx_lock(ctx); /* also waits out a completion still unwinding */
        if (!done) {
            pthread_mutex_lock(&run->mu);
            done = op->done;
            pthread_mutex_unlock(&run->mu);
        }
        if (!done) {
            report_undelivered(op);
            op_abandon(&egc, op);
            __atomic_add_fetch(&run->ops_abandoned, 1, __ATOMIC_RELAXED);
            MODEL_COUNT(ops_abandoned);
        }
        model_ctx_unlock(ctx);
        model_egc_cleanup(&egc);
        /* A completion queued on the dispatcher's egc may still be on its
         * way; it touches op, so wait for it (it needs no delivery). */
        pthread_mutex_lock(&run->mu);
        while (op->ao_pending)
            pthread_cond_wait(&run->cond, &run->mu);
        pthread_mutex_unlock(&run->mu);
        if (done) {
            if (op->failed) {
                __atomic_add_fetch(&run->ops_failed, 1, __ATOMIC_RELAXED);
                MODEL_COUNT(ops_failed);
            } else {
                __atomic_add_fetch(&run->ops_completed, 1, __ATOMIC_RELAXED);
                MODEL_COUNT(ops_completed);
            }
        }
        free(op);
        done_ops++;
    }
    return NULL;
}

static void defaults(libxlmodel_workload *w, const model_mode_rules *rules)
{
    int k;
    unsigned total = 0;
    if (w->threads <= 0)
        w->threads = 4;
    if (w->ops_per_thread <= 0 && w->target_events == 0)
        w->ops_per_thread = 100;
    for (k = 0; k < LIBXLMODEL_OP_COUNT; k++)
        total += w->mix[k];
    if (!total)
        memcpy(w->mix, default_mix, sizeof w->mix);
    if (w->short_timeout_min_us <= 0)
        w->short_timeout_min_us = 200;
    if (w->short_timeout_max_us < w->short_timeout_min_us)
        w->short_timeout_max_us = w->short_timeout_min_us > 5000 ? w->short_timeout_min_us : 5000;
    if (w->long_timeout_ms <= 0)
        w->long_timeout_ms = 10000;
    if (w->delivery_timeout_ms <= 0)
        w->delivery_timeout_ms = 5000;
    if (w->overall_timeout_ms <= 0)
        w->overall_timeout_ms = 120000;
    (void)rules;
}

static void leave_fire_now_pending(model_ctx *ctx, int n, int long_ms)
{
    model_egc egc;
    int i;
    model_egc_init(&egc, ctx);
    model_ctx_lock(ctx);
    for (i = 0; i < n && model_rules(ctx)->cancel == CANCEL_BY_FIRE_NOW; i++) {
        model_reg *r = NULL;
        struct timeval abs = wall_in_us((int64_t)long_ms * 1000);
        if (model_timeout_register(&egc, ctx, abs, NULL, NULL, &r) == 0)
            model_timeout_cancel(&egc, r); /* owed; nobody waits */
    }
    model_ctx_unlock(ctx);
    model_egc_cleanup(&egc);
}

int libxlmodel_run(libxl_ctx *p, const libxlmodel_workload *w_in, libxlmodel_result *out)
{
    wl_run *run;
    wl_worker *workers;
    pthread_t *threads;
    model_ctx *ctx;
    int64_t t0 = model_now_ns();
    int i, started = 0, rc = 0;
    uint64_t stale0;

    memset(out, 0, sizeof *out);
    if (!model_api_entry_ok(p, "libxlmodel_run"))
        return ERROR_FAIL;
    ctx = model_ctx_pin(p, "libxlmodel_run", LIBXLMODEL_V_API_MISUSE);
    if (!ctx)
        return ERROR_INVAL;
    model_ctx_lock(ctx);
    model_ctx_unpin(ctx);
    if (ctx->magic != CTX_MAGIC_LIVE || !ctx->hooks_registered) {
        model_ctx_unlock(ctx);
        return ERROR_INVAL;
    }
    run = calloc(1, sizeof *run);
    if (!run) {
        model_ctx_unlock(ctx);
        return ERROR_NOMEM;
    }
    run->ctx = ctx;
    run->w = *w_in;
    defaults(&run->w, model_rules(ctx));
    run->events_at_start = __atomic_load_n(&ctx->hook_events, __ATOMIC_RELAXED);
    stale0 = __atomic_load_n(&ctx->stale, __ATOMIC_RELAXED);
    run->deadline_ns = t0 + (int64_t)run->w.overall_timeout_ms * 1000000;
    model_ctx_unlock(ctx);
    pthread_mutex_init(&run->mu, NULL);
    pthread_cond_init(&run->cond, NULL);

    uint64_t v0 = __atomic_load_n(&g_model.counters.violations_total, __ATOMIC_RELAXED);
    workers = calloc((size_t)run->w.threads, sizeof *workers);
    threads = calloc((size_t)run->w.threads, sizeof *threads);
    for (i = 0; workers && threads && i < run->w.threads; i++) {
        workers[i].run = run;
        workers[i].index = i;
        if (pthread_create(&threads[i], NULL, worker_main, &workers[i]) != 0)
            break;
        started++;
    }
    if (!started)
        rc = ERROR_FAIL;
    for (i = 0; i < started; i++)
        pthread_join(threads[i], NULL);

    /* Everything the workers waited for is in; anything still owed is
     * overdue once the per-operation bound has passed. */
    model_ctx_lock(ctx);
    if (ctx->magic == CTX_MAGIC_LIVE)
        model_osevent_check_overdue(ctx, run->w.delivery_timeout_ms);
    model_ctx_unlock(ctx);
    if (run->w.leave_fire_now_pending > 0)
        leave_fire_now_pending(ctx, run->w.leave_fire_now_pending, run->w.long_timeout_ms);

    out->ops_started = run->ops_started;
    out->ops_completed = run->ops_completed;
    out->ops_failed = run->ops_failed;
    out->ops_abandoned = run->ops_abandoned;
    out->hook_events = __atomic_load_n(&ctx->hook_events, __ATOMIC_RELAXED) - run->events_at_start;
    out->stale_tolerated = __atomic_load_n(&ctx->stale, __ATOMIC_RELAXED) - stale0;
    out->violations = __atomic_load_n(&g_model.counters.violations_total, __ATOMIC_RELAXED) - v0;
    out->elapsed_ns = model_now_ns() - t0;
    out->deadline_hit = run->deadline_hit;
    free(workers);
    free(threads);
    pthread_mutex_destroy(&run->mu);
    pthread_cond_destroy(&run->cond);
    free(run);
    return rc;
}
