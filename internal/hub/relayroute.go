package hub

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/fed"
)

// The relay route: a researcher reaches a node's DICOMweb under a permit
// at /dicom-web/permits/{permit}/..., the node never being reachable
// itself (it connects out only). The hub authenticates the researcher,
// finds the permit (through the permits hook: package access keeps
// them), checks the path against the DICOMweb shapes a permit may use,
// puts the request on record, and hands it to a Forwarder (package
// relay), which carries it to the node over the federation link and
// streams the answer back. The node checks the permit again itself.

// relayPrefix is the path of every permit's root, before the permit id.
const relayPrefix = "/dicom-web/permits/"

// actionPermitRelay is the audit action of a relayed request.
const actionPermitRelay = "permit-relay"

// PermitRef is what the relay route needs of a permit: the node it is
// for, its compact JWS, its expiry and whether it was revoked.
type PermitRef struct {
	Node    string
	Token   string
	Expires time.Time
	Revoked bool
}

// Forwarder carries a relayed request to a node and writes the node's
// answer to w (package relay implements it over NATS).
type Forwarder interface {
	Forward(w http.ResponseWriter, r *http.Request, node string, req fed.RelayRequest)
}

// SetPermits sets the hook the relay route finds permits with: the
// permit id of user, or an error wrapping ErrNotFound when there is no
// such permit or it belongs to someone else. Without it every permit is
// unknown.
func (h *Hub) SetPermits(fn func(ctx context.Context, id, user string) (PermitRef, error)) {
	h.acc.mu.Lock()
	h.acc.permits = fn
	h.acc.mu.Unlock()
}

// SetForwarder sets what carries relayed requests to nodes; without one
// the relay route answers 503.
func (h *Hub) SetForwarder(f Forwarder) {
	h.acc.mu.Lock()
	h.acc.forwarder = f
	h.acc.mu.Unlock()
}

// permitID is the shape of a permit id in a URL (as nodes take them).
var permitID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// maxRelayQuery bounds the query string of a relayed request.
const maxRelayQuery = 4096

// relayHeaders are the request headers passed on to the node.
var relayHeaders = []string{"Accept", "Range", "If-None-Match"}

