/*
 * osevent-test.c: behaviour test for goxl's xen-patches series.
 *
 * Built by xen-patches/check against a PATCHED Xen 4.2.0/4.2.1 tree:
 * it is linked with that tree's libxl_event.c and libxl_internal.c, and
 * stubs (below) for the handful of other libxl, xenstore and logging
 * functions those two files refer to.  No hypervisor, xenstore or libxc
 * is needed: the test builds a libxl_ctx by hand, the way
 * libxl_ctx_alloc does, and drives the osevent machinery through the
 * internal libxl__ev_fd / libxl__ev_time API, playing the application
 * through a set of recording hooks.
 *
 * It checks the semantics documented in xen-patches/README.md:
 *   - for_libxl is a ctx-owned slot, not the libxl__ev_* itself;
 *   - occurred_fd re-polls, and ignores stale calls (freed registration,
 *     reused slot on another fd, garbage pointer);
 *   - timeouts are cancelled with timeout_modify({0,0}), never with
 *     timeout_deregister; the slot is reused only after the one
 *     delivery; duplicate deliveries are ignored;
 *   - a timeout callback may deregister its own timeout harmlessly;
 *   - libxl's own poller firing a timeout asks the app for fire-now;
 *   - the slots are freed when the ctx's poller_app is disposed
 *     (LeakSanitizer checks this when the test is built with ASan).
 *
 * Built with -DOSEVENT_TEST_UPSTREAM against an UNPATCHED 4.2.2 (or later
 * 4.2.x/4.3.x) tree, it checks what upstream's own fix promises and says,
 * check by check, where 4.2.2 differs from the series and why:
 *   - the wording of libxl's debug logs for stale calls is the series';
 *     upstream ignores stale calls silently (the callback counts are
 *     checked instead);
 *   - a pointer libxl never issued: 4.2.2 dereferences for_libxl
 *     (nexus->ev), so such a call is outside its contract; not probed;
 *   - duplicate occurred_timeout: 4.2.2 puts the nexus on its idle list a
 *     second time (a loop in the list), so the application must deliver
 *     exactly once; not probed (goxl delivers exactly once);
 *   - a callback that deregisters its own fired timeout: 4.2.2 calls
 *     timeout_modify with the delivered registration's token (fixed
 *     upstream in 4.4.0); the test checks that this known bug happens;
 *   - the idle nexi are never freed by 4.2.2's libxl_ctx_free; the test
 *     frees them itself so LeakSanitizer judges the rest.
 *
 * This file is goxl's own code (LGPL-2.1-only, like libxl, since it is
 * linked with it).
 */

#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>

#include "libxl_internal.h"

/*---------- stubs for what libxl_event.c/libxl_internal.c refer to ------*/

static char last_log[1024];
static int n_stale_logs;

void xtl_log(struct xentoollog_logger *logger, xentoollog_level level,
             int errnoval, const char *context, const char *format, ...)
{
    va_list al;
    va_start(al, format);
    vsnprintf(last_log, sizeof(last_log), format, al);
    va_end(al);
    if (strstr(last_log, "stale occurred_"))
        n_stale_logs++;
    if (getenv("OSEVENT_TEST_VERBOSE"))
        fprintf(stderr, "log: %s\n", last_log);
}

#define NOT_HERE(what) do {                                             \
        fprintf(stderr, "osevent-test: unexpected call to %s\n", what); \
        abort();                                                        \
    } while (0)

int libxl__fork_selfpipe_active(libxl_ctx *ctx) { return -1; }
void libxl__fork_selfpipe_woken(libxl__egc *egc) { NOT_HERE(__func__); }
char *libxl__xs_libxl_path(libxl__gc *gc, uint32_t domid)
    { NOT_HERE(__func__); return 0; }
char *libxl__xs_read(libxl__gc *gc, xs_transaction_t t, const char *path)
    { NOT_HERE(__func__); return 0; }
int libxl_device_model_version_from_string(const char *s,
                                           libxl_device_model_version *e)
    { NOT_HERE(__func__); return 0; }
