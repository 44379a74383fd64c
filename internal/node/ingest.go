package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/blobstore"
	"github.com/mosaic-imaging/mosaic/internal/deid"
	"github.com/mosaic-imaging/mosaic/internal/dicom"
	"github.com/mosaic-imaging/mosaic/internal/index"
)

// Outcome statuses of one ingested object.
const (
	StatusStored    = "stored"
	StatusDuplicate = "duplicate" // already held: nothing changed
	StatusConflict  = "conflict"  // the SOP Instance UID is held with other content
	StatusRejected  = "rejected"  // refused by the de-identification door
	StatusFailed    = "failed"    // unreadable, truncated, too large, or a storage error
)

// Outcome is what became of one object offered to the node. UIDs are the
// de-identified ones (empty when the object was not read that far).
// Reasons never quote values from the object.
type Outcome struct {
	Status         string `json:"status"`
	Code           string `json:"code,omitempty"`
	Reason         string `json:"reason,omitempty"`
	SOPClassUID    string `json:"sop_class_uid,omitempty"`
	SOPInstanceUID string `json:"sop_instance_uid,omitempty"`
	StudyUID       string `json:"study_uid,omitempty"`
	SeriesUID      string `json:"series_uid,omitempty"`
	Size           int64  `json:"size,omitempty"`
	// Internal reports a failure of the node rather than of the object
	// (storage or database errors): STOW-RS answers it as a server error.
	Internal bool `json:"-"`
	// uidsKept is set when the object was Mosaic's own output and kept
	// its UIDs (see deid.Result.UIDsKept).
	uidsKept bool
}

// Ticket is an object de-identified and written, waiting for its index
// commit. Wait returns its outcome once the commit is durable.
type Ticket struct {
	n    *Node
	out  Outcome // set before the ticket is shared, read only after
	p    *pending
	path string
	t0   time.Time
	// final is the outcome once the commit ended, computed (and counted
	// in the metrics) once: by the committer as the commit ends, or by
	// the first Wait to see it end, whichever comes first.
	settled sync.Once
	final   Outcome
}

// Outcome codes of a wait that ended before the commit did (Status
// failed, Internal): the object is not acknowledged; it may still be
// committed later (a new attempt then finds it a duplicate).
const (
	CodeWaitCancelled = "wait-cancelled" // the caller's context was cancelled
	CodeCommitTimeout = "commit-timeout" // the caller's deadline passed
)

// Wait blocks until the object is durably indexed (or refused) and
// returns its outcome, or until ctx ends: then the outcome is failed with
// code CodeWaitCancelled or CodeCommitTimeout, and Wait may be called
// again for the final outcome. A commit that ended by the time ctx did
// gives its own outcome. The final outcome is counted in the metrics as
// the commit ends, whether or not anyone still waits for it.
func (t *Ticket) Wait(ctx context.Context) Outcome { return t.finish(ctx) }

