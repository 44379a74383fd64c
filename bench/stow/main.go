// Command stow is a DICOMweb STOW-RS load client. It sends every .dcm file
// under a folder to a STOW-RS endpoint (PS3.18 10.5), as a PACS or a
// modality would: the files of one study go together, up to -batch
// instances per multipart/related request, with -workers requests in
// flight at once. Requests go to the endpoint given (the studies resource,
// without a study UID), over plain HTTP/1.1, each worker on one kept-alive
// connection. Files go from disk to the socket with sendfile(2), so the
// client takes little of the CPU the server under test shares with it;
// the corpus is never held in memory.
//
//	go run ./bench/stow -url http://127.0.0.1:8042/dicom-web/studies -dir DIR
//	go run ./bench/stow -url http://127.0.0.1:8080/dicom-web/ds/studies -token TOKEN -dir DIR -json
//
// Each response is checked: the body of a 200 (all stored), 202 (some
// stored, some not) or 409 (none stored) is read as DICOM JSON, and the
// instances listed in its Referenced SOP Sequence (0008,1199) are counted
// as stored, those in its Failed SOP Sequence (0008,1198) as failed, with
// their Failure Reason (0008,1197). An instance sent but listed in neither
// is counted as failed. A 200 without a readable body counts all its
// instances as stored (and is reported as unchecked); another 4xx with
// such a body is counted the same way (Orthanc answers 400 when one part
// of a request is not DICOM). Any other status, or a transport error, is
// a failed request.
//
// It prints the instances offered, stored and failed, the bytes sent (the
// sizes of the files, without the multipart framing), the wall time from
// the first request to the last response, the rates, and the median and
// 95th percentile of the request latency. The exit status is 0 when every
// instance was stored, 1 when the server failed some instances and every
// request was answered, and 2 when a request failed (or on a usage error).
// bench/ingest.sh runs it against Orthanc and a Mosaic node.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	neturl "net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

// Tags of the STOW-RS response (PS3.18 table 10.5.3-1) and of the headers
// read to group the files.
const (
	tagStudyInstanceUID      = "0020000D"
	tagFailedSOPSequence     = "00081198"
	tagReferencedSOPSequence = "00081199"
	tagReferencedSOPInstance = "00081155"
	tagFailureReason         = "00081197"
	tagWarningReason         = "00081196"
)

var studyUIDTag = dicom.NewTag(0x0020, 0x000D)

// instance is one file to send.
type instance struct {
	path string
	size int64
	sop  string // SOP Instance UID, to name failures
}

// batch is one request: instances of a single study.
type batch struct {
	study string
	items []instance
}

// outcome is what one request achieved.
type outcome struct {
	sent, stored, failed int
	bytes                int64
	latency              time.Duration
	err                  error          // the request failed as a whole
	reasons              map[string]int // failed instances by reason
	failures             []string       // failed instances, named
	warnings             int            // stored instances with a warning
	unchecked            bool           // 200 without a readable body
}

// summary is the -json output and the source of the text output.
type summary struct {
	URL               string         `json:"url"`
	Workers           int            `json:"workers"`
	Batch             int            `json:"batch"`
	Studies           int            `json:"studies"`
	Requests          int            `json:"requests"`
	FailedRequests    int            `json:"failed_requests"`
	Offered           int            `json:"instances_offered"`
	Stored            int            `json:"instances_stored"`
	Failed            int            `json:"instances_failed"`
	Unanswered        int            `json:"instances_in_failed_requests"`
	Warnings          int            `json:"instances_with_warning"`
	Unchecked         int            `json:"requests_unchecked"`
	Bytes             int64          `json:"bytes"`
	WallSeconds       float64        `json:"wall_seconds"`
	InstancesPerSec   float64        `json:"instances_per_second"`
	StoredPerSec      float64        `json:"stored_per_second"`
	MBPerSec          float64        `json:"mb_per_second"`
	LatencyP50Seconds float64        `json:"latency_p50_seconds"`
	LatencyP95Seconds float64        `json:"latency_p95_seconds"`
	FailureReasons    map[string]int `json:"failure_reasons,omitempty"`
	Errors            []string       `json:"errors,omitempty"`
}

