package index

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/mosaic-imaging/mosaic/internal/disclosure"
	"github.com/mosaic-imaging/mosaic/internal/lens"
)

// Federated searches run over an in-memory snapshot of the facts they
// test, one small record per patient, rebuilt when a dataset changes
// (datasets.changed_at moves on every ingest and clinical import). Values
// are interned: a patient holds indexes of the snapshot's distinct
// genders, diagnoses, modalities, body parts and manufacturers. A query
// is compiled once into a function of the patient, each condition
// decided once per distinct value (a table of booleans), and figures are
// tallied in arrays. A node of 10,000 patients holds about 2 MB and
// answers a query in about 0.1 ms of CPU, where the SQL statement of the
// same query (federatedCountsSQL, kept as the reference the tests compare
// against) takes tens of milliseconds. Both follow one set of rules,
// documented on the SQL compiler in federated_sql_test.go.

type memCond struct {
	age, year *int
	diag      int32 // index of the snapshot's diags
}

// memDiag is a distinct (ICD-10 code, cancer type) of the conditions.
type memDiag struct {
	raw   bool   // the stored code is not empty
	icd   string // upper case, dots removed
	ctype string
}

// memPatient is one subject. Its series are kept as the distinct
// non-empty modalities, body parts and manufacturers they have (indexes
// of the snapshot's tables): every imaging condition and figure depends
// on nothing else, and the empty value never satisfies a condition.
type memPatient struct {
	ds      int32
	gender  int32 // index of the snapshot's genders
	studies int
	conds   []memCond
	mods    []int32
	bodies  []int32
	manus   []int32
}

type memSnapshot struct {
	version  string
	datasets []string
	patients []memPatient
	// subjects holds, for each patient, what disclosure control needs
	// (FederatedSubjects); versions names each dataset's state.
	subjects []disclosure.Subject
	versions []string
	// pids holds each patient's pseudonym (cohort snapshots list them).
	pids    []string
	genders []string
	diags   []memDiag
	mods    []string
	bodies  []string
	manus   []memManu
}

// memManu is a distinct manufacturer with the forms its conditions test.
type memManu struct {
	raw   string // as stored
	upper string // ASCII upper case, as SQL's UPPER
	words string // " WORDS " with separators read as spaces
}

// interner numbers distinct strings.
type interner struct {
	ids  map[string]int32
	vals []string
}

func (in *interner) id(s string) int32 {
	if i, ok := in.ids[s]; ok {
		return i
	}
	if in.ids == nil {
		in.ids = map[string]int32{}
	}
	i := int32(len(in.vals))
	in.ids[s] = i
	in.vals = append(in.vals, s)
	return i
}

func addID(list []int32, id int32) []int32 {
	if slices.Contains(list, id) {
		return list
	}
	return append(list, id)
}

// fedCache holds a store's snapshot.
type fedCache struct {
	mu   sync.Mutex
	snap *memSnapshot
}

func asciiUpper(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' {
			return r - 32
		}
		return r
	}, s)
}

var manuSeparators = strings.NewReplacer("_", " ", "-", " ", ".", " ", ",", " ", "/", " ")

// snapshotVersion names the state of every dataset.
func (s *Store) snapshotVersion(ctx context.Context) (string, []string, error) {
	rows, err := s.db.Query(ctx, `SELECT id, changed_at FROM datasets ORDER BY id`)
	if err != nil {
		return "", nil, err
	}
	defer rows.Close()
	var b strings.Builder
	var ids []string
	for rows.Next() {
		var id string
		var ch int64
		if err := rows.Scan(&id, &ch); err != nil {
			return "", nil, err
		}
		ids = append(ids, id)
		b.WriteString(id)
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(ch, 10))
		b.WriteByte(';')
	}
	return b.String(), ids, rows.Err()
}

