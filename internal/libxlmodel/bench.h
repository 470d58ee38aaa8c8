//go:build libxlmodel

/*
 * bench.h: the benchmark-only API of bench.c (used by tests/bench through
 * bench.go). Not part of the model's contract checks' API.
 */
#ifndef LIBXLMODEL_BENCH_H
#define LIBXLMODEL_BENCH_H

#include <stdint.h>
#include <libxl.h>

enum {
    LIBXLMODEL_BENCH_FD_COUNT_ONLY = 0, /* the owner only counts */
    LIBXLMODEL_BENCH_FD_NOOP_HOOK = 1,  /* + fd_modify(unchanged): C->Go */
};

typedef struct libxlmodel_bench libxlmodel_bench;

libxlmodel_bench *libxlmodel_bench_new(libxl_ctx *ctx, int fd_hook);
/* Registers n fds for POLLIN through the ctx's hooks; for_libxl_out (may
 * be NULL) receives each registration's cookie. */
int libxlmodel_bench_add_fds(libxlmodel_bench *b, const int *fds, int n, uintptr_t *for_libxl_out);
int libxlmodel_bench_remove_fds(libxlmodel_bench *b);
/* Once fd_events reaches target, one 8-byte 1 is written to done_fd. */
void libxlmodel_bench_set_target(libxlmodel_bench *b, uint64_t target, int done_fd);
uint64_t libxlmodel_bench_fd_events(libxlmodel_bench *b);
/* n timeouts at wall-clock abs_ns[i]; each that fires records its
 * lateness and, if rearm_max_ms > 0, registers a new one rearm_min_ms ..
 * rearm_max_ms later (so n stay pending). Once per bench. */
int libxlmodel_bench_add_timeouts(libxlmodel_bench *b, const int64_t *abs_ns, int n,
                                  int rearm_min_ms, int rearm_max_ms, int late_cap);
void libxlmodel_bench_stop_rearm(libxlmodel_bench *b);
/* Cancels every pending timeout (no more re-arming); see bench.c. */
int libxlmodel_bench_remove_timeouts(libxlmodel_bench *b);
uint64_t libxlmodel_bench_timeouts_owed(libxlmodel_bench *b);
uint64_t libxlmodel_bench_timeouts_fired(libxlmodel_bench *b);
int libxlmodel_bench_lateness(libxlmodel_bench *b, int64_t *out, int max);
void libxlmodel_bench_free(libxlmodel_bench *b);

/* A ctx whose osevent hooks are bench.c's C table (see bench.c). */
int libxlmodel_bench_floor_ctx_new(uintptr_t user, libxl_ctx **out);
/* libxl_osevent_occurred_fd(ctx, for_libxl, fd, POLLIN, POLLIN). */
void libxlmodel_bench_occurred_in(libxl_ctx *ctx, uintptr_t for_libxl, int fd);

#endif
