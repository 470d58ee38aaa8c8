package daemon

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// The event log's numbering across daemon restarts. The daemon keeps its
// events in memory, but their numbers must never go back: a subscriber
// that resumes with since = last seen + 1 after a daemon restart must be
// told plainly that the events it missed are gone, never be handed a
// different event under a number it already saw.
//
// <state dir>/events.seq holds {"next": N, "clean": bool}. While the
// daemon runs it holds a reservation: a number above every number handed
// out (written before the numbers are used, a block at a time), with
// clean false. A clean stop writes the exact next number with clean
// true. A new daemon starts numbering at N: right after the last event
// of a daemon that stopped cleanly, or above every number a killed one
// may have used (the numbers in between were never used).

// seqFile is the state file's name.
const seqFile = "events.seq"

type seqState struct {
	Next  uint64 `json:"next"`
	Clean bool   `json:"clean"`
}

// seqStore persists the event log's numbering.
type seqStore struct{ path string }

// load returns where numbering starts: 1 when there is no state yet.
func (s seqStore) load() (seqState, error) {
	b, err := os.ReadFile(s.path)
	if os.IsNotExist(err) {
		return seqState{Next: 1, Clean: true}, nil
	}
	if err != nil {
		return seqState{}, err
	}
	var st seqState
	if err := json.Unmarshal(b, &st); err != nil || st.Next == 0 {
		return seqState{}, fmt.Errorf("goxl daemon: %s is damaged (%q): remove it to number events from 1 again", s.path, b)
	}
	return st, nil
}

// store writes st atomically (a reader never sees half a file).
func (s seqStore) store(st seqState) error {
	b, _ := json.Marshal(st)
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, s.path)
}

// newSeqStore keeps the numbering in dir, the socket's directory. It is
// created 0755 like the daemon's runtime directory (the unit's
// RuntimeDirectoryMode): a non-root client must reach the socket to be
// told plainly that it is refused, rather than find no daemon and fall
// back to in-process mode. The file itself is 0600.
func newSeqStore(dir string) (seqStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return seqStore{}, err
	}
	return seqStore{path: filepath.Join(dir, seqFile)}, nil
}
