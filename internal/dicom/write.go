package dicom

import (
	"compress/flate"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// Mosaic's implementation identity, written into rebuilt file meta
// information.
const (
	ImplementationClassUID    = "2.25.183342031334092794071832257321264095871"
	ImplementationVersionName = "MOSAIC_1"
)

// encoder writes DICOM encodings through a reusable buffer. Large values
// bypass the buffer and go straight to the destination.
type encoder struct {
	w   io.Writer
	buf []byte
	off int64
	err error
	// stream allows elements whose value is left in the input stream
	// (only Rewrite copies such values).
	stream bool
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 256<<10); return &b }}

func newEncoder(w io.Writer) *encoder {
	bp := bufPool.Get().(*[]byte)
	return &encoder{w: w, buf: (*bp)[:0]}
}

func (e *encoder) release() {
	b := e.buf[:0]
	e.buf = nil
	bufPool.Put(&b)
}

func (e *encoder) flush() {
	if e.err == nil && len(e.buf) > 0 {
		_, e.err = e.w.Write(e.buf)
	}
	e.buf = e.buf[:0]
}

func (e *encoder) Write(p []byte) (int, error) {
	e.bytes(p)
	if e.err != nil {
		return 0, e.err
	}
	return len(p), nil
}

func (e *encoder) bytes(p []byte) {
	e.off += int64(len(p))
	if len(p) > 4<<10 {
		e.flush()
		if e.err == nil {
			_, e.err = e.w.Write(p)
		}
		return
	}
	if len(e.buf)+len(p) > cap(e.buf) {
		e.flush()
	}
	e.buf = append(e.buf, p...)
}

func (e *encoder) u16(o ByteOrder, v uint16) {
	e.off += 2
	if len(e.buf)+2 > cap(e.buf) {
		e.flush()
	}
	e.buf = o.AppendUint16(e.buf, v)
}

func (e *encoder) u32(o ByteOrder, v uint32) {
	e.off += 4
	if len(e.buf)+4 > cap(e.buf) {
		e.flush()
	}
	e.buf = o.AppendUint32(e.buf, v)
}

func (e *encoder) fail(t Tag, err error) {
	if e.err == nil {
		e.err = &Error{Op: "write", Offset: e.off, Tag: t, Err: err}
	}
}

// WriteFile encodes f to w. Elements that were not changed are written
// back byte for byte. Before writing it settles pending edits (see
// Prepare). A file read with StopAtPixelData cannot be written: its pixel
// data was never read.
func WriteFile(w io.Writer, f *File) error {
	if err := f.Prepare(); err != nil {
		return err
	}
	e := newEncoder(w)
	defer e.release()
	e.writeStart(f)
	e.writeDataset(f)
	e.flush()
	return e.err
}

// Prepare settles pending edits as WriteFile does: lengths of changed
// sequences and items are recomputed, group length elements of changed
// groups (other than 0002) are dropped, and, when the dataset was edited
// or its syntax changed, the file meta information is rebuilt with
// Mosaic's implementation identity. Changing Syntax transcodes: between
// implicit and explicit VR, and between byte orders. It is idempotent.
func (f *File) Prepare() error {
	if f.Syntax.UID == "" {
		f.Syntax = Syntax{UID: ExplicitVRLittleEndian}
	}
	syn := f.Syntax
	if f.Dataset.bigEndian != syn.BigEndian {
		if hasStream(&f.Dataset) {
			return &Error{Op: "write", Err: fmt.Errorf("%w: streamed pixel data cannot change byte order", ErrNotEncodable)}
		}
		setOrder(&f.Dataset, syn.BigEndian)
	}
	force := f.read.UID != "" && (f.read.Implicit != syn.Implicit || f.read.BigEndian != syn.BigEndian)
	syntaxChanged := f.read.UID != "" && f.read.UID != syn.UID
	dsChanged := f.Dataset.Modified() || force || syntaxChanged
	if dsChanged {
		if err := fixLengths(&f.Dataset, syn, force); err != nil {
			return err
		}
		f.deflated = nil
	}
	if dsChanged || (len(f.Meta.Elements) == 0 && f.Preamble != nil) {
		f.rebuildMeta()
	} else if f.Meta.modified {
		f.Meta.Remove(TagFileMetaGroupLength)
		f.setMetaGroupLength()
	}
	f.read = f.Syntax
	return nil
}

func hasStream(ds *Dataset) bool {
	for i := range ds.Elements {
		if ds.Elements[i].Stream {
			return true
		}
	}
	return false
}

