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

// view is what one party may see of a request.
type view struct {
	owner, admin bool
	reps         map[Dataset]bool // the datasets the party represents
}

func (v view) visible() bool { return v.owner || v.admin || len(v.reps) > 0 }

// canThread reports whether the party takes part in thread ("" is the
// general thread of researcher and admins).
func (v view) canThread(thread string) bool {
	if v.owner || v.admin {
		return true
	}
	for d := range v.reps {
		if d.thread() == thread {
			return true
		}
	}
	return false
}

// negotiated reports whether the representatives have been brought in.
func negotiated(state string) bool { return state == StateNegotiating || state == StateClosed }

func (s *Service) viewOf(ctx context.Context, actor Person, r *Request) (view, error) {
	v := view{owner: actor.ID == r.Researcher, admin: actor.Role == RoleAdmin, reps: map[Dataset]bool{}}
	if negotiated(r.State) {
		for _, d := range r.Datasets {
			ok, err := s.dir.Represents(ctx, actor.ID, d.Node, d.Dataset)
			if err != nil {
				return v, err
			}
			if ok {
				v.reps[Dataset{d.Node, d.Dataset}] = true
			}
		}
	}
	return v, nil
}

// filter cuts a request down to what v may see.
func filter(r *Request, v view) *Request {
	out := *r
	if v.owner {
		return &out
	}
	out.Permits = []PermitView{}
	for _, p := range r.Permits {
		if v.admin || v.reps[Dataset{p.Node, p.Dataset}] {
			p.Token = ""
			out.Permits = append(out.Permits, p)
		}
	}
	if v.admin {
		return &out
	}
	out.Datasets = []DatasetState{}
	for _, d := range r.Datasets {
		if v.reps[Dataset{d.Node, d.Dataset}] {
			out.Datasets = append(out.Datasets, d)
		}
	}
	out.ReviewMessage = ""
	return &out
}

// visibleRequest loads id for actor; a request actor may not see is not
// found.
func (s *Service) visibleRequest(ctx context.Context, actor Person, id string) (*Request, view, error) {
	r, err := s.load(ctx, s.db, id)
	if err != nil {
		return nil, view{}, err
	}
	v, err := s.viewOf(ctx, actor, r)
	if err != nil {
		return nil, v, err
	}
	if !v.visible() {
		return nil, v, fmt.Errorf("%w: access request %s", ErrNotFound, id)
	}
	return r, v, nil
}

// Get returns request id as actor may see it.
func (s *Service) Get(ctx context.Context, actor Person, id string) (*Request, error) {
	r, v, err := s.visibleRequest(ctx, actor, id)
	if err != nil {
		return nil, err
	}
	return filter(r, v), nil
}

// List filters for List.
const (
	ListMine   = "mine"   // the actor's own requests
	ListReview = "review" // submitted requests waiting for an admin's check
	ListDecide = "decide" // requests with a dataset the actor represents
)

