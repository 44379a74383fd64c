package node

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/airlock"
	"github.com/mosaic-imaging/mosaic/internal/audit"
	"github.com/mosaic-imaging/mosaic/internal/index"
)

// airlockState is the node's airlock store, opened on first use, and the
// node's audit log shared by the link and the airlock in one process.
type airlockState struct {
	mu    sync.Mutex
	store *airlock.Store
	csrf  []byte // key of the page's CSRF tokens, per process

	auditMu   sync.Mutex
	auditLog  *audit.Log
	auditRefs int
	// stopInbox ends the loop that takes the CLI's decisions while this
	// process holds the audit log (airlockInbox).
	stopInbox chan struct{}
}

// AirlockDir is the folder of the airlock's store in a data directory.
func AirlockDir(data string) string { return filepath.Join(data, "airlock") }

// Airlock returns the node's airlock: the store of the outputs of jobs
// (DATA/airlock), checked under the node's airlock policy (node.json
// "airlock"), every decision recorded in the node's audit log. The jobs
// runner holds each output there and sends what it releases
// (Store.OnRelease, Store.Unsent).
func (n *Node) Airlock() (*airlock.Store, error) {
	n.air.mu.Lock()
	defer n.air.mu.Unlock()
	if n.air.store != nil {
		return n.air.store, nil
	}
	s, err := airlock.OpenStore(AirlockDir(n.cfg.Data), airlock.StoreOptions{Policy: n.cfg.Airlock, Audit: n.airlockAudit})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.air.store = s
	return s, nil
}

// acquireAudit returns the node's audit log, opening it if no part of
// this process holds it: the log is locked against a second writer, so
// the link and the airlock share one. Each acquireAudit needs a
// releaseAudit; the last closes the log.
func (n *Node) acquireAudit() (*audit.Log, error) {
	n.air.auditMu.Lock()
	defer n.air.auditMu.Unlock()
	if n.air.auditLog == nil {
		l, err := audit.Open(filepath.Join(n.cfg.Data, "audit.log"))
		if err != nil {
			return nil, err
		}
		n.air.auditLog = l
		n.air.stopInbox = make(chan struct{})
		go n.airlockInbox(n.air.stopInbox)
	}
	n.air.auditRefs++
	return n.air.auditLog, nil
}

// releaseAudit gives back a log acquireAudit returned.
func (n *Node) releaseAudit() error {
	n.air.auditMu.Lock()
	defer n.air.auditMu.Unlock()
	if n.air.auditRefs == 0 {
		return nil
	}
	n.air.auditRefs--
	if n.air.auditRefs > 0 {
		return nil
	}
	l := n.air.auditLog
	n.air.auditLog = nil
	close(n.air.stopInbox)
	return l.Close()
}

// ErrAuditBusy says that another process (a serving node) holds the
// node's audit log, so this one cannot record a decision itself; the CLI
// then hands it to that process (AirlockRequest).
var ErrAuditBusy = errors.New("the node's audit log is held by the running node ('mosaic node serve'): decide on its page /airlock or through its API (POST /api/v1/airlock/ID/release with an admin token), or stop the node first")

// errAuditBusy is ErrAuditBusy, by its old name.
var errAuditBusy = ErrAuditBusy

// airlockAudit records one airlock entry in the node's audit log. A log
// held by another process a moment (a node appending without a link) is
// waited for, a third of a second in all.
func (n *Node) airlockAudit(e airlock.AuditEntry) error {
	l, err := n.acquireAudit()
	for wait := 50 * time.Millisecond; errors.Is(err, audit.ErrLocked) && wait < 400*time.Millisecond; wait *= 2 {
		time.Sleep(wait)
		l, err = n.acquireAudit()
	}
	if errors.Is(err, audit.ErrLocked) {
		return errAuditBusy
	}
	if err != nil {
		return err
	}
	defer n.releaseAudit()
	_, err = l.Append(audit.Entry{Actor: e.Actor, Action: e.Action, Subject: e.Subject, Detail: e.Detail})
	return err
}

