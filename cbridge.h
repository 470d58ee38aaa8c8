/*
 * cbridge.h: the only place where C calls into Go.
 *
 * libxl keeps three kinds of C callbacks: the osevent hooks (an fd or a
 * timeout to watch), the event hooks (an event or a disaster to report)
 * and the completion of an asynchronous operation. It also logs through a
 * xentoollog_logger. Each has one static C function here that forwards to
 * one exported Go function in bridge.go.
 *
 * How errors flow back:
 *   - Register and modify hooks return 0 or ERROR_OSEVENT_REG_FAIL. libxl
 *     passes that up to the API call that caused the registration.
 *   - A Go panic never unwinds into libxl: every export recovers, counts
 *     the panic, logs it, and returns ERROR_OSEVENT_REG_FAIL (or, for
 *     void callbacks, returns quietly). Unwinding through libxl's frames
 *     would leave libxl's recursive ctx mutex locked.
 *   - A lookup of a stale or unknown token or registration ID finds
 *     nothing: the export returns an error code and touches no object.
 *
 * Nothing here holds a Go pointer. The `user` of a ctx and the
 * `for_callback` of an async operation are tagged tokens (see tokens.go);
 * the for_app value of a registration is a 64-bit ID that is never reused.
 */
#ifndef GOXL_CBRIDGE_H
#define GOXL_CBRIDGE_H

#include <stdint.h>
#include <libxl.h>
#include <libxl_event.h>
#include <xentoollog.h>

/* The hook table handed to libxl_osevent_register_hooks. It is static
 * storage because libxl keeps the pointer for the ctx's whole life. */
extern const libxl_osevent_hooks goxl_osevent_hooks;

/* The event callbacks handed to libxl_event_register_callbacks. */
extern const libxl_event_hooks goxl_event_hooks;

/* Reads the registration ID that libxl 4.2.0 passes by reference to
 * timeout_deregister (&ev->for_app_reg, a void **, in libxl's memory).
 * 0 (no registration) for NULL. */
uint64_t goxl_token_at(uintptr_t p);

/* The completion trampoline for libxl_asyncop_how.callback. */
void goxl_ao_complete(libxl_ctx *ctx, int rc, void *for_callback);

/* A xentoollog_logger that formats each message in C and hands it to Go
 * with the token. Messages below min_level are dropped in C, without a
 * crossing. Destroy it with xtl_logger_destroy after libxl_ctx_free. */
xentoollog_logger *goxl_logger_new(uintptr_t token, int min_level);
void goxl_logger_set_level(xentoollog_logger *logger, int min_level);

#endif
