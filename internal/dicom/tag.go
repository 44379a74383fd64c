package dicom

import "fmt"

// Tag is a DICOM attribute tag: the group number in the high 16 bits and
// the element number in the low 16 bits.
type Tag uint32

// NewTag returns the tag (group,element).
func NewTag(group, element uint16) Tag { return Tag(uint32(group)<<16 | uint32(element)) }

// Group returns the tag's group number.
func (t Tag) Group() uint16 { return uint16(t >> 16) }

// Element returns the tag's element number.
func (t Tag) Element() uint16 { return uint16(t) }

// IsPrivate reports whether the tag belongs to an odd (private) group.
func (t Tag) IsPrivate() bool { return t.Group()&1 == 1 && t.Group() > 0x0008 }

// IsPrivateCreator reports whether the tag is a private creator slot
// (gggg,0010) to (gggg,00FF) in a private group.
func (t Tag) IsPrivateCreator() bool {
	return t.IsPrivate() && t.Element() >= 0x0010 && t.Element() <= 0x00FF
}

// PrivateCreatorTag returns the creator slot that reserves the block a
// private data element belongs to: (gggg,00xx) for (gggg,xxyy). It returns
// false for tags that are not private data elements.
func (t Tag) PrivateCreatorTag() (Tag, bool) {
	if !t.IsPrivate() || t.Element() < 0x1000 {
		return 0, false
	}
	return NewTag(t.Group(), t.Element()>>8), true
}

// IsGroupLength reports whether the tag is a group length element (gggg,0000).
func (t Tag) IsGroupLength() bool { return t.Element() == 0 }

// String formats the tag as (gggg,eeee) in upper-case hexadecimal.
func (t Tag) String() string {
	const hex = "0123456789ABCDEF"
	var b [11]byte
	b[0] = '('
	b[5] = ','
	b[10] = ')'
	for i := 0; i < 4; i++ {
		b[4-i] = hex[(t>>(16+4*i))&0xF]
		b[9-i] = hex[(t>>(4*i))&0xF]
	}
	return string(b[:])
}

// Hex formats the tag as the eight hexadecimal digits used as keys in the
// DICOM JSON model (PS3.18 F.2), for example "00100010".
func (t Tag) Hex() string { return fmt.Sprintf("%08X", uint32(t)) }

// Tags the codec itself needs by name.
const (
	TagFileMetaGroupLength        Tag = 0x00020000
	TagFileMetaVersion            Tag = 0x00020001
	TagMediaStorageSOPClassUID    Tag = 0x00020002
	TagMediaStorageSOPInstanceUID Tag = 0x00020003
	TagTransferSyntaxUID          Tag = 0x00020010
	TagImplementationClassUID     Tag = 0x00020012
	TagImplementationVersionName  Tag = 0x00020013
	TagSpecificCharacterSet       Tag = 0x00080005
	TagSOPClassUID                Tag = 0x00080016
	TagSOPInstanceUID             Tag = 0x00080018
	TagPixelRepresentation        Tag = 0x00280103
	TagPixelData                  Tag = 0x7FE00010
	TagFloatPixelData             Tag = 0x7FE00008
	TagDoubleFloatPixelData       Tag = 0x7FE00009
	TagItem                       Tag = 0xFFFEE000
	TagItemDelimitation           Tag = 0xFFFEE00D
	TagSequenceDelimitation       Tag = 0xFFFEE0DD
)

// UndefinedLength is the value length 0xFFFFFFFF that marks sequences,
// items and encapsulated pixel data closed by a delimiter instead.
const UndefinedLength uint32 = 0xFFFFFFFF