// relay serves GET and HEAD under /dicom-web/permits/{permit}/.
func (h *Hub) relay(w http.ResponseWriter, r *http.Request) {
	u, ok := h.relayUser(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="mosaic-hub"`)
		apiError(w, http.StatusUnauthorized, "log in first: Authorization: Bearer TOKEN, or a session of the hub's web pages (GET only)")
		return
	}
	id := r.PathValue("permit")
	if !permitID.MatchString(id) {
		apiError(w, http.StatusNotFound, "no such permit")
		return
	}
	sub, err := relayPath(r.URL.EscapedPath(), id)
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(r.URL.RawQuery) > maxRelayQuery {
		apiError(w, http.StatusBadRequest, "query string too long")
		return
	}
	h.acc.mu.Lock()
	lookup, fwd := h.acc.permits, h.acc.forwarder
	h.acc.mu.Unlock()
	if lookup == nil {
		apiError(w, http.StatusNotFound, "no such permit")
		return
	}
	p, err := lookup(r.Context(), id, u.ID)
	switch {
	case errors.Is(err, ErrNotFound):
		apiError(w, http.StatusNotFound, "no such permit")
		return
	case err != nil:
		h.log.Error("permit lookup failed", "permit", id, "err", err)
		apiError(w, http.StatusInternalServerError, "internal error")
		return
	case p.Revoked:
		apiError(w, http.StatusForbidden, "this permit was revoked: it gives no access any more")
		return
	case !p.Expires.IsZero() && !time.Now().Before(p.Expires):
		apiError(w, http.StatusForbidden, "this permit expired on "+p.Expires.UTC().Format(time.RFC3339)+": ask for access again")
		return
	case !fed.ValidNodeID(p.Node) || p.Token == "":
		h.log.Error("permit lookup gave no node or token", "permit", id)
		apiError(w, http.StatusInternalServerError, "internal error")
		return
	}
	if fwd == nil {
		apiError(w, http.StatusServiceUnavailable, "the hub relays no DICOMweb requests: it was started without a relay")
		return
	}
	// The query's values may be patient attributes (a QIDO search by
	// name or birth date): the hub, which keeps no patient data, records
	// only which parameters were given.
	if err := h.record("user:"+u.ID, actionPermitRelay, id, map[string]any{
		"node": p.Node, "method": r.Method, "path": sub, "query_keys": queryKeys(r.URL.RawQuery)}); err != nil {
		apiError(w, http.StatusServiceUnavailable, "the hub cannot write its audit log, so it relays nothing: try again later, or tell the hub's operator")
		return
	}
	hdr := map[string][]string{}
	for _, k := range relayHeaders {
		if v := r.Header.Values(k); len(v) > 0 {
			hdr[k] = v
		}
	}
	fwd.Forward(w, r, p.Node, fed.RelayRequest{
		Permit: p.Token, Researcher: u.ID, Method: r.Method, Path: sub,
		Root: h.relayRoot(r, id), Query: r.URL.RawQuery, Header: hdr,
	})
}

// relayUser authenticates a relayed request: a bearer token, or for GET
// the session cookie of the web pages (the viewer is served by the hub
// and reads through the relay from the same origin).
func (h *Hub) relayUser(r *http.Request) (User, bool) {
	if r.Header.Get("Authorization") == "" && r.Method != http.MethodGet {
		return User{}, false
	}
	return h.userOf(r)
}

// relayRoot is the URL of a permit's root as the researcher reaches it:
// under the hub's public URL, or the request's own host.
func (h *Hub) relayRoot(r *http.Request, id string) string {
	base := strings.TrimRight(h.cfg.PublicURL, "/")
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return base + relayPrefix + id + "/"
}

// relayPath returns the path below a permit's root ("/studies/1.2/series")
// of an escaped request path, or an error saying why it is not one of
// the DICOMweb shapes a permit may use: QIDO-RS searches, WADO-RS
// objects, metadata, frames, rendered views and bulk data, and the
// archive of a download permit. UIDs are digits and dots, at most 64
// characters; anything escaped (an encoded slash or dot) is refused.
func relayPath(escaped, id string) (string, error) {
	if strings.ContainsAny(escaped, "%\\") {
		return "", errors.New("escaped characters are not allowed in DICOMweb paths")
	}
	rest, ok := strings.CutPrefix(escaped, relayPrefix+id+"/")
	if !ok {
		return "", errors.New("not a permit's DICOMweb path")
	}
	seg := strings.Split(rest, "/")
	if len(seg) > 40 {
		return "", errors.New("DICOMweb path too long")
	}
	if !relayShape(seg) {
		return "", errors.New("not a DICOMweb path a permit may use: studies, series, instances, metadata, frames, rendered, bulk data or the archive, with UIDs of digits and dots")
	}
	return "/" + rest, nil
}

// relayShape reports whether seg is one of the allowed paths.
func relayShape(seg []string) bool {
	switch {
	case len(seg) == 1:
		// QIDO-RS at the root.
		return seg[0] == "studies" || seg[0] == "series" || seg[0] == "instances"
	case seg[0] == "archive":
		return (len(seg) == 2 && seg[1] == "manifest") || (len(seg) == 3 && seg[1] == "objects" && relayUID(seg[2]))
	case seg[0] != "studies":
		return false
	}
	// studies/{study}[/...]
	if !relayUID(seg[1]) {
		return false
	}
	rest := seg[2:]
	if len(rest) == 0 {
		return true
	}
	if len(rest) == 1 {
		return rest[0] == "metadata" || rest[0] == "rendered" || rest[0] == "series" || rest[0] == "instances"
	}
	if rest[0] != "series" || !relayUID(rest[1]) {
		return false
	}
	rest = rest[2:] // below a series
	if len(rest) == 0 {
		return true
	}
	if len(rest) == 1 {
		return rest[0] == "metadata" || rest[0] == "rendered" || rest[0] == "instances"
	}
	if rest[0] != "instances" || !relayUID(rest[1]) {
		return false
	}
	rest = rest[2:] // below an instance
	switch {
	case len(rest) == 0:
		return true
	case len(rest) == 1:
		return rest[0] == "metadata" || rest[0] == "rendered"
	case rest[0] == "frames":
		return relayFrames(rest[1]) && (len(rest) == 2 || (len(rest) == 3 && rest[2] == "rendered"))
	case rest[0] == "bulk":
		return relayBulk(rest[1:])
	}
	return false
}

// relayUID: 1 to 64 characters, digits in non-empty components
// separated by single dots.
func relayUID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	dot := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			if dot {
				return false
			}
			dot = true
		case c >= '0' && c <= '9':
			dot = false
		default:
			return false
		}
	}
	return !dot
}

// relayFrames: a comma-separated list of frame numbers from 1, at most
// 1000 of them.
func relayFrames(s string) bool {
	list := strings.Split(s, ",")
	if len(list) > 1000 {
		return false
	}
	for _, f := range list {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || len(f) > 9 || f[0] == '+' {
			return false
		}
	}
	return true
}

// relayBulk: the path of a bulk data element as nodes write it in
// BulkDataURIs, tags of 8 hexadecimal digits alternating with item
// indexes.
func relayBulk(seg []string) bool {
	if len(seg) == 0 || len(seg)%2 == 0 || len(seg) > 17 {
		return false
	}
	for i, s := range seg {
		if i%2 == 1 {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 || len(s) > 6 || s[0] == '+' || s[0] == '-' {
				return false
			}
			continue
		}
		if len(s) != 8 {
			return false
		}
		if _, err := strconv.ParseUint(s, 16, 32); err != nil {
			return false
		}
	}
	return true
}

// queryKeys lists the parameter names of a raw query, sorted, without
// their values (at most 32, each at most 64 bytes).
func queryKeys(raw string) []string {
	v, _ := url.ParseQuery(raw)
	keys := make([]string, 0, len(v))
	for k := range v {
		if len(keys) == 32 {
			break
		}
		if len(k) > 64 {
			k = k[:64]
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
