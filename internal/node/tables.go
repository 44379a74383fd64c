package node

import (
	"context"
	"io"
	"net/http"

	"github.com/mosaic-imaging/mosaic/internal/table"
)

// tableRoutes mounts the research tables API (contract stub).
func (n *Node) tableRoutes(route func(string, http.HandlerFunc, string)) {}

// PutTable stores a research table for dataset, replacing one of the
// same name only once the new one is whole (contract stub).
func (n *Node) PutTable(ctx context.Context, dataset, name string, r io.Reader, dict *table.Dictionary) (table.Info, error) {
	return table.Info{}, table.ErrNotImplemented
}

// Tables lists a dataset's research tables (contract stub).
func (n *Node) Tables(ctx context.Context, dataset string) ([]table.Info, error) {
	return nil, table.ErrNotImplemented
}

// SnapshotTable returns research table name of dataset as a snapshot
// sees it: a patient-linked table only the snapshot's patients' rows,
// a table without a patient column whole (contract stub).
func (n *Node) SnapshotTable(ctx context.Context, dataset, snapshot, name string) (*table.Table, error) {
	return nil, table.ErrNotImplemented
}
