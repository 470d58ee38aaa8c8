//go:build cgo && xen42

package goxl

// With -tags xen42 the bridge is compiled against the libxl 4.2 API:
// LIBXL_API_VERSION 0x040200 is what 4.2.x's libxl.h accepts, and what
// 4.17's libxl.h maps to its 4.2-era declarations. The include and library
// paths of a 4.2 build come from CGO_CFLAGS/CGO_LDFLAGS (see `make xen42`).

// #cgo CFLAGS: -DLIBXL_API_VERSION=0x040200
import "C"
