/*
 * naiveloop: the control of tests/xen42 (issue 14, item 5).
 *
 * An application event loop for libxl 4.2 written the way 4.2.1's
 * libxl_event.h describes the contract, WITHOUT goxl's protections (no
 * registry of tokens, no check that a registration is still live):
 * for_app_registration is the address of a malloc'd record, freed when
 * libxl deregisters it or when its timeout is delivered. 4.2.1's header
 * says of libxl_osevent_occurred_timeout: "Implicitly, on entry to this
 * function the timeout has been deregistered.  If _occurred_timeout is
 * called, libxl will not call timeout_deregister".
 *
 * The scenario is a real operation: libxl_domain_create_new of a PV guest
 * with one vif whose backend never answers (dom0 has no xen-netback
 * loaded), so libxl's 10 s device timeout (LIBXL_INIT_TIMEOUT) fires
 * during the create. 4.2.1's devstate_timeout cancels its own, already
 * delivered, timeout: libxl calls timeout_deregister (4.2.2-4.3: a
 * timeout_modify) with a record this loop already freed, and this loop
 * then frees it again, as any loop trusting the header would.
 *
 * Only for the report, each record address handed to libxl is kept in a
 * list of retired addresses once freed; a hook call naming one is printed
 * as "NAIVE-STALE ..." before the loop goes on with it (no protection:
 * the stale record is still used and freed). The exit status says what
 * happened:
 *   0  the create ended (it fails: the vif never connects), no stale call
 *   3  a stale hook call was seen (and survived)
 *   2  setup error
 *   killed by a signal: libxl or the loop crashed (glibc's double-free
 *   check aborts, or a segfault)
 *
 *   naiveloop NAME KERNEL RAMDISK
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <libxl.h>
#include <libxl_event.h>
#include <xentoollog.h>

/* Records of both kinds have an odd size so that libxl's own allocations
 * (other size classes) rarely reuse a freed one before the stale call. */
struct fdrec {
    struct fdrec *next, *prev;
    int fd;
    short events;
    void *for_libxl;
    char pad[200];
};

struct trec {
    struct trec *next, *prev;
    struct timeval abs;
    void *for_libxl;
    char pad[216];
};

static struct fdrec fds = { &fds, &fds };
static struct trec timers = { &timers, &timers };

#define RETIRED_MAX 4096
static void *retired[RETIRED_MAX];
static int nretired, stale_calls;

static void retire(void *p)
{
    if (nretired < RETIRED_MAX)
        retired[nretired++] = p;
}

/* malloc may hand a retired address out again: it is live once more. */
static void unretire(void *p)
{
    for (int i = 0; i < nretired; i++)
        if (retired[i] == p)
            retired[i] = NULL;
}

static int was_retired(void *p)
{
    for (int i = 0; i < nretired; i++)
        if (retired[i] == p)
            return 1;
    return 0;
}

static void stale(const char *hook, void *rec)
{
    stale_calls++;
    printf("NAIVE-STALE %s for_app=%p: libxl named a registration this loop "
           "already freed (delivered or deregistered)\n", hook, rec);
    fflush(stdout);
}

static int fd_register(void *user, int fd, void **for_app_out, short events,
                       void *for_libxl)
{
    struct fdrec *r = calloc(1, sizeof(*r));
    if (!r)
        return ERROR_OSEVENT_REG_FAIL;
    unretire(r);
    r->fd = fd;
    r->events = events;
    r->for_libxl = for_libxl;
    r->next = fds.next;
    r->prev = &fds;
    fds.next->prev = r;
    fds.next = r;
    *for_app_out = r;
    return 0;
}

static int fd_modify(void *user, int fd, void **for_app_update, short events)
{
    struct fdrec *r = *for_app_update;
    if (was_retired(r))
        stale("fd_modify", r);
    r->events = events;
    return 0;
}

static void fd_deregister(void *user, int fd, void *for_app)
{
    struct fdrec *r = for_app;
    if (was_retired(r))
        stale("fd_deregister", r);
    r->prev->next = r->next;
    r->next->prev = r->prev;
    retire(r);
    free(r);
}

static int timeout_register(void *user, void **for_app_out, struct timeval abs,
                            void *for_libxl)
{
    struct trec *r = calloc(1, sizeof(*r));
    if (!r)
        return ERROR_OSEVENT_REG_FAIL;
    unretire(r);
    r->abs = abs;
    r->for_libxl = for_libxl;
    r->next = timers.next;
    r->prev = &timers;
    timers.next->prev = r;
    timers.next = r;
    *for_app_out = r;
    return 0;
}

static int timeout_modify(void *user, void **for_app_update, struct timeval abs)
{
    struct trec *r = *for_app_update;
    if (was_retired(r))
        stale("timeout_modify", r);
    r->abs = abs;
    return 0;
}

