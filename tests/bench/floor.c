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
