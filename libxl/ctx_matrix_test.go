//go:build libxlmodel

package libxl

// The boundary matrix of libxl.Ctx against the contract model: every
// exported method, called (a) concurrently with Close at randomised
// points, (b) after Close, (c) from inside libxl's event callback
// (Options.OnEvent, raised the way a delivery raises it) while Close is
// pending, in 4.17 mode and in Xen42Serialised mode. Each call must end
// in success or a typed error within a bound; afterwards no model
// violation, no registration left in the loop, no leaked fd or goroutine.
//
// OccurredFD and OccurredTimeout are the loop's entry points: in (a) and
// (c) the loop calls them concurrently with everything else (a caller
// inventing a for_libxl would break libxl's contract, not goxl's); in (b)
// they are called directly and must be refused. The async-op completion
// runs goxl's own code only (it signals a channel), so it has no user
// re-entry to test; it runs inside the deliveries of (a).

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/goxl/goxl/driver/eventloop"
	"github.com/goxl/goxl/internal/libxlmodel"
	"github.com/goxl/goxl/internal/osevent"
)

type matrixEnv struct {
	c     *Ctx
	domid uint32
	dir   string

	mu   sync.Mutex
	subs []*Subscription
}

func (m *matrixEnv) keep(s *Subscription) {
	if s != nil {
		m.mu.Lock()
		m.subs = append(m.subs, s)
		m.mu.Unlock()
	}
}

var matrixCfg = &DomainConfig{Name: "m", Type: DomainTypePV, Kernel: "/dev/null", MemoryMB: 64, VCPUs: 1}

