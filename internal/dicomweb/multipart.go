package dicomweb

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"sync"
)

// Defaults for the zero fields of Limits.
const (
	DefaultMaxPartBytes   int64 = 1 << 30 // one instance: 1 GiB
	DefaultMaxParts             = 1000
	DefaultMaxBodyBytes   int64 = 4 << 30 // one request: 4 GiB
	DefaultMaxHeaderBytes       = 16 << 10
)

const (
	// readBufferSize is the window the reader scans for a boundary. It
	// must hold a delimiter (at most 74 bytes), the transport padding
	// allowed after it and its line end, with room to spare.
	readBufferSize = 256 << 10
	// maxPadding is the most spaces and tabs accepted between a boundary
	// and the end of its line (RFC 2046 transport padding).
	maxPadding = 64
	// maxHeaderLines bounds the header fields of one part.
	maxHeaderLines = 64
	// maxPreambleBytes bounds the text skipped before the first boundary.
	maxPreambleBytes = 64 << 10
)

// Limits bound what a PartReader accepts. Zero or negative fields take the
// defaults above.
type Limits struct {
	// MaxPartBytes is the largest body of one part. A longer part fails
	// with ErrPartTooLarge; the rest of it is skipped and the next part
	// can be read.
	MaxPartBytes int64
	// MaxParts is the most parts one request may hold; Next fails with
	// ErrTooManyParts on the one after.
	MaxParts int
	// MaxBodyBytes bounds the whole body as read from the network,
	// including headers and the skipped rest of parts that were too
	// large; past it the request fails with ErrBodyTooLarge.
	MaxBodyBytes int64
	// MaxHeaderBytes bounds the header section of one part.
	MaxHeaderBytes int
}

