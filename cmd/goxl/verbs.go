package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/goxl/goxl/driver"
	"github.com/goxl/goxl/internal/daemon"
	"github.com/goxl/goxl/libxl"
)

const noResync = time.Duration(-1)

func verbList() []*verb {
	return []*verb{
		{name: "list", args: "[dom...]", summary: "list domains, as xl list", max: -1, run: cmdList,
			opts: []option{
				{short: 'l', long: "long", help: "print each domain's libxl config as JSON, as xl list -l: [{\"domid\": N, \"config\": {...}}]"},
				{short: 'v', long: "verbose", help: "add the UUID and the shutdown reason"},
			},
			help:   "With domains, lists only those (exit 3 if one is missing).",
			result: `[DomainInfo...] (domid, name, uuid, type, running, blocked, paused, shutdown, dying, shutdown_reason, current_memkb, max_memkb, cpu_time_ns, vcpus_online, vcpu_max_id); with -l: [{"domid": N, "config": {...}}]`},
		{name: "info", args: "[dom]", summary: "describe the host, as xl info (with a domain: that domain's state)", max: 1, run: cmdInfo,
			help:   "Without an argument, prints the host's facts as xl info does (host, release, nr_cpus, total_memory, free_memory, xen_version, ...).\nWith a domain, prints that domain's state (name, domid, uuid, type, state, memory, vcpus, cpu time);\n`goxl list -l DOMAIN` prints its full config.",
			result: `host: {"host", "release", "nr_cpus", "total_memory", "free_memory", "xen_version", ...} (keys as xl info's); with a domain: DomainInfo (see goxl help list)`},
		{name: "create", args: "[ConfigFile] [key=value...]", summary: "create a domain from an xl config (or libxl JSON)", max: -1, run: cmdCreate,
			opts: []option{
				{short: 'f', arg: "FILE", help: "the config file (instead of the first argument)"},
				{short: 'p', help: "leave the domain paused after it is created"},
				{short: 'c', help: "attach to the domain's console after creating it"},
				{short: 'q', help: "quiet: no progress lines"},
				{short: 'e', help: "no monitor: nobody carries out the domain's on_* actions after goxl exits"},
				{short: 'F', help: "stay in the foreground until the domain is gone, honouring its on_* actions"},
				{short: 'n', help: "dry run: parse the config and print a summary; needs no Xen"},
			},
			help: `Trailing key=value arguments are xl config lines applied after the
config file, as xl does (goxl create guest.cfg memory=512 'name="g2"').
With only key=value arguments the config consists of them. A config file
starting with '{' is libxl JSON (xl list -l's "config" object); overrides
need an xl config. Every config error exits 5.`,
			result: `{"name", "domid", "uuid", "state", "owned"}; with -n: the config summary {"name", "type", "memory_mb", ...}`},
		{name: "destroy", args: "<dom>", summary: "destroy a domain at once", min: 1, max: 1, run: simpleVerb("destroy", Backend.Destroy),
			result: `{"domain": dom, "op": "destroy"}`},
		{name: "shutdown", args: "<dom> | -a", summary: "ask a guest (or all) to power off", max: 1, run: cmdShutdown("shutdown"),
			opts: []option{
				{short: 'a', long: "all", help: "every domain but dom0"},
				{short: 'w', long: "wait", help: "wait until the guest is down, as xl -w (its on_poweroff action follows); -ww waits until it is dead"},
				{short: 'F', help: "fall back to an ACPI power event for an HVM guest without PV drivers"},
			},
			result: `{"op": "shutdown", "domains": [dom...], "waited": bool}`},
		{name: "reboot", args: "<dom> | -a", summary: "ask a guest (or all) to reboot", max: 1, run: cmdShutdown("reboot"),
			opts: []option{
				{short: 'a', long: "all", help: "every domain but dom0"},
				{short: 'w', long: "wait", help: "wait until the rebooted incarnation is gone; -ww until it is dead"},
				{short: 'F', help: "fall back to an ACPI reset event for an HVM guest without PV drivers"},
			},
			result: `{"op": "reboot", "domains": [dom...], "waited": bool}`},
		{name: "pause", args: "<dom>", summary: "pause a domain", min: 1, max: 1, run: simpleVerb("pause", Backend.Pause),
			result: `{"domain": dom, "op": "pause"}`},
		{name: "unpause", args: "<dom>", summary: "unpause a domain", min: 1, max: 1, run: simpleVerb("unpause", Backend.Unpause),
			result: `{"domain": dom, "op": "unpause"}`},
		{name: "save", args: "<dom> <file>", summary: "save a domain's state to a file (xl's format)", min: 2, max: 2, run: cmdSave,
			opts: []option{
				{short: 'c', help: "checkpoint: the guest keeps running after the save"},
				{short: 'p', help: "leave the guest paused after the save"},
			},
			help:   "Without -c or -p the domain is destroyed once its state is saved. A failed\ncheckpoint resumes the guest.",
			result: `{"op": "save", "domain": dom, "file": file, "checkpoint": bool, "paused": bool, "kept": bool}`},
		{name: "restore", args: "[ConfigFile] <file>", summary: "restore a domain from a save file", min: 1, max: 2, run: cmdRestore,
			opts: []option{
				{short: 'p', help: "leave the domain paused"},
				{short: 'e', help: "no monitor (as create -e)"},
				{short: 'c', help: "attach to the console after restoring"},
			},
			help:   "With a ConfigFile, its config replaces the one stored in the save file (xl restore CFG FILE).",
			result: `{"name", "domid", "uuid", "state", "owned"}`},
		{name: "console", args: "<dom>", summary: "attach to a domain's console (Ctrl-] leaves)", min: 1, max: 1, run: cmdConsole,
			opts: []option{
				{short: 't', arg: "TYPE", help: "console type: pv or serial (default: the primary console)"},
				{short: 'n', arg: "NUM", help: "console number (of type -t, pv if -t is not given)"},
			},
			help:   "The terminal is put in raw mode and restored on leaving. Ctrl-] leaves.\nWith --json, console prints the console's pty and does not attach.",
			result: `{"domain": dom, "tty": path}`},
		{name: "events", summary: "stream lifecycle events until SIGINT", run: cmdEvents,
			opts: []option{
				{long: "since", arg: "SEQ", help: "through the daemon: start at event number SEQ (the last seq seen + 1 resumes without a gap or a duplicate; numbers survive a daemon restart)"},
			},
			help:   "Through the daemon every event carries its number (seq=N); without --since the stream starts now.\nEvents older than the daemon keeps end the stream with an overflow error (exit 1).",
			result: `one event per line: {"seq" (through the daemon), "time", "domid", "name", "event", "reason", "state", "action", "error"}`},
		{name: "domid", args: "<name>", summary: "print a domain's domid", min: 1, max: 1, run: cmdDomID,
			result: `{"name": name, "domid": N}`},
		{name: "domname", args: "<domid>", summary: "print a domain's name", min: 1, max: 1, run: cmdDomName,
			result: `{"domid": N, "name": name}`},
		{name: "uptime", args: "[dom...]", summary: "print how long domains have run", max: -1, run: cmdUptime,
			result: `[{"name", "domid", "uptime_s"}...]`},
		{name: "mem-set", args: "<dom> <mem>", summary: "set a domain's memory target (balloon)", min: 2, max: 2, run: cmdMemSet,
			help:   "mem is in KiB unless it ends in b, k, m, g or t (xl's units): 512m, 1g.",
			result: `{"domain": dom, "op": "mem-set", "target_kb": N}`},
		{name: "vcpu-set", args: "<dom> <count>", summary: "set how many vcpus are online", min: 2, max: 2, run: cmdVCPUSet,
			result: `{"domain": dom, "op": "vcpu-set", "vcpus": N}`},
		{name: "vcpu-list", args: "[dom...]", summary: "list vcpus, as xl vcpu-list", max: -1, run: cmdVCPUList,
			result: `[{"name", "domid", "vcpuid", "cpu", "online", "blocked", "running", "cpu_time_ns", "affinity", "soft_affinity", ...}...]`},
		{name: "version", summary: "print goxl's version and Xen's", run: cmdVersion,
			help:   "goxl's module version comes from the binary's build info; Xen's from libxl, when on a dom0.",
			result: `{"goxl": version, "revision": rev, "go": version, "xen": version or "" if unavailable}`},
	}
}

