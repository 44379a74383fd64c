package relay

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/fed"
)

// fixture is a hub and nodes over a real embedded NATS server with the
// hub's permission model: each node may publish only below its own node
// subjects and subscribe only to what fed.NodeSubscribeAllow lists.
type fixture struct {
	t       *testing.T
	url     string
	priv    ed25519.PrivateKey
	pub     ed25519.PublicKey
	hubConn *nats.Conn
	client  *Client
	srv     *httptest.Server
	// path is what the hub's test route asks of the node; every request
	// goes to node "n1".
	node string
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	users := []*server.User{{Username: "hub", Password: "hub-secret"}}
	for _, id := range []string{"n1", "n2"} {
		users = append(users, &server.User{Username: id, Password: id + "-secret", Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: fed.NodePublishAllow(id)},
			Subscribe: &server.SubjectPermission{Allow: fed.NodeSubscribeAllow(id)},
			Response:  &server.ResponsePermission{MaxMsgs: 1, Expires: 2 * time.Minute},
		}})
	}
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, Users: users, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server did not start")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	f := &fixture{t: t, url: ns.ClientURL(), priv: priv, pub: pub, node: "n1"}
	f.hubConn = f.connect("hub")
	if opts.Log == nil {
		opts.Log = testLog(t)
	}
	f.client = NewClient(f.hubConn, func(task fed.Task) ([]byte, error) { return fed.Seal(priv, fed.SignerHub, task) }, opts)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.client.Forward(w, r, f.node, fed.RelayRequest{Path: r.URL.Path, Permit: "permit", Researcher: "alice", Root: "http://" + r.Host + "/"})
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func testLog(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

func (f *fixture) connect(user string, opts ...nats.Option) *nats.Conn {
	f.t.Helper()
	nc, err := nats.Connect(f.url, append([]nats.Option{nats.UserInfo(user, user+"-secret"), nats.MaxReconnects(0)}, opts...)...)
	if user == "hub" {
		// Slow consumers are expected when a test's node floods its stream.
		nc, err = nats.Connect(f.url, nats.UserInfo("hub", "hub-secret"), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	}
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(nc.Close)
	return nc
}

// serveNode makes node id answer relay tasks on nc with resolve, as a
// node's link does: tasks opened with the hub's key, Serve per request.
func (f *fixture) serveNode(nc *nats.Conn, id string, resolve Resolver) {
	f.t.Helper()
	var replay fed.Replay
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	_, err := nc.Subscribe(fed.TaskSubject(id), func(m *nats.Msg) {
		task, err := fed.OpenTask(f.pub, m.Data, id, time.Now(), 30*time.Second, &replay)
		if err != nil || task.Kind != fed.TaskRelay {
			f.t.Errorf("node %s: task refused: %v", id, err)
			return
		}
		var req fed.RelayRequest
		if err := json.Unmarshal(task.Body, &req); err != nil {
			f.t.Errorf("node %s: bad body: %v", id, err)
			return
		}
		wg.Add(1)
		go func() { defer wg.Done(); Serve(ctx, nc, id, req, resolve, testLog(f.t)) }()
	})
	if err != nil {
		f.t.Fatal(err)
	}
	nc.Flush()
	f.t.Cleanup(func() { cancel(); wg.Wait() })
}

func handler(h http.HandlerFunc) Resolver {
	return func(context.Context, fed.RelayRequest) (http.Handler, error) { return h, nil }
}

// TestSmallAnswer: a small answer arrives whole with its status, the
// safe headers (not Set-Cookie), and the request's path, query and
// relayed headers reach the node's handler.
func TestSmallAnswer(t *testing.T) {
	f := newFixture(t, Options{})
	var got fed.RelayRequest
	var gotReq *http.Request
	f.serveNode(f.connect("n1"), "n1", func(_ context.Context, req fed.RelayRequest) (http.Handler, error) {
		got = req
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			gotReq = r
			w.Header().Set("Content-Type", "application/dicom+json")
			w.Header().Set("ETag", `"v1"`)
			w.Header().Set("Set-Cookie", "session=stolen")
			w.WriteHeader(http.StatusPartialContent)
			io.WriteString(w, `[{"0020000D":{"vr":"UI","Value":["1.2.3"]}}]`)
		}), nil
	})
	req, _ := http.NewRequest("GET", f.srv.URL+"/studies/1.2.3/series?limit=5&offset=2", nil)
	req.Header.Set("Accept", "application/dicom+json")
	req.Header.Set("Range", "bytes=0-9")
	req.Header.Set("Cookie", "hub-session=secret")
	req.Header.Set("Authorization", "Bearer secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusPartialContent || string(body) != `[{"0020000D":{"vr":"UI","Value":["1.2.3"]}}]` {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("ETag") != `"v1"` || resp.Header.Get("Content-Type") != "application/dicom+json" {
		t.Errorf("headers lost: %v", resp.Header)
	}
	if resp.Header.Get("Set-Cookie") != "" {
		t.Errorf("the node set a cookie on the hub: %v", resp.Header)
	}
	if got.Path != "/studies/1.2.3/series" || got.Query != "limit=5&offset=2" || got.Method != "GET" || got.Permit != "permit" || got.Researcher != "alice" {
		t.Errorf("relayed request: %+v", got)
	}
	if gotReq.URL.Path != "/studies/1.2.3/series" || gotReq.URL.Query().Get("offset") != "2" || gotReq.Header.Get("Accept") != "application/dicom+json" || gotReq.Header.Get("Range") != "bytes=0-9" {
		t.Errorf("handler's request: %s %v", gotReq.URL, gotReq.Header)
	}
	if len(got.Header["Cookie"]) > 0 || len(got.Header["Authorization"]) > 0 {
		t.Errorf("the hub sent its credentials to the node: %v", got.Header)
	}
	if gotReq.Header.Get("Cookie") != "" || gotReq.Header.Get("Authorization") != "" {
		t.Errorf("the hub's credentials reached the node: %v", gotReq.Header)
	}
	testutilEventually(t, func() error {
		if n := f.client.Streams(); n != 0 {
			return fmt.Errorf("%d streams still open", n)
		}
		return nil
	})
}

