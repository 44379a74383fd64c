package dicom

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DefaultDumpWidth is the number of characters of a value that Dump shows
// before truncating it, when DumpOptions.Width is zero.
const DefaultDumpWidth = 64

// DumpOptions steer Dump. The zero value shows the meta information and
// truncates long values.
type DumpOptions struct {
	// Full shows every value completely, binary values included.
	Full bool
	// Width is the number of characters of a value shown before it is cut
	// with "..." (0: DefaultDumpWidth). Ignored when Full is set.
	Width int
	// NoMeta leaves out the preamble and file meta information.
	NoMeta bool
}

// Dump writes a readable listing of f, one line per element in the manner
// of dcmtk's dcmdump:
//
//	(0010,0010) PN [Yamada^Tarou=山田^太郎]                  #   26, 1 PatientName
//
// that is the tag, the VR, the value, then after '#' the value length as
// stored ("u/l" for undefined), the value multiplicity and the keyword.
// The file meta information comes first, under a comment line, then the
// dataset under one naming its transfer syntax. Sequence items and their
// delimiters are listed on their own lines, indented two spaces per level;
// encapsulated pixel data lists its offset table and each fragment with
// its size.
//
// Text is decoded to Unicode with the character set in force, shown in
// brackets with its padding removed, several values separated by '\';
// control characters appear as <0D>-style hexadecimal codes so that every
// element keeps to one line. Numbers are shown in decimal, AT values as
// (gggg,eeee), OB and UN bytes and OW, OL and OV words in hexadecimal.
// Values longer than the width are cut with "...", and long binary values
// show their first numbers only, unless Full is set. Private data
// elements are named after their private creator.
func Dump(w io.Writer, f *File, opts DumpOptions) error {
	d := &dumper{w: bufio.NewWriterSize(w, 32<<10), opts: opts}
	if !opts.NoMeta {
		if f.Preamble != nil {
			d.comment("DICOM file: 128-byte preamble and \"DICM\"")
		} else {
			d.comment("DICOM stream without preamble")
		}
		if len(f.Meta.Elements) > 0 {
			d.comment("File meta information (group 0002), explicit VR little endian")
			d.dataset(&f.Meta, 0)
		} else {
			d.comment("No file meta information")
		}
	}
	d.comment("Dataset: " + dumpSyntax(f.Syntax))
	d.dataset(&f.Dataset, 0)
	return d.w.Flush()
}

// dumpSyntax describes a transfer syntax for people: its UID followed by
// its name when the UID is a well-known one, or by how it is encoded.
func dumpSyntax(s Syntax) string {
	if s.UID == "" {
		return "(no transfer syntax)"
	}
	if n, ok := dumpSyntaxNames[s.UID]; ok {
		return s.UID + " (" + n + ")"
	}
	switch {
	case s.Implicit:
		return s.UID + " (implicit VR little endian)"
	case s.BigEndian:
		return s.UID + " (explicit VR big endian)"
	case s.Deflated:
		return s.UID + " (deflated explicit VR little endian)"
	case s.Encapsulated:
		return s.UID + " (explicit VR little endian, encapsulated pixel data)"
	}
	return s.UID + " (explicit VR little endian)"
}

var dumpSyntaxNames = map[string]string{
	ImplicitVRLittleEndian:         "Implicit VR Little Endian",
	ExplicitVRLittleEndian:         "Explicit VR Little Endian",
	DeflatedExplicitVRLittleEndian: "Deflated Explicit VR Little Endian",
	ExplicitVRBigEndian:            "Explicit VR Big Endian (retired)",
	EncapsulatedUncompressed:       "Encapsulated Uncompressed Explicit VR Little Endian",
	RLELossless:                    "RLE Lossless",
	"1.2.840.10008.1.2.4.50":       "JPEG Baseline (Process 1)",
	"1.2.840.10008.1.2.4.51":       "JPEG Extended (Process 2 & 4)",
	"1.2.840.10008.1.2.4.57":       "JPEG Lossless, Non-Hierarchical (Process 14)",
	"1.2.840.10008.1.2.4.70":       "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14, Selection Value 1)",
	"1.2.840.10008.1.2.4.80":       "JPEG-LS Lossless",
	"1.2.840.10008.1.2.4.81":       "JPEG-LS Lossy (Near-Lossless)",
	"1.2.840.10008.1.2.4.90":       "JPEG 2000 (Lossless Only)",
	"1.2.840.10008.1.2.4.91":       "JPEG 2000",
	"1.2.840.10008.1.2.4.201":      "High-Throughput JPEG 2000 (Lossless Only)",
	"1.2.840.10008.1.2.4.202":      "High-Throughput JPEG 2000 with RPCL Options (Lossless Only)",
	"1.2.840.10008.1.2.4.203":      "High-Throughput JPEG 2000",
	"1.2.840.10008.1.2.4.100":      "MPEG2 Main Profile / Main Level",
	"1.2.840.10008.1.2.4.102":      "MPEG-4 AVC/H.264 High Profile / Level 4.1",
	"1.2.840.10008.1.2.4.107":      "HEVC/H.265 Main Profile / Level 5.1",
	"1.2.840.10008.1.2.4.110":      "JPEG XL Lossless",
	"1.2.840.10008.1.2.4.112":      "JPEG XL",
}

