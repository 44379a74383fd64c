package dicom

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"io"
	"os"
)

// File is a DICOM Part 10 file, or a bare dataset read without one: the
// preamble, the file meta information (group 0002, always explicit VR
// little endian) and the dataset.
type File struct {
	// Preamble is the 128-byte preamble, or nil when the stream had none
	// (in which case "DICM" is not written either).
	Preamble []byte
	Meta     Dataset
	Dataset  Dataset
	// Syntax is the transfer syntax of the dataset.
	Syntax Syntax
	// deflated holds the compressed dataset as read, so that an unchanged
	// deflated file is written back byte for byte.
	deflated []byte
	// read is the syntax the dataset was read in; a different Syntax at
	// write time transcodes.
	read Syntax
}

// ReadOptions bound and steer decoding. The zero value reads everything
// into memory with the default limits.
type ReadOptions struct {
	// StopAtPixelData ends reading at the top-level Pixel Data element: the
	// element is kept with its header fields and no value, and the rest of
	// the stream is left unread (a header-only parse).
	StopAtPixelData bool
	// StreamPixelData ends reading once the header of the top-level Pixel
	// Data element has been read, leaving its value in the stream for
	// Decoder.PixelReader or Decoder.NextFragment, then Decoder.ReadTrailer.
	StreamPixelData bool
	// MaxValueLength rejects any single value longer than this with
	// ErrLimit (0: no limit beyond the data present).
	MaxValueLength uint32
	// MaxDepth bounds sequence nesting (0: 128).
	MaxDepth int
	// MaxInflated bounds the inflated size of a deflated dataset
	// (0: 1 GiB).
	MaxInflated int64
	// Syntax is the transfer syntax UID to assume for a dataset without
	// file meta information when it cannot be told from the data.
	Syntax string
}

const (
	defaultMaxDepth    = 128
	defaultMaxInflated = 1 << 30
	bufSize            = 8 << 10
	arenaChunk         = 32 << 10
	largeValue         = 4 << 10 // values above this get their own allocation
	progressiveChunk   = 1 << 20 // growth step for values of unverifiable length
)

// Decoder reads a DICOM stream. Reading from memory (Parse) keeps values
// as slices of the input; reading from an io.Reader copies values into
// chunked buffers so that allocations do not grow with the element count.
type Decoder struct {
	src  io.Reader // nil when decoding from memory
	buf  []byte
	pos  int   // next unread byte in buf
	base int64 // stream offset of buf[0]
	// remaining is the number of bytes the source still holds beyond buf,
	// or -1 when unknown.
	remaining int64
	arena     []byte
	opts      ReadOptions
	syn       Syntax
	depth     int
	file      *File

	// reserved is the reserved field of the header readHeader just read.
	reserved uint16
	// delimited reports that the sequence just read by readItems had a
	// delimiter inside its defined length.
	delimited bool
	// overrun is set while reading the items of a top-level sequence of
	// defined length, whose data may end early (see readItems).
	overrun bool

	// Streaming pixel data state.
	pending     *Element
	pendingLeft int64 // native: bytes of value left; encapsulated: -1
	fragsDone   bool
	trailerRead bool
}

// Parse decodes a whole file held in memory. Element values alias data,
// which must not be changed while the File is in use.
func Parse(data []byte, opts ReadOptions) (*File, error) {
	d := &Decoder{buf: data, remaining: 0, opts: opts}
	return d.ReadFile()
}

// NewDecoder returns a decoder reading from r. When r is an *os.File or
// another source whose size can be learnt, value lengths beyond the end
// are rejected before anything is allocated; otherwise large values are
// read in steps so that a false length costs no more memory than the
// data actually present.
func NewDecoder(r io.Reader, opts ReadOptions) *Decoder {
	d := &Decoder{src: r, buf: make([]byte, 0, bufSize), remaining: -1, opts: opts}
	switch s := r.(type) {
	case *os.File:
		if fi, err := s.Stat(); err == nil && fi.Mode().IsRegular() {
			if off, err := s.Seek(0, io.SeekCurrent); err == nil {
				d.remaining = fi.Size() - off
			}
		}
	case *bytes.Reader:
		d.remaining = int64(s.Len())
	case *bytes.Buffer:
		d.remaining = int64(s.Len())
	}
	return d
}

