package bench

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// EventFDs opens n non-blocking eventfds.
func EventFDs(n int) ([]int, error) {
	fds := make([]int, 0, n)
	for i := 0; i < n; i++ {
		fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
		if err != nil {
			CloseFDs(fds)
			return nil, fmt.Errorf("eventfd %d of %d: %w (RLIMIT_NOFILE?)", i+1, n, err)
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

// CloseFDs closes fds.
func CloseFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// ActiveSet returns k indexes spread evenly over n.
func ActiveSet(n, k int) []int {
	if k > n {
		k = n
	}
	out := make([]int, k)
	for i := range out {
		out[i] = i * (n / k)
	}
	return out
}

// Activate makes fds[i] readable for each i in active (level-triggered:
// they stay readable until drained).
func Activate(fds []int, active []int) error {
	one := [8]byte{1}
	for _, i := range active {
		if _, err := unix.Write(fds[i], one[:]); err != nil {
			return fmt.Errorf("activate eventfd %d: %w", fds[i], err)
		}
	}
	return nil
}

// Drain makes active fds unreadable again.
func Drain(fds []int, active []int) {
	var buf [8]byte
	for _, i := range active {
		unix.Read(fds[i], buf[:])
	}
}