func (l Limits) withDefaults() Limits {
	if l.MaxPartBytes <= 0 {
		l.MaxPartBytes = DefaultMaxPartBytes
	}
	if l.MaxParts <= 0 {
		l.MaxParts = DefaultMaxParts
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	return l
}

// errBodyLimit is returned by bodyReader past Limits.MaxBodyBytes.
var errBodyLimit = errors.New("body limit reached")

// bodyReader reads the request body up to a byte budget and keeps the
// first error it sees, so that no Read reaches the body after an error.
type bodyReader struct {
	r         io.Reader
	remaining int64
	err       error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if b.remaining <= 0 {
		// The budget is spent: the body is too long only if one more byte
		// exists, so that a body of exactly the limit is accepted.
		var one [1]byte
		for range 100 { // as bufio does, give up on a reader that never moves
			n, err := b.r.Read(one[:])
			if n > 0 {
				err = errBodyLimit
			}
			if err != nil {
				b.err = err
				return 0, err
			}
		}
		b.err = io.ErrNoProgress
		return 0, b.err
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.r.Read(p)
	b.remaining -= int64(n)
	if err != nil {
		b.err = err
	}
	return n, err
}

// PartReader reads the parts of a multipart/related request body, as sent
// to the STOW-RS Store Instances transaction (PS3.18 10.5).
//
// It is written here rather than on mime/multipart because that package
// reports a body cut off right after a boundary line as a clean end
// (io.EOF), accepts up to 10 MiB of headers per part, hands out data
// 4 KiB at a time and rejects the unquoted type=application/dicom that clients send.
//
// Strictness: lines end in CRLF (a bare LF is not a line end); a boundary
// line may carry up to 64 spaces or tabs before its CRLF; the preamble is
// skipped up to 64 KiB and the epilogue is never read. A body that ends
// before the closing boundary fails with ErrTruncated, from Part.Read or
// from Next, never as a silently complete part.
type PartReader struct {
	lim   Limits
	br    *bufio.Reader
	delim []byte // CRLF "--" boundary

	// safe is how many bytes at the head of br are known to belong to the
	// current body (part or preamble); atDelim says the head of br is the
	// delimiter that ends it.
	safe    int
	atDelim bool

	preamble bool  // the current body is the preamble
	skipped  int64 // preamble bytes skipped so far
	parts    int
	cur      *Part
	done     bool
	err      *Error // sticky failure of the whole request
}

// NewPartReader checks the request Content-Type and returns a reader over
// body. The Content-Type must be multipart/related with a boundary; its
// type parameter, when present, must be application/dicom (PS3.18 10.5.1:
// this node stores DICOM instances, not metadata and bulk data). Errors
// are *Error with status 415 (wrong media type) or 400 (malformed header).
func NewPartReader(contentType string, body io.Reader, lim Limits) (*PartReader, error) {
	boundary, err := checkRequestType(contentType)
	if err != nil {
		return nil, err
	}
	lim = lim.withDefaults()
	src := &bodyReader{r: body, remaining: lim.MaxBodyBytes}
	// A virtual CRLF before the body lets the first boundary, which may
	// open the body without one, be found like every other delimiter.
	in := io.MultiReader(strings.NewReader("\r\n"), src)
	br := readBufs.Get().(*bufio.Reader)
	br.Reset(in)
	return &PartReader{
		lim:      lim,
		br:       br,
		delim:    []byte("\r\n--" + boundary),
		preamble: true,
	}, nil
}

// readBufs holds the buffers of released readers: a request of one small
// part would otherwise allocate (and clear) a whole scan window.
var readBufs = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

// Release ends the reading of the body and hands the reader's buffer back,
// emptied, for later requests. Next then reports the end of the body (or
// the error that had stopped the reading) and reads of the current part
// fail. A reader never released is simply collected.
func (r *PartReader) Release() {
	if r.br == nil {
		return
	}
	if r.cur != nil {
		r.cur.closed = true
		r.cur = nil
	}
	r.br.Reset(nil)
	readBufs.Put(r.br)
	r.br = nil
	r.done = true
}

func checkRequestType(contentType string) (boundary string, err error) {
	if strings.TrimSpace(contentType) == "" {
		return "", newError(http.StatusUnsupportedMediaType, ErrUnsupportedMediaType,
			`missing Content-Type; expected multipart/related; type="application/dicom"`)
	}
	mt, params, ok := parseMediaType(contentType)
	if !ok {
		return "", newError(http.StatusBadRequest, ErrMalformed, "malformed Content-Type header")
	}
	if mt != MediaTypeMultipartRelated {
		return "", newError(http.StatusUnsupportedMediaType, ErrUnsupportedMediaType,
			`Content-Type must be multipart/related; type="application/dicom"`)
	}
	if t, ok := params["type"]; ok && !strings.EqualFold(strings.TrimSpace(t), MediaTypeDICOM) {
		return "", newError(http.StatusUnsupportedMediaType, ErrUnsupportedMediaType,
			"only application/dicom is supported as the type of multipart/related")
	}
	b, ok := params["boundary"]
	if !ok {
		return "", newError(http.StatusBadRequest, ErrMalformed, "Content-Type has no boundary parameter")
	}
	if !validBoundary(b) {
		return "", newError(http.StatusBadRequest, ErrMalformed, "invalid boundary parameter")
	}
	return b, nil
}

// maxBoundaryLen is the longest boundary the reader accepts. RFC 2046
// section 5.1.1 allows 70 characters, but real senders exceed it (Orthanc's
// DICOMweb client sends 73): be liberal in what is accepted, up to a
// length that still bounds the scan. The writer keeps to 70.
const maxBoundaryLen = 200

// validBoundary applies RFC 2046 section 5.1.1, but for the length: 1 to
// maxBoundaryLen characters from the RFC's set, not ending in a space.
func validBoundary(b string) bool {
	if len(b) == 0 || len(b) > maxBoundaryLen || b[len(b)-1] == ' ' {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') {
			continue
		}
		if strings.IndexByte("'()+_,-./:=? ", c) < 0 {
			return false
		}
	}
	return true
}

func (r *PartReader) fail(e *Error) error {
	if r.err == nil {
		r.err = e
	}
	return r.err
}

func (r *PartReader) truncated() *Error {
	return newError(http.StatusBadRequest, ErrTruncated, "multipart body ended before its closing boundary")
}

func (r *PartReader) malformed(reason string) *Error {
	return newError(http.StatusBadRequest, ErrMalformed, reason)
}

// readError turns an error from the buffered body into the request's
// failure.
func (r *PartReader) readError(err error) *Error {
	switch {
	case errors.Is(err, errBodyLimit):
		return newError(http.StatusRequestEntityTooLarge, ErrBodyTooLarge,
			fmt.Sprintf("request body is larger than %d bytes", r.lim.MaxBodyBytes))
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return r.truncated()
	}
	e := newError(http.StatusBadRequest, ErrBodyRead, "reading the request body failed")
	e.Cause = err
	return e
}

// delimKind is what the bytes after a CRLF--boundary candidate make of it.
type delimKind int

const (
	notDelim delimKind = iota // data that happens to start like a delimiter
	isDelim                   // a delimiter or the close delimiter
	needMore                  // undecided until more bytes arrive
	cutDelim                  // the body ends before the line does
	badDelim                  // padding followed by something else
)

// classify decides whether a CRLF--boundary candidate is a delimiter from
// the bytes that follow it: "--" (close delimiter), or optional padding
// and CRLF. Any other byte right after the boundary makes the candidate
// data (as in "--boundaryX"); padding followed by anything but CRLF is
// malformed.
func classify(after []byte, eof bool) delimKind {
	more := needMore
	if eof {
		more = cutDelim
	}
	if len(after) == 0 || (len(after) == 1 && after[0] == '-') {
		return more
	}
	if after[0] == '-' && after[1] == '-' {
		return isDelim
	}
	j := 0
	for j < len(after) && (after[j] == ' ' || after[j] == '\t') {
		j++
		if j > maxPadding {
			return badDelim
		}
	}
	if j == len(after) {
		return more
	}
	if after[j] == '\r' {
		if j+1 == len(after) {
			return more
		}
		if after[j+1] == '\n' {
			return isDelim
		}
	}
	if j > 0 {
		return badDelim
	}
	return notDelim
}

// scan works out how much of the buffered input belongs to the current
// body: it sets r.safe > 0 or r.atDelim, or returns the request's failure.
func (r *PartReader) scan() *Error {
	// An error (io.EOF, the body limit, a network failure) ends the input
	// as it stands: what is buffered is still scanned, and the error is
	// reported only when the buffered data cannot decide.
	buf, readErr := r.br.Peek(readBufferSize)
	eof := readErr != nil
	from := 0
	for {
		i := bytes.Index(buf[from:], r.delim)
		if i < 0 {
			if eof {
				if len(buf) == 0 {
					return r.readError(readErr)
				}
				r.safe = len(buf) // hand out the rest; the next scan fails
				return nil
			}
			// The buffer is full: all but a tail that may start a
			// delimiter is body.
			r.safe = len(buf) - len(r.delim) + 1
			return nil
		}
		i += from
		k := classify(buf[i+len(r.delim):], eof)
		if k == notDelim {
			from = i + 1
			continue
		}
		if i > 0 {
			r.safe = i // the body up to the candidate, decided next time
			return nil
		}
		switch k {
		case isDelim:
			r.atDelim = true
			return nil
		case cutDelim:
			return r.readError(readErr)
		default: // badDelim, or needMore with a full buffer behind it
			return r.malformed("malformed boundary line")
		}
	}
}

// skipBody discards the rest of the current body up to its delimiter.
func (r *PartReader) skipBody() *Error {
	for !r.atDelim {
		if r.safe == 0 {
			if e := r.scan(); e != nil {
				return e
			}
			continue
		}
		if r.preamble {
			r.skipped += int64(r.safe)
			if r.skipped > maxPreambleBytes {
				return r.malformed(fmt.Sprintf("no multipart boundary in the first %d bytes", maxPreambleBytes))
			}
		}
		r.br.Discard(r.safe)
		r.safe = 0
	}
	return nil
}

// consumeDelimiter reads the delimiter line at the head of the input and
// reports whether it was the close delimiter.
func (r *PartReader) consumeDelimiter() (closing bool, e *Error) {
	buf, _ := r.br.Peek(len(r.delim) + maxPadding + 2)
	if len(buf) < len(r.delim) || classify(buf[len(r.delim):], true) != isDelim {
		return false, r.malformed("malformed boundary line") // scan said otherwise: cannot happen
	}
	after := buf[len(r.delim):]
	if after[0] == '-' && after[1] == '-' {
		r.br.Discard(len(r.delim) + 2)
		return true, nil
	}
	j := 0
	for after[j] == ' ' || after[j] == '\t' {
		j++
	}
	r.br.Discard(len(r.delim) + j + 2)
	return false, nil
}

// readHeader reads the header section of a part, up to and including the
// empty line.
func (r *PartReader) readHeader() (textproto.MIMEHeader, *Error) {
	h := textproto.MIMEHeader{}
	total, lines := 0, 0
	var last string
	for {
		line, err := r.br.ReadSlice('\n')
		total += len(line)
		if total > r.lim.MaxHeaderBytes || err == bufio.ErrBufferFull {
			return nil, r.malformed(fmt.Sprintf("part headers longer than %d bytes", r.lim.MaxHeaderBytes))
		}
		if err != nil {
			return nil, r.readError(err)
		}
		if len(line) < 2 || line[len(line)-2] != '\r' {
			return nil, r.malformed("part header line does not end in CRLF")
		}
		line = line[:len(line)-2]
		if len(line) == 0 {
			return h, nil
		}
		if lines++; lines > maxHeaderLines {
			return nil, r.malformed(fmt.Sprintf("more than %d part header lines", maxHeaderLines))
		}
		for _, c := range line {
			if (c < 0x20 && c != '\t') || c == 0x7F {
				return nil, r.malformed("control character in a part header")
			}
		}
		if line[0] == ' ' || line[0] == '\t' { // obsolete line folding
			if last == "" {
				return nil, r.malformed("part header starts with a continuation line")
			}
			v := h[last]
			v[len(v)-1] += " " + strings.Trim(string(line), " \t")
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(string(line[:colon])) {
			return nil, r.malformed("malformed part header line")
		}
		last = textproto.CanonicalMIMEHeaderKey(string(line[:colon]))
		h[last] = append(h[last], strings.Trim(string(line[colon+1:]), " \t"))
	}
}

// Next returns the next part. It returns io.EOF after the last part, once
// the close delimiter has been read.
//
// Errors are *Error. When Recoverable(err) is true the error concerns
// this part only (ErrUnsupportedPartType, ErrInvalidPart): the returned
// Part is non-nil so its headers can be examined, its body is skipped, and
// Next may be called again. Any other error fails the whole request and
// is returned again by every later call: ErrTruncated, ErrMalformed,
// ErrNoParts (an empty body, or one whose first boundary is the close
// delimiter), ErrTooManyParts, ErrBodyTooLarge, ErrBodyRead.
//
// Calling Next skips what was left unread of the previous part; reading
// that part afterwards fails.
func (r *PartReader) Next() (*Part, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.done {
		return nil, io.EOF
	}
	if r.cur != nil {
		r.cur.closed = true
		r.cur = nil
	}
	if e := r.skipBody(); e != nil {
		if r.preamble && errors.Is(e, ErrTruncated) && r.skipped <= 2 {
			// Nothing but the virtual CRLF: the body was empty.
			e = newError(http.StatusBadRequest, ErrNoParts, "request body is empty")
		}
		return nil, r.fail(e)
	}
	closing, e := r.consumeDelimiter()
	if e != nil {
		return nil, r.fail(e)
	}
	r.atDelim = false
	first := r.preamble
	r.preamble = false
	if closing {
		r.done = true
		if first {
			return nil, r.fail(newError(http.StatusBadRequest, ErrNoParts, "multipart body has no parts"))
		}
		return nil, io.EOF
	}
	if r.parts >= r.lim.MaxParts {
		return nil, r.fail(newError(http.StatusRequestEntityTooLarge, ErrTooManyParts,
			fmt.Sprintf("more than %d parts", r.lim.MaxParts)))
	}
	r.parts++
	h, e := r.readHeader()
	if e != nil {
		return nil, r.fail(e)
	}
	p := &Part{Index: r.parts, Header: h, r: r}
	r.cur = p
	if e := p.checkType(); e != nil {
		e.Part = p.Index
		p.err = e
		return p, e
	}
	return p, nil
}

// Part is one part of a multipart/related body: its headers and a reader
// of its body. Read and WriteTo hand out at most Limits.MaxPartBytes bytes
// and then fail with ErrPartTooLarge if the body goes on.
type Part struct {
	// Index is the part's 1-based position in the request.
	Index int
	// Header holds the part's header fields, keys in canonical form.
	Header textproto.MIMEHeader
	// MediaType is the part's media type, lower case, without parameters
	// ("application/dicom"); empty when the part has no Content-Type.
	MediaType string
	// TransferSyntax is the transfer-syntax parameter of the part's
	// Content-Type, or empty when absent. The dataset's own file meta
	// information remains the authority on how it is encoded.
	TransferSyntax string

	r      *PartReader
	n      int64 // body bytes handed out
	err    error // sticky
	closed bool  // Next was called after this part
}

var (
	// errPartClosed is returned by reads of a part after Next was called.
	errPartClosed = errors.New("dicomweb: read of a part after PartReader.Next")
	// errInvalidWrite is returned by WriteTo when the writer reports
	// writing more than it was given, or a negative count.
	errInvalidWrite = errors.New("dicomweb: invalid write result")
)

// checkType accepts application/dicom parts, with or without a valid
// transfer-syntax parameter, sent without a content transfer encoding
// (or with the identity ones: binary, 8bit, 7bit).
func (p *Part) checkType() *Error {
	ct := p.Header.Get("Content-Type")
	if ct == "" {
		return newError(http.StatusUnsupportedMediaType, ErrUnsupportedPartType,
			"part has no Content-Type; only application/dicom is supported")
	}
	mt, params, ok := parseMediaType(ct)
	if !ok {
		return newError(http.StatusBadRequest, ErrInvalidPart, "malformed part Content-Type")
	}
	p.MediaType = mt
	if mt != MediaTypeDICOM {
		if len(mt) > 100 {
			mt = mt[:100]
		}
		return newError(http.StatusUnsupportedMediaType, ErrUnsupportedPartType,
			fmt.Sprintf("part type %s is not supported; only application/dicom is", mt))
	}
	if ts, ok := params["transfer-syntax"]; ok {
		if !validUID(ts) {
			return newError(http.StatusBadRequest, ErrInvalidPart, "invalid transfer-syntax parameter")
		}
		p.TransferSyntax = ts
	}
	if cte := p.Header.Get("Content-Transfer-Encoding"); cte != "" {
		switch strings.ToLower(cte) {
		case "binary", "8bit", "7bit":
		default:
			return newError(http.StatusUnsupportedMediaType, ErrUnsupportedPartType,
				"content transfer encodings other than binary are not supported")
		}
	}
	return nil
}

// ready makes sure r.safe > 0 for another chunk of body, or reports the
// end of the body (io.EOF) or an error. It also enforces MaxPartBytes.
func (p *Part) ready() error {
	if p.err != nil {
		return p.err
	}
	if p.closed {
		return errPartClosed
	}
	r := p.r
	for r.safe == 0 {
		if r.atDelim {
			p.err = io.EOF
			return io.EOF
		}
		if e := r.scan(); e != nil {
			p.err = r.fail(e)
			return p.err
		}
	}
	if p.n >= r.lim.MaxPartBytes {
		p.err = &Error{Status: http.StatusRequestEntityTooLarge, Err: ErrPartTooLarge, Part: p.Index,
			Reason: fmt.Sprintf("part is larger than %d bytes", r.lim.MaxPartBytes)}
		return p.err
	}
	return nil
}

// Read reads the part's body. At the end of the body it returns io.EOF;
// errors are *Error (ErrPartTooLarge is Recoverable, ErrTruncated and the
// other failures of the whole request are not).
func (p *Part) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if err := p.ready(); err != nil {
		return 0, err
	}
	r := p.r
	n := min(len(b), r.safe)
	if room := r.lim.MaxPartBytes - p.n; int64(n) > room {
		n = int(room)
	}
	n, _ = r.br.Read(b[:n]) // buffered: copies n bytes, cannot fail
	r.safe -= n
	p.n += int64(n)
	return n, nil
}

// WriteTo writes the part's body to w straight from the read buffer,
// without an intermediate copy; io.Copy uses it. It returns nil at the end
// of the body and the same errors as Read otherwise.
func (p *Part) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if err := p.ready(); err != nil {
			if err == io.EOF {
				return total, nil
			}
			return total, err
		}
		r := p.r
		n := int(min(int64(r.safe), r.lim.MaxPartBytes-p.n))
		buf, _ := r.br.Peek(n) // buffered: returns at once
		m, err := w.Write(buf)
		if m < 0 || m > n {
			return total, errInvalidWrite
		}
		r.br.Discard(m)
		r.safe -= m
		p.n += int64(m)
		total += int64(m)
		if err != nil {
			return total, err
		}
		if m < n {
			return total, io.ErrShortWrite
		}
	}
}

