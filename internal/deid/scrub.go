package deid

import (
	"bytes"
	"slices"
	"strings"
	"unicode"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

// This file implements the Clean Descriptors option of PS3.15 (E.3.5):
// descriptions the policy keeps are scrubbed of the identifying values of
// their own object (names, IDs, dates and times) and of generic patterns
// (dates, long runs of digits), each found span being replaced by a
// neutral marker. The leak check still runs afterwards, as the last guard.

// scrubMarker replaces every span the scrubber removes. It holds no
// letter or digit, so it can neither match a name nor look like an ID,
// and it is never longer than what it replaces (the shortest span
// removed is three characters).
const scrubMarker = "***"

// scrubber holds, lower-cased, what one object's descriptions must lose.
// It is built once per object from the input, before the policy changes
// anything, and used for every description of the object.
type scrubber struct {
	// literals are searched anywhere in the text: IDs and other values of
	// 4 characters or more, the object's dates and times in common forms,
	// name parts in scripts written without spaces.
	literals [][]rune
	// words are matched only as whole words: IDs of 3 characters.
	words [][]rune
	// strong name parts (3 letters or more) are removed wherever they are
	// a whole word; weak ones (initials, two-letter parts) only next to a
	// strong one, as in "J. Doe" or "Doe^Li".
	strong, weak [][]rune
}

// addName adds the parts of a person name.
func (s *scrubber) addName(v string) {
	pn := dicom.ParsePN(v)
	for _, g := range []dicom.NameComponents{pn.Alphabetic, pn.Ideographic, pn.Phonetic} {
		for _, c := range []string{g.Family, g.Given, g.Middle, g.Prefix, g.Suffix} {
			if c == "" {
				continue
			}
			if hasUnspacedScript(c) {
				// Scripts written without spaces between words: the part
				// is searched as a string.
				if r := []rune(strings.ToLower(strings.TrimSpace(c))); len(r) >= 2 {
					s.literals = appendUnique(s.literals, r)
				}
			}
			for _, w := range strings.FieldsFunc(c, func(r rune) bool { return !unicode.IsLetter(r) }) {
				r := []rune(strings.ToLower(w))
				if len(r) >= 3 {
					s.strong = appendUnique(s.strong, r)
					s.weak = appendUnique(s.weak, r[:1]) // its initial
				} else {
					s.weak = appendUnique(s.weak, r)
				}
			}
		}
	}
}

// addID adds an identifier (patient ID, accession number, address ...):
// searched as written and, when it has separators, without them.
func (s *scrubber) addID(v string) {
	v = strings.ToLower(strings.TrimSpace(v))
	r := []rune(v)
	switch {
	case len(r) >= 4:
		s.literals = appendUnique(s.literals, r)
	case len(r) == 3:
		s.words = appendUnique(s.words, r)
	}
	if strings.ContainsAny(v, " -./") {
		compact := []rune(strings.Map(func(c rune) rune {
			if strings.ContainsRune(" -./", c) {
				return -1
			}
			return c
		}, v))
		if len(compact) >= 4 {
			s.literals = appendUnique(s.literals, compact)
		}
	}
}

// addDate adds a DA value (or the date of a DT value) in the forms the
// generic patterns miss: YYYYMMDD, YYYY-MM-DD, DD.MM.YYYY, MM/DD/YYYY and
// the like are runs of digits or numeric dates, found whatever the date;
// with spaces between the numbers, only this object's dates are.
func (s *scrubber) addDate(v string) {
	v = strings.TrimSpace(v)
	if len(v) < 8 || !allDigits(v[:8]) {
		return
	}
	y, m, d := v[:4], v[4:6], v[6:8]
	s.literals = appendUnique(s.literals, []rune(y+" "+m+" "+d))
	s.literals = appendUnique(s.literals, []rune(d+" "+m+" "+y))
}

// addTime adds a TM value (or the time of a DT value) of hours and
// minutes at least, as hh:mm and hh:mm:ss (hhmmss is a run of 6 digits,
// which the generic patterns find).
func (s *scrubber) addTime(v string) {
	v = strings.TrimSpace(v)
	if len(v) < 4 || !allDigits(v[:4]) {
		return
	}
	s.literals = appendUnique(s.literals, []rune(v[:2]+":"+v[2:4]))
	if len(v) >= 6 && allDigits(v[4:6]) {
		s.literals = appendUnique(s.literals, []rune(v[:2]+":"+v[2:4]+":"+v[4:6]))
	}
}

func appendUnique(list [][]rune, r []rune) [][]rune {
	for _, x := range list {
		if runesEqual(x, r) {
			return list
		}
	}
	return append(list, r)
}

func runesEqual(a, b []rune) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func hasUnspacedScript(s string) bool {
	for _, r := range s {
		if unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul, unicode.Thai) {
			return true
		}
	}
	return false
}

