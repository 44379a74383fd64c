package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/ingest"
	"github.com/mosaic-imaging/mosaic/internal/node"
	"github.com/mosaic-imaging/mosaic/internal/serve"
)

// nodeFlags are the flags of the node commands. Each command registers
// the groups it uses: registerStore (where the node's data is), register
// (also the de-identification policy and site key, for the commands that
// de-identify; with serve, the server's), registerCreate (--create).
type nodeFlags struct {
	data, config, listen, db, blobs, policy, siteKey string
	maxObject                                        int64
	// create lets the command make a node where none is (--create, or
	// node init); without it a missing data directory is refused.
	create bool
}

// registerStore adds the flags that say where the node's data is.
func (f *nodeFlags) registerStore(fs *pflag.FlagSet) {
	fs.StringVar(&f.data, "data", "", "the node's data directory (required; env MOSAIC_NODE_DATA)")
	fs.StringVar(&f.config, "config", "", "configuration file, JSON (default: DATA/node.json when it exists)")
	fs.StringVar(&f.db, "db", "", "index database: a SQLite path or postgres://... (default DATA/index.db; env MOSAIC_NODE_DB)")
	fs.StringVar(&f.blobs, "blobs", "", "object store: a path or s3://..., file://..., mem:// (default DATA/blobs; env MOSAIC_NODE_BLOBS)")
}

// register adds the flags of registerStore, the de-identification policy
// and site key, and with serve the HTTP server's.
func (f *nodeFlags) register(fs *pflag.FlagSet, serve bool) {
	f.registerStore(fs)
	fs.StringVar(&f.policy, "policy", "", "de-identification policy: preset (basic, eucaim, longitudinal) or file (default eucaim; env MOSAIC_NODE_POLICY)")
	fs.StringVar(&f.siteKey, "site-key", "", "pseudonymisation key file, created on first use (default DATA/site.key; env MOSAIC_SITE_KEY)")
	if serve {
		fs.StringVar(&f.listen, "listen", "", "HTTP address (default 127.0.0.1:8180; env MOSAIC_NODE_LISTEN)")
		fs.Int64Var(&f.maxObject, "max-object-bytes", 0, "largest DICOM object accepted, in bytes (default 4 GiB)")
	}
}

// registerCreate adds --create, which makes a new node when --data names
// no node yet.
func (f *nodeFlags) registerCreate(fs *pflag.FlagSet) {
	fs.BoolVar(&f.create, "create", false, "make a new node when --data names none (default: refuse, see 'mosaic node init')")
}

// config merges, in rising precedence, the defaults, the config file,
// the environment and the flags, and validates the result.
func (f *nodeFlags) configFor(e *env, cmd *cobra.Command) (node.Config, error) {
	var c node.Config
	data := f.data
	if data == "" {
		data = e.getenv("MOSAIC_NODE_DATA")
	}
	if data == "" {
		return c, usagef("%s: --data DIR is required", cmd.CommandPath())
	}
	if !f.create {
		if err := dataPresent(data, "node"); err != nil {
			return c, err
		}
	}
	path := f.config
	if path == "" {
		if _, err := os.Stat(filepath.Join(data, "node.json")); err == nil {
			path = filepath.Join(data, "node.json")
		}
	}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("node: config: %w", err)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return c, fmt.Errorf("node: config %s: %w", path, err)
		}
	}
	c.Data = data
	for _, v := range []struct {
		dst       *string
		env, flag string
	}{
		{&c.DB, "MOSAIC_NODE_DB", f.db}, {&c.Blobs, "MOSAIC_NODE_BLOBS", f.blobs}, {&c.Policy, "MOSAIC_NODE_POLICY", f.policy},
		{&c.SiteKey, siteKeyEnv, f.siteKey}, {&c.Listen, "MOSAIC_NODE_LISTEN", f.listen}, {&c.BlobLayout, "MOSAIC_NODE_BLOB_LAYOUT", ""},
	} {
		if s := e.getenv(v.env); s != "" {
			*v.dst = s
		}
		if v.flag != "" {
			*v.dst = v.flag
		}
	}
	if f.maxObject != 0 {
		c.MaxObjectBytes = f.maxObject
	}
	c.Log = slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c.Defaults()
	if err := c.Validate(); err != nil {
		return c, usageError{err}
	}
	c.KeyMustExist = !f.create
	return c, nil
}

