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

int main(void)
{
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
    CHECK(fd_calls == 1 && n_stale_logs == 1,
          "late occurred_fd after fd_deregister (ev freed): ignored, logged");

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

    int not_a_slot;
    n_stale_logs = 0;
    libxl_osevent_occurred_fd(ctx, &not_a_slot, p1[0], POLLIN, POLLIN);
    libxl_osevent_occurred_timeout(ctx, &not_a_slot);
    CHECK(n_stale_logs == 2, "for_libxl not issued by this ctx: ignored"
          " without being dereferenced");

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
    CHECK(app.timeout_modify == 0 && app.timeout_deregister == 0,
          "callback deregistering its own fired timeout: no hook call");
    libxl__ev_time_deregister(gc, &t1);
    CHECK(app.timeout_modify == 0 && app.timeout_deregister == 0,
          "deregistering a fired timeout again: still no hook call");
    time_cb_deregisters = 0;

    n_stale_logs = 0;
    libxl_osevent_occurred_timeout(ctx, slot_a);
    CHECK(time_calls == 1 && n_stale_logs == 1,
          "duplicate occurred_timeout: ignored, logged");

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
    libxl_osevent_occurred_timeout(ctx, slot_b);
    CHECK(time_calls == 1, "second delivery of it: ignored");

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

#ifndef OSEVENT_TEST_UNPATCHED /* check's control run has no marker */
    CHECK(libxl_goxl_osevent_fix() == LIBXL_HAVE_GOXL_OSEVENT_FIX
          && LIBXL_HAVE_GOXL_OSEVENT_FIX >= 1,
          "libxl_goxl_osevent_fix() returns %d", libxl_goxl_osevent_fix());
#endif

    GC_FREE;
    free_ctx(ctx); /* frees the slots: LeakSanitizer would notice */
    close(p1[0]); close(p1[1]); close(p2[0]); close(p2[1]);

    printf("%s: %d failure(s)\n", failures ? "FAILED" : "passed", failures);
    return failures ? 1 : 0;
}