// PartWriter writes a multipart/related body, as returned by the WADO-RS
// Retrieve transaction (PS3.18 10.4), to an underlying writer.
//
// The writer returned for each part is the underlying writer itself, after
// the part's headers: io.Copy from an *os.File to an http.ResponseWriter
// then reaches the response's ReadFrom (and sendfile where the server can
// use it) with no copy through this package.
//
// The boundary holds 128 random bits, so the chance that it occurs in the
// data is negligible; the writer does not scan the data for it.
type PartWriter struct {
	w        io.Writer
	boundary string
	partType string
	parts    int
	closed   bool
	err      error
}

// NewPartWriter returns a writer of parts of partType (application/dicom
// when empty) to w. It panics if partType is not a bare type/subtype,
// which is a programming error.
func NewPartWriter(w io.Writer, partType string) *PartWriter {
	if partType == "" {
		partType = MediaTypeDICOM
	}
	typ, sub, ok := strings.Cut(partType, "/")
	if !ok || !isToken(typ) || !isToken(sub) {
		panic("dicomweb: NewPartWriter: invalid part type " + partType)
	}
	return &PartWriter{w: w, boundary: rand.Text(), partType: partType}
}

// Boundary returns the boundary that separates the parts.
func (pw *PartWriter) Boundary() string { return pw.boundary }