// airlockRoutes mounts the airlock API (admin tokens) and its page.
func (n *Node) airlockRoutes(route func(string, http.HandlerFunc, string)) {
	route("GET /api/v1/airlock", n.apiAirlockList, index.ScopeAdmin)
	route("GET /api/v1/airlock/{id}", n.apiAirlockGet, index.ScopeAdmin)
	route("GET /api/v1/airlock/{id}/content", n.apiAirlockContent, index.ScopeAdmin)
	route("POST /api/v1/airlock/{id}/release", n.apiAirlockRelease, index.ScopeAdmin)
	route("POST /api/v1/airlock/{id}/reject", n.apiAirlockReject, index.ScopeAdmin)

	// The page authenticates with a cookie holding an admin token.
	route("GET /airlock", n.pageAirlock, "")
	route("POST /airlock/login", n.pageAirlockLogin, "")
	route("POST /airlock/logout", n.pageAirlockLogout, "")
	route("GET /airlock/{id}", n.pageAirlockOutput, "")
	route("GET /airlock/{id}/content", n.pageAirlockContent, "")
	route("POST /airlock/{id}/release", n.pageAirlockDecide, "")
	route("POST /airlock/{id}/reject", n.pageAirlockDecide, "")
}

// personOf names the person behind a token: its name, or its id.
func personOf(tok index.Token) string {
	if name := strings.TrimSpace(tok.Name); name != "" && len(name) <= 80 {
		return name
	}
	return "token " + tok.ID
}

// airlockError maps the store's errors to HTTP statuses.
func (n *Node) airlockError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, airlock.ErrNotFound), errors.Is(err, airlock.ErrNoContent):
		apiError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, airlock.ErrDecided), errors.Is(err, airlock.ErrSamePerson), errors.Is(err, airlock.ErrRefused):
		apiError(w, http.StatusConflict, err.Error())
	case errors.Is(err, airlock.ErrPerson):
		apiError(w, http.StatusBadRequest, err.Error())
	default:
		n.log.Error("airlock", "err", err)
		apiError(w, http.StatusInternalServerError, "the airlock failed: "+err.Error())
	}
}

func (n *Node) apiAirlockList(w http.ResponseWriter, r *http.Request) {
	s, err := n.Airlock()
	if err != nil {
		n.airlockError(w, err)
		return
	}
	all, err := s.List()
	if err != nil {
		n.airlockError(w, err)
		return
	}
	state, job := r.URL.Query().Get("state"), r.URL.Query().Get("job")
	out := []airlock.Held{}
	for _, h := range all {
		if (state == "" || h.State == state) && (job == "" || h.Job == job) {
			out = append(out, h)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"outputs": out, "policy": s.Policy()})
}

func (n *Node) apiAirlockGet(w http.ResponseWriter, r *http.Request) {
	s, err := n.Airlock()
	if err == nil {
		var h airlock.Held
		if h, err = s.Get(r.PathValue("id")); err == nil {
			writeJSON(w, http.StatusOK, h)
			return
		}
	}
	n.airlockError(w, err)
}

// contentType is how an output is served: as a download, never run by
// the browser.
func contentType(h airlock.Held) string {
	switch h.Verdict.Type {
	case airlock.FormatTable, airlock.FormatModel, airlock.FormatStats:
		return "application/json"
	case "csv":
		return "text/csv; charset=utf-8"
	case "png":
		return "image/png"
	case "text":
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

func (n *Node) serveContent(w http.ResponseWriter, r *http.Request, inline bool) {
	s, err := n.Airlock()
	if err != nil {
		n.airlockError(w, err)
		return
	}
	id := r.PathValue("id")
	h, err := s.Get(id)
	if err != nil {
		n.airlockError(w, err)
		return
	}
	data, err := s.Content(id)
	if err != nil {
		n.airlockError(w, err)
		return
	}
	w.Header().Set("Content-Type", contentType(h))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; sandbox")
	w.Header().Set("Cache-Control", "no-store")
	disp := "attachment"
	if inline && h.Verdict.Type == "png" {
		disp = "inline"
	}
	w.Header().Set("Content-Disposition", disp+"; filename*=UTF-8''"+url.PathEscape(filepath.Base(h.Name)))
	w.Write(data)
}

func (n *Node) apiAirlockContent(w http.ResponseWriter, r *http.Request) { n.serveContent(w, r, false) }

func (n *Node) apiAirlockRelease(w http.ResponseWriter, r *http.Request) {
	s, err := n.Airlock()
	if err == nil {
		var h airlock.Held
		if h, err = s.Release(r.PathValue("id"), personOf(tokenOf(r))); err == nil {
			writeJSON(w, http.StatusOK, h)
			return
		}
	}
	n.airlockError(w, err)
}

func (n *Node) apiAirlockReject(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			apiError(w, http.StatusBadRequest, `the body is {"reason": "..."}`)
			return
		}
	}
	s, err := n.Airlock()
	if err == nil {
		var h airlock.Held
		if h, err = s.Reject(r.PathValue("id"), personOf(tokenOf(r)), body.Reason); err == nil {
			writeJSON(w, http.StatusOK, h)
			return
		}
	}
	n.airlockError(w, err)
}

