package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPty opens a pty pair from /dev/ptmx: the master, and the slave's
// path and an open slave.
func openPty(t *testing.T) (master *os.File, slavePath string, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pty: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slavePath = fmt.Sprintf("/dev/pts/%d", n)
	s, err := os.OpenFile(slavePath, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, slavePath, s
}

// readUntil reads from f until want arrived or a deadline passes.
func readUntil(t *testing.T, f *os.File, want string) string {
	t.Helper()
	var got bytes.Buffer
	buf := make([]byte, 256)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(got.String(), want) && time.Now().Before(deadline) {
		f.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, _ := f.Read(buf)
		got.Write(buf[:n])
	}
	return got.String()
}

func termios(t *testing.T, f *os.File) unix.Termios {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return *tio
}

// The console attaches a terminal (one pty pair: the user's side) to a
// console pty (another pair: xenconsoled's side): bytes flow both ways,
// raw (no echo, no line buffering), Ctrl-] leaves, and both terminals
// get their settings back.
func TestConsoleAttachThroughPty(t *testing.T) {
	userMaster, _, userTerm := openPty(t)
	consMaster, consPath, consSlave := openPty(t)
	before, consBefore := termios(t, userTerm), termios(t, consSlave)
	if before.Lflag&unix.ICANON == 0 || before.Lflag&unix.ECHO == 0 {
		t.Fatalf("a fresh pty should be canonical with echo: lflag %#x", before.Lflag)
	}

	done := make(chan error, 1)
	go func() { done <- attachConsole(context.Background(), consPath, userTerm, userTerm) }()

	// Raw mode on the user's terminal: a keystroke without a newline
	// reaches the console at once, and is not echoed locally.
	deadline := time.Now().Add(10 * time.Second)
	for termios(t, userTerm).Lflag&unix.ICANON != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if tio := termios(t, userTerm); tio.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) != 0 || tio.Iflag&unix.ICRNL != 0 {
		t.Fatalf("terminal not raw while attached: lflag %#x iflag %#x", tio.Lflag, tio.Iflag)
	}
	userMaster.Write([]byte("ls\r"))
	if got := readUntil(t, consMaster, "ls\r"); !strings.Contains(got, "ls\r") {
		t.Fatalf("console got %q, want the keystrokes", got)
	}
	consMaster.Write([]byte("guest says hi\r\n"))
	if got := readUntil(t, userMaster, "guest says hi"); !strings.Contains(got, "guest says hi\r\n") {
		t.Fatalf("terminal got %q, want the guest's output", got)
	}
	// Ctrl-] leaves; what precedes it in the same read still goes out.
	userMaster.Write([]byte("x\x1dnot-sent"))
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Ctrl-] did not leave the console")
	}
	if got := readUntil(t, consMaster, "x"); !strings.Contains(got, "x") || strings.Contains(got, "not-sent") || strings.Contains(got, "\x1d") {
		t.Errorf("console got %q after Ctrl-]", got)
	}
	if after := termios(t, userTerm); after != before {
		t.Errorf("terminal settings not restored:\n before %+v\n after  %+v", before, after)
	}
	if after := termios(t, consSlave); after != consBefore {
		t.Errorf("console pty settings not restored")
	}
}

// The console ends (and restores the terminal) when the console's other
// end closes: the domain is gone.
func TestConsoleEndsWhenConsoleCloses(t *testing.T) {
	userMaster, _, userTerm := openPty(t)
	consMaster, consPath, consSlave := openPty(t)
	before := termios(t, userTerm)
	done := make(chan error, 1)
	go func() { done <- attachConsole(context.Background(), consPath, userTerm, userTerm) }()
	consMaster.Write([]byte("bye\r\n"))
	readUntil(t, userMaster, "bye")
	consSlave.Close()
	consMaster.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the console did not end when its pty closed")
	}
	if after := termios(t, userTerm); after != before {
		t.Error("terminal settings not restored")
	}
}

// goxl console reaches attachConsole with the options of -t and -n, and
// --json prints the pty without attaching.
func TestConsoleVerb(t *testing.T) {
	userMaster, _, userTerm := openPty(t)
	_, consPath, _ := openPty(t)
	f := newFake()
	f.tty = consPath
	var errw bytes.Buffer
	e := &env{ctx: context.Background(), out: userTerm, errw: &errw, stdin: userTerm, open: func(*env, openOptions) (Backend, error) { return f, nil }}
	done := make(chan int, 1)
	go func() { done <- e.run([]string{"console", "web", "-t", "serial", "-n1"}) }()
	deadline := time.Now().Add(10 * time.Second)
	for termios(t, userTerm).Lflag&unix.ICANON != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	userMaster.Write([]byte{escapeChar})
	select {
	case code := <-done:
		if code != exitOK || f.console != (ConsoleOptions{Type: "serial", Num: 1}) {
			t.Errorf("exit %d, options %+v, stderr %q", code, f.console, errw.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("console did not leave on Ctrl-]")
	}
	code, js, _ := runFake(t, f, "console", "--json", "db")
	if e := decode(t, js); code != exitOK || !strings.Contains(string(e.Result), consPath) {
		t.Errorf("console --json: %d %q", code, js)
	}
}

// create -c and restore -c attach to the new domain's console.
func TestCreateAndRestoreAttachConsole(t *testing.T) {
	cfg := writeCfg(t, guestCfg)
	save := writeCfg(t, "not really a save file")
	for _, tc := range []struct {
		args []string
		dom  string
	}{
		{[]string{"create", cfg, "-c"}, "g"},
		{[]string{"restore", "-c", save}, "restored"},
	} {
		userMaster, _, userTerm := openPty(t)
		consMaster, consPath, _ := openPty(t)
		f := newFake()
		f.tty = consPath
		var out lockedBuffer
		var errw bytes.Buffer
		e := &env{ctx: context.Background(), out: &out, errw: &errw, stdin: userTerm, open: func(*env, openOptions) (Backend, error) { return f, nil }}
		done := make(chan int, 1)
		go func() { done <- e.run(tc.args) }()
		deadline := time.Now().Add(10 * time.Second)
		for termios(t, userTerm).Lflag&unix.ICANON != 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		consMaster.Write([]byte("booting\r\n"))
		deadline = time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), "booting") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		userMaster.Write([]byte{escapeChar})
		select {
		case code := <-done:
			if code != exitOK || !strings.Contains(out.String(), "booting") || f.calls[len(f.calls)-1] != "console "+tc.dom {
				t.Errorf("%q: exit %d, stdout %q, calls %q, stderr %q", tc.args, code, out.String(), f.calls, errw.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%q did not leave the console on Ctrl-]", tc.args)
		}
	}
}

// lockedBuffer is a bytes.Buffer safe to read while a verb writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
