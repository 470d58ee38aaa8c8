//go:build cgo && !libxlmodel && !xen42

package libxl

// Production builds link Debian's libxenlight (libxen-dev). Tests that run
// without Xen build with -tags libxlmodel instead, which links goxl's C
// model of libxl (internal/libxlmodel) in its place.

// #cgo LDFLAGS: -lxenlight -lxlutil -lxentoollog
import "C"
