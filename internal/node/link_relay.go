package node

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/audit"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/relay"
)

// maxRelays bounds the relayed requests a node answers at once; beyond
// it, requests are answered 503 at once.
const maxRelays = 16

// relayState is the link's part of the relay: who answers relayed
// requests, and the requests running.
type relayState struct {
	mu      sync.Mutex
	resolve relay.Resolver
	running int
	closing bool
	wg      sync.WaitGroup
}

// stopRelays refuses new relayed requests and waits for those running,
// whose contexts end when the link's loop has ended (l.done).
func (l *Link) stopRelays() {
	l.relay.mu.Lock()
	l.relay.closing = true
	l.relay.mu.Unlock()
	l.relay.wg.Wait()
}

// SetRelayResolver sets what answers DICOMweb requests relayed by the hub
// (checking the permit, then the snapshot's handler). Until it is set,
// relayed requests are answered 503 "relay not configured".
func (l *Link) SetRelayResolver(r relay.Resolver) {
	l.relay.mu.Lock()
	l.relay.resolve = r
	l.relay.mu.Unlock()
}

type busyError struct{}

func (busyError) Error() string {
	return "the node is answering too many relayed requests; retry shortly"
}
func (busyError) HTTPStatus() int { return http.StatusServiceUnavailable }

// onRelay handles a fed.TaskRelay task: it answers the relayed request
// on its stream (see package relay) in its own goroutine, at most
// maxRelays at once, until the answer is sent, the hub cancels it or the
// link closes.
func (l *Link) onRelay(m *nats.Msg, task fed.Task) {
	var req fed.RelayRequest
	if err := json.Unmarshal(task.Body, &req); err != nil || !fed.ValidStreamID(req.Stream) {
		reason := "bad relay request"
		l.n.log.Warn("task refused", "err", reason)
		if _, aerr := l.audit.Append(audit.Entry{Actor: actorHub, Action: actionTaskRefused, Subject: task.ID, Detail: map[string]any{"reason": reason}}); aerr != nil {
			l.n.log.Error("audit append failed: a refused task is not recorded", "err", aerr)
		}
		return
	}
	l.relay.mu.Lock()
	if l.relay.closing {
		l.relay.mu.Unlock()
		return
	}
	resolve := l.relay.resolve
	busy := l.relay.running >= maxRelays
	if !busy {
		l.relay.running++
	}
	l.relay.wg.Add(1)
	l.relay.mu.Unlock()
	if busy {
		// The answer is a few bytes within the stream's first credit, so
		// it never waits for the hub.
		resolve = func(context.Context, fed.RelayRequest) (http.Handler, error) { return nil, busyError{} }
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer l.relay.wg.Done()
		defer cancel()
		go func() {
			select {
			case <-l.done: // the link is closing
				cancel()
			case <-ctx.Done():
			}
		}()
		relay.Serve(ctx, l.nc, l.f.Node, req, resolve, l.n.log)
		if !busy {
			l.relay.mu.Lock()
			l.relay.running--
			l.relay.mu.Unlock()
		}
	}()
}
