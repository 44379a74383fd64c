package dicom

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
)

// sampleFile builds a small file with nested sequences of defined and
// undefined length, private elements and native pixel data.
func sampleFile(t testing.TB, syn Syntax) *File {
	t.Helper()
	f := &File{Preamble: make([]byte, 128), Syntax: syn}
	ds := &f.Dataset
	ds.bigEndian = syn.BigEndian
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(ds.SetStrings(TagSpecificCharacterSet, CS, "ISO_IR 100"))
	must(ds.SetStrings(TagSOPClassUID, UI, "1.2.840.10008.5.1.4.1.1.2"))
	must(ds.SetStrings(TagSOPInstanceUID, UI, "2.25.1234"))
	must(ds.SetStrings(NewTag(0x0008, 0x0060), CS, "CT"))
	must(ds.SetStrings(NewTag(0x0010, 0x0010), PN, "Doe^Jane"))
	must(ds.SetStrings(NewTag(0x0010, 0x0020), LO, "ID001"))
	must(ds.SetInts(NewTag(0x0028, 0x0010), US, 4))
	must(ds.SetInts(NewTag(0x0028, 0x0011), US, 4))
	must(ds.SetFloats(NewTag(0x0028, 0x0030), DS, 0.5, 0.5))
	inner := NewItem()
	must(inner.SetStrings(NewTag(0x0008, 0x0100), SH, "113100"))
	must(inner.SetStrings(NewTag(0x0008, 0x0102), SH, "DCM"))
	outer := NewItem()
	outer.Length = 0 // defined length, computed on write
	must(outer.SetStrings(NewTag(0x0040, 0x1001), SH, "RP1"))
	outer.SetSequence(NewTag(0x0040, 0x0008), inner)
	ds.SetSequence(NewTag(0x0040, 0x0275), outer)
	must(ds.SetStrings(NewTag(0x0009, 0x0010), LO, "ACME 1.0"))
	ds.SetBytes(NewTag(0x0009, 0x1001), UN, []byte("secret"))
	pix := make([]byte, 32)
	for i := range pix {
		pix[i] = byte(i)
	}
	ds.SetBytes(TagPixelData, OW, pix)
	return f
}

func encode(t testing.TB, f *File) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteFile(&b, f); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestWriteReadRoundTrip(t *testing.T) {
	t.Parallel()
	for _, syn := range []Syntax{
		{UID: ExplicitVRLittleEndian},
		{UID: ImplicitVRLittleEndian, Implicit: true},
		{UID: ExplicitVRBigEndian, BigEndian: true},
		{UID: DeflatedExplicitVRLittleEndian, Deflated: true},
	} {
		t.Run(syn.UID, func(t *testing.T) {
			data := encode(t, sampleFile(t, syn))
			f, err := Parse(data, ReadOptions{})
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if f.Syntax.UID != syn.UID {
				t.Fatalf("syntax: got %s, want %s", f.Syntax.UID, syn.UID)
			}
			if got, _ := f.Dataset.String(NewTag(0x0010, 0x0010)); got != "Doe^Jane" {
				t.Errorf("PatientName: got %q", got)
			}
			if got, _ := f.Dataset.Int(NewTag(0x0028, 0x0010)); got != 4 {
				t.Errorf("Rows: got %d, want 4", got)
			}
			sq := f.Dataset.Get(NewTag(0x0040, 0x0275))
			if sq == nil || len(sq.Items) != 1 {
				t.Fatalf("request sequence: %+v", sq)
			}
			code := sq.Items[0].Get(NewTag(0x0040, 0x0008)).Items[0]
			if got, _ := code.String(NewTag(0x0008, 0x0100)); got != "113100" {
				t.Errorf("nested code value: got %q", got)
			}
			if again := encode(t, f); !bytes.Equal(again, data) {
				t.Errorf("rewrite without edits changed %d bytes to %d", len(data), len(again))
			}
			// Meta information was built from the dataset.
			if got := f.Meta.UID(TagMediaStorageSOPInstanceUID); got != "2.25.1234" {
				t.Errorf("MediaStorageSOPInstanceUID: got %q", got)
			}
			if got := f.Meta.UID(TagImplementationClassUID); got != ImplementationClassUID {
				t.Errorf("ImplementationClassUID: got %q", got)
			}
		})
	}
}

