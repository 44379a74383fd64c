package node

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/disclosure"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/lens"
	"github.com/mosaic-imaging/mosaic/internal/permit"
)

// Cohort snapshots at the node (docs/access.md): when a dataset is made
// available under an access request, the hub asks its node to freeze the
// studies the request's query selects there; permits then name that
// snapshot, and SnapshotHandler serves DICOMweb over it alone.

// Errors of MakeSnapshot and SnapshotHandler, for errors.Is.
var (
	// ErrNoSnapshot: the node holds no snapshot of that id for that
	// dataset.
	ErrNoSnapshot = errors.New("node: no such snapshot here")
	// ErrSnapshotRequest: the snapshot task or the permit names no valid
	// snapshot, dataset or query, or the root URL is not one.
	ErrSnapshotRequest = errors.New("node: bad snapshot request")
)

// MakeSnapshot freezes the studies body.Query selects in body.Dataset
// under the hub's id body.Snapshot and answers with their counts under
// the node's disclosure control (snapshotFigures) and, when the subjects
// count is not withheld, a keyed digest of the member list
// (SnapshotDigest); never the members. A snapshot that exists is
// answered as it was made, whatever the query says now. The answer's
// Node and TaskID are the caller's to fill in. Errors wrap
// ErrSnapshotRequest (bad input) or index.ErrNotFound (no such dataset),
// or are the index's.
func (n *Node) MakeSnapshot(ctx context.Context, body fed.SnapshotBody) (fed.SnapshotAnswer, error) {
	floor := n.ctl.Policy().Floor
	ans := fed.SnapshotAnswer{Snapshot: body.Snapshot, Dataset: body.Dataset, Floor: floor}
	if !index.ValidSnapshotID(body.Snapshot) || len(body.Request) > 128 {
		return ans, fmt.Errorf("%w: snapshot or request id", ErrSnapshotRequest)
	}
	if !index.ValidDatasetID(body.Dataset) {
		return ans, fmt.Errorf("%w: no such dataset", index.ErrNotFound)
	}
	q, err := lens.Parse(body.Query)
	if err != nil {
		return ans, fmt.Errorf("%w: query: %v", ErrSnapshotRequest, err)
	}
	if _, err := n.ix.Dataset(ctx, body.Dataset); err != nil {
		return ans, err
	}
	sn, _, err := n.ix.MakeSnapshot(ctx, index.Snapshot{ID: body.Snapshot, Dataset: body.Dataset, Request: body.Request}, q)
	if err != nil {
		if errors.Is(err, index.ErrInvalid) {
			return ans, fmt.Errorf("%w: %v", ErrSnapshotRequest, err)
		}
		return ans, err
	}
	f, err := n.snapshotFigures(ctx, sn)
	if err != nil {
		return ans, err
	}
	ans.Created = sn.Created
	ans.Subjects, ans.Studies = f.Subjects, f.Studies
	if ans.Subjects == 0 {
		// Studies per patient would tell something of a set too small
		// to count, and a digest would tell an empty set from a small
		// one (and let anyone holding a guess test it): neither leaves.
		ans.Studies = 0
		return ans, nil
	}
	ans.Digest = n.SnapshotDigest(sn)
	return ans, nil
}

