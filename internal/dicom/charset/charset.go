// Package charset decodes and encodes DICOM text per Specific Character Set (0008,0005).
//
// A [Set] is parsed from the values of Specific Character Set and converts
// the raw bytes of text values (SH, LO, UC, ST, LT, UT and PN) to UTF-8 Go
// strings and back. It covers every defined term of PS3.3 Tables C.12-2 to
// C.12-5: the default repertoire (ISO_IR 6), the single-byte sets of the
// ISO 8859 family and TIS 620 with and without code extensions, the
// multi-byte sets used with ISO 2022 code extensions (JIS X 0201, JIS X 0208,
// JIS X 0212, KS X 1001 and GB 2312, as in PS3.5 section 6.1 and Annexes H,
// I and K), and the sets that allow no code extensions (ISO_IR 192 for
// UTF-8, GB18030 and GBK).
//
// With code extensions, escape sequences switch the graphic sets in G0 and
// G1, and the sets of the first value come back in force at the delimiters
// that the [Kind] of the value names.
//
// Decoding is lenient: it never fails, replaces bytes it cannot map with
// U+FFFD, honours every escape sequence of PS3.3 Tables C.12-3 and C.12-4
// even where the Set does not declare it, reads bytes 0x80-0xFF as ISO 8859-1
// while no set is in G1 (as in the default repertoire), and reads Shift_JIS
// double-byte codes in values labelled JIS X 0201 (ISO_IR 13). Encoding is
// strict: it produces only the declared sets and reports other characters
// with [ErrUnrepresentable].
//
// A Set is immutable after [Parse] and safe for concurrent use; callers that
// decode many values with the same Specific Character Set should parse it
// once and keep the Set.
package charset

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Kind says which delimiters reset ISO 2022 code extensions to the initial state and how a value is split.
type Kind int

const (
	// Multi is for SH, LO, UC and other backslash-separated strings:
	// backslash resets, and so do CR, LF, FF and TAB.
	Multi Kind = iota
	// Text is for ST, LT and UT: CR, LF, FF and TAB reset.
	Text
	// PersonName is for PN: '^', '=' and backslash reset as well as CR,
	// LF, FF and TAB.
	PersonName
)

