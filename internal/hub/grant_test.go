package hub

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/fed"
)

// grantHub is a hub that sends revocation lists every interval.
func grantHub(t *testing.T, interval time.Duration) *Hub {
	t.Helper()
	return grantHubConfig(t, Config{RevocationInterval: interval})
}

// link connects f with its node's credentials (and so its NATS
// permissions), calls onTask for every task on the node's task subject
// as a node's link does, and only then sends a heartbeat.
func (f *fakeNode) link(t *testing.T, h *Hub, onTask func(*nats.Msg)) {
	t.Helper()
	nc, err := nats.Connect(h.NATSURL(), nats.UserInfo(f.id, f.pass), nats.MaxReconnects(0), nodeTLS(t, h, f.key))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	f.nc = nc
	if onTask != nil {
		if _, err := nc.Subscribe(fed.TaskSubject(f.id), onTask); err != nil {
			t.Fatal(err)
		}
	}
	f.publish(t, fed.MsgHeartbeat, fed.Heartbeat{Node: f.id, Version: "test", Time: time.Now()})
	waitUntil(t, 5*time.Second, func() bool { _, ok := h.online()[f.id]; return ok })
}

var testQuery = json.RawMessage(`{"operand":"AND","children":[]}`)

func testDigest() string {
	s := sha256.Sum256([]byte("p-1 1.2.3\n"))
	return hex.EncodeToString(s[:])
}

// snapshotResponder answers snapshot tasks as a node would, after edit
// changes its answer, signed with key.
func snapshotResponder(t *testing.T, h *Hub, f *fakeNode, key ed25519.PrivateKey, edit func(*fed.SnapshotAnswer)) func(*nats.Msg) {
	var replay fed.Replay
	return func(m *nats.Msg) {
		task, err := fed.OpenTask(h.PublicKey(), m.Data, f.id, time.Now(), 30*time.Second, &replay)
		if err != nil {
			t.Errorf("the node refused the hub's task: %v", err)
			return
		}
		var body fed.SnapshotBody
		if task.Kind != fed.TaskSnapshot || json.Unmarshal(task.Body, &body) != nil {
			return
		}
		a := fed.SnapshotAnswer{Node: f.id, TaskID: task.ID, Snapshot: body.Snapshot, Dataset: body.Dataset, Created: time.Now().UTC(),
			Digest: testDigest(), Subjects: 36, Studies: 80, Floor: 10}
		if edit != nil {
			edit(&a)
		}
		msg, _ := fed.Seal(key, f.id, a)
		m.Respond(msg)
	}
}

func snapBody() fed.SnapshotBody {
	return fed.SnapshotBody{Snapshot: "snap-1", Request: "req-1", Dataset: "lung-ct", Query: testQuery}
}

// TestSnapshotAnswered: the node gets a task signed by the hub for it
// alone, and its signed answer comes back checked; both the request and
// the answer are on record, without members.
func TestSnapshotAnswered(t *testing.T) {
	h := grantHub(t, time.Hour)
	f := enrollFake(t, h, "north")
	f.link(t, h, snapshotResponder(t, h, f, f.key, nil))
	t0 := time.Now()
	a, err := h.Snapshot(context.Background(), "north", snapBody())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("snapshot answered in %s", time.Since(t0).Round(time.Microsecond))
	if a.Node != "north" || a.Snapshot != "snap-1" || a.Dataset != "lung-ct" || a.Digest != testDigest() || a.Subjects != 36 {
		t.Errorf("answer %+v", a)
	}
	req, made := auditActions(t, h, actionSnapshotRequested), auditActions(t, h, actionSnapshotMade)
	if len(req) != 1 || len(made) != 1 {
		t.Fatalf("audit: %d requested, %d made records, want 1 and 1", len(req), len(made))
	}
	if made[0]["digest"] != testDigest() || made[0]["subjects"] != float64(36) || made[0]["node"] != "north" {
		t.Errorf("snapshot-made record %v", made[0])
	}
}

