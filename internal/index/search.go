package index

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
	"github.com/mosaic-imaging/mosaic/internal/sqldb"
)

// Level is a level of the DICOM information model that Search returns.
type Level int

// The levels.
const (
	StudyLevel Level = iota
	SeriesLevel
	InstanceLevel
)

// MatchKind is how a Filter matches.
type MatchKind int

// The kinds of matching of PS3.4 C.2.2.2 that the index supports.
const (
	MatchExact    MatchKind = iota // single value
	MatchWildcard                  // Pattern holds a SQL LIKE pattern with \ as escape
	MatchList                      // any of Values (UID lists)
	MatchRange                     // Min <= value <= Max, either end open when empty
)

// Filter is one matching key of a search. Values are data: they are bound
// as query parameters, never spliced into SQL.
type Filter struct {
	Tag     dicom.Tag
	Kind    MatchKind
	Value   string   // MatchExact
	Pattern string   // MatchWildcard
	Values  []string // MatchList
	Min     string   // MatchRange
	Max     string   // MatchRange
}

// Search is a QIDO-RS search: a level, an optional scope (the study, and
// for instances the series, named in the URL), filters, and a page.
type Search struct {
	Dataset   string
	Level     Level
	StudyUID  string
	SeriesUID string
	Filters   []Filter
	Limit     int
	Offset    int
	// NoMeta leaves Hit.Meta empty, for searches that return only the
	// attributes the index holds (no includefield beyond them).
	NoMeta bool
	// Snapshot, when set, limits results to the cohort snapshot of that
	// id in Dataset (its studies, and the series and instances they held
	// when it was made).
	Snapshot string
}

// column is how the index stores one matchable or returned attribute.
type column struct {
	expr  string
	vr    dicom.VR
	level Level // the lowest level that has it
	// pn marks person names, matched without regard to case.
	pn bool
	// multi marks backslash-separated multiple values.
	multi bool
}

// columns maps attributes to the index's columns (aliases: p patients,
// st studies, se series, i instances).
var columns = map[dicom.Tag]column{
	0x00080020: {expr: "st.study_date", vr: dicom.DA},
	0x00080030: {expr: "st.study_time", vr: dicom.TM},
	0x00080050: {expr: "st.accession_number", vr: dicom.SH},
	0x00080061: {expr: "st.modalities", vr: dicom.CS, multi: true},
	0x00080090: {expr: "st.referring_physician", vr: dicom.PN, pn: true},
	0x00081030: {expr: "st.study_description", vr: dicom.LO},
	0x00100010: {expr: "p.patient_name", vr: dicom.PN, pn: true},
	0x00100020: {expr: "p.patient_id", vr: dicom.LO},
	0x00100030: {expr: "p.birth_date", vr: dicom.DA},
	0x00100040: {expr: "p.sex", vr: dicom.CS},
	0x00101010: {expr: "st.patient_age", vr: dicom.AS},
	0x0020000D: {expr: "st.study_uid", vr: dicom.UI},
	0x00200010: {expr: "st.study_id", vr: dicom.SH},
	0x00201206: {expr: "st.num_series", vr: dicom.IS},
	0x00201208: {expr: "st.num_instances", vr: dicom.IS},

	0x00080060: {expr: "se.modality", vr: dicom.CS, level: SeriesLevel},
	0x00080021: {expr: "se.series_date", vr: dicom.DA, level: SeriesLevel},
	0x00080070: {expr: "se.manufacturer", vr: dicom.LO, level: SeriesLevel},
	0x00081090: {expr: "se.model_name", vr: dicom.LO, level: SeriesLevel},
	0x0008103E: {expr: "se.series_description", vr: dicom.LO, level: SeriesLevel},
	0x00180015: {expr: "se.body_part", vr: dicom.CS, level: SeriesLevel},
	0x0020000E: {expr: "se.series_uid", vr: dicom.UI, level: SeriesLevel},
	0x00200011: {expr: "se.series_number", vr: dicom.IS, level: SeriesLevel},
	0x00201209: {expr: "se.num_instances", vr: dicom.IS, level: SeriesLevel},
	0x00400244: {expr: "se.pps_start_date", vr: dicom.DA, level: SeriesLevel},
	0x00400245: {expr: "se.pps_start_time", vr: dicom.TM, level: SeriesLevel},

	0x00080016: {expr: "i.sop_class_uid", vr: dicom.UI, level: InstanceLevel},
	0x00080018: {expr: "i.sop_uid", vr: dicom.UI, level: InstanceLevel},
	0x00200013: {expr: "i.instance_number", vr: dicom.IS, level: InstanceLevel},
	0x00280008: {expr: "i.frames", vr: dicom.IS, level: InstanceLevel},
	0x00280010: {expr: "i.rows_", vr: dicom.US, level: InstanceLevel},
	0x00280011: {expr: "i.columns_", vr: dicom.US, level: InstanceLevel},
	0x00280100: {expr: "i.bits_allocated", vr: dicom.US, level: InstanceLevel},
	0x00020010: {expr: "i.transfer_syntax", vr: dicom.UI, level: InstanceLevel},
}

