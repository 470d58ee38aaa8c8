// Package goxl is the C bridge between libxl and Go: the one place where
// C calls into Go.
//
// cbridge.c holds static tables that libxl keeps pointers to (the six
// osevent hooks, the event hooks) plus the async-op completion trampoline
// and a xentoollog logger. Each C function forwards to one exported Go
// function in bridge.go. Package libxl builds the typed API on top; most
// programs use package driver and never import this package directly.
//
// # What C holds
//
// C never holds a Go pointer:
//   - a ctx's `user` and an async operation's `for_callback` are Tokens:
//     go-pointer keys tagged with a per-address generation (tokens.go), so
//     a stale token finds nothing instead of a newer object
//     (TestStaleTokenNeverReachesNewerObject);
//   - a registration's for_app value is a 64-bit ID minted by the loop,
//     never reused, so a stale ID finds nothing;
//   - libxl's own for_libxl cookie is carried as an integer.
//
// # Threads and locks
//
// Every export runs on the thread that libxl called it from:
//   - hooks (fd_*, timeout_*): with libxl's recursive ctx mutex held, on an
//     API caller's thread, on libxl's internal poller, on the SIGCHLD
//     forwarder, or on the dispatcher inside libxl_osevent_occurred_*.
//     They forward to osevent.Hooks, which must neither block on the
//     dispatcher nor call libxl.
//   - event_occurs, disaster, async-op completion: with the ctx unlocked,
//     on the thread that called libxl; they may call libxl again.
//   - the logger: on any thread, locked or not. It records the pid of the
//     process that made it; called in another process (a child libxl
//     forked: the save helper's, a spawned device model's), it formats
//     the message and writes it to stderr in C and never enters Go, whose
//     runtime a forked copy of a multi-threaded process cannot run
//     (TestForkedChildLogsToStderrWithoutEnteringGo).
//
// The exports hold no lock of their own except go-pointer's map lock,
// which is never held while calling libxl.
//
// # Panics
//
// Every export recovers (TestEveryExportRecoversPanics drives all ten
// through libxl's C tables). A panic that unwound through libxl's frames
// would leave libxl's ctx mutex locked and the process wedged; instead
// the panic is logged and counted (ReadStats), and register/modify hooks
// return ERROR_OSEVENT_REG_FAIL, which libxl passes up to the call that
// caused the registration. A completion that panicked still releases its
// token.
//
// # Without cgo
//
// With CGO_ENABLED=0 this package compiles to nothing usable and package
// libxl returns ErrNotSupported from every entry point.
package goxl