// withBackend opens the backend, runs fn, closes it.
func (e *env) withBackend(resync time.Duration, fn func(Backend) error) error {
	b, err := e.connect(resync)
	if err != nil {
		return err
	}
	defer b.Close()
	return fn(b)
}

func cmdList(e *env, p *parsed) error {
	return e.withBackend(noResync, func(b Backend) error {
		var infos []libxl.DomainInfo
		if len(p.args) == 0 {
			all, err := b.List(e.ctx)
			if err != nil {
				return err
			}
			infos = all
		}
		for _, ref := range p.args {
			info, err := b.Info(e.ctx, ref)
			if err != nil {
				return err
			}
			infos = append(infos, info)
		}
		if p.flag("long") {
			return listLong(e, b, infos, len(p.args) > 0)
		}
		if e.json {
			if infos == nil {
				infos = []libxl.DomainInfo{}
			}
			return e.result(infos)
		}
		tw := tabwriter.NewWriter(e.out, 0, 8, 2, ' ', 0)
		head := "Name\tID\tMem\tVCPUs\tState\tTime(s)"
		if p.flag("verbose") {
			head += "\tUUID\tReason-Code"
		}
		fmt.Fprintln(tw, head)
		for _, d := range infos {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%.1f", d.Name, d.DomID, d.CurrentMemKB/1024, d.VCPUsOnline, d.State(), d.CPUTime.Seconds())
			if p.flag("verbose") {
				reason := "-"
				if d.Shutdown {
					reason = strconv.Itoa(int(d.ShutdownReason))
				}
				fmt.Fprintf(tw, "\t%s\t%s", d.UUIDString, reason)
			}
			fmt.Fprintln(tw)
		}
		return tw.Flush()
	})
}

