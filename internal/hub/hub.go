package hub

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/access"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/oidc"
	"github.com/mosaic-imaging/mosaic/internal/relay"
	"github.com/mosaic-imaging/mosaic/internal/throttle"
)

// Config is a hub's configuration.
type Config struct {
	// Data is the hub's data directory: SQLite state, NATS JetStream
	// store, signing key and audit log.
	Data string `json:"data"`
	// Listen is the HTTP address.
	Listen string `json:"listen"`
	// DB is the state database: a SQLite path or a postgres:// URL.
	DB string `json:"db"`
	// NATSListen is the embedded NATS server's client address
	// (host:port; port 0 picks a free one).
	NATSListen string `json:"nats_listen"`
	// NATSWebSocket is the address of NATS over WebSocket (for nodes
	// behind proxies); empty disables it.
	NATSWebSocket string `json:"nats_websocket"`
	// NATSURL, when set, uses an external NATS cluster instead of the
	// embedded server; it must authenticate nodes itself.
	NATSURL string `json:"nats_url"`
	// NATSTLSCert and NATSTLSKey are the operator's certificate (PEM,
	// with its chain) and key for the embedded NATS server. Without them
	// the hub makes its own CA in the data directory (nats-ca.pem,
	// nats-ca.key) and signs a server certificate with it at every
	// start. Nodes pin what enrolment hands out: the CA, or the top of
	// the operator's chain.
	NATSTLSCert string `json:"nats_tls_cert"`
	NATSTLSKey  string `json:"nats_tls_key"`
	// NATSNoTLS serves NATS without TLS: allowed on loopback addresses
	// (tests, a hub and nodes on one machine), elsewhere only with
	// Insecure.
	NATSNoTLS bool `json:"nats_no_tls"`
	// NATSMTLS asks every node for a certificate made from its
	// enrolment key and admits it only if the key matches, in addition
	// to its password.
	NATSMTLS bool `json:"nats_mtls"`
	// NATSAllowPlain also admits connections without TLS on the TLS
	// client port, for nodes whose binaries predate TLS while a
	// federation upgrades (WebSocket stays TLS only). Like NATSNoTLS it
	// needs loopback addresses or Insecure.
	NATSAllowPlain bool `json:"nats_allow_plain"`
	// Insecure allows NATS without TLS on addresses other hosts reach.
	Insecure bool `json:"insecure"`
	// PublicURL is the hub's URL as nodes and browsers reach it.
	PublicURL string `json:"public_url"`
	// SearchDeadline bounds how long a search waits for nodes.
	SearchDeadline time.Duration `json:"search_deadline"`
	// QueriesPerDay caps each user's federated searches per day.
	QueriesPerDay int `json:"queries_per_day"`
	// HeartbeatTimeout is how long after its last heartbeat a node is
	// shown as offline (default 15 s: three heartbeats of a node missed).
	// It matters only when the connection dies without a word (a
	// network cut): a node that stops tells the hub, and one whose
	// process or host dies closes its connection, and both are offline
	// at once on the embedded NATS server.
	HeartbeatTimeout time.Duration `json:"heartbeat_timeout"`
	// LoginFailures is how many wrong passwords an account may get from
	// one address (and a node name over NATS) before each next attempt
	// waits, 1 s and doubling; an address may fail 4 times as often over
	// all accounts, an account twice as often from all addresses
	// (default 5).
	LoginFailures int `json:"login_failures"`
	// LoginMaxWait caps those waits (default 5 min); failures are
	// forgotten after 6 times as long without one.
	LoginMaxWait time.Duration `json:"login_max_wait"`
	// RevocationInterval is how often the hub sends every linked node
	// its full list of revoked permits (default 15 s); a node also gets
	// it as soon as it comes online, and each new revocation at once.
	RevocationInterval time.Duration `json:"revocation_interval"`

	Log *slog.Logger `json:"-"`
	// Clock, when set, replaces time.Now for login throttling (tests).
	Clock func() time.Time `json:"-"`

	// OIDC, with its issuer set, lets people log in through an OpenID
	// provider and scripts present its JWTs (docs/oidc.md). Its
	// redirect URL defaults to PublicURL + "/oidc/callback".
	OIDC oidc.Config `json:"oidc"`
	// NoLocalLogin hides the password form of local accounts and refuses
	// their passwords on the web and the API (API tokens keep working);
	// it needs an OpenID provider.
	NoLocalLogin bool `json:"no_local_login"`

	// Access tunes access requests (docs/access.md).
	Access AccessConfig `json:"access"`
	// SMTP is the mail server notifications of access requests go
	// through; without an address they are shown in the web pages only.
	SMTP SMTPConfig `json:"smtp"`
	// Processing tunes jobs, the tool catalogue and federated
	// computations (docs/processing.md).
	Processing ProcessingConfig `json:"processing"`
}

