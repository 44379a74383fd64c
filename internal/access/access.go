// Package access is the road from a federated count to data: access
// requests with the lifecycle of the BBMRI-ERIC Negotiator (a hub
// admin's check of the form, then each dataset decided on its own by its
// representatives), messages threaded per request and dataset that each
// party sees only where it concerns them, notifications in the web pages
// and by e-mail with reminders and escalation, cohort snapshots recorded
// when a dataset is made available, and the permits the hub signs for
// them, with their revocation.
//
// The package keeps its state in the hub's database (its own
// migrations) and reaches the rest of the hub only through the
// interfaces below, which the hub implements: Directory (who is who),
// Granter (a node's snapshot), Publisher (revocations to nodes) and
// Mailer (e-mail).
package access

import (
	"context"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/fed"
)

// Person is a user as access requests see them.
type Person struct {
	ID    string
	Role  string // "admin", "researcher" or "representative"
	Email string
	Name  string
}

// Directory answers who is who; the hub implements it with its users.
type Directory interface {
	Person(ctx context.Context, id string) (Person, error)
	// Represents reports whether user represents dataset at node.
	Represents(ctx context.Context, user, node, dataset string) (bool, error)
	// Representatives lists who represents dataset at node.
	Representatives(ctx context.Context, node, dataset string) ([]Person, error)
	// Admins lists the hub's administrators.
	Admins(ctx context.Context) ([]Person, error)
}

// Granter asks a node to freeze a request's cohort in one dataset; the
// hub implements it by sending a signed fed.TaskSnapshot and waiting for
// the node's signed answer.
type Granter interface {
	Snapshot(ctx context.Context, node string, body fed.SnapshotBody) (fed.SnapshotAnswer, error)
}

// Publisher tells nodes of revoked permits; the hub implements it by
// sending fed.TaskRevoke to the node at once.
type Publisher interface {
	Revoked(ctx context.Context, node string, r fed.Revocation) error
}

// Mailer sends one e-mail.
type Mailer interface {
	Send(ctx context.Context, to []string, subject, body string) error
}

// PermitRecord is a permit as the hub keeps it (Token is the compact
// JWS the node verifies).
type PermitRecord struct {
	ID         string
	Request    string
	Researcher string
	Node       string
	Dataset    string
	Snapshot   string
	Operations []string
	Expires    time.Time
	Token      string
	RevokedAt  *time.Time
}
