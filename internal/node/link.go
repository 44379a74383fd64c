package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/audit"
	"github.com/mosaic-imaging/mosaic/internal/compute"
	"github.com/mosaic-imaging/mosaic/internal/disclosure"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/lens"
)

// Federation is what enrolment stores in the data directory
// (federation.json, mode 0600): how to reach the hub and check its
// signatures.
type Federation struct {
	fed.EnrollResponse
	Enrolled time.Time `json:"enrolled"`
}

func (n *Node) federationPath() string { return filepath.Join(n.cfg.Data, "federation.json") }
func (n *Node) nodeKeyPath() string    { return filepath.Join(n.cfg.Data, "node.key") }

// hubTimeout bounds each HTTP exchange with the hub (enrolment, fetching
// its NATS settings): a hub that accepts the connection and never
// answers must not hold the command forever.
var hubTimeout = 30 * time.Second

// hubClient is the HTTP client of those exchanges.
var hubClient = &http.Client{Timeout: hubTimeout}

// Enroll registers the node with a hub using a one-time token from the
// hub's operator: it makes the node's key pair, sends the public half,
// and stores the NATS credentials and the hub's signing key it gets back.
func (n *Node) Enroll(ctx context.Context, hubURL, token, version string) (Federation, error) {
	var f Federation
	key, err := fed.LoadOrCreateKey(n.nodeKeyPath())
	if err != nil {
		return f, err
	}
	body, _ := json.Marshal(fed.EnrollRequest{Token: token, PublicKey: fed.EncodeKey(key.Public().(ed25519.PublicKey)), Version: version})
	req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimSuffix(hubURL, "/")+fed.PathEnroll, bytes.NewReader(body))
	if err != nil {
		return f, fmt.Errorf("node enroll: hub URL: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hubClient.Do(req)
	if err != nil {
		return f, fmt.Errorf("node enroll: %w", err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		dec.Decode(&e)
		return f, fmt.Errorf("node enroll: the hub refused (%s): %s", resp.Status, e.Error)
	}
	if err := dec.Decode(&f.EnrollResponse); err != nil {
		return f, fmt.Errorf("node enroll: bad answer from the hub: %w", err)
	}
	if _, err := fed.DecodeKey(f.HubKey); err != nil || !fed.ValidNodeID(f.Node) || len(f.NATSURLs) == 0 {
		return f, errors.New("node enroll: the hub's answer lacks its key, the node name or the NATS address")
	}
	if f.HubURL == "" {
		f.HubURL = hubURL
	}
	f.Enrolled = time.Now().UTC()
	b, _ := json.MarshalIndent(f, "", "  ")
	tmp := n.federationPath() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return f, err
	}
	return f, os.Rename(tmp, n.federationPath())
}

// LoadFederation reads federation.json; ok is false when the node was
// never enrolled.
func (n *Node) LoadFederation() (Federation, bool, error) {
	var f Federation
	b, err := os.ReadFile(n.federationPath())
	if errors.Is(err, os.ErrNotExist) {
		return f, false, nil
	}
	if err != nil {
		return f, false, err
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, false, fmt.Errorf("node: %s: %w", n.federationPath(), err)
	}
	return f, true, nil
}

// Link is a node's live connection to its hub.
type Link struct {
	n      *Node
	f      Federation
	hubKey ed25519.PublicKey
	key    ed25519.PrivateKey
	nc     *nats.Conn
	replay fed.Replay
	audit  *audit.Log
	cancel context.CancelFunc
	done   chan struct{}
	// kickHeartbeat and kickCatalogue make the loops send at once when
	// the link comes (back) up.
	kickHeartbeat, kickCatalogue chan struct{}
	closed                       chan struct{} // closed when the NATS connection is
	closeOnce, closedOnce        sync.Once

	// now is the link's clock for permits (permits.go); time.Now unless
	// a test sets it.
	now func() time.Time
	// uses counts the checks of permits not yet written (permits.go).
	uses permitUses
	// bound remembers the permit ids this link bound to their content
	// (id to content digest; see bind).
	bound sync.Map
	// comp answers the steps of federated computations, kept across
	// steps (link_compute.go).
	comp     *compute.Node
	compOnce sync.Once

	mu          sync.Mutex
	lastChanged time.Time
	connected   bool

	relay relayState // relayed DICOMweb requests (link_relay.go)
}

// LinkOptions steer a link.
type LinkOptions struct {
	Heartbeat time.Duration // default 5 s
	Version   string
}

// StartLink connects the node to its hub (if enrolled; nil otherwise)
// and keeps the connection: reconnecting with back-off, answering signed
// searches, sending heartbeats and publishing the catalogue whenever a
// dataset changes.
func (n *Node) StartLink(opts LinkOptions) (*Link, error) {
	return n.StartLinkContext(context.Background(), opts)
}

// StartLinkContext is StartLink with a context that bounds the start
// (fetching the hub's NATS settings); the link then runs until Close.
func (n *Node) StartLinkContext(ctx context.Context, opts LinkOptions) (*Link, error) {
	f, ok, err := n.LoadFederation()
	if err != nil || !ok {
		return nil, err
	}
	if opts.Heartbeat == 0 {
		opts.Heartbeat = 5 * time.Second
	}
	hubKey, err := fed.DecodeKey(f.HubKey)
	if err != nil {
		return nil, err
	}
	key, err := fed.LoadOrCreateKey(n.nodeKeyPath())
	if err != nil {
		return nil, err
	}
	if f.NATSCA == "" && f.HubURL != "" {
		// Enrolled before the hub had TLS (or the hub serves NATS without
		// it): ask for its addresses and certificate, signed by its key.
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		nf, err := n.RefreshFederation(rctx)
		cancel()
		if err != nil {
			n.log.Warn("could not fetch the hub's NATS certificate; connecting with the stored addresses", "err", err)
		} else {
			f = nf
		}
	}
	urls, err := linkURLs(f.NATSURLs, n.cfg.HubWebSocket)
	if err != nil {
		return nil, err
	}
	connOpts := []nats.Option{}
	if f.NATSCA != "" {
		tc, err := fed.ClientTLS(f.NATSCA, key, f.Node)
		if err != nil {
			return nil, fmt.Errorf("node: %s: %w", n.federationPath(), err)
		}
		connOpts = append(connOpts, nats.Secure(tc))
	}
	al, err := n.acquireAudit() // shared with the airlock (airlock.go)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		n.releaseAudit()
		return nil, err
	}
	l := &Link{n: n, f: f, hubKey: hubKey, key: key, audit: al, done: make(chan struct{}),
		kickHeartbeat: make(chan struct{}, 1), kickCatalogue: make(chan struct{}, 1), closed: make(chan struct{})}
	lctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	nc, err := nats.Connect(strings.Join(urls, ","), append(connOpts,
		nats.UserInfo(f.NATSUser, f.NATSPassword),
		nats.Name("mosaic-node-"+f.Node),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		// A connection that died without a word (a network cut, a NAT
		// forgetting it) is noticed, and replaced, within a minute
		// rather than the client's default of four.
		nats.PingInterval(20*time.Second),
		nats.MaxPingsOutstanding(2),
		nats.CustomReconnectDelay(func(attempts int) time.Duration {
			d := time.Duration(min(attempts, 6)) * 500 * time.Millisecond
			return d + time.Duration(rand.Int64N(int64(250*time.Millisecond)))
		}),
		nats.ConnectHandler(func(*nats.Conn) { l.setConnected(true) }),
		nats.ReconnectHandler(func(*nats.Conn) { l.setConnected(true) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			l.setConnected(false)
			if err != nil {
				n.log.Warn("hub link lost", "err", err)
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			n.log.Warn("hub link error", "err", err)
		}),
		nats.ClosedHandler(func(*nats.Conn) { l.closedOnce.Do(func() { close(l.closed) }) }),
	)...)
	if err != nil {
		cancel()
		n.releaseAudit()
		return nil, fmt.Errorf("node: hub link: %w", err)
	}
	l.nc = nc
	l.SetRelayResolver(l.resolvePermit)
	if _, err := nc.Subscribe(fed.SubjectSearch, l.onSearch); err != nil {
		nc.Close()
		cancel()
		n.releaseAudit()
		return nil, err
	}
	if _, err := nc.Subscribe(fed.TaskSubject(f.Node), l.onTask); err != nil {
		nc.Close()
		cancel()
		n.releaseAudit()
		return nil, err
	}
	go l.loop(lctx, opts)
	return l, nil
}

// linkURLs picks the hub's WebSocket URLs (ws://, wss://) or its others:
// one connection cannot mix them.
func linkURLs(all []string, websocket bool) ([]string, error) {
	var ws, other []string
	for _, u := range all {
		if strings.HasPrefix(u, "ws://") || strings.HasPrefix(u, "wss://") {
			ws = append(ws, u)
		} else {
			other = append(other, u)
		}
	}
	switch {
	case websocket && len(ws) == 0:
		return nil, errors.New("node: hub_websocket is set but the hub offers no WebSocket address (its nats_websocket)")
	case websocket || len(other) == 0:
		return ws, nil
	}
	return other, nil
}

// RefreshFederation fetches the hub's NATS addresses and the
// certificates to pin (GET /api/v1/nats), checks the hub's signature on
// them with the key stored at enrolment, and stores them in
// federation.json. A node enrolled before the hub had TLS does this at
// start; an operator does it after the hub changed its certificate
// (mosaic node enroll --refresh).
func (n *Node) RefreshFederation(ctx context.Context) (Federation, error) {
	f, ok, err := n.LoadFederation()
	if err != nil {
		return f, err
	}
	if !ok {
		return f, errors.New("node: not enrolled")
	}
	hubKey, err := fed.DecodeKey(f.HubKey)
	if err != nil {
		return f, err
	}
	nonce := fed.NewID()
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimSuffix(f.HubURL, "/")+fed.PathNATSInfo+"?nonce="+url.QueryEscape(nonce), nil)
	if err != nil {
		return f, fmt.Errorf("node: hub URL: %w", err)
	}
	resp, err := hubClient.Do(req)
	if err != nil {
		return f, fmt.Errorf("node: fetch NATS settings: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return f, fmt.Errorf("node: fetch NATS settings: the hub answered %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, fed.MaxMessage+1))
	if err != nil {
		return f, fmt.Errorf("node: fetch NATS settings: %w", err)
	}
	var info fed.NATSInfo
	signer, err := fed.Unseal(hubKey, b, &info)
	switch {
	case err != nil:
		return f, fmt.Errorf("node: the hub's NATS settings: %w", err)
	case signer != fed.SignerHub || info.Purpose != fed.PurposeNATSInfo || info.Nonce != nonce:
		return f, errors.New("node: the hub's NATS settings are not an answer to this request")
	case len(info.NATSURLs) == 0:
		return f, errors.New("node: the hub's NATS settings have no address")
	}
	err = n.UpdateFederation(func(g *Federation) { g.NATSURLs, g.NATSCA = info.NATSURLs, info.NATSCA })
	f.NATSURLs, f.NATSCA = info.NATSURLs, info.NATSCA
	return f, err
}

