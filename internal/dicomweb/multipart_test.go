package dicomweb

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
)

const testCT = `multipart/related; type="application/dicom"; boundary=B`

// rawPart is a part written by hand for the reader's tests.
type rawPart struct {
	header string // header lines, each ending in CRLF
	body   string
}

func dicomPart(body string) rawPart {
	return rawPart{header: "Content-Type: application/dicom\r\n", body: body}
}

// buildBody writes parts with boundary B, closed.
func buildBody(parts ...rawPart) string {
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("--B\r\n" + p.header + "\r\n" + p.body)
	}
	if len(parts) > 0 {
		b.WriteString("\r\n")
	}
	b.WriteString("--B--\r\n")
	return b.String()
}

// readResult is what readAll saw.
type readResult struct {
	bodies [][]byte
	errs   []error // per part: nil, or the error of Next or of reading
	end    error   // io.EOF or the fatal error that stopped the reading
}

// readAll reads every part, through Read with small buffers or through
// WriteTo, continuing past recoverable errors.
func readAll(t *testing.T, pr *PartReader, useWriteTo bool) readResult {
	t.Helper()
	var res readResult
	for i := 0; i < 10000; i++ {
		p, err := pr.Next()
		if err != nil && !Recoverable(err) {
			res.end = err
			return res
		}
		if err != nil {
			if p == nil {
				t.Fatalf("Next returned a recoverable error without its part: %v", err)
			}
			res.bodies = append(res.bodies, nil)
			res.errs = append(res.errs, err)
			continue
		}
		var buf bytes.Buffer
		if useWriteTo {
			_, err = p.WriteTo(&buf)
		} else {
			_, err = io.CopyBuffer(struct{ io.Writer }{&buf}, struct{ io.Reader }{p}, make([]byte, 7))
		}
		res.bodies = append(res.bodies, buf.Bytes())
		res.errs = append(res.errs, err)
		if err != nil && !Recoverable(err) {
			res.end = err
			return res
		}
	}
	t.Fatal("reader did not stop")
	return res
}

func newReader(t *testing.T, body string, lim Limits) *PartReader {
	t.Helper()
	pr, err := NewPartReader(testCT, strings.NewReader(body), lim)
	if err != nil {
		t.Fatalf("NewPartReader: %v", err)
	}
	return pr
}

