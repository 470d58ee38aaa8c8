//go:build cgo

package threaddump

/*
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

static void *threaddump_selftest_abort_main(void *arg) {
	(void)arg;
	abort();
	return NULL;
}

// A thread made as libxenstore 4.17 makes its reader thread (xs_watch):
// the larger of __pthread_get_minstack and 16 KiB of stack, every signal
// blocked. It calls abort(), as glibc's malloc does when it finds a
// corrupted heap.
static int threaddump_selftest_abort_on_reader_like_thread(void) {
	size_t size = 0;
	size_t (*getsz)(const pthread_attr_t *) = (size_t (*)(const pthread_attr_t *))dlsym(RTLD_DEFAULT, "__pthread_get_minstack");
	pthread_attr_t attr;
	pthread_t th;
	sigset_t all, old;
	int rc;
	if (pthread_attr_init(&attr) != 0)
		return -1;
	if (getsz)
		size = getsz(&attr);
	if (size < 16 * 1024)
		size = 16 * 1024;
	if (pthread_attr_setstacksize(&attr, size) != 0)
		return -1;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&th, &attr, threaddump_selftest_abort_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0)
		return -1;
	pthread_join(th, NULL);
	return 0;
}
*/
import "C"

// abortOnReaderLikeThread aborts the process from a thread that C created
// the way libxenstore creates its reader thread (TestAbortOnALibxenstore
// LikeThreadPrintsItsCStack). It returns only if the thread could not be
// made.
func abortOnReaderLikeThread() { C.threaddump_selftest_abort_on_reader_like_thread() }
