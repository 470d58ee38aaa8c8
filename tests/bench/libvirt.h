#ifndef GOXL_BENCH_LIBVIRT_H
#define GOXL_BENCH_LIBVIRT_H
#include <stdint.h>

int bench_libvirt_init(void);
/* As bench_c_epoll, on libvirt's default event loop. Negative: failure. */
int64_t bench_libvirt_dispatch(const int *fds, int n, uint64_t warmup, uint64_t target, uint64_t *delivered, int64_t *cpu_ns);

int64_t bench_libvirt_mono_ns(void);
int64_t bench_libvirt_cpu_ns(void); /* CLOCK_PROCESS_CPUTIME_ID */
/* Runs a few iterations so that libvirt finishes removals it defers. */
void bench_libvirt_flush(void);

typedef struct {
    int pending;
    int64_t lead_ns, spread_ns;
    int rearm_min_ms, rearm_max_ms;
    int64_t window_ns;
    const int *busy;
    int busy_n;
    /* out */
    int64_t *late_ns; /* cap late_cap; lateness of timeouts fired in the window */
    int late_cap;
    int late_n;
    uint64_t fired, fd_events;
    int64_t cpu_ns, window_wall_ns;
} bench_libvirt_timeouts_spec;

int bench_libvirt_timeouts(bench_libvirt_timeouts_spec *s);
#endif