// separators may stand between the parts of one name or date: spans
// removed on both sides of a run of them become one marker.
func isSeparator(r rune) bool {
	switch r {
	case ' ', '^', ',', '.', '-', '_', '\'', '/', ':':
		return true
	}
	return false
}

// token is a run of letters or of digits in the text.
type token struct {
	start, end int
	digits     bool
}

// scrubState is the reusable working memory of one scrub.
type scrubState struct {
	text, lower []rune
	removed     []bool
	strong      []bool
	tokens      []token
	out         strings.Builder
}

// scrub returns v with the object's identifying values and generic
// patterns replaced by the marker, and whether anything changed.
func (s *scrubber) scrub(st *scrubState, v string) (string, bool) {
	if v == "" {
		return v, false
	}
	st.text = append(st.text[:0], []rune(v)...)
	n := len(st.text)
	st.lower = st.lower[:0]
	for _, r := range st.text {
		st.lower = append(st.lower, unicode.ToLower(r))
	}
	st.removed = st.removed[:0]
	for range n {
		st.removed = append(st.removed, false)
	}
	any := false
	mark := func(i, j int) {
		for k := i; k < j; k++ {
			st.removed[k] = true
		}
		any = true
	}
	lower := st.lower

	// The object's own values, anywhere.
	for _, lit := range s.literals {
		for i := 0; i+len(lit) <= n; i++ {
			if runesEqual(lower[i:i+len(lit)], lit) {
				mark(i, i+len(lit))
				i += len(lit) - 1
			}
		}
	}

	// Short IDs, as whole words.
	for _, w := range s.words {
		for i := 0; i+len(w) <= n; i++ {
			if runesEqual(lower[i:i+len(w)], w) && (i == 0 || !isAlnum(lower[i-1])) &&
				(i+len(w) == n || !isAlnum(lower[i+len(w)])) {
				mark(i, i+len(w))
			}
		}
	}

	// Words and runs of digits.
	st.tokens = st.tokens[:0]
	for i := 0; i < n; {
		r := lower[i]
		switch {
		case unicode.IsLetter(r):
			j := i + 1
			for j < n && unicode.IsLetter(lower[j]) {
				j++
			}
			st.tokens = append(st.tokens, token{start: i, end: j})
			i = j
		case r >= '0' && r <= '9':
			j := i + 1
			for j < n && lower[j] >= '0' && lower[j] <= '9' {
				j++
			}
			st.tokens = append(st.tokens, token{start: i, end: j, digits: true})
			i = j
		default:
			i++
		}
	}
	toks := st.tokens
	word := func(t token) []rune { return lower[t.start:t.end] }
	in := func(list [][]rune, w []rune) bool {
		for _, x := range list {
			if runesEqual(x, w) {
				return true
			}
		}
		return false
	}
	// strongAt[k] says token k is a name part being removed.
	st.strong = st.strong[:0]
	for range toks {
		st.strong = append(st.strong, false)
	}
	strongAt := st.strong
	for k, t := range toks {
		if t.digits {
			continue
		}
		w := word(t)
		if in(s.strong, w) {
			strongAt[k] = true
			mark(t.start, t.end)
		}
	}
	// Weak parts next to a strong one (only separators between), in both
	// directions, so that chains such as "J. R. Doe" go as a whole.
	for changed := true; changed; {
		changed = false
		for k, t := range toks {
			if t.digits || strongAt[k] || !in(s.weak, word(t)) ||
				(t.start > 0 && isAlnum(lower[t.start-1])) || (t.end < n && isAlnum(lower[t.end])) {
				continue // not a word of its own ("T" of "T2")
			}
			if (k > 0 && strongAt[k-1] && onlySeparators(st.text[toks[k-1].end:t.start])) ||
				(k+1 < len(toks) && strongAt[k+1] && onlySeparators(st.text[t.end:toks[k+1].start])) {
				strongAt[k] = true
				mark(t.start, t.end)
				changed = true
			}
		}
	}

	// Generic patterns: long digit runs, numeric dates, dates with a
	// month name.
	for k := 0; k < len(toks); k++ {
		t := toks[k]
		if t.digits && t.end-t.start >= 6 {
			mark(t.start, t.end)
			continue
		}
		if end, ok := numericDate(st.text, toks, k); ok {
			mark(t.start, end)
			continue
		}
		if end, ok := monthNameDate(lower, toks, k); ok {
			mark(t.start, end)
		}
	}
	if !any {
		return v, false
	}

	// Spans with only separators between them become one.
	for i := 0; i < n; i++ {
		if st.removed[i] {
			continue
		}
		j := i
		for j < n && !st.removed[j] && isSeparator(st.text[j]) {
			j++
		}
		if i > 0 && st.removed[i-1] && j < n && j > i && st.removed[j] {
			for k := i; k < j; k++ {
				st.removed[k] = true
			}
		}
		if j > i {
			i = j - 1
		}
	}
	st.out.Reset()
	st.out.Grow(len(v))
	for i := 0; i < n; i++ {
		if !st.removed[i] {
			st.out.WriteRune(st.text[i])
			continue
		}
		st.out.WriteString(scrubMarker)
		for i+1 < n && st.removed[i+1] {
			i++
		}
	}
	return st.out.String(), true
}

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