func wantError(t *testing.T, err error, sentinel error, status int) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("got error %v, want %v", err, sentinel)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *Error", err)
	}
	if e.Status != status {
		t.Fatalf("got status %d, want %d (%v)", e.Status, status, err)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	bodies := [][]byte{
		[]byte("DICM"),
		{},
		bytes.Repeat([]byte{0xAB}, readBufferSize*3+17), // spans several scan windows
		[]byte("\r\n"),
		[]byte("\r\n--\r\n--"),
	}
	random := make([]byte, 200000)
	for i := range random {
		random[i] = byte(rng.UintN(256))
	}
	bodies = append(bodies, random)

	var out bytes.Buffer
	pw := NewPartWriter(&out, "")
	// Data that repeats the real boundary with a suffix is still data.
	bodies = append(bodies, []byte("x\r\n--"+pw.Boundary()+"X\r\n--"+pw.Boundary()+"-y"))
	for i, b := range bodies {
		h := map[string]string{"Content-Location": fmt.Sprintf("/instances/%d", i)}
		if i == 1 {
			h["Content-Type"] = "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"
		}
		w, err := pw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	wire := out.Bytes()

	readers := map[string]func() io.Reader{
		"whole":   func() io.Reader { return bytes.NewReader(wire) },
		"onebyte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(wire)) },
		"half":    func() io.Reader { return iotest.HalfReader(bytes.NewReader(wire)) },
	}
	for name, mk := range readers {
		for _, useWriteTo := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/writeTo=%v", name, useWriteTo), func(t *testing.T) {
				pr, err := NewPartReader(pw.ContentType(), mk(), Limits{})
				if err != nil {
					t.Fatal(err)
				}
				var parts []*Part
				for {
					p, err := pr.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatalf("Next: %v", err)
					}
					parts = append(parts, p)
					var got bytes.Buffer
					if useWriteTo {
						_, err = p.WriteTo(&got)
					} else {
						_, err = io.Copy(struct{ io.Writer }{&got}, struct{ io.Reader }{p})
					}
					if err != nil {
						t.Fatalf("part %d: %v", p.Index, err)
					}
					i := len(parts) - 1
					if i >= len(bodies) {
						t.Fatalf("more parts than written")
					}
					if !bytes.Equal(got.Bytes(), bodies[i]) {
						t.Fatalf("part %d: got %d bytes, want %d (first difference matters)", i+1, got.Len(), len(bodies[i]))
					}
					if loc := p.Header.Get("Content-Location"); loc != fmt.Sprintf("/instances/%d", i) {
						t.Errorf("part %d: Content-Location %q", i+1, loc)
					}
					if p.MediaType != MediaTypeDICOM {
						t.Errorf("part %d: media type %q", i+1, p.MediaType)
					}
				}
				if len(parts) != len(bodies) {
					t.Fatalf("got %d parts, want %d", len(parts), len(bodies))
				}
				if parts[1].TransferSyntax != "1.2.840.10008.1.2.1" {
					t.Errorf("transfer syntax %q", parts[1].TransferSyntax)
				}
				if parts[0].TransferSyntax != "" {
					t.Errorf("part without transfer-syntax got %q", parts[0].TransferSyntax)
				}
				// The end is sticky.
				if _, err := pr.Next(); err != io.EOF {
					t.Errorf("second Next after the end: %v", err)
				}
			})
		}
	}
}

func TestTruncatedBody(t *testing.T) {
	t.Parallel()
	full := buildBody(dicomPart("hello"), dicomPart("world, a longer one"))
	closeEnd := strings.Index(full, "--B--") + len("--B--")
	for cut := 0; cut <= len(full); cut++ {
		for _, useWriteTo := range []bool{false, true} {
			body := full[:cut]
			res := readAll(t, newReader(t, body, Limits{}), useWriteTo)
			if cut >= closeEnd {
				if res.end != io.EOF || len(res.bodies) != 2 || string(res.bodies[1]) != "world, a longer one" {
					t.Fatalf("cut at %d of %d (complete): end %v, %d parts", cut, len(full), res.end, len(res.bodies))
				}
				continue
			}
			if res.end == io.EOF {
				t.Fatalf("cut at %d of %d (%q): truncated body read as complete", cut, len(full), body[max(0, cut-12):])
			}
			if !errors.Is(res.end, ErrTruncated) && !errors.Is(res.end, ErrNoParts) {
				t.Fatalf("cut at %d: got %v, want ErrTruncated", cut, res.end)
			}
			if StatusOf(res.end) != http.StatusBadRequest {
				t.Fatalf("cut at %d: status %d", cut, StatusOf(res.end))
			}
		}
	}
}

