//go:build libxlmodel

package driver

// The boundary matrix of issue 11 for driver.Driver and driver.Domains,
// against the contract model, meant for -race: every exported method
// called (a) concurrently with Close at randomised points, (b) after
// Close, (c) from inside the driver's callbacks (the Progress callback,
// which runs inside an operation, and an event-stream consumer) while
// Close is pending. Every call must end within a bound in success or a
// typed error; afterwards no goroutine, fd or loop registration is left,
// the model saw no contract violation, and the fake host holds no domain
// that an operation reported as failed (an orphan).

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goxl/goxl/internal/leakcheck"
	"github.com/goxl/goxl/internal/libxlmodel"
	"github.com/goxl/goxl/libxl"
)

// matrixCall is one exported method, called on a driver and a manager.
// It returns the domid of a domain it made the caller own (Create,
// Restore), so that the orphan check knows it.
type matrixCall struct {
	name string
	call func(ctx context.Context, r *matrixRound, name string) (uint32, error)
}

type matrixRound struct {
	d        *Driver
	m        *Domains
	saveFile string
}

func matrixCalls() []matrixCall {
	none := func(err error) (uint32, error) { return 0, err }
	made := func(dom *Domain, err error) (uint32, error) {
		if err != nil || dom == nil {
			return 0, err
		}
		return dom.Snapshot().DomID, nil
	}
	return []matrixCall{
		{"Driver.Ctx", func(_ context.Context, r *matrixRound, _ string) (uint32, error) {
			_, err := r.d.Ctx().ListDomains()
			return none(err)
		}},
		{"Driver.Loop", func(_ context.Context, r *matrixRound, _ string) (uint32, error) {
			_ = r.d.Loop().Stats()
			return none(nil)
		}},
		{"Driver.OpenCtx", func(_ context.Context, r *matrixRound, _ string) (uint32, error) {
			c, err := r.d.OpenCtx()
			if err == nil {
				err = c.Close()
			}
			return none(err)
		}},
		{"Driver.Stats", func(_ context.Context, r *matrixRound, _ string) (uint32, error) {
			_ = r.d.Stats()
			return none(nil)
		}},
		{"NewDomains", func(_ context.Context, r *matrixRound, _ string) (uint32, error) {
			m, err := NewDomains(r.d, DomainsOptions{ResyncInterval: -1})
			if err == nil {
				err = m.Close()
			}
			return none(err)
		}},
		{"Domains.Subscribe", func(_ context.Context, r *matrixRound, _ string) (uint32, error) {
			s := r.m.Subscribe(0)
			s.Close()
			_ = s.Err()
			return none(nil)
		}},
		{"Domains.Lookup", func(_ context.Context, r *matrixRound, name string) (uint32, error) {
			_, err := r.m.Lookup(name)
			return none(err)
		}},
		{"Domains.List", func(_ context.Context, r *matrixRound, _ string) (uint32, error) {
			_, err := r.m.List()
			return none(err)
		}},
		{"Domains.Known", func(_ context.Context, r *matrixRound, _ string) (uint32, error) {
			_ = r.m.Known()
			return none(nil)
		}},
		{"Domains.Info", func(_ context.Context, r *matrixRound, name string) (uint32, error) {
			_, err := r.m.Info(name)
			return none(err)
		}},
		{"Domains.Create", func(ctx context.Context, r *matrixRound, name string) (uint32, error) {
			return made(r.m.Create(ctx, modelGuest(name+"-new"), CreateOptions{}))
		}},
		{"Domains.Restore", func(ctx context.Context, r *matrixRound, _ string) (uint32, error) {
			return made(r.m.Restore(ctx, r.saveFile, CreateOptions{}))
		}},
		{"Domains.Save", func(ctx context.Context, r *matrixRound, name string) (uint32, error) {
			return none(r.m.Save(ctx, name, filepath.Join(filepath.Dir(r.saveFile), name+".save")))
		}},
		{"Domains.Destroy", func(ctx context.Context, r *matrixRound, name string) (uint32, error) {
			return none(r.m.Destroy(ctx, name))
		}},
		{"Domains.Shutdown", func(ctx context.Context, r *matrixRound, name string) (uint32, error) {
			ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			err := r.m.Shutdown(ctx, name, true)
			if errors.Is(err, context.DeadlineExceeded) {
				err = nil // the wait's own bound, not the driver's
			}
			return none(err)
		}},
		{"Domains.Reboot", func(ctx context.Context, r *matrixRound, name string) (uint32, error) {
			return none(r.m.Reboot(ctx, name))
		}},
		{"Domains.Pause", func(ctx context.Context, r *matrixRound, name string) (uint32, error) {
			return none(r.m.Pause(ctx, name))
		}},
		{"Domains.Unpause", func(ctx context.Context, r *matrixRound, name string) (uint32, error) {
			return none(r.m.Unpause(ctx, name))
		}},
		{"Domains.Console", func(_ context.Context, r *matrixRound, name string) (uint32, error) {
			_, err := r.m.Console(name)
			return none(err)
		}},
		{"Domains.Close", func(_ context.Context, r *matrixRound, _ string) (uint32, error) {
			return none(r.m.Close())
		}},
		{"Driver.Close", func(_ context.Context, r *matrixRound, _ string) (uint32, error) {
			return none(r.d.Close())
		}},
	}
}