const char *libxl_event_type_to_string(libxl_event_type p) { return "?"; }
void libxl_event_dispose(libxl_event *p) { }
void libxl_event_init(libxl_event *p) { memset(p, 0, sizeof(*p)); }
void libxl_event_init_type(libxl_event *p, libxl_event_type type)
    { p->type = type; }
int libxl_fd_set_nonblock(libxl_ctx *ctx, int fd, int nonblock)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return ERROR_FAIL;
    fl = nonblock ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, fl) < 0 ? ERROR_FAIL : 0;
}
bool xs_watch(struct xs_handle *h, const char *path, const char *token)
    { NOT_HERE(__func__); return 0; }
int xs_fileno(struct xs_handle *h) { NOT_HERE(__func__); return -1; }
char **xs_check_watch(struct xs_handle *h) { NOT_HERE(__func__); return 0; }
bool xs_unwatch(struct xs_handle *h, const char *path, const char *token)
    { NOT_HERE(__func__); return 0; }
bool xs_path_is_subpath(const char *parent, const char *child)
    { NOT_HERE(__func__); return 0; }

/*---------- test scaffolding ----------*/

#ifdef OSEVENT_TEST_UPSTREAM
#define UPSTREAM 1
#else
#define UPSTREAM 0
#endif

/* Every distinct for_libxl the hooks were given (upstream mode frees them). */
static void *seen_for_libxl[4096];
static int n_seen;
static void note_for_libxl(void *p)
{
    int i;
    for (i = 0; i < n_seen; i++)
        if (seen_for_libxl[i] == p)
            return;
    assert(n_seen < 4096);
    seen_for_libxl[n_seen++] = p;
}

static int failures;
#define CHECK(cond, ...) do {                                   \
        if (cond) {                                             \
            printf("ok   " __VA_ARGS__); printf("\n");          \
        } else {                                                \
            printf("FAIL " __VA_ARGS__);                        \
            printf("   [%s:%d: %s]\n", __FILE__, __LINE__, #cond); \
            failures++;                                         \
        }                                                       \
    } while (0)

/* The "application": records every hook call. */
static struct {
    int fd_register, fd_modify, fd_deregister;
    int timeout_register, timeout_modify, timeout_modify_nonzero;
    int timeout_deregister;
    void *last_fd_for_libxl, *last_timeout_for_libxl;
    void *last_modify_reg;
    int next_token;
} app;

static int h_fd_register(void *user, int fd, void **for_app_out,
                         short events, void *for_libxl)
{
    app.fd_register++;
    app.last_fd_for_libxl = for_libxl;
    note_for_libxl(for_libxl);
    *for_app_out = (void*)(intptr_t)++app.next_token;
    return 0;
}
static int h_fd_modify(void *user, int fd, void **for_app_upd, short events)
{
    app.fd_modify++;
    return 0;
}
static void h_fd_deregister(void *user, int fd, void *for_app)
{
    app.fd_deregister++;
}
static int h_timeout_register(void *user, void **for_app_out,
                              struct timeval abs, void *for_libxl)
{
    app.timeout_register++;
    app.last_timeout_for_libxl = for_libxl;
    note_for_libxl(for_libxl);
    *for_app_out = (void*)(intptr_t)++app.next_token;
    return 0;
}
static int h_timeout_modify(void *user, void **for_app_upd,
                            struct timeval abs)
{
    app.timeout_modify++;
    if (abs.tv_sec || abs.tv_usec) app.timeout_modify_nonzero++;
    app.last_modify_reg = *for_app_upd;
    return 0;
}
static void h_timeout_deregister(void *user, void *for_app)
{
    app.timeout_deregister++;
}

static const libxl_osevent_hooks hooks = {
    h_fd_register, h_fd_modify, h_fd_deregister,
    h_timeout_register, h_timeout_modify, h_timeout_deregister,
};

/* libxl-side users of the machinery */
static int fd_calls;
static short fd_last_revents;
static void fd_cb(libxl__egc *egc, libxl__ev_fd *ev, int fd,
                  short events, short revents)
{
    fd_calls++;
    fd_last_revents = revents;
}

static int time_calls;
static int time_cb_deregisters; /* deregister the timeout from its callback */
static void time_cb(libxl__egc *egc, libxl__ev_time *ev,
                    const struct timeval *requested_abs)
{
    time_calls++;
    if (time_cb_deregisters) {
        /* as device_qemu_timeout and device_hotplug_timeout_cb do */
        EGC_GC;
        libxl__ev_time_deregister(gc, ev);
    }
}

