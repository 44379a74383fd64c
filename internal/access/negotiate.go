package access

// The negotiation: a hub admin's review of the form, then each dataset's
// representatives' decisions, conditions the researcher accepts, and the
// request closing when every dataset is decided.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/mosaic-imaging/mosaic/internal/sqldb"
)

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
