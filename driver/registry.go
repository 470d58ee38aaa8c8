package driver

import (
	"errors"
	"fmt"
	"sync"

	"github.com/goxl/goxl/libxl"
)

// ErrDomainNotFound is returned (wrapped) by every operation on a domain
// that does not exist, or vanished under the driver. errors.Is also
// matches libxl.ErrDomainNotFound on the same errors.
var ErrDomainNotFound = errors.New("driver: domain not found")

// ErrDomainExists is returned by Create and Restore for a name (or UUID)
// already in use; nothing was built.
var ErrDomainExists = errors.New("driver: a domain with that name already exists")

// notFound wraps cause (which may be nil) so that both sentinels match.
func notFound(what string, cause error) error {
	if cause == nil {
		cause = libxl.ErrDomainNotFound
	}
	return fmt.Errorf("domain %s: %w (%w)", what, ErrDomainNotFound, cause)
}

// registry indexes domains by domid, name and UUID. Its lock is a leaf:
// held only for map operations, never while calling libxl and never while
// taking a domain lock (a domain lock may be held while taking it).
type registry struct {
	mu     sync.Mutex
	byID   map[uint32]*Domain
	byName map[string]*Domain
	byUUID map[libxl.UUID]*Domain

	// forgets counts the domains forgotten; gone holds, for the last
	// maxGone of them, the count at each one's forget. A domain list
	// taken before that count (a resync's, a lookup's) can still show a
	// domain that was destroyed and forgotten since: it must not be
	// adopted again (a "discovered" after its death).
	forgets   uint64
	gone      map[uint32]uint64
	goneOrder []uint32
}

// maxGone bounds the forgotten domids kept: a list is used for
// milliseconds, far fewer forgets than this happen meanwhile.
const maxGone = 1024

func newRegistry() *registry {
	return &registry{byID: map[uint32]*Domain{}, byName: map[string]*Domain{}, byUUID: map[libxl.UUID]*Domain{}, gone: map[uint32]uint64{}}
}

// reserve claims a name (and a UUID, unless zero) for a domain being
// built, before anything is built. It fails with ErrDomainExists.
func (r *registry) reserve(d *Domain, name string, uuid libxl.UUID) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if other, ok := r.byName[name]; ok && other != d {
		return fmt.Errorf("%q: %w", name, ErrDomainExists)
	}
	if !uuid.IsZero() {
		if other, ok := r.byUUID[uuid]; ok && other != d {
			return fmt.Errorf("UUID %s: %w", uuid, ErrDomainExists)
		}
		r.byUUID[uuid] = d
	}
	r.byName[name] = d
	return nil
}

// setID records a domain's (new) domid and UUID once libxl assigned them.
func (r *registry) setID(d *Domain, old, domid uint32, uuid libxl.UUID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old != 0 && r.byID[old] == d {
		delete(r.byID, old)
	}
	if domid != 0 {
		r.byID[domid] = d
	}
	if !uuid.IsZero() {
		r.byUUID[uuid] = d
	}
}

// remove forgets a domain under all its keys, if they still point at it.
func (r *registry) remove(d *Domain, domid uint32, name string, uuid libxl.UUID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID[domid] == d {
		delete(r.byID, domid)
		r.forgets++
		if _, ok := r.gone[domid]; !ok {
			r.goneOrder = append(r.goneOrder, domid)
		}
		r.gone[domid] = r.forgets
		if len(r.goneOrder) > maxGone {
			delete(r.gone, r.goneOrder[0])
			r.goneOrder = r.goneOrder[1:]
		}
	}
	if r.byName[name] == d {
		delete(r.byName, name)
	}
	if r.byUUID[uuid] == d {
		delete(r.byUUID, uuid)
	}
}

// mark is taken before a domain list: adopt refuses the domains of that
// list that were forgotten after it.
func (r *registry) mark() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.forgets
}

// forgottenSince reports whether domid was forgotten after mark.
// r.mu is held.
func (r *registry) forgottenSinceLocked(domid uint32, mark uint64) bool {
	at, ok := r.gone[domid]
	return ok && at > mark
}

func (r *registry) byDomID(id uint32) *Domain {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byID[id]
}

func (r *registry) byNameOrUUID(name string, uuid libxl.UUID, haveUUID bool) *Domain {
	r.mu.Lock()
	defer r.mu.Unlock()
	if haveUUID {
		return r.byUUID[uuid]
	}
	return r.byName[name]
}

func (r *registry) all() []*Domain {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[*Domain]bool{}
	var out []*Domain
	for _, m := range []map[string]*Domain{r.byName} {
		for _, d := range m {
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	for _, d := range r.byID {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// learnName gives a nameless domain the name libxl now reports, unless
// another domain holds that name. Lock order: registry, then domain.
func (r *registry) learnName(d *Domain, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.name != "" {
		return
	}
	if _, taken := r.byName[name]; taken {
		return
	}
	d.name = name
	r.byName[name] = d
}