func (l *Link) setConnected(c bool) {
	l.mu.Lock()
	was := l.connected
	l.connected = c
	if c && !was {
		l.lastChanged = time.Time{} // publish the catalogue again
	}
	l.mu.Unlock()
	if c && !was {
		l.n.log.Info("hub link up", "hub", l.f.HubURL, "node", l.f.Node)
		for _, k := range []chan struct{}{l.kickHeartbeat, l.kickCatalogue} {
			select {
			case k <- struct{}{}:
			default:
			}
		}
	}
}

// Connected reports whether the link is up.
func (l *Link) Connected() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.connected
}

// drainWait bounds how long Close waits for searches in flight to be
// answered.
const drainWait = 10 * time.Second

// Close stops the link: the heartbeats stop, the hub is told the node is
// leaving (so that its searches stop waiting for the node at once),
// searches in flight are answered, and the connection closes. Calling
// it again does nothing.
func (l *Link) Close() {
	l.closeOnce.Do(func() {
		l.cancel()
		<-l.done
		l.stopRelays()
		l.leave()
		if err := l.nc.Drain(); err == nil {
			select {
			case <-l.closed:
			case <-time.After(drainWait):
				l.n.log.Warn("hub link: searches still running when the link closed")
			}
		}
		l.nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), l.n.cfg.CommitTimeout)
		l.flushPermitUses(ctx)
		cancel()
		l.n.releaseAudit()
	})
}

