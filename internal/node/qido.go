package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
	"github.com/mosaic-imaging/mosaic/internal/dicomweb"
	"github.com/mosaic-imaging/mosaic/internal/index"
)

var dwLevel = map[index.Level]dicomweb.Level{index.StudyLevel: dicomweb.Study, index.SeriesLevel: dicomweb.Series, index.InstanceLevel: dicomweb.Instance}

// extraMatchable lists what the index matches on beyond PS3.18's
// required keys, per level.
func extraMatchable(l index.Level) []dicom.Tag {
	req := map[dicom.Tag]bool{}
	for _, t := range dwLevel[l].MatchableTags() {
		req[t] = true
	}
	var out []dicom.Tag
	for _, lv := range []index.Level{index.StudyLevel, index.SeriesLevel, index.InstanceLevel} {
		if lv > l {
			break
		}
		for _, t := range index.Returned(lv) {
			if !req[t] && index.Matchable(l, t) {
				if _, ok := dicom.Lookup(t); ok {
					out = append(out, t)
					req[t] = true
				}
			}
		}
	}
	return out
}

// qido answers QIDO-RS searches at a level, scoped by the study and
// series in the path when present.
func (n *Node) qido(level index.Level) http.HandlerFunc {
	extra := extraMatchable(level)
	return func(w http.ResponseWriter, r *http.Request) {
		if !dicomweb.AcceptsJSON(r.Header.Get("Accept")) {
			dwError(w, http.StatusNotAcceptable, "search results are served as application/dicom+json")
			return
		}
		sc, ok := n.scope(w, r)
		if !ok || !uidsOK(w, r) {
			return
		}
		q, err := dicomweb.ParseQueryWith(dwLevel[level], r.URL.Query(), dicomweb.QueryOptions{MaxLimit: n.cfg.MaxQIDOLimit, ExtraMatchable: extra})
		if err != nil {
			status, body := dicomweb.ErrorJSON(err)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			w.Write(body)
			return
		}
		s := index.Search{Dataset: sc.dataset, Snapshot: sc.snapshot, Level: level, StudyUID: r.PathValue("study"), SeriesUID: r.PathValue("series"), Limit: q.Limit, Offset: q.Offset,
			NoMeta: !q.IncludeAll && len(q.IncludeFields) == 0}
		if q.Limit == 0 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if q.LimitCapped {
			s.Limit = q.Limit + 1 // one more, to know whether to warn
		}
		for _, m := range q.Match {
			f := index.Filter{Tag: m.Tag}
			switch m.Kind {
			case dicomweb.Universal:
				continue
			case dicomweb.Exact:
				f.Kind, f.Value = index.MatchExact, m.Values[0]
			case dicomweb.Wildcard:
				f.Kind, f.Pattern = index.MatchWildcard, m.LikePattern('\\')
			case dicomweb.UIDList:
				f.Kind, f.Values = index.MatchList, m.Values
			case dicomweb.DateRange, dicomweb.TimeRange, dicomweb.DateTimeRange:
				f.Kind, f.Min, f.Max = index.MatchRange, m.Min, m.Max
				if m.Max != "" && m.Kind == dicomweb.TimeRange {
					f.Max = m.Max + "\uffff" // a time is matched up to the end of the unit given
				}
			default:
				continue
			}
			s.Filters = append(s.Filters, f)
		}
		qctx, cancel := n.dbContext(r.Context())
		hits, err := n.ix.Search(qctx, s)
		cancel()
		if err != nil {
			n.storeError(w, err)
			return
		}
		root := sc.root
		for _, wtext := range q.Warnings {
			w.Header().Add("Warning", dicomweb.WarningHeader(root, wtext))
		}
		if q.LimitCapped && len(hits) > q.Limit {
			hits = hits[:q.Limit]
			w.Header().Add("Warning", dicomweb.MoreResultsWarning(root))
		}
		if len(hits) == 0 {
			// PS3.18 8.3.4.4.1: a search that matches nothing.
			w.Header().Set("Content-Type", "application/dicom+json")
			w.Write([]byte("[]"))
			return
		}
		w.Header().Set("Content-Type", "application/dicom+json")
		bw := newBufWriter(w)
		bw.WriteString("[")
		for i, h := range hits {
			if i > 0 {
				bw.WriteString(",")
			}
			bw.Write(hitJSON(h, level, q, root))
		}
		bw.WriteString("]")
		bw.Flush()
	}
}