// matrixMethods calls each exported method of *Ctx once. The key is the
// method's name; TestBoundaryMatrix checks that no exported method is
// missing.
func matrixMethods() map[string]func(m *matrixEnv) error {
	bg := context.Background()
	return map[string]func(m *matrixEnv) error{
		"Call": func(m *matrixEnv) error { return m.c.Call(func(unsafe.Pointer) error { return nil }) },
		"CallAsync": func(m *matrixEnv) error {
			return m.c.CallAsync(bg, "libxl_domain_shutdown", shutdownStartForTest(m.domid))
		},
		"CheckConfig": func(m *matrixEnv) error { return m.c.CheckConfig(matrixCfg) },
		"Close":       func(m *matrixEnv) error { return m.c.Close() },
		"ConfigToJSON": func(m *matrixEnv) error {
			_, err := m.c.ConfigToJSON(matrixCfg)
			return err
		},
		"ConsoleTTY": func(m *matrixEnv) error {
			_, err := m.c.ConsoleTTY(m.domid, 0, ConsoleType(0))
			return err
		},
		"CreateDomain": func(m *matrixEnv) error {
			_, err := m.c.CreateDomain(bg, matrixCfg)
			return err
		},
		"DestroyDomain":  func(m *matrixEnv) error { return m.c.DestroyDomain(bg, m.domid) },
		"DomainByName":   func(m *matrixEnv) error { _, err := m.c.DomainByName("m"); return err },
		"DomainByUUID":   func(m *matrixEnv) error { _, err := m.c.DomainByUUID(UUID{1}); return err },
		"DomainIDByName": func(m *matrixEnv) error { _, err := m.c.DomainIDByName("m"); return err },
		"DomainInfo":     func(m *matrixEnv) error { _, err := m.c.DomainInfo(m.domid); return err },
		"Err": func(m *matrixEnv) error {
			if err := m.c.Err(); err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, ErrDisaster) {
				return fmt.Errorf("Err() = %w", err)
			}
			return nil
		},
		"ListDomains":  func(m *matrixEnv) error { _, err := m.c.ListDomains(); return err },
		"LookupDomain": func(m *matrixEnv) error { _, err := m.c.LookupDomain(fmt.Sprint(m.domid)); return err },
		"OccurredFD": func(m *matrixEnv) error {
			m.c.OccurredFD(osevent.ForLibxl(0x1000), 3, osevent.PollIn, osevent.PollIn, nil)
			return nil
		},
		"OccurredTimeout": func(m *matrixEnv) error {
			m.c.OccurredTimeout(osevent.ForLibxl(0x2000), nil)
			return nil
		},
		"PauseDomain":       func(m *matrixEnv) error { return m.c.PauseDomain(bg, m.domid) },
		"PrimaryConsoleTTY": func(m *matrixEnv) error { _, err := m.c.PrimaryConsoleTTY(m.domid); return err },
		"Raw":               func(m *matrixEnv) error { _ = m.c.Raw(); return nil },
		"RebootDomain":      func(m *matrixEnv) error { return m.c.RebootDomain(bg, m.domid) },
		"RestoreDomain": func(m *matrixEnv) error {
			_, err := m.c.RestoreDomain(bg, filepath.Join(m.dir, "missing.save"), matrixCfg)
			return err
		},
		"RetrieveDomainConfig": func(m *matrixEnv) error { _, err := m.c.RetrieveDomainConfig(bg, m.domid); return err },
		"SaveDomain": func(m *matrixEnv) error {
			return m.c.SaveDomain(bg, m.domid, filepath.Join(m.dir, fmt.Sprintf("d%d-%d.save", m.domid, rand.Int())))
		},
		"Serialised":     func(m *matrixEnv) error { _ = m.c.Serialised(); return nil },
		"SetLogLevel":    func(m *matrixEnv) error { return m.c.SetLogLevel(LogWarn) },
		"ShutdownDomain": func(m *matrixEnv) error { return m.c.ShutdownDomain(bg, m.domid) },
		"SuspendDomain":  func(m *matrixEnv) error { return m.c.SuspendDomain(bg, m.domid, -1) },
		"UnpauseDomain":  func(m *matrixEnv) error { return m.c.UnpauseDomain(bg, m.domid) },
		"Version":        func(m *matrixEnv) error { _ = m.c.Version(); return nil },
		"WatchDiskEject": func(m *matrixEnv) error {
			s, err := m.c.WatchDiskEject(m.domid, "hdc", WatchOptions{})
			m.keep(s)
			return err
		},
		"HostInfo":        func(m *matrixEnv) error { _, err := m.c.HostInfo(); return err },
		"SetMemoryTarget": func(m *matrixEnv) error { return m.c.SetMemoryTarget(m.domid, 65536) },
		"DomainName":      func(m *matrixEnv) error { _, err := m.c.DomainName(m.domid); return err },
		"StartTime":       func(m *matrixEnv) error { _, err := m.c.StartTime(m.domid); return err },
		"SendTrigger":     func(m *matrixEnv) error { return m.c.SendTrigger(bg, m.domid, TriggerPower) },
		"ResumeDomain":    func(m *matrixEnv) error { return m.c.ResumeDomain(bg, m.domid) },
		"ListVCPUs":       func(m *matrixEnv) error { _, err := m.c.ListVCPUs(m.domid); return err },
		"SetVCPUsOnline":  func(m *matrixEnv) error { return m.c.SetVCPUsOnline(bg, m.domid, 1, 1) },
		"StoreUserdata":   func(m *matrixEnv) error { return m.c.StoreUserdata(m.domid, "goxl-matrix", []byte("x")) },
		"RetrieveUserdata": func(m *matrixEnv) error {
			_, err := m.c.RetrieveUserdata(m.domid, "goxl-matrix")
			return err
		},
		"UnlinkUserdata": func(m *matrixEnv) error { return m.c.UnlinkUserdata(m.domid, "goxl-matrix") },
		"CoreDumpDomain": func(m *matrixEnv) error {
			return m.c.CoreDumpDomain(bg, m.domid, filepath.Join(m.dir, fmt.Sprintf("core-%d", rand.Int())))
		},
		"RenameDomain":    func(m *matrixEnv) error { return m.c.RenameDomain(m.domid, "m", "m2") },
		"SoftResetDomain": func(m *matrixEnv) error { return m.c.SoftResetDomain(bg, m.domid, matrixCfg) },
		"WatchDomainDeath": func(m *matrixEnv) error {
			s, err := m.c.WatchDomainDeath(m.domid, WatchOptions{})
			m.keep(s)
			return err
		},
	}
}

// typedError: nil, or an error a caller can act on with errors.Is/As.
func typedError(err error) bool {
	if err == nil {
		return true
	}
	var code Error
	var cfgErr *ConfigError
	var cfgErrs ConfigErrors
	var pathErr *fs.PathError
	return errors.Is(err, ErrClosed) || errors.Is(err, ErrInCallback) || errors.Is(err, ErrDisaster) ||
		errors.Is(err, ErrNoSuchDomain) || errors.Is(err, ErrNoUserdata) || errors.Is(err, context.Canceled) ||
		errors.As(err, &code) || errors.As(err, &cfgErr) || errors.As(err, &cfgErrs) || errors.As(err, &pathErr)
}

