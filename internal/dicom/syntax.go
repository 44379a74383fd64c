package dicom

import "encoding/binary"

// Transfer syntax UIDs the codec reads and writes.
const (
	ImplicitVRLittleEndian         = "1.2.840.10008.1.2"
	ExplicitVRLittleEndian         = "1.2.840.10008.1.2.1"
	DeflatedExplicitVRLittleEndian = "1.2.840.10008.1.2.1.99"
	ExplicitVRBigEndian            = "1.2.840.10008.1.2.2"
	EncapsulatedUncompressed       = "1.2.840.10008.1.2.1.98"
	RLELossless                    = "1.2.840.10008.1.2.5"
)

// Syntax describes how a dataset is encoded.
type Syntax struct {
	UID          string
	Implicit     bool
	BigEndian    bool
	Deflated     bool
	Encapsulated bool // pixel data is held in fragments
}

// ByteOrder reads and appends fixed-size numbers.
type ByteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// Order returns the byte order of the syntax.
func (s Syntax) Order() ByteOrder {
	if s.BigEndian {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// LookupSyntax describes the transfer syntax uid. Every transfer syntax of
// PS3.5 that is not one of the native ones (implicit or explicit little
// endian, explicit big endian, deflated) encodes its pixel data in
// fragments on explicit VR little endian, including JPEG, JPEG-LS, JPEG
// 2000, HTJ2K, RLE, MPEG-2, MPEG-4, HEVC and JPEG XL; it is read and
// written the same way, fragments kept byte for byte.
func LookupSyntax(uid string) (Syntax, bool) {
	switch uid {
	case ImplicitVRLittleEndian:
		return Syntax{UID: uid, Implicit: true}, true
	case ExplicitVRLittleEndian:
		return Syntax{UID: uid}, true
	case DeflatedExplicitVRLittleEndian, "1.2.840.10008.1.2.1.99.1": // the second is not standard; never seen
		return Syntax{UID: uid, Deflated: true}, uid == DeflatedExplicitVRLittleEndian
	case ExplicitVRBigEndian:
		return Syntax{UID: uid, BigEndian: true}, true
	case "1.2.840.10008.1.2.4.95", "1.2.840.10008.1.2.4.205":
		// JPIP Referenced Deflate and JPIP HTJ2K Referenced Deflate: the
		// dataset is deflated; the pixel data is referenced, not held.
		return Syntax{UID: uid, Deflated: true}, true
	}
	if isEncapsulatedSyntax(uid) {
		return Syntax{UID: uid, Encapsulated: true}, true
	}
	return Syntax{UID: uid}, false
}

// isEncapsulatedSyntax reports whether uid is a standard transfer syntax
// of the 1.2.840.10008.1.2.4.*, 1.2.840.10008.1.2.5 (RLE) or
// 1.2.840.10008.1.2.1.98 families.
func isEncapsulatedSyntax(uid string) bool {
	const jpeg = "1.2.840.10008.1.2.4."
	if len(uid) > len(jpeg) && uid[:len(jpeg)] == jpeg {
		return true
	}
	return uid == RLELossless || uid == EncapsulatedUncompressed
}
