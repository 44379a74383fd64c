package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
	"github.com/mosaic-imaging/mosaic/internal/dicomweb"
	"github.com/mosaic-imaging/mosaic/internal/index"
)

// dicomwebRoutes registers DICOMweb (PS3.18) under one root per dataset,
// /dicom-web/{dataset}/, so that access can be scoped per dataset.
func (n *Node) dicomwebRoutes(route func(string, http.HandlerFunc, string)) {
	const root = "/dicom-web/{dataset}"
	route("POST "+root+"/studies", n.stow, index.ScopeWrite)
	route("POST "+root+"/studies/{study}", n.stow, index.ScopeWrite)

	route("GET "+root+"/studies", n.qido(index.StudyLevel), index.ScopeRead)
	route("GET "+root+"/series", n.qido(index.SeriesLevel), index.ScopeRead)
	route("GET "+root+"/instances", n.qido(index.InstanceLevel), index.ScopeRead)
	route("GET "+root+"/studies/{study}/series", n.qido(index.SeriesLevel), index.ScopeRead)
	route("GET "+root+"/studies/{study}/instances", n.qido(index.InstanceLevel), index.ScopeRead)
	route("GET "+root+"/studies/{study}/series/{series}/instances", n.qido(index.InstanceLevel), index.ScopeRead)

	route("GET "+root+"/studies/{study}", n.retrieve, index.ScopeRead)
	route("GET "+root+"/studies/{study}/series/{series}", n.retrieve, index.ScopeRead)
	route("GET "+root+"/studies/{study}/series/{series}/instances/{instance}", n.retrieve, index.ScopeRead)
	route("GET "+root+"/studies/{study}/metadata", n.metadata, index.ScopeRead)
	route("GET "+root+"/studies/{study}/series/{series}/metadata", n.metadata, index.ScopeRead)
	route("GET "+root+"/studies/{study}/series/{series}/instances/{instance}/metadata", n.metadata, index.ScopeRead)
	route("GET "+root+"/studies/{study}/series/{series}/instances/{instance}/frames/{frames}", n.frames, index.ScopeRead)
	route("GET "+root+"/studies/{study}/series/{series}/instances/{instance}/bulk/{path...}", n.bulk, index.ScopeRead)
}

// dwError answers a DICOMweb request with a JSON error body.
func dwError(w http.ResponseWriter, status int, msg string) {
	apiError(w, status, msg)
}

// dataset checks the dataset named in the URL; false after answering 404.
func (n *Node) dataset(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("dataset")
	if !index.ValidDatasetID(id) {
		dwError(w, http.StatusNotFound, "no such dataset")
		return "", false
	}
	ctx, cancel := n.dbContext(r.Context())
	defer cancel()
	if _, err := n.ix.Dataset(ctx, id); err != nil {
		if errors.Is(err, index.ErrNotFound) {
			dwError(w, http.StatusNotFound, "no such dataset: "+id)
		} else {
			n.storeError(w, err)
		}
		return "", false
	}
	return id, true
}

// rootURL is the dataset's DICOMweb root as the client reached it.
func rootURL(r *http.Request, dataset string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/dicom-web/" + dataset + "/"
}

// dwScope is what a DICOMweb request reads: a dataset, or only a cohort
// snapshot of it (SnapshotHandler), and the root that URLs in answers
// (RetrieveURL, BulkDataURI, Content-Location) point below.
type dwScope struct {
	dataset, snapshot, root string
}

const scopeKey ctxKey = 1

// scope returns the request's scope: the one SnapshotHandler put in its
// context, else the dataset named in the path (false after answering 404)
// with the root the client reached.
func (n *Node) scope(w http.ResponseWriter, r *http.Request) (dwScope, bool) {
	if sc, ok := r.Context().Value(scopeKey).(dwScope); ok {
		return sc, true
	}
	ds, ok := n.dataset(w, r)
	if !ok {
		return dwScope{}, false
	}
	return dwScope{dataset: ds, root: rootURL(r, ds)}, true
}

