package access

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/lens"
	"github.com/mosaic-imaging/mosaic/internal/permit"
	"github.com/mosaic-imaging/mosaic/internal/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Errors of the Service, for errors.Is; the JSON API maps them to 404,
// 403, 409, 400 and 502.
var (
	ErrNotFound  = errors.New("not found")
	ErrForbidden = errors.New("forbidden")
	ErrConflict  = errors.New("conflict")
	ErrInvalid   = errors.New("invalid")
	// ErrSnapshot: the node made no snapshot; the dataset keeps its state.
	ErrSnapshot = errors.New("the node made no snapshot")
)

// Roles of Person.Role the service knows.
const (
	RoleAdmin          = "admin"
	RoleResearcher     = "researcher"
	RoleRepresentative = "representative"
)

// States of a request.
const (
	StateDraft       = "draft"
	StateSubmitted   = "submitted"
	StateReturned    = "returned"
	StateDeclined    = "declined"
	StateNegotiating = "under negotiation"
	StateClosed      = "closed"
)

// States of one dataset of a request (the Negotiator's resource states).
const (
	DSSubmitted     = "submitted"
	DSContacted     = "representative contacted"
	DSChecking      = "checking availability"
	DSAvailable     = "available"
	DSUnavailable   = "unavailable"
	DSConditions    = "access conditions indicated"
	DSConditionsMet = "access conditions met"
	DSGranted       = "made available"
	DSRefused       = "not made available"
	DSRevoked       = "permit revoked"
)

// Decisions a representative takes on a dataset.
const (
	DecideChecking    = "checking"
	DecideAvailable   = "available"
	DecideUnavailable = "unavailable"
	DecideConditions  = "conditions"
	DecideApprove     = "approve"
	DecideDecline     = "decline"
)

// decisions maps a decision to the states it may be taken from and the
// state it leads to.
var decisions = map[string]struct {
	from []string
	to   string
}{
	DecideChecking:    {[]string{DSContacted}, DSChecking},
	DecideAvailable:   {[]string{DSContacted, DSChecking}, DSAvailable},
	DecideUnavailable: {[]string{DSContacted, DSChecking}, DSUnavailable},
	DecideConditions:  {[]string{DSContacted, DSChecking, DSAvailable}, DSConditions},
	DecideApprove:     {[]string{DSContacted, DSChecking, DSAvailable, DSConditionsMet}, DSGranted},
	DecideDecline:     {[]string{DSContacted, DSChecking, DSAvailable, DSConditions, DSConditionsMet}, DSRefused},
}

// waiting are the dataset states in which the representatives owe an
// answer (reminders and escalation).
var waiting = []string{DSContacted, DSChecking, DSAvailable, DSConditionsMet}

// final are the dataset states that end its negotiation.
var final = []string{DSUnavailable, DSGranted, DSRefused, DSRevoked}

// Limits of a request's fields.
const (
	maxTitle       = 200
	maxDescription = 10000
	maxMessage     = 10000
	maxDatasets    = 50
	maxQuery       = 32 << 10
)

// Config tunes a Service.
type Config struct {
	// RemindAfter: representatives who have not answered for this long are
	// reminded, once per period (default 72h).
	RemindAfter time.Duration
	// EscalateAfter: after this long the hub's admins are told (default 7
	// days).
	EscalateAfter time.Duration
	// MaxDays bounds a request's duration (default 365).
	MaxDays int
	// HubURL is the hub's public URL, for links in e-mails.
	HubURL string
	// DatasetExists reports whether the catalogue holds dataset at node;
	// nil accepts any well-formed name.
	DatasetExists func(ctx context.Context, node, dataset string) bool
	// Log receives failures of mail and of revocations sent to nodes
	// (never request contents); nil discards them.
	Log *slog.Logger
}

// Service keeps access requests, their negotiation, messages,
// notifications, snapshots and permits.
type Service struct {
	db      *sqldb.DB
	cfg     Config
	dir     Directory
	granter Granter
	pub     Publisher
	mail    Mailer
	key     ed25519.PrivateKey
	audit   func(actor, action, subject string, detail map[string]any) error
	now     func() time.Time
	log     *slog.Logger
}

// New migrates db and returns a Service. mail and audit may be nil (no
// e-mail; no audit records); now nil is time.Now.
func New(db *sqldb.DB, cfg Config, dir Directory, granter Granter, pub Publisher, mail Mailer,
	key ed25519.PrivateKey, audit func(actor, action, subject string, detail map[string]any) error,
	now func() time.Time) (*Service, error) {
	if db == nil || dir == nil || granter == nil || pub == nil {
		return nil, fmt.Errorf("access: database, directory, granter and publisher are required")
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("access: the hub's signing key is not an Ed25519 private key")
	}
	if cfg.RemindAfter <= 0 {
		cfg.RemindAfter = 72 * time.Hour
	}
	if cfg.EscalateAfter <= 0 {
		cfg.EscalateAfter = 7 * 24 * time.Hour
	}
	if cfg.MaxDays <= 0 {
		cfg.MaxDays = 365
	}
	cfg.HubURL = strings.TrimRight(cfg.HubURL, "/")
	if now == nil {
		now = time.Now
	}
	if audit == nil {
		audit = func(string, string, string, map[string]any) error { return nil }
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := db.Migrate(context.Background(), "access", migrations, "migrations"); err != nil {
		return nil, err
	}
	return &Service{db: db, cfg: cfg, dir: dir, granter: granter, pub: pub, mail: mail, key: key,
		audit: audit, now: now, log: log}, nil
}

// Dataset names a dataset at a node.
type Dataset struct {
	Node    string `json:"node"`
	Dataset string `json:"dataset"`
}

func (d Dataset) thread() string { return d.Node + "/" + d.Dataset }

// Input is what a researcher writes in a request.
type Input struct {
	Title       string          `json:"title"`
	Description string          `json:"description"`
	DUO         []string        `json:"duo"`
	Query       json.RawMessage `json:"query"`
	Datasets    []Dataset       `json:"datasets"`
	Operations  []permit.Op     `json:"operations"`
	Days        int             `json:"days"`
}

// DatasetState is one dataset of a request and where it stands.
type DatasetState struct {
	Node    string    `json:"node"`
	Dataset string    `json:"dataset"`
	State   string    `json:"state"`
	Message string    `json:"message,omitempty"` // the last decision's message (the conditions)
	Error   string    `json:"error,omitempty"`   // the last failed snapshot
	Since   time.Time `json:"since"`
}

// PermitView is a granted permit as a request shows it. Token is only
// given to the researcher.
type PermitView struct {
	ID         string     `json:"id"`
	Node       string     `json:"node"`
	Dataset    string     `json:"dataset"`
	Operations []string   `json:"operations"`
	Expires    time.Time  `json:"expires"`
	Token      string     `json:"token,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// Request is an access request as one party may see it.
type Request struct {
	ID               string          `json:"id"`
	Researcher       string          `json:"researcher"`
	Title            string          `json:"title"`
	Description      string          `json:"description"`
	DUO              []string        `json:"duo"`
	Query            json.RawMessage `json:"query"`
	QueryDescription string          `json:"query_description"`
	Operations       []permit.Op     `json:"operations"`
	Days             int             `json:"days"`
	State            string          `json:"state"`
	ReviewMessage    string          `json:"review_message,omitempty"`
	Snapshot         string          `json:"snapshot,omitempty"`
	Created          time.Time       `json:"created"`
	Updated          time.Time       `json:"updated"`
	Datasets         []DatasetState  `json:"datasets"`
	Permits          []PermitView    `json:"permits"`
}

func ms(t time.Time) int64     { return t.UnixMilli() }
func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }
func randomID(prefix string, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// validate checks a researcher's input and returns the query's
// canonical JSON and its description.
func (s *Service) validate(ctx context.Context, in *Input) (string, string, error) {
	in.Title = strings.TrimSpace(in.Title)
	in.Description = strings.TrimSpace(in.Description)
	switch {
	case in.Title == "":
		return "", "", fmt.Errorf("%w: title is required", ErrInvalid)
	case utf8.RuneCountInString(in.Title) > maxTitle || strings.ContainsAny(in.Title, "\r\n"):
		return "", "", fmt.Errorf("%w: title must be one line of at most %d characters", ErrInvalid, maxTitle)
	case in.Description == "":
		return "", "", fmt.Errorf("%w: description is required", ErrInvalid)
	case utf8.RuneCountInString(in.Description) > maxDescription:
		return "", "", fmt.Errorf("%w: description longer than %d characters", ErrInvalid, maxDescription)
	case in.Days < 1 || in.Days > s.cfg.MaxDays:
		return "", "", fmt.Errorf("%w: days must be 1..%d", ErrInvalid, s.cfg.MaxDays)
	case len(in.Datasets) == 0:
		return "", "", fmt.Errorf("%w: name at least one dataset", ErrInvalid)
	case len(in.Datasets) > maxDatasets:
		return "", "", fmt.Errorf("%w: at most %d datasets", ErrInvalid, maxDatasets)
	case len(in.Operations) == 0:
		return "", "", fmt.Errorf("%w: name at least one operation (view, download, process)", ErrInvalid)
	case len(in.Query) == 0:
		return "", "", fmt.Errorf("%w: query is required (a Lens AST)", ErrInvalid)
	case len(in.Query) > maxQuery:
		return "", "", fmt.Errorf("%w: query too large", ErrInvalid)
	}
	if in.DUO == nil {
		in.DUO = []string{}
	}
	for _, d := range in.DUO {
		if _, ok := duoTerm(d); !ok {
			return "", "", fmt.Errorf("%w: unknown DUO term %q (see GET /api/v1/access-requests/duo)", ErrInvalid, d)
		}
	}
	var ops []permit.Op
	for _, op := range in.Operations {
		if !permit.ValidOp(op) {
			return "", "", fmt.Errorf("%w: unknown operation %q (view, download, process)", ErrInvalid, op)
		}
		if !slices.Contains(ops, op) {
			ops = append(ops, op)
		}
	}
	in.Operations = ops
	seen := map[Dataset]bool{}
	for _, d := range in.Datasets {
		if !fed.ValidNodeID(d.Node) || d.Dataset == "" || len(d.Dataset) > 64 || strings.ContainsAny(d.Dataset, "/\\ \t\r\n") {
			return "", "", fmt.Errorf("%w: dataset %q at node %q is not a valid name", ErrInvalid, d.Dataset, d.Node)
		}
		if seen[d] {
			return "", "", fmt.Errorf("%w: dataset %s named twice", ErrInvalid, d.thread())
		}
		seen[d] = true
		if s.cfg.DatasetExists != nil && !s.cfg.DatasetExists(ctx, d.Node, d.Dataset) {
			return "", "", fmt.Errorf("%w: the catalogue has no dataset %s", ErrInvalid, d.thread())
		}
	}
	q, err := lens.Parse(in.Query)
	if err != nil {
		return "", "", fmt.Errorf("%w: query: %v", ErrInvalid, err)
	}
	b, err := json.Marshal(q)
	if err != nil {
		return "", "", fmt.Errorf("%w: query: %v", ErrInvalid, err)
	}
	return string(b), q.Describe(), nil
}

type querier interface {
	QueryRow(ctx context.Context, q string, args ...any) *sql.Row
	Query(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// load reads a request with all its datasets and permits.
func (s *Service) load(ctx context.Context, q querier, id string) (*Request, error) {
	var r Request
	var duo, ops, query string
	var created, updated int64
	err := q.QueryRow(ctx, `SELECT id, researcher, title, description, duo, query, operations, days, state, review_message, snapshot, created_at, updated_at
		FROM access_requests WHERE id = ?`, id).Scan(&r.ID, &r.Researcher, &r.Title, &r.Description, &duo, &query, &ops, &r.Days, &r.State,
		&r.ReviewMessage, &r.Snapshot, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: access request %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	r.Created, r.Updated = fromMS(created), fromMS(updated)
	r.Query = json.RawMessage(query)
	if err := json.Unmarshal([]byte(duo), &r.DUO); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(ops), &r.Operations); err != nil {
		return nil, err
	}
	if lq, err := lens.Parse(r.Query); err == nil {
		r.QueryDescription = lq.Describe()
	}
	rows, err := q.Query(ctx, `SELECT node_id, dataset_id, state, message, error, since FROM access_datasets WHERE request_id = ? ORDER BY node_id, dataset_id`, id)
	if err != nil {
		return nil, err
	}
	r.Datasets = []DatasetState{}
	for rows.Next() {
		var d DatasetState
		var since int64
		if err := rows.Scan(&d.Node, &d.Dataset, &d.State, &d.Message, &d.Error, &since); err != nil {
			rows.Close()
			return nil, err
		}
		d.Since = fromMS(since)
		r.Datasets = append(r.Datasets, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = q.Query(ctx, `SELECT id, node_id, dataset_id, operations, expires_at, token, revoked_at FROM access_permits WHERE request_id = ? ORDER BY node_id, dataset_id, id`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	r.Permits = []PermitView{}
	for rows.Next() {
		var p PermitView
		var ops string
		var exp int64
		var revoked sql.NullInt64
		if err := rows.Scan(&p.ID, &p.Node, &p.Dataset, &ops, &exp, &p.Token, &revoked); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(ops), &p.Operations); err != nil {
			return nil, err
		}
		p.Expires = fromMS(exp)
		if revoked.Valid {
			t := fromMS(revoked.Int64)
			p.RevokedAt = &t
		}
		r.Permits = append(r.Permits, p)
	}
	return &r, rows.Err()
}

// Create stores a new draft request of actor.
func (s *Service) Create(ctx context.Context, actor Person, in Input) (*Request, error) {
	if actor.ID == "" {
		return nil, fmt.Errorf("%w: log in first", ErrForbidden)
	}
	query, _, err := s.validate(ctx, &in)
	if err != nil {
		return nil, err
	}
	id := randomID("ar-", 10)
	duo, _ := json.Marshal(in.DUO)
	ops, _ := json.Marshal(in.Operations)
	now := ms(s.now())
	err = s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO access_requests (id, researcher, title, description, duo, query, operations, days, state, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, actor.ID, in.Title, in.Description, string(duo), query, string(ops), in.Days, StateDraft, now, now); err != nil {
			return err
		}
		for _, d := range in.Datasets {
			if _, err := tx.Exec(ctx, `INSERT INTO access_datasets (request_id, node_id, dataset_id, state, since) VALUES (?, ?, ?, ?, ?)`,
				id, d.Node, d.Dataset, DSSubmitted, now); err != nil {
				return err
			}
		}
		return s.audit(actor.ID, "access.create", id, map[string]any{"datasets": len(in.Datasets)})
	})
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, actor, id)
}

// Update replaces the contents of a draft or returned request of actor.
func (s *Service) Update(ctx context.Context, actor Person, id string, in Input) (*Request, error) {
	r, _, err := s.visibleRequest(ctx, actor, id)
	if err != nil {
		return nil, err
	}
	if r.Researcher != actor.ID {
		return nil, fmt.Errorf("%w: only the researcher who made the request may edit it", ErrForbidden)
	}
	query, _, err := s.validate(ctx, &in)
	if err != nil {
		return nil, err
	}
	duo, _ := json.Marshal(in.DUO)
	ops, _ := json.Marshal(in.Operations)
	now := ms(s.now())
	err = s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE access_requests SET title = ?, description = ?, duo = ?, query = ?, operations = ?, days = ?, updated_at = ?
			WHERE id = ? AND state IN (?, ?)`, in.Title, in.Description, string(duo), query, string(ops), in.Days, now, id, StateDraft, StateReturned)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return s.conflict(ctx, tx, id, "edit it")
		}
		if _, err := tx.Exec(ctx, `DELETE FROM access_datasets WHERE request_id = ?`, id); err != nil {
			return err
		}
		for _, d := range in.Datasets {
			if _, err := tx.Exec(ctx, `INSERT INTO access_datasets (request_id, node_id, dataset_id, state, since) VALUES (?, ?, ?, ?, ?)`,
				id, d.Node, d.Dataset, DSSubmitted, now); err != nil {
				return err
			}
		}
		return s.audit(actor.ID, "access.edit", id, nil)
	})
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, actor, id)
}

