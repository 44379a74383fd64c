package access

import (
	"strconv"
	"strings"
	"testing"
)

// TestForbidden: each party may do only its own part (403), and a
// request someone may not see does not exist for them (404).
func TestForbidden(t *testing.T) {
	w := newWorld(t, t.TempDir()+"/hub.db", Config{})
	var r Request
	w.must(t, 201, "alice", "POST", "/api/v1/access-requests", newInput(dsA, dsB), &r)
	base := "/api/v1/access-requests/" + r.ID

	// Before the admin's approval the representatives see nothing.
	w.must(t, 200, "alice", "POST", base+"/submit", nil, nil)
	w.must(t, 404, "repA", "GET", base, nil, nil)
	w.must(t, 404, "repA", "POST", decisionPath(r.ID, dsA), map[string]string{"decision": "approve"}, nil)

	cases := []struct {
		name, user, method, path string
		body                     any
		want                     int
	}{
		{"a researcher reviews", "alice", "POST", base + "/review", map[string]string{"decision": "approve"}, 403},
		{"a representative reviews", "repA", "POST", base + "/review", map[string]string{"decision": "approve"}, 404},
		{"another researcher reviews", "mallory", "POST", base + "/review", map[string]string{"decision": "approve"}, 404},
		{"another researcher reads", "mallory", "GET", base, nil, 404},
		{"another researcher submits", "mallory", "POST", base + "/submit", nil, 404},
		{"another researcher edits", "mallory", "PATCH", base, newInput(dsA), 404},
		{"an admin edits", "root", "PATCH", base, newInput(dsA), 403},
		{"an admin submits", "root", "POST", base + "/submit", nil, 403},
		{"a researcher lists for review", "alice", "GET", "/api/v1/access-requests?list=review", nil, 403},
		{"nobody logged in", "", "GET", base, nil, 401},
		{"an unknown token", "eve", "POST", "/api/v1/access-requests", newInput(dsA), 401},
	}
	for _, c := range cases {
		if got, msg := w.call(t, c.user, c.method, c.path, c.body, nil); got != c.want {
			t.Errorf("%s: %d (%s), want %d", c.name, got, msg, c.want)
		}
	}

	w.must(t, 200, "root", "POST", base+"/review", map[string]string{"decision": "approve"}, nil)
	cases = []struct {
		name, user, method, path string
		body                     any
		want                     int
	}{
		{"representative of A decides for B", "repA", "POST", decisionPath(r.ID, dsB), map[string]string{"decision": "approve"}, 403},
		{"representative of A marks B available", "repA", "POST", decisionPath(r.ID, dsB), map[string]string{"decision": "available"}, 403},
		{"representative of C decides for A", "repC", "POST", decisionPath(r.ID, dsA), map[string]string{"decision": "decline"}, 404},
		{"the researcher decides", "alice", "POST", decisionPath(r.ID, dsA), map[string]string{"decision": "approve"}, 403},
		{"an admin decides", "root", "POST", decisionPath(r.ID, dsA), map[string]string{"decision": "approve"}, 403},
		{"a representative accepts conditions", "repA", "POST", base + "/datasets/node-a/lung/accept-conditions", nil, 403},
		{"a dataset the request does not name", "repC", "POST", decisionPath(r.ID, dsC), map[string]string{"decision": "approve"}, 404},
	}
	for _, c := range cases {
		got, msg := w.call(t, c.user, c.method, c.path, c.body, nil)
		if got != c.want {
			t.Errorf("%s: %d (%s), want %d", c.name, got, msg, c.want)
		}
		if got == 403 && !strings.Contains(msg, "only") {
			t.Errorf("%s: 403 without saying who may: %q", c.name, msg)
		}
	}
	// The 403 for repA on B is the represents check itself: repA sees the
	// request through A, so the request is visible, the dataset not theirs.
	if len(w.grant.calls) != 0 {
		t.Errorf("refused decisions asked nodes for snapshots: %+v", w.grant.calls)
	}
}

