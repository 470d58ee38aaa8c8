package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/goxl/goxl/driver"
	"github.com/goxl/goxl/libxl"
)

// Keeper carries out one process's side of ownership over a
// driver.Domains: it marks a name before building it, records the owner
// in the domain's userdata once built and after every restart, destroys
// what a dead builder left half-built, takes over domains whose owner is
// gone (daemon only), and gives a name up when its domain is gone.
//
// Threads: its methods are called from the daemon's request goroutines,
// the driver's OnRestarting and OnRestart (afterShutdown's goroutine,
// holding the domain's job but no lock of the driver's) and the keeper's own
// loop. k.mu is a leaf lock, never held while calling libxl or the driver.
type Keeper struct {
	doms   *driver.Domains
	ctx    *libxl.Ctx
	owners *Owners
	log    *slog.Logger

	// domIDByName finds a domain by name (libxl_name_to_domid); tests
	// replace it where the contract model has no names.
	domIDByName func(string) (uint32, error)

	mu      sync.Mutex
	tracked map[string]*driver.Domain // claimed name → its domain
	checked map[uint32]string         // domid → "foreign" (no goxl record) or "ours"
}

// NewKeeper returns a keeper; attach it to the Domains with
// DomainsOptions.OnRestart = k.OnRestart and OnRestarting =
// k.OnRestarting before the Domains start (see
// KeeperHooks) and call SetDomains.
func NewKeeper(owners *Owners, log *slog.Logger) *Keeper {
	if log == nil {
		log = slog.Default()
	}
	return &Keeper{owners: owners, log: log, tracked: map[string]*driver.Domain{}, checked: map[uint32]string{}}
}

// SetDomains binds the keeper to its manager and the manager's ctx.
func (k *Keeper) SetDomains(doms *driver.Domains, ctx *libxl.Ctx) {
	k.doms, k.ctx = doms, ctx
	if k.domIDByName == nil {
		k.domIDByName = ctx.DomainIDByName
	}
}

// OnRestarting marks an owned name as being built again before an on_*
// restart builds its new incarnation, as Create marks it before the
// first build: should this process die before OnRestart records the new
// domid, the next owner's Recover finds "building" and destroys the
// half-built domain rather than taking it over.
func (k *Keeper) OnRestarting(name string, oldDomID uint32) {
	c := k.owners.Held(name)
	if c == nil {
		k.log.Warn("goxl: restarting a domain this process holds no claim on", "domain", name)
		return
	}
	if err := c.Building(); err != nil {
		k.log.Error("goxl: cannot mark the restart of a domain as building", "domain", name, "old domid", oldDomID, "err", err)
	}
}

// OnRestart records the new domid of a restarted owned domain.
func (k *Keeper) OnRestart(r driver.Restarted) {
	c := k.owners.Held(r.Name)
	if c == nil {
		k.log.Warn("goxl: restarted a domain this process holds no claim on", "domain", r.Name)
		return
	}
	if err := c.Owned(k.ctx, r.NewDomID, r.Config); err != nil {
		k.log.Error("goxl: cannot record the owner of the new incarnation", "domain", r.Name, "domid", r.NewDomID, "err", err)
	}
	k.mu.Lock()
	k.checked[r.NewDomID] = "ours"
	k.mu.Unlock()
}

// gone says whether a tracked domain no longer exists.
func gone(d *driver.Domain) bool {
	s := d.Snapshot().State
	return s == driver.StateDestroyed || s == driver.StateSaved
}

// Create claims the config's name, marks it building, builds, and
// records the ownership. On any error the claim is given up and nothing
// is left behind (driver.Domains.Create's guarantee).
func (k *Keeper) Create(ctx context.Context, cfg libxl.Config, opts driver.CreateOptions) (*driver.Domain, error) {
	return k.build(ctx, cfg, "", opts)
}

// Restore is Create from a save file; cfg is the save file's config
// (libxl.ReadSaveFileConfig) or the one that replaces it.
func (k *Keeper) Restore(ctx context.Context, path string, cfg libxl.Config, opts driver.CreateOptions) (*driver.Domain, error) {
	return k.build(ctx, cfg, path, opts)
}

func (k *Keeper) build(ctx context.Context, cfg libxl.Config, restorePath string, opts driver.CreateOptions) (*driver.Domain, error) {
	sum, err := cfg.Summary()
	if err != nil {
		return nil, err
	}
	if _, err := k.domIDByName(sum.Name); err == nil {
		return nil, fmt.Errorf("%q: %w", sum.Name, driver.ErrDomainExists)
	}
	k.mu.Lock()
	mine := k.tracked[sum.Name]
	k.mu.Unlock()
	if mine != nil && !gone(mine) {
		return nil, fmt.Errorf("%q: %w", sum.Name, driver.ErrDomainExists)
	}
	k.releaseIfGone(sum.Name)
	claim, err := k.owners.TryClaim(sum.Name)
	if err != nil {
		if errors.Is(err, ErrOwnedElsewhere) {
			// Another goxl process builds or owns a domain of that name.
			return nil, fmt.Errorf("%w: %w", driver.ErrDomainExists, err)
		}
		return nil, err
	}
	if err := claim.Building(); err != nil {
		claim.Release()
		return nil, err
	}
	var d *driver.Domain
	if restorePath != "" {
		d, err = k.doms.RestoreWith(ctx, restorePath, cfg, opts)
	} else {
		d, err = k.doms.Create(ctx, cfg, opts)
	}
	if err != nil {
		claim.Release()
		return nil, err
	}
	domid := d.Snapshot().DomID
	if err := claim.Owned(k.ctx, domid, cfg); err != nil {
		k.log.Error("goxl: cannot record the owner in the domain's userdata", "domain", sum.Name, "domid", domid, "err", err)
	}
	k.mu.Lock()
	k.tracked[sum.Name] = d
	k.checked[domid] = "ours"
	k.mu.Unlock()
	return d, nil
}