func main() {
	url := flag.String("url", "", "STOW-RS endpoint, the studies resource (for example http://127.0.0.1:8042/dicom-web/studies)")
	token := flag.String("token", "", "bearer token sent in the Authorization header (none when empty)")
	dir := flag.String("dir", "", "folder of .dcm files, walked recursively in sorted order")
	size := flag.Int("batch", 16, "instances per request at most (the files of one study go together)")
	workers := flag.Int("workers", 4, "requests in flight at once")
	asJSON := flag.Bool("json", false, "print the summary as JSON")
	timeout := flag.Duration("timeout", 10*time.Minute, "time limit of one request, body included")
	flag.Parse()
	if *url == "" || *dir == "" || *size < 1 || *workers < 1 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: stow -url URL -dir DIR [-token T] [-batch N] [-workers N] [-json]")
		os.Exit(2)
	}

	batches, studies, err := plan(*dir, *size)
	if err != nil {
		fmt.Fprintln(os.Stderr, "stow:", err)
		os.Exit(2)
	}
	if len(batches) == 0 {
		fmt.Fprintf(os.Stderr, "stow: no .dcm files under %s\n", *dir)
		os.Exit(2)
	}

	if _, err := newConn(*url, *token, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "stow:", err)
		os.Exit(2)
	}
	work := make(chan batch)
	results := make(chan outcome, len(batches))
	var wg sync.WaitGroup
	start := time.Now()
	for range *workers {
		wg.Go(func() {
			c, _ := newConn(*url, *token, *timeout) // checked above
			defer c.close()
			for b := range work {
				results <- send(c, b)
			}
		})
	}
	for _, b := range batches {
		work <- b
	}
	close(work)
	wg.Wait()
	wall := time.Since(start)
	close(results)

	s := summary{URL: *url, Workers: *workers, Batch: *size, Studies: studies,
		Requests: len(batches), FailureReasons: map[string]int{}}
	var lat []time.Duration
	var named []string
	for r := range results {
		s.Offered += r.sent
		s.Stored += r.stored
		s.Failed += r.failed
		s.Bytes += r.bytes
		s.Warnings += r.warnings
		if r.unchecked {
			s.Unchecked++
		}
		lat = append(lat, r.latency)
		if r.err != nil {
			s.FailedRequests++
			s.Unanswered += r.sent - r.stored - r.failed
			s.Errors = append(s.Errors, r.err.Error())
		}
		for k, v := range r.reasons {
			s.FailureReasons[k] += v
		}
		named = append(named, r.failures...)
	}
	sec := wall.Seconds()
	s.WallSeconds = sec
	s.InstancesPerSec = float64(s.Offered) / sec
	s.StoredPerSec = float64(s.Stored) / sec
	s.MBPerSec = float64(s.Bytes) / sec / 1e6
	slices.Sort(lat)
	s.LatencyP50Seconds = percentile(lat, 50).Seconds()
	s.LatencyP95Seconds = percentile(lat, 95).Seconds()
	sort.Strings(s.Errors)
	sort.Strings(named)

	if *asJSON {
		out, _ := json.MarshalIndent(s, "", "  ")
		fmt.Println(string(out))
	} else {
		printText(os.Stdout, s)
	}
	// The reasons go to standard error in either case, a few of each kind.
	for i, e := range s.Errors {
		if i == 5 {
			fmt.Fprintf(os.Stderr, "stow: ... and %d more failed requests\n", len(s.Errors)-i)
			break
		}
		fmt.Fprintln(os.Stderr, "stow: request failed:", e)
	}
	for i, n := range named {
		if i == 10 {
			fmt.Fprintf(os.Stderr, "stow: ... and %d more failed instances\n", len(named)-i)
			break
		}
		fmt.Fprintln(os.Stderr, "stow: instance failed:", n)
	}
	switch {
	case s.FailedRequests > 0:
		os.Exit(2)
	case s.Failed > 0:
		os.Exit(1)
	}
}

