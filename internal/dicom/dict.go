package dicom

import "sync"

//go:generate go run ./internal/gendict -data ../../../shared/dicom-standard -o dict_gen.go

// DictEntry describes one attribute of the data dictionary (PS3.6, and
// PS3.7 for the command group).
type DictEntry struct {
	Tag     Tag
	VR      VR     // first VR when the dictionary lists several
	VRs     string // the dictionary's VR text, e.g. "US or SS", "OB or OW"
	VM      string // value multiplicity, e.g. "1", "1-n", "2-2n"
	Name    string
	Keyword string
	Retired bool
}

// repeatingEntry is a dictionary entry for a repeating group or element,
// such as (60xx,3000): a tag t matches when t&mask == value.
type repeatingEntry struct {
	mask, value uint32
	entry       DictEntry
}

// Lookup returns the dictionary entry for t. Repeating groups such as
// (60xx,3000) and (50xx,xxxx) match any tag they cover; group length tags
// (gggg,0000) match as UL. Private tags are not in the dictionary.
func Lookup(t Tag) (DictEntry, bool) {
	if t.Group()&1 == 1 {
		return DictEntry{}, false // private groups and the odd groups below 0008
	}
	if i, ok := dictIndex(t); ok {
		return dictEntries[i], true
	}
	for _, r := range dictRepeating {
		if uint32(t)&r.mask == r.value {
			e := r.entry
			e.Tag = t
			return e, true
		}
	}
	if t.Element() == 0 && t.Group()&1 == 0 {
		return DictEntry{Tag: t, VR: UL, VRs: "UL", VM: "1", Name: "Group Length", Keyword: "GroupLength"}, true
	}
	return DictEntry{}, false
}

// dictIndex finds t in the sorted dictEntries table.
func dictIndex(t Tag) (int, bool) {
	lo, hi := 0, len(dictEntries)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if dictEntries[m].Tag < t {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(dictEntries) && dictEntries[lo].Tag == t {
		return lo, true
	}
	return 0, false
}

// LookupKeyword returns the entry whose keyword is kw (case-sensitive), for
// non-repeating tags.
func LookupKeyword(kw string) (DictEntry, bool) {
	if i, ok := keywordIndex()[kw]; ok {
		return dictEntries[i], true
	}
	return DictEntry{}, false
}

// keywordIndex is built on first use so that programs that never look up
// keywords do not pay for it at start-up.
var keywordIndex = sync.OnceValue(func() map[string]int {
	m := make(map[string]int, len(dictEntries))
	for i, e := range dictEntries {
		if e.Keyword != "" {
			m[e.Keyword] = i
		}
	}
	return m
})
