package attack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/hub"
)

// Answer is one dataset's part of a search answer, as the researcher
// sees it.
type Answer struct {
	Count   int
	Refused string // "", "budget-day" or "budget-total"
	// The other figures of the answer: studies_count, the age range
	// (nil when not given) and the categories named.
	Studies                     int
	AgeRange                    *[2]int
	Gender, Modality, BodyParts []string
}

// Same says whether two answers are byte-identical in every figure:
// subjects, studies, age range, gender, modality and body parts.
func Same(x, y Answer) bool {
	if x.Count != y.Count || x.Studies != y.Studies || x.Refused != y.Refused ||
		(x.AgeRange == nil) != (y.AgeRange == nil) || x.AgeRange != nil && *x.AgeRange != *y.AgeRange {
		return false
	}
	return slices.Equal(x.Gender, y.Gender) && slices.Equal(x.Modality, y.Modality) && slices.Equal(x.BodyParts, y.BodyParts)
}

// Client posts Lens ASTs to the hub's search API with a researcher's
// bearer token.
type Client struct {
	URL  string // the hub's
	HTTP *http.Client
}

// Search sends q with acc's token and returns each dataset's answer and
// the highest floor the nodes report.
func (c *Client) Search(ctx context.Context, acc Account, q Expr) (map[Cell]Answer, int, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", c.URL+"/api/v1/search", bytes.NewReader(q.JSON()))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+acc.Token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("attack: search: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, 0, fmt.Errorf("attack: search: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("attack: search %s: %s: %.200s", q, resp.Status, body)
	}
	var res hub.SearchResult
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, 0, fmt.Errorf("attack: search answer: %w", err)
	}
	out := map[Cell]Answer{}
	for _, r := range res.Results {
		a := Answer{Count: r.SubjectsCount, Refused: r.Refused, Studies: r.StudiesCount,
			Gender: r.Gender, Modality: r.Modality, BodyParts: r.BodyParts}
		if r.AgeRange != nil {
			a.AgeRange = &[2]int{r.AgeRange.Min, r.AgeRange.Max}
		}
		out[Cell{r.Node, r.Dataset}] = a
	}
	floor := 0
	for _, n := range res.Nodes {
		floor = max(floor, n.Floor)
	}
	return out, floor, nil
}

// Budget refusals a node may give (fed.DatasetResult.Refused).
const (
	RefusedDay   = fed.RefusedBudgetDay
	RefusedTotal = fed.RefusedBudgetTotal
)

// attacker is one patient researcher: its accounts, what it spent, and
// the days it waited. It asks every question of every dataset until the
// dataset answers: when a dataset refuses for the day it tries its next
// account there, and when every account is refused for the day it waits
// a day (moves the shared clock on); when a dataset refuses an account
// for good, it moves to its next account there, and gives the dataset
// up when none is left (or when it has waited maxDays in all).
type attacker struct {
	f        *Federation
	c        *Client
	accounts []Account
	maxDays  int

	queries  int  // searches sent
	days     int  // days waited
	refusals int  // dataset answers refused
	missing  int  // dataset answers missing (node late or in error)
	noisy    bool // two forms of one question have had different answers

	dayBlocked   map[Cell]map[int]bool
	totalBlocked map[Cell]map[int]bool
	given        map[Cell]bool // given up
}

func newAttacker(f *Federation, accounts []Account, maxDays int) *attacker {
	return &attacker{f: f, c: &Client{URL: f.URL, HTTP: &http.Client{Timeout: time.Minute}}, accounts: accounts, maxDays: maxDays,
		dayBlocked: map[Cell]map[int]bool{}, totalBlocked: map[Cell]map[int]bool{}, given: map[Cell]bool{}}
}

// account is the account to use at cell, -1 when all are blocked.
func (a *attacker) account(c Cell) int {
	for i := range a.accounts {
		if !a.dayBlocked[c][i] && !a.totalBlocked[c][i] {
			return i
		}
	}
	return -1
}