func printText(w io.Writer, s summary) {
	fmt.Fprintf(w, "stow: %d instances (%d studies) in %d requests (up to %d per request, %d workers) to %s\n",
		s.Offered, s.Studies, s.Requests, s.Batch, s.Workers, s.URL)
	fmt.Fprintf(w, "  sent      %d instances, %.1f MB\n", s.Offered, float64(s.Bytes)/1e6)
	fmt.Fprintf(w, "  stored    %d\n", s.Stored)
	fmt.Fprintf(w, "  failed    %d", s.Failed)
	if len(s.FailureReasons) > 0 {
		var parts []string
		for _, k := range slices.Sorted(mapKeys(s.FailureReasons)) {
			parts = append(parts, fmt.Sprintf("%s: %d", k, s.FailureReasons[k]))
		}
		fmt.Fprintf(w, " (%s)", strings.Join(parts, "; "))
	}
	fmt.Fprintln(w)
	if s.FailedRequests > 0 {
		fmt.Fprintf(w, "  requests  %d of %d failed, with %d instances\n", s.FailedRequests, s.Requests, s.Unanswered)
	}
	if s.Warnings > 0 {
		fmt.Fprintf(w, "  warnings  %d stored instances came back with a warning\n", s.Warnings)
	}
	if s.Unchecked > 0 {
		fmt.Fprintf(w, "  unchecked %d requests answered 200 without a readable DICOM JSON body (counted as stored)\n", s.Unchecked)
	}
	fmt.Fprintf(w, "  wall      %.3f s\n", s.WallSeconds)
	fmt.Fprintf(w, "  rate      %.1f instances/s offered, %.1f stored/s, %.1f MB/s\n",
		s.InstancesPerSec, s.StoredPerSec, s.MBPerSec)
	fmt.Fprintf(w, "  latency   p50 %.3f s, p95 %.3f s per request\n", s.LatencyP50Seconds, s.LatencyP95Seconds)
}

func mapKeys(m map[string]int) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// percentile returns the p-th percentile of sorted durations, by nearest
// rank.
func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := (len(d)*p + 99) / 100
	return d[max(i-1, 0)]
}

// plan walks dir, reads the header of every .dcm file for its study and
// SOP Instance UIDs, and cuts each study into batches of at most size
// instances. Studies are sent in the order of their first file; a file
// whose header cannot be read forms a study of its own, so that the
// server's answer to it is measured too.
func plan(dir string, size int) ([]batch, int, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.EqualFold(filepath.Ext(p), ".dcm") {
			paths = append(paths, p)
		}
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	sort.Strings(paths)
	var order []string
	byStudy := map[string][]instance{}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, 0, err
		}
		in := instance{path: p, size: fi.Size()}
		study := "unreadable:" + p
		if f, err := dicom.ReadFile(p, dicom.ReadOptions{StopAtPixelData: true}); err != nil {
			fmt.Fprintf(os.Stderr, "stow: %s: %v (sent alone)\n", p, err)
		} else {
			in.sop = f.Dataset.UID(dicom.TagSOPInstanceUID)
			if uid := f.Dataset.UID(studyUIDTag); uid != "" {
				study = uid
			}
		}
		if _, ok := byStudy[study]; !ok {
			order = append(order, study)
		}
		byStudy[study] = append(byStudy[study], in)
	}
	var out []batch
	for _, st := range order {
		for c := range slices.Chunk(byStudy[st], size) {
			out = append(out, batch{study: st, items: c})
		}
	}
	return out, len(order), nil
}

const partType = "application/dicom"

