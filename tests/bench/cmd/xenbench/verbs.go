package main

// The CLI-verb table of issue "goxl as a daemon": every verb as a whole
// process, through the goxl daemon, goxl in-process ("direct": no
// daemon, create/restore with -e so no monitor is started) and xl, on one
// boot, interleaved. xl create forks its monitor, as goxl's daemon mode
// leaves the domain to the daemon: both return once the domain runs.

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

var verbsWarmAll = flag.Bool("verbs-warmup-all", false, "warm up every tool before the verb table (default: the daemon only)")

// verbTools are the three ways a user runs a verb.
var verbTools = []string{"daemon", "direct", "xl"}

// verbCommand returns the command line of one verb for one tool.
func verbCommand(tool, verb, save string) []string {
	bin := *goxlBin
	if tool == "xl" {
		bin = *xlBin
	}
	switch verb {
	case "list":
		return []string{bin, "list"}
	case "create":
		if tool == "direct" {
			return []string{bin, "create", "-e", *cfg}
		}
		return []string{bin, "create", *cfg}
	case "pause", "unpause", "destroy":
		return []string{bin, verb, *name}
	case "shutdown -w":
		return []string{bin, "shutdown", "-w", *name}
	case "save":
		return []string{bin, "save", *name, save}
	case "restore":
		if tool == "direct" {
			return []string{bin, "restore", "-e", save}
		}
		return []string{bin, "restore", save}
	}
	return nil
}

// guestReady waits (at most 3 min) until the guest's kernel wrote
// control/feature-suspend = 1 in xenstore (Linux's drivers/xen/manage.c
// does once it handles shutdown requests), then 2 s more.
func guestReady() {
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		id, err := exec.Command(*xlBin, "domid", *name).Output()
		if err == nil {
			path := "/local/domain/" + strings.TrimSpace(string(id)) + "/control/feature-suspend"
			v, err := exec.Command("xenstore-read", path).Output()
			if errors.Is(err, exec.ErrNotFound) {
				time.Sleep(4 * time.Second)
				return
			}
			if err == nil && strings.TrimSpace(string(v)) == "1" {
				time.Sleep(2 * time.Second)
				return
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// verbCycle runs the verbs in a guest's life once with one tool and
// returns each verb's wall time in ms.
func verbCycle(tool string) (map[string]float64, error) {
	save := filepath.Join(os.TempDir(), "xenbench.save")
	os.Remove(save)
	env := os.Environ()
	if tool == "direct" {
		env = append(env, "GOXL_NO_DAEMON=1")
	}
	out := map[string]float64{}
	run := func(verb string) error {
		args := verbCommand(tool, verb, save)
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = env
		t0 := time.Now()
		b, err := cmd.CombinedOutput()
		out[verb] = float64(time.Since(t0).Microseconds()) / 1e3
		if err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return nil
	}
	steps := []string{"list", "create", "pause", "unpause"}
	for _, v := range steps {
		if err := run(v); err != nil {
			return out, err
		}
	}
	// A PV guest still booting cannot be suspended: wait, untimed, until
	// its kernel announces suspend support (on a loaded host that takes
	// far longer than the few seconds an idle one needs).
	guestReady()
	for _, v := range []string{"save", "restore"} {
		if err := run(v); err != nil {
			return out, err
		}
	}
	// After a restore, Linux does not write feature-suspend again (it
	// writes it once, at boot), so guestReady would wait its full 3 min:
	// the resumed kernel already handles shutdown requests (its xenstore
	// watches are re-registered on resume and fire once on registration).
	// Give its devices a moment to reconnect.
	time.Sleep(2 * time.Second)
	if err := run("shutdown -w"); err != nil {
		return out, err
	}
	// The test guest's on_poweroff is destroy: with xl's monitor or the
	// daemon it is gone; in direct mode nobody acts, so destroy it (timed
	// as "destroy" for every tool: a second create+destroy).
	exec.Command(*xlBin, "destroy", *name).Run()
	if err := gone(); err != nil {
		return out, err
	}
	if err := run("create"); err != nil {
		return out, err
	}
	if err := run("destroy"); err != nil {
		return out, err
	}
	return out, gone()
}

// runVerbs times every verb, reps times per tool, interleaved, with a
// daemon started for the "daemon" tool and stopped for the others.
func runVerbs(reps int) (map[string]map[string][]float64, error) {
	res := map[string]map[string][]float64{}
	sock := "/run/goxl/goxld.sock"
	d := exec.Command(*goxlBin, "daemon", "--foreground")
	d.Stdout, d.Stderr = os.Stderr, os.Stderr
	if err := d.Start(); err != nil {
		return nil, err
	}
	defer func() { d.Process.Signal(os.Interrupt); d.Wait() }()
	for i := 0; i < 600; i++ {
		if _, err := os.Stat(sock); err == nil {
			if exec.Command(*goxlBin, "list").Run() == nil {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	failures := 0
	for i := 0; i <= reps; i++ { // the first round warms up, untimed
		order := verbTools
		if i%2 == 1 {
			order = []string{"xl", "direct", "daemon"}
		}
		if i == 0 && !*verbsWarmAll {
			// The create/destroy step before warmed xl and goxl's page
			// cache: warm up only the daemon just started.
			order = []string{"daemon"}
		}
		for _, tool := range order {
			t, err := verbCycle(tool)
			if err != nil {
				// A loaded host makes libxl time out now and then (xl too):
				// drop this cycle's figures, clean up, go on; too many
				// failures end the step.
				failures++
				fmt.Fprintf(os.Stderr, "xenbench: verbs rep %d %s failed (%d so far): %v\n", i, tool, failures, err)
				cleanGuest()
				os.Remove(filepath.Join(os.TempDir(), "xenbench.save"))
				if failures > reps {
					return res, fmt.Errorf("%s: %w (%d failed cycles)", tool, err, failures)
				}
				continue
			}
			if i == 0 {
				continue
			}
			for verb, ms := range t {
				if res[verb] == nil {
					res[verb] = map[string][]float64{}
				}
				res[verb][tool] = append(res[verb][tool], ms)
			}
			fmt.Fprintf(os.Stderr, "xenbench: verbs rep %d %s: %v\n", i, tool, t)
			// The figures so far, in case the run is cut short (xenvm's
			// timeout): the host takes the last line.
			js, _ := json.Marshal(res)
			fmt.Printf("XENBENCH-VERBS-JSON %s\n", js)
		}
	}
	return res, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// printVerbTable prints medians and ratios to xl (target: daemon ≤ 1.0×).
func printVerbTable(res map[string]map[string][]float64) {
	fmt.Println("XENBENCH-VERBS | verb | daemon ms | direct ms | xl ms | daemon/xl | direct/xl | target daemon ≤1.0× xl")
	for _, verb := range []string{"list", "create", "destroy", "shutdown -w", "pause", "unpause", "save", "restore"} {
		r := res[verb]
		dm, di, xl := median(r["daemon"]), median(r["direct"]), median(r["xl"])
		met := "missed"
		if xl > 0 && dm <= xl {
			met = "met"
		}
		fmt.Printf("XENBENCH-VERBS | %s | %.0f | %.0f | %.0f | %.2f× | %.2f× | %s\n", verb, dm, di, xl, dm/xl, di/xl, met)
	}
}
