//go:build libxlmodel

package driver

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goxl/goxl/driver/eventloop"
	"github.com/goxl/goxl/internal/hookcheck"
	"github.com/goxl/goxl/internal/libxlmodel"
	"github.com/goxl/goxl/internal/osevent"
	"github.com/goxl/goxl/libxl"
)

// A device timeout during a create, as real libxl 4.2 ran it (issue 14,
// tests/xen42/traces and its README): the wait's timeout is delivered, and
// its callback cancels it. Real 4.2.1 then calls timeout_deregister for
// the registration just delivered, although its libxl_event.h says it will
// not (a naive loop crashed on it: tests/xen42/control). The model's
// 4.2.0/4.2.1 modes must do the same, and the later ones must not; goxl
// must take it with the hook-traffic invariants holding.
func TestDeviceTimeoutCancelsItsDeliveredTimeoutAsReal42(t *testing.T) {
	wantStray := map[libxlmodel.Mode]bool{
		libxlmodel.Mode42Unpatched:  true, // measured on real 4.2.1
		libxlmodel.Mode420Unpatched: true, // same code in 4.2.0
		libxlmodel.Mode42Patched:    false,
		libxlmodel.Mode417:          false,
		libxlmodel.Mode422:          true, // timeout_modify({0,0}), measured on real 4.2.2
	}
	for _, m := range libxlmodel.Modes() {
		t.Run(m.String(), func(t *testing.T) {
			freshModelHost(t)
			libxlmodel.SetCreateDeviceTimeout(30)
			type key struct {
				binding uint64
				reg     osevent.RegID
			}
			var mu sync.Mutex
			delivered := map[key]bool{}
			stray := 0
			checker := hookcheck.New(func(ev eventloop.TraceEvent) {
				mu.Lock()
				defer mu.Unlock()
				k := key{ev.Binding, ev.Reg}
				switch ev.Op {
				case eventloop.OpOccurredTimeout:
					delivered[k] = true
				case eventloop.OpTimeoutDeregister, eventloop.OpTimeoutModify:
					if delivered[k] {
						stray++
					}
				}
			})
			libxlmodel.SetDefaultMode(m)
			d, err := New(Options{Xen42: policyFor(m), Loop: eventloop.Options{Trace: checker.Observe}})
			require.NoError(t, err)
			c, err := d.OpenCtx()
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = c.CreateDomain(ctx, modelGuest("devtimeout"))
			require.ErrorIs(t, err, libxl.ErrTimedOut, "the device timeout did not fail the create")
			require.NoError(t, c.Close())
			require.NoError(t, checker.Settle(5*time.Second))
			mu.Lock()
			got := stray
			mu.Unlock()
			if wantStray[m] {
				require.Equal(t, 1, got, "libxl 4.2.1 (4.2.2) calls timeout_deregister (timeout_modify) for the device timeout it has just delivered; the model did not")
				if m == libxlmodel.Mode422 {
					// goxl still holds the registration while it delivers:
					// the modify races its own firing, and the firing wins.
					require.Equal(t, uint64(1), d.Stats().Loop.FireNowRaced, "4.2.2's modify of the delivered timeout was not taken as racing its firing")
				}
			} else {
				require.Zero(t, got, "a cancel hook for a delivered timeout, which this libxl never makes")
			}
			require.Zero(t, d.Stats().Loop.UnknownIDs)
			requireNoFakeDomains(t, "after the device timeout")
			requireNoViolations(t)
			require.NoError(t, d.Close())
		})
	}
}

// Real 4.2.1 keeps the xenstore watch fd registered from the first watch
// until libxl_ctx_free, which deregisters it itself after goxl's close
// reaped it (tests/xen42/traces: one F1 per ctx, "reaped", then
// fd_deregister). 4.17 drops it with the last watch. The model's modes
// must do the same, and goxl must take the late deregister as legal.
func TestWatchFDLivesUntilCtxFreeAsReal42(t *testing.T) {
	for _, m := range libxlmodel.Modes() {
		t.Run(m.String(), func(t *testing.T) {
			freshModelHost(t)
			keeps := m != libxlmodel.Mode417
			var mu sync.Mutex
			late := 0
			checker := hookcheck.New(func(ev eventloop.TraceEvent) {
				if ev.Op == eventloop.OpFDDeregister && errors.Is(ev.Err, eventloop.ErrAfterReap) {
					mu.Lock()
					late++
					mu.Unlock()
				}
			})
			libxlmodel.SetDefaultMode(m)
			d, err := New(Options{Xen42: policyFor(m), Loop: eventloop.Options{Trace: checker.Observe}})
			require.NoError(t, err)
			c, err := d.OpenCtx()
			require.NoError(t, err)
			domid, err := c.CreateDomain(context.Background(), modelGuest("watchfd"))
			require.NoError(t, err)
			base := d.Stats().Loop.FDRegs
			sub, err := c.WatchDomainDeath(domid, libxl.WatchOptions{})
			require.NoError(t, err)
			require.Equal(t, base+1, d.Stats().Loop.FDRegs, "no watch fd registered")
			sub.Close()
			after := d.Stats().Loop.FDRegs
			if keeps {
				require.Equal(t, base+1, after, "4.2 keeps the watch fd until libxl_ctx_free")
			} else {
				require.Equal(t, base, after, "4.17 drops the watch fd with the last watch")
			}
			require.NoError(t, c.DestroyDomain(context.Background(), domid))
			require.NoError(t, c.Close())
			require.NoError(t, checker.Settle(5*time.Second))
			mu.Lock()
			got := late
			mu.Unlock()
			if keeps {
				require.Equal(t, 1, got, "libxl_ctx_free's own deregister of the watch fd after the close reaped it")
			} else {
				require.Zero(t, got)
			}
			require.Zero(t, d.Stats().Loop.UnknownIDs)
			requireNoViolations(t)
			require.NoError(t, d.Close())
		})
	}
}
