//go:build !cgo

package threaddump

import (
	"errors"
	"syscall"
)

// Supported says whether this build can print C stacks (it needs cgo).
const Supported = false

// DumpSignal is unused without cgo.
var DumpSignal = syscall.Signal(0)

// Install reports that C stacks need cgo; DumpAllThreads still prints
// what the kernel knows of each thread.
func Install() error { return errors.New("threaddump: C stacks need cgo") }

func dumpsDone() int { return 0 }

// abortOnReaderLikeThread needs a C thread: without cgo it returns at once.
func abortOnReaderLikeThread() {}