func testutilEventually(t *testing.T, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lazyBody writes n pseudo-random bytes made on the fly, 64 KiB at a
// time, and hashes them.
func lazyBody(w io.Writer, n int64, written *atomic.Int64) ([]byte, error) {
	h := sha256.New()
	buf := make([]byte, 64<<10)
	var x uint64 = 0x9E3779B97F4A7C15
	for n > 0 {
		k := min(int64(len(buf)), n)
		for i := 0; i+8 <= int(k); i += 8 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			buf[i], buf[i+1], buf[i+2], buf[i+3] = byte(x), byte(x>>8), byte(x>>16), byte(x>>24)
			buf[i+4], buf[i+5], buf[i+6], buf[i+7] = byte(x>>32), byte(x>>40), byte(x>>48), byte(x>>56)
		}
		h.Write(buf[:k])
		if _, err := w.Write(buf[:k]); err != nil {
			return nil, err
		}
		if written != nil {
			written.Add(k)
		}
		n -= k
	}
	return h.Sum(nil), nil
}

// peakHeap samples the heap in use until stop is closed.
func peakHeap(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// TestLargeAnswerBoundedMemory: 1 GB made lazily by the node's handler
// crosses hub and node (both in this process) with the heap in use never
// above 64 MB, and arrives intact.
func TestLargeAnswerBoundedMemory(t *testing.T) {
	size := int64(1 << 30)
	if testing.Short() || raceOn {
		size = 128 << 20
	}
	f := newFixture(t, Options{})
	sent := make(chan []byte, 1)
	f.serveNode(f.connect("n1"), "n1", handler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		sum, err := lazyBody(w, size, nil)
		if err != nil {
			t.Errorf("node: %v", err)
		}
		sent <- sum
	}))
	runtime.GC()
	stop := make(chan struct{})
	peak := peakHeap(stop)
	start := time.Now()
	resp, err := http.Get(f.srv.URL + "/studies/1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	elapsed := time.Since(start)
	close(stop)
	if err != nil || n != size {
		t.Fatalf("read %d of %d bytes: %v", n, size, err)
	}
	if want := <-sent; string(h.Sum(nil)) != string(want) {
		t.Fatal("the bytes arrived changed")
	}
	p := <-peak
	t.Logf("%d MB in %s (%.0f MB/s), peak heap in use %.1f MB", size>>20, elapsed.Round(time.Millisecond), float64(size)/1e6/elapsed.Seconds(), float64(p)/(1<<20))
	if p > 64<<20 {
		t.Fatalf("peak heap in use %.1f MB, over 64 MB", float64(p)/(1<<20))
	}
}

