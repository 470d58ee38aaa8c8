//go:build cgo

/* forkguard.c: libxl's forked children and the handles of other ctxs.
 *
 * libxl forks children inside its calls: the domain destroyer (which
 * opens a xc_interface and calls xc_domain_destroy), device scripts, the
 * bootloader. A child of a multithreaded process inherits every lock as
 * it was at the fork, with the threads that held them gone. Xen's
 * libraries keep one process-wide mutex, xentoolcore's list of open
 * handles, taken by every handle open and close; the destroyer's
 * xc_interface_open takes it in the child. If another thread was opening
 * or closing a ctx at the moment of the fork (goxl's per-operation ctxs
 * do that all the time), the child waits for that mutex forever, and
 * the destroy waits forever for the child: on real Xen, a soak of 800
 * create/destroy cycles on two goroutines hung this way.
 *
 * xl and libvirt never meet it: they allocate their ctx once. goxl
 * makes libxl_ctx_alloc and libxl_ctx_free exclusive with fork: both run
 * under handles_guard, and a pthread_atfork prepare handler takes it too,
 * so that a fork waits until no ctx is being set up or torn down, and no
 * set-up or tear-down starts until the fork is done.
 *
 * Lock order: handles_guard before libxl's own fork lock. libxl_ctx_alloc
 * takes libxl's fork lock (libxl__atfork_init) while it holds
 * handles_guard, so the prepare handler must take handles_guard first.
 * Prepare handlers run in the reverse order of registration, and libxl
 * registers its own in the first libxl_ctx_alloc; goxl registers after
 * that alloc returns, before any ctx exists that could fork.
 *
 * What this does not cover: a handle that libxl opens lazily inside an
 * operation (the event-channel handle of a save's suspend) is still
 * registered with xentoolcore outside the guard. */

#include <pthread.h>
#include "helpers.h"

static pthread_mutex_t handles_guard = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void guard_lock(void) { pthread_mutex_lock(&handles_guard); }
static void guard_unlock(void) { pthread_mutex_unlock(&handles_guard); }

static void register_atfork(void)
{
    /* The child is single-threaded and the forking thread owns the
     * mutex there too, so unlocking is the right release in both. */
    pthread_atfork(guard_lock, guard_unlock, guard_unlock);
}

int goxl_ctx_alloc(libxl_ctx **pctx, int version, unsigned flags,
                   xentoollog_logger *lg)
{
    guard_lock();
    int rc = libxl_ctx_alloc(pctx, version, flags, lg);
    guard_unlock();
    if (rc == 0)
        pthread_once(&atfork_once, register_atfork);
    return rc;
}

int goxl_ctx_free(libxl_ctx *ctx)
{
    guard_lock();
    int rc = libxl_ctx_free(ctx);
    guard_unlock();
    return rc;
}