// closedError: what a call on a closed ctx may return. Methods that only
// read what New recorded succeed; RestoreDomain opens its file first.
func closedError(name string, err error) bool {
	switch name {
	case "Close", "Err", "OccurredFD", "OccurredTimeout", "Raw", "Serialised", "Version":
		return err == nil
	case "RestoreDomain":
		var pathErr *fs.PathError
		return errors.Is(err, ErrClosed) || errors.As(err, &pathErr)
	}
	return errors.Is(err, ErrClosed)
}

var errHung = errors.New("call did not return within the bound")

// boundedCall runs call and reports its error, or marks the test failed
// and returns errHung if it has not returned within the bound. It may run
// on any goroutine.
func boundedCall(t *testing.T, what string, call func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		return err
	case <-time.After(bound):
		t.Errorf("%s did not return within %v", what, bound)
		return errHung
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestBoundaryMatrix(t *testing.T) {
	methods := matrixMethods()
	var missing []string
	typ := reflect.TypeOf(&Ctx{})
	for i := 0; i < typ.NumMethod(); i++ {
		if _, ok := methods[typ.Method(i).Name]; !ok {
			missing = append(missing, typ.Method(i).Name)
		}
	}
	if len(missing) > 0 || len(methods) != typ.NumMethod() {
		t.Fatalf("the matrix misses exported methods %v (has %d, *Ctx has %d)", missing, len(methods), typ.NumMethod())
	}
	names := make([]string, 0, len(methods))
	for n := range methods {
		names = append(names, n)
	}
	sort.Strings(names)

	rounds := 8
	if testing.Short() {
		rounds = 2
	}
	// The first ctx starts os/signal's goroutine, which never exits:
	// warm it up before taking the baseline.
	warm := newModelCtx(t, &nopHooks{}, false, Options{})
	if err := warm.Close(); err != nil {
		t.Fatal(err)
	}
	libxlmodel.Reset()
	fds0, gs0 := openFDs(t), runtime.NumGoroutine()
	loop, err := eventloop.New(eventloop.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 11))
	t.Logf("random Close points from seed %d", seed)

	cells, calls := 0, 0
	for _, serialised := range []bool{false, true} {
		mode := map[bool]string{false: "4.17", true: "Xen42Serialised"}[serialised]
		for _, name := range names {
			call := methods[name]
			where := func(phase string) string { return fmt.Sprintf("%s/%s/%s", mode, phase, name) }

			// The loop's entry points are called by the loop in (a) and
			// (c); inventing a for_libxl would break libxl's contract.
			loopOnly := name == "OccurredFD" || name == "OccurredTimeout"

			// (a) concurrently with Close at randomised points.
			for r := 0; r < rounds && !loopOnly; r++ {
				m := matrixCtx(t, loop, serialised, dir, nil)
				var wg sync.WaitGroup
				for g := 0; g < 3; g++ {
					delay := time.Duration(rng.IntN(3000)) * time.Microsecond
					wg.Add(1)
					go func() {
						defer wg.Done()
						time.Sleep(delay)
						err := boundedCall(t, where("concurrent"), func() error { return call(m) })
						if err != errHung && !typedError(err) {
							t.Errorf("%s: untyped error %v", where("concurrent"), err)
						}
					}()
					calls++
				}
				time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
				if err := boundedCall(t, where("concurrent")+" Close", m.c.Close); err != nil {
					t.Errorf("%s: Close: %v", where("concurrent"), err)
				}
				wg.Wait()
				m.finish(t, loop, where("concurrent"))
				cells++
			}

			// (b) after Close.
			m := matrixCtx(t, loop, serialised, dir, nil)
			if err := m.c.Close(); err != nil {
				t.Fatal(err)
			}
			err := boundedCall(t, where("after-close"), func() error { return call(m) })
			if !closedError(name, err) {
				t.Errorf("%s: %v, want ErrClosed", where("after-close"), err)
			}
			m.finish(t, loop, where("after-close"))
			cells++
			calls++

			if loopOnly {
				continue
			}

			// (c) from inside libxl's event callback, Close pending.
			var cbErr error
			cbRan := false
			m = matrixCtx(t, loop, serialised, dir, func(m *matrixEnv, e Event) {
				cbErr, cbRan = call(m), true
			})
			end, err := m.c.beginOp() // an operation in flight keeps Close pending
			if err != nil {
				t.Fatal(err)
			}
			closed := make(chan error, 1)
			go func() { closed <- m.c.Close() }()
			waitFor(t, "Close to be pending", m.c.closePending)
			within(t, where("callback"), func() {
				// As a delivery does: pinned, and in Xen42Serialised mode
				// under the serial lock, whose release runs OnEvent.
				if !m.c.pin() {
					t.Errorf("%s: pin refused with Close only pending", where("callback"))
					return
				}
				m.c.lockSerial(serialDelivery)
				m.c.raiseEventForTest(EventDomainShutdown, m.domid, 1<<40)
				m.c.unlockSerial(serialDelivery)
				m.c.unpin()
			})
			end()
			if err := boundedCall(t, where("callback")+" Close", func() error { return <-closed }); err != nil {
				t.Errorf("%s: Close: %v", where("callback"), err)
			}
			if !cbRan {
				t.Errorf("%s: OnEvent did not run", where("callback"))
			} else if !typedError(cbErr) || (name == "Close" && !errors.Is(cbErr, ErrInCallback)) {
				t.Errorf("%s: %v", where("callback"), cbErr)
			}
			m.finish(t, loop, where("callback"))
			cells++
			calls++
		}
	}

	if err := loop.Close(); err != nil {
		t.Fatalf("loop.Close: %v", err)
	}
	requireNoModelViolations(t)
	if n := libxlmodel.Counters(); n.CtxAllocs != n.CtxFrees {
		t.Fatalf("ctxs allocated %d, freed %d", n.CtxAllocs, n.CtxFrees)
	}
	deadline := time.Now().Add(bound)
	for runtime.NumGoroutine() > gs0 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, baseline %d:\n%s", runtime.NumGoroutine(), gs0, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
	waitFor(t, "fds back to the baseline", func() bool { return openFDs(t) <= fds0 })
	fmt.Printf("libxl.Ctx boundary matrix: %d methods × 3 phases (concurrent with Close ×%d rounds, after Close, from OnEvent with Close pending) × 2 modes: %d cells, %d calls (the loop's OccurredFD/OccurredTimeout only after Close; the loop calls them in the other phases)\n",
		len(names), rounds, cells, calls)
}

