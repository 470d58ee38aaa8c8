package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Client talks to a daemon: one connection per request.
type Client struct {
	Socket string
	// Progress, if set, receives the daemon's progress lines.
	Progress func(msg string)

	mu sync.Mutex
	// spare is Dial's connection, kept for the first request: a CLI verb
	// connects once (a connect and an accept cost milliseconds in dom0
	// under emulation, where goxl list takes about 200 ms in all).
	spare   net.Conn
	spareAt time.Time
}

// spareFor is how long the spare connection is used: the daemon drops a
// connection that sends no request within 30 s.
const spareFor = 10 * time.Second

// Dial checks that a daemon answers on socket (DefaultSocket if empty).
// It fails with ErrNoDaemon when nothing listens there, and with
// ErrNotRoot when the socket refuses this user.
func Dial(socket string) (*Client, error) {
	if socket == "" {
		socket = DefaultSocket
	}
	c := &Client{Socket: socket}
	conn, err := c.connect()
	if err != nil {
		return nil, err
	}
	c.spare, c.spareAt = conn, time.Now()
	return c, nil
}

// Close closes the connection Dial kept, if no request used it.
func (c *Client) Close() error {
	c.mu.Lock()
	conn := c.spare
	c.spare = nil
	c.mu.Unlock()
	if conn != nil {
		return conn.Close()
	}
	return nil
}

func (c *Client) connect() (net.Conn, error) {
	c.mu.Lock()
	conn, at := c.spare, c.spareAt
	c.spare = nil
	c.mu.Unlock()
	if conn != nil {
		if time.Since(at) < spareFor {
			return conn, nil
		}
		conn.Close()
	}
	conn, err := net.DialTimeout("unix", c.Socket, 5*time.Second)
	if err == nil {
		return conn, nil
	}
	switch {
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return nil, fmt.Errorf("%w (%s is mode 0600; run goxl as root)", ErrNotRoot, c.Socket)
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return nil, fmt.Errorf("%w (%s: %v)", ErrNoDaemon, c.Socket, err)
	}
	return nil, err
}

// Call sends req and returns the result line's payload. Progress lines go
// to c.Progress, events to onEvent (which returns false to stop). ctx
// ending closes the connection, which cancels the operation in the
// daemon.
func (c *Client) Call(ctx context.Context, req Request, onEvent func(Event) bool) (json.RawMessage, error) {
	req.V = ProtocolVersion
	conn, err := c.connect()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	b, _ := json.Marshal(req)
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return nil, c.lost(ctx, req, err)
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return nil, c.lost(ctx, req, err)
		}
		var resp Response
		if err := json.Unmarshal(line, &resp); err != nil {
			return nil, fmt.Errorf("%w: malformed answer: %v", ErrProtocol, err)
		}
		switch {
		case resp.Done && resp.Error != nil:
			return nil, resp.Error.toError()
		case resp.Done:
			return resp.Result, nil
		case resp.Event != nil:
			if onEvent != nil && !onEvent(*resp.Event) {
				return nil, nil
			}
		case resp.Progress != "" && c.Progress != nil:
			c.Progress(resp.Progress)
		}
	}
}

// lost explains a connection that ended without an answer.
func (c *Client) lost(ctx context.Context, req Request, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return fmt.Errorf("%s: %w", req.Op, ErrDaemonLost)
	}
	return fmt.Errorf("%s: %w (%v)", req.Op, ErrDaemonLost, err)
}

// Do is Call for requests with a result, decoded into out (may be nil).
func (c *Client) Do(ctx context.Context, req Request, out any) error {
	raw, err := c.Call(ctx, req, nil)
	if err != nil || out == nil || raw == nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

// SocketAnswers says whether a daemon listens on socket: the CLI's
// choice between the daemon and in-process mode. A socket that exists
// but refuses this user counts as answering (the caller reports
// ErrNotRoot rather than running in-process).
func SocketAnswers(socket string) (bool, error) {
	if socket == "" {
		socket = DefaultSocket
	}
	if _, err := os.Stat(socket); err != nil {
		return false, nil
	}
	_, err := Dial(socket)
	if errors.Is(err, ErrNoDaemon) {
		return false, nil
	}
	return err == nil || errors.Is(err, ErrNotRoot), err
}
