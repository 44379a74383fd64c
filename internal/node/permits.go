package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/mosaic-imaging/mosaic/internal/audit"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/permit"
)

// Permits at the node: every access under a permit passes CheckPermit,
// which verifies the hub's signature offline and then applies what only
// the node knows: its own name and datasets, the revocations it heard,
// whether it heard the hub lately, and its operator's approvals.

// permitSkew is the clock difference allowed on a permit's window.
const permitSkew = 30 * time.Second

// Reasons of a PermitError: short, stable words for the relay, the
// audit log and tests.
const (
	ReasonInvalid          = "invalid"               // bad signature, not a permit, malformed claims
	ReasonExpired          = "expired"               // past its expiry
	ReasonNotYetValid      = "not-yet-valid"         // before its not-before
	ReasonOtherResearcher  = "other-researcher"      // sub is not the researcher asking
	ReasonOtherNode        = "other-node"            // for another node
	ReasonNoDataset        = "no-dataset"            // its dataset does not exist here
	ReasonOperation        = "operation-not-allowed" // the operation is not among its ops
	ReasonRevoked          = "revoked"               // revoked by the hub or this node
	ReasonHubUnheard       = "hub-not-heard"         // the hub's revocation list is too old (fail closed)
	ReasonApprovalRequired = "approval-required"     // the dataset needs the node's approval, not given
	ReasonUnavailable      = "unavailable"           // the node could not check or record the use
	ReasonConflict         = "permit-conflict"       // its claims differ from those first seen under its id
)

var reasonText = map[string]string{
	ReasonInvalid:          "the permit is not valid (bad signature, not a permit, or malformed)",
	ReasonExpired:          "the permit has expired",
	ReasonNotYetValid:      "the permit is not valid yet",
	ReasonOtherResearcher:  "the permit was granted to another researcher",
	ReasonOtherNode:        "the permit is for another node",
	ReasonNoDataset:        "the permit's dataset does not exist at this node",
	ReasonOperation:        "the permit does not allow this operation",
	ReasonRevoked:          "the permit has been revoked",
	ReasonHubUnheard:       "the node has not heard from the hub for too long and refuses permits until it does",
	ReasonApprovalRequired: "the node's own approval of this permit is required and has not been given",
	ReasonUnavailable:      "the node could not check or record the permit's use; try again later",
	ReasonConflict:         "the permit's content differs from the permit first seen under its id at this node",
}

// PermitError is the node's refusal of a permit. Status is 401 for a
// permit that is not valid in itself (forged, tampered, malformed,
// expired, not yet valid), 403 for a valid one refused here, and 503
// when the node could not check or record the use.
type PermitError struct {
	Status int
	Reason string // one of the Reason constants
}

func (e *PermitError) Error() string {
	if t, ok := reasonText[e.Reason]; ok {
		return "permit refused: " + t
	}
	return "permit refused: " + e.Reason
}

// HTTPStatus is the status an HTTP answer to the refused request gets.
func (e *PermitError) HTTPStatus() int { return e.Status }

// Audit actions of permits in the node's audit log.
const (
	actionPermitUse     = "permit-use"     // a permit honoured
	actionPermitRefused = "permit-refused" // a permit refused, with the reason
	actionPermitRevoked = "permit-revoked" // a revocation heard from the hub, the first time
)

func (l *Link) clock() time.Time {
	if l.now != nil {
		return l.now()
	}
	return time.Now()
}

