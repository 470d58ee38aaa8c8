// Package epoll is a small, pure-Go wrapper around a Linux epoll instance
// with an eventfd for wake-ups. It is the kernel half of goxl's event
// loop (driver/eventloop) and knows nothing about libxl.
//
// # Ownership and goroutines
//
// A Poller owns two file descriptors: the epoll fd and an eventfd that is
// registered in it for Wake. Both are closed by Close and by nothing else.
// The fds that callers Add stay owned by the callers: the Poller never
// closes them.
//
// Wait is meant to be called by one goroutine at a time (the dispatcher).
// Add, Modify, Delete and Wake may be called from any goroutine or thread,
// concurrently with Wait and with each other: epoll_ctl is thread-safe, and
// the kernel wakes a blocked epoll_wait when an fd it now watches becomes
// ready. Wake is coalesced: any number of Wake calls between two Waits
// cause one early return.
//
// # Locks
//
// Lock order (outermost first): Poller.mu is the only lock; it is a leaf.
// It is held shared (RLock) by Add, Modify, Delete, Wake and by Wait for
// the duration of the epoll_wait system call, and exclusively by Close, so
// that the fds cannot be closed (and their numbers reused) under a
// concurrent system call. Close wakes a blocked Wait before taking it.
//
// # Errors
//
// Errors are typed so that callers can use errors.Is:
//
//   - ErrNotPollable: epoll_ctl refused the fd with EPERM (a regular file,
//     a directory, /dev/null, ...). Such an fd is always "ready" as far as
//     poll(2) is concerned; the caller should treat it so.
//   - ErrClosed: the Poller was closed.
//   - ErrExist / ErrNotRegistered: EEXIST from ADD, ENOENT from MOD/DEL.
//
// Other errors are *os.SyscallError values wrapping the errno, so
// errors.Is(err, unix.EBADF) works too.
//
// # Timeouts
//
// Wait takes a time.Duration and uses epoll_pwait2 (nanosecond timeouts,
// Linux 5.11+) when the kernel has it, falling back to epoll_wait with the
// timeout rounded up to whole milliseconds. EINTR is retried with the
// remaining time.
package epoll