// AccessConfig tunes access requests.
type AccessConfig struct {
	// RemindAfter: representatives who have not answered a request for
	// this long are reminded, once per period (default 72h).
	RemindAfter time.Duration `json:"remind_after"`
	// EscalateAfter: the hub's admins are told of a request no
	// representative answered for this long (default 7 days).
	EscalateAfter time.Duration `json:"escalate_after"`
	// MaxDays bounds how long a permit may last (default 365).
	MaxDays int `json:"max_days"`
}

// SMTPConfig is the mail server of the hub's notifications.
type SMTPConfig struct {
	// Addr is host:port; empty sends no e-mail.
	Addr string `json:"addr"`
	// From is the sender address.
	From string `json:"from"`
	// User and PasswordFile authenticate (PLAIN, over TLS only unless TLS
	// is "insecure").
	User         string `json:"user"`
	PasswordFile string `json:"password_file"`
	// TLS is "starttls" (the default: upgrade when offered), "required"
	// (refuse a server without STARTTLS), "implicit" (TLS from the first
	// byte, port 465) or "insecure" (never TLS: tests and local relays).
	TLS string `json:"tls"`
}

// mailer builds the SMTP mailer of c, nil when no address is set.
func (c SMTPConfig) mailer() (access.Mailer, error) {
	if c.Addr == "" {
		return nil, nil
	}
	modes := map[string]access.TLSMode{"": access.TLSStartTLS, "starttls": access.TLSStartTLS, "required": access.TLSRequired,
		"implicit": access.TLSImplicit, "insecure": access.TLSInsecure}
	mode, ok := modes[c.TLS]
	if !ok {
		return nil, fmt.Errorf("hub: smtp tls %q: use starttls, required, implicit or insecure", c.TLS)
	}
	pw := ""
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("hub: smtp password file: %w", err)
		}
		pw = strings.TrimRight(string(b), "\r\n")
	}
	return access.NewSMTP(c.Addr, c.From, c.User, pw, mode)
}

// Defaults fills in zero fields.
func (c *Config) Defaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.DB == "" {
		c.DB = filepath.Join(c.Data, "hub.db")
	}
	if c.NATSListen == "" {
		c.NATSListen = "127.0.0.1:4222"
	}
	if c.SearchDeadline == 0 {
		c.SearchDeadline = 5 * time.Second
	}
	if c.QueriesPerDay == 0 {
		c.QueriesPerDay = 2000
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = 15 * time.Second
	}
	if c.LoginFailures == 0 {
		c.LoginFailures = 5
	}
	if c.LoginMaxWait == 0 {
		c.LoginMaxWait = 5 * time.Minute
	}
	if c.RevocationInterval == 0 {
		c.RevocationInterval = 15 * time.Second
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
}