// releaseIfGone gives up this process's claim on name if its domain is
// gone (destroyed or saved).
func (k *Keeper) releaseIfGone(name string) {
	k.mu.Lock()
	d := k.tracked[name]
	k.mu.Unlock()
	if d != nil && !gone(d) {
		return
	}
	if c := k.owners.Held(name); c != nil {
		k.mu.Lock()
		if k.tracked[name] == d {
			delete(k.tracked, name)
		}
		k.mu.Unlock()
		c.Release()
	}
}

// Observe updates claims from a driver event: a domain that is gone
// gives its name up. O(1) per event.
func (k *Keeper) Observe(e driver.DomainEvent) {
	switch e.Kind {
	case "destroyed", "death", "saved":
		k.releaseIfGone(e.Name)
	}
}

// Tracked returns how many domains this process owns.
func (k *Keeper) Tracked() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, d := range k.tracked {
		if !gone(d) {
			n++
		}
	}
	return n
}

// Owns says whether this process owns the domain of that name.
func (k *Keeper) Owns(name string) bool {
	k.mu.Lock()
	d := k.tracked[name]
	k.mu.Unlock()
	return d != nil && !gone(d)
}

// Recovered is what Recover did with one leftover.
type Recovered struct {
	Name   string
	DomID  uint32
	Action string // "destroyed half-built", "released"
}

// Recover handles the lock files of owners that are gone: a name still
// "building" was left half-built by a builder that died (SIGKILL mid
// create): its domain, if any, is destroyed. Owned ones are left for
// TakeOver (which needs the domain's record).
func (k *Keeper) Recover(ctx context.Context) []Recovered {
	var out []Recovered
	for _, o := range k.owners.Orphans() {
		name := o.claim.Name()
		if o.state.Phase != "building" {
			o.claim.Release() // TakeOver claims again from the record
			continue
		}
		r := Recovered{Name: name, Action: "released"}
		if domid, err := k.domIDByName(name); err == nil {
			r.DomID = domid
			dctx, cancel := context.WithTimeout(ctx, time.Minute)
			err := k.ctx.DestroyDomain(dctx, domid)
			cancel()
			if err != nil && !errors.Is(err, libxl.ErrDomainNotFound) {
				k.log.Error("goxl: cannot destroy a half-built domain", "domain", name, "domid", domid, "err", err)
				o.claim.f.Close() // keep the file: the next start tries again
				k.owners.mu.Lock()
				delete(k.owners.held, name)
				k.owners.mu.Unlock()
				continue
			}
			r.Action = "destroyed half-built"
			k.log.Warn("goxl: destroyed a domain its builder left half-built", "domain", name, "domid", domid, "builder", o.state.Owner, "pid", o.state.PID)
		}
		o.claim.Release()
		out = append(out, r)
	}
	return out
}

// TakeOver owns every domain that carries a goxl record and whose owner
// is gone; it returns the names taken. Domains without a record (xl's,
// another toolstack's) are left alone and not read again.
func (k *Keeper) TakeOver() []string {
	var taken []string
	for _, s := range k.doms.Known() {
		if s.DomID == 0 || s.Owned || s.State == driver.StateDestroyed || s.State == driver.StateSaved || s.State == driver.StateCreating {
			continue
		}
		k.mu.Lock()
		seen := k.checked[s.DomID]
		k.mu.Unlock()
		if seen != "" {
			continue
		}
		rec, err := ReadRecord(k.ctx, s.DomID)
		if err != nil {
			if errors.Is(err, libxl.ErrNoUserdata) {
				k.mu.Lock()
				k.checked[s.DomID] = "foreign"
				k.mu.Unlock()
			}
			continue
		}
		claim, err := k.owners.TryClaim(rec.Name)
		if err != nil {
			continue // its owner lives: try again later
		}
		cfg, err := rec.Config.Decode()
		var d *driver.Domain
		if err == nil {
			d, err = k.doms.Lookup(fmt.Sprint(s.DomID))
		}
		if err == nil {
			err = k.doms.Own(d, cfg)
		}
		if err != nil {
			k.log.Warn("goxl: cannot take over", "domain", rec.Name, "domid", s.DomID, "err", err)
			claim.Release()
			continue
		}
		if err := claim.Owned(k.ctx, s.DomID, cfg); err != nil {
			k.log.Warn("goxl: cannot rewrite the owner record", "domain", rec.Name, "err", err)
		}
		k.mu.Lock()
		k.tracked[rec.Name] = d
		k.checked[s.DomID] = "ours"
		k.mu.Unlock()
		k.log.Info("goxl: took over a domain whose owner is gone", "domain", rec.Name, "domid", s.DomID, "previous", fmt.Sprintf("%s pid %d", rec.Owner, rec.PID))
		taken = append(taken, rec.Name)
	}
	return taken
}

// OwnerOf describes who owns a domain, for OpDomains.
func (k *Keeper) OwnerOf(s driver.DomainSnapshot) string {
	if k.Owns(s.Name) {
		return "daemon"
	}
	k.mu.Lock()
	seen := k.checked[s.DomID]
	k.mu.Unlock()
	if seen == "foreign" {
		return ""
	}
	rec, err := ReadRecord(k.ctx, s.DomID)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%s pid %d", rec.Owner, rec.PID)
}