// longEntry is one element of xl list -l's array.
type longEntry struct {
	DomID  uint32          `json:"domid"`
	Config json.RawMessage `json:"config"`
}

// listLong prints xl list -l's array. A domain whose config libxl cannot
// retrieve (dom0) is left out, as xl does, unless it was asked for.
func listLong(e *env, b Backend, infos []libxl.DomainInfo, named bool) error {
	entries := []longEntry{}
	for _, d := range infos {
		cfg, err := b.Config(e.ctx, strconv.FormatUint(uint64(d.DomID), 10))
		if err != nil {
			if named {
				return fmt.Errorf("config of %s: %w", d.Name, err)
			}
			continue
		}
		if !json.Valid([]byte(cfg)) {
			return fmt.Errorf("config of %s: libxl returned invalid JSON", d.Name)
		}
		entries = append(entries, longEntry{DomID: d.DomID, Config: json.RawMessage(cfg)})
	}
	if e.json {
		return e.result(entries)
	}
	enc := json.NewEncoder(e.out)
	enc.SetIndent("", "    ")
	return enc.Encode(entries)
}

func cmdInfo(e *env, p *parsed) error {
	return e.withBackend(noResync, func(b Backend) error {
		if len(p.args) == 1 {
			info, err := b.Info(e.ctx, p.args[0])
			if err != nil {
				return err
			}
			if e.json {
				return e.result(info)
			}
			fmt.Fprintf(e.out, "name:     %s\ndomid:    %d\nuuid:     %s\ntype:     %s\nstate:    %s\nmemory:   %d MiB (max %d MiB)\nvcpus:    %d\ncpu time: %.1fs\n",
				info.Name, info.DomID, info.UUIDString, info.Type, info.State(), info.CurrentMemKB/1024, info.MaxMemKB/1024, info.VCPUsOnline, info.CPUTime.Seconds())
			if info.Shutdown {
				fmt.Fprintf(e.out, "shutdown: %s\n", info.ShutdownReason)
			}
			return nil
		}
		h, err := b.HostInfo(e.ctx)
		if err != nil {
			return err
		}
		if e.json {
			return e.result(h)
		}
		printHostInfo(e, h)
		return nil
	})
}

