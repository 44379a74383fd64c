package charset

import (
	"sync"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// gset identifies one ISO 2022 graphic character set (a "code element" in
// the words of PS3.5 section 6.1.2.5): a 94- or 96-character single-byte
// set, or a 94x94 double-byte set.
type gset uint8

const (
	gNone     gset = iota // no set designated (only meaningful for G1)
	gASCII                // ISO-IR 6, ASCII
	gRomaji               // ISO-IR 14, JIS X 0201 Roman (handled as ASCII)
	gKatakana             // ISO-IR 13, JIS X 0201 Katakana
	gLatin1               // ISO-IR 100, ISO 8859-1 right half
	gLatin2               // ISO-IR 101, ISO 8859-2
	gLatin3               // ISO-IR 109, ISO 8859-3
	gLatin4               // ISO-IR 110, ISO 8859-4
	gCyrillic             // ISO-IR 144, ISO 8859-5
	gArabic               // ISO-IR 127, ISO 8859-6
	gGreek                // ISO-IR 126, ISO 8859-7
	gHebrew               // ISO-IR 138, ISO 8859-8
	gLatin5               // ISO-IR 148, ISO 8859-9
	gLatin9               // ISO-IR 203, ISO 8859-15
	gThai                 // ISO-IR 166, TIS 620-2533
	gJIS0208              // ISO-IR 87, JIS X 0208 (Kanji)
	gJIS0212              // ISO-IR 159, JIS X 0212 (supplementary Kanji)
	gKSX1001              // ISO-IR 149, KS X 1001 (Hangul and Hanja)
	gGB2312               // ISO-IR 58, GB 2312
	numGsets
)

// Shapes of graphic sets.
const (
	shape94   = 1 // 94 characters, one byte each
	shape96   = 2 // 96 characters, one byte each (only ever in G1)
	shape94x2 = 3 // 94x94 characters, two bytes each
)

type gsetInfo struct {
	shape uint8
	final byte // final byte of the designating escape sequence
	inG1  bool // DICOM designates this set into G1 (else into G0)
	cm    *charmap.Charmap
}

var gsets = [numGsets]gsetInfo{
	gASCII:    {shape94, 'B', false, nil},
	gRomaji:   {shape94, 'J', false, nil},
	gKatakana: {shape94, 'I', true, nil},
	gLatin1:   {shape96, 'A', true, charmap.ISO8859_1},
	gLatin2:   {shape96, 'B', true, charmap.ISO8859_2},
	gLatin3:   {shape96, 'C', true, charmap.ISO8859_3},
	gLatin4:   {shape96, 'D', true, charmap.ISO8859_4},
	gCyrillic: {shape96, 'L', true, charmap.ISO8859_5},
	gArabic:   {shape96, 'G', true, charmap.ISO8859_6},
	gGreek:    {shape96, 'F', true, charmap.ISO8859_7},
	gHebrew:   {shape96, 'H', true, charmap.ISO8859_8},
	gLatin5:   {shape96, 'M', true, charmap.ISO8859_9},
	gLatin9:   {shape96, 'b', true, charmap.ISO8859_15},
	// Windows-874 agrees with TIS 620 on 0xA0-0xFF (0xA0 being NO-BREAK
	// SPACE as in ISO 8859-11); its extra characters in 0x80-0x9F are not
	// used because that range is C1 control space here.
	gThai:    {shape96, 'T', true, charmap.Windows874},
	gJIS0208: {shape94x2, 'B', false, nil},
	gJIS0212: {shape94x2, 'D', false, nil},
	gKSX1001: {shape94x2, 'C', true, nil},
	gGB2312:  {shape94x2, 'A', true, nil},
}

// designation returns the escape sequence (without the leading ESC) that
// DICOM uses to designate g into its usual register, per PS3.3 Tables
// C.12-3 and C.12-4.
func designation(g gset) string {
	switch g {
	case gASCII:
		return "(B"
	case gRomaji:
		return "(J"
	case gKatakana:
		return ")I"
	case gJIS0208:
		return "$B"
	case gJIS0212:
		return "$(D"
	case gKSX1001:
		return "$)C"
	case gGB2312:
		return "$)A"
	}
	return "-" + string(gsets[g].final)
}

// parseEscape reads the ISO 2022 escape sequence at the start of p (p[0] is
// ESC). It returns the designated set and the register (0 for G0, 1 for G1),
// or register -1 when the sequence is malformed or not one this package
// knows. n is the number of bytes the sequence occupies (at least 1).
func parseEscape(p []byte) (g gset, reg int, n int) {
	j := 1
	for j < len(p) && p[j] >= 0x20 && p[j] <= 0x2F {
		j++
	}
	if j >= len(p) || p[j] < 0x30 || p[j] > 0x7E {
		return gNone, -1, j
	}
	final := p[j]
	n = j + 1
	inter := p[1:j]
	switch {
	case len(inter) == 1 && (inter[0] == '(' || inter[0] == ')'):
		reg = int(inter[0] - '(')
		switch final {
		case 'B':
			return gASCII, reg, n
		case 'J':
			return gRomaji, reg, n
		case 'I':
			return gKatakana, reg, n
		}
	case len(inter) == 1 && inter[0] == '-':
		for g := gLatin1; g <= gThai; g++ {
			if gsets[g].final == final {
				return g, 1, n
			}
		}
	case len(inter) == 1 && inter[0] == '$':
		// ESC $ F designates into G0 for the finals @, A and B only.
		switch final {
		case '@', 'B':
			return gJIS0208, 0, n
		case 'A':
			return gGB2312, 0, n
		}
	case len(inter) == 2 && inter[0] == '$' && (inter[1] == '(' || inter[1] == ')'):
		reg = int(inter[1] - '(')
		switch final {
		case '@', 'B':
			return gJIS0208, reg, n
		case 'D':
			return gJIS0212, reg, n
		case 'C':
			return gKSX1001, reg, n
		case 'A':
			return gGB2312, reg, n
		}
	}
	return gNone, -1, n
}

// Single-byte tables, built once on first use.
var (
	sbOnce sync.Once
	// sbDec[g][b-0xA0] is the character for byte b (0xA0-0xFF) of a 96 set.
	sbDec [numGsets]*[96]rune
	// sbEnc[g] maps a character to its byte (0xA0-0xFF) in a 96 set.
	sbEnc [numGsets]map[rune]byte
)

func buildSingleByte() {
	for g := gLatin1; g <= gThai; g++ {
		t := new([96]rune)
		m := make(map[rune]byte, 96)
		for i := range t {
			b := byte(0xA0 + i)
			r := gsets[g].cm.DecodeByte(b)
			t[i] = r
			if r != utf8.RuneError {
				if _, dup := m[r]; !dup {
					m[r] = b
				}
			}
		}
		sbDec[g] = t
		sbEnc[g] = m
	}
}

func table96(g gset) *[96]rune {
	sbOnce.Do(buildSingleByte)
	return sbDec[g]
}

// dbcs holds the tables of one 94x94 set. Codes are 0-based row*94+cell.
type dbcs struct {
	decOnce sync.Once
	dec     *[94 * 94]uint16 // 0 means undefined
	encOnce sync.Once
	enc     map[rune]uint16 // character to row*94+cell
}

var dbcsTables [numGsets]dbcs

// dbcsSource describes how to obtain a 94x94 set from an x/text encoding:
// the bytes prefix, 0xA1+row, 0xA1+cell decode to the character.
func dbcsSource(g gset) (enc encoding.Encoding, prefix byte) {
	switch g {
	case gJIS0208:
		return japanese.EUCJP, 0
	case gJIS0212:
		return japanese.EUCJP, 0x8F
	case gKSX1001:
		return korean.EUCKR, 0
	default: // gGB2312
		return simplifiedchinese.GBK, 0
	}
}

// encodable reports whether the character at row and cell (0-based) of g
// may be produced by the encoder. Codes outside the allocation of the
// standard (vendor and user-defined extensions present in the x/text tables)
// are decoded but never produced.
func encodable(g gset, row, cell int) bool {
	switch g {
	case gJIS0208: // rows 1-8 and 16-84
		return row <= 7 || (row >= 15 && row <= 83)
	case gGB2312: // rows 1-9 and 16-87, less the additions of GBK
		switch {
		case row == 1:
			return cell >= 10 && cell != 66
		case row == 5:
			return cell < 63
		case row == 7:
			return cell < 26 || cell > 31
		}
		return row <= 8 || (row >= 15 && row <= 86)
	}
	return true
}

// The x/text tables follow the WHATWG encoding standard, which maps a few
// codes of JIS X 0208, JIS X 0212 and GB 2312 as Windows code pages do. The
// national standards' own mappings are used instead for decoding, and the
// Windows mappings are still accepted when encoding.
var (
	dbcsDecodeFix = [numGsets]map[int]rune{
		gJIS0208: {
			0*94 + 32: 0x301C, // 1-33 WAVE DASH (not FULLWIDTH TILDE)
			0*94 + 33: 0x2016, // 1-34 DOUBLE VERTICAL LINE (not PARALLEL TO)
			0*94 + 60: 0x2212, // 1-61 MINUS SIGN (not FULLWIDTH HYPHEN-MINUS)
			0*94 + 80: 0x00A2, // 1-81 CENT SIGN
			0*94 + 81: 0x00A3, // 1-82 POUND SIGN
			1*94 + 43: 0x00AC, // 2-44 NOT SIGN
		},
		gJIS0212: {
			1*94 + 22: 0x007E, // 2-23 TILDE
		},
		gGB2312: {
			0*94 + 3: 0x30FB, // 1-4 KATAKANA MIDDLE DOT
			0*94 + 9: 0x2015, // 1-10 HORIZONTAL BAR
		},
	}
	dbcsEncodeAlias = [numGsets]map[rune]int{
		gJIS0208: {0xFF5E: 0*94 + 32, 0x2225: 0*94 + 33, 0xFF0D: 0*94 + 60,
			0xFFE0: 0*94 + 80, 0xFFE1: 0*94 + 81, 0xFFE2: 1*94 + 43},
		gGB2312: {0x00B7: 0*94 + 3, 0x2014: 0*94 + 9},
	}
)

func dbcsDecodeTable(g gset) *[94 * 94]uint16 {
	t := &dbcsTables[g]
	t.decOnce.Do(func() {
		enc, prefix := dbcsSource(g)
		dec := enc.NewDecoder()
		tab := new([94 * 94]uint16)
		var src [3]byte
		var dst [8]byte
		for row := range 94 {
			for cell := range 94 {
				s := src[:0]
				if prefix != 0 {
					s = append(s, prefix)
				}
				s = append(s, byte(0xA1+row), byte(0xA1+cell))
				dec.Reset()
				nDst, nSrc, err := dec.Transform(dst[:], s, true)
				if err != nil || nSrc != len(s) {
					continue
				}
				r, size := utf8.DecodeRune(dst[:nDst])
				if size != nDst || r == utf8.RuneError || r > 0xFFFF || r < 0x80 {
					continue
				}
				tab[row*94+cell] = uint16(r)
			}
		}
		for code, r := range dbcsDecodeFix[g] {
			tab[code] = uint16(r)
		}
		t.dec = tab
	})
	return t.dec
}

func dbcsEncodeMap(g gset) map[rune]uint16 {
	t := &dbcsTables[g]
	t.encOnce.Do(func() {
		tab := dbcsDecodeTable(g)
		m := make(map[rune]uint16, 8000)
		for i, r := range tab {
			if r == 0 || r == 0x7E || !encodable(g, i/94, i%94) {
				continue
			}
			if _, dup := m[rune(r)]; !dup {
				m[rune(r)] = uint16(i)
			}
		}
		for r, code := range dbcsEncodeAlias[g] {
			if _, ok := m[r]; !ok {
				m[r] = uint16(code)
			}
		}
		t.enc = m
	})
	return t.enc
}

// jisFromShiftJIS converts a Shift_JIS byte pair to a 0-based JIS X 0208
// row*94+cell code, or -1 when the pair is not a Shift_JIS double-byte code.
func jisFromShiftJIS(s1, s2 byte) int {
	var row int
	switch {
	case s1 >= 0x81 && s1 <= 0x9F:
		row = int(s1-0x81) * 2
	case s1 >= 0xE0 && s1 <= 0xEF:
		row = int(s1-0xC1) * 2
	default:
		return -1
	}
	var cell int
	switch {
	case s2 >= 0x40 && s2 <= 0x7E:
		cell = int(s2 - 0x40)
	case s2 >= 0x80 && s2 <= 0x9E:
		cell = int(s2 - 0x41)
	case s2 >= 0x9F && s2 <= 0xFC:
		row++
		cell = int(s2 - 0x9F)
	default:
		return -1
	}
	return row*94 + cell
}