// matrixCtx makes a ctx on a new binding of loop with one fake domain.
func matrixCtx(t *testing.T, loop *eventloop.Loop, serialised bool, dir string, onEvent func(*matrixEnv, Event)) *matrixEnv {
	t.Helper()
	m := &matrixEnv{dir: dir}
	opts := Options{}
	if onEvent != nil {
		opts.OnEvent = func(e Event) { onEvent(m, e) }
	}
	m.c = newModelCtx(t, loop.Attach(nil), serialised, opts)
	domid, err := m.c.CreateDomain(context.Background(), matrixCfg)
	if err != nil {
		t.Fatal(err)
	}
	m.domid = domid
	return m
}

// finish checks that the closed ctx left nothing behind: subscriptions
// ended, no registration in the loop.
func (m *matrixEnv) finish(t *testing.T, loop *eventloop.Loop, where string) {
	t.Helper()
	if err := m.c.Close(); err != nil {
		t.Errorf("%s: Close: %v", where, err)
	}
	m.mu.Lock()
	subs := m.subs
	m.mu.Unlock()
	for _, s := range subs {
		select {
		case <-drained(s):
		case <-time.After(bound):
			t.Fatalf("%s: a subscription is still open after Close", where)
		}
		if s.Err() == nil {
			t.Errorf("%s: subscription ended without a reason", where)
		}
		s.Close()
	}
	if st := loop.Stats(); st.Bindings != 0 || st.FDRegs != 0 || st.Timeouts != 0 {
		t.Fatalf("%s: the loop keeps %d bindings, %d fd and %d timeout registrations after Close", where, st.Bindings, st.FDRegs, st.Timeouts)
	}
}

func drained(s *Subscription) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		for range s.C() {
		}
		close(done)
	}()
	return done
}