// The page.

const airlockCookie = "mosaic_airlock"

// pageToken returns the admin token of the page's cookie, if valid.
func (n *Node) pageToken(r *http.Request) (index.Token, string, bool) {
	c, err := r.Cookie(airlockCookie)
	if err != nil || c.Value == "" {
		return index.Token{}, "", false
	}
	ctx, cancel := n.dbContext(r.Context())
	defer cancel()
	tok, err := n.ix.CheckToken(ctx, c.Value)
	if err != nil || !tok.Allows(index.ScopeAdmin, "") {
		return index.Token{}, "", false
	}
	return tok, c.Value, true
}

// csrfToken is the page's CSRF token for a session (its cookie's
// secret): an HMAC under a key of this process.
func (n *Node) csrfToken(secret string) string {
	n.air.mu.Lock()
	if n.air.csrf == nil {
		n.air.csrf = make([]byte, 32)
		rand.Read(n.air.csrf)
	}
	key := n.air.csrf
	n.air.mu.Unlock()
	m := hmac.New(sha256.New, key)
	m.Write([]byte("airlock-page\x00" + secret))
	return hex.EncodeToString(m.Sum(nil))
}

// sameOrigin refuses a POST whose Origin or Referer names another site.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		o = r.Header.Get("Referer")
	}
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func pageHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "same-origin")
}

