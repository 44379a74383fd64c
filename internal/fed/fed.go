// Package fed is the federation protocol between the hub and its nodes:
// NATS subjects, the messages carried on them, Ed25519 signatures on
// everything the hub asks of a node and on every node answer, and replay
// protection, and the TLS both sides use on the link (certificates made
// from Ed25519 keys, the certificates a node pins). Both sides import it;
// it holds no transport code beyond subject names and TLS settings, so it
// can be tested without a server.
package fed

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Subjects. A node may publish only on its own node subjects and on the
// reply subjects of requests it received; it may subscribe only to the
// search subject and its own task subject (the hub's NATS permissions
// enforce this).
const (
	// SubjectSearch carries signed search tasks from the hub to every
	// node, as requests: nodes answer on the reply subject.
	SubjectSearch = "mosaic.search"
	subjectNode   = "mosaic.node."
	subjectTasks  = "mosaic.tasks."
)

// NodeMessage names a message a node sends the hub, on a subject of its
// own (NodeSubject).
type NodeMessage string

// The messages of a node to its hub, each signed by the node.
const (
	// MsgHeartbeat (a Heartbeat) says the node is up, every few seconds.
	MsgHeartbeat NodeMessage = "heartbeat"
	// MsgCatalogue (a Catalogue) describes every dataset of the node.
	MsgCatalogue NodeMessage = "catalogue"
	// MsgLeaving (a Leaving) says the node is stopping cleanly: the hub
	// counts it offline at once instead of waiting for it in searches.
	MsgLeaving NodeMessage = "leaving"
)

// NodeMessages lists every message a node may send.
var NodeMessages = []NodeMessage{MsgHeartbeat, MsgCatalogue, MsgLeaving, MsgJob}

// NodeSubject is the subject node id publishes message kind on.
func NodeSubject(id string, kind NodeMessage) string { return subjectNode + id + "." + string(kind) }

// NodeSubjects is the subject the hub subscribes to for message kind
// of every node (a NATS wildcard).
func NodeSubjects(kind NodeMessage) string { return subjectNode + "*." + string(kind) }

// ParseNodeSubject returns the node and the message of a node subject;
// ok is false for any other subject, a bad node id or an unknown message.
func ParseNodeSubject(subject string) (id string, kind NodeMessage, ok bool) {
	rest, found := strings.CutPrefix(subject, subjectNode)
	if !found {
		return "", "", false
	}
	id, k, found := strings.Cut(rest, ".")
	if !found || !ValidNodeID(id) || !slices.Contains(NodeMessages, NodeMessage(k)) {
		return "", "", false
	}
	return id, NodeMessage(k), true
}

// TaskSubject is the subject of tasks for one node.
func TaskSubject(id string) string { return subjectTasks + id }

// NodePublishAllow and NodeSubscribeAllow are the NATS permissions of a
// node's connection.
func NodePublishAllow(id string) []string { return []string{subjectNode + id + ".>"} }

// NodeSubscribeAllow lists what a node may subscribe to: not the reply
// inboxes, where it could read other nodes' answers (nodes answer
// requests; they make none), and of relay credit only its own.
func NodeSubscribeAllow(id string) []string {
	return []string{SubjectSearch, TaskSubject(id), relayCredits(id)}
}

