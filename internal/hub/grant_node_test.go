package hub_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/hub"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/node"
)

// TestRevocationReachesRealNode: a real node enrolled over HTTP and
// linked over NATS with TLS takes the hub's revoke tasks (its link
// refuses none: signature, audience and time window pass its checks); a
// revocation is delivered on its task subject, as a second connection
// with the node's own credentials (and so its permissions) sees, and is
// stored by the node within a second.
func TestRevocationReachesRealNode(t *testing.T) {
	h, srv := tlsHub(t, hub.Config{RevocationInterval: 300 * time.Millisecond})
	n := enrolNode(t, h, srv, "north", node.Config{})
	startLink(t, n)
	if !online(t, h, "north", 10*time.Second) {
		t.Fatal("the node did not come online")
	}
	f, ok, err := n.LoadFederation()
	if err != nil || !ok {
		t.Fatalf("federation: %v %v", ok, err)
	}
	key, err := fed.LoadOrCreateKey(filepath.Join(n.Config().Data, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	tc, err := fed.ClientTLS(f.NATSCA, key, f.Node)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(strings.Join(f.NATSURLs, ","), nats.UserInfo(f.NATSUser, f.NATSPassword), nats.Secure(tc))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	got := make(chan fed.RevokeBody, 64)
	if _, err := nc.Subscribe(fed.TaskSubject("north"), func(m *nats.Msg) {
		task, err := fed.OpenTask(h.PublicKey(), m.Data, "north", time.Now(), 30*time.Second, nil)
		if err != nil || task.Kind != fed.TaskRevoke {
			t.Errorf("task on the node's subject: %v, %s", err, task.Kind)
			return
		}
		var b fed.RevokeBody
		json.Unmarshal(task.Body, &b)
		got <- b
	}); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	// The periodic list, empty without a hook.
	select {
	case b := <-got:
		if b.Revocations == nil || len(b.Revocations) != 0 {
			t.Errorf("periodic list %+v, want an empty one", b)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no periodic list within 2 s at a 300 ms interval")
	}
	t0 := time.Now()
	if err := h.Revoked(context.Background(), "north", fed.Revocation{Permit: "pm-1", Time: time.Now(), Expires: time.Now().Add(time.Hour), By: "admin"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(time.Second)
	for found := false; !found; {
		select {
		case b := <-got:
			found = len(b.Revocations) == 1 && b.Revocations[0].Permit == "pm-1"
		case <-deadline:
			t.Fatal("the revocation did not reach the node's task subject within a second")
		}
	}
	t.Logf("revocation on the node's subject after %s", time.Since(t0).Round(time.Microsecond))
	// And the node itself has it among its revoked permits.
	for stored := false; !stored; {
		ps, err := n.Permits(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			stored = stored || (p.ID == "pm-1" && p.State == node.PermitRevoked)
		}
		if !stored && time.Since(t0) > time.Second {
			t.Fatalf("the node does not hold the revocation a second after it was made: %+v", ps)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("revocation stored at the node after %s", time.Since(t0).Round(time.Microsecond))
	time.Sleep(200 * time.Millisecond)
	if refused := nodeAuditActions(t, filepath.Join(n.Config().Data, "audit.log"), "task-refused"); len(refused) != 0 {
		t.Errorf("the node's link refused the hub's tasks: %v", refused)
	}
}

// nodeAuditActions reads a node's audit log: the details of each record
// with action.
func nodeAuditActions(t *testing.T, path, action string) []map[string]any {
	t.Helper()
	fh, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var out []map[string]any
	sc := bufio.NewScanner(fh)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec struct {
			Action string         `json:"action"`
			Detail map[string]any `json:"detail"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Action == action {
			out = append(out, rec.Detail)
		}
	}
	return out
}

// TestSnapshotFromRealNode: a real node, linked over NATS with TLS,
// answers the hub's snapshot task and the hub accepts its signed answer
// (here an empty dataset: no counts and no digest, withheld); a
// snapshot of a dataset the node does not hold comes back as the node's
// error, without data.
func TestSnapshotFromRealNode(t *testing.T) {
	h, srv := tlsHub(t, hub.Config{})
	n := enrolNode(t, h, srv, "north", node.Config{})
	ctx := context.Background()
	if _, err := n.CreateDataset(ctx, index.Dataset{ID: "lung", Title: "Lung CT", AccessRights: "RESTRICTED", Tier: 2}); err != nil {
		t.Fatal(err)
	}
	startLink(t, n)
	if !online(t, h, "north", 10*time.Second) {
		t.Fatal("the node did not come online")
	}
	body := fed.SnapshotBody{Snapshot: "snap-1", Request: "req-1", Dataset: "lung", Query: json.RawMessage(`{"operand":"AND","children":[]}`)}
	t0 := time.Now()
	a, err := h.Snapshot(ctx, "north", body)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a real node's snapshot in %s: %+v", time.Since(t0).Round(time.Millisecond), a)
	if a.Node != "north" || a.Snapshot != "snap-1" || a.Dataset != "lung" || a.Subjects != 0 || a.Digest != "" {
		t.Errorf("answer %+v", a)
	}
	body.Dataset, body.Snapshot = "nope", "snap-2"
	if a, err := h.Snapshot(ctx, "north", body); !errors.Is(err, hub.ErrNodeAnswer) || a.Digest != "" {
		t.Errorf("a dataset the node does not hold: %+v, %v; want ErrNodeAnswer", a, err)
	} else {
		t.Logf("refused as it should be: %v", err)
	}
}
