package hub

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/lens"
)

// Node statuses in a search result.
const (
	NodeAnswered    = "answered"
	NodeLate        = "late"        // online, but no answer before the deadline
	NodeUnreachable = "unreachable" // enrolled, but not connected
	NodeError       = "error"       // answered that it could not run the query
)

// ResultEntry is one dataset's answer in a merged search result: the
// EUCAIM result shape plus the node and dataset it comes from.
type ResultEntry struct {
	Node    string `json:"node"`
	Dataset string `json:"dataset"`
	// Provider names the node for EUCAIM's front end (Focus adds it).
	Provider string `json:"provider"`
	fed.DatasetResult
}

// NodeStatus is one node's part in a search.
type NodeStatus struct {
	Node     string  `json:"node"`
	Status   string  `json:"status"`
	TookMS   float64 `json:"took_ms,omitempty"`
	Datasets int     `json:"datasets"`
	Floor    int     `json:"floor,omitempty"`
	Error    string  `json:"error,omitempty"`
}

// SearchResult is the merged answer of a federated search.
type SearchResult struct {
	QueryID string        `json:"query_id"`
	Query   string        `json:"query"`
	Results []ResultEntry `json:"results"`
	Nodes   []NodeStatus  `json:"nodes"`
	TookMS  float64       `json:"took_ms"`
	// Alerts are the attack patterns nodes saw in this user's questions
	// (shown to hub admins only; empty for everyone else).
	Alerts []fed.Alert `json:"-"`
}

// Errors of Search for the HTTP layer.
var (
	ErrQuota = errors.New("hub: daily query limit reached")
)

// Audit actions of a search: the hub writes actionSearchIssued (who, the
// canonical query and its hash, the nodes it is addressed to) before it
// sends anything, and actionSearch (per-node statuses and the counts
// returned) after the answers; both have the search id as their subject,
// so an auditor can pair them. An issued record without its result
// record is a search whose result the hub did not give: its result
// record could not be written, it could not be sent, or the hub stopped.
const (
	actionSearchIssued = "search-issued"
	actionSearch       = "search"
)

// maxRecordedQuery bounds the canonical query an issued record carries in
// full. The limits of a query allow canonical forms of about 60 KiB, which
// JSON escaping in the record can double past the audit log's 64 KiB per
// record; a longer one is recorded by its hash, length and description.
const maxRecordedQuery = 16 << 10

