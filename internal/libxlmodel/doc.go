//go:build libxlmodel

// Package libxlmodel is a C model of libxl's osevent side that tests link
// instead of libxenlight (build tag libxlmodel). Its C files define the real
// libxl symbols (libxl_ctx_alloc, libxl_osevent_register_hooks,
// libxl_osevent_occurred_fd, ...) with the prototypes of Debian 12's Xen 4.17
// headers, which they include, so goxl's bridge and event loop run unchanged
// against it. Package libxl links it with
//
//	//go:build libxlmodel
//	import _ "github.com/goxl/goxl/internal/libxlmodel"
//
// Nothing here is in a production build.
//
// # What it does
//
// Run drives a ctx that the application allocated and hooked, the way libxl
// 4.17 does (libxl-4.17-hook-trace.txt): worker pthreads start operations
// that register real pipes, eventfds, socketpairs and regular files (POLLIN,
// POLLIN|POLLPRI, POLLOUT, one fd registered twice for IN and OUT), modify
// them (IN->IN no-ops, IN->IN|OUT->IN), deregister, close and reopen fd
// numbers, and register timeouts that fire in milliseconds or are cancelled
// (timeout_modify({0,0}) in 4.17, timeout_deregister in 4.2), sometimes
// from a worker while the application fires the same timeout. Operations
// react to deliveries inside libxl_osevent_occurred_* (re-entrant hook
// calls); some complete inside the initiating call, some before their last
// fire-now timeout is delivered. Each worker waits for the application's
// deliveries with a bound; what never came is a violation, never a hang.
//
// The public API also has simulated domain operations on a fake domain
// table (domains.c): libxl_domain_pause/unpause complete inside the
// initiating call; libxl_domain_shutdown and _create_new register a pipe
// and a 60 s / 10 s timeout, complete from inside occurred_fd before their
// cancelled timeout is delivered, and raise DOMAIN_SHUTDOWN /
// DOMAIN_DEATH for libxl_evenable_domain_death. libxl_domain_destroy in
// Mode417, on a ctx in libxl_sigchld_owner_mainloop mode, forks a real
// child (as libxl 4.6+ forks its "destroyer") that exits after 1-2 ms, and
// completes only when libxl_childproc_sigchld_occurred (or
// libxl_childproc_reaped) reaps it; the model waits with waitpid(pid,
// WNOHANG) on its own pids, never on -1, so the application's other
// children are never taken, and a child of libxl that someone else reaped
// is the violation child_stolen. Elsewhere (4.2 modes, or no mainloop
// mode: the model installs no SIGCHLD handler) destroy registers a pipe
// like the others. With ao_how == NULL the operations block until the
// application's loop has delivered (real libxl would poll by itself).
// DomainScenario drives them. RefLoop forwards SIGCHLD to its ctxs from a
// goroutine, as an application's main loop does.
//
// # libxl_ctx_free
//
// As strict as libxl's (4.17 tools/libs/light/libxl.c; 4.2 alike): it
// drops what libxl itself owns (evgens, and with them the shared watch fd),
// then asserts. Where libxl would abort, the model records a violation and
// goes on, deregistering nothing on the application's behalf:
//
//   - an fd still registered or a timeout still armed (libxl asserts
//     ctx->efds and ctx->etimes are empty): ctx_free_with_registrations;
//     the record is quarantined, so a later delivery to it is
//     occurred_after_ctx_free. A fire-now timeout is not on etimes (libxl
//     took it off when it cancelled it): the one delivery still owed is
//     the application's to reap, and ctx_free with one pending is legal;
//   - an asynchronous operation in progress (aos_inprogress, 4.6+):
//     ctx_free_with_ao_running;
//   - a forked child not yet reaped (libxl_childproc_setmode(ctx,0,0)
//     asserts ctx->children is empty): ctx_free_with_children;
//   - a call from inside a hook (osevent_in_hook): hook_called_libxl.
//
// Every call the application makes is checked and every breach is recorded
// as a Violation with the registration's history (hook calls and
// deliveries, with times, thread ids and whether they were made inside
// occurred_*). Violations never abort: ctx and record memory is never handed
// back to malloc (slabs, poisoned and quarantined when freed), so a late or
// bogus ctx or for_libxl is recognised and reported instead of read.
//
// # Modes (table model_modes in ctx.c)
//
//   - Mode417: records ("nexi") are pooled in the ctx until libxl_ctx_free
//     (FIFO reuse after 16 idle); a late occurred_fd is checked (record in
//     use, fd matches, re-poll) and ignored, counted as stale; timeouts are
//     cancelled with timeout_modify({0,0}) and must be delivered exactly
//     once; timeout_deregister is never called; version 4.17.
//   - Mode42Unpatched: records are freed (poisoned) at deregistration and
//     at a timeout's delivery; any occurred_* naming one is a violation
//     (libxl's use-after-free); cancellation is timeout_deregister; the
//     workload only deregisters from inside occurred_*, because a
//     deregistration racing a delivery from another thread is libxl's own
//     bug there and no application can avoid it; version 4.2.1.
//   - Mode42Unpatched also calls back without re-polling (revents &
//     events), as 4.2.1 does.
//   - Mode42Unpatched and Mode420Unpatched: an operation whose timeout
//     fired and that cancels it from that callback (libxl's device waits:
//     devstate_timeout) makes the model call timeout_deregister with the
//     registration the application has just delivered, inside its
//     occurred_timeout, as real 4.2.1 does against its own header
//     (measured: tests/xen42/README.md, "Real 4.2 hook traces"). The
//     create's device timeout (SetCreateDeviceTimeout) is such an
//     operation.
//   - Mode420Unpatched: Mode42Unpatched as 4.2.0 (version extra ".0"):
//     timeout_deregister gets &for_app, a void ** pointing at libxl's copy
//     of the application's token, instead of the token (xen-patches/README,
//     "Unpatched 4.2.0"; fixed in 4.2.1). An application that takes it for
//     the token keeps the registration and later delivers it to a freed
//     record.
//   - Mode42Patched: goxl's xen-patches/ series (xen-patches/README,
//     "Semantics for a C model"): pooled slots, late occurred_fd checked and
//     ignored, cancellation is timeout_modify({0,0}) with exactly-once
//     delivery, timeout_deregister never called; a second occurred_timeout
//     is still a violation (libxl ignores it only until the slot is reused);
//     version 4.2.1.
//   - Mode422: upstream 4.2.2 (to 4.3.x; xen-patches/README): as
//     Mode42Patched (pooled records, late occurred_fd checked and
//     ignored, cancellation by timeout_modify({0,0}), a second
//     occurred_timeout a violation), version 4.2.2, and one bug kept: an
//     operation that cancels its own fired timeout from its callback makes
//     the model call timeout_modify({0,0}) with the registration just
//     delivered, inside its occurred_timeout, as real 4.2.2 does (fixed in
//     4.4.0). An application that delivers it again reaches a record that
//     is back in the pool.
//
// SetDefaultMode applies to later libxl_ctx_alloc calls; SetCtxMode
// overrides one ctx until it registers its hooks.
//
// # Races through the API (race.c)
//
// RaceArm and RaceCancel arm a one-shot timeout and cancel it the mode's
// way. They are libxl API calls made on the caller's thread (ctx lock
// held, hooks called), unlike the workload's worker pthreads, so an
// application that serialises its libxl calls (goxl's Xen42Serialised,
// through libxl.Ctx.Call) makes them under its own serialisation. That is
// how 4.2 libxl, which has no threads, deregisters from another thread
// than the dispatcher: inside an API call. On 4.2-unpatched a delivery
// that reaches a cancelled timeout's freed record is the violation
// delivery_after_deregister. Handles are looked up in a table of the
// model's own, so a cancel after the firing never reads a freed record.
// RaceCounters counts arms, cancels, firings and late cancels.
//
// # Threads and locks
//
//   - Each ctx has a recursive pthread mutex: libxl's ctx lock. Every hook
//     is called with it held, either on a workload worker pthread (model
//     owned), on the thread calling a libxl API, or on the application's
//     dispatcher inside libxl_osevent_occurred_*.
//   - Operation completions (the AO callbacks) and event callbacks run with
//     the ctx unlocked, on the thread that was inside libxl, after it has
//     unlocked (an egc, as in libxl).
//   - A process-wide leaf mutex guards slabs, the live-ctx set and the hook
//     frames; the violation log has its own. Neither is held across a hook.
//   - A watchdog pthread (started by the first libxl_ctx_alloc) reports
//     hooks running longer than SetHookBlockBound (default 2 s).
//   - Thread-local flags detect occurred_* called from inside a hook and any
//     libxl call made from inside a hook.
//   - The reference loop (NewRefLoop, refloop.c) runs one poll(2)
//     dispatcher pthread for any number of ctxs; its hooks take only its own
//     mutex, never held while it calls libxl.
//
// # Running the checks
//
//	go test -tags libxlmodel ./internal/libxlmodel/
//	go test -race -tags libxlmodel ./internal/libxlmodel/
//	go test -asan -tags libxlmodel ./internal/libxlmodel/
//
// -asan works with Debian 12's gcc 12 and needs no ASAN_OPTIONS: Go (since
// 1.25) runs LeakSanitizer at exit, and the model's deliberately retained
// memory (slabs, quarantines, graveyard) stays reachable from globals, so
// it is not reported. The first -asan build takes minutes (the standard
// library is rebuilt instrumented).
package libxlmodel
