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
//     are attached: detach them first.
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
//     goroutine (ErrOnDispatcher) instead of deadlocking.
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
// A deregister hook sets the registration's gen to 0 under Loop.mu. The
// dispatcher reads gen immediately before each Sink call, after
// re-entrant hooks of earlier deliveries in the same batch have run, and
// skips dead registrations (counted as stale). A deregister that lands
// between that check and the Sink call cannot be waited for (its thread
// holds libxl's lock, which the Sink call may need), so the Sink is given
// the registration as its osevent.Liveness: StillLive reports false once
// gen changed since the dispatcher decided the delivery. For a timeout,
// re-arming to a later deadline also changes gen.
//
// Stale readiness of a closed and reused fd number cannot reach the new
// registration: a batch refers to registrations, not fd numbers, and each
// epoll entry carries a per-entry generation that is checked when the
// batch is built.
//
// # Race 2: tearing down one ctx while others run
//
// The dispatcher increments Binding.inflight, then checks Binding.gate;
// CloseGate sets gate, then waits until inflight is 0 (the last delivery to
// leave signals a channel). With sequentially consistent atomics either
// the dispatcher sees the closed gate (and skips) or CloseGate sees the
// delivery in flight (and waits for it). Reap forgets every registration
// of the binding, never firing a timeout; later hooks are no-ops. Detach
// removes the binding from the loop.
//
// # Timeouts
//
// Timeouts live in a binary heap ordered by a monotonic deadline (the
// wall-clock deadline from libxl is converted once, at registration). The
// dispatcher sleeps in epoll_pwait2 with a nanosecond timeout until the
// earliest deadline. Each timeout is one-shot: the dispatcher pops it
// (state firing), delivers it exactly once, and forgets it when the Sink
// returns, unless it was re-armed meanwhile. TimeoutModify(FireNow) on a
// firing timeout is a no-op.
//
// # Regular files
//
// epoll refuses regular files (EPERM). Their registrations are "always
// ready": every dispatch round delivers their requested IN/OUT bits and the
// loop polls with a zero timeout while any exists, backing off to 1 ms
// after many rounds in which nothing else happened. (libxl reads the save
// image and deregisters it quickly.) Likewise a level-triggered fd of a
// binding whose gate is closed is re-reported, and dropped, every round
// until Reap: keep the window between CloseGate and Reap short, as
// libxl.Ctx.Close does.
//
// # Tracing
//
// Options.Trace receives one TraceEvent per hook call and per delivery. If
// it is nil and GOXL_TRACE is set, lines in the style of
// libxl-4.17-hook-trace.txt are written to standard error (GOXL_TRACE=1)
// or appended to the file GOXL_TRACE names.
package eventloop