type dumper struct {
	w    *bufio.Writer
	opts DumpOptions
}

func (d *dumper) width() int {
	switch {
	case d.opts.Full:
		return math.MaxInt
	case d.opts.Width > 0:
		return d.opts.Width
	}
	return DefaultDumpWidth
}

func (d *dumper) comment(s string) {
	d.w.WriteString("# ")
	d.w.WriteString(s)
	d.w.WriteByte('\n')
}

// dumpValueColumn is where the '#' comment starts, counted from the indent.
const dumpValueColumn = 52

// line writes one element line.
func (d *dumper) line(depth int, t Tag, vr string, value, length string, vm int, name string) {
	indent := strings.Repeat("  ", depth)
	head := t.String() + " " + vr + " " + value
	d.w.WriteString(indent)
	d.w.WriteString(head)
	if n := utf8.RuneCountInString(head); n < dumpValueColumn {
		d.w.WriteString(strings.Repeat(" ", dumpValueColumn-n))
	}
	fmt.Fprintf(d.w, " # %4s, %d %s\n", length, vm, name)
}

func dumpLength(n uint32) string {
	if n == UndefinedLength {
		return "u/l"
	}
	return strconv.FormatUint(uint64(n), 10)
}

func (d *dumper) dataset(ds *Dataset, depth int) {
	for i := range ds.Elements {
		d.element(ds, &ds.Elements[i], depth)
	}
}

// dumpElementName is the keyword of t, or a description of a private tag.
func dumpElementName(ds *Dataset, t Tag) string {
	if t.IsPrivate() {
		if t.IsPrivateCreator() {
			return "PrivateCreator"
		}
		if ct, ok := t.PrivateCreatorTag(); ok {
			if c, ok := ds.String(ct); ok {
				return "Private[" + c + "]"
			}
		}
		return "Private"
	}
	if e, ok := Lookup(t); ok && e.Keyword != "" {
		if e.Retired {
			return "RETIRED_" + e.Keyword
		}
		return e.Keyword
	}
	return "Unknown"
}

func (d *dumper) element(ds *Dataset, e *Element, depth int) {
	name := dumpElementName(ds, e.Tag)
	vr := e.VR.String()
	switch {
	case e.Stream:
		d.line(depth, e.Tag, vr, "(not loaded)", dumpLength(e.Length), 1, name)
	case e.Items != nil:
		d.sequence(e, depth, vr, name)
	case e.Fragments != nil:
		d.fragments(e, depth, vr, name)
	default:
		v, vm := d.value(ds, e)
		d.line(depth, e.Tag, vr, v, dumpLength(uint32(len(e.Value))), vm, name)
	}
}

