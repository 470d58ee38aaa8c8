//go:build cgo && libxlmodel

package libxl

// With -tags libxlmodel the libxl symbols come from goxl's contract model,
// so the bridge and the loop can be tested adversarially without Xen.

import _ "github.com/goxl/goxl/internal/libxlmodel"

// #cgo LDFLAGS: -l:libxlutil.a -lxentoollog
import "C"
