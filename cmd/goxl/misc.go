package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"time"
)

func cmdEvents(e *env, _ *parsed) error {
	return e.withBackend(time.Second, func(b Backend) error {
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
	})
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
