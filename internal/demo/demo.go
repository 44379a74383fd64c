// Package demo runs a whole federation on one machine for "mosaic demo"
// and for end-to-end tests: a hub and three nodes in one process, each
// node with its own synthetic cohort (different cancer sites, sizes and
// scanners) generated, de-identified and ingested on the first run and
// reused afterwards, the demo's accounts (a researcher, an admin and a
// representative per node, with API tokens) and DIR/demo.json describing
// it all.
package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/hub"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/ingest"
	"github.com/mosaic-imaging/mosaic/internal/node"
	"github.com/mosaic-imaging/mosaic/internal/serve"
	"github.com/mosaic-imaging/mosaic/internal/synth"
	"github.com/mosaic-imaging/mosaic/internal/table"
)

// Options steer Run.
type Options struct {
	// Data is the demo's folder; Reset deletes it first.
	Data  string
	Reset bool
	// Addr is the hub's HTTP address (port 0 picks a free one).
	Addr string
	// Version is what nodes report to the hub ("dev" when empty).
	Version string
	// Say prints a progress line (nothing when nil).
	Say func(format string, a ...any)
	// Hub, when set, adjusts the hub's configuration before it opens
	// (tests add a login provider or a mail server).
	Hub func(*hub.Config)
	// Ready is called once every node is online and DATA/demo.json is
	// written, with what it holds and how long the start took.
	Ready func(info Info, took time.Duration)
}

func (o Options) say(format string, a ...any) {
	if o.Say != nil {
		o.Say(format, a...)
	}
}

func (o Options) version() string {
	if o.Version == "" {
		return "dev"
	}
	return o.Version
}

// Run starts the federation in DATA and serves until ctx ends, then
// stops everything in order.
func Run(ctx context.Context, o Options) error {
	t0 := time.Now()
	data, addr := o.Data, o.Addr
	say := o.say
	if o.Reset {
		if err := os.RemoveAll(data); err != nil {
			return fmt.Errorf("demo: reset: %w", err)
		}
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(data, "demo.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	log := slog.New(slog.NewJSONHandler(logf, nil))

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("demo: the hub's address %s: %w (choose another with --addr)", addr, err)
	}
	hubURL := "http://" + ln.Addr().String()
	hcfg := hub.Config{Data: filepath.Join(data, "hub"), Listen: ln.Addr().String(), NATSListen: "127.0.0.1:0", PublicURL: hubURL, Log: log}
	if o.Hub != nil {
		o.Hub(&hcfg)
	}
	h, err := hub.Open(ctx, hcfg)
	if err != nil {
		ln.Close()
		return err
	}
	// The hub serves while the nodes are prepared (they enrol through
	// it); everything stops together, the nodes before the hub.
	return serve.Run(ctx, serve.Options{Log: log}, func(g *serve.Group) error {
		ctx := g.Context()
		g.OnClose("hub", h.Close)
		g.Serve("hub HTTP", httpServer(h.Handler(), log), ln)
		info, err := demoAccounts(ctx, h, data, hubURL)
		if err != nil {
			return err
		}
		nodes := make([]*node.Node, len(sites))
		toks := make([]string, len(sites))
		errs := make([]error, len(sites))
		var wg sync.WaitGroup
		for i, site := range sites {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				nodes[i], toks[i], err = demoNode(ctx, h, data, hubURL, site, log, say, o.version())
				if err != nil {
					errs[i] = fmt.Errorf("demo: node %s: %w", site.name, err)
				}
			}()
		}
		wg.Wait()
		for i, n := range nodes {
			if n != nil {
				g.OnClose("node "+sites[i].name, func() error { return closeNode(n) })
			}
		}
		if err := errors.Join(errs...); err != nil {
			if ctx.Err() != nil {
				return nil // stopped while preparing
			}
			return err
		}
		for i, n := range nodes {
			site := sites[i]
			nl, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return fmt.Errorf("demo: node %s: %w", site.name, err)
			}
			g.Serve("node "+site.name+" HTTP", httpServer(n.Handler(), log), nl)
			if err := g.Link("node "+site.name+" hub link", func(ctx context.Context) (func() error, error) {
				link, err := n.StartLinkContext(ctx, node.LinkOptions{Version: o.version(), Heartbeat: 2 * time.Second})
				if err != nil || link == nil {
					return nil, err
				}
				return func() error { link.Close(); return nil }, nil
			}); err != nil {
				return fmt.Errorf("demo: node %s: %w", site.name, err)
			}
			rep := info.Representatives[site.name]
			info.Nodes = append(info.Nodes, Node{Name: site.name, URL: "http://" + nl.Addr().String(), Token: toks[i], Scope: index.ScopeRead, Dataset: site.dataset.ID,
				Representative: rep.User, RepresentativeToken: rep.Token})
		}
		// Ready when every node is online and its datasets are in the
		// catalogue.
		deadline := time.Now().Add(60 * time.Second)
		for {
			ok, err := demoReady(ctx, h)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				return errors.New("demo: the nodes did not come online within a minute (see DIR/demo.log)")
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(200 * time.Millisecond):
			}
		}
		b, _ := json.MarshalIndent(info, "", "  ")
		tmp := filepath.Join(data, "demo.json.tmp")
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(data, "demo.json")); err != nil {
			return err
		}
		if o.Ready != nil {
			o.Ready(info, time.Since(t0))
		}
		return nil
	})
}