// TestTruncatedAfterDelimiter covers the case that mime/multipart reports
// as a clean end: a body cut right after a boundary line.
func TestTruncatedAfterDelimiter(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		body string
		// partEnds is set when the part's own read ends cleanly: the
		// boundary line is complete. Otherwise the "\r\n--B" could be
		// data cut short, and the part's read reports the truncation.
		partEnds bool
	}{
		{"--B\r\nContent-Type: application/dicom\r\n\r\nhello\r\n--B\r\n", true},
		{"--B\r\nContent-Type: application/dicom\r\n\r\nhello\r\n--B\r\nContent-Type: application/dicom\r\n", true},
		{"--B\r\nContent-Type: application/dicom\r\n\r\nhello\r\n--B", false},
		{"--B\r\nContent-Type: application/dicom\r\n\r\nhello\r\n--B-", false},
		{"--B\r\nContent-Type: application/dicom\r\n\r\nhello\r\n--B  ", false},
	} {
		res := readAll(t, newReader(t, tt.body, Limits{}), false)
		if !errors.Is(res.end, ErrTruncated) {
			t.Errorf("%q: got %v, want ErrTruncated", tt.body, res.end)
		}
		if len(res.bodies) != 1 || string(res.bodies[0]) != "hello" {
			t.Errorf("%q: first part not read", tt.body)
		}
		if tt.partEnds != (res.errs[0] == nil) {
			t.Errorf("%q: part read error %v", tt.body, res.errs[0])
		}
	}
	// Cut inside a part's body: Read returns the error.
	pr := newReader(t, "--B\r\nContent-Type: application/dicom\r\n\r\nhel", Limits{})
	p, err := pr.Next()
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(p)
	wantError(t, err, ErrTruncated, http.StatusBadRequest)
	if string(got) != "hel" {
		t.Errorf("got %q", got)
	}
	if _, err := pr.Next(); !errors.Is(err, ErrTruncated) {
		t.Errorf("Next after truncation: %v", err)
	}
}

func TestPartTooLarge(t *testing.T) {
	t.Parallel()
	body := buildBody(
		dicomPart("12345"),
		dicomPart("12345678901"), // 11 bytes, limit 10
		dicomPart("1234567890"),  // exactly the limit
		dicomPart("abc"),
	)
	for _, useWriteTo := range []bool{false, true} {
		res := readAll(t, newReader(t, body, Limits{MaxPartBytes: 10}), useWriteTo)
		if res.end != io.EOF {
			t.Fatalf("end: %v", res.end)
		}
		if len(res.bodies) != 4 {
			t.Fatalf("got %d parts", len(res.bodies))
		}
		wantError(t, res.errs[1], ErrPartTooLarge, http.StatusRequestEntityTooLarge)
		if !Recoverable(res.errs[1]) {
			t.Error("ErrPartTooLarge not recoverable")
		}
		var e *Error
		errors.As(res.errs[1], &e)
		if e.Part != 2 {
			t.Errorf("error names part %d, want 2", e.Part)
		}
		if len(res.bodies[1]) != 10 {
			t.Errorf("over-limit part handed out %d bytes, want exactly the limit 10", len(res.bodies[1]))
		}
		for i, want := range []string{"12345", "", "1234567890", "abc"} {
			if i != 1 && (string(res.bodies[i]) != want || res.errs[i] != nil) {
				t.Errorf("part %d: %q, %v", i+1, res.bodies[i], res.errs[i])
			}
		}
	}
	// The skipped rest of a large part still counts against the body limit.
	big := buildBody(dicomPart(strings.Repeat("x", 100000)), dicomPart("after"))
	res := readAll(t, newReader(t, big, Limits{MaxPartBytes: 10, MaxBodyBytes: 50000}), false)
	wantError(t, res.end, ErrBodyTooLarge, http.StatusRequestEntityTooLarge)
}

