package fl

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
)

// Safetensors files: an 8-byte little-endian header length N, N bytes
// of JSON mapping each tensor's name to its dtype, shape and
// data_offsets [begin, end) within the data that follows (plus an
// optional "__metadata__" object of strings), then the data. The
// tensors' byte ranges follow one another without gaps or overlaps and
// cover the data exactly.

// MaxHeader bounds the JSON header of a safetensors file read.
const MaxHeader = 100 << 20

// ErrSafetensors marks a malformed safetensors file.
var ErrSafetensors = errors.New("fl: bad safetensors")

// Tensor is one named tensor of a safetensors file.
type Tensor struct {
	Name  string
	DType string // F32, F64
	Shape []int64
	Data  []byte // little-endian
}

// TensorInfo describes a tensor without its data: what a streaming
// Writer is told in advance and what a Reader yields.
type TensorInfo struct {
	Name  string
	DType string
	Shape []int64
	// Begin and End are the tensor's byte range within the data (set by
	// the Reader and NewWriter).
	Begin, End int64
}

// Info returns t's description.
func (t Tensor) Info() TensorInfo { return TensorInfo{Name: t.Name, DType: t.DType, Shape: t.Shape} }

// dtypeSizes are the element sizes of the dtypes read and written.
var dtypeSizes = map[string]int64{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
	"U16": 2, "I16": 2, "F16": 2, "BF16": 2,
	"U32": 4, "I32": 4, "F32": 4,
	"U64": 8, "I64": 8, "F64": 8,
}

// DTypeSize is the size in bytes of one element of dtype, 0 if unknown.
func DTypeSize(dtype string) int64 { return dtypeSizes[dtype] }

// Size is the tensor's size in bytes, or an error when its dtype is
// unknown, a dimension is negative or the size overflows.
func (ti TensorInfo) Size() (int64, error) {
	es := dtypeSizes[ti.DType]
	if es == 0 {
		return 0, fmt.Errorf("%w: tensor %q: unknown dtype %q", ErrSafetensors, ti.Name, ti.DType)
	}
	n := es
	for _, d := range ti.Shape {
		if d < 0 {
			return 0, fmt.Errorf("%w: tensor %q: negative dimension", ErrSafetensors, ti.Name)
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, fmt.Errorf("%w: tensor %q: size overflows", ErrSafetensors, ti.Name)
		}
		n *= d
	}
	return n, nil
}

// Elements is the number of elements of the tensor.
func (ti TensorInfo) Elements() int64 {
	n := int64(1)
	for _, d := range ti.Shape {
		n *= d
	}
	return n
}

// SameLayout checks that b has the tensors of a, in the same order,
// with the same names, dtypes and shapes: an update must match the
// global model it was trained from.
func SameLayout(a, b []TensorInfo) error {
	if len(a) != len(b) {
		return fmt.Errorf("fl: %d tensors, want %d", len(b), len(a))
	}
	for i := range a {
		switch {
		case a[i].Name != b[i].Name:
			return fmt.Errorf("fl: tensor %d is %q, want %q", i, b[i].Name, a[i].Name)
		case a[i].DType != b[i].DType:
			return fmt.Errorf("fl: tensor %q has dtype %s, want %s", a[i].Name, b[i].DType, a[i].DType)
		case !slices.Equal(a[i].Shape, b[i].Shape):
			return fmt.Errorf("fl: tensor %q has shape %v, want %v", a[i].Name, b[i].Shape, a[i].Shape)
		}
	}
	return nil
}

// Infos returns the descriptions of tensors.
func Infos(ts []Tensor) []TensorInfo {
	out := make([]TensorInfo, len(ts))
	for i, t := range ts {
		out[i] = t.Info()
	}
	return out
}

