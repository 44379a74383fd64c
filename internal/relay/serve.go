package relay

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/fed"
)

// Resolver picks the handler that answers a relayed request at the node
// (in Mosaic: check the permit, then the snapshot's DICOMweb handler).
// An error becomes the answer: its status from HTTPStatus() when it has
// one (and then its text, which must be safe to show), else 500 with a
// generic message.
type Resolver func(ctx context.Context, req fed.RelayRequest) (http.Handler, error)

// creditTimeout bounds how long a node waits for credit before it gives
// the stream up (the hub cancels explicitly, but a cancel sent before the
// node subscribed is lost).
var creditTimeout = 60 * time.Second

// Serve answers one relayed request at node on its NATS connection nc:
// it resolves the handler, runs it and streams its answer to the hub,
// never more than Window chunks ahead of the hub's credit. It returns
// when the answer is sent, the hub cancels, credit stops coming, or ctx
// ends; the handler's request context ends with it.
func Serve(ctx context.Context, nc *nats.Conn, node string, req fed.RelayRequest, resolve Resolver, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !fed.ValidNodeID(node) || !fed.ValidStreamID(req.Stream) {
		log.Warn("relay: request refused: bad stream id")
		return
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w := &writer{nc: nc, subject: fed.RelayDataSubject(node, req.Stream), header: http.Header{},
		granted: Window, credit: make(chan struct{}, 1), ctx: ctx, buf: make([]byte, frameHeader, frameHeader+ChunkSize)}
	sub, err := nc.Subscribe(fed.RelayCreditSubject(node, req.Stream), func(m *nats.Msg) {
		kind, limit, _, err := parseFrame(m.Data)
		if err != nil {
			return
		}
		switch kind {
		case kindCredit:
			w.grant(limit)
		case kindCancel:
			cancel(errCancelled)
		}
	})
	if err != nil {
		log.Warn("relay: cannot take credit", "err", err)
		return
	}
	defer sub.Unsubscribe()

	h, err := resolveRequest(ctx, req, resolve)
	if err != nil {
		status, msg := http.StatusInternalServerError, "the node could not answer this request"
		var hs interface{ HTTPStatus() int }
		if errors.As(err, &hs) && hs.HTTPStatus() >= 400 && hs.HTTPStatus() <= 599 {
			status, msg = hs.HTTPStatus(), err.Error()
		} else {
			log.Warn("relay: request failed", "err", err)
		}
		h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(failure{Error: msg})
		})
	}
	hr, err := httpRequest(ctx, req)
	if err != nil {
		hr, _ = http.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
		h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(failure{Error: err.Error()})
		})
	}
	if err := run(h, w, hr); err != nil {
		if !errors.Is(err, errCancelled) {
			log.Warn("relay: answer failed", "err", err)
		}
		w.fail("the node failed while answering")
		return
	}
	if err := w.finish(); err != nil && !errors.Is(err, errCancelled) {
		log.Warn("relay: answer failed", "err", err)
	}
}

var (
	errCancelled = errors.New("relay: cancelled by the hub")
	errNoCredit  = errors.New("relay: no credit from the hub in time")
)

func resolveRequest(ctx context.Context, req fed.RelayRequest, resolve Resolver) (http.Handler, error) {
	if resolve == nil {
		return nil, statusError{http.StatusServiceUnavailable, "relay not configured"}
	}
	return resolve(ctx, req)
}

type statusError struct {
	status int
	msg    string
}

func (e statusError) Error() string   { return e.msg }
func (e statusError) HTTPStatus() int { return e.status }

// httpRequest rebuilds the relayed request for a handler.
func httpRequest(ctx context.Context, req fed.RelayRequest) (*http.Request, error) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return nil, errors.New("only GET and HEAD are relayed")
	}
	if !strings.HasPrefix(req.Path, "/") || strings.ContainsAny(req.Path, "\x00\r\n\\?#") {
		return nil, errors.New("bad path")
	}
	for _, seg := range strings.Split(req.Path, "/") {
		if seg == "." || seg == ".." {
			return nil, errors.New("bad path")
		}
	}
	q, err := url.ParseQuery(req.Query)
	if err != nil || strings.ContainsAny(req.Query, "\x00\r\n#") {
		return nil, errors.New("bad query string")
	}
	_ = q
	u := &url.URL{Path: req.Path, RawQuery: req.Query}
	host := "relay"
	if root, err := url.Parse(req.Root); err == nil && root.Host != "" {
		host = root.Host
	}
	hr := &http.Request{
		Method: req.Method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: http.NoBody, Host: host, RequestURI: u.RequestURI(),
	}
	for _, k := range requestHeaders {
		for _, v := range req.Header[k] {
			hr.Header.Add(k, v)
		}
	}
	return hr.WithContext(ctx), nil
}

