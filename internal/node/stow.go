package node

import (
	"errors"
	"io"
	"net/http"

	"github.com/mosaic-imaging/mosaic/internal/dicomweb"
)

// stow answers STOW-RS: every application/dicom part goes through the
// de-identification door into the dataset. The response comes once every
// stored object is durable; it lists what was stored (with the
// de-identified UIDs) and what failed, with reasons.
func (n *Node) stow(w http.ResponseWriter, r *http.Request) {
	ds, ok := n.dataset(w, r)
	if !ok || !uidsOK(w, r) {
		return
	}
	// The study the URL names, as the engine maps an original UID, and
	// as it is: objects Mosaic already de-identified keep their UIDs, so
	// for them the URL names the study by the UID they keep.
	urlStudy, wantStudy := r.PathValue("study"), ""
	if urlStudy != "" {
		wantStudy = n.eng.StudyUID(urlStudy)
	}
	pr, err := dicomweb.NewPartReader(r.Header.Get("Content-Type"), r.Body, dicomweb.Limits{
		MaxPartBytes: n.cfg.MaxObjectBytes + 1, // our own limit reports the object as too large
		MaxBodyBytes: n.cfg.MaxRequestBytes,
	})
	if err != nil {
		writeDWError(w, err)
		return
	}
	root := rootURL(r, ds)
	type item struct {
		t    *Ticket
		part int
	}
	var items []item
	resp := &dicomweb.StoreResponse{}
	var fatal error
	for {
		part, err := pr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if dicomweb.Recoverable(err) {
				resp.AddFailed("", "", dicomweb.FailureReasonFor(err), err.Error())
				continue
			}
			fatal = err
			break
		}
		t := n.Ingest(r.Context(), ds, "stow", part)
		items = append(items, item{t, part.Index})
	}
	pr.Release() // every part was read; the tickets wait for their commit
	// The wait is bounded: a stalled index database gives the client an
	// error, not a hang.
	wctx, cancel := n.dbContext(r.Context())
	defer cancel()
	internal, timedOut := 0, 0
	retrieveStudy := wantStudy
	for _, it := range items {
		o := it.t.Wait(wctx)
		if o.Code == CodeCommitTimeout {
			timedOut++
		}
		switch {
		case o.Status == StatusStored || o.Status == StatusDuplicate:
			want := wantStudy
			if o.uidsKept {
				want = urlStudy
			}
			if want != "" && o.StudyUID != want {
				// Stored already (it is a valid object), but the request
				// named another study: report it as PS3.18 asks.
				resp.AddFailed(o.SOPClassUID, o.SOPInstanceUID, dicomweb.FailureDataSetMismatch, "the instance belongs to another study than the one in the request path; it was stored in its own study")
				continue
			}
			if o.uidsKept {
				retrieveStudy = urlStudy
			}
			url := root + "studies/" + o.StudyUID + "/series/" + o.SeriesUID + "/instances/" + o.SOPInstanceUID
			resp.AddStored(o.SOPClassUID, o.SOPInstanceUID, url, dicomweb.WarningCoercion)
		case o.Status == StatusConflict:
			resp.AddFailed(o.SOPClassUID, o.SOPInstanceUID, dicomweb.FailureProcessing, o.Reason)
		case o.Status == StatusRejected:
			resp.AddFailed(o.SOPClassUID, o.SOPInstanceUID, dicomweb.FailureRefusedByPolicy, "refused by the de-identification door ("+o.Code+"): "+o.Reason)
		default:
			reason := dicomweb.FailureCannotUnderstand
			switch o.Code {
			case "too-large":
				reason = dicomweb.FailureOutOfResources
			case "storage", "metadata", CodeCommitTimeout, CodeWaitCancelled:
				reason = dicomweb.FailureOutOfResources
				internal++
			case "read-error", "cancelled":
				reason = dicomweb.FailureProcessing
			}
			resp.AddFailed(o.SOPClassUID, o.SOPInstanceUID, reason, o.Reason)
		}
	}
	if fatal != nil {
		if len(resp.Stored) == 0 {
			// Nothing was stored: the request failed as a whole.
			writeDWError(w, fatal)
			return
		}
		// Objects completed before the body went bad stay stored and
		// are reported; the request itself failed past them.
		resp.AddFailed("", "", dicomweb.FailureReasonFor(fatal), "the rest of the request could not be read: "+fatal.Error())
	}
	if retrieveStudy != "" {
		resp.RetrieveURL = root + "studies/" + retrieveStudy
	}
	body, err := resp.MarshalJSON()
	if err != nil {
		n.log.Error("stow: response", "err", err)
		dwError(w, http.StatusInternalServerError, "internal error")
		return
	}
	status := resp.Status()
	if internal > 0 && len(resp.Stored) == 0 {
		status = http.StatusServiceUnavailable
	}
	if timedOut > 0 {
		// Nothing this request sent past the timeout is acknowledged; a
		// new attempt finds what was committed after all a duplicate.
		w.Header().Set("Retry-After", "30")
		n.log.Warn("stow: index commit timed out", "objects", timedOut, "timeout", n.cfg.CommitTimeout.String())
	}
	w.Header().Set("Content-Type", "application/dicom+json")
	w.WriteHeader(status)
	w.Write(body)
}

func writeDWError(w http.ResponseWriter, err error) {
	status, body := dicomweb.ErrorJSON(err)
	var de *dicomweb.Error
	if !errors.As(err, &de) {
		status = http.StatusBadRequest
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}
