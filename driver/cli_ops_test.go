package driver

import (
	"context"
	"errors"
	"testing"
	"time"
)

func stateAfter(t *testing.T, d *Domain, domid uint32, tr Transition) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.domid = domid
	if err := d.setStateLocked(tr); err != nil {
		t.Fatal(err)
	}
}

// waitLeft (reboot -w) returns once the incarnation asked stopped or was
// replaced, and not while it still runs or is only shutting down.
func TestWaitLeft(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps func(t *testing.T, d *Domain)
	}{
		{"shut off", func(t *testing.T, d *Domain) { stateAfter(t, d, 5, TrShutdown) }},
		{"crashed", func(t *testing.T, d *Domain) { stateAfter(t, d, 5, TrCrashed) }},
		{"destroyed", func(t *testing.T, d *Domain) { stateAfter(t, d, 5, TrDestroyed) }},
		{"restarting", func(t *testing.T, d *Domain) { stateAfter(t, d, 5, TrRestart) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDomain(nil)
			d.domid, d.state = 5, StateRunning
			stateAfter(t, d, 5, TrReqShutdown)
			short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			if err := waitLeft(short, d, 5); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("returned %v while the domain is only shutting down", err)
			}
			done := make(chan error, 1)
			go func() { done <- waitLeft(context.Background(), d, 5) }()
			time.Sleep(10 * time.Millisecond)
			tc.steps(t, d)
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("waitLeft did not return")
			}
		})
	}
}
