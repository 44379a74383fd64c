package attack

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/cohort"
	"github.com/mosaic-imaging/mosaic/internal/deid"
	"github.com/mosaic-imaging/mosaic/internal/hub"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/lens"
	"github.com/mosaic-imaging/mosaic/internal/node"
)

// DefaultFollowUp is the share of the harness's patients with a long
// follow-up (Setup.FollowUp).
const DefaultFollowUp = 0.05

// HubQueriesPerDay is the hub's per-user daily query limit in the
// harness: far above any attack, so that what is measured is the nodes'
// own disclosure control, not the hub's quota.
const HubQueriesPerDay = 100_000_000

// Setup describes the federation the attacks run against.
type Setup struct {
	// Nodes is the number of nodes, each with one Tier 3 dataset
	// (default 3).
	Nodes int
	// Patients is the number of synthetic patients per node (default
	// 36, as in `mosaic demo`).
	Patients int
	// Seed draws the cohorts: the same seed gives the same patients.
	Seed uint64
	// FollowUp is the share of patients given a long follow-up of 10 to
	// 15 more imaging studies (cohort.Generator.LongFollowUp), which
	// the studies figure shows; 0 means DefaultFollowUp, negative none.
	// It changes no patient's other attributes.
	FollowUp float64
	// Node, when set, is applied to every node's configuration after
	// the harness's settings (data directory, shared clock) and before
	// the node opens: the disclosure control under test.
	Node func(*node.Config)
	// Dir holds the hub's and the nodes' data; empty: a temporary
	// directory removed by Close.
	Dir string
	// Log receives the hub's and the nodes' logs (default: discarded).
	Log *slog.Logger
}

// Cell is one dataset of one node: the unit every answer is given for.
type Cell struct{ Node, Dataset string }

func (c Cell) String() string { return c.Node + "/" + c.Dataset }

// Clock is the fake clock every node reads for its privacy budget's
// days. The harness moves it on a day whenever a node refuses for the
// day, so a run replays many days in seconds.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// NextDay moves the clock on by 24 hours.
func (c *Clock) NextDay() {
	c.mu.Lock()
	c.t = c.t.Add(24 * time.Hour)
	c.mu.Unlock()
}

// Federation is a running hub with its nodes, in this process: the
// hub's embedded NATS server on a free port, its HTTP API on 127.0.0.1
// on a free port, and each node's SQLite index filled with synthetic
// patients.
type Federation struct {
	URL   string // the hub's
	Clock *Clock
	Cells []Cell // every node's dataset, sorted
	// Floor is the highest disclosure floor the nodes report (0 until
	// a search has been answered).
	Floor int

	setup Setup
	hub   *hub.Hub
	srv   *http.Server
	nodes map[string]*node.Node
	// raw are second handles on the nodes' indexes, for loading the
	// cohorts and reading the true counts (the node keeps its own).
	raw      map[string]*index.Store
	links    []*node.Link
	tmp      string
	mu       sync.Mutex
	accounts int
}

