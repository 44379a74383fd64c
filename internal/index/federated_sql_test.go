package index

// The SQL reference of the federated search: the statement each query
// compiles to, run by the database. It is not shipped; the tests compare
// FederatedCounts (fedmem.go) with it, figure for figure.

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"

	"github.com/mosaic-imaging/mosaic/internal/lens"
	"github.com/mosaic-imaging/mosaic/internal/sqldb"
)

// Every patient of every dataset is a subject once, from one of two
// branches: the patients with clinical rows (fedClinicalSQL), then the
// imaged patients without (fedImagedOnlySQL). Splitting them lets the
// compiler decide clinical conditions for the second branch in Go (they
// are false there), so a query with a clinical condition under AND never
// runs the anti-join that finds imaged-only patients.
//
// g is the gender: the clinical birth sex when it is female, male or
// other; otherwise Patient's Sex (0010,0040) of the images (F, M, O), so
// that imaged patients without clinical data, or with an unknown birth
// sex, are not all "unknown"; otherwise unknown.
const (
	fedClinicalSQL = `SELECT c.dataset_id AS ds, c.patient_id AS pid, c.pk AS cpk,
		CASE WHEN c.birth_sex IN ('female', 'male', 'other') THEN c.birth_sex
			ELSE COALESCE((SELECT CASE p.sex WHEN 'F' THEN 'female' WHEN 'M' THEN 'male' WHEN 'O' THEN 'other' END
				FROM patients p WHERE p.dataset_id = c.dataset_id AND p.patient_id = c.patient_id), 'unknown') END AS g
		FROM cdm_patient c`
	fedImagedOnlySQL = `SELECT p.dataset_id AS ds, p.patient_id AS pid, CAST(NULL AS BIGINT) AS cpk,
		CASE p.sex WHEN 'F' THEN 'female' WHEN 'M' THEN 'male' WHEN 'O' THEN 'other' ELSE 'unknown' END AS g
		FROM patients p
		WHERE NOT EXISTS (SELECT 1 FROM cdm_patient c WHERE c.dataset_id = p.dataset_id AND c.patient_id = p.patient_id)`
)

// fedStatsSQL computes every figure from the matching subjects m in one
// statement, one row per (kind, dataset, category). Subjects per modality
// and body part are counted over distinct (subject, value) pairs rather
// than with COUNT(DISTINCT), which PostgreSQL can only do by sorting.
const fedStatsSQL = `
SELECT 'g', ds, g, COUNT(*), 0 FROM m GROUP BY ds, g
UNION ALL
SELECT 'a', m.ds, '', MIN(cc.age_at_diagnosis), MAX(cc.age_at_diagnosis)
	FROM m JOIN cdm_cancer_condition cc ON cc.patient_pk = m.cpk
	WHERE cc.age_at_diagnosis IS NOT NULL GROUP BY m.ds
UNION ALL
SELECT 's', m.ds, '', COUNT(*), 0
	FROM m JOIN cdm_image_study st ON st.dataset_id = m.ds AND st.patient_id = m.pid GROUP BY m.ds
UNION ALL
SELECT 'm', ds, v, COUNT(*), 0 FROM (SELECT DISTINCT m.ds, m.pid, se.modality AS v
	FROM m JOIN cdm_image_series se ON se.dataset_id = m.ds AND se.patient_id = m.pid
	WHERE se.modality <> '') x GROUP BY ds, v
UNION ALL
SELECT 'b', ds, v, COUNT(*), 0 FROM (SELECT DISTINCT m.ds, m.pid, se.body_part AS v
	FROM m JOIN cdm_image_series se ON se.dataset_id = m.ds AND se.patient_id = m.pid
	WHERE se.body_part <> '') x GROUP BY ds, v`