// demoAccounts creates, on the first run, the demo researcher and admin
// and an API token, and reads them back from demo.json afterwards.
func demoAccounts(ctx context.Context, h *hub.Hub, data, hubURL string) (Info, error) {
	var info Info
	if b, err := os.ReadFile(filepath.Join(data, "demo.json")); err == nil && json.Unmarshal(b, &info) == nil && info.Token != "" {
		if _, err := h.Authenticate(ctx, info.Token); err == nil {
			info.HubURL, info.Nodes = hubURL, nil
			return demoAccessAccounts(ctx, h, info)
		}
	}
	info = Info{HubURL: hubURL, User: "demo", Password: randomPassword(), Admin: "admin", AdminPW: randomPassword()}
	for _, u := range []struct{ id, pw, role string }{{info.User, info.Password, hub.RoleResearcher}, {info.Admin, info.AdminPW, hub.RoleAdmin}} {
		if err := h.AddUser(ctx, u.id, u.pw, u.role); err != nil {
			return info, fmt.Errorf("demo: the hub in this folder has other accounts; start afresh with --reset: %w", err)
		}
	}
	tok, err := h.NewUserToken(ctx, info.User, "demo")
	if err != nil {
		return info, err
	}
	info.Token = tok
	return demoAccessAccounts(ctx, h, info)
}

// demoAccessAccounts gives the demo what the road from a count to data
// needs: API tokens of the researcher and the admin, e-mail addresses
// for notifications, and a representative for each node's dataset. Demo
// folders made before there were any get them on their next run.
func demoAccessAccounts(ctx context.Context, h *hub.Hub, info Info) (Info, error) {
	var err error
	if info.ResearcherToken == "" {
		info.ResearcherToken = info.Token
	}
	if info.AdminToken == "" {
		if info.AdminToken, err = h.NewUserToken(ctx, info.Admin, "demo"); err != nil {
			return info, err
		}
	}
	for _, u := range []string{info.User, info.Admin} {
		if err := h.SetEmail(ctx, u, u+"@hub.example", ""); err != nil {
			return info, err
		}
	}
	if info.Representatives == nil {
		info.Representatives = map[string]Account{}
	}
	for _, site := range sites {
		a, ok := info.Representatives[site.name]
		if !ok || a.Token == "" {
			a = Account{User: "rep-" + site.name, Password: randomPassword()}
			if err := h.AddUser(ctx, a.User, a.Password, hub.RoleRepresentative); err != nil {
				return info, fmt.Errorf("demo: the hub in this folder has other accounts; start afresh with --reset: %w", err)
			}
			if a.Token, err = h.NewUserToken(ctx, a.User, "demo"); err != nil {
				return info, err
			}
		}
		if err := h.AddRepresentative(ctx, a.User, hub.Representation{Node: site.name, Dataset: site.dataset.ID}); err != nil {
			return info, err
		}
		if err := h.SetEmail(ctx, a.User, a.User+"@"+site.name+".example", ""); err != nil {
			return info, err
		}
		info.Representatives[site.name] = a
	}
	return info, nil
}

