// Command goxl is an xl-like front end to goxl's driver: it manages Xen
// domains from dom0 through libxl, on goxl's event loop.
//
// Usage:
//
//	goxl [--json] [-v] <verb> [args]
//
//	list                      domains, as xl list
//	info <dom>                one domain's state
//	create [-p] [-n] [-F] <cfg>  create from an xl config, or libxl JSON ({...});
//	                          -p paused, -n dry run (parse only), -F stay until the
//	                          domain is gone, honouring on_poweroff/on_reboot/on_crash
//	destroy <dom>
//	shutdown [-w] <dom>       -w waits until it is down
//	reboot <dom>
//	pause <dom> / unpause <dom>
//	save <dom> <file>         xl's save format; the domain is destroyed
//	restore [-p] <file>
//	console <dom>             prints the primary console's pty
//	events                    streams lifecycle events until SIGINT
//
// <dom> is a domid, a name or a UUID. Progress lines go to stderr.
//
// Exit codes: 0 ok; 1 the operation failed; 2 usage error; 3 domain not
// found; 4 not on a Xen dom0 (or libxl unavailable); 5 config error;
// 6 a domain with that name exists; 130 interrupted (SIGINT).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/goxl/goxl/driver"
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
	exitInterrupted = 130
)

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
	json   bool
	logLvl libxl.LogLevel
	// open connects to Xen; tests replace it.
	open func(e *env, resync time.Duration) (*driver.Domains, func(), error)
}

type verb struct {
	usage string
	min   int
	max   int // -1: any
	needs bool
	run   func(e *env, fs *flag.FlagSet, args []string) error
	flags func(fs *flag.FlagSet)
}

var verbs map[string]*verb

func init() {
	verbs = map[string]*verb{
		"list":     {usage: "list", max: 0, run: cmdList},
		"info":     {usage: "info <dom>", min: 1, max: 1, run: cmdInfo},
		"create":   {usage: "create [-p] [-n] [-F] <config>", min: 1, max: 1, run: cmdCreate, flags: createFlags},
		"destroy":  {usage: "destroy <dom>", min: 1, max: 1, run: simple("destroy", (*driver.Domains).Destroy)},
		"shutdown": {usage: "shutdown [-w] <dom>", min: 1, max: 1, run: cmdShutdown, flags: func(fs *flag.FlagSet) { fs.Bool("w", false, "wait until the domain is down") }},
		"reboot":   {usage: "reboot <dom>", min: 1, max: 1, run: simple("reboot", (*driver.Domains).Reboot)},
		"pause":    {usage: "pause <dom>", min: 1, max: 1, run: simple("pause", (*driver.Domains).Pause)},
		"unpause":  {usage: "unpause <dom>", min: 1, max: 1, run: simple("unpause", (*driver.Domains).Unpause)},
		"save":     {usage: "save <dom> <file>", min: 2, max: 2, run: cmdSave},
		"restore":  {usage: "restore [-p] <file>", min: 1, max: 1, run: cmdRestore, flags: func(fs *flag.FlagSet) { fs.Bool("p", false, "leave the domain paused") }},
		"console":  {usage: "console <dom>", min: 1, max: 1, run: cmdConsole},
		"events":   {usage: "events", max: 0, run: cmdEvents},
	}
}

func createFlags(fs *flag.FlagSet) {
	fs.Bool("p", false, "leave the domain paused")
	fs.Bool("n", false, "dry run: parse the config and print it; needs no Xen")
	fs.Bool("F", false, "stay in the foreground until the domain is gone, honouring its on_* actions")
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: goxl [--json] [-v] <verb> [args]\n\nverbs:")
	for _, name := range []string{"list", "info", "create", "destroy", "shutdown", "reboot", "pause", "unpause", "save", "restore", "console", "events"} {
		fmt.Fprintf(w, "  %s\n", verbs[name].usage)
	}
	fmt.Fprintln(w, "\n<dom> is a domid, a name or a UUID.\nexit codes: 0 ok, 1 failed, 2 usage, 3 not found, 4 not on a Xen dom0, 5 config error, 6 name exists, 130 interrupted")
}

// usageError makes run exit with exitUsage.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

// notXenError makes run exit with exitNotXen.
type notXenError struct{ err error }

func (n notXenError) Error() string { return n.err.Error() }
func (n notXenError) Unwrap() error { return n.err }