// Ingest de-identifies one object read from r into the blob store and
// queues it for indexing in dataset. It returns at once for objects that
// are refused; otherwise the Ticket's Wait gives the outcome after the
// batched commit. path labels metrics ("cli" or "stow").
func (n *Node) Ingest(ctx context.Context, dataset, path string, r io.Reader) *Ticket {
	t0 := time.Now()
	done := func(o Outcome) *Ticket {
		t := &Ticket{n: n, out: o, path: path, t0: t0}
		n.observe(t, o)
		return t
	}
	w, err := n.blobs.Create(ctx)
	if err != nil {
		return done(Outcome{Status: StatusFailed, Code: "storage", Reason: "blob store: " + err.Error(), Internal: true})
	}
	lr := &limitReader{r: r, left: n.cfg.MaxObjectBytes}
	res, err := n.eng.Rewrite(w, lr, dicom.ReadOptions{MaxInflated: n.cfg.MaxObjectBytes})
	if err != nil {
		w.Abort()
		var rj *deid.Rejection
		switch {
		case lr.over:
			return done(Outcome{Status: StatusFailed, Code: "too-large", Reason: fmt.Sprintf("object larger than the node's limit of %d bytes", n.cfg.MaxObjectBytes)})
		case errors.As(err, &rj):
			return done(Outcome{Status: StatusRejected, Code: rj.Code, Reason: rj.Reason})
		case ctx.Err() != nil:
			return done(Outcome{Status: StatusFailed, Code: "cancelled", Reason: "the upload was cancelled"})
		}
		var de *dicom.Error
		if errors.As(err, &de) {
			return done(Outcome{Status: StatusFailed, Code: "unreadable", Reason: "not readable as DICOM: " + de.Error()})
		}
		if lr.readErr != nil {
			return done(Outcome{Status: StatusFailed, Code: "read-error", Reason: "reading the object: " + lr.readErr.Error()})
		}
		return done(Outcome{Status: StatusFailed, Code: "storage", Reason: "writing the object: " + err.Error(), Internal: true})
	}
	ref, size, _, err := w.Commit()
	if err != nil {
		return done(Outcome{Status: StatusFailed, Code: "storage", Reason: "blob store: " + err.Error(), Internal: true})
	}
	inst, err := instanceOf(dataset, res, ref, size)
	if err != nil {
		n.dropCopy(ref)
		return done(Outcome{Status: StatusFailed, Code: "metadata", Reason: err.Error(), Internal: true})
	}
	o := Outcome{SOPClassUID: res.SOPClassUID, SOPInstanceUID: res.SOPInstanceUID, StudyUID: res.StudyUID, SeriesUID: res.SeriesUID, Size: size, uidsKept: res.UIDsKept}
	t := &Ticket{n: n, out: o, path: path, t0: t0}
	t.p = n.commit.submit(inst, func(p *pending) { t.settle(p) })
	return t
}

// IngestWait is Ingest followed by Wait(ctx).
func (n *Node) IngestWait(ctx context.Context, dataset, path string, r io.Reader) Outcome {
	return n.Ingest(ctx, dataset, path, r).Wait(ctx)
}

// limitReader fails reads past a limit and remembers source errors, so
// the outcome can say which side was at fault.
type limitReader struct {
	r       io.Reader
	left    int64
	over    bool
	readErr error
}

var errTooLarge = errors.New("object too large")

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		var one [1]byte
		if n, _ := io.ReadFull(l.r, one[:]); n > 0 {
			l.over = true
			return 0, errTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if err != nil && err != io.EOF {
		l.readErr = err
	}
	return n, err
}

