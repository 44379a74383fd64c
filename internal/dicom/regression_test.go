package dicom

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"testing"
	"time"
)

// rawBuf builds DICOM encodings byte by byte for the regression tests.
type rawBuf struct {
	bytes.Buffer
	o        binary.ByteOrder
	implicit bool
}

func newRaw() *rawBuf { return &rawBuf{o: binary.LittleEndian} }

func (b *rawBuf) tag(t Tag) {
	binary.Write(b, b.o, t.Group())
	binary.Write(b, b.o, t.Element())
}

// hdr writes an element header in the buffer's encoding.
func (b *rawBuf) hdr(t Tag, vr VR, n uint32) {
	b.tag(t)
	if b.implicit || t.Group() == 0xFFFE {
		binary.Write(b, b.o, n)
		return
	}
	b.WriteString(vr.String())
	if vr.HasLongLength() {
		b.Write([]byte{0, 0})
		binary.Write(b, b.o, n)
		return
	}
	binary.Write(b, b.o, uint16(n))
}

func (b *rawBuf) el(t Tag, vr VR, v string) {
	b.hdr(t, vr, uint32(len(v)))
	b.WriteString(v)
}

// rawPart10 returns a preamble, "DICM" and explicit VR little endian meta
// information declaring ts (plus any extra meta elements), followed by body.
func rawPart10(ts string, extra func(m *rawBuf), body []byte) []byte {
	m := newRaw()
	m.el(TagFileMetaVersion, OB, "\x00\x01")
	if extra != nil {
		extra(m)
	}
	m.el(TagTransferSyntaxUID, UI, string(padUID([]byte(ts))))
	out := newRaw()
	out.Write(make([]byte, 128))
	out.WriteString("DICM")
	out.el(TagFileMetaGroupLength, UL, string(binary.LittleEndian.AppendUint32(nil, uint32(m.Len()))))
	out.Write(m.Bytes())
	out.Write(body)
	return out.Bytes()
}

func countTag(ds *Dataset, t Tag) int {
	n := 0
	for i := range ds.Elements {
		if ds.Elements[i].Tag == t {
			n++
		}
	}
	return n
}

// A defined-length sequence that ends with a Sequence Delimitation Item is
// accepted by readItems ("tolerated only if it ends the sequence
// exactly"), but the writer then emits the declared length without the
// delimiter, so an unedited file is not written back as read and the
// output no longer parses.
func TestRegressionDelimiterInDefinedLengthSequenceRoundTrip(t *testing.T) {
	t.Parallel()
	body := newRaw()
	body.el(TagSOPClassUID, UI, "1.2\x00")
	item := newRaw()
	item.el(NewTag(0x0008, 0x1150), UI, "1.2\x00")
	seqLen := uint32(8 + item.Len() + 8)
	body.hdr(NewTag(0x0008, 0x1140), SQ, seqLen)
	body.hdr(TagItem, 0, uint32(item.Len()))
	body.Write(item.Bytes())
	body.hdr(TagSequenceDelimitation, 0, 0)
	body.el(NewTag(0x0010, 0x0010), PN, "Doe^")
	data := rawPart10(ExplicitVRLittleEndian, nil, body.Bytes())

	f, err := Parse(data, ReadOptions{})
	if err != nil {
		t.Fatalf("input should parse (the delimiter is tolerated): %v", err)
	}
	out := encode(t, f)
	if !bytes.Equal(out, data) {
		t.Errorf("unedited file not written back byte for byte (%d bytes in, %d out)", len(data), len(out))
	}
	g, err := Parse(out, ReadOptions{})
	if err != nil {
		t.Fatalf("written file does not parse: %v", err)
	}
	if s, _ := g.Dataset.String(NewTag(0x0010, 0x0010)); s != "Doe^" {
		t.Errorf("PatientName after round trip: %q", s)
	}
}

