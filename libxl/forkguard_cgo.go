//go:build cgo

package libxl

// int goxl_forkguard_selftest_concurrent_forks(void);
import "C"

// forkGuardChildrenThatHung runs forkguard.c's self-test: two forks at
// once while the guard is held shared and a reader waits. It returns how
// many of the two children could not take the guard (killed after two
// seconds), or -1 if the test could not make its threads or children.
func forkGuardChildrenThatHung() int { return int(C.goxl_forkguard_selftest_concurrent_forks()) }
