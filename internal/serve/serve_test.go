package serve

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// events records what the parts did, in order.
type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	e.list = append(e.list, s)
	e.mu.Unlock()
}

func (e *events) get() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.list)
}

// fakeServer serves until shut down; with slow set, its requests never
// finish, so Shutdown waits for the deadline.
type fakeServer struct {
	name    string
	ev      *events
	slow    bool
	serve   error // returned by Serve at once when set
	stopped chan struct{}
	once    sync.Once
}

func newFake(name string, ev *events) *fakeServer {
	return &fakeServer{name: name, ev: ev, stopped: make(chan struct{})}
}

func (f *fakeServer) Serve(net.Listener) error {
	if f.serve != nil {
		return f.serve
	}
	<-f.stopped
	return http.ErrServerClosed
}

func (f *fakeServer) Shutdown(ctx context.Context) error {
	f.ev.add(f.name + " stops accepting")
	f.once.Do(func() { close(f.stopped) })
	if f.slow {
		<-ctx.Done()
		return ctx.Err()
	}
	f.ev.add(f.name + " drained")
	return nil
}

func (f *fakeServer) Close() error {
	f.ev.add(f.name + " cut")
	f.once.Do(func() { close(f.stopped) })
	return nil
}

// parts registers a server, a link, background work and two stores that
// record their steps.
func parts(g *Group, ev *events, srv *fakeServer) error {
	g.OnClose("first store", func() error { ev.add("first store closed"); return nil })
	g.OnClose("second store", func() error { ev.add("second store closed"); return nil })
	g.Serve("http", srv, nil)
	g.Go("background", func(ctx context.Context) error {
		<-ctx.Done()
		ev.add("background cancelled")
		time.Sleep(5 * time.Second) // work that takes a while to wind down
		ev.add("background done")
		return ctx.Err()
	})
	return g.Link("link", func(context.Context) (func() error, error) {
		ev.add("link started")
		return func() error { ev.add("link stopped"); return nil }, nil
	})
}

// TestCancelStopsInOrder: the end of the context stops accepting,
// drains HTTP, stops the link, waits for background work and closes the
// stores, the last opened first; it is no error.
func TestCancelStopsInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ev := &events{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Run(ctx, Options{}, func(g *Group) error { return parts(g, ev, newFake("http", ev)) }) }()
		synctest.Wait()
		if got := ev.get(); !slices.Equal(got, []string{"link started"}) {
			t.Fatalf("before the cancellation: %q", got)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v, want nil", err)
		}
		want := []string{"link started", "http stops accepting", "http drained", "link stopped",
			"background cancelled", "background done", "second store closed", "first store closed"}
		if got := ev.get(); !slices.Equal(got, want) {
			t.Errorf("steps:\n got %q\nwant %q", got, want)
		}
	})
}

// TestDrainDeadline: requests that do not finish within the drain time
// are cut, the link still stops after them, and the cut is reported.
func TestDrainDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ev := &events{}
		ctx, cancel := context.WithCancel(context.Background())
		srv := newFake("http", ev)
		srv.slow = true
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, Options{Drain: 7 * time.Second}, func(g *Group) error { return parts(g, ev, srv) })
		}()
		synctest.Wait()
		cancel()
		t0 := time.Now()
		err := <-done
		if err == nil || !strings.Contains(err.Error(), "cut off") {
			t.Errorf("Run: %v, want requests cut off", err)
		}
		// 7 s of draining, then 5 s of background work winding down.
		if took := time.Since(t0); took != 12*time.Second {
			t.Errorf("stopping took %s, want 12s", took)
		}
		want := []string{"link started", "http stops accepting", "http cut", "link stopped",
			"background cancelled", "background done", "second store closed", "first store closed"}
		if got := ev.get(); !slices.Equal(got, want) {
			t.Errorf("steps:\n got %q\nwant %q", got, want)
		}
	})
}

// TestPartFailureStopsAll: a failing HTTP server or background work
// stops every other part, in order, and Run returns its error.
func TestPartFailureStopsAll(t *testing.T) {
	boom := errors.New("boom")
	for _, c := range []struct {
		name string
		fail func(g *Group, srv *fakeServer)
		want string
	}{
		{"serve", func(g *Group, srv *fakeServer) {
			bad := newFake("bad", srv.ev)
			bad.serve = boom
			g.Serve("bad", bad, nil)
		}, "bad: boom"},
		{"background", func(g *Group, srv *fakeServer) {
			g.Go("worker", func(context.Context) error { return boom })
		}, "worker: boom"},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ev := &events{}
				srv := newFake("http", ev)
				err := Run(context.Background(), Options{}, func(g *Group) error {
					if err := parts(g, ev, srv); err != nil {
						return err
					}
					c.fail(g, srv)
					return nil
				})
				if !errors.Is(err, boom) || err.Error() != c.want {
					t.Errorf("Run: %v, want %q", err, c.want)
				}
				got := ev.get()
				for _, step := range []string{"http stops accepting", "link stopped", "background done", "first store closed"} {
					if !slices.Contains(got, step) {
						t.Errorf("steps %q lack %q", got, step)
					}
				}
			})
		})
	}
}