// Start builds and starts a federation. Close stops it.
func Start(ctx context.Context, s Setup) (f *Federation, err error) {
	if s.Nodes == 0 {
		s.Nodes = 3
	}
	if s.Patients == 0 {
		s.Patients = 36
	}
	if s.FollowUp == 0 {
		s.FollowUp = DefaultFollowUp
	}
	if s.Log == nil {
		s.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	f = &Federation{setup: s, nodes: map[string]*node.Node{}, raw: map[string]*index.Store{},
		Clock: &Clock{t: time.Date(2027, 1, 4, 12, 0, 0, 0, time.UTC)}}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	dir := s.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "mosaic-attack-"); err != nil {
			return f, err
		}
		f.tmp = dir
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return f, err
	}
	f.URL = "http://" + ln.Addr().String()
	f.hub, err = hub.Open(ctx, hub.Config{Data: filepath.Join(dir, "hub"), Listen: ln.Addr().String(), NATSListen: "127.0.0.1:0",
		PublicURL: f.URL, QueriesPerDay: HubQueriesPerDay, SearchDeadline: 20 * time.Second, Log: s.Log})
	if err != nil {
		ln.Close()
		return f, err
	}
	f.srv = &http.Server{Handler: f.hub.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go f.srv.Serve(ln)

	for i := range s.Nodes {
		name := nodeName(i)
		cfg := node.Config{Data: filepath.Join(dir, "nodes", name), Policy: "eucaim", Clock: f.Clock.Now, Log: s.Log.With("site", name)}
		cfg.SiteKey = filepath.Join(cfg.Data, "site.key")
		if s.Node != nil {
			s.Node(&cfg)
		}
		if err := writeSiteKey(cfg.SiteKey, s.Seed, i); err != nil {
			return f, err
		}
		n, err := node.Open(ctx, cfg)
		if err != nil {
			return f, fmt.Errorf("attack: node %s: %w", name, err)
		}
		f.nodes[name] = n
		raw, err := index.Open(ctx, n.Config().DB)
		if err != nil {
			return f, fmt.Errorf("attack: node %s: %w", name, err)
		}
		f.raw[name] = raw
		ds := index.Dataset{ID: "oncology", Title: "Synthetic oncology cohort of " + name,
			Description: "Synthetic cancer patients for the attack harness.", Licence: "CC-BY-4.0", Contact: "attack@" + name + ".example",
			AccessRights: "RESTRICTED", Tier: 3}
		if _, err := n.CreateDataset(ctx, ds); err != nil {
			return f, err
		}
		gen := cohort.New(s.Seed*1000 + uint64(i) + 1)
		gen.LongFollowUp = max(s.FollowUp, 0)
		if _, err := cohort.Load(ctx, raw, ds.ID, gen, s.Patients, 20000); err != nil {
			return f, fmt.Errorf("attack: node %s: %w", name, err)
		}
		tok, err := f.hub.AddNode(ctx, name, "Node "+name, time.Hour)
		if err != nil {
			return f, err
		}
		if _, err := n.Enroll(ctx, f.URL, tok, "attack"); err != nil {
			return f, err
		}
		link, err := n.StartLink(node.LinkOptions{Heartbeat: 200 * time.Millisecond, Version: "attack"})
		if err != nil {
			return f, err
		}
		if link == nil {
			return f, errors.New("attack: a node did not link to the hub")
		}
		f.links = append(f.links, link)
		f.Cells = append(f.Cells, Cell{name, ds.ID})
	}
	// Ready when every node is online (a search then reaches it).
	deadline := time.Now().Add(30 * time.Second)
	for {
		infos, err := f.hub.NodeInfos(ctx)
		if err != nil {
			return f, err
		}
		online := 0
		for _, in := range infos {
			if in.Status == "online" {
				online++
			}
		}
		if online == s.Nodes {
			break
		}
		if time.Now().After(deadline) {
			return f, errors.New("attack: the nodes did not come online within 30 s")
		}
		select {
		case <-ctx.Done():
			return f, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return f, nil
}

// writeSiteKey writes a node's site key drawn from the seed, unless the
// file exists: the noise a node adds is keyed by it, so the same seed
// gives the same answers, run after run. (The harness's keys protect
// nothing: the patients are synthetic.)
func writeSiteKey(path string, seed uint64, i int) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	key := sha256.Sum256(fmt.Appendf(nil, "mosaic attack harness site key %d %d", seed, i))
	return os.WriteFile(path, key[:deid.KeySize], 0o600)
}

func nodeName(i int) string {
	names := []string{"north", "south", "east", "west", "centre"}
	if i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("node-%d", i+1)
}

// Close stops the nodes and the hub and removes a temporary directory.
func (f *Federation) Close() error {
	for _, l := range f.links {
		l.Close()
	}
	for _, n := range f.nodes {
		n.Close(context.Background())
	}
	for _, ix := range f.raw {
		ix.Close()
	}
	if f.srv != nil {
		f.srv.Close()
	}
	if f.hub != nil {
		f.hub.Close()
	}
	if f.tmp != "" {
		return os.RemoveAll(f.tmp)
	}
	return nil
}

// Account is a researcher's hub account and API token.
type Account struct {
	User, Token string
}

// NewAccount creates a researcher account (an ordinary role, no admin
// rights) and an API token for it.
func (f *Federation) NewAccount(ctx context.Context) (Account, error) {
	f.mu.Lock()
	f.accounts++
	user := fmt.Sprintf("researcher-%d", f.accounts)
	f.mu.Unlock()
	var b [18]byte
	rand.Read(b[:])
	if err := f.hub.AddUser(ctx, user, base64.RawURLEncoding.EncodeToString(b[:]), hub.RoleResearcher); err != nil {
		return Account{}, err
	}
	tok, err := f.hub.NewUserToken(ctx, user, "attack")
	if err != nil {
		return Account{}, err
	}
	return Account{User: user, Token: tok}, nil
}

// Truth returns the raw count of q in every cell, read from the nodes'
// indexes in this process (index.FederatedCounts: no disclosure control,
// never through the hub). Cells without a match are absent.
func (f *Federation) Truth(ctx context.Context, q Expr) (map[Cell]int, error) {
	lq, err := lens.Parse(q.JSON())
	if err != nil {
		return nil, fmt.Errorf("attack: truth: %w", err)
	}
	out := map[Cell]int{}
	for name, ix := range f.raw {
		stats, err := ix.FederatedCounts(ctx, lq)
		if err != nil {
			return nil, err
		}
		for _, s := range stats {
			if s.Subjects > 0 {
				out[Cell{name, s.Dataset}] = s.Subjects
			}
		}
	}
	return out, nil
}

// NoControls turns a node's disclosure control off: no floor (1, which
// also leaves no room for the complement control), no noise, no overlap
// control, no budget. The harness must find every leak there; cells are
// still scored against a floor of 10.
func NoControls(c *node.Config) {
	noise, overlap := 0.0, false
	c.SearchFloor, c.SearchNoise, c.SearchOverlap = 1, &noise, &overlap
	c.SearchDailyEpsilon, c.SearchTotalEpsilon = -1, -1
}