func (f *File) rebuildMeta() {
	old := f.Meta
	var m Dataset
	m.Elements = make([]Element, 0, 8)
	m.Set(Element{Tag: TagFileMetaVersion, VR: OB, Value: []byte{0, 1}})
	// The media storage UIDs come from the dataset; a dataset without them
	// (a DICOMDIR) keeps those of the old meta information.
	for _, p := range [][2]Tag{{TagMediaStorageSOPClassUID, TagSOPClassUID}, {TagMediaStorageSOPInstanceUID, TagSOPInstanceUID}} {
		if v := f.Dataset.Get(p[1]); v != nil && len(trimUID(v.Value)) > 0 {
			m.Set(Element{Tag: p[0], VR: UI, Value: padUID(trimUID(v.Value))})
		} else if v := old.Get(p[0]); v != nil {
			m.Set(Element{Tag: p[0], VR: UI, Value: padUID(trimUID(v.Value))})
		}
	}
	m.Set(Element{Tag: TagTransferSyntaxUID, VR: UI, Value: padUID([]byte(f.Syntax.UID))})
	m.Set(Element{Tag: TagImplementationClassUID, VR: UI, Value: padUID([]byte(ImplementationClassUID))})
	m.Set(Element{Tag: TagImplementationVersionName, VR: SH, Value: padText([]byte(ImplementationVersionName), ' ')})
	f.Meta = m
	f.setMetaGroupLength()
	f.Meta.modified = false
	f.Meta.changedGroups = nil
	if f.Preamble == nil {
		f.Preamble = make([]byte, 128)
	}
}

func (f *File) setMetaGroupLength() {
	var n int64
	for i := range f.Meta.Elements {
		n += elementSize(&f.Meta.Elements[i], Syntax{})
	}
	v := binary.LittleEndian.AppendUint32(nil, uint32(n))
	f.Meta.Elements = append([]Element{{Tag: TagFileMetaGroupLength, VR: UL, Value: v, Length: 4}}, f.Meta.Elements...)
}

func padUID(b []byte) []byte {
	out := append([]byte(nil), b...)
	if len(out)%2 == 1 {
		out = append(out, 0)
	}
	return out
}

func padText(b []byte, pad byte) []byte {
	if len(b)%2 == 1 {
		b = append(b, pad)
	}
	return b
}

// fixLengths recomputes the defined lengths of changed sequences and items
// in ds (of every one when force is set, as after a change of syntax) and
// drops the group lengths of changed groups (of every group when forced).
func fixLengths(ds *Dataset, syn Syntax, force bool) error {
	drop := ds.changedGroups
	for i := range ds.Elements {
		e := &ds.Elements[i]
		if force && e.Tag.IsGroupLength() {
			drop = append(drop, e.Tag.Group())
		}
		if e.Items == nil {
			continue
		}
		isyn := syn
		if e.implicitItems {
			isyn = Syntax{UID: ImplicitVRLittleEndian, Implicit: true}
		}
		itemsChanged := false
		for _, it := range e.Items {
			if force || it.Modified() || (it.overran && ds.modified) {
				itemsChanged = true
				it.overran = false
				if err := fixLengths(&it.Dataset, isyn, force); err != nil {
					return err
				}
				if it.Length != UndefinedLength {
					n := datasetSize(&it.Dataset, isyn)
					if n >= int64(UndefinedLength) {
						return &Error{Op: "write", Tag: e.Tag, Err: fmt.Errorf("%w: item longer than 4 GiB", ErrNotEncodable)}
					}
					it.Length = uint32(n)
				}
			}
		}
		if (itemsChanged || ds.modified) && e.Length != UndefinedLength {
			e.delimited = false
			n := itemsSize(e.Items, isyn)
			if n >= int64(UndefinedLength) {
				return &Error{Op: "write", Tag: e.Tag, Err: fmt.Errorf("%w: sequence longer than 4 GiB", ErrNotEncodable)}
			}
			e.Length = uint32(n)
		}
		if itemsChanged {
			// A change inside the items changes the length of the
			// sequence and so of its group.
			drop = append(drop, e.Tag.Group())
		}
	}
	for _, g := range drop {
		if g == 0x0002 || g == 0 {
			continue
		}
		if i := ds.index(NewTag(g, 0)); i >= 0 {
			ds.Elements = append(ds.Elements[:i], ds.Elements[i+1:]...)
		}
	}
	return nil
}

func headerSize(vr VR, syn Syntax) int64 {
	if syn.Implicit || !vr.HasLongLength() {
		return 8
	}
	return 12
}

func elementSize(e *Element, syn Syntax) int64 {
	h := headerSize(e.VR, syn)
	switch {
	case e.Items != nil:
		isyn := syn
		if e.implicitItems {
			isyn = Syntax{UID: ImplicitVRLittleEndian, Implicit: true}
		}
		n := h + itemsSize(e.Items, isyn)
		if e.Length == UndefinedLength || e.delimited {
			n += 8
		}
		return n
	case e.Fragments != nil:
		n := h + 8 + int64(len(e.Fragments.OffsetTable)) + 8
		for _, f := range e.Fragments.Items {
			n += 8 + int64(len(f))
		}
		return n
	}
	return h + int64(len(e.Value))
}

