// Command xenbench runs inside dom0 (tests/xenvm) and times the PV test
// guest's create→running and destroy→death through the goxl CLI and
// through xl, on the same boot, interleaved, and prints one line
//
//	XENBENCH-JSON {...}
//
// holding a bench.XenResult.
//
// Three ways are timed. "goxl" and "xl" are whole commands, process start
// to exit, as a user typing them sees it: `goxl create CFG` and `xl
// create CFG` both return once the domain is built and unpaused; `goxl
// destroy NAME` and `xl destroy NAME` once it is gone. "goxl-lib" is the
// goxl library in this long-lived process, driver and ctx opened once, as
// a management daemon uses it: the operation alone, no process start (a
// Go binary's start costs ≈0.1–0.3 s under QEMU's emulation). One untimed
// cycle per way warms the page cache first.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/goxl/goxl/driver"
	"github.com/goxl/goxl/libxl"
	"github.com/goxl/goxl/tests/bench"
)

var (
	goxlBin = flag.String("goxl", "/usr/local/bin/goxl", "the goxl CLI")
	xlBin   = flag.String("xl", "/usr/lib/xen-4.17/bin/xl", "xl")
	cfg     = flag.String("cfg", "/guest/guest.cfg", "the guest's xl config")
	name    = flag.String("name", "testguest", "the guest's name in cfg")
	reps    = flag.Int("n", 5, "timed repetitions per tool")
	verbs   = flag.Int("verbs", 0, "also time every CLI verb through the goxl daemon, goxl in-process and xl, this many repetitions (verbs.go)")
)

func timed(args ...string) (float64, error) {
	var out bytes.Buffer
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	err := cmd.Run()
	ms := float64(time.Since(t0).Microseconds()) / 1e3
	if err != nil {
		return ms, fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return ms, nil
}

// cleanGuest destroys the test guest if it exists (after a failed step).
func cleanGuest() {
	exec.Command(*xlBin, "destroy", *name).Run()
	gone()
}

// gone waits until xl list no longer shows the guest.
func gone() error {
	for i := 0; i < 100; i++ {
		out, _ := exec.Command(*xlBin, "list").CombinedOutput()
		if !bytes.Contains(out, []byte(*name)) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s still listed after destroy", *name)
}

// lib is the goxl library, opened once for the whole run, as a daemon
// keeps it.
type lib struct {
	drv  *driver.Driver
	doms *driver.Domains
	cfg  *libxl.DomainConfig
}

func openLib() (*lib, error) {
	c, err := libxl.ParseXLFile(*cfg)
	if err != nil {
		return nil, err
	}
	drv, err := driver.New(driver.Options{})
	if err != nil {
		return nil, err
	}
	doms, err := driver.NewDomains(drv, driver.DomainsOptions{ResyncInterval: -1})
	if err != nil {
		drv.Close()
		return nil, err
	}
	return &lib{drv: drv, doms: doms, cfg: c}, nil
}

func (l *lib) cycle() (create, destroy float64, err error) {
	ctx := context.Background()
	t0 := time.Now()
	d, err := l.doms.Create(ctx, l.cfg, driver.CreateOptions{})
	create = float64(time.Since(t0).Microseconds()) / 1e3
	if err != nil {
		return create, 0, err
	}
	t0 = time.Now()
	err = l.doms.Destroy(ctx, fmt.Sprint(d.Snapshot().DomID))
	destroy = float64(time.Since(t0).Microseconds()) / 1e3
	if err == nil {
		err = gone()
	}
	return create, destroy, err
}

func cycle(tool string) (create, destroy float64, err error) {
	if tool == "goxl-lib" {
		return theLib.cycle()
	}
	bin := *xlBin
	if tool == "goxl" {
		bin = *goxlBin
	}
	if create, err = timed(bin, "create", *cfg); err != nil {
		return
	}
	if destroy, err = timed(bin, "destroy", *name); err != nil {
		return
	}
	err = gone()
	return
}

func emit(r bench.XenResult) {
	js, _ := json.Marshal(r)
	fmt.Printf("XENBENCH-JSON %s\n", js)
}

func main() {
	flag.Parse()
	var r bench.XenResult
	var err error
	if *reps > 0 {
		err = run(&r)
	} else {
		r.Error = "create/destroy step skipped (-n 0)"
	}
	if err != nil {
		r.Error = err.Error()
		fmt.Fprintln(os.Stderr, "xenbench:", err)
	}
	emit(r)
	if *verbs > 0 { // independent of the create/destroy figures
		cleanGuest()
		vr, verr := runVerbs(*verbs)
		js, _ := json.Marshal(vr)
		fmt.Printf("XENBENCH-VERBS-JSON %s\n", js)
		printVerbTable(vr)
		if verr != nil {
			fmt.Fprintln(os.Stderr, "xenbench verbs:", verr)
			err = errors.Join(err, verr)
		}
	}
	if err != nil {
		os.Exit(1)
	}
}

var theLib *lib

func run(r *bench.XenResult) error {
	var err error
	if theLib, err = openLib(); err != nil {
		return fmt.Errorf("goxl library: %w", err)
	}
	defer func() { theLib.doms.Close(); theLib.drv.Close() }()
	for _, tool := range []string{"xl", "goxl", "goxl-lib"} { // warm-up, untimed
		// On a loaded host the first create can time out in libxl itself
		// (xl's "console tty: timed out" while xenconsoled is slow to
		// start): clean up and try again, untimed.
		for try := 1; ; try++ {
			_, _, err := cycle(tool)
			if err == nil {
				break
			}
			if try == 3 {
				return fmt.Errorf("warm-up with %s: %w", tool, err)
			}
			fmt.Fprintf(os.Stderr, "xenbench: warm-up with %s failed (try %d), again: %v\n", tool, try, err)
			cleanGuest()
		}
	}
	for i := 0; i < *reps; i++ {
		order := []string{"goxl", "xl", "goxl-lib"}
		if i%2 == 1 {
			order = []string{"goxl-lib", "xl", "goxl"}
		}
		for _, tool := range order {
			c, d, err := cycle(tool)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "xenbench: rep %d %s: create %.0f ms, destroy %.0f ms\n", i+1, tool, c, d)
			switch tool {
			case "goxl":
				r.GoxlCreateMS = append(r.GoxlCreateMS, c)
				r.GoxlDestroyMS = append(r.GoxlDestroyMS, d)
			case "goxl-lib":
				r.LibCreateMS = append(r.LibCreateMS, c)
				r.LibDestroyMS = append(r.LibDestroyMS, d)
			default:
				r.XLCreateMS = append(r.XLCreateMS, c)
				r.XLDestroyMS = append(r.XLDestroyMS, d)
			}
		}
		// The figures so far, in case the run is cut short (xenvm's
		// timeout): the host takes the last line.
		emit(*r)
	}
	return nil
}
