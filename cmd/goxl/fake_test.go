package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/goxl/goxl/driver"
	"github.com/goxl/goxl/libxl"
)

// fakeBackend is a Backend over an in-memory domain table; it records
// every call with its options so tests can check what the verbs asked.
type fakeBackend struct {
	mu      sync.Mutex
	doms    []libxl.DomainInfo
	configs map[uint32]string
	calls   []string
	created []libxl.DomainConfig
	create  CreateOptions
	restore RestoreOptions
	shut    map[string]ShutdownOptions
	save    SaveOptions
	console ConsoleOptions
	tty     string
	memKB   uint64
	vcpus   int
	failOp  map[string]error // verb → error to return
	closed  int
}

func newFake() *fakeBackend {
	return &fakeBackend{
		doms: []libxl.DomainInfo{
			{DomID: 0, Name: "Domain-0", UUIDString: "00000000-0000-0000-0000-000000000000", Running: true, CurrentMemKB: 1 << 20, VCPUsOnline: 2},
			{DomID: 3, Name: "web", UUIDString: "5f0a1b2c-0000-4000-8000-000000000003", Blocked: true, CurrentMemKB: 512 << 10, VCPUsOnline: 1},
			{DomID: 7, Name: "db", UUIDString: "5f0a1b2c-0000-4000-8000-000000000007", Paused: true, CurrentMemKB: 256 << 10, VCPUsOnline: 2},
		},
		configs: map[uint32]string{3: `{"c_info":{"name":"web"}}`, 7: `{"c_info":{"name":"db"}}`},
		shut:    map[string]ShutdownOptions{},
		failOp:  map[string]error{},
	}
}

func (f *fakeBackend) record(format string, args ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	call := fmt.Sprintf(format, args...)
	f.calls = append(f.calls, call)
	for op, err := range f.failOp {
		if len(call) >= len(op) && call[:len(op)] == op {
			return err
		}
	}
	return nil
}

func (f *fakeBackend) find(ref string) (libxl.DomainInfo, error) {
	for _, d := range f.doms {
		if d.Name == ref || strconv.FormatUint(uint64(d.DomID), 10) == ref || d.UUIDString == ref {
			return d, nil
		}
	}
	return libxl.DomainInfo{}, fmt.Errorf("domain %q: %w", ref, driver.ErrDomainNotFound)
}