// ReadFile reads a Part 10 file with its preamble and meta information, or
// a bare dataset when the stream has neither.
func ReadFile(path string, opts ReadOptions) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return NewDecoder(f, opts).ReadFile()
}

func (d *Decoder) maxDepth() int {
	if d.opts.MaxDepth > 0 {
		return d.opts.MaxDepth
	}
	return defaultMaxDepth
}

func (d *Decoder) offset() int64 { return d.base + int64(d.pos) }

func (d *Decoder) fail(off int64, t Tag, err error) error {
	return &Error{Op: "read", Offset: off, Tag: t, Err: err}
}

// fill makes at least n bytes available at buf[pos:], n <= bufSize. It
// returns io.ErrUnexpectedEOF if the stream ends first, or io.EOF if it
// ends before any byte.
func (d *Decoder) fill(n int) error {
	if len(d.buf)-d.pos >= n {
		return nil
	}
	if d.src == nil {
		if len(d.buf) == d.pos {
			return io.EOF
		}
		return io.ErrUnexpectedEOF
	}
	// Move the unread tail to the front and read more.
	if d.pos > 0 {
		k := copy(d.buf[:cap(d.buf)], d.buf[d.pos:])
		d.base += int64(d.pos)
		d.buf = d.buf[:k]
		d.pos = 0
	}
	for len(d.buf) < n {
		m, err := d.src.Read(d.buf[len(d.buf):cap(d.buf)])
		d.buf = d.buf[:len(d.buf)+m]
		if d.remaining >= 0 {
			d.remaining -= int64(m)
		}
		if err != nil {
			if err == io.EOF {
				if len(d.buf) == 0 {
					return io.EOF
				}
				if len(d.buf) < n {
					return io.ErrUnexpectedEOF
				}
				return nil
			}
			return err
		}
	}
	return nil
}

// available returns how many more bytes the stream holds, or -1.
func (d *Decoder) available() int64 {
	if d.src == nil {
		return int64(len(d.buf) - d.pos)
	}
	if d.remaining < 0 {
		return -1
	}
	return int64(len(d.buf)-d.pos) + d.remaining
}

// alloc returns n bytes of value storage.
func (d *Decoder) alloc(n int) []byte {
	if n > largeValue {
		return make([]byte, n)
	}
	if cap(d.arena)-len(d.arena) < n {
		// Chunks double from 2 KiB so that a short header costs one small
		// allocation and a long one a few.
		size := max(2<<10, min(2*cap(d.arena), arenaChunk), n)
		d.arena = make([]byte, 0, size)
	}
	l := len(d.arena)
	d.arena = d.arena[:l+n]
	return d.arena[l : l+n : l+n]
}

// readValue reads a value of n bytes.
func (d *Decoder) readValue(n uint32, hdrOff int64, t Tag) ([]byte, error) {
	if d.opts.MaxValueLength > 0 && n > d.opts.MaxValueLength {
		return nil, d.fail(hdrOff, t, ErrLimit)
	}
	if av := d.available(); av >= 0 && int64(n) > av {
		return nil, d.fail(hdrOff, t, ErrValueTooLong)
	}
	if n == 0 {
		return nil, nil
	}
	if d.src == nil {
		v := d.buf[d.pos : d.pos+int(n) : d.pos+int(n)]
		d.pos += int(n)
		return v, nil
	}
	if int(n) <= bufSize/2 {
		if err := d.fill(int(n)); err != nil {
			return nil, d.fail(hdrOff, t, ErrTruncated)
		}
		v := d.alloc(int(n))
		copy(v, d.buf[d.pos:])
		d.pos += int(n)
		return v, nil
	}
	// Large value: copy what is buffered, then read the rest directly.
	// When the remaining size is unknown, grow in steps so that a false
	// length allocates no more than what arrives.
	total := int(n)
	first := total
	if d.remaining < 0 && first > progressiveChunk {
		first = progressiveChunk
	}
	v := make([]byte, 0, first)
	for len(v) < total {
		if len(v) == cap(v) {
			v = append(v, make([]byte, min(total-len(v), max(len(v), progressiveChunk)))...)[:len(v)]
		}
		if d.pos < len(d.buf) {
			k := copy(v[len(v):cap(v)], d.buf[d.pos:])
			k = min(k, total-len(v))
			v = v[:len(v)+k]
			d.pos += k
			continue
		}
		want := min(cap(v), total)
		m, err := io.ReadFull(d.src, v[len(v):want])
		d.base += int64(m)
		if d.remaining >= 0 {
			d.remaining -= int64(m)
		}
		v = v[:len(v)+m]
		if err != nil {
			return nil, d.fail(hdrOff, t, ErrTruncated)
		}
	}
	return v, nil
}

