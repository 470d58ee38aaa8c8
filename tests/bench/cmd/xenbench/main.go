// Command xenbench runs inside dom0 (tests/xenvm) and times the PV test
// guest's create→running and destroy→death through the goxl CLI and
// through xl, on the same boot, interleaved, and prints one line
//
//	XENBENCH-JSON {...}
//
// holding a bench.XenResult. It is pure Go (CGO_ENABLED=0); the goxl
// binary it runs is the cgo one, built against Debian's libxenlight.
//
// Each timing is a whole command's wall time, process start to exit, as
// a user or a management daemon spawning the tool would see it: `goxl
// create CFG` and `xl create CFG` both return once the domain is built
// and unpaused; `goxl destroy NAME` and `xl destroy NAME` once it is
// gone. One untimed create/destroy per tool warms the page cache first.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/goxl/goxl/tests/bench"
)

var (
	goxlBin = flag.String("goxl", "/usr/local/bin/goxl", "the goxl CLI")
	xlBin   = flag.String("xl", "/usr/lib/xen-4.17/bin/xl", "xl")
	cfg     = flag.String("cfg", "/guest/guest.cfg", "the guest's xl config")
	name    = flag.String("name", "testguest", "the guest's name in cfg")
	reps    = flag.Int("n", 5, "timed repetitions per tool")
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

func cycle(tool string) (create, destroy float64, err error) {
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
	err := run(&r)
	if err != nil {
		r.Error = err.Error()
		fmt.Fprintln(os.Stderr, "xenbench:", err)
	}
	emit(r)
	if err != nil {
		os.Exit(1)
	}
}

func run(r *bench.XenResult) error {
	for _, tool := range []string{"xl", "goxl"} { // warm-up, untimed
		if _, _, err := cycle(tool); err != nil {
			return fmt.Errorf("warm-up with %s: %w", tool, err)
		}
	}
	for i := 0; i < *reps; i++ {
		order := []string{"goxl", "xl"}
		if i%2 == 1 {
			order = []string{"xl", "goxl"}
		}
		for _, tool := range order {
			c, d, err := cycle(tool)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "xenbench: rep %d %s: create %.0f ms, destroy %.0f ms\n", i+1, tool, c, d)
			if tool == "goxl" {
				r.GoxlCreateMS = append(r.GoxlCreateMS, c)
				r.GoxlDestroyMS = append(r.GoxlDestroyMS, d)
			} else {
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
