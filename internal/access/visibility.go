package access

// Who sees what of a request: its researcher all of it, hub admins all
// of it, a representative the request and the datasets and threads they
// represent, anyone else nothing (the request does not exist for them).

import (
	"context"
	"errors"
	"fmt"
)

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