// demoNode opens a node, enrols it, and on the first run fills it with
// its synthetic cohort.
func demoNode(ctx context.Context, h *hub.Hub, data, hubURL string, site site, log *slog.Logger, say func(string, ...any), version string) (*node.Node, string, error) {
	dir := filepath.Join(data, "nodes", site.name)
	n, err := node.Open(ctx, node.Config{Data: dir, Policy: "eucaim", Log: log.With("site", site.name)})
	if err != nil {
		return nil, "", err
	}
	fail := func(err error) (*node.Node, string, error) {
		closeNode(n)
		return nil, "", err
	}
	if _, ok, _ := n.LoadFederation(); !ok {
		tok, err := h.AddNode(ctx, site.name, site.title, time.Hour)
		if err != nil && !errors.Is(err, hub.ErrExists) {
			return fail(err)
		}
		if err != nil {
			return fail(fmt.Errorf("the hub knows this node but its folder lost its enrolment; start afresh with --reset"))
		}
		if _, err := n.Enroll(ctx, hubURL, tok, version); err != nil {
			return fail(err)
		}
	} else if err := n.UpdateFederation(func(f *node.Federation) {
		// The demo's hub picks a new NATS port on every run.
		f.NATSURLs, f.HubURL, f.NATSCA = []string{h.NATSURL()}, hubURL, h.NATSCA()
	}); err != nil {
		return fail(err)
	}
	if _, err := n.Dataset(ctx, site.dataset.ID); errors.Is(err, index.ErrNotFound) {
		if _, err := n.CreateDataset(ctx, site.dataset); err != nil {
			return fail(err)
		}
	}
	tok, err := demoReadToken(ctx, n, dir, site.dataset.ID)
	if err != nil {
		return fail(err)
	}
	c, err := n.DatasetInfo(ctx, site.dataset.ID)
	if err != nil {
		return fail(err)
	}
	if c.Instances == 0 {
		cohort := filepath.Join(data, "cohorts", site.name)
		if _, err := os.Stat(filepath.Join(cohort, synth.ManifestFile)); err != nil {
			os.RemoveAll(cohort)
			if _, err := synth.Generate(ctx, synth.Options{Dir: cohort, Patients: site.patients, Seed: site.seed,
				CancerTypes: site.cancers, Manufacturers: site.manufacturers}); err != nil {
				return fail(err)
			}
		}
		stored, refused, err := demoIngest(ctx, n, site.dataset.ID, filepath.Join(cohort, synth.DICOMDir))
		if err != nil {
			return fail(err)
		}
		f, err := os.Open(filepath.Join(cohort, synth.ClinicalFile))
		if err != nil {
			return fail(err)
		}
		rep, err := n.ImportClinical(ctx, site.dataset.ID, f)
		f.Close()
		if err != nil {
			return fail(err)
		}
		say("node %-28s %s: %s stored, clinical data for %s", site.name, plural(site.patients, "patient"), plural(stored, "object"), plural(rep.Imported, "patient"))
		if refused > 0 {
			// The synthetic cohorts hold a few such objects on purpose.
			say("     %-28s %s refused at the door and not stored, as they could show who the patient is: text", "", plural(refused, "object"))
			say("     %-28s burned into pixels (ultrasound, screen captures) cannot be removed. The leak guard working, not a fault.", "")
		}
	}
	if err := demoResearchTable(ctx, n, site); err != nil {
		return fail(err)
	}
	return n, tok, nil
}

// demoResearchTable stores the research table "clinical" (synth.WriteResearch)
// for the site's dataset, one row per patient of its pseudonyms, unless
// the dataset has it already.
func demoResearchTable(ctx context.Context, n *node.Node, site site) error {
	if _, _, err := n.Table(ctx, site.dataset.ID, "clinical"); err == nil {
		return nil
	} else if !errors.Is(err, index.ErrNotFound) {
		return err
	}
	pats, err := n.DatasetPatients(ctx, site.dataset.ID)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := synth.WriteResearch(&buf, pats, site.seed); err != nil {
		return err
	}
	_, err = n.PutTable(ctx, site.dataset.ID, "clinical", &buf, &table.Dictionary{Patient: "patient_id",
		Columns: map[string]table.Type{"sex": table.Categorical, "stage": table.Categorical}})
	return err
}

// demoReadToken returns the node's token for scripts: the least they
// need, reading the node's one dataset (QIDO-RS, WADO-RS). It is kept in
// DIR/nodes/NAME/demo-read-token. The admin token earlier demos gave out
// (demo-token) is revoked.
func demoReadToken(ctx context.Context, n *node.Node, dir, dataset string) (string, error) {
	if b, err := os.ReadFile(filepath.Join(dir, "demo-token")); err == nil {
		if t, err := n.CheckToken(ctx, string(b)); err == nil {
			if err := n.RevokeToken(ctx, t.ID); err != nil {
				return "", err
			}
		}
		os.Remove(filepath.Join(dir, "demo-token"))
	}
	path := filepath.Join(dir, "demo-read-token")
	if b, err := os.ReadFile(path); err == nil {
		if t, err := n.CheckToken(ctx, string(b)); err == nil && t.Scope == index.ScopeRead && t.Dataset == dataset {
			return string(b), nil
		}
	}
	tok, _, err := n.CreateToken(ctx, "demo read", index.ScopeRead, dataset)
	if err != nil {
		return "", err
	}
	return tok, os.WriteFile(path, []byte(tok), 0o600)
}

