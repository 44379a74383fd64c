package fed

import (
	"encoding/json"
	"time"
)

// The tasks of the road from a count to data: cohort snapshots when a
// dataset is made available, permit revocations, and DICOMweb requests
// relayed from researchers to a node under a permit.
const (
	// TaskSnapshot asks one node to freeze the patients and studies a
	// query selects in one dataset (the body is a SnapshotBody; the
	// answer a SnapshotAnswer, signed by the node).
	TaskSnapshot TaskKind = "snapshot"
	// TaskRevoke tells nodes of revoked permits (the body is a
	// RevokeBody; no answer). The hub sends it to every node at once, and
	// again with every permit still revoked and unexpired, so that a node
	// that was away learns of them when it comes back.
	TaskRevoke TaskKind = "revoke"
	// TaskRelay carries one researcher's DICOMweb request to a node under
	// a permit (the body is a RelayRequest); the answer streams back as
	// described in package relay.
	TaskRelay TaskKind = "relay"
)

// SnapshotBody is the body of a snapshot task.
type SnapshotBody struct {
	// Snapshot is the hub's id of the snapshot (the same at every node
	// of one access request).
	Snapshot string `json:"snapshot"`
	// Request is the access request the snapshot is made for.
	Request string `json:"request"`
	Dataset string `json:"dataset"`
	// Query is the request's query in Samply Lens AST form.
	Query json.RawMessage `json:"query"`
}

// SnapshotAnswer is a node's signed answer to a snapshot task. It never
// carries the member list: Digest commits to it, and the counts pass the
// node's disclosure floor (zero when under it).
type SnapshotAnswer struct {
	Node     string    `json:"node"`
	TaskID   string    `json:"task_id"`
	Snapshot string    `json:"snapshot"`
	Dataset  string    `json:"dataset"`
	Created  time.Time `json:"created"`
	// Digest commits to the node's member list without revealing it: an
	// HMAC-SHA-256 (hex), keyed by a secret only the node holds, of the
	// snapshot id, the dataset and the SHA-256 of the sorted lines
	// "patient-pseudonym study-uid\n" (node.SnapshotDigest). Empty when
	// the counts are withheld (zero): a cohort under the floor gets no
	// digest at all.
	Digest   string `json:"digest"`
	Subjects int    `json:"subjects"`
	Studies  int    `json:"studies"`
	// Floor is the node's disclosure floor: counts under it are zero.
	Floor int `json:"floor"`
	// Error is set when the node made no snapshot (no such dataset, a bad
	// query); it never carries data.
	Error string `json:"error,omitempty"`
}

// DigestOK reports whether the answer's digest is well formed: 64
// lowercase hexadecimal digits, or empty when both counts are zero
// (withheld under the node's floor).
func (a SnapshotAnswer) DigestOK() bool {
	if a.Digest == "" {
		return a.Subjects == 0 && a.Studies == 0
	}
	if len(a.Digest) != 64 {
		return false
	}
	for i := 0; i < len(a.Digest); i++ {
		if c := a.Digest[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Revocation is one revoked permit.
type Revocation struct {
	Permit string    `json:"permit"`
	Time   time.Time `json:"time"`
	// Expires is the permit's own expiry: a node may forget the
	// revocation after it.
	Expires time.Time `json:"expires"`
	By      string    `json:"by"` // "admin", "representative", "researcher", "node"
}

// RevokeBody is the body of a revoke task.
type RevokeBody struct {
	Revocations []Revocation `json:"revocations"`
}

// RelayRequest is the body of a relay task: one HTTP request made to
// the hub under /dicom-web/permits/{permit}/, for the node to answer
// from the permit's snapshot.
type RelayRequest struct {
	// Stream names the answer's stream (see package relay).
	Stream string `json:"stream"`
	// Permit is the permit's compact JWS, which the node verifies itself.
	Permit string `json:"permit"`
	// Researcher is the hub user the request is made for: the node
	// refuses a permit whose sub is someone else.
	Researcher string `json:"researcher"`
	Method     string `json:"method"`
	// Path is below the permit's root ("/studies", "/studies/1.2/series",
	// ...), Query the raw query string.
	Path string `json:"path"`
	// Root is the URL of the permit's root on the hub as the researcher
	// reached it ("https://hub/dicom-web/permits/ID/"): URLs in answers
	// (RetrieveURL, BulkDataURI) point below it, never at the node.
	Root   string              `json:"root"`
	Query  string              `json:"query,omitempty"`
	Header map[string][]string `json:"header,omitempty"` // Accept, Range, If-None-Match only
}
