package dicom

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// DefaultBulkThreshold is the largest binary value, in bytes, that
// WriteJSON writes inline when JSONOptions.BulkThreshold is zero.
const DefaultBulkThreshold = 1024

// JSONOptions steer WriteJSON. The zero value writes compact JSON and
// inlines binary values of up to DefaultBulkThreshold bytes.
type JSONOptions struct {
	// BulkThreshold is the largest binary value, in bytes, written inline
	// as base64 "InlineBinary"; longer values are summarised by a
	// "BulkDataURI" (see WriteJSON). Zero selects DefaultBulkThreshold; a
	// negative value inlines every value whatever its size.
	BulkThreshold int
	// NoInline summarises every non-empty binary value by a BulkDataURI,
	// whatever BulkThreshold says.
	NoInline bool
	// Indent, when not empty, pretty-prints the output with one member per
	// line, each nesting level indented by Indent.
	Indent string
	// BulkURIPrefix, when not empty, makes each BulkDataURI locate its
	// value: the prefix followed by the value's path, the tag as eight hex
	// digits, preceded for a value inside a sequence by the sequence's
	// tag and the item's index from 0 ("00880200/0/7FE00010"). Without it
	// BulkDataURIs only summarise what was left out.
	BulkURIPrefix string
}

// BulkDataURIPrefix starts every BulkDataURI that WriteJSON writes.
const BulkDataURIPrefix = "urn:mosaic:bulk:"

// WriteJSON writes ds in the DICOM JSON Model of PS3.18 Annex F.2: one
// object keyed by the tags as eight upper-case hexadecimal digits, in the
// order of the dataset's elements, each attribute an object with "vr" and,
// when the value is not empty, one of "Value", "InlineBinary" or
// "BulkDataURI". The output is streamed to w and is the same for the same
// dataset and options.
//
// Choices where the model leaves room, or where data does not fit it:
//
//   - Text is decoded to Unicode with the Specific Character Set in force
//     for each dataset, including the one inherited by sequence items.
//     Bytes that are not valid UTF-8 in values of VRs that do not use the
//     character set (such as CS or UI) become U+FFFD.
//   - An empty value among several (as in A\\B) is null; an element
//     whose values are all empty has no "Value".
//   - PN values are objects with "Alphabetic", "Ideographic" and
//     "Phonetic" members; empty groups are left out, a name with no
//     group at all is null, and an element of no name has no "Value".
//   - IS and DS values are JSON numbers. DS text that is already a valid
//     JSON number is written as it stands, keeping every digit; other
//     valid DS text (such as "+1.5" or ".5") is written as the shortest
//     number that reads back to the same float64. IS and DS text that is
//     not a valid number is written as a JSON string holding the text, so
//     that nothing is lost (a strict reader of the model may reject it).
//   - US, SS, UL, SL, UV and SV values are JSON integers with every digit,
//     even past 2^53 where readers that use float64 lose precision.
//   - FL and FD values are the shortest decimal that reads back to the same
//     binary value; NaN and the infinities, which JSON numbers cannot hold,
//     are written as the strings "NaN", "Infinity" and "-Infinity".
//   - AT values are "GGGGEEEE" strings.
//   - OB, OW, OF, OD, OL, OV and UN values (and values of unknown VRs,
//     written as UN) are base64 "InlineBinary" in little-endian byte
//     order (swapped from a big-endian dataset) when at most
//     BulkThreshold bytes long. Longer values are replaced by a
//     "BulkDataURI" that does not locate the data but says what was left
//     out: "urn:mosaic:bulk:length=N", N the value length in bytes.
//   - Encapsulated pixel data is written with VR OB, as PS3.5 A.4 requires
//     (even where the file says OW), like a binary value whose bytes
//     are the encapsulated encoding of PS3.5 A.4 (each item with its
//     header, then the sequence delimiter, little endian), inline when
//     short; the BulkDataURI adds the number of fragments, as in
//     "urn:mosaic:bulk:length=N;fragments=K" (N counting item headers).
//   - A UN element of undefined length that was read as a sequence is
//     written with VR "SQ" and its items, since that is what it holds.
//   - Pixel data left unread by a streaming decoder is summarised by a
//     BulkDataURI with its declared length, "length=undefined" when it is
//     encapsulated.
//   - Group length elements (gggg,0000) are written like any other.
//   - Binary numbers whose value length is not a multiple of the value
//     size lose the incomplete value at the end.
func WriteJSON(w io.Writer, ds *Dataset, opts JSONOptions) error {
	bw := jsonBufs.Get().(*bufio.Writer)
	bw.Reset(w)
	j := &jsonWriter{w: bw, opts: opts}
	j.dataset(ds, 0)
	err := bw.Flush()
	bw.Reset(nil) // the pool keeps no reference to w
	jsonBufs.Put(bw)
	return err
}

