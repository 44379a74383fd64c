package hub_test

import (
	"context"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/hub"
)

// TestUIDatasetTables checks that a Tier 3 dataset's page lists its
// research tables (names, columns, types, whether patient-linked), and
// that a Tier 2 dataset's page shows none even if a node sent some.
func TestUIDatasetTables(t *testing.T) {
	h, srv := uiTestHub(t, hub.Config{})
	ctx := context.Background()
	tables := []fed.TableSummary{
		{Name: "clinical", PatientLinked: true, Columns: []fed.ColumnSummary{{Name: "patient_id", Type: "text"}, {Name: "stage", Type: "categorical"}, {Name: "pfs_months", Type: "numeric"}}},
		{Name: "sites", Columns: []fed.ColumnSummary{{Name: "beds", Type: "integer"}}},
	}
	for _, d := range []fed.DatasetSummary{{ID: "t3", Title: "Tier three", Licence: "CC-BY-4.0", Tier: 3, Tables: tables},
		{ID: "t2", Title: "Tier two", Licence: "CC-BY-4.0", Tier: 2, Tables: tables}} {
		if err := h.PutCatalogue(ctx, fed.Catalogue{Node: "north", Datasets: []fed.DatasetSummary{d}}); err != nil {
			t.Fatal(err)
		}
		r := uiGet(t, srv.URL+"/datasets/north/"+d.ID, "")
		if d.Tier == 3 {
			uiWant(t, r, 200, "Research tables", "<code>clinical</code>", "<code>pfs_months</code>", "categorical",
				"linked to the dataset", "<code>sites</code>", "belongs to the dataset as a whole")
		} else {
			uiWant(t, r, 200, "Tier two")
			uiWantNot(t, r, "Research tables", "pfs_months")
		}
	}
}
