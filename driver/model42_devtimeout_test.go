//go:build libxlmodel

package driver

import (
	"context"
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
				require.Equal(t, 1, got, "libxl 4.2.1 calls timeout_deregister for the device timeout it has just delivered; the model did not")
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