// CheckPermit decides whether token, presented for researcher (the
// hub's user id), allows op at this node now. The checks, in order:
// the hub's signature and the window (30 s of skew); the permit's
// researcher, node and dataset (which must exist here); the operation;
// no revocation, from the hub or local; the hub's revocation list heard
// within permit_offline_limit (else every permit is refused: fail
// closed); and, for a dataset that requires it, the node's own approval.
// Before the dataset, the permit's content is bound to its id (the first
// content seen under an id stays its content) and a permit whose claims
// differ from the bound ones, or from the approved ones, is refused
// (ReasonConflict): an approval, a local revocation or a listing is of
// that content, not of whatever the hub signs later under the id.
// Every check, allowed or refused, is in the node's audit log before
// CheckPermit returns (a use that cannot be recorded there is refused),
// and a permit whose signature is good is counted as seen
// (Node.Permits; allowed uses after the first are written at most once
// a second, see useEvery). Refusals are *PermitError (the claims returned with
// one, when its signature was good, are for the caller's record, not to
// act on). Nothing is cached: a revocation or an approval counts from
// the next check on.
func (l *Link) CheckPermit(ctx context.Context, token, researcher string, op permit.Op) (permit.Claims, error) {
	now := l.clock()
	c, reason := l.decide(ctx, token, researcher, op, now)
	status := http.StatusForbidden
	switch reason {
	case "":
		status = http.StatusOK
	case ReasonInvalid, ReasonExpired, ReasonNotYetValid:
		status = http.StatusUnauthorized
	case ReasonUnavailable:
		status = http.StatusServiceUnavailable
	}
	detail := map[string]any{"researcher": researcher, "op": string(op)}
	if c.ID != "" {
		detail["dataset"], detail["snapshot"], detail["request"], detail["node"] = c.Dataset, c.Snapshot, c.Request, c.Node
		// The use is counted (for 'permits list') beside the audit
		// record, not before it: when both write, they wait for their
		// disks together. The audit log is the record that counts; a
		// count that fails is logged.
		if w, ok := l.uses.add(c, reason == "", now); ok {
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				l.writeUse(context.WithoutCancel(ctx), w)
			}()
			defer wg.Wait()
		}
		if reason == ReasonConflict {
			// The claims are the conflicting ones: their digest tells
			// them from the content the id is bound to.
			detail["content_sha256"] = contentDigest(c)
			if err := l.n.ix.RecordPermitConflict(context.WithoutCancel(ctx), c.ID, now); err != nil {
				l.n.log.Error("permit conflict not counted", "permit", c.ID, "err", err)
			}
		}
	} else {
		// Not a permit the hub signed: its claims mean nothing, but a
		// digest lets repeated attempts with one token be told apart.
		sum := sha256.Sum256([]byte(token))
		detail["token_sha256"] = hex.EncodeToString(sum[:8])
	}
	action := actionPermitUse
	if reason != "" {
		action = actionPermitRefused
		detail["reason"] = reason
	}
	if _, aerr := l.audit.Append(audit.Entry{Actor: actorHub, Action: action, Subject: c.ID, Detail: detail}); aerr != nil {
		l.n.log.Error("audit append failed: the permit is refused", "permit", c.ID, "err", aerr)
		if reason == "" {
			reason, status = ReasonUnavailable, http.StatusServiceUnavailable
		}
	}
	if reason != "" {
		l.n.log.Warn("permit refused", "permit", c.ID, "reason", reason)
		return c, &PermitError{Status: status, Reason: reason}
	}
	return c, nil
}

// useEvery is how often the allowed uses of one permit are written to
// the index: the first check and every refusal are written at once,
// further uses at most this often (a viewer fetching frames checks its
// permit for each), and what is left when the link closes.
const useEvery = time.Second

// permitUses counts the checks of permits not yet written to the index.
type permitUses struct {
	mu      sync.Mutex
	pending map[string]*pendingUse
}

type pendingUse struct {
	use     index.PermitUse // the counts not yet written
	written time.Time       // when the counts were last taken for writing
}