// header builds the JSON header of infos (whose offsets it sets), in
// their order, padded with spaces to a multiple of 8 bytes.
func header(infos []TensorInfo, metadata map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	if len(metadata) > 0 {
		m, err := json.Marshal(metadata)
		if err != nil {
			return nil, err
		}
		b.WriteString(`"__metadata__":`)
		b.Write(m)
		first = false
	}
	seen := map[string]bool{}
	var off int64
	for i := range infos {
		ti := &infos[i]
		if ti.Name == "" || ti.Name == "__metadata__" {
			return nil, fmt.Errorf("fl: safetensors: tensor %d has no usable name", i)
		}
		if seen[ti.Name] {
			return nil, fmt.Errorf("fl: safetensors: tensor %q twice", ti.Name)
		}
		seen[ti.Name] = true
		n, err := ti.Size()
		if err != nil {
			return nil, err
		}
		if off > math.MaxInt64-n {
			return nil, errors.New("fl: safetensors: data too large")
		}
		ti.Begin, ti.End = off, off+n
		off += n
		if !first {
			b.WriteByte(',')
		}
		first = false
		name, _ := json.Marshal(ti.Name)
		b.Write(name)
		b.WriteString(`:{"dtype":"`)
		b.WriteString(ti.DType)
		b.WriteString(`","shape":[`)
		for j, d := range ti.Shape {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatInt(d, 10))
		}
		fmt.Fprintf(&b, `],"data_offsets":[%d,%d]}`, ti.Begin, ti.End)
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	if b.Len() > MaxHeader {
		return nil, errors.New("fl: safetensors: header too large")
	}
	return b.Bytes(), nil
}

// WriteSafetensors writes tensors as a safetensors file.
func WriteSafetensors(w io.Writer, tensors []Tensor) error {
	sw, err := NewWriter(w, Infos(tensors), nil)
	if err != nil {
		return err
	}
	for _, t := range tensors {
		if err := sw.WriteTensor(t); err != nil {
			return err
		}
	}
	return sw.Close()
}

// Writer writes a safetensors file as a stream: the header, known in
// advance, first, then the tensors' data in the header's order, one
// tensor or one piece at a time, so that a model of any size is written
// with bounded memory.
type Writer struct {
	w     io.Writer
	infos []TensorInfo
	total int64 // data bytes declared
	done  int64 // data bytes written
	err   error
}

// NewWriter writes the header of a file holding infos (in this order)
// and optional metadata, and returns the Writer for their data.
func NewWriter(w io.Writer, infos []TensorInfo, metadata map[string]string) (*Writer, error) {
	infos = slices.Clone(infos)
	h, err := header(infos, metadata)
	if err != nil {
		return nil, err
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(h)))
	if _, err := w.Write(n[:]); err != nil {
		return nil, err
	}
	if _, err := w.Write(h); err != nil {
		return nil, err
	}
	sw := &Writer{w: w, infos: infos}
	if len(infos) > 0 {
		sw.total = infos[len(infos)-1].End
	}
	return sw, nil
}

// Infos are the tensors the Writer writes, with their offsets.
func (sw *Writer) Infos() []TensorInfo { return slices.Clone(sw.infos) }

// Write writes the next bytes of the data section (tensors' data in
// order, little-endian). It refuses bytes past the declared data.
func (sw *Writer) Write(p []byte) (int, error) {
	if sw.err != nil {
		return 0, sw.err
	}
	if int64(len(p)) > sw.total-sw.done {
		return 0, fmt.Errorf("fl: safetensors: %d bytes past the declared data", int64(len(p))-(sw.total-sw.done))
	}
	n, err := sw.w.Write(p)
	sw.done += int64(n)
	if err != nil {
		sw.err = err
	}
	return n, err
}

