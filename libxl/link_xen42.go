//go:build cgo && !libxlmodel && xen42

package libxl

// With -tags xen42 the binding is compiled against the libxl 4.2 API
// (LIBXL_API_VERSION 0x040200) and links libxenlight.so.2.0. The logger
// (xtl_*) is in libxenctrl in 4.2 and in libxentoollog from 4.5, which no
// header can tell the linker: CGO_LDFLAGS names it (`make xen42` passes
// -lxenctrl; against 4.17's libraries pass -lxentoollog). Where 4.2 lacks a
// call, compat.h selects by LIBXL_API_VERSION and LIBXL_HAVE_* (never by
// the version libxl reports at run time) and goxl returns ErrNotSupported.

// #cgo CFLAGS: -DLIBXL_API_VERSION=0x040200
// #cgo LDFLAGS: -lxenlight -lxlutil
import "C"