// skip discards n bytes.
func (d *Decoder) skip(n int64) error {
	for n > 0 {
		if d.pos == len(d.buf) {
			if err := d.fill(1); err != nil {
				return ErrTruncated
			}
		}
		k := min(int64(len(d.buf)-d.pos), n)
		d.pos += int(k)
		n -= k
	}
	return nil
}

// ReadFile reads the preamble and meta information when present, then the
// dataset.
func (d *Decoder) ReadFile() (*File, error) {
	f := &File{}
	d.file = f
	if err := d.readPreambleAndMeta(f); err != nil {
		return nil, err
	}
	if f.Syntax.Deflated {
		if err := d.inflate(f); err != nil {
			return nil, err
		}
	}
	d.syn = f.Syntax
	d.checkDeclaredSyntax(f)
	f.Dataset.bigEndian = d.syn.BigEndian
	f.read = f.Syntax
	stop, err := d.readDataset(&f.Dataset, -1, true)
	if err != nil {
		return nil, err
	}
	if !stop {
		d.trailerRead = true
	}
	return f, nil
}

func (d *Decoder) readPreambleAndMeta(f *File) error {
	err := d.fill(132)
	if err != nil && err != io.ErrUnexpectedEOF {
		if err == io.EOF {
			return d.fail(0, 0, ErrNotDICOM)
		}
		return d.fail(0, 0, err)
	}
	hasMeta := false
	if len(d.buf)-d.pos >= 132 && string(d.buf[128:132]) == "DICM" {
		f.Preamble = make([]byte, 128)
		copy(f.Preamble, d.buf[:128])
		d.pos = 132
		hasMeta = true
	} else if len(d.buf)-d.pos >= 8 && binary.LittleEndian.Uint16(d.buf[d.pos:]) == 0x0002 && isUpperVR(d.buf[d.pos+4], d.buf[d.pos+5]) {
		hasMeta = true // meta information without a preamble
	}
	if hasMeta {
		if err := d.readMeta(f); err != nil {
			return err
		}
	}
	uid := f.transferSyntaxUID()
	if uid == "" {
		syn, err := d.guessSyntax()
		if err != nil {
			return err
		}
		f.Syntax = syn
		return nil
	}
	syn, ok := LookupSyntax(uid)
	if !ok {
		// Private or unknown syntaxes are explicit VR little endian in
		// practice; pixel data of undefined length is read as fragments.
		syn = Syntax{UID: uid, Encapsulated: true}
	}
	f.Syntax = syn
	return nil
}

func isUpperVR(a, b byte) bool { return a >= 'A' && a <= 'Z' && b >= 'A' && b <= 'Z' }

// readMeta reads group 0002 elements in explicit VR little endian.
func (d *Decoder) readMeta(f *File) error {
	d.syn = Syntax{UID: ExplicitVRLittleEndian}
	for {
		err := d.fill(6)
		if err == io.EOF {
			return nil
		}
		if err != nil && len(d.buf)-d.pos < 2 {
			return d.fail(d.offset(), 0, ErrTruncated)
		}
		if binary.LittleEndian.Uint16(d.buf[d.pos:]) != 0x0002 {
			return nil
		}
		if len(d.buf)-d.pos >= 6 && !isUpperVR(d.buf[d.pos+4], d.buf[d.pos+5]) {
			return d.fail(d.offset(), 0, ErrBadMeta)
		}
		e, _, err := d.readElement(&f.Meta)
		if err != nil {
			return err
		}
		f.Meta.Elements = append(f.Meta.Elements, e)
	}
}

func (f *File) transferSyntaxUID() string {
	e := f.Meta.Get(TagTransferSyntaxUID)
	if e == nil {
		return ""
	}
	return string(trimUID(e.Value))
}

func trimUID(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == 0 || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	return b
}