// add counts a check of c and returns the counts to write now, if any.
func (u *permitUses) add(c permit.Claims, allowed bool, now time.Time) (index.PermitUse, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.pending == nil {
		u.pending = map[string]*pendingUse{}
	}
	p := u.pending[c.ID]
	first := p == nil
	if first {
		// Forget permits that expired with nothing left to write: the
		// map holds live ones only.
		for id, q := range u.pending {
			if q.use.Uses == 0 && q.use.Refusals == 0 && now.After(q.use.Expires) {
				delete(u.pending, id)
			}
		}
		p = &pendingUse{}
		u.pending[c.ID] = p
	}
	if p.use.Uses == 0 && p.use.Refusals == 0 {
		p.use = useOf(c, now)
	}
	p.use.Last = now
	if allowed {
		p.use.Uses++
	} else {
		p.use.Refusals++
	}
	if allowed && now.Sub(p.written) < useEvery { // a first use: written is zero
		return index.PermitUse{}, false
	}
	w := p.use
	p.use.Uses, p.use.Refusals, p.written = 0, 0, now
	return w, true
}

// take returns every count not yet written, and forgets them.
func (u *permitUses) take() []index.PermitUse {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []index.PermitUse
	for _, p := range u.pending {
		if p.use.Uses > 0 || p.use.Refusals > 0 {
			out = append(out, p.use)
			p.use.Uses, p.use.Refusals = 0, 0
		}
	}
	return out
}

func (l *Link) writeUse(ctx context.Context, w index.PermitUse) {
	if err := l.n.ix.RecordPermitUse(ctx, w); err != nil {
		l.n.log.Error("permit use not counted", "permit", w.ID, "err", err)
	}
}

// flushPermitUses writes the counts of uses not written yet (Close
// calls it while the index is still open).
func (l *Link) flushPermitUses(ctx context.Context) {
	for _, w := range l.uses.take() {
		l.writeUse(ctx, w)
	}
}

// decide runs CheckPermit's checks and returns the claims (empty when
// the signature is not good) and the reason of a refusal ("" to allow).
func (l *Link) decide(ctx context.Context, token, researcher string, op permit.Op, now time.Time) (permit.Claims, string) {
	c, err := permit.Verify(l.hubKey, token, now, permitSkew)
	switch {
	case errors.Is(err, permit.ErrExpired):
		return c, ReasonExpired
	case errors.Is(err, permit.ErrNotYetValid):
		return c, ReasonNotYetValid
	case err != nil:
		return permit.Claims{}, ReasonInvalid
	case c.Researcher != researcher:
		return c, ReasonOtherResearcher
	case c.Node != l.f.Node:
		return c, ReasonOtherNode
	}
	digest := contentDigest(c)
	if err := l.bind(ctx, c, digest, now); err != nil {
		l.n.log.Error("permit check: the index did not bind the permit's content", "permit", c.ID, "err", err)
		return c, ReasonUnavailable
	}
	st, err := l.n.ix.PermitStatus(ctx, c.ID, c.Dataset)
	if err != nil {
		l.n.log.Error("permit check: the index did not answer", "permit", c.ID, "err", err)
		return c, ReasonUnavailable
	}
	switch {
	case st.SeenDigest != digest || (st.ApprovedDigest != "" && st.ApprovedDigest != digest):
		// Another permit was signed under this id: what the node saw,
		// approved or revoked under the id is not this one.
		return c, ReasonConflict
	case !st.DatasetExists:
		return c, ReasonNoDataset
	case !permit.ValidOp(op) || !c.Allows(op):
		return c, ReasonOperation
	case st.RevokedBy != "":
		return c, ReasonRevoked
	case now.Sub(st.HubHeard) > l.n.cfg.PermitOfflineLimit: // never heard: zero, long ago
		return c, ReasonHubUnheard
	case st.RequireApproval && !st.Approved:
		return c, ReasonApprovalRequired
	}
	return c, ""
}

