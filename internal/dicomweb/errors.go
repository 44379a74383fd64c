package dicomweb

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// Sentinel causes carried by *Error; test with errors.Is. The comment of
// each says the HTTP status the *Error carrying it has.
var (
	// ErrUnsupportedMediaType: the request Content-Type is not one this
	// package reads (415).
	ErrUnsupportedMediaType = errors.New("unsupported media type")
	// ErrMalformed: the request is not well-formed multipart/related, or
	// its Content-Type header cannot be parsed (400).
	ErrMalformed = errors.New("malformed multipart body")
	// ErrTruncated: the body ended before the closing boundary (400).
	ErrTruncated = errors.New("multipart body ended before its closing boundary")
	// ErrNoParts: the body holds no part at all (400).
	ErrNoParts = errors.New("multipart body has no parts")
	// ErrTooManyParts: the body holds more parts than Limits.MaxParts (413).
	ErrTooManyParts = errors.New("too many parts")
	// ErrBodyTooLarge: the body is longer than Limits.MaxBodyBytes (413).
	ErrBodyTooLarge = errors.New("request body too large")
	// ErrBodyRead: reading the body failed; the underlying error is
	// wrapped too (400).
	ErrBodyRead = errors.New("reading the request body failed")

	// ErrPartTooLarge: one part is longer than Limits.MaxPartBytes (413).
	// The rest of that part is skipped and Next may be called.
	ErrPartTooLarge = errors.New("part too large")
	// ErrUnsupportedPartType: one part is not application/dicom, or uses a
	// content transfer encoding other than binary (415). Next may be
	// called.
	ErrUnsupportedPartType = errors.New("unsupported part type")
	// ErrInvalidPart: one part's Content-Type header is malformed (400).
	// Next may be called.
	ErrInvalidPart = errors.New("invalid part header")

	// ErrInvalidQuery: a QIDO-RS query parameter is unknown, malformed or
	// not supported (400).
	ErrInvalidQuery = errors.New("invalid query")
)

// Error is a protocol failure: Status is the HTTP status the handler
// should answer with and Reason a sentence for the client. Reasons name
// parameters, attributes and part numbers, never values, so that no
// patient data reaches responses or logs.
type Error struct {
	// Status is an HTTP status: 400, 413 or 415.
	Status int
	// Reason is a sentence for the client, without patient data.
	Reason string
	// Part is the 1-based number of the part concerned, or 0 when the
	// error concerns the whole request.
	Part int
	// Err is one of the sentinels above.
	Err error
	// Cause is the underlying error, such as the one the request body
	// returned; nil when there is none.
	Cause error
}

// Error returns "dicomweb: " followed by the reason and, for part errors,
// the part number.
func (e *Error) Error() string {
	s := "dicomweb: " + e.Reason
	if e.Part > 0 {
		s += " (part " + strconv.Itoa(e.Part) + ")"
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the sentinel and the cause, so that errors.Is and
// errors.As see both.
func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Cause}
}

func newError(status int, sentinel error, reason string) *Error {
	return &Error{Status: status, Reason: reason, Err: sentinel}
}

// Recoverable reports whether err concerns one part only, so that the
// caller can record a failure for that part and call Next again: true for
// ErrPartTooLarge, ErrUnsupportedPartType and ErrInvalidPart, false for
// everything else (the request as a whole has failed).
func Recoverable(err error) bool {
	return errors.Is(err, ErrPartTooLarge) || errors.Is(err, ErrUnsupportedPartType) || errors.Is(err, ErrInvalidPart)
}

// StatusOf returns the HTTP status carried by err: the Status of the first
// *Error in its chain, or 500 for any other error.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) && e.Status != 0 {
		return e.Status
	}
	return http.StatusInternalServerError
}

// ContentTypeJSON is the media type of the bodies ErrorJSON returns.
const ContentTypeJSON = "application/json"

// ErrorJSON returns the HTTP status for err and a JSON body
// {"error": reason, "status": status} to send with Content-Type
// ContentTypeJSON. PS3.18 leaves the body of failure responses free
// ("may contain a Status Report"), so this is the node's own form, the
// same shape as its other API errors. Errors that are not *Error give
// 500 and a generic message: their text may hold internal details.
func ErrorJSON(err error) (status int, body []byte) {
	status = StatusOf(err)
	msg := "internal error"
	var e *Error
	if errors.As(err, &e) {
		msg = e.Reason
		if e.Part > 0 {
			msg += " (part " + strconv.Itoa(e.Part) + ")"
		}
	}
	body, _ = json.Marshal(struct {
		Error  string `json:"error"`
		Status int    `json:"status"`
	}{msg, status})
	return status, body
}
