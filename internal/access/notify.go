package access

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mosaic-imaging/mosaic/internal/sqldb"
)

// mailTimeout bounds one e-mail's delivery.
const mailTimeout = 20 * time.Second

// notify stores a notification for each person (once, never for the
// actor who caused it) and e-mails those with an address.
func (s *Service) notify(ctx context.Context, actor, request string, to []Person, subject, body string) {
	subject = cleanHeader(subject)
	if s.cfg.HubURL != "" {
		body += "\n\n" + s.cfg.HubURL + "/access/" + request
	}
	seen := map[string]bool{actor: true}
	now := ms(s.now())
	var addrs []string
	for _, p := range to {
		if seen[p.ID] || p.ID == "" {
			continue
		}
		seen[p.ID] = true
		if _, err := s.db.Exec(ctx, `INSERT INTO access_notifications (user_id, request_id, subject, body, created_at) VALUES (?, ?, ?, ?, ?)`,
			p.ID, request, subject, body, now); err != nil {
			s.log.Error("access: storing a notification", "err", err)
		}
		if p.Email != "" && !slices.Contains(addrs, p.Email) {
			addrs = append(addrs, p.Email)
		}
	}
	if s.mail == nil || len(addrs) == 0 {
		return
	}
	// One mail per recipient: no party learns who else was told.
	for _, a := range addrs {
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mailTimeout)
		if err := s.mail.Send(mctx, []string{a}, "[Mosaic] "+subject, body); err != nil {
			s.log.Error("access: sending e-mail", "request", request, "err", err)
		}
		cancel()
	}
}

// Notification is one notice to a user.
type Notification struct {
	ID      int64      `json:"id"`
	Request string     `json:"request"`
	Subject string     `json:"subject"`
	Body    string     `json:"body"`
	Created time.Time  `json:"created"`
	Read    *time.Time `json:"read,omitempty"`
}

