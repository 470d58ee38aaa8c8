//go:build cgo && !libxlmodel && !xen42

package libxl

// int goxl_forkguard_interposed(void);
import "C"

// forkGuardInterposed reports whether the libraries' calls to the
// functions that take xentoolcore's and libxencall's process-wide mutexes
// reach forkguard.c's wrappers.
func forkGuardInterposed() bool { return C.goxl_forkguard_interposed() != 0 }
