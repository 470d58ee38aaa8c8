//go:build cgo

package libxl

import "testing"

// Two destroys on two ctxs fork at the same moment: the child of the
// first must still be able to enter the libraries. This is the hang that
// the soak found on real Xen with the guard unlocked in the child instead
// of re-initialised: the unlock handed the lock to the other forking
// thread, which the child does not have.
func TestForkGuardChildOfConcurrentForksEntersTheLibraries(t *testing.T) {
	for round := 0; round < 3; round++ {
		switch hung := forkGuardChildrenThatHung(); {
		case hung < 0:
			t.Fatal("the self-test could not create its threads or fork")
		case hung > 0:
			t.Fatalf("round %d: %d forked children waited for the fork guard for 2 s (killed)", round, hung)
		}
	}
}
