package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mosaic-imaging/mosaic/internal/hub"
	"github.com/mosaic-imaging/mosaic/internal/serve"
)

type hubFlags struct {
	data, config, listen, db, natsListen, natsWS, natsURL, publicURL string
	natsTLSCert, natsTLSKey                                          string
	natsMTLS, natsNoTLS, natsAllowPlain, insecure                    bool
	fs                                                               *pflag.FlagSet
	// create lets the command make a hub where none is (--create, or hub
	// init); without it a missing data directory is refused.
	create bool
	// oidc are the OpenID provider's flags (login.go).
	oidc oidcFlags
	// access are the flags of access requests and SMTP (hub_access.go).
	access accessFlags
}

// registerCreate adds --create, which makes a new hub when --data names
// no hub yet.
func (f *hubFlags) registerCreate(fs *pflag.FlagSet) {
	fs.BoolVar(&f.create, "create", false, "make a new hub when --data names none (default: refuse, see 'mosaic hub init')")
}

func (f *hubFlags) register(fs *pflag.FlagSet, serve bool) {
	f.fs = fs
	fs.StringVar(&f.data, "data", "", "the hub's data directory (required; env MOSAIC_HUB_DATA)")
	fs.StringVar(&f.config, "config", "", "configuration file, JSON (default: DATA/hub.json when it exists)")
	fs.StringVar(&f.db, "db", "", "state database: a SQLite path or postgres://... (default DATA/hub.db; env MOSAIC_HUB_DB)")
	if serve {
		fs.StringVar(&f.listen, "listen", "", "HTTP address (default 127.0.0.1:8080; env MOSAIC_HUB_LISTEN)")
		fs.StringVar(&f.natsListen, "nats-listen", "", "embedded NATS client address nodes connect to (default 127.0.0.1:4222; port 0 picks one)")
		fs.StringVar(&f.natsWS, "nats-websocket", "", "embedded NATS WebSocket address, for nodes behind proxies (default: off)")
		fs.StringVar(&f.natsURL, "nats", "", "use an external NATS cluster at this URL instead of the embedded server")
		fs.StringVar(&f.publicURL, "public-url", "", "the hub's URL as nodes and browsers reach it (default: http://LISTEN)")
		fs.StringVar(&f.natsTLSCert, "nats-tls-cert", "", "certificate (PEM, with its chain) of the embedded NATS server (default: one the hub signs with its own CA, DATA/nats-ca.pem)")
		fs.StringVar(&f.natsTLSKey, "nats-tls-key", "", "key (PEM) of --nats-tls-cert")
		fs.BoolVar(&f.natsMTLS, "nats-mtls", false, "admit a node only with a TLS certificate made from the key it enrolled with (mutual TLS)")
		fs.BoolVar(&f.natsNoTLS, "nats-no-tls", false, "serve NATS without TLS (on loopback addresses only, unless --insecure)")
		fs.BoolVar(&f.natsAllowPlain, "nats-allow-plain", false, "also admit nodes without TLS on the NATS port, while nodes older than TLS upgrade (loopback only, unless --insecure)")
		fs.BoolVar(&f.insecure, "insecure", false, "allow --nats-no-tls on addresses other machines reach: nodes' passwords cross the network in clear")
		f.oidc.register(fs)
		f.access.register(fs)
	}
}

