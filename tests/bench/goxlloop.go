package bench

import (
	"sync/atomic"

	"github.com/goxl/goxl/driver/eventloop"
	"github.com/goxl/goxl/internal/osevent"
)

func init() {
	register(&Impl{Name: "goxl-loop", rank: 40, Desc: "driver/eventloop with a Go counting Sink (no cgo)", Dispatch: goxlLoopDispatch})
}

// countSink counts fd deliveries (only the dispatcher calls it) and
// signals done when the count reaches target.
type countSink struct {
	n      atomic.Uint64
	target atomic.Uint64
	done   chan struct{}
}

func (s *countSink) OccurredFD(osevent.ForLibxl, int, osevent.PollEvents, osevent.PollEvents, osevent.Liveness) {
	if s.n.Add(1) == s.target.Load() {
		s.done <- struct{}{}
	}
}

func (s *countSink) OccurredTimeout(osevent.ForLibxl, osevent.Liveness) {}

// runTo times the next n deliveries.
func (s *countSink) runTo(n uint64) Result {
	sw := startWatch()
	s.target.Store(s.n.Load() + n)
	<-s.done
	return sw.result(n)
}

func goxlLoopDispatch(fds []int, active []int, events uint64) (Result, error) {
	l, err := eventloop.New(eventloop.Options{})
	if err != nil {
		return Result{}, err
	}
	defer l.Close()
	sink := &countSink{done: make(chan struct{}, 1)}
	bd := l.Attach(sink)
	defer func() {
		Drain(fds, active)
		bd.CloseGate()
		bd.Reap()
		bd.Detach()
	}()
	for i, fd := range fds {
		if _, err := bd.FDRegister(fd, osevent.PollIn, osevent.ForLibxl(i+1)); err != nil {
			return Result{}, err
		}
	}
	sink.runTo(warmup(events))
	return sink.runTo(events), nil
}
