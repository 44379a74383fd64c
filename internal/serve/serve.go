// Package serve runs the parts of a serving process as one unit: HTTP
// servers, the federation link, background work and the stores they
// use. Every part starts together; when any part fails or the caller's
// context ends, everything stops, in an order that lets work finish:
//
//  1. every HTTP server stops accepting connections;
//  2. requests in flight drain, for at most Options.Drain, after which
//     the connections still open are cut; cutting a connection does not
//     stop its handler, so Run then waits, for at most Options.Finish,
//     until every handler of the group's servers returned (past that it
//     reports the handlers still running and goes on);
//  3. the federation links stop (a node tells its hub it is leaving);
//  4. background work is cancelled and waited for;
//  5. the stores close, the last registered first.
//
// Run returns the first real error: the one that made the process stop,
// else those met while stopping, joined. The end of the caller's context
// is the ordinary way to stop and is no error.
package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// DefaultDrain is how long HTTP requests in flight may take to finish
// when Options.Drain is zero.
const DefaultDrain = 30 * time.Second

// DefaultFinish is how long handlers still running after their
// connections were cut may take to return when Options.Finish is zero.
const DefaultFinish = 30 * time.Second

// Options steer Run.
type Options struct {
	// Drain bounds how long requests in flight may take once the HTTP
	// servers stopped accepting (default DefaultDrain).
	Drain time.Duration
	// Finish bounds how long Run then waits for handlers still running
	// (their connections cut) before it stops the links and closes the
	// stores anyway (default DefaultFinish).
	Finish time.Duration
	// Log receives a line per stopping step and the errors met after
	// the first (nil: discarded).
	Log *slog.Logger
}

// Server is an HTTP server: *http.Server is one.
type Server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

var _ Server = (*http.Server)(nil)

// Group holds the parts of a process while Run's setup registers them.
type Group struct {
	opts   Options
	ctx    context.Context // ends when stopping begins
	cancel context.CancelFunc
	bg     context.Context // ends when background work must stop
	stopBG context.CancelFunc

	mu      sync.Mutex
	err     error
	failed  bool // err made the group stop (else it was met while stopping)
	servers []named[Server]
	links   []named[func() error]
	closers []named[func() error]
	serving sync.WaitGroup // the goroutines of Serve
	working sync.WaitGroup // the goroutines of Go
	running inflight       // the handlers of the group's servers
}

// inflight counts handlers running. Unlike a sync.WaitGroup it may
// count up again while someone waits for it to reach zero.
type inflight struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n reaches zero
}

func (f *inflight) enter() {
	f.mu.Lock()
	if f.n == 0 {
		f.idle = make(chan struct{})
	}
	f.n++
	f.mu.Unlock()
}

func (f *inflight) leave() {
	f.mu.Lock()
	f.n--
	if f.n == 0 {
		close(f.idle)
	}
	f.mu.Unlock()
}

// wait waits until no handler runs, or ctx ends; it returns how many
// still run.
func (f *inflight) wait(ctx context.Context) int {
	f.mu.Lock()
	if f.n == 0 {
		f.mu.Unlock()
		return 0
	}
	idle := f.idle
	f.mu.Unlock()
	select {
	case <-idle:
		return 0
	case <-ctx.Done():
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

type named[T any] struct {
	name string
	v    T
}

// Run calls setup to start the parts of a process on g, then waits until
// a part fails, setup fails, or ctx ends, and stops every part
// registered, in order (see the package comment). Setup should start
// what it registers without blocking for long; what it waits for must
// end with g.Context().
func Run(ctx context.Context, opts Options, setup func(g *Group) error) error {
	if opts.Drain <= 0 {
		opts.Drain = DefaultDrain
	}
	if opts.Finish <= 0 {
		opts.Finish = DefaultFinish
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	g := &Group{opts: opts}
	g.ctx, g.cancel = context.WithCancel(ctx)
	g.bg, g.stopBG = context.WithCancel(context.Background())
	if err := setup(g); err != nil && !g.stopped(err) {
		g.fail(err)
	}
	<-g.ctx.Done()
	g.stop()
	return g.err
}

// Context ends when the group starts stopping: a part failed, or Run's
// context ended. Setup waits on it.
func (g *Group) Context() context.Context { return g.ctx }

// stopped reports whether err only says that the group is stopping.
func (g *Group) stopped(err error) bool {
	return g.ctx.Err() != nil && errors.Is(err, context.Canceled)
}

// fail records err if it is the first, and starts stopping.
func (g *Group) fail(err error) {
	g.mu.Lock()
	if g.err == nil {
		g.err, g.failed = err, true
	} else {
		g.opts.Log.Warn("serve: another error", "err", err)
	}
	g.mu.Unlock()
	g.cancel()
}

// note records err met while stopping, if nothing failed before; the
// errors met while stopping are joined (a cut and the handlers it left
// running are both worth telling).
func (g *Group) note(err error) {
	if err == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.err == nil:
		g.err = err
	case !g.failed:
		g.err = errors.Join(g.err, err)
	default:
		g.opts.Log.Warn("serve: another error while stopping", "err", err)
	}
}

// Serve serves srv on ln until the group stops. An error of Serve (other
// than the server being shut down) stops the group, prefixed with name.
// An *http.Server's handler is wrapped with Handler, so that the group
// waits for its requests before it stops the links and closes the
// stores; another Server should wrap its handlers itself.
func (g *Group) Serve(name string, srv Server, ln net.Listener) {
	if hs, ok := srv.(*http.Server); ok {
		h := hs.Handler
		if h == nil {
			h = http.DefaultServeMux
		}
		hs.Handler = g.Handler(h)
	}
	g.mu.Lock()
	g.servers = append(g.servers, named[Server]{name, srv})
	g.mu.Unlock()
	g.serving.Add(1)
	go func() {
		defer g.serving.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && g.ctx.Err() == nil {
			g.fail(fmt.Errorf("%s: %w", name, err))
		}
	}()
}

// Handler returns h counted as running while it serves a request: Run
// waits, bounded by Options.Finish, for every request so counted before
// it stops the links and closes the stores, even when the request's
// connection was cut.
func (g *Group) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.running.enter()
		defer g.running.leave()
		h.ServeHTTP(w, r)
	})
}