// Matchable reports whether the index can match tag at a level.
func Matchable(l Level, t dicom.Tag) bool {
	c, ok := columns[t]
	return ok && c.level <= l
}

// Returned lists, per level, the attributes each result carries from the
// index (PS3.18 Table 6.7.1-2 and the matching keys), in tag order.
func Returned(l Level) []dicom.Tag {
	var out []dicom.Tag
	for t, c := range columns {
		if c.level == l || (l == SeriesLevel && c.level == StudyLevel && t == 0x0020000D) ||
			(l == InstanceLevel && (t == 0x0020000D || t == 0x0020000E)) {
			out = append(out, t)
		}
	}
	sortTags(out)
	return out
}

// ColumnVR returns the VR the index gives a returned attribute.
func ColumnVR(t dicom.Tag) dicom.VR { return columns[t].vr }

func sortTags(ts []dicom.Tag) {
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && ts[j] < ts[j-1]; j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
}

// Hit is one search result: the values of the attributes the index holds
// for it, and the DICOM JSON metadata of a representative instance (the
// first stored of the study or series, or the instance itself) for
// attributes asked for with includefield.
type Hit struct {
	StudyUID, SeriesUID, SOPUID string
	Values                      map[dicom.Tag]string
	Meta                        []byte
}

// Search runs a QIDO-RS search and returns at most Limit hits (0: no
// limit) after skipping Offset, in the order the objects were first
// stored.
func (s *Store) Search(ctx context.Context, q Search) ([]Hit, error) {
	// The level's table, its joins up the hierarchy, its key.
	var base, joins, pk, metaJoin string
	switch q.Level {
	case StudyLevel:
		base, joins = `studies st`, `JOIN patients p ON p.pk = st.patient_pk`
		pk = "st.pk"
		metaJoin = `LEFT JOIN instances m ON m.pk = st.first_instance_pk`
	case SeriesLevel:
		base, joins = `series se`, `JOIN studies st ON st.pk = se.study_pk JOIN patients p ON p.pk = st.patient_pk`
		pk = "se.pk"
		metaJoin = `LEFT JOIN instances m ON m.pk = se.first_instance_pk`
	case InstanceLevel:
		base, joins = `instances i`, `JOIN series se ON se.pk = i.series_pk JOIN studies st ON st.pk = se.study_pk JOIN patients p ON p.pk = st.patient_pk`
		pk = "i.pk"
	default:
		return nil, fmt.Errorf("%w: search level", ErrInvalid)
	}
	col := func(t dicom.Tag) (column, bool) { c, ok := columns[t]; return c, ok }
	var last int64
	if q.Snapshot != "" {
		var ok bool
		var err error
		if last, ok, err = s.snapshotLast(ctx, q.Snapshot, q.Dataset); err != nil || !ok {
			return nil, err
		}
		col = snapshotColumns(last)
	}
	ret := Returned(q.Level)
	if q.Level != StudyLevel {
		// Series and instance results carry the study's attributes too
		// (PS3.18 returns them when matched; they cost nothing here).
		for t, c := range columns {
			if c.level == StudyLevel && t != 0x0020000D {
				ret = append(ret, t)
			}
		}
		if q.Level == InstanceLevel {
			for t, c := range columns {
				if c.level == SeriesLevel && t != 0x0020000E {
					ret = append(ret, t)
				}
			}
		}
		sortTags(ret)
	}
	var sel strings.Builder
	sel.WriteString("SELECT st.study_uid, ")
	if q.Level >= SeriesLevel {
		sel.WriteString("se.series_uid, ")
	} else {
		sel.WriteString("'', ")
	}
	if q.Level == InstanceLevel {
		sel.WriteString("i.sop_uid, i.meta")
	} else if q.NoMeta {
		sel.WriteString("'', NULL")
		metaJoin = ""
	} else {
		sel.WriteString("'', m.meta")
	}
	for _, t := range ret {
		c, _ := col(t)
		if c.vr == dicom.IS || c.vr == dicom.US {
			sel.WriteString(", CAST(" + c.expr + " AS TEXT)")
		} else {
			sel.WriteString(", " + c.expr)
		}
	}
	// The patient's dataset is the study's: saying so lets the engine
	// find a patient by the (dataset_id, patient_id) key.
	where := []string{"st.dataset_id = ?", "p.dataset_id = ?"}
	args := []any{q.Dataset, q.Dataset}
	if q.StudyUID != "" {
		where = append(where, "st.study_uid = ?")
		args = append(args, q.StudyUID)
	}
	if q.SeriesUID != "" {
		where = append(where, "se.series_uid = ?")
		args = append(args, q.SeriesUID)
	}
	if q.Snapshot != "" {
		cond, a := snapshotScope(q.Snapshot, q.Dataset, q.Level, last)
		where = append(where, cond)
		args = append(args, a...)
	}
	for _, f := range q.Filters {
		c, ok := col(f.Tag)
		if !ok || c.level > q.Level {
			return nil, fmt.Errorf("%w: matching on %s is not supported at this level", ErrInvalid, f.Tag)
		}
		cond, a, err := s.condition(c, f, f.Tag)
		if err != nil {
			return nil, err
		}
		if cond != "" {
			where = append(where, cond)
			args = append(args, a...)
		}
	}
	// The page is chosen first, on the keys alone; only its rows are
	// then read whole, with their metadata. Otherwise the engine reads
	// (and sorts) every match's row and metadata to return the first few.
	page := "SELECT " + pk + " AS pk FROM " + base + " " + joins + " WHERE " + strings.Join(where, " AND ") + " ORDER BY " + pk
	switch {
	case q.Limit > 0:
		page += fmt.Sprintf(" LIMIT %d", q.Limit)
	case q.Offset > 0 && s.db.Dialect == sqldb.SQLite:
		page += " LIMIT -1"
	}
	if q.Offset > 0 {
		page += fmt.Sprintf(" OFFSET %d", q.Offset)
	}
	sel.WriteString(" FROM " + base + " JOIN (" + page + ") page ON page.pk = " + pk + " " + joins + " " + metaJoin + " ORDER BY " + pk)
	rows, err := s.db.Query(ctx, sel.String(), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Hit
	dest := make([]any, 4+len(ret))
	vals := make([]sql.NullString, len(ret))
	for rows.Next() {
		var h Hit
		dest[0], dest[1], dest[2], dest[3] = &h.StudyUID, &h.SeriesUID, &h.SOPUID, &h.Meta
		for i := range vals {
			dest[4+i] = &vals[i]
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		h.Values = make(map[dicom.Tag]string, len(ret))
		for i, t := range ret {
			if vals[i].Valid && vals[i].String != "" {
				h.Values[t] = vals[i].String
			}
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// condition turns one filter into SQL with bound arguments.
func (s *Store) condition(c column, f Filter, t dicom.Tag) (string, []any, error) {
	expr := c.expr
	if c.vr == dicom.IS || c.vr == dicom.US {
		expr = "CAST(" + c.expr + " AS TEXT)"
	}
	if t == 0x00080061 {
		// Modalities in Study: any series of the study matches. Exact
		// values are looked for in the study's own list of its series'
		// modalities (backslash-separated), which costs no lookup of
		// series per study.
		find := "instr"
		if s.db.Dialect == sqldb.Postgres {
			find = "strpos"
		}
		in := find + "('\\' || st.modalities || '\\', '\\' || ? || '\\') > 0"
		sub := "EXISTS (SELECT 1 FROM series ms WHERE ms.study_pk = st.pk AND "
		switch f.Kind {
		case MatchExact:
			return in, []any{f.Value}, nil
		case MatchList:
			if len(f.Values) == 0 {
				return "", nil, nil
			}
			return "(" + strings.TrimSuffix(strings.Repeat(in+" OR ", len(f.Values)), " OR ") + ")", strs(f.Values), nil
		case MatchWildcard:
			return sub + "ms.modality LIKE ? ESCAPE '\\')", []any{f.Pattern}, nil
		}
		return "", nil, fmt.Errorf("%w: range matching on Modalities in Study", ErrInvalid)
	}
	lower := func(e string) string {
		if c.pn {
			return "LOWER(" + e + ")"
		}
		return e
	}
	like := "LIKE"
	if c.pn && s.db.Dialect == sqldb.Postgres {
		like = "ILIKE"
	}
	switch f.Kind {
	case MatchExact:
		if c.pn {
			return lower(expr) + " = LOWER(?)", []any{f.Value}, nil
		}
		return expr + " = ?", []any{f.Value}, nil
	case MatchWildcard:
		if !c.pn && s.db.Dialect == sqldb.SQLite {
			// SQLite's LIKE ignores ASCII case; GLOB does not.
			return expr + " GLOB ?", []any{likeToGlob(f.Pattern)}, nil
		}
		return expr + " " + like + " ? ESCAPE '\\'", []any{f.Pattern}, nil
	case MatchList:
		if len(f.Values) == 0 {
			return "", nil, nil
		}
		return expr + " IN (" + placeholders(len(f.Values)) + ")", strs(f.Values), nil
	case MatchRange:
		var conds []string
		var args []any
		conds = append(conds, expr+" <> ''")
		if f.Min != "" {
			conds = append(conds, expr+" >= ?")
			args = append(args, f.Min)
		}
		if f.Max != "" {
			conds = append(conds, expr+" <= ?")
			args = append(args, f.Max)
		}
		return "(" + strings.Join(conds, " AND ") + ")", args, nil
	}
	return "", nil, fmt.Errorf("%w: match kind", ErrInvalid)
}

// likeToGlob turns a LIKE pattern with \ as escape into a GLOB pattern.
func likeToGlob(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			i++
			switch n := p[i]; n {
			case '*', '?', '[':
				b.WriteByte('[')
				b.WriteByte(n)
				b.WriteByte(']')
			default:
				b.WriteByte(n)
			}
		case c == '%':
			b.WriteByte('*')
		case c == '_':
			b.WriteByte('?')
		case c == '*' || c == '?' || c == '[':
			b.WriteByte('[')
			b.WriteByte(c)
			b.WriteByte(']')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func strs(v []string) []any {
	out := make([]any, len(v))
	for i, s := range v {
		out[i] = s
	}
	return out
}