// Notifications lists user's notifications, newest first (at most 200;
// unread only if asked).
func (s *Service) Notifications(ctx context.Context, user string, unread bool) ([]Notification, error) {
	q := `SELECT id, request_id, subject, body, created_at, read_at FROM access_notifications WHERE user_id = ?`
	if unread {
		q += ` AND read_at IS NULL`
	}
	rows, err := s.db.Query(ctx, q+` ORDER BY id DESC LIMIT 200`, user)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Notification{}
	for rows.Next() {
		var n Notification
		var c int64
		var r sql.NullInt64
		if err := rows.Scan(&n.ID, &n.Request, &n.Subject, &n.Body, &c, &r); err != nil {
			return nil, err
		}
		n.Created = fromMS(c)
		if r.Valid {
			t := fromMS(r.Int64)
			n.Read = &t
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// MarkRead marks a notification of user read.
func (s *Service) MarkRead(ctx context.Context, user string, id int64) error {
	res, err := s.db.Exec(ctx, `UPDATE access_notifications SET read_at = ? WHERE id = ? AND user_id = ? AND read_at IS NULL`, ms(s.now()), id, user)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var one int
		if err := s.db.QueryRow(ctx, `SELECT 1 FROM access_notifications WHERE id = ? AND user_id = ?`, id, user).Scan(&one); err != nil {
			return fmt.Errorf("%w: notification %d", ErrNotFound, id)
		}
	}
	return nil
}

// Message is one message of a request's thread. Thread is "" for the
// general thread (researcher and admins) or "node/dataset".
type Message struct {
	ID      int64     `json:"id"`
	Thread  string    `json:"thread"`
	Author  string    `json:"author"`
	Body    string    `json:"body"`
	Created time.Time `json:"created"`
}

// threadOK checks that thread names the general thread or a dataset of r.
func threadOK(r *Request, thread string) bool {
	if thread == "" {
		return true
	}
	node, ds, ok := strings.Cut(thread, "/")
	if !ok {
		return false
	}
	_, ok = datasetOf(r, node, ds)
	return ok
}

// Messages lists the messages of request id that actor may read: of one
// thread, or with thread "*" of every thread actor takes part in.
func (s *Service) Messages(ctx context.Context, actor Person, id, thread string) ([]Message, error) {
	r, v, err := s.visibleRequest(ctx, actor, id)
	if err != nil {
		return nil, err
	}
	if thread != "*" {
		if !threadOK(r, thread) {
			return nil, fmt.Errorf("%w: the request has no thread %q", ErrNotFound, thread)
		}
		if !v.canThread(thread) {
			return nil, fmt.Errorf("%w: you take no part in thread %q", ErrForbidden, thread)
		}
	}
	rows, err := s.db.Query(ctx, `SELECT id, thread, author, body, created_at FROM access_messages WHERE request_id = ? ORDER BY id`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Message{}
	for rows.Next() {
		var m Message
		var c int64
		if err := rows.Scan(&m.ID, &m.Thread, &m.Author, &m.Body, &c); err != nil {
			return nil, err
		}
		m.Created = fromMS(c)
		if (thread == "*" && v.canThread(m.Thread)) || m.Thread == thread {
			out = append(out, m)
		}
	}
	return out, rows.Err()
}

// Post adds a message to a thread of request id and tells the thread's
// other parties.
func (s *Service) Post(ctx context.Context, actor Person, id, thread, body string) (*Message, error) {
	r, v, err := s.visibleRequest(ctx, actor, id)
	if err != nil {
		return nil, err
	}
	if !threadOK(r, thread) {
		return nil, fmt.Errorf("%w: the request has no thread %q", ErrNotFound, thread)
	}
	if !v.canThread(thread) {
		return nil, fmt.Errorf("%w: you take no part in thread %q", ErrForbidden, thread)
	}
	body = strings.TrimSpace(body)
	if body == "" || utf8.RuneCountInString(body) > maxMessage {
		return nil, fmt.Errorf("%w: a message has 1..%d characters", ErrInvalid, maxMessage)
	}
	if r.State == StateDraft {
		return nil, fmt.Errorf("%w: submit the request before writing messages", ErrConflict)
	}
	m := Message{Thread: thread, Author: actor.ID, Body: body, Created: s.now().UTC().Truncate(time.Millisecond)}
	err = s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO access_messages (request_id, thread, author, body, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			id, thread, actor.ID, body, ms(m.Created)).Scan(&m.ID); err != nil {
			return err
		}
		return s.audit(actor.ID, "access.message", id, map[string]any{"thread": thread})
	})
	if err != nil {
		return nil, err
	}
	to := s.people(ctx, r.Researcher)
	if admins, err := s.dir.Admins(ctx); err == nil {
		to = append(to, admins...)
	}
	where := "the general thread"
	if thread != "" {
		node, ds, _ := strings.Cut(thread, "/")
		if negotiated(r.State) {
			if reps, err := s.dir.Representatives(ctx, node, ds); err == nil {
				to = append(to, reps...)
			}
		}
		where = "the thread of dataset " + thread
	}
	s.notify(ctx, actor.ID, id, to, "New message on access request "+r.Title,
		"There is a new message in "+where+" of an access request.")
	return &m, nil
}

// Tick reminds representatives of datasets that have waited on them for
// longer than RemindAfter (once per period) and tells the admins of those
// that have waited longer than EscalateAfter (once). The hub calls it
// every minute.
func (s *Service) Tick(ctx context.Context) error {
	type due struct {
		id, title, node, ds, state string
		since, reminded, escalated int64
	}
	args := []any{StateNegotiating}
	for _, w := range waiting {
		args = append(args, w)
	}
	rows, err := s.db.Query(ctx, `SELECT r.id, r.title, d.node_id, d.dataset_id, d.state, d.since, d.reminded_at, d.escalated_at
		FROM access_datasets d JOIN access_requests r ON r.id = d.request_id
		WHERE r.state = ? AND d.state IN (?, ?, ?, ?) ORDER BY r.id, d.node_id, d.dataset_id`, args...)
	if err != nil {
		return err
	}
	var all []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.id, &d.title, &d.node, &d.ds, &d.state, &d.since, &d.reminded, &d.escalated); err != nil {
			rows.Close()
			return err
		}
		all = append(all, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	now := ms(s.now())
	remind, escalate := s.cfg.RemindAfter.Milliseconds(), s.cfg.EscalateAfter.Milliseconds()
	for _, d := range all {
		waited := now - d.since
		if waited >= escalate { // once: the UPDATE only changes a row not escalated yet
			res, err := s.db.Exec(ctx, `UPDATE access_datasets SET escalated_at = ? WHERE request_id = ? AND node_id = ? AND dataset_id = ? AND state = ? AND escalated_at = 0`,
				now, d.id, d.node, d.ds, d.state)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 1 {
				admins, err := s.dir.Admins(ctx)
				if err != nil {
					return err
				}
				s.notify(ctx, "", d.id, admins, "Access request waiting on representatives: "+d.title,
					fmt.Sprintf("Dataset %s/%s of an access request has waited on its representatives for %s (it is %s).",
						d.node, d.ds, time.Duration(waited*int64(time.Millisecond)).Round(time.Hour), d.state))
			}
		}
		if waited >= remind && (d.reminded == 0 || now-d.reminded >= remind) {
			res, err := s.db.Exec(ctx, `UPDATE access_datasets SET reminded_at = ? WHERE request_id = ? AND node_id = ? AND dataset_id = ? AND state = ? AND reminded_at = ?`,
				now, d.id, d.node, d.ds, d.state, d.reminded)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 1 {
				reps, err := s.dir.Representatives(ctx, d.node, d.ds)
				if err != nil {
					return err
				}
				s.notify(ctx, "", d.id, reps, "Reminder: access request waiting for your decision: "+d.title,
					fmt.Sprintf("Dataset %s/%s, which you represent, is %s and waits for your decision.", d.node, d.ds, d.state))
			}
		}
	}
	return nil
}
