//go:build cgo

package goxl

import (
	"strings"
	"sync"
	"testing"
	"time"
)

type recordingSink struct {
	mu   sync.Mutex
	msgs []string
}

func (s *recordingSink) Log(level, errnoval int, context, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, msg)
}

func (s *recordingSink) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}

// libxl logs through the ctx's logger from the children it forks. In a
// forked copy of the Go process the logger writes the message to stderr
// in C and never enters Go; in the process that made it, messages reach
// the sink.
func TestForkedChildLogsToStderrWithoutEnteringGo(t *testing.T) {
	sink := &recordingSink{}
	logger, token, err := NewLogger(sink, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer token.Release()
	defer destroyLogger(logger)

	logHere(logger, 8, "from the parent")
	if got := sink.all(); len(got) != 1 || got[0] != "from the parent" {
		t.Fatalf("the parent's message did not reach the sink: %q", got)
	}
	for _, progress := range []bool{false, true} {
		msg := "from the forked child"
		stderr, ok, err := forkedChildLog(logger, 8, msg, progress, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Fatalf("progress=%v: the child did not exit 0 within the bound (stderr %q): it entered Go in a forked process", progress, stderr)
		}
		if !strings.Contains(stderr, msg) || !strings.Contains(stderr, "forked child, pid") {
			t.Fatalf("progress=%v: the child's message is not on its stderr: %q", progress, stderr)
		}
	}
	if got := sink.all(); len(got) != 1 {
		t.Fatalf("the sink got messages it should not have: %q", got)
	}
}
