package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/mosaic-imaging/mosaic/internal/sqldb"
)

// ToolInput is a tool as registered.
type ToolInput struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Digest      string `json:"digest"`
	Description string `json:"description"`
	// Program is the program file of a process tool (optional): when
	// given, its SHA-256 must be Digest, and nodes get it with the job.
	Program []byte `json:"program,omitempty"`
}

// RegisterTool adds a tool to the catalogue, pending reviews.
func (s *Service) RegisterTool(ctx context.Context, actor Actor, in ToolInput) (*Tool, error) {
	if actor.ID == "" {
		return nil, fmt.Errorf("%w: log in first", ErrForbidden)
	}
	in.Name, in.Description = strings.TrimSpace(in.Name), strings.TrimSpace(in.Description)
	switch {
	case !nameRE.MatchString(in.Name):
		return nil, invalid("a tool's name must be 1 to 100 letters, digits, spaces, dots, dashes or underscores")
	case in.Kind != KindContainer && in.Kind != KindProcess:
		return nil, invalid("a tool's kind must be container or process")
	case !ValidDigest(in.Digest):
		return nil, invalid("a tool's digest must be sha256:<64 lower-case hex digits> (an image digest, or the SHA-256 of the program file)")
	case len(in.Description) > MaxToolFields:
		return nil, invalid("a description of at most %d bytes", MaxToolFields)
	case in.Program != nil && in.Kind != KindProcess:
		return nil, invalid("only a process tool carries a program")
	case len(in.Program) > MaxProgram:
		return nil, invalid("a program of at most %d bytes", MaxProgram)
	case in.Program != nil && Digest(in.Program) != in.Digest:
		return nil, invalid("the program's SHA-256 is %s, not the digest given", Digest(in.Program))
	}
	t := &Tool{ID: newID("tool-"), Name: in.Name, Kind: in.Kind, Digest: in.Digest, Description: in.Description, Program: in.Program,
		Submitter: actor.ID, Created: s.cfg.Now().UTC(), State: ToolPending, Reviews: []Review{}}
	err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM job_tools WHERE digest = ?`, t.Digest).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: a tool with digest %s is already in the catalogue", ErrConflict, t.Digest)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO job_tools (id, name, kind, digest, description, program, submitter, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.Name, t.Kind, t.Digest, t.Description, t.Program, t.Submitter, ms(t.Created)); err != nil {
			return err
		}
		return s.cfg.Audit(actor.ID, ActionToolRegistered, t.ID, map[string]any{"name": t.Name, "kind": t.Kind, "digest": t.Digest})
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// ReviewTool records actor's decision (approve or reject) on a tool.
// The submitter cannot review their own tool; a second review by the
// same person replaces the first.
func (s *Service) ReviewTool(ctx context.Context, actor Actor, id, decision, comment string) (*Tool, error) {
	if actor.ID == "" {
		return nil, fmt.Errorf("%w: log in first", ErrForbidden)
	}
	if decision != "approve" && decision != "reject" {
		return nil, invalid("decision must be approve or reject")
	}
	comment = strings.TrimSpace(comment)
	if len(comment) > MaxToolFields {
		return nil, invalid("a comment of at most %d bytes", MaxToolFields)
	}
	if decision == "reject" && comment == "" {
		return nil, invalid("say why in a comment when rejecting")
	}
	t, err := s.Tool(ctx, id)
	if err != nil {
		return nil, err
	}
	if t.Submitter == actor.ID {
		return nil, fmt.Errorf("%w: the person who registered a tool cannot review it", ErrForbidden)
	}
	org, err := s.cfg.Organisation(ctx, actor.ID)
	if err != nil {
		return nil, err
	}
	err = s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM job_tool_reviews WHERE tool_id = ? AND reviewer = ?`, id, actor.ID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO job_tool_reviews (tool_id, reviewer, organisation, decision, comment, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			id, actor.ID, org, decision, comment, ms(s.cfg.Now())); err != nil {
			return err
		}
		return s.cfg.Audit(actor.ID, ActionToolReviewed, id, map[string]any{"decision": decision, "organisation": org, "digest": t.Digest})
	})
	if err != nil {
		return nil, err
	}
	return s.Tool(ctx, id)
}

// Tool returns one tool with its reviews and state.
func (s *Service) Tool(ctx context.Context, id string) (*Tool, error) {
	return s.toolWhere(ctx, "id", id)
}

func (s *Service) toolByDigest(ctx context.Context, digest string) (*Tool, error) {
	return s.toolWhere(ctx, "digest", digest)
}

func (s *Service) toolWhere(ctx context.Context, col, v string) (*Tool, error) {
	t := &Tool{}
	var c int64
	err := s.db.QueryRow(ctx, `SELECT id, name, kind, digest, description, program, submitter, created_at FROM job_tools WHERE `+col+` = ?`, v).
		Scan(&t.ID, &t.Name, &t.Kind, &t.Digest, &t.Description, &t.Program, &t.Submitter, &c)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: tool %s", ErrNotFound, trunc(v))
	}
	if err != nil {
		return nil, err
	}
	t.Created = fromMS(c)
	if err := s.reviews(ctx, t); err != nil {
		return nil, err
	}
	return t, nil
}

func (s *Service) reviews(ctx context.Context, t *Tool) error {
	rows, err := s.db.Query(ctx, `SELECT reviewer, organisation, decision, comment, created_at FROM job_tool_reviews WHERE tool_id = ? ORDER BY created_at, reviewer`, t.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	t.Reviews = []Review{}
	for rows.Next() {
		var r Review
		var c int64
		if err := rows.Scan(&r.Reviewer, &r.Organisation, &r.Decision, &r.Comment, &c); err != nil {
			return err
		}
		r.Time = fromMS(c)
		t.Reviews = append(t.Reviews, r)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	t.State = ToolPending
	for _, r := range t.Reviews {
		if r.Decision == "reject" {
			t.State = ToolRejected
		}
	}
	if t.Approved(s.cfg.ToolReviews, s.cfg.ToolOrganisations) {
		t.State = ToolApproved
	}
	return nil
}

// Tools lists the catalogue (without program files).
func (s *Service) Tools(ctx context.Context) ([]*Tool, error) {
	rows, err := s.db.Query(ctx, `SELECT id FROM job_tools ORDER BY created_at DESC, id LIMIT 1000`)
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
	out := []*Tool{}
	for _, id := range ids {
		t, err := s.Tool(ctx, id)
		if err != nil {
			return nil, err
		}
		t.Program = nil
		out = append(out, t)
	}
	return out, nil
}

// ToolRequirements returns the approvals a tool needs: people and
// organisations.
func (s *Service) ToolRequirements() (reviews, organisations int) {
	return s.cfg.ToolReviews, s.cfg.ToolOrganisations
}