static libxl_ctx *make_ctx(void)
{
    /* The parts of libxl_ctx_alloc that the event machinery needs. */
    libxl_ctx *ctx = calloc(1, sizeof(*ctx));
    assert(ctx);
    ctx->lg = 0;
    ctx->nogc_gc.alloc_maxsize = -1;
    ctx->nogc_gc.owner = ctx;
    LIBXL_TAILQ_INIT(&ctx->occurred);
    LIBXL_LIST_INIT(&ctx->pollers_event);
    LIBXL_LIST_INIT(&ctx->pollers_idle);
    LIBXL_LIST_INIT(&ctx->efds);
    LIBXL_TAILQ_INIT(&ctx->etimes);
    ctx->sigchld_selfpipe[0] = -1;
    assert(!libxl__init_recursive_mutex(ctx, &ctx->lock));
    assert(!libxl__poller_init(ctx, &ctx->poller_app));
    return ctx;
}

static void free_ctx(libxl_ctx *ctx)
{
    /* What libxl_ctx_free does for the event machinery. */
    assert(LIBXL_LIST_EMPTY(&ctx->efds));
    assert(LIBXL_TAILQ_EMPTY(&ctx->etimes));
#ifdef OSEVENT_TEST_UPSTREAM
    /* 4.2.2 never frees its nexi (see the top of this file); for_libxl
     * is the nexus, so the test frees every one the hooks were given. */
    int i;
    for (i = 0; i < n_seen; i++)
        free(seen_for_libxl[i]);
    n_seen = 0;
#endif
    libxl__poller_dispose(&ctx->poller_app);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

static int pipe_nb(int p[2])
{
    if (pipe(p)) return -1;
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    return 0;
}

/*---------- threads: the application's dispatcher against libxl ----------*/
/*
 * A second ctx, with hooks that behave like a real event loop: a
 * dispatcher thread reads a registration under the application's lock,
 * drops the lock, and then calls libxl_osevent_occurred_*; meanwhile a
 * "libxl operation" thread registers and deregisters fds and timeouts and
 * frees them as operations do.  That window (read under the app lock, call
 * without it) is the one every hook-driven loop has, and ctx->lock is what
 * must make the late call safe.  With the series (and with upstream 4.2.2)
 * nothing may be reached after it is freed (AddressSanitizer) and every
 * timeout registration must be delivered by the application exactly once.
 */

#include <pthread.h>
#include <sched.h>

#define MT_ITERS 3000
#define MT_MAXT (MT_ITERS + 8)

static struct {
    pthread_mutex_t lock;          /* the application's table lock */
    void *fd_slot;                 /* for_libxl of the live fd registration */
    struct { void *for_libxl; int state; } t[MT_MAXT]; /* 0 free, 1 armed, 2 delivered, 3 deregistered */
    int nt;
    int timeout_deregister, timeout_modify_nonzero;
    int done;
} mt = { PTHREAD_MUTEX_INITIALIZER };

static int mt_fd_register(void *user, int fd, void **for_app_out,
                          short events, void *for_libxl)
{
    pthread_mutex_lock(&mt.lock);
    mt.fd_slot = for_libxl;
    note_for_libxl(for_libxl);
    pthread_mutex_unlock(&mt.lock);
    *for_app_out = 0;
    return 0;
}
static int mt_fd_modify(void *user, int fd, void **for_app_upd, short events)
{ return 0; }
static void mt_fd_deregister(void *user, int fd, void *for_app)
{
    pthread_mutex_lock(&mt.lock);
    mt.fd_slot = 0;
    pthread_mutex_unlock(&mt.lock);
}
static int mt_timeout_register(void *user, void **for_app_out,
                               struct timeval abs, void *for_libxl)
{
    int i;
    pthread_mutex_lock(&mt.lock);
    i = mt.nt++;
    assert(i < MT_MAXT);
    mt.t[i].for_libxl = for_libxl;
    note_for_libxl(for_libxl);
    mt.t[i].state = 1;
    pthread_mutex_unlock(&mt.lock);
    *for_app_out = (void*)(intptr_t)(i + 1);
    return 0;
}
static int mt_timeout_modify(void *user, void **for_app_upd,
                             struct timeval abs)
{
    /* fire-now: the dispatcher delivers every armed entry anyway */
    if (abs.tv_sec || abs.tv_usec) {
        pthread_mutex_lock(&mt.lock);
        mt.timeout_modify_nonzero++;
        pthread_mutex_unlock(&mt.lock);
    }
    return 0;
}
static void mt_timeout_deregister(void *user, void *for_app)
{
    /* unpatched 4.2.1 only: the application forgets the entry, as the
     * 4.2.1 contract says it may */
    int i = (int)(intptr_t)for_app - 1;
    pthread_mutex_lock(&mt.lock);
    mt.timeout_deregister++;
    if (i >= 0 && i < mt.nt && mt.t[i].state == 1)
        mt.t[i].state = 3;
    pthread_mutex_unlock(&mt.lock);
}

static const libxl_osevent_hooks mt_hooks = {
    mt_fd_register, mt_fd_modify, mt_fd_deregister,
    mt_timeout_register, mt_timeout_modify, mt_timeout_deregister,
};

static int mt_pipe[2];
static volatile int mt_fd_calls, mt_time_calls;
static void mt_fd_cb(libxl__egc *egc, libxl__ev_fd *ev, int fd,
                     short events, short revents)
{ __atomic_add_fetch(&mt_fd_calls, 1, __ATOMIC_SEQ_CST); }

struct mt_timer { libxl__ev_time ev; volatile int fired; };
static void mt_time_cb(libxl__egc *egc, libxl__ev_time *ev,
                       const struct timeval *requested_abs)
{
    struct mt_timer *t = (struct mt_timer *)ev; /* ev is the first member */
    __atomic_add_fetch(&mt_time_calls, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&t->fired, 1, __ATOMIC_SEQ_CST);
}

static void *mt_dispatcher(void *arg)
{
    libxl_ctx *ctx = arg;
    int i;
    for (;;) {
        void *slot, *tslot = 0;
        int done;
        pthread_mutex_lock(&mt.lock);
        slot = mt.fd_slot;
        for (i = 0; i < mt.nt; i++)
            if (mt.t[i].state == 1) {
                tslot = mt.t[i].for_libxl;
                mt.t[i].state = 2; /* delivered exactly once */
                break;
            }
        done = mt.done;
        pthread_mutex_unlock(&mt.lock);
        /* the window: the registration may die right here */
        if (slot)
            libxl_osevent_occurred_fd(ctx, slot, mt_pipe[0], POLLIN, POLLIN);
        if (tslot)
            libxl_osevent_occurred_timeout(ctx, tslot);
        if (done && !tslot)
            return 0;
    }
}

static void threads_test(void)
{
    libxl_ctx *ctx = make_ctx();
    pthread_t disp;
    int i, cancelled = 0, fired_first = 0, waited_out = 0, delivered = 0,
        armed = 0;

    libxl_osevent_register_hooks(ctx, &mt_hooks, 0);
    assert(!pipe_nb(mt_pipe));
    assert(write(mt_pipe[1], "x", 1) == 1); /* always readable */
    assert(!pthread_create(&disp, 0, mt_dispatcher, ctx));
    {
        GC_INIT(ctx);
        for (i = 0; i < MT_ITERS; i++) {
            libxl__ev_fd *efd = malloc(sizeof(*efd));
            struct mt_timer *t = calloc(1, sizeof(*t));
            libxl__ev_fd_init(efd);
            assert(!libxl__ev_fd_register(gc, efd, mt_fd_cb, mt_pipe[0], POLLIN));
            libxl__ev_time_init(&t->ev);
            assert(!libxl__ev_time_register_rel(gc, &t->ev, mt_time_cb, 60000));
            if (i & 1) sched_yield();
            libxl__ev_fd_deregister(gc, efd);
            memset(efd, 0xa5, sizeof(*efd));
            free(efd);
            if (i % 3) {
                /* cancelled by libxl before it fires (an operation ends) */
                libxl__ev_time_deregister(gc, &t->ev);
                cancelled++;
                /* a delivery that won the race fired it first: fine; after
                 * the deregistration none may (ASan sees a late write) */
                fired_first += __atomic_load_n(&t->fired, __ATOMIC_SEQ_CST);
            } else {
                /* wait for the application's delivery to fire it */
                int spins = 0;
                while (!__atomic_load_n(&t->fired, __ATOMIC_SEQ_CST)
                       && spins++ < 2000000)
                    sched_yield();
                if (!t->fired) {
                    waited_out++;
                    libxl__ev_time_deregister(gc, &t->ev);
                }
                libxl__ev_time_deregister(gc, &t->ev); /* operations do this too */
            }
            memset(t, 0x5a, sizeof(*t));
            free(t);
        }
        GC_FREE;
    }
    pthread_mutex_lock(&mt.lock);
    mt.done = 1;
    pthread_mutex_unlock(&mt.lock);
    pthread_join(disp, 0);

    for (i = 0; i < mt.nt; i++) {
        if (mt.t[i].state == 2) delivered++;
        if (mt.t[i].state == 1) armed++;
    }
    CHECK(waited_out == 0, "threads: every timeout libxl kept was fired by"
          " the dispatcher (%d not)", waited_out);
    CHECK(mt.timeout_deregister == 0 && mt.timeout_modify_nonzero == 0,
          "threads: no timeout_deregister, timeout_modify only {0,0}"
          " (%d, %d)", mt.timeout_deregister, mt.timeout_modify_nonzero);
    CHECK(mt.nt == MT_ITERS && delivered == MT_ITERS && armed == 0,
          "threads: %d timeout registrations, each delivered exactly once"
          " by the application (%d)", mt.nt, delivered);
    CHECK(mt_time_calls == MT_ITERS - cancelled + fired_first,
          "threads: one callback per timeout not cancelled before its"
          " delivery (%d of %d; %d cancelled, %d of them fired first)",
          mt_time_calls, MT_ITERS, cancelled, fired_first);
    printf("info threads: %d fd callbacks from %d racing fd deliveries\n",
           mt_fd_calls, MT_ITERS);
    free_ctx(ctx);
    close(mt_pipe[0]); close(mt_pipe[1]);
}

int main(void)
{
    if (getenv("OSEVENT_TEST_THREADS_ONLY")) {
        /* check's threads-only control: the race alone must fail unpatched */
        setvbuf(stdout, 0, _IOLBF, 0);
        threads_test();
        printf("%s: %d failure(s)\n", failures ? "FAILED" : "passed", failures);
        return failures ? 1 : 0;
    }
    libxl_ctx *ctx = make_ctx();
    GC_INIT(ctx);
    int rc, p1[2], p2[2];
    void *slot_a, *slot_b, *slot_c;

    setvbuf(stdout, 0, _IOLBF, 0);
    libxl_osevent_register_hooks(ctx, &hooks, 0);
    assert(!pipe_nb(p1));
    assert(!pipe_nb(p2));

    /*---- fds ----*/
    libxl__ev_fd *efd = malloc(sizeof(*efd));
    libxl__ev_fd_init(efd);
    rc = libxl__ev_fd_register(gc, efd, fd_cb, p1[0], POLLIN);
    CHECK(rc == 0 && app.fd_register == 1, "fd_register hook called once");
    slot_a = app.last_fd_for_libxl;
    CHECK(slot_a && slot_a != (void*)efd,
          "for_libxl is a registration slot, not the libxl__ev_fd");

    libxl_osevent_occurred_fd(ctx, slot_a, p1[0], POLLIN, POLLIN);
    CHECK(fd_calls == 0, "occurred_fd on an empty pipe: re-poll says not"
          " ready, callback not called");

    assert(write(p1[1], "x", 1) == 1);
    libxl_osevent_occurred_fd(ctx, slot_a, p1[0], POLLIN, 0);
    CHECK(fd_calls == 1 && (fd_last_revents & POLLIN),
          "occurred_fd when readable: callback called with re-polled"
          " revents (application's revents ignored)");

    rc = libxl__ev_fd_modify(gc, efd, 0);
    CHECK(rc == 0 && app.fd_modify == 1, "fd_modify hook called");
    libxl_osevent_occurred_fd(ctx, slot_a, p1[0], POLLIN, POLLIN);
    CHECK(fd_calls == 1, "occurred_fd for events no longer wanted: ignored");
    rc = libxl__ev_fd_modify(gc, efd, POLLIN);

    libxl__ev_fd_deregister(gc, efd);
    CHECK(app.fd_deregister == 1, "fd_deregister hook called");
    memset(efd, 0xa5, sizeof(*efd));
    free(efd); /* the operation that owned it is gone */

    n_stale_logs = 0;
    libxl_osevent_occurred_fd(ctx, slot_a, p1[0], POLLIN, POLLIN);
    CHECK(fd_calls == 1 && (UPSTREAM || n_stale_logs == 1),
          "late occurred_fd after fd_deregister (ev freed): ignored%s",
          UPSTREAM ? "" : ", logged");

    /* the slot is reused by the next registration, on another fd */
    libxl__ev_fd efd2;
    libxl__ev_fd_init(&efd2);
    rc = libxl__ev_fd_register(gc, &efd2, fd_cb, p2[0], POLLIN);
    slot_b = app.last_fd_for_libxl;
    CHECK(rc == 0 && slot_b == slot_a, "free slot reused for a new fd"
          " registration");
    libxl_osevent_occurred_fd(ctx, slot_a, p1[0], POLLIN, POLLIN);
    CHECK(fd_calls == 1, "stale occurred_fd naming a slot now used for"
          " another fd: ignored");
    libxl__ev_fd_deregister(gc, &efd2);

    /* the same fd number registered again, nothing to read */
    char c;
    assert(read(p1[0], &c, 1) == 1);
    libxl__ev_fd_init(&efd2);
    rc = libxl__ev_fd_register(gc, &efd2, fd_cb, p1[0], POLLIN);
    CHECK(rc == 0 && app.last_fd_for_libxl == slot_a,
          "slot reused for a new registration of the same fd number");
    libxl_osevent_occurred_fd(ctx, slot_a, p1[0], POLLIN, POLLIN);
    CHECK(fd_calls == 1, "stale readiness for the old registration of the"
          " same fd: re-poll says not ready, ignored");
    libxl__ev_fd_deregister(gc, &efd2);

#ifndef OSEVENT_TEST_UPSTREAM
    int not_a_slot;
    n_stale_logs = 0;
    libxl_osevent_occurred_fd(ctx, &not_a_slot, p1[0], POLLIN, POLLIN);
    libxl_osevent_occurred_timeout(ctx, &not_a_slot);
    CHECK(n_stale_logs == 2, "for_libxl not issued by this ctx: ignored"
          " without being dereferenced");
#else
    printf("skip for_libxl not issued by this ctx: 4.2.2 dereferences it\n");
#endif

    /*---- timeouts ----*/
    libxl__ev_time t1, t2, t3;
    libxl__ev_time_init(&t1);
    libxl__ev_time_init(&t2);
    libxl__ev_time_init(&t3);

    rc = libxl__ev_time_register_rel(gc, &t1, time_cb, 100000);
    slot_a = app.last_timeout_for_libxl;
    CHECK(rc == 0 && app.timeout_register == 1 && slot_a
          && slot_a != (void*)&t1, "timeout_register hook called with a"
          " slot as for_libxl");

    time_cb_deregisters = 1;
    libxl_osevent_occurred_timeout(ctx, slot_a);
    CHECK(time_calls == 1, "occurred_timeout fires the timeout");
#ifndef OSEVENT_TEST_UPSTREAM
    CHECK(app.timeout_modify == 0 && app.timeout_deregister == 0,
          "callback deregistering its own fired timeout: no hook call");
#else
    CHECK(app.timeout_modify == 1 && app.timeout_deregister == 0
          && app.last_modify_reg == (void*)(intptr_t)app.next_token,
          "known 4.2.2-4.3.x bug, fixed in 4.4.0: a callback deregistering"
          " its own fired timeout makes libxl call timeout_modify with the"
          " delivered registration's token");
    app.timeout_modify = 0; /* the counts below are the series' */
#endif
    libxl__ev_time_deregister(gc, &t1);
    CHECK(app.timeout_modify == 0 && app.timeout_deregister == 0,
          "deregistering a fired timeout again: still no hook call");
    time_cb_deregisters = 0;

#ifndef OSEVENT_TEST_UPSTREAM
    n_stale_logs = 0;
    libxl_osevent_occurred_timeout(ctx, slot_a);
    CHECK(time_calls == 1 && n_stale_logs == 1,
          "duplicate occurred_timeout: ignored, logged");
#else
    printf("skip duplicate occurred_timeout: 4.2.2 needs exactly one\n");
#endif

    /* cancel: fire-now, and the slot is held until the delivery */
    rc = libxl__ev_time_register_rel(gc, &t2, time_cb, 100000);
    slot_b = app.last_timeout_for_libxl;
    CHECK(rc == 0 && slot_b == slot_a, "slot recycled after its delivery");
    libxl__ev_time_deregister(gc, &t2);
    CHECK(app.timeout_modify == 1 && app.timeout_modify_nonzero == 0
          && app.timeout_deregister == 0,
          "cancelling a timeout calls timeout_modify(abs={0,0}),"
          " not timeout_deregister");
    libxl__ev_time_deregister(gc, &t2);
    CHECK(app.timeout_modify == 1, "cancelling twice: one timeout_modify");

    rc = libxl__ev_time_register_rel(gc, &t3, time_cb, 100000);
    slot_c = app.last_timeout_for_libxl;
    CHECK(rc == 0 && slot_c != slot_b, "cancelled slot not reused before"
          " the application delivers it");

    libxl_osevent_occurred_timeout(ctx, slot_b);
    CHECK(time_calls == 1, "delivery of the cancelled timeout: no callback");
#ifndef OSEVENT_TEST_UPSTREAM
    libxl_osevent_occurred_timeout(ctx, slot_b);
    CHECK(time_calls == 1, "second delivery of it: ignored");
#endif

    libxl__ev_time_deregister(gc, &t3);
    CHECK(app.timeout_modify == 2 && app.timeout_deregister == 0,
          "second cancel: timeout_modify again");
    /* the application delivers it later */
    libxl_osevent_occurred_timeout(ctx, slot_c);
    CHECK(time_calls == 1, "...and its delivery fires nothing");

    /* libxl's own poller fires a timeout that the app also knows of */
    rc = libxl__ev_time_register_rel(gc, &t1, time_cb, 0);
    slot_a = app.last_timeout_for_libxl;
    {
        struct timeval now;
        struct pollfd fds[8];
        int nfds = 8, timeout = -1;
        gettimeofday(&now, 0);
        now.tv_sec += 10;
        rc = libxl_osevent_beforepoll(ctx, &nfds, fds, &timeout, now);
        libxl_osevent_afterpoll(ctx, 0, fds, now);
    }
    CHECK(time_calls == 2 && app.timeout_modify == 3,
          "timeout fired by libxl's poller: callback once, and the"
          " application is asked to fire-now its registration");
    libxl_osevent_occurred_timeout(ctx, slot_a);
    CHECK(time_calls == 2, "application's delivery of it afterwards:"
          " no second callback");
    libxl__ev_time_deregister(gc, &t1);

    CHECK(app.timeout_deregister == 0, "timeout_deregister never called");
    CHECK(app.timeout_modify_nonzero == 0,
          "timeout_modify only ever called with abs={0,0}");

#if !defined(OSEVENT_TEST_UNPATCHED) && !defined(OSEVENT_TEST_UPSTREAM)
    /* check's control run and upstream have no marker */
    CHECK(libxl_goxl_osevent_fix() == LIBXL_HAVE_GOXL_OSEVENT_FIX
          && LIBXL_HAVE_GOXL_OSEVENT_FIX >= 1,
          "libxl_goxl_osevent_fix() returns %d", libxl_goxl_osevent_fix());
#endif

    GC_FREE;
    free_ctx(ctx); /* frees the slots: LeakSanitizer would notice */
    close(p1[0]); close(p1[1]); close(p2[0]); close(p2[1]);

    threads_test();

    printf("%s: %d failure(s)\n", failures ? "FAILED" : "passed", failures);
    return failures ? 1 : 0;
}