func itemsSize(items []*Item, syn Syntax) int64 {
	var n int64
	for _, it := range items {
		n += 8
		if it.Length != UndefinedLength && !it.Modified() && !it.overran {
			n += int64(it.Length)
		} else {
			n += datasetSize(&it.Dataset, syn)
		}
		if it.Length == UndefinedLength {
			n += 8
		}
	}
	return n
}

func datasetSize(ds *Dataset, syn Syntax) int64 {
	var n int64
	for i := range ds.Elements {
		n += elementSize(&ds.Elements[i], syn)
	}
	return n
}

// writeStart writes the preamble and the file meta information.
func (e *encoder) writeStart(f *File) {
	if f.Preamble != nil {
		if len(f.Preamble) != 128 {
			e.fail(0, fmt.Errorf("%w: preamble of %d bytes", ErrNotEncodable, len(f.Preamble)))
			return
		}
		e.bytes(f.Preamble)
		e.bytes([]byte("DICM"))
	}
	meta := Syntax{UID: ExplicitVRLittleEndian}
	for i := range f.Meta.Elements {
		e.writeElement(&f.Meta.Elements[i], meta)
	}
}

// writeDataset writes the dataset, deflating it when the syntax says so.
func (e *encoder) writeDataset(f *File) {
	if !f.Syntax.Deflated {
		e.writeElements(f.Dataset.Elements, f.Syntax)
		return
	}
	if f.deflated != nil {
		e.bytes(f.deflated)
		return
	}
	e.flush()
	if e.err != nil {
		return
	}
	zw, err := flate.NewWriter(e.w, flate.DefaultCompression)
	if err != nil {
		e.fail(0, err)
		return
	}
	inner := newEncoder(zw)
	defer inner.release()
	inner.writeElements(f.Dataset.Elements, Syntax{UID: ExplicitVRLittleEndian})
	inner.flush()
	if inner.err != nil {
		e.err = inner.err
		return
	}
	if err := zw.Close(); err != nil {
		e.fail(0, err)
	}
}

func (e *encoder) writeElements(els []Element, syn Syntax) {
	for i := range els {
		if e.err != nil {
			return
		}
		e.writeElement(&els[i], syn)
	}
}

func (e *encoder) writeHeader(t Tag, vr VR, n uint32, syn Syntax) {
	e.writeHeaderReserved(t, vr, n, syn, 0)
}

func (e *encoder) writeHeaderReserved(t Tag, vr VR, n uint32, syn Syntax, reserved uint16) {
	o := syn.Order()
	e.u16(o, t.Group())
	e.u16(o, t.Element())
	if syn.Implicit || t.Group() == 0xFFFE {
		e.u32(o, n)
		return
	}
	e.u16(binary.BigEndian, uint16(vr))
	if vr.HasLongLength() {
		e.u16(o, reserved)
		e.u32(o, n)
		return
	}
	if n > 0xFFFF {
		e.fail(t, fmt.Errorf("%w: %d bytes do not fit the 16-bit length of VR %s", ErrNotEncodable, n, vr))
		return
	}
	e.u16(o, uint16(n))
}

func (e *encoder) writeElement(el *Element, syn Syntax) {
	switch {
	case el.Stream:
		if !e.stream {
			e.fail(el.Tag, ErrNoPixelData)
			return
		}
		n := el.Length
		if el.Fragments != nil {
			n = UndefinedLength
		}
		e.writeHeaderReserved(el.Tag, el.VR, n, syn, el.reserved)
	case el.Items != nil:
		e.writeHeaderReserved(el.Tag, el.VR, el.Length, syn, el.reserved)
		isyn := syn
		if el.implicitItems {
			isyn = Syntax{UID: ImplicitVRLittleEndian, Implicit: true}
		}
		o := isyn.Order()
		for _, it := range el.Items {
			e.writeHeader(TagItem, 0, it.Length, isyn)
			e.writeElements(it.Elements, isyn)
			if it.Length == UndefinedLength {
				e.writeHeader(TagItemDelimitation, 0, 0, isyn)
			}
		}
		if el.Length == UndefinedLength || el.delimited {
			e.u16(o, 0xFFFE)
			e.u16(o, 0xE0DD)
			e.u32(o, 0)
		}
	case el.Fragments != nil:
		e.writeHeaderReserved(el.Tag, el.VR, UndefinedLength, syn, el.reserved)
		e.writeHeader(TagItem, 0, uint32(len(el.Fragments.OffsetTable)), syn)
		e.bytes(el.Fragments.OffsetTable)
		for _, f := range el.Fragments.Items {
			if uint64(len(f)) >= uint64(UndefinedLength) {
				e.fail(el.Tag, fmt.Errorf("%w: fragment longer than 4 GiB", ErrNotEncodable))
				return
			}
			e.writeHeader(TagItem, 0, uint32(len(f)), syn)
			e.bytes(f)
		}
		e.writeHeader(TagSequenceDelimitation, 0, 0, syn)
	default:
		if uint64(len(el.Value)) >= uint64(UndefinedLength) {
			e.fail(el.Tag, fmt.Errorf("%w: value too long", ErrNotEncodable))
			return
		}
		e.writeHeaderReserved(el.Tag, el.VR, uint32(len(el.Value)), syn, el.reserved)
		e.bytes(el.Value)
	}
}