func (f *hubFlags) configFor(e *env, cmd *cobra.Command) (hub.Config, error) {
	var c hub.Config
	data := f.data
	if data == "" {
		data = e.getenv("MOSAIC_HUB_DATA")
	}
	if data == "" {
		return c, usagef("%s: --data DIR is required", cmd.CommandPath())
	}
	if !f.create {
		if err := dataPresent(data, "hub"); err != nil {
			return c, err
		}
	}
	path := f.config
	if path == "" {
		if _, err := os.Stat(filepath.Join(data, "hub.json")); err == nil {
			path = filepath.Join(data, "hub.json")
		}
	}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("hub: config: %w", err)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return c, fmt.Errorf("hub: config %s: %w", path, err)
		}
	}
	c.Data = data
	for _, v := range []struct {
		dst       *string
		env, flag string
	}{
		{&c.DB, "MOSAIC_HUB_DB", f.db}, {&c.Listen, "MOSAIC_HUB_LISTEN", f.listen}, {&c.NATSListen, "MOSAIC_HUB_NATS_LISTEN", f.natsListen},
		{&c.NATSWebSocket, "MOSAIC_HUB_NATS_WEBSOCKET", f.natsWS}, {&c.NATSURL, "MOSAIC_HUB_NATS", f.natsURL}, {&c.PublicURL, "MOSAIC_HUB_PUBLIC_URL", f.publicURL},
		{&c.NATSTLSCert, "MOSAIC_HUB_NATS_TLS_CERT", f.natsTLSCert}, {&c.NATSTLSKey, "MOSAIC_HUB_NATS_TLS_KEY", f.natsTLSKey},
	} {
		if s := e.getenv(v.env); s != "" {
			*v.dst = s
		}
		if v.flag != "" {
			*v.dst = v.flag
		}
	}
	for _, v := range []struct {
		dst  *bool
		flag string
		val  bool
	}{{&c.NATSMTLS, "nats-mtls", f.natsMTLS}, {&c.NATSNoTLS, "nats-no-tls", f.natsNoTLS}, {&c.NATSAllowPlain, "nats-allow-plain", f.natsAllowPlain}, {&c.Insecure, "insecure", f.insecure}} {
		if f.fs != nil && f.fs.Changed(v.flag) {
			*v.dst = v.val
		}
	}
	f.oidc.apply(e, f.fs, &c)
	if err := f.access.apply(e, f.fs, &c); err != nil {
		return c, err
	}
	c.Log = slog.New(slog.NewJSONHandler(e.stderr, nil))
	c.Defaults()
	if err := c.Validate(); err != nil {
		return c, usageError{err}
	}
	return c, nil
}

// openAdmin opens only the hub's database, for the admin commands (they
// work while the hub serves).
func (f *hubFlags) openAdmin(e *env, cmd *cobra.Command) (*hub.Admin, error) {
	c, err := f.configFor(e, cmd)
	if err != nil {
		return nil, err
	}
	return hub.OpenAdmin(e.ctx, c)
}

func newHubCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hub",
		Short: "Run and manage the federation's hub",
		Long: `The hub is the federation's centre: nodes connect out to its embedded NATS
server, publish what they hold to its public catalogue, and answer the
federated searches researchers make through its API and web pages. It never
holds patient data: only dataset descriptions and counts that passed each
node's disclosure control.`,
		Example: `  mosaic hub init --data /srv/hub
  mosaic hub user add --data /srv/hub alice --admin
  mosaic hub node add --data /srv/hub hospital-a      # prints a one-time enrolment token
  mosaic hub serve --data /srv/hub --listen 0.0.0.0:8080 --nats-listen 0.0.0.0:4222`,
	}
	cmd.AddCommand(newHubInitCmd(e), newHubServeCmd(e), newHubUserCmd(e), newHubTokenCmd(e), newHubNodeCmd(e))
	return cmd
}

func newHubServeCmd(e *env) *cobra.Command {
	var f hubFlags
	cmd := &cobra.Command{
		Use:   "serve --data DIR [--listen ADDR] [--db URL] [--nats-listen ADDR]",
		Short: "Serve the hub: catalogue, federated search, access requests, permits, relay, viewer, NATS for nodes",
		Long: `Serve the hub until interrupted. It embeds a NATS server with JetStream that
nodes connect out to (--nats-listen; --nats-websocket adds WebSocket for
nodes behind proxies; --nats uses an external cluster instead).

NATS has TLS by default: the hub makes its own CA (DATA/nats-ca.pem) and
signs a server certificate for its names and addresses at every start, or
uses --nats-tls-cert and --nats-tls-key; nodes pin what enrolment hands
out. --nats-mtls also asks each node for a certificate of its enrolment key.
--nats-no-tls is allowed on loopback addresses only, unless --insecure.

HTTP:
  /                          web pages: dashboard, catalogue, search, nodes
  /api/v1/datasets           the public catalogue (no login), with ?q= and facets
  /api/v1/catalogue          the catalogue as EUCAIM DCAT-AP (JSON-LD or Turtle)
  /fdp                       FAIR Data Point entry point
  /api/v1/search             federated search (Samply Lens AST; login needed)
  /api/v1/enroll             node enrolment (one-time token)
  /access, /api/v1/access-requests
                             access requests: a researcher asks for datasets,
                             the hub's admins check the form, each dataset's
                             representatives decide (notifications by e-mail
                             with --smtp-addr, reminders --remind-after,
                             escalation --escalate-after)
  /api/v1/permits/ID/revoke  permits: each grant is a permit signed by the hub
                             (at most --max-permit-days); nodes verify it
                             themselves and get revocations at once and every
                             --revocation-interval
  /snapshots/ID              the citable cohort snapshot a permit covers
  /dicom-web/permits/ID/     DICOMweb (QIDO-RS, WADO-RS) relayed to the node
                             over its outbound link, under the permit
  /viewer/?permit=ID         the image viewer of a view permit
  /login, /oidc/login, /device, /oauth/token
                             log-in: hub accounts, an OpenID provider
                             (--oidc-issuer, docs/oidc.md), and the device
                             grant of 'mosaic login --hub URL'
  /healthz, /readyz, /metrics

Docs: docs/access.md (the access road for researchers, representatives and
operators), docs/oidc.md (log-in) and docs/architecture.md, in the docs
directory of Mosaic's source tree.`,
		Args: argsError(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.configFor(e, cmd)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", c.Listen)
			if err != nil {
				return fmt.Errorf("hub: listen: %w", err)
			}
			if c.PublicURL == "" {
				c.PublicURL = "http://" + ln.Addr().String()
			}
			h, err := hub.Open(e.ctx, c)
			if err != nil {
				ln.Close()
				return err
			}
			return serve.Run(e.ctx, serve.Options{Log: c.Log, Drain: 15 * time.Second}, func(g *serve.Group) error {
				g.OnClose("hub", h.Close)
				g.Serve("hub HTTP", httpServer(h.Handler(), c.Log), ln)
				fmt.Fprintf(e.stdout, "mosaic hub listening on %s (NATS %s)\n", c.PublicURL, h.NATSURL())
				return nil
			})
		},
	}
	f.register(cmd.Flags(), true)
	f.registerCreate(cmd.Flags())
	return cmd
}

