package bench

import (
	"fmt"
	"os"
	"sort"
	"time"
)

// The scale measurement (scale.go, tag libxlmodel): the goxl daemon on
// the contract model with few domains and with many. The types live here
// so that cmd/benchtable builds without the model.

// scaleChildEnv makes a process a scale child: "N,DIR,RESYNC".
const scaleChildEnv = "GOXL_BENCH_SCALE_CHILD"

// RunScale runs the scale measurement (nil without the libxlmodel tag).
var RunScale func(spec ScaleSpec, logf func(string, ...any)) (*ScaleResult, error)

var scaleChildMain func(spec string) error

// MaybeScaleChild runs the scale child and exits if this process is one
// (call it first in main or TestMain).
func MaybeScaleChild() {
	spec := os.Getenv(scaleChildEnv)
	if spec == "" {
		return
	}
	if scaleChildMain == nil {
		fmt.Fprintln(os.Stderr, "scale child: built without the libxlmodel tag")
		os.Exit(2)
	}
	if err := scaleChildMain(spec); err != nil {
		fmt.Fprintln(os.Stderr, "scale child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// ScaleSpec shapes the scale measurement.
type ScaleSpec struct {
	Small, Large int           // domains per daemon
	Reps         int           // interleaved repetitions
	Window       time.Duration // CPU window
	Resync       time.Duration // resync period of the "resync" daemons
	Events       int           // pause/unpause operations per event burst
	Lists        int           // list calls per repetition
	GoxlBin      string        // the goxl CLI for `goxl list` ("": skip)
}

// DefaultScale is what `make bench` runs.
var DefaultScale = ScaleSpec{Small: 10, Large: 1000, Reps: 3, Window: 3 * time.Second,
	Resync: 100 * time.Millisecond, Events: 400, Lists: 5}

// ScaleSide is one domain count's figures, one entry per repetition.
type ScaleSide struct {
	N             int       `json:"n"`
	HeapBytes     float64   `json:"heap_bytes"` // Go heap after GC, domains created
	HeapObjects   float64   `json:"heap_objects"`
	RSSBytes      float64   `json:"rss_bytes"`
	IdleCPU       []float64 `json:"idle_cpu_per_s"`   // CPU s per s, default resync period (5 s)
	ResyncCPU     []float64 `json:"resync_cpu_per_s"` // CPU s per s, resync every ScaleSpec.Resync
	EventP50us    []float64 `json:"event_p50_us"`     // client sends pause → its event arrives on a subscription
	EventP99us    []float64 `json:"event_p99_us"`
	DeliverP99us  []float64 `json:"deliver_p99_us"`      // driver publishes → the subscriber reads it
	CPUPerEventUs []float64 `json:"cpu_per_event_us"`    // daemon CPU per pause/unpause + its event
	ListClientMs  []float64 `json:"list_client_ms"`      // daemon.Client list, in this process
	ListCLIMs     []float64 `json:"list_cli_ms"`         // `goxl list` through the daemon, whole process
	Events        int       `json:"events_per_burst"`    //
	Lost          int       `json:"events_not_received"` // must stay 0
}

// ScaleResult is the scale measurement.
type ScaleResult struct {
	Spec  ScaleSpec   `json:"spec"`
	Sides []ScaleSide `json:"sides"` // Small, Large
	// StopHangs counts child daemons whose Stop did not return within
	// 15 s after the measurements (killed; their stacks are in the log).
	StopHangs int `json:"stop_hangs"`
}

// MedianF is the median of v (0 if empty).
func MedianF(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