// dumpCount writes n with a noun, in the plural unless n is 1.
func dumpCount(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func dumpLengthKind(n uint32) string {
	if n == UndefinedLength {
		return "undefined length"
	}
	return "defined length"
}

func (d *dumper) sequence(e *Element, depth int, vr, name string) {
	what := "Sequence"
	if e.VR != SQ {
		what = "Sequence read from " + vr
	}
	d.line(depth, e.Tag, vr, fmt.Sprintf("(%s, %s, %s)", what, dumpCount(len(e.Items), "item"), dumpLengthKind(e.Length)), dumpLength(e.Length), 1, name)
	for i, it := range e.Items {
		d.line(depth+1, TagItem, "na", fmt.Sprintf("(Item %d, %s, %s)", i+1, dumpCount(len(it.Elements), "element"), dumpLengthKind(it.Length)), dumpLength(it.Length), 1, "Item")
		d.dataset(&it.Dataset, depth+2)
		if it.Length == UndefinedLength {
			d.line(depth+1, TagItemDelimitation, "na", "(Item Delimitation)", "0", 0, "ItemDelimitationItem")
		}
	}
	if e.Length == UndefinedLength {
		d.line(depth, TagSequenceDelimitation, "na", "(Sequence Delimitation)", "0", 0, "SequenceDelimitationItem")
	}
}

func (d *dumper) fragments(e *Element, depth int, vr, name string) {
	fr := e.Fragments
	var total int64
	for _, f := range fr.Items {
		total += int64(len(f))
	}
	d.line(depth, e.Tag, vr, fmt.Sprintf("(Encapsulated, %s, %s)", dumpCount(len(fr.Items), "fragment"), dumpCount(int(total), "byte")), "u/l", 1, name)
	bot := "(Basic Offset Table, empty)"
	if len(fr.OffsetTable) > 0 {
		bot = "(Basic Offset Table) " + d.hexWords(fr.OffsetTable, 4, binary.LittleEndian) // always little endian
	}
	d.line(depth+1, TagItem, "pi", bot, dumpLength(uint32(len(fr.OffsetTable))), 1, "Item")
	for i, f := range fr.Items {
		d.line(depth+1, TagItem, "pi", fmt.Sprintf("(Fragment %d) ", i+1)+d.hexBytes(f), dumpLength(uint32(len(f))), 1, "Item")
	}
	d.line(depth, TagSequenceDelimitation, "na", "(Sequence Delimitation)", "0", 0, "SequenceDelimitationItem")
}

// dumpOrder reads binary numbers in a byte order.
type dumpOrder interface {
	Uint16([]byte) uint16
	Uint32([]byte) uint32
	Uint64([]byte) uint64
}

// value renders the value of a non-sequence element and its multiplicity.
func (d *dumper) value(ds *Dataset, e *Element) (string, int) {
	if len(e.Value) == 0 {
		return "(no value)", 0
	}
	o := ds.Order()
	switch e.VR {
	case OB, UN:
		return d.hexBytes(e.Value), 1
	case OW:
		return d.hexWords(e.Value, 2, o), 1
	case OL:
		return d.hexWords(e.Value, 4, o), 1
	case OV:
		return d.hexWords(e.Value, 8, o), 1
	case OF, OD, FL, FD:
		return d.numbers(e, o)
	case US, SS, UL, SL, UV, SV, AT:
		return d.numbers(e, o)
	}
	if !e.VR.IsText() {
		return d.hexBytes(e.Value), 1
	}
	vs := ds.Strings(e)
	return "[" + d.cut(strings.Join(vs, `\`)) + "]", len(vs)
}

// cut escapes control characters and shortens s to the width.
func (d *dumper) cut(s string) string {
	max := d.width()
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n >= max {
			b.WriteString("...")
			break
		}
		if r < 0x20 || r == 0x7F {
			fmt.Fprintf(&b, "<%02X>", r)
		} else {
			b.WriteRune(r)
		}
		n++
	}
	return b.String()
}

// shown returns how many of count values of the given rendered width fit.
func (d *dumper) shown(count, each int) int {
	if d.opts.Full {
		return count
	}
	k := max(1, d.width()/(each+1))
	return min(count, k)
}

func (d *dumper) hexBytes(v []byte) string {
	const hex = "0123456789abcdef"
	k := d.shown(len(v), 2)
	var b strings.Builder
	b.Grow(3 * k)
	for i := 0; i < k; i++ {
		if i > 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(hex[v[i]>>4])
		b.WriteByte(hex[v[i]&15])
	}
	if k < len(v) {
		fmt.Fprintf(&b, "...(%d bytes)", len(v))
	}
	return b.String()
}

func (d *dumper) hexWords(v []byte, size int, o dumpOrder) string {
	count := len(v) / size
	k := d.shown(count, 2*size)
	var b strings.Builder
	for i := 0; i < k; i++ {
		if i > 0 {
			b.WriteByte('\\')
		}
		p := v[i*size:]
		switch size {
		case 2:
			fmt.Fprintf(&b, "%04x", o.Uint16(p))
		case 4:
			fmt.Fprintf(&b, "%08x", o.Uint32(p))
		default:
			fmt.Fprintf(&b, "%016x", o.Uint64(p))
		}
	}
	if k < count || len(v)%size != 0 {
		fmt.Fprintf(&b, "...(%d bytes)", len(v))
	}
	return b.String()
}

// numbers renders binary numbers and tags.
func (d *dumper) numbers(e *Element, o dumpOrder) (string, int) {
	size := e.VR.ValueSize()
	v := e.Value
	count := len(v) / size
	var b strings.Builder
	for i := 0; i < count; i++ {
		if i > 0 {
			b.WriteByte('\\')
		}
		if !d.opts.Full && b.Len() >= d.width() {
			b.WriteString("...")
			break
		}
		p := v[i*size:]
		switch e.VR {
		case US:
			b.WriteString(strconv.FormatUint(uint64(o.Uint16(p)), 10))
		case SS:
			b.WriteString(strconv.FormatInt(int64(int16(o.Uint16(p))), 10))
		case UL:
			b.WriteString(strconv.FormatUint(uint64(o.Uint32(p)), 10))
		case SL:
			b.WriteString(strconv.FormatInt(int64(int32(o.Uint32(p))), 10))
		case UV:
			b.WriteString(strconv.FormatUint(o.Uint64(p), 10))
		case SV:
			b.WriteString(strconv.FormatInt(int64(o.Uint64(p)), 10))
		case FL, OF:
			b.WriteString(strconv.FormatFloat(float64(math.Float32frombits(o.Uint32(p))), 'g', -1, 32))
		case FD, OD:
			b.WriteString(strconv.FormatFloat(math.Float64frombits(o.Uint64(p)), 'g', -1, 64))
		case AT:
			b.WriteString(NewTag(o.Uint16(p), o.Uint16(p[2:])).String())
		}
	}
	if len(v)%size != 0 {
		fmt.Fprintf(&b, "...(%d bytes, not a multiple of %d)", len(v), size)
	}
	vm := count
	if e.VR == OF || e.VR == OD {
		vm = 1
	}
	return b.String(), vm
}
