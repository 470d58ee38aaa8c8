package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/goxl/goxl/driver"
	"github.com/goxl/goxl/internal/daemon"
	"github.com/goxl/goxl/libxl"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitNotFound    = 3
	exitNotXen      = 4
	exitConfig      = 5
	exitExists      = 6
	exitPermission  = 7
	exitProtocol    = 8
	exitDaemonLost  = 9
	exitInterrupted = 130
)

// exitKinds names the exit codes in --json errors.
var exitKinds = map[int]string{
	exitFailed: "failed", exitUsage: "usage", exitNotFound: "not-found", exitNotXen: "not-xen",
	exitConfig: "config", exitExists: "exists", exitPermission: "permission", exitProtocol: "protocol",
	exitDaemonLost: "daemon-lost", exitInterrupted: "interrupted",
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is what the verbs share.
type env struct {
	ctx    context.Context
	out    io.Writer
	errw   io.Writer
	stdin  *os.File
	json   bool
	quiet  bool
	logLvl libxl.LogLevel
	// open connects to Xen; tests replace it with a fake Backend.
	open func(e *env, o openOptions) (Backend, error)
	// wrote is set once a --json document went to stdout.
	wrote bool
}

// openOptions tune how a verb connects.
type openOptions struct {
	// resync is the domain manager's resync interval; negative: none
	// (short-lived verbs), positive for verbs that stay (events, -F).
	resync time.Duration
}

// usageError makes run exit with exitUsage.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

// notXenError makes run exit with exitNotXen.
type notXenError struct{ err error }

func (n notXenError) Error() string { return n.err.Error() }
func (n notXenError) Unwrap() error { return n.err }

// globalOptions come before the verb.
var globalOptions = []option{
	{long: "json", help: "one JSON document on stdout; errors too (see goxl help json)"},
	{short: 'v', long: "verbose", help: "libxl's debug messages on stderr"},
	{short: 'h', long: "help", help: "this help on stdout"},
}

func run(ctx context.Context, args []string, out, errw io.Writer) int {
	e := &env{ctx: ctx, out: out, errw: errw, stdin: os.Stdin, open: openBackend}
	return e.run(args)
}

func (e *env) run(args []string) int {
	// Global options end at the first word that is not one.
	i := 0
	for ; i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "-"; i++ {
		if args[i] == "--" {
			i++
			break
		}
		p, err := parseArgs(globalOptions, args[i:i+1])
		if err != nil {
			topUsage(e.errw)
			return e.fail("", err)
		}
		e.json = e.json || p.flag("json")
		if p.flag("verbose") {
			e.logLvl = libxl.LogDebug
		}
		if p.flag("help") {
			topUsage(e.out)
			return exitOK
		}
	}
	rest := args[i:]
	if len(rest) == 0 {
		topUsage(e.errw)
		return e.fail("", usageError{"no verb given"})
	}
	name := rest[0]
	if name == "help" {
		return e.help(rest[1:])
	}
	v, ok := verbs[name]
	if !ok {
		topUsage(e.errw)
		return e.fail("", usageError{fmt.Sprintf("unknown verb %q", name)})
	}
	p, err := parseArgs(append(append([]option{}, v.opts...), helpOption, jsonOption), rest[1:])
	if err != nil {
		fmt.Fprintf(e.errw, "usage: %s\n", v.synopsis())
		return e.fail(name, err)
	}
	if p.flag("help") {
		v.printHelp(e.out)
		return exitOK
	}
	e.json = e.json || p.flag("json")
	if n := len(p.args); n < v.min || (v.max >= 0 && n > v.max) {
		fmt.Fprintf(e.errw, "usage: %s\n", v.synopsis())
		return e.fail(name, usageError{"wrong number of arguments"})
	}
	if err := v.run(e, p); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(e.errw, "usage: %s\n", v.synopsis())
		}
		return e.fail(name, err)
	}
	return exitOK
}

// help runs `goxl help [verb]`.
func (e *env) help(args []string) int {
	switch {
	case len(args) == 0:
		topUsage(e.out)
		return exitOK
	case args[0] == "json":
		fmt.Fprint(e.out, jsonHelp)
		return exitOK
	}
	v, ok := verbs[args[0]]
	if !ok || len(args) > 1 {
		topUsage(e.errw)
		return e.fail("help", usageError{fmt.Sprintf("no help for %q; run 'goxl help' for the verbs", strings.Join(args, " "))})
	}
	v.printHelp(e.out)
	return exitOK
}

// fail reports err (plainly on stderr; as a JSON error on stdout with
// --json) and returns its exit code.
func (e *env) fail(verb string, err error) int {
	code := exitCode(e.ctx, err)
	prefix := "goxl"
	if verb != "" {
		prefix += " " + verb
	}
	fmt.Fprintf(e.errw, "%s: %v\n", prefix, err)
	if e.json && !e.wrote {
		e.printJSON(map[string]any{"ok": false, "error": map[string]any{"code": code, "kind": exitKinds[code], "message": err.Error()}})
	}
	return code
}