// snapshotFigures draws the published counts of a snapshot as a search
// answer about the same set of patients would be drawn: through the
// node's disclosure control (floor, noise seeded by the keyed digest of
// the set, rounding, and the complement and overlap controls against
// the dataset and the sets answered before), so a snapshot count is
// never finer than a search answer. A snapshot is not a search: it is
// made on a representative's decision, not a researcher's question, so
// it is charged to no researcher's budget and not watched by the attack
// detector (the control's Request without a researcher). The set is the
// frozen member list, so the same snapshot gets the same figures
// whatever was ingested since (the figures depend on it alone, up to
// the complement control against the dataset as it is now).
func (n *Node) snapshotFigures(ctx context.Context, sn index.Snapshot) (disclosure.Figures, error) {
	members, err := n.ix.SnapshotStudies(ctx, sn.ID, sn.Dataset)
	if err != nil {
		return disclosure.Figures{}, err
	}
	byPatient := map[string]*disclosure.Subject{}
	matched := disclosure.NewTallySize(sn.Subjects)
	var order []*disclosure.Subject
	for _, m := range members {
		s := byPatient[m.Patient]
		if s == nil {
			s = &disclosure.Subject{Member: disclosure.MemberOf(sn.Dataset, m.Patient)}
			byPatient[m.Patient] = s
			order = append(order, s)
		}
		s.Studies++
	}
	for _, s := range order {
		matched.Add(s)
	}
	// The dataset's whole population, for the complement control.
	everyone, err := lens.Parse([]byte(`{"operand":"AND","children":[]}`))
	if err != nil {
		return disclosure.Figures{}, err
	}
	all, err := n.ix.FederatedSubjects(ctx, everyone)
	if err != nil {
		return disclosure.Figures{}, err
	}
	var pop *disclosure.Tally
	version := ""
	for _, d := range all {
		if d.Dataset == sn.Dataset {
			pop, version = tally(d.All), d.Version
		}
	}
	a, err := n.ctl.Answer(ctx, disclosure.Request{Dataset: sn.Dataset, Query: "snapshot", Version: version, Matched: matched, Population: pop})
	if err != nil {
		return disclosure.Figures{}, err
	}
	// The answered set is durable before its figures leave.
	if err := n.ctl.Flush(ctx); err != nil {
		return disclosure.Figures{}, err
	}
	return a.Figures, nil
}

// SnapshotDigest is the digest of a snapshot the node publishes: the
// HMAC-SHA-256 (hex), keyed by a secret derived from the site key, of
// the snapshot id, its dataset and the SHA-256 of its member list
// (sn.Digest, index.SnapshotDigest). Only the node can recompute it, so
// it commits to the members (the node can show later which members the
// snapshot held) without letting anyone test a guessed member list; and
// two snapshots of the same cohort get unrelated digests.
func (n *Node) SnapshotDigest(sn index.Snapshot) string {
	m := hmac.New(sha256.New, n.eng.SnapshotKey())
	for _, part := range []string{"mosaic-snapshot", sn.ID, sn.Dataset, sn.Digest} {
		m.Write([]byte(part))
		m.Write([]byte{0})
	}
	return hex.EncodeToString(m.Sum(nil))
}

// Snapshot returns a snapshot the node made, with its raw counts and
// the plain digest of its member list (for the node's operator; they
// must pass the disclosure control, and the digest be keyed, before
// leaving the node). index.ErrNotFound when there is none.
func (n *Node) Snapshot(ctx context.Context, id, dataset string) (index.Snapshot, error) {
	return n.ix.Snapshot(ctx, id, dataset)
}