func (f *nodeFlags) open(e *env, cmd *cobra.Command) (*node.Node, error) {
	c, err := f.configFor(e, cmd)
	if err != nil {
		return nil, err
	}
	return node.Open(e.ctx, c)
}

func newNodeCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run and manage a data holder's node",
		Long: `A node keeps a data holder's de-identified images and clinical data. Every
object passes the de-identification door (the node's policy and site key,
as 'mosaic deid' applies them) before it is stored, indexed and served over
DICOMweb.

The data directory holds, by default, the SQLite index (index.db), the
content-addressed objects (blobs/), the site key (site.key) and an optional
configuration file (node.json, the fields of 'mosaic node serve --help' in
snake case). Larger sites point --db at PostgreSQL and --blobs at object
storage.`,
		Example: `  mosaic node init --data /srv/node
  mosaic node dataset create --data /srv/node --id lung-ct --title "Lung CT"
  mosaic node token create --data /srv/node --scope write --dataset lung-ct
  mosaic node ingest --data /srv/node --dataset lung-ct /mnt/export/
  mosaic node serve --data /srv/node --listen 127.0.0.1:8180`,
	}
	cmd.AddCommand(newNodeInitCmd(e), newNodeServeCmd(e), newNodeDatasetCmd(e), newNodeTokenCmd(e), newNodeIngestCmd(e),
		newNodeImportClinicalCmd(e), newNodeCheckCmd(e), newNodeGCCmd(e), newNodeEnrollCmd(e), newNodePermitsCmd(e),
		newNodeImportTableCmd(e), newNodeAirlockCmd(e))
	return cmd
}

// collectLess runs Go's garbage collector at GOGC=200 unless GOGC is set,
// and returns the function that puts the old setting back. Ingest
// allocates per element and keeps little: collecting half as often costs
// about 20 MB more at the peak (100 MB instead of 80 for bench/ingest.sh)
// and saves about 6% of the node's CPU time.
func collectLess(e *env) func() {
	if e.getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(200)
	return func() { debug.SetGCPercent(old) }
}

func newNodeServeCmd(e *env) *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:   "serve --data DIR [--listen ADDR] [--db URL] [--blobs URL]",
		Short: "Serve the node API and DICOMweb",
		Long: `Serve the node over HTTP until interrupted:

  /api/v1/datasets           datasets (list, create, read, update, delete)
  /api/v1/tokens             tokens (list, create, revoke; admin tokens only)
  /dicom-web/{dataset}/      DICOMweb: STOW-RS, QIDO-RS, WADO-RS
  /healthz, /readyz          liveness and readiness
  /metrics                   Prometheus metrics

Everything but the last three needs a token ('mosaic node token create')
as Authorization: Bearer TOKEN whose scope allows the request: read for
QIDO-RS, WADO-RS and reading datasets, write for STOW-RS, admin for the
rest; a token for one dataset works on that dataset only. Logs are JSON lines on stderr and
never carry patient data. An object is acknowledged (STOW-RS answers) only
once its bytes are synced and its index row committed.`,
		Args: argsError(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.configFor(e, cmd)
			if err != nil {
				return err
			}
			defer collectLess(e)()
			n, err := node.Open(e.ctx, c)
			if err != nil {
				return err
			}
			return serve.Run(e.ctx, serve.Options{Log: c.Log}, func(g *serve.Group) error {
				g.OnClose("node", func() error { return closeNode(n) })
				ln, err := net.Listen("tcp", c.Listen)
				if err != nil {
					return fmt.Errorf("node: listen: %w", err)
				}
				g.Serve("node HTTP", httpServer(n.Handler(), c.Log), ln)
				c.Log.Info("node serving", "addr", ln.Addr().String(), "db", n.Where(), "policy", n.PolicyName(), "version", version())
				fmt.Fprintf(e.stdout, "mosaic node listening on http://%s\n", ln.Addr())
				if err := g.Link("hub link", func(ctx context.Context) (func() error, error) {
					link, err := n.StartLinkContext(ctx, node.LinkOptions{Version: version()})
					if err != nil || link == nil {
						return nil, err
					}
					return func() error { link.Close(); return nil }, nil
				}); err != nil {
					return err
				}
				// Collect blobs left by a crash between writing an object
				// and committing its row, in the background: in the packs
				// changed since the last complete collection. A failure
				// is logged; the node serves on.
				g.Go("garbage collection", func(ctx context.Context) error {
					if _, err := n.CollectRecentGarbage(ctx, c.BlobGrace); err != nil && ctx.Err() == nil {
						c.Log.Warn("garbage collection failed", "err", err)
					}
					return nil
				})
				return nil
			})
		},
	}
	f.register(cmd.Flags(), true)
	f.registerCreate(cmd.Flags())
	return cmd
}

