package hub

import "github.com/mosaic-imaging/mosaic/internal/audit"

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
