package dicomweb

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

// Level is the level of the DICOM information model a QIDO-RS search
// returns: studies, series or instances.
type Level int

// The levels of the search transactions of PS3.18 10.6.
const (
	Study Level = iota + 1
	Series
	Instance
)

// String returns "study", "series" or "instance".
func (l Level) String() string {
	switch l {
	case Study:
		return "study"
	case Series:
		return "series"
	case Instance:
		return "instance"
	}
	return "Level(" + strconv.Itoa(int(l)) + ")"
}

// The matching keys each level must support (PS3.18 Table 10.6.1-5),
// leaving out the two nested ones of the series level
// (RequestAttributeSequence.ScheduledProcedureStepID and
// .RequestedProcedureID), since nested matching is not supported.
var (
	studyKeys = []dicom.Tag{
		0x00080020, // StudyDate
		0x00080030, // StudyTime
		0x00080050, // AccessionNumber
		0x00080061, // ModalitiesInStudy
		0x00080090, // ReferringPhysicianName
		0x00100010, // PatientName
		0x00100020, // PatientID
		0x0020000D, // StudyInstanceUID
		0x00200010, // StudyID
	}
	seriesKeys = []dicom.Tag{
		0x00080060, // Modality
		0x0020000E, // SeriesInstanceUID
		0x00200011, // SeriesNumber
		0x00400244, // PerformedProcedureStepStartDate
		0x00400245, // PerformedProcedureStepStartTime
	}
	instanceKeys = []dicom.Tag{
		0x00080016, // SOPClassUID
		0x00080018, // SOPInstanceUID
		0x00200013, // InstanceNumber
	}
)

// MatchableTags returns, in a new slice, the attributes the node matches
// on at level l: the required matching keys of PS3.18 Table 10.6.1-5 for
// that level, followed by those of the levels above it. Parent keys are
// included because a search over all series (/series) or all instances
// (/instances) may match on study and series attributes too; a search
// scoped to one study or series carries that UID in its path.
func (l Level) MatchableTags() []dicom.Tag {
	var out []dicom.Tag
	switch l {
	case Instance:
		out = append(out, instanceKeys...)
		fallthrough
	case Series:
		out = append(out, seriesKeys...)
		fallthrough
	case Study:
		out = append(out, studyKeys...)
	}
	return out
}

// LevelOf returns the level whose required matching keys include t, for
// the tags MatchableTags lists; false for any other tag.
func LevelOf(t dicom.Tag) (Level, bool) {
	switch {
	case slices.Contains(studyKeys, t):
		return Study, true
	case slices.Contains(seriesKeys, t):
		return Series, true
	case slices.Contains(instanceKeys, t):
		return Instance, true
	}
	return 0, false
}

// Kind is the kind of matching of PS3.4 C.2.2.2 a Match asks for.
type Kind int