// Search checks the user's quota, signs and publishes a query (parsed
// with lens.Parse or built with lens.NewQuery) to every node, and merges
// the answers that arrive before the deadline. Nodes that do not answer
// in time are reported, never waited for.
//
// The search is on record before it reaches any node: when its "search
// issued" audit record cannot be written, Search fails with ErrAudit and
// nothing is sent, so no node runs the query or charges the researcher's
// privacy budget. When the record of the result (or of a node's
// disclosure alert about it) cannot be written, the nodes have answered
// but Search still fails with ErrAudit and gives no result.
func (h *Hub) Search(ctx context.Context, u User, q *lens.Query) (SearchResult, error) {
	t0 := time.Now()
	if q == nil || q.Root == nil {
		return SearchResult{}, &lens.Error{Reason: "no query"}
	}
	n, err := h.store.CountQuery(ctx, u.ID)
	if err != nil {
		return SearchResult{}, err
	}
	if n > h.cfg.QueriesPerDay {
		h.m.searches.WithLabelValues("quota").Inc()
		return SearchResult{}, fmt.Errorf("%w (%d per day)", ErrQuota, h.cfg.QueriesPerDay)
	}
	canon := q.Canonical()
	wire, err := q.MarshalJSON()
	if err != nil {
		return SearchResult{}, err
	}
	res := SearchResult{QueryID: fed.NewID(), Query: q.Describe(), Results: []ResultEntry{}, Nodes: []NodeStatus{}, Alerts: []fed.Alert{}}
	nodes, err := h.store.Nodes(ctx)
	if err != nil {
		return res, err
	}
	researchers := map[string]string{}
	for _, nd := range nodes {
		if nd.Removed == nil && nd.Enrolled != nil {
			researchers[nd.ID] = h.Pseudonym(nd.ID, u.ID)
		}
	}
	body2, _ := json.Marshal(fed.SearchBody{QueryID: res.QueryID, Query: wire, Researchers: researchers})
	now := time.Now()
	deadline := h.cfg.SearchDeadline
	task := fed.Task{ID: res.QueryID, Kind: fed.TaskSearch, Issued: now, Expires: now.Add(deadline + 5*time.Second), Audience: fed.AudienceAll, Body: body2}
	msg, err := fed.Seal(h.key, fed.SignerHub, task)
	if err != nil {
		return res, err
	}
	sum := sha256.Sum256(canon)
	addressed := make([]string, 0, len(researchers))
	for id := range researchers {
		addressed = append(addressed, id)
	}
	sort.Strings(addressed)
	issued := map[string]any{"query": res.Query, "query_sha256": hex.EncodeToString(sum[:]), "nodes": addressed}
	if len(canon) <= maxRecordedQuery {
		issued["query_canonical"] = string(canon)
	} else {
		issued["query_canonical_bytes"] = len(canon)
	}
	if err := h.record("user:"+u.ID, actionSearchIssued, res.QueryID, issued); err != nil {
		h.m.searches.WithLabelValues("audit").Inc()
		return SearchResult{}, err
	}

	// Nodes that leave or lose their connection while the search runs
	// are not waited for: changed fires then.
	changed := h.nodesChanged()
	online := h.online()
	expected := map[string]bool{}
	status := map[string]*NodeStatus{}
	for _, nd := range nodes {
		if nd.Removed != nil || nd.Enrolled == nil {
			continue
		}
		st := &NodeStatus{Node: nd.ID, Status: NodeUnreachable}
		if _, ok := online[nd.ID]; ok {
			st.Status = NodeLate
			expected[nd.ID] = true
		}
		status[nd.ID] = st
	}

	// Room for every node's answer, so that none is dropped as a slow
	// consumer while earlier ones are checked; keys are loaded first.
	for id := range status {
		h.nodeKey(ctx, id)
	}
	inbox := h.nc.NewRespInbox()
	ch := make(chan *nats.Msg, len(status)+16)
	sub, err := h.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return res, err
	}
	defer sub.Unsubscribe()
	if err := h.nc.PublishRequest(fed.SubjectSearch, inbox, msg); err != nil {
		return res, err
	}
	h.nc.Flush()
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	waiting := len(expected)
	answered := map[string]bool{}
	var auditErr error
collect:
	for waiting > 0 {
		select {
		case <-ctx.Done():
			break collect
		case <-timer.C:
			break collect
		case <-changed:
			changed = h.nodesChanged()
			now := h.online()
			for id := range expected {
				if _, ok := now[id]; !ok && !answered[id] {
					status[id].Status = NodeUnreachable
					delete(expected, id)
					waiting--
				}
			}
		case m := <-ch:
			node := fed.Signer(m.Data)
			st := status[node]
			if st == nil || answered[node] {
				h.m.refused.WithLabelValues("unexpected-answer").Inc()
				continue
			}
			var a fed.SearchAnswer
			if !h.verifyFrom(node, m.Data, &a) || a.Node != node || a.TaskID != res.QueryID {
				continue
			}
			answered[node] = true
			if expected[node] {
				waiting--
			}
			st.TookMS = float64(time.Since(t0).Microseconds()) / 1000
			st.Floor = a.Floor
			if a.Error != "" {
				st.Status, st.Error = NodeError, a.Error
				continue
			}
			st.Status = NodeAnswered
			if err := h.nodeAlerts(node, u, res.QueryID, a.Alerts); err != nil && auditErr == nil {
				auditErr = err
			}
			if len(a.Datasets) > 1000 {
				a.Datasets = a.Datasets[:1000]
			}
			st.Datasets = len(a.Datasets)
			for _, d := range a.Datasets {
				res.Results = append(res.Results, ResultEntry{Node: node, Dataset: d.ID, Provider: node, DatasetResult: d})
			}
		}
	}
	for _, st := range status {
		res.Nodes = append(res.Nodes, *st)
		h.m.nodeAnswers.WithLabelValues(st.Status).Inc()
	}
	sort.Slice(res.Nodes, func(i, j int) bool { return res.Nodes[i].Node < res.Nodes[j].Node })
	sort.SliceStable(res.Results, func(i, j int) bool {
		if res.Results[i].Node != res.Results[j].Node {
			return res.Results[i].Node < res.Results[j].Node
		}
		return res.Results[i].Dataset < res.Results[j].Dataset
	})
	res.TookMS = float64(time.Since(t0).Microseconds()) / 1000
	h.m.searches.WithLabelValues("ok").Inc()
	h.m.searchSeconds.Observe(time.Since(t0).Seconds())

	var statuses []string
	for _, st := range res.Nodes {
		statuses = append(statuses, st.Node+"="+st.Status)
	}
	var counts []string
	for _, r := range res.Results {
		c := fmt.Sprintf("%s/%s=%d", r.Node, r.Dataset, r.SubjectsCount)
		if r.Refused != "" {
			c = r.Node + "/" + r.Dataset + "=" + r.Refused
		}
		counts = append(counts, c)
	}
	if err := h.record("user:"+u.ID, actionSearch, res.QueryID, map[string]any{
		"query": res.Query, "query_sha256": hex.EncodeToString(sum[:]), "nodes": statuses, "subjects": counts,
	}); err != nil {
		return SearchResult{}, err
	}
	if auditErr != nil {
		return SearchResult{}, auditErr
	}
	return res, nil
}

