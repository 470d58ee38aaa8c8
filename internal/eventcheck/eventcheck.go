// Package eventcheck checks a driver event stream against the promise
// the driver makes for it: per incarnation of a domain, one start event
// first, exactly one "death", and nothing after it. The model tests in
// driver and the integration tests on real Xen both use it, so the
// promise is stated once. It takes plain (domid, kind) pairs rather than
// driver.DomainEvent so that driver's own tests can use it without an
// import cycle.
package eventcheck

import (
	"fmt"
	"sort"
)

// Event is one entry of a stream: a domain id and the event's kind.
type Event struct {
	DomID uint32
	Kind  string
}

// startKinds are the events that begin an incarnation in the stream.
var startKinds = map[string]bool{"created": true, "restored": true, "discovered": true}

// Incarnations returns one problem per domain whose events break the
// promise, and one per domain that has events but is not in want (domid
// → name). It returns nothing when the stream keeps the promise.
func Incarnations(events []Event, want map[uint32]string) []string {
	byID := map[uint32][]string{}
	for _, e := range events {
		byID[e.DomID] = append(byID[e.DomID], e.Kind)
	}
	var problems []string
	for id, name := range want {
		kinds := byID[id]
		deaths, starts := 0, 0
		for _, k := range kinds {
			if k == "death" {
				deaths++
			}
			if startKinds[k] {
				starts++
			}
		}
		if len(kinds) == 0 || !startKinds[kinds[0]] || starts != 1 || deaths != 1 || kinds[len(kinds)-1] != "death" {
			problems = append(problems, fmt.Sprintf("domain %d (%s): events %v; want one start first, then exactly one death, last", id, name, kinds))
		}
	}
	for id, kinds := range byID {
		if _, ok := want[id]; !ok {
			problems = append(problems, fmt.Sprintf("events for domain %d that no create made: %v", id, kinds))
		}
	}
	sort.Strings(problems)
	return problems
}