// Validate checks a configuration after Defaults.
func (c *Config) Validate() error {
	switch {
	case c.Data == "":
		return errors.New("hub: the data directory is required (--data)")
	case c.SearchDeadline < 100*time.Millisecond || c.SearchDeadline > 2*time.Minute:
		return fmt.Errorf("hub: search deadline %s: use 100ms to 2m", c.SearchDeadline)
	case c.QueriesPerDay < 1:
		return errors.New("hub: queries_per_day must be positive")
	case c.LoginFailures < 1 || c.LoginFailures > 100:
		return fmt.Errorf("hub: login_failures %d: use 1 to 100", c.LoginFailures)
	case c.LoginMaxWait < time.Second || c.LoginMaxWait > 24*time.Hour:
		return fmt.Errorf("hub: login_max_wait %s: use 1s to 24h", c.LoginMaxWait)
	case c.RevocationInterval < 100*time.Millisecond || c.RevocationInterval > time.Hour:
		return fmt.Errorf("hub: revocation_interval %s: use 100ms to 1h", c.RevocationInterval)
	}
	if c.NATSURL == "" {
		if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			return fmt.Errorf("hub: nats_listen %q: %v", c.NATSListen, err)
		}
	}
	switch {
	case (c.NATSTLSCert == "") != (c.NATSTLSKey == ""):
		return errors.New("hub: nats_tls_cert and nats_tls_key (--nats-tls-cert, --nats-tls-key) go together")
	case c.NATSNoTLS && c.NATSTLSCert != "":
		return errors.New("hub: nats_no_tls contradicts nats_tls_cert")
	case c.NATSNoTLS && c.NATSMTLS:
		return errors.New("hub: nats_mtls needs TLS: drop nats_no_tls (--nats-no-tls)")
	case c.NATSNoTLS && c.NATSAllowPlain:
		return errors.New("hub: nats_allow_plain is for a hub with TLS: drop one of nats_no_tls and nats_allow_plain")
	}
	if c.NATSURL == "" && (c.NATSNoTLS || c.NATSAllowPlain) && !c.Insecure {
		addrs, flag := []string{c.NATSListen, c.NATSWebSocket}, "--nats-no-tls (the hub makes its own certificate)"
		if c.NATSAllowPlain {
			addrs, flag = []string{c.NATSListen}, "--nats-allow-plain once every node runs a version with TLS"
		}
		for _, addr := range addrs {
			if addr != "" && !loopback(addr) {
				return fmt.Errorf("hub: NATS on %s without TLS would let anyone on the network read the nodes' passwords and answers: "+
					"drop %s, or pass --insecure (insecure: true in hub.json) to accept that", addr, flag)
			}
		}
	}
	return nil
}

// Hub is a running hub's core: its store, keys, NATS server and
// connection, and the nodes' live state.
type Hub struct {
	cfg   Config
	store *store
	log   *slog.Logger
	key   ed25519.PrivateKey
	pub   ed25519.PublicKey
	ns    *server.Server
	nc    *nats.Conn
	tls   *natsTLS // nil without TLS on the embedded server
	audit auditLog
	m     *metrics
	enrol *enrolLimit

	hubUser, hubPass string
	// pseudonymKey keys researchers' per-node pseudonyms (Pseudonym).
	pseudonymKey []byte
	// logins and nodeLogins throttle wrong passwords of users (web and
	// API) and of nodes (NATS); lockouts bounds their audit records.
	logins, nodeLogins *throttle.Guard
	lockouts           lockoutLog
	// oidc is the OpenID provider's relying party and the device
	// grant's state (oidc.go, device.go).
	oidc *oidcHub

	mu      sync.Mutex
	live    map[string]*liveNode // by node id
	clients map[uint64]string    // NATS client id -> node id
	keys    map[string]ed25519.PublicKey
	alerts  []Alert
	// linked holds the nodes with a NATS connection open at the last
	// look (watch); changed is closed, and replaced, whenever a node
	// goes offline (see link.go).
	linked  map[string]bool
	changed chan struct{}
	subs    []*nats.Subscription
	// acc holds the hooks of the snapshot, revocation, relay and
	// landing-page wiring (grant.go).
	acc    accessWiring
	cancel context.CancelFunc
	done   chan struct{}

	// access is set by EnableAccess (access.go).
	access atomic.Pointer[accessState]
	// compute is set by enableCompute (compute.go).
	compute atomic.Pointer[computeState]
	// jobs is set by enableJobs (jobs.go).
	jobs atomic.Pointer[jobsState]
}

type liveNode struct {
	heartbeat fed.Heartbeat
	seen      time.Time
	// left is the node's time in its leaving message (zero while it
	// runs), leftAt the hub's when it came.
	left, leftAt time.Time
}