// snapshot returns the current snapshot, rebuilding it when a dataset
// changed since it was taken.
func (s *Store) snapshot(ctx context.Context) (*memSnapshot, error) {
	version, ids, err := s.snapshotVersion(ctx)
	if err != nil {
		return nil, err
	}
	s.fed.mu.Lock()
	defer s.fed.mu.Unlock()
	if s.fed.snap != nil && s.fed.snap.version == version {
		return s.fed.snap, nil
	}
	snap, err := s.loadSnapshot(ctx, version, ids)
	if err != nil {
		return nil, err
	}
	s.fed.snap = snap
	return snap, nil
}

func (s *Store) loadSnapshot(ctx context.Context, version string, ids []string) (*memSnapshot, error) {
	snap := &memSnapshot{version: version, datasets: ids}
	var genders, mods, bodies, manus interner
	diags := map[memDiag]int32{}
	dsIndex := map[string]int{}
	for i, id := range ids {
		dsIndex[id] = i
	}
	type key struct{ ds, pid string }
	byKey := map[key]int{}
	byClinPK := map[int64]int{}
	dicomSex := map[key]string{}
	each := func(q string, scan func(*sql.Rows) error) error {
		rows, err := s.db.Query(ctx, q)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	gender := func(sex string) string {
		switch sex {
		case "F":
			return "female"
		case "M":
			return "male"
		case "O":
			return "other"
		}
		return "unknown"
	}
	err := each(`SELECT dataset_id, patient_id, sex FROM patients`, func(r *sql.Rows) error {
		var k key
		var sex string
		if err := r.Scan(&k.ds, &k.pid, &sex); err != nil {
			return err
		}
		dicomSex[k] = sex
		return nil
	})
	if err == nil {
		err = each(`SELECT dataset_id, patient_id, pk, birth_sex FROM cdm_patient`, func(r *sql.Rows) error {
			var k key
			var pk int64
			var bs string
			if err := r.Scan(&k.ds, &k.pid, &pk, &bs); err != nil {
				return err
			}
			ds, ok := dsIndex[k.ds]
			if !ok {
				return nil
			}
			g := bs
			if g != "female" && g != "male" && g != "other" {
				g = "unknown"
				if sex, ok := dicomSex[k]; ok {
					g = gender(sex)
				}
			}
			byKey[k] = len(snap.patients)
			byClinPK[pk] = len(snap.patients)
			snap.patients = append(snap.patients, memPatient{ds: int32(ds), gender: genders.id(g)})
			return nil
		})
	}
	if err != nil {
		return nil, err
	}
	for _, k := range slices.SortedFunc(maps.Keys(dicomSex), func(a, b key) int {
		return cmp.Or(strings.Compare(a.ds, b.ds), strings.Compare(a.pid, b.pid))
	}) {
		sex := dicomSex[k]
		if _, ok := byKey[k]; ok {
			continue
		}
		ds, ok := dsIndex[k.ds]
		if !ok {
			continue
		}
		byKey[k] = len(snap.patients)
		snap.patients = append(snap.patients, memPatient{ds: int32(ds), gender: genders.id(gender(sex))})
	}
	err = each(`SELECT patient_pk, age_at_diagnosis, diagnosis_year, icd10_code, cancer_type FROM cdm_cancer_condition`, func(r *sql.Rows) error {
		var pk int64
		var age, year sql.NullInt64
		var icd, ct string
		if err := r.Scan(&pk, &age, &year, &icd, &ct); err != nil {
			return err
		}
		i, ok := byClinPK[pk]
		if !ok {
			return nil
		}
		dk := memDiag{raw: icd != "", icd: strings.ReplaceAll(asciiUpper(icd), ".", ""), ctype: ct}
		d, ok := diags[dk]
		if !ok {
			d = int32(len(snap.diags))
			diags[dk] = d
			snap.diags = append(snap.diags, dk)
		}
		c := memCond{diag: d}
		if age.Valid {
			v := int(age.Int64)
			c.age = &v
		}
		if year.Valid {
			v := int(year.Int64)
			c.year = &v
		}
		snap.patients[i].conds = append(snap.patients[i].conds, c)
		return nil
	})
	if err == nil {
		err = each(`SELECT dataset_id, patient_id, modality, body_part, manufacturer FROM cdm_image_series`, func(r *sql.Rows) error {
			var k key
			var mod, body, manu string
			if err := r.Scan(&k.ds, &k.pid, &mod, &body, &manu); err != nil {
				return err
			}
			i, ok := byKey[k]
			if !ok {
				return nil
			}
			p := &snap.patients[i]
			if mod != "" {
				p.mods = addID(p.mods, mods.id(mod))
			}
			if body != "" {
				p.bodies = addID(p.bodies, bodies.id(body))
			}
			if manu != "" {
				p.manus = addID(p.manus, manus.id(manu))
			}
			return nil
		})
	}
	if err == nil {
		err = each(`SELECT dataset_id, patient_id, COUNT(*) FROM cdm_image_study GROUP BY dataset_id, patient_id`, func(r *sql.Rows) error {
			var k key
			var n int
			if err := r.Scan(&k.ds, &k.pid, &n); err != nil {
				return err
			}
			if i, ok := byKey[k]; ok {
				snap.patients[i].studies = n
			}
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("index: federated snapshot: %w", err)
	}
	snap.genders, snap.mods, snap.bodies = genders.vals, mods.vals, bodies.vals
	for _, m := range manus.vals {
		up := asciiUpper(m)
		snap.manus = append(snap.manus, memManu{raw: m, upper: up, words: " " + manuSeparators.Replace(up) + " "})
	}
	snap.subjects = make([]disclosure.Subject, len(snap.patients))
	snap.pids = make([]string, len(snap.patients))
	for k, i := range byKey {
		snap.subjects[i].Member = disclosure.MemberOf(k.ds, k.pid)
		snap.pids[i] = k.pid
	}
	for i := range snap.patients {
		snap.subjects[i] = snap.subject(&snap.patients[i], snap.subjects[i].Member)
	}
	snap.versions = versionsOf(version, ids)
	return snap, nil
}

// subject is what disclosure control needs of patient p.
func (snap *memSnapshot) subject(p *memPatient, m disclosure.Member) disclosure.Subject {
	s := disclosure.Subject{Member: m, Studies: p.studies}
	s.Categories = append(s.Categories, disclosure.Category{Kind: CategoryGender, Value: snap.genders[p.gender]})
	for _, id := range p.mods {
		s.Categories = append(s.Categories, disclosure.Category{Kind: CategoryModality, Value: snap.mods[id]})
	}
	for _, id := range p.bodies {
		s.Categories = append(s.Categories, disclosure.Category{Kind: CategoryBodyPart, Value: snap.bodies[id]})
	}
	for _, id := range p.manus {
		s.Categories = append(s.Categories, disclosure.Category{Kind: CategoryManufacturer, Value: snap.manus[id].raw})
	}
	var types []string
	for _, c := range p.conds {
		if ct := snap.diags[c.diag].ctype; ct != "" && !slices.Contains(types, ct) {
			types = append(types, ct)
			s.Categories = append(s.Categories, disclosure.Category{Kind: CategoryCancerType, Value: ct})
		}
		if c.age != nil {
			if !s.HasAge || *c.age < s.Youngest {
				s.Youngest = *c.age
			}
			if !s.HasAge || *c.age > s.Oldest {
				s.Oldest = *c.age
			}
			s.HasAge = true
		}
	}
	return s
}

// The category kinds of FederatedSubjects.
const (
	CategoryGender       = "gender"
	CategoryModality     = "modality"
	CategoryBodyPart     = "body_part"
	CategoryCancerType   = "cancer_type"
	CategoryManufacturer = "manufacturer"
)

// versionsOf splits a snapshot version ("id:changed;...") into one
// version per dataset, in the order of ids.
func versionsOf(version string, ids []string) []string {
	out := make([]string, len(ids))
	parts := strings.Split(version, ";")
	for i := range ids {
		if i < len(parts) {
			out[i] = parts[i]
		}
	}
	return out
}

// DatasetSubjects are the subjects of one dataset for disclosure
// control: those a query matched and all of them, with the version of
// the dataset's data they were read from. They point into a shared
// snapshot: callers must not change them.
type DatasetSubjects struct {
	Dataset, Version string
	Matched, All     []*disclosure.Subject
}

// prepare takes the current snapshot and compiles q over it.
func (s *Store) prepare(ctx context.Context, q *lens.Query) (*memSnapshot, memEval, error) {
	if q == nil || q.Root == nil {
		return nil, nil, fmt.Errorf("%w: no query", ErrInvalid)
	}
	snap, err := s.snapshot(ctx)
	if err != nil {
		return nil, nil, err
	}
	match, err := snap.compile(q.Root)
	if err != nil {
		return nil, nil, err
	}
	return snap, match, nil
}

// FederatedSubjects runs a federated search over every dataset of the
// node, like FederatedCounts, and returns the subjects themselves for
// disclosure control to count, in dataset id order.
func (s *Store) FederatedSubjects(ctx context.Context, q *lens.Query) ([]DatasetSubjects, error) {
	snap, match, err := s.prepare(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]DatasetSubjects, len(snap.datasets))
	for i, id := range snap.datasets {
		out[i] = DatasetSubjects{Dataset: id, Version: snap.versions[i], Matched: []*disclosure.Subject{}, All: []*disclosure.Subject{}}
	}
	for i := range snap.patients {
		p := &snap.patients[i]
		d := &out[p.ds]
		d.All = append(d.All, &snap.subjects[i])
		if match(p) {
			d.Matched = append(d.Matched, &snap.subjects[i])
		}
	}
	return out, nil
}

// memEval tells whether a patient matches (part of) a query.
type memEval func(p *memPatient) bool

// table marks the values of an interned column that satisfy a test: a
// condition is decided once per distinct value, not once per row.
func table[T any](vals []T, ok func(T) bool) []bool {
	t := make([]bool, len(vals))
	for i, v := range vals {
		t[i] = ok(v)
	}
	return t
}

// anyOf reports whether one of ids is marked in t.
func anyOf(ids []int32, t []bool) bool {
	for _, id := range ids {
		if t[id] {
			return true
		}
	}
	return false
}

// compile turns the query tree into a function of the patient, with the
// semantics of the SQL compiler (fedCompile and cond in federated_sql_test.go).
func (snap *memSnapshot) compile(n *lens.Node) (memEval, error) {
	switch n.Op {
	case lens.And, lens.Or:
		kids := make([]memEval, len(n.Children))
		for i, k := range n.Children {
			e, err := snap.compile(k)
			if err != nil {
				return nil, err
			}
			kids[i] = e
		}
		if n.Op == lens.And {
			return func(p *memPatient) bool {
				for _, e := range kids {
					if !e(p) {
						return false
					}
				}
				return true
			}, nil
		}
		return func(p *memPatient) bool {
			for _, e := range kids {
				if e(p) {
					return true
				}
			}
			return false
		}, nil
	case lens.Not:
		if len(n.Children) != 1 {
			return nil, fmt.Errorf("%w: NOT with %d children", ErrInvalid, len(n.Children))
		}
		e, err := snap.compile(n.Children[0])
		if err != nil {
			return nil, err
		}
		return func(p *memPatient) bool { return !e(p) }, nil
	case "":
		if n.Cond != nil {
			return snap.cond(n.Cond)
		}
	}
	return nil, fmt.Errorf("%w: query node", ErrInvalid)
}

func (snap *memSnapshot) cond(k *lens.Condition) (memEval, error) {
	switch k.Attr {
	case lens.Gender:
		vals := fedValues(k, lens.Exact)
		if len(vals) == 0 {
			return nil, fmt.Errorf("%w: gender condition without values", ErrInvalid)
		}
		t := table(snap.genders, func(g string) bool { return slices.Contains(vals, g) != k.Negated })
		return func(p *memPatient) bool { return t[p.gender] }, nil

	case lens.AgeAtDiagnosis, lens.YearOfDiagnosis:
		year := k.Attr == lens.YearOfDiagnosis
		open := k.Min == nil && k.Max == nil
		lo, hi := math.MinInt, math.MaxInt
		if k.Min != nil {
			lo = *k.Min
		}
		if k.Max != nil {
			hi = *k.Max
		}
		return func(p *memPatient) bool {
			for _, c := range p.conds {
				v := c.age
				if year {
					v = c.year
				}
				if v != nil && (open || (*v >= lo && *v <= hi) != k.Negated) {
					return true
				}
			}
			return false
		}, nil

	case lens.Diagnosis:
		prefixes, types := fedValues(k, lens.Prefix), fedValues(k, lens.CancerType)
		if len(prefixes) == 0 && len(types) == 0 {
			return nil, fmt.Errorf("%w: diagnosis condition without values", ErrInvalid)
		}
		t := table(snap.diags, func(d memDiag) bool {
			hit := slices.ContainsFunc(prefixes, func(pre string) bool { return strings.HasPrefix(d.icd, pre) })
			if k.Negated {
				return (d.raw && !hit) || (len(types) > 0 && !d.raw && d.ctype != "" && !slices.Contains(types, d.ctype))
			}
			return (d.raw && hit) || (len(types) > 0 && !d.raw && slices.Contains(types, d.ctype))
		})
		return func(p *memPatient) bool {
			for _, c := range p.conds {
				if t[c.diag] {
					return true
				}
			}
			return false
		}, nil

	case lens.Modality, lens.BodyPart:
		vals := fedValues(k, lens.Exact)
		if len(vals) == 0 {
			return nil, fmt.Errorf("%w: %s condition without values", ErrInvalid, k.Attr)
		}
		// The patient's lists hold non-empty values only: the empty value
		// matches neither EQUALS (no value is empty) nor NOT_EQUALS.
		col, ids := snap.mods, func(p *memPatient) []int32 { return p.mods }
		if k.Attr == lens.BodyPart {
			col, ids = snap.bodies, func(p *memPatient) []int32 { return p.bodies }
		}
		t := table(col, func(v string) bool { return slices.Contains(vals, v) != k.Negated })
		return func(p *memPatient) bool { return anyOf(ids(p), t) }, nil

	case lens.Manufacturer:
		if len(k.Matches) == 0 {
			return nil, fmt.Errorf("%w: manufacturer condition without values", ErrInvalid)
		}
		for _, m := range k.Matches {
			if m.Kind != lens.Word && m.Kind != lens.Exact && m.Kind != lens.Substring {
				return nil, fmt.Errorf("%w: manufacturer match %s", ErrInvalid, m.Kind)
			}
		}
		t := table(snap.manus, func(se memManu) bool {
			hit := false
			for _, m := range k.Matches {
				switch m.Kind {
				case lens.Word:
					first, _, _ := strings.Cut(m.Value, " ")
					hit = hit || (strings.Contains(se.upper, first) && strings.Contains(se.words, " "+m.Value+" "))
				case lens.Exact:
					hit = hit || asciiUpper(strings.Trim(se.raw, " ")) == m.Value
				case lens.Substring:
					hit = hit || strings.Contains(se.upper, m.Value)
				}
			}
			return hit != k.Negated
		})
		return func(p *memPatient) bool { return anyOf(p.manus, t) }, nil
	}
	return nil, fmt.Errorf("%w: condition on %s", ErrInvalid, k.Attr)
}

// FederatedCounts runs a federated search over every dataset of the node
// and returns the raw figures of each, datasets without a match included,
// in dataset id order (see DatasetStats and the rules on the SQL
// compiler in federated_sql_test.go, which this evaluation follows).
func (s *Store) FederatedCounts(ctx context.Context, q *lens.Query) ([]DatasetStats, error) {
	snap, match, err := s.prepare(ctx, q)
	if err != nil {
		return nil, err
	}
	// Figures are counted in arrays indexed like the snapshot's tables,
	// then turned into the maps of DatasetStats.
	type tally struct {
		subjects, studies     int
		genders, mods, bodies []int
		ageMin, ageMax        int
		ages                  bool
	}
	tallies := make([]tally, len(snap.datasets))
	for i := range tallies {
		tallies[i] = tally{genders: make([]int, len(snap.genders)), mods: make([]int, len(snap.mods)), bodies: make([]int, len(snap.bodies))}
	}
	for i := range snap.patients {
		p := &snap.patients[i]
		if !match(p) {
			continue
		}
		d := &tallies[p.ds]
		d.subjects++
		d.studies += p.studies
		d.genders[p.gender]++
		for _, c := range p.conds {
			if c.age == nil {
				continue
			}
			if !d.ages || *c.age < d.ageMin {
				d.ageMin = *c.age
			}
			if !d.ages || *c.age > d.ageMax {
				d.ageMax = *c.age
			}
			d.ages = true
		}
		for _, m := range p.mods {
			d.mods[m]++
		}
		for _, b := range p.bodies {
			d.bodies[b]++
		}
	}
	out := make([]DatasetStats, len(snap.datasets))
	for i, id := range snap.datasets {
		d := &tallies[i]
		out[i] = DatasetStats{Dataset: id, Subjects: d.subjects, Studies: d.studies,
			Genders: map[string]int{}, Modalities: map[string]int{}, BodyParts: map[string]int{}}
		for _, x := range []struct {
			counts []int
			names  []string
			dst    map[string]int
		}{{d.genders, snap.genders, out[i].Genders}, {d.mods, snap.mods, out[i].Modalities}, {d.bodies, snap.bodies, out[i].BodyParts}} {
			for j, n := range x.counts {
				if n > 0 {
					x.dst[x.names[j]] = n
				}
			}
		}
		if d.ages {
			lo, hi := d.ageMin, d.ageMax
			out[i].AgeMin, out[i].AgeMax = &lo, &hi
		}
	}
	return out, nil
}

// DatasetStats are the raw, unprotected figures of a federated search for
// one dataset. They must pass the node's disclosure control before they
// leave it.
type DatasetStats struct {
	Dataset string
	// Subjects counts the matching patients: the patients of the dataset
	// (imaged, with clinical rows, or both, by pseudonym) for whom the
	// query is true.
	Subjects int
	// Studies counts all imaging studies of the matching subjects, not
	// only those that satisfied imaging conditions: a study-level reading
	// of a boolean tree is ill-defined (with "MR AND CT" a matching
	// patient may have no study with both), would not add up with
	// Subjects, and the studies of the matching patients are what an
	// access request for them would deliver.
	Studies int
	// Genders counts matching subjects per gender (female, male, other,
	// unknown); only genders present are keys.
	Genders map[string]int
	// Modalities and BodyParts count matching subjects per DICOM Modality
	// and Body Part Examined among all their series (values as stored:
	// DICOM code strings are upper case; empty values left out). A subject
	// counts once under each value it has.
	Modalities map[string]int
	BodyParts  map[string]int
	// AgeMin and AgeMax span the ages at diagnosis of the matching
	// subjects' cancer conditions; nil when none is known.
	AgeMin, AgeMax *int
}

// fedValues returns the values of the matches of kind in k.
func fedValues(k *lens.Condition, kind lens.MatchKind) []string {
	var out []string
	for _, m := range k.Matches {
		if m.Kind == kind {
			out = append(out, m.Value)
		}
	}
	return out
}