// WriteTensor writes the data of the next tensor, which must be the one
// the header declares at this place (name, dtype, shape, size), and
// must start at a tensor's beginning.
func (sw *Writer) WriteTensor(t Tensor) error {
	i, ok := slices.BinarySearchFunc(sw.infos, sw.done, func(ti TensorInfo, off int64) int {
		switch {
		case ti.Begin < off:
			return -1
		case ti.Begin > off:
			return 1
		}
		return 0
	})
	// Skip empty tensors declared at the same offset before this one.
	for ok && i < len(sw.infos) && sw.infos[i].Begin == sw.done && sw.infos[i].Name != t.Name {
		i++
	}
	if !ok || i >= len(sw.infos) || sw.infos[i].Begin != sw.done {
		return fmt.Errorf("fl: safetensors: tensor %q written in the middle of another", t.Name)
	}
	ti := sw.infos[i]
	if ti.Name != t.Name || ti.DType != t.DType || !slices.Equal(ti.Shape, t.Shape) {
		return fmt.Errorf("fl: safetensors: tensor %q is not the next declared (%q)", t.Name, ti.Name)
	}
	if int64(len(t.Data)) != ti.End-ti.Begin {
		return fmt.Errorf("fl: safetensors: tensor %q has %d bytes, want %d", t.Name, len(t.Data), ti.End-ti.Begin)
	}
	_, err := sw.Write(t.Data)
	return err
}

// Close checks that all the declared data was written. It does not
// close the underlying writer.
func (sw *Writer) Close() error {
	if sw.err != nil {
		return sw.err
	}
	if sw.done != sw.total {
		return fmt.Errorf("fl: safetensors: %d bytes of data written, %d declared", sw.done, sw.total)
	}
	return nil
}

// Reader reads a safetensors file as a stream: the header at once, then
// the tensors one at a time in the order of their data, without holding
// the file; a model of any size is read with bounded memory.
type Reader struct {
	r        *bufio.Reader
	infos    []TensorInfo // in data order
	metadata map[string]string
	next     int
	pos      int64 // data bytes consumed
	cur      *io.LimitedReader
}

// NewReader reads and checks the header of a safetensors file: its
// size (at most MaxHeader), the JSON, each tensor's dtype and shape
// against its byte range, no name twice, and the ranges contiguous
// from 0.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var nb [8]byte
	if _, err := io.ReadFull(br, nb[:]); err != nil {
		return nil, fmt.Errorf("%w: no header length: %v", ErrSafetensors, err)
	}
	n := binary.LittleEndian.Uint64(nb[:])
	if n < 2 || n > MaxHeader {
		return nil, fmt.Errorf("%w: header length %d (want 2 to %d)", ErrSafetensors, n, MaxHeader)
	}
	h, err := readN(br, int64(n))
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrSafetensors, err)
	}
	infos, meta, err := parseHeader(h)
	if err != nil {
		return nil, err
	}
	return &Reader{r: br, infos: infos, metadata: meta}, nil
}

// readN reads exactly n bytes, growing its buffer only as data arrives,
// so a false length cannot make it allocate more than the input holds.
func readN(r io.Reader, n int64) ([]byte, error) {
	const step = 16 << 20
	first := min(n, step)
	buf := make([]byte, 0, first)
	for int64(len(buf)) < n {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, int(min(n-int64(len(buf)), int64(cap(buf)))))
		}
		m := min(int64(cap(buf)), n)
		k, err := io.ReadFull(r, buf[len(buf):m])
		buf = buf[:len(buf)+k]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}

