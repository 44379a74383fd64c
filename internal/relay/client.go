package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/httpx"
)

// Options steer a Client; zero fields take the defaults.
type Options struct {
	// HeadTimeout bounds the wait for the node's head (default 10 s):
	// then the client gets 504.
	HeadTimeout time.Duration
	// IdleTimeout bounds the wait for each later message (default 30 s):
	// then the transfer is aborted.
	IdleTimeout time.Duration
	// TaskTTL is the relay task's validity (default 1 minute).
	TaskTTL time.Duration
	// MaxPerNode and MaxStreams bound the streams relayed at once to one
	// node and in all (defaults 32 and 256); beyond them requests get 503.
	MaxPerNode, MaxStreams int
	// Offline, when set, returns a channel closed when the node's NATS
	// connection goes away, so a transfer fails at once instead of after
	// IdleTimeout.
	Offline func(node string) <-chan struct{}
	Log     *slog.Logger
}

// Client relays HTTP requests to nodes: the hub's side of the protocol.
type Client struct {
	nc   *nats.Conn
	seal func(fed.Task) ([]byte, error)
	opts Options

	mu      sync.Mutex
	total   int
	perNode map[string]int
}

// NewClient makes a client on the hub's NATS connection; seal signs a
// task with the hub's key (fed.Seal with fed.SignerHub).
func NewClient(nc *nats.Conn, seal func(fed.Task) ([]byte, error), opts Options) *Client {
	if opts.HeadTimeout <= 0 {
		opts.HeadTimeout = 10 * time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 30 * time.Second
	}
	if opts.TaskTTL <= 0 {
		opts.TaskTTL = time.Minute
	}
	if opts.MaxPerNode <= 0 {
		opts.MaxPerNode = 32
	}
	if opts.MaxStreams <= 0 {
		opts.MaxStreams = 256
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Client{nc: nc, seal: seal, opts: opts, perNode: map[string]int{}}
}

func (c *Client) acquire(node string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total >= c.opts.MaxStreams || c.perNode[node] >= c.opts.MaxPerNode {
		return false
	}
	c.total++
	c.perNode[node]++
	return true
}

func (c *Client) release(node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total--
	if c.perNode[node]--; c.perNode[node] <= 0 {
		delete(c.perNode, node)
	}
}

// Streams returns the number of streams being relayed.
func (c *Client) Streams() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// Forward relays r to node and streams the answer to w. The caller
// fills req's Permit, Researcher, Path and Root; Forward fills Stream,
// Method, Query and Header. Failures before the node's head become JSON
// errors (503, 504, 502); after it, the response is aborted
// (http.ErrAbortHandler) so the client never takes a short body for a
// complete one.
func (c *Client) Forward(w http.ResponseWriter, r *http.Request, node string, req fed.RelayRequest) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpx.Error(w, http.StatusMethodNotAllowed, "only GET and HEAD are relayed")
		return
	}
	if !fed.ValidNodeID(node) {
		httpx.Error(w, http.StatusBadRequest, "bad node id")
		return
	}
	if !c.acquire(node) {
		w.Header().Set("Retry-After", "1")
		httpx.Error(w, http.StatusServiceUnavailable, "too many requests relayed to this node at once; retry shortly")
		return
	}
	defer c.release(node)

	req.Stream = fed.NewID()
	req.Method = r.Method
	req.Query = r.URL.RawQuery
	req.Header = map[string][]string{}
	for _, k := range requestHeaders {
		if v := r.Header.Values(k); len(v) > 0 {
			req.Header[k] = v
		}
	}
	body, err := json.Marshal(req)
	if err != nil {
		httpx.Error(w, http.StatusInternalServerError, "could not encode the relayed request")
		return
	}
	now := time.Now()
	msg, err := c.seal(fed.Task{ID: fed.NewID(), Kind: fed.TaskRelay, Issued: now, Expires: now.Add(c.opts.TaskTTL), Audience: node, Body: body})
	if err != nil {
		c.opts.Log.Error("relay: sealing the task failed", "err", err)
		httpx.Error(w, http.StatusInternalServerError, "could not sign the relayed request")
		return
	}

	sub, err := c.nc.SubscribeSync(fed.RelayDataSubject(node, req.Stream))
	if err != nil {
		httpx.Error(w, http.StatusBadGateway, "the federation link is down")
		return
	}
	handedOff := false
	defer func() {
		if !handedOff {
			sub.Unsubscribe()
		}
	}()
	// A node keeps to its window; one that does not overflows this limit,
	// loses messages and so fails the sequence check: the hub's memory
	// per stream stays bounded either way.
	sub.SetPendingLimits(Window+4, (Window+4)*(ChunkSize+1024))
	// No flush is needed before the task goes: the server handles this
	// connection's SUB before its PUB, so the subscription is in place
	// before the node can see the task.
	if err := c.nc.Publish(fed.TaskSubject(node), msg); err != nil {
		httpx.Error(w, http.StatusBadGateway, "the federation link is down")
		return
	}

	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	if c.opts.Offline != nil {
		if gone := c.opts.Offline(node); gone != nil {
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				select {
				case <-gone:
					cancel(errOffline)
				case <-stop:
				}
			}()
		}
	}
	s := &clientStream{c: c, node: node, stream: req.Stream, sub: sub, ctx: ctx, granted: Window}
	handedOff = s.run(w)
}

