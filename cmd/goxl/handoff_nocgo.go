//go:build !cgo

package main

import (
	"fmt"
	"os"
	"syscall"

	"github.com/goxl/goxl/libxl"
)

// handOff replaces this process with the cgo goxl (companionPath), which
// runs the same command line. It returns only if that cannot be done.
// Callers hand off before they have written anything or read stdin.
func handOff(why string) error {
	bin := companionPath()
	if bin == "" {
		return fmt.Errorf("%s needs libxl, and this goxl is the daemon's client only (built without cgo): put %s beside it, or set GOXL_LIBXL_BIN: %w", why, companionName, libxl.ErrNotSupported)
	}
	err := syscall.Exec(bin, os.Args, os.Environ())
	return fmt.Errorf("%s needs libxl: exec %s: %w", why, bin, err)
}
