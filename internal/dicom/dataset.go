package dicom

import (
	"sort"

	"github.com/mosaic-imaging/mosaic/internal/dicom/charset"
)

// Element is one data element. Values are kept as the raw bytes read, in
// the byte order of the dataset's transfer syntax, so an element that is
// not changed is written back byte for byte.
type Element struct {
	Tag Tag
	VR  VR
	// Length is the value length to write for sequences and encapsulated
	// pixel data: UndefinedLength when the element was read (or is to be
	// written) with delimiters, otherwise the defined length, which the
	// writer recomputes when the content changed. For other elements the
	// length is len(Value).
	Length uint32
	// Value holds the raw value bytes of every element that is neither a
	// sequence nor encapsulated pixel data.
	Value []byte
	// Items holds the items of a sequence (VR SQ, or UN of undefined length
	// read as a sequence).
	Items []*Item
	// Fragments holds encapsulated pixel data: the Basic Offset Table and
	// the fragments, each exactly as read.
	Fragments *Fragments

	// Stream is set on a Pixel Data element whose value a streaming decoder
	// left unread; see Decoder.
	Stream bool

	// implicitItems marks a UN sequence whose items are encoded in implicit
	// VR little endian regardless of the dataset's syntax (PS3.5 6.2.2).
	implicitItems bool
	// delimited marks a sequence of defined length whose declared length
	// includes a sequence delimiter, written back while it is unchanged.
	delimited bool
	// reserved holds the two reserved bytes of an explicit-VR header with
	// a 32-bit length, written back as read (they should be zero).
	reserved uint16
}

// IsSequence reports whether the element holds items.
func (e *Element) IsSequence() bool { return e.VR == SQ || e.Items != nil }

// Item is one item of a sequence: a nested dataset with its own declared
// length.
type Item struct {
	// Length is UndefinedLength for an item closed by an item delimiter,
	// otherwise its defined length (recomputed by the writer when the
	// content changed).
	Length uint32
	// overran marks an item whose data ended before its declared length
	// (tolerated at the end of a top-level sequence): its length is
	// recomputed as soon as anything around it is.
	overran bool
	Dataset
}

// Fragments is encapsulated pixel data (PS3.5 A.4).
type Fragments struct {
	// OffsetTable is the value of the first item, the Basic Offset Table,
	// as raw little-endian bytes (often empty).
	OffsetTable []byte
	// Items are the fragments that follow, each the value of one item.
	Items [][]byte
}

// Dataset is an ordered collection of data elements. Elements are kept in
// the order read, which for valid data is ascending tag order; Set inserts
// in tag order.
type Dataset struct {
	Elements []Element

	parent    *Dataset // enclosing dataset, for inherited character sets
	bigEndian bool     // values are big endian (explicit VR big endian)
	// sealed is set on a top-level dataset once it has been written by a
	// streaming rewrite: it can no longer switch character sets.
	sealed bool
	// cs caches the parsed Specific Character Set whose raw value is csRaw.
	cs       *charset.Set
	csRaw    string
	modified bool // an element was set or removed since reading
	// changedGroups lists the groups edited since reading, so the writer
	// can drop their group length elements.
	changedGroups []uint16
}

// Len returns the number of elements.
func (ds *Dataset) Len() int { return len(ds.Elements) }