// jsonBufs holds the buffered writers of WriteJSON: a node writes the
// metadata of every object it ingests, and a buffer each would be most of
// the garbage it makes.
var jsonBufs = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}

// MarshalJSON returns ds in the DICOM JSON Model, as WriteJSON writes it.
func MarshalJSON(ds *Dataset, opts JSONOptions) ([]byte, error) {
	var b bytes.Buffer
	if err := WriteJSON(&b, ds, opts); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

type jsonWriter struct {
	w    *bufio.Writer
	opts JSONOptions
	num  []byte   // scratch for number formatting
	path []string // tags and item indexes down to the element written
}

func (j *jsonWriter) threshold() int {
	switch {
	case j.opts.BulkThreshold == 0:
		return DefaultBulkThreshold
	case j.opts.BulkThreshold < 0:
		return math.MaxInt
	}
	return j.opts.BulkThreshold
}

// newline starts a new line at the given depth when pretty-printing.
func (j *jsonWriter) newline(depth int) {
	if j.opts.Indent == "" {
		return
	}
	j.w.WriteByte('\n')
	for i := 0; i < depth; i++ {
		j.w.WriteString(j.opts.Indent)
	}
}

func (j *jsonWriter) colon() {
	if j.opts.Indent == "" {
		j.w.WriteByte(':')
	} else {
		j.w.WriteString(": ")
	}
}

func (j *jsonWriter) key(k string, depth int, first bool) {
	if !first {
		j.w.WriteByte(',')
	}
	j.newline(depth)
	j.w.WriteByte('"')
	j.w.WriteString(k)
	j.w.WriteByte('"')
	j.colon()
}

func (j *jsonWriter) dataset(ds *Dataset, depth int) {
	j.w.WriteByte('{')
	for i := range ds.Elements {
		e := &ds.Elements[i]
		h := e.Tag.Hex()
		j.key(h, depth+1, i == 0)
		j.path = append(j.path, h)
		j.element(ds, e, depth+1)
		j.path = j.path[:len(j.path)-1]
	}
	if len(ds.Elements) > 0 {
		j.newline(depth)
	}
	j.w.WriteByte('}')
}

// jsonVR is the VR written for e.
func jsonVR(e *Element) VR {
	switch {
	case e.Items != nil:
		return SQ
	case e.Fragments != nil:
		return OB
	case !e.VR.Known():
		return UN
	}
	return e.VR
}

func (j *jsonWriter) element(ds *Dataset, e *Element, depth int) {
	vr := jsonVR(e)
	j.w.WriteByte('{')
	j.key("vr", depth+1, true)
	j.w.WriteByte('"')
	j.w.WriteString(vr.String())
	j.w.WriteByte('"')
	switch {
	case e.Stream:
		j.bulk(depth, int64(e.Length), -1)
	case e.Items != nil:
		j.sequence(e, depth)
	case e.Fragments != nil:
		j.fragments(e.Fragments, depth)
	default:
		j.value(ds, e, vr, depth)
	}
	j.newline(depth)
	j.w.WriteByte('}')
}

func (j *jsonWriter) sequence(e *Element, depth int) {
	if len(e.Items) == 0 {
		return
	}
	j.key("Value", depth+1, false)
	j.w.WriteByte('[')
	for i, it := range e.Items {
		if i > 0 {
			j.w.WriteByte(',')
		}
		j.newline(depth + 2)
		j.path = append(j.path, strconv.Itoa(i))
		j.dataset(&it.Dataset, depth+2)
		j.path = j.path[:len(j.path)-1]
	}
	j.newline(depth + 1)
	j.w.WriteByte(']')
}

// bulk writes a BulkDataURI summarising a value of n bytes (and of the
// given number of fragments, when not negative).
func (j *jsonWriter) bulk(depth int, n int64, fragments int) {
	j.key("BulkDataURI", depth+1, false)
	j.w.WriteByte('"')
	if j.opts.BulkURIPrefix != "" {
		j.w.WriteString(j.opts.BulkURIPrefix)
		for i, p := range j.path {
			if i > 0 {
				j.w.WriteByte('/')
			}
			j.w.WriteString(p)
		}
		j.w.WriteByte('"')
		return
	}
	j.w.WriteString(BulkDataURIPrefix)
	j.w.WriteString("length=")
	if n == int64(UndefinedLength) {
		j.w.WriteString("undefined")
	} else {
		j.w.WriteString(strconv.FormatInt(n, 10))
	}
	if fragments >= 0 {
		j.w.WriteString(";fragments=")
		j.w.WriteString(strconv.Itoa(fragments))
	}
	j.w.WriteByte('"')
}

func (j *jsonWriter) inline(depth int, parts ...[]byte) {
	j.key("InlineBinary", depth+1, false)
	j.w.WriteByte('"')
	enc := base64.NewEncoder(base64.StdEncoding, j.w)
	for _, p := range parts {
		enc.Write(p)
	}
	enc.Close()
	j.w.WriteByte('"')
}

func (j *jsonWriter) inlineAllowed(n int64) bool {
	return !j.opts.NoInline && n <= int64(j.threshold())
}

func (j *jsonWriter) fragments(fr *Fragments, depth int) {
	// Encapsulated encoding: an item per fragment (offset table first),
	// then the sequence delimiter, each header 8 bytes.
	n := int64(8+len(fr.OffsetTable)) + 8
	for _, f := range fr.Items {
		n += int64(8 + len(f))
	}
	if !j.inlineAllowed(n) {
		j.bulk(depth, n, len(fr.Items))
		return
	}
	var parts [][]byte
	item := func(b []byte) {
		h := make([]byte, 8)
		h[0], h[1], h[2], h[3] = 0xFE, 0xFF, 0x00, 0xE0
		h[4], h[5], h[6], h[7] = byte(len(b)), byte(len(b)>>8), byte(len(b)>>16), byte(len(b)>>24)
		parts = append(parts, h, b)
	}
	item(fr.OffsetTable)
	for _, f := range fr.Items {
		item(f)
	}
	parts = append(parts, []byte{0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0})
	j.inline(depth, parts...)
}

func (j *jsonWriter) value(ds *Dataset, e *Element, vr VR, depth int) {
	if len(e.Value) == 0 {
		return
	}
	switch vr {
	case OB, OW, OF, OD, OL, OV, UN:
		n := int64(len(e.Value))
		if !j.inlineAllowed(n) {
			j.bulk(depth, n, -1)
			return
		}
		v := e.Value
		if size := vr.ValueSize(); size > 1 && ds.bigEndian {
			v = jsonSwapBytes(v, size)
		}
		j.inline(depth, v)
	case PN:
		j.personNames(ds.Strings(e), depth)
	case AT:
		o := ds.Order()
		j.valuesStart(depth)
		for i := 0; i+4 <= len(e.Value); i += 4 {
			if i > 0 {
				j.w.WriteByte(',')
			}
			t := NewTag(o.Uint16(e.Value[i:]), o.Uint16(e.Value[i+2:]))
			j.w.WriteByte('"')
			j.w.WriteString(t.Hex())
			j.w.WriteByte('"')
		}
		j.w.WriteByte(']')
	case US, SS, UL, SL, UV, SV:
		j.integers(ds, e, vr, depth)
	case FL, FD:
		j.floats(ds, e, vr, depth)
	case IS, DS:
		j.numericStrings(ds.Strings(e), vr, depth)
	default:
		j.strings(ds.Strings(e), depth)
	}
}

// valuesStart writes the "Value" key and opens its array.
func (j *jsonWriter) valuesStart(depth int) {
	j.key("Value", depth+1, false)
	j.w.WriteByte('[')
}

func jsonAllEmpty(vs []string) bool {
	for _, v := range vs {
		if v != "" {
			return false
		}
	}
	return true
}

func (j *jsonWriter) strings(vs []string, depth int) {
	if jsonAllEmpty(vs) {
		return
	}
	j.valuesStart(depth)
	for i, v := range vs {
		if i > 0 {
			j.w.WriteByte(',')
		}
		if v == "" {
			j.w.WriteString("null")
			continue
		}
		writeJSONString(j.w, v)
	}
	j.w.WriteByte(']')
}

func (j *jsonWriter) personNames(vs []string, depth int) {
	if jsonAllEmpty(vs) {
		return
	}
	groupNames := [...]string{"Alphabetic", "Ideographic", "Phonetic"}
	names := make([][]string, len(vs))
	named := false
	for i, v := range vs {
		names[i] = strings.SplitN(v, "=", 3)
		named = named || !jsonAllEmpty(names[i])
	}
	if !named {
		return
	}
	j.valuesStart(depth)
	for i, groups := range names {
		if i > 0 {
			j.w.WriteByte(',')
		}
		if jsonAllEmpty(groups) {
			j.w.WriteString("null")
			continue
		}
		j.w.WriteByte('{')
		first := true
		for k, g := range groups {
			if g == "" {
				continue
			}
			if !first {
				j.w.WriteByte(',')
			}
			first = false
			j.w.WriteByte('"')
			j.w.WriteString(groupNames[k])
			j.w.WriteByte('"')
			j.w.WriteByte(':')
			writeJSONString(j.w, g)
		}
		j.w.WriteByte('}')
	}
	j.w.WriteByte(']')
}

func (j *jsonWriter) integers(ds *Dataset, e *Element, vr VR, depth int) {
	size := vr.ValueSize()
	if len(e.Value) < size {
		return
	}
	o := ds.Order()
	v := e.Value
	j.valuesStart(depth)
	for i := 0; i+size <= len(v); i += size {
		if i > 0 {
			j.w.WriteByte(',')
		}
		b := j.num[:0]
		switch vr {
		case US:
			b = strconv.AppendUint(b, uint64(o.Uint16(v[i:])), 10)
		case SS:
			b = strconv.AppendInt(b, int64(int16(o.Uint16(v[i:]))), 10)
		case UL:
			b = strconv.AppendUint(b, uint64(o.Uint32(v[i:])), 10)
		case SL:
			b = strconv.AppendInt(b, int64(int32(o.Uint32(v[i:]))), 10)
		case UV:
			b = strconv.AppendUint(b, o.Uint64(v[i:]), 10)
		case SV:
			b = strconv.AppendInt(b, int64(o.Uint64(v[i:])), 10)
		}
		j.w.Write(b)
		j.num = b
	}
	j.w.WriteByte(']')
}

func (j *jsonWriter) floats(ds *Dataset, e *Element, vr VR, depth int) {
	size := vr.ValueSize()
	if len(e.Value) < size {
		return
	}
	o := ds.Order()
	v := e.Value
	j.valuesStart(depth)
	for i := 0; i+size <= len(v); i += size {
		if i > 0 {
			j.w.WriteByte(',')
		}
		var f float64
		bits := 64
		if vr == FL {
			f = float64(math.Float32frombits(o.Uint32(v[i:])))
			bits = 32
		} else {
			f = math.Float64frombits(o.Uint64(v[i:]))
		}
		j.float(f, bits)
	}
	j.w.WriteByte(']')
}

// float writes f as a JSON number, or as a string for NaN and infinities.
func (j *jsonWriter) float(f float64, bits int) {
	switch {
	case math.IsNaN(f):
		j.w.WriteString(`"NaN"`)
		return
	case math.IsInf(f, 1):
		j.w.WriteString(`"Infinity"`)
		return
	case math.IsInf(f, -1):
		j.w.WriteString(`"-Infinity"`)
		return
	}
	j.num = appendJSONFloat(j.num[:0], f, bits)
	j.w.Write(j.num)
}

// appendJSONFloat formats a finite f in the shortest form that reads back
// to the same value at the given precision: plain decimals for ordinary
// magnitudes, exponent form for very large or small ones.
func appendJSONFloat(b []byte, f float64, bits int) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// Drop the leading zero of a one-digit exponent: 1e-07 -> 1e-7.
		n := len(b) - start
		if n >= 4 && b[len(b)-4] == 'e' && b[len(b)-2] == '0' {
			b[len(b)-2] = b[len(b)-1]
			b = b[:len(b)-1]
		}
	}
	return b
}

