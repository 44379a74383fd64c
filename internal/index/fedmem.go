package index

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/mosaic-imaging/mosaic/internal/lens"
)

// Federated searches run over an in-memory snapshot of the facts they
// test, one small record per patient, rebuilt when a dataset changes
// (datasets.changed_at moves on every ingest and clinical import). A node
// of 10,000 patients holds about 2 MB of it and answers a query by
// evaluating the tree once per patient: well under a millisecond, where
// the SQL statement of the same query (federatedCountsSQL, kept as the
// reference the tests compare against) takes tens. Both follow one set
// of rules, documented on the SQL compiler in federated.go.

type memCond struct {
	age, year *int
	icd       string // upper case, dots removed
	ctype     string
}

type memSeries struct {
	mod, body string
	manu      string // as stored
	manuUpper string // ASCII upper case, as SQL's UPPER
	manuWords string // " WORDS " with separators read as spaces
}

type memPatient struct {
	ds      int
	gender  string
	conds   []memCond
	series  []memSeries
	studies int
}

type memSnapshot struct {
	version  string
	datasets []string
	patients []memPatient
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
			snap.patients = append(snap.patients, memPatient{ds: ds, gender: g})
			return nil
		})
	}
	if err != nil {
		return nil, err
	}
	for k, sex := range dicomSex {
		if _, ok := byKey[k]; ok {
			continue
		}
		ds, ok := dsIndex[k.ds]
		if !ok {
			continue
		}
		byKey[k] = len(snap.patients)
		snap.patients = append(snap.patients, memPatient{ds: ds, gender: gender(sex)})
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
		c := memCond{icd: strings.ReplaceAll(asciiUpper(icd), ".", ""), ctype: ct}
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
			var se memSeries
			if err := r.Scan(&k.ds, &k.pid, &se.mod, &se.body, &se.manu); err != nil {
				return err
			}
			i, ok := byKey[k]
			if !ok {
				return nil
			}
			se.manuUpper = asciiUpper(se.manu)
			se.manuWords = " " + manuSeparators.Replace(se.manuUpper) + " "
			snap.patients[i].series = append(snap.patients[i].series, se)
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
	return snap, nil
}

// memMatch evaluates one condition for a patient, with the semantics of
// the SQL compiler's cond.
func memMatch(p *memPatient, k *lens.Condition) bool {
	switch k.Attr {
	case lens.Gender:
		return slices.Contains(fedValues(k, lens.Exact), p.gender) != k.Negated
	case lens.AgeAtDiagnosis, lens.YearOfDiagnosis:
		for _, c := range p.conds {
			v := c.age
			if k.Attr == lens.YearOfDiagnosis {
				v = c.year
			}
			if v == nil {
				continue
			}
			if k.Min == nil && k.Max == nil {
				return true
			}
			in := (k.Min == nil || *v >= *k.Min) && (k.Max == nil || *v <= *k.Max)
			if in != k.Negated {
				return true
			}
		}
		return false
	case lens.Diagnosis:
		prefixes, types := fedValues(k, lens.Prefix), fedValues(k, lens.CancerType)
		for _, c := range p.conds {
			hit := slices.ContainsFunc(prefixes, func(pre string) bool { return strings.HasPrefix(c.icd, pre) })
			if k.Negated {
				if c.icd != "" && !hit {
					return true
				}
				if len(types) > 0 && c.icd == "" && c.ctype != "" && !slices.Contains(types, c.ctype) {
					return true
				}
			} else {
				if c.icd != "" && hit {
					return true
				}
				if len(types) > 0 && c.icd == "" && slices.Contains(types, c.ctype) {
					return true
				}
			}
		}
		return false
	case lens.Modality, lens.BodyPart:
		vals := fedValues(k, lens.Exact)
		for _, se := range p.series {
			v := se.mod
			if k.Attr == lens.BodyPart {
				v = se.body
			}
			if k.Negated {
				if v != "" && !slices.Contains(vals, v) {
					return true
				}
			} else if slices.Contains(vals, v) {
				return true
			}
		}
		return false
	case lens.Manufacturer:
		for _, se := range p.series {
			hit := false
			for _, m := range k.Matches {
				switch m.Kind {
				case lens.Word:
					first, _, _ := strings.Cut(m.Value, " ")
					hit = hit || (strings.Contains(se.manuUpper, first) && strings.Contains(se.manuWords, " "+m.Value+" "))
				case lens.Exact:
					hit = hit || asciiUpper(strings.TrimSpace(se.manu)) == m.Value
				case lens.Substring:
					hit = hit || strings.Contains(se.manuUpper, m.Value)
				}
			}
			if k.Negated {
				if se.manu != "" && !hit {
					return true
				}
			} else if hit {
				return true
			}
		}
		return false
	}
	return false
}

// FederatedCounts runs a federated search over every dataset of the node
// and returns the raw figures of each, datasets without a match included,
// in dataset id order (see DatasetStats and the rules on the SQL
// compiler in federated.go, which this evaluation follows).
func (s *Store) FederatedCounts(ctx context.Context, q *lens.Query) ([]DatasetStats, error) {
	if q == nil || q.Root == nil {
		return nil, fmt.Errorf("%w: no query", ErrInvalid)
	}
	snap, err := s.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]DatasetStats, len(snap.datasets))
	for i, id := range snap.datasets {
		out[i] = DatasetStats{Dataset: id, Genders: map[string]int{}, Modalities: map[string]int{}, BodyParts: map[string]int{}}
	}
	var seen []string
	for i := range snap.patients {
		p := &snap.patients[i]
		if !q.Root.Eval(func(c *lens.Condition) bool { return memMatch(p, c) }) {
			continue
		}
		d := &out[p.ds]
		d.Subjects++
		d.Studies += p.studies
		d.Genders[p.gender]++
		for _, c := range p.conds {
			if c.age == nil {
				continue
			}
			if d.AgeMin == nil || *c.age < *d.AgeMin {
				v := *c.age
				d.AgeMin = &v
			}
			if d.AgeMax == nil || *c.age > *d.AgeMax {
				v := *c.age
				d.AgeMax = &v
			}
		}
		for _, kind := range []int{0, 1} {
			seen = seen[:0]
			for _, se := range p.series {
				v := se.mod
				if kind == 1 {
					v = se.body
				}
				if v == "" || slices.Contains(seen, v) {
					continue
				}
				seen = append(seen, v)
				if kind == 0 {
					d.Modalities[v]++
				} else {
					d.BodyParts[v]++
				}
			}
		}
	}
	return out, nil
}