func run(ctx context.Context, args []string, out, errw io.Writer) int {
	e := &env{ctx: ctx, out: out, errw: errw, open: openXen}
	global := flag.NewFlagSet("goxl", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	global.BoolVar(&e.json, "json", false, "JSON output")
	verbose := global.Bool("v", false, "verbose: libxl's debug messages on stderr")
	if err := global.Parse(args); err != nil {
		fmt.Fprintf(errw, "goxl: %v\n", err)
		usage(errw)
		return exitUsage
	}
	if *verbose {
		e.logLvl = libxl.LogDebug
	}
	rest := global.Args()
	if len(rest) == 0 || rest[0] == "help" || rest[0] == "-h" || rest[0] == "--help" {
		usage(errw)
		if len(rest) == 0 {
			return exitUsage
		}
		return exitOK
	}
	v, ok := verbs[rest[0]]
	if !ok {
		fmt.Fprintf(errw, "goxl: unknown verb %q\n", rest[0])
		usage(errw)
		return exitUsage
	}
	fs := flag.NewFlagSet(rest[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if v.flags != nil {
		v.flags(fs)
	}
	if err := fs.Parse(rest[1:]); err != nil {
		fmt.Fprintf(errw, "goxl %s: %v\nusage: goxl %s\n", rest[0], err, v.usage)
		return exitUsage
	}
	if n := fs.NArg(); n < v.min || (v.max >= 0 && n > v.max) {
		fmt.Fprintf(errw, "goxl %s: wrong number of arguments\nusage: goxl %s\n", rest[0], v.usage)
		return exitUsage
	}
	err := v.run(e, fs, fs.Args())
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(errw, "goxl %s: %v\n", rest[0], err)
	return exitCode(ctx, err)
}

func exitCode(ctx context.Context, err error) int {
	var ue usageError
	var ne notXenError
	var ce *libxl.ConfigError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ne):
		return exitNotXen
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return exitInterrupted
	case errors.Is(err, driver.ErrDomainNotFound), errors.Is(err, libxl.ErrDomainNotFound):
		return exitNotFound
	case errors.Is(err, driver.ErrDomainExists):
		return exitExists
	case errors.As(err, &ce):
		return exitConfig
	}
	return exitFailed
}

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

func openXen(e *env, resync time.Duration) (*driver.Domains, func(), error) {
	if err := checkDom0(); err != nil {
		return nil, nil, err
	}
	logger := slog.New(slog.NewTextHandler(e.errw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if e.logLvl != 0 {
		logger = slog.New(slog.NewTextHandler(e.errw, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	drv, err := driver.New(driver.Options{Logger: logger, LogLevel: e.logLvl})
	if err != nil {
		return nil, nil, notXenError{fmt.Errorf("cannot open libxl: %w", err)}
	}
	doms, err := driver.NewDomains(drv, driver.DomainsOptions{
		Logger: logger, ResyncInterval: resync, PerOperationCtx: true,
		Progress: func(msg string) { fmt.Fprintf(e.errw, "goxl: %s\n", msg) },
	})
	if err != nil {
		drv.Close()
		return nil, nil, err
	}
	return doms, func() { doms.Close(); drv.Close() }, nil
}

func (e *env) connect(resync time.Duration) (*driver.Domains, func(), error) {
	return e.open(e, resync)
}

func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func cmdList(e *env, _ *flag.FlagSet, _ []string) error {
	doms, done, err := e.connect(-1)
	if err != nil {
		return err
	}
	defer done()
	list, err := doms.List()
	if err != nil {
		return err
	}
	if e.json {
		return e.printJSON(list)
	}
	tw := tabwriter.NewWriter(e.out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "Name\tID\tMem\tVCPUs\tState\tTime(s)")
	for _, d := range list {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%.1f\n", d.Name, d.DomID, d.CurrentMemKB/1024, d.VCPUsOnline, d.State(), d.CPUTime.Seconds())
	}
	return tw.Flush()
}

func cmdInfo(e *env, _ *flag.FlagSet, args []string) error {
	doms, done, err := e.connect(-1)
	if err != nil {
		return err
	}
	defer done()
	info, err := doms.Info(args[0])
	if err != nil {
		return err
	}
	if e.json {
		return e.printJSON(info)
	}
	fmt.Fprintf(e.out, "name:     %s\ndomid:    %d\nuuid:     %s\ntype:     %s\nstate:    %s\nmemory:   %d MiB (max %d MiB)\nvcpus:    %d\ncpu time: %.1fs\n",
		info.Name, info.DomID, info.UUIDString, info.Type, info.State(), info.CurrentMemKB/1024, info.MaxMemKB/1024, info.VCPUsOnline, info.CPUTime.Seconds())
	if info.Shutdown {
		fmt.Fprintf(e.out, "shutdown: %s\n", info.ShutdownReason)
	}
	return nil
}

// loadConfig reads an xl config, or libxl JSON if the file starts with '{'.
func loadConfig(path string) (libxl.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if t := strings.TrimSpace(string(data)); strings.HasPrefix(t, "{") {
		cfg := libxl.JSONConfig(t)
		if _, err := cfg.Summary(); err != nil {
			return nil, err
		}
		return cfg, nil
	}
	return libxl.ParseXL(path, data)
}

func flagBool(fs *flag.FlagSet, name string) bool {
	f := fs.Lookup(name)
	return f != nil && f.Value.String() == "true"
}

func cmdCreate(e *env, fs *flag.FlagSet, args []string) error {
	cfg, err := loadConfig(args[0])
	if err != nil {
		return err
	}
	if flagBool(fs, "n") {
		sum, _ := cfg.Summary()
		if e.json {
			return e.printJSON(sum)
		}
		fmt.Fprintf(e.out, "config %s: name %s, type %s, %d MiB, %d vcpus, %d disks, %d nics; on_poweroff=%s on_reboot=%s on_crash=%s\n",
			args[0], sum.Name, sum.Type, sum.MemoryMB, sum.VCPUs, len(sum.Disks), len(sum.Nics), sum.OnPoweroff, sum.OnReboot, sum.OnCrash)
		return nil
	}
	resync := time.Duration(-1)
	if flagBool(fs, "F") {
		resync = 2 * time.Second
	}
	doms, done, err := e.connect(resync)
	if err != nil {
		return err
	}
	defer done()
	d, err := doms.Create(e.ctx, cfg, driver.CreateOptions{Paused: flagBool(fs, "p")})
	if err != nil {
		return err
	}
	if err := e.report(d.Snapshot()); err != nil {
		return err
	}
	if flagBool(fs, "F") {
		fmt.Fprintf(e.errw, "goxl: staying with %s until it is gone (SIGINT to detach)\n", d.Snapshot().Name)
		if _, err := d.WaitState(e.ctx, driver.StateDestroyed, driver.StateSaved); err != nil && e.ctx.Err() == nil {
			return err
		}
	}
	return nil
}

func (e *env) report(s driver.DomainSnapshot) error {
	if e.json {
		return e.printJSON(s)
	}
	fmt.Fprintf(e.out, "%s: domain %d, %s\n", s.Name, s.DomID, s.State)
	return nil
}

func simple(name string, op func(*driver.Domains, context.Context, string) error) func(*env, *flag.FlagSet, []string) error {
	return func(e *env, _ *flag.FlagSet, args []string) error {
		doms, done, err := e.connect(-1)
		if err != nil {
			return err
		}
		defer done()
		if err := op(doms, e.ctx, args[0]); err != nil {
			return err
		}
		if e.json {
			return e.printJSON(map[string]string{"domain": args[0], "done": name})
		}
		return nil
	}
}

func cmdShutdown(e *env, fs *flag.FlagSet, args []string) error {
	doms, done, err := e.connect(-1)
	if err != nil {
		return err
	}
	defer done()
	return doms.Shutdown(e.ctx, args[0], flagBool(fs, "w"))
}

func cmdSave(e *env, _ *flag.FlagSet, args []string) error {
	doms, done, err := e.connect(-1)
	if err != nil {
		return err
	}
	defer done()
	return doms.Save(e.ctx, args[0], args[1])
}

func cmdRestore(e *env, fs *flag.FlagSet, args []string) error {
	if _, err := os.Stat(args[0]); err != nil {
		return err
	}
	doms, done, err := e.connect(-1)
	if err != nil {
		return err
	}
	defer done()
	d, err := doms.Restore(e.ctx, args[0], driver.CreateOptions{Paused: flagBool(fs, "p")})
	if err != nil {
		return err
	}
	return e.report(d.Snapshot())
}

func cmdConsole(e *env, _ *flag.FlagSet, args []string) error {
	doms, done, err := e.connect(-1)
	if err != nil {
		return err
	}
	defer done()
	tty, err := doms.Console(args[0])
	if err != nil {
		return err
	}
	if e.json {
		return e.printJSON(map[string]string{"domain": args[0], "tty": tty})
	}
	fmt.Fprintln(e.out, tty)
	return nil
}

func cmdEvents(e *env, _ *flag.FlagSet, _ []string) error {
	doms, done, err := e.connect(time.Second)
	if err != nil {
		return err
	}
	defer done()
	s := doms.Subscribe(0)
	defer s.Close()
	fmt.Fprintln(e.errw, "goxl: streaming lifecycle events; SIGINT to stop")
	for {
		select {
		case ev, ok := <-s.C():
			if !ok {
				return s.Err()
			}
			if e.json {
				b, _ := json.Marshal(ev)
				fmt.Fprintln(e.out, string(b))
				continue
			}
			line := fmt.Sprintf("%s %-12s domid=%d name=%s state=%s", ev.Time.Format(time.RFC3339Nano), ev.Kind, ev.DomID, ev.Name, ev.State)
			if ev.ReasonName != "" {
				line += " reason=" + ev.ReasonName
			}
			if ev.Action != "" {
				line += " action=" + string(ev.Action)
			}
			fmt.Fprintln(e.out, line)
		case <-e.ctx.Done():
			return nil
		}
	}
}
