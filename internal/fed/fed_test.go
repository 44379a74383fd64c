package fed

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestTaskSigning(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	otherPub, otherPriv, _ := ed25519.GenerateKey(nil)
	now := time.Now()
	task := Task{ID: NewID(), Kind: "search", Issued: now, Expires: now.Add(10 * time.Second), Audience: "*", Body: []byte(`{"q":1}`)}
	msg, err := Seal(priv, "hub", task)
	if err != nil {
		t.Fatal(err)
	}
	var r Replay
	got, err := OpenTask(pub, msg, "node-a", now, time.Second, &r)
	if err != nil || got.ID != task.ID || string(got.Body) != `{"q":1}` {
		t.Fatalf("open: %+v %v", got, err)
	}
	if _, err := OpenTask(pub, msg, "node-a", now, time.Second, &r); !errors.Is(err, ErrReplay) {
		t.Errorf("replay: %v", err)
	}
	if _, err := OpenTask(otherPub, msg, "node-a", now, time.Second, nil); !errors.Is(err, ErrSignature) {
		t.Errorf("wrong key: %v", err)
	}
	forged, _ := Seal(otherPriv, "hub", task)
	if _, err := OpenTask(pub, forged, "node-a", now, time.Second, nil); !errors.Is(err, ErrSignature) {
		t.Errorf("forged: %v", err)
	}
	// Tampered payload: the body {"q":1} becomes {"q":2}, still well
	// formed, so only the signature can catch it.
	var env map[string]string
	if err := json.Unmarshal(msg, &env); err != nil {
		t.Fatal(err)
	}
	payload, err := base64.StdEncoding.DecodeString(env["payload"])
	if err != nil {
		t.Fatal(err)
	}
	changed := bytes.Replace(payload, []byte(`{"q":1}`), []byte(`{"q":2}`), 1)
	if bytes.Equal(changed, payload) {
		t.Fatalf("the sealed task does not hold its body: %s", payload)
	}
	env["payload"] = base64.StdEncoding.EncodeToString(changed)
	tampered, _ := json.Marshal(env)
	if _, err := OpenTask(pub, tampered, "node-a", now, time.Second, nil); err == nil {
		t.Error("tampered message accepted")
	}
	if _, err := OpenTask(pub, msg, "node-a", now.Add(time.Minute), time.Second, nil); !errors.Is(err, ErrExpired) {
		t.Errorf("expired: %v", err)
	}
	task.Audience = "node-b"
	task.ID = NewID()
	msg, _ = Seal(priv, "hub", task)
	if _, err := OpenTask(pub, msg, "node-a", now, time.Second, nil); !errors.Is(err, ErrAudience) {
		t.Errorf("audience: %v", err)
	}
	for _, junk := range [][]byte{nil, []byte("{"), []byte(`{"payload":""}`), make([]byte, MaxMessage+1)} {
		if _, err := OpenTask(pub, junk, "node-a", now, time.Second, nil); err == nil {
			t.Errorf("junk %q accepted", junk)
		}
	}
	// A node signing as the hub is refused by the signer check too.
	asNode, _ := Seal(priv, "node-a", Task{ID: NewID(), Issued: now, Expires: now.Add(time.Second), Audience: "*"})
	if _, err := OpenTask(pub, asNode, "node-a", now, time.Second, nil); !errors.Is(err, ErrSignature) {
		t.Errorf("signer not hub: %v", err)
	}
}

func TestNodeIDs(t *testing.T) {
	for _, ok := range []string{"a", "hospital-a", "n0"} {
		if !ValidNodeID(ok) {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"", "A", "a.b", "a>", "*", "a b", "-a"} {
		if ValidNodeID(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestNodeSubjectsRoundTrip: every node message's subject parses back
// to its node and message; other subjects do not parse.
func TestNodeSubjectsRoundTrip(t *testing.T) {
	for _, kind := range NodeMessages {
		id, k, ok := ParseNodeSubject(NodeSubject("north-1", kind))
		if !ok || id != "north-1" || k != kind {
			t.Errorf("%s: %q %q %v", kind, id, k, ok)
		}
	}
	for _, s := range []string{"mosaic.node.north.unknown", "mosaic.node.North.heartbeat", "mosaic.node.north.heartbeat.x",
		"mosaic.tasks.north", "mosaic.node..heartbeat", "mosaic.node.north"} {
		if id, k, ok := ParseNodeSubject(s); ok {
			t.Errorf("%s parsed as %q %q", s, id, k)
		}
	}
}