// TestNodeKeepsToCredit: a node sends Window chunks and no more until
// the hub grants credit, then exactly as many more as granted.
func TestNodeKeepsToCredit(t *testing.T) {
	f := newFixture(t, Options{})
	var written atomic.Int64
	f.serveNode(f.connect("n1"), "n1", handler(func(w http.ResponseWriter, r *http.Request) {
		lazyBody(w, 100<<20, &written)
	}))
	// Play the hub by hand: ask, and count what comes without credit.
	stream := fed.NewID()
	sub, err := f.hubConn.SubscribeSync(fed.RelayDataSubject("n1", stream))
	if err != nil {
		t.Fatal(err)
	}
	f.hubConn.Flush()
	f.sendTask("n1", fed.RelayRequest{Stream: stream, Method: "GET", Path: "/studies/1"})
	countChunks := func(wait time.Duration) (chunks int) {
		for {
			m, err := sub.NextMsg(wait)
			if errors.Is(err, nats.ErrTimeout) {
				return chunks
			}
			if err != nil {
				t.Fatal(err)
			}
			kind, _, _, _ := parseFrame(m.Data)
			if kind == kindData {
				chunks++
			}
		}
	}
	if got := countChunks(time.Second); got != Window {
		t.Fatalf("without credit the node sent %d chunks, want %d", got, Window)
	}
	// The handler is blocked: what it wrote is the window and one chunk
	// at most.
	w1 := written.Load()
	time.Sleep(200 * time.Millisecond)
	if w2 := written.Load(); w2 != w1 || w1 > (Window+1)*ChunkSize+64<<10 {
		t.Fatalf("the blocked handler wrote %d then %d bytes", w1, w2)
	}
	f.hubConn.Publish(fed.RelayCreditSubject("n1", stream), frame(nil, kindCredit, Window+3, nil))
	if got := countChunks(time.Second); got != 3 {
		t.Fatalf("after 3 more chunks of credit the node sent %d", got)
	}
	f.hubConn.Publish(fed.RelayCreditSubject("n1", stream), frame(nil, kindCancel, 0, nil))
}

func (f *fixture) sendTask(node string, req fed.RelayRequest) {
	f.t.Helper()
	body, _ := json.Marshal(req)
	now := time.Now()
	msg, err := fed.Seal(f.priv, fed.SignerHub, fed.Task{ID: fed.NewID(), Kind: fed.TaskRelay, Issued: now, Expires: now.Add(time.Minute), Audience: node, Body: body})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.hubConn.Publish(fed.TaskSubject(node), msg); err != nil {
		f.t.Fatal(err)
	}
}