// leave tells the hub, if the link is up, that the node is stopping.
func (l *Link) leave() {
	if !l.Connected() {
		return
	}
	msg, err := fed.Seal(l.key, l.f.Node, fed.Leaving{Node: l.f.Node, Time: time.Now().UTC()})
	if err != nil {
		return
	}
	if err := l.nc.Publish(fed.NodeSubject(l.f.Node, fed.MsgLeaving), msg); err != nil {
		l.n.log.Warn("hub link: could not tell the hub the node is leaving", "err", err)
		return
	}
	if err := l.nc.FlushTimeout(2 * time.Second); err != nil {
		l.n.log.Warn("hub link: could not tell the hub the node is leaving", "err", err)
		return
	}
	l.n.log.Info("hub link: told the hub the node is leaving", "node", l.f.Node)
}

// loop sends heartbeats and, beside them so that a slow summary never
// delays a heartbeat, publishes the catalogue when it changed.
func (l *Link) loop(ctx context.Context, opts LinkOptions) {
	defer close(l.done)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		every(ctx, opts.Heartbeat, l.kickCatalogue, func() {
			if l.Connected() {
				l.publishCatalogueIfChanged(ctx)
			}
		})
	}()
	every(ctx, opts.Heartbeat, l.kickHeartbeat, func() {
		if l.Connected() {
			l.heartbeat(ctx, opts.Version)
		}
	})
	wg.Wait()
}

