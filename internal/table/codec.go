package table

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
)

// The encoded form, all integers little-endian:
//
//	magic "MOSTABLE", version uint16 (1)
//	schema length uint32, schema JSON, CRC-32C of the schema uint32
//	rows uint64
//	for each column of the schema, in order:
//	  kind byte ('f' float64s, 'c' int32 codes, 's' strings),
//	  payload length uint64, payload, CRC-32C of the payload uint32
//
// A float payload is rows float64s, a code payload rows int32s, a string
// payload rows strings each as a uvarint length and its bytes.
const (
	magic   = "MOSTABLE"
	version = 1
)

// Bounds of what Decode accepts.
const (
	maxSchemaBytes  = 64 << 20
	maxPayloadBytes = 8 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is wrapped by Decode's errors about its input.
var ErrCorrupt = errors.New("table: not a valid encoded table")

// Encode writes the table in the node's columnar form; Decode reads it
// back (a corrupt or truncated input is an error, never a panic).
func (t *Table) Encode(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	schema, err := json.Marshal(t.Schema)
	if err != nil {
		return err
	}
	var hdr []byte
	hdr = append(hdr, magic...)
	hdr = binary.LittleEndian.AppendUint16(hdr, version)
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(len(schema)))
	hdr = append(hdr, schema...)
	hdr = binary.LittleEndian.AppendUint32(hdr, crc32.Checksum(schema, castagnoli))
	hdr = binary.LittleEndian.AppendUint64(hdr, uint64(t.rows))
	if _, err := bw.Write(hdr); err != nil {
		return err
	}
	var buf []byte
	for _, c := range t.cols {
		buf = buf[:0]
		var kind byte
		switch {
		case c.Float != nil:
			kind = 'f'
			for _, v := range c.Float {
				buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
			}
		case c.Code != nil:
			kind = 'c'
			for _, v := range c.Code {
				buf = binary.LittleEndian.AppendUint32(buf, uint32(v))
			}
		default:
			kind = 's'
			for _, v := range c.Str {
				buf = binary.AppendUvarint(buf, uint64(len(v)))
				buf = append(buf, v...)
			}
		}
		var h [9]byte
		h[0] = kind
		binary.LittleEndian.PutUint64(h[1:], uint64(len(buf)))
		if _, err := bw.Write(h[:]); err != nil {
			return err
		}
		if _, err := bw.Write(buf); err != nil {
			return err
		}
		if _, err := bw.Write(binary.LittleEndian.AppendUint32(nil, crc32.Checksum(buf, castagnoli))); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func corrupt(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, a...)...)
}

// readN reads exactly n bytes, growing its buffer only as bytes come, so
// that a corrupt length does not allocate more than the input holds.
func readN(r io.Reader, n uint64, what string) ([]byte, error) {
	var b bytes.Buffer
	if n < 1<<20 {
		b.Grow(int(n))
	}
	got, err := io.CopyN(&b, r, int64(n))
	if err != nil || uint64(got) != n {
		return nil, corrupt("%s: truncated", what)
	}
	return b.Bytes(), nil
}