func onlySeparators(rs []rune) bool {
	for _, r := range rs {
		if !isSeparator(r) {
			return false
		}
	}
	return true
}

// numericDate reports whether the digit tokens from k form a date such as
// 2021-03-12, 12.03.2021, 03/12/21 (the same separator twice, a valid
// month and day), and where it ends.
func numericDate(text []rune, toks []token, k int) (int, bool) {
	if k+2 >= len(toks) {
		return 0, false
	}
	a, b, c := toks[k], toks[k+1], toks[k+2]
	if !a.digits || !b.digits || !c.digits || b.start != a.end+1 || c.start != b.end+1 {
		return 0, false
	}
	sep := text[a.end]
	if (sep != '-' && sep != '/' && sep != '.') || text[b.end] != sep {
		return 0, false
	}
	na, nb, nc := a.end-a.start, b.end-b.start, c.end-c.start
	va, vb, vc := atoiRunes(text[a.start:a.end]), atoiRunes(text[b.start:b.end]), atoiRunes(text[c.start:c.end])
	switch {
	case na == 4 && nb <= 2 && nc <= 2: // year first
		return c.end, validMonthDay(vb, vc)
	case na <= 2 && nb <= 2 && (nc == 2 || nc == 4): // day or month first
		return c.end, validMonthDay(vb, va) || validMonthDay(va, vb)
	}
	return 0, false
}

func validMonthDay(m, d int) bool { return m >= 1 && m <= 12 && d >= 1 && d <= 31 }

func atoiRunes(rs []rune) int {
	n := 0
	for _, r := range rs {
		n = n*10 + int(r-'0')
		if n > 1_000_000 {
			return n
		}
	}
	return n
}

// months are the English month names and their abbreviations.
var months = func() [][]rune {
	var out [][]rune
	for _, m := range []string{"january", "february", "march", "april", "may", "june", "july", "august",
		"september", "october", "november", "december"} {
		out = append(out, []rune(m), []rune(m[:3]))
	}
	return append(out, []rune("sept"))
}()

func isMonth(w []rune) bool {
	for _, m := range months {
		if runesEqual(m, w) {
			return true
		}
	}
	return false
}

// monthNameDate reports whether the tokens from k form "12 Mar 2021",
// "12-MAR-21" or "March 12, 2021", and where it ends.
func monthNameDate(lower []rune, toks []token, k int) (int, bool) {
	if k+2 >= len(toks) {
		return 0, false
	}
	a, b, c := toks[k], toks[k+1], toks[k+2]
	gapOK := func(x, y token) bool {
		return y.start > x.end && y.start-x.end <= 2 && onlySeparators(lower[x.end:y.start])
	}
	if !gapOK(a, b) || !gapOK(b, c) {
		return 0, false
	}
	na, nc := a.end-a.start, c.end-c.start
	switch {
	case a.digits && !b.digits && c.digits && na <= 2 && (nc == 2 || nc == 4) && isMonth(lower[b.start:b.end]):
		d := atoiRunes(lower[a.start:a.end])
		return c.end, d >= 1 && d <= 31
	case !a.digits && b.digits && c.digits && b.end-b.start <= 2 && nc == 4 && isMonth(lower[a.start:a.end]):
		d := atoiRunes(lower[b.start:b.end])
		return c.end, d >= 1 && d <= 31
	}
	return 0, false
}