// TestSnapshotAnswerRefused: answers that are not the node's, or not
// for this task, snapshot or dataset, or without a digest, are refused.
func TestSnapshotAnswerRefused(t *testing.T) {
	_, otherKey, _ := ed25519.GenerateKey(nil)
	cases := []struct {
		name string
		key  bool // sign with another key
		edit func(*fed.SnapshotAnswer)
		want error
	}{
		{"forged signature", true, nil, ErrNodeTimeout},
		{"another task", false, func(a *fed.SnapshotAnswer) { a.TaskID = fed.NewID() }, ErrNodeAnswer},
		{"another node named", false, func(a *fed.SnapshotAnswer) { a.Node = "south" }, ErrNodeAnswer},
		{"another snapshot", false, func(a *fed.SnapshotAnswer) { a.Snapshot = "snap-2" }, ErrNodeAnswer},
		{"another dataset", false, func(a *fed.SnapshotAnswer) { a.Dataset = "brain-mr" }, ErrNodeAnswer},
		{"no digest", false, func(a *fed.SnapshotAnswer) { a.Digest = "" }, ErrNodeAnswer},
		{"digest not hexadecimal", false, func(a *fed.SnapshotAnswer) { a.Digest = strings.Repeat("zz", 32) }, ErrNodeAnswer},
		{"digest withheld with counts", false, func(a *fed.SnapshotAnswer) { a.Digest, a.Subjects = "", 0 }, ErrNodeAnswer},
		{"count under the floor", false, func(a *fed.SnapshotAnswer) { a.Subjects = 3 }, ErrNodeAnswer},
		{"the node's error", false, func(a *fed.SnapshotAnswer) { a.Error = "no such dataset" }, ErrNodeAnswer},
	}
	h := grantHub(t, time.Hour)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := enrollFake(t, h, "node"+string(rune('a'+i)))
			key := f.key
			if c.key {
				key = otherKey
			}
			f.link(t, h, snapshotResponder(t, h, f, key, c.edit))
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			a, err := h.Snapshot(ctx, f.id, snapBody())
			if !errors.Is(err, c.want) {
				t.Fatalf("got %+v, %v; want %v", a, err, c.want)
			}
			t.Logf("refused: %v", err)
		})
	}
	if n := len(auditActions(t, h, actionSnapshotMade)); n != 0 {
		t.Errorf("%d snapshot-made records of refused answers", n)
	}
	if n := len(auditActions(t, h, actionSnapshotFailed)); n != len(cases) {
		t.Errorf("%d snapshot-failed records, want %d", n, len(cases))
	}
}

// TestSnapshotNodeAway: a node not connected (sent nothing, so nothing
// is on record as requested), one connected that does not listen for
// tasks, and one that goes away while the hub waits are
// errors at once; a silent node is an error when the caller's deadline
// ends.
func TestSnapshotNodeAway(t *testing.T) {
	h := grantHub(t, time.Hour)
	quick := func(t *testing.T, node string, want error, within time.Duration) {
		t.Helper()
		t0 := time.Now()
		_, err := h.Snapshot(context.Background(), node, snapBody())
		took := time.Since(t0)
		if !errors.Is(err, want) || took > within {
			t.Errorf("%s: %v after %s, want %v within %s", node, err, took, want, within)
		}
		t.Logf("%s: %v after %s", node, err, took.Round(time.Millisecond))
	}
	enrollFake(t, h, "away")
	quick(t, "away", ErrNodeOffline, 100*time.Millisecond)
	quick(t, "never-enrolled", ErrNodeOffline, 100*time.Millisecond)
	if n := len(auditActions(t, h, actionSnapshotRequested)); n != 0 {
		t.Errorf("%d snapshot-requested records for nodes that were not sent the task", n)
	}

	deaf := enrollFake(t, h, "deaf")
	deaf.link(t, h, nil)
	quick(t, "deaf", ErrNodeOffline, 500*time.Millisecond)

	silent := enrollFake(t, h, "silent")
	silent.link(t, h, func(*nats.Msg) {})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	if _, err := h.Snapshot(ctx, "silent", snapBody()); !errors.Is(err, ErrNodeTimeout) || time.Since(t0) > time.Second {
		t.Errorf("silent node: %v after %s, want %v at the 300 ms deadline", err, time.Since(t0), ErrNodeTimeout)
	}

	gone := enrollFake(t, h, "gone")
	gone.link(t, h, func(*nats.Msg) { time.AfterFunc(200*time.Millisecond, gone.nc.Close) })
	t0 = time.Now()
	_, err := h.Snapshot(context.Background(), "gone", snapBody())
	if !errors.Is(err, ErrNodeOffline) || time.Since(t0) > 3*time.Second {
		t.Errorf("node gone while the hub waits: %v after %s, want %v within about a second", err, time.Since(t0), ErrNodeOffline)
	}
	t.Logf("gone: %v after %s", err, time.Since(t0).Round(time.Millisecond))

	for _, b := range []fed.SnapshotBody{{Dataset: "d", Query: testQuery}, {Snapshot: "s", Query: testQuery}, {Snapshot: "s", Dataset: "d", Query: json.RawMessage(`{`)}} {
		if _, err := h.Snapshot(context.Background(), "silent", b); err == nil || errors.Is(err, ErrNodeTimeout) {
			t.Errorf("bad body %+v: %v, want a clear error at once", b, err)
		}
	}
	if _, err := h.Snapshot(context.Background(), "Bad Node", snapBody()); err == nil || !strings.Contains(err.Error(), "not a node id") {
		t.Errorf("bad node id: %v", err)
	}
}