// Pseudonym is the name user goes by at node: a keyed hash (HMAC-SHA256
// with a secret derived from the hub's signing key) of the node id and
// the user id, different at every node. A node cannot test names against
// it, nor link a researcher's pseudonyms across nodes; the hub can map
// a node's alert back to the user.
func (h *Hub) Pseudonym(node, user string) string {
	m := hmac.New(sha256.New, h.pseudonymKey)
	m.Write([]byte(node))
	m.Write([]byte{0})
	m.Write([]byte(user))
	return "r-" + hex.EncodeToString(m.Sum(nil)[:16])
}

// maxAlerts bounds the alerts the hub keeps in memory for its pages (the
// audit log keeps them all).
const maxAlerts = 500

// Alert is a node's alert as the hub keeps it: with the user it was
// about, which only the hub can tell.
type Alert struct {
	fed.Alert
	Node    string `json:"node"`
	User    string `json:"user"`
	QueryID string `json:"query_id"`
}

// nodeAlerts records the alerts a node raised about user's question; an
// alert that cannot be audited is still kept for the nodes page, and the
// error (ErrAudit) fails the search.
func (h *Hub) nodeAlerts(node string, u User, queryID string, alerts []fed.Alert) error {
	var failed error
	if len(alerts) > 20 {
		alerts = alerts[:20]
	}
	for _, a := range alerts {
		if a.Researcher != h.Pseudonym(node, u.ID) {
			continue // not about this user: a node cannot accuse another
		}
		h.m.alerts.WithLabelValues(a.Kind).Inc()
		h.log.Warn("disclosure alert from a node", "node", node, "user", u.ID, "kind", a.Kind, "dataset", a.Dataset, "count", a.Count)
		if err := h.record("node:"+node, "disclosure-alert", queryID, map[string]any{
			"user": u.ID, "dataset": a.Dataset, "kind": a.Kind, "count": a.Count, "detail": a.Detail}); err != nil && failed == nil {
			failed = err
		}
		h.mu.Lock()
		if len(h.alerts) >= maxAlerts {
			h.alerts = append(h.alerts[:0], h.alerts[len(h.alerts)-maxAlerts/2:]...)
		}
		h.alerts = append(h.alerts, Alert{Alert: a, Node: node, User: u.ID, QueryID: queryID})
		h.mu.Unlock()
	}
	return failed
}

// Alerts returns the nodes' alerts received since the hub started,
// newest first.
func (h *Hub) Alerts() []Alert {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := slices.Clone(h.alerts)
	slices.Reverse(out)
	return out
}