// Open starts a hub: it opens the state, loads or creates the signing
// key, starts the embedded NATS server (unless an external one is
// configured) and connects to it.
func Open(ctx context.Context, cfg Config) (*Hub, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	h := &Hub{cfg: cfg, store: st, log: cfg.Log, live: map[string]*liveNode{}, clients: map[uint64]string{}, keys: map[string]ed25519.PublicKey{}, m: newMetrics(), enrol: newEnrolLimit()}
	fail := func(err error) (*Hub, error) {
		h.Close()
		return nil, err
	}
	h.logins, h.nodeLogins = cfg.newLoginGuard(), cfg.newLoginGuard()
	if h.key, err = fed.LoadOrCreateKey(filepath.Join(cfg.Data, "hub.key")); err != nil {
		return fail(err)
	}
	h.pub = h.key.Public().(ed25519.PublicKey)
	pk := hmac.New(sha256.New, h.key.Seed())
	pk.Write([]byte("mosaic researcher pseudonyms"))
	h.pseudonymKey = pk.Sum(nil)
	if err := h.openOIDC(); err != nil {
		return fail(err)
	}
	if h.audit, err = openAudit(filepath.Join(cfg.Data, "audit.log")); err != nil {
		return fail(err)
	}
	h.hubUser, h.hubPass = "hub", fed.NewID()+fed.NewID()
	url := cfg.NATSURL
	opts := []nats.Option{nats.UserInfo(h.hubUser, h.hubPass), nats.Name("mosaic-hub"),
		nats.MaxReconnects(-1), nats.ReconnectWait(500 * time.Millisecond)}
	if url == "" {
		if err := h.startNATS(); err != nil {
			return fail(err)
		}
		url = h.localURL()
		if h.tls != nil {
			tc, err := h.selfTLS()
			if err != nil {
				return fail(err)
			}
			opts = append(opts, nats.Secure(tc))
		}
	}
	h.nc, err = nats.Connect(url, opts...)
	if err != nil {
		return fail(fmt.Errorf("hub: connect to NATS: %w", err))
	}
	if err := h.subscribe(); err != nil {
		return fail(err)
	}
	// The road from a count to data: access requests with their
	// snapshots and permits, and DICOMweb relayed to nodes under them.
	mail, err := cfg.SMTP.mailer()
	if err != nil {
		return fail(err)
	}
	if _, err := h.EnableAccess(access.Config{RemindAfter: cfg.Access.RemindAfter, EscalateAfter: cfg.Access.EscalateAfter,
		MaxDays: cfg.Access.MaxDays}, h, h, mail); err != nil {
		return fail(err)
	}
	// Federated processing: jobs at the data, the tool catalogue, and
	// federated analyses, learning and validation.
	if err := h.enableJobs(); err != nil {
		return fail(err)
	}
	if err := h.enableCompute(); err != nil {
		return fail(err)
	}
	h.SetForwarder(relay.NewClient(h.nc, func(t fed.Task) ([]byte, error) { return fed.Seal(h.key, fed.SignerHub, t) },
		relay.Options{Log: h.log}))
	cctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan struct{})
	go h.watch(cctx)
	return h, nil
}

// NATSURL returns the URL nodes connect to: tls://HOST:PORT unless the
// embedded server runs without TLS. A server listening on every
// interface is advertised under the public URL's host.
func (h *Hub) NATSURL() string {
	if h.cfg.NATSURL != "" {
		return h.cfg.NATSURL
	}
	return h.advertise(h.ns.ClientURL())
}

// NATSCA returns the certificates (PEM) nodes pin for the embedded NATS
// server, or "" without TLS.
func (h *Hub) NATSCA() string {
	if h.tls == nil {
		return ""
	}
	return h.tls.pinned
}

// localURL is the URL of the embedded server for the hub's own
// connection.
func (h *Hub) localURL() string {
	u, err := url.Parse(h.ns.ClientURL())
	if err != nil || !unspecified(u.Hostname()) {
		return h.ns.ClientURL()
	}
	u.Host = net.JoinHostPort("127.0.0.1", u.Port())
	return u.String()
}

// NATSWebSocketURL returns the WebSocket URL of the embedded server, or
// "".
func (h *Hub) NATSWebSocketURL() string {
	if h.ns == nil || h.cfg.NATSWebSocket == "" {
		return ""
	}
	p := h.ns.PortsInfo(time.Second)
	if p == nil || len(p.WebSocket) == 0 {
		return ""
	}
	return h.advertise(p.WebSocket[0])
}

// PublicKey is the hub's signing key.
func (h *Hub) PublicKey() ed25519.PublicKey { return h.pub }

// Config returns the effective configuration.
func (h *Hub) Config() Config { return h.cfg }