func newHubInitCmd(e *env) *cobra.Command {
	var f hubFlags
	cmd := &cobra.Command{
		Use:   "init --data DIR [--db URL]",
		Short: "Make a new hub: its data directory and state database",
		Long: `Make a new hub in DATA with its state database (DATA/hub.db unless --db).
The other hub commands refuse a --data that names no hub, so that a
mistyped path does not start an empty hub; 'init' (or their --create) is
how a hub begins. 'mosaic hub serve' makes the hub's keys and NATS
certificates at its first start. Running it on an existing hub changes
nothing.`,
		Example: `  mosaic hub init --data /srv/hub`,
		Args:    argsError(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			data := f.data
			if data == "" {
				data = e.getenv("MOSAIC_HUB_DATA")
			}
			existed := data != "" && dataPresent(data, "hub") == nil
			f.create = true
			st, err := f.openAdmin(e, cmd)
			if err != nil {
				return err
			}
			if err := st.Close(); err != nil {
				return err
			}
			if existed {
				fmt.Fprintf(e.stdout, "a hub is already at %s: nothing changed\n", data)
			} else {
				fmt.Fprintf(e.stdout, "hub made at %s\n", data)
			}
			return nil
		},
	}
	f.register(cmd.Flags(), false)
	return cmd
}

// httpServer is the HTTP server of `hub serve`, `node serve` and the
// demo: bounded header reads and idle connections, and the server's own
// complaints logged as warnings.
func httpServer(handler http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
}