// instances lists the instances of a study, series or instance in sc.
func (n *Node) instances(ctx context.Context, sc dwScope, study, series, instance string) ([]index.StoredInstance, error) {
	if sc.snapshot != "" {
		return n.ix.SnapshotInstances(ctx, sc.snapshot, sc.dataset, study, series, instance)
	}
	return n.ix.Instances(ctx, sc.dataset, study, series, instance)
}

// uidsOK rejects path UIDs that cannot be UIDs (and so match nothing).
func uidsOK(w http.ResponseWriter, r *http.Request) bool {
	for _, k := range []string{"study", "series", "instance"} {
		if v := r.PathValue(k); v != "" && !validUID(v) {
			dwError(w, http.StatusBadRequest, "the "+k+" in the path is not a valid UID")
			return false
		}
	}
	return true
}

func validUID(s string) bool {
	if len(s) == 0 || len(s) > 64 || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && c != '.' {
			return false
		}
		if c == '.' && i > 0 && s[i-1] == '.' {
			return false
		}
	}
	return true
}

func (n *Node) lookup(w http.ResponseWriter, r *http.Request) (dwScope, []index.StoredInstance, bool) {
	sc, ok := n.scope(w, r)
	if !ok || !uidsOK(w, r) {
		return sc, nil, false
	}
	if r.PathValue("study") == "" {
		dwError(w, http.StatusNotFound, "no such study, series or instance in this dataset")
		return sc, nil, false
	}
	ctx, cancel := n.dbContext(r.Context())
	list, err := n.instances(ctx, sc, r.PathValue("study"), r.PathValue("series"), r.PathValue("instance"))
	cancel()
	if err != nil {
		if errors.Is(err, index.ErrNotFound) {
			dwError(w, http.StatusNotFound, "no such study, series or instance in this dataset")
		} else {
			n.storeError(w, err)
		}
		return sc, nil, false
	}
	return sc, list, true
}

// retrieve answers WADO-RS retrieval of a study, series or instance as
// multipart/related application/dicom, each object as stored.
func (n *Node) retrieve(w http.ResponseWriter, r *http.Request) {
	ok, ts := dicomweb.AcceptsMultipartDICOM(r.Header.Get("Accept"))
	if !ok {
		dwError(w, http.StatusNotAcceptable, `this resource is served as multipart/related; type="application/dicom"`)
		return
	}
	sc, list, ok := n.lookup(w, r)
	if !ok {
		return
	}
	if ts != "" && ts != "*" {
		for _, in := range list {
			if in.TransferSyntax != ts {
				dwError(w, http.StatusNotAcceptable, "objects are served in their stored transfer syntax; ask for transfer-syntax=* (transcoding is not supported)")
				return
			}
		}
	}
	pw := dicomweb.NewPartWriter(w, dicomweb.MediaTypeDICOM)
	w.Header().Set("Content-Type", pw.ContentType())
	for _, in := range list {
		if err := n.writeBlobPart(r.Context(), pw, in, sc.root); err != nil {
			// Headers are gone: all that is left is to cut the
			// response, which the client sees as truncated.
			n.log.Error("retrieve: object unreadable", "blob", in.BlobKey, "err", err)
			panic(http.ErrAbortHandler)
		}
	}
	pw.Close()
}

func (n *Node) writeBlobPart(ctx context.Context, pw *dicomweb.PartWriter, in index.StoredInstance, root string) error {
	br, err := n.blobs.Open(ctx, blobRef(in.BlobKey, in.BlobLoc))
	if err != nil {
		return err
	}
	defer br.Close()
	pwr, err := pw.CreatePart(map[string]string{
		"Content-Type":     dicomweb.MediaTypeDICOM + `; transfer-syntax=` + in.TransferSyntax,
		"Content-Location": root + "studies/" + in.StudyUID + "/series/" + in.SeriesUID + "/instances/" + in.SOPUID,
		"Content-Length":   strconv.FormatInt(br.Size(), 10),
	})
	if err != nil {
		return err
	}
	_, err = io.Copy(pwr, br)
	return err
}