static void timeout_deregister(void *user, void *for_app)
{
    struct trec *r = for_app;
    if (was_retired(r))
        stale("timeout_deregister", r);
    r->prev->next = r->next;
    r->next->prev = r->prev;
    retire(r);
    free(r);
}

static const libxl_osevent_hooks hooks = {
    .fd_register = fd_register,
    .fd_modify = fd_modify,
    .fd_deregister = fd_deregister,
    .timeout_register = timeout_register,
    .timeout_modify = timeout_modify,
    .timeout_deregister = timeout_deregister,
};

static int done, done_rc;

static void create_done(libxl_ctx *ctx, int rc, void *for_callback)
{
    done = 1;
    done_rc = rc;
}

static long ms_until(const struct timeval *abs)
{
    struct timeval now;
    gettimeofday(&now, NULL);
    long ms = (abs->tv_sec - now.tv_sec) * 1000 + (abs->tv_usec - now.tv_usec) / 1000;
    return ms < 0 ? 0 : ms;
}

/* One round: poll every fd until the earliest deadline, deliver the
 * timeouts that are due (forgotten first, as the header says), then the
 * fds that poll reported. */
static void loop_once(libxl_ctx *ctx)
{
    struct pollfd pfd[256];
    void *pfd_libxl[256];
    int n = 0;
    for (struct fdrec *r = fds.next; r != &fds && n < 256; r = r->next) {
        pfd[n].fd = r->fd;
        pfd[n].events = r->events;
        pfd[n].revents = 0;
        pfd_libxl[n] = r->for_libxl;
        n++;
    }
    long wait = 1000;
    for (struct trec *t = timers.next; t != &timers; t = t->next) {
        long ms = ms_until(&t->abs);
        if (ms < wait)
            wait = ms;
    }
    poll(pfd, n, (int)wait);
    struct trec *t = timers.next;
    while (t != &timers) {
        struct trec *next = t->next;
        if (ms_until(&t->abs) == 0) {
            void *for_libxl = t->for_libxl;
            t->prev->next = t->next;
            t->next->prev = t->prev;
            retire(t);
            free(t);
            libxl_osevent_occurred_timeout(ctx, for_libxl);
            next = timers.next; /* libxl may have changed the list */
        }
        t = next;
    }
    for (int i = 0; i < n; i++)
        if (pfd[i].revents)
            libxl_osevent_occurred_fd(ctx, pfd_libxl[i], pfd[i].fd,
                                      pfd[i].events, pfd[i].revents);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: naiveloop NAME KERNEL RAMDISK\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    xentoollog_logger_stdiostream *lg =
        xtl_createlogger_stdiostream(stderr, XTL_DEBUG, 0);
    libxl_ctx *ctx;
    if (libxl_ctx_alloc(&ctx, LIBXL_VERSION, 0, (xentoollog_logger *)lg)) {
        fprintf(stderr, "naiveloop: libxl_ctx_alloc failed\n");
        return 2;
    }
    libxl_osevent_register_hooks(ctx, &hooks, NULL);

    libxl_domain_config dc;
    libxl_domain_config_init(&dc);
    dc.c_info.type = LIBXL_DOMAIN_TYPE_PV;
    dc.c_info.name = strdup(argv[1]);
    libxl_domain_build_info_init_type(&dc.b_info, LIBXL_DOMAIN_TYPE_PV);
    dc.b_info.max_vcpus = 1;
    dc.b_info.max_memkb = dc.b_info.target_memkb = 128 * 1024;
    dc.b_info.u.pv.kernel = strdup(argv[2]);
    dc.b_info.u.pv.ramdisk = strdup(argv[3]);
    dc.b_info.u.pv.cmdline = strdup("console=hvc0 guest_sleep=forever");
    dc.num_nics = 1;
    dc.nics = calloc(1, sizeof(*dc.nics));
    libxl_device_nic_init(&dc.nics[0]);
    dc.nics[0].devid = 0;
    dc.nics[0].bridge = strdup("xenbr0");

    uint32_t domid = 0;
    libxl_asyncop_how how = { .callback = create_done };
    int rc = libxl_domain_create_new(ctx, &dc, &domid, &how, NULL);
    printf("naiveloop: libxl_domain_create_new returned %d (domid %u)\n", rc, domid);
    if (rc)
        done = 1, done_rc = rc;
    while (!done)
        loop_once(ctx);
    printf("naiveloop: create completed rc=%d domid=%u, stale hook calls %d\n",
           done_rc, domid, stale_calls);
    if (done_rc == 0 && domid) {
        libxl_domain_destroy(ctx, domid, NULL);
    }
    libxl_domain_config_dispose(&dc);
    libxl_ctx_free(ctx);
    xtl_logger_destroy((xentoollog_logger *)lg);
    printf("NAIVE-RESULT create_rc=%d stale_calls=%d\n", done_rc, stale_calls);
    return stale_calls ? 3 : 0;
}
