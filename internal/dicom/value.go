package dicom

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/mosaic-imaging/mosaic/internal/dicom/charset"
)

// Charset returns the character set in force for ds: its own Specific
// Character Set (0008,0005), or the one inherited from the enclosing
// dataset, or the default repertoire. Unknown terms decode as ISO_IR 100.
func (ds *Dataset) Charset() *charset.Set {
	for d := ds; d != nil; d = d.parent {
		if e := d.Get(TagSpecificCharacterSet); e != nil {
			// Parsed once per value: text access decodes element after
			// element with the same set.
			if d.cs != nil && string(e.Value) == d.csRaw {
				return d.cs
			}
			s, _ := charset.Parse(splitCharsetTerms(e.Value))
			d.cs, d.csRaw = s, string(e.Value)
			return s
		}
	}
	return defaultCharset
}

var defaultCharset, _ = charset.Parse(nil)

func splitCharsetTerms(v []byte) []string {
	parts := strings.Split(string(v), `\`)
	for i, p := range parts {
		parts[i] = strings.TrimSpace(strings.TrimRight(p, "\x00"))
	}
	return parts
}

// Order returns the byte order of the dataset's binary values.
func (ds *Dataset) Order() ByteOrder {
	if ds.bigEndian {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

func charsetKind(vr VR) charset.Kind {
	switch vr {
	case PN:
		return charset.PersonName
	case ST, LT, UT:
		return charset.Text
	}
	return charset.Multi
}

// trimValue removes the padding and spaces that are insignificant for vr.
func trimValue(vr VR, s string) string {
	if vr == UI {
		return strings.TrimRight(s, "\x00 ")
	}
	s = strings.TrimRight(s, " \x00")
	if info(vr).trimLead {
		s = strings.TrimLeft(s, " ")
	}
	return s
}

// Text returns the element's value as one Unicode string, decoded with
// the character set in force for ds when the VR uses it, with
// insignificant padding removed. Multiple values keep their backslashes.
func (ds *Dataset) Text(e *Element) string {
	if e.VR.UsesCharset() {
		cs := ds.Charset()
		return strings.TrimRight(cs.Decode(e.Value, charsetKind(e.VR)), " \x00")
	}
	return strings.TrimRight(string(e.Value), " \x00")
}

// Strings returns the values of a character-string element, decoded to
// Unicode and trimmed as its VR prescribes. ST, LT, UT and UR values are
// never split on backslashes.
func (ds *Dataset) Strings(e *Element) []string {
	if len(e.Value) == 0 {
		return nil
	}
	var s string
	if e.VR.UsesCharset() {
		s = ds.Charset().Decode(e.Value, charsetKind(e.VR))
	} else {
		s = string(e.Value)
	}
	if !e.VR.IsMultiValued() {
		return []string{trimValue(e.VR, s)}
	}
	parts := strings.Split(s, `\`)
	for i, p := range parts {
		parts[i] = trimValue(e.VR, p)
	}
	return parts
}

// String returns the first value of tag t as trimmed Unicode text, and
// whether the element is present with a non-empty value.
func (ds *Dataset) String(t Tag) (string, bool) {
	e := ds.Get(t)
	if e == nil || len(e.Value) == 0 {
		return "", false
	}
	v := ds.Strings(e)
	if len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// UID returns the UID value of tag t with its padding removed.
func (ds *Dataset) UID(t Tag) string {
	e := ds.Get(t)
	if e == nil {
		return ""
	}
	return string(trimUID(e.Value))
}

// Ints returns the values of an integer element: US, SS, UL, SL, UV, SV
// and AT (as the 32-bit tag), OW, OL in the dataset's byte order, or IS
// parsed from text.
func (ds *Dataset) Ints(e *Element) ([]int64, error) {
	o := ds.Order()
	v := e.Value
	switch e.VR {
	case IS:
		var out []int64
		for _, p := range strings.Split(string(v), `\`) {
			p = strings.TrimSpace(strings.TrimRight(p, "\x00"))
			if p == "" {
				continue
			}
			n, err := strconv.ParseInt(p, 10, 64)
			if err != nil {
				// Some writers put decimals in IS; accept whole numbers.
				f, ferr := strconv.ParseFloat(p, 64)
				if ferr != nil || f != math.Trunc(f) {
					return out, fmt.Errorf("dicom: %s: invalid IS value", e.Tag)
				}
				n = int64(f)
			}
			out = append(out, n)
		}
		return out, nil
	case US, OW:
		out := make([]int64, 0, len(v)/2)
		for i := 0; i+2 <= len(v); i += 2 {
			out = append(out, int64(o.Uint16(v[i:])))
		}
		return out, nil
	case SS:
		out := make([]int64, 0, len(v)/2)
		for i := 0; i+2 <= len(v); i += 2 {
			out = append(out, int64(int16(o.Uint16(v[i:]))))
		}
		return out, nil
	case UL, OL:
		out := make([]int64, 0, len(v)/4)
		for i := 0; i+4 <= len(v); i += 4 {
			out = append(out, int64(o.Uint32(v[i:])))
		}
		return out, nil
	case AT:
		out := make([]int64, 0, len(v)/4)
		for i := 0; i+4 <= len(v); i += 4 {
			out = append(out, int64(uint32(o.Uint16(v[i:]))<<16|uint32(o.Uint16(v[i+2:]))))
		}
		return out, nil
	case SL:
		out := make([]int64, 0, len(v)/4)
		for i := 0; i+4 <= len(v); i += 4 {
			out = append(out, int64(int32(o.Uint32(v[i:]))))
		}
		return out, nil
	case UV, SV, OV:
		out := make([]int64, 0, len(v)/8)
		for i := 0; i+8 <= len(v); i += 8 {
			out = append(out, int64(o.Uint64(v[i:])))
		}
		return out, nil
	}
	return nil, fmt.Errorf("dicom: %s: VR %s is not an integer VR", e.Tag, e.VR)
}

// Uints returns the values of UV or OV elements without sign conversion.
func (ds *Dataset) Uints(e *Element) []uint64 {
	o := ds.Order()
	out := make([]uint64, 0, len(e.Value)/8)
	for i := 0; i+8 <= len(e.Value); i += 8 {
		out = append(out, o.Uint64(e.Value[i:]))
	}
	return out
}

// Floats returns the values of FL, FD, OF, OD elements, or DS parsed from
// text.
func (ds *Dataset) Floats(e *Element) ([]float64, error) {
	o := ds.Order()
	v := e.Value
	switch e.VR {
	case DS:
		var out []float64
		for _, p := range strings.Split(string(v), `\`) {
			p = strings.TrimSpace(strings.TrimRight(p, "\x00"))
			if p == "" {
				continue
			}
			f, err := strconv.ParseFloat(p, 64)
			if err != nil {
				return out, fmt.Errorf("dicom: %s: invalid DS value", e.Tag)
			}
			out = append(out, f)
		}
		return out, nil
	case FL, OF:
		out := make([]float64, 0, len(v)/4)
		for i := 0; i+4 <= len(v); i += 4 {
			out = append(out, float64(math.Float32frombits(o.Uint32(v[i:]))))
		}
		return out, nil
	case FD, OD:
		out := make([]float64, 0, len(v)/8)
		for i := 0; i+8 <= len(v); i += 8 {
			out = append(out, math.Float64frombits(o.Uint64(v[i:])))
		}
		return out, nil
	}
	return nil, fmt.Errorf("dicom: %s: VR %s is not a floating-point VR", e.Tag, e.VR)
}

// Int returns the first integer value of tag t.
func (ds *Dataset) Int(t Tag) (int64, bool) {
	e := ds.Get(t)
	if e == nil {
		return 0, false
	}
	v, err := ds.Ints(e)
	if err != nil || len(v) == 0 {
		return 0, false
	}
	return v[0], true
}

// Float returns the first floating-point value of tag t.
func (ds *Dataset) Float(t Tag) (float64, bool) {
	e := ds.Get(t)
	if e == nil {
		return 0, false
	}
	v, err := ds.Floats(e)
	if err != nil || len(v) == 0 {
		return 0, false
	}
	return v[0], true
}

// Root returns the top-level dataset that encloses ds.
func (ds *Dataset) Root() *Dataset {
	for ds.parent != nil {
		ds = ds.parent
	}
	return ds
}

// SetStrings sets a character-string element to the given values, encoded
// in the character set in force for ds. When a value cannot be
// represented there, the whole enclosing dataset is switched to UTF-8
// (ISO_IR 192) first, so every text value stays consistent with the
// declared character set. Values are padded to even length as the VR
// requires.
func (ds *Dataset) SetStrings(t Tag, vr VR, values ...string) error {
	if !vr.IsText() {
		return fmt.Errorf("dicom: set %s: VR %s is not a string VR", t, vr)
	}
	joined := strings.Join(values, `\`)
	var raw []byte
	if vr.UsesCharset() {
		b, err := ds.Charset().Encode(joined, charsetKind(vr))
		if err != nil {
			if ds.Root().sealed {
				return fmt.Errorf("dicom: set %s: %w: the character set cannot change once the start of the file is written", t, ErrNotEncodable)
			}
			if err := ds.Root().ConvertToUTF8(); err != nil {
				return err
			}
			b = []byte(joined)
		}
		raw = b
	} else {
		for i := 0; i < len(joined); i++ {
			if joined[i] >= 0x80 {
				return fmt.Errorf("dicom: set %s: %w: VR %s takes the default repertoire only", t, ErrNotEncodable, vr)
			}
		}
		raw = []byte(joined)
	}
	if len(raw)%2 == 1 {
		raw = append(raw, vr.Padding())
	}
	ds.Set(Element{Tag: t, VR: vr, Value: raw})
	return nil
}

// SetInts sets a binary integer element (US, SS, UL, SL, UV, SV, AT) or
// an IS element to the given values.
func (ds *Dataset) SetInts(t Tag, vr VR, values ...int64) error {
	o := ds.Order()
	var raw []byte
	switch vr {
	case IS:
		parts := make([]string, len(values))
		for i, v := range values {
			parts[i] = strconv.FormatInt(v, 10)
		}
		return ds.SetStrings(t, vr, parts...)
	case US, SS, OW:
		raw = make([]byte, 0, 2*len(values))
		for _, v := range values {
			raw = o.AppendUint16(raw, uint16(v))
		}
	case UL, SL, OL:
		raw = make([]byte, 0, 4*len(values))
		for _, v := range values {
			raw = o.AppendUint32(raw, uint32(v))
		}
	case AT:
		raw = make([]byte, 0, 4*len(values))
		for _, v := range values {
			raw = o.AppendUint16(raw, uint16(v>>16))
			raw = o.AppendUint16(raw, uint16(v))
		}
	case UV, SV, OV:
		raw = make([]byte, 0, 8*len(values))
		for _, v := range values {
			raw = o.AppendUint64(raw, uint64(v))
		}
	default:
		return fmt.Errorf("dicom: set %s: VR %s is not an integer VR", t, vr)
	}
	ds.Set(Element{Tag: t, VR: vr, Value: raw})
	return nil
}

// SetFloats sets an FL, FD, OF, OD element, or a DS element (formatted in
// at most 16 characters per value).
func (ds *Dataset) SetFloats(t Tag, vr VR, values ...float64) error {
	o := ds.Order()
	var raw []byte
	switch vr {
	case DS:
		parts := make([]string, len(values))
		for i, v := range values {
			parts[i] = FormatDS(v)
		}
		return ds.SetStrings(t, vr, parts...)
	case FL, OF:
		for _, v := range values {
			raw = o.AppendUint32(raw, math.Float32bits(float32(v)))
		}
	case FD, OD:
		for _, v := range values {
			raw = o.AppendUint64(raw, math.Float64bits(v))
		}
	default:
		return fmt.Errorf("dicom: set %s: VR %s is not a floating-point VR", t, vr)
	}
	ds.Set(Element{Tag: t, VR: vr, Value: raw})
	return nil
}

// FormatDS formats v as a Decimal String of at most 16 characters.
func FormatDS(v float64) string {
	for prec := 16; prec > 0; prec-- {
		s := strconv.FormatFloat(v, 'g', prec, 64)
		if len(s) <= 16 {
			return s
		}
	}
	return strconv.FormatFloat(v, 'e', 6, 64)
}

// SetBytes sets an element to raw value bytes, padded to even length with
// zero.
func (ds *Dataset) SetBytes(t Tag, vr VR, v []byte) {
	if len(v)%2 == 1 {
		v = append(v[:len(v):len(v)], 0)
	}
	ds.Set(Element{Tag: t, VR: vr, Value: v})
}

// SetSequence sets a sequence element holding items (each of undefined
// length unless the item says otherwise).
func (ds *Dataset) SetSequence(t Tag, items ...*Item) {
	if items == nil {
		items = []*Item{}
	}
	ds.Set(Element{Tag: t, VR: SQ, Length: UndefinedLength, Items: items})
}

// ConvertToUTF8 re-encodes every character-string value of ds and its
// items as UTF-8 and declares ISO_IR 192, replacing the character sets
// declared at any level. Call it on a top-level dataset.
func (ds *Dataset) ConvertToUTF8() error {
	if cs := ds.Charset(); cs.IsUTF8() && !hasNestedCharset(ds) {
		return nil
	}
	convertUTF8(ds)
	raw := []byte("ISO_IR 192")
	ds.Set(Element{Tag: TagSpecificCharacterSet, VR: CS, Value: raw})
	return nil
}

func hasNestedCharset(ds *Dataset) bool {
	found := false
	for i := range ds.Elements {
		for _, it := range ds.Elements[i].Items {
			if it.Has(TagSpecificCharacterSet) || hasNestedCharset(&it.Dataset) {
				found = true
			}
		}
	}
	return found
}

// convertUTF8 decodes text values with the set in force where they are,
// depth first, so that nested sets are honoured before they are removed.
func convertUTF8(ds *Dataset) {
	cs := ds.Charset()
	for i := range ds.Elements {
		e := &ds.Elements[i]
		for _, it := range e.Items {
			convertUTF8(&it.Dataset)
		}
		if e.VR.UsesCharset() && len(e.Value) > 0 && !isASCII(e.Value) {
			s := cs.Decode(e.Value, charsetKind(e.VR))
			v := []byte(s)
			if len(v)%2 == 1 {
				v = append(v, ' ')
			}
			e.Value = v
			ds.touch(e.Tag)
		}
	}
	if ds.parent != nil && ds.Remove(TagSpecificCharacterSet) {
		ds.touch(TagSpecificCharacterSet)
	}
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 || c == 0x1B {
			return false
		}
	}
	return true
}

// Equal reports whether two elements have the same tag, VR and encoded
// content.
func (e *Element) Equal(o *Element) bool {
	if e.Tag != o.Tag || e.VR != o.VR || !bytes.Equal(e.Value, o.Value) || len(e.Items) != len(o.Items) {
		return false
	}
	for i := range e.Items {
		a, b := &e.Items[i].Dataset, &o.Items[i].Dataset
		if len(a.Elements) != len(b.Elements) {
			return false
		}
		for j := range a.Elements {
			if !a.Elements[j].Equal(&b.Elements[j]) {
				return false
			}
		}
	}
	if (e.Fragments == nil) != (o.Fragments == nil) {
		return false
	}
	if e.Fragments != nil {
		if !bytes.Equal(e.Fragments.OffsetTable, o.Fragments.OffsetTable) || len(e.Fragments.Items) != len(o.Fragments.Items) {
			return false
		}
		for i := range e.Fragments.Items {
			if !bytes.Equal(e.Fragments.Items[i], o.Fragments.Items[i]) {
				return false
			}
		}
	}
	return true
}
