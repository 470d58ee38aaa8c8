#ifndef GOXL_BENCH_FLOOR_H
#define GOXL_BENCH_FLOOR_H
#include <stdint.h>

/* Pure C epoll floor: registers fds[0..n), delivers at least target events
 * (after warmup ones) through one function-pointer callback each, and
 * returns the timed part's nanoseconds; *delivered gets its event count. */
int64_t bench_c_epoll(const int *fds, int n, uint64_t warmup, uint64_t target, uint64_t *delivered, int64_t *cpu_ns);

/* One Go->C call: calls the Go export benchFloorNoop once (C->Go). */
void bench_floor_occurred(int fd);

int64_t bench_mono_ns(void);
int64_t bench_cpu_ns(void);

int bench_probe_start(int cap);
int bench_probe_stop(int64_t *out, int max);
#endif
