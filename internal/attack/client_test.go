package attack

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/hub"
)

// fakeBudgetHub answers every search with 7 at two datasets, under a
// budget per account and dataset: north allows 2 answers a day and 5 in
// all, south 1 a day and no total limit.
type fakeBudgetHub struct {
	clock *Clock
	mu    sync.Mutex
	used  map[string]int // account/node/day and account/node
}

func (h *fakeBudgetHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	acc := r.Header.Get("Authorization")
	day := h.clock.Now().Format("2006-01-02")
	res := hub.SearchResult{Nodes: []hub.NodeStatus{{Node: "north", Status: hub.NodeAnswered, Floor: 10}, {Node: "south", Status: hub.NodeAnswered, Floor: 10}}}
	for _, b := range []struct {
		node       string
		day, total int
	}{{"north", 2, 5}, {"south", 1, 1 << 30}} {
		d := fed.DatasetResult{ID: "d"}
		switch {
		case h.used[acc+b.node] >= b.total:
			d.Refused = RefusedTotal
		case h.used[acc+b.node+day] >= b.day:
			d.Refused = RefusedDay
		default:
			h.used[acc+b.node]++
			h.used[acc+b.node+day]++
			d.SubjectsCount = 7
		}
		res.Results = append(res.Results, hub.ResultEntry{Node: b.node, Dataset: "d", DatasetResult: d})
	}
	json.NewEncoder(w).Encode(res)
}

// The attacker waits a day when every account is refused for the day,
// moves to its next account when one is refused for good, and gives a
// dataset up when no account is left.
func TestAttackerBudgets(t *testing.T) {
	clock := &Clock{t: time.Date(2027, 1, 4, 12, 0, 0, 0, time.UTC)}
	fh := &fakeBudgetHub{clock: clock, used: map[string]int{}}
	srv := httptest.NewServer(fh)
	defer srv.Close()
	f := &Federation{URL: srv.URL, Clock: clock, Cells: []Cell{{"north", "d"}, {"south", "d"}}}
	a := newAttacker(f, []Account{{"a", "1"}, {"b", "2"}}, 100)
	ctx := context.Background()
	answered := map[Cell]int{}
	for range 12 {
		got, err := a.ask(ctx, All())
		if err != nil {
			t.Fatal(err)
		}
		for c, v := range got {
			if v != 7 {
				t.Fatalf("%s: got %d, want 7", c, v)
			}
			answered[c]++
		}
	}
	// South answers one question a day per account, so each day two
	// questions get through, each sent with both accounts, and north,
	// which answers (and charges) every search, spends both accounts'
	// totals of 5 in three days: 6 questions answered there. South
	// answers all 12.
	if n, s := answered[Cell{"north", "d"}], answered[Cell{"south", "d"}]; n != 6 || s != 12 {
		t.Errorf("answers: north %d, south %d; want 6 and 12", n, s)
	}
	if !a.given[Cell{"north", "d"}] || a.given[Cell{"south", "d"}] {
		t.Errorf("given up: %v, want north only", a.given)
	}
	// South answers 2 questions a day over two accounts: 12 questions
	// take 6 days, the last of them needing no wait.
	if a.days != 5 {
		t.Errorf("waited %d days, want 5", a.days)
	}
	if f.Floor != 10 {
		t.Errorf("floor %d, want 10", f.Floor)
	}
}