// TestLinkFailureStopsServer: with a real HTTP server already serving,
// a link that fails to start stops the server (its port refuses
// connections afterwards), closes the stores and returns the link's
// error.
func TestLinkFailureStopsServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	noHub := errors.New("node: hub link: no hub")
	closed, ranBackground := false, false
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	err = Run(context.Background(), Options{}, func(g *Group) error {
		g.OnClose("store", func() error { closed = true; return nil })
		g.Serve("http", srv, ln)
		g.Go("background", func(ctx context.Context) error { <-ctx.Done(); ranBackground = true; return nil })
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			t.Errorf("the server does not serve before the link starts: %v", err)
		} else {
			resp.Body.Close()
		}
		return g.Link("hub link", func(context.Context) (func() error, error) { return nil, noHub })
	})
	if !errors.Is(err, noHub) {
		t.Errorf("Run: %v, want %v", err, noHub)
	}
	if !closed || !ranBackground {
		t.Errorf("store closed %v, background ended %v: want both", closed, ranBackground)
	}
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		t.Error("the HTTP server still accepts connections after the link failed")
	}
}

// TestSetupFailure: an error of setup stops what it started and is
// returned.
func TestSetupFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ev := &events{}
		bad := errors.New("listen: address in use")
		err := Run(context.Background(), Options{}, func(g *Group) error {
			g.Serve("http", newFake("http", ev), nil)
			return bad
		})
		if !errors.Is(err, bad) {
			t.Errorf("Run: %v, want %v", err, bad)
		}
		if got := ev.get(); !slices.Contains(got, "http drained") {
			t.Errorf("steps %q: the server was not shut down", got)
		}
	})
}

// TestStoppedBeforeStart: a context that ends before the link started
// is an ordinary stop, not an error, even when setup passes on the
// cancellation the link start met.
func TestStoppedBeforeStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ev := &events{}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := Run(ctx, Options{}, func(g *Group) error {
			g.Serve("http", newFake("http", ev), nil)
			return g.Link("link", func(ctx context.Context) (func() error, error) {
				ev.add("link started")
				return nil, ctx.Err()
			})
		})
		if err != nil {
			t.Errorf("Run: %v, want nil", err)
		}
		if got := ev.get(); slices.Contains(got, "link started") || !slices.Contains(got, "http drained") {
			t.Errorf("steps %q: want the server shut down and no link started", got)
		}
	})
}

// TestHandlerOutlivesDrain: a request whose handler runs past the drain
// time has its connection cut, but the links stop and the stores close
// only once the handler returned; one that runs past Options.Finish
// too is reported, and then the links stop and the stores close.
func TestHandlerOutlivesDrain(t *testing.T) {
	for _, c := range []struct {
		name    string
		handler time.Duration // how long the handler runs
		took    time.Duration // from the cancellation to Run's return
		steps   []string
		errs    []string
	}{
		{"returns", 12 * time.Second, 17 * time.Second,
			[]string{"link started", "http stops accepting", "http cut", "handler returned", "link stopped",
				"background cancelled", "background done", "second store closed", "first store closed"},
			[]string{"cut off"}},
		// 7 s of draining, 10 s of waiting for the handler, 5 s of background work.
		{"bound passes", 100 * time.Second, 22 * time.Second,
			[]string{"link started", "http stops accepting", "http cut", "link stopped",
				"background cancelled", "background done", "second store closed", "first store closed"},
			[]string{"cut off", "1 request handler was still running 10s after the connections were cut"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ev := &events{}
				ctx, cancel := context.WithCancel(context.Background())
				srv := newFake("http", ev)
				srv.slow = true
				slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					time.Sleep(c.handler)
					ev.add("handler returned")
				})
				done, served := make(chan error, 1), make(chan struct{})
				go func() {
					done <- Run(ctx, Options{Drain: 7 * time.Second, Finish: 10 * time.Second}, func(g *Group) error {
						h := g.Handler(slow)
						go func() {
							defer close(served)
							h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/studies", nil))
						}()
						return parts(g, ev, srv)
					})
				}()
				synctest.Wait()
				cancel()
				t0 := time.Now()
				err := <-done
				if took := time.Since(t0); took != c.took {
					t.Errorf("stopping took %s, want %s", took, c.took)
				}
				for _, want := range c.errs {
					if err == nil || !strings.Contains(err.Error(), want) {
						t.Errorf("Run: %v, want it to say %q", err, want)
					}
				}
				if got := ev.get(); !slices.Equal(got, c.steps) {
					t.Errorf("steps:\n got %q\nwant %q", got, c.steps)
				}
				<-served
			})
		})
	}
}

// TestServeWaitsForHandler: with a real HTTP server, a handler still
// running when its connection is cut at the end of the drain keeps the
// store open until it returns.
func TestServeWaitsForHandler(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var closed, closedWhileRunning bool
	running := false
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		running = true
		mu.Unlock()
		close(entered)
		<-release
		mu.Lock()
		running = false
		mu.Unlock()
	})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Drain: 100 * time.Millisecond, Finish: time.Minute}, func(g *Group) error {
			g.OnClose("store", func() error {
				mu.Lock()
				closed, closedWhileRunning = true, running
				mu.Unlock()
				return nil
			})
			g.Serve("http", srv, ln)
			return nil
		})
	}()
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	cancel()
	time.Sleep(500 * time.Millisecond) // well past the drain: the connection is cut
	mu.Lock()
	early := closed
	mu.Unlock()
	if early {
		t.Error("the store closed while a handler still ran")
	}
	close(release)
	err = <-done
	if err == nil || !strings.Contains(err.Error(), "cut off") {
		t.Errorf("Run: %v, want requests cut off", err)
	}
	if !closed || closedWhileRunning {
		t.Errorf("store closed %v, while the handler ran %v: want closed after it returned", closed, closedWhileRunning)
	}
}