// TestConflicts: a step the request's or dataset's state does not allow
// is 409, and the message names the current state.
func TestConflicts(t *testing.T) {
	w := newWorld(t, t.TempDir()+"/hub.db", Config{})
	var r Request
	w.must(t, 201, "alice", "POST", "/api/v1/access-requests", newInput(dsA, dsB), &r)
	base := "/api/v1/access-requests/" + r.ID
	check := func(name, user, method, path string, body any, state string) {
		t.Helper()
		got, msg := w.call(t, user, method, path, body, nil)
		if got != 409 || !strings.Contains(msg, state) {
			t.Errorf("%s: %d %q, want 409 naming %q", name, got, msg, state)
		}
	}
	check("review a draft", "root", "POST", base+"/review", map[string]string{"decision": "approve"}, StateDraft)
	check("message on a draft", "alice", "POST", base+"/messages", map[string]string{"body": "hello"}, "submit")
	w.must(t, 200, "alice", "POST", base+"/submit", nil, nil)
	check("submit twice", "alice", "POST", base+"/submit", nil, StateSubmitted)
	// Before negotiation a dataset's thread is the researcher's and the
	// admins': its representatives are not told.
	w.mail.reset()
	w.must(t, 201, "alice", "POST", base+"/messages", map[string]string{"thread": "node-a/lung", "body": "Before review"}, nil)
	if got := w.mail.to("repa@example.org"); len(got) != 0 {
		t.Errorf("A's representative heard of a message before the review: %q", got)
	}
	if got := w.mail.to("root@example.org"); len(got) != 1 {
		t.Errorf("the admin got %q for a message before the review", got)
	}
	check("edit when submitted", "alice", "PATCH", base, newInput(dsA), StateSubmitted)
	w.must(t, 200, "root", "POST", base+"/review", map[string]string{"decision": "approve"}, nil)
	check("review twice", "root", "POST", base+"/review", map[string]string{"decision": "decline"}, StateNegotiating)
	check("edit under negotiation", "alice", "PATCH", base, newInput(dsA), StateNegotiating)
	check("accept conditions never indicated", "alice", "POST", base+"/datasets/node-a/lung/accept-conditions", nil, DSContacted)

	w.must(t, 200, "repA", "POST", decisionPath(r.ID, dsA), map[string]string{"decision": "conditions", "message": "Cite us."}, nil)
	check("approve before the conditions are met", "repA", "POST", decisionPath(r.ID, dsA), map[string]string{"decision": "approve"}, DSConditions)
	check("checking after conditions", "repA", "POST", decisionPath(r.ID, dsA), map[string]string{"decision": "checking"}, DSConditions)
	w.must(t, 200, "repA", "POST", decisionPath(r.ID, dsA), map[string]string{"decision": "decline"}, nil)
	check("approve after decline", "repA", "POST", decisionPath(r.ID, dsA), map[string]string{"decision": "approve"}, DSRefused)
	check("accept conditions after decline", "alice", "POST", base+"/datasets/node-a/lung/accept-conditions", nil, DSRefused)

	w.must(t, 200, "repB", "POST", decisionPath(r.ID, dsB), map[string]string{"decision": "unavailable"}, nil)
	check("approve an unavailable dataset", "repB", "POST", decisionPath(r.ID, dsB), map[string]string{"decision": "approve"}, DSUnavailable)
	w.must(t, 200, "alice", "GET", base, nil, &r)
	if r.State != StateClosed {
		t.Errorf("request is %s with every dataset decided", r.State)
	}

	// A declined request stays declined.
	var r2 Request
	w.must(t, 201, "alice", "POST", "/api/v1/access-requests", newInput(dsA), &r2)
	w.must(t, 200, "alice", "POST", "/api/v1/access-requests/"+r2.ID+"/submit", nil, nil)
	w.must(t, 200, "root", "POST", "/api/v1/access-requests/"+r2.ID+"/review", map[string]string{"decision": "decline", "message": "Out of scope."}, nil)
	check("submit a declined request", "alice", "POST", "/api/v1/access-requests/"+r2.ID+"/submit", nil, StateDeclined)
}