// TestSlowReaderBoundsNode: a client that stops reading stops the node's
// handler (it blocks on credit) instead of letting memory grow.
func TestSlowReaderBoundsNode(t *testing.T) {
	f := newFixture(t, Options{})
	var written atomic.Int64
	f.serveNode(f.connect("n1"), "n1", handler(func(w http.ResponseWriter, r *http.Request) {
		lazyBody(w, 1<<30, &written)
	}))
	resp, err := http.Get(f.srv.URL + "/studies/1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 1<<20)
	io.ReadFull(resp.Body, buf)
	// The node stops once the window and the sockets' buffers are full;
	// on a loaded machine that takes a while, so wait for it to settle
	// (at most 15 s), then check that it stays stopped.
	w1, w2 := written.Load(), int64(-1)
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		if w2 = written.Load(); w2 == w1 {
			break
		}
		w1 = w2
	}
	time.Sleep(time.Second)
	w2 = written.Load()
	t.Logf("the node wrote %.1f MB, then %.1f MB a second later, while the client read 1 MB", float64(w1)/(1<<20), float64(w2)/(1<<20))
	if w2 != w1 {
		t.Fatalf("the node kept writing (%d, then %d bytes) while the client did not read", w1, w2)
	}
	// What is in flight is the window plus the sockets' buffers between
	// hub and client, far from the gigabyte.
	if w2 > 64<<20 {
		t.Fatalf("the node wrote %d bytes ahead of a client that read 1 MB", w2)
	}
	// Reading again resumes the transfer.
	if _, err := io.ReadFull(resp.Body, make([]byte, 32<<20)); err != nil {
		t.Fatal(err)
	}
}

// TestNodeGoneMidTransfer: when the node's connection drops mid-answer,
// the client's transfer fails; a short body never passes as complete.
func TestNodeGoneMidTransfer(t *testing.T) {
	for _, withOffline := range []bool{false, true} {
		t.Run(fmt.Sprintf("offline-signal=%v", withOffline), func(t *testing.T) {
			gone := make(chan struct{})
			opts := Options{IdleTimeout: time.Second}
			if withOffline {
				opts = Options{IdleTimeout: time.Minute, Offline: func(string) <-chan struct{} { return gone }}
			}
			f := newFixture(t, opts)
			nc := f.connect("n1")
			var written atomic.Int64
			f.serveNode(nc, "n1", handler(func(w http.ResponseWriter, r *http.Request) {
				lazyBody(w, 1<<30, &written)
			}))
			resp, err := http.Get(f.srv.URL + "/studies/1")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if _, err := io.ReadFull(resp.Body, make([]byte, 4<<20)); err != nil {
				t.Fatal(err)
			}
			nc.Close()
			close(gone)
			start := time.Now()
			n, err := io.Copy(io.Discard, resp.Body)
			t.Logf("after the node left: %d more bytes, then %v after %s", n, err, time.Since(start).Round(time.Millisecond))
			if err == nil {
				t.Fatal("the transfer ended as if complete after the node left")
			}
			if withOffline && time.Since(start) > 10*time.Second {
				t.Fatal("the offline signal did not end the transfer early")
			}
		})
	}
}

// TestNoHead: a node that never answers gets the client a 504 with a
// clear message, after the head timeout.
func TestNoHead(t *testing.T) {
	f := newFixture(t, Options{HeadTimeout: 300 * time.Millisecond})
	resp, err := http.Get(f.srv.URL + "/studies")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(body), "did not answer") {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
}

type permitError struct{}

func (permitError) Error() string   { return "permit expired" }
func (permitError) HTTPStatus() int { return http.StatusForbidden }