// Binary values set on an item are encoded with the item's own byte-order
// flag, which only SetSequence sets, and only on the direct items at the
// moment they are attached. An item nested in an item that was itself
// built before being attached to a big-endian dataset stays little endian
// forever, so SetInts writes little-endian bytes into a big-endian file.
func TestRegressionNestedItemValuesInBigEndian(t *testing.T) {
	t.Parallel()
	f := &File{Preamble: make([]byte, 128), Syntax: Syntax{UID: ExplicitVRBigEndian, BigEndian: true}}
	f.Dataset.bigEndian = true
	f.Dataset.SetStrings(TagSOPInstanceUID, UI, "1.2.3")
	inner := NewItem()
	outer := NewItem()
	outer.SetSequence(NewTag(0x0040, 0x0008), inner)
	f.Dataset.SetSequence(NewTag(0x0040, 0x0275), outer)
	// Everything is attached now; set values on both levels.
	if err := outer.SetInts(NewTag(0x0028, 0x0010), US, 0x0102); err != nil {
		t.Fatal(err)
	}
	if err := inner.SetInts(NewTag(0x0028, 0x0011), US, 0x0304); err != nil {
		t.Fatal(err)
	}
	g, err := Parse(encode(t, f), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	o := g.Dataset.Get(NewTag(0x0040, 0x0275)).Items[0]
	if v, _ := o.Int(NewTag(0x0028, 0x0010)); v != 0x0102 {
		t.Errorf("outer item US: got %#x, want 0x102", v)
	}
	in := o.Get(NewTag(0x0040, 0x0008)).Items[0]
	if v, _ := in.Int(NewTag(0x0028, 0x0011)); v != 0x0304 {
		t.Errorf("nested item US: got %#x, want 0x304 (written little endian into a big-endian file)", v)
	}

	// Values set on an item before it is attached are little endian;
	// SetSequence then flips the item's flag without converting them.
	pre := NewItem()
	pre.SetInts(NewTag(0x0028, 0x0010), US, 0x0708)
	f.Dataset.SetSequence(NewTag(0x0008, 0x1115), pre)
	g, err = Parse(encode(t, f), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := g.Dataset.Get(NewTag(0x0008, 0x1115)).Items[0].Int(NewTag(0x0028, 0x0010)); v != 0x0708 {
		t.Errorf("value set before SetSequence: got %#x, want 0x708", v)
	}

	// Set with an Element carrying items does not propagate the order at all.
	it := NewItem()
	it.SetInts(NewTag(0x0028, 0x0010), US, 0x0506)
	f.Dataset.Set(Element{Tag: NewTag(0x0008, 0x1140), VR: SQ, Length: UndefinedLength, Items: []*Item{it}})
	g, err = Parse(encode(t, f), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := g.Dataset.Get(NewTag(0x0008, 0x1140)).Items[0].Int(NewTag(0x0028, 0x0010)); v != 0x0506 {
		t.Errorf("item added with Set: got %#x, want 0x506", v)
	}
}

// A header-only parse (StopAtPixelData) keeps the pixel element with
// Stream set and no value. WriteFile writes its header (declaring the
// full length) and nothing after it, without reporting an error: the
// output is a corrupt file.
func TestRegressionWriteFileOfHeaderOnlyParse(t *testing.T) {
	t.Parallel()
	data := encode(t, sampleFile(t, Syntax{UID: ExplicitVRLittleEndian}))
	f, err := Parse(data, ReadOptions{StopAtPixelData: true})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteFile(&b, f); err != nil {
		return // refusing is fine
	}
	if _, err := Parse(b.Bytes(), ReadOptions{}); err != nil {
		t.Errorf("WriteFile succeeded but wrote an unreadable file: %v", err)
	}
}

// Rewrite assumes the streamed pixel element is the last element after
// Edit. An Edit that removes every element makes n0 == 0 and
// f.Dataset.Elements[n0-1] panics instead of returning the intended
// "edit removed or replaced streamed pixel data" error.
func TestRegressionRewriteEditRemovingEverythingPanics(t *testing.T) {
	t.Parallel()
	data := encode(t, sampleFile(t, Syntax{UID: ExplicitVRLittleEndian}))
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("Rewrite panicked: %v", r)
		}
	}()
	err := Rewrite(&bytes.Buffer{}, bytes.NewReader(data), RewriteOptions{Edit: func(f *File) error {
		f.Dataset.RemoveFunc(func(*Element) bool { return true })
		return nil
	}})
	if err == nil {
		t.Errorf("Rewrite accepted an edit that removed the streamed pixel data")
	}
}

// trailerFile is sampleFile with a Digital Signatures Sequence of defined
// length and a private block after the pixel data.
func trailerFile(t *testing.T) []byte {
	f := sampleFile(t, Syntax{UID: ExplicitVRLittleEndian})
	it := NewItem()
	it.Length = 0 // defined, computed on write
	if err := it.SetStrings(NewTag(0x0400, 0x0015), CS, "SHA1"); err != nil {
		t.Fatal(err)
	}
	f.Dataset.SetSequence(NewTag(0xFFFA, 0xFFFA), it)
	f.Dataset.Get(NewTag(0xFFFA, 0xFFFA)).Length = 0 // defined
	if err := f.Dataset.SetStrings(NewTag(0x7FE1, 0x0010), LO, "ACME"); err != nil {
		t.Fatal(err)
	}
	if err := f.Dataset.SetStrings(NewTag(0x7FE1, 0x1001), LO, "x"); err != nil {
		t.Fatal(err)
	}
	data := encode(t, f)
	if g, err := Parse(data, ReadOptions{}); err != nil || g.Dataset.Get(NewTag(0xFFFA, 0xFFFA)).Length == UndefinedLength {
		t.Fatalf("trailer sample: %v", err)
	}
	return data
}

// Rewrite writes the elements that EditTrailer changed without settling
// lengths: a change inside an item of a defined-length sequence in the
// trailer leaves the old item and sequence lengths in the output.
func TestRegressionRewriteEditTrailerLengths(t *testing.T) {
	t.Parallel()
	data := trailerFile(t)
	var out bytes.Buffer
	err := Rewrite(&out, bytes.NewReader(data), RewriteOptions{EditTrailer: func(tail *Dataset) error {
		sq := tail.Get(NewTag(0xFFFA, 0xFFFA))
		return sq.Items[0].SetStrings(NewTag(0x0400, 0x0015), CS, "RIPEMD160 AND MORE")
	}})
	if err != nil {
		t.Fatal(err)
	}
	g, err := Parse(out.Bytes(), ReadOptions{})
	if err != nil {
		t.Fatalf("rewritten file does not parse: %v", err)
	}
	it := g.Dataset.Get(NewTag(0xFFFA, 0xFFFA)).Items[0]
	if s, _ := it.String(NewTag(0x0400, 0x0015)); s != "RIPEMD160 AND MORE" {
		t.Errorf("trailer item value: %q", s)
	}
}

// The trailer handed to EditTrailer is a detached Dataset with no parent:
// it does not see the file's Specific Character Set. Setting a Latin-1
// string there (representable in the file's ISO_IR 100) fails to encode
// in the default repertoire, so SetStrings converts the detached trailer
// to UTF-8 and inserts a second (0008,0005) after the pixel data, while
// the file still declares ISO_IR 100 up front.
func TestRegressionRewriteEditTrailerCharset(t *testing.T) {
	t.Parallel()
	data := trailerFile(t)
	var out bytes.Buffer
	err := Rewrite(&out, bytes.NewReader(data), RewriteOptions{EditTrailer: func(tail *Dataset) error {
		return tail.SetStrings(NewTag(0x7FE1, 0x1001), LO, "café")
	}})
	if err != nil {
		t.Fatal(err)
	}
	g, err := Parse(out.Bytes(), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := countTag(&g.Dataset, TagSpecificCharacterSet); n != 1 {
		t.Errorf("output holds %d Specific Character Set elements, want 1", n)
	}
	if s, _ := g.Dataset.String(NewTag(0x7FE1, 0x1001)); s != "café" {
		t.Errorf("trailer value reads back as %q, want %q", s, "café")
	}
}

// rebuildMeta takes Media Storage SOP Class/Instance UID only from the
// dataset's SOP Class/Instance UID. A DICOMDIR (or any file whose dataset
// has no SOP Common attributes) loses these Type 1 meta elements as soon
// as its dataset is edited.
func TestRegressionRebuildMetaKeepsMediaStorageUIDs(t *testing.T) {
	t.Parallel()
	body := newRaw()
	body.el(NewTag(0x0004, 0x1130), CS, "MYDIR ")
	body.hdr(NewTag(0x0004, 0x1220), SQ, 0)
	data := rawPart10(ExplicitVRLittleEndian, func(m *rawBuf) {
		m.el(TagMediaStorageSOPClassUID, UI, "1.2.840.10008.1.3.10")
		m.el(TagMediaStorageSOPInstanceUID, UI, "1.2.3.4\x00")
	}, body.Bytes())
	f, err := Parse(data, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Dataset.SetStrings(NewTag(0x0004, 0x1130), CS, "RENAMED"); err != nil {
		t.Fatal(err)
	}
	g, err := Parse(encode(t, f), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := g.Meta.UID(TagMediaStorageSOPClassUID); got != "1.2.840.10008.1.3.10" {
		t.Errorf("MediaStorageSOPClassUID after edit: %q, want the DICOMDIR class", got)
	}
	if got := g.Meta.UID(TagMediaStorageSOPInstanceUID); got != "1.2.3.4" {
		t.Errorf("MediaStorageSOPInstanceUID after edit: %q", got)
	}
}

// checkDeclaredSyntax reads a file that declares explicit VR but holds
// implicit VR data as implicit VR (f.Syntax.Implicit = true, UID still
// explicit). When the dataset is edited, the meta information is rebuilt
// from f.Syntax.UID, so the "corrected" file again declares Explicit VR
// Little Endian while the writer encodes it in implicit VR.
func TestRegressionRebuiltMetaMatchesEncoding(t *testing.T) {
	t.Parallel()
	body := newRaw()
	body.implicit = true
	body.el(TagSOPClassUID, UI, "1.2\x00")
	body.el(TagSOPInstanceUID, UI, "1.3\x00")
	body.el(NewTag(0x0010, 0x0010), PN, "Doe^")
	f, err := Parse(rawPart10(ExplicitVRLittleEndian, nil, body.Bytes()), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !f.Syntax.Implicit {
		t.Fatalf("precondition: data should be detected as implicit VR")
	}
	if err := f.Dataset.SetStrings(NewTag(0x0010, 0x0020), LO, "ID1"); err != nil {
		t.Fatal(err)
	}
	g, err := Parse(encode(t, f), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ts := g.Meta.UID(TagTransferSyntaxUID)
	want := ExplicitVRLittleEndian
	if g.Syntax.Implicit {
		want = ImplicitVRLittleEndian
	}
	if ts != want {
		t.Errorf("rebuilt meta declares %s but the dataset is encoded as %s", ts, want)
	}
}

// Prepare rebuilds the meta information only when the dataset changed, and
// recomputes lengths only for modified items. Changing f.Syntax (the only
// way to transcode) therefore writes a dataset in the new syntax behind a
// meta information that still declares the old one, with defined item
// lengths computed for the old encoding.
func TestRegressionSyntaxChangeUpdatesMetaAndLengths(t *testing.T) {
	t.Parallel()
	f, err := Parse(encode(t, sampleFile(t, Syntax{UID: ExplicitVRLittleEndian})), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.Syntax = Syntax{UID: ImplicitVRLittleEndian, Implicit: true}
	out := encode(t, f)
	g, err := Parse(out, ReadOptions{})
	if err != nil {
		t.Fatalf("transcoded file does not parse: %v", err)
	}
	if ts := g.Meta.UID(TagTransferSyntaxUID); ts != ImplicitVRLittleEndian {
		t.Errorf("meta Transfer Syntax UID after transcoding: %s, want %s", ts, ImplicitVRLittleEndian)
	}
}

// JPIP Referenced Deflate (1.2.840.10008.1.2.4.95) and JPIP HTJ2K
// Referenced Deflate (1.2.840.10008.1.2.4.205) deflate the dataset like
// 1.2.840.10008.1.2.1.99 (PS3.5 A.7, A.12). isEncapsulatedSyntax lumps
// every 1.2.840.10008.1.2.4.* UID in with the encapsulated syntaxes, so
// such files are parsed as raw explicit VR and fail.
func TestRegressionJPIPReferencedDeflate(t *testing.T) {
	t.Parallel()
	for _, uid := range []string{"1.2.840.10008.1.2.4.95", "1.2.840.10008.1.2.4.205"} {
		s, _ := LookupSyntax(uid)
		if !s.Deflated {
			t.Errorf("LookupSyntax(%s) = %+v, want Deflated", uid, s)
		}
	}
	// End to end: a deflated dataset declared as JPIP Referenced Deflate.
	f := sampleFile(t, Syntax{UID: DeflatedExplicitVRLittleEndian, Deflated: true})
	f.Dataset.Remove(TagPixelData)
	data := encode(t, f)
	g, err := Parse(data, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g.Syntax.UID = "1.2.840.10008.1.2.4.95"
	g.Dataset.SetStrings(NewTag(0x0028, 0x7FE0), UR, "http://example/pixels")
	jpip := encode(t, g)
	if _, err := Parse(jpip, ReadOptions{}); err != nil {
		t.Errorf("JPIP Referenced Deflate file does not parse: %v", err)
	}
}

// Lookup documents that private tags are not in the dictionary, but the
// repeating-group masks (0xFF00FFFF for 60xx/50xx/7Fxx) also match odd
// groups, so (6001,3000) is reported as Overlay Data.
func TestRegressionLookupPrivateRepeating(t *testing.T) {
	t.Parallel()
	for _, tag := range []Tag{NewTag(0x6001, 0x3000), NewTag(0x6001, 0x0010), NewTag(0x5001, 0x3000), NewTag(0x7F01, 0x0010)} {
		if e, ok := Lookup(tag); ok {
			t.Errorf("Lookup(%s) = %q, want not found (private tag)", tag, e.Keyword)
		}
	}
}

// Walk passes path slices built with append on a shared prefix: from depth
// four on, sibling sequences write into the same backing array, so a path
// kept by the callback changes under it.
func TestRegressionWalkPathAliasing(t *testing.T) {
	t.Parallel()
	var ds Dataset
	cur := &ds
	tags := []Tag{NewTag(0x0040, 0xA730), NewTag(0x0040, 0xA731), NewTag(0x0040, 0xA732)}
	for _, tg := range tags {
		it := NewItem()
		cur.SetSequence(tg, it)
		cur = &it.Dataset
	}
	// Depth 3 item holds two sibling sequences, each with one item holding
	// one element.
	a, b := NewItem(), NewItem()
	a.SetStrings(NewTag(0x0008, 0x0100), SH, "A")
	b.SetStrings(NewTag(0x0008, 0x0100), SH, "B")
	cur.SetSequence(NewTag(0x0040, 0xA040), a)
	cur.SetSequence(NewTag(0x0040, 0xA043), b)

	kept := map[string][]Tag{}
	ds.Walk(func(path []Tag, d *Dataset, e *Element) bool {
		if e.Tag == NewTag(0x0008, 0x0100) {
			s, _ := d.String(e.Tag)
			kept[s] = path
		}
		return true
	})
	if got := kept["A"]; len(got) != 4 || got[3] != NewTag(0x0040, 0xA040) {
		t.Errorf("path kept for A was overwritten: %v", fmt.Sprint(got))
	}
}

// zeroReader yields n zero bytes and hides its size.
type zeroReader struct{ n int64 }

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	k := int64(len(p))
	if k > z.n {
		k = z.n
	}
	clear(p[:k])
	z.n -= k
	return int(k), nil
}

// From a stream, inflate first copies the whole rest of the source into a
// bytes.Buffer and only then inflates it under MaxInflated: the
// compressed input is unbounded, so a deflated header followed by a long
// (or endless) stream is buffered entirely, even though the deflate data
// is invalid from its first bytes.
func TestRegressionStreamInflateBuffersWholeInput(t *testing.T) {
	// Not parallel: it measures the allocations of the whole process.
	head := rawPart10(DeflatedExplicitVRLittleEndian, nil, nil)
	src := io.MultiReader(bytes.NewReader(head), &zeroReader{n: 64 << 20})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := NewDecoder(src, ReadOptions{MaxInflated: 1 << 20}).ReadFile()
	runtime.ReadMemStats(&after)
	var de *Error
	if err == nil || !errors.As(err, &de) {
		t.Errorf("got %v, want a *dicom.Error", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Errorf("allocated %d MiB for a 1 MiB inflate limit and invalid deflate data", grew>>20)
	}
}

// TM accepts a leap second (SS = 60, PS3.5 Table 6.2-1). parseClock
// builds the clock with time.Date(0, 1, 1, 23, 59, 60), which normalises
// to 00:00:00 of the next day; ParseDT then copies only Hour/Minute/Second
// onto the date, so 2016-12-31 23:59:60 is returned as 2016-12-31
// 00:00:00, a day early.
func TestRegressionParseDTLeapSecond(t *testing.T) {
	t.Parallel()
	dt, err := ParseDT("20161231235960", nil)
	if err != nil {
		return // rejecting is acceptable
	}
	min := time.Date(2016, 12, 31, 23, 59, 59, 0, time.UTC)
	if dt.Time.Before(min) {
		t.Errorf("ParseDT(20161231235960) = %v, want 2016-12-31T23:59:59Z or later", dt.Time)
	}
}

func TestRegressionEditedOverrunSequenceReadsBack(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("/usr/lib/python3/dist-packages/pydicom/data/test_files/dicomdirtests/DICOMDIR-nooffset")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip("pydicom's test files are not installed (make test installs them)")
	}
	f, err := Parse(data, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// An element after the sequence: its data no longer ends the file.
	if err := f.Dataset.SetStrings(NewTag(0x0012, 0x0062), CS, "YES"); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteFile(&b, f); err != nil {
		t.Fatal(err)
	}
	g, err := Parse(b.Bytes(), ReadOptions{})
	if err != nil {
		t.Fatalf("edited file does not read back: %v", err)
	}
	if !g.Dataset.Has(NewTag(0x0012, 0x0062)) {
		t.Error("the element after the sequence was read into its last item: stale item length")
	}
	if n, m := len(g.Dataset.Get(NewTag(0x0004, 0x1220)).Items), len(f.Dataset.Get(NewTag(0x0004, 0x1220)).Items); n != m {
		t.Errorf("records: got %d, want %d", n, m)
	}
}