var airlockPage = template.Must(template.New("airlock").Funcs(template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Airlock · Mosaic node</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}
.held{color:#8a5a00}.released{color:#176117}.rejected,.refused{color:#a11}
pre{background:#f5f5f5;padding:.75rem;overflow:auto;max-height:30rem}
form.inline{display:inline}.error{background:#fee;border:1px solid #c99;padding:.5rem}
</style></head><body>
<h1>Airlock</h1>
{{if .Error}}<p class="error">{{.Error}}</p>{{end}}
{{if not .Person}}
<p>What jobs write waits here until the checks or people release it. Sign in with an admin token of this node
(<code>mosaic node token create --scope admin</code>).</p>
<form method="post" action="/airlock/login"><label>Admin token <input type="password" name="token" autocomplete="off" required></label>
<button>Sign in</button></form>
{{else}}
<form class="inline" method="post" action="/airlock/logout"><input type="hidden" name="csrf" value="{{.CSRF}}">Signed in as {{.Person}} <button>Sign out</button></form>
<p>Policy: cell threshold {{.Policy.CellThreshold}}, residual degrees of freedom at least {{.Policy.MinDF}},
dominance ({{.Policy.DominanceN}}, {{.Policy.DominanceK}}), p-ratio {{.Policy.PRatio}}{{if .Policy.ManualRelease}}, every output released by hand{{end}}{{if .Policy.TwoPerson}}, by two people{{end}}.</p>
{{if .Output}}{{with .Output}}
<h2>{{.Name}}</h2>
<table>
<tr><th>Output</th><td>{{.ID}}</td></tr><tr><th>Job</th><td>{{.Job}}</td></tr>
<tr><th>State</th><td class="{{.State}}">{{.State}}</td></tr><tr><th>Type</th><td>{{.Verdict.Type}}</td></tr>
<tr><th>Size</th><td>{{.Size}} bytes, SHA-256 {{.SHA256}}</td></tr><tr><th>Held</th><td>{{when .Created}}</td></tr>
{{if .Approvals}}<tr><th>Approved by</th><td>{{range .Approvals}}{{.}} {{end}}</td></tr>{{end}}
{{if .DecidedBy}}<tr><th>Decided by</th><td>{{range .DecidedBy}}{{.}} {{end}} {{when .Decided}}</td></tr>{{end}}
{{if .Reason}}<tr><th>Reason</th><td>{{.Reason}}</td></tr>{{end}}
</table>
<h3>Checks: {{.Verdict.Decision}}</h3>
<ul>{{range .Verdict.Findings}}<li><b>{{.Result}}</b> {{.Check}}: {{.Detail}}</li>{{end}}</ul>
{{end}}
{{if .Image}}<p><img alt="the output" src="/airlock/{{.Output.ID}}/content" style="max-width:100%"></p>{{end}}
{{if .Text}}<pre>{{.Text}}</pre>{{end}}
{{if .Output.Stored}}<p><a href="/airlock/{{.Output.ID}}/content">Download the content</a></p>{{end}}
{{if eq .Output.State "held"}}
<form method="post" action="/airlock/{{.Output.ID}}/release"><input type="hidden" name="csrf" value="{{.CSRF}}"><button>Release</button></form>
<form method="post" action="/airlock/{{.Output.ID}}/reject"><input type="hidden" name="csrf" value="{{.CSRF}}">
<label>Reason <input name="reason" size="50" maxlength="500"></label> <button>Reject</button></form>
{{end}}
<p><a href="/airlock">All outputs</a></p>
{{else}}
<table><tr><th>Held</th><th>Job</th><th>Output</th><th>Type</th><th>Checks</th><th>State</th></tr>
{{range .Outputs}}<tr><td>{{when .Created}}</td><td>{{.Job}}</td><td><a href="/airlock/{{.ID}}">{{.Name}}</a></td><td>{{.Verdict.Type}}</td>
<td>{{.Verdict.Decision}}</td><td class="{{.State}}">{{.State}}{{if .Approvals}}{{if eq .State "held"}} (1 approval){{end}}{{end}}</td></tr>
{{else}}<tr><td colspan="6">No outputs.</td></tr>{{end}}
</table>
{{end}}
{{end}}
</body></html>
`))

type airlockView struct {
	Error   string
	Person  string
	CSRF    string
	Policy  airlock.Policy
	Outputs []airlock.Held
	Output  *airlock.Held
	Text    string
	Image   bool
}

func (n *Node) renderAirlock(w http.ResponseWriter, status int, v airlockView) {
	pageHeaders(w)
	w.WriteHeader(status)
	if err := airlockPage.Execute(w, v); err != nil {
		n.log.Error("airlock page", "err", err)
	}
}

func (n *Node) pageAirlock(w http.ResponseWriter, r *http.Request) {
	tok, secret, ok := n.pageToken(r)
	if !ok {
		n.renderAirlock(w, http.StatusOK, airlockView{})
		return
	}
	s, err := n.Airlock()
	var all []airlock.Held
	if err == nil {
		all, err = s.List()
	}
	v := airlockView{Person: personOf(tok), CSRF: n.csrfToken(secret)}
	if err != nil {
		v.Error = err.Error()
		n.renderAirlock(w, http.StatusInternalServerError, v)
		return
	}
	v.Policy = s.Policy()
	// Newest first.
	for i := len(all) - 1; i >= 0; i-- {
		v.Outputs = append(v.Outputs, all[i])
	}
	n.renderAirlock(w, http.StatusOK, v)
}

func (n *Node) pageAirlockOutput(w http.ResponseWriter, r *http.Request) {
	tok, secret, ok := n.pageToken(r)
	if !ok {
		http.Redirect(w, r, "/airlock", http.StatusSeeOther)
		return
	}
	s, err := n.Airlock()
	v := airlockView{Person: personOf(tok), CSRF: n.csrfToken(secret)}
	var h airlock.Held
	if err == nil {
		h, err = s.Get(r.PathValue("id"))
	}
	if err != nil {
		v.Error = err.Error()
		status := http.StatusInternalServerError
		if errors.Is(err, airlock.ErrNotFound) {
			status = http.StatusNotFound
		}
		n.renderAirlock(w, status, v)
		return
	}
	v.Policy, v.Output = s.Policy(), &h
	if h.Stored {
		switch h.Verdict.Type {
		case "png":
			v.Image = true
		case "text", "csv", airlock.FormatTable, airlock.FormatModel, airlock.FormatStats:
			if data, err := s.Content(h.ID); err == nil {
				if len(data) > 256<<10 {
					data = append(data[:256<<10:256<<10], "\n… (download the rest)"...)
				}
				v.Text = string(data)
			}
		}
	}
	n.renderAirlock(w, http.StatusOK, v)
}

func (n *Node) pageAirlockContent(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := n.pageToken(r); !ok {
		apiError(w, http.StatusUnauthorized, "sign in on /airlock first")
		return
	}
	n.serveContent(w, r, true)
}

func (n *Node) pageAirlockLogin(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		apiError(w, http.StatusForbidden, "a sign-in from another site")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	secret := strings.TrimSpace(r.PostFormValue("token"))
	ctx, cancel := context.WithTimeout(r.Context(), n.cfg.CommitTimeout)
	defer cancel()
	tok, err := n.ix.CheckToken(ctx, secret)
	if err != nil || !tok.Allows(index.ScopeAdmin, "") {
		n.renderAirlock(w, http.StatusUnauthorized, airlockView{Error: "that is not an admin token of this node for all datasets"})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: airlockCookie, Value: secret, Path: "/airlock", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: 8 * 3600})
	http.Redirect(w, r, "/airlock", http.StatusSeeOther)
}

func (n *Node) pageAirlockLogout(w http.ResponseWriter, r *http.Request) {
	if _, secret, ok := n.pageToken(r); ok && n.checkCSRF(r, secret) {
		http.SetCookie(w, &http.Cookie{Name: airlockCookie, Value: "", Path: "/airlock", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	}
	http.Redirect(w, r, "/airlock", http.StatusSeeOther)
}

// checkCSRF checks a page form's origin and CSRF token.
func (n *Node) checkCSRF(r *http.Request, secret string) bool {
	if !sameOrigin(r) {
		return false
	}
	got := r.PostFormValue("csrf")
	return got != "" && hmac.Equal([]byte(got), []byte(n.csrfToken(secret)))
}

func (n *Node) pageAirlockDecide(w http.ResponseWriter, r *http.Request) {
	tok, secret, ok := n.pageToken(r)
	if !ok {
		apiError(w, http.StatusUnauthorized, "sign in on /airlock first")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if !n.checkCSRF(r, secret) {
		apiError(w, http.StatusForbidden, "the form's CSRF token is missing or wrong: reload /airlock and try again")
		return
	}
	s, err := n.Airlock()
	id := r.PathValue("id")
	if err == nil {
		if strings.HasSuffix(r.URL.Path, "/release") {
			_, err = s.Release(id, personOf(tok))
		} else {
			_, err = s.Reject(id, personOf(tok), r.PostFormValue("reason"))
		}
	}
	if err != nil {
		v := airlockView{Person: personOf(tok), CSRF: n.csrfToken(secret), Error: err.Error()}
		if s != nil {
			if h, gerr := s.Get(id); gerr == nil {
				v.Output, v.Policy = &h, s.Policy()
			}
		}
		status := http.StatusConflict
		if errors.Is(err, airlock.ErrNotFound) {
			status = http.StatusNotFound
		}
		n.renderAirlock(w, status, v)
		return
	}
	http.Redirect(w, r, "/airlock/"+id, http.StatusSeeOther)
}

// The CLI's decisions while a node serves: the CLI cannot write the audit
// log the serving process holds, so it leaves its decision as a request
// file in DATA/airlock/requests and waits for the answer file the serving
// process writes beside it once it decided (and recorded) it.

// airlockReq is a decision handed to a serving node.
type airlockReq struct {
	Op     string `json:"op"` // release, reject
	ID     string `json:"id"`
	Person string `json:"person"`
	Reason string `json:"reason,omitempty"`
}

// airlockAns is the serving node's answer to an airlockReq.
type airlockAns struct {
	Held  *airlock.Held `json:"held,omitempty"`
	Error string        `json:"error,omitempty"`
	// Code names the store's error: not-found, decided, same-person,
	// refused, person.
	Code string `json:"code,omitempty"`
}

func (n *Node) requestsDir() string { return filepath.Join(AirlockDir(n.cfg.Data), "requests") }

var airlockCodes = map[string]error{"not-found": airlock.ErrNotFound, "decided": airlock.ErrDecided,
	"same-person": airlock.ErrSamePerson, "refused": airlock.ErrRefused, "person": airlock.ErrPerson}

// AirlockRequest hands a decision (op "release" or "reject") to the
// serving node that holds the audit log, and waits for its answer until
// ctx ends. The errors are the store's (errors.Is works).
func (n *Node) AirlockRequest(ctx context.Context, op, id, person, reason string) (airlock.Held, error) {
	if op != "release" && op != "reject" {
		return airlock.Held{}, fmt.Errorf("node: airlock request %q: release or reject", op)
	}
	dir := n.requestsDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return airlock.Held{}, err
	}
	var rb [8]byte
	rand.Read(rb[:])
	name := hex.EncodeToString(rb[:])
	b, _ := json.Marshal(airlockReq{Op: op, ID: id, Person: person, Reason: reason})
	req, ans := filepath.Join(dir, name+".req"), filepath.Join(dir, name+".ans")
	if err := writeFileAtomic(req, b); err != nil {
		return airlock.Held{}, err
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(ans); err == nil {
			os.Remove(ans)
			var a airlockAns
			if err := json.Unmarshal(b, &a); err != nil {
				return airlock.Held{}, fmt.Errorf("node: the serving node's answer is damaged")
			}
			if a.Error != "" {
				if e, ok := airlockCodes[a.Code]; ok {
					return airlock.Held{}, fmt.Errorf("%w (%s)", e, a.Error)
				}
				return airlock.Held{}, errors.New(a.Error)
			}
			if a.Held == nil {
				return airlock.Held{}, errors.New("node: the serving node answered nothing")
			}
			return *a.Held, nil
		}
		select {
		case <-ctx.Done():
			// Take the request back unless the node is taking it now.
			if os.Remove(req) == nil {
				return airlock.Held{}, fmt.Errorf("%w; it did not answer in time", ErrAuditBusy)
			}
			return airlock.Held{}, fmt.Errorf("node: the serving node took the decision but did not answer in time: see 'mosaic node airlock show %s'", id)
		case <-tick.C:
		}
	}
}

// airlockInbox takes the CLI's decisions while this process holds the
// audit log, until stop is closed.
func (n *Node) airlockInbox(stop chan struct{}) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		ents, err := os.ReadDir(n.requestsDir())
		if err != nil {
			continue
		}
		for _, e := range ents {
			name, ok := strings.CutSuffix(e.Name(), ".req")
			if !ok {
				continue
			}
			n.takeAirlockRequest(filepath.Join(n.requestsDir(), name))
		}
	}
}

// takeAirlockRequest decides one request (base path without extension)
// and writes its answer.
func (n *Node) takeAirlockRequest(base string) {
	// Claim the request: the CLI may take it back at the same moment.
	claimed := base + ".taken"
	if os.Rename(base+".req", claimed) != nil {
		return
	}
	defer os.Remove(claimed)
	var a airlockAns
	var r airlockReq
	b, err := os.ReadFile(claimed)
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	var s *airlock.Store
	if err == nil {
		s, err = n.Airlock()
	}
	if err == nil {
		var h airlock.Held
		switch r.Op {
		case "release":
			h, err = s.Release(r.ID, r.Person)
		case "reject":
			h, err = s.Reject(r.ID, r.Person, r.Reason)
		default:
			err = errors.New("unknown request")
		}
		if err == nil {
			a.Held = &h
		}
	}
	if err != nil {
		a.Error = err.Error()
		for code, e := range airlockCodes {
			if errors.Is(err, e) {
				a.Code = code
			}
		}
	}
	out, _ := json.Marshal(a)
	if err := writeFileAtomic(base+".ans", out); err != nil {
		n.log.Error("airlock: cannot answer the command line", "err", err)
	}
}

// writeFileAtomic writes data through a temporary file renamed into
// place.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// AirlockInputs describes a job's inputs for the airlock's row-level
// checks: a matcher of the patient pseudonyms and study UIDs of a
// snapshot of a dataset (for airlock.Output.IsPseudonym and
// LogFilter.IsPseudonym), and how many patients it holds (for
// airlock.Output.InputRows, with the row counts of its tables).
func (n *Node) AirlockInputs(ctx context.Context, dataset, snapshot string) (isPseudonym func(string) bool, patients int, err error) {
	ctx, cancel := n.dbContext(ctx)
	defer cancel()
	members, err := n.ix.SnapshotStudies(ctx, snapshot, dataset)
	if err != nil {
		return nil, 0, err
	}
	ids := make([]string, 0, 2*len(members))
	seen := map[string]bool{}
	for _, m := range members {
		if !seen[m.Patient] {
			seen[m.Patient] = true
			ids = append(ids, m.Patient)
		}
		ids = append(ids, m.Study)
	}
	return airlock.PseudonymSet(ids), len(seen), nil
}
