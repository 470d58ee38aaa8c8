package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Two owners (two processes: two open file descriptions) can never hold
// one name at once; the name is free again once its holder releases it
// (or dies: the kernel drops the flock).
func TestOwnershipLockIsExclusive(t *testing.T) {
	dir := t.TempDir()
	a, err := NewOwners(dir, "daemon")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewOwners(dir, "monitor")
	ca, err := a.TryClaim("g/1")
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Building(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.TryClaim("g/1"); !errors.Is(err, ErrOwnedElsewhere) {
		t.Fatalf("second owner: %v, want ErrOwnedElsewhere", err)
	}
	if _, err := a.TryClaim("g/1"); !errors.Is(err, ErrOwnedElsewhere) {
		t.Fatalf("second claim in the same process: %v, want ErrOwnedElsewhere", err)
	}
	// The holder dies without cleaning up: the lock file stays, the lock
	// goes; the next owner finds it building.
	ca.f.Close()
	a.mu.Lock()
	delete(a.held, "g/1")
	a.mu.Unlock()
	orphans := b.Orphans()
	if len(orphans) != 1 || orphans[0].claim.Name() != "g/1" || orphans[0].state.Phase != "building" || orphans[0].state.Owner != "daemon" {
		t.Fatalf("orphans: %+v, want g/1 building by daemon", orphans)
	}
	orphans[0].claim.Release()
	if _, err := os.Stat(filepath.Join(dir, "g%2F1.lock")); !os.IsNotExist(err) {
		t.Fatalf("released lock file still there: %v", err)
	}
	if _, err := a.TryClaim("g/1"); err != nil {
		t.Fatalf("claim after release: %v", err)
	}
}
