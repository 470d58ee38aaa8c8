package bench

/*
#include "floor.h"
*/
import "C"

import (
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	startProbe = func() interface{ Stop() []time.Duration } { return StartTimerProbe() }
	register(&Impl{Name: "c-epoll", rank: 0, Desc: "pure C epoll loop, one callback per event", Dispatch: cEpoll})
	register(&Impl{Name: "go-epoll", rank: 10, Desc: "bare Go epoll loop, no cgo", Dispatch: goEpoll(false)})
	register(&Impl{Name: "floor", rank: 20, Desc: "Go epoll + one Go->C + one C->Go call per event", Dispatch: goEpoll(true)})
}

func cEpoll(fds []int, _ []int, events uint64) (Result, error) {
	cfds := make([]C.int, len(fds))
	for i, fd := range fds {
		cfds[i] = C.int(fd)
	}
	var got C.uint64_t
	var cpu C.int64_t
	ns := C.bench_c_epoll(&cfds[0], C.int(len(fds)), C.uint64_t(warmup(events)), C.uint64_t(events), &got, &cpu)
	if ns < 0 {
		return Result{}, fmt.Errorf("c-epoll: %w", syscall.Errno(-ns))
	}
	return Result{Elapsed: time.Duration(ns), CPU: time.Duration(cpu), Events: uint64(got)}, nil
}

// floorCount counts benchFloorNoop calls; only the benchmark goroutine
// calls it (through C), so it needs no atomics.
var floorCount uint64

//export benchFloorNoop
func benchFloorNoop(fd C.int) { floorCount++ }

// EpollLoop is a bare Go epoll loop over fds; per event it calls each
// (if not nil). It is the floor's loop and, with the contract model, the
// floor+model's.
func EpollLoop(fds []int, events uint64, each func(i int) uint64) (Result, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return Result{}, err
	}
	defer unix.Close(epfd)
	for i, fd := range fds {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(i)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return Result{}, err
		}
	}
	evs := make([]unix.EpollEvent, 256)
	var res Result
	for timed := 0; timed < 2; timed++ {
		want := warmup(events)
		if timed == 1 {
			want = events
		}
		var n uint64
		sw := startWatch()
		for n < want {
			k, err := unix.EpollWait(epfd, evs, -1)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return Result{}, err
			}
			if each == nil {
				for i := 0; i < k; i++ {
					n += uint64(evs[i].Fd>>31) + 1 // touch the event
				}
				continue
			}
			for i := 0; i < k; i++ {
				n += each(int(evs[i].Fd))
			}
		}
		res = sw.result(n)
	}
	return res, nil
}

func goEpoll(crossings bool) DispatchFunc {
	return func(fds []int, _ []int, events uint64) (Result, error) {
		if !crossings {
			return EpollLoop(fds, events, nil)
		}
		floorCount = 0
		var calls uint64
		r, err := EpollLoop(fds, events, func(i int) uint64 {
			C.bench_floor_occurred(C.int(fds[i]))
			calls++
			return 1
		})
		if err == nil && floorCount != calls {
			err = fmt.Errorf("floor: %d C->Go calls for %d events", floorCount, calls)
		}
		return r, err
	}
}

// TimerProbe measures the machine's own timer lateness meanwhile: a C
// thread sleeping to absolute deadlines 1 ms apart. Stop returns the
// samples.
type TimerProbe struct{ running bool }

// StartTimerProbe starts the probe (at most 10 minutes of samples).
func StartTimerProbe() *TimerProbe {
	return &TimerProbe{running: C.bench_probe_start(600000) == 0}
}

// Stop ends the probe and returns how late each wake-up was.
func (p *TimerProbe) Stop() []time.Duration {
	if !p.running {
		return nil
	}
	p.running = false
	buf := make([]C.int64_t, 600000)
	n := int(C.bench_probe_stop(&buf[0], C.int(len(buf))))
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(buf[i])
	}
	return out
}