// every calls fn at once, then every d and whenever kick fires, until
// ctx ends.
func every(ctx context.Context, d time.Duration, kick <-chan struct{}, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		fn()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
	}
}

func (l *Link) heartbeat(ctx context.Context, version string) {
	ds, err := l.n.ix.Datasets(ctx)
	if err != nil {
		return
	}
	msg, err := fed.Seal(l.key, l.f.Node, fed.Heartbeat{Node: l.f.Node, Version: version, Time: time.Now().UTC(), Datasets: len(ds)})
	if err == nil {
		l.nc.Publish(fed.NodeSubject(l.f.Node, fed.MsgHeartbeat), msg)
	}
}

func (l *Link) publishCatalogueIfChanged(ctx context.Context) {
	ds, err := l.n.ix.Datasets(ctx)
	if err != nil {
		return
	}
	var latest time.Time
	for _, d := range ds {
		if d.Changed.After(latest) {
			latest = d.Changed
		}
		if d.Updated.After(latest) {
			latest = d.Updated
		}
	}
	l.mu.Lock()
	same := !l.lastChanged.IsZero() && !latest.After(l.lastChanged)
	l.mu.Unlock()
	if same {
		return
	}
	cat, err := l.n.CatalogueSummary(ctx)
	if err != nil {
		l.n.log.Error("catalogue summary failed", "err", err)
		return
	}
	cat.Node = l.f.Node
	msg, err := fed.Seal(l.key, l.f.Node, cat)
	if err != nil {
		return
	}
	if err := l.nc.Publish(fed.NodeSubject(l.f.Node, fed.MsgCatalogue), msg); err != nil {
		return
	}
	l.mu.Lock()
	l.lastChanged = latest
	if latest.IsZero() {
		l.lastChanged = time.Unix(1, 0)
	}
	l.mu.Unlock()
	l.n.log.Info("catalogue published", "datasets", len(cat.Datasets))
}

