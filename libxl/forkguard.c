//go:build cgo

/* forkguard.c: libxl's forked children and the other threads' locks.
 *
 * libxl forks children inside its calls: the domain destroyer (which
 * opens a xc_interface and calls xc_domain_destroy), device scripts, the
 * bootloader. A child of a multithreaded process inherits every lock as
 * it was at the fork, with the threads that held them gone. Two
 * process-wide mutexes of Xen's libraries have no fork handler, and the
 * destroyer takes both in the child:
 *   - xentoolcore's list of open handles (every handle open and close);
 *   - libxencall's hypercall buffer cache (nearly every hypercall).
 * If another thread held one at the moment of the fork, the child waits
 * for it forever, and the destroy waits forever for the child. xl and
 * libvirt never meet it: one ctx, and libxl's ctx lock lets only one
 * thread into libxl at a time. goxl's per-operation ctxs run libxl on
 * several threads at once: on real Xen, 800 create/destroy cycles on two
 * goroutines hung this way twice in two runs, the child blocked in
 * futex(2) on a word in libxencall's data.
 *
 * The guard is a reader-writer lock. A thread holds it shared while it is
 * inside a library function that takes one of those mutexes, and inside
 * libxl_ctx_alloc and libxl_ctx_free; a pthread_atfork prepare handler
 * holds it exclusively across the fork. So no fork happens while any
 * thread holds either mutex, and the child finds both free.
 *
 * How the library functions are wrapped: this file defines functions of
 * the same names (xentoolcore__register_active_handle, ...,
 * xencall_free_buffer). The linker exports an executable's definition of
 * a symbol that a shared library of the link references, and the dynamic
 * linker then binds the libraries' calls to it, since the executable
 * comes first in symbol lookup (TestForkGuardWrapsTheLibraries checks
 * both on every build that links libxenlight). Each takes the guard shared and
 * calls the library's own function (dlsym RTLD_NEXT). Calls inside one
 * library that do not go through its PLT are not seen, which is why
 * every entry point that reaches the mutexes is wrapped, not the inner
 * functions.
 *
 * Lock order: the guard comes before libxl's own fork lock. libxl's
 * prepare handler takes that lock; libxl registers it in the first
 * libxl_ctx_alloc, and goxl registers its own after that alloc returns,
 * so goxl's runs first (prepare handlers run in the reverse order of
 * registration), before any ctx exists that could fork. A thread never
 * waits for anything while it holds the guard shared but the mutexes
 * themselves, mmap and ioctl: the writer always gets it.
 *
 * The guard is writer-preferring, so a fork is not starved by a stream of
 * hypercalls; a thread's nested entries (a wrapped function that calls
 * another through the PLT) take it once, by a per-thread depth. */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <libxl.h>

static pthread_rwlock_t guard;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static __thread int guard_depth;

/* The libraries' own functions, found once, in guard_init: never by a
 * dlsym in a forked child. NULL where a library is not linked (the
 * contract model's build), and then nothing calls the wrapper. */
static void (*next_xentoolcore__register_active_handle)(void *);
static void (*next_xentoolcore__deregister_active_handle)(void *);
static void *(*next_xencall_alloc_buffer_pages)(void *, size_t);
static void (*next_xencall_free_buffer_pages)(void *, void *, size_t);
static void *(*next_xencall_alloc_buffer)(void *, size_t);
static void (*next_xencall_free_buffer)(void *, void *);
static int (*next_xencall_close)(void *);

static void guard_init_lock(void)
{
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&guard, &attr);
    pthread_rwlockattr_destroy(&attr);
}

static void guard_init(void)
{
    next_xentoolcore__register_active_handle = (void (*)(void *))dlsym(RTLD_NEXT, "xentoolcore__register_active_handle");
    next_xentoolcore__deregister_active_handle = (void (*)(void *))dlsym(RTLD_NEXT, "xentoolcore__deregister_active_handle");
    next_xencall_alloc_buffer_pages = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "xencall_alloc_buffer_pages");
    next_xencall_free_buffer_pages = (void (*)(void *, void *, size_t))dlsym(RTLD_NEXT, "xencall_free_buffer_pages");
    next_xencall_alloc_buffer = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "xencall_alloc_buffer");
    next_xencall_free_buffer = (void (*)(void *, void *))dlsym(RTLD_NEXT, "xencall_free_buffer");
    next_xencall_close = (int (*)(void *))dlsym(RTLD_NEXT, "xencall_close");
    guard_init_lock();
}

static void guard_enter(void)
{
    pthread_once(&guard_once, guard_init);
    if (guard_depth++ == 0)
        pthread_rwlock_rdlock(&guard);
}

static void guard_leave(void)
{
    if (--guard_depth == 0)
        pthread_rwlock_unlock(&guard);
}

static void fork_prepare(void) { pthread_rwlock_wrlock(&guard); }

static void fork_parent(void) { pthread_rwlock_unlock(&guard); }