// contentDigest is the hex SHA-256 of a permit's claims in canonical
// form (the JSON of permit.Claims, fields in their fixed order): what the
// node binds to a permit id when it first sees it.
func contentDigest(c permit.Claims) string {
	b, _ := json.Marshal(c) // strings and numbers alone: it cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// bind binds the permit's id to its content in the index unless this
// link did already (a binding never changes, so it is remembered).
func (l *Link) bind(ctx context.Context, c permit.Claims, digest string, now time.Time) error {
	if v, ok := l.bound.Load(c.ID); ok && v.(string) == digest {
		return nil
	}
	bound, err := l.n.ix.BindPermit(ctx, useOf(c, now), digest)
	if err != nil {
		return err
	}
	if bound == digest {
		l.bound.Store(c.ID, digest)
	}
	return nil
}

func useOf(c permit.Claims, now time.Time) index.PermitUse {
	return index.PermitUse{ID: c.ID, Researcher: c.Researcher, Node: c.Node, Dataset: c.Dataset, Snapshot: c.Snapshot,
		Ops: opStrings(c.Operations), Expires: c.ExpiresAt(), First: now}
}

func opStrings(ops []permit.Op) []string {
	out := make([]string, len(ops))
	for i, o := range ops {
		out[i] = string(o)
	}
	return out
}

// Permit states in Node.Permits.
const (
	PermitActive   = "active"   // honoured: its dataset needs no local approval
	PermitApproved = "approved" // approved by the node's operator
	PermitPending  = "pending"  // its dataset needs the node's approval, not given yet
	PermitRevoked  = "revoked"  // revoked by the hub or the node
	PermitExpired  = "expired"  // past its expiry
	PermitConflict = "conflict" // another permit was presented under its id (with other claims), and refused
)

// PermitInfo is a permit as the node's operator sees it.
type PermitInfo struct {
	index.PermitRecord
	// State is one of the Permit state constants.
	State string `json:"state"`
}

// Permits lists the permits the node knows of (checked at least once,
// approved or revoked) with their state, by id.
func (n *Node) Permits(ctx context.Context) ([]PermitInfo, error) {
	recs, err := n.ix.Permits(ctx)
	if err != nil {
		return nil, err
	}
	need, err := n.ix.PermitApprovalRequired(ctx)
	if err != nil {
		return nil, err
	}
	required := map[string]bool{}
	for _, d := range need {
		required[d] = true
	}
	now := time.Now()
	out := make([]PermitInfo, 0, len(recs))
	for _, r := range recs {
		p := PermitInfo{PermitRecord: r}
		switch {
		case r.Conflicts > 0:
			p.State = PermitConflict
		case r.Revoked != nil:
			p.State = PermitRevoked
		case r.Expires != nil && !now.Before(*r.Expires):
			p.State = PermitExpired
		case r.Approved != nil:
			p.State = PermitApproved
		case r.Dataset == "" || required[r.Dataset]:
			p.State = PermitPending
		default:
			p.State = PermitActive
		}
		out = append(out, p)
	}
	return out, nil
}

// permitID is what a permit id given to the operator's commands may be.
var permitID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

func checkPermitID(id string) error {
	if !permitID.MatchString(id) {
		return fmt.Errorf("%w: permit id %q: use 1 to 128 letters, digits, '.', '_', ':' and '-'", index.ErrInvalid, id)
	}
	return nil
}

// ApprovePermit records the node's own approval of the permit first
// seen under id (ApprovePermitContent without a token).
func (n *Node) ApprovePermit(ctx context.Context, id string) error {
	_, err := n.ApprovePermitContent(ctx, id, "")
	return err
}

// ApprovePermitContent records the node's own approval of a permit,
// which a dataset that requires approval needs before the permit is
// honoured. The approval is of content, not of an id: without a token,
// of the claims first seen under id (ErrNotFound for an id never seen);
// with a token (the permit itself, signed by the hub this node enrolled
// with, for this node, not expired), of that token's claims, ahead of
// any use. A token whose claims differ from those first seen under its
// id is refused (ErrConflict). It returns the permit as now recorded,
// for the operator to read what was approved.
func (n *Node) ApprovePermitContent(ctx context.Context, id, token string) (PermitInfo, error) {
	if err := checkPermitID(id); err != nil {
		return PermitInfo{}, err
	}
	now := time.Now().UTC()
	var digest string
	if token != "" {
		f, ok, err := n.LoadFederation()
		if err != nil {
			return PermitInfo{}, err
		}
		if !ok {
			return PermitInfo{}, fmt.Errorf("%w: this node is not enrolled: there is no hub key to check the permit against", index.ErrInvalid)
		}
		hubKey, err := fed.DecodeKey(f.HubKey)
		if err != nil {
			return PermitInfo{}, fmt.Errorf("%w: the hub key in federation.json: %v", index.ErrInvalid, err)
		}
		c, err := permit.Verify(hubKey, strings.TrimSpace(token), now, permitSkew)
		switch {
		case err != nil && !errors.Is(err, permit.ErrNotYetValid):
			return PermitInfo{}, fmt.Errorf("%w: the token is not a permit of this node's hub that can be approved: %v", index.ErrInvalid, err)
		case c.ID != id:
			return PermitInfo{}, fmt.Errorf("%w: the token is permit %q, not %q", index.ErrInvalid, c.ID, id)
		case c.Node != f.Node:
			return PermitInfo{}, fmt.Errorf("%w: the token is a permit for node %q, not this node (%q)", index.ErrInvalid, c.Node, f.Node)
		}
		digest = contentDigest(c)
		bound, err := n.ix.BindPermit(ctx, useOf(c, now), digest)
		if err != nil {
			return PermitInfo{}, err
		}
		if bound != digest {
			return PermitInfo{}, fmt.Errorf("%w: permit %s: the token's claims differ from those first seen under this id; not approved", ErrConflict, id)
		}
	}
	rec, ok, err := n.permit(ctx, id)
	if err != nil {
		return PermitInfo{}, err
	}
	if token == "" {
		if !ok || rec.Digest == "" {
			return PermitInfo{}, fmt.Errorf("%w: permit %s was never seen at this node (no content of it was checked here): approve it ahead with --token and the permit itself", index.ErrNotFound, id)
		}
		digest = rec.Digest
	}
	if err := n.ix.ApprovePermit(ctx, id, digest, now); err != nil {
		return PermitInfo{}, err
	}
	rec, _, err = n.permit(ctx, id)
	return rec, err
}

// ErrConflict is a permit whose content differs from the content first
// seen under its id.
var ErrConflict = errors.New("permit conflict")

// permit is one permit as Permits lists it; ok is false when the node
// knows nothing of id.
func (n *Node) permit(ctx context.Context, id string) (PermitInfo, bool, error) {
	ps, err := n.Permits(ctx)
	if err != nil {
		return PermitInfo{}, false, err
	}
	for _, p := range ps {
		if p.ID == id {
			return p, true, nil
		}
	}
	return PermitInfo{}, false, nil
}

// RevokePermit revokes a permit at this node alone: it is refused here
// from then on. The hub is not told.
func (n *Node) RevokePermit(ctx context.Context, id, reason string) error {
	if err := checkPermitID(id); err != nil {
		return err
	}
	if len(reason) > 500 || strings.IndexFunc(reason, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return fmt.Errorf("%w: the reason must be printable text of at most 500 bytes", index.ErrInvalid)
	}
	return n.ix.RevokePermitLocally(ctx, id, reason, time.Now().UTC())
}

// RequirePermitApproval sets whether permits for dataset need the
// node's own approval (ApprovePermit) before they are honoured, so that
// the hub alone can grant nothing there.
func (n *Node) RequirePermitApproval(ctx context.Context, dataset string, on bool) error {
	return n.ix.SetPermitApproval(ctx, dataset, on, time.Now().UTC())
}

// PermitApprovalRequired lists the datasets whose permits need the
// node's approval.
func (n *Node) PermitApprovalRequired(ctx context.Context) ([]string, error) {
	return n.ix.PermitApprovalRequired(ctx)
}