type rawInfo struct {
	DType       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

func parseHeader(h []byte) ([]TensorInfo, map[string]string, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrSafetensors}, a...)...)
	}
	h = bytes.TrimRight(h, " ")
	if len(h) == 0 || h[0] != '{' {
		return nil, nil, bad("header is not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(h))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, bad("header is not a JSON object")
	}
	var infos []TensorInfo
	var meta map[string]string
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, bad("header JSON: %v", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, nil, bad("header JSON: key is not a string")
		}
		if seen[name] {
			return nil, nil, bad("name %q twice in the header", name)
		}
		seen[name] = true
		if name == "__metadata__" {
			if err := dec.Decode(&meta); err != nil {
				return nil, nil, bad("metadata is not an object of strings")
			}
			continue
		}
		if name == "" {
			return nil, nil, bad("tensor with an empty name")
		}
		var ri rawInfo
		sub := json.RawMessage{}
		if err := dec.Decode(&sub); err != nil {
			return nil, nil, bad("header JSON: %v", err)
		}
		sd := json.NewDecoder(bytes.NewReader(sub))
		sd.DisallowUnknownFields()
		if err := sd.Decode(&ri); err != nil {
			return nil, nil, bad("tensor %q: %v", name, err)
		}
		if len(ri.DataOffsets) != 2 || ri.Shape == nil || ri.DType == "" {
			return nil, nil, bad("tensor %q: needs dtype, shape and two data_offsets", name)
		}
		ti := TensorInfo{Name: name, DType: ri.DType, Shape: ri.Shape, Begin: ri.DataOffsets[0], End: ri.DataOffsets[1]}
		size, err := ti.Size()
		if err != nil {
			return nil, nil, err
		}
		if ti.Begin < 0 || ti.End < ti.Begin || ti.End-ti.Begin != size {
			return nil, nil, bad("tensor %q: data_offsets do not match its dtype and shape", name)
		}
		infos = append(infos, ti)
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, bad("header JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, bad("header JSON: trailing data")
	}
	slices.SortStableFunc(infos, func(a, b TensorInfo) int {
		if a.Begin != b.Begin {
			return cmpInt(a.Begin, b.Begin)
		}
		return cmpInt(a.End, b.End)
	})
	var off int64
	for _, ti := range infos {
		if ti.Begin != off {
			return nil, nil, bad("tensor %q: data not contiguous (starts at %d, want %d)", ti.Name, ti.Begin, off)
		}
		off = ti.End
	}
	return infos, meta, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Infos are the file's tensors in the order of their data.
func (sr *Reader) Infos() []TensorInfo { return slices.Clone(sr.infos) }

// Metadata is the file's "__metadata__", nil when it has none.
func (sr *Reader) Metadata() map[string]string { return sr.metadata }

// DataSize is the size of the data section the header declares.
func (sr *Reader) DataSize() int64 {
	if len(sr.infos) == 0 {
		return 0
	}
	return sr.infos[len(sr.infos)-1].End
}

// Next skips what is left of the previous tensor and returns the next
// one's description and a reader of exactly its data. After the last
// tensor it checks that the input ends there and returns io.EOF.
func (sr *Reader) Next() (TensorInfo, io.Reader, error) {
	if sr.cur != nil {
		left := sr.cur.N
		if _, err := io.Copy(io.Discard, sr.cur); err != nil {
			return TensorInfo{}, nil, err
		}
		if sr.cur.N != 0 {
			return TensorInfo{}, nil, fmt.Errorf("%w: data ends inside a tensor", ErrSafetensors)
		}
		sr.pos += left
		sr.cur = nil
	}
	if sr.next >= len(sr.infos) {
		var b [1]byte
		if n, _ := io.ReadFull(sr.r, b[:]); n != 0 {
			return TensorInfo{}, nil, fmt.Errorf("%w: data past the last tensor", ErrSafetensors)
		}
		return TensorInfo{}, nil, io.EOF
	}
	ti := sr.infos[sr.next]
	sr.next++
	sr.cur = &io.LimitedReader{R: sr.r, N: ti.End - ti.Begin}
	return ti, &tensorReader{sr.cur}, nil
}

// tensorReader turns an early end of the input into io.ErrUnexpectedEOF.
type tensorReader struct{ l *io.LimitedReader }

func (t *tensorReader) Read(p []byte) (int, error) {
	if t.l.N <= 0 {
		return 0, io.EOF
	}
	n, err := t.l.Read(p)
	if err == io.EOF && t.l.N > 0 {
		err = fmt.Errorf("%w: data ends inside a tensor", ErrSafetensors)
	}
	return n, err
}

// ReadSafetensors reads a safetensors file (bounded header, offsets
// checked, no panics on bad input). The tensors come in the order of
// their data.
func ReadSafetensors(r io.Reader) ([]Tensor, error) {
	sr, err := NewReader(r)
	if err != nil {
		return nil, err
	}
	var out []Tensor
	for {
		ti, tr, err := sr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		data, err := readN(tr, ti.End-ti.Begin)
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("%w: data ends inside tensor %q", ErrSafetensors, ti.Name)
			}
			return nil, err
		}
		out = append(out, Tensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: data})
	}
}