// index returns the position of tag t, or -1.
func (ds *Dataset) index(t Tag) int {
	els := ds.Elements
	// Datasets are short and mostly sorted: binary search when sorted,
	// linear fallback otherwise.
	lo, hi := 0, len(els)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if els[m].Tag < t {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(els) && els[lo].Tag == t {
		return lo
	}
	for i := range els {
		if els[i].Tag == t {
			return i
		}
	}
	return -1
}

// Get returns a pointer to the element with tag t, or nil. The pointer is
// valid until the dataset is next changed.
func (ds *Dataset) Get(t Tag) *Element {
	if i := ds.index(t); i >= 0 {
		return &ds.Elements[i]
	}
	return nil
}

// Has reports whether the dataset holds tag t.
func (ds *Dataset) Has(t Tag) bool { return ds.index(t) >= 0 }

// Set adds e, replacing any element with the same tag, keeping tag order,
// and marks the dataset changed.
func (ds *Dataset) Set(e Element) {
	if e.Items == nil && e.Fragments == nil && e.Length == 0 {
		e.Length = uint32(len(e.Value))
	}
	for _, it := range e.Items {
		it.parent = ds
		if !e.implicitItems && it.bigEndian != ds.bigEndian {
			setOrder(&it.Dataset, ds.bigEndian)
		}
	}
	ds.touch(e.Tag)
	if i := ds.index(e.Tag); i >= 0 {
		ds.Elements[i] = e
		return
	}
	i := sort.Search(len(ds.Elements), func(i int) bool { return ds.Elements[i].Tag > e.Tag })
	ds.Elements = append(ds.Elements, Element{})
	copy(ds.Elements[i+1:], ds.Elements[i:])
	ds.Elements[i] = e
}

// Remove deletes the element with tag t, reporting whether it was present.
func (ds *Dataset) Remove(t Tag) bool {
	i := ds.index(t)
	if i < 0 {
		return false
	}
	ds.touch(t)
	ds.Elements = append(ds.Elements[:i], ds.Elements[i+1:]...)
	return true
}

// RemoveFunc deletes every element for which drop returns true and
// returns how many were removed.
func (ds *Dataset) RemoveFunc(drop func(*Element) bool) int {
	n := 0
	out := ds.Elements[:0]
	for i := range ds.Elements {
		if drop(&ds.Elements[i]) {
			ds.touch(ds.Elements[i].Tag)
			n++
			continue
		}
		out = append(out, ds.Elements[i])
	}
	clear(ds.Elements[len(out):])
	ds.Elements = out
	return n
}

// MarkChanged records that the value of the element with tag t was
// changed in place (through a pointer from Get), so that lengths and
// group lengths are recomputed when writing.
func (ds *Dataset) MarkChanged(t Tag) { ds.touch(t) }

func (ds *Dataset) touch(t Tag) {
	ds.modified = true
	g := t.Group()
	for _, c := range ds.changedGroups {
		if c == g {
			return
		}
	}
	ds.changedGroups = append(ds.changedGroups, g)
}

// Modified reports whether this dataset or any nested item was changed
// since it was read.
func (ds *Dataset) Modified() bool {
	if ds.modified {
		return true
	}
	for i := range ds.Elements {
		for _, it := range ds.Elements[i].Items {
			if it.Modified() {
				return true
			}
		}
	}
	return false
}

// Parent returns the dataset enclosing this item's dataset, or nil at the
// top level.
func (ds *Dataset) Parent() *Dataset { return ds.parent }

// NewItem returns an empty item of undefined length whose dataset inherits
// the character set of parent when it is added to one of parent's
// sequences with Set.
func NewItem() *Item { return &Item{Length: UndefinedLength} }

// Walk calls fn for every element of the dataset in order, descending into
// sequence items depth first (fn sees a sequence element before its
// items). The path holds the enclosing sequence elements. Returning false
// from fn skips the element's items.
func (ds *Dataset) Walk(fn func(path []Tag, ds *Dataset, e *Element) bool) {
	ds.walk(nil, fn)
}

func (ds *Dataset) walk(path []Tag, fn func([]Tag, *Dataset, *Element) bool) {
	for i := range ds.Elements {
		e := &ds.Elements[i]
		if !fn(path, ds, e) {
			continue
		}
		child := append(path[:len(path):len(path)], e.Tag)
		for _, it := range e.Items {
			it.Dataset.walk(child, fn)
		}
	}
}

// setOrder re-encodes the binary values of ds and its items in the given
// byte order. Values are copied, never swapped in place, since they may
// alias the input of Parse. Items of UN sequences stay little endian.
func setOrder(ds *Dataset, big bool) {
	if ds.bigEndian != big {
		for i := range ds.Elements {
			e := &ds.Elements[i]
			size := e.VR.ValueSize()
			if e.VR == AT {
				size = 2 // a tag is two 16-bit numbers
			}
			if size < 2 || len(e.Value) == 0 || e.Stream {
				continue
			}
			v := make([]byte, len(e.Value))
			copy(v, e.Value)
			for j := 0; j+size <= len(v); j += size {
				for a, b := j, j+size-1; a < b; a, b = a+1, b-1 {
					v[a], v[b] = v[b], v[a]
				}
			}
			e.Value = v
		}
		ds.bigEndian = big
		ds.modified = true
	}
	for i := range ds.Elements {
		e := &ds.Elements[i]
		if e.implicitItems {
			continue
		}
		for _, it := range e.Items {
			setOrder(&it.Dataset, big)
		}
	}
}

// ExpandUN turns a UN element of defined length, whose tag the dictionary
// knows as a sequence, into an SQ element of the dataset's own encoding:
// its value is read as items in implicit VR little endian (PS3.5 6.2.2),
// and the items are marked changed so the writer encodes them anew.
func (ds *Dataset) ExpandUN(e *Element) error {
	if e.VR != UN || e.Items != nil {
		return nil
	}
	d := &Decoder{buf: e.Value, syn: Syntax{UID: ImplicitVRLittleEndian, Implicit: true}}
	items, err := d.readItems(ds, uint32(len(e.Value)), 0, e.Tag, false)
	if err != nil {
		return err
	}
	if items == nil {
		items = []*Item{}
	}
	for _, it := range items {
		markAll(&it.Dataset)
		if ds.bigEndian {
			setOrder(&it.Dataset, true)
		}
	}
	e.VR = SQ
	e.Length = 0
	e.Value = nil
	e.Items = items
	ds.touch(e.Tag)
	return nil
}

// markAll marks ds and every nested item changed.
func markAll(ds *Dataset) {
	ds.modified = true
	for i := range ds.Elements {
		for _, it := range ds.Elements[i].Items {
			markAll(&it.Dataset)
		}
	}
}