// metadata answers WADO-RS metadata from the JSON precomputed at ingest,
// never reading an object.
func (n *Node) metadata(w http.ResponseWriter, r *http.Request) {
	if !dicomweb.AcceptsJSON(r.Header.Get("Accept")) {
		dwError(w, http.StatusNotAcceptable, "metadata is served as application/dicom+json")
		return
	}
	sc, ok := n.scope(w, r)
	if !ok || !uidsOK(w, r) {
		return
	}
	root := []byte(`"` + sc.root)
	marker := []byte(`"` + BulkMarker)
	first := true
	var bw *bufWriter
	// The database must answer each row within the commit timeout; the
	// time spent writing to the client does not count.
	ctx, wd := n.rowWatch(r.Context())
	defer wd.stop()
	each := n.ix.Metadata
	if sc.snapshot != "" {
		each = func(ctx context.Context, dataset, study, series, instance string, fn func([]byte) error) error {
			return n.ix.SnapshotMetadata(ctx, sc.snapshot, dataset, study, series, instance, fn)
		}
	}
	err := each(ctx, sc.dataset, r.PathValue("study"), r.PathValue("series"), r.PathValue("instance"), func(meta []byte) error {
		wd.pause()
		defer wd.resume()
		if first {
			w.Header().Set("Content-Type", "application/dicom+json")
			bw = newBufWriter(w)
			bw.WriteString("[")
			first = false
		} else {
			bw.WriteString(",")
		}
		bw.Write(bytes.ReplaceAll(meta, marker, root))
		return bw.err
	})
	err = wd.err(err)
	if err != nil {
		if first {
			if errors.Is(err, index.ErrNotFound) {
				dwError(w, http.StatusNotFound, "no such study, series or instance in this dataset")
			} else {
				n.storeError(w, err)
			}
			return
		}
		n.log.Error("metadata: cut short", "err", err)
		panic(http.ErrAbortHandler)
	}
	bw.WriteString("]")
	bw.Flush()
}

// frames answers WADO-RS frame retrieval for native pixel data: each
// frame's bytes, as stored, in an application/octet-stream part.
func (n *Node) frames(w http.ResponseWriter, r *http.Request) {
	_, list, ok := n.lookup(w, r)
	if !ok {
		return
	}
	in := list[0]
	var nums []int
	for _, f := range strings.Split(r.PathValue("frames"), ",") {
		k, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || k < 1 {
			dwError(w, http.StatusBadRequest, "frame numbers are a comma-separated list of integers from 1")
			return
		}
		nums = append(nums, k)
	}
	if len(nums) > 10000 {
		dwError(w, http.StatusBadRequest, "too many frames in one request")
		return
	}
	if in.PixelOffset < 0 {
		dwError(w, http.StatusNotAcceptable, "frames are served for native (uncompressed) pixel data only; retrieve the instance instead")
		return
	}
	size := int64(in.Rows) * int64(in.Columns) * int64(max(in.SamplesPerPixel, 1)) * int64(in.BitsAllocated) / 8
	frames := max(in.Frames, 1)
	if size <= 0 || size*int64(frames) > in.PixelLength {
		dwError(w, http.StatusNotAcceptable, "the pixel data of this instance cannot be cut into frames (its size disagrees with rows, columns and bits)")
		return
	}
	for _, k := range nums {
		if k > frames {
			dwError(w, http.StatusNotFound, fmt.Sprintf("frame %d: the instance has %d frames", k, frames))
			return
		}
	}
	br, err := n.blobs.Open(r.Context(), blobRef(in.BlobKey, in.BlobLoc))
	if err != nil {
		n.log.Error("frames: object unreadable", "blob", in.BlobKey, "err", err)
		dwError(w, http.StatusInternalServerError, "the object cannot be read")
		return
	}
	defer br.Close()
	pw := dicomweb.NewPartWriter(w, "application/octet-stream")
	w.Header().Set("Content-Type", pw.ContentType())
	for _, k := range nums {
		pwr, err := pw.CreatePart(map[string]string{"Content-Length": strconv.FormatInt(size, 10)})
		if err == nil {
			_, err = io.Copy(pwr, io.NewSectionReader(br, in.PixelOffset+int64(k-1)*size, size))
		}
		if err != nil {
			n.log.Error("frames: cut short", "err", err)
			panic(http.ErrAbortHandler)
		}
	}
	pw.Close()
}