// The link's records in the node's audit log: who asked (the hub, for
// its tasks; the node, for what it noticed itself) and what happened.
const (
	actorHub              = "hub"
	actorNode             = "node"
	actionSearch          = "search"           // a search task answered
	actionTaskRefused     = "task-refused"     // a task refused unanswered (forged, expired, replayed, ...)
	actionDisclosureAlert = "disclosure-alert" // an attack pattern in a researcher's questions
)

// onSearch answers a signed search task with disclosure-controlled
// counts per dataset. Tasks that are unsigned, forged, expired, replayed
// or for another node are refused and logged, never answered.
func (l *Link) onSearch(m *nats.Msg) {
	ans, ok := l.answer(m.Data, time.Now())
	if !ok {
		return
	}
	msg, err := fed.Seal(l.key, l.f.Node, ans)
	if err != nil {
		return
	}
	if m.Reply != "" {
		m.Respond(msg)
	}
}

// errAuditAnswer is what a search answer says when the node could not
// record it in its audit log: no figure leaves the node unrecorded.
const errAuditAnswer = "the node could not record the search in its audit log; no counts were released"

// answer opens a search task and answers it; ok is false for a task
// that is refused (not answered at all). Every answer, and every alert it
// raised, is in the audit log before it leaves: when the log cannot be
// written, the answer carries an error and no counts.
func (l *Link) answer(data []byte, t0 time.Time) (fed.SearchAnswer, bool) {
	task, err := fed.OpenTask(l.hubKey, data, l.f.Node, t0, 30*time.Second, &l.replay)
	if err != nil || task.Kind != fed.TaskSearch {
		l.n.log.Warn("search task refused", "err", errOr(err, "not a search"))
		if _, aerr := l.audit.Append(audit.Entry{Actor: actorHub, Action: actionTaskRefused, Subject: task.ID, Detail: map[string]any{"reason": errOr(err, "not a search")}}); aerr != nil {
			l.n.log.Error("audit append failed: a refused task is not recorded", "err", aerr)
		}
		return fed.SearchAnswer{}, false
	}
	ans := fed.SearchAnswer{Node: l.f.Node, TaskID: task.ID, Floor: l.n.ctl.Policy().Floor, Datasets: []fed.DatasetResult{}}
	var body fed.SearchBody
	var q *lens.Query
	researcher := ""
	auditFailed := false
	if err := json.Unmarshal(task.Body, &body); err != nil {
		ans.Error = "malformed search body"
	} else if q, err = lens.Parse(body.Query); err != nil {
		ans.Error = "bad query: " + err.Error()
	} else {
		researcher = ResearcherOf(body, l.f.Node)
		ctx, cancel := context.WithTimeout(context.Background(), time.Until(task.Expires))
		var alerts []disclosure.Alert
		ans.Datasets, alerts, err = l.n.Search(ctx, q, researcher)
		cancel()
		if err != nil {
			l.n.log.Error("search failed", "err", err)
			ans.Datasets, ans.Error = []fed.DatasetResult{}, "the node could not run the query"
		}
		for _, a := range alerts {
			ans.Alerts = append(ans.Alerts, fed.Alert(a))
			l.n.log.Warn("disclosure alert", "dataset", a.Dataset, "researcher", a.Researcher, "kind", a.Kind, "count", a.Count)
			if _, err := l.audit.Append(audit.Entry{Actor: actorNode, Action: actionDisclosureAlert, Subject: task.ID, Detail: map[string]any{
				"dataset": a.Dataset, "researcher": a.Researcher, "kind": a.Kind, "count": a.Count, "detail": a.Detail}}); err != nil {
				l.n.log.Error("audit append failed: the search is not answered", "err", err)
				auditFailed = true
			}
		}
	}
	ans.TookMS = float64(time.Since(t0).Microseconds()) / 1000
	var counts []string
	for _, d := range ans.Datasets {
		c := fmt.Sprintf("%s=%d", d.ID, d.SubjectsCount)
		if d.Refused != "" {
			c = d.ID + "=" + d.Refused
		}
		counts = append(counts, c)
	}
	desc := ""
	if q != nil {
		desc = q.Describe()
	}
	if auditFailed {
		counts, ans.Error = nil, errAuditAnswer
	}
	if _, err := l.audit.Append(audit.Entry{Actor: actorHub, Action: actionSearch, Subject: task.ID, Detail: map[string]any{"researcher": researcher, "query": desc, "answered": counts, "error": ans.Error}}); err != nil {
		l.n.log.Error("audit append failed: the search is not answered", "err", err)
		auditFailed = true
	}
	if auditFailed {
		// The budget charged stays charged: the node errs on the side
		// of releasing less.
		ans.Datasets, ans.Error = []fed.DatasetResult{}, errAuditAnswer
	}
	return ans, true
}