// typedError: what a boundary may answer besides success.
func typedError(err error) bool {
	var le libxl.Error
	var ce *libxl.ConfigError
	if errors.As(err, &ce) {
		return true
	}
	for _, target := range []error{ErrDriverClosed, libxl.ErrClosed, ErrDomainNotFound, ErrDomainExists,
		ErrInvalidTransition, libxl.ErrNilConfig, libxl.ErrBadSaveFile, os.ErrNotExist, context.Canceled} {
		if errors.Is(err, target) {
			return true
		}
	}
	return errors.As(err, &le)
}

// matrixResults counts outcomes per (mode, method) cell.
type matrixResults struct {
	mu    sync.Mutex
	cells map[string]*[2]int // ok, typed error
}

func (mr *matrixResults) record(t *testing.T, mode, method string, err error) {
	mr.mu.Lock()
	defer mr.mu.Unlock()
	key := mode + " × " + method
	c := mr.cells[key]
	if c == nil {
		c = &[2]int{}
		mr.cells[key] = c
	}
	if err == nil {
		c[0]++
		return
	}
	c[1]++
	if !typedError(err) {
		t.Errorf("%s: untyped error: %v", key, err)
	}
}

// boundedCall runs fn and fails the test if it does not return within
// bound (a hang), with every goroutine's stack.
func boundedCall(t *testing.T, what string, bound time.Duration, fn func()) {
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(bound):
		buf := make([]byte, 1<<20)
		t.Fatalf("%s did not return within %v (a hang):\n%s", what, bound, buf[:runtime.Stack(buf, true)])
	}
}

func writeModelSaveFile(t *testing.T, path string) {
	t.Helper()
	writeModelSaveFileWithStream(t, path, []byte("LibxlFmt\x00\x00\x00\x02\x00\x00\x00\x00"))
	_, err := libxl.ReadSaveFileConfig(path)
	require.NoError(t, err)
}

func writeModelSaveFileWithStream(t *testing.T, path string, stream []byte) {
	t.Helper()
	// xl's header with a config; the model's restore is not implemented
	// (ERROR_NI), which still exercises the admission and the error path.
	js := `{"c_info":{"name":"restored","type":"pv"},"b_info":{"max_memkb":65536,"target_memkb":65536,"max_vcpus":1,"type.pv":{"kernel":"/dev/null"}}}`
	// xl's save-file header (tools/xl/xl.h): magic, byte order, mandatory
	// flags (JSON config, stream v2), optional flags, optional data
	// length; then the config's length and the config, NUL-terminated.
	data := append([]byte(js), 0)
	var b bytes.Buffer
	b.WriteString("Xen saved domain, xl format\n \x00 \r")
	for _, v := range []uint32{0x01020304, 3, 0, uint32(4 + len(data)), uint32(len(data))} {
		binary.Write(&b, binary.NativeEndian, v)
	}
	b.Write(data)
	b.Write(stream) // libxl's stream header, big-endian: ident, version, options
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o600))
}