// bulk answers a BulkDataURI of the metadata: the value of one element,
// named by its path of tags and item indexes.
func (n *Node) bulk(w http.ResponseWriter, r *http.Request) {
	_, list, ok := n.lookup(w, r)
	if !ok {
		return
	}
	in := list[0]
	path := strings.Split(r.PathValue("path"), "/")
	var tags []dicom.Tag
	var items []int
	for i, p := range path {
		if i%2 == 1 {
			k, err := strconv.Atoi(p)
			if err != nil || k < 0 {
				dwError(w, http.StatusBadRequest, "bad bulk data path")
				return
			}
			items = append(items, k)
			continue
		}
		v, err := strconv.ParseUint(p, 16, 32)
		if err != nil || len(p) != 8 {
			dwError(w, http.StatusBadRequest, "bad bulk data path")
			return
		}
		tags = append(tags, dicom.Tag(v))
	}
	if len(tags) == 0 || len(tags) != len(items)+1 {
		dwError(w, http.StatusBadRequest, "bad bulk data path")
		return
	}
	br, err := n.blobs.Open(r.Context(), blobRef(in.BlobKey, in.BlobLoc))
	if err != nil {
		dwError(w, http.StatusInternalServerError, "the object cannot be read")
		return
	}
	defer br.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	if len(tags) == 1 && tags[0] == dicom.TagPixelData && in.PixelOffset >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(in.PixelLength, 10))
		io.Copy(w, io.NewSectionReader(br, in.PixelOffset, in.PixelLength))
		return
	}
	f, err := dicom.NewDecoder(br, dicom.ReadOptions{}).ReadFile()
	if err != nil {
		dwError(w, http.StatusInternalServerError, "the object cannot be read")
		return
	}
	ds := &f.Dataset
	for i, t := range tags {
		e := ds.Get(t)
		if e == nil {
			dwError(w, http.StatusNotFound, "no such element")
			return
		}
		if i == len(tags)-1 {
			if e.Items != nil || e.Fragments != nil {
				dwError(w, http.StatusNotAcceptable, "this element is not a plain binary value")
				return
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(e.Value)))
			w.Write(e.Value)
			return
		}
		if items[i] >= len(e.Items) {
			dwError(w, http.StatusNotFound, "no such item")
			return
		}
		ds = &e.Items[items[i]].Dataset
	}
}

// bufWriter is a small buffered writer with a sticky error.
type bufWriter struct {
	w   io.Writer
	buf []byte
	err error
}

func newBufWriter(w io.Writer) *bufWriter { return &bufWriter{w: w, buf: make([]byte, 0, 64<<10)} }

func (b *bufWriter) Write(p []byte) {
	if len(b.buf)+len(p) > cap(b.buf) {
		b.Flush()
	}
	if len(p) > cap(b.buf) {
		if b.err == nil {
			_, b.err = b.w.Write(p)
		}
		return
	}
	b.buf = append(b.buf, p...)
}

func (b *bufWriter) WriteString(s string) { b.Write([]byte(s)) }

func (b *bufWriter) Flush() {
	if b.err == nil && len(b.buf) > 0 {
		_, b.err = b.w.Write(b.buf)
	}
	b.buf = b.buf[:0]
}
