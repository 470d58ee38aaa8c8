package driver

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/goxl/goxl/libxl"
)

func TestEventStreamOverflowPolicy(t *testing.T) {
	var ss streams
	s := newEventStream(2)
	ss.add(s)
	other := newEventStream(10)
	ss.add(other)
	for i := 0; i < 5; i++ {
		ss.publish(DomainEvent{DomID: uint32(i), Kind: "shutdown"})
	}
	var got []uint32
	for e := range s.C() {
		got = append(got, e.DomID)
	}
	if len(got) != 2 || got[1] != 1 || !errors.Is(s.Err(), ErrStreamOverflow) {
		t.Fatalf("got %v err %v", got, s.Err())
	}
	if len(other.C()) != 5 || other.Err() != nil {
		t.Fatalf("a slow consumer affected another: %d %v", len(other.C()), other.Err())
	}
	other.Close()
	if !errors.Is(other.Err(), ErrStreamClosed) || len(ss.set) != 1 {
		t.Fatalf("close: %v, %d streams", other.Err(), len(ss.set))
	}
	ss.closeAll()
	if !errors.Is(s.Err(), ErrStreamOverflow) || len(ss.set) != 0 {
		t.Fatal("closeAll")
	}
}

func TestDomainWaitStateAndApply(t *testing.T) {
	m := &Domains{reg: newRegistry()}
	d := newDomain(m)
	s := m.Subscribe(8)
	if err := d.apply(TrCreate, "creating"); err != nil {
		t.Fatal(err)
	}
	if err := d.apply(TrUnpaused, "unpaused"); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("unpause while creating: %v", err)
	}
	done := make(chan DomainState)
	go func() {
		st, _ := d.WaitState(t.Context(), StateRunning)
		done <- st
	}()
	d.apply(TrCreated, "created")
	d.apply(TrUnpaused, "unpaused")
	if st := <-done; st != StateRunning {
		t.Fatal(st)
	}
	if e := <-s.C(); e.Kind != "creating" {
		t.Fatal(e)
	}
}

// Issue 11 item 3: a death can be seen twice — by the driver's own
// destroy or save (endIncarnationLocked) and by libxl's DOMAIN_DEATH on a
// watch that was still open — and must be published once per domid; a
// death of domid 0 (an incarnation that never had a domain) is never
// published.
func TestDeathPublishedOncePerIncarnation(t *testing.T) {
	m := &Domains{reg: newRegistry()}
	d := newDomain(m)
	s := m.Subscribe(16)
	defer s.Close()
	d.mu.Lock()
	d.name = "g"
	d.endIncarnationLocked(0)
	d.endIncarnationLocked(7)
	d.publishLocked(DomainEvent{DomID: 7, Name: "g", Kind: "death"})
	d.publishLocked(DomainEvent{DomID: 8, Name: "g", Kind: "created"})
	d.publishLocked(DomainEvent{DomID: 8, Name: "g", Kind: "death"})
	d.endIncarnationLocked(8)
	d.mu.Unlock()
	var got []string
	for len(s.C()) > 0 {
		e := <-s.C()
		got = append(got, fmt.Sprintf("%s:%d", e.Kind, e.DomID))
	}
	want := []string{"death:7", "created:8", "death:8"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("events %v, want %v", got, want)
	}
}

// Issue 11 item 3: a lookup or resync that finds a domain while its
// create is still running (the registry knows only the reserved name)
// must return the create's own Domain, not adopt a second one whose
// second death watch would report every event twice.
func TestAdoptDuringCreateReturnsTheCreatesDomain(t *testing.T) {
	m := &Domains{reg: newRegistry()}
	building := newDomain(m)
	building.name, building.state = "g", StateCreating
	if err := m.reg.reserve(building, "g", libxl.UUID{1}); err != nil {
		t.Fatal(err)
	}
	// DomID 0 keeps adopt from opening a watch (no ctx in this test).
	got, adopted, err := m.adopt(libxl.DomainInfo{DomID: 0, Name: "g", UUID: libxl.UUID{1}}, m.reg.mark())
	if err != nil || adopted || got != building {
		t.Fatalf("adopt during create: same Domain %v, adopted %v, err %v; want the create's Domain, not adopted", got == building, adopted, err)
	}
}

// A domain list taken before a domain was destroyed and forgotten can
// still show it: adopting it from that list would report the dead domain
// again ("discovered" after its "death", seen once on CI in
// TestConcurrentCreatesEventsOncePerIncarnation, whose resync ran every
// 5 ms). adopt refuses a domid forgotten after the list's mark.
func TestStaleListDoesNotAdoptAForgottenDomain(t *testing.T) {
	m := &Domains{reg: newRegistry()}
	g := newDomain(m)
	g.name, g.uuid, g.domid = "g", libxl.UUID{2}, 9
	m.reg.mu.Lock()
	m.reg.byID[9], m.reg.byName["g"], m.reg.byUUID[libxl.UUID{2}] = g, g, g
	m.reg.mu.Unlock()
	mark := m.reg.mark() // the resync's list is taken here, showing domain 9
	m.reg.remove(g, 9, "g", libxl.UUID{2})
	got, adopted, err := m.adopt(libxl.DomainInfo{DomID: 9, Name: "g", UUID: libxl.UUID{2}}, mark)
	if !errors.Is(err, ErrDomainNotFound) || adopted || got != nil {
		t.Fatalf("adopt of a domain forgotten after the list: %v, adopted %v, err %v; want ErrDomainNotFound", got, adopted, err)
	}
	if m.reg.byDomID(9) != nil {
		t.Fatal("the forgotten domain is registered again")
	}
}
