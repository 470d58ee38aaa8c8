//go:build cgo

package goxl

/*
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xentoollog.h>

static void goxl_fl_logv(xentoollog_logger *l, int level, const char *fmt, ...)
{
    va_list al;
    va_start(al, fmt);
    l->vmessage(l, (xentoollog_level)level, -1, "forktest", fmt, al);
    va_end(al);
}

static void goxl_fl_log(xentoollog_logger *l, int level, const char *msg)
{
    goxl_fl_logv(l, level, "%s", msg);
}

static void goxl_fl_destroy(xentoollog_logger *l) { l->destroy(l); }

// Forks a child that logs msg through logger (as libxl's children do)
// with its stderr on a pipe, then exits 0. The parent collects what the
// child wrote to stderr (up to cap bytes) and its wait status; a child
// that is not done within bound_ms is killed. Returns the byte count, or
// -1 with errno.
static int goxl_fl_run(xentoollog_logger *logger, int level, const char *msg, int progress,
                       char *out, int cap, int bound_ms, int *status, int *killed)
{
    int p[2], n = 0;
    pid_t pid;
    struct timespec start, now;
    if (pipe(p) < 0)
        return -1;
    pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(p[1], 2);
        close(p[0]);
        if (progress)
            logger->progress(logger, "forktest", msg, 50, 1, 2);
        else
            goxl_fl_logv(logger, level, "%s", msg);
        _exit(0);
    }
    close(p[1]);
    *killed = 0;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        int left, r;
        clock_gettime(CLOCK_MONOTONIC, &now);
        left = bound_ms - (int)((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
        if (left <= 0) {
            kill(pid, SIGKILL);
            *killed = 1;
            break;
        }
        r = poll(&pfd, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        r = (int)read(p[0], out + n, (size_t)(cap - n));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += r;
        if (n == cap)
            break;
    }
    close(p[0]);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    return n;
}
*/
import "C"

import (
	"fmt"
	"time"
	"unsafe"
)

// forkedChildLog is for tests: it forks a child that logs msg through
// logger, as libxl's forked children do, and returns what the child wrote
// to its stderr and whether it exited 0 within bound. It lives outside
// the _test files because cgo is not available there.
func forkedChildLog(logger unsafe.Pointer, level int, msg string, progress bool, bound time.Duration) (stderr string, exitedOK bool, err error) {
	cmsg := C.CString(msg)
	defer C.free(unsafe.Pointer(cmsg))
	buf := (*C.char)(C.malloc(4096))
	defer C.free(unsafe.Pointer(buf))
	var status, killed C.int
	prog := C.int(0)
	if progress {
		prog = 1
	}
	n, errno := C.goxl_fl_run((*C.xentoollog_logger)(logger), C.int(level), cmsg, prog, buf, 4096,
		C.int(bound/time.Millisecond), &status, &killed)
	if n < 0 {
		return "", false, fmt.Errorf("fork: %w", errno)
	}
	ok := killed == 0 && C.int(status)&0x7f == 0 && (C.int(status)>>8)&0xff == 0
	return C.GoStringN(buf, n), ok, nil
}

// logHere logs msg through logger in this process (tests).
func logHere(logger unsafe.Pointer, level int, msg string) {
	cmsg := C.CString(msg)
	defer C.free(unsafe.Pointer(cmsg))
	C.goxl_fl_log((*C.xentoollog_logger)(logger), C.int(level), cmsg)
}

// destroyLogger frees a logger made by NewLogger without linking
// libxentoollog (tests of this package link no libxl).
func destroyLogger(logger unsafe.Pointer) { C.goxl_fl_destroy((*C.xentoollog_logger)(logger)) }
