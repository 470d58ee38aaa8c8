// Package bench measures goxl side by side with its floors and with
// libvirt's default event loop (the one libvirt's libxl driver runs on).
//
// Every measurement here is a function that benchmarks (bench_test.go,
// in `go test -bench` form) and the table driver (cmd/benchtable, run by
// `make bench`) share. Implementations register themselves by name; which
// ones exist depends on build tags, so that goxl itself never depends on
// libvirt:
//
//	c-epoll      pure C epoll loop, one function-pointer callback per event
//	go-epoll     bare Go epoll loop (unix.EpollWait), no cgo
//	floor        go-epoll + one Go->C and one C->Go call per event
//	floor+model  go-epoll + libxl_osevent_occurred_fd on the contract
//	             model, whose owner calls one no-op hook back into Go
//	             (tag libxlmodel): libxl's own share of the cost
//	goxl-loop    driver/eventloop with a Go counting Sink, no cgo
//	goxl         the whole path: driver/eventloop, libxl.Ctx.OccurredFD,
//	             the model's occurred_fd, its no-op fd_modify hook through
//	             the C bridge back into the loop (tag libxlmodel)
//	libvirt      libvirt's public event API from Debian's libvirt-dev:
//	             virEventRegisterDefaultImpl, virEventAddHandle,
//	             virEventAddTimeout, virEventRunDefaultImpl (tag
//	             libvirtbench)
//	libvirt+model libvirt's loop driving the model's occurred_fd the way
//	             libvirt's libxl driver drives libxl: the ctx's fd hooks
//	             are virEventAddHandle/UpdateHandle/RemoveHandle, each
//	             callback calls libxl_osevent_occurred_fd, each live
//	             delivery makes one fd_modify hook call: the same work per
//	             event as goxl, so the ratio compares the loops (tags
//	             libvirtbench and libxlmodel)
//
// Scale (scale.go, tag libxlmodel): the goxl daemon (internal/daemon)
// on the model's fake domain table with few and with many domains, each
// daemon in a child process of its own (the test binary or benchtable
// re-executed with GOXL_BENCH_SCALE_CHILD set; MaybeScaleChild runs it),
// measured from outside through its socket and /proc.
//
// The dispatch workload is the same for all: n eventfds registered for
// POLLIN, k of them made readable once and never drained, so that a
// level-triggered loop reports each of them in every round; the cost is
// wall time per delivered event, on one dispatcher thread.
package bench