func block(m map[Cell]map[int]bool, c Cell, i int) {
	if m[c] == nil {
		m[c] = map[int]bool{}
	}
	m[c][i] = true
}

// ask returns the count every dataset not given up reports for q
// (0 where the node suppressed it).
func (a *attacker) ask(ctx context.Context, q Expr) (map[Cell]int, error) {
	full, err := a.answers(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make(map[Cell]int, len(full))
	for c, r := range full {
		out[c] = r.Count
	}
	return out, nil
}

// answers returns the whole answer of every dataset not given up for q.
func (a *attacker) answers(ctx context.Context, q Expr) (map[Cell]Answer, error) {
	got := map[Cell]Answer{}
	tries := map[Cell]int{}
	for {
		// Which account each pending cell takes.
		byAccount := map[int][]Cell{}
		waitDay := false
		for _, c := range a.f.Cells {
			if _, ok := got[c]; ok || a.given[c] || tries[c] >= 3 {
				continue
			}
			i := a.account(c)
			if i < 0 {
				if len(a.totalBlocked[c]) == len(a.accounts) {
					a.given[c] = true
				} else {
					waitDay = true
				}
				continue
			}
			byAccount[i] = append(byAccount[i], c)
		}
		if len(byAccount) == 0 {
			if !waitDay {
				return got, nil
			}
			if a.days >= a.maxDays {
				for _, c := range a.f.Cells {
					if _, ok := got[c]; !ok {
						a.given[c] = true
					}
				}
				return got, nil
			}
			a.f.Clock.NextDay()
			a.days++
			a.dayBlocked = map[Cell]map[int]bool{}
			continue
		}
		for i := range a.accounts {
			cells := byAccount[i]
			if cells == nil {
				continue
			}
			ans, floor, err := a.c.Search(ctx, a.accounts[i], q)
			if err != nil {
				return nil, err
			}
			a.queries++
			a.f.mu.Lock()
			a.f.Floor = max(a.f.Floor, floor)
			a.f.mu.Unlock()
			// Every dataset answers every search, whichever it was
			// sent for: take what any of them gives.
			for _, c := range a.f.Cells {
				if _, done := got[c]; done || a.given[c] {
					continue
				}
				r, ok := ans[c]
				switch {
				case !ok:
					if slices.Contains(cells, c) {
						a.missing++
						tries[c]++
					}
				case r.Refused == RefusedDay:
					a.refusals++
					block(a.dayBlocked, c, i)
				case r.Refused != "":
					// budget-total, or a refusal this harness does not
					// know: this account is done there.
					a.refusals++
					block(a.totalBlocked, c, i)
				default:
					got[c] = r
				}
			}
		}
	}
}

// averaged returns, per cell, the mean of the answers (0s left out) to
// up to n equivalent forms of q with different canonical forms (Rewrite
// 0, 2, 3, ...). Until the attacker has seen noise it asks two forms
// only, and when they agree everywhere it takes the answer as exact: a
// patient attacker does not pay for averaging what does not vary.
func (a *attacker) averaged(ctx context.Context, q Expr, n int) (map[Cell]float64, error) {
	vals := map[Cell][]float64{}
	forms := 0
	for i := 0; forms < max(n, 1); i++ {
		if i == 1 {
			continue // the same canonical form as Rewrite 0: the same answer
		}
		ans, err := a.ask(ctx, Rewrite(q, i))
		if err != nil {
			return nil, err
		}
		forms++
		for c, v := range ans {
			if v > 0 {
				if len(vals[c]) > 0 && vals[c][0] != float64(v) {
					a.noisy = true
				}
				vals[c] = append(vals[c], float64(v))
			}
		}
		if forms == 2 && !a.noisy {
			break
		}
	}
	out := map[Cell]float64{}
	for _, c := range a.f.Cells {
		out[c] = mean(vals[c])
	}
	return out, nil
}