// conflict returns the ErrConflict of a request that is not in a state
// that allows what was asked.
func (s *Service) conflict(ctx context.Context, q querier, id, what string) error {
	var state string
	if err := q.QueryRow(ctx, `SELECT state FROM access_requests WHERE id = ?`, id).Scan(&state); err != nil {
		return err
	}
	return fmt.Errorf("%w: cannot %s: the request is %s", ErrConflict, what, state)
}

// Submit sends a draft or returned request of actor to the admins.
func (s *Service) Submit(ctx context.Context, actor Person, id string) (*Request, error) {
	r, _, err := s.visibleRequest(ctx, actor, id)
	if err != nil {
		return nil, err
	}
	if r.Researcher != actor.ID {
		return nil, fmt.Errorf("%w: only the researcher who made the request may submit it", ErrForbidden)
	}
	err = s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE access_requests SET state = ?, updated_at = ? WHERE id = ? AND state IN (?, ?)`,
			StateSubmitted, ms(s.now()), id, StateDraft, StateReturned)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return s.conflict(ctx, tx, id, "submit it")
		}
		return s.audit(actor.ID, "access.submit", id, nil)
	})
	if err != nil {
		return nil, err
	}
	admins, err := s.dir.Admins(ctx)
	if err != nil {
		s.log.Error("access: listing admins to notify", "err", err)
	}
	s.notify(ctx, actor.ID, id, admins, "Access request to review: "+r.Title,
		"A researcher submitted an access request. Check the form and approve it for negotiation, return it for changes or decline it.")
	return s.Get(ctx, actor, id)
}
