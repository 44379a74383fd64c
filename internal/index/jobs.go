package index

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Job is the node's record of a processing job it was sent.
type Job struct {
	ID         string    `json:"id"`
	Researcher string    `json:"researcher"`
	Permit     string    `json:"permit"`
	Dataset    string    `json:"dataset"`
	Snapshot   string    `json:"snapshot"`
	Kind       string    `json:"kind"`
	Image      string    `json:"image"`
	State      string    `json:"state"`
	Message    string    `json:"message,omitempty"`
	ExitCode   *int      `json:"exit_code,omitempty"`
	Created    time.Time `json:"created"`
	Updated    time.Time `json:"updated"`
}

// JobOutput is what became of one output of a job: released, held (for
// a person at the node), refused, or rejected.
type JobOutput struct {
	Job     string    `json:"job"`
	Name    string    `json:"name"`
	State   string    `json:"state"`
	Reason  string    `json:"reason,omitempty"`
	Size    int64     `json:"size"`
	SHA256  string    `json:"sha256"`
	Updated time.Time `json:"updated"`
}

// PutJob records a job the node accepted.
func (s *Store) PutJob(ctx context.Context, j Job) error {
	now := s.now().UnixMilli()
	_, err := s.db.Exec(ctx, `INSERT INTO node_jobs (id, researcher, permit_id, dataset_id, snapshot_id, kind, image, state, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, j.ID, j.Researcher, j.Permit, j.Dataset, j.Snapshot, j.Kind, j.Image, j.State, now, now)
	if err != nil {
		var n int
		if s.db.QueryRow(ctx, `SELECT COUNT(*) FROM node_jobs WHERE id = ?`, j.ID).Scan(&n) == nil && n > 0 {
			return fmt.Errorf("%w: job %s", ErrExists, j.ID)
		}
	}
	return err
}

// SetJobState records a job's state, message and exit code (nil keeps
// the one recorded).
func (s *Store) SetJobState(ctx context.Context, id, state, message string, exit *int) error {
	var code any
	if exit != nil {
		code = *exit
	}
	_, err := s.db.Exec(ctx, `UPDATE node_jobs SET state = ?, message = ?, exit_code = COALESCE(?, exit_code), updated_at = ? WHERE id = ?`,
		state, message, code, s.now().UnixMilli(), id)
	return err
}

// Job returns one job's record.
func (s *Store) Job(ctx context.Context, id string) (Job, error) {
	js, err := s.jobs(ctx, `WHERE id = ?`, id)
	if err != nil {
		return Job{}, err
	}
	if len(js) == 0 {
		return Job{}, fmt.Errorf("%w: job %s", ErrNotFound, id)
	}
	return js[0], nil
}

// Jobs lists the jobs the node was sent, newest first.
func (s *Store) Jobs(ctx context.Context) ([]Job, error) {
	return s.jobs(ctx, `ORDER BY created_at DESC LIMIT 1000`)
}

func (s *Store) jobs(ctx context.Context, where string, args ...any) ([]Job, error) {
	rows, err := s.db.Query(ctx, `SELECT id, researcher, permit_id, dataset_id, snapshot_id, kind, image, state, message, exit_code, created_at, updated_at FROM node_jobs `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		var j Job
		var code sql.NullInt64
		var c, u int64
		if err := rows.Scan(&j.ID, &j.Researcher, &j.Permit, &j.Dataset, &j.Snapshot, &j.Kind, &j.Image, &j.State, &j.Message, &code, &c, &u); err != nil {
			return nil, err
		}
		if code.Valid {
			v := int(code.Int64)
			j.ExitCode = &v
		}
		j.Created, j.Updated = time.UnixMilli(c).UTC(), time.UnixMilli(u).UTC()
		out = append(out, j)
	}
	return out, rows.Err()
}

// PutJobOutput records (or updates) what became of an output.
func (s *Store) PutJobOutput(ctx context.Context, o JobOutput) error {
	return s.db.InTx(ctx, func(tx *sqldbTx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM node_job_outputs WHERE job_id = ? AND name = ?`, o.Job, o.Name); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO node_job_outputs (job_id, name, state, reason, size, sha256, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			o.Job, o.Name, o.State, o.Reason, o.Size, o.SHA256, s.now().UnixMilli())
		return err
	})
}

// JobOutputs lists what became of a job's outputs.
func (s *Store) JobOutputs(ctx context.Context, job string) ([]JobOutput, error) {
	rows, err := s.db.Query(ctx, `SELECT job_id, name, state, reason, size, sha256, updated_at FROM node_job_outputs WHERE job_id = ? ORDER BY name`, job)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []JobOutput
	for rows.Next() {
		var o JobOutput
		var u int64
		if err := rows.Scan(&o.Job, &o.Name, &o.State, &o.Reason, &o.Size, &o.SHA256, &u); err != nil {
			return nil, err
		}
		o.Updated = time.UnixMilli(u).UTC()
		out = append(out, o)
	}
	return out, rows.Err()
}

// JobOutput returns one output's record.
func (s *Store) JobOutput(ctx context.Context, job, name string) (JobOutput, error) {
	os, err := s.JobOutputs(ctx, job)
	if err != nil {
		return JobOutput{}, err
	}
	for _, o := range os {
		if o.Name == name {
			return o, nil
		}
	}
	return JobOutput{}, fmt.Errorf("%w: output %s of job %s", ErrNotFound, name, job)
}