func (j *jsonWriter) numericStrings(vs []string, vr VR, depth int) {
	if jsonAllEmpty(vs) {
		return
	}
	j.valuesStart(depth)
	for i, v := range vs {
		if i > 0 {
			j.w.WriteByte(',')
		}
		if v == "" {
			j.w.WriteString("null")
			continue
		}
		if num, ok := jsonNumberOf(v, vr, j.num[:0]); ok {
			j.w.Write(num)
			j.num = num
			continue
		}
		writeJSONString(j.w, v)
	}
	j.w.WriteByte(']')
}

// jsonNumberOf converts one trimmed IS or DS value to a JSON number,
// reporting false when the text is not a valid value of the VR.
func jsonNumberOf(s string, vr VR, b []byte) ([]byte, bool) {
	if !jsonIsDecimal(s) {
		return b, false
	}
	if vr == IS {
		if n, err := strconv.ParseInt(strings.TrimPrefix(s, "+"), 10, 64); err == nil {
			return strconv.AppendInt(b, n, 10), true
		}
		// Whole numbers written with a fraction or exponent ("1.0").
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return b, false
		}
		return strconv.AppendInt(b, int64(f), 10), true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil { // out of range
		return b, false
	}
	if jsonIsNumber(s) {
		return append(b, s...), true
	}
	return appendJSONFloat(b, f, 64), true
}