func TestRequestContentType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ct       string
		sentinel error
		status   int
	}{
		{`multipart/related; type="application/dicom"; boundary=B`, nil, 0},
		{`multipart/related; type=application/dicom; boundary=B`, nil, 0},
		{`Multipart/Related; Type="Application/DICOM"; Boundary="B"`, nil, 0},
		{`multipart/related; boundary=B`, nil, 0},
		{`multipart/related; boundary=B; start="<a@b>"`, nil, 0},
		{``, ErrUnsupportedMediaType, 415},
		{`application/dicom`, ErrUnsupportedMediaType, 415},
		{`multipart/form-data; boundary=B`, ErrUnsupportedMediaType, 415},
		{`multipart/related; type="application/dicom+json"; boundary=B`, ErrUnsupportedMediaType, 415},
		{`multipart/related; type=application/dicom+xml; boundary=B`, ErrUnsupportedMediaType, 415},
		{`multipart/related; type="application/octet-stream"; boundary=B`, ErrUnsupportedMediaType, 415},
		{`multipart/related; type="application/dicom"`, ErrMalformed, 400},
		{`multipart/related; boundary=`, ErrMalformed, 400},
		{`multipart/related; boundary=` + strings.Repeat("a", 71), nil, 0},
		// Orthanc's DICOMweb client sends 73 characters, past RFC 2046's 70.
		{`multipart/related; type="application/dicom"; boundary=` + strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-", 2)[:73], nil, 0},
		{`multipart/related; boundary=` + strings.Repeat("a", 200), nil, 0},
		{`multipart/related; boundary=` + strings.Repeat("a", 201), ErrMalformed, 400},
		{`multipart/related; boundary="a b "`, ErrMalformed, 400},
		{`multipart/related; boundary="a{b"`, ErrMalformed, 400},
		{`multipart/related; boundary=a; boundary=b`, ErrMalformed, 400},
		{`multipart/related; boundary`, ErrMalformed, 400},
		{`multipart/related; boundary="unterminated`, ErrMalformed, 400},
		{`multipart`, ErrMalformed, 400},
	}
	for _, tt := range tests {
		_, err := NewPartReader(tt.ct, strings.NewReader(""), Limits{})
		if tt.sentinel == nil {
			if err != nil {
				t.Errorf("%q: %v", tt.ct, err)
			}
			continue
		}
		if !errors.Is(err, tt.sentinel) || StatusOf(err) != tt.status {
			t.Errorf("%q: got %v (status %d), want %v (%d)", tt.ct, err, StatusOf(err), tt.sentinel, tt.status)
		}
	}
	_, err := NewPartReader(`multipart/related; type="application/dicom+json"; boundary=B`, strings.NewReader(""), Limits{})
	if !strings.Contains(err.Error(), "only application/dicom is supported") {
		t.Errorf("message %q does not say what is supported", err)
	}
}

func TestPartContentTypes(t *testing.T) {
	t.Parallel()
	body := buildBody(
		rawPart{"Content-Type: application/dicom+json\r\n", "{}"},
		rawPart{"Content-Location: x\r\n", "no type"},
		rawPart{"Content-Type: application/dicom; transfer-syntax\r\n", "bad header"},
		rawPart{"Content-Type: application/dicom; transfer-syntax=not-a-uid\r\n", "bad uid"},
		rawPart{"Content-Type: application/dicom\r\nContent-Transfer-Encoding: base64\r\n", "RElDTQ=="},
		rawPart{"Content-Type: application/dicom; transfer-syntax=*\r\n", "star"},
		rawPart{"Content-Type: Application/DICOM; transfer-syntax=\"1.2.840.10008.1.2.4.50\"\r\nContent-Transfer-Encoding: binary\r\n", "ok"},
		rawPart{"content-type: application/dicom\r\n", "lower-case header name"},
	)
	want := []struct {
		sentinel error
		status   int
	}{
		{ErrUnsupportedPartType, 415},
		{ErrUnsupportedPartType, 415},
		{ErrInvalidPart, 400},
		{ErrInvalidPart, 400},
		{ErrUnsupportedPartType, 415},
		{ErrInvalidPart, 400},
		{nil, 0},
		{nil, 0},
	}
	pr := newReader(t, body, Limits{})
	for i, w := range want {
		p, err := pr.Next()
		if p == nil {
			t.Fatalf("part %d: no part, error %v", i+1, err)
		}
		if w.sentinel == nil {
			if err != nil {
				t.Fatalf("part %d: %v", i+1, err)
			}
			continue
		}
		wantError(t, err, w.sentinel, w.status)
		if !Recoverable(err) {
			t.Errorf("part %d: error not recoverable", i+1)
		}
		var e *Error
		if errors.As(err, &e); e.Part != i+1 {
			t.Errorf("part %d: error names part %d", i+1, e.Part)
		}
		if _, rerr := p.Read(make([]byte, 10)); rerr != err {
			t.Errorf("part %d: Read of a refused part gave %v", i+1, rerr)
		}
	}
	if p, err := pr.Next(); err != io.EOF {
		t.Errorf("got part %v, %v, want the end", p, err)
	}
	// The media type is kept for the caller even when refused.
	pr = newReader(t, buildBody(rawPart{"Content-Type: application/dicom+json\r\n", "{}"}), Limits{})
	p, err := pr.Next()
	if p == nil || p.MediaType != "application/dicom+json" || !strings.Contains(err.Error(), "only application/dicom") {
		t.Errorf("got %+v, %v", p, err)
	}
}

