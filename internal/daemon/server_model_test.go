//go:build libxlmodel

package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goxl/goxl/driver"
	"github.com/goxl/goxl/libxl"
)

// openModelDaemon runs a daemon against the contract model of libxl,
// with its socket and locks in a temporary directory.
func openModelDaemon(t *testing.T, mod func(*Options)) (*Daemon, *Client) {
	t.Helper()
	dir := t.TempDir()
	opts := Options{Socket: filepath.Join(dir, "d.sock"), OwnerDir: filepath.Join(dir, "owners"),
		AllowedUIDs: []uint32{uint32(os.Getuid())}, SharedCtx: true, ResyncInterval: -1, StopTimeout: 10 * time.Second}
	if mod != nil {
		mod(&opts)
	}
	d, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	c, err := Dial(opts.Socket)
	if err != nil {
		t.Fatal(err)
	}
	return d, c
}

func goxlConfig(name string) *WireConfig {
	w, _ := EncodeConfig(&libxl.DomainConfig{Name: name, MemoryMB: 64, VCPUs: 1, Kernel: "/k"})
	return w
}

func TestSocketIsRootOnly(t *testing.T) {
	// The daemon makes the socket's directory itself, as on a host
	// without the systemd unit's RuntimeDirectory.
	sock := filepath.Join(t.TempDir(), "run", "goxl.sock")
	d, _ := openModelDaemon(t, func(o *Options) { o.Socket = sock })
	st, err := os.Stat(d.Socket())
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Fatalf("socket mode %o, want 600", perm)
	}
	// Its directory is reachable by everyone: a non-root client must get
	// to the socket to be refused plainly (exit 7), not find no daemon
	// and run in-process.
	dir, err := os.Stat(filepath.Dir(sock))
	if err != nil {
		t.Fatal(err)
	}
	if perm := dir.Mode().Perm(); perm != 0o755 {
		t.Fatalf("the socket's directory has mode %o, want 755", perm)
	}
}

// A client whose uid is not allowed is refused by the peer-credential
// check, with a clear typed error, even though it could connect.
func TestPeerCredentialsRefuseOtherUsers(t *testing.T) {
	_, c := openModelDaemon(t, func(o *Options) { o.AllowedUIDs = []uint32{uint32(os.Getuid()) + 4242} })
	var out []libxl.DomainInfo
	err := c.Do(context.Background(), Request{Op: OpList}, &out)
	if !errors.Is(err, ErrNotRoot) || !strings.Contains(err.Error(), "root only") {
		t.Fatalf("list as a refused uid: %v, want ErrNotRoot saying root only", err)
	}
}

func TestVersionMismatchIsRefused(t *testing.T) {
	d, _ := openModelDaemon(t, nil)
	conn, err := net.Dial("unix", d.Socket())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintln(conn, `{"v":99,"op":"list"}`)
	var resp Response
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&resp); err != nil {
		t.Fatal(err)
	}
	if !resp.Done || resp.Error == nil || resp.Error.Code != CodeVersion {
		t.Fatalf("answer %+v, want a version error", resp)
	}
}

// Every lifecycle verb through the daemon, and the typed errors a CLI
// maps to its exit codes.
func TestVerbsThroughTheDaemon(t *testing.T) {
	_, c := openModelDaemon(t, nil)
	ctx := context.Background()
	var snap driver.DomainSnapshot
	if err := c.Do(ctx, Request{Op: OpCreate, Config: goxlConfig("g1"), Paused: true}, &snap); err != nil {
		t.Fatal(err)
	}
	if snap.DomID == 0 || snap.State != driver.StatePaused || !snap.Owned {
		t.Fatalf("create answered %+v", snap)
	}
	ref := fmt.Sprint(snap.DomID)
	for _, op := range []string{OpUnpause, OpPause, OpUnpause} {
		if err := c.Do(ctx, Request{Op: op, Dom: ref}, nil); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
	}
	var list []libxl.DomainInfo
	if err := c.Do(ctx, Request{Op: OpList}, &list); err != nil || len(list) != 2 {
		t.Fatalf("list: %v %v", list, err)
	}
	var owned []OwnedDomain
	if err := c.Do(ctx, Request{Op: OpDomains}, &owned); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, o := range owned {
		found = found || (o.DomID == snap.DomID && o.Owner == "daemon")
	}
	if !found {
		t.Fatalf("domains: %+v, want g1 owned by the daemon", owned)
	}
	if err := c.Do(ctx, Request{Op: OpCreate, Config: goxlConfig("g1")}, nil); !errors.Is(err, driver.ErrDomainExists) {
		t.Fatalf("second create of g1: %v, want ErrDomainExists", err)
	}
	if err := c.Do(ctx, Request{Op: OpDestroy, Dom: ref}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, Request{Op: OpPause, Dom: "no-such-domain"}, nil); !errors.Is(err, driver.ErrDomainNotFound) {
		t.Fatalf("pause of an unknown domain: %v, want ErrDomainNotFound", err)
	}
	bad := &WireConfig{Format: "libxl-json", JSON: `{"c_info": {"type": `}
	var ce *libxl.ConfigError
	if err := c.Do(ctx, Request{Op: OpCreate, Config: bad}, nil); !errors.As(err, &ce) {
		t.Fatalf("create from malformed libxl JSON: %v, want a *libxl.ConfigError", err)
	}
}

