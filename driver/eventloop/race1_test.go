package eventloop

import (
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goxl/goxl/internal/osevent"
)

// race1Claim is what README.md (race 1) and doc.go say about a deregister
// racing a delivery; TestRace1ClaimIsTheDocsClaim keeps the two texts the
// same, and the other TestRace1 tests check each sentence.
const race1Claim = "Registration IDs are never reused. The dispatcher re-checks a " +
	"registration's liveness immediately before each Sink call, so a deregister " +
	"hook that returned before that check prevents the delivery. A deregister that " +
	"lands between the check and the Sink call cannot be waited for (its thread " +
	"holds libxl's ctx lock, which the Sink call may need): that occurred_* call " +
	"still starts, and the osevent.Liveness it is given answers StillLive() == false " +
	"from the moment the deregister hook returned."

var spaces = regexp.MustCompile(`\s+`)

func normaliseDoc(s string) string {
	s = strings.ReplaceAll(s, "`", "")
	s = strings.ReplaceAll(s, "\n//", "\n")
	return strings.TrimSpace(spaces.ReplaceAllString(s, " "))
}

func TestRace1ClaimIsTheDocsClaim(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	item := regexp.MustCompile(`(?s)1\. \*\*A delivery after deregistration\.\*\*(.*?)\n2\. \*\*`).FindSubmatch(readme)
	if item == nil {
		t.Fatal("README.md has no race 1 item (\"1. **A delivery after deregistration.**\")")
	}
	if got := normaliseDoc(string(item[1])); got != race1Claim {
		t.Errorf("README.md race 1 says:\n  %s\nwhat the loop guarantees (and its tests check) is:\n  %s", got, race1Claim)
	}
	if !strings.Contains(normaliseDoc(string(doc)), race1Claim) {
		t.Errorf("doc.go does not state the race 1 guarantee in the README's words:\n  %s", race1Claim)
	}
}

// countingSink counts fd deliveries per cookie and lets a test hold a
// delivery (hold returns what to do before returning).
type countingSink struct {
	mu    sync.Mutex
	fds   map[osevent.ForLibxl]int
	live  map[osevent.ForLibxl][]bool
	onFD  func(k osevent.ForLibxl, fd int)
	tos   atomic.Int64
	calls atomic.Int64
}

func newCountingSink() *countingSink {
	return &countingSink{fds: map[osevent.ForLibxl]int{}, live: map[osevent.ForLibxl][]bool{}}
}

func (s *countingSink) OccurredFD(k osevent.ForLibxl, fd int, _, _ osevent.PollEvents, live osevent.Liveness) {
	s.calls.Add(1)
	s.mu.Lock()
	s.fds[k]++
	s.live[k] = append(s.live[k], live.StillLive())
	f := s.onFD
	s.mu.Unlock()
	if f != nil {
		f(k, fd)
	}
}

func (s *countingSink) OccurredTimeout(osevent.ForLibxl, osevent.Liveness) { s.tos.Add(1) }

func (s *countingSink) count(k osevent.ForLibxl) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fds[k]
}

// "a deregister hook that returned before that check prevents the
// delivery": two fds ready in one batch; while the first delivery is
// held, another thread deregisters the second, which is never delivered.
func TestRace1DeregisterBeforeCheckPreventsDelivery(t *testing.T) {
	l := newLoop(t, Options{})
	sink := newCountingSink()
	b := l.Attach(sink)
	hold := newParkingSink(1)
	first := make(chan osevent.ForLibxl, 1)
	release := make(chan struct{})
	var once sync.Once
	sink.onFD = func(k osevent.ForLibxl, fd int) {
		var buf [8]byte
		switch k {
		case 1:
			hold.OccurredFD(k, fd, 0, 0, nil)
		case 2, 3:
			once.Do(func() {
				first <- k
				<-release
			})
			unix.Read(fd, buf[:])
		}
	}
	blk := eventfd(t, 1)
	defer unix.Close(blk)
	blkID, err := b.FDRegister(blk, pIn, 1)
	if err != nil {
		t.Fatal(err)
	}
	<-hold.entered // the dispatcher is held: the next two fds share a batch
	efds := map[osevent.ForLibxl]int{2: eventfd(t, 1), 3: eventfd(t, 1)}
	ids := map[osevent.ForLibxl]osevent.RegID{}
	for k, fd := range efds {
		defer unix.Close(fd)
		if ids[k], err = b.FDRegister(fd, pIn, k); err != nil {
			t.Fatal(err)
		}
	}
	close(hold.release)
	k := <-first
	other := osevent.ForLibxl(5 - k)
	b.FDDeregister(efds[other], ids[other]) // returns before the other's check
	close(release)
	waitFor(t, "the batch", 5*time.Second, func() bool { return b.Stats().StaleDropped > 0 || sink.count(other) > 0 })
	if n := sink.count(other); n != 0 {
		t.Errorf("a registration deregistered before its liveness check was delivered %d times", n)
	}
	b.FDDeregister(efds[k], ids[k])
	b.FDDeregister(blk, blkID)
	if err := b.CloseGate(); err != nil {
		t.Fatal(err)
	}
	b.Reap()
	b.Detach()
}

// "that occurred_* call still starts, and the osevent.Liveness it is given
// answers StillLive() == false from the moment the deregister hook
// returned": the trace of the delivery is emitted after the check and
// before the Sink call; a deregister made and returned there, on another
// thread, does not stop the call, and StillLive answers false in it.
func TestRace1DeregisterAfterCheckSeesNotLive(t *testing.T) {
	var b *Binding
	var target atomic.Uint64
	var targetFD atomic.Int64
	var deregistered atomic.Int64
	l := newLoop(t, Options{Trace: func(ev TraceEvent) {
		if ev.Op == OpOccurredFD && uint64(ev.Reg) == target.Load() && deregistered.Load() == 0 {
			done := make(chan struct{})
			go func() {
				defer close(done)
				b.FDDeregister(int(targetFD.Load()), ev.Reg)
			}()
			<-done
			deregistered.Add(1)
		}
	}})
	sink := newCountingSink()
	b = l.Attach(sink)
	efd := eventfd(t, 1)
	defer unix.Close(efd)
	targetFD.Store(int64(efd))
	// Registered with events 0, so that the trace knows the ID before
	// the first delivery is decided.
	id, err := b.FDRegister(efd, 0, 7)
	if err != nil {
		t.Fatal(err)
	}
	target.Store(uint64(id))
	if err := b.FDModify(efd, id, pIn); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the Sink call", 5*time.Second, func() bool { return sink.count(7) > 0 })
	time.Sleep(10 * time.Millisecond) // no second one may follow
	sink.mu.Lock()
	lives := sink.live[7]
	sink.mu.Unlock()
	if deregistered.Load() != 1 || len(lives) != 1 || lives[0] {
		t.Errorf("deregistered between check and Sink call: %d deregisters, Sink calls answering StillLive %v; want 1, [false]", deregistered.Load(), lives)
	}
	if err := b.CloseGate(); err != nil {
		t.Fatal(err)
	}
	b.Reap()
	b.Detach()
}