// SnapshotHandler serves DICOMweb over the permit's snapshot (c.Snapshot
// of c.Dataset) at paths relative to "/": QIDO-RS (/studies, /series,
// /instances and those below a study or series), WADO-RS metadata,
// frames and bulk data for a permit that allows view, retrieval of whole
// objects and the snapshot's archive (/archive/manifest,
// /archive/objects/{instance}) for one that allows download. A study
// outside the snapshot does not exist for it. URLs in answers point
// below root (the permit's root on the hub), never at the node. It does
// not verify the permit: the caller did. ErrNoSnapshot when the node
// holds no such snapshot.
func (n *Node) SnapshotHandler(c permit.Claims, root string) (http.Handler, error) {
	if !index.ValidSnapshotID(c.Snapshot) || !index.ValidDatasetID(c.Dataset) {
		return nil, fmt.Errorf("%w: the permit's snapshot or dataset", ErrSnapshotRequest)
	}
	if !validRoot(root) {
		return nil, fmt.Errorf("%w: root %q is not an absolute http(s) URL ending in /", ErrSnapshotRequest, root)
	}
	ctx, cancel := n.dbContext(context.Background())
	_, err := n.ix.Snapshot(ctx, c.Snapshot, c.Dataset)
	cancel()
	if errors.Is(err, index.ErrNotFound) {
		return nil, fmt.Errorf("%w: snapshot %s of dataset %s", ErrNoSnapshot, c.Snapshot, c.Dataset)
	}
	if err != nil {
		return nil, err
	}
	sc := dwScope{dataset: c.Dataset, snapshot: c.Snapshot, root: root}
	mux := http.NewServeMux()
	route := func(pattern string, h http.HandlerFunc, op permit.Op) {
		mux.Handle(pattern, n.instrument("snapshot "+pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !c.Allows(op) {
				dwError(w, http.StatusForbidden, "the permit does not allow "+string(op))
				return
			}
			h(w, r.WithContext(context.WithValue(r.Context(), scopeKey, sc)))
		})))
	}
	view, download := permit.OpView, permit.OpDownload
	route("GET /studies", n.qido(index.StudyLevel), view)
	route("GET /series", n.qido(index.SeriesLevel), view)
	route("GET /instances", n.qido(index.InstanceLevel), view)
	route("GET /studies/{study}/series", n.qido(index.SeriesLevel), view)
	route("GET /studies/{study}/instances", n.qido(index.InstanceLevel), view)
	route("GET /studies/{study}/series/{series}/instances", n.qido(index.InstanceLevel), view)

	route("GET /studies/{study}/metadata", n.metadata, view)
	route("GET /studies/{study}/series/{series}/metadata", n.metadata, view)
	route("GET /studies/{study}/series/{series}/instances/{instance}/metadata", n.metadata, view)
	route("GET /studies/{study}/series/{series}/instances/{instance}/frames/{frames}", n.frames, view)
	route("GET /studies/{study}/series/{series}/instances/{instance}/bulk/{path...}", n.bulk, view)

	route("GET /studies/{study}", n.retrieve, download)
	route("GET /studies/{study}/series/{series}", n.retrieve, download)
	route("GET /studies/{study}/series/{series}/instances/{instance}", n.retrieve, download)
	route("GET /archive/manifest", n.archiveManifest, download)
	route("GET /archive/objects/{instance}", n.archiveObject, download)

	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		dwError(w, http.StatusNotFound, "no such resource")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if msg := pathTrick(r.URL); msg != "" {
			dwError(w, http.StatusBadRequest, msg)
			return
		}
		mux.ServeHTTP(w, r)
	}), nil
}

// validRoot reports whether root can stand for the permit's root in
// answers: an absolute http(s) URL ending in "/", of characters that need
// no escaping in JSON or headers.
func validRoot(root string) bool {
	if len(root) > 2048 || !strings.HasSuffix(root, "/") {
		return false
	}
	for i := 0; i < len(root); i++ {
		if c := root[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' {
			return false
		}
	}
	u, err := url.Parse(root)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.RawQuery == "" && u.Fragment == ""
}

// pathTrick returns why a request path is refused before routing, or "":
// dot segments and empty segments (which the router would clean into
// another path), encoded slashes and backslashes, and over-long paths.
func pathTrick(u *url.URL) string {
	if len(u.Path) > 1024 || len(u.RawPath) > 3072 {
		return "the path is too long"
	}
	if !strings.HasPrefix(u.Path, "/") {
		return "the path must start with /"
	}
	if raw := strings.ToLower(u.EscapedPath()); strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c") || strings.Contains(raw, "%00") {
		return "encoded slashes, backslashes and NULs are not allowed in the path"
	}
	segs := strings.Split(u.Path[1:], "/")
	for i, s := range segs {
		if s == "." || s == ".." || (s == "" && i < len(segs)-1) || strings.ContainsAny(s, "\\\x00") {
			return "dot, empty and backslash segments are not allowed in the path"
		}
	}
	return ""
}