// hitJSON writes one search result in the DICOM JSON model: the
// attributes the index holds, the Retrieve URL, and attributes asked for
// with includefield taken from the representative instance's metadata.
func hitJSON(h index.Hit, level index.Level, q *dicomweb.Query, root string) []byte {
	url := root + "studies/" + h.StudyUID
	if level >= index.SeriesLevel {
		url += "/series/" + h.SeriesUID
	}
	if level == index.InstanceLevel {
		url += "/instances/" + h.SOPUID
	}
	if !q.IncludeAll && len(q.IncludeFields) == 0 {
		return appendHit(nil, h, url)
	}
	obj := map[string]json.RawMessage{}
	for t, v := range h.Values {
		obj[t.Hex()] = attrJSON(index.ColumnVR(t), v)
	}
	obj["00081190"] = attrJSON(dicom.UR, url)
	if len(h.Meta) > 0 {
		var meta map[string]json.RawMessage
		if json.Unmarshal(h.Meta, &meta) == nil {
			add := func(k string, v json.RawMessage) {
				if _, have := obj[k]; !have && !strings.Contains(string(v), `"BulkDataURI"`) {
					obj[k] = v
				}
			}
			if q.IncludeAll {
				for k, v := range meta {
					add(k, v)
				}
			}
			for _, t := range q.IncludeFields {
				if v, ok := meta[t.Hex()]; ok {
					add(t.Hex(), v)
				}
			}
		}
	}
	b, _ := json.Marshal(obj) // map keys come out sorted: tag order
	return b
}

// appendHit appends a result that carries only the index's attributes
// and the Retrieve URL: the bytes hitJSON's general path makes, written
// directly (a thousand results a page make the general path, a map and
// encoding/json per attribute, the larger part of a search's time).
func appendHit(b []byte, h index.Hit, url string) []byte {
	tags := make([]dicom.Tag, 0, len(h.Values)+1)
	for t := range h.Values {
		tags = append(tags, t)
	}
	tags = append(tags, 0x00081190)
	slices.Sort(tags)
	b = append(b, '{')
	for i, t := range tags {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `"%08X":`, uint32(t))
		if t == 0x00081190 {
			b = appendAttr(b, dicom.UR, url)
		} else {
			b = appendAttr(b, index.ColumnVR(t), h.Values[t])
		}
	}
	return append(b, '}')
}

// appendAttr appends what attrJSON returns.
func appendAttr(b []byte, vr dicom.VR, v string) []byte {
	b = append(b, `{"vr":"`...)
	b = append(b, vr.String()...)
	b = append(b, `","Value":[`...)
	switch vr {
	case dicom.PN:
		for i, s := range strings.Split(v, `\`) {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"Alphabetic":`...)
			b = appendJSONString(b, s)
			b = append(b, '}')
		}
	case dicom.IS, dicom.US:
		if x, err := strconv.ParseInt(v, 10, 64); err == nil {
			b = strconv.AppendInt(b, x, 10)
		} else {
			b = appendJSONString(b, v)
		}
	case dicom.CS:
		for i, s := range strings.Split(v, `\`) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, s)
		}
	default:
		b = appendJSONString(b, v)
	}
	return append(b, "]}"...)
}

// appendJSONString appends s as encoding/json writes it: printable ASCII
// as it is, anything else through encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// attrJSON is one attribute of the DICOM JSON model from an index value.
func attrJSON(vr dicom.VR, v string) json.RawMessage {
	type pn struct {
		Alphabetic string `json:"Alphabetic"`
	}
	var vals []any
	switch vr {
	case dicom.PN:
		for _, s := range strings.Split(v, `\`) {
			vals = append(vals, pn{s})
		}
	case dicom.IS, dicom.US:
		x, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			vals = append(vals, v)
		} else {
			vals = append(vals, x)
		}
	case dicom.CS:
		for _, s := range strings.Split(v, `\`) {
			vals = append(vals, s)
		}
	default:
		vals = append(vals, v)
	}
	b, _ := json.Marshal(struct {
		VR    string `json:"vr"`
		Value []any  `json:"Value,omitempty"`
	}{vr.String(), vals})
	return b
}
