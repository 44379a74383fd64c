package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/mosaic-imaging/mosaic/internal/blobstore"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/table"
)

// ErrBadTable is wrapped by PutTable's errors about its input (a bad
// name or dictionary, patients the dataset does not hold); a bad row is a
// *table.RowError.
var ErrBadTable = errors.New("research table")

// MaxTableBytes caps one research table's CSV.
const MaxTableBytes = table.DefaultMaxBytes

// DictionaryHeader carries a table's data dictionary as JSON in PUT
// /api/v1/datasets/{dataset}/tables/{name}.
const DictionaryHeader = "Mosaic-Table-Dictionary"

// PutTable stores a research table for dataset, replacing one of the
// same name only once the new one is whole: the CSV is read and checked
// in full, its encoded form stored as a blob and made durable, then the
// index row replaced in one transaction. A patient column (named by
// dict) must hold patients of the dataset: values that are already its
// pseudonyms are kept, others are pseudonymised with the node's key as
// the clinical import does and must then be its patients; any other
// value fails the import with their count and the first line.
func (n *Node) PutTable(ctx context.Context, dataset, name string, r io.Reader, dict *table.Dictionary) (table.Info, error) {
	info := table.Info{Dataset: dataset, Name: name}
	if !table.ValidName(name) {
		return info, fmt.Errorf("%w: a table's name is 1 to 64 letters, digits, dashes and underscores, starting with a letter", ErrBadTable)
	}
	if _, err := n.ix.Dataset(ctx, dataset); err != nil {
		return info, err
	}
	tb, err := table.ReadCSV(r, dict, table.Limits{MaxBytes: MaxTableBytes})
	if err != nil {
		return info, err
	}
	if tb.Schema.Patient != "" {
		if err := n.linkPatients(ctx, dataset, tb); err != nil {
			return info, err
		}
	}
	w, err := n.blobs.Create(ctx)
	if err != nil {
		return info, fmt.Errorf("blob store: %w", err)
	}
	defer w.Abort()
	h := sha256.New()
	if err := tb.Encode(io.MultiWriter(w, h)); err != nil {
		return info, fmt.Errorf("blob store: %w", err)
	}
	ref, size, _, err := w.Commit()
	if err != nil {
		return info, fmt.Errorf("blob store: %w", err)
	}
	if err := n.blobs.Sync(ctx); err != nil {
		return info, fmt.Errorf("blob store: %w", err)
	}
	schema, _ := json.Marshal(tb.Schema)
	info.Schema, info.Rows, info.Digest = tb.Schema, tb.Rows(), hex.EncodeToString(h.Sum(nil))
	old, replaced, err := n.ix.PutResearchTable(ctx, index.ResearchTable{Dataset: dataset, Name: name, Schema: schema, Rows: tb.Rows(),
		Digest: info.Digest, BlobKey: string(ref.Key), BlobLoc: string(ref.Loc), Size: size})
	if err != nil {
		n.dropTableBlob(ctx, ref)
		return info, err
	}
	if replaced {
		n.dropTableBlob(ctx, blobRef(old.BlobKey, old.BlobLoc))
	}
	n.log.Info("research table stored", "dataset", dataset, "table", name, "rows", tb.Rows(), "columns", len(tb.Schema.Columns))
	return info, nil
}

// dropTableBlob deletes a table's blob that no row refers to any more
// (what is left, gc removes).
func (n *Node) dropTableBlob(ctx context.Context, ref blobstore.Ref) {
	ctx = context.WithoutCancel(ctx)
	held, err := n.ix.HasBlob(ctx, string(ref.Key), string(ref.Loc))
	if err != nil || held {
		return
	}
	if err := n.blobs.Delete(ctx, ref); err != nil {
		n.log.Warn("could not delete a replaced table's blob; gc will", "err", err)
	}
}

// linkPatients turns the patient column into the dataset's pseudonyms.
func (n *Node) linkPatients(ctx context.Context, dataset string, tb *table.Table) error {
	known, err := n.ix.DatasetPatients(ctx, dataset)
	if err != nil {
		return err
	}
	ids := tb.Patients()
	unknown, first := 0, 0
	for i, v := range ids {
		if known[v] {
			continue
		}
		if p := n.eng.PatientPseudonym(v, ""); p != "" && known[p] {
			ids[i] = p
			continue
		}
		if unknown == 0 {
			first = tb.Line(i)
		}
		unknown++
	}
	if unknown > 0 {
		return &table.RowError{Line: first, Column: tb.Schema.Patient,
			Msg: fmt.Sprintf("%d rows name no patient of dataset %s (neither a pseudonym of it nor an ID whose pseudonym is; a missing patient counts too); the first is on this line", unknown, dataset)}
	}
	return nil
}