func (f *fakeBackend) List(context.Context) ([]libxl.DomainInfo, error) {
	return f.doms, f.record("list")
}
func (f *fakeBackend) Info(_ context.Context, ref string) (libxl.DomainInfo, error) {
	if err := f.record("info %s", ref); err != nil {
		return libxl.DomainInfo{}, err
	}
	return f.find(ref)
}
func (f *fakeBackend) Config(_ context.Context, ref string) (libxl.JSONConfig, error) {
	d, err := f.find(ref)
	if err != nil {
		return "", err
	}
	c, ok := f.configs[d.DomID]
	if !ok {
		return "", fmt.Errorf("no config for %d", d.DomID)
	}
	return libxl.JSONConfig(c), f.record("config %s", ref)
}
func (f *fakeBackend) Create(_ context.Context, cfg libxl.Config, opts CreateOptions) (driver.DomainSnapshot, error) {
	sum, err := cfg.Summary()
	if err != nil {
		return driver.DomainSnapshot{}, err
	}
	if err := f.record("create %s", sum.Name); err != nil {
		return driver.DomainSnapshot{}, err
	}
	f.created = append(f.created, sum)
	f.create = opts
	state := driver.StateRunning
	if opts.Paused {
		state = driver.StatePaused
	}
	return driver.DomainSnapshot{Name: sum.Name, DomID: 9, State: state, Owned: true}, nil
}
func (f *fakeBackend) Restore(_ context.Context, path string, opts RestoreOptions) (driver.DomainSnapshot, error) {
	f.restore = opts
	return driver.DomainSnapshot{Name: "restored", DomID: 10, State: driver.StateRunning}, f.record("restore %s", path)
}
func (f *fakeBackend) WaitGone(_ context.Context, ref string) error {
	return f.record("waitgone %s", ref)
}
func (f *fakeBackend) Destroy(_ context.Context, ref string) error {
	if _, err := f.find(ref); err != nil {
		return err
	}
	return f.record("destroy %s", ref)
}
func (f *fakeBackend) Shutdown(_ context.Context, ref string, o ShutdownOptions) error {
	if _, err := f.find(ref); err != nil {
		return err
	}
	f.mu.Lock()
	f.shut["shutdown "+ref] = o
	f.mu.Unlock()
	return f.record("shutdown %s", ref)
}
func (f *fakeBackend) Reboot(_ context.Context, ref string, o ShutdownOptions) error {
	f.mu.Lock()
	f.shut["reboot "+ref] = o
	f.mu.Unlock()
	return f.record("reboot %s", ref)
}
func (f *fakeBackend) Pause(_ context.Context, ref string) error { return f.record("pause %s", ref) }
func (f *fakeBackend) Unpause(_ context.Context, ref string) error {
	return f.record("unpause %s", ref)
}
func (f *fakeBackend) Save(_ context.Context, ref, path string, o SaveOptions) error {
	f.save = o
	return f.record("save %s %s", ref, path)
}
func (f *fakeBackend) ConsoleTTY(_ context.Context, ref string, o ConsoleOptions) (string, error) {
	f.console = o
	return f.tty, f.record("console %s", ref)
}
func (f *fakeBackend) Events(context.Context, EventsOptions) (EventStream, error) {
	return nil, f.record("events")
}
func (f *fakeBackend) DomID(_ context.Context, name string) (uint32, error) {
	d, err := f.find(name)
	return d.DomID, err
}
func (f *fakeBackend) DomName(_ context.Context, domid uint32) (string, error) {
	d, err := f.find(strconv.FormatUint(uint64(domid), 10))
	return d.Name, err
}
func (f *fakeBackend) Uptime(_ context.Context, ref string) (time.Duration, error) {
	d, err := f.find(ref)
	return time.Duration(d.DomID) * (25*time.Hour + 61*time.Second), err
}
func (f *fakeBackend) SetMemory(_ context.Context, ref string, kb uint64) error {
	f.memKB = kb
	return f.record("mem-set %s", ref)
}
func (f *fakeBackend) SetVCPUs(_ context.Context, ref string, n int) error {
	f.vcpus = n
	return f.record("vcpu-set %s", ref)
}
func (f *fakeBackend) VCPUs(_ context.Context, ref string) ([]libxl.VCPUInfo, error) {
	d, err := f.find(ref)
	if err != nil {
		return nil, err
	}
	var out []libxl.VCPUInfo
	for i := uint32(0); i < d.VCPUsOnline; i++ {
		out = append(out, libxl.VCPUInfo{VCPUID: i, CPU: i, Online: true, Running: i == 0, Blocked: i != 0,
			CPUTime: 1500 * time.Millisecond, Affinity: []int{0, 1, 2, 5}, AffinityAll: false, SoftAffinityAll: true})
	}
	return out, f.record("vcpu-list %s", ref)
}
func (f *fakeBackend) HostInfo(context.Context) (libxl.HostInfo, error) {
	return libxl.HostInfo{Host: "dom0host", NrCPUs: 4, TotalMemoryMB: 4096, FreeMemoryMB: 1024, XenVersion: "4.17.5"}, f.record("hostinfo")
}
func (f *fakeBackend) XenVersion(context.Context) (libxl.VersionInfo, error) {
	return libxl.VersionInfo{Major: 4, Minor: 17, Extra: ".5"}, f.record("version")
}
func (f *fakeBackend) Close() error {
	f.mu.Lock()
	f.closed++
	f.mu.Unlock()
	return nil
}

// runFake runs goxl against f.
func runFake(t *testing.T, f *fakeBackend, args ...string) (int, string, string) {
	t.Helper()
	var out, errw bytes.Buffer
	e := &env{ctx: context.Background(), out: &out, errw: &errw, open: func(*env, openOptions) (Backend, error) { return f, nil }}
	code := e.run(args)
	return code, out.String(), errw.String()
}
