package driver

import (
	"errors"
	"sync"
	"testing"

	"github.com/goxl/goxl/libxl"
)

func TestRegistryReserveRefusesDuplicates(t *testing.T) {
	r := newRegistry()
	a, b := &Domain{}, &Domain{}
	u := libxl.UUID{1}
	if err := r.reserve(a, "web", u); err != nil {
		t.Fatal(err)
	}
	if err := r.reserve(b, "web", libxl.UUID{}); !errors.Is(err, ErrDomainExists) {
		t.Fatalf("duplicate name: %v", err)
	}
	if err := r.reserve(b, "db", u); !errors.Is(err, ErrDomainExists) {
		t.Fatalf("duplicate UUID: %v", err)
	}
	if err := r.reserve(a, "web", u); err != nil {
		t.Fatalf("re-reserve by the owner: %v", err)
	}
	r.setID(a, 0, 5, u)
	if r.byDomID(5) != a || r.byNameOrUUID("", u, true) != a || r.byNameOrUUID("web", libxl.UUID{}, false) != a {
		t.Fatal("lookups")
	}
	r.setID(a, 5, 6, u) // a restart: new domid
	if r.byDomID(5) != nil || r.byDomID(6) != a {
		t.Fatal("domid change")
	}
	r.remove(a, 6, "web", u)
	if r.byDomID(6) != nil || r.byNameOrUUID("web", libxl.UUID{}, false) != nil || len(r.all()) != 0 {
		t.Fatal("remove")
	}
	if err := r.reserve(b, "web", libxl.UUID{}); err != nil {
		t.Fatalf("name free again: %v", err)
	}
}

// Exactly one of many concurrent reservations of a name wins.
func TestRegistryConcurrentReserve(t *testing.T) {
	r := newRegistry()
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r.reserve(&Domain{}, "same", libxl.UUID{}) == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d winners", wins)
	}
}

func TestNotFoundMatchesBoth(t *testing.T) {
	err := notFound("x", nil)
	if !errors.Is(err, ErrDomainNotFound) || !errors.Is(err, libxl.ErrDomainNotFound) {
		t.Fatal(err)
	}
}

func TestRegistryLearnsANameLate(t *testing.T) {
	r := newRegistry()
	nameless, holder := &Domain{}, &Domain{}
	r.learnName(nameless, "web")
	if nameless.name != "web" || r.byNameOrUUID("web", libxl.UUID{}, false) != nameless {
		t.Fatal("the late name was not learned")
	}
	r.learnName(nameless, "other") // a domain keeps its first name
	if nameless.name != "web" {
		t.Fatalf("renamed to %q", nameless.name)
	}
	r.learnName(holder, "web") // taken by another domain
	if holder.name != "" || r.byNameOrUUID("web", libxl.UUID{}, false) != nameless {
		t.Fatal("a taken name was given away")
	}
}