func exitCode(ctx context.Context, err error) int {
	var ue usageError
	var ne notXenError
	var ce *libxl.ConfigError
	var ces libxl.ConfigErrors
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ne):
		return exitNotXen
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return exitInterrupted
	case errors.Is(err, daemon.ErrNotRoot):
		return exitPermission
	case errors.Is(err, daemon.ErrVersion), errors.Is(err, daemon.ErrProtocol):
		return exitProtocol
	case errors.Is(err, daemon.ErrDaemonLost), errors.Is(err, daemon.ErrDaemonStopping):
		return exitDaemonLost
	case errors.Is(err, driver.ErrDomainNotFound), errors.Is(err, libxl.ErrDomainNotFound):
		return exitNotFound
	case errors.Is(err, driver.ErrDomainExists):
		return exitExists
	case errors.Is(err, libxl.ErrConfig), errors.As(err, &ce), errors.As(err, &ces):
		return exitConfig
	}
	return exitFailed
}

func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.out)
	enc.SetIndent("", "  ")
	e.wrote = true
	return enc.Encode(v)
}

// result prints a verb's result with --json: {"ok":true,"result":v}.
func (e *env) result(v any) error {
	return e.printJSON(map[string]any{"ok": true, "result": v})
}

// progress prints a progress line on stderr unless -q.
func (e *env) progress(format string, args ...any) {
	if !e.quiet {
		fmt.Fprintf(e.errw, "goxl: "+format+"\n", args...)
	}
}

func topUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: goxl [--json] [-v] <verb> [options] [args]\n       goxl help [verb]    goxl <verb> -h\n\nverbs:")
	names := make([]string, 0, len(verbs))
	for n := range verbs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, verbs[n].summary)
	}
	fmt.Fprintln(w, "\nglobal options:")
	printOptions(w, globalOptions)
	fmt.Fprintln(w, "\nOptions may follow the arguments (goxl create guest.cfg -p); short flags\ncombine (-pq); -- ends the options. <dom> is a domid, a name or a UUID.\nexit codes: 0 ok, 1 failed, 2 usage, 3 not found, 4 not on a Xen dom0,\n5 config error, 6 name exists, 7 permission denied (the daemon is root only),\n8 protocol error (version mismatch, malformed answer), 9 the daemon went away\nor is stopping, 130 interrupted.")
}

const jsonHelp = `--json (before or after the verb) makes stdout carry exactly one JSON
document:

  {"ok": true, "result": R}          R: the verb's result (goxl help VERB)
  {"ok": false, "error": {"code": C, "kind": K, "message": M}}

C is the exit code; K is one of usage (2), failed (1), not-found (3),
not-xen (4), config (5), exists (6), permission (7), protocol (8),
daemon-lost (9), interrupted (130). The plain message
also goes to stderr, and progress lines stay on stderr.

events --json prints one event object per line instead, and an error
object as its last line if the stream fails.
`

// xenCapabilities is where a dom0 kernel says it is the control domain.
var xenCapabilities = "/proc/xen/capabilities"

// checkDom0 fails with a notXenError when this is not a Xen dom0.
func checkDom0() error {
	b, err := os.ReadFile(xenCapabilities)
	if err != nil {
		return notXenError{fmt.Errorf("not running on a Xen dom0: cannot read %s (%v); goxl needs Xen with xenfs mounted on /proc/xen", xenCapabilities, err)}
	}
	if !strings.Contains(string(b), "control_d") {
		return notXenError{fmt.Errorf("not running in a Xen control domain: %s lacks control_d", xenCapabilities)}
	}
	return nil
}

// openXen opens a driver and a domain manager in this process.
func openXen(e *env, o openOptions) (Backend, error) {
	if err := checkDom0(); err != nil {
		return nil, err
	}
	level := slog.LevelWarn
	if e.logLvl != 0 {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(e.errw, &slog.HandlerOptions{Level: level}))
	drv, err := driver.New(driver.Options{Logger: logger, LogLevel: e.logLvl})
	if err != nil {
		return nil, notXenError{fmt.Errorf("cannot open libxl: %w", err)}
	}
	doms, err := driver.NewDomains(drv, driver.DomainsOptions{
		Logger: logger, ResyncInterval: o.resync, PerOperationCtx: true,
		Progress: func(msg string) { e.progress("%s", msg) },
	})
	if err != nil {
		drv.Close()
		return nil, err
	}
	return newLocalBackend(doms, func() { doms.Close(); drv.Close() }), nil
}

// connect opens the backend for a verb.
func (e *env) connect(resync time.Duration) (Backend, error) {
	return e.open(e, openOptions{resync: resync})
}
