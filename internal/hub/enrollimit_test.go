package hub

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/fed"
)

// auditActions reads the hub's audit log: the details of each record
// with action.
func auditActions(t *testing.T, h *Hub, action string) []map[string]any {
	t.Helper()
	f, err := os.Open(filepath.Join(h.cfg.Data, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec struct {
			Action string         `json:"action"`
			Detail map[string]any `json:"detail"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Action == action {
			out = append(out, rec.Detail)
		}
	}
	return out
}

// TestEnrolmentFlood: a burst of 1,000 enrolments with bad tokens from
// one address is answered 429 (with Retry-After) past the limit and adds
// two audit records carrying the count, not 1,000; a real enrolment from
// another address goes through meanwhile.
func TestEnrolmentFlood(t *testing.T) {
	h, _, _ := testHub(t)
	handler := h.Handler()
	_, key, _ := ed25519.GenerateKey(nil)
	pub := fed.EncodeKey(key.Public().(ed25519.PublicKey))
	post := func(remote, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/api/v1/enroll", strings.NewReader(body))
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		return rec
	}
	const attempts = 1000
	codes := map[int]int{}
	for i := range attempts {
		rec := post("198.51.100.7:"+strconv.Itoa(1024+i), `{"token":"mhe_guess`+strconv.Itoa(i)+`","public_key":"`+pub+`"}`)
		codes[rec.Code]++
		if rec.Code == http.StatusTooManyRequests {
			if s, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || s < 1 {
				t.Fatalf("429 with Retry-After %q", rec.Header().Get("Retry-After"))
			}
		}
	}
	if codes[http.StatusUnauthorized] != enrolBurst || codes[http.StatusTooManyRequests] != attempts-enrolBurst {
		t.Errorf("answers %v, want %d refused and the rest 429", codes, enrolBurst)
	}

	tok, err := h.AddNode(context.Background(), "north", "North", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if rec := post("203.0.113.9:5000", `{"token":"`+tok+`","public_key":"`+pub+`","version":"t"}`); rec.Code != http.StatusOK {
		t.Fatalf("real enrolment from another address: %d %s", rec.Code, rec.Body)
	}

	h.flushEnrolRefusals(true)
	recs := auditActions(t, h, "enroll-refused")
	total := 0
	for _, d := range recs {
		if d["remote"] != "198.51.100.7" {
			t.Errorf("audit record of %v", d["remote"])
		}
		c, _ := d["count"].(float64) // absent in a record per attempt
		total += max(int(c), 1)
	}
	if len(recs) > 2 || total != attempts {
		t.Errorf("%d audit records counting %d attempts, want at most 2 counting %d: %v", len(recs), total, attempts, recs)
	}
	if n := len(auditActions(t, h, "enroll")); n != 1 {
		t.Errorf("%d enrol records, want 1", n)
	}
}

// TestEnrolLimitRefill: a limited source gets an attempt back after
// enrolRefill, and its refusals are summarised once per window.
func TestEnrolLimitRefill(t *testing.T) {
	now := time.Unix(1e9, 0)
	l := newEnrolLimit()
	l.now = func() time.Time { return now }
	for range enrolBurst {
		if ok, _ := l.take("a"); !ok {
			t.Fatal("refused within the burst")
		}
		l.refused("a")
	}
	ok, retry := l.take("a")
	if ok || retry != enrolRefill {
		t.Fatalf("past the burst: %v, retry %s", ok, retry)
	}
	if got := l.due(false); len(got) != 0 {
		t.Errorf("summary before the window ended: %v", got)
	}
	now = now.Add(enrolRefill)
	if ok, _ := l.take("a"); !ok {
		t.Error("no attempt back after the refill time")
	}
	now = now.Add(enrolWindow)
	if got := l.due(false); len(got) != 1 || got[0].refused != enrolBurst-1 || got[0].limited != 1 {
		t.Errorf("summary %+v", got)
	}
	if ip := sourceOf("[2001:db8:1:2:3:4:5:6]:443"); ip != "2001:db8:1:2::/64" {
		t.Errorf("IPv6 source %s", ip)
	}
}
