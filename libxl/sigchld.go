//go:build cgo

package libxl

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// sigchld forwards SIGCHLD to every live ctx. libxl runs in
// libxl_sigchld_owner_mainloop mode: the Go runtime owns the signal, and
// libxl's own modes would abort the process at its first fork. The
// forwarder calls libxl_childproc_sigchld_occurred from a goroutine, never
// from a signal handler, and libxl reaps only its own children.
//
// The goroutine runs while at least one ctx is live, so that a process
// with no ctx has none left behind.
var sigchld sigchldForwarder

type sigchldForwarder struct {
	mu   sync.Mutex // guards ctxs, ch, done; never held while calling libxl
	ctxs map[*Ctx]struct{}
	ch   chan os.Signal
	done chan struct{}
}

func (f *sigchldForwarder) add(c *Ctx) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctxs == nil {
		f.ctxs = map[*Ctx]struct{}{}
	}
	f.ctxs[c] = struct{}{}
	if f.ch == nil {
		f.ch = make(chan os.Signal, 1)
		f.done = make(chan struct{})
		signal.Notify(f.ch, syscall.SIGCHLD)
		go f.run(f.ch, f.done)
	}
}

// remove stops forwarding to c. A forward already under way finishes under
// c's life lock, which Close takes before libxl_ctx_free.
func (f *sigchldForwarder) remove(c *Ctx) {
	f.mu.Lock()
	delete(f.ctxs, c)
	var stop chan os.Signal
	var done chan struct{}
	if len(f.ctxs) == 0 && f.ch != nil {
		stop, done = f.ch, f.done
		f.ch, f.done = nil, nil
		signal.Stop(stop)
	}
	f.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

func (f *sigchldForwarder) run(ch chan os.Signal, done chan struct{}) {
	defer close(done)
	for range ch {
		f.mu.Lock()
		live := make([]*Ctx, 0, len(f.ctxs))
		for c := range f.ctxs {
			live = append(live, c)
		}
		f.mu.Unlock()
		for _, c := range live {
			c.sigchldOccurred()
		}
	}
}
