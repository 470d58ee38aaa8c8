// Package driver is goxl's libvirt-like module: a Driver owns one event
// loop (driver/eventloop) and one driver-wide libxl ctx, can open
// short-lived ctxs on the same loop, and manages domains through a
// registry and a lifecycle state machine.
//
// # Ownership
//
//   - The Driver owns the loop and every ctx it opened. Close closes the
//     short-lived ctxs, then the driver-wide one, then the loop; each ctx
//     in libxl's teardown order (libxl.Ctx.Close), so no delivery and no
//     SIGCHLD forward can reach a freed ctx.
//   - Domain objects belong to the registry; a Domain's fields are guarded
//     by its own lock.
//
// # Threads and locks
//
//   - The loop's dispatcher goroutine delivers libxl's fd and timeout
//     events, and through them libxl's event callbacks run. Those callbacks
//     only enqueue: the driver's event goroutine takes domain locks, never
//     libxl's thread (libvirt deadlocked that way in 2016).
//   - Operations on different domains run in parallel on their callers'
//     goroutines; long libxl calls never run on the dispatcher.
//
// Lock order: registry lock → domain lock. Neither is held while calling
// into libxl for an asynchronous operation's wait, and hooks take neither.
package driver
