package bench

// XenResult is what the Xen-under-QEMU step (xenbench, run inside dom0)
// writes: wall times in milliseconds, one per repetition, taken on one
// boot, goxl and xl interleaved.
type XenResult struct {
	GoxlCreateMS  []float64 `json:"goxl_create_ms"`
	XLCreateMS    []float64 `json:"xl_create_ms"`
	GoxlDestroyMS []float64 `json:"goxl_destroy_ms"`
	XLDestroyMS   []float64 `json:"xl_destroy_ms"`
	Error         string    `json:"error,omitempty"`
}
