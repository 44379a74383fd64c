package hub

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Organisations of hub users: a tool of the catalogue is approved by
// people of different organisations (jobs.Tool.Approved).

// organisation returns a user's organisation ("" when none is set or
// the user is unknown).
func (s *store) organisation(ctx context.Context, user string) (string, error) {
	var org string
	err := s.db.QueryRow(ctx, `SELECT organisation FROM users WHERE id = ?`, user).Scan(&org)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return org, err
}

// setOrganisation sets a user's organisation.
func (s *store) setOrganisation(ctx context.Context, user, org string) error {
	org = strings.TrimSpace(org)
	if len(org) > 200 || strings.ContainsAny(org, "\x00\n\r") {
		return fmt.Errorf("%w: an organisation of at most 200 characters on one line", ErrInvalid)
	}
	res, err := s.db.Exec(ctx, `UPDATE users SET organisation = ? WHERE id = ?`, org, user)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: user %s", ErrNotFound, user)
	}
	return nil
}

// Organisation returns the organisation of a hub user ("" when none is
// set).
func (h *Hub) Organisation(ctx context.Context, user string) (string, error) {
	return h.store.organisation(ctx, user)
}

// SetOrganisation sets the organisation of a hub user, recorded in the
// audit log.
func (h *Hub) SetOrganisation(ctx context.Context, user, org string) error {
	if err := h.store.setOrganisation(ctx, user, org); err != nil {
		return err
	}
	return h.record("admin", "user-organisation", user, map[string]any{"organisation": strings.TrimSpace(org)})
}

// SetOrganisation sets a user's organisation, as Hub.SetOrganisation
// does (without the audit record: the serving hub holds the log).
func (a *Admin) SetOrganisation(ctx context.Context, user, org string) error {
	return a.st.setOrganisation(ctx, user, org)
}