var nodeID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidNodeID reports whether id can name a node (and a NATS subject
// token).
func ValidNodeID(id string) bool { return nodeID.MatchString(id) }

// TaskKind names what a task asks of a node.
type TaskKind string

// Task kinds.
const (
	// TaskSearch asks for counts (the body is a SearchBody; the answer
	// a SearchAnswer).
	TaskSearch TaskKind = "search"
)

// SignerHub is the signer of everything the hub signs; nodes sign with
// their node id.
const SignerHub = "hub"

// AudienceAll is the audience of a task for every node.
const AudienceAll = "*"

// The hub's HTTP paths a node uses.
const (
	// PathEnroll takes an EnrollRequest (POST) and answers an
	// EnrollResponse.
	PathEnroll = "/api/v1/enroll"
	// PathNATSInfo answers a signed NATSInfo (GET, ?nonce=N).
	PathNATSInfo = "/api/v1/nats"
)

// Task is what the hub asks of nodes, signed.
type Task struct {
	ID       string          `json:"id"`
	Kind     TaskKind        `json:"kind"`
	Issued   time.Time       `json:"issued"`
	Expires  time.Time       `json:"expires"`
	Audience string          `json:"audience"` // AudienceAll or a node id
	Body     json.RawMessage `json:"body"`
}

// Signed is a signed message: the payload bytes as signed, the signer
// and the signature.
type Signed struct {
	Payload []byte `json:"payload"` // base64 in JSON
	Signer  string `json:"signer"`  // SignerHub or the node id
	Sig     []byte `json:"sig"`
}

// Errors of Open, for errors.Is.
var (
	ErrSignature = errors.New("fed: bad signature")
	ErrExpired   = errors.New("fed: task expired or not yet valid")
	ErrReplay    = errors.New("fed: task replayed")
	ErrAudience  = errors.New("fed: task is for another node")
	ErrMalformed = errors.New("fed: malformed message")
)

// MaxMessage bounds every message read from the transport.
const MaxMessage = 1 << 20

// NewID returns a random identifier for tasks and queries.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Seal signs v (JSON-encoded) as signer.
func Seal(priv ed25519.PrivateKey, signer string, v any) ([]byte, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(Signed{Payload: payload, Signer: signer, Sig: ed25519.Sign(priv, payload)})
}

// Unseal checks msg's signature with pub and decodes its payload into v.
// It returns the claimed signer.
func Unseal(pub ed25519.PublicKey, msg []byte, v any) (string, error) {
	if len(msg) > MaxMessage {
		return "", fmt.Errorf("%w: %d bytes", ErrMalformed, len(msg))
	}
	var s Signed
	if err := json.Unmarshal(msg, &s); err != nil || len(s.Payload) == 0 {
		return "", ErrMalformed
	}
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, s.Payload, s.Sig) {
		return s.Signer, ErrSignature
	}
	if err := json.Unmarshal(s.Payload, v); err != nil {
		return s.Signer, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return s.Signer, nil
}

// Signer peeks at the claimed signer of a message without checking it,
// to pick the key to check it with.
func Signer(msg []byte) string {
	var s struct {
		Signer string `json:"signer"`
	}
	json.Unmarshal(msg, &s)
	return s.Signer
}

// Replay remembers the tasks a node accepted until they expire.
type Replay struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// OpenTask verifies a task from the hub for node self: signature, time
// window (with skew of clock difference allowed), audience, and that it
// was not seen before.
func OpenTask(hub ed25519.PublicKey, msg []byte, self string, now time.Time, skew time.Duration, r *Replay) (Task, error) {
	var t Task
	signer, err := Unseal(hub, msg, &t)
	if err != nil {
		return t, err
	}
	if signer != SignerHub || t.ID == "" {
		return t, ErrSignature
	}
	if now.Add(skew).Before(t.Issued) || now.Add(-skew).After(t.Expires) || t.Expires.Sub(t.Issued) > time.Hour {
		return t, ErrExpired
	}
	if t.Audience != AudienceAll && t.Audience != self {
		return t, ErrAudience
	}
	if r != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.seen == nil {
			r.seen = map[string]time.Time{}
		}
		for id, exp := range r.seen {
			if now.After(exp.Add(skew)) {
				delete(r.seen, id)
			}
		}
		if _, dup := r.seen[t.ID]; dup {
			return t, ErrReplay
		}
		r.seen[t.ID] = t.Expires
	}
	return t, nil
}

// EncodeKey and DecodeKey write Ed25519 public keys as base64.
func EncodeKey(k ed25519.PublicKey) string { return base64.StdEncoding.EncodeToString(k) }

// DecodeKey reads a public key written by EncodeKey.
func DecodeKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("fed: bad public key")
	}
	return ed25519.PublicKey(b), nil
}
