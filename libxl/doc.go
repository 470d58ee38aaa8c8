// Package libxl is a thin, typed cgo binding of Xen's libxl (Debian's
// libxen-dev 4.17), driven through libxl's osevent hooks: libxl never
// polls on its own, every fd and timeout it needs is run by an event loop
// (package driver/eventloop) that implements Hooks.
//
// Each wrapper names the C function it calls. Errors are typed: an Error
// for libxl's codes (errors.Is(err, libxl.ErrDomainNotFound)), an
// *OpError for asynchronous operations, and goxl's own sentinels
// (ErrClosed, ErrUnpatched42, ErrNotSupported).
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
// # Threads and locks
//
//   - Hooks (osevent.Hooks) run on whatever thread is inside libxl, with
//     libxl's recursive ctx mutex held: an API caller, libxl's own poller,
//     or the dispatcher inside OccurredFD/OccurredTimeout. They must not
//     block on the dispatcher and must not call libxl.
//   - Event callbacks, async-op completions and Options.OnEvent run with
//     the ctx unlocked on the thread that called libxl, usually the
//     dispatcher. They copy, signal a channel and return; they never take
//     a domain lock (libvirt deadlocked that way).
//   - SIGCHLD: the Go runtime owns it; one goroutine per process forwards
//     it to every live Ctx with libxl_childproc_sigchld_occurred.
//   - Long calls (domain create builds the domain for seconds inside the
//     initiating call) run on the caller's goroutine, never the loop's.
//
// Ctx locks, outermost first: life (RWMutex: API calls shared, Close
// exclusive before libxl_ctx_free) → serial (only in Xen42Serialised
// mode: every libxl call, deliveries included) → subsMu / evgens.mu
// (leaves, never held while calling libxl). Hooks take none of them, so
// rule (a) of libxl_event.h holds: no lock a hook takes is held while
// calling libxl.
//
// # Operations and Close
//
// An operation (CreateDomain, RestoreDomain, SaveDomain and every call
// taking a context) is counted from its admission to the end of its own
// cleanup. Close refuses new operations (ErrClosed), aborts the ones in
// flight (libxl_ao_abort) and waits for them, their cleanup included,
// before it disables event generators or frees anything: the cleanup
// runs on the still-open ctx. A create or restore cut short by Close or
// by its context has the domain libxl kept (4.17 keeps it on
// ERROR_ABORTED, retain_domain in libxl_create.c) destroyed, and returns
// an error matching ErrClosed or the context's error: an error means no
// domain was left behind. A save that fails (a full disk, a cancelled
// context, Close) removes its partial file and resumes a guest it had
// suspended (libxl_domain_resume, suspend_cancel=1, as xl does), so the
// guest runs on with its domid. Cleanups are not aborted by Close and
// each has a one-minute bound. Operations started through Call with a
// raw pointer are not counted.
//
// # Without cgo
//
// With CGO_ENABLED=0 the package compiles and every entry point returns
// ErrNotSupported.
package libxl
