package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goxl/goxl/internal/daemon"
)

// fakeDaemon listens on a socket and answers every request line with
// answer (nil: hangs up without answering, as a killed daemon does).
func fakeDaemon(t *testing.T, answer func() []byte) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "d.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := bufio.NewReader(c).ReadBytes('\n'); err != nil {
					return // the CLI's probe connection
				}
				if b := answer(); b != nil {
					c.Write(b)
				}
			}()
		}
	}()
	return sock
}

func wireAnswer(code, msg string) func() []byte {
	return func() []byte {
		b, _ := json.Marshal(daemon.Response{V: daemon.ProtocolVersion, Done: true, Error: &daemon.WireError{Code: code, Message: msg}})
		return append(b, '\n')
	}
}

// Permission and protocol failures of the daemon's API exit with their
// own documented codes (doc.go, `goxl help`), distinct from a failed
// operation (1), in plain and --json mode.
func TestDaemonErrorsExitCodes(t *testing.T) {
	for _, c := range []struct {
		what   string
		answer func() []byte
		code   int
		kind   string
		says   string
	}{
		{"refused uid", wireAnswer(daemon.CodePermission, "goxl daemon: permission denied: uid 1000 may not use the local API (root only)"), exitPermission, "permission", "root only"},
		{"other protocol version", wireAnswer(daemon.CodeVersion, "goxl daemon: protocol version mismatch: the daemon speaks 2"), exitProtocol, "protocol", "version"},
		{"malformed answer", func() []byte { return []byte("HTTP/1.1 400 Bad Request\n") }, exitProtocol, "protocol", "malformed answer"},
		{"daemon killed mid-request", func() []byte { return nil }, exitDaemonLost, "daemon-lost", "went away"},
		{"daemon stopping", wireAnswer(daemon.CodeShutdown, "goxl daemon: stopping"), exitDaemonLost, "daemon-lost", "stopping"},
		{"operation failed", wireAnswer(daemon.CodeFailed, "libxl_domain_pause: ERROR_FAIL"), exitFailed, "failed", "ERROR_FAIL"},
	} {
		t.Setenv("GOXL_SOCKET", fakeDaemon(t, c.answer))
		t.Setenv("GOXL_NO_DAEMON", "")
		code, _, errw := runGoxl(t, "pause", "g")
		if code != c.code || !strings.Contains(errw, c.says) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d saying %q", c.what, code, errw, c.code, c.says)
		}
		code, out, _ := runGoxl(t, "--json", "pause", "g")
		var doc struct {
			OK    bool `json:"ok"`
			Error struct {
				Code int    `json:"code"`
				Kind string `json:"kind"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.OK || code != c.code || doc.Error.Code != c.code || doc.Error.Kind != c.kind {
			t.Errorf("%s --json: exit %d, %q; want code %d kind %s", c.what, code, out, c.code, c.kind)
		}
	}
}

// events --since N asks the daemon for its numbered events from N and
// prints each with its number, so that a later `events --since <last+1>`
// resumes without a gap or a duplicate.
func TestEventsSinceThroughTheDaemon(t *testing.T) {
	asked := make(chan daemon.Request, 4)
	sock := filepath.Join(t.TempDir(), "d.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, err := bufio.NewReader(c).ReadBytes('\n')
				if err != nil {
					return
				}
				var req daemon.Request
				json.Unmarshal(line, &req)
				asked <- req
				enc := json.NewEncoder(c)
				enc.Encode(daemon.Response{V: daemon.ProtocolVersion, Progress: fmt.Sprintf("events from %d", req.Since)})
				for i := uint64(0); i < 2; i++ {
					ev := daemon.Event{Seq: req.Since + i}
					ev.Name, ev.Kind = "g", "created"
					enc.Encode(daemon.Response{V: daemon.ProtocolVersion, Event: &ev})
				}
				// Then the stream ends as when the daemon is stopped.
				enc.Encode(daemon.Response{V: daemon.ProtocolVersion, Done: true, Error: &daemon.WireError{Code: daemon.CodeShutdown, Message: "goxl daemon: stopping"}})
			}()
		}
	}()
	t.Setenv("GOXL_SOCKET", sock)
	t.Setenv("GOXL_NO_DAEMON", "")
	code, out, errw := runGoxl(t, "events", "--since", "41")
	req := <-asked
	if req.Op != daemon.OpEvents || req.Since != 41 {
		t.Fatalf("the CLI asked %+v, want events since 41", req)
	}
	if code != exitDaemonLost || !strings.Contains(out, "seq=41 ") || !strings.Contains(out, "seq=42 ") || strings.Contains(out, "seq=43") {
		t.Fatalf("events --since 41: exit %d\nstdout %q\nstderr %q", code, out, errw)
	}
	code, out, _ = runGoxl(t, "--json", "events", "--since", "7")
	if req := <-asked; req.Since != 7 || !strings.Contains(out, `"seq":7,`) || code != exitDaemonLost {
		t.Fatalf("--json events --since 7: asked %+v, exit %d, %q", req, code, out)
	}
	if code, _, errw := runGoxl(t, "events", "--since", "x"); code != exitUsage {
		t.Fatalf("events --since x: exit %d %q, want usage", code, errw)
	}
}