// DatasetPatients lists a dataset's patient pseudonyms (of its images
// and its clinical rows), sorted.
func (n *Node) DatasetPatients(ctx context.Context, dataset string) ([]string, error) {
	m, err := n.ix.DatasetPatients(ctx, dataset)
	if err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(m)), nil
}

// Tables lists a dataset's research tables.
func (n *Node) Tables(ctx context.Context, dataset string) ([]table.Info, error) {
	if _, err := n.ix.Dataset(ctx, dataset); err != nil {
		return nil, err
	}
	rows, err := n.ix.ResearchTables(ctx, dataset)
	if err != nil {
		return nil, err
	}
	out := make([]table.Info, 0, len(rows))
	for _, r := range rows {
		info, err := infoOf(r)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

func infoOf(r index.ResearchTable) (table.Info, error) {
	info := table.Info{Dataset: r.Dataset, Name: r.Name, Rows: r.Rows, Digest: r.Digest}
	if err := json.Unmarshal(r.Schema, &info.Schema); err != nil {
		return info, fmt.Errorf("research table %s of dataset %s: schema in the index unreadable: %w", r.Name, r.Dataset, err)
	}
	return info, nil
}

// Table reads a stored research table whole, checking its digest.
func (n *Node) Table(ctx context.Context, dataset, name string) (*table.Table, table.Info, error) {
	row, err := n.ix.GetResearchTable(ctx, dataset, name)
	if err != nil {
		return nil, table.Info{}, err
	}
	info, err := infoOf(row)
	if err != nil {
		return nil, info, err
	}
	br, err := n.blobs.Open(ctx, blobRef(row.BlobKey, row.BlobLoc))
	if err != nil {
		return nil, info, fmt.Errorf("research table %s of dataset %s: %w", name, dataset, err)
	}
	defer br.Close()
	h := sha256.New()
	tb, err := table.Decode(io.TeeReader(br, h))
	if err != nil {
		return nil, info, fmt.Errorf("research table %s of dataset %s: %w", name, dataset, err)
	}
	if hex.EncodeToString(h.Sum(nil)) != row.Digest {
		return nil, info, fmt.Errorf("research table %s of dataset %s: the stored table does not match its digest", name, dataset)
	}
	return tb, info, nil
}

// DeleteTable removes a research table.
func (n *Node) DeleteTable(ctx context.Context, dataset, name string) error {
	row, err := n.ix.DeleteResearchTable(ctx, dataset, name)
	if err != nil {
		return err
	}
	n.dropTableBlob(ctx, blobRef(row.BlobKey, row.BlobLoc))
	n.log.Info("research table deleted", "dataset", dataset, "table", name)
	return nil
}

// SnapshotTable returns research table name of dataset as a snapshot
// sees it: a patient-linked table only the snapshot's patients' rows,
// a table without a patient column whole. ErrNotFound (index) when the
// snapshot or the table does not exist.
func (n *Node) SnapshotTable(ctx context.Context, dataset, snapshot, name string) (*table.Table, error) {
	if _, err := n.ix.Snapshot(ctx, snapshot, dataset); err != nil {
		return nil, err
	}
	tb, _, err := n.Table(ctx, dataset, name)
	if err != nil {
		return nil, err
	}
	if tb.Schema.Patient == "" {
		return tb, nil
	}
	members, err := n.ix.SnapshotStudies(ctx, snapshot, dataset)
	if err != nil {
		return nil, err
	}
	in := map[string]bool{}
	for _, m := range members {
		in[m.Patient] = true
	}
	var rows []int
	for i, p := range tb.Patients() {
		if in[p] {
			rows = append(rows, i)
		}
	}
	return tb.Select(rows), nil
}

// TableSummaries lists a dataset's tables as the catalogue shows them:
// names, column names and types, whether patient-linked; never levels
// or values.
func (n *Node) TableSummaries(ctx context.Context, dataset string) ([]fed.TableSummary, error) {
	infos, err := n.Tables(ctx, dataset)
	if err != nil {
		return nil, err
	}
	var out []fed.TableSummary
	for _, in := range infos {
		s := fed.TableSummary{Name: in.Name, PatientLinked: in.Schema.Patient != "", Columns: make([]fed.ColumnSummary, len(in.Schema.Columns))}
		for i, c := range in.Schema.Columns {
			s.Columns[i] = fed.ColumnSummary{Name: c.Name, Type: string(c.Type)}
		}
		out = append(out, s)
	}
	return out, nil
}

// tableRoutes mounts the research tables API.
func (n *Node) tableRoutes(route func(string, http.HandlerFunc, string)) {
	route("PUT /api/v1/datasets/{dataset}/tables/{name}", n.putTable, index.ScopeWrite)
	route("GET /api/v1/datasets/{dataset}/tables", n.listTables, index.ScopeRead)
	route("GET /api/v1/datasets/{dataset}/tables/{name}", n.getTable, index.ScopeRead)
	route("DELETE /api/v1/datasets/{dataset}/tables/{name}", n.deleteTable, index.ScopeAdmin)
}

// DictionaryFromQuery reads a data dictionary from query parameters:
// patient=COL and type.COL=TYPE (nil when there are none).
func DictionaryFromQuery(q map[string][]string) *table.Dictionary {
	var d *table.Dictionary
	get := func() *table.Dictionary {
		if d == nil {
			d = &table.Dictionary{Columns: map[string]table.Type{}}
		}
		return d
	}
	for k, v := range q {
		if len(v) == 0 {
			continue
		}
		switch {
		case k == "patient":
			get().Patient = v[0]
		case strings.HasPrefix(k, "type."):
			get().Columns[strings.TrimPrefix(k, "type.")] = table.Type(v[0])
		}
	}
	return d
}

func (n *Node) putTable(w http.ResponseWriter, r *http.Request) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "text/csv" {
		apiError(w, http.StatusUnsupportedMediaType, "send the table as CSV with Content-Type: text/csv")
		return
	}
	dict := DictionaryFromQuery(r.URL.Query())
	if h := r.Header.Get(DictionaryHeader); h != "" {
		if dict != nil {
			apiError(w, http.StatusBadRequest, "give the dictionary either as query parameters or in the "+DictionaryHeader+" header, not both")
			return
		}
		dict = &table.Dictionary{}
		dec := json.NewDecoder(strings.NewReader(h))
		dec.DisallowUnknownFields()
		if err := dec.Decode(dict); err != nil {
			apiError(w, http.StatusBadRequest, DictionaryHeader+": not a dictionary: "+err.Error())
			return
		}
	}
	if err := dict.Check(); err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	body := http.MaxBytesReader(w, r.Body, MaxTableBytes)
	_, existed := n.ix.GetResearchTable(r.Context(), r.PathValue("dataset"), r.PathValue("name"))
	info, err := n.PutTable(r.Context(), r.PathValue("dataset"), r.PathValue("name"), body, dict)
	if err != nil {
		n.tableError(w, err)
		return
	}
	status := http.StatusCreated
	if existed == nil {
		status = http.StatusOK
	}
	writeJSON(w, status, tableView(info, true))
}

// tableView is a table as the API shows it; levels only when asked.
func tableView(info table.Info, levels bool) table.Info {
	if !levels {
		cols := make([]table.Column, len(info.Schema.Columns))
		for i, c := range info.Schema.Columns {
			cols[i] = table.Column{Name: c.Name, Type: c.Type}
		}
		info.Schema.Columns = cols
	}
	return info
}

func (n *Node) tableError(w http.ResponseWriter, err error) {
	var re *table.RowError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &re):
		body := map[string]any{"error": re.Error(), "line": re.Line}
		if re.Column != "" {
			body["column"] = re.Column
		}
		writeJSON(w, http.StatusBadRequest, body)
	case errors.As(err, &mbe):
		apiError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the table is larger than the node's limit of %d bytes", mbe.Limit))
	case errors.Is(err, ErrBadTable):
		apiError(w, http.StatusBadRequest, err.Error())
	default:
		n.storeError(w, err)
	}
}

func (n *Node) listTables(w http.ResponseWriter, r *http.Request) {
	infos, err := n.Tables(r.Context(), r.PathValue("dataset"))
	if err != nil {
		n.storeError(w, err)
		return
	}
	for i := range infos {
		infos[i] = tableView(infos[i], false)
	}
	writeJSON(w, http.StatusOK, map[string]any{"tables": infos})
}

func (n *Node) getTable(w http.ResponseWriter, r *http.Request) {
	row, err := n.ix.GetResearchTable(r.Context(), r.PathValue("dataset"), r.PathValue("name"))
	if err != nil {
		n.storeError(w, err)
		return
	}
	info, err := infoOf(row)
	if err != nil {
		n.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, tableView(info, true))
}

func (n *Node) deleteTable(w http.ResponseWriter, r *http.Request) {
	if err := n.DeleteTable(r.Context(), r.PathValue("dataset"), r.PathValue("name")); err != nil {
		n.storeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
