package leakcheck

import (
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

func TestDetectsLeakedFD(t *testing.T) {
	s := Take()
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(50 * time.Millisecond); err == nil {
		t.Fatal("an open fd was not reported")
	}
	f.Close()
	if err := s.Wait(time.Second); err != nil {
		t.Fatal(err)
	}
}

// settled takes a snapshot once goroutines of earlier tests have exited,
// so that one exiting late cannot hide a new one.
func settled(t *testing.T) Snapshot {
	prev := -1
	for i := 0; i < 100; i++ {
		n := goroutines()
		if n == prev {
			return Take()
		}
		prev = n
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("goroutine count never settled")
	return Snapshot{}
}

func TestDetectsLeakedGoroutine(t *testing.T) {
	s := settled(t)
	stop := make(chan struct{})
	go func() { <-stop }()
	if err := s.Wait(50 * time.Millisecond); err == nil {
		t.Fatal("a running goroutine was not reported")
	}
	close(stop)
	if err := s.Wait(time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestSignalLoopIsNotALeak(t *testing.T) {
	s := Take()
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGUSR2)
	signal.Stop(c)
	if err := s.Wait(time.Second); err != nil {
		t.Fatal(err)
	}
}
