package bench

// XenResult is what the Xen-under-QEMU step (xenbench, run inside dom0)
// writes: wall times in milliseconds, one per repetition, taken on one
// boot, goxl and xl interleaved.
type XenResult struct {
	GoxlCreateMS  []float64 `json:"goxl_create_ms"`
	XLCreateMS    []float64 `json:"xl_create_ms"`
	GoxlDestroyMS []float64 `json:"goxl_destroy_ms"`
	XLDestroyMS   []float64 `json:"xl_destroy_ms"`
	// Through the goxl library in a long-lived process (driver and ctx
	// already open), as a management daemon sees it: no process start.
	LibCreateMS  []float64 `json:"lib_create_ms,omitempty"`
	LibDestroyMS []float64 `json:"lib_destroy_ms,omitempty"`
	Error        string    `json:"error,omitempty"`
}