// TestVisibility: a representative sees their own datasets' states and
// threads only; a researcher their own requests; admins everything;
// tokens go to the researcher alone.
func TestVisibility(t *testing.T) {
	w := newWorld(t, t.TempDir()+"/hub.db", Config{})
	id := w.negotiating(t, dsA, dsB)
	base := "/api/v1/access-requests/" + id
	w.must(t, 200, "repA", "POST", decisionPath(id, dsA), map[string]string{"decision": "approve"}, nil)
	w.must(t, 200, "repB", "POST", decisionPath(id, dsB), map[string]string{"decision": "approve"}, nil)

	var r Request
	w.must(t, 200, "repA", "GET", base, nil, &r)
	if len(r.Datasets) != 1 || r.Datasets[0].Node != "node-a" {
		t.Errorf("A's representative sees datasets %+v", r.Datasets)
	}
	if len(r.Permits) != 1 || r.Permits[0].Node != "node-a" || r.Permits[0].Token != "" {
		t.Errorf("A's representative sees permits %+v", r.Permits)
	}
	if r.Title == "" || string(r.Query) == "" || r.Description == "" {
		t.Errorf("the representative does not see the purpose and query: %+v", r)
	}
	w.must(t, 200, "root", "GET", base, nil, &r)
	if len(r.Datasets) != 2 || len(r.Permits) != 2 || r.Permits[0].Token != "" || r.Permits[1].Token != "" {
		t.Errorf("admin sees %d datasets, permits %+v (no tokens wanted)", len(r.Datasets), r.Permits)
	}
	w.must(t, 200, "alice", "GET", base, nil, &r)
	if len(r.Permits) != 2 || r.Permits[0].Token == "" {
		t.Errorf("the researcher sees permits %+v, want their tokens", r.Permits)
	}

	// Lists.
	var l struct{ Requests []Request }
	w.must(t, 200, "mallory", "GET", "/api/v1/access-requests?list=mine", nil, &l)
	if len(l.Requests) != 0 {
		t.Errorf("another researcher lists %d requests", len(l.Requests))
	}
	w.must(t, 200, "mallory", "GET", "/api/v1/access-requests", nil, &l)
	if len(l.Requests) != 0 {
		t.Errorf("another researcher sees %d requests", len(l.Requests))
	}
	w.must(t, 200, "repC", "GET", "/api/v1/access-requests?list=decide", nil, &l)
	if len(l.Requests) != 0 {
		t.Errorf("C's representative has %d requests to decide", len(l.Requests))
	}
	w.must(t, 200, "repA", "GET", "/api/v1/access-requests?list=decide", nil, &l)
	if len(l.Requests) != 1 || len(l.Requests[0].Datasets) != 1 {
		t.Errorf("A's representative has to decide %+v", l.Requests)
	}
	w.must(t, 400, "repA", "GET", "/api/v1/access-requests?list=everything", nil, nil)

	// Threads: one per dataset and a general one.
	post := func(user, thread, body string, want int) {
		t.Helper()
		w.must(t, want, user, "POST", base+"/messages", map[string]string{"thread": thread, "body": body}, nil)
	}
	w.mail.reset()
	post("alice", "node-a/lung", "Question for A", 201)
	if got := w.mail.to("repa@example.org"); len(got) != 1 {
		t.Errorf("A's representative got %q for a message in A's thread", got)
	}
	for _, addr := range []string{"repb@example.org", "repb2@example.org", "repc@example.org", "alice@example.org", "mallory@example.org"} {
		if got := w.mail.to(addr); len(got) != 0 {
			t.Errorf("%s got %q for a message in A's thread", addr, got)
		}
	}
	if got := w.mail.to("root@example.org"); len(got) != 1 {
		t.Errorf("admin got %q for a message in A's thread", got)
	}
	post("repB", "node-b/brain", "Answer from B", 201)
	post("root", "", "General note", 201)
	post("repA", "node-b/brain", "A writes in B", 403)
	post("repA", "", "A writes in general", 403)
	post("mallory", "", "outsider", 404)
	post("alice", "node-z/none", "no such thread", 404)
	post("alice", "node-a/lung", "", 400)

	var msgs struct{ Messages []Message }
	w.must(t, 200, "repA", "GET", base+"/messages", nil, &msgs)
	if len(msgs.Messages) != 1 || msgs.Messages[0].Thread != "node-a/lung" {
		t.Errorf("A's representative reads %+v", msgs.Messages)
	}
	w.must(t, 403, "repA", "GET", base+"/messages?thread=node-b/brain", nil, nil)
	w.must(t, 403, "repA", "GET", base+"/messages?thread=", nil, nil)
	w.must(t, 200, "repB2", "GET", base+"/messages?thread=node-b/brain", nil, &msgs)
	if len(msgs.Messages) != 1 || msgs.Messages[0].Body != "Answer from B" {
		t.Errorf("B's second representative reads %+v", msgs.Messages)
	}
	w.must(t, 200, "alice", "GET", base+"/messages", nil, &msgs)
	if len(msgs.Messages) != 3 {
		t.Errorf("the researcher reads %d messages, want 3", len(msgs.Messages))
	}
	w.must(t, 200, "root", "GET", base+"/messages", nil, &msgs)
	if len(msgs.Messages) != 3 {
		t.Errorf("the admin reads %d messages, want 3", len(msgs.Messages))
	}
	w.must(t, 404, "mallory", "GET", base+"/messages", nil, nil)

	// Notifications are per user and can be marked read.
	var ns struct{ Notifications []Notification }
	w.must(t, 200, "repA", "GET", "/api/v1/notifications", nil, &ns)
	if len(ns.Notifications) == 0 {
		t.Fatal("A's representative has no notifications")
	}
	for _, n := range ns.Notifications {
		if n.Request != id {
			t.Errorf("notification of another request: %+v", n)
		}
	}
	first := ns.Notifications[0].ID
	w.must(t, 404, "repB", "POST", "/api/v1/notifications/"+itoa(first)+"/read", nil, nil)
	w.must(t, 200, "repA", "POST", "/api/v1/notifications/"+itoa(first)+"/read", nil, nil)
	w.must(t, 200, "repA", "GET", "/api/v1/notifications?unread=true", nil, &ns)
	for _, n := range ns.Notifications {
		if n.ID == first {
			t.Errorf("notification %d still unread", first)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestSeparationOfDuties: nobody checks or decides their own request:
// an admin's own request is reviewed by another admin, and a
// representative's own request for their dataset is decided by another
// representative of it.
func TestSeparationOfDuties(t *testing.T) {
	w := newWorld(t, t.TempDir()+"/hub.db", Config{})
	var r Request
	w.must(t, 201, "root", "POST", "/api/v1/access-requests", newInput(dsA), &r)
	w.must(t, 200, "root", "POST", "/api/v1/access-requests/"+r.ID+"/submit", nil, nil)
	if got, msg := w.call(t, "root", "POST", "/api/v1/access-requests/"+r.ID+"/review", map[string]string{"decision": "approve"}, nil); got != 403 {
		t.Errorf("an admin reviewed their own request: %d %s", got, msg)
	}
	var own Request
	w.must(t, 201, "repA", "POST", "/api/v1/access-requests", newInput(dsA), &own)
	w.must(t, 200, "repA", "POST", "/api/v1/access-requests/"+own.ID+"/submit", nil, nil)
	w.must(t, 200, "root", "POST", "/api/v1/access-requests/"+own.ID+"/review", map[string]string{"decision": "approve"}, nil)
	if got, msg := w.call(t, "repA", "POST", decisionPath(own.ID, dsA), map[string]string{"decision": "approve"}, nil); got != 403 {
		t.Errorf("a representative decided their own request: %d %s", got, msg)
	}
}