func (h *Hub) startNATS() error {
	host, portS, _ := net.SplitHostPort(h.cfg.NATSListen)
	port, _ := strconv.Atoi(portS)
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName:    "mosaic-hub",
		Host:          host,
		Port:          port,
		NoSigs:        true,
		NoLog:         true,
		JetStream:     true,
		StoreDir:      filepath.Join(h.cfg.Data, "nats"),
		MaxPayload:    fed.MaxMessage,
		WriteDeadline: 10 * time.Second,
	}
	opts.CustomClientAuthentication = &natsAuth{h: h}
	if !h.cfg.NATSNoTLS {
		t, err := loadNATSTLS(h.cfg)
		if err != nil {
			return err
		}
		h.tls = t
		opts.TLSConfig = t.server
		opts.TLSTimeout = 5
		opts.AllowNonTLS = h.cfg.NATSAllowPlain
	}
	if h.cfg.NATSWebSocket != "" {
		wh, wp, err := net.SplitHostPort(h.cfg.NATSWebSocket)
		if err != nil {
			return fmt.Errorf("hub: nats_websocket: %w", err)
		}
		wport, _ := strconv.Atoi(wp)
		if wport == 0 {
			wport = -1
		}
		opts.Websocket = server.WebsocketOpts{Host: wh, Port: wport, NoTLS: h.tls == nil}
		if h.tls != nil {
			opts.Websocket.TLSConfig = h.tls.server
		}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("hub: NATS server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return errors.New("hub: NATS server did not start")
	}
	h.ns = ns
	return nil
}

// natsAuth admits the hub itself and enrolled nodes, each confined to
// its own subjects.
type natsAuth struct{ h *Hub }

func (a *natsAuth) Check(c server.ClientAuthentication) bool {
	o := c.GetOpts()
	h := a.h
	if h.hubPass != "" && o.Username == h.hubUser && subtle.ConstantTimeCompare([]byte(o.Password), []byte(h.hubPass)) == 1 {
		c.RegisterUser(&server.User{Username: o.Username})
		return true
	}
	id := o.Username
	if !fed.ValidNodeID(id) || id == h.hubUser {
		return false
	}
	if !h.nodeLogin(id, o.Password, c.RemoteAddress()) {
		return false
	}
	if h.cfg.NATSMTLS && !h.certMatches(c, id) {
		h.log.Warn("NATS connection refused: its certificate is not the node's key", "node", id, "remote", c.RemoteAddress().String())
		return false
	}
	c.RegisterUser(&server.User{
		Username: id,
		Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: fed.NodePublishAllow(id)},
			Subscribe: &server.SubjectPermission{Allow: fed.NodeSubscribeAllow(id)},
			Response:  &server.ResponsePermission{MaxMsgs: 1, Expires: 2 * time.Minute},
		},
	})
	h.mu.Lock()
	h.clients[c.GetID()] = id
	h.mu.Unlock()
	return true
}

// Close stops the hub.
func (h *Hub) Close() error {
	if h.cancel != nil {
		h.cancel()
		<-h.done
	}
	if h.nc != nil {
		h.nc.Drain()
		h.nc.Close()
	}
	if h.ns != nil {
		h.ns.Shutdown()
		h.ns.WaitForShutdown()
	}
	if h.audit != nil {
		h.flushEnrolRefusals(true)
		h.audit.Close()
	}
	return h.store.Close()
}

// watch keeps the live view: it cuts off removed nodes at once (a node
// removed through the CLI changes only the database) and forgets nodes
// that stopped sending heartbeats.
func (h *Hub) watch(ctx context.Context) {
	defer close(h.done)
	defer h.startRevocations(ctx)()
	reminders := make(chan struct{})
	go func() {
		defer close(reminders)
		h.RunAccessReminders(ctx)
	}()
	defer func() { <-reminders }()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.flushEnrolRefusals(false)
		h.checkConnections()
		nodes, err := h.store.Nodes(ctx)
		if err != nil {
			continue
		}
		removed := map[string]bool{}
		for _, n := range nodes {
			if n.Removed != nil {
				removed[n.ID] = true
			}
		}
		h.mu.Lock()
		for cid, id := range h.clients {
			if removed[id] && h.ns != nil {
				h.ns.DisconnectClientByID(cid)
				delete(h.clients, cid)
				delete(h.live, id)
				h.log.Info("removed node cut off", "node", id)
			}
		}
		h.mu.Unlock()
		h.noteLockouts("", "", "", nil) // the count of lockouts left out of a minute that is over
	}
}
