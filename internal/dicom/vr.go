package dicom

// VR is a value representation: the two upper-case ASCII characters packed
// big-endian into 16 bits, so VR('P'<<8|'N') is PN. Unknown or malformed
// VRs read from explicit-VR streams are kept as read.
type VR uint16

// The value representations of PS3.5 6.2.
const (
	AE VR = 'A'<<8 | 'E'
	AS VR = 'A'<<8 | 'S'
	AT VR = 'A'<<8 | 'T'
	CS VR = 'C'<<8 | 'S'
	DA VR = 'D'<<8 | 'A'
	DS VR = 'D'<<8 | 'S'
	DT VR = 'D'<<8 | 'T'
	FD VR = 'F'<<8 | 'D'
	FL VR = 'F'<<8 | 'L'
	IS VR = 'I'<<8 | 'S'
	LO VR = 'L'<<8 | 'O'
	LT VR = 'L'<<8 | 'T'
	OB VR = 'O'<<8 | 'B'
	OD VR = 'O'<<8 | 'D'
	OF VR = 'O'<<8 | 'F'
	OL VR = 'O'<<8 | 'L'
	OV VR = 'O'<<8 | 'V'
	OW VR = 'O'<<8 | 'W'
	PN VR = 'P'<<8 | 'N'
	SH VR = 'S'<<8 | 'H'
	SL VR = 'S'<<8 | 'L'
	SQ VR = 'S'<<8 | 'Q'
	SS VR = 'S'<<8 | 'S'
	ST VR = 'S'<<8 | 'T'
	SV VR = 'S'<<8 | 'V'
	TM VR = 'T'<<8 | 'M'
	UC VR = 'U'<<8 | 'C'
	UI VR = 'U'<<8 | 'I'
	UL VR = 'U'<<8 | 'L'
	UN VR = 'U'<<8 | 'N'
	UR VR = 'U'<<8 | 'R'
	US VR = 'U'<<8 | 'S'
	UT VR = 'U'<<8 | 'T'
	UV VR = 'U'<<8 | 'V'
)

// String returns the two-character name, or a hexadecimal form for bytes
// that are not printable.
func (v VR) String() string {
	a, b := byte(v>>8), byte(v)
	if a >= 0x20 && a < 0x7F && b >= 0x20 && b < 0x7F {
		return string([]byte{a, b})
	}
	const hex = "0123456789ABCDEF"
	return string([]byte{'0', 'x', hex[a>>4], hex[a&15], hex[b>>4], hex[b&15]})
}

// ParseVR returns the VR named by s (two characters).
func ParseVR(s string) (VR, bool) {
	if len(s) != 2 {
		return 0, false
	}
	v := VR(s[0])<<8 | VR(s[1])
	return v, v.Known()
}

type vrInfo struct {
	known    bool
	long     bool // explicit VR uses 2 reserved bytes and a 32-bit length
	text     bool // value is character data
	charset  bool // text affected by Specific Character Set
	pad      byte // padding byte for odd lengths
	fixed    int  // size of one binary value, 0 for character or byte data
	multi    bool // values are separated by backslash
	trimLead bool // leading spaces are insignificant
}

func info(v VR) vrInfo {
	switch v {
	case AE, AS, CS, DA, DS, DT, IS, TM:
		return vrInfo{known: true, text: true, pad: ' ', multi: true, trimLead: v != AS && v != DA && v != TM}
	case UI:
		return vrInfo{known: true, text: true, pad: 0, multi: true}
	case LO, SH, PN, UC:
		return vrInfo{known: true, text: true, charset: true, pad: ' ', multi: true, trimLead: true, long: v == UC}
	case LT, ST:
		return vrInfo{known: true, text: true, charset: true, pad: ' '}
	case UT:
		return vrInfo{known: true, text: true, charset: true, pad: ' ', long: true}
	case UR:
		return vrInfo{known: true, text: true, pad: ' ', long: true}
	case AT:
		return vrInfo{known: true, fixed: 4}
	case FL, SL, UL:
		return vrInfo{known: true, fixed: 4}
	case FD, SV, UV:
		return vrInfo{known: true, fixed: 8, long: v != FD}
	case SS, US:
		return vrInfo{known: true, fixed: 2}
	case OB, UN, SQ:
		return vrInfo{known: true, long: true}
	case OW:
		return vrInfo{known: true, long: true, fixed: 2}
	case OF, OL:
		return vrInfo{known: true, long: true, fixed: 4}
	case OD, OV:
		return vrInfo{known: true, long: true, fixed: 8}
	}
	return vrInfo{}
}

// Known reports whether v is one of the VRs of PS3.5.
func (v VR) Known() bool { return info(v).known }

// HasLongLength reports whether explicit-VR encoding uses two reserved
// bytes and a 32-bit length for v (OB, OD, OF, OL, OV, OW, SQ, SV, UC, UN,
// UR, UT, UV). Unknown VRs are treated as long, as PS3.5 7.1.2 advises.
func (v VR) HasLongLength() bool {
	i := info(v)
	return i.long || !i.known
}

// IsText reports whether values of v are character strings.
func (v VR) IsText() bool { return info(v).text }

// UsesCharset reports whether values of v are decoded with the Specific
// Character Set (SH, LO, UC, ST, LT, UT, PN).
func (v VR) UsesCharset() bool { return info(v).charset }

// IsBinaryNumber reports whether values of v are fixed-size binary numbers
// (or tags) that depend on byte order.
func (v VR) IsBinaryNumber() bool {
	i := info(v)
	return i.fixed > 0 && !i.text
}

// ValueSize is the size in bytes of one binary value of v (2 for US, SS
// and OW, 4 for UL, SL, FL, AT, OF and OL, 8 for FD, SV, UV, OD and OV),
// and 0 for character and byte data.
func (v VR) ValueSize() int { return info(v).fixed }

// Padding returns the byte used to pad values of v to even length.
func (v VR) Padding() byte { return info(v).pad }

// IsMultiValued reports whether several values of v are separated by
// backslashes in one string.
func (v VR) IsMultiValued() bool { return info(v).multi }
