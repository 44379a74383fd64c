package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Instance is one stored, de-identified DICOM object as the index records
// it: the attributes DICOMweb matches and returns at each level, where
// its bytes are, and its DICOM JSON metadata (bulk data left out).
type Instance struct {
	Dataset string

	PatientID        string
	PatientName      string
	PatientBirthDate string
	PatientSex       string

	StudyUID           string
	StudyDate          string
	StudyTime          string
	AccessionNumber    string
	StudyID            string
	StudyDescription   string
	ReferringPhysician string
	PatientAge         string

	SeriesUID         string
	Modality          string
	SeriesNumber      *int
	SeriesDescription string
	BodyPart          string
	Manufacturer      string
	ModelName         string
	SeriesDate        string
	PPSStartDate      string
	PPSStartTime      string

	SOPUID          string
	SOPClassUID     string
	InstanceNumber  *int
	TransferSyntax  string
	Rows, Columns   int
	Frames          int
	BitsAllocated   int
	SamplesPerPixel int

	BlobKey string
	// BlobLoc is where the blob store put the blob, for stores that
	// choose (packs); empty otherwise.
	BlobLoc string
	Size    int64
	// PixelOffset and PixelLength locate native pixel data in the blob
	// (-1 when the object has none or it is encapsulated).
	PixelOffset, PixelLength int64
	// Meta is the instance's DICOM JSON object, bulk data as URIs.
	Meta []byte
}

// PutStatus is what became of one instance offered to PutInstances.
type PutStatus int

// The outcomes of PutInstances.
const (
	Stored    PutStatus = iota // new, now indexed
	Duplicate                  // the same object was already held: nothing changed
	Conflict                   // the SOP Instance UID is held with other content: not stored
)

func (p PutStatus) String() string {
	return [...]string{"stored", "duplicate", "conflict"}[p]
}

