//go:build cgo

package threaddump

/*
#define _GNU_SOURCE
#include <execinfo.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

static struct sigaction threaddump_prev_abrt;

// Dumps finished: DumpAllThreads waits for it to move before it signals
// the next thread, so that stacks do not interleave.
static volatile int threaddump_done;

static void threaddump_write(const char *s) {
	size_t n = strlen(s);
	while (n > 0) {
		ssize_t w = write(2, s, n);
		if (w <= 0) return;
		s += w;
		n -= (size_t)w;
	}
}

// threaddump_self writes "threaddump: <why> on thread <tid>" and the
// calling thread's C stack to stderr; async-signal-safe once primed.
static void threaddump_self(const char *why) {
	char num[24];
	int i = (int)sizeof(num) - 1;
	long tid = syscall(SYS_gettid);
	num[i] = '\0';
	do { num[--i] = (char)('0' + tid % 10); tid /= 10; } while (tid > 0 && i > 0);
	threaddump_write("threaddump: ");
	threaddump_write(why);
	threaddump_write(" on thread ");
	threaddump_write(&num[i]);
	threaddump_write("\n");
	void *frames[64];
	int n = backtrace(frames, 64);
	backtrace_symbols_fd(frames, n, 2);
}

static void threaddump_on_abort(int sig, siginfo_t *info, void *uc) {
	threaddump_self("SIGABRT");
	if (threaddump_prev_abrt.sa_flags & SA_SIGINFO) {
		threaddump_prev_abrt.sa_sigaction(sig, info, uc);
		return;
	}
	// No Go handler to forward to: die of the signal as abort would.
	signal(SIGABRT, SIG_DFL);
	raise(SIGABRT);
}

static void threaddump_on_dump(int sig, siginfo_t *info, void *uc) {
	(void)sig; (void)info; (void)uc;
	threaddump_self("dump");
	__atomic_add_fetch(&threaddump_done, 1, __ATOMIC_SEQ_CST);
}

static int threaddump_dumps_done(void) { return __atomic_load_n(&threaddump_done, __ATOMIC_SEQ_CST); }

static int threaddump_dump_signal(void) { return SIGRTMIN + 7; }

static int threaddump_install(void) {
	void *prime[2];
	backtrace(prime, 2);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sa.sa_sigaction = threaddump_on_dump;
	if (sigaction(threaddump_dump_signal(), &sa, NULL) != 0) return -1;
	sa.sa_sigaction = threaddump_on_abort;
	return sigaction(SIGABRT, &sa, &threaddump_prev_abrt);
}
*/
import "C"

import (
	"errors"
	"syscall"
)

// Supported says whether this build can print C stacks (it needs cgo).
const Supported = true

// DumpSignal is the signal whose handler prints the receiving thread's
// C stack.
var DumpSignal = syscall.Signal(C.threaddump_dump_signal())

// dumpsDone counts the DumpSignal handlers that have finished.
func dumpsDone() int { return int(C.threaddump_dumps_done()) }

// Install sets the SIGABRT and DumpSignal handlers (see the package doc).
// Call it once, early in TestMain.
func Install() error {
	if C.threaddump_install() != 0 {
		return errors.New("threaddump: sigaction failed")
	}
	return nil
}
