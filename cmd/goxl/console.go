package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// escapeChar (Ctrl-]) leaves the console, as in xl console.
const escapeChar = 0x1d

func cmdConsole(e *env, p *parsed) error {
	opts := ConsoleOptions{Type: p.value("t")}
	if opts.Type != "" && opts.Type != "pv" && opts.Type != "serial" {
		return usageError{fmt.Sprintf("console type %q: want pv or serial", opts.Type)}
	}
	if p.flag("n") {
		n, ok := parseUint(p.value("n"))
		if !ok {
			return usageError{fmt.Sprintf("console number %q: want a number", p.value("n"))}
		}
		opts.Num = n
	}
	return e.withBackend(noResync, func(b Backend) error {
		if e.json {
			tty, err := b.ConsoleTTY(e.ctx, p.args[0], opts)
			if err != nil {
				return err
			}
			return e.result(map[string]string{"domain": p.args[0], "tty": tty})
		}
		return e.attach(b, p.args[0], opts, false)
	})
}

func parseUint(s string) (int, bool) {
	n := 0
	if s == "" || len(s) > 9 {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// consoleWait is how long create -c and restore -c wait for the new
// domain's console to appear (xenconsoled sets it up asynchronously).
var consoleWait = 10 * time.Second

// attach looks up the console's pty and attaches the terminal to it.
func (e *env) attach(b Backend, ref string, opts ConsoleOptions, fresh bool) error {
	tty, err := b.ConsoleTTY(e.ctx, ref, opts)
	deadline := time.Now().Add(consoleWait)
	for fresh && (err != nil || tty == "") && time.Now().Before(deadline) && e.ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		tty, err = b.ConsoleTTY(e.ctx, ref, opts)
	}
	if err != nil {
		return err
	}
	if tty == "" {
		return fmt.Errorf("domain %s has no console pty yet", ref)
	}
	e.progress("attached to %s's console %s; Ctrl-] leaves", ref, tty)
	return attachConsole(e.ctx, tty, e.stdin, e.out)
}

// makeRaw puts a terminal in raw mode (cfmakeraw) and returns what
// restores it. A file that is not a terminal is left alone.
func makeRaw(fd int) (restore func(), err error) {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
		return func() {}, nil
	}
	if err != nil {
		return nil, err
	}
	t := *old
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t); err != nil {
		return nil, err
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETSW, old) }, nil
}

// attachConsole copies in to the console pty at ttyPath and the pty to
// out until in sends Ctrl-], the console closes (the domain is gone), in
// ends, or ctx ends. Both in (when a terminal) and the pty are in raw
// mode meanwhile, as xenconsole does, and are restored on return.
func attachConsole(ctx context.Context, ttyPath string, in *os.File, out io.Writer) error {
	pty, err := unix.Open(ttyPath, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("console %s: %w", ttyPath, err)
	}
	defer unix.Close(pty)
	restorePty, err := makeRaw(pty)
	if err != nil {
		return fmt.Errorf("console %s: raw mode: %w", ttyPath, err)
	}
	defer restorePty()
	inFD := int(in.Fd())
	restoreIn, err := makeRaw(inFD)
	if err != nil {
		return fmt.Errorf("terminal: raw mode: %w", err)
	}
	defer restoreIn()

	buf := make([]byte, 4096)
	fds := []unix.PollFd{{Fd: int32(inFD), Events: unix.POLLIN}, {Fd: int32(pty), Events: unix.POLLIN}}
	for ctx.Err() == nil {
		fds[0].Revents, fds[1].Revents = 0, 0
		if _, err := unix.Poll(fds, 100); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return err
		}
		if fds[1].Revents&(unix.POLLIN|unix.POLLHUP|unix.POLLERR) != 0 {
			n, err := unix.Read(pty, buf)
			if n > 0 {
				if _, werr := out.Write(buf[:n]); werr != nil {
					return werr
				}
			}
			if n == 0 || errors.Is(err, unix.EIO) {
				return nil // the console's other end closed: the domain is gone
			}
			if err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
				return fmt.Errorf("console %s: %w", ttyPath, err)
			}
		}
		if fds[0].Revents&(unix.POLLIN|unix.POLLHUP|unix.POLLERR) != 0 {
			n, err := unix.Read(inFD, buf)
			if n <= 0 {
				if err != nil && (errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR)) {
					continue
				}
				return nil // end of input
			}
			data, leave := buf[:n], false
			for i, c := range data {
				if c == escapeChar {
					data, leave = data[:i], true
					break
				}
			}
			if err := writeAll(pty, data); err != nil {
				return fmt.Errorf("console %s: %w", ttyPath, err)
			}
			if leave {
				return nil
			}
		}
	}
	return nil
}

func writeAll(fd int, data []byte) error {
	for len(data) > 0 {
		n, err := unix.Write(fd, data)
		if err != nil {
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			return err
		}
		data = data[n:]
	}
	return nil
}