func TestEditRecomputesLengthsAndMeta(t *testing.T) {
	t.Parallel()
	f0, err := Parse(encode(t, sampleFile(t, Syntax{UID: ExplicitVRLittleEndian})), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Give groups 0010 and 0040 group length elements as an old writer
	// would, without marking anything changed.
	gl := func(g uint16) Element {
		return Element{Tag: NewTag(g, 0), VR: UL, Value: []byte{1, 0, 0, 0}, Length: 4}
	}
	els := f0.Dataset.Elements
	i10, i40 := f0.Dataset.index(NewTag(0x0010, 0x0010)), f0.Dataset.index(NewTag(0x0040, 0x0275))
	f0.Dataset.Elements = append(append(append(append(append([]Element{}, els[:i10]...), gl(0x0010)), els[i10:i40]...), gl(0x0040)), els[i40:]...)
	data := encode(t, f0)
	f, err := Parse(data, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if f.Dataset.Modified() {
		t.Fatal("a freshly read dataset reports changes")
	}
	item := &f.Dataset.Get(NewTag(0x0040, 0x0275)).Items[0].Dataset
	if err := item.SetStrings(NewTag(0x0040, 0x1001), SH, "A MUCH LONGER PROCEDURE ID"); err != nil {
		t.Fatal(err)
	}
	if err := f.Dataset.SetStrings(TagSOPInstanceUID, UI, "2.25.999"); err != nil {
		t.Fatal(err)
	}
	out := encode(t, f)
	g, err := Parse(out, ReadOptions{})
	if err != nil {
		t.Fatalf("reparse after edit: %v", err)
	}
	it := g.Dataset.Get(NewTag(0x0040, 0x0275)).Items[0]
	if got, _ := it.String(NewTag(0x0040, 0x1001)); got != "A MUCH LONGER PROCEDURE ID" {
		t.Errorf("edited value: got %q", got)
	}
	if it.Length == UndefinedLength || int64(it.Length) != datasetSize(&it.Dataset, g.Syntax) {
		t.Errorf("item length %d not recomputed", it.Length)
	}
	if g.Dataset.Has(NewTag(0x0040, 0x0000)) {
		t.Error("group length of the edited nested group 0040 is still present")
	}
	if !g.Dataset.Has(NewTag(0x0010, 0x0000)) {
		t.Error("group length of unchanged group 0010 was dropped")
	}
	if got := g.Meta.UID(TagMediaStorageSOPInstanceUID); got != "2.25.999" {
		t.Errorf("meta SOP instance: got %q, want 2.25.999", got)
	}
	// Unchanged elements are byte-identical.
	for _, tag := range []Tag{NewTag(0x0010, 0x0010), TagPixelData, NewTag(0x0009, 0x1001)} {
		if !f0.Dataset.Get(tag).Equal(g.Dataset.Get(tag)) {
			t.Errorf("%s changed", tag)
		}
	}
}

func TestCharsetSwitchesToUTF8(t *testing.T) {
	t.Parallel()
	f := sampleFile(t, Syntax{UID: ExplicitVRLittleEndian})
	data := encode(t, f)
	g, err := Parse(data, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Latin-1 holds é: kept in ISO_IR 100.
	if err := g.Dataset.SetStrings(NewTag(0x0010, 0x0010), PN, "Dupré^Zoé"); err != nil {
		t.Fatal(err)
	}
	if v := g.Dataset.Get(NewTag(0x0010, 0x0010)).Value; !bytes.Contains(v, []byte{0xE9}) {
		t.Errorf("name not encoded in ISO_IR 100: % x", v)
	}
	// Cyrillic is not in Latin-1: the whole dataset switches to UTF-8.
	if err := g.Dataset.SetStrings(NewTag(0x0008, 0x1030), LO, "Исследование"); err != nil {
		t.Fatal(err)
	}
	h, err := Parse(encode(t, g), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cs, _ := h.Dataset.String(TagSpecificCharacterSet); cs != "ISO_IR 192" {
		t.Errorf("charset: got %q, want ISO_IR 192", cs)
	}
	if v := h.Dataset.Get(NewTag(0x0010, 0x0010)).Value; !bytes.Contains(v, []byte("Dupré")) {
		t.Errorf("name not re-encoded as UTF-8: % x", v)
	}
	if got, _ := h.Dataset.String(NewTag(0x0008, 0x1030)); got != "Исследование" {
		t.Errorf("description: got %q", got)
	}
}

func TestTruncatedInputFailsCleanly(t *testing.T) {
	t.Parallel()
	data := encode(t, sampleFile(t, Syntax{UID: ExplicitVRLittleEndian}))
	for n := 0; n < len(data); n++ {
		_, err := Parse(data[:n], ReadOptions{})
		if err == nil {
			// Cutting exactly between top-level elements leaves a valid
			// shorter dataset.
			continue
		}
		var de *Error
		if !errors.As(err, &de) {
			t.Fatalf("prefix %d: error %v is not a *dicom.Error", n, err)
		}
		_, err = NewDecoder(io.MultiReader(bytes.NewReader(data[:n])), ReadOptions{}).ReadFile()
		if err == nil || !errors.As(err, &de) {
			t.Fatalf("prefix %d from a stream: got %v", n, err)
		}
	}
}

// unsizedReader hides the size of its source so the decoder cannot check
// lengths up front.
type unsizedReader struct{ r io.Reader }

func (u unsizedReader) Read(p []byte) (int, error) { return u.r.Read(p) }

func TestHugeLengthIsNotAllocated(t *testing.T) {
	// Not parallel: it measures the allocations of the whole process.
	var b bytes.Buffer
	b.Write(make([]byte, 128))
	b.WriteString("DICM")
	hdr := func(g, e uint16, vr string, n uint32) {
		binary.Write(&b, binary.LittleEndian, g)
		binary.Write(&b, binary.LittleEndian, e)
		b.WriteString(vr)
		b.Write([]byte{0, 0})
		binary.Write(&b, binary.LittleEndian, n)
	}
	hdr(0x0009, 0x1001, "OB", 0xFFFFFFF0)
	b.Write(make([]byte, 100))
	data := b.Bytes()

	for name, r := range map[string]io.Reader{
		"sized":   bytes.NewReader(data),
		"unsized": unsizedReader{bytes.NewReader(data)},
	} {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := NewDecoder(r, ReadOptions{}).ReadFile()
			runtime.ReadMemStats(&after)
			var de *Error
			if !errors.As(err, &de) || de.Tag != NewTag(0x0009, 0x1001) {
				t.Fatalf("got %v, want a *dicom.Error at (0009,1001)", err)
			}
			if de.Offset != 132 {
				t.Errorf("offset: got %d, want 132", de.Offset)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
				t.Errorf("allocated %d bytes for a value that is not there", grew)
			}
		})
	}
}

func TestDeflateBombIsBounded(t *testing.T) {
	t.Parallel()
	f := sampleFile(t, Syntax{UID: DeflatedExplicitVRLittleEndian, Deflated: true})
	f.Dataset.SetBytes(NewTag(0x0009, 0x1002), OB, make([]byte, 8<<20))
	data := encode(t, f)
	if len(data) > 64<<10 {
		t.Fatalf("deflated sample unexpectedly large: %d", len(data))
	}
	_, err := Parse(data, ReadOptions{MaxInflated: 1 << 20})
	if !errors.Is(err, ErrDeflateLimit) {
		t.Fatalf("got %v, want ErrDeflateLimit", err)
	}
	if _, err := Parse(data, ReadOptions{}); err != nil {
		t.Fatalf("within the default limit: %v", err)
	}
}

func TestNestingDepthIsBounded(t *testing.T) {
	t.Parallel()
	f := &File{Preamble: make([]byte, 128), Syntax: Syntax{UID: ExplicitVRLittleEndian}}
	f.Dataset.SetStrings(TagSOPInstanceUID, UI, "1.2.3")
	cur := &f.Dataset
	for i := 0; i < 50; i++ {
		it := NewItem()
		cur.SetSequence(NewTag(0x0040, 0xA730), it)
		cur = &it.Dataset
	}
	data := encode(t, f)
	if _, err := Parse(data, ReadOptions{MaxDepth: 60}); err != nil {
		t.Fatalf("depth 50 within limit 60: %v", err)
	}
	if _, err := Parse(data, ReadOptions{MaxDepth: 20}); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("got %v, want ErrTooDeep", err)
	}
}

func TestUNSequenceReadAsImplicit(t *testing.T) {
	t.Parallel()
	// An explicit VR file holding a sequence with VR UN and undefined
	// length, its items in implicit VR little endian (PS3.5 6.2.2).
	var b bytes.Buffer
	le := binary.LittleEndian
	w16 := func(v uint16) { binary.Write(&b, le, v) }
	w32 := func(v uint32) { binary.Write(&b, le, v) }
	w16(0x0008)
	w16(0x0018)
	b.WriteString("UI")
	w16(4)
	b.WriteString("1.2\x00")
	w16(0x0040)
	w16(0x0275)
	b.WriteString("UN")
	w16(0)
	w32(UndefinedLength)
	w16(0xFFFE)
	w16(0xE000)
	w32(UndefinedLength)
	w16(0x0040) // (0040,1001) implicit: tag, 4-byte length
	w16(0x1001)
	w32(4)
	b.WriteString("RP1 ")
	w16(0xFFFE)
	w16(0xE00D)
	w32(0)
	w16(0xFFFE)
	w16(0xE0DD)
	w32(0)
	data := b.Bytes()
	f, err := Parse(data, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := f.Dataset.Get(NewTag(0x0040, 0x0275))
	if e == nil || len(e.Items) != 1 {
		t.Fatalf("UN sequence not read as items: %+v", e)
	}
	if got, _ := e.Items[0].String(NewTag(0x0040, 0x1001)); got != "RP1" {
		t.Errorf("item value: got %q", got)
	}
	var out bytes.Buffer
	if err := WriteFile(&out, f); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Errorf("UN sequence not written back byte for byte")
	}
}

// patternReader yields n bytes of a repeatable pattern.
type patternReader struct{ n, off int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n-p.off {
		b = b[:p.n-p.off]
	}
	for i := range b {
		b[i] = byte((p.off + int64(i)) * 7 >> 3)
	}
	p.off += int64(len(b))
	return len(b), nil
}

// checkWriter compares what is written with the header and the pattern.
type checkWriter struct {
	head []byte
	n    int64
	bad  int64
}

func (c *checkWriter) Write(b []byte) (int, error) {
	for i, v := range b {
		pos := c.n + int64(i)
		var want byte
		if pos < int64(len(c.head)) {
			want = c.head[pos]
		} else {
			want = byte((pos - int64(len(c.head))) * 7 >> 3)
		}
		if v != want && c.bad < 0 {
			c.bad = pos
		}
	}
	c.n += int64(len(b))
	return len(b), nil
}

func TestRewriteStreamsLargePixelData(t *testing.T) {
	// Not parallel: it measures the allocations of the whole process.
	if testing.Short() {
		t.Skip("streams 2 GB through memory; skipped with -short")
	}
	const size = 2 << 30 // 2 GiB of native pixel data
	f := sampleFile(t, Syntax{UID: ExplicitVRLittleEndian})
	f.Dataset.Remove(TagPixelData)
	head := encode(t, f)
	var h bytes.Buffer
	h.Write(head)
	for _, v := range []uint16{0x7FE0, 0x0010} {
		binary.Write(&h, binary.LittleEndian, v)
	}
	h.WriteString("OB\x00\x00")
	binary.Write(&h, binary.LittleEndian, uint32(size))
	src := io.MultiReader(bytes.NewReader(h.Bytes()), &patternReader{n: size})

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cw := &checkWriter{head: h.Bytes(), bad: -1}
	err := Rewrite(cw, unsizedReader{src}, RewriteOptions{Edit: func(f *File) error {
		return nil
	}})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(h.Len()) + size; cw.n != want {
		t.Fatalf("wrote %d bytes, want %d", cw.n, want)
	}
	if cw.bad >= 0 {
		t.Fatalf("output differs from input at byte %d", cw.bad)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("rewrite of 2 GiB allocated %d MiB, want well under 64 MiB", grew>>20)
	} else {
		t.Logf("rewrite of 2 GiB allocated %d KiB in total", grew>>10)
	}
}

func TestRewriteWithEdit(t *testing.T) {
	t.Parallel()
	data := encode(t, sampleFile(t, Syntax{UID: ExplicitVRLittleEndian}))
	var out bytes.Buffer
	err := Rewrite(&out, unsizedReader{bytes.NewReader(data)}, RewriteOptions{Edit: func(f *File) error {
		f.Dataset.Remove(NewTag(0x0010, 0x0010))
		return f.Dataset.SetStrings(NewTag(0x0010, 0x0020), LO, "PSEUDO")
	}})
	if err != nil {
		t.Fatal(err)
	}
	g, err := Parse(out.Bytes(), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if g.Dataset.Has(NewTag(0x0010, 0x0010)) {
		t.Error("removed element still present")
	}
	if got, _ := g.Dataset.String(NewTag(0x0010, 0x0020)); got != "PSEUDO" {
		t.Errorf("PatientID: got %q", got)
	}
	if !bytes.Equal(g.Dataset.Get(TagPixelData).Value, sampleFile(t, Syntax{}).Dataset.Get(TagPixelData).Value) {
		t.Error("pixel data changed")
	}
	if strings.Contains(out.String(), "Doe^Jane") {
		t.Error("removed name still in output bytes")
	}
}

func TestStopAtPixelData(t *testing.T) {
	t.Parallel()
	data := encode(t, sampleFile(t, Syntax{UID: ExplicitVRLittleEndian}))
	f, err := NewDecoder(unsizedReader{bytes.NewReader(data)}, ReadOptions{StopAtPixelData: true}).ReadFile()
	if err != nil {
		t.Fatal(err)
	}
	e := f.Dataset.Get(TagPixelData)
	if e == nil || e.Value != nil || e.Length != 32 {
		t.Fatalf("pixel data header: %+v", e)
	}
	if got, _ := f.Dataset.String(NewTag(0x0010, 0x0020)); got != "ID001" {
		t.Errorf("PatientID: got %q", got)
	}
}

func TestStreamedValuesOfEverySize(t *testing.T) {
	t.Parallel()
	// Values around the arena and buffer sizes, read from a stream.
	for _, n := range []int{1, 2047, 2048, 2049, 3117, 4096, 4097, 8191, 8192, 8193, 70000} {
		// A bare dataset whose first value is the decoder's first
		// allocation.
		v := bytes.Repeat([]byte{'a'}, n+n%2)
		data := []byte{0x09, 0x00, 0x03, 0x10, 'O', 'B', 0, 0}
		data = binary.LittleEndian.AppendUint32(data, uint32(len(v)))
		data = append(data, v...)
		g, err := NewDecoder(unsizedReader{bytes.NewReader(data)}, ReadOptions{}).ReadFile()
		if err != nil {
			t.Fatalf("value of %d bytes: %v", n, err)
		}
		if !bytes.Equal(g.Dataset.Get(NewTag(0x0009, 0x1003)).Value, v) {
			t.Fatalf("value of %d bytes read wrong", n)
		}
	}
}

// TestRewriteFileToFile checks the in-kernel copy of pixel data between
// files: the output equals the one written through memory, with an edit
// before the pixel data and a trailer after it, and a file cut inside
// its pixel data is reported as truncated.
func TestRewriteFileToFile(t *testing.T) {
	t.Parallel()
	f := sampleFile(t, Syntax{UID: ExplicitVRLittleEndian})
	pix := make([]byte, 3*bufSize+18)
	for i := range pix {
		pix[i] = byte(i * 7)
	}
	f.Dataset.SetBytes(TagPixelData, OW, pix)
	data := encode(t, f)
	// A trailing element after the pixel data.
	data = append(data, 0xFC, 0xFF, 0xFC, 0xFF, 'O', 'B', 0, 0, 4, 0, 0, 0, 1, 2, 3, 4)
	edit := RewriteOptions{Edit: func(f *File) error {
		return f.Dataset.SetStrings(NewTag(0x0010, 0x0020), LO, "EDITED")
	}}
	var want bytes.Buffer
	if err := Rewrite(&want, unsizedReader{bytes.NewReader(data)}, edit); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	run := func(in []byte, edit RewriteOptions) ([]byte, error) {
		src := dir + "/in.dcm"
		if err := os.WriteFile(src, in, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		w, err := os.Create(dir + "/out.dcm")
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		rerr := Rewrite(w, r, edit)
		out, err := os.ReadFile(w.Name())
		if err != nil {
			t.Fatal(err)
		}
		return out, rerr
	}
	got, err := run(data, edit)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("file-to-file rewrite differs from the in-memory one (%d vs %d bytes)", len(got), want.Len())
	}
	if !bytes.Contains(got, []byte("EDITED")) || !bytes.Contains(got, pix) {
		t.Fatal("output lacks the edit or the pixel data")
	}
	// The source shrinks after its header was read: the copy comes up
	// short and says so.
	cut := RewriteOptions{Edit: func(*File) error {
		return os.Truncate(dir+"/in.dcm", int64(len(data)-16-bufSize))
	}}
	if _, err = run(data, cut); !errors.Is(err, ErrTruncated) {
		t.Fatalf("cut inside the pixel data: got %v, want ErrTruncated", err)
	}
}