// jsonIsDecimal reports whether s is a decimal number as DS allows:
// an optional sign, digits with an optional decimal point (at least one
// digit in all), and an optional exponent.
func jsonIsDecimal(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			exp++
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(s)
}

// jsonIsNumber reports whether a decimal string (as jsonIsDecimal
// accepts) also follows the JSON number grammar: no leading '+', no
// superfluous leading zero, digits on both sides of a decimal point.
func jsonIsNumber(s string) bool {
	if s[0] == '+' {
		return false
	}
	if s[0] == '-' {
		s = s[1:]
	}
	if len(s) == 0 || s[0] == '.' {
		return false
	}
	if s[0] == '0' && len(s) > 1 && s[1] >= '0' && s[1] <= '9' {
		return false
	}
	if k := strings.IndexByte(s, '.'); k >= 0 {
		if k+1 >= len(s) || s[k+1] < '0' || s[k+1] > '9' {
			return false
		}
	}
	return true
}

// jsonSwapBytes returns a copy of v with each value of size bytes reversed.
func jsonSwapBytes(v []byte, size int) []byte {
	out := make([]byte, len(v))
	n := len(v) - len(v)%size
	for i := 0; i < n; i += size {
		for k := 0; k < size; k++ {
			out[i+k] = v[i+size-1-k]
		}
	}
	copy(out[n:], v[n:])
	return out
}

// writeJSONString writes s as a JSON string. Invalid UTF-8 becomes
// U+FFFD; control characters and the line and paragraph separators
// (which some JavaScript readers reject) are escaped.
func writeJSONString(w *bufio.Writer, s string) {
	const hex = "0123456789abcdef"
	w.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			w.WriteString(s[start:i])
			switch c {
			case '"', '\\':
				w.WriteByte('\\')
				w.WriteByte(c)
			case '\n':
				w.WriteString(`\n`)
			case '\r':
				w.WriteString(`\r`)
			case '\t':
				w.WriteString(`\t`)
			default:
				w.WriteString(`\u00`)
				w.WriteByte(hex[c>>4])
				w.WriteByte(hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			w.WriteString(s[start:i])
			w.WriteString(`\ufffd`)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			w.WriteString(s[start:i])
			w.WriteString(`\u202`)
			w.WriteByte(hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	w.WriteString(s[start:])
	w.WriteByte('"')
}
