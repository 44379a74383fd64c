package hub

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// A cohort snapshot's public landing page: what a citation of the
// snapshot id leads to. It shows the query (as described in words), when
// the snapshot was made, and per dataset the node's keyed digest of its
// member list (none under the node's floor) and the counts after the
// node's disclosure control; never a member. The
// snapshots hook (package access keeps them) supplies it.

// SnapshotView is a snapshot as its landing page shows it.
type SnapshotView struct {
	ID string
	// Title is the title of the project the snapshot was made for.
	Title string
	// Query is the request's query described in words.
	Query    string
	Created  time.Time
	Datasets []SnapshotDataset
}

// SnapshotDataset is one dataset's part in a snapshot, as its node
// answered: the keyed digest of its member list (empty, withheld, when
// the counts are under its floor) and its counts after its disclosure
// control, zero under its floor.
type SnapshotDataset struct {
	Node, Dataset string
	// Title is the dataset's title in the catalogue, if known.
	Title    string
	Digest   string
	Subjects int
	Studies  int
	Floor    int
	Created  time.Time
}

// SetSnapshots sets the hook the landing pages read snapshots from: an
// error wrapping ErrNotFound for an unknown id. Without it every
// snapshot is unknown.
func (h *Hub) SetSnapshots(fn func(ctx context.Context, id string) (SnapshotView, error)) {
	h.acc.mu.Lock()
	h.acc.snapshots = fn
	h.acc.mu.Unlock()
}

// snapshotID is the shape of a snapshot id in a URL.
var snapshotID = permitID

func (h *Hub) uiSnapshot(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	h.acc.mu.Lock()
	fn := h.acc.snapshots
	h.acc.mu.Unlock()
	notFound := func() {
		h.uiMessage(w, r, http.StatusNotFound, "Snapshot not found", "No cohort snapshot has this id. Check the citation: snapshot ids are made by the hub when a dataset is made available to a researcher.")
	}
	if fn == nil || !snapshotID.MatchString(id) {
		notFound()
		return
	}
	v, err := fn(r.Context(), id)
	if errors.Is(err, ErrNotFound) {
		notFound()
		return
	}
	if err != nil {
		h.uiInternalError(w, r, "snapshot", err)
		return
	}
	h.uiRender(w, r, http.StatusOK, "snapshot", uiPage{Title: "Cohort snapshot " + v.ID, Body: v})
}
