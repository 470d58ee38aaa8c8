//go:build libvirtbench

/* libvirt's default event loop, through its public API only
 * (libvirt-event.h): virEventRegisterDefaultImpl, virEventAddHandle,
 * virEventRemoveHandle, virEventAddTimeout, virEventRemoveTimeout,
 * virEventRunDefaultImpl. Timeouts are handled the way libvirt's libxl
 * driver handles libxl's (libxlTimeoutRegisterEventHook and
 * libxlTimerCallback): an absolute deadline becomes a relative
 * millisecond frequency, and the callback removes the timer (one-shot). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "libvirt.h"

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

static void quiet_errors(void *opaque, virErrorPtr err) { (void)opaque; (void)err; }

int bench_libvirt_init(void)
{
    static int done;
    if (done)
        return 0;
    virSetErrorFunc(NULL, quiet_errors);
    if (virEventRegisterDefaultImpl() < 0)
        return -1;
    done = 1;
    return 0;
}

static void noop_timer(int timer, void *opaque) { (void)timer; (void)opaque; }

/* Runs a few iterations so that libvirt finishes removals it defers. */
static void flush(void)
{
    int t = virEventAddTimeout(0, noop_timer, NULL, NULL);
    int i;
    if (t < 0)
        return;
    for (i = 0; i < 3; i++)
        virEventRunDefaultImpl();
    virEventRemoveTimeout(t);
}

static uint64_t lv_count;
static void handle_cb(int watch, int fd, int events, void *opaque)
{
    (void)watch;
    (void)fd;
    (void)events;
    (void)opaque;
    lv_count++;
}

static int64_t proc_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t bench_libvirt_dispatch(const int *fds, int n, uint64_t warmup, uint64_t target, uint64_t *delivered, int64_t *cpu)
{
    int *w = calloc((size_t)n, sizeof *w);
    int64_t t0 = 0, c0 = 0, ns;
    int i;
    if (!w || bench_libvirt_init() < 0) {
        free(w);
        return -1;
    }
    for (i = 0; i < n; i++) {
        w[i] = virEventAddHandle(fds[i], VIR_EVENT_HANDLE_READABLE, handle_cb, NULL, NULL);
        if (w[i] < 0) {
            while (--i >= 0)
                virEventRemoveHandle(w[i]);
            free(w);
            return -2;
        }
    }
    for (int timed = 0; timed < 2; timed++) {
        uint64_t want = timed ? target : warmup;
        lv_count = 0;
        if (timed) {
            t0 = mono_ns();
            c0 = proc_cpu_ns();
        }
        while (lv_count < want)
            if (virEventRunDefaultImpl() < 0) {
                ns = -3;
                goto out;
            }
    }
    ns = mono_ns() - t0;
    *cpu = proc_cpu_ns() - c0;
    *delivered = lv_count;
out:
    for (i = 0; i < n; i++)
        virEventRemoveHandle(w[i]);
    free(w);
    flush();
    return ns;
}

int64_t bench_libvirt_mono_ns(void) { return mono_ns(); }
int64_t bench_libvirt_cpu_ns(void) { return proc_cpu_ns(); }
void bench_libvirt_flush(void) { flush(); }

/* ---- timeouts, as libvirt's libxl driver runs libxl's ---- */

typedef struct {
    bench_libvirt_timeouts_spec *s;
    int id;
    int64_t abs_ns; /* libxl's wall-clock deadline */
} lv_timeout;

static int in_window;
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ull;
}

static void timer_cb(int timer, void *opaque);

/* libxlTimeoutRegisterEventHook: relative milliseconds from now. */
static int lv_register(lv_timeout *t)
{
    int64_t rel = t->abs_ns - wall_ns();
    int ms = rel <= 0 ? 0 : (int)((rel + 999999) / 1000000);
    t->id = virEventAddTimeout(ms, timer_cb, t, NULL);
    return t->id < 0 ? -1 : 0;
}

static void timer_cb(int timer, void *opaque)
{
    lv_timeout *t = opaque;
    bench_libvirt_timeouts_spec *s = t->s;
    int64_t late = wall_ns() - t->abs_ns;
    /* libxlTimerCallback: disable, deliver to libxl, remove. */
    virEventUpdateTimeout(timer, -1);
    if (in_window) {
        s->fired++;
        if (s->late_n < s->late_cap)
            s->late_ns[s->late_n++] = late;
    }
    virEventRemoveTimeout(timer);
    t->id = -1;
    if (s->rearm_max_ms > 0 && in_window >= 0) {
        int64_t ms = s->rearm_min_ms;
        if (s->rearm_max_ms > s->rearm_min_ms)
            ms += (int64_t)(next_rand() % (uint64_t)(s->rearm_max_ms - s->rearm_min_ms + 1));
        t->abs_ns = wall_ns() + ms * 1000000 + (int64_t)(next_rand() % 1000000);
        lv_register(t);
    }
}

static void busy_cb(int watch, int fd, int events, void *opaque)
{
    bench_libvirt_timeouts_spec *s = opaque;
    (void)watch;
    (void)fd;
    (void)events;
    if (in_window)
        s->fd_events++;
}

int bench_libvirt_timeouts(bench_libvirt_timeouts_spec *s)
{
    lv_timeout *ts = calloc((size_t)s->pending, sizeof *ts);
    int *w = calloc((size_t)s->busy_n + 1, sizeof *w);
    int64_t start = wall_ns(), mstart = mono_ns(), cpu0 = 0, t0 = 0;
    int i, rc = 0;
    if (!ts || !w || bench_libvirt_init() < 0) {
        free(ts);
        free(w);
        return -1;
    }
    in_window = 0;
    s->fired = s->fd_events = 0;
    s->late_n = 0;
    for (i = 0; i < s->pending; i++) {
        int64_t j = ((int64_t)i * 7919) % s->pending;
        ts[i].s = s;
        ts[i].abs_ns = start + s->lead_ns + s->spread_ns * j / s->pending;
        if (lv_register(&ts[i]) < 0) {
            rc = -2;
            break;
        }
    }
    for (i = 0; rc == 0 && i < s->busy_n; i++) {
        w[i] = virEventAddHandle(s->busy[i], VIR_EVENT_HANDLE_READABLE, busy_cb, s, NULL);
        if (w[i] < 0)
            rc = -2;
    }
    while (rc == 0) {
        int64_t now = mono_ns();
        if (!in_window && now >= mstart + s->lead_ns) {
            in_window = 1;
            cpu0 = cpu_ns();
            t0 = now;
        }
        if (in_window && now >= t0 + s->window_ns) {
            s->cpu_ns = cpu_ns() - cpu0;
            s->window_wall_ns = now - t0;
            break;
        }
        if (virEventRunDefaultImpl() < 0)
            rc = -3;
    }
    in_window = -1; /* no more re-arming */
    for (i = 0; i < s->pending; i++)
        if (ts[i].id >= 0)
            virEventRemoveTimeout(ts[i].id);
    for (i = 0; i < s->busy_n; i++)
        if (w[i] > 0)
            virEventRemoveHandle(w[i]);
    flush();
    free(ts);
    free(w);
    return rc;
}
