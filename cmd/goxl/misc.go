package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/goxl/goxl/internal/daemon"
)

func cmdEvents(e *env, p *parsed) error {
	var since uint64
	if p.flag("since") {
		n, err := strconv.ParseUint(p.value("since"), 10, 64)
		if err != nil || n == 0 {
			return usageError{fmt.Sprintf("events --since %q: want an event number (1 or more)", p.value("since"))}
		}
		since = n
	}
	return e.withBackend(time.Second, func(b Backend) error {
		if rb, ok := b.(*remoteBackend); ok {
			return rb.streamEvents(e.ctx, since, func(ev daemon.Event) { printEvent(e, ev) })
		}
		if since != 0 {
			return usageError{"events --since: event numbers are kept by the goxl daemon, and none answers (GOXL_NO_DAEMON, or not started)"}
		}
		s, err := b.Events(e.ctx, EventsOptions{})
		if err != nil {
			return err
		}
		defer s.Close()
		e.progress("streaming lifecycle events; SIGINT to stop")
		for {
			select {
			case ev, ok := <-s.C():
				if !ok {
					return s.Err()
				}
				printEvent(e, daemon.Event{DomainEvent: ev})
			case <-e.ctx.Done():
				return nil
			}
		}
	})
}

// printEvent prints one event: a JSON object with --json, else a line;
// seq (0 in-process) is the daemon's event number.
func printEvent(e *env, ev daemon.Event) {
	if e.json {
		var b []byte
		if ev.Seq == 0 {
			b, _ = json.Marshal(ev.DomainEvent)
		} else {
			b, _ = json.Marshal(ev)
		}
		fmt.Fprintln(e.out, string(b))
		return
	}
	line := fmt.Sprintf("%s %-12s domid=%d name=%s state=%s", ev.Time.Format(time.RFC3339Nano), ev.Kind, ev.DomID, ev.Name, ev.State)
	if ev.Seq != 0 {
		line = fmt.Sprintf("seq=%d %s", ev.Seq, line)
	}
	if ev.ReasonName != "" {
		line += " reason=" + ev.ReasonName
	}
	if ev.Action != "" {
		line += " action=" + string(ev.Action)
	}
	if ev.Error != "" {
		line += fmt.Sprintf(" error=%q", ev.Error)
	}
	fmt.Fprintln(e.out, line)
}

// buildVersion returns goxl's module version and VCS revision from the
// binary's build info.
func buildVersion() (version, revision string) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown", ""
	}
	version = bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	var modified bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified && revision != "" {
		revision += "+dirty"
	}
	return version, revision
}

func cmdVersion(e *env, _ *parsed) error {
	version, revision := buildVersion()
	xen, xenErr := "", error(nil)
	b, err := e.connect(noResync)
	if err == nil {
		v, verr := b.XenVersion(e.ctx)
		b.Close()
		if verr == nil && v.Major != 0 {
			xen = v.String()
		}
		xenErr = verr
	} else {
		xenErr = err
	}
	if e.json {
		return e.result(map[string]string{"goxl": version, "revision": revision, "go": runtime.Version(), "xen": xen})
	}
	line := "goxl " + version
	if revision != "" {
		line += " (" + revision + ")"
	}
	fmt.Fprintf(e.out, "%s %s\n", line, runtime.Version())
	if xen != "" {
		fmt.Fprintf(e.out, "xen %s\n", xen)
	} else if xenErr != nil {
		e.progress("Xen version unavailable: %v", xenErr)
	}
	return nil
}