// RewriteOptions steer Rewrite.
type RewriteOptions struct {
	Read ReadOptions
	// Edit, if set, is called with the file once everything before the
	// pixel data has been read, and before anything is written.
	Edit func(*File) error
	// EditTrailer, if set, is called with the top-level elements that
	// follow the pixel data, before they are written.
	EditTrailer func(*Dataset) error
	// PixelData, if set, is told where the value of native pixel data
	// starts in the output, and its length, before it is copied.
	PixelData func(offset, length int64)
}

// Rewrite copies the DICOM stream src to dst, applying the edits in opts.
// Pixel data is streamed from src to dst and never held whole, so memory
// stays bounded whatever the size of the image (fragments of
// encapsulated pixel data are held one at a time).
func Rewrite(dst io.Writer, src io.Reader, opts RewriteOptions) error {
	ro := opts.Read
	ro.StreamPixelData = true
	ro.StopAtPixelData = false
	d := NewDecoder(src, ro)
	f, err := d.ReadFile()
	if err != nil {
		return err
	}
	if opts.Edit != nil {
		if err := opts.Edit(f); err != nil {
			return err
		}
	}
	// Find the streamed pixel data before writing anything. Elements an
	// edit placed after it join the trailer.
	pix := -1
	for i := range f.Dataset.Elements {
		if f.Dataset.Elements[i].Stream {
			pix = i
			break
		}
	}
	if d.pending != nil && pix < 0 {
		return fmt.Errorf("dicom: rewrite: edit removed or replaced streamed pixel data")
	}
	var moved []Element
	if pix >= 0 {
		moved = append(moved, f.Dataset.Elements[pix+1:]...)
		f.Dataset.Elements = f.Dataset.Elements[:pix+1]
	}
	if err := f.Prepare(); err != nil {
		return err
	}
	e := newEncoder(dst)
	e.stream = true
	defer e.release()
	e.writeStart(f)
	if f.Syntax.Deflated || pix < 0 {
		e.writeDataset(f)
		e.flush()
		return e.err
	}
	e.writeElements(f.Dataset.Elements, f.Syntax)
	if e.err != nil {
		return e.err
	}
	f.Dataset.sealed = true
	if f.Dataset.Elements[len(f.Dataset.Elements)-1].Fragments == nil {
		e.flush()
		if e.err != nil {
			return e.err
		}
		if opts.PixelData != nil {
			opts.PixelData(e.off, int64(f.Dataset.Elements[len(f.Dataset.Elements)-1].Length))
		}
		bp := bufPool.Get().(*[]byte)
		b := (*bp)[:cap(*bp)]
		n, err := d.copyPixelData(e.w, b)
		bufPool.Put(bp)
		e.off += n
		if err != nil {
			return err
		}
	} else {
		syn := f.Syntax
		for {
			fr, err := d.NextFragment()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			e.writeHeader(TagItem, 0, uint32(len(fr)), syn)
			e.bytes(fr)
			if e.err != nil {
				return e.err
			}
		}
		e.writeHeader(TagSequenceDelimitation, 0, 0, syn)
	}
	n0 := len(f.Dataset.Elements)
	if _, err := d.ReadTrailer(); err != nil {
		return err
	}
	tail := Dataset{Elements: append([]Element(nil), f.Dataset.Elements[n0:]...), bigEndian: f.Syntax.BigEndian, parent: &f.Dataset}
	for _, m := range moved {
		tail.Set(m)
	}
	if opts.EditTrailer != nil && len(tail.Elements) > 0 {
		if err := opts.EditTrailer(&tail); err != nil {
			return err
		}
	}
	if tail.Modified() {
		if err := fixLengths(&tail, f.Syntax, false); err != nil {
			return err
		}
	}
	e.writeElements(tail.Elements, f.Syntax)
	e.flush()
	return e.err
}

// writerOnly hides ReadFrom so io.CopyBuffer uses the given buffer.
type writerOnly struct{ io.Writer }