// Kinds of matching.
const (
	// Universal matches every entity; the attribute is returned. It comes
	// from an empty value, or from a value of only "*" for the text VRs
	// on which wild cards apply.
	Universal Kind = iota + 1
	// Exact is single value matching: Values holds the one value.
	Exact
	// Wildcard is wild card matching: Values holds the one pattern, in
	// which "*" stands for any sequence of characters and "?" for any one
	// character. See LikePattern.
	Wildcard
	// UIDList is list of UID matching: Values holds two or more UIDs, any
	// of which matches.
	UIDList
	// DateRange, TimeRange and DateTimeRange are range matching on DA, TM
	// and DT attributes: Min and Max hold the ends, either of which (not
	// both) may be empty for an open end. The ends are inclusive.
	DateRange
	TimeRange
	DateTimeRange
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case Universal:
		return "universal"
	case Exact:
		return "exact"
	case Wildcard:
		return "wildcard"
	case UIDList:
		return "uid-list"
	case DateRange:
		return "date-range"
	case TimeRange:
		return "time-range"
	case DateTimeRange:
		return "datetime-range"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Match is one attribute matching parameter of a search.
//
// Values, Min and Max are the raw strings of the query, validated for
// their VR but otherwise as the client sent them: quotes, semicolons, %
// and _ are data, never syntax. A store must pass them as bound parameters
// (or through LikePattern for a LIKE operand), never splice them into SQL
// text.
type Match struct {
	// Tag and Keyword name the attribute, whichever form the query used;
	// VR is its VR in the data dictionary, which decided how the value
	// was read.
	Tag     dicom.Tag
	Keyword string
	VR      dicom.VR
	// Kind is the kind of matching asked for.
	Kind Kind
	// Values holds the value of Exact, the pattern of Wildcard and the
	// UIDs of UIDList; it is empty for the other kinds.
	Values []string
	// Min and Max are the ends of a range; empty means open.
	Min, Max string
	// CaseInsensitive is set for PN attributes. PS3.4 C.2.2.2 makes
	// single value and wild card matching case-sensitive except for PN,
	// where it leaves case to the implementation; this node matches
	// person names without regard to case, as most archives do.
	CaseInsensitive bool
}

// LikePattern returns a SQL LIKE operand for an Exact or Wildcard match:
// "%", "_" and the escape character itself are escaped with escape; in a
// Wildcard pattern "*" becomes "%" and "?" becomes "_". Universal gives
// "%". The other kinds return "": they are not LIKE matches. Use it as
// `col LIKE ? ESCAPE '<escape>'`, adding lower() or ILIKE on both sides
// when CaseInsensitive is set (SQLite's LIKE ignores ASCII case by
// default, PostgreSQL's does not).
//
// LikePattern panics if escape is 0, '%', '_', '*', '?' or not ASCII,
// which is a programming error.
func (m Match) LikePattern(escape byte) string {
	if escape == 0 || escape >= 0x80 || strings.IndexByte("%_*?", escape) >= 0 {
		panic("dicomweb: invalid LIKE escape character")
	}
	switch m.Kind {
	case Universal:
		return "%"
	case Exact, Wildcard:
	default:
		return ""
	}
	if len(m.Values) == 0 {
		return ""
	}
	v := m.Values[0]
	var b strings.Builder
	b.Grow(len(v) + 8)
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '%' || c == '_' || c == escape:
			b.WriteByte(escape)
			b.WriteByte(c)
		case m.Kind == Wildcard && c == '*':
			b.WriteByte('%')
		case m.Kind == Wildcard && c == '?':
			b.WriteByte('_')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// DefaultMaxLimit is the most results one search response holds when
// QueryOptions.MaxLimit is zero.
const DefaultMaxLimit = 1000

// Bounds on the values of a query.
const (
	maxValueBytes = 1024 // one matching value
	maxListValues = 1000 // UIDs in one list
	maxNameBytes  = 64   // a parameter name quoted in an error
)

// QueryOptions adjust ParseQueryWith to what the node supports.
type QueryOptions struct {
	// MaxLimit is the most results one response holds: larger limits are
	// lowered to it. Zero means DefaultMaxLimit.
	MaxLimit int
	// ExtraMatchable lists attributes, beyond Level.MatchableTags, that the
	// caller can match on. They must be in the data dictionary (their VR
	// decides how the value is read).
	ExtraMatchable []dicom.Tag
	// FuzzyMatching says the caller performs fuzzy matching of person
	// names. When false, fuzzymatching=true yields a warning and literal
	// matching (PS3.18 8.3.4.2).
	FuzzyMatching bool
}

// Query is a parsed QIDO-RS search (PS3.18 8.3.4 and 10.6).
type Query struct {
	// Level is the level searched.
	Level Level
	// Match holds the attribute matching parameters, sorted by tag, one
	// per attribute.
	Match []Match
	// IncludeFields lists the attributes named by includefield
	// parameters, without repeats, in the order given (parameters whose
	// names differ in case are taken in sorted order). Private and unknown
	// tags given in hexadecimal are kept. IncludeAll is set
	// by includefield=all. PS3.18 says other includefield parameters shall
	// not accompany "all"; they are accepted and kept here, since "all"
	// covers them.
	IncludeFields []dicom.Tag
	IncludeAll    bool
	// Limit is the most results to return: the limit asked for, lowered
	// to MaxLimit, or MaxLimit when none was asked. limit=0 is kept as 0
	// (PS3.18 8.3.4.4.1 then gives no result: 204 No Content).
	Limit int
	// LimitCapped is set when Limit is the server's maximum rather than
	// the client's choice: no limit was asked, or a larger one. When the
	// response then holds Limit results and more matches remain, PS3.18
	// 8.3.4.4.1 wants a Warning header: add MoreResultsWarning(service).
	LimitCapped bool
	// Offset is the number of matches to skip.
	Offset int
	// FuzzyMatching is set when fuzzymatching=true was asked and
	// QueryOptions.FuzzyMatching says the caller supports it.
	FuzzyMatching bool
	// Warnings holds texts for Warning headers (see WarningHeader) about
	// parameters that were accepted but not honoured.
	Warnings []string
}

// Warning texts (PS3.18 8.3.4): the parameter was accepted, the search was
// performed without it.
const (
	WarningFuzzyNotSupported         = "The fuzzymatching parameter is not supported; only literal matching was performed."
	WarningEmptyValueNotSupported    = "The emptyvaluematching parameter is not supported; empty values were not matched."
	WarningMultipleValueNotSupported = "The multiplevaluematching parameter is not supported; multiple value matching was not performed."
	warningMoreResults               = "There are more matches than this response holds; request them with the offset parameter."
)

// WarningHeader formats the value of an HTTP Warning header in the form
// PS3.18 uses: 299 <service>: <text>, where service is the base URI of
// the DICOMweb service.
func WarningHeader(service, text string) string {
	return "299 " + service + ": " + text
}

// MoreResultsWarning returns the Warning header value PS3.18 8.3.4.4.1
// asks for when a response was cut to the server's maximum and more
// matches remain.
func MoreResultsWarning(service string) string {
	return WarningHeader(service, warningMoreResults)
}

// ParseQuery parses the query parameters of a search at level with the
// default QueryOptions. See ParseQueryWith.
func ParseQuery(level Level, values url.Values) (*Query, error) {
	return ParseQueryWith(level, values, QueryOptions{})
}

// ParseQueryWith parses the query parameters of a search at level. The
// handler should get values from url.ParseQuery(r.URL.RawQuery) and
// answer 400 when that fails, rather than use r.URL.Query(), which drops
// malformed pairs without a word.
//
// Parameter names are the search parameters of PS3.18 Table 8.3.4-1
// (limit, offset, includefield, fuzzymatching, emptyvaluematching,
// multiplevaluematching; matched without regard to case), the common
// parameters accept and charset (left to the caller), or attributes given
// by keyword (PatientName, case-sensitive as in PS3.6) or by eight
// hexadecimal digits (00100010). includefield may repeat and each may list
// attributes separated by commas. Other parameters may appear once.
//
// Errors are *Error with status 400 wrapping ErrInvalidQuery, naming the
// parameter or attribute but never quoting a value: an unknown parameter
// name (PS3.18 lets servers ignore those; this node refuses them so that
// a misspelt attribute does not silently widen a search), an unknown
// keyword in includefield, a nested attribute (00400275.00321060), an attribute the level does not match
// on, a value that is not valid for the attribute's VR (a DA that is not
// YYYYMMDD, a TM that is not HHMMSS.FFFFFF or shorter, a UID list with an
// invalid UID, wild cards outside text VRs), several values
// (backslash-separated) outside UID lists, or a limit or offset that is
// not an unsigned integer.
func ParseQueryWith(level Level, values url.Values, opts QueryOptions) (*Query, error) {
	if level < Study || level > Instance {
		return nil, queryError("invalid query level")
	}
	maxLimit := opts.MaxLimit
	if maxLimit <= 0 {
		maxLimit = DefaultMaxLimit
	}
	matchable := level.MatchableTags()
	matchable = append(matchable, opts.ExtraMatchable...)

	q := &Query{Level: level, Limit: maxLimit, LimitCapped: true}
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	slices.Sort(names)
	seenInclude := map[dicom.Tag]bool{}
	seenMatch := map[dicom.Tag]bool{}

	for _, name := range names {
		vals := values[name]
		lname := strings.ToLower(name)
		switch lname {
		case "accept", "charset":
			continue
		case "includefield":
			for _, v := range vals {
				for item := range strings.SplitSeq(v, ",") {
					item = strings.TrimSpace(item)
					switch {
					case item == "":
					case strings.EqualFold(item, "all"):
						q.IncludeAll = true
					default:
						t, _, err := resolveAttribute(item, "includefield")
						if err != nil {
							return nil, err
						}
						if !seenInclude[t] {
							seenInclude[t] = true
							q.IncludeFields = append(q.IncludeFields, t)
						}
					}
				}
			}
			continue
		}
		if len(vals) != 1 {
			return nil, queryError(fmt.Sprintf("query parameter %s given more than once", quoteName(name)))
		}
		v := vals[0]
		switch lname {
		case "limit":
			n, err := parseUint(v, "limit")
			if err != nil {
				return nil, err
			}
			q.Limit, q.LimitCapped = maxLimit, n > uint64(maxLimit)
			if !q.LimitCapped {
				q.Limit = int(n)
			}
		case "offset":
			n, err := parseUint(v, "offset")
			if err != nil {
				return nil, err
			}
			if n > math.MaxInt32 {
				return nil, queryError("offset is too large")
			}
			q.Offset = int(n)
		case "fuzzymatching", "emptyvaluematching", "multiplevaluematching":
			on, err := parseBool(v, lname)
			if err != nil {
				return nil, err
			}
			switch {
			case !on:
			case lname == "fuzzymatching" && opts.FuzzyMatching:
				q.FuzzyMatching = true
			case lname == "fuzzymatching":
				q.Warnings = append(q.Warnings, WarningFuzzyNotSupported)
			case lname == "emptyvaluematching":
				q.Warnings = append(q.Warnings, WarningEmptyValueNotSupported)
			default:
				q.Warnings = append(q.Warnings, WarningMultipleValueNotSupported)
			}
		default:
			m, err := parseMatch(name, v, level, matchable)
			if err != nil {
				return nil, err
			}
			if seenMatch[m.Tag] {
				return nil, queryError(fmt.Sprintf("attribute %s given more than once", m.Keyword))
			}
			seenMatch[m.Tag] = true
			q.Match = append(q.Match, m)
		}
	}
	slices.SortFunc(q.Match, func(a, b Match) int {
		switch {
		case a.Tag < b.Tag:
			return -1
		case a.Tag > b.Tag:
			return 1
		}
		return 0
	})
	return q, nil
}

func queryError(reason string) *Error {
	return newError(http.StatusBadRequest, ErrInvalidQuery, reason)
}

// quoteName quotes a parameter name for an error message, shortened so
// that a hostile request cannot fill logs with it.
func quoteName(name string) string {
	if len(name) > maxNameBytes {
		name = name[:maxNameBytes] + "..."
	}
	return strconv.Quote(name)
}

func parseUint(v, name string) (uint64, error) {
	if v == "" || strings.TrimLeft(v, "0123456789") != "" {
		return 0, queryError(name + " must be an unsigned integer")
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		n = math.MaxUint64 // only too many digits get here: just very large
	}
	return n, nil
}

func parseBool(v, name string) (bool, error) {
	switch strings.ToLower(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, queryError(name + " must be true or false")
}

// resolveAttribute turns a keyword or eight hexadecimal digits into a tag
// and, when the dictionary knows it, its entry. what names the parameter
// for errors.
func resolveAttribute(s, what string) (dicom.Tag, dicom.DictEntry, error) {
	if strings.Contains(s, ".") {
		if what == "includefield" {
			return 0, dicom.DictEntry{}, queryError("nested attributes in includefield are not supported")
		}
		return 0, dicom.DictEntry{}, queryError("nested attribute matching is not supported")
	}
	if len(s) == 8 {
		if n, err := strconv.ParseUint(s, 16, 32); err == nil {
			t := dicom.Tag(n)
			e, _ := dicom.Lookup(t)
			return t, e, nil
		}
	}
	if e, ok := dicom.LookupKeyword(s); ok {
		return e.Tag, e, nil
	}
	if what == "includefield" {
		return 0, dicom.DictEntry{}, queryError(fmt.Sprintf("unknown attribute %s in includefield", quoteName(s)))
	}
	return 0, dicom.DictEntry{}, queryError(fmt.Sprintf("unknown query parameter %s", quoteName(s)))
}

// wildcardVRs are the VRs on which PS3.4 C.2.2.2.4 allows wild cards.
var wildcardVRs = []dicom.VR{dicom.AE, dicom.CS, dicom.LO, dicom.LT, dicom.PN, dicom.SH, dicom.ST, dicom.UC, dicom.UR, dicom.UT}

// parseMatch reads one attribute matching parameter.
func parseMatch(name, v string, level Level, matchable []dicom.Tag) (Match, error) {
	t, e, err := resolveAttribute(name, "match")
	if err != nil {
		return Match{}, err
	}
	label := e.Keyword
	if label == "" {
		label = t.Hex()
	}
	if e.Keyword == "" || t.IsPrivate() {
		return Match{}, queryError(fmt.Sprintf("matching on private or unknown attribute %s is not supported", label))
	}
	if !slices.Contains(matchable, t) {
		return Match{}, queryError(fmt.Sprintf("matching on %s is not supported at the %s level", label, level))
	}
	m := Match{Tag: t, Keyword: e.Keyword, VR: e.VR, CaseInsensitive: e.VR == dicom.PN}
	bad := func(what string) error {
		return queryError(fmt.Sprintf("invalid value for %s: %s", label, what))
	}
	if v == "" {
		m.Kind = Universal
		return m, nil
	}
	if len(v) > maxValueBytes {
		return Match{}, bad(fmt.Sprintf("longer than %d bytes", maxValueBytes))
	}
	if !utf8.ValidString(v) {
		return Match{}, bad("not valid UTF-8")
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7F {
			return Match{}, bad("control character")
		}
	}
	multi := strings.Contains(v, `\`)

	switch vr := e.VR; {
	case vr == dicom.UI:
		if strings.ContainsAny(v, "*?") {
			return Match{}, bad("wild cards do not apply to UIDs")
		}
		uids := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '\\' })
		if len(uids) > maxListValues {
			return Match{}, bad(fmt.Sprintf("more than %d UIDs", maxListValues))
		}
		if strings.Count(v, ",")+strings.Count(v, `\`)+1 != len(uids) {
			return Match{}, bad("empty UID in list")
		}
		for _, u := range uids {
			if !validUID(u) {
				return Match{}, bad("not a UID list")
			}
		}
		m.Values = uids
		m.Kind = Exact
		if len(uids) > 1 {
			m.Kind = UIDList
		}
		return m, nil

	case multi:
		return Match{}, bad("several values are only supported in UID lists")

	case vr == dicom.DA || vr == dicom.TM:
		valid, kind := validDA, DateRange
		if vr == dicom.TM {
			valid, kind = validTM, TimeRange
		}
		lo, hi, isRange := strings.Cut(v, "-")
		if !isRange {
			if !valid(v) {
				return Match{}, bad("not a valid " + vr.String())
			}
			m.Kind, m.Values = Exact, []string{v}
			return m, nil
		}
		if (lo == "" && hi == "") || (lo != "" && !valid(lo)) || (hi != "" && !valid(hi)) {
			return Match{}, bad("not a valid " + vr.String() + " range")
		}
		m.Kind, m.Min, m.Max = kind, lo, hi
		return m, nil

	case vr == dicom.DT:
		return parseDTMatch(m, v, bad)

	case vr == dicom.IS || vr == dicom.SS || vr == dicom.SL || vr == dicom.SV:
		if _, err := strconv.ParseInt(strings.TrimPrefix(v, "+"), 10, 64); err != nil || strings.HasPrefix(v, "+-") {
			return Match{}, bad("not an integer")
		}
	case vr == dicom.US || vr == dicom.UL || vr == dicom.UV:
		if _, err := strconv.ParseUint(v, 10, 64); err != nil {
			return Match{}, bad("not an unsigned integer")
		}
	case vr == dicom.DS || vr == dicom.FL || vr == dicom.FD:
		if f, err := strconv.ParseFloat(v, 64); err != nil || math.IsNaN(f) || math.IsInf(f, 0) || strings.ContainsAny(v, "xXpP_") {
			return Match{}, bad("not a decimal number")
		}
	case slices.Contains(wildcardVRs, vr):
		switch {
		case strings.Trim(v, "*") == "":
			m.Kind = Universal
			return m, nil
		case strings.ContainsAny(v, "*?"):
			m.Kind, m.Values = Wildcard, []string{v}
			return m, nil
		}
	case vr == dicom.AS:
		if len(v) != 4 || strings.TrimLeft(v[:3], "0123456789") != "" || strings.IndexByte("DWMY", v[3]) < 0 {
			return Match{}, bad("not an age string")
		}
	default:
		return Match{}, queryError(fmt.Sprintf("matching on %s (VR %s) is not supported", label, vr))
	}
	m.Kind, m.Values = Exact, []string{v}
	return m, nil
}

// validDA accepts YYYYMMDD dates that exist in the calendar; the
// ACR-NEMA form YYYY.MM.DD that dicom.ParseDA also reads is refused.
func validDA(s string) bool {
	if len(s) != 8 || strings.TrimLeft(s, "0123456789") != "" {
		return false
	}
	_, err := dicom.ParseDA(s)
	return err == nil
}

// validTM accepts HH, HHMM, HHMMSS and HHMMSS.F to HHMMSS.FFFFFF; the
// ACR-NEMA form with colons is refused.
func validTM(s string) bool {
	if s == "" || strings.TrimLeft(s, "0123456789.") != "" {
		return false
	}
	_, err := dicom.ParseTM(s)
	return err == nil
}

// validDT accepts DT values (YYYY to YYYYMMDDHHMMSS.FFFFFF, with an
// optional &ZZXX offset) in their strict form.
func validDT(s string) bool {
	if s == "" || strings.TrimLeft(s, "0123456789.+-") != "" {
		return false
	}
	_, err := dicom.ParseDT(s, nil)
	return err == nil
}

// parseDTMatch reads a DT value or range. A DT value may carry a UTC
// offset beginning with '-', so the hyphen of a range is found by trying
// each one: the value is a range when exactly one split gives two valid
// ends (or one valid end and an open one). A value that reads both as one
// DT and as a range is refused as ambiguous; the client can write the
// offset form as a range with equal ends instead.
func parseDTMatch(m Match, v string, bad func(string) error) (Match, error) {
	whole := validDT(v)
	var lo, hi string
	splits := 0
	for i := 0; i < len(v); i++ {
		if v[i] != '-' {
			continue
		}
		l, h := v[:i], v[i+1:]
		if (l == "" && h == "") || (l != "" && !validDT(l)) || (h != "" && !validDT(h)) {
			continue
		}
		lo, hi = l, h
		splits++
	}
	switch {
	case whole && splits == 0:
		m.Kind, m.Values = Exact, []string{v}
		return m, nil
	case !whole && splits == 1:
		m.Kind, m.Min, m.Max = DateTimeRange, lo, hi
		return m, nil
	case splits > 1 || (whole && splits > 0):
		return Match{}, bad("ambiguous DT range")
	}
	return Match{}, bad("not a valid DT")
}