func printHostInfo(e *env, h libxl.HostInfo) {
	row := func(k string, v any) { fmt.Fprintf(e.out, "%-23s: %v\n", k, v) }
	row("host", h.Host)
	row("release", h.Release)
	row("version", h.Version)
	row("machine", h.Machine)
	row("nr_cpus", h.NrCPUs)
	row("max_cpu_id", h.MaxCPUID)
	row("nr_nodes", h.NrNodes)
	row("cores_per_socket", h.CoresPerSocket)
	row("threads_per_core", h.ThreadsPerCore)
	row("cpu_mhz", h.CPUMHz)
	row("hw_caps", h.HWCaps)
	row("virt_caps", strings.Join(h.VirtCaps, " "))
	row("total_memory", h.TotalMemoryMB)
	row("free_memory", h.FreeMemoryMB)
	row("sharing_freed_memory", h.SharingFreedMB)
	row("sharing_used_memory", h.SharingUsedMB)
	row("outstanding_claims", h.OutstandingClaimsMB)
	row("xen_major", h.XenMajor)
	row("xen_minor", h.XenMinor)
	row("xen_extra", h.XenExtra)
	row("xen_version", h.XenVersion)
	row("xen_caps", h.XenCaps)
	row("xen_scheduler", h.XenScheduler)
	row("xen_pagesize", h.XenPagesize)
	row("xen_changeset", h.XenChangeset)
	row("xen_commandline", h.XenCommandline)
	row("cc_compiler", h.CCCompiler)
	row("cc_compile_by", h.CCCompileBy)
	row("cc_compile_domain", h.CCCompileDom)
	row("cc_compile_date", h.CCCompileDate)
	row("build_id", h.BuildID)
}

// report prints a created or restored domain.
func (e *env) report(s driver.DomainSnapshot) error {
	if e.json {
		return e.result(s)
	}
	if !e.quiet {
		fmt.Fprintf(e.out, "%s: domain %d, %s\n", s.Name, s.DomID, s.State)
	}
	return nil
}

// simpleVerb is a verb that runs one Backend call on one domain.
func simpleVerb(name string, op func(Backend, context.Context, string) error) func(*env, *parsed) error {
	return func(e *env, p *parsed) error {
		return e.withBackend(noResync, func(b Backend) error {
			if err := op(b, e.ctx, p.args[0]); err != nil {
				return err
			}
			if e.json {
				return e.result(map[string]string{"domain": p.args[0], "op": name})
			}
			return nil
		})
	}
}

// cmdShutdown is shutdown and reboot: one domain, or with -a every
// domain but dom0, in parallel (as xl -a).
func cmdShutdown(name string) func(*env, *parsed) error {
	return func(e *env, p *parsed) error {
		all := p.flag("all")
		if all == (len(p.args) == 1) {
			return usageError{"give a domain or -a, not both"}
		}
		opts := ShutdownOptions{Wait: p.flag("wait"), WaitDeath: p.count("wait") > 1, Force: p.flag("F")}
		return e.withBackend(noResync, func(b Backend) error {
			op := b.Shutdown
			if name == "reboot" {
				op = b.Reboot
			}
			refs := p.args
			if all {
				list, err := b.List(e.ctx)
				if err != nil {
					return err
				}
				refs = nil
				for _, d := range list {
					if d.DomID != 0 {
						refs = append(refs, strconv.FormatUint(uint64(d.DomID), 10))
					}
				}
			}
			errs := make([]error, len(refs))
			var wg sync.WaitGroup
			for i, ref := range refs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := op(e.ctx, ref, opts); err != nil {
						errs[i] = fmt.Errorf("%s: %w", ref, err)
					}
				}()
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				return err
			}
			if e.json {
				if refs == nil {
					refs = []string{}
				}
				return e.result(map[string]any{"op": name, "domains": refs, "waited": opts.Wait})
			}
			return nil
		})
	}
}