// conn is one worker's kept-alive HTTP/1.1 connection to the server. The
// requests are written by hand rather than by net/http's client so that
// each file goes from the page cache to the socket with sendfile(2): the
// load client then costs the machine little CPU, which both servers
// measured share with it.
type conn struct {
	addr    string // host:port to dial
	host    string // Host header
	target  string // request target: path and query
	token   string
	timeout time.Duration
	c       net.Conn
	br      *bufio.Reader
	head    bytes.Buffer // request head and multipart framing, written before each file
}

// newConn checks the endpoint URL (http only) and returns an unconnected
// conn; it dials on first use and again after the server closes.
func newConn(raw, token string, timeout time.Duration) (*conn, error) {
	u, err := neturl.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("%s: only http://HOST[:PORT]/PATH URLs are supported", raw)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return &conn{addr: addr, host: u.Host, target: u.RequestURI(), token: token, timeout: timeout}, nil
}

func (c *conn) close() {
	if c.c != nil {
		c.c.Close()
		c.c, c.br = nil, nil
	}
}

// post sends one STOW-RS request for b and returns the status and body of
// the answer. A connection the server closes, or one that fails, is
// dropped; the next request dials again. A kept-alive connection the
// server closed while it was idle fails before any answer: the request is
// then sent once more on a new connection, as an HTTP client does.
func (c *conn) post(b batch) (status int, statusText string, body []byte, err error) {
	reused := c.c != nil
	status, statusText, body, stale, err := c.try(b)
	if stale && reused {
		status, statusText, body, _, err = c.try(b)
	}
	return status, statusText, body, err
}

// try is one attempt of post. stale reports a connection that failed
// before the server answered anything, with EOF or a reset.
func (c *conn) try(b batch) (status int, statusText string, body []byte, stale bool, err error) {
	if c.c == nil {
		nc, err := net.DialTimeout("tcp", c.addr, c.timeout)
		if err != nil {
			return 0, "", nil, false, err
		}
		c.c, c.br = nc, bufio.NewReaderSize(nc, 64<<10)
	}
	if err := c.c.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		c.close()
		return 0, "", nil, false, err
	}
	c.head.Reset()
	mw := multipart.NewWriter(&c.head)
	length, err := bodyLength(b, mw.Boundary())
	if err != nil {
		return 0, "", nil, false, err
	}
	fmt.Fprintf(&c.head, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: multipart/related; type=\"%s\"; boundary=%s\r\nContent-Length: %d\r\nAccept: application/dicom+json\r\n",
		c.target, c.host, partType, mw.Boundary(), length)
	if c.token != "" {
		fmt.Fprintf(&c.head, "Authorization: Bearer %s\r\n", c.token)
	}
	c.head.WriteString("\r\n")
	local, werr := c.writeBody(mw, b)
	if local {
		// A file could not be read: the body cannot be completed, and
		// the server would wait for the rest of it.
		c.close()
		return 0, "", nil, false, werr
	}
	// The server may answer before reading the whole body (a refusal):
	// its answer is read even after a failed write.
	resp, rerr := http.ReadResponse(c.br, nil)
	if rerr != nil {
		c.close()
		gone := func(err error) bool {
			return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
				errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
		}
		stale = gone(rerr) && (werr == nil || gone(werr))
		if werr != nil {
			return 0, "", nil, stale, werr
		}
		return 0, "", nil, stale, fmt.Errorf("reading the response: %w", rerr)
	}
	body, rerr = io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	resp.Body.Close()
	if rerr != nil || werr != nil || resp.Close {
		c.close()
	}
	if rerr != nil {
		return 0, "", nil, false, fmt.Errorf("reading the response: %w", rerr)
	}
	return resp.StatusCode, resp.Status, body, false, nil
}