type clientStream struct {
	c       *Client
	node    string
	stream  string
	sub     *nats.Subscription
	ctx     context.Context // cancelled with errOffline when the node leaves
	seq     uint32
	granted uint32
}

var (
	errTimeout = errors.New("relay: the node did not answer in time")
	errOffline = errors.New("relay: the node went offline")
	errClient  = errors.New("relay: the client went away")
)

// next waits for the stream's next message, at most d.
func (s *clientStream) next(d time.Duration) (byte, []byte, error) {
	ctx, cancel := context.WithTimeout(s.ctx, d)
	defer cancel()
	m, err := s.sub.NextMsgWithContext(ctx)
	if err != nil {
		switch {
		case errors.Is(context.Cause(s.ctx), errOffline):
			return 0, nil, errOffline
		case s.ctx.Err() != nil:
			return 0, nil, errClient
		case errors.Is(err, context.DeadlineExceeded):
			return 0, nil, errTimeout
		}
		return 0, nil, fmt.Errorf("relay: %w", err)
	}
	kind, seq, payload, err := parseFrame(m.Data)
	if err != nil {
		return 0, nil, err
	}
	if seq != s.seq {
		return 0, nil, fmt.Errorf("relay: message %d out of sequence (expected %d)", seq, s.seq)
	}
	s.seq++
	return kind, payload, nil
}

func (s *clientStream) cancel() {
	s.c.nc.Publish(fed.RelayCreditSubject(s.node, s.stream), frame(nil, kindCancel, 0, nil))
}

// cancelLate sends the cancel again when the node's first message comes
// (or after HeadTimeout), then drops the subscription: a cancel sent
// before the node subscribed to its credit subject is lost, but one sent
// after any message of the node is not (the node subscribes before it
// sends anything).
func (s *clientStream) cancelLate() {
	defer s.sub.Unsubscribe()
	if _, err := s.sub.NextMsg(s.c.opts.HeadTimeout); err == nil {
		s.cancel()
	}
}

// run relays the answer to w; it returns true when it handed the
// subscription to a goroutine of its own (which then drops it).
func (s *clientStream) run(w http.ResponseWriter) (handedOff bool) {
	log := s.c.opts.Log.With("node", s.node, "stream", s.stream)
	kind, payload, err := s.next(s.c.opts.HeadTimeout)
	if err != nil {
		switch {
		case errors.Is(err, errClient):
			s.cancel()
			go s.cancelLate()
			return true
		case errors.Is(err, errTimeout):
			s.cancel()
			log.Warn("relay: no answer from the node", "err", err)
			httpx.Error(w, http.StatusGatewayTimeout, fmt.Sprintf("the node did not answer within %s", s.c.opts.HeadTimeout))
		case errors.Is(err, errOffline):
			httpx.Error(w, http.StatusBadGateway, "the node went offline")
		default:
			s.cancel()
			log.Warn("relay: broken answer", "err", err)
			httpx.Error(w, http.StatusBadGateway, "the node's answer was broken")
		}
		return
	}
	var h head
	if kind != kindHead || len(payload) > maxHead || json.Unmarshal(payload, &h) != nil || h.Status < 200 || h.Status > 599 {
		s.cancel()
		log.Warn("relay: broken head from the node", "kind", string(rune(kind)))
		httpx.Error(w, http.StatusBadGateway, "the node's answer was broken")
		return
	}
	for _, k := range answerHeaders {
		if v := h.Header.Values(k); len(v) > 0 {
			w.Header()[k] = v
		}
	}
	confine(w.Header())
	w.WriteHeader(h.Status)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		// The head reaches the client at once (time to first byte).
		flusher.Flush()
	}
	var bytes int64
	var chunks uint32
	for {
		kind, payload, err := s.next(s.c.opts.IdleTimeout)
		if err != nil {
			if !errors.Is(err, errClient) {
				log.Warn("relay: transfer failed", "err", err)
			}
			s.cancel()
			panic(http.ErrAbortHandler)
		}
		switch kind {
		case kindData:
			chunks++
			if _, err := w.Write(payload); err != nil {
				s.cancel()
				panic(http.ErrAbortHandler)
			}
			bytes += int64(len(payload))
			if flusher != nil {
				flusher.Flush()
			}
			// Keep the node Window chunks ahead of what the client has
			// read, in steps of half a window.
			if want := chunks + Window; want-s.granted >= Window/2 {
				s.granted = want
				var b [frameHeader]byte
				if err := s.c.nc.Publish(fed.RelayCreditSubject(s.node, s.stream), frame(b[:0], kindCredit, want, nil)); err != nil {
					s.cancel()
					panic(http.ErrAbortHandler)
				}
			}
		case kindEnd:
			var e end
			if json.Unmarshal(payload, &e) != nil || e.Bytes != bytes {
				log.Warn("relay: the node's answer ended short", "got", bytes)
				panic(http.ErrAbortHandler)
			}
			return
		case kindError:
			var f failure
			json.Unmarshal(payload, &f)
			log.Warn("relay: the node failed mid-answer", "reason", f.Error)
			panic(http.ErrAbortHandler)
		default:
			log.Warn("relay: unknown message kind", "kind", strconv.Itoa(int(kind)))
			s.cancel()
			panic(http.ErrAbortHandler)
		}
	}
}