// PutInstances indexes a batch of instances in one transaction, so one
// commit (and one sync of the database) serves the whole batch. The blobs
// must already be durable. The result has one status per instance.
func (s *Store) PutInstances(ctx context.Context, batch []Instance) ([]PutStatus, error) {
	out := make([]PutStatus, len(batch))
	if len(batch) == 0 {
		return out, nil
	}
	for i := range batch {
		if err := batch[i].validate(); err != nil {
			return nil, err
		}
	}
	err := s.db.InTx(ctx, func(tx *sqldbTx) error {
		p := putter{ctx: ctx, tx: tx, now: s.now().UnixMilli(),
			patients: map[[2]string]int64{}, studies: map[[2]string]*studyState{}, series: map[[2]string]*seriesState{}}
		datasets := map[string]bool{}
		for i := range batch {
			st, err := p.put(&batch[i])
			if err != nil {
				return err
			}
			out[i] = st
			if st == Stored {
				datasets[batch[i].Dataset] = true
			}
		}
		if err := p.flush(); err != nil {
			return err
		}
		for d := range datasets {
			if _, err := tx.Exec(ctx, bumpChanged, p.now, p.now, d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (in *Instance) validate() error {
	switch {
	case in.Dataset == "":
		return fmt.Errorf("%w: instance without dataset", ErrInvalid)
	case in.SOPUID == "" || in.SeriesUID == "" || in.StudyUID == "":
		return fmt.Errorf("%w: instance without SOP, series or study UID", ErrInvalid)
	case in.BlobKey == "":
		return fmt.Errorf("%w: instance without blob", ErrInvalid)
	}
	return nil
}

type studyState struct {
	pk         int64
	modalities []string
	dirty      bool
	series     int
	instances  int
	first      sql.NullInt64
}

type seriesState struct {
	pk        int64
	instances int
	first     sql.NullInt64
}

type putter struct {
	ctx      context.Context
	tx       *sqldbTx
	now      int64
	patients map[[2]string]int64
	studies  map[[2]string]*studyState
	series   map[[2]string]*seriesState
}

// The statements of every index commit, kept prepared on SQLite (see
// hotQueries).
const (
	qBlobByUID      = `SELECT blob_key FROM instances WHERE dataset_id = ? AND sop_uid = ?`
	qInsertInstance = `INSERT INTO instances (dataset_id, series_pk, sop_uid, sop_class_uid, instance_number, transfer_syntax,
		rows_, columns_, frames, bits_allocated, samples_per_pixel, blob_key, blob_loc, size, pixel_offset, pixel_length, patient_id, study_uid, meta, ingested_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dataset_id, sop_uid) DO NOTHING RETURNING pk`
	qPatientByID   = `SELECT pk FROM patients WHERE dataset_id = ? AND patient_id = ?`
	qInsertPatient = `INSERT INTO patients (dataset_id, patient_id, patient_name, birth_date, sex) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (dataset_id, patient_id) DO NOTHING RETURNING pk`
	qStudyByUID  = `SELECT pk, modalities, first_instance_pk FROM studies WHERE dataset_id = ? AND study_uid = ?`
	qInsertStudy = `INSERT INTO studies (dataset_id, patient_pk, study_uid, study_date, study_time, accession_number, study_id,
			study_description, referring_physician, patient_age) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (dataset_id, study_uid) DO NOTHING RETURNING pk`
	qInsertCDMStudy = `INSERT INTO cdm_image_study (study_pk, dataset_id, patient_id, study_uid, study_date) VALUES (?, ?, ?, ?, ?)`
	qSeriesByUID    = `SELECT pk, first_instance_pk FROM series WHERE dataset_id = ? AND series_uid = ?`
	qInsertSeries   = `INSERT INTO series (dataset_id, study_pk, series_uid, modality, series_number, series_description, body_part,
			manufacturer, model_name, series_date, pps_start_date, pps_start_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (dataset_id, series_uid) DO NOTHING RETURNING pk`
	qInsertCDMSeries = `INSERT INTO cdm_image_series (series_pk, study_pk, dataset_id, patient_id, series_uid, modality, body_part,
				manufacturer, series_description, acquisition_date) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qUpdateSeries = `UPDATE series SET num_instances = num_instances + ?, first_instance_pk = COALESCE(first_instance_pk, ?) WHERE pk = ?`
	qUpdateStudy  = `UPDATE studies SET num_instances = num_instances + ?, num_series = num_series + ?, modalities = ?,
			first_instance_pk = COALESCE(first_instance_pk, ?) WHERE pk = ?`
)

func (p *putter) put(in *Instance) (PutStatus, error) {
	ctx, tx := p.ctx, p.tx
	var have string
	err := tx.QueryRow(ctx, qBlobByUID, in.Dataset, in.SOPUID).Scan(&have)
	switch {
	case err == nil && have == in.BlobKey:
		return Duplicate, nil
	case err == nil:
		return Conflict, nil
	case !errors.Is(err, sql.ErrNoRows):
		return 0, err
	}
	ppk, err := p.patient(in)
	if err != nil {
		return 0, err
	}
	st, err := p.study(in, ppk)
	if err != nil {
		return 0, err
	}
	se, err := p.seriesRow(in, st)
	if err != nil {
		return 0, err
	}
	var pk int64
	err = tx.QueryRow(ctx, qInsertInstance,
		in.Dataset, se.pk, in.SOPUID, in.SOPClassUID, intOrNil(in.InstanceNumber), in.TransferSyntax,
		in.Rows, in.Columns, in.Frames, in.BitsAllocated, in.SamplesPerPixel, in.BlobKey, in.BlobLoc, in.Size, in.PixelOffset, in.PixelLength,
		in.PatientID, in.StudyUID, in.Meta, p.now).Scan(&pk)
	if errors.Is(err, sql.ErrNoRows) {
		// Another writer indexed the same UID meanwhile.
		if err := tx.QueryRow(ctx, qBlobByUID, in.Dataset, in.SOPUID).Scan(&have); err != nil {
			return 0, err
		}
		if have == in.BlobKey {
			return Duplicate, nil
		}
		return Conflict, nil
	}
	if err != nil {
		return 0, err
	}
	se.instances++
	if !se.first.Valid {
		se.first = sql.NullInt64{Int64: pk, Valid: true}
	}
	st.instances++
	if !st.first.Valid {
		st.first = sql.NullInt64{Int64: pk, Valid: true}
		st.dirty = true
	}
	if in.Modality != "" {
		i := sort.SearchStrings(st.modalities, in.Modality)
		if i == len(st.modalities) || st.modalities[i] != in.Modality {
			st.modalities = append(st.modalities, "")
			copy(st.modalities[i+1:], st.modalities[i:])
			st.modalities[i] = in.Modality
		}
	}
	return Stored, nil
}

func intOrNil(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

func (p *putter) patient(in *Instance) (int64, error) {
	k := [2]string{in.Dataset, in.PatientID}
	if pk, ok := p.patients[k]; ok {
		return pk, nil
	}
	var pk int64
	err := p.tx.QueryRow(p.ctx, qPatientByID, in.Dataset, in.PatientID).Scan(&pk)
	if errors.Is(err, sql.ErrNoRows) {
		err = p.tx.QueryRow(p.ctx, qInsertPatient,
			in.Dataset, in.PatientID, in.PatientName, in.PatientBirthDate, in.PatientSex).Scan(&pk)
		if errors.Is(err, sql.ErrNoRows) { // inserted concurrently
			err = p.tx.QueryRow(p.ctx, qPatientByID, in.Dataset, in.PatientID).Scan(&pk)
		}
	}
	if err != nil {
		return 0, err
	}
	p.patients[k] = pk
	return pk, nil
}

func (p *putter) study(in *Instance, patientPK int64) (*studyState, error) {
	k := [2]string{in.Dataset, in.StudyUID}
	if st, ok := p.studies[k]; ok {
		return st, nil
	}
	st := &studyState{}
	var mods string
	err := p.tx.QueryRow(p.ctx, qStudyByUID, in.Dataset, in.StudyUID).Scan(&st.pk, &mods, &st.first)
	if errors.Is(err, sql.ErrNoRows) {
		err = p.tx.QueryRow(p.ctx, qInsertStudy,
			in.Dataset, patientPK, in.StudyUID, in.StudyDate, in.StudyTime, in.AccessionNumber, in.StudyID,
			in.StudyDescription, in.ReferringPhysician, in.PatientAge).Scan(&st.pk)
		if errors.Is(err, sql.ErrNoRows) { // inserted concurrently
			err = p.tx.QueryRow(p.ctx, qStudyByUID, in.Dataset, in.StudyUID).Scan(&st.pk, &mods, &st.first)
		} else if err == nil {
			_, err = p.tx.Exec(p.ctx, qInsertCDMStudy,
				st.pk, in.Dataset, in.PatientID, in.StudyUID, in.StudyDate)
		}
	}
	if err != nil {
		return nil, err
	}
	if mods != "" {
		st.modalities = strings.Split(mods, `\`)
	}
	p.studies[k] = st
	return st, nil
}

func (p *putter) seriesRow(in *Instance, st *studyState) (*seriesState, error) {
	k := [2]string{in.Dataset, in.SeriesUID}
	if se, ok := p.series[k]; ok {
		return se, nil
	}
	se := &seriesState{}
	err := p.tx.QueryRow(p.ctx, qSeriesByUID, in.Dataset, in.SeriesUID).Scan(&se.pk, &se.first)
	if errors.Is(err, sql.ErrNoRows) {
		err = p.tx.QueryRow(p.ctx, qInsertSeries,
			in.Dataset, st.pk, in.SeriesUID, in.Modality, intOrNil(in.SeriesNumber), in.SeriesDescription, in.BodyPart,
			in.Manufacturer, in.ModelName, in.SeriesDate, in.PPSStartDate, in.PPSStartTime).Scan(&se.pk)
		if errors.Is(err, sql.ErrNoRows) { // inserted concurrently
			err = p.tx.QueryRow(p.ctx, qSeriesByUID, in.Dataset, in.SeriesUID).Scan(&se.pk, &se.first)
		} else if err == nil {
			st.series++
			acq := in.SeriesDate
			if acq == "" {
				acq = in.StudyDate
			}
			_, err = p.tx.Exec(p.ctx, qInsertCDMSeries,
				se.pk, st.pk, in.Dataset, in.PatientID, in.SeriesUID, in.Modality, in.BodyPart, in.Manufacturer, in.SeriesDescription, acq)
		}
	}
	if err != nil {
		return nil, err
	}
	p.series[k] = se
	return se, nil
}

// flush writes the counters and study modalities the batch changed.
func (p *putter) flush() error {
	for _, se := range p.series {
		if se.instances == 0 {
			continue
		}
		if _, err := p.tx.Exec(p.ctx, qUpdateSeries,
			se.instances, se.first, se.pk); err != nil {
			return err
		}
	}
	for _, st := range p.studies {
		if st.instances == 0 {
			continue
		}
		if _, err := p.tx.Exec(p.ctx, qUpdateStudy,
			st.instances, st.series, strings.Join(st.modalities, `\`), st.first, st.pk); err != nil {
			return err
		}
	}
	return nil
}

// StoredInstance is what retrieval needs to serve one instance.
type StoredInstance struct {
	StudyUID, SeriesUID, SOPUID string
	SOPClassUID                 string
	TransferSyntax              string
	InstanceNumber              *int
	Rows, Columns, Frames       int
	BitsAllocated               int
	SamplesPerPixel             int
	BlobKey, BlobLoc            string
	Size                        int64
	PixelOffset, PixelLength    int64
}

// Instances lists the stored instances of a study, a series (seriesUID
// set) or one instance (sopUID set too), in series then instance number
// order. ErrNotFound when nothing matches.
func (s *Store) Instances(ctx context.Context, dataset, studyUID, seriesUID, sopUID string) ([]StoredInstance, error) {
	return s.instances(ctx, "", dataset, studyUID, seriesUID, sopUID)
}

// instanceWhere is the condition shared by Instances and Metadata (and
// their snapshot forms): a dataset, a study unless snapshot names a
// snapshot (then every study of it), optionally a series and an instance.
func instanceWhere(snapshot string, last int64, dataset, studyUID, seriesUID, sopUID string) (string, []any) {
	q := ` WHERE st.dataset_id = ?`
	args := []any{dataset}
	if studyUID != "" || snapshot == "" {
		q += ` AND st.study_uid = ?`
		args = append(args, studyUID)
	}
	if seriesUID != "" {
		q += ` AND se.series_uid = ?`
		args = append(args, seriesUID)
	}
	if sopUID != "" {
		q += ` AND i.sop_uid = ?`
		args = append(args, sopUID)
	}
	if snapshot != "" {
		cond, a := snapshotScope(snapshot, dataset, InstanceLevel, last)
		q += ` AND ` + cond
		args = append(args, a...)
	}
	return q + ` ORDER BY st.pk, se.series_number, se.pk, i.instance_number, i.pk`, args
}

func (s *Store) instances(ctx context.Context, snapshot, dataset, studyUID, seriesUID, sopUID string) ([]StoredInstance, error) {
	last, err := s.scopeLast(ctx, snapshot, dataset)
	if err != nil {
		return nil, err
	}
	where, args := instanceWhere(snapshot, last, dataset, studyUID, seriesUID, sopUID)
	q := `SELECT st.study_uid, se.series_uid, i.sop_uid, i.sop_class_uid, i.transfer_syntax, i.instance_number, i.rows_, i.columns_,
		i.frames, i.bits_allocated, i.samples_per_pixel, i.blob_key, i.blob_loc, i.size, i.pixel_offset, i.pixel_length
		FROM instances i JOIN series se ON se.pk = i.series_pk JOIN studies st ON st.pk = se.study_pk` + where
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []StoredInstance
	for rows.Next() {
		var si StoredInstance
		var num sql.NullInt64
		if err := rows.Scan(&si.StudyUID, &si.SeriesUID, &si.SOPUID, &si.SOPClassUID, &si.TransferSyntax, &num, &si.Rows, &si.Columns,
			&si.Frames, &si.BitsAllocated, &si.SamplesPerPixel, &si.BlobKey, &si.BlobLoc, &si.Size, &si.PixelOffset, &si.PixelLength); err != nil {
			return nil, err
		}
		if num.Valid {
			n := int(num.Int64)
			si.InstanceNumber = &n
		}
		out = append(out, si)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no such study, series or instance", ErrNotFound)
	}
	return out, nil
}

// Metadata calls fn with the DICOM JSON object of each instance of a
// study, series or instance, in the order Instances gives, without
// reading any blob. ErrNotFound when nothing matches.
func (s *Store) Metadata(ctx context.Context, dataset, studyUID, seriesUID, sopUID string, fn func(meta []byte) error) error {
	return s.metadata(ctx, "", dataset, studyUID, seriesUID, sopUID, fn)
}

func (s *Store) metadata(ctx context.Context, snapshot, dataset, studyUID, seriesUID, sopUID string, fn func(meta []byte) error) error {
	last, err := s.scopeLast(ctx, snapshot, dataset)
	if err != nil {
		return err
	}
	where, args := instanceWhere(snapshot, last, dataset, studyUID, seriesUID, sopUID)
	q := `SELECT i.meta FROM instances i JOIN series se ON se.pk = i.series_pk JOIN studies st ON st.pk = se.study_pk` + where
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var meta []byte
		if err := rows.Scan(&meta); err != nil {
			return err
		}
		n++
		if err := fn(meta); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: no such study, series or instance", ErrNotFound)
	}
	return nil
}

// HasBlob reports whether any instance, or research table, refers to the
// blob stored under key at loc (loc is empty for blobs stored under their
// key alone).
func (s *Store) HasBlob(ctx context.Context, key, loc string) (bool, error) {
	var one int
	err := s.db.QueryRow(ctx, `SELECT 1 FROM instances WHERE blob_key = ? AND blob_loc = ?
		UNION ALL SELECT 1 FROM research_tables WHERE blob_key = ? AND blob_loc = ? LIMIT 1`, key, loc, key, loc).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// HeldBlobs returns which of the blobs given, as key and location, an
// index row refers to. They are looked up by key, a few hundred at a
// time, so that checking the blobs of a few packs does not mean reading
// every row (BlobRefs).
func (s *Store) HeldBlobs(ctx context.Context, blobs [][2]string) (map[[2]string]bool, error) {
	held := map[[2]string]bool{}
	want := make(map[[2]string]bool, len(blobs))
	var keys []string
	seen := map[string]bool{}
	for _, b := range blobs {
		want[b] = true
		if !seen[b[0]] {
			seen[b[0]] = true
			keys = append(keys, b[0])
		}
	}
	const chunk = 200
	for len(keys) > 0 {
		n := min(chunk, len(keys))
		args := make([]any, n)
		for i, k := range keys[:n] {
			args[i] = k
		}
		keys = keys[n:]
		in := `(?` + strings.Repeat(", ?", n-1) + `)`
		q := `SELECT blob_key, blob_loc FROM instances WHERE blob_key IN ` + in +
			` UNION ALL SELECT blob_key, blob_loc FROM research_tables WHERE blob_key IN ` + in
		rows, err := s.db.Query(ctx, q, append(args, args...)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var b [2]string
			if err := rows.Scan(&b[0], &b[1]); err != nil {
				rows.Close()
				return nil, err
			}
			if want[b] {
				held[b] = true
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
	}
	return held, nil
}

// BlobRefs calls fn with the blob key, location and size of every
// instance and research table.
func (s *Store) BlobRefs(ctx context.Context, fn func(key, loc string, size int64) error) error {
	rows, err := s.db.Query(ctx, `SELECT blob_key, blob_loc, size FROM instances UNION ALL SELECT blob_key, blob_loc, size FROM research_tables`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k, l string
		var n int64
		if err := rows.Scan(&k, &l, &n); err != nil {
			return err
		}
		if err := fn(k, l, n); err != nil {
			return err
		}
	}
	return rows.Err()
}

// DatasetBlobs calls fn with the SOP Instance UID, blob key, location and
// size of every instance of a dataset, in the order they were stored. It
// reads the rows in pages, holding no read transaction while fn runs, so
// a long walk does not keep a SQLite write-ahead log from being
// checkpointed.
func (s *Store) DatasetBlobs(ctx context.Context, dataset string, fn func(sopUID, key, loc string, size int64) error) error {
	type row struct {
		uid, key, loc string
		size          int64
	}
	const page = 1000
	after := int64(-1)
	for {
		rows, err := s.db.Query(ctx, `SELECT pk, sop_uid, blob_key, blob_loc, size FROM instances WHERE dataset_id = ? AND pk > ? ORDER BY pk LIMIT ?`, dataset, after, page)
		if err != nil {
			return err
		}
		var batch []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&after, &r.uid, &r.key, &r.loc, &r.size); err != nil {
				rows.Close()
				return err
			}
			batch = append(batch, r)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return err
		}
		for _, r := range batch {
			if err := fn(r.uid, r.key, r.loc, r.size); err != nil {
				return err
			}
		}
		if len(batch) < page {
			return nil
		}
	}
}

// Counts are the sizes of a dataset's index.
type Counts struct {
	Patients, Studies, Series, Instances int64
	Bytes                                int64
}

// DatasetCounts counts what a dataset holds.
func (s *Store) DatasetCounts(ctx context.Context, dataset string) (Counts, error) {
	var c Counts
	err := s.db.QueryRow(ctx, `SELECT
		(SELECT COUNT(*) FROM patients WHERE dataset_id = ?),
		(SELECT COUNT(*) FROM studies WHERE dataset_id = ?),
		(SELECT COUNT(*) FROM series WHERE dataset_id = ?),
		(SELECT COUNT(*) FROM instances WHERE dataset_id = ?),
		(SELECT COALESCE(SUM(size), 0) FROM instances WHERE dataset_id = ?)`,
		dataset, dataset, dataset, dataset, dataset).Scan(&c.Patients, &c.Studies, &c.Series, &c.Instances, &c.Bytes)
	return c, err
}