// demoIngest ingests the cohort's DICOM folder into the node's dataset.
// Objects stored or already held count as stored, refusals of the door
// as refused; anything else (a file that cannot be opened, a folder that
// cannot be walked, an object that failed) is an error naming how many
// and the first.
func demoIngest(ctx context.Context, n *node.Node, dataset, dir string) (stored, refused int, err error) {
	var bad int
	var first string
	sum, err := ingest.Run(ctx, []string{dir}, ingest.Node{N: n, Dataset: dataset}, ingest.Options{
		Workers: 4,
		OnResult: func(r ingest.Result) {
			switch r.Status {
			case node.StatusStored, node.StatusDuplicate, node.StatusRejected:
			default:
				if bad == 0 {
					first = fmt.Sprintf("%s: %s: %s", r.Input, r.Status, r.Reason)
				}
				bad++
			}
		},
	})
	if err != nil {
		return 0, 0, fmt.Errorf("ingest: %w", err)
	}
	stored = sum.Count(node.StatusStored) + sum.Count(node.StatusDuplicate)
	refused = sum.Count(node.StatusRejected)
	if bad > 0 {
		return stored, refused, fmt.Errorf("ingest: %d of %s did not pass (first: %s)", bad, plural(sum.Objects, "object"), first)
	}
	return stored, refused, nil
}

func demoReady(ctx context.Context, h *hub.Hub) (bool, error) {
	nodes, err := h.NodeInfos(ctx)
	if err != nil {
		return false, err
	}
	online := 0
	for _, n := range nodes {
		if n.Status == "online" {
			online++
		}
	}
	cat, err := h.Catalogue(ctx)
	if err != nil {
		return false, err
	}
	return online >= len(sites) && len(cat) >= len(sites), nil
}

// site is one node of the demo federation.
type site struct {
	name, title   string
	dataset       index.Dataset
	patients      int
	seed          uint64
	cancers       []string
	manufacturers []string
}

var sites = []site{
	{name: "north-university-hospital", title: "North University Hospital", patients: 44, seed: 101,
		cancers: []string{"lung", "breast"}, manufacturers: []string{"Aurora Imaging"},
		dataset: index.Dataset{ID: "thoracic-oncology", Title: "Thoracic oncology imaging", Description: "CT and MR of lung and breast cancer patients at diagnosis and follow-up, with staging and treatment.", Licence: "CC-BY-NC-4.0", Contact: "imaging-research@north.example", AccessRights: "RESTRICTED", Tier: 3}},
	{name: "south-cancer-centre", title: "South Cancer Centre", patients: 36, seed: 202,
		cancers: []string{"prostate", "colorectal"}, manufacturers: []string{"Helix Medical Systems", "Norden Scientific"},
		dataset: index.Dataset{ID: "pelvic-cancers", Title: "Prostate and colorectal cancer cohort", Description: "Pelvic MR and CT, PET/CT staging, linked to pathology and treatment outcomes.", Licence: "CC-BY-4.0", Contact: "data-office@south.example", AccessRights: "RESTRICTED", Tier: 3}},
	{name: "east-regional-registry", title: "East Regional Registry", patients: 28, seed: 303,
		cancers: []string{"liver", "pancreas"}, manufacturers: []string{"Norden Scientific"},
		dataset: index.Dataset{ID: "hepatobiliary", Title: "Hepatobiliary and pancreatic tumours", Description: "Abdominal CT and MR of liver and pancreatic cancer patients from a regional registry.", Licence: "CC-BY-NC-SA-4.0", Contact: "registry@east.example", AccessRights: "RESTRICTED", Tier: 2}},
}

// Info is written to DIR/demo.json.
type Info struct {
	HubURL   string `json:"hub_url"`
	User     string `json:"user"` // the researcher
	Password string `json:"password"`
	// Token is the researcher's API token, also given as ResearcherToken.
	Token           string `json:"token"`
	ResearcherToken string `json:"researcher_token"`
	Admin           string `json:"admin_user"`
	AdminPW         string `json:"admin_password"`
	AdminToken      string `json:"admin_token"`
	// Representatives are the users who decide access requests for each
	// node's dataset, by node name.
	Representatives map[string]Account `json:"representatives"`
	Nodes           []Node             `json:"nodes"`
}

// Account is a demo user with their password and API token.
type Account struct {
	User     string `json:"user"`
	Password string `json:"password"`
	Token    string `json:"token"`
}

// Node is one node of the demo in demo.json.
type Node struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// Token may only read Dataset (QIDO-RS, WADO-RS): the least a script
	// needs. No admin token is given out.
	Token   string `json:"token"`
	Scope   string `json:"token_scope"`
	Dataset string `json:"dataset"`
	// Representative decides access requests for Dataset at the hub;
	// RepresentativeToken is their hub API token.
	Representative      string `json:"representative"`
	RepresentativeToken string `json:"representative_token"`
}

func httpServer(handler http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
}

func closeNode(n *node.Node) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*n.Config().CommitTimeout)
	defer cancel()
	return n.Close(ctx)
}

func randomPassword() string {
	var b [15]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