// ContentType returns the value of the response's Content-Type header:
// multipart/related; type="<partType>"; boundary=<boundary>.
func (pw *PartWriter) ContentType() string {
	return MediaTypeMultipartRelated + `; type="` + pw.partType + `"; boundary=` + pw.boundary
}

// CreatePart writes the delimiter and the headers of a new part and
// returns the writer for its body: the underlying writer. Content-Type
// defaults to the part type given to NewPartWriter; it may carry a
// transfer-syntax parameter. Header names must be tokens and values may
// not hold control characters (no header injection); other headers, such
// as Content-Location or Content-Length, are written as given, sorted by
// name after Content-Type.
func (pw *PartWriter) CreatePart(headers map[string]string) (io.Writer, error) {
	if pw.err != nil {
		return nil, pw.err
	}
	if pw.closed {
		return nil, errors.New("dicomweb: CreatePart after Close")
	}
	canon := make(map[string]string, len(headers)+1)
	for k, v := range headers {
		if !isToken(k) {
			return nil, fmt.Errorf("dicomweb: invalid part header name %q", k)
		}
		for i := 0; i < len(v); i++ {
			if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7F {
				return nil, fmt.Errorf("dicomweb: control character in part header %s", k)
			}
		}
		ck := textproto.CanonicalMIMEHeaderKey(k)
		if _, dup := canon[ck]; dup {
			return nil, fmt.Errorf("dicomweb: part header %s given twice", ck)
		}
		canon[ck] = strings.Trim(v, " \t")
	}
	if _, ok := canon["Content-Type"]; !ok {
		canon["Content-Type"] = pw.partType
	}
	keys := make([]string, 0, len(canon))
	for k := range canon {
		if k != "Content-Type" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	keys = append([]string{"Content-Type"}, keys...)

	var b bytes.Buffer
	if pw.parts > 0 {
		b.WriteString("\r\n")
	}
	b.WriteString("--")
	b.WriteString(pw.boundary)
	b.WriteString("\r\n")
	for _, k := range keys {
		b.WriteString(k)
		b.WriteString(": ")
		b.WriteString(canon[k])
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	if _, err := pw.w.Write(b.Bytes()); err != nil {
		pw.err = err
		return nil, err
	}
	pw.parts++
	return pw.w, nil
}

// Close writes the close delimiter. A body with no part is just the close
// delimiter. Close does not close the underlying writer; calling it again
// does nothing.
func (pw *PartWriter) Close() error {
	if pw.err != nil {
		return pw.err
	}
	if pw.closed {
		return nil
	}
	pw.closed = true
	end := "--" + pw.boundary + "--\r\n"
	if pw.parts > 0 {
		end = "\r\n" + end
	}
	if _, err := io.WriteString(pw.w, end); err != nil {
		pw.err = err
		return err
	}
	return nil
}
