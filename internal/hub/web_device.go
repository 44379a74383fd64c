package hub

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/mosaic-imaging/mosaic/internal/oidc"
)

// The /device page: a logged-in user enters the code `mosaic login`
// printed, sees what asks for a token, and approves or denies.

type uiDeviceData struct {
	UserCode string
	Request  *deviceRequest
	Error    string
	Done     string
}

func (h *Hub) uiDeviceLogin(w http.ResponseWriter, r *http.Request) bool {
	if _, ok := h.sessionUser(r); ok {
		return true
	}
	http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
	return false
}

// sessionUser is the user of the browser's session cookie (not of a
// bearer token: the page is for people).
func (h *Hub) sessionUser(r *http.Request) (User, bool) {
	if r.Header.Get("Authorization") != "" {
		return User{}, false
	}
	return h.userOf(r)
}

func (h *Hub) uiDeviceForm(w http.ResponseWriter, r *http.Request) {
	if !h.uiDeviceLogin(w, r) {
		return
	}
	d := uiDeviceData{}
	if raw := r.URL.Query().Get("user_code"); raw != "" {
		code, ok := oidc.NormalizeUserCode(raw)
		if ok {
			d.UserCode = code
			req, found, err := h.pendingDevice(r.Context(), code)
			if err != nil {
				h.uiInternalError(w, r, "device", err)
				return
			}
			if found {
				d.Request = &req
			}
		}
		if d.Request == nil {
			d.UserCode, d.Error = uiClip(raw, 16), "This code is unknown, used or expired. Check it, or run mosaic login again."
		}
	}
	h.uiRender(w, r, http.StatusOK, "device", uiPage{Title: "Connect a device", Body: d})
}

func (h *Hub) uiDevice(w http.ResponseWriter, r *http.Request) {
	u, ok := h.sessionUser(r)
	if !ok {
		h.uiMessage(w, r, http.StatusUnauthorized, "Log in first", "Log in to the hub, then enter the code again.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		h.uiMessage(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	render := func(status int, d uiDeviceData) {
		h.uiRender(w, r, status, "device", uiPage{Title: "Connect a device", Body: d})
	}
	if wait := h.oidc.codes.Wait(u.ID); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa((&ThrottledError{wait}).Seconds()))
		render(http.StatusTooManyRequests, uiDeviceData{Error: "Too many wrong codes. For your protection, try again in " + uiWait((&ThrottledError{wait}).Seconds()) + "."})
		return
	}
	raw := r.PostForm.Get("user_code")
	code, ok := oidc.NormalizeUserCode(raw)
	var req deviceRequest
	found := false
	if ok {
		var err error
		if req, found, err = h.pendingDevice(r.Context(), code); err != nil {
			h.uiInternalError(w, r, "device", err)
			return
		}
	}
	if !found {
		h.oidc.codes.Fail(u.ID)
		render(http.StatusNotFound, uiDeviceData{UserCode: uiClip(raw, 16), Error: "This code is unknown, used or expired. Check it, or run mosaic login again."})
		return
	}
	switch r.PostForm.Get("decision") {
	case "approve", "deny":
	default:
		// Only the code was entered: show what asks.
		render(http.StatusOK, uiDeviceData{UserCode: code, Request: &req})
		return
	}
	approve := r.PostForm.Get("decision") == "approve"
	done, err := h.decideDevice(r.Context(), code, u.ID, approve)
	if err != nil {
		if errorsIsAudit(err) {
			h.uiMessage(w, r, http.StatusServiceUnavailable, "Not approved", "The hub cannot write its audit log, so it approves nothing. Try again later.")
			return
		}
		h.uiInternalError(w, r, "device", err)
		return
	}
	if !done {
		render(http.StatusConflict, uiDeviceData{Error: "This code was approved, denied or expired meanwhile. Run mosaic login again."})
		return
	}
	msg := "Denied: the command gets no token."
	if approve {
		msg = "Approved: the command on your device now gets an API token for your account. You may close this page."
	}
	render(http.StatusOK, uiDeviceData{Done: msg})
}
