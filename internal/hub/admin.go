package hub

import (
	"context"
	"os"
	"time"
)

// The hub's accounts, tokens and nodes are changed through the Hub (the
// demo, the attack harness, the API), which audits every change and makes
// it only when recorded, or through an Admin (the CLI's user, token and
// node commands, which work while a hub serves).

// AddUser creates an account with a password (12 characters or more) and
// a role (RoleAdmin or RoleResearcher).
func (h *Hub) AddUser(ctx context.Context, id, password, role string) error {
	return h.store.AddUser(ctx, id, password, role, h.recorder("hub", "user-added", id, map[string]any{"role": role}))
}

// NewUserToken creates an API token for an existing user and returns
// it; only its hash is kept.
func (h *Hub) NewUserToken(ctx context.Context, user, name string) (string, error) {
	return h.store.NewUserToken(ctx, user, name, h.recorder("hub", "token-created", user, map[string]any{"name": name}))
}

// AddNode registers a node and returns its one-time enrolment token,
// valid for ttl.
func (h *Hub) AddNode(ctx context.Context, id, title string, ttl time.Duration) (string, error) {
	return h.store.AddNode(ctx, id, title, ttl, h.recorder("hub", "node-added", id, map[string]any{"title": title}))
}

// Authenticate resolves a session or API token to its user; it fails
// with ErrAuth for secrets unknown, expired or of a disabled user.
func (h *Hub) Authenticate(ctx context.Context, secret string) (User, error) {
	return h.store.Authenticate(ctx, secret)
}

// Catalogue lists every published dataset of the nodes not removed.
func (h *Hub) Catalogue(ctx context.Context) ([]Entry, error) { return h.store.Catalogue(ctx) }

// Admin changes a hub's accounts, tokens and nodes through its state
// database alone, for the CLI's admin commands: they work while the hub
// serves (SQLite in WAL mode, or PostgreSQL), and a serving hub cuts off
// a node removed here within a second. The audit log stays with the
// serving hub, which holds it locked: Admin's changes are not in it.
type Admin struct{ st *store }

// OpenAdmin opens the state database of the hub configured by cfg (after
// Defaults and Validate), creating the data directory if needed.
func OpenAdmin(ctx context.Context, cfg Config) (*Admin, error) {
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	return &Admin{st: st}, nil
}

// Close closes the database.
func (a *Admin) Close() error { return a.st.Close() }

// AddUser creates an account, as Hub.AddUser does.
func (a *Admin) AddUser(ctx context.Context, id, password, role string) error {
	return a.st.AddUser(ctx, id, password, role, nil)
}

// NewUserToken creates an API token for an existing user.
func (a *Admin) NewUserToken(ctx context.Context, user, name string) (string, error) {
	return a.st.NewUserToken(ctx, user, name, nil)
}

// AddNode registers a node and returns its one-time enrolment token.
func (a *Admin) AddNode(ctx context.Context, id, title string, ttl time.Duration) (string, error) {
	return a.st.AddNode(ctx, id, title, ttl, nil)
}

// Nodes lists the registered nodes.
func (a *Admin) Nodes(ctx context.Context) ([]Node, error) { return a.st.Nodes(ctx) }

// RemoveNode marks a node removed: its credentials stop working at once,
// and a serving hub disconnects it.
func (a *Admin) RemoveNode(ctx context.Context, id string) error {
	return a.st.RemoveNode(ctx, id, nil)
}

// SetEmail sets a user's e-mail address (where access requests'
// notifications go) and display name.
func (h *Hub) SetEmail(ctx context.Context, user, email, name string) error {
	return h.store.SetEmail(ctx, user, email, name, h.recorder("hub", "user-email-set", user, nil))
}

// AddRepresentative makes user a representative of a dataset (or with
// AnyDataset, of every dataset of a node): they decide access requests
// for it.
func (h *Hub) AddRepresentative(ctx context.Context, user string, r Representation) error {
	return h.store.AddRepresentative(ctx, user, r, h.recorder("hub", "representative-added", user, map[string]any{"node": r.Node, "dataset": r.Dataset}))
}

// RemoveRepresentative ends a representation.
func (h *Hub) RemoveRepresentative(ctx context.Context, user string, r Representation) error {
	return h.store.RemoveRepresentative(ctx, user, r, h.recorder("hub", "representative-removed", user, map[string]any{"node": r.Node, "dataset": r.Dataset}))
}

// Represents reports whether user represents dataset at node.
func (h *Hub) Represents(ctx context.Context, user, node, dataset string) (bool, error) {
	return h.store.Represents(ctx, user, node, dataset)
}

// Representatives lists the users who represent dataset at node.
func (h *Hub) Representatives(ctx context.Context, node, dataset string) ([]Person, error) {
	return h.store.Representatives(ctx, node, dataset)
}

// Admins lists the hub's administrators.
func (h *Hub) Admins(ctx context.Context) ([]Person, error) { return h.store.Admins(ctx) }

// Person returns one user with their e-mail address.
func (h *Hub) Person(ctx context.Context, id string) (Person, error) { return h.store.Person(ctx, id) }

// SetEmail sets a user's e-mail address, as Hub.SetEmail does.
func (a *Admin) SetEmail(ctx context.Context, user, email, name string) error {
	return a.st.SetEmail(ctx, user, email, name, nil)
}

// AddRepresentative makes user a representative, as Hub.AddRepresentative does.
func (a *Admin) AddRepresentative(ctx context.Context, user string, r Representation) error {
	return a.st.AddRepresentative(ctx, user, r, nil)
}

// Representations lists what user represents.
func (a *Admin) Representations(ctx context.Context, user string) ([]Representation, error) {
	return a.st.Representations(ctx, user)
}