// ArchiveManifest is the answer of /archive/manifest: every object of the
// snapshot, each with its size and the SHA-256 (hex) of exactly the bytes
// /archive/objects/{instance} serves, so that a download can be resumed
// object by object (and within an object, with HTTP Range) and checked.
type ArchiveManifest struct {
	Snapshot string          `json:"snapshot"`
	Dataset  string          `json:"dataset"`
	Objects  []ArchiveObject `json:"objects"`
}

// ArchiveObject is one object of an ArchiveManifest.
type ArchiveObject struct {
	Study    string `json:"study"`
	Series   string `json:"series"`
	Instance string `json:"instance"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
	URL      string `json:"url"`
}

func (n *Node) archiveManifest(w http.ResponseWriter, r *http.Request) {
	sc, _ := n.scope(w, r)
	ctx, cancel := n.dbContext(r.Context())
	list, err := n.ix.SnapshotInstances(ctx, sc.snapshot, sc.dataset, "", "", "")
	cancel()
	if err != nil && !errors.Is(err, index.ErrNotFound) {
		n.storeError(w, err)
		return
	}
	m := ArchiveManifest{Snapshot: sc.snapshot, Dataset: sc.dataset, Objects: make([]ArchiveObject, 0, len(list))}
	for _, in := range list {
		// Blobs are named by the SHA-256 of their bytes, and objects are
		// served as stored: the key is the checksum of what is served.
		m.Objects = append(m.Objects, ArchiveObject{Study: in.StudyUID, Series: in.SeriesUID, Instance: in.SOPUID,
			Size: in.Size, SHA256: in.BlobKey, URL: sc.root + "archive/objects/" + in.SOPUID})
	}
	writeJSON(w, http.StatusOK, m)
}

// archiveObject serves one object of the snapshot as stored, with HTTP
// Range and an ETag (its SHA-256), so that an interrupted download
// resumes where it stopped.
func (n *Node) archiveObject(w http.ResponseWriter, r *http.Request) {
	sc, _ := n.scope(w, r)
	uid := r.PathValue("instance")
	if !validUID(uid) {
		dwError(w, http.StatusBadRequest, "the instance in the path is not a valid UID")
		return
	}
	ctx, cancel := n.dbContext(r.Context())
	list, err := n.ix.SnapshotInstances(ctx, sc.snapshot, sc.dataset, "", "", uid)
	cancel()
	if err != nil {
		if errors.Is(err, index.ErrNotFound) {
			dwError(w, http.StatusNotFound, "no such instance in this snapshot")
		} else {
			n.storeError(w, err)
		}
		return
	}
	in := list[0]
	br, err := n.blobs.Open(r.Context(), blobRef(in.BlobKey, in.BlobLoc))
	if err != nil {
		n.log.Error("archive: object unreadable", "blob", in.BlobKey, "err", err)
		dwError(w, http.StatusInternalServerError, "the object cannot be read")
		return
	}
	defer br.Close()
	h := w.Header()
	h.Set("Content-Type", "application/dicom")
	h.Set("ETag", `"`+in.BlobKey+`"`)
	h.Set("Cache-Control", "private, no-transform")
	h.Set("Content-Disposition", `attachment; filename="`+in.SOPUID+`.dcm"`)
	http.ServeContent(w, r, "", time.Time{}, io.NewSectionReader(br, 0, br.Size()))
}

// snapshotAnswerError is the text of an answer's Error for err: what
// went wrong, never data.
func snapshotAnswerError(err error) string {
	switch {
	case errors.Is(err, ErrSnapshotRequest):
		return err.Error()
	case errors.Is(err, index.ErrNotFound):
		return "no such dataset at this node"
	case errors.Is(err, context.DeadlineExceeded):
		return "the node could not make the snapshot in time"
	}
	return "the node could not make the snapshot"
}
