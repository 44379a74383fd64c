package hub

import (
	"errors"
	"fmt"

	"github.com/mosaic-imaging/mosaic/internal/audit"
)

// auditLog is the hub's side of the audit log.
type auditLog interface {
	Append(actor, action, subject string, detail map[string]any) error
	Close() error
}

type fileAudit struct{ l *audit.Log }

func openAudit(path string) (auditLog, error) {
	l, err := audit.Open(path)
	if err != nil {
		return nil, err
	}
	return fileAudit{l}, nil
}

func (f fileAudit) Append(actor, action, subject string, detail map[string]any) error {
	_, err := f.l.Append(audit.Entry{Actor: actor, Action: action, Subject: subject, Detail: detail})
	return err
}

func (f fileAudit) Close() error { return f.l.Close() }

// ErrAudit is wrapped by the error of an action the hub did not do
// because its audit record could not be written: log-ins, searches,
// enrolments, and changes to users, tokens and nodes are done only when
// recorded. The HTTP API answers 503 Service Unavailable.
var ErrAudit = errors.New("hub: the audit log cannot be written")

// record appends an audit record; its error wraps ErrAudit.
func (h *Hub) record(actor, action, subject string, detail map[string]any) error {
	if err := h.audit.Append(actor, action, subject, detail); err != nil {
		h.log.Error("audit append failed: action refused", "action", action, "err", err)
		return fmt.Errorf("%w: %v", ErrAudit, err)
	}
	return nil
}

// recorder is record as a store's callback, to run inside the
// transaction of the change it records.
func (h *Hub) recorder(actor, action, subject string, detail map[string]any) record {
	return func() error { return h.record(actor, action, subject, detail) }
}

// note appends an audit record of something that already failed or was
// refused (a refused enrolment, a throttled log-in): there is no action
// left to stop, so a failure is only logged.
func (h *Hub) note(actor, action, subject string, detail map[string]any) {
	if err := h.audit.Append(actor, action, subject, detail); err != nil {
		h.log.Error("audit append failed", "action", action, "err", err)
	}
}