// ResearcherOf returns the pseudonym a search body gives the asking
// researcher at node self: the hub's per-node pseudonym, else (from hubs
// before it) the shared user hash, else one shared "anonymous" budget.
func ResearcherOf(body fed.SearchBody, self string) string {
	if r := body.Researchers[self]; r != "" {
		return r
	}
	if body.User != "" {
		return "user:" + body.User
	}
	return "anonymous"
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

// Search answers q for researcher (a pseudonym) in every searchable
// dataset (Tier 2 and 3), under the node's disclosure control: the only
// figures that ever leave the node. It returns the alerts the question
// raised.
func (n *Node) Search(ctx context.Context, q *lens.Query, researcher string) ([]fed.DatasetResult, []disclosure.Alert, error) {
	subjects, err := n.ix.FederatedSubjects(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	datasets, err := n.ix.Datasets(ctx)
	if err != nil {
		return nil, nil, err
	}
	byID := map[string]index.Dataset{}
	for _, d := range datasets {
		byID[d.ID] = d
	}
	canon := q.Canonical()
	sum := sha256.Sum256(canon)
	key, shape := hex.EncodeToString(sum[:16]), q.Shape()
	out := []fed.DatasetResult{}
	var alerts []disclosure.Alert
	for _, s := range subjects {
		d, ok := byID[s.Dataset]
		if !ok || d.Tier < 2 {
			continue // Tier 1 datasets are in the catalogue only, not searchable
		}
		if pub, err := n.publication(ctx, d, true); err != nil {
			return nil, nil, err
		} else if !pub.Publish {
			continue // held back until its checks pass (pubgate.go)
		}
		a, err := n.ctl.Answer(ctx, disclosure.Request{Dataset: s.Dataset, Researcher: researcher, Query: key, Shape: shape,
			Version: s.Version, Matched: tally(s.Matched), Population: tally(s.All)})
		if err != nil {
			return nil, nil, err
		}
		alerts = append(alerts, a.Alerts...)
		r := fed.DatasetResult{ID: s.Dataset, Name: d.Title, Description: d.Description,
			SubjectsCount: a.Figures.Subjects, StudiesCount: a.Figures.Studies,
			Gender: a.Figures.Named(index.CategoryGender), Modality: a.Figures.Named(index.CategoryModality),
			BodyParts: a.Figures.Named(index.CategoryBodyPart), Refused: wireRefusal(a.Refused)}
		if ar := a.Figures.AgeRange; ar != nil {
			r.AgeRange = &fed.AgeRange{Min: ar[0], Max: ar[1]}
		}
		if a.Budget != nil {
			r.Budget = &fed.Budget{Charged: a.Budget.Charged, DayLeft: finite(a.Budget.DayLeft), TotalLeft: finite(a.Budget.TotalLeft)}
		}
		out = append(out, r)
	}
	// Nothing leaves before its charges and answered sets are durable.
	if err := n.ctl.Flush(ctx); err != nil {
		return nil, nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, alerts, nil
}

// wireRefusal names a refusal of the node's disclosure control as the
// protocol does (fed.DatasetResult.Refused).
func wireRefusal(r string) string {
	switch r {
	case "":
		return ""
	case disclosure.RefusedDay:
		return fed.RefusedBudgetDay
	case disclosure.RefusedTotal:
		return fed.RefusedBudgetTotal
	}
	return r
}

// finite turns an unlimited budget into -1 for JSON.
func finite(v float64) float64 {
	if math.IsInf(v, 0) {
		return -1
	}
	return v
}

func tally(subjects []*disclosure.Subject) *disclosure.Tally {
	t := disclosure.NewTallySize(len(subjects))
	for _, s := range subjects {
		t.Add(s)
	}
	return t
}

// Alerts returns the attack patterns the node's disclosure control saw
// since it started, oldest first.
func (n *Node) Alerts() []disclosure.Alert { return n.ctl.Alerts() }

// CatalogueSummary describes every dataset for the hub's catalogue, with
// aggregates under the same disclosure control as search answers: the
// figures of each dataset's whole population.
func (n *Node) CatalogueSummary(ctx context.Context) (fed.Catalogue, error) {
	cat := fed.Catalogue{Time: time.Now().UTC(), Datasets: []fed.DatasetSummary{}}
	datasets, err := n.ix.Datasets(ctx)
	if err != nil {
		return cat, err
	}
	everyone, err := lens.Parse([]byte(`{"operand":"AND","children":[]}`))
	if err != nil {
		return cat, err
	}
	subjects, err := n.ix.FederatedSubjects(ctx, everyone)
	if err != nil {
		return cat, err
	}
	byID := map[string]index.DatasetSubjects{}
	for _, s := range subjects {
		byID[s.Dataset] = s
	}
	for _, d := range datasets {
		if pub, err := n.Publication(ctx, d); err != nil {
			return cat, err
		} else if !pub.Publish {
			// Held back until its checks pass (pubgate.go): the hub
			// learns only that it exists and why it is not published.
			cat.HeldBack = append(cat.HeldBack, fed.HeldBack{ID: d.ID, Title: d.Title, Tier: d.Tier, Reasons: pub.HeldBack})
			n.logHeldBack(d, pub)
			continue
		}
		s := byID[d.ID]
		all := tally(s.All)
		a, err := n.ctl.Answer(ctx, disclosure.Request{Dataset: d.ID, Query: "catalogue", Version: s.Version, Matched: all, Population: all})
		if err != nil {
			return cat, err
		}
		f := a.Figures
		sum := fed.DatasetSummary{ID: d.ID, Title: d.Title, Description: d.Description, Licence: d.Licence, Contact: d.Contact,
			AccessRights: d.AccessRights, Tier: d.Tier, Modified: d.Changed,
			Subjects: f.Subjects, Studies: f.Studies,
			Modalities: f.Named(index.CategoryModality), BodyParts: f.Named(index.CategoryBodyPart),
			Sexes: f.Named(index.CategoryGender), Conditions: f.Named(index.CategoryCancerType),
			Manufacturers: f.Named(index.CategoryManufacturer)}
		if ar := f.AgeRange; ar != nil {
			sum.AgeRange = &fed.AgeRange{Min: ar[0], Max: ar[1]}
		}
		if d.Tier == 3 {
			// Tier 3 datasets are processed at the node: researchers see
			// what tables they can model (names and types, never values).
			if sum.Tables, err = n.TableSummaries(ctx, d.ID); err != nil {
				return cat, err
			}
		}
		cat.Datasets = append(cat.Datasets, sum)
	}
	if err := n.ctl.Flush(ctx); err != nil {
		return cat, err
	}
	return cat, nil
}

// UpdateFederation changes the stored federation settings, for an
// operator moving the hub (a new NATS address) without enrolling again.
func (n *Node) UpdateFederation(edit func(*Federation)) error {
	f, ok, err := n.LoadFederation()
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("node: not enrolled")
	}
	edit(&f)
	b, _ := json.MarshalIndent(f, "", "  ")
	tmp := n.federationPath() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, n.federationPath())
}