// TestResolveErrors: a resolver's error with HTTPStatus becomes that
// status and its text; any other becomes 500 without its text; no
// resolver at all is 503; a bad path is 400.
func TestResolveErrors(t *testing.T) {
	f := newFixture(t, Options{})
	var resolve atomic.Value
	f.serveNode(f.connect("n1"), "n1", func(ctx context.Context, req fed.RelayRequest) (http.Handler, error) {
		r := resolve.Load().(Resolver)
		if r == nil {
			return resolveRequest(ctx, req, nil)
		}
		return r(ctx, req)
	})
	for _, c := range []struct {
		name    string
		resolve Resolver
		path    string
		status  int
		want    string
		notWant string
	}{
		{"http status", func(context.Context, fed.RelayRequest) (http.Handler, error) {
			return nil, fmt.Errorf("check: %w", permitError{})
		}, "/studies", 403, "permit expired", ""},
		{"other error", func(context.Context, fed.RelayRequest) (http.Handler, error) {
			return nil, errors.New("open /data/patient-Doe.dcm: no such file")
		}, "/studies", 500, "could not answer", "Doe"},
		{"no resolver", nil, "/studies", 503, "relay not configured", ""},
		{"dot segment", handler(func(w http.ResponseWriter, r *http.Request) {}), "/studies/%2e%2e/x", 400, "bad path", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			resolve.Store(c.resolve)
			resp, err := http.Get(f.srv.URL + c.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status || !strings.Contains(string(body), c.want) || (c.notWant != "" && strings.Contains(string(body), c.notWant)) {
				t.Fatalf("got %d %s", resp.StatusCode, body)
			}
		})
	}
}

// TestOtherNodeCannotWrite: node n2 can neither publish into n1's
// stream nor read n1's credit: the NATS server refuses both.
func TestOtherNodeCannotWrite(t *testing.T) {
	f := newFixture(t, Options{})
	errs := make(chan error, 4)
	n2 := f.connect("n2", nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	stream := fed.NewID()
	got, err := f.hubConn.SubscribeSync(fed.RelayDataSubject("n1", stream))
	if err != nil {
		t.Fatal(err)
	}
	f.hubConn.Flush()
	n2.Publish(fed.RelayDataSubject("n1", stream), frame(nil, kindHead, 0, []byte(`{"status":200}`)))
	n2.Flush()
	if err := waitErr(errs); !errors.Is(err, nats.ErrPermissionViolation) {
		t.Fatalf("publishing into another node's stream: %v", err)
	}
	if m, err := got.NextMsg(200 * time.Millisecond); err == nil {
		t.Fatalf("the hub received %q from another node", m.Data)
	}
	if _, err := n2.SubscribeSync(fed.RelayCreditSubject("n1", stream)); err == nil {
		n2.Flush()
		if err := waitErr(errs); !errors.Is(err, nats.ErrPermissionViolation) {
			t.Fatalf("subscribing to another node's credit: %v", err)
		}
	}
	// Its own subjects are allowed.
	if _, err := n2.SubscribeSync(fed.RelayCreditSubject("n2", stream)); err != nil {
		t.Fatal(err)
	}
	if err := n2.Publish(fed.RelayDataSubject("n2", stream), []byte("x")); err != nil {
		t.Fatal(err)
	}
	n2.Flush()
	select {
	case err := <-errs:
		t.Fatalf("a node's own relay subjects refused: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
}

func waitErr(errs <-chan error) error {
	select {
	case err := <-errs:
		return err
	case <-time.After(2 * time.Second):
		return errors.New("no error")
	}
}

// TestForgedSequence: a message out of sequence (a replayed chunk, a
// gap, a second head) ends the transfer as failed.
func TestForgedSequence(t *testing.T) {
	for _, c := range []struct {
		name string
		msgs [][]byte
	}{
		{"replayed chunk", [][]byte{frame(nil, kindHead, 0, []byte(`{"status":200}`)), frame(nil, kindData, 1, []byte("abc")), frame(nil, kindData, 1, []byte("abc")), frame(nil, kindEnd, 3, []byte(`{"bytes":6}`))}},
		{"gap", [][]byte{frame(nil, kindHead, 0, []byte(`{"status":200}`)), frame(nil, kindData, 1, []byte("abc")), frame(nil, kindData, 5, []byte("def")), frame(nil, kindEnd, 6, []byte(`{"bytes":6}`))}},
		{"short end", [][]byte{frame(nil, kindHead, 0, []byte(`{"status":200}`)), frame(nil, kindData, 1, []byte("abc")), frame(nil, kindEnd, 2, []byte(`{"bytes":6}`))}},
		{"error", [][]byte{frame(nil, kindHead, 0, []byte(`{"status":200}`)), frame(nil, kindData, 1, []byte("abc")), frame(nil, kindError, 2, []byte(`{"error":"disk"}`))}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, Options{IdleTimeout: 5 * time.Second})
			nc := f.connect("n1")
			// A node that answers with the messages given, in order.
			nc.Subscribe(fed.TaskSubject("n1"), func(m *nats.Msg) {
				task, err := fed.OpenTask(f.pub, m.Data, "n1", time.Now(), time.Minute, nil)
				if err != nil {
					t.Error(err)
					return
				}
				var req fed.RelayRequest
				json.Unmarshal(task.Body, &req)
				for _, msg := range c.msgs {
					nc.Publish(fed.RelayDataSubject("n1", req.Stream), msg)
				}
			})
			nc.Flush()
			start := time.Now()
			resp, err := http.Get(f.srv.URL + "/studies/1")
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				t.Fatalf("a forged answer passed as complete: %q", body)
			}
			if time.Since(start) > 3*time.Second {
				t.Fatalf("the failure waited for the idle timeout")
			}
		})
	}
}