// revocationsOf collects the revoke tasks f receives, checked as a node
// checks them.
type revokeInbox struct {
	ch chan fed.Task
}

func revocationsTo(t *testing.T, h *Hub, f *fakeNode) (*revokeInbox, func(*nats.Msg)) {
	in := &revokeInbox{ch: make(chan fed.Task, 100)}
	var replay fed.Replay
	return in, func(m *nats.Msg) {
		task, err := fed.OpenTask(h.PublicKey(), m.Data, f.id, time.Now(), 30*time.Second, &replay)
		if err != nil {
			t.Errorf("the node refused the hub's task: %v", err)
			return
		}
		if task.Kind == fed.TaskRevoke {
			in.ch <- task
		}
	}
}

// next waits up to d for a revoke task and returns its revocations (and
// ok false when none came).
func (in *revokeInbox) next(t *testing.T, d time.Duration) ([]fed.Revocation, bool) {
	t.Helper()
	select {
	case task := <-in.ch:
		if !strings.Contains(string(task.Body), `"revocations":[`) {
			t.Errorf("revoke body %s: want a list, even empty", task.Body)
		}
		var b fed.RevokeBody
		if err := json.Unmarshal(task.Body, &b); err != nil {
			t.Fatal(err)
		}
		return b.Revocations, true
	case <-time.After(d):
		return nil, false
	}
}

func permits(revs []fed.Revocation) string {
	var ids []string
	for _, r := range revs {
		ids = append(ids, r.Permit)
	}
	return strings.Join(ids, ",")
}

