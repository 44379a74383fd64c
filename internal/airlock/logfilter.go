package airlock

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// LogFilter decides, line by line, which lines of a job's log may leave
// the node at once: short UTF-8 text without long digit runs, DICOM-style
// UIDs or pseudonyms. Every other line is held: the caller keeps held
// lines as an output of their own, which waits for a person like any
// other (Store.Hold).
type LogFilter struct {
	// IsPseudonym tells whether a word is one of the dataset's patient
	// pseudonyms (PseudonymSet makes one); nil holds nothing for that.
	IsPseudonym func(string) bool
	// MaxLineBytes is the longest line released (default 200).
	MaxLineBytes int
	// MaxDigits is the longest run of digits released, not counting the
	// fraction of a decimal number such as 0.6931472 (default 5, so that
	// dates written 20240131, identifiers and phone numbers are held).
	MaxDigits int
	// MaxLines is how many lines are released in all (default the
	// policy's MaxLogLines); later lines are held.
	MaxLines int

	released int
}

// NewLogFilter returns the filter of a policy's log limits.
func NewLogFilter(pol Policy, isPseudonym func(string) bool) *LogFilter {
	pol = pol.WithDefaults()
	return &LogFilter{IsPseudonym: isPseudonym, MaxLines: pol.MaxLogLines}
}

// Line says whether line may be released, and if not why (never quoting
// it). A filter counts the lines it released; it is not safe for
// concurrent use.
func (f *LogFilter) Line(line string) (ok bool, why string) {
	maxLen, maxDigits, maxLines := f.MaxLineBytes, f.MaxDigits, f.MaxLines
	if maxLen <= 0 {
		maxLen = 200
	}
	if maxDigits <= 0 {
		maxDigits = 5
	}
	if maxLines <= 0 {
		maxLines = DefaultMaxLogLines
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case f.released >= maxLines:
		return false, "past the log's line limit"
	case len(line) > maxLen:
		return false, "a long line"
	case !utf8.ValidString(line):
		return false, "not UTF-8 text"
	}
	for _, r := range line {
		if unicode.IsControl(r) && r != '\t' {
			return false, "control characters"
		}
	}
	if digitRun(line) > maxDigits {
		return false, "a long run of digits"
	}
	if uidLike(line) {
		return false, "an identifier of dotted numbers"
	}
	if f.IsPseudonym != nil {
		for _, t := range tokens(line) {
			if f.IsPseudonym(t) {
				return false, "a patient pseudonym"
			}
		}
	}
	f.released++
	return true, ""
}

// Split sorts lines into those released and those held.
func (f *LogFilter) Split(lines []string) (released, held []string) {
	for _, l := range lines {
		if ok, _ := f.Line(l); ok {
			released = append(released, l)
		} else {
			held = append(held, l)
		}
	}
	return released, held
}

// digitRun is the longest run of digits in s, not counting the fraction
// of a decimal number: in a run of digits and points with exactly one
// point between digits, only the digits before it count.
func digitRun(s string) int {
	longest := 0
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && (isDigit(s[j]) || s[j] == '.') {
			j++
		}
		parts := strings.Split(strings.Trim(s[i:j], "."), ".")
		if len(parts) == 2 && parts[0] != "" && parts[1] != "" {
			parts = parts[:1]
		}
		for _, p := range parts {
			longest = max(longest, len(p))
		}
		i = j
	}
	return longest
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// uidLike reports whether s holds a run of at least four dot-separated
// numbers, as DICOM UIDs are (1.2.840.10008...).
func uidLike(s string) bool {
	parts := 0
	inNum := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isDigit(c):
			if !inNum {
				inNum = true
				parts++
			}
		case c == '.' && inNum && i+1 < len(s) && isDigit(s[i+1]):
			inNum = false
		default:
			if parts >= 4 {
				return true
			}
			parts, inNum = 0, false
		}
	}
	return parts >= 4
}

// tokens splits s into words: runs of letters, digits and the characters
// - _ . that pseudonyms may hold, each also without trailing dots, and
// the parts of each between those characters.
func tokens(s string) []string {
	var out []string
	words := strings.FieldsFunc(s, func(r rune) bool {
		return !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' || r == '.')
	})
	for _, w := range words {
		w = strings.Trim(w, ".")
		if w == "" {
			continue
		}
		out = append(out, w)
		// Every run of the word's parts with the separators between
		// them (up to 128 bytes, among its first 64 separators): a
		// pseudonym may hold separators and be glued to other parts by
		// them (MOS-ABC_scan).
		var cuts []int
		for i := 0; i < len(w); i++ {
			if w[i] == '-' || w[i] == '_' || w[i] == '.' {
				cuts = append(cuts, i)
			}
		}
		if len(cuts) == 0 {
			continue
		}
		if len(cuts) > 64 {
			cuts = cuts[:64]
		}
		starts := append([]int{0}, cuts...)
		ends := append(slices.Clone(cuts), len(w))
		for a, st := range starts {
			if a > 0 {
				st++
			}
			for _, en := range ends[a:] {
				if en > st && en-st <= 128 && !(st == 0 && en == len(w)) {
					out = append(out, w[st:en])
				}
			}
		}
	}
	return out
}

// PseudonymSet returns a matcher of the given pseudonyms (exact, and
// case-insensitive).
func PseudonymSet(ids []string) func(string) bool {
	set := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		if id != "" {
			set[strings.ToUpper(id)] = struct{}{}
		}
	}
	return func(s string) bool {
		_, ok := set[strings.ToUpper(s)]
		return ok
	}
}