/* In the child an unlock is not enough: the lock still records the
 * parent's threads that were waiting at the fork. When two threads fork
 * at once, the unlock hands the lock to the other forking thread, which
 * the child does not have, and the child's first reader waits forever
 * (seen on real Xen: the destroyer child in futex(2) on this lock;
 * TestForkGuardChildOfConcurrentForksEntersTheLibraries). The child is
 * single-threaded: start it afresh. */
static void fork_child(void)
{
    guard_depth = 0;
    guard_init_lock();
}

static void register_atfork(void)
{
    pthread_once(&guard_once, guard_init);
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

int goxl_ctx_alloc(libxl_ctx **pctx, int version, unsigned flags,
                   xentoollog_logger *lg)
{
    guard_enter();
    int rc = libxl_ctx_alloc(pctx, version, flags, lg);
    guard_leave();
    if (rc == 0)
        pthread_once(&atfork_once, register_atfork);
    return rc;
}

int goxl_ctx_free(libxl_ctx *ctx)
{
    guard_enter();
    int rc = libxl_ctx_free(ctx);
    guard_leave();
    return rc;
}

/* ---- the wrapped library functions ----
 * Types are opaque here: only pointers pass through. */

void xentoolcore__register_active_handle(void *ah)
{
    guard_enter();
    next_xentoolcore__register_active_handle(ah);
    guard_leave();
}

void xentoolcore__deregister_active_handle(void *ah)
{
    guard_enter();
    next_xentoolcore__deregister_active_handle(ah);
    guard_leave();
}

void *xencall_alloc_buffer_pages(void *xcall, size_t nr_pages)
{
    guard_enter();
    void *p = next_xencall_alloc_buffer_pages(xcall, nr_pages);
    guard_leave();
    return p;
}

void xencall_free_buffer_pages(void *xcall, void *p, size_t nr_pages)
{
    guard_enter();
    next_xencall_free_buffer_pages(xcall, p, nr_pages);
    guard_leave();
}

void *xencall_alloc_buffer(void *xcall, size_t size)
{
    guard_enter();
    void *p = next_xencall_alloc_buffer(xcall, size);
    guard_leave();
    return p;
}

void xencall_free_buffer(void *xcall, void *p)
{
    guard_enter();
    next_xencall_free_buffer(xcall, p);
    guard_leave();
}

int xencall_close(void *xcall)
{
    guard_enter();
    int rc = next_xencall_close(xcall);
    guard_leave();
    return rc;
}

/* For tests: whether the libraries' calls reach the wrappers above (the
 * binary exports them, and the dynamic linker bound them first). */
int goxl_forkguard_interposed(void)
{
    void *p = dlsym(RTLD_DEFAULT, "xencall_alloc_buffer_pages");
    void *q = dlsym(RTLD_DEFAULT, "xentoolcore__register_active_handle");
    return p == (void *)xencall_alloc_buffer_pages &&
           q == (void *)xentoolcore__register_active_handle;
}

/* ---- for tests: two forks at once, with a reader waiting ----
 * The shape of the soak's hang, without Xen: two threads fork at the same
 * moment (two destroys) while a third holds the guard shared and a fourth
 * waits to. Both prepare handlers wait for the write lock; the first to
 * get it forks, and its child then takes the guard shared, as the
 * destroyer does in xencall_alloc_buffer_pages. If the child unlocked the
 * inherited lock instead of starting it afresh, the unlock would hand the
 * lock to the other forker, a thread that does not exist in the child,
 * and the child would wait forever. Returns how many children did not
 * exit within two seconds (they are killed), or -1 if a thread or fork
 * could not be made. */

static void *selftest_fork(void *arg)
{
    int *hung = arg;
    pid_t pid = fork();
    if (pid < 0) {
        *hung = -1;
        return NULL;
    }
    if (pid == 0) {
        guard_enter();
        guard_leave();
        _exit(0);
    }
    struct timespec tick = {0, 10 * 1000 * 1000};
    for (int i = 0; i < 200; i++) {
        int status;
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got == pid || (got < 0 && errno != EINTR))
            return NULL;
        nanosleep(&tick, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    *hung = 1;
    return NULL;
}

static void *selftest_read(void *arg)
{
    (void)arg;
    guard_enter();
    guard_leave();
    return NULL;
}

int goxl_forkguard_selftest_concurrent_forks(void)
{
    pthread_once(&atfork_once, register_atfork);
    int hung[2] = {0, 0};
    pthread_t forker[2], reader;
    struct timespec settle = {0, 100 * 1000 * 1000};

    guard_enter();
    int made = 0;
    for (; made < 2; made++)
        if (pthread_create(&forker[made], NULL, selftest_fork, &hung[made]) != 0)
            break;
    nanosleep(&settle, NULL); /* both prepare handlers now wait to write */
    int reading = pthread_create(&reader, NULL, selftest_read, NULL) == 0;
    nanosleep(&settle, NULL); /* the reader now waits behind them */
    guard_leave();

    for (int i = 0; i < made; i++)
        pthread_join(forker[i], NULL);
    if (reading)
        pthread_join(reader, NULL);
    if (made < 2 || !reading || hung[0] < 0 || hung[1] < 0)
        return -1;
    return hung[0] + hung[1];
}