// writeBody writes the request head (already in c.head) and the multipart
// body of b: the framing from c.head, each file by sendfile. local reports
// an error of this side (a file that cannot be opened or has changed)
// rather than of the connection.
func (c *conn) writeBody(mw *multipart.Writer, b batch) (local bool, err error) {
	for _, in := range b.items {
		if _, err := mw.CreatePart(partHeader()); err != nil {
			return true, err
		}
		if _, err := c.c.Write(c.head.Bytes()); err != nil {
			return false, err
		}
		c.head.Reset()
		f, err := os.Open(in.path)
		if err != nil {
			return true, err
		}
		// net.TCPConn's ReadFrom uses sendfile(2) for a file, also inside
		// an io.LimitedReader.
		n, err := io.Copy(c.c, io.LimitReader(f, in.size))
		f.Close()
		if err != nil {
			return false, err
		}
		if n != in.size {
			return true, fmt.Errorf("%s: %d bytes read, %d expected (file changed)", in.path, n, in.size)
		}
	}
	if err := mw.Close(); err != nil {
		return true, err
	}
	_, err = c.c.Write(c.head.Bytes())
	return false, err
}

func partHeader() textproto.MIMEHeader {
	return textproto.MIMEHeader{"Content-Type": {partType}}
}

// bodyLength is the exact length of the multipart body for b with the
// given boundary: the framing does not depend on the content, so it is
// written once with empty parts and the file sizes are added.
func bodyLength(b batch, boundary string) (int64, error) {
	var c countWriter
	mw := multipart.NewWriter(&c)
	if err := mw.SetBoundary(boundary); err != nil {
		return 0, err
	}
	for _, in := range b.items {
		if _, err := mw.CreatePart(partHeader()); err != nil {
			return 0, err
		}
		c.n += in.size
	}
	if err := mw.Close(); err != nil {
		return 0, err
	}
	return c.n, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// send posts one batch on c and reads the server's answer.
func send(c *conn, b batch) outcome {
	r := outcome{sent: len(b.items)}
	for _, in := range b.items {
		r.bytes += in.size
	}
	fail := func(err error) outcome {
		r.err = fmt.Errorf("study %s, %d instances from %s: %w", b.study, len(b.items), b.items[0].path, err)
		return r
	}
	t0 := time.Now()
	status, statusText, body, err := c.post(b)
	r.latency = time.Since(t0)
	if err != nil {
		return fail(err)
	}
	// 200, 202 and 409 are the statuses of STOW-RS. Servers also answer
	// 400 for a request some of whose instances could not be parsed (the
	// Orthanc DICOMweb plugin 1.7 does so even when it stored the others),
	// with the sequences in the body: any 4xx with a readable answer is
	// counted instance by instance, anything else is a failed request.
	refs, failed, perr := parseResponse(body)
	readable := perr == nil && (refs != nil || failed != nil)
	switch {
	case status == http.StatusOK && !readable:
		// The status says all were stored; the body cannot confirm it.
		r.stored = r.sent
		r.unchecked = true
		return r
	case status == http.StatusOK || status == http.StatusAccepted || status == http.StatusConflict:
		if !readable {
			if perr == nil {
				perr = errors.New("no Referenced or Failed SOP Sequence")
			}
			return fail(fmt.Errorf("HTTP %s with an unreadable body (%v): %s", statusText, perr, snippet(body)))
		}
	case status >= 400 && status < 500 && readable:
	default:
		return fail(fmt.Errorf("HTTP %s: %s", statusText, snippet(body)))
	}

	sent := map[string]string{}
	for _, in := range b.items {
		sent[in.sop] = in.path
	}
	seen := map[string]bool{}
	r.reasons = map[string]int{}
	for _, it := range refs {
		uid := itemString(it, tagReferencedSOPInstance)
		if _, ok := sent[uid]; ok && seen[uid] {
			continue
		}
		seen[uid] = true
		r.stored++
		if _, ok := it[tagWarningReason]; ok {
			r.warnings++
		}
	}
	for _, it := range failed {
		uid := itemString(it, tagReferencedSOPInstance)
		if _, ok := sent[uid]; ok && seen[uid] {
			continue
		}
		seen[uid] = true
		reason := failureReason(it)
		r.failed++
		r.reasons[reason]++
		name := sent[uid]
		if name == "" {
			name = "SOP Instance " + uid
		}
		r.failures = append(r.failures, fmt.Sprintf("%s: %s", name, reason))
	}
	// Instances the server did not account for count as failed.
	if missing := r.sent - r.stored - r.failed; missing > 0 {
		r.failed += missing
		r.reasons[fmt.Sprintf("HTTP %s, not listed in the response", statusText)] += missing
		for _, in := range b.items {
			if !seen[in.sop] {
				r.failures = append(r.failures, in.path+": not in the response")
			}
		}
	}
	return r
}

// item is one item of a sequence in the DICOM JSON model.
type item map[string]json.RawMessage

// parseResponse reads the Referenced and Failed SOP Sequences of a STOW-RS
// response in the DICOM JSON model: one object, or an array holding one.
// Both results are nil when the body holds neither sequence.
func parseResponse(body []byte) (refs, failed []item, err error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, nil, errors.New("empty body")
	}
	var top item
	if body[0] == '[' {
		var arr []item
		if err := json.Unmarshal(body, &arr); err != nil {
			return nil, nil, err
		}
		if len(arr) != 1 {
			return nil, nil, fmt.Errorf("%d datasets in the response, 1 expected", len(arr))
		}
		top = arr[0]
	} else if err := json.Unmarshal(body, &top); err != nil {
		return nil, nil, err
	}
	if refs, err = sequence(top, tagReferencedSOPSequence); err != nil {
		return nil, nil, err
	}
	if failed, err = sequence(top, tagFailedSOPSequence); err != nil {
		return nil, nil, err
	}
	return refs, failed, nil
}