// instanceOf builds the index row of a de-identified object.
func instanceOf(dataset string, res deid.Result, ref blobstore.Ref, size int64) (index.Instance, error) {
	if res.File == nil {
		return index.Instance{}, errors.New("de-identification returned no header")
	}
	ds := &res.File.Dataset
	str := func(group, elem uint16) string {
		s, _ := ds.String(dicom.NewTag(group, elem))
		return s
	}
	all := func(group, elem uint16) string {
		e := ds.Get(dicom.NewTag(group, elem))
		if e == nil {
			return ""
		}
		v := ds.Strings(e)
		out := ""
		for i, s := range v {
			if i > 0 {
				out += `\`
			}
			out += s
		}
		return out
	}
	num := func(group, elem uint16) *int {
		v, ok := ds.Int(dicom.NewTag(group, elem))
		if !ok {
			return nil
		}
		n := int(v)
		return &n
	}
	intv := func(group, elem uint16) int {
		if p := num(group, elem); p != nil {
			return *p
		}
		return 0
	}
	in := index.Instance{
		Dataset:          dataset,
		PatientID:        res.PatientPseudonym,
		PatientName:      all(0x0010, 0x0010),
		PatientBirthDate: str(0x0010, 0x0030),
		PatientSex:       str(0x0010, 0x0040),

		StudyUID:           res.StudyUID,
		StudyDate:          str(0x0008, 0x0020),
		StudyTime:          str(0x0008, 0x0030),
		AccessionNumber:    str(0x0008, 0x0050),
		StudyID:            str(0x0020, 0x0010),
		StudyDescription:   str(0x0008, 0x1030),
		ReferringPhysician: all(0x0008, 0x0090),
		PatientAge:         str(0x0010, 0x1010),

		SeriesUID:         res.SeriesUID,
		Modality:          str(0x0008, 0x0060),
		SeriesNumber:      num(0x0020, 0x0011),
		SeriesDescription: str(0x0008, 0x103E),
		BodyPart:          str(0x0018, 0x0015),
		Manufacturer:      str(0x0008, 0x0070),
		ModelName:         str(0x0008, 0x1090),
		SeriesDate:        str(0x0008, 0x0021),
		PPSStartDate:      str(0x0040, 0x0244),
		PPSStartTime:      str(0x0040, 0x0245),

		SOPUID:          res.SOPInstanceUID,
		SOPClassUID:     res.SOPClassUID,
		InstanceNumber:  num(0x0020, 0x0013),
		TransferSyntax:  res.File.Syntax.UID,
		Rows:            intv(0x0028, 0x0010),
		Columns:         intv(0x0028, 0x0011),
		Frames:          intv(0x0028, 0x0008),
		BitsAllocated:   intv(0x0028, 0x0100),
		SamplesPerPixel: intv(0x0028, 0x0002),

		BlobKey:     string(ref.Key),
		BlobLoc:     string(ref.Loc),
		Size:        size,
		PixelOffset: res.PixelOffset,
		PixelLength: res.PixelLength,
	}
	if in.Frames == 0 && ds.Get(dicom.TagPixelData) != nil {
		in.Frames = 1
	}
	meta, err := dicom.MarshalJSON(ds, dicom.JSONOptions{BulkURIPrefix: BulkMarker + "studies/" + in.StudyUID + "/series/" + in.SeriesUID + "/instances/" + in.SOPUID + "/bulk/"})
	if err != nil {
		return in, fmt.Errorf("metadata: %w", err)
	}
	in.Meta = meta
	return in, nil
}

// BulkMarker starts the BulkDataURIs stored in instance metadata; the
// DICOMweb handlers replace it with the dataset's DICOMweb root URL.
const BulkMarker = "mosaic-root:"

// pending is one object in the commit queue.
type pending struct {
	inst   index.Instance
	done   chan struct{}
	status index.PutStatus
	err    error
	// ended, when set, is called once done is closed: the ticket counts
	// its outcome then, whether or not anyone still waits for it.
	// It is given p, as the ticket may not hold p yet.
	ended func(p *pending)
}

// end closes done and calls ended.
func (p *pending) end() {
	close(p.done)
	if p.ended != nil {
		p.ended(p)
	}
}

// committer batches index commits: every object written while a commit
// runs joins the next one (group commit), so throughput grows with load
// without adding latency when idle. Before each commit it syncs the blob
// store, so no index row ever points at a blob that a crash could lose.
// (Overlapping the sync of one batch with the index commit of the one
// before was measured: no gain, the CPUs being the limit.)
type committer struct {
	n      *Node
	max    int
	mu     sync.Mutex
	queue  []*pending
	wake   chan struct{}
	closed bool
}

func newCommitter(n *Node, max int) *committer {
	return &committer{n: n, max: max, wake: make(chan struct{}, 1)}
}

// submit queues inst for the next commit; ended (which may be nil) is
// called once its commit ended.
func (c *committer) submit(inst index.Instance, ended func(*pending)) *pending {
	p := &pending{inst: inst, done: make(chan struct{}), ended: ended}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		p.err = errors.New("node is shutting down")
		p.end()
		return p
	}
	c.queue = append(c.queue, p)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return p
}

func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *committer) run(ctx context.Context) {
	for {
		c.mu.Lock()
		batch := c.queue
		if len(batch) > c.max {
			batch = batch[:c.max]
		}
		c.queue = c.queue[len(batch):]
		closed := c.closed
		c.mu.Unlock()
		if len(batch) == 0 {
			if closed {
				return
			}
			<-c.wake
			continue
		}
		c.commit(ctx, batch)
	}
}

// commit syncs the blob store, indexes the batch and answers its
// objects, within the commit timeout: a stalled store fails the batch
// (none of it acknowledged) rather than holding up every writer.
func (c *committer) commit(ctx context.Context, batch []*pending) {
	ctx, cancel := context.WithTimeout(ctx, c.n.cfg.CommitTimeout)
	defer cancel()
	t0 := time.Now()
	err := c.n.blobs.Sync(ctx)
	c.n.m.blobSyncSeconds.Observe(time.Since(t0).Seconds())
	var st []index.PutStatus
	if err == nil {
		insts := make([]index.Instance, len(batch))
		for i, p := range batch {
			insts[i] = p.inst
		}
		st, err = c.n.ix.PutInstances(ctx, insts)
	}
	c.n.m.commitSeconds.Observe(time.Since(t0).Seconds())
	c.n.m.commitBatch.Observe(float64(len(batch)))
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("%w (%s): %w", errCommitTimeout, c.n.cfg.CommitTimeout, err)
		}
		c.n.log.Error("index commit failed", "objects", len(batch), "err", err)
	}
	for i, p := range batch {
		if err != nil {
			p.err = err
			// Whether rows were written is unknown: gc decides later.
		} else {
			p.status = st[i]
			if p.status == index.Duplicate || p.status == index.Conflict {
				c.n.dropCopy(blobRef(p.inst.BlobKey, p.inst.BlobLoc))
			}
		}
		p.end()
	}
}

// dropCopy has the copy of an object that the blob store placed for this
// ingest alone (a pack record) deleted, in the background, when no index
// row will refer to it: the object was already held, conflicted, or
// failed after its write. A copy not deleted (a full queue, a crash) is
// an unreferenced blob that gc removes. Blobs stored under their key may
// be shared with a stored object and are left to gc.
func (n *Node) dropCopy(ref blobstore.Ref) {
	if ref.Loc == "" {
		return
	}
	select {
	case n.drops <- ref:
	default:
	}
}

// errCommitTimeout marks a commit that did not finish within the
// commit timeout.
var errCommitTimeout = errors.New("the commit did not finish in time")

// finish waits for a pending commit, or for ctx, and turns it into the
// ticket's outcome. When the commit and ctx end together, the commit's
// outcome wins: an object stored is never reported as a timeout.
func (t *Ticket) finish(ctx context.Context) Outcome {
	if t.p == nil {
		return t.out
	}
	select {
	case <-t.p.done:
	case <-ctx.Done():
		select {
		case <-t.p.done:
			return t.settle(t.p)
		default:
		}
		// The outcome is counted when the commit ends (settle).
		o := t.out
		o.Status, o.Internal = StatusFailed, true
		if ctx.Err() == context.DeadlineExceeded {
			o.Code, o.Reason = CodeCommitTimeout, "the node's index database did not commit the object in time; it is not acknowledged: send it again"
		} else {
			o.Code, o.Reason = CodeWaitCancelled, "the wait for the index commit was cancelled; the object is not acknowledged"
		}
		return o
	}
	return t.settle(t.p)
}

// settle turns the ended commit into the ticket's final outcome and
// counts it, once.
func (t *Ticket) settle(p *pending) Outcome {
	t.settled.Do(func() { t.final = t.outcome(p); t.n.observe(t, t.final) })
	return t.final
}

// outcome is the ticket's outcome once its commit ended.
func (t *Ticket) outcome(p *pending) Outcome {
	o := t.out
	switch {
	case errors.Is(p.err, errCommitTimeout):
		o.Status, o.Code, o.Reason, o.Internal = StatusFailed, CodeCommitTimeout, fmt.Sprintf("the node's index database did not commit the object within %s; it is not acknowledged: send it again", t.n.cfg.CommitTimeout), true
	case p.err != nil:
		o.Status, o.Code, o.Reason, o.Internal = StatusFailed, "storage", "index commit failed", true
	case p.status == index.Duplicate:
		o.Status = StatusDuplicate
	case p.status == index.Conflict:
		o.Status, o.Code, o.Reason = StatusConflict, "conflict", "an object with this SOP Instance UID but other content is already stored"
	default:
		o.Status = StatusStored
	}
	return o
}
