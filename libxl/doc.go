// Package libxl is a thin, typed cgo binding of Xen's libxl (Debian's
// libxen-dev 4.17), driven through libxl's osevent hooks: libxl never
// polls on its own, every fd and timeout it needs is run by an event loop
// (package driver/eventloop) that implements Hooks.
//
// Each wrapper names the C function it calls. Errors are typed: an Error
// for libxl's codes (errors.Is(err, libxl.ErrDomainNotFound)), an
// *OpError for asynchronous operations, and goxl's own sentinels
// (ErrClosed, ErrUnpatched42, ErrNotSupported). Config errors are
// *ConfigError (or ConfigErrors) with a Kind that errors.Is tells apart:
// ErrConfigSyntax, ErrConfigUnknownKey, ErrConfigNotSupported,
// ErrConfigBadValue, all matching ErrConfig.
//
// # Configs
//
// LoadConfig / LoadConfigFile read xl's format, libxl JSON and `xl list
// -l` output. goxl's own parser (ParseXL, libxlutil underneath) runs
// first; a config it refuses only for xl keys it does not map goes to
// `xl create -n` when xl is installed, and its libxl JSON is used as is.
// Parsing runs on the caller's goroutine and holds no lock; the xl
// process it may start is waited for (XLDryRunTimeout) before it returns.
//
// # Setup order
//
// New is the only way to get a Ctx, and it performs libxl's required
// order: libxl_ctx_alloc, a version check, libxl_osevent_register_hooks,
// libxl_childproc_setmode(libxl_sigchld_owner_mainloop),
// libxl_event_register_callbacks. Events can only be enabled and
// operations started on the Ctx it returns.
//
// # Ownership
//
//   - A Ctx owns its libxl_ctx, its logger and its `user` token. Close
//     frees them in the order written on Close.
//   - An asynchronous operation owns its C inputs and outputs (the domain
//     config, the domid create writes later) until its completion ran;
//     the calls return only after that, even when cancelled.
//   - Events are copied into Go values and freed (libxl_event_free) before
//     any Go code sees them.
//
// # Admission and Close
//
// Every call that reaches libxl is admitted first, and admission never
// blocks: it is granted or refused at once, so a callback that calls the
// Ctx while Close is pending cannot deadlock (tested:
// TestOnEventMayCallTheCtx, TestBoundaryMatrix).
//
//   - An operation (every method that calls libxl, Call, CallAsync, and an
//     asynchronous operation from its initiating call to its completion)
//     is counted. Once Close began, new operations get ErrClosed; Close
//     waits for the counted ones before it closes the hooks' gate and
//     frees the ctx (TestCallAsyncIsCountedByClose). Close aborts the
//     asynchronous ones first (see "Operations and Close" below).
//   - Call is for synchronous libxl functions (ao_how NULL). An
//     asynchronous libxl function goxl does not wrap goes through
//     CallAsync, which is counted until its completion; started inside
//     Call with an ao_how of its own it would be invisible to Close.
//   - Deliveries (OccurredFD, OccurredTimeout), SIGCHLD forwards,
//     libxl_ao_abort and Subscription.Close still reach libxl while Close
//     waits, because the operations it waits for may need them
//     (TestSigchldFlowsWhileClosePending, TestAbortWhileClosePending).
//     Once Close has decided to free the ctx they are refused in Go,
//     whatever the Hooks (TestDeliveriesAfterCloseAreRefusedWhateverTheHooks),
//     and Close waits for those under way before libxl_ctx_free
//     (TestCloseOrder).
//   - Close closes the hooks' admission gate and waits for the delivery
//     in flight before it reaps, so a reaped registration was never
//     delivered (TestCloseDrainsDeliveryInFlightBeforeReap). It leaves
//     the event generators still enabled to libxl_ctx_free, which
//     disables them itself (4.2 to 4.17); their subscriptions end with
//     ErrClosed when Close returns.
//   - After Close every method returns ErrClosed, except Version,
//     Serialised, Raw (nil), Err (ErrClosed) and the deliveries (ignored);
//     SetLogLevel returns ErrClosed once the logger is released.
//   - Close called from a callback would wait for itself: it returns
//     ErrInCallback on the dispatcher, inside Options.OnEvent and inside
//     Call's fn.
//   - libxl's disaster callback (events may never come again) marks the
//     ctx broken: subscriptions end with ErrDisaster, so whoever waits on
//     them stops waiting, and new operations get ErrDisaster. Close still
//     works and must be called (TestDisasterEndsSubscriptionsAndBreaksTheCtx).
//
// # Threads and locks
//
//   - Hooks (osevent.Hooks) run on whatever thread is inside libxl, with
//     libxl's recursive ctx mutex held: an API caller, libxl's own poller,
//     the SIGCHLD forwarder, or the dispatcher inside
//     OccurredFD/OccurredTimeout. They must not block on the dispatcher
//     and must not call libxl.
//   - Event callbacks, async-op completions and Options.OnEvent run with
//     the ctx unlocked on the thread that called libxl: the dispatcher
//     (inside a delivery), the SIGCHLD forwarder, or an API caller at the
//     end of its libxl call. Completions only signal a channel;
//     subscriptions take only their channel's leaf lock and never block.
//     OnEvent may call the Ctx (libxl allows libxl calls from
//     event_occurs), but must not block the dispatcher; it never holds a
//     domain lock (libvirt deadlocked that way). In Xen42Serialised mode
//     OnEvent runs right after the serial lock is released, on the
//     goroutine that released it, so that its calls do not wait for that
//     lock.
//   - SIGCHLD: the Go runtime owns it; one goroutine per process forwards
//     it to every live Ctx with libxl_childproc_sigchld_occurred. It never
//     waits for a Go lock of a ctx, so a ctx whose Close is pending does
//     not hold it up for the others.
//   - The logger runs on any thread, with or without libxl's lock; in a
//     child libxl forked it writes to stderr in C and never enters Go.
//   - Long calls (domain create builds the domain for seconds inside the
//     initiating call) run on the caller's goroutine, never the loop's.
//   - Forks: libxl forks children inside its calls (domain destroy's
//     destroyer opens a xc_interface in the child). Xen's libraries keep
//     two process-wide mutexes without fork handlers, xentoolcore's
//     handle list and libxencall's buffer cache, and with several ctxs
//     libxl runs on several threads at once, so a fork can copy one of
//     them held, and the child then waits forever. goxl wraps the
//     library entry points that take them, and libxl_ctx_alloc and
//     libxl_ctx_free, in a guard that a pthread_atfork handler holds
//     exclusively across each fork (forkguard.c); the child starts the
//     guard afresh, since an unlock there would hand it to a thread the
//     child does not have (TestForkGuardChildOfConcurrentForksEntersTheLibraries).
//
// Process locks: the fork guard (forkguard.c) is taken before libxl's own
// fork lock: shared around libxl_ctx_alloc, libxl_ctx_free and the
// wrapped library functions, exclusively across a fork.
//
// Ctx locks: mu (admission counts, state, logger) is a leaf, never held
// while calling libxl or user code. serial exists only in Xen42Serialised
// mode: a delivery holds it alone, API calls one at a time, a SIGCHLD
// forward beside an API call (which may be a synchronous operation
// waiting for that child) but never beside a delivery; a Call holds it
// for the whole of fn, so fn must not wait for a delivery. subsMu,
// evgens.mu and deferredMu are leaves. Hooks take none of them, so rule
// (a) of libxl_event.h holds: no lock a hook takes is held while calling
// libxl.
//
// # Operations and Close
//
// An operation (CreateDomain, RestoreDomain, SaveDomain and every call
// taking a context) is counted from its admission to the end of its own
// cleanup. Close refuses new operations (ErrClosed), aborts the ones in
// flight (libxl_ao_abort) and waits for them, their cleanup included,
// before it closes the hooks' gate or frees anything: the cleanup
// runs on the still-open ctx. A create or restore cut short by Close or
// by its context has the domain libxl kept (4.17 keeps it on
// ERROR_ABORTED, retain_domain in libxl_create.c) destroyed, and returns
// an error matching ErrClosed or the context's error: an error means no
// domain was left behind. A save that fails (a full disk, a cancelled
// context, Close) removes its partial file and resumes a guest it had
// suspended (libxl_domain_resume, suspend_cancel=1, as xl does), so the
// guest runs on with its domid. Cleanups are not aborted by Close and
// each has a one-minute bound. Restores and saves are never aborted:
// libxl 4.17 crashed inside libxl_ao_abort during a restore on real Xen
// (a NULL abort hook), and save and restore share its stream machinery.
// Close and cancellation wait for them to finish and then undo them
// (the restored domain is destroyed; the saved guest resumed, its file
// removed), with the same errors. Call and CallAsync are counted like
// every other operation; an asynchronous operation started inside Call's
// fn with an ao_how of its own is not (use CallAsync).
//
// # Without cgo
//
// With CGO_ENABLED=0 the package compiles and every entry point returns
// ErrNotSupported.
package libxl