// TestClientCancel: a client that goes away cancels the node's handler.
func TestClientCancel(t *testing.T) {
	f := newFixture(t, Options{})
	cancelled := make(chan struct{})
	f.serveNode(f.connect("n1"), "n1", handler(func(w http.ResponseWriter, r *http.Request) {
		lazyBody(w, 1<<30, nil)
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(10 * time.Second):
		}
	}))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/studies/1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(resp.Body, make([]byte, 1<<20))
	cancel()
	resp.Body.Close()
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the node's handler still runs 5 s after its client left")
	}
	testutilEventually(t, func() error {
		if n := f.client.Streams(); n != 0 {
			return fmt.Errorf("%d streams still open", n)
		}
		return nil
	})
}

// TestStreamLimits: beyond MaxPerNode streams to a node, requests get
// 503 at once; when one ends, the next is served.
func TestStreamLimits(t *testing.T) {
	f := newFixture(t, Options{MaxPerNode: 1})
	release := make(chan struct{})
	f.serveNode(f.connect("n1"), "n1", handler(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-release
	}))
	resp, err := http.Get(f.srv.URL + "/studies/1")
	if err != nil {
		t.Fatal(err)
	}
	resp2, err := http.Get(f.srv.URL + "/studies/2")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a second stream beyond the limit: %d", resp2.StatusCode)
	}
	close(release)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	testutilEventually(t, func() error {
		resp, err := http.Get(f.srv.URL + "/studies/3")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}

// TestMethods: only GET and HEAD are relayed; HEAD carries no body.
func TestMethods(t *testing.T) {
	f := newFixture(t, Options{})
	f.serveNode(f.connect("n1"), "n1", handler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		if r.Method != "HEAD" {
			io.WriteString(w, "hello")
		}
	}))
	resp, err := http.Post(f.srv.URL+"/studies", "application/dicom", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	resp, err = http.Head(f.srv.URL + "/studies")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != 5 {
		t.Fatalf("HEAD: %d, length %d", resp.StatusCode, resp.ContentLength)
	}
}

