// Package osevent holds the vocabulary shared by the C bridge (the root
// package), the typed libxl wrappers (package libxl) and the event loop
// (package driver/eventloop): poll bits, registration IDs, libxl's opaque
// cookies and the hook interfaces.
//
// It is pure Go and imports nothing from goxl, so the loop can implement
// Hooks without linking cgo, and the race detector sees every access.
//
// # Ownership
//
//   - A RegID is minted by whoever implements Hooks. It is handed to C as
//     the registration's for_app value and comes back on modify and
//     deregister. IDs are never reused, so a stale ID finds nothing.
//   - A ForLibxl is libxl's cookie. Its lifetime is libxl's business; it is
//     only ever passed back to libxl_osevent_occurred_*. Since Xen 4.2.2 it
//     stays valid until libxl_ctx_free; on 4.2.0/4.2.1 it dies at
//     deregistration (see xen-patches/).
//
// # Threads and locks
//
// Hooks methods run on whatever thread is inside libxl, with libxl's
// recursive ctx mutex held. They must not block on the dispatcher, must
// not call libxl, and may take only locks that are never held while calling
// libxl (rule (a) of libxl_event.h). Sink methods run on the dispatcher
// goroutine with no loop lock held; they call into libxl.
package osevent
