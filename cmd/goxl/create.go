package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/goxl/goxl/libxl"
)

// loadConfig reads a config through libxl.LoadConfigFile: xl's format
// (goxl's parser, xl's own for keys goxl does not map), libxl JSON, or
// xl list -l output. overrides are xl config lines applied after the
// file, as xl's trailing key=value arguments (the last assignment wins).
// path "" means the config is the overrides alone. A file that cannot be
// read is an I/O error (exit 1); everything else wrong is a config error
// (exit 5).
func loadConfig(path string, overrides []string) (libxl.Config, error) {
	opts := libxl.LoadOptions{Overrides: overrides}
	if path == "" {
		cfg, err := libxl.LoadConfig("<command line>", nil, opts)
		return checkedConfig("<command line>", cfg, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if t := strings.TrimSpace(string(data)); len(overrides) > 0 && (strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[")) {
		return nil, usageError{fmt.Sprintf("%s is libxl JSON: key=value overrides need an xl config", path)}
	}
	cfg, err := libxl.LoadConfigFile(path, opts)
	return checkedConfig(path, cfg, err)
}

// checkedConfig makes every config problem a config error (exit 5): a
// parse error, and a config that parses but cannot be used (no name, a
// bad type), which libxl reports as a plain error.
func checkedConfig(name string, cfg libxl.Config, err error) (libxl.Config, error) {
	if errors.Is(err, libxl.ErrNotSupported) {
		// An xl config in a goxl without cgo: libxlutil parses it, in
		// the cgo goxl (handOff does not return when it can exec it).
		if herr := handOff("an xl config"); herr != nil {
			return nil, herr
		}
	}
	if err == nil {
		_, err = cfg.Summary()
	}
	if err == nil {
		return cfg, nil
	}
	var ce *libxl.ConfigError
	var ces libxl.ConfigErrors
	if errors.Is(err, libxl.ErrConfig) || errors.As(err, &ce) || errors.As(err, &ces) || errors.Is(err, libxl.ErrNotSupported) {
		return nil, err
	}
	return nil, &libxl.ConfigError{File: name, Msg: err.Error()}
}

func cmdCreate(e *env, p *parsed) error {
	e.quiet = p.flag("q")
	if p.flag("c") && e.json {
		return usageError{"-c attaches a terminal: it does not mix with --json"}
	}
	path := p.value("f")
	args := p.args
	if !p.flag("f") {
		path = ""
		if len(args) > 0 && !strings.Contains(args[0], "=") {
			path, args = args[0], args[1:]
		}
	}
	for _, a := range args {
		if !strings.Contains(a, "=") {
			return usageError{fmt.Sprintf("%q: after the config file, only key=value overrides", a)}
		}
	}
	if path == "" && len(args) == 0 {
		return usageError{"no config file given"}
	}
	cfg, err := loadConfig(path, args)
	if err != nil {
		return err
	}
	if p.flag("n") {
		sum, err := cfg.Summary()
		if err != nil {
			return err
		}
		if e.json {
			return e.result(sum)
		}
		fmt.Fprintf(e.out, "config %s: name %s, type %s, %d MiB, %d vcpus, %d disks, %d nics; on_poweroff=%s on_reboot=%s on_crash=%s\n",
			path, sum.Name, sum.Type, sum.MemoryMB, sum.VCPUs, len(sum.Disks), len(sum.Nics), sum.OnPoweroff, sum.OnReboot, sum.OnCrash)
		return nil
	}
	resync := noResync
	if p.flag("F") {
		resync = 2 * time.Second
	}
	b, err := e.connect(resync)
	if err != nil {
		return err
	}
	defer b.Close()
	s, err := b.Create(e.ctx, cfg, CreateOptions{Paused: p.flag("p"), NoMonitor: p.flag("e")})
	if err != nil {
		return err
	}
	if err := e.report(s); err != nil {
		return err
	}
	if p.flag("c") {
		if err := e.attach(b, s.Name, ConsoleOptions{}, true); err != nil {
			return err
		}
	}
	if p.flag("F") {
		e.progress("staying with %s until it is gone (SIGINT to detach)", s.Name)
		if err := b.WaitGone(e.ctx, s.Name); err != nil && e.ctx.Err() == nil {
			return err
		}
	}
	return nil
}
