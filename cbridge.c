/* cbridge.c: libxl's callbacks, forwarded to Go. See cbridge.h for how
 * errors flow. Each function here is a thin shim: it converts pointers to
 * integers so that Go never sees a C address as a pointer, calls the
 * matching export from bridge.go, and writes back what libxl expects. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "cbridge.h"
#include "_cgo_export.h"

static int fd_register(void *user, int fd, void **for_app_registration_out,
                       short events, void *for_libxl)
{
    uint64_t id = 0;
    int rc = goxlFDRegister((uintptr_t)user, fd, events,
                            (uintptr_t)for_libxl, &id);
    if (rc == 0)
        *for_app_registration_out = (void *)(uintptr_t)id;
    return rc;
}

static int fd_modify(void *user, int fd, void **for_app_registration_update,
                     short events)
{
    return goxlFDModify((uintptr_t)user, fd,
                        (uint64_t)(uintptr_t)*for_app_registration_update,
                        events);
}

static void fd_deregister(void *user, int fd, void *for_app_registration)
{
    goxlFDDeregister((uintptr_t)user, fd,
                     (uint64_t)(uintptr_t)for_app_registration);
}

static int timeout_register(void *user, void **for_app_registration_out,
                            struct timeval abs, void *for_libxl)
{
    uint64_t id = 0;
    int rc = goxlTimeoutRegister((uintptr_t)user, (int64_t)abs.tv_sec,
                                 (int64_t)abs.tv_usec, (uintptr_t)for_libxl,
                                 &id);
    if (rc == 0)
        *for_app_registration_out = (void *)(uintptr_t)id;
    return rc;
}

static int timeout_modify(void *user, void **for_app_registration_update,
                          struct timeval abs)
{
    return goxlTimeoutModify((uintptr_t)user,
                             (uint64_t)(uintptr_t)*for_app_registration_update,
                             (int64_t)abs.tv_sec, (int64_t)abs.tv_usec);
}

/* On libxl 4.2.0 for_app_registration is a void ** to libxl's copy of
 * the ID; the export then reads the ID with goxl_token_at. */
static void timeout_deregister(void *user, void *for_app_registration)
{
    goxlTimeoutDeregister((uintptr_t)user,
                          (uint64_t)(uintptr_t)for_app_registration);
}

uint64_t goxl_token_at(uintptr_t p)
{
    return p ? (uint64_t)(uintptr_t)*(void *const *)p : 0;
}

const libxl_osevent_hooks goxl_osevent_hooks = {
    .fd_register = fd_register,
    .fd_modify = fd_modify,
    .fd_deregister = fd_deregister,
    .timeout_register = timeout_register,
    .timeout_modify = timeout_modify,
    .timeout_deregister = timeout_deregister,
};

static void event_occurs(void *user, libxl_event *event)
{
    goxlEventOccurs((uintptr_t)user, (uintptr_t)event);
}

static void disaster(void *user, libxl_event_type type, const char *msg,
                     int errnoval)
{
    goxlDisaster((uintptr_t)user, (int)type, (char *)msg, errnoval);
}

const libxl_event_hooks goxl_event_hooks = {
    /* Every event type goes to event_occurs: goxl never polls for events
     * with libxl_event_check/_wait, so a type left out of the mask would
     * pile up inside libxl. */
    .event_occurs_mask = ~(uint64_t)0,
    .event_occurs = event_occurs,
    .disaster = disaster,
};

void goxl_ao_complete(libxl_ctx *ctx, int rc, void *for_callback)
{
    (void)ctx;
    goxlAOComplete((uintptr_t)for_callback, rc);
}

typedef struct {
    xentoollog_logger vtable; /* first, so the pointers convert */
    uintptr_t token;
    int min_level; /* read and written with __atomic: set from any thread */
    pid_t pid;     /* the process that made the logger: the only one with Go */
} goxl_logger;

/* libxl logs through the ctx's logger from the children it forks (the
 * save helper's child, spawned devices). A forked copy of a Go process
 * has one thread and none of the runtime's others: entering Go there can
 * hang or crash. Such a message goes to stderr, written here in C. */
static int in_forked_child(const goxl_logger *logger)
{
    return getpid() != logger->pid;
}

static void write_child_stderr(const char *context, const char *msg)
{
    char line[1024];
    int n = snprintf(line, sizeof line, "libxl (forked child, pid %ld)%s%s: %s\n",
                     (long)getpid(), context ? " " : "", context ? context : "", msg);
    const char *p = line;
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line) {
        n = (int)sizeof line - 1;
        line[n - 1] = '\n';
    }
    while (n > 0) {
        ssize_t w = write(2, p, (size_t)n);
        if (w <= 0)
            return;
        p += w;
        n -= (int)w;
    }
}

static void logger_vmessage(xentoollog_logger *logger_in,
                            xentoollog_level level, int errnoval,
                            const char *context, const char *format,
                            va_list al)
{
    goxl_logger *logger = (goxl_logger *)logger_in;
    char stackbuf[512];
    char *msg = stackbuf;
    va_list copy;
    int n;

    if ((int)level < __atomic_load_n(&logger->min_level, __ATOMIC_RELAXED))
        return;
    va_copy(copy, al);
    n = vsnprintf(stackbuf, sizeof stackbuf, format, copy);
    va_end(copy);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof stackbuf) {
        msg = malloc((size_t)n + 1);
        if (!msg)
            return;
        vsnprintf(msg, (size_t)n + 1, format, al);
    }
    if (in_forked_child(logger))
        write_child_stderr(context, msg);
    else
        goxlLog(logger->token, (int)level, errnoval, (char *)context, msg);
    if (msg != stackbuf)
        free(msg);
}

static void logger_progress(xentoollog_logger *logger_in, const char *context,
                            const char *doing_what, int percent,
                            unsigned long done, unsigned long total)
{
    goxl_logger *logger = (goxl_logger *)logger_in;
    char msg[256];
    (void)done;
    (void)total;
    if ((int)XTL_PROGRESS < __atomic_load_n(&logger->min_level, __ATOMIC_RELAXED))
        return;
    snprintf(msg, sizeof msg, "%s: %d%%", doing_what ? doing_what : "",
             percent);
    if (in_forked_child(logger))
        write_child_stderr(context, msg);
    else
        goxlLog(logger->token, (int)XTL_PROGRESS, -1, (char *)context, msg);
}

static void logger_destroy(xentoollog_logger *logger_in)
{
    free(logger_in);
}

xentoollog_logger *goxl_logger_new(uintptr_t token, int min_level)
{
    goxl_logger *logger = calloc(1, sizeof *logger);
    if (!logger)
        return NULL;
    logger->vtable.vmessage = logger_vmessage;
    logger->vtable.progress = logger_progress;
    logger->vtable.destroy = logger_destroy;
    logger->token = token;
    logger->min_level = min_level;
    logger->pid = getpid();
    return &logger->vtable;
}

void goxl_logger_set_level(xentoollog_logger *logger, int min_level)
{
    __atomic_store_n(&((goxl_logger *)logger)->min_level, min_level, __ATOMIC_RELAXED);
}