// TestNodeIgnoresCredit: a node that floods its stream without waiting
// for credit while the client does not read overflows the hub's bounded
// buffer for the stream; the lost chunks break the sequence and the
// transfer fails instead of the hub's memory growing.
func TestNodeIgnoresCredit(t *testing.T) {
	f := newFixture(t, Options{IdleTimeout: 2 * time.Second})
	nc := f.connect("n1")
	chunk := make([]byte, ChunkSize)
	const chunks = 200 // 50 MB
	nc.Subscribe(fed.TaskSubject("n1"), func(m *nats.Msg) {
		task, err := fed.OpenTask(f.pub, m.Data, "n1", time.Now(), time.Minute, nil)
		if err != nil {
			t.Error(err)
			return
		}
		var req fed.RelayRequest
		json.Unmarshal(task.Body, &req)
		subj := fed.RelayDataSubject("n1", req.Stream)
		nc.Publish(subj, frame(nil, kindHead, 0, []byte(`{"status":200}`)))
		for i := 1; i <= chunks; i++ {
			nc.Publish(subj, frame(nil, kindData, uint32(i), chunk))
		}
		nc.Publish(subj, frame(nil, kindEnd, chunks+1, []byte(fmt.Sprintf(`{"bytes":%d}`, chunks*ChunkSize))))
	})
	nc.Flush()
	resp, err := http.Get(f.srv.URL + "/studies/1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	time.Sleep(1500 * time.Millisecond) // the client does not read
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil {
		t.Fatalf("a node that ignored its credit got %d bytes through", n)
	}
	t.Logf("the flooding node's transfer failed after %d of %d bytes: %v", n, chunks*ChunkSize, err)
}

// TestClientCancelBeforeHead: a client that leaves while the hub still
// waits for the head cancels the node's handler too, even when the
// cancel overtook the node's subscription to its credit (the hub sends
// it again when the head comes).
func TestClientCancelBeforeHead(t *testing.T) {
	f := newFixture(t, Options{})
	cancelled := make(chan struct{})
	started := make(chan struct{})
	f.serveNode(f.connect("n1"), "n1", handler(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(200 * time.Millisecond) // the client leaves meanwhile
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(10 * time.Second):
		}
	}))
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/studies/1", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the node's handler still runs 5 s after its client left")
	}
}

// TestReadFrom: a handler that copies from a reader (the node's blob
// readers do, through io.Copy and ReadFrom) sends its bytes whole, in
// sizes that do not fall on chunk boundaries.
func TestReadFrom(t *testing.T) {
	f := newFixture(t, Options{})
	const size = 3*ChunkSize + 17
	src := make([]byte, size)
	rand.Read(src)
	f.serveNode(f.connect("n1"), "n1", handler(func(w http.ResponseWriter, r *http.Request) {
		w.Write(src[:100])
		if n, err := io.Copy(w, io.LimitReader(strings.NewReader(string(src[100:])), size)); err != nil || n != size-100 {
			t.Errorf("copy: %d %v", n, err)
		}
	}))
	status, body := httpGet(t, f.srv.URL+"/studies/1")
	if status != 200 || body != string(src) {
		t.Fatalf("got %d, %d bytes, equal %v", status, len(body), body == string(src))
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestCancelOvertakesSubscription: a cancel the hub sent before the node
// subscribed to its credit is lost; the hub sends it again when the
// node's first message shows the subscription is in place.
func TestCancelOvertakesSubscription(t *testing.T) {
	f := newFixture(t, Options{})
	nc := f.connect("n1")
	streams := make(chan string, 1)
	nc.Subscribe(fed.TaskSubject("n1"), func(m *nats.Msg) {
		task, err := fed.OpenTask(f.pub, m.Data, "n1", time.Now(), time.Minute, nil)
		if err != nil {
			t.Error(err)
			return
		}
		var req fed.RelayRequest
		json.Unmarshal(task.Body, &req)
		streams <- req.Stream
	})
	nc.Flush()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/studies/1", nil)
	go func() {
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	stream := <-streams
	cancel()                           // the client leaves: the hub cancels, and nobody hears it
	time.Sleep(300 * time.Millisecond) // long enough for that first cancel to be gone
	credit, err := nc.SubscribeSync(fed.RelayCreditSubject("n1", stream))
	if err != nil {
		t.Fatal(err)
	}
	nc.Publish(fed.RelayDataSubject("n1", stream), frame(nil, kindHead, 0, []byte(`{"status":200}`)))
	m, err := credit.NextMsg(3 * time.Second)
	if err != nil {
		t.Fatalf("no cancel after the node's head: %v", err)
	}
	if kind, _, _, _ := parseFrame(m.Data); kind != kindCancel {
		t.Fatalf("got %q, not a cancel", m.Data)
	}
}