// federatedCountsSQL runs a federated search in the database: the
// reference that FederatedCounts' in-memory evaluation is tested against,
// figure for figure. The query compiles to one SQL statement: each
// condition becomes a test on the patient (gender) or an EXISTS over the
// patient's cancer conditions or series, combined with AND, OR and NOT as
// the tree says; every value is a bound parameter.
func (s *Store) federatedCountsSQL(ctx context.Context, q *lens.Query) ([]DatasetStats, error) {
	stmt, args, err := fedStatement(q)
	if err != nil {
		return nil, err
	}
	byID := map[string]*DatasetStats{}
	var out []DatasetStats
	ids, err := s.fedDatasetIDs(ctx)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		out = append(out, DatasetStats{Dataset: id, Genders: map[string]int{}, Modalities: map[string]int{}, BodyParts: map[string]int{}})
	}
	for i := range out {
		byID[out[i].Dataset] = &out[i]
	}
	if stmt == "" {
		return out, nil // the query is false for every patient
	}
	err = s.fedQuery(ctx, stmt, args, func(rows *sql.Rows) error {
		for rows.Next() {
			var kind, ds, cat string
			var a, b sql.NullInt64
			if err := rows.Scan(&kind, &ds, &cat, &a, &b); err != nil {
				return err
			}
			d := byID[ds]
			if d == nil {
				continue // rows of a dataset created meanwhile
			}
			switch kind {
			case "g":
				d.Genders[cat] = int(a.Int64)
				d.Subjects += int(a.Int64)
			case "a":
				if a.Valid && b.Valid {
					lo, hi := int(a.Int64), int(b.Int64)
					d.AgeMin, d.AgeMax = &lo, &hi
				}
			case "s":
				d.Studies = int(a.Int64)
			case "m":
				d.Modalities[cat] = int(a.Int64)
			case "b":
				d.BodyParts[cat] = int(a.Int64)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("index: federated counts: %w", err)
	}
	return out, nil
}

// fedQuery runs the statement. On PostgreSQL it runs in a transaction
// with JIT compilation off: the EXISTS subplans of a large query push the
// estimated cost over jit_above_cost, and compiling then takes 30 to 80 ms
// for a statement that runs in a few. On SQLite it must not open a
// transaction (the node's SQLite transactions take the write lock).
func (s *Store) fedQuery(ctx context.Context, stmt string, args []any, read func(*sql.Rows) error) error {
	if s.db.Dialect != sqldb.Postgres {
		rows, err := s.db.Query(ctx, stmt, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		return read(rows)
	}
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback() // read only: nothing to commit
	if _, err := tx.Exec(ctx, `SET LOCAL jit = off`); err != nil {
		return err
	}
	rows, err := tx.Query(ctx, stmt, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	return read(rows)
}

// fedStatement compiles a query to the statement FederatedCounts runs;
// empty when the query is false for every patient.
func fedStatement(q *lens.Query) (string, []any, error) {
	if q == nil || q.Root == nil {
		return "", nil, fmt.Errorf("%w: no query", ErrInvalid)
	}
	var branches []string
	var args []any
	for _, b := range []struct {
		from       string
		imagedOnly bool
	}{{fedClinicalSQL, false}, {fedImagedOnlySQL, true}} {
		e, err := fedCompile(q.Root, b.imagedOnly)
		if err != nil {
			return "", nil, err
		}
		switch e.val {
		case fedFalse:
			continue
		case fedTrue:
			branches = append(branches, "SELECT s.ds, s.pid, s.cpk, s.g FROM ("+b.from+") s")
		default:
			branches = append(branches, "SELECT s.ds, s.pid, s.cpk, s.g FROM ("+b.from+") s WHERE "+e.sql)
			args = append(args, e.args...)
		}
	}
	if len(branches) == 0 {
		return "", nil, nil
	}
	return "WITH m AS MATERIALIZED (" + strings.Join(branches, "\nUNION ALL\n") + ")" + fedStatsSQL, args, nil
}

func (s *Store) fedDatasetIDs(ctx context.Context) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT id FROM datasets ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// fedExpr is a compiled condition: SQL on the subject s with its bound
// values, or a constant the compiler could decide.
type fedExpr struct {
	sql  string
	args []any
	val  fedValue
}

type fedValue int

const (
	fedSQL fedValue = iota
	fedTrue
	fedFalse
)

// fedCompile compiles a query tree for one branch of subjects; for the
// imaged-only branch, clinical conditions are false (those patients have
// no clinical rows) and the tree is folded around them.
func fedCompile(n *lens.Node, imagedOnly bool) (fedExpr, error) {
	switch n.Op {
	case lens.And, lens.Or:
		absorb, neutral := fedFalse, fedTrue // AND
		if n.Op == lens.Or {
			absorb, neutral = fedTrue, fedFalse
		}
		var parts []string
		var args []any
		for _, k := range n.Children {
			e, err := fedCompile(k, imagedOnly)
			if err != nil {
				return fedExpr{}, err
			}
			switch e.val {
			case absorb:
				return fedExpr{val: absorb}, nil
			case neutral:
				continue
			}
			parts = append(parts, e.sql)
			args = append(args, e.args...)
		}
		switch len(parts) {
		case 0:
			return fedExpr{val: neutral}, nil
		case 1:
			return fedExpr{sql: parts[0], args: args}, nil
		}
		return fedExpr{sql: "(" + strings.Join(parts, " "+string(n.Op)+" ") + ")", args: args}, nil
	case lens.Not:
		if len(n.Children) != 1 {
			return fedExpr{}, fmt.Errorf("%w: NOT with %d children", ErrInvalid, len(n.Children))
		}
		e, err := fedCompile(n.Children[0], imagedOnly)
		if err != nil {
			return fedExpr{}, err
		}
		switch e.val {
		case fedTrue:
			return fedExpr{val: fedFalse}, nil
		case fedFalse:
			return fedExpr{val: fedTrue}, nil
		}
		return fedExpr{sql: "NOT (" + e.sql + ")", args: e.args}, nil
	case "":
		if n.Cond != nil {
			if imagedOnly && !n.Cond.Attr.Imaging() && n.Cond.Attr != lens.Gender {
				return fedExpr{val: fedFalse}, nil
			}
			var c fedCompiler
			sql, err := c.cond(n.Cond)
			return fedExpr{sql: sql, args: c.args}, err
		}
	}
	return fedExpr{}, fmt.Errorf("%w: query node", ErrInvalid)
}

// fedCompiler compiles one condition, collecting its bound values.
type fedCompiler struct {
	args []any
}

func (c *fedCompiler) bind(vals ...string) string {
	for _, v := range vals {
		c.args = append(c.args, v)
	}
	return placeholders(len(vals))
}

// The expressions conditions test. Manufacturer words are matched on the
// upper-cased value with separators read as spaces, padded with a space
// on each side, so that "% GE %" finds GE MEDICAL SYSTEMS and GE_MEC but
// not AGFA-GEVAERT.
const (
	fedICDExpr   = `REPLACE(UPPER(cc.icd10_code), '.', '')`
	fedWordsExpr = `' ' || REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(UPPER(se.manufacturer), '_', ' '), '-', ' '), '.', ' '), ',', ' '), '/', ' ') || ' '`
)

func (c *fedCompiler) cond(k *lens.Condition) (string, error) {
	switch k.Attr {
	case lens.Gender:
		vals := fedValues(k, lens.Exact)
		if len(vals) == 0 {
			return "", fmt.Errorf("%w: gender condition without values", ErrInvalid)
		}
		if k.Negated {
			return "s.g NOT IN (" + c.bind(vals...) + ")", nil
		}
		return "s.g IN (" + c.bind(vals...) + ")", nil

	case lens.AgeAtDiagnosis, lens.YearOfDiagnosis:
		col := "cc.age_at_diagnosis"
		if k.Attr == lens.YearOfDiagnosis {
			col = "cc.diagnosis_year"
		}
		var parts []string
		if k.Min != nil {
			parts = append(parts, col+" >= ?")
			c.args = append(c.args, *k.Min)
		}
		if k.Max != nil {
			parts = append(parts, col+" <= ?")
			c.args = append(c.args, *k.Max)
		}
		pred := col + " IS NOT NULL"
		if len(parts) > 0 {
			if k.Negated {
				pred += " AND NOT (" + strings.Join(parts, " AND ") + ")"
			} else {
				pred += " AND " + strings.Join(parts, " AND ")
			}
		}
		return "EXISTS (SELECT 1 FROM cdm_cancer_condition cc WHERE cc.patient_pk = s.cpk AND " + pred + ")", nil

	case lens.Diagnosis:
		prefixes := fedValues(k, lens.Prefix)
		types := fedValues(k, lens.CancerType)
		if len(prefixes) == 0 && len(types) == 0 {
			return "", fmt.Errorf("%w: diagnosis condition without values", ErrInvalid)
		}
		var pred string
		code := "1=0"
		if len(prefixes) > 0 {
			code = c.prefixes(prefixes)
		}
		if k.Negated {
			pred = "(cc.icd10_code <> '' AND NOT (" + code + "))"
			if len(types) > 0 {
				pred += " OR (cc.icd10_code = '' AND cc.cancer_type <> '' AND cc.cancer_type NOT IN (" + c.bind(types...) + "))"
			}
		} else {
			pred = "(cc.icd10_code <> '' AND (" + code + "))"
			if len(types) > 0 {
				pred += " OR (cc.icd10_code = '' AND cc.cancer_type IN (" + c.bind(types...) + "))"
			}
		}
		return "EXISTS (SELECT 1 FROM cdm_cancer_condition cc WHERE cc.patient_pk = s.cpk AND (" + pred + "))", nil

	case lens.Modality, lens.BodyPart:
		col := "se.modality"
		if k.Attr == lens.BodyPart {
			col = "se.body_part"
		}
		vals := fedValues(k, lens.Exact)
		if len(vals) == 0 {
			return "", fmt.Errorf("%w: %s condition without values", ErrInvalid, k.Attr)
		}
		var pred string
		if k.Negated {
			pred = col + " <> '' AND " + col + " NOT IN (" + c.bind(vals...) + ")"
		} else {
			pred = col + " IN (" + c.bind(vals...) + ")"
		}
		return fedSeriesExists(pred), nil

	case lens.Manufacturer:
		var alts []string
		for _, m := range k.Matches {
			switch m.Kind {
			case lens.Word:
				// The plain LIKE on the first word is implied by the
				// word match and much cheaper: it spares most series
				// the normalisation.
				first, _, _ := strings.Cut(m.Value, " ")
				alts = append(alts, "(UPPER(se.manufacturer) LIKE ? AND "+fedWordsExpr+" LIKE ?)")
				c.args = append(c.args, "%"+first+"%", "% "+m.Value+" %")
			case lens.Exact:
				alts = append(alts, "UPPER(TRIM(se.manufacturer)) = ?")
				c.args = append(c.args, m.Value)
			case lens.Substring:
				alts = append(alts, `UPPER(se.manufacturer) LIKE ? ESCAPE '\'`)
				c.args = append(c.args, "%"+fedEscapeLike(m.Value)+"%")
			default:
				return "", fmt.Errorf("%w: manufacturer match %s", ErrInvalid, m.Kind)
			}
		}
		if len(alts) == 0 {
			return "", fmt.Errorf("%w: manufacturer condition without values", ErrInvalid)
		}
		pred := "(" + strings.Join(alts, " OR ") + ")"
		if k.Negated {
			pred = "se.manufacturer <> '' AND NOT " + pred
		}
		return fedSeriesExists(pred), nil
	}
	return "", fmt.Errorf("%w: condition on %s", ErrInvalid, k.Attr)
}

func fedSeriesExists(pred string) string {
	return "EXISTS (SELECT 1 FROM cdm_image_series se WHERE se.dataset_id = s.ds AND se.patient_id = s.pid AND " + pred + ")"
}

// prefixes matches the ICD-10 code against prefixes, grouped by length so
// that each group is one SUBSTR ... IN test.
func (c *fedCompiler) prefixes(ps []string) string {
	byLen := map[int][]string{}
	for _, p := range ps {
		byLen[len(p)] = append(byLen[len(p)], p)
	}
	lengths := make([]int, 0, len(byLen))
	for l := range byLen {
		lengths = append(lengths, l)
	}
	sort.Ints(lengths)
	var parts []string
	for _, l := range lengths {
		c.args = append(c.args, l)
		parts = append(parts, "SUBSTR("+fedICDExpr+", 1, ?) IN ("+c.bind(byLen[l]...)+")")
	}
	return strings.Join(parts, " OR ")
}

// fedEscapeLike escapes LIKE's wildcards and its escape character.
func fedEscapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