// addDates adds the values of a DA, DT or TM element (raw bytes, which
// are ASCII), each distinct value once: objects repeat their dates and
// times (study, series, acquisition, content). It returns seen with the
// new values.
func (s *scrubber) addDates(vr dicom.VR, raw []byte, seen []string) []string {
	for len(raw) > 0 {
		v := raw
		if k := bytes.IndexByte(raw, '\\'); k >= 0 {
			v, raw = raw[:k], raw[k+1:]
		} else {
			raw = nil
		}
		v = bytes.Trim(v, " \x00")
		if len(v) < 4 || slices.ContainsFunc(seen, func(x string) bool { return x == string(v) }) {
			continue
		}
		str := string(v)
		seen = append(seen, str)
		switch vr {
		case dicom.DA:
			s.addDate(str)
		case dicom.DT:
			s.addDate(str)
			if len(str) > 8 {
				s.addTime(str[8:])
			}
		case dicom.TM:
			s.addTime(str)
		}
	}
	return seen
}

// isDescriptor reports whether the profile lists t as a descriptor: an
// attribute its Clean Descriptors option cleans.
func isDescriptor(t dicom.Tag) bool {
	r, ok := lookupRow(t)
	return ok && r.opts[CleanDescriptors] == "C"
}

// scrubbable reports whether values of the VR are text a description is
// written in.
func scrubbable(vr dicom.VR) bool {
	switch vr {
	case dicom.LO, dicom.SH, dicom.ST, dicom.LT, dicom.UT, dicom.UC:
		return true
	}
	return false
}

// cleansKept reports whether the kept element el is a free-text
// description the Clean Descriptors option cleans: an attribute the
// profile lists under that option, or any free text (ST, LT, UT, UC) the
// policy keeps.
func (j *job) cleansKept(row *profileRow, el *dicom.Element) bool {
	if el.Items != nil || !scrubbable(el.VR) {
		return false
	}
	if row != nil && row.opts[CleanDescriptors] == "C" {
		return true
	}
	switch el.VR {
	case dicom.ST, dicom.LT, dicom.UT, dicom.UC:
		return true
	}
	return false
}

// scrubElement cleans the values of el in place; it reports whether el
// must be removed instead (its cleaned value cannot be written).
func (j *job) scrubElement(ds *dicom.Dataset, el *dicom.Element) bool {
	vals := ds.Strings(el)
	changed := false
	for k, v := range vals {
		if nv, ok := j.scrub.scrub(&j.scrubState, v); ok {
			vals[k], changed = nv, true
		}
	}
	if !changed {
		return false
	}
	if err := ds.SetStrings(el.Tag, el.VR, vals...); err != nil {
		j.counts.Removed++
		return true
	}
	j.counts.Cleaned++
	return false
}

// narrative lists attributes the profile cleans under Clean Descriptors
// that describe the patient in sentences (history, comments, reasons,
// diagnoses, alerts): no pattern can make those safe, so the option still
// removes them unless a policy keeps them on purpose (then they are
// scrubbed like any kept description).
var narrative = func() map[dicom.Tag]bool {
	m := map[dicom.Tag]bool{}
	words := []string{"Comment", "Narrative", "Notes", "History", "Reason", "Diagnos", "Impressions", "Interpretation"}
	extra := map[string]bool{"MedicalAlerts": true, "Allergies": true, "Occupation": true, "PatientState": true,
		"IdentifyingComments": true, "MakerNote": true, "PatientSetupPhotoDescription": true}
	for i := range profileRows {
		r := &profileRows[i]
		if r.mask != 0xFFFFFFFF || r.opts[CleanDescriptors] != "C" {
			continue
		}
		de, ok := dicom.Lookup(dicom.Tag(r.tag))
		if !ok {
			continue
		}
		if extra[de.Keyword] {
			m[de.Tag] = true
			continue
		}
		for _, w := range words {
			if strings.Contains(de.Keyword, w) {
				m[de.Tag] = true
				break
			}
		}
	}
	return m
}()