func cmdSave(e *env, p *parsed) error {
	opts := SaveOptions{Checkpoint: p.flag("c"), LeavePaused: p.flag("p")}
	return e.withBackend(noResync, func(b Backend) error {
		if err := b.Save(e.ctx, p.args[0], p.args[1], opts); err != nil {
			return err
		}
		if e.json {
			return e.result(map[string]any{"op": "save", "domain": p.args[0], "file": p.args[1],
				"checkpoint": opts.Checkpoint, "paused": opts.LeavePaused, "kept": opts.Checkpoint || opts.LeavePaused})
		}
		return nil
	})
}

func cmdRestore(e *env, p *parsed) error {
	if p.flag("c") && e.json {
		return usageError{"-c attaches a terminal: it does not mix with --json"}
	}
	file := p.args[len(p.args)-1]
	if _, err := os.Stat(file); err != nil {
		return err
	}
	var cfg libxl.Config
	var unparsed *daemon.WireConfig
	if len(p.args) == 2 {
		var err error
		if cfg, unparsed, err = loadConfig(p.args[0], nil); err != nil {
			return err
		}
	}
	return e.withBackend(noResync, func(b Backend) error {
		s, err := b.Restore(e.ctx, file, RestoreOptions{Config: cfg, Unparsed: unparsed, Paused: p.flag("p"), NoMonitor: p.flag("e")})
		if err != nil {
			return err
		}
		if err := e.report(s); err != nil {
			return err
		}
		if p.flag("c") {
			return e.attach(b, s.Name, ConsoleOptions{}, true)
		}
		return nil
	})
}

func cmdDomID(e *env, p *parsed) error {
	return e.withBackend(noResync, func(b Backend) error {
		id, err := b.DomID(e.ctx, p.args[0])
		if err != nil {
			return err
		}
		if e.json {
			return e.result(map[string]any{"name": p.args[0], "domid": id})
		}
		fmt.Fprintln(e.out, id)
		return nil
	})
}

func cmdDomName(e *env, p *parsed) error {
	id, ok := libxl.ParseDomID(p.args[0])
	if !ok {
		return usageError{fmt.Sprintf("%q is not a domid", p.args[0])}
	}
	return e.withBackend(noResync, func(b Backend) error {
		name, err := b.DomName(e.ctx, id)
		if err != nil {
			return err
		}
		if e.json {
			return e.result(map[string]any{"domid": id, "name": name})
		}
		fmt.Fprintln(e.out, name)
		return nil
	})
}

// uptimeString formats as xl uptime: "[D day(s), ]H:MM:SS".
func uptimeString(d time.Duration) string {
	s := int64(d / time.Second)
	day, hour, min, sec := s/86400, s%86400/3600, s%3600/60, s%60
	switch {
	case day > 1:
		return fmt.Sprintf("%d days, %2d:%02d:%02d", day, hour, min, sec)
	case day == 1:
		return fmt.Sprintf("%d day, %2d:%02d:%02d", day, hour, min, sec)
	}
	return fmt.Sprintf("%2d:%02d:%02d", hour, min, sec)
}

type uptimeEntry struct {
	Name    string  `json:"name"`
	DomID   uint32  `json:"domid"`
	Seconds float64 `json:"uptime_s"`
}

func cmdUptime(e *env, p *parsed) error {
	return e.withBackend(noResync, func(b Backend) error {
		infos, err := domainsOrAll(e, b, p.args)
		if err != nil {
			return err
		}
		entries := []uptimeEntry{}
		for _, d := range infos {
			up, err := b.Uptime(e.ctx, strconv.FormatUint(uint64(d.DomID), 10))
			if err != nil {
				return fmt.Errorf("%s: %w", d.Name, err)
			}
			entries = append(entries, uptimeEntry{Name: d.Name, DomID: d.DomID, Seconds: up.Seconds()})
		}
		if e.json {
			return e.result(entries)
		}
		fmt.Fprintf(e.out, "%-33s %4s %s\n", "Name", "ID", "Uptime")
		for _, u := range entries {
			fmt.Fprintf(e.out, "%-33s %4d %s\n", u.Name, u.DomID, uptimeString(time.Duration(u.Seconds*float64(time.Second))))
		}
		return nil
	})
}