func TestBoundaryMatrix(t *testing.T) {
	freshModelHost(t)
	base := leakcheck.Take()
	calls := matrixCalls()
	results := &matrixResults{cells: map[string]*[2]int{}}
	saveFile := filepath.Join(t.TempDir(), "matrix.save")
	writeModelSaveFile(t, saveFile)
	rounds := 24
	if testing.Short() {
		rounds = 8
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d (the random points of Close and of the calls)", seed)
	rng := rand.New(rand.NewPCG(seed, 11))
	const bound = 20 * time.Second
	var orphanChecks int

	for round := 0; round < rounds; round++ {
		libxlmodel.ResetDomains()
		libxlmodel.SetCreateDelay(rng.IntN(30))
		d := newModelDriver(t, libxlmodel.Mode417)
		var closing atomic.Bool
		closingNow := make(chan struct{})
		var r *matrixRound
		var owned sync.Map // domids that a successful Create/Restore returned
		// callAll runs every method once from a callback, bounded.
		callAll := func(mode string, skipClose bool) {
			for _, c := range calls {
				if skipClose && (c.name == "Domains.Close" || c.name == "Driver.Close") {
					// Close from inside an operation would wait for that
					// operation: driver/doc.go forbids it.
					continue
				}
				var id uint32
				var err error
				boundedCall(t, mode+": "+c.name, bound, func() { id, err = c.call(context.Background(), r, "seed0") })
				if id != 0 {
					owned.Store(id, true)
				}
				results.record(t, mode, c.name, err)
			}
		}
		var gateOnce sync.Once
		gateReached := make(chan struct{})
		progress := func(msg string) {
			// (c) inside a callback that runs inside an operation (the
			// "gate" create, its domain's job held): it waits until
			// Close is pending, then calls every method.
			if msg != "creating gate-new" {
				return
			}
			gateOnce.Do(func() {
				close(gateReached)
				<-closingNow
				time.Sleep(time.Millisecond)
				callAll("(c) in Progress callback while closing", true)
			})
		}
		m, err := NewDomains(d, DomainsOptions{PerOperationCtx: round%2 == 0, ResyncInterval: time.Duration(1+rng.IntN(5)) * time.Millisecond, Progress: progress})
		require.NoError(t, err)
		r = &matrixRound{d: d, m: m, saveFile: saveFile}
		stream := m.Subscribe(1 << 14)
		for i := 0; i < 2; i++ {
			dom, err := m.Create(context.Background(), modelGuest(fmt.Sprintf("seed%d", i)), CreateOptions{})
			require.NoError(t, err)
			owned.Store(dom.Snapshot().DomID, true)
		}

		// (c) from an event-stream consumer: on its first event it waits
		// until Close is pending, then calls every method.
		var consumer sync.WaitGroup
		consumer.Add(1)
		go func() {
			defer consumer.Done()
			first := true
			for range stream.C() {
				if first {
					first = false
					<-closingNow
					callAll("(c) in event consumer while closing", false)
				}
			}
		}()
		var gate sync.WaitGroup
		gate.Add(1)
		gateDone := make(chan struct{})
		go func() {
			defer gate.Done()
			defer close(gateDone)
			var id uint32
			var err error
			boundedCall(t, "the gate create", bound, func() { id, err = calls[10].call(context.Background(), r, "gate") })
			if id != 0 {
				owned.Store(id, true)
			}
			if err != nil && !closing.Load() {
				t.Logf("round %d: the gate create failed before Close: %v", round, err)
			}
			results.record(t, "(a) concurrent with Close", "Domains.Create", err)
		}()

		select {
		case <-gateReached:
		case <-gateDone:
			t.Errorf("round %d: the gate create ended before its Progress callback", round)
		case <-time.After(bound):
			t.Fatal("the gate create never reached its Progress callback")
		}
		// (a) every method concurrently with Close, at a random point.
		var callers sync.WaitGroup
		for i, c := range calls {
			callers.Add(1)
			delay := time.Duration(rng.IntN(3000)) * time.Microsecond
			go func() {
				defer callers.Done()
				time.Sleep(delay)
				var id uint32
				var err error
				boundedCall(t, "concurrent "+c.name, bound, func() {
					id, err = c.call(context.Background(), r, fmt.Sprintf("seed%d", i%2))
				})
				if id != 0 {
					owned.Store(id, true)
				}
				results.record(t, "(a) concurrent with Close", c.name, err)
			}()
		}
		time.Sleep(time.Duration(rng.IntN(4000)) * time.Microsecond)
		closing.Store(true)
		close(closingNow)
		boundedCall(t, "Close", bound, func() {
			if rng.IntN(2) == 0 {
				require.NoError(t, m.Close())
			}
			require.NoError(t, d.Close())
		})
		callers.Wait()
		consumer.Wait()
		gate.Wait()

		// (b) every method after Close.
		for _, c := range calls {
			var id uint32
			var err error
			boundedCall(t, "after Close: "+c.name, bound, func() { id, err = c.call(context.Background(), r, "seed0") })
			require.Zero(t, id, "%s made a domain after Close", c.name)
			results.record(t, "(b) after Close", c.name, err)
			if err == nil {
				switch c.name {
				case "Driver.Loop", "Driver.Stats", "Domains.Known", "Domains.Subscribe", "Domains.Close", "Driver.Close":
				default:
					t.Errorf("%s succeeded after Close", c.name)
				}
			}
		}

		// No orphan: every fake domain was handed to a caller.
		for _, id := range libxlmodel.Domains() {
			orphanChecks++
			if _, ok := owned.Load(id); !ok {
				t.Errorf("round %d: domain %d is in the host but no operation reported it (an orphan)", round, id)
			}
		}
		requireNoViolations(t)
	}
	libxlmodel.ResetDomains()
	base.Check(t, 5*time.Second)

	keys := make([]string, 0, len(results.cells))
	total := 0
	for k, c := range results.cells {
		keys = append(keys, k)
		total += c[0] + c[1]
	}
	sort.Strings(keys)
	for _, k := range keys {
		c := results.cells[k]
		t.Logf("%-70s ok %4d  typed error %4d", k, c[0], c[1])
	}
	modes := []string{"(a) concurrent with Close", "(b) after Close", "(c) in event consumer while closing", "(c) in Progress callback while closing"}
	want := 0
	for _, mode := range modes {
		for _, c := range calls {
			if mode == modes[3] && (c.name == "Domains.Close" || c.name == "Driver.Close") {
				continue
			}
			want++
			if _, ok := results.cells[mode+" × "+c.name]; !ok {
				t.Errorf("cell %s × %s never ran", mode, c.name)
			}
		}
	}
	t.Logf("boundary matrix: %d methods × %d modes = %d cells (%d filled); %d calls over %d rounds; %d domains checked for orphans",
		len(calls), len(modes), want, len(results.cells), total, rounds, orphanChecks)
	fmt.Printf("boundary matrix (driver.Driver, driver.Domains): %d cells (%d methods × %d modes), %d calls, %d rounds\n", want, len(calls), len(modes), total, rounds)
}
