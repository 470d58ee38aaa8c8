// Package eventloop runs libxl's osevent registrations (fds and timeouts)
// on an epoll-based dispatcher goroutine, for any number of libxl ctxs.
//
// It is pure Go (no cgo), so that the race detector sees every access the
// loop makes; the C bridge (the root goxl package) calls the Hooks of a
// Binding and the Binding's Sink calls libxl_osevent_occurred_*.
//
// # Objects and ownership
//
//   - A Loop owns an epoll instance, an eventfd (both in internal/epoll)
//     and one dispatcher goroutine. New starts it, Close stops it and
//     closes both fds. Close refuses (ErrBindingsAttached) while bindings
//     are attached: detach them first. Any number of Close calls may run
//     at once: each returns only after the dispatcher has exited and the
//     fds are closed. After Close, Attach returns a binding whose
//     registrations fail with ErrClosed or ErrDetached.
//   - A Binding is one libxl ctx's view of a Loop. Attach creates it; the
//     ctx is then created with the Binding as its osevent hooks, and
//     SetSink hands the Binding the ctx's Sink before libxl registers
//     anything (registrations made without a Sink fail with ErrNoSink).
//     Teardown is CloseGate, then libxl_ctx_free (whose fd_deregister
//     calls are accepted), Reap, Detach. See osevent.Quiescer.
//   - Registrations are owned by the loop and named by RegIDs from a
//     64-bit counter shared by all bindings of the loop; IDs are never
//     reused, so a stale ID is simply unknown. Registrations are never
//     pooled: a delivery in flight keeps its registration alive (the Go
//     garbage collector releases it after the last delivery is done).
//
// # Goroutines and threads
//
//   - Hooks (FDRegister, ..., TimeoutDeregister) run on any thread that is
//     inside libxl, with libxl's ctx lock held, concurrently with each other
//     and with the dispatcher, and re-entrantly on the dispatcher goroutine
//     from inside a Sink call. They take Loop.mu for a short, bounded time,
//     may call epoll_ctl and write the wake-up eventfd, and never wait for
//     the dispatcher. An fd change goes straight to the kernel (epoll_ctl
//     from the hook's thread wakes a blocked epoll_wait by itself); a
//     change the dispatcher must recompute (a new earliest deadline, a
//     fire-now, a new always-ready fd) also writes the eventfd.
//   - CloseGate must not be called with libxl's ctx lock held (the Sink
//     call it waits for may be waiting for that lock); libxl.Ctx.Close
//     calls it from outside libxl.
//   - The dispatcher goroutine waits in epoll_pwait2, collects a batch of
//     deliveries under Loop.mu, releases it, and then makes the Sink calls
//     one by one with no loop lock held.
//   - CloseGate, Reap, Detach, Close and Stats run on the caller's
//     goroutine. CloseGate and Close refuse to run on the dispatcher
//     goroutine (ErrOnDispatcher) instead of deadlocking. Any number of
//     CloseGate calls may wait for the same drain.
//   - A panic in a Sink or in the trace function is recovered on the
//     goroutine that made the call (the dispatcher, or a hook's thread
//     for the trace), counted in Stats.CallbackPanics and reported as an
//     error matching ErrCallbackPanic to Options.OnCallbackPanic (else to
//     the standard log). The loop stays alive: the delivery counts as
//     made (a timeout is forgotten, as libxl considers it deregistered on
//     entry), its admission is released (CloseGate does not hang), and
//     the dispatcher carries on with the rest of the batch. A Sink that
//     ends the dispatcher goroutine with runtime.Goexit is reported the
//     same way, and a new dispatcher goroutine takes over the rest of the
//     batch.
//
// # Locks
//
// LOCK ORDER (outermost first): Loop.mu → epoll.Poller.mu (inside
// internal/epoll, a leaf). There are no other locks. Loop.mu is never held
// while calling a Sink, the trace function or FailRegister, so hooks
// satisfy rule (a) of libxl_event.h: libxl's ctx lock is always taken
// before Loop.mu, never after. Everything else is atomics:
//   - fdReg/timeoutReg liveness: gen (0 = dead) and decided, atomics;
//     written under Loop.mu (gen) or by the dispatcher (decided).
//   - fdReg.events: atomic, written under Loop.mu, read lock-free by the
//     dispatcher just before a delivery.
//   - Binding.gate and Binding.inflight: the admission protocol of race 2.
//
// # Race 1: deregister versus a delivery in flight
//
// Registration IDs are never reused. The dispatcher re-checks a
// registration's liveness immediately before each Sink call, so a
// deregister hook that returned before that check prevents the delivery.
// A deregister that lands between the check and the Sink call cannot be
// waited for (its thread holds libxl's ctx lock, which the Sink call may
// need): that occurred_* call still starts, and the osevent.Liveness it
// is given answers StillLive() == false from the moment the deregister
// hook returned.
//
// How: a deregister hook sets the registration's gen to 0 under Loop.mu
// before it returns. The dispatcher reads gen just before each Sink call,
// after the re-entrant hooks of earlier deliveries in the same batch have
// run, and skips dead registrations (counted as StaleDropped); StillLive
// compares gen with the gen the dispatcher decided on. For a timeout,
// re-arming to another deadline also changes gen. (README.md states the
// guarantee in the same words; TestRace1* check it.)
//
// Stale readiness of a closed and reused fd number cannot reach the new
// registration: a batch refers to registrations, not fd numbers, and each
// epoll entry carries a per-entry generation (epoll's data) that is
// checked when the batch is built. This holds even when the closed
// number's file lives on elsewhere (a dup): epoll then keeps the old
// entry, which can no longer be deleted through the number, and reports
// its readiness under the reused number; those events are dropped
// (StaleEpoll), though they wake the dispatcher until that file is
// closed.
//
// # Race 2: tearing down one ctx while others run
//
// The dispatcher increments Binding.inflight, then checks Binding.gate;
// CloseGate sets gate, then waits until inflight is 0 (the last delivery to
// leave signals a channel, and each waiter passes the signal on to the
// next). With sequentially consistent atomics either the dispatcher sees
// the closed gate (and skips) or CloseGate sees the delivery in flight
// (and waits for it). A delivery is counted in Stats, and a delivered
// timeout forgotten, before its admission is released: once CloseGate
// returns, Stats include every delivery it drained and Reap never counts
// a delivered timeout as reaped (TestCloseDrainsDeliveryInFlightBeforeReap,
// TestSerialisedModeCloses42Window in package driver). Reap forgets every
// registration of the binding, never firing a timeout; later hooks are
// no-ops. Detach removes the binding from the loop.
//
// # Timeouts
//
// Timeouts live in a binary heap ordered by a monotonic deadline (the
// wall-clock deadline from libxl is converted once, at registration). The
// dispatcher sleeps in epoll_pwait2 with a nanosecond timeout until the
// earliest deadline. Each timeout is one-shot: the dispatcher pops it
// (state firing), delivers it exactly once, and forgets it when the Sink
// returns, unless it was re-armed meanwhile. TimeoutModify(FireNow) on an
// armed timeout makes it due now and wakes the dispatcher; on a firing
// timeout it is a no-op, so a timeout is delivered exactly once. A
// deadline beyond what time.Duration spans (about 292 years from now)
// saturates: it never fires by itself.
//
// # Regular files
//
// epoll refuses regular files (EPERM). Their registrations are "always
// ready": every dispatch round delivers their requested IN/OUT bits and the
// loop polls with a zero timeout while any of them wants IN or OUT,
// backing off to 1 ms after many rounds in which nothing else happened.
// A regular file whose registrations want neither (events 0, or POLLPRI
// only: a regular file has no priority data) gets no delivery and does
// not make the loop poll. (libxl reads the save image and deregisters it
// quickly.) Likewise a level-triggered fd of a binding whose gate is
// closed is re-reported, and dropped, every round until Reap: keep the
// window between CloseGate and Reap short, as libxl.Ctx.Close does.
//
// # Tracing
//
// Options.Trace receives one TraceEvent per hook call and per delivery,
// and an OpSinkPanic event for each Sink call that panicked
// (internal/hookcheck reports those as problems). If
// it is nil and GOXL_TRACE is set, lines in the style of
// libxl-4.17-hook-trace.txt are written to standard error (GOXL_TRACE=1)
// or appended to the file GOXL_TRACE names.
package eventloop