func randomPassword() string {
	var b [15]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func newHubUserCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage the hub's local accounts"}
	var f hubFlags
	var admin, stdinPw bool
	var role, email, organisation string
	var represents []string
	add := &cobra.Command{
		Use:   "add --data DIR NAME [--role researcher|representative|admin] [--email ADDR] [--organisation ORG] [--represents NODE/DATASET]... [--password-stdin]",
		Short: "Add an account; prints a generated password unless one comes on stdin",
		Args:  argsError(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := f.openAdmin(e, cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			pw := ""
			if stdinPw {
				line, err := bufio.NewReader(e.stdin).ReadString('\n')
				if err != nil && line == "" {
					return usagef("hub user add: no password on stdin")
				}
				pw = strings.TrimRight(line, "\r\n")
			} else {
				pw = randomPassword()
			}
			if admin {
				role = hub.RoleAdmin
			}
			reps, err := parseRepresentations(represents)
			if err != nil {
				return err
			}
			if err := st.AddUser(e.ctx, args[0], pw, role); err != nil {
				return err
			}
			if email != "" {
				if err := st.SetEmail(e.ctx, args[0], email, ""); err != nil {
					return err
				}
			}
			if organisation != "" {
				if err := st.SetOrganisation(e.ctx, args[0], organisation); err != nil {
					return err
				}
			}
			for _, r := range reps {
				if err := st.AddRepresentative(e.ctx, args[0], r); err != nil {
					return err
				}
			}
			if stdinPw {
				fmt.Fprintf(e.stdout, "user %s added (%s)\n", args[0], role)
			} else {
				fmt.Fprintf(e.stdout, "user %s added (%s); password: %s\n", args[0], role, pw)
			}
			return nil
		},
	}
	f.register(add.Flags(), false)
	f.registerCreate(add.Flags())
	add.Flags().BoolVar(&admin, "admin", false, "an administrator (node management, the review of access requests); same as --role admin")
	add.Flags().StringVar(&role, "role", hub.RoleResearcher, "researcher, representative (decides access requests for the datasets of --represents) or admin")
	add.Flags().StringVar(&email, "email", "", "the address access requests' notifications go to")
	add.Flags().StringVar(&organisation, "organisation", "", "the organisation the user belongs to (tools need approvals from people of different organisations)")
	add.Flags().StringSliceVar(&represents, "represents", nil, "NODE/DATASET (or NODE/* for every dataset of the node) this user decides access requests for; repeat for more")
	add.Flags().BoolVar(&stdinPw, "password-stdin", false, "read the password (12 characters or more) from stdin")
	cmd.AddCommand(add, newHubUserRepresentCmd(e))
	return cmd
}

func newHubTokenCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage API tokens of hub users"}
	var f hubFlags
	var user, name string
	create := &cobra.Command{
		Use:   "create --data DIR --user NAME",
		Short: "Create an API token for a user and print it alone on stdout",
		Args:  argsError(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if user == "" {
				return usagef("hub token create: --user is required")
			}
			st, err := f.openAdmin(e, cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			if _, err := st.Nodes(e.ctx); err != nil {
				return err
			}
			tok, err := st.NewUserToken(e.ctx, user, name)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, tok)
			return nil
		},
	}
	f.register(create.Flags(), false)
	create.Flags().StringVar(&user, "user", "", "the user the token acts for (required)")
	create.Flags().StringVar(&name, "name", "", "what the token is for")
	cmd.AddCommand(create)
	return cmd
}

func newHubNodeCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Register, list and remove nodes"}
	var f hubFlags
	var title string
	var ttl time.Duration
	add := &cobra.Command{
		Use:   "add --data DIR NAME [--title T]",
		Short: "Register a node and print its one-time enrolment token",
		Long: `Register a node and print a one-time enrolment token, valid for --ttl. Give
it to the node's operator, who runs 'mosaic node enroll --hub URL --token T'.`,
		Args: argsError(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := f.openAdmin(e, cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			tok, err := st.AddNode(e.ctx, args[0], title, ttl)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, tok)
			return nil
		},
	}
	f.register(add.Flags(), false)
	f.registerCreate(add.Flags())
	add.Flags().StringVar(&title, "title", "", "the data holder's name, as the catalogue shows it")
	add.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "how long the enrolment token stays valid")
	var format string
	list := &cobra.Command{
		Use:   "list --data DIR [-o table|json]",
		Short: "List nodes with their enrolment and last contact",
		Args:  argsError(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validOutput(format); err != nil {
				return err
			}
			st, err := f.openAdmin(e, cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			nodes, err := st.Nodes(e.ctx)
			if err != nil {
				return err
			}
			if format == outputJSON {
				if nodes == nil {
					nodes = []hub.Node{}
				}
				return writeJSON(e.stdout, map[string]any{"nodes": nodes})
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "NODE\tTITLE\tENROLLED\tVERSION\tLAST CONTACT\tREMOVED\tHELD BACK")
			t := func(p *time.Time) string {
				if p == nil {
					return "-"
				}
				return p.Format(time.RFC3339)
			}
			for _, n := range nodes {
				held := "-"
				if len(n.HeldBack) > 0 {
					var hs []string
					for _, h := range n.HeldBack {
						hs = append(hs, h.ID+" ("+strings.Join(h.Reasons, ", ")+")")
					}
					held = strings.Join(hs, "; ")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, n.Title, t(n.Enrolled), n.Version, t(n.LastSeen), t(n.Removed), held)
			}
			return tw.Flush()
		},
	}
	f.register(list.Flags(), false)
	addOutputFlag(list, &format)
	remove := &cobra.Command{
		Use:   "remove --data DIR NAME",
		Short: "Remove a node: its credentials stop working and a running hub cuts it off",
		Args:  argsError(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := f.openAdmin(e, cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.RemoveNode(e.ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "node %s removed\n", args[0])
			return nil
		},
	}
	f.register(remove.Flags(), false)
	cmd.AddCommand(add, list, remove)
	return cmd
}