func TestZeroParts(t *testing.T) {
	t.Parallel()
	for _, body := range []string{"--B--\r\n", "--B--", "preamble\r\n--B--\r\n", ""} {
		pr := newReader(t, body, Limits{})
		_, err := pr.Next()
		wantError(t, err, ErrNoParts, http.StatusBadRequest)
		if _, err2 := pr.Next(); !errors.Is(err2, ErrNoParts) {
			t.Errorf("%q: error not sticky: %v", body, err2)
		}
	}
	// A body without any boundary never had a part either, but may just
	// be cut short: it is reported as truncated.
	_, err := newReader(t, "just some text", Limits{}).Next()
	wantError(t, err, ErrTruncated, http.StatusBadRequest)
}

func TestBoundaryInsideData(t *testing.T) {
	t.Parallel()
	datas := []string{
		"--B",
		"--B--",
		"x\r\n--BX",
		"x\r\n--BB\r\n",
		"x\r\n--B-x",
		"x\r\n--B\rx",
		"x\n--B\r\n",
		"\r\n--",
		"x\r\n-",
	}
	var parts []rawPart
	for _, d := range datas {
		parts = append(parts, dicomPart(d))
	}
	body := buildBody(parts...)
	for _, useWriteTo := range []bool{false, true} {
		res := readAll(t, newReader(t, body, Limits{}), useWriteTo)
		if res.end != io.EOF {
			t.Fatalf("end: %v", res.end)
		}
		for i, d := range datas {
			if string(res.bodies[i]) != d || res.errs[i] != nil {
				t.Errorf("part %d: got %q, %v, want %q", i+1, res.bodies[i], res.errs[i], d)
			}
		}
	}
	// Padding followed by something other than CRLF is not a boundary
	// line, nor can it be data: the body is refused.
	res := readAll(t, newReader(t, buildBody(dicomPart("a\r\n--B  x")), Limits{}), false)
	wantError(t, res.end, ErrMalformed, http.StatusBadRequest)
}

func TestPreamblePaddingEpilogue(t *testing.T) {
	t.Parallel()
	body := "This is a preamble.\r\n--B \t \r\nContent-Type: application/dicom\r\n\r\none\r\n--B\r\n" +
		"Content-Type: application/dicom\r\nX-Folded: a\r\n  b\r\n\r\ntwo\r\n--B-- \r\nepilogue, never read"
	pr := newReader(t, body, Limits{})
	res := readAll(t, pr, false)
	if res.end != io.EOF || len(res.bodies) != 2 || string(res.bodies[0]) != "one" || string(res.bodies[1]) != "two" {
		t.Fatalf("got %q, end %v", res.bodies, res.end)
	}
	pr = newReader(t, body, Limits{})
	pr.Next()
	p, _ := pr.Next()
	if got := p.Header.Get("X-Folded"); got != "a b" {
		t.Errorf("folded header %q", got)
	}
	// A preamble that never ends is refused once past its bound.
	res = readAll(t, newReader(t, strings.Repeat("x", maxPreambleBytes+readBufferSize*2)+buildBody(dicomPart("a")), Limits{}), false)
	wantError(t, res.end, ErrMalformed, http.StatusBadRequest)
}