// Decode reads a table written by Encode.
func Decode(r io.Reader) (*Table, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	head, err := readN(br, uint64(len(magic)+2+4), "header")
	if err != nil {
		return nil, err
	}
	if string(head[:len(magic)]) != magic {
		return nil, corrupt("no magic")
	}
	if v := binary.LittleEndian.Uint16(head[len(magic):]); v != version {
		return nil, corrupt("version %d, this node reads version %d", v, version)
	}
	sl := binary.LittleEndian.Uint32(head[len(magic)+2:])
	if sl > maxSchemaBytes {
		return nil, corrupt("schema of %d bytes", sl)
	}
	schema, err := readN(br, uint64(sl), "schema")
	if err != nil {
		return nil, err
	}
	tail, err := readN(br, 12, "header")
	if err != nil {
		return nil, err
	}
	if crc32.Checksum(schema, castagnoli) != binary.LittleEndian.Uint32(tail) {
		return nil, corrupt("schema checksum")
	}
	rows := binary.LittleEndian.Uint64(tail[4:])
	if rows > DefaultMaxRows*4 {
		return nil, corrupt("%d rows", rows)
	}
	t := &Table{rows: int(rows)}
	if err := json.Unmarshal(schema, &t.Schema); err != nil {
		return nil, corrupt("schema: %v", err)
	}
	if err := t.Schema.check(); err != nil {
		return nil, err
	}
	t.cols = make([]col, len(t.Schema.Columns))
	for j, c := range t.Schema.Columns {
		h, err := readN(br, 9, "column header")
		if err != nil {
			return nil, err
		}
		kind, n := h[0], binary.LittleEndian.Uint64(h[1:])
		want := kindOf(c, t.Schema.Patient)
		if kind != want {
			return nil, corrupt("column %d: kind %q, the schema says %q", j+1, kind, want)
		}
		switch {
		case n > maxPayloadBytes:
			return nil, corrupt("column %d: %d bytes", j+1, n)
		case kind == 'f' && n != rows*8, kind == 'c' && n != rows*4:
			return nil, corrupt("column %d: %d bytes for %d rows", j+1, n, rows)
		}
		p, err := readN(br, n, "column")
		if err != nil {
			return nil, err
		}
		sum, err := readN(br, 4, "column checksum")
		if err != nil {
			return nil, err
		}
		if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(sum) {
			return nil, corrupt("column %d: checksum", j+1)
		}
		if err := t.cols[j].decode(kind, p, int(rows), len(c.Levels)); err != nil {
			return nil, corrupt("column %d: %v", j+1, err)
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return nil, corrupt("data after the last column")
	}
	return t, nil
}

// kindOf is how a column's data is held.
func kindOf(c Column, patient string) byte {
	switch {
	case c.Name == patient || c.Type == Text:
		return 's'
	case c.Type == Categorical:
		return 'c'
	}
	return 'f'
}

func (c *col) decode(kind byte, p []byte, rows, levels int) error {
	switch kind {
	case 'f':
		c.Float = make([]float64, rows)
		for i := range c.Float {
			c.Float[i] = math.Float64frombits(binary.LittleEndian.Uint64(p[8*i:]))
		}
	case 'c':
		c.Code = make([]int32, rows)
		for i := range c.Code {
			v := int32(binary.LittleEndian.Uint32(p[4*i:]))
			if v < -1 || int(v) >= levels {
				return fmt.Errorf("code out of range in row %d", i+1)
			}
			c.Code[i] = v
		}
	case 's':
		if uint64(len(p)) < uint64(rows) {
			return errors.New("fewer bytes than rows")
		}
		c.Str = make([]string, rows)
		all := string(p)
		off := 0
		for i := range c.Str {
			l, k := binary.Uvarint(p[off:])
			if k <= 0 || l > uint64(len(p)-off-k) {
				return fmt.Errorf("bad string length in row %d", i+1)
			}
			off += k
			c.Str[i] = all[off : off+int(l)]
			off += int(l)
		}
		if off != len(p) {
			return errors.New("bytes after the last row")
		}
	}
	return nil
}

// check validates a decoded schema.
func (s *Schema) check() error {
	if len(s.Columns) > DefaultMaxColumns*10 {
		return corrupt("%d columns", len(s.Columns))
	}
	seen := map[string]bool{}
	for _, c := range s.Columns {
		if c.Name == "" || seen[c.Name] {
			return corrupt("a column name empty or repeated")
		}
		seen[c.Name] = true
		if !ValidType(c.Type) {
			return corrupt("column %q: unknown type", c.Name)
		}
		if c.Type != Categorical && len(c.Levels) > 0 {
			return corrupt("column %q: levels on a %s column", c.Name, c.Type)
		}
	}
	if s.Patient != "" {
		ok := false
		for _, c := range s.Columns {
			if c.Name == s.Patient && c.Type == Text {
				ok = true
			}
		}
		if !ok {
			return corrupt("the patient column is not a text column of the table")
		}
	}
	return nil
}