// domainsOrAll returns the named domains, or all of them.
func domainsOrAll(e *env, b Backend, refs []string) ([]libxl.DomainInfo, error) {
	if len(refs) == 0 {
		return b.List(e.ctx)
	}
	var out []libxl.DomainInfo
	for _, ref := range refs {
		info, err := b.Info(e.ctx, ref)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// parseMemKB parses xl's memory sizes: KiB unless suffixed b, k, m, g, t.
func parseMemKB(s string) (uint64, error) {
	num, unit := s, byte('k')
	if n := len(s); n > 0 && strings.ContainsRune("bBkKmMgGtT", rune(s[n-1])) {
		num, unit = s[:n-1], s[n-1]|0x20
	}
	v, err := strconv.ParseUint(num, 10, 64)
	if err != nil || num == "" {
		return 0, usageError{fmt.Sprintf("memory size %q: want a number with an optional unit b, k, m, g or t", s)}
	}
	shift := map[byte]uint{'k': 0, 'm': 10, 'g': 20, 't': 30}
	if unit == 'b' {
		return v >> 10, nil
	}
	if v > (^uint64(0))>>shift[unit] {
		return 0, usageError{fmt.Sprintf("memory size %q is too large", s)}
	}
	return v << shift[unit], nil
}

func cmdMemSet(e *env, p *parsed) error {
	kb, err := parseMemKB(p.args[1])
	if err != nil {
		return err
	}
	return e.withBackend(noResync, func(b Backend) error {
		if err := b.SetMemory(e.ctx, p.args[0], kb); err != nil {
			return err
		}
		if e.json {
			return e.result(map[string]any{"domain": p.args[0], "op": "mem-set", "target_kb": kb})
		}
		return nil
	})
}

func cmdVCPUSet(e *env, p *parsed) error {
	n, err := strconv.Atoi(p.args[1])
	if err != nil || n < 1 {
		return usageError{fmt.Sprintf("vcpu count %q: want a positive number", p.args[1])}
	}
	return e.withBackend(noResync, func(b Backend) error {
		if err := b.SetVCPUs(e.ctx, p.args[0], n); err != nil {
			return err
		}
		if e.json {
			return e.result(map[string]any{"domain": p.args[0], "op": "vcpu-set", "vcpus": n})
		}
		return nil
	})
}

type vcpuEntry struct {
	Name  string `json:"name"`
	DomID uint32 `json:"domid"`
	libxl.VCPUInfo
}

// cpuList prints an affinity as xl does: "all", or ranges "0-3,6".
func cpuList(cpus []int, all bool) string {
	if all {
		return "all"
	}
	if len(cpus) == 0 {
		return "none"
	}
	var parts []string
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, strconv.Itoa(cpus[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", cpus[i], cpus[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

func cmdVCPUList(e *env, p *parsed) error {
	return e.withBackend(noResync, func(b Backend) error {
		infos, err := domainsOrAll(e, b, p.args)
		if err != nil {
			return err
		}
		entries := []vcpuEntry{}
		for _, d := range infos {
			vs, err := b.VCPUs(e.ctx, strconv.FormatUint(uint64(d.DomID), 10))
			if err != nil {
				return fmt.Errorf("%s: %w", d.Name, err)
			}
			for _, v := range vs {
				entries = append(entries, vcpuEntry{Name: d.Name, DomID: d.DomID, VCPUInfo: v})
			}
		}
		if e.json {
			return e.result(entries)
		}
		fmt.Fprintf(e.out, "%-32s %5s %5s %5s %5s  %9s  %s\n", "Name", "ID", "VCPU", "CPU", "State", "Time(s)", "Affinity (Hard / Soft)")
		for _, v := range entries {
			cpu := strconv.Itoa(int(v.CPU))
			if !v.Online {
				cpu = "-"
			}
			fmt.Fprintf(e.out, "%-32s %5d %5d %5s %5s  %9.1f  %s / %s\n", v.Name, v.DomID, v.VCPUID, cpu, v.State(), v.CPUTime.Seconds(),
				cpuList(v.Affinity, v.AffinityAll), cpuList(v.SoftAffinity, v.SoftAffinityAll))
		}
		return nil
	})
}