func TestHeaderLimits(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"too long":     buildBody(rawPart{"Content-Type: application/dicom\r\nX-Big: " + strings.Repeat("a", 200) + "\r\n", "x"}),
		"bare LF":      "--B\r\nContent-Type: application/dicom\n\r\nx\r\n--B--",
		"no colon":     buildBody(rawPart{"Content-Type application/dicom\r\n", "x"}),
		"bad name":     buildBody(rawPart{"Content Type: application/dicom\r\n", "x"}),
		"control":      buildBody(rawPart{"Content-Type: application/dicom\x00\r\n", "x"}),
		"continuation": buildBody(rawPart{" folded: first\r\n", "x"}),
		"too many":     buildBody(rawPart{strings.Repeat("X: y\r\n", maxHeaderLines+1), "x"}),
	}
	for name, body := range tests {
		res := readAll(t, newReader(t, body, Limits{MaxHeaderBytes: 150}), false)
		if !errors.Is(res.end, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, res.end)
		}
	}
}

func TestTooManyParts(t *testing.T) {
	t.Parallel()
	pr := newReader(t, buildBody(dicomPart("1"), dicomPart("2"), dicomPart("3")), Limits{MaxParts: 2})
	res := readAll(t, pr, false)
	wantError(t, res.end, ErrTooManyParts, http.StatusRequestEntityTooLarge)
	if len(res.bodies) != 2 {
		t.Errorf("read %d parts before refusing", len(res.bodies))
	}
	if _, err := pr.Next(); !errors.Is(err, ErrTooManyParts) {
		t.Errorf("not sticky: %v", err)
	}
	// Exactly MaxParts is fine.
	res = readAll(t, newReader(t, buildBody(dicomPart("1"), dicomPart("2")), Limits{MaxParts: 2}), false)
	if res.end != io.EOF {
		t.Errorf("two parts with MaxParts 2: %v", res.end)
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	body := buildBody(dicomPart("hello"), dicomPart("world"))
	res := readAll(t, newReader(t, body, Limits{MaxBodyBytes: int64(len(body))}), false)
	if res.end != io.EOF {
		t.Errorf("body of exactly the limit: %v", res.end)
	}
	res = readAll(t, newReader(t, body+"epilogue", Limits{MaxBodyBytes: int64(len(body))}), false)
	if res.end != io.EOF {
		t.Errorf("epilogue past the limit is never read, yet: %v", res.end)
	}
	res = readAll(t, newReader(t, body, Limits{MaxBodyBytes: int64(len(body) - 10)}), false)
	wantError(t, res.end, ErrBodyTooLarge, http.StatusRequestEntityTooLarge)
}

type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestBodyReadError(t *testing.T) {
	t.Parallel()
	cause := errors.New("connection reset")
	body := buildBody(dicomPart(strings.Repeat("z", 1000)))
	pr, _ := NewPartReader(testCT, &failingReader{data: []byte(body[:500]), err: cause}, Limits{})
	res := readAll(t, pr, false)
	wantError(t, res.end, ErrBodyRead, http.StatusBadRequest)
	if !errors.Is(res.end, cause) {
		t.Errorf("cause not wrapped: %v", res.end)
	}
}

func TestReadAfterNext(t *testing.T) {
	t.Parallel()
	pr := newReader(t, buildBody(dicomPart("first part"), dicomPart("second")), Limits{})
	p1, _ := pr.Next()
	buf := make([]byte, 3)
	if n, err := p1.Read(buf); n != 3 || err != nil {
		t.Fatalf("Read: %d, %v", n, err)
	}
	p2, err := pr.Next() // skips the rest of the first part
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p1.Read(buf); err == nil {
		t.Error("read of a part after Next succeeded")
	}
	got, err := io.ReadAll(p2)
	if err != nil || string(got) != "second" {
		t.Errorf("second part %q, %v", got, err)
	}
	if n, err := p2.Read(nil); n != 0 || err != nil {
		t.Errorf("empty read: %d, %v", n, err)
	}
}

// readFromRecorder notes whether io.Copy reached its ReadFrom.
type readFromRecorder struct {
	bytes.Buffer
	readFrom int
}

func (r *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	r.readFrom++
	return r.Buffer.ReadFrom(src)
}

func TestPartWriter(t *testing.T) {
	t.Parallel()
	var out readFromRecorder
	pw := NewPartWriter(&out, "")
	ct := pw.ContentType()
	if want := `multipart/related; type="application/dicom"; boundary=` + pw.Boundary(); ct != want {
		t.Errorf("ContentType %q, want %q", ct, want)
	}
	if !validBoundary(pw.Boundary()) || len(pw.Boundary()) < 20 || len(pw.Boundary()) > 70 {
		t.Errorf("boundary %q", pw.Boundary())
	}
	if other := NewPartWriter(io.Discard, "").Boundary(); other == pw.Boundary() {
		t.Error("two writers share a boundary")
	}
	w, err := pw.CreatePart(map[string]string{"content-location": "/a", "X-B": "2", "Content-Length": "5"})
	if err != nil {
		t.Fatal(err)
	}
	if w != io.Writer(&out) {
		t.Fatal("CreatePart did not return the underlying writer")
	}
	if _, err := io.Copy(w, struct{ io.Reader }{strings.NewReader("hello")}); err != nil {
		t.Fatal(err)
	}
	if out.readFrom != 1 {
		t.Errorf("io.Copy reached ReadFrom %d times, want 1", out.readFrom)
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	want := "--" + pw.Boundary() + "\r\nContent-Type: application/dicom\r\nContent-Length: 5\r\nContent-Location: /a\r\nX-B: 2\r\n\r\nhello\r\n--" + pw.Boundary() + "--\r\n"
	if out.String() != want {
		t.Errorf("got\n%q\nwant\n%q", out.String(), want)
	}
	if _, err := pw.CreatePart(nil); err == nil {
		t.Error("CreatePart after Close succeeded")
	}
	if err := pw.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	// No header injection.
	pw = NewPartWriter(io.Discard, "application/dicom")
	for _, h := range []map[string]string{
		{"Content-Location": "/a\r\nX-Evil: 1"},
		{"Bad Name": "x"},
		{"X": "a\x00"},
		{"x-a": "1", "X-A": "2"},
	} {
		if _, err := pw.CreatePart(h); err == nil {
			t.Errorf("headers %q accepted", h)
		}
	}

	// No part: just the close delimiter.
	var empty bytes.Buffer
	pw = NewPartWriter(&empty, "application/octet-stream")
	pw.Close()
	if empty.String() != "--"+pw.Boundary()+"--\r\n" {
		t.Errorf("empty body %q", empty.String())
	}
	if !strings.Contains(pw.ContentType(), `type="application/octet-stream"`) {
		t.Errorf("ContentType %q", pw.ContentType())
	}

	defer func() {
		if recover() == nil {
			t.Error("invalid part type did not panic")
		}
	}()
	NewPartWriter(io.Discard, `application/dicom"; evil=1`)
}

type errWriter struct{ n int }

func (e *errWriter) Write(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, errors.New("disk full")
	}
	e.n--
	return len(p), nil
}

func TestPartWriterErrors(t *testing.T) {
	t.Parallel()
	pw := NewPartWriter(&errWriter{n: 0}, "")
	if _, err := pw.CreatePart(nil); err == nil {
		t.Error("header write error lost")
	}
	if err := pw.Close(); err == nil {
		t.Error("error not sticky")
	}
	// WriteTo reports the destination's error.
	pr := newReader(t, buildBody(dicomPart("data")), Limits{})
	p, _ := pr.Next()
	if _, err := p.WriteTo(&errWriter{n: 0}); err == nil || err.Error() != "disk full" {
		t.Errorf("WriteTo: %v", err)
	}
}

// stuckReader returns its data, then nothing and no error, forever.
type stuckReader struct{ data []byte }

func (s *stuckReader) Read(p []byte) (int, error) {
	n := copy(p, s.data)
	s.data = s.data[n:]
	return n, nil
}

func TestStuckBody(t *testing.T) {
	t.Parallel()
	body := buildBody(dicomPart("hello"))
	for _, lim := range []int64{int64(len(body)), 1 << 20} {
		pr, _ := NewPartReader(testCT, &stuckReader{data: []byte(body[:30])}, Limits{MaxBodyBytes: lim})
		res := readAll(t, pr, false)
		wantError(t, res.end, ErrBodyRead, http.StatusBadRequest)
		if !errors.Is(res.end, io.ErrNoProgress) {
			t.Errorf("limit %d: %v", lim, res.end)
		}
	}
}

// TestPartReaderRelease: a released reader empties its buffer, reports the
// end of the body and refuses reads of its current part, and readers made
// after it (which may get the same buffer from the pool) see only their
// own bodies.
func TestPartReaderRelease(t *testing.T) {
	t.Parallel()
	first := strings.Repeat("a", 3*readBufferSize) // more than one scan window
	pr, err := NewPartReader(testCT, strings.NewReader(buildBody(dicomPart(first), dicomPart("second"))), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pr.Next()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if n, err := p.Read(buf); err != nil || n == 0 {
		t.Fatalf("read before Release: %d, %v", n, err)
	}
	br := pr.br
	if br.Buffered() == 0 {
		t.Fatal("nothing buffered before Release: the test cannot see the buffer emptied")
	}
	pr.Release()
	pr.Release() // a second call does nothing
	if n := br.Buffered(); n != 0 {
		t.Errorf("the released buffer still holds %d bytes of the body", n)
	}
	if n, err := p.Read(buf); err == nil {
		t.Errorf("read of the current part after Release: %d bytes, no error", n)
	}
	if p2, err := pr.Next(); err != io.EOF {
		t.Errorf("Next after Release: %v, %v; want io.EOF", p2, err)
	}

	for i := range 3 {
		want := []string{fmt.Sprintf("body %d", i), strings.Repeat("z", readBufferSize+i)}
		pr, err := NewPartReader(testCT, strings.NewReader(buildBody(dicomPart(want[0]), dicomPart(want[1]))), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		res := readAll(t, pr, i%2 == 0)
		pr.Release()
		if res.end != io.EOF || len(res.bodies) != 2 {
			t.Fatalf("reader %d: %d parts, end %v", i, len(res.bodies), res.end)
		}
		for k := range want {
			if string(res.bodies[k]) != want[k] {
				t.Errorf("reader %d, part %d: %d bytes, want %d (%q...)", i, k, len(res.bodies[k]), len(want[k]), res.bodies[k][:min(10, len(res.bodies[k]))])
			}
		}
	}
}

// A body whose boundary is longer than RFC 2046's 70 characters, as
// Orthanc's DICOMweb client sends it, reads part by part.
func TestLongBoundaryBody(t *testing.T) {
	t.Parallel()
	b := strings.Repeat("orthanc-", 10)[:73]
	body := "--" + b + "\r\nContent-Type: application/dicom\r\n\r\nfirst\r\n--" + b + "\r\nContent-Type: application/dicom\r\n\r\nsecond\r\n--" + b + "--\r\n"
	r, err := NewPartReader(`multipart/related; type="application/dicom"; boundary=`+b, strings.NewReader(body), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(data))
	}
	if strings.Join(got, ",") != "first,second" {
		t.Fatalf("parts %q", got)
	}
}
