package dicom

import (
	"errors"
	"fmt"
)

// Sentinel causes carried by *Error; test with errors.Is.
var (
	ErrNotDICOM          = errors.New("not a DICOM stream")
	ErrTruncated         = errors.New("unexpected end of data")
	ErrValueTooLong      = errors.New("value length exceeds the data that remains")
	ErrLimit             = errors.New("value length exceeds the configured limit")
	ErrBadItem           = errors.New("malformed item or delimiter")
	ErrBadLength         = errors.New("invalid value length")
	ErrTooDeep           = errors.New("sequences nested deeper than the configured limit")
	ErrDeflateLimit      = errors.New("deflated dataset inflates beyond the configured limit")
	ErrUnknownSyntax     = errors.New("transfer syntax cannot be decoded")
	ErrBadMeta           = errors.New("malformed file meta information")
	ErrNotEncodable      = errors.New("value cannot be encoded")
	ErrStreamNotConsumed = errors.New("streamed pixel data was not consumed")
	ErrNoPixelData       = errors.New("pixel data was not read (header-only parse) and cannot be written")
)

// Error is a decoding or encoding failure at a known place in a stream.
// Offset is the byte offset from the start of the stream (for deflated
// datasets, from the start of the inflated dataset) of the element header
// that failed; Tag is that element's tag, or zero when the failure is not
// tied to an element.
type Error struct {
	Op     string // "read" or "write"
	Offset int64
	Tag    Tag
	Err    error
}

func (e *Error) Error() string {
	if e.Tag == 0 {
		return fmt.Sprintf("dicom: %s at offset %d: %v", e.Op, e.Offset, e.Err)
	}
	return fmt.Sprintf("dicom: %s %s at offset %d: %v", e.Op, e.Tag, e.Offset, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }
