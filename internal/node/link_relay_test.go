package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/relay"
	"github.com/mosaic-imaging/mosaic/internal/testutil"
)

// relayLink starts a node's real link to an embedded NATS server that
// confines the node as the hub does, and a hub side: a relay.Client
// behind a real HTTP server that forwards every request to the node.
func relayLink(t *testing.T) (*Node, *Link, *httptest.Server) {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, Users: []*server.User{
		{Username: "hub", Password: "hub-secret"},
		{Username: "n1", Password: "n1-secret", Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: fed.NodePublishAllow("n1")},
			Subscribe: &server.SubjectPermission{Allow: fed.NodeSubscribeAllow("n1")},
			Response:  &server.ResponsePermission{MaxMsgs: 1, Expires: 2 * time.Minute},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server did not start")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)

	n, srv, _ := testNode(t, "sqlite")
	srv.Close()
	f := Federation{EnrollResponse: fed.EnrollResponse{Node: "n1", NATSURLs: []string{ns.ClientURL()}, NATSUser: "n1", NATSPassword: "n1-secret", HubKey: fed.EncodeKey(pub)}, Enrolled: time.Now()}
	b, _ := json.Marshal(f)
	if err := os.WriteFile(n.federationPath(), b, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := n.StartLink(LinkOptions{Heartbeat: time.Hour})
	if err != nil || l == nil {
		t.Fatalf("link: %v", err)
	}
	t.Cleanup(l.Close)
	testutil.Eventually(t, 10*time.Second, func() error {
		if !l.Connected() {
			return errors.New("the link is not up")
		}
		return nil
	})

	hc, err := nats.Connect(ns.ClientURL(), nats.UserInfo("hub", "hub-secret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hc.Close)
	c := relay.NewClient(hc, func(task fed.Task) ([]byte, error) { return fed.Seal(priv, fed.SignerHub, task) },
		relay.Options{HeadTimeout: 5 * time.Second, Log: slog.New(slog.DiscardHandler)})
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.Forward(w, r, "n1", fed.RelayRequest{Path: r.URL.Path, Permit: "p", Researcher: "alice", Root: "http://" + r.Host + "/"})
	}))
	t.Cleanup(hub.Close)
	return n, l, hub
}

func get(t *testing.T, url string) (int, string) {
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

// TestLinkRelay: a node's link answers relayed requests: by default
// through its permit check (a request without a valid permit is refused
// 401 at the node), 503 with no resolver, then the resolver's handler
// (here the node's own DICOMweb root of dataset "lung"), over the real
// link.
func TestLinkRelay(t *testing.T) {
	n, l, hub := relayLink(t)
	if status, body := get(t, hub.URL+"/studies"); status != http.StatusUnauthorized || !strings.Contains(body, "permit refused") {
		t.Fatalf("with the default resolver and no permit: %d %s", status, body)
	}
	l.SetRelayResolver(nil)
	if status, body := get(t, hub.URL+"/studies"); status != http.StatusServiceUnavailable || !strings.Contains(body, "relay not configured") {
		t.Fatalf("without a resolver: %d %s", status, body)
	}
	tok, _, err := n.ix.CreateToken(context.Background(), "relay", index.ScopeRead, "lung")
	if err != nil {
		t.Fatal(err)
	}
	var seen fed.RelayRequest
	l.SetRelayResolver(func(_ context.Context, req fed.RelayRequest) (http.Handler, error) {
		seen = req
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.URL.Path = "/dicom-web/lung" + r.URL.Path
			r.Header.Set("Authorization", "Bearer "+tok)
			n.Handler().ServeHTTP(w, r)
		}), nil
	})
	status, body := get(t, hub.URL+"/studies?limit=1")
	if (status != http.StatusOK && status != http.StatusNoContent) || strings.Contains(body, "error") {
		t.Fatalf("through the relay: %d %s", status, body)
	}
	if seen.Path != "/studies" || seen.Query != "limit=1" || seen.Researcher != "alice" {
		t.Fatalf("the resolver saw %+v", seen)
	}
}

// TestLinkRelayClose: closing the link ends a relayed request's handler
// (its context ends) and the hub's client sees a failed transfer.
func TestLinkRelayClose(t *testing.T) {
	_, l, hub := relayLink(t)
	ended := make(chan struct{})
	l.SetRelayResolver(func(context.Context, fed.RelayRequest) (http.Handler, error) {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			close(ended)
		}), nil
	})
	resp, err := http.Get(hub.URL + "/studies/1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	done := make(chan struct{})
	go func() { l.Close(); close(done) }()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the relayed handler still runs 10 s after the link closed")
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close still waits 10 s later")
	}
	start := time.Now()
	if b, err := io.ReadAll(resp.Body); err == nil {
		t.Fatalf("the transfer ended as if complete: %q", b)
	}
	// The node says the answer is broken: the hub does not wait for its
	// idle timeout (30 s).
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the client learnt of the failure after %s", d)
	}
}

// TestLinkRelayBusy: a node answers at most maxRelays relayed requests
// at once; the next is answered 503 at once, and served again once one
// ends.
func TestLinkRelayBusy(t *testing.T) {
	_, l, hub := relayLink(t)
	release := make(chan struct{})
	l.SetRelayResolver(func(context.Context, fed.RelayRequest) (http.Handler, error) {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}), nil
	})
	var resps []*http.Response
	for i := 0; i < maxRelays; i++ {
		resp, err := http.Get(hub.URL + "/studies/1")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
		resps = append(resps, resp)
	}
	if status, body := get(t, hub.URL+"/studies/1"); status != http.StatusServiceUnavailable || !strings.Contains(body, "too many") {
		t.Fatalf("beyond the node's limit: %d %s", status, body)
	}
	close(release)
	for _, r := range resps {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		l.relay.mu.Lock()
		defer l.relay.mu.Unlock()
		if l.relay.running != 0 {
			return errors.New("relayed requests still counted as running")
		}
		return nil
	})
}
