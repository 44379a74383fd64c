package hub

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/lens"
)

// offlineHub is a hub whose searches wait up to 5 s, far longer than a
// search that does not wait for an offline node takes.
func offlineHub(t *testing.T) (*Hub, User) {
	t.Helper()
	h, err := Open(context.Background(), Config{Data: t.TempDir(), NATSListen: "127.0.0.1:0", SearchDeadline: 5 * time.Second,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, User{ID: "alice", Role: RoleResearcher}
}

func (f *fakeNode) publish(t *testing.T, kind fed.NodeMessage, v any) {
	t.Helper()
	msg, err := fed.Seal(f.key, f.id, v)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.nc.Publish(fed.NodeSubject(f.id, kind), msg); err != nil {
		t.Fatal(err)
	}
	f.nc.Flush()
}

// searchStatus runs a search and returns node's status and how long the
// search took.
func searchStatus(t *testing.T, h *Hub, u User, node string) (string, time.Duration) {
	t.Helper()
	q, err := lens.Parse([]byte(`{"operand":"AND","children":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	res, err := h.Search(context.Background(), u, q)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range res.Nodes {
		if n.Node == node {
			return n.Status, time.Since(t0)
		}
	}
	t.Fatalf("node %s missing from %+v", node, res.Nodes)
	return "", 0
}

// TestLeavingMessage: a node that says it is leaving is offline at once
// though its connection is still open; a heartbeat it sent before
// (arriving late) does not bring it back, a later one does.
func TestLeavingMessage(t *testing.T) {
	h, u := offlineHub(t)
	f := enrollFake(t, h, "north")
	f.connect(t, h)
	waitUntil(t, 5*time.Second, func() bool { _, ok := h.online()["north"]; return ok })

	stopped := time.Now().UTC()
	f.publish(t, fed.MsgLeaving, fed.Leaving{Node: "north", Time: stopped})
	waitUntil(t, 2*time.Second, func() bool { _, ok := h.online()["north"]; return !ok })
	if st, took := searchStatus(t, h, u, "north"); st != NodeUnreachable || took > time.Second {
		t.Errorf("after leaving: node %s in %s, want %s without waiting", st, took, NodeUnreachable)
	}
	// Another node's name in the message is refused.
	other := enrollFake(t, h, "south")
	other.connect(t, h)
	waitUntil(t, 5*time.Second, func() bool { _, ok := h.online()["south"]; return ok })
	other.publish(t, fed.MsgLeaving, fed.Leaving{Node: "north", Time: time.Now()})

	f.publish(t, fed.MsgHeartbeat, fed.Heartbeat{Node: "north", Time: stopped.Add(-time.Second)})
	time.Sleep(300 * time.Millisecond)
	if _, ok := h.online()["north"]; ok {
		t.Error("a heartbeat sent before the node left brought it back online")
	}
	if _, ok := h.online()["south"]; !ok {
		t.Error("a leaving message naming another node took the sender offline")
	}
	f.publish(t, fed.MsgHeartbeat, fed.Heartbeat{Node: "north", Time: stopped.Add(time.Second)})
	waitUntil(t, 2*time.Second, func() bool { _, ok := h.online()["north"]; return ok })
}

// TestLostConnection: a node whose connection closes without a word (a
// killed process) is not waited for by a search right after, nor, for
// longer than the hub's check of connections (every second), by a
// search already running.
func TestLostConnection(t *testing.T) {
	h, u := offlineHub(t)
	f := enrollFake(t, h, "north")
	f.connect(t, h)
	waitUntil(t, 5*time.Second, func() bool { _, ok := h.online()["north"]; return ok })
	// Connected and silent: the search waits out its deadline.
	if st, took := searchStatus(t, h, u, "north"); st != NodeLate || took < 5*time.Second {
		t.Fatalf("silent node: %s in %s, want %s after the 5 s deadline", st, took, NodeLate)
	}

	// Lost while a search runs.
	done := make(chan time.Duration, 1)
	var st string
	go func() {
		var took time.Duration
		st, took = searchStatus(t, h, u, "north")
		done <- took
	}()
	time.Sleep(300 * time.Millisecond)
	f.nc.Close()
	took := <-done
	t.Logf("search running when the connection closed: %s, node %s", took.Round(time.Millisecond), st)
	if st != NodeUnreachable || took > 2500*time.Millisecond {
		t.Errorf("connection lost during a search: node %s after %s, want %s within about a second", st, took, NodeUnreachable)
	}

	// And a search right after.
	st, took = searchStatus(t, h, u, "north")
	if st != NodeUnreachable || took > time.Second {
		t.Errorf("after the connection closed: node %s in %s, want %s without waiting", st, took, NodeUnreachable)
	}
}