// TestRevocationsReachNodes: a node gets the full list of revoked
// permits as soon as it comes online (again on a new connection), a new
// revocation within a second, and its list every interval; a node
// cannot read another's; a hook that fails sends nothing rather than
// an empty list.
func TestRevocationsReachNodes(t *testing.T) {
	h := grantHub(t, time.Hour)
	exp := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	lists := map[string][]fed.Revocation{
		"north": {{Permit: "p-1", Time: time.Now().UTC(), Expires: exp, By: "admin"}, {Permit: "p-2", Time: time.Now().UTC(), Expires: exp, By: "representative"}},
	}
	var failing atomic.Bool
	h.SetRevocations(func(ctx context.Context, node string) ([]fed.Revocation, error) {
		if failing.Load() {
			return nil, errors.New("database down")
		}
		return lists[node], nil
	})
	north, south := enrollFake(t, h, "north"), enrollFake(t, h, "south")
	nin, nfn := revocationsTo(t, h, north)
	sin, sfn := revocationsTo(t, h, south)
	north.link(t, h, nfn)
	south.link(t, h, sfn)

	if revs, ok := nin.next(t, time.Second); !ok || permits(revs) != "p-1,p-2" {
		t.Fatalf("on coming online north got %q (%v), want p-1,p-2", permits(revs), ok)
	}
	if revs, ok := sin.next(t, time.Second); !ok || len(revs) != 0 {
		t.Fatalf("on coming online south got %q (%v), want an empty list", permits(revs), ok)
	}

	t0 := time.Now()
	if err := h.Revoked(context.Background(), "north", fed.Revocation{Permit: "p-3", Time: time.Now(), Expires: exp, By: "admin"}); err != nil {
		t.Fatal(err)
	}
	revs, ok := nin.next(t, time.Second)
	took := time.Since(t0)
	if !ok || permits(revs) != "p-3" {
		t.Fatalf("a new revocation: got %q (%v), want p-3 within a second", permits(revs), ok)
	}
	t.Logf("a revocation reached the node in %s", took.Round(time.Microsecond))
	if revs, ok := sin.next(t, 200*time.Millisecond); ok {
		t.Errorf("south got north's revocation: %q", permits(revs))
	}

	// A new connection of north gets the full list again at once, though
	// the hub never counted it offline.
	north.nc.Close()
	nin2, nfn2 := revocationsTo(t, h, north)
	north.link(t, h, nfn2)
	if revs, ok := nin2.next(t, time.Second); !ok || permits(revs) != "p-1,p-2" {
		t.Fatalf("on a new connection north got %q (%v), want p-1,p-2", permits(revs), ok)
	}

	// With the hook failing, a node coming online is sent nothing.
	failing.Store(true)
	east := enrollFake(t, h, "east")
	ein, efn := revocationsTo(t, h, east)
	east.link(t, h, efn)
	if revs, ok := ein.next(t, 500*time.Millisecond); ok {
		t.Errorf("the list failed, yet east was sent %q", permits(revs))
	}

	// An offline node is sent nothing now and no error is returned.
	enrollFake(t, h, "west")
	if err := h.Revoked(context.Background(), "west", fed.Revocation{Permit: "p-4"}); err != nil {
		t.Errorf("revocation for an offline node: %v", err)
	}
	if err := h.Revoked(context.Background(), "west", fed.Revocation{}); err == nil {
		t.Error("a revocation without a permit id was accepted")
	}
}

// TestRevocationsPeriodic: every interval each linked node gets its
// list, an empty one without a hook.
func TestRevocationsPeriodic(t *testing.T) {
	h := grantHub(t, 200*time.Millisecond)
	f := enrollFake(t, h, "north")
	in, fn := revocationsTo(t, h, f)
	f.link(t, h, fn)
	t0 := time.Now()
	got := 0
	for time.Since(t0) < 1100*time.Millisecond {
		revs, ok := in.next(t, 500*time.Millisecond)
		if !ok {
			break
		}
		if len(revs) != 0 {
			t.Errorf("without a hook the list has %q", permits(revs))
		}
		got++
	}
	if got < 4 {
		t.Errorf("%d lists in 1.1 s at a 200 ms interval (and one on coming online), want at least 4", got)
	}
}

// TestSnapshotNeedsAudit: a snapshot request that cannot be put on
// record is not sent.
func TestSnapshotNeedsAudit(t *testing.T) {
	h := grantHub(t, time.Hour)
	f := enrollFake(t, h, "north")
	var asked atomic.Int32
	answer := snapshotResponder(t, h, f, f.key, nil)
	f.link(t, h, func(m *nats.Msg) {
		if task, err := fed.OpenTask(h.PublicKey(), m.Data, f.id, time.Now(), time.Minute, nil); err == nil && task.Kind == fed.TaskSnapshot {
			asked.Add(1)
		}
		answer(m)
	})
	h.audit = failingAction{auditLog: h.audit, action: actionSnapshotRequested}
	if _, err := h.Snapshot(context.Background(), "north", snapBody()); !errors.Is(err, ErrAudit) {
		t.Errorf("audit log unwritable: %v, want ErrAudit", err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := asked.Load(); n != 0 {
		t.Errorf("the node was sent %d snapshot tasks", n)
	}
}