// List returns the requests actor may see, newest first: which is
// ListMine, ListReview, ListDecide or "" for all.
func (s *Service) List(ctx context.Context, actor Person, which string) ([]*Request, error) {
	var q string
	var args []any
	switch which {
	case ListMine:
		q, args = `SELECT id FROM access_requests WHERE researcher = ? ORDER BY created_at DESC, id`, []any{actor.ID}
	case ListReview:
		if actor.Role != RoleAdmin {
			return nil, fmt.Errorf("%w: only hub administrators review requests", ErrForbidden)
		}
		q, args = `SELECT id FROM access_requests WHERE state = ? ORDER BY created_at DESC, id`, []any{StateSubmitted}
	case ListDecide, "":
		q, args = `SELECT id FROM access_requests WHERE state <> ? ORDER BY created_at DESC, id`, []any{StateDraft}
		if which == "" {
			q, args = `SELECT id FROM access_requests ORDER BY created_at DESC, id`, nil
		}
	default:
		return nil, fmt.Errorf("%w: list %q: use mine, review or decide", ErrInvalid, which)
	}
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := []*Request{}
	for _, id := range ids {
		r, v, err := s.visibleRequest(ctx, actor, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if which == ListDecide && len(v.reps) == 0 {
			continue
		}
		out = append(out, filter(r, v))
	}
	return out, nil
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

// Review decisions of a hub admin.
const (
	ReviewApprove = "approve"
	ReviewReturn  = "return"
	ReviewDecline = "decline"
)

// Review is a hub admin's check of a submitted request's form.
func (s *Service) Review(ctx context.Context, actor Person, id, decision, message string) (*Request, error) {
	if actor.Role != RoleAdmin {
		// Others learn nothing of requests that are not theirs.
		if _, _, err := s.visibleRequest(ctx, actor, id); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: only hub administrators review requests", ErrForbidden)
	}
	r, err := s.load(ctx, s.db, id)
	if err != nil {
		return nil, err
	}
	if r.Researcher == actor.ID {
		// Separation of duties: nobody checks their own request.
		return nil, fmt.Errorf("%w: another administrator reviews your own request", ErrForbidden)
	}
	message = strings.TrimSpace(message)
	if utf8.RuneCountInString(message) > maxMessage {
		return nil, fmt.Errorf("%w: message longer than %d characters", ErrInvalid, maxMessage)
	}
	var to string
	switch decision {
	case ReviewApprove:
		to = StateNegotiating
	case ReviewReturn:
		to = StateReturned
		if message == "" {
			return nil, fmt.Errorf("%w: say what to change in message", ErrInvalid)
		}
	case ReviewDecline:
		to = StateDeclined
	default:
		return nil, fmt.Errorf("%w: decision %q: use approve, return or decline", ErrInvalid, decision)
	}
	now := ms(s.now())
	err = s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE access_requests SET state = ?, review_message = ?, updated_at = ? WHERE id = ? AND state = ?`,
			to, message, now, id, StateSubmitted)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return s.conflict(ctx, tx, id, "review it")
		}
		if to == StateNegotiating {
			if _, err := tx.Exec(ctx, `UPDATE access_datasets SET state = ?, since = ?, reminded_at = 0, escalated_at = 0 WHERE request_id = ?`,
				DSContacted, now, id); err != nil {
				return err
			}
		}
		return s.audit(actor.ID, "access.review", id, map[string]any{"decision": decision})
	})
	if err != nil {
		return nil, err
	}
	researcher := s.people(ctx, r.Researcher)
	switch to {
	case StateNegotiating:
		for _, d := range r.Datasets {
			reps, err := s.dir.Representatives(ctx, d.Node, d.Dataset)
			if err != nil {
				s.log.Error("access: listing representatives to notify", "err", err)
				continue
			}
			name := d.Node + "/" + d.Dataset
			s.notify(ctx, actor.ID, id, reps, "Access request for "+name+": "+r.Title,
				"An access request names dataset "+name+", which you represent. Please decide on it.")
		}
		s.notify(ctx, actor.ID, id, researcher, "Access request under negotiation: "+r.Title,
			"Your access request passed the hub's check; each dataset's representatives now decide on it.")
	case StateReturned:
		s.notify(ctx, actor.ID, id, researcher, "Access request returned for changes: "+r.Title,
			"The hub's administrators returned your access request for changes:\n\n"+message)
	case StateDeclined:
		s.notify(ctx, actor.ID, id, researcher, "Access request declined: "+r.Title,
			"The hub's administrators declined your access request.\n\n"+message)
	}
	return s.Get(ctx, actor, id)
}

// people resolves user ids, skipping unknown ones.
func (s *Service) people(ctx context.Context, ids ...string) []Person {
	var out []Person
	for _, id := range ids {
		p, err := s.dir.Person(ctx, id)
		if err != nil {
			s.log.Warn("access: user to notify not found", "user", id)
			continue
		}
		out = append(out, p)
	}
	return out
}

// datasetOf finds the dataset of r.
func datasetOf(r *Request, node, dataset string) (DatasetState, bool) {
	for _, d := range r.Datasets {
		if d.Node == node && d.Dataset == dataset {
			return d, true
		}
	}
	return DatasetState{}, false
}

// representedDataset loads the request and checks that actor represents
// the dataset; a request the actor may not see is not found.
func (s *Service) representedDataset(ctx context.Context, actor Person, id, node, dataset string) (*Request, DatasetState, error) {
	r, _, err := s.visibleRequest(ctx, actor, id)
	if err != nil {
		return nil, DatasetState{}, err
	}
	d, ok := datasetOf(r, node, dataset)
	if !ok {
		return nil, d, fmt.Errorf("%w: the request names no dataset %s/%s", ErrNotFound, node, dataset)
	}
	ok, err = s.dir.Represents(ctx, actor.ID, node, dataset)
	if err != nil {
		return nil, d, err
	}
	if !ok {
		return nil, d, fmt.Errorf("%w: only a representative of %s/%s decides for it", ErrForbidden, node, dataset)
	}
	if r.Researcher == actor.ID {
		// Separation of duties: a representative who asks for their own
		// dataset's data is decided for by another representative.
		return nil, d, fmt.Errorf("%w: another representative of %s/%s decides on your own request", ErrForbidden, node, dataset)
	}
	if !negotiated(r.State) {
		return nil, d, fmt.Errorf("%w: the request is %s", ErrConflict, r.State)
	}
	return r, d, nil
}

// Decide is a representative's decision on one dataset of a request.
func (s *Service) Decide(ctx context.Context, actor Person, id, node, dataset, decision, message string) (*Request, error) {
	r, d, err := s.representedDataset(ctx, actor, id, node, dataset)
	if err != nil {
		return nil, err
	}
	rule, ok := decisions[decision]
	if !ok {
		return nil, fmt.Errorf("%w: decision %q: use approve, decline, conditions, checking, available or unavailable", ErrInvalid, decision)
	}
	message = strings.TrimSpace(message)
	if utf8.RuneCountInString(message) > maxMessage {
		return nil, fmt.Errorf("%w: message longer than %d characters", ErrInvalid, maxMessage)
	}
	if decision == DecideConditions && message == "" {
		return nil, fmt.Errorf("%w: state the access conditions in message", ErrInvalid)
	}
	if !slices.Contains(rule.from, d.State) {
		return nil, fmt.Errorf("%w: cannot %s dataset %s/%s: it is %s", ErrConflict, decision, node, dataset, d.State)
	}
	var grant func(tx *sqldb.Tx) error
	if decision == DecideApprove {
		grant, err = s.snapshot(ctx, r, d)
		if err != nil {
			return nil, err
		}
	}
	err = s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if err := s.move(ctx, tx, id, d, rule.to, message); err != nil {
			return err
		}
		if grant != nil {
			if err := grant(tx); err != nil {
				return err
			}
		}
		if err := s.closeIfDone(ctx, tx, id); err != nil {
			return err
		}
		return s.audit(actor.ID, "access.decide", id, map[string]any{"node": node, "dataset": dataset, "decision": decision})
	})
	if err != nil {
		return nil, err
	}
	to := s.people(ctx, r.Researcher)
	if reps, err := s.dir.Representatives(ctx, node, dataset); err == nil {
		to = append(to, reps...)
	}
	body := fmt.Sprintf("Dataset %s of the access request is now: %s.", d.Node+"/"+d.Dataset, rule.to)
	if message != "" {
		body += "\n\n" + message
	}
	s.notify(ctx, actor.ID, id, to, "Access request "+r.Title+": "+d.Node+"/"+d.Dataset+" "+rule.to, body)
	return s.Get(ctx, actor, id)
}

// move changes a dataset's state from the state d holds; another change
// in between is a conflict.
func (s *Service) move(ctx context.Context, tx *sqldb.Tx, id string, d DatasetState, to, message string) error {
	res, err := tx.Exec(ctx, `UPDATE access_datasets SET state = ?, message = ?, error = '', since = ?, reminded_at = 0, escalated_at = 0
		WHERE request_id = ? AND node_id = ? AND dataset_id = ? AND state = ?`, to, message, ms(s.now()), id, d.Node, d.Dataset, d.State)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var state string
		if err := tx.QueryRow(ctx, `SELECT state FROM access_datasets WHERE request_id = ? AND node_id = ? AND dataset_id = ?`, id, d.Node, d.Dataset).Scan(&state); err != nil {
			return err
		}
		return fmt.Errorf("%w: dataset %s/%s changed meanwhile: it is %s", ErrConflict, d.Node, d.Dataset, state)
	}
	return nil
}

// closeIfDone closes a request under negotiation whose datasets are all
// decided.
func (s *Service) closeIfDone(ctx context.Context, tx *sqldb.Tx, id string) error {
	rows, err := tx.Query(ctx, `SELECT state FROM access_datasets WHERE request_id = ?`, id)
	if err != nil {
		return err
	}
	open := false
	for rows.Next() {
		var st string
		if err := rows.Scan(&st); err != nil {
			rows.Close()
			return err
		}
		if !slices.Contains(final, st) {
			open = true
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil || open {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE access_requests SET state = ?, updated_at = ? WHERE id = ? AND state = ?`, StateClosed, ms(s.now()), id, StateNegotiating)
	return err
}

// AcceptConditions is the researcher's acceptance of a dataset's access
// conditions.
func (s *Service) AcceptConditions(ctx context.Context, actor Person, id, node, dataset string) (*Request, error) {
	r, _, err := s.visibleRequest(ctx, actor, id)
	if err != nil {
		return nil, err
	}
	if r.Researcher != actor.ID {
		return nil, fmt.Errorf("%w: only the researcher who made the request accepts its conditions", ErrForbidden)
	}
	d, ok := datasetOf(r, node, dataset)
	if !ok {
		return nil, fmt.Errorf("%w: the request names no dataset %s/%s", ErrNotFound, node, dataset)
	}
	if d.State != DSConditions || r.State != StateNegotiating {
		return nil, fmt.Errorf("%w: no conditions to accept: dataset %s/%s is %s", ErrConflict, node, dataset, d.State)
	}
	err = s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if err := s.move(ctx, tx, id, d, DSConditionsMet, d.Message); err != nil {
			return err
		}
		return s.audit(actor.ID, "access.accept-conditions", id, map[string]any{"node": node, "dataset": dataset})
	})
	if err != nil {
		return nil, err
	}
	reps, err := s.dir.Representatives(ctx, node, dataset)
	if err != nil {
		s.log.Error("access: listing representatives to notify", "err", err)
	}
	s.notify(ctx, actor.ID, id, reps, "Access conditions accepted: "+r.Title,
		"The researcher accepted the access conditions of dataset "+d.Node+"/"+d.Dataset+". Please decide on it.")
	return s.Get(ctx, actor, id)
}