// run calls the handler, turning a panic into an error.
func run(h http.Handler, w *writer, r *http.Request) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("relay: handler panic: %v", p)
		}
	}()
	h.ServeHTTP(w, r)
	return w.err
}

// writer is the handler's ResponseWriter: it sends the head at the first
// WriteHeader, Write or Flush, and the body in chunks of ChunkSize,
// waiting for credit; it never holds more than one chunk.
type writer struct {
	nc      *nats.Conn
	subject string
	ctx     context.Context
	header  http.Header
	sent    bool // head sent
	buf     []byte
	seq     uint32 // the next message's sequence number
	chunks  uint32 // data chunks sent
	bytes   int64
	err     error

	mu      sync.Mutex
	granted uint32
	credit  chan struct{}
}

func (w *writer) grant(limit uint32) {
	w.mu.Lock()
	if limit > w.granted {
		w.granted = limit
	}
	w.mu.Unlock()
	select {
	case w.credit <- struct{}{}:
	default:
	}
}

func (w *writer) Header() http.Header { return w.header }

func (w *writer) WriteHeader(status int) {
	if w.sent || w.err != nil || (status >= 100 && status < 200) {
		return
	}
	if status < 200 || status > 599 {
		status = http.StatusInternalServerError
	}
	w.sent = true
	b, err := json.Marshal(head{Status: status, Header: w.header})
	if err != nil || len(b) > maxHead {
		w.err = errors.New("relay: answer headers too large")
		return
	}
	w.err = w.publish(kindHead, b)
}

func (w *writer) publish(kind byte, payload []byte) error {
	if err := w.ctx.Err(); err != nil {
		return context.Cause(w.ctx)
	}
	var b []byte
	if kind == kindData {
		b = w.buf // already framed in place
	} else {
		b = frame(nil, kind, 0, payload)
	}
	binary.BigEndian.PutUint32(b[1:frameHeader], w.seq)
	b[0] = kind
	w.seq++
	return w.nc.Publish(w.subject, b)
}

func (w *writer) Write(p []byte) (int, error) {
	if !w.sent {
		w.WriteHeader(http.StatusOK)
	}
	n := 0
	for len(p) > 0 && w.err == nil {
		room := frameHeader + ChunkSize - len(w.buf)
		k := min(room, len(p))
		w.buf = append(w.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(w.buf) == frameHeader+ChunkSize {
			w.err = w.sendChunk()
		}
	}
	return n, w.err
}

// ReadFrom reads straight into the chunk buffer (the node's blob
// readers use it), saving a copy.
func (w *writer) ReadFrom(r io.Reader) (int64, error) {
	if !w.sent {
		w.WriteHeader(http.StatusOK)
	}
	var n int64
	for w.err == nil {
		k, err := r.Read(w.buf[len(w.buf) : frameHeader+ChunkSize])
		w.buf = w.buf[:len(w.buf)+k]
		n += int64(k)
		if len(w.buf) == frameHeader+ChunkSize {
			w.err = w.sendChunk()
		}
		if err == io.EOF {
			return n, w.err
		}
		if err != nil {
			return n, err
		}
	}
	return n, w.err
}

func (w *writer) Flush() {
	if !w.sent {
		w.WriteHeader(http.StatusOK)
	}
	if w.err == nil && len(w.buf) > frameHeader {
		w.err = w.sendChunk()
	}
}

// sendChunk waits for credit and sends the buffered chunk.
func (w *writer) sendChunk() error {
	next := w.chunks + 1
	for {
		w.mu.Lock()
		ok := next <= w.granted
		w.mu.Unlock()
		if ok {
			break
		}
		t := time.NewTimer(creditTimeout)
		select {
		case <-w.credit:
			t.Stop()
		case <-w.ctx.Done():
			t.Stop()
			return context.Cause(w.ctx)
		case <-t.C:
			return errNoCredit
		}
	}
	if err := w.publish(kindData, nil); err != nil {
		return err
	}
	w.chunks = next
	w.bytes += int64(len(w.buf) - frameHeader)
	w.buf = w.buf[:frameHeader]
	return nil
}

// finish sends what is left and the end message; if the answer cannot
// be completed (the node's own context ended, the link failed), it tells
// the hub the answer is broken.
func (w *writer) finish() error {
	w.Flush()
	if w.err == nil {
		b, _ := json.Marshal(end{Bytes: w.bytes})
		w.err = w.publish(kindEnd, b)
	}
	if w.err != nil {
		w.fail("the node failed while answering")
	}
	return w.err
}

// fail tells the hub the answer is broken (unless the hub cancelled it).
func (w *writer) fail(reason string) {
	if errors.Is(context.Cause(w.ctx), errCancelled) {
		return
	}
	// Before the head, the error takes its place (sequence 0): the hub
	// answers 502.
	b, _ := json.Marshal(failure{Error: reason})
	w.nc.Publish(w.subject, frame(nil, kindError, w.seq, b))
	w.seq++
}