// guessSyntax tells the encoding of a dataset with no transfer syntax from
// its first element header.
func (d *Decoder) guessSyntax() (Syntax, error) {
	if err := d.fill(8); err != nil {
		if err == io.EOF && d.file != nil && len(d.file.Meta.Elements) > 0 {
			return Syntax{UID: ExplicitVRLittleEndian}, nil
		}
		return Syntax{}, d.fail(d.offset(), 0, ErrNotDICOM)
	}
	b := d.buf[d.pos:]
	le := binary.LittleEndian.Uint16(b)
	be := binary.BigEndian.Uint16(b)
	explicit := isUpperVR(b[4], b[5])
	if explicit {
		if _, ok := ParseVR(string(b[4:6])); !ok {
			explicit = false
		}
	}
	if d.opts.Syntax != "" {
		if s, ok := LookupSyntax(d.opts.Syntax); ok {
			return s, nil
		}
	}
	plausible := func(g uint16) bool { return g >= 0x0001 && g <= 0x00FF }
	switch {
	case explicit && plausible(le):
		return Syntax{UID: ExplicitVRLittleEndian}, nil
	case explicit && plausible(be):
		return Syntax{UID: ExplicitVRBigEndian, BigEndian: true}, nil
	case plausible(le) && plausibleImplicitLength(binary.LittleEndian.Uint32(b[4:])):
		return Syntax{UID: ImplicitVRLittleEndian, Implicit: true}, nil
	}
	return Syntax{}, d.fail(d.offset(), 0, ErrNotDICOM)
}

// plausibleImplicitLength tells whether n can be the length of a first
// element read as implicit VR. The test must not depend on how much data
// the source holds, so that memory and stream decoding agree.
func plausibleImplicitLength(n uint32) bool { return n == UndefinedLength || n < 1<<24 }

// checkDeclaredSyntax corrects a declared little-endian syntax that the
// data contradicts: some writers declare explicit VR and write implicit VR,
// or the reverse. The first element header tells which it really is; the
// meta information is kept as it was.
func (d *Decoder) checkDeclaredSyntax(f *File) {
	if d.syn.BigEndian || d.syn.Deflated || d.fill(8) != nil {
		return
	}
	b := d.buf[d.pos:]
	t := Tag(uint32(binary.LittleEndian.Uint16(b))<<16 | uint32(binary.LittleEndian.Uint16(b[2:])))
	vr, known := ParseVR(string(b[4:6]))
	if !d.syn.Implicit && !known {
		// Only a tag the dictionary knows is evidence enough: an unknown
		// VR on an unknown tag is more likely damage than implicit VR.
		if _, dict := Lookup(t); dict && t.Group() <= 0x00FF && plausibleImplicitLength(binary.LittleEndian.Uint32(b[4:])) {
			d.syn.Implicit = true
		}
	} else if d.syn.Implicit && known && (t.IsPrivate() || implicitVR(t) == vr) {
		d.syn.Implicit = false
	}
	// For the uncompressed syntaxes the UID follows what the data is, so
	// that a rebuilt meta declares the encoding actually written.
	switch {
	case d.syn.UID == ExplicitVRLittleEndian && d.syn.Implicit:
		d.syn.UID = ImplicitVRLittleEndian
	case d.syn.UID == ImplicitVRLittleEndian && !d.syn.Implicit:
		d.syn.UID = ExplicitVRLittleEndian
	}
	f.Syntax = d.syn
}

// inflate replaces the rest of the stream with the inflated dataset. The
// compressed bytes are kept too, so an unchanged file is written back byte
// for byte; both are bounded by MaxInflated (the compressed size by a
// little more, as deflate can expand incompressible data slightly).
func (d *Decoder) inflate(f *File) error {
	limit := d.opts.MaxInflated
	if limit <= 0 {
		limit = defaultMaxInflated
	}
	start := d.offset()
	var raw []byte
	var src io.Reader
	var kept *cappedBuffer
	if d.src == nil {
		raw = d.buf[d.pos:]
		src = bytes.NewReader(raw)
	} else {
		kept = &cappedBuffer{limit: limit + limit/64 + 1<<20}
		src = io.TeeReader(io.MultiReader(bytes.NewReader(d.buf[d.pos:]), d.src), kept)
	}
	zr := flate.NewReader(src)
	out, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if errors.Is(err, errRawLimit) || int64(len(out)) > limit {
		return d.fail(start, 0, ErrDeflateLimit)
	}
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return d.fail(start, 0, err)
	}
	if kept != nil {
		// Keep whatever follows the deflate stream as well.
		if _, err := io.Copy(io.Discard, src); err != nil {
			if errors.Is(err, errRawLimit) {
				return d.fail(start, 0, ErrDeflateLimit)
			}
			return d.fail(start, 0, err)
		}
		raw = kept.b
	}
	if raw == nil {
		raw = []byte{} // an empty deflated dataset is still one to keep
	}
	f.deflated = raw
	d.src = nil
	d.buf = out
	d.pos = 0
	d.base = 0
	d.remaining = 0
	return nil
}