func (k Kind) String() string {
	switch k {
	case Multi:
		return "Multi"
	case Text:
		return "Text"
	case PersonName:
		return "PersonName"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// ErrUnrepresentable is returned (wrapped) by [Set.Encode] when a character
// cannot be encoded in the set.
var ErrUnrepresentable = errors.New("charset: character not representable in the Specific Character Set")

// Errors that [Parse] wraps to describe terms it could not use as given.
// The Set that Parse returns alongside them is usable.
var (
	// ErrUnknownTerm: a term is not a defined term. As the first value
	// it is decoded as ISO_IR 100 (ISO 8859-1); later it is ignored.
	ErrUnknownTerm = errors.New("charset: unknown Specific Character Set term")
	// ErrMisspelledTerm: a term is a misspelling of a defined term (for
	// instance "ISO IR 100" for "ISO_IR 100") and was read as that term.
	ErrMisspelledTerm = errors.New("charset: misspelled Specific Character Set term")
	// ErrIgnoredTerm: a term cannot be combined with the others (ISO_IR
	// 192, GB18030 and GBK allow no code extensions) and was ignored.
	ErrIgnoredTerm = errors.New("charset: Specific Character Set term ignored")
)

type mode uint8

const (
	modeZero    mode = iota // zero Set: the default repertoire
	modeISO2022             // single-byte sets, with or without code extensions
	modeUTF8                // ISO_IR 192
	modeGB18030             // GB18030
	modeGBK                 // GBK
)

const esc = 0x1B

// Set is a parsed Specific Character Set. The zero value / nil *Set means the default repertoire (ISO_IR 6, ASCII).
type Set struct {
	terms []string
	mode  mode
	init0 gset   // G0 at the start of a value and after each delimiter
	init1 gset   // G1 likewise (gNone when the first value has none)
	avail []gset // sets that the encoder may designate, in order of the terms
}

var defaultSet = &Set{mode: modeISO2022, init0: gASCII, init1: gNone}

func (s *Set) get() *Set {
	if s == nil || s.mode == modeZero {
		return defaultSet
	}
	return s
}

type termDef struct {
	name  string
	mode  mode
	init0 gset // G0 when this term is the first value
	init1 gset // G1 when this term is the first value
	set   gset // set that the term makes available (gNone: none beyond ASCII)
}

var termDefs = map[string]termDef{}

func init() {
	add := func(name string, m mode, i0, i1, set gset) {
		termDefs[name] = termDef{name, m, i0, i1, set}
	}
	add("ISO_IR 6", modeISO2022, gASCII, gNone, gNone)
	add("ISO 2022 IR 6", modeISO2022, gASCII, gNone, gNone)
	for _, t := range []struct {
		ir  string
		set gset
	}{
		{"100", gLatin1}, {"101", gLatin2}, {"109", gLatin3}, {"110", gLatin4},
		{"144", gCyrillic}, {"127", gArabic}, {"126", gGreek}, {"138", gHebrew},
		{"148", gLatin5}, {"203", gLatin9}, {"166", gThai},
	} {
		add("ISO_IR "+t.ir, modeISO2022, gASCII, t.set, t.set)
		add("ISO 2022 IR "+t.ir, modeISO2022, gASCII, t.set, t.set)
	}
	add("ISO_IR 13", modeISO2022, gRomaji, gKatakana, gKatakana)
	add("ISO 2022 IR 13", modeISO2022, gRomaji, gKatakana, gKatakana)
	// The multi-byte sets designated into G0 cannot be the initial G0:
	// the delimiters must stay recognisable, so ASCII starts each value.
	add("ISO 2022 IR 87", modeISO2022, gASCII, gNone, gJIS0208)
	add("ISO 2022 IR 159", modeISO2022, gASCII, gNone, gJIS0212)
	add("ISO 2022 IR 149", modeISO2022, gASCII, gKSX1001, gKSX1001)
	add("ISO 2022 IR 58", modeISO2022, gASCII, gGB2312, gGB2312)
	add("ISO_IR 192", modeUTF8, gASCII, gNone, gNone)
	add("GB18030", modeGB18030, gASCII, gNone, gNone)
	add("GBK", modeGBK, gASCII, gNone, gNone)
}

// Spellings that earlier editions of the standard (CP 1234) used; read
// without complaint.
var termAliases = map[string]string{
	"ISO 2022 GBK": "GBK",
	"ISO 2022 58":  "ISO 2022 IR 58",
}

// termKeys maps the normalised spelling (see termKey) of each defined term
// and alias to the defined term.
var termKeys = map[string]string{
	termKey("UTF-8"): "ISO_IR 192",
}

func init() {
	for name := range termDefs {
		termKeys[termKey(name)] = name
	}
	for alias, name := range termAliases {
		termKeys[termKey(alias)] = name
	}
}

// termKey reduces a term to its runs of letters and digits in upper case,
// separated by single spaces, so that "iso_ir100" and "ISO IR 100" meet.
func termKey(t string) string {
	var b strings.Builder
	var prev byte // class of the previous byte: 'a' letter, '0' digit, 0 other
	for i := 0; i < len(t); i++ {
		c := t[i]
		var class byte
		switch {
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
			class = 'a'
		case c >= 'A' && c <= 'Z':
			class = 'a'
		case c >= '0' && c <= '9':
			class = '0'
		}
		if class == 0 {
			prev = 0
			continue
		}
		if class != prev && b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte(c)
		prev = class
	}
	return b.String()
}

// lookupTerm finds the definition of a term, correcting misspellings
// (wrong separators or case). corrected is true when the term was not
// spelled as defined.
func lookupTerm(t string) (def termDef, corrected, ok bool) {
	if d, ok := termDefs[t]; ok {
		return d, false, true
	}
	if a, ok := termAliases[t]; ok {
		return termDefs[a], false, true
	}
	if name, ok := termKeys[termKey(t)]; ok {
		return termDefs[name], true, true
	}
	return termDef{}, false, false
}

// Parse builds a Set from the values of (0008,0005), already split on
// backslash, each trimmed of spaces. An empty first value means the default
// repertoire (as in "\ISO 2022 IR 87").
//
// Terms that are not defined terms do not stop Parse: it returns a usable
// Set together with an error that wraps [ErrUnknownTerm],
// [ErrMisspelledTerm] or [ErrIgnoredTerm] for each such term, so that
// callers can warn. An unknown first value is read as ISO_IR 100; unknown
// later values are ignored. A first value of ISO_IR 192, GB18030 or GBK
// allows no code extensions, so further values are ignored, and these three
// are ignored when they appear after the first value.
func Parse(terms []string) (*Set, error) {
	s := &Set{mode: modeISO2022, init0: gASCII, init1: gNone}
	var errs []error
	for i, raw := range terms {
		t := strings.Trim(raw, " \x00")
		if i == 0 && t == "" {
			s.terms = append(s.terms, "")
			continue
		}
		if t == "" {
			continue
		}
		def, corrected, ok := lookupTerm(t)
		switch {
		case !ok && i == 0:
			errs = append(errs, fmt.Errorf("%w %q: decoding it as ISO_IR 100", ErrUnknownTerm, t))
			def = termDefs["ISO_IR 100"]
			def.name = t
		case !ok:
			errs = append(errs, fmt.Errorf("%w %q: ignored", ErrUnknownTerm, t))
			continue
		case corrected:
			errs = append(errs, fmt.Errorf("%w %q: read as %q", ErrMisspelledTerm, t, def.name))
		}
		if i == 0 {
			s.mode, s.init0, s.init1 = def.mode, def.init0, def.init1
		} else if s.mode != modeISO2022 {
			errs = append(errs, fmt.Errorf("%w %q: %s allows no code extensions", ErrIgnoredTerm, t, s.terms[0]))
			continue
		} else if def.mode != modeISO2022 {
			errs = append(errs, fmt.Errorf("%w %q: it cannot be used as a code extension", ErrIgnoredTerm, t))
			continue
		}
		s.terms = append(s.terms, def.name)
		if def.set != gNone && !containsSet(s.avail, def.set) {
			s.avail = append(s.avail, def.set)
		}
	}
	return s, errors.Join(errs...)
}

func containsSet(list []gset, g gset) bool {
	for _, x := range list {
		if x == g {
			return true
		}
	}
	return false
}

// Terms returns the terms in effect, with defined terms spelled as the
// standard defines them, an empty first value kept as "", unknown first
// values kept as given and ignored terms left out. It returns nil for the
// zero Set.
func (s *Set) Terms() []string {
	if s == nil || len(s.terms) == 0 {
		return nil
	}
	return append([]string(nil), s.terms...)
}

// String returns the terms joined with backslashes, as they would be
// written in (0008,0005).
func (s *Set) String() string {
	return strings.Join(s.Terms(), `\`)
}

// IsUTF8 reports whether the set is ISO_IR 192 (UTF-8).
func (s *Set) IsUTF8() bool { return s.get().mode == modeUTF8 }

// IsDefault reports whether the set is the default repertoire only
// (ISO_IR 6, ASCII).
func (s *Set) IsDefault() bool {
	s = s.get()
	return s.mode == modeISO2022 && s.init0 == gASCII && s.init1 == gNone && len(s.avail) == 0
}

// UsesCodeExtensions reports whether values in the set may contain ISO 2022
// escape sequences, that is whether it has more than one value.
func (s *Set) UsesCodeExtensions() bool {
	s = s.get()
	return s.mode == modeISO2022 && len(s.terms) > 1
}

// isControlDelim reports whether control byte c resets code extensions.
func isControlDelim(c byte) bool {
	return c == '\r' || c == '\n' || c == '\f' || c == '\t'
}

// isGraphicDelim reports whether graphic ASCII byte c resets code
// extensions in values of kind k.
func isGraphicDelim(c byte, k Kind) bool {
	switch k {
	case Text:
		return false
	case PersonName:
		return c == '\\' || c == '^' || c == '='
	}
	return c == '\\'
}

// Decode converts raw value bytes to a UTF-8 Go string. raw may hold
// several values separated by backslashes; the backslashes stay in the
// output, and so does any trailing padding, for the caller to split and trim
// as the value representation requires. kind selects the delimiters at
// which code extensions return to the initial state.
//
// Decode never fails and never panics: bytes that do not form a character
// of the set in force decode to U+FFFD.
func (s *Set) Decode(raw []byte, kind Kind) string {
	s = s.get()
	if len(raw) == 0 {
		return ""
	}
	if s.mode != modeISO2022 {
		if isASCII(raw) {
			return string(raw)
		}
		switch s.mode {
		case modeUTF8:
			return decodeUTF8(raw)
		case modeGB18030:
			return decodeWith(gb18030Codec, raw)
		default:
			return decodeWith(gbkCodec, raw)
		}
	}
	if isPlainASCII(raw) {
		return string(raw)
	}
	var w sink
	s.decode2022(raw, kind, &w)
	var b strings.Builder
	b.Grow(w.n)
	w = sink{b: &b}
	s.decode2022(raw, kind, &w)
	return b.String()
}

// isASCII reports whether every byte of p is below 0x80.
func isASCII(p []byte) bool {
	for _, c := range p {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// isPlainASCII reports whether p is ASCII without escape sequences, which
// decodes to itself in every set with code extensions.
func isPlainASCII(p []byte) bool {
	for _, c := range p {
		if c >= utf8.RuneSelf || c == esc {
			return false
		}
	}
	return true
}

// sink either counts the UTF-8 length of the output (b == nil) or writes it.
type sink struct {
	b *strings.Builder
	n int
}

func (w *sink) rune(r rune) {
	if w.b == nil {
		w.n += utf8.RuneLen(r)
		return
	}
	w.b.WriteRune(r)
}

func (w *sink) byte(c byte) {
	if w.b == nil {
		w.n++
		return
	}
	w.b.WriteByte(c)
}

// decode94 maps the 7-bit code c (0x21-0x7E) of a single-byte 94 set.
func decode94(g gset, c byte) rune {
	switch g {
	case gKatakana:
		if c <= 0x5F {
			return 0xFF61 + rune(c-0x21)
		}
		return utf8.RuneError
	case gASCII, gRomaji:
		return rune(c)
	}
	return utf8.RuneError
}

// decode94x2 maps the 7-bit codes c1, c2 (0x21-0x7E) of a 94x94 set.
func decode94x2(g gset, c1, c2 byte) rune {
	r := dbcsDecodeTable(g)[int(c1-0x21)*94+int(c2-0x21)]
	if r == 0 {
		return utf8.RuneError
	}
	return rune(r)
}

// decode2022 runs the ISO 2022 decoder over raw, writing to w.
func (s *Set) decode2022(raw []byte, kind Kind, w *sink) {
	g0, g1 := s.init0, s.init1
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == esc:
			g, reg, n := parseEscape(raw[i:])
			i += n
			switch reg {
			case 0:
				g0 = g
			case 1:
				g1 = g
			default:
				w.rune(utf8.RuneError)
			}

		case c <= 0x20 || c == 0x7F: // C0 controls, space, delete
			w.byte(c)
			i++
			if isControlDelim(c) {
				g0, g1 = s.init0, s.init1
			}

		case c < 0x80: // GL: G0
			switch {
			case gsets[g0].shape == shape94x2:
				if i+1 < len(raw) && raw[i+1] >= 0x21 && raw[i+1] <= 0x7E {
					w.rune(decode94x2(g0, c, raw[i+1]))
					i += 2
				} else {
					w.rune(utf8.RuneError)
					i++
				}
			case g0 == gASCII || g0 == gRomaji:
				w.byte(c)
				i++
				if isGraphicDelim(c, kind) {
					g0, g1 = s.init0, s.init1
				}
			default:
				w.rune(decode94(g0, c))
				i++
			}

		default: // 0x80-0xFF: C1 controls and GR (G1)
			n := s.decodeGR(raw[i:], g1, w)
			i += n
		}
	}
}

// decodeGR decodes the character at p[0] (0x80-0xFF) with g1 in GR and
// returns the number of bytes used.
func (s *Set) decodeGR(p []byte, g1 gset, w *sink) int {
	c := p[0]
	switch gsets[g1].shape {
	case shape96:
		if c < 0xA0 {
			w.rune(rune(c))
		} else {
			w.rune(table96(g1)[c-0xA0])
		}
		return 1
	case shape94x2:
		if c >= 0xA1 && c <= 0xFE && len(p) > 1 && p[1] >= 0xA1 && p[1] <= 0xFE {
			w.rune(decode94x2(g1, c&0x7F, p[1]&0x7F))
			return 2
		}
	case shape94:
		if c >= 0xA1 && c <= 0xFE {
			if r := decode94(g1, c&0x7F); r != utf8.RuneError || g1 != gKatakana {
				w.rune(r)
				return 1
			}
		}
		// Values labelled JIS X 0201 are often written in Shift_JIS,
		// whose double-byte codes use exactly the bytes that JIS X 0201
		// leaves undefined; read those as Shift_JIS.
		if g1 == gKatakana && len(p) > 1 {
			if code := jisFromShiftJIS(c, p[1]); code >= 0 && code < 94*94 {
				if r := dbcsDecodeTable(gJIS0208)[code]; r != 0 {
					w.rune(rune(r))
					return 2
				}
			}
		}
	default: // no G1 set: read as ISO 8859-1
		w.rune(rune(c))
		return 1
	}
	if c < 0xA0 {
		w.rune(rune(c)) // C1 control
	} else {
		w.rune(utf8.RuneError)
	}
	return 1
}

// Encode converts text to bytes in the set. Where the set uses code
// extensions it emits ISO 2022 escape sequences, and it returns to the
// initial state (the sets of the first value in G0 and G1) before each
// delimiter of kind, before every other control character and at the end of
// the value, as PS3.5 6.1.2.5.3 requires. It prefers the sets already in G0
// and G1, then the declared sets in the order of the terms.
//
// Encode returns an error wrapping [ErrUnrepresentable] when a character
// cannot be encoded in the set, when text is not valid UTF-8, and, for sets
// that use escape sequences (all but ISO_IR 192, GB18030 and GBK), when text
// contains the escape character itself.
func (s *Set) Encode(text string, kind Kind) ([]byte, error) {
	s = s.get()
	switch s.mode {
	case modeUTF8:
		if !utf8.ValidString(text) {
			return nil, fmt.Errorf("%w: invalid UTF-8 in ISO_IR 192 text", ErrUnrepresentable)
		}
		return []byte(text), nil
	case modeGB18030:
		return encodeWith(gb18030Codec, text, "GB18030")
	case modeGBK:
		return encodeWith(gbkCodec, text, "GBK")
	}
	if isPlainASCIIString(text) {
		return []byte(text), nil
	}
	return s.encode2022(text, kind)
}

func isPlainASCIIString(t string) bool {
	for i := 0; i < len(t); i++ {
		if c := t[i]; c >= utf8.RuneSelf || c == esc {
			return false
		}
	}
	return true
}

func (s *Set) unrepresentable(r rune) error {
	name := s.String()
	if name == "" || name == "ISO_IR 6" {
		name = "the default repertoire"
	}
	return fmt.Errorf("%w: %U %q in %s", ErrUnrepresentable, r, r, name)
}

// appendDesignation appends the escape sequence designating g.
func appendDesignation(out []byte, g gset) []byte {
	out = append(out, esc)
	return append(out, designation(g)...)
}

// restore designates the sets of the first value again where they differ.
func (s *Set) restore(out []byte, g0, g1 *gset) []byte {
	if *g0 != s.init0 {
		out = appendDesignation(out, s.init0)
		*g0 = s.init0
	}
	if *g1 != s.init1 {
		if s.init1 != gNone {
			out = appendDesignation(out, s.init1)
		}
		*g1 = s.init1
	}
	return out
}

// encodeIn returns the bytes of r in set g, with the high bit set when the
// set lives in G1. n is 0 when g lacks r.
func encodeIn(g gset, r rune) (b [2]byte, n int) {
	info := &gsets[g]
	switch info.shape {
	case shape96:
		sbOnce.Do(buildSingleByte)
		if c, ok := sbEnc[g][r]; ok {
			return [2]byte{c}, 1
		}
	case shape94:
		if g == gKatakana && r >= 0xFF61 && r <= 0xFF9F {
			c := byte(r-0xFF61) + 0x21
			if info.inG1 {
				c |= 0x80
			}
			return [2]byte{c}, 1
		}
	case shape94x2:
		if code, ok := dbcsEncodeMap(g)[r]; ok {
			c1, c2 := byte(code/94)+0x21, byte(code%94)+0x21
			if info.inG1 {
				c1, c2 = c1|0x80, c2|0x80
			}
			return [2]byte{c1, c2}, 2
		}
	}
	return b, 0
}

func (s *Set) encode2022(text string, kind Kind) ([]byte, error) {
	out := make([]byte, 0, len(text)+len(text)/2+8)
	g0, g1 := s.init0, s.init1
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		if r == utf8.RuneError && size == 1 {
			return nil, fmt.Errorf("%w: invalid UTF-8 in text", ErrUnrepresentable)
		}
		i += size
		if r < utf8.RuneSelf {
			c := byte(r)
			switch {
			case c == esc:
				return nil, s.unrepresentable(r)
			case c < 0x20 || c == 0x7F || isGraphicDelim(c, kind):
				out = s.restore(out, &g0, &g1)
			case g0 != gASCII && g0 != gRomaji:
				g0 = s.init0 // ASCII or JIS X 0201 Roman
				out = appendDesignation(out, g0)
			}
			out = append(out, c)
			continue
		}
		// Find a set for r: the one in G1, the double-byte one in G0, or
		// else the first declared set that has r.
		g, inG1 := gNone, false
		b, n := [2]byte{}, 0
		if g1 != gNone {
			if b, n = encodeIn(g1, r); n > 0 {
				g, inG1 = g1, true
			}
		}
		if n == 0 && gsets[g0].shape == shape94x2 {
			if b, n = encodeIn(g0, r); n > 0 {
				g = g0
			}
		}
		for _, cand := range s.avail {
			if n > 0 {
				break
			}
			if cand == g0 || cand == g1 {
				continue
			}
			if b, n = encodeIn(cand, r); n > 0 {
				g, inG1 = cand, gsets[cand].inG1
			}
		}
		if n == 0 {
			return nil, s.unrepresentable(r)
		}
		if inG1 && gsets[g0].shape == shape94x2 {
			// Not required by ISO 2022, but decoders that split a value
			// at each escape sequence and decode each piece with one
			// set then read G1 characters correctly.
			g0 = s.init0
			out = appendDesignation(out, g0)
		}
		switch {
		case inG1 && g != g1:
			g1 = g
			out = appendDesignation(out, g)
		case !inG1 && g != g0:
			g0 = g
			out = appendDesignation(out, g)
		}
		out = append(out, b[:n]...)
	}
	return s.restore(out, &g0, &g1), nil
}
