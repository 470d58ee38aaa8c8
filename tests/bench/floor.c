#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "floor.h"
#include "_cgo_export.h"

int64_t bench_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t c_count;
static void c_callback(int fd, uint32_t events) { (void)fd; (void)events; c_count++; }
static void (*volatile c_cb)(int, uint32_t) = c_callback;

int64_t bench_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t bench_c_epoll(const int *fds, int n, uint64_t warmup, uint64_t target, uint64_t *delivered, int64_t *cpu_ns)
{
    struct epoll_event evs[256];
    int64_t t0 = 0, c0 = 0;
    int i, epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        return -errno;
    for (i = 0; i < n; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)fds[i]};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fds[i], &ev) < 0) {
            int e = errno;
            close(epfd);
            return -e;
        }
    }
    c_count = 0;
    for (int timed = 0; timed < 2; timed++) {
        uint64_t want = timed ? target : warmup;
        c_count = 0;
        if (timed) {
            t0 = bench_mono_ns();
            c0 = bench_cpu_ns();
        }
        while (c_count < want) {
            int k = epoll_wait(epfd, evs, 256, -1);
            if (k < 0) {
                if (errno == EINTR)
                    continue;
                close(epfd);
                return -errno;
            }
            for (i = 0; i < k; i++)
                c_cb((int)evs[i].data.u64, evs[i].events);
        }
    }
    int64_t ns = bench_mono_ns() - t0;
    *cpu_ns = bench_cpu_ns() - c0;
    *delivered = c_count;
    close(epfd);
    return ns;
}

void bench_floor_occurred(int fd)
{
    benchFloorNoop(fd);
}

/* ---- timer probe: the machine's own timer lateness ----
 * A pthread that sleeps to absolute deadlines 1 ms apart
 * (clock_nanosleep TIMER_ABSTIME) and records how late it wakes: what a
 * timer costs on this machine with nothing else to do, under whatever
 * load the machine has. */
#include <pthread.h>
#include <stdlib.h>

static pthread_t probe_thread;
static volatile int probe_stop;
static int64_t *probe_late;
static int probe_cap, probe_n;

static void *probe_main(void *arg)
{
    struct timespec next;
    (void)arg;
    clock_gettime(CLOCK_MONOTONIC, &next);
    while (!probe_stop && probe_n < probe_cap) {
        next.tv_nsec += 1000000;
        if (next.tv_nsec >= 1000000000) {
            next.tv_nsec -= 1000000000;
            next.tv_sec++;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
        int64_t late = bench_mono_ns() - ((int64_t)next.tv_sec * 1000000000 + next.tv_nsec);
        probe_late[probe_n++] = late;
    }
    return NULL;
}

int bench_probe_start(int cap)
{
    probe_late = calloc((size_t)cap, sizeof *probe_late);
    if (!probe_late)
        return -1;
    probe_cap = cap;
    probe_n = 0;
    probe_stop = 0;
    return pthread_create(&probe_thread, NULL, probe_main, NULL);
}

int bench_probe_stop(int64_t *out, int max)
{
    int i, n;
    probe_stop = 1;
    pthread_join(probe_thread, NULL);
    n = probe_n < max ? probe_n : max;
    for (i = 0; i < n; i++)
        out[i] = probe_late[i];
    free(probe_late);
    probe_late = NULL;
    return n;
}
