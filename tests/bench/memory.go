package bench

import "runtime"

// Memory is goxl's Go heap cost per registration and per ctx.
type Memory struct {
	FDBytes, TimeoutBytes, CtxBytes    float64 // live heap bytes each, after GC
	FDAllocs, TimeoutAllocs, CtxAllocs float64 // heap allocations each
	N, Ctxs                            int
}

// MeasureMemory is set by goxl.go (tag libxlmodel).
var MeasureMemory func() (Memory, error)

type heapSnap struct{ live, mallocs uint64 }

func snapHeap() heapSnap {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return heapSnap{live: ms.HeapAlloc, mallocs: ms.Mallocs}
}

func perItem(a, b heapSnap, n int) (bytes, allocs float64) {
	return (float64(b.live) - float64(a.live)) / float64(n), (float64(b.mallocs) - float64(a.mallocs)) / float64(n)
}