func newNodeInitCmd(e *env) *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:   "init --data DIR [--db URL] [--blobs URL] [--site-key FILE]",
		Short: "Make a new node: its data directory, index, object store and site key",
		Long: `Make a new node in DATA: the index (DATA/index.db unless --db), the object
store (DATA/blobs unless --blobs) and the site's pseudonymisation key
(DATA/site.key unless --site-key). The other node commands refuse a
--data that names no node, so that a mistyped path does not start an
empty node with new keys; 'init' (or their --create) is how a node begins.
Running it on an existing node changes nothing.`,
		Example: `  mosaic node init --data /srv/node`,
		Args:    argsError(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			data := f.data
			if data == "" {
				data = e.getenv("MOSAIC_NODE_DATA")
			}
			existed := data != "" && dataPresent(data, "node") == nil
			f.create = true
			c, err := f.configFor(e, cmd)
			if err != nil {
				return err
			}
			n, err := node.Open(e.ctx, c)
			if err != nil {
				return err
			}
			if err := closeNode(n); err != nil {
				return err
			}
			if existed {
				fmt.Fprintf(e.stdout, "a node is already at %s: nothing changed\n", c.Data)
				return nil
			}
			saved, err := node.SaveSettings(c)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "node made at %s (site key %s)\n", c.Data, c.SiteKey)
			if saved {
				fmt.Fprintf(e.stdout, "its settings are in %s: the other node commands need only --data\n", filepath.Join(c.Data, "node.json"))
			}
			return nil
		},
	}
	f.register(cmd.Flags(), false)
	return cmd
}

func newNodeDatasetCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "dataset", Short: "Create, list, change and delete datasets"}
	var f nodeFlags
	var d index.Dataset
	var format string
	fields := func(fs *pflag.FlagSet) {
		fs.StringVar(&d.Title, "title", "", "title (required on create)")
		fs.StringVar(&d.Description, "description", "", "description")
		fs.StringVar(&d.Licence, "licence", "", "licence, e.g. CC-BY-4.0 or a data use agreement's name")
		fs.StringVar(&d.Contact, "contact", "", "contact point (e-mail or URL)")
		fs.StringVar(&d.AccessRights, "access-rights", "", "PUBLIC, RESTRICTED (default) or NON_PUBLIC")
		fs.IntVar(&d.Tier, "tier", 0, "EUCAIM tier: 1 (catalogue), 2 (searchable), 3 (CDM and processing); default 1")
	}
	create := &cobra.Command{
		Use:   "create --data DIR --id ID --title TITLE [flags]",
		Short: "Create a dataset",
		Args:  argsError(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := f.open(e, cmd)
			if err != nil {
				return err
			}
			defer closeNode(n)
			got, err := n.CreateDataset(e.ctx, d)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "dataset %s created\n", got.ID)
			return nil
		},
	}
	f.registerStore(create.Flags())
	f.registerCreate(create.Flags())
	create.Flags().StringVar(&d.ID, "id", "", "dataset id: lowercase letters, digits and dashes (required)")
	fields(create.Flags())

	list := &cobra.Command{
		Use:   "list --data DIR",
		Short: "List datasets with what they hold",
		Args:  argsError(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validOutput(format); err != nil {
				return err
			}
			n, err := f.open(e, cmd)
			if err != nil {
				return err
			}
			defer closeNode(n)
			infos, err := n.DatasetInfos(e.ctx)
			if err != nil {
				return err
			}
			if format == outputJSON {
				if infos == nil {
					infos = []node.DatasetInfo{}
				}
				return writeJSON(e.stdout, map[string]any{"datasets": infos})
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTITLE\tTIER\tACCESS\tPATIENTS\tSTUDIES\tSERIES\tINSTANCES\tHUB")
			for _, i := range infos {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%s\n", i.ID, i.Title, i.Tier, i.AccessRights, i.Patients, i.Studies, i.Series, i.Instances, publicationText(i.Publication))
			}
			return tw.Flush()
		},
	}
	f.registerStore(list.Flags())
	addOutputFlag(list, &format)
	addJSONAlias(list, &format)

	update := &cobra.Command{
		Use:   "update --data DIR ID [flags]",
		Short: "Change a dataset's description fields (only the flags given)",
		Args:  argsError(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := f.open(e, cmd)
			if err != nil {
				return err
			}
			defer closeNode(n)
			got, err := n.UpdateDataset(e.ctx, args[0], func(x *index.Dataset) error {
				fl := cmd.Flags()
				if fl.Changed("title") {
					x.Title = d.Title
				}
				if fl.Changed("description") {
					x.Description = d.Description
				}
				if fl.Changed("licence") {
					x.Licence = d.Licence
				}
				if fl.Changed("contact") {
					x.Contact = d.Contact
				}
				if fl.Changed("access-rights") {
					x.AccessRights = d.AccessRights
				}
				if fl.Changed("tier") {
					x.Tier = d.Tier
				}
				return nil
			})
			if err != nil {
				return err
			}
			pub, err := n.Publication(e.ctx, got)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "dataset %s updated; hub: %s\n", args[0], publicationText(pub))
			return nil
		},
	}
	f.registerStore(update.Flags())
	fields(update.Flags())

	del := &cobra.Command{
		Use:   "delete --data DIR ID",
		Short: "Delete an empty dataset",
		Args:  argsError(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := f.open(e, cmd)
			if err != nil {
				return err
			}
			defer closeNode(n)
			if err := n.DeleteDataset(e.ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "dataset %s deleted\n", args[0])
			return nil
		},
	}
	f.registerStore(del.Flags())
	cmd.AddCommand(create, list, update, del)
	return cmd
}

func newNodeTokenCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Create, list and revoke the node's API tokens"}
	var f nodeFlags
	var name, scope, dataset, format string
	create := &cobra.Command{
		Use:   "create --data DIR --scope read|write|admin [--dataset ID] [--name NAME]",
		Short: "Create a token and print it alone on stdout (it is shown once)",
		Long: `Create an API token and print it alone on stdout; only its hash is kept, so
it is shown once. --scope says what it may do, each level allowing what the
ones before it allow:

  read    QIDO-RS, WADO-RS, reading datasets
  write   also STOW-RS (storing objects)
  admin   also creating, changing and deleting datasets, and managing tokens

--dataset limits it to one dataset; without it, it works on every dataset.
Give each client the least it needs: a viewer a read token for its dataset,
a PACS export a write token for its dataset.`,
		Example: `  mosaic node token create --data /srv/node --scope write --dataset lung-ct --name pacs-export
  mosaic node token create --data /srv/node --scope read --dataset lung-ct --name viewer
  mosaic node token create --data /srv/node --scope admin --name ops`,
		Args: argsError(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !index.ValidScope(scope) {
				return usagef("%s: --scope read, write or admin is required: what may the token do?", cmd.CommandPath())
			}
			if err := validOutput(format); err != nil {
				return err
			}
			n, err := f.open(e, cmd)
			if err != nil {
				return err
			}
			defer closeNode(n)
			secret, tok, err := n.CreateToken(e.ctx, name, scope, dataset)
			if err != nil {
				return err
			}
			if format == outputJSON {
				return writeJSON(e.stdout, struct {
					Secret string `json:"token"`
					index.Token
				}{secret, tok})
			}
			fmt.Fprintln(e.stdout, secret)
			return nil
		},
	}
	f.registerStore(create.Flags())
	f.registerCreate(create.Flags())
	create.Flags().StringVar(&name, "name", "", "what the token is for")
	create.Flags().StringVar(&scope, "scope", "", "what the token may do: read, write or admin (required)")
	create.Flags().StringVar(&dataset, "dataset", "", "the only dataset the token may use (default: all)")
	addOutputFlag(create, &format)
	list := &cobra.Command{
		Use:   "list --data DIR",
		Short: "List tokens (never their secrets)",
		Args:  argsError(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validOutput(format); err != nil {
				return err
			}
			n, err := f.open(e, cmd)
			if err != nil {
				return err
			}
			defer closeNode(n)
			ts, err := n.Tokens(e.ctx)
			if err != nil {
				return err
			}
			if format == outputJSON {
				if ts == nil {
					ts = []index.Token{}
				}
				return writeJSON(e.stdout, map[string]any{"tokens": ts})
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tSCOPE\tDATASET\tCREATED\tLAST USED\tREVOKED")
			t := func(p *time.Time) string {
				if p == nil {
					return "-"
				}
				return p.Format(time.RFC3339)
			}
			for _, x := range ts {
				ds := x.Dataset
				if ds == "" {
					ds = "(all)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", x.ID, x.Name, x.Scope, ds, x.Created.Format(time.RFC3339), t(x.LastUsed), t(x.Revoked))
			}
			return tw.Flush()
		},
	}
	f.registerStore(list.Flags())
	addOutputFlag(list, &format)
	revoke := &cobra.Command{
		Use:   "revoke --data DIR ID",
		Short: "Revoke a token at once",
		Args:  argsError(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := f.open(e, cmd)
			if err != nil {
				return err
			}
			defer closeNode(n)
			if err := n.RevokeToken(e.ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "token %s revoked\n", args[0])
			return nil
		},
	}
	f.registerStore(revoke.Flags())
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func newNodeEnrollCmd(e *env) *cobra.Command {
	var f nodeFlags
	var hubURL, token string
	var refresh bool
	cmd := &cobra.Command{
		Use:   "enroll --data DIR --hub URL --token T | --refresh",
		Short: "Join a hub's federation with a one-time enrolment token",
		Long: `Join a federation: make the node's key pair (DATA/node.key), send its public
half to the hub with the one-time token the hub's operator gave
('mosaic hub node add'), and store what the hub answers (DATA/federation.json:
its NATS addresses and the certificate to pin, this node's credentials, and
the hub's signing key).

--refresh fetches the hub's NATS addresses and certificate again, signed by
the hub's key (after the hub moved or changed its certificate); a node
enrolled before its hub had TLS does this by itself at start.

From then on 'mosaic node serve' keeps an outbound connection to the hub:
no inbound port is opened. The node answers only searches signed by this
hub, and only with counts that pass its disclosure control: a floor of 10,
noise, the complement and overlap controls, and a privacy budget per
researcher and dataset, set in node.json (search_floor, search_noise,
search_overlap, search_epsilon, search_daily_epsilon, search_total_epsilon;
see docs/disclosure.md). 'GET /api/v1/disclosure' shows them and the
attack alerts raised.`,
		Args: argsError(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if refresh {
				n, err := f.open(e, cmd)
				if err != nil {
					return err
				}
				defer closeNode(n)
				fd, err := n.RefreshFederation(e.ctx)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "NATS settings of %s refreshed (NATS %s)\n", fd.HubURL, strings.Join(fd.NATSURLs, ", "))
				return nil
			}
			if hubURL == "" || token == "" {
				return usagef("%s: --hub and --token are required", cmd.CommandPath())
			}
			n, err := f.open(e, cmd)
			if err != nil {
				return err
			}
			defer closeNode(n)
			fd, err := n.Enroll(e.ctx, hubURL, token, version())
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "enrolled as node %s of %s (NATS %s)\n", fd.Node, fd.HubURL, strings.Join(fd.NATSURLs, ", "))
			return nil
		},
	}
	f.registerStore(cmd.Flags())
	f.registerCreate(cmd.Flags())
	cmd.Flags().StringVar(&hubURL, "hub", "", "the hub's URL (required)")
	cmd.Flags().StringVar(&token, "token", "", "the one-time enrolment token (required)")
	cmd.Flags().BoolVar(&refresh, "refresh", false, "fetch the hub's NATS addresses and certificate again (no token needed)")
	return cmd
}