var errRawLimit = errors.New("compressed dataset beyond the limit")

// cappedBuffer collects bytes up to a limit.
type cappedBuffer struct {
	b     []byte
	limit int64
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if int64(len(c.b)+len(p)) > c.limit {
		return 0, errRawLimit
	}
	c.b = append(c.b, p...)
	return len(p), nil
}

// readDataset reads elements into ds until end (a stream offset), or until
// an item delimiter when end is -1 and the dataset is an item, or until
// the end of the stream at the top level. It reports stop when reading
// ended at the top-level pixel data on request.
func (d *Decoder) readDataset(ds *Dataset, end int64, top bool) (stop bool, err error) {
	if top && ds.Elements == nil {
		ds.Elements = make([]Element, 0, 64)
	}
	for {
		if end >= 0 && d.offset() >= end {
			if d.offset() > end {
				return false, d.fail(d.offset(), 0, ErrBadLength)
			}
			return false, nil
		}
		if err := d.fill(4); err != nil {
			if err == io.EOF && (top || d.overrun && d.depth == 1) {
				return false, nil
			}
			if top && err == io.ErrUnexpectedEOF && d.trailingZeros() {
				return false, nil
			}
			return false, d.fail(d.offset(), 0, ErrTruncated)
		}
		t := d.peekTag()
		if t == TagItemDelimitation && !top && end < 0 {
			hdr := d.offset()
			if err := d.fill(8); err != nil {
				return false, d.fail(hdr, t, ErrTruncated)
			}
			d.pos += 8
			return false, nil
		}
		if top && t == TagPixelData && (d.opts.StopAtPixelData || d.opts.StreamPixelData) && !d.syn.Deflated {
			e, err := d.readPixelHeader(ds)
			if err != nil {
				return false, err
			}
			ds.Elements = append(ds.Elements, e)
			d.pending = &ds.Elements[len(ds.Elements)-1]
			return true, nil
		}
		e, _, err := d.readElement(ds)
		if err != nil {
			return false, err
		}
		ds.Elements = append(ds.Elements, e)
	}
}

// trailingZeros reports whether the few bytes left in the stream are all
// zero: some writers pad files, and such padding is not an element.
func (d *Decoder) trailingZeros() bool {
	for _, c := range d.buf[d.pos:] {
		if c != 0 {
			return false
		}
	}
	return true
}

