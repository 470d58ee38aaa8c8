// Package driver is goxl's libvirt-like module: a Driver owns one event
// loop (driver/eventloop) and one driver-wide libxl ctx, can open
// short-lived ctxs on the same loop, and manages domains through a
// registry and a lifecycle state machine.
//
// # Ownership
//
//   - The Driver owns the loop, every ctx it opened and every Domains
//     built on it. Close refuses new ctxs and managers, waits for the
//     OpenCtx calls already admitted (so a ctx opened during Close is
//     closed too, and no binding is left on the loop), closes the
//     Domains, then the short-lived ctxs, then the driver-wide one, then
//     the loop; each ctx in libxl's teardown order (libxl.Ctx.Close), so
//     no delivery and no SIGCHLD forward can reach a freed ctx.
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
//
// # Close and operations in flight
//
// Every public method of Domains is an operation admitted by the manager
// (refused with ErrDriverClosed after Close). Domains.Close (and so
// Driver.Close) cancels the context of every operation in flight with
// the cause ErrDriverClosed, which aborts its libxl calls
// (libxl_ao_abort), and waits for the operations to end, their cleanup
// included, before it closes anything: a create or restore cut short has
// its half-built domain destroyed (libxl 4.17 keeps it on ERROR_ABORTED),
// a save cut short has its file removed and its guest resumed. So an
// error means no domain left, in every case, and the interrupted call's
// error matches ErrDriverClosed. Restores and saves are not aborted
// (libxl 4.17 crashed aborting a restore; see libxl's doc.go): Close
// waits for them to finish, then undoes them the same way. The wait is bounded by libxl: an aborted
// operation ends at its next step, and each cleanup has a one-minute
// bound. Close must not be called from the Progress callback: that
// callback runs inside an operation, which Close would wait for.
//
// # Events
//
// Each incarnation (domid) of a domain reaches the event streams once and
// in order: one start (created, restored or discovered) first, exactly
// one death last, whichever path saw the domain go. A domain's events are
// published with its lock held (the streams' lock is a leaf and a send
// never blocks), and a lookup or resync that meets a domain still being
// built by this manager's create finds that create's Domain instead of
// adopting a second one with a second death watch.
package driver
