// Package threaddump prints the C stacks of a test process's threads when
// something below Go goes wrong: a glibc abort on a thread Go does not
// own, or a thread stuck in a C call. Go's own tracebacks stop at the cgo
// boundary and say nothing at all about threads that C created (such as
// libxenstore's reader thread), so a heap corruption detected there ends
// the process with "double free or corruption" and exit 134, and a hang
// there shows only a goroutine parked in a cgo call.
//
// It is for test binaries on real Xen (tests/integration), not for
// goxl's library or daemon: it replaces process-wide signal handlers.
//
// # Threads and signals
//
// Install sets two handlers with sigaction, both with SA_ONSTACK so that
// on a Go thread they run on Go's signal stack:
//   - SIGABRT: print the aborting thread's backtrace, then call the handler
//     that was there before (Go's), which prints goroutines on a Go thread
//     and ends the process either way.
//   - DumpSignal (SIGRTMIN+7, which nothing in goxl or libxl uses): print
//     the receiving thread's backtrace and return.
//
// On a thread that C created, such as libxenstore's reader thread (16 KiB
// of stack, every signal blocked until abort unblocks SIGABRT), there is
// no signal stack: the handler runs on the thread's own small stack. Go's
// handler then finds no g there and re-raises SIGABRT with the default
// action, so the process dies of the signal without a goroutine dump, and
// the C stack printed first is the only trace. The test
// TestAbortOnALibxenstoreLikeThreadPrintsItsCStack makes such a thread and
// checks both.
//
// DumpAllThreads sends DumpSignal to each thread of the process in turn
// (tgkill) and prints, first, what the kernel knows of each thread: its
// name, state, wait channel and current system call.
//
// backtrace(3) loads libgcc_s the first time it runs, which allocates;
// Install calls it once so that a handler never allocates, even when the
// abort came from inside malloc with an arena lock held. Each backtrace
// is written with backtrace_symbols_fd, which does not allocate either.
package threaddump