// Two clients at once: creates and queries interleave, each gets its
// own answer.
func TestTwoClientsAtOnce(t *testing.T) {
	_, c := openModelDaemon(t, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var snap driver.DomainSnapshot
			name := fmt.Sprintf("two%d", i)
			if err := c.Do(ctx, Request{Op: OpCreate, Config: goxlConfig(name)}, &snap); err != nil {
				errs <- err
				return
			}
			if snap.Name != name {
				errs <- fmt.Errorf("asked %s, answered %s", name, snap.Name)
				return
			}
			for j := 0; j < 20; j++ {
				var list []libxl.DomainInfo
				if err := c.Do(ctx, Request{Op: OpList}, &list); err != nil {
					errs <- err
					return
				}
			}
			errs <- c.Do(ctx, Request{Op: OpDestroy, Dom: fmt.Sprint(snap.DomID)}, nil)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// A subscriber that asks for events from a sequence number gets each
// event from there once, in order; a later one resumes after the last
// it saw.
func TestEventsStartWhereAsked(t *testing.T) {
	_, c := openModelDaemon(t, nil)
	ctx := context.Background()
	var h Hello
	if err := c.Do(ctx, Request{Op: OpHello}, &h); err != nil {
		t.Fatal(err)
	}
	start := h.NextSeq
	var snap driver.DomainSnapshot
	if err := c.Do(ctx, Request{Op: OpCreate, Config: goxlConfig("ev1")}, &snap); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, Request{Op: OpDestroy, Dom: fmt.Sprint(snap.DomID)}, nil); err != nil {
		t.Fatal(err)
	}
	read := func(since uint64, n int) []Event {
		var got []Event
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		c.Call(sctx, Request{Op: OpEvents, Since: since}, func(e Event) bool {
			got = append(got, e)
			return len(got) < n
		})
		return got
	}
	all := read(start, 2)
	if len(all) != 2 || all[0].Seq != start || all[1].Seq != start+1 || all[0].Kind != "created" {
		t.Fatalf("events from %d: %+v", start, all)
	}
	rest := read(all[0].Seq+1, 1)
	if len(rest) != 1 || rest[0].Seq != all[1].Seq || rest[0].Kind != all[1].Kind {
		t.Fatalf("resumed after %d: %+v, want %+v", all[0].Seq, rest, all[1])
	}
}

// A name marked "building" by a builder that died is destroyed by the
// next daemon, and its lock file removed.
func TestHalfBuiltDomainIsDestroyedOnStart(t *testing.T) {
	dir := t.TempDir()
	owners := filepath.Join(dir, "owners")
	d1, c := openModelDaemon(t, func(o *Options) { o.OwnerDir = owners })
	var snap driver.DomainSnapshot
	if err := c.Do(context.Background(), Request{Op: OpCreate, Config: goxlConfig("half")}, &snap); err != nil {
		t.Fatal(err)
	}
	// As if the create had been cut short before the domain was
	// recorded: the lock file says building, nobody holds it.
	claim := d1.keeper.owners.Held("half")
	if claim == nil {
		t.Fatal("no claim on half")
	}
	claim.Building()
	d1.keeper.domIDByName = func(name string) (uint32, error) {
		if name == "half" {
			return snap.DomID, nil
		}
		return 0, libxl.ErrDomainNotFound
	}
	recovered := d1.keeper.recoverAsIfRestarted(context.Background())
	if len(recovered) != 1 || recovered[0].Action != "destroyed half-built" || recovered[0].DomID != snap.DomID {
		t.Fatalf("recover: %+v, want half (domain %d) destroyed", recovered, snap.DomID)
	}
	if _, err := d1.drv.Ctx().DomainInfo(snap.DomID); !errors.Is(err, libxl.ErrDomainNotFound) {
		t.Fatalf("half-built domain still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(owners, "half.lock")); !os.IsNotExist(err) {
		t.Fatalf("lock file of half still there: %v", err)
	}
}

// A client's kept connection (Dial keeps it for the first request) that
// has sent nothing holds up no stop: Stop closes it at once instead of
// waiting out StopTimeout (10 s here).
func TestStopClosesIdleConnections(t *testing.T) {
	d, c := openModelDaemon(t, nil)
	defer c.Close()
	// c's kept connection must be waiting for its request before Stop:
	// a connection whose handler has not started yet is refused by the
	// stopping check instead, and Stop would be quick without the sweep.
	// (Accepting in order is not enough: the handler goroutines of two
	// accepted connections run in any order.)
	deadline := time.Now().Add(10 * time.Second)
	for {
		d.idleMu.Lock()
		waiting := len(d.idle)
		d.idleMu.Unlock()
		if waiting == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections waiting for a request, want 1 (Dial's kept connection)", waiting)
		}
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Stop took %v with one idle client connection", took)
	}
}