func (d *Decoder) order() ByteOrder {
	if d.syn.BigEndian {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

func (d *Decoder) peekTag() Tag {
	b := d.buf[d.pos:]
	o := d.order()
	return Tag(uint32(o.Uint16(b))<<16 | uint32(o.Uint16(b[2:])))
}

// readHeader reads an element header and returns tag, VR and length.
func (d *Decoder) readHeader(ds *Dataset) (Tag, VR, uint32, error) {
	d.reserved = 0
	hdr := d.offset()
	if err := d.fill(8); err != nil {
		return 0, 0, 0, d.fail(hdr, 0, ErrTruncated)
	}
	t := d.peekTag()
	b := d.buf[d.pos:]
	o := d.order()
	if t.Group() == 0xFFFE {
		d.pos += 8
		return t, 0, o.Uint32(b[4:]), nil
	}
	if d.syn.Implicit {
		d.pos += 8
		vr, ambiguous := implicitVRAmbiguous(t)
		if ambiguous {
			vr = resolveSigned(ds)
		}
		return t, vr, o.Uint32(b[4:]), nil
	}
	vr := VR(b[4])<<8 | VR(b[5])
	if vr.HasLongLength() {
		if err := d.fill(12); err != nil {
			return 0, 0, 0, d.fail(hdr, t, ErrTruncated)
		}
		b = d.buf[d.pos:]
		d.pos += 12
		d.reserved = o.Uint16(b[6:])
		return t, vr, o.Uint32(b[8:]), nil
	}
	d.pos += 8
	return t, vr, uint32(o.Uint16(b[6:])), nil
}

// implicitVR is the VR an implicit-VR stream implies for t.
func implicitVR(t Tag) VR {
	vr, _ := implicitVRAmbiguous(t)
	return vr
}

// implicitVRAmbiguous is implicitVR, also reporting whether the dictionary
// allows US or SS for t, which only Pixel Representation settles.
func implicitVRAmbiguous(t Tag) (VR, bool) {
	if t.IsPrivate() {
		if t.IsPrivateCreator() {
			return LO, false
		}
		return UN, false
	}
	if t.Element() == 0 {
		return UL, false
	}
	e, ok := Lookup(t)
	if !ok || e.VR == 0 {
		return UN, false
	}
	switch e.VRs {
	case "OB or OW", "US or OW", "US or SS or OW":
		// Implicit VR little endian encodes these as OW (PS3.5 A.1, 8.1.2).
		return OW, false
	case "US or SS":
		return US, true
	}
	return e.VR, false
}

// resolveSigned picks SS over US for an ambiguous element when the
// dataset (or an enclosing one) says pixel values are signed.
func resolveSigned(ds *Dataset) VR {
	for d := ds; d != nil; d = d.parent {
		if e := d.Get(TagPixelRepresentation); e != nil && len(e.Value) >= 2 {
			if d.Order().Uint16(e.Value) == 1 {
				return SS
			}
			return US
		}
	}
	return US
}

// readElement reads one element (header and value) belonging to ds.
func (d *Decoder) readElement(ds *Dataset) (Element, int64, error) {
	hdr := d.offset()
	t, vr, n, err := d.readHeader(ds)
	if err != nil {
		return Element{}, hdr, err
	}
	e := Element{Tag: t, VR: vr, Length: n, reserved: d.reserved}
	if t.Group() == 0xFFFE {
		return e, hdr, d.fail(hdr, t, ErrBadItem)
	}
	switch {
	case t == TagPixelData && n == UndefinedLength:
		if d.syn.Implicit {
			e.VR = OB // encapsulated pixel data is OB (PS3.5 A.4)
		}
		fr, err := d.readFragments(hdr, t)
		if err != nil {
			return e, hdr, err
		}
		e.Fragments = fr
		return e, hdr, nil
	case vr == SQ || (n == UndefinedLength && (vr == UN || !vr.Known() || d.syn.Implicit)):
		implicitItems := vr != SQ && !d.syn.Implicit
		items, err := d.readItems(ds, n, hdr, t, implicitItems)
		if err != nil {
			return e, hdr, err
		}
		e.delimited = d.delimited
		e.Items = items
		if e.Items == nil {
			e.Items = []*Item{}
		}
		e.implicitItems = implicitItems
		return e, hdr, nil
	case n == UndefinedLength:
		return e, hdr, d.fail(hdr, t, ErrBadLength)
	}
	v, err := d.readValue(n, hdr, t)
	if err != nil {
		return e, hdr, err
	}
	e.Value = v
	return e, hdr, nil
}

// readItems reads the items of a sequence of length n.
// It sets d.delimited last, once nested sequences have been read.
func (d *Decoder) readItems(parent *Dataset, n uint32, hdr int64, t Tag, implicitItems bool) ([]*Item, error) {
	if d.depth >= d.maxDepth() {
		return nil, d.fail(hdr, t, ErrTooDeep)
	}
	d.depth++
	defer func() { d.depth-- }()
	saved := d.syn
	if implicitItems {
		d.syn = Syntax{UID: ImplicitVRLittleEndian, Implicit: true}
	}
	defer func() { d.syn = saved }()

	end := int64(-1)
	// A top-level sequence that declares more bytes than the stream holds
	// is read up to the end of the data, as other toolkits do (some
	// DICOMDIR writers get the length wrong); the declared length is kept
	// and written back unchanged.
	overrunOK := d.depth == 1 && n != UndefinedLength
	if d.depth == 1 {
		d.overrun = overrunOK
	}
	if n != UndefinedLength {
		end = d.offset() + int64(n)
		if av := d.available(); av >= 0 && int64(n) > av && !overrunOK {
			return nil, d.fail(hdr, t, ErrValueTooLong)
		}
	}
	var items []*Item
	for {
		if end >= 0 && d.offset() >= end {
			if d.offset() > end {
				return nil, d.fail(d.offset(), t, ErrBadLength)
			}
			d.delimited = false
			return items, nil
		}
		ihdr := d.offset()
		if err := d.fill(8); err != nil {
			if err == io.EOF && end >= 0 && overrunOK {
				d.delimited = false
				return items, nil
			}
			return nil, d.fail(ihdr, t, ErrTruncated)
		}
		it := d.peekTag()
		il := d.order().Uint32(d.buf[d.pos+4:])
		switch it {
		case TagSequenceDelimitation:
			d.pos += 8
			if end >= 0 {
				// A delimiter inside a defined-length sequence: tolerated
				// only if it ends the sequence exactly.
				if d.offset() != end {
					return nil, d.fail(ihdr, t, ErrBadItem)
				}
			}
			d.delimited = end >= 0
			return items, nil
		case TagItem:
		default:
			return nil, d.fail(ihdr, t, ErrBadItem)
		}
		d.pos += 8
		item := &Item{Length: il}
		item.parent = parent
		item.bigEndian = d.syn.BigEndian
		iend := int64(-1)
		if il != UndefinedLength {
			iend = d.offset() + int64(il)
			if av := d.available(); av >= 0 && int64(il) > av && !overrunOK {
				return nil, d.fail(ihdr, t, ErrValueTooLong)
			}
		}
		if _, err := d.readDataset(&item.Dataset, iend, false); err != nil {
			return nil, err
		}
		item.overran = iend >= 0 && d.offset() < iend
		items = append(items, item)
	}
}

// readFragments reads encapsulated pixel data items up to the sequence
// delimiter.
func (d *Decoder) readFragments(hdr int64, t Tag) (*Fragments, error) {
	fr := &Fragments{}
	first := true
	for {
		ihdr := d.offset()
		if err := d.fill(8); err != nil {
			return nil, d.fail(ihdr, t, ErrTruncated)
		}
		it := d.peekTag()
		il := d.order().Uint32(d.buf[d.pos+4:])
		d.pos += 8
		switch it {
		case TagSequenceDelimitation:
			if first {
				return nil, d.fail(ihdr, t, ErrBadItem)
			}
			return fr, nil
		case TagItem:
		default:
			return nil, d.fail(ihdr, t, ErrBadItem)
		}
		if il == UndefinedLength {
			return nil, d.fail(ihdr, t, ErrBadLength)
		}
		v, err := d.readValue(il, ihdr, t)
		if err != nil {
			return nil, err
		}
		if v == nil {
			v = []byte{}
		}
		if first {
			fr.OffsetTable = v
			first = false
		} else {
			fr.Items = append(fr.Items, v)
		}
	}
}

// readPixelHeader reads the header of the top-level pixel data element,
// leaving its value unread.
func (d *Decoder) readPixelHeader(ds *Dataset) (Element, error) {
	hdr := d.offset()
	t, vr, n, err := d.readHeader(ds)
	if err != nil {
		return Element{}, err
	}
	e := Element{Tag: t, VR: vr, Length: n, Stream: true, reserved: d.reserved}
	if n == UndefinedLength {
		if d.syn.Implicit {
			e.VR = OB
		}
		d.pendingLeft = -1
		e.Fragments = &Fragments{}
	} else {
		if av := d.available(); av >= 0 && int64(n) > av {
			return e, d.fail(hdr, t, ErrValueTooLong)
		}
		d.pendingLeft = int64(n)
	}
	return e, nil
}

// PixelReader returns a reader over the raw bytes of native (not
// encapsulated) pixel data left in the stream by StreamPixelData. It must
// be read to the end before ReadTrailer.
func (d *Decoder) PixelReader() io.Reader { return pixelReader{d} }

type pixelReader struct{ d *Decoder }

func (p pixelReader) Read(b []byte) (int, error) {
	d := p.d
	if d.pending == nil || d.pendingLeft < 0 {
		return 0, io.EOF
	}
	if d.pendingLeft == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > d.pendingLeft {
		b = b[:d.pendingLeft]
	}
	var n int
	if d.pos < len(d.buf) {
		n = copy(b, d.buf[d.pos:])
		d.pos += n
	} else if d.src != nil {
		var err error
		n, err = d.src.Read(b)
		d.base += int64(n)
		if d.remaining >= 0 {
			d.remaining -= int64(n)
		}
		if err == io.EOF && int64(n) < d.pendingLeft {
			d.pendingLeft -= int64(n)
			return n, d.fail(d.offset(), TagPixelData, ErrTruncated)
		}
		if err != nil && err != io.EOF {
			return n, err
		}
	} else {
		return 0, d.fail(d.offset(), TagPixelData, ErrTruncated)
	}
	d.pendingLeft -= int64(n)
	return n, nil
}

// copyPixelData copies the streamed native pixel data to w. When the rest
// of the value lies in a regular file and w can read from one (an
// *os.File), the bytes move inside the kernel (copy_file_range or
// sendfile) instead of through buf.
func (d *Decoder) copyPixelData(w io.Writer, buf []byte) (int64, error) {
	rf, ok := w.(io.ReaderFrom)
	f, isFile := d.src.(*os.File)
	if !ok || !isFile || d.pending == nil || d.pendingLeft <= 0 {
		return io.CopyBuffer(writerOnly{w}, d.PixelReader(), buf)
	}
	var total int64
	if d.pos < len(d.buf) {
		n := min(int64(len(d.buf)-d.pos), d.pendingLeft)
		m, err := w.Write(d.buf[d.pos : d.pos+int(n)])
		d.pos += m
		d.pendingLeft -= int64(m)
		total += int64(m)
		if err != nil {
			return total, err
		}
	}
	if d.pendingLeft == 0 {
		return total, nil
	}
	want := d.pendingLeft
	n, err := rf.ReadFrom(io.LimitReader(f, want))
	total += n
	d.base += n
	if d.remaining >= 0 {
		d.remaining -= n
	}
	d.pendingLeft -= n
	if err != nil {
		return total, err
	}
	if n < want {
		return total, d.fail(d.offset(), TagPixelData, ErrTruncated)
	}
	return total, nil
}

// NextFragment returns the next item of encapsulated pixel data left in
// the stream by StreamPixelData: first the Basic Offset Table, then each
// fragment; io.EOF after the sequence delimiter.
func (d *Decoder) NextFragment() ([]byte, error) {
	if d.pending == nil || d.pendingLeft >= 0 || d.fragsDone {
		return nil, io.EOF
	}
	ihdr := d.offset()
	if err := d.fill(8); err != nil {
		return nil, d.fail(ihdr, TagPixelData, ErrTruncated)
	}
	it := d.peekTag()
	il := d.order().Uint32(d.buf[d.pos+4:])
	d.pos += 8
	switch it {
	case TagSequenceDelimitation:
		d.fragsDone = true
		return nil, io.EOF
	case TagItem:
	default:
		return nil, d.fail(ihdr, TagPixelData, ErrBadItem)
	}
	if il == UndefinedLength {
		return nil, d.fail(ihdr, TagPixelData, ErrBadLength)
	}
	v, err := d.readValue(il, ihdr, TagPixelData)
	if v == nil && err == nil {
		v = []byte{}
	}
	return v, err
}

// ReadTrailer reads the top-level elements that follow streamed pixel data
// (such as Data Set Trailing Padding) into the file's dataset and returns
// how many there were. The pixel data must have been consumed.
func (d *Decoder) ReadTrailer() (int, error) {
	if d.trailerRead || d.pending == nil {
		return 0, nil
	}
	if (d.pendingLeft > 0) || (d.pendingLeft < 0 && !d.fragsDone) {
		return 0, d.fail(d.offset(), TagPixelData, ErrStreamNotConsumed)
	}
	d.trailerRead = true
	ds := &d.file.Dataset
	before := len(ds.Elements)
	d.opts.StreamPixelData, d.opts.StopAtPixelData = false, false
	if _, err := d.readDataset(ds, -1, true); err != nil {
		return 0, err
	}
	return len(ds.Elements) - before, nil
}
