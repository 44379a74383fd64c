package hub

import (
	"net/http"
	"time"
)

// The nodes page, for administrators: each node's status and the
// disclosure alerts nodes raised.

type uiNodesData struct {
	Alerts []Alert
	Nodes  []NodeInfo
	Now    time.Time
}

func (h *Hub) uiNodes(w http.ResponseWriter, r *http.Request) {
	u, ok := h.userOf(r)
	if !ok {
		http.Redirect(w, r, uiLoginPath(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	if u.Role != RoleAdmin {
		h.uiRender(w, r, http.StatusForbidden, "message", uiPage{Title: "Administrators only", User: &u, Body: uiMessageData{
			Heading: "Administrators only", Text: "The node status page is for the hub's administrators. Your account is a " + u.Role + " account.",
			Link: "/", LinkText: "Back to the dashboard"}})
		return
	}
	nodes, err := h.NodeInfos(r.Context())
	if err != nil {
		h.uiInternalError(w, r, "nodes", err)
		return
	}
	h.uiRender(w, r, http.StatusOK, "nodes", uiPage{Title: "Nodes", Active: "nodes", User: &u, Body: uiNodesData{Nodes: nodes, Alerts: h.Alerts(), Now: time.Now()}})
}
