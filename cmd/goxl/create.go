package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goxl/goxl/internal/daemon"
	"github.com/goxl/goxl/libxl"
)

// loadConfig reads a config through libxl.LoadConfigFile: xl's format
// (goxl's parser, xl's own for keys goxl does not map), libxl JSON, or
// xl list -l output. overrides are xl config lines applied after the
// file, as xl's trailing key=value arguments (the last assignment wins).
// path "" means the config is the overrides alone. A file that cannot be
// read is an I/O error (exit 1); everything else wrong is a config error
// (exit 5).
//
// In a goxl built without cgo, which cannot parse an xl config, the
// config comes back unparsed: its text, for the daemon to parse (the
// verb hands itself to the cgo goxl if no daemon answers, or by
// parsedConfig when it needs the config here).
func loadConfig(path string, overrides []string) (libxl.Config, *daemon.WireConfig, error) {
	opts := libxl.LoadOptions{Overrides: overrides}
	name, data := "<command line>", []byte(nil)
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, nil, err
		}
		if t := strings.TrimSpace(string(data)); len(overrides) > 0 && (strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[")) {
			return nil, nil, usageError{fmt.Sprintf("%s is libxl JSON: key=value overrides need an xl config", path)}
		}
		name = path
	}
	var cfg libxl.Config
	var err error
	if path == "" {
		cfg, err = libxl.LoadConfig(name, nil, opts)
	} else {
		// By path: xl's parser, when it is needed, reads the file itself.
		cfg, err = libxl.LoadConfigFile(path, opts)
	}
	if errors.Is(err, libxl.ErrNotSupported) {
		return nil, unparsedConfig(name, path, data, overrides), nil
	}
	cfg, err = checkedConfig(name, cfg, err)
	return cfg, nil, err
}

// unparsedConfig is an xl config's text on the wire, with its overrides
// appended as xl appends them, for the daemon to parse.
func unparsedConfig(name, path string, data []byte, overrides []string) *daemon.WireConfig {
	w := &daemon.WireConfig{Format: "xl", File: name}
	if path != "" {
		if a, err := filepath.Abs(path); err == nil {
			w.File = a
		}
	}
	if dir, err := os.Getwd(); err == nil {
		w.Dir = dir
	}
	text := string(data)
	if len(overrides) > 0 {
		text += "\n" + strings.Join(overrides, "\n") + "\n"
	}
	w.Text = text
	return w
}

// parsedConfig is for a verb that needs the config parsed here (create
// -n): an unparsed one hands the verb to the cgo goxl.
func parsedConfig(cfg libxl.Config, unparsed *daemon.WireConfig) (libxl.Config, error) {
	if cfg != nil || unparsed == nil {
		return cfg, nil
	}
	if err := handOff("an xl config to parse"); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("goxl: %s: %w", unparsed.File, libxl.ErrNotSupported)
}

// checkedConfig makes every config problem a config error (exit 5): a
// parse error, and a config that parses but cannot be used (no name, a
// bad type), which libxl reports as a plain error.
func checkedConfig(name string, cfg libxl.Config, err error) (libxl.Config, error) {
	if err == nil {
		_, err = cfg.Summary()
	}
	if err == nil {
		return cfg, nil
	}
	if errors.Is(err, libxl.ErrNotSupported) {
		return nil, err
	}
	return nil, libxl.AsConfigError(name, err)
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
	cfg, unparsed, err := loadConfig(path, args)
	if err != nil {
		return err
	}
	if p.flag("n") {
		if cfg, err = parsedConfig(cfg, unparsed); err != nil {
			return err
		}
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
	s, err := b.Create(e.ctx, cfg, CreateOptions{Paused: p.flag("p"), NoMonitor: p.flag("e"), Unparsed: unparsed})
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