// ingestRecord is one line of the ingest report.
type ingestRecord struct {
	Input string `json:"input"`
	node.Outcome
}

// ingestSummary is the summary of mosaic node ingest (-o json prints it).
type ingestSummary struct {
	Dataset   string         `json:"dataset"`
	Objects   int            `json:"objects"`
	Statuses  map[string]int `json:"statuses"`
	Reasons   map[string]int `json:"reasons"`
	Bytes     int64          `json:"bytes_stored"`
	Seconds   float64        `json:"seconds"`
	Cancelled bool           `json:"cancelled"`
}

func newNodeIngestCmd(e *env) *cobra.Command {
	var f nodeFlags
	var dataset, report string
	var workers int
	var quiet bool
	var format string
	var lim ingest.Limits
	cmd := &cobra.Command{
		Use:   "ingest --data DIR --dataset D [--report FILE] [-o table|json] PATH...",
		Short: "De-identify and store DICOM files, folders and zip archives",
		Long: `Take DICOM objects from files, folders (recursively) and zip archives through
the node's de-identification door into a dataset. Each object is
de-identified with the node's policy and site key, written to the object
store, and indexed; objects the door refuses (burned-in text risk, leak
check, no UIDs) are reported with their reason and never stored. An object
already held is left as it is (duplicate); one whose SOP Instance UID is
held with other content is reported as a conflict and not stored.

The command can run while 'mosaic node serve' serves the same data
directory. Inputs get the guards of 'mosaic deid' (zip member names, size
and inflation limits, nested archives); files and folders that cannot be
opened or walked are reported as failed, never dropped. It ends with a
summary (-o json: one JSON document); --report writes one JSON line per
object, in input order. When cancelled (Ctrl-C), the objects not read yet
are reported as cancelled. Exit status: 0 when every object was stored, a
duplicate or rejected; 1 when any failed or conflicted, or the run was
cancelled; 2 for usage errors.`,
		Args: argsError(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validOutput(format); err != nil {
				return err
			}
			if lim.MaxMember <= 0 || lim.MaxRatio < 1 {
				return usagef("%s: --zip-max-size must be positive and --zip-max-ratio at least 1", cmd.CommandPath())
			}
			if dataset == "" {
				return usagef("%s: --dataset is required", cmd.CommandPath())
			}
			c, err := f.configFor(e, cmd)
			if err != nil {
				return err
			}
			defer collectLess(e)()
			if workers > 0 {
				c.Workers = workers
			}
			n, err := node.Open(e.ctx, c)
			if err != nil {
				return err
			}
			defer closeNode(n)
			if _, err := n.Dataset(e.ctx, dataset); err != nil {
				if errors.Is(err, index.ErrNotFound) {
					return fmt.Errorf("node ingest: no dataset %q (mosaic node dataset create)", dataset)
				}
				return err
			}
			return runIngest(e, n, dataset, report, quiet, format, args, ingest.Options{
				ListOptions: ingest.ListOptions{Limits: lim},
				Workers:     c.Workers,
			})
		},
	}
	f.register(cmd.Flags(), false)
	fl := cmd.Flags()
	fl.StringVar(&dataset, "dataset", "", "dataset to ingest into (required)")
	fl.StringVar(&report, "report", "", "write one JSON line per object to FILE")
	fl.IntVar(&workers, "workers", 0, "objects de-identified in parallel (default: number of CPUs)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "no progress line")
	fl.Int64Var(&lim.MaxMember, "zip-max-size", ingest.DefaultMaxMember, "largest zip member read, in bytes after inflation")
	fl.IntVar(&lim.MaxRatio, "zip-max-ratio", ingest.DefaultMaxRatio, "largest inflation ratio of a zip member")
	addOutputFlag(cmd, &format)
	return cmd
}

func runIngest(e *env, n *node.Node, dataset, reportPath string, quiet bool, format string, args []string, opts ingest.Options) error {
	var rep *bufio.Writer
	if reportPath != "" {
		fh, err := os.OpenFile(reportPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("node ingest: report: %w", err)
		}
		defer fh.Close()
		rep = bufio.NewWriter(fh)
		defer rep.Flush()
	}
	pp := newProgressPrinter(e.stderr, quiet)
	opts.OnResult = func(r ingest.Result) {
		o, ok := r.Detail.(node.Outcome)
		if !ok {
			o = node.Outcome{Status: r.Status, Code: r.Code, Reason: r.Reason}
		}
		if (o.Status == node.StatusFailed && o.Code != ingest.CodeCancelled) || o.Status == node.StatusConflict {
			pp.printf("ingest: %s: %s: %s", r.Input, o.Status, o.Reason)
		}
		if rep != nil {
			b, _ := json.Marshal(ingestRecord{Input: r.Input, Outcome: o})
			rep.Write(append(b, '\n'))
		}
	}
	opts.OnProgress = func(p ingest.Progress) {
		total := "?"
		if p.Listed {
			total = strconv.FormatInt(p.Found, 10)
		}
		pp.draw(fmt.Sprintf("ingest: %d of %s objects", p.Done, total))
	}
	sum, runErr := ingest.Run(e.ctx, args, ingest.Node{N: n, Dataset: dataset}, opts)
	pp.clear()
	s := ingestSummary{Dataset: dataset, Objects: sum.Objects, Statuses: map[string]int{}, Reasons: map[string]int{},
		Bytes: sum.Bytes, Seconds: sum.Seconds, Cancelled: sum.Cancelled}
	for _, st := range []string{node.StatusStored, node.StatusDuplicate, node.StatusRejected, node.StatusConflict, node.StatusFailed} {
		s.Statuses[st] = sum.Count(st)
		if st != node.StatusStored && st != node.StatusDuplicate {
			for c, k := range sum.Codes[st] {
				s.Reasons[st+": "+c] = k
			}
		}
	}
	if format == outputJSON {
		if err := writeJSON(e.stdout, s); err != nil {
			return err
		}
	} else {
		took := max(s.Seconds, 1e-9)
		fmt.Fprintf(e.stdout, "ingest into %s: %s in %.1f s (%.0f objects/s, %.1f MB/s stored)\n", dataset, plural(s.Objects, "object"), s.Seconds,
			float64(s.Objects)/took, float64(s.Bytes)/1e6/took)
		for _, st := range []string{node.StatusStored, node.StatusDuplicate, node.StatusRejected, node.StatusConflict, node.StatusFailed} {
			fmt.Fprintf(e.stdout, "  %-10s %d\n", st, s.Statuses[st])
		}
		var rk []string
		for k := range s.Reasons {
			rk = append(rk, k)
		}
		sort.Strings(rk)
		for _, k := range rk {
			fmt.Fprintf(e.stdout, "    %-40s %d\n", k, s.Reasons[k])
		}
	}
	if runErr != nil {
		return fmt.Errorf("node ingest: cancelled: %w", runErr)
	}
	if bad := s.Statuses[node.StatusFailed] + s.Statuses[node.StatusConflict]; bad > 0 {
		return exitError{code: exitFailure, msg: fmt.Sprintf("node ingest: %d of %s failed or conflicted", bad, plural(s.Objects, "object"))}
	}
	return nil
}
