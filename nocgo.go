//go:build !cgo

package goxl

// Supported reports whether this build can reach libxl. Without cgo it
// cannot; package libxl returns ErrNotSupported.
const Supported = false