// Link starts a federation link with start, which returns the function
// that stops it (nil when there is nothing to stop, as for a node that
// never enrolled). A failed start stops the group; Link returns the
// error too, so that setup can return at once. Links stop after the
// HTTP servers drained, the last registered first.
func (g *Group) Link(name string, start func(ctx context.Context) (stop func() error, err error)) error {
	if err := g.ctx.Err(); err != nil {
		return err
	}
	stop, err := start(g.ctx)
	if err != nil {
		if !g.stopped(err) {
			g.fail(err)
		}
		return err
	}
	if stop != nil {
		g.mu.Lock()
		g.links = append(g.links, named[func() error]{name, stop})
		g.mu.Unlock()
	}
	return nil
}

// Go runs fn in the background. Its context ends once the HTTP servers
// drained and the links stopped; Run waits for fn to return before it
// closes the stores. An error fn returns while the group runs stops the
// group; once stopping began, errors that only report the cancellation
// are ignored.
func (g *Group) Go(name string, fn func(ctx context.Context) error) {
	g.working.Add(1)
	go func() {
		defer g.working.Done()
		err := fn(g.bg)
		switch {
		case err == nil:
		case g.bg.Err() != nil && errors.Is(err, context.Canceled):
		case g.ctx.Err() == nil:
			g.fail(fmt.Errorf("%s: %w", name, err))
		default:
			g.note(fmt.Errorf("%s: %w", name, err))
		}
	}()
}

// OnClose registers close to run last, after every other part stopped:
// for the stores the parts use. Closers run the last registered first,
// as deferred calls do.
func (g *Group) OnClose(name string, close func() error) {
	g.mu.Lock()
	g.closers = append(g.closers, named[func() error]{name, close})
	g.mu.Unlock()
}

// stop stops every part in order.
func (g *Group) stop() {
	log := g.opts.Log
	g.mu.Lock()
	servers, links, closers := g.servers, g.links, g.closers
	g.mu.Unlock()

	// 1 and 2: stop accepting, drain, cut what is left.
	if len(servers) > 0 {
		log.Info("serve: stopping HTTP", "drain", g.opts.Drain.String())
		ctx, cancel := context.WithTimeout(context.Background(), g.opts.Drain)
		var wg sync.WaitGroup
		for _, s := range servers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := s.v.Shutdown(ctx)
				if errors.Is(err, context.DeadlineExceeded) {
					s.v.Close()
					g.note(fmt.Errorf("%s: requests still running after %s were cut off", s.name, g.opts.Drain))
				} else if err != nil {
					g.note(fmt.Errorf("%s: %w", s.name, err))
				}
			}()
		}
		wg.Wait()
		cancel()
	}
	g.serving.Wait()
	// Cut connections leave their handlers running: they may still be
	// using what the links and stores below provide.
	ctx, cancel := context.WithTimeout(context.Background(), g.opts.Finish)
	if left := g.running.wait(ctx); left > 0 {
		what := "1 request handler was"
		if left > 1 {
			what = fmt.Sprintf("%d request handlers were", left)
		}
		g.note(fmt.Errorf("serve: %s still running %s after the connections were cut; the links stopped and the stores closed regardless", what, g.opts.Finish))
	}
	cancel()

	// 3: the links.
	for i := len(links) - 1; i >= 0; i-- {
		log.Info("serve: stopping", "part", links[i].name)
		if err := links[i].v(); err != nil {
			g.note(fmt.Errorf("%s: %w", links[i].name, err))
		}
	}

	// 4: background work.
	g.stopBG()
	g.working.Wait()

	// 5: the stores.
	for i := len(closers) - 1; i >= 0; i-- {
		if err := closers[i].v(); err != nil {
			g.note(fmt.Errorf("%s: close: %w", closers[i].name, err))
		}
	}
}