// attr is one attribute in the DICOM JSON model.
type attr struct {
	VR    string            `json:"vr"`
	Value []json.RawMessage `json:"Value"`
}

func sequence(ds item, tag string) ([]item, error) {
	raw, ok := ds[tag]
	if !ok {
		return nil, nil
	}
	var a attr
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("(%s,%s): %w", tag[:4], tag[4:], err)
	}
	out := []item{}
	for _, v := range a.Value {
		var it item
		if err := json.Unmarshal(v, &it); err != nil {
			return nil, fmt.Errorf("(%s,%s) item: %w", tag[:4], tag[4:], err)
		}
		out = append(out, it)
	}
	return out, nil
}

// itemString returns the first string value of tag in it, or "".
func itemString(it item, tag string) string {
	var a attr
	if raw, ok := it[tag]; !ok || json.Unmarshal(raw, &a) != nil || len(a.Value) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(a.Value[0], &s) != nil {
		return ""
	}
	return s
}

// failureReason names the Failure Reason (0008,1197) of a failed item
// (PS3.18 table 10.5.3-2 and PS3.4 annex B.2.3).
func failureReason(it item) string {
	var a attr
	raw, ok := it[tagFailureReason]
	if !ok || json.Unmarshal(raw, &a) != nil || len(a.Value) == 0 {
		return "no failure reason given"
	}
	var code uint16
	if err := json.Unmarshal(a.Value[0], &code); err != nil {
		return "failure reason " + string(a.Value[0])
	}
	name := map[uint16]string{
		0x0110: "processing failure",
		0x0122: "SOP class not supported",
		0x0124: "refused: not authorized",
		0x0211: "unrecognized operation",
		0x0212: "mistyped argument",
		0xA700: "out of resources",
		0xA900: "dataset does not match SOP class",
		0xB000: "coercion of data elements",
		0xB006: "elements discarded",
		0xB007: "dataset does not match SOP class (warning)",
		0xC000: "cannot understand",
		0xC122: "referenced transfer syntax not supported",
	}[code]
	if name == "" {
		return fmt.Sprintf("0x%04X", code)
	}
	return fmt.Sprintf("0x%04X %s", code, name)
}

func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	if s == "" {
		s = "(empty body)"
	}
	return s
}
