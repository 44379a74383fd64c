package stats

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/table"
)

// memTable is an in-memory source for tests: numeric and categorical
// columns by name.
type memTable struct {
	n      int
	floats map[string][]float64
	codes  map[string][]int32
	levels map[string][]string
	text   map[string]bool
	order  []string
}

func newMem(n int) *memTable {
	return &memTable{n: n, floats: map[string][]float64{}, codes: map[string][]int32{}, levels: map[string][]string{}, text: map[string]bool{}}
}

func (m *memTable) num(name string, x []float64) *memTable {
	m.floats[name] = x
	m.order = append(m.order, name)
	return m
}

// cat adds a categorical column from values ("" missing), levels sorted.
func (m *memTable) cat(name string, vals []string) *memTable {
	set := map[string]bool{}
	for _, v := range vals {
		if v != "" {
			set[v] = true
		}
	}
	var lv []string
	for v := range set {
		lv = append(lv, v)
	}
	sort.Strings(lv)
	pos := map[string]int32{}
	for i, l := range lv {
		pos[l] = int32(i)
	}
	c := make([]int32, len(vals))
	for i, v := range vals {
		if v == "" {
			c[i] = -1
		} else {
			c[i] = pos[v]
		}
	}
	m.codes[name], m.levels[name] = c, lv
	m.order = append(m.order, name)
	return m
}

func (m *memTable) Rows() int { return m.n }
func (m *memTable) Float(n string) ([]float64, error) {
	if x, ok := m.floats[n]; ok {
		return x, nil
	}
	return nil, fmt.Errorf("no numeric column %q", n)
}
func (m *memTable) Codes(n string) ([]int32, []string, error) {
	if x, ok := m.codes[n]; ok {
		return x, m.levels[n], nil
	}
	return nil, nil, fmt.Errorf("no categorical column %q", n)
}
func (m *memTable) columnType(n string) (table.Type, bool) {
	if m.text[n] {
		return table.Text, true
	}
	if _, ok := m.floats[n]; ok {
		return table.Numeric, true
	}
	if _, ok := m.codes[n]; ok {
		return table.Categorical, true
	}
	return "", false
}

// slice returns the rows lo..hi-1 as a new table (a "node").
func (m *memTable) slice(lo, hi int) *memTable {
	out := newMem(hi - lo)
	out.order = m.order
	for k, v := range m.floats {
		out.floats[k] = v[lo:hi]
	}
	for k, v := range m.codes {
		// Re-code with the node's own levels, as a node's table would.
		var vals []string
		for _, c := range v[lo:hi] {
			if c < 0 {
				vals = append(vals, "")
			} else {
				vals = append(vals, m.levels[k][c])
			}
		}
		o := out.order
		out.cat(k, vals)
		out.order = o
	}
	return out
}

// writeCSV writes the table with NA for missing values.
func (m *memTable) writeCSV(t *testing.T, dir string) string {
	t.Helper()
	var b bytes.Buffer
	for i, n := range m.order {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
	}
	b.WriteByte('\n')
	for r := 0; r < m.n; r++ {
		for i, n := range m.order {
			if i > 0 {
				b.WriteByte(',')
			}
			if x, ok := m.floats[n]; ok {
				if math.IsNaN(x[r]) {
					b.WriteString("NA")
				} else {
					b.WriteString(strconv.FormatFloat(x[r], 'g', -1, 64))
				}
			} else {
				c := m.codes[n][r]
				if c < 0 {
					b.WriteString("NA")
				} else {
					b.WriteString(m.levels[n][c])
				}
			}
		}
		b.WriteByte('\n')
	}
	p := filepath.Join(dir, "pooled.csv")
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// cohort makes a synthetic table of n rows with a few missing values.
func cohort(n int, seed uint64) *memTable {
	r := rand.New(rand.NewPCG(seed, 7))
	age := make([]float64, n)
	bmi := make([]float64, n)
	grade := make([]float64, n)
	y := make([]float64, n)
	died := make([]float64, n)
	sex := make([]string, n)
	stage := make([]string, n)
	stages := []string{"I", "II", "III"}
	for i := 0; i < n; i++ {
		age[i] = math.Round((40+r.Float64()*40)*10) / 10
		bmi[i] = math.Round((18+r.NormFloat64()*3+8)*100) / 100
		grade[i] = float64(1 + r.IntN(3))
		sex[i] = []string{"F", "M"}[r.IntN(2)]
		stage[i] = stages[r.IntN(3)]
		s := 0.0
		if sex[i] == "M" {
			s = 1
		}
		st := float64(map[string]int{"I": 0, "II": 1, "III": 2}[stage[i]])
		y[i] = 2 + 0.05*age[i] - 0.3*bmi[i] + 1.5*s + 0.8*st + 0.02*age[i]*s + r.NormFloat64()*2
		eta := -3 + 0.04*age[i] + 0.5*st - 0.4*s + 0.1*grade[i]
		if r.Float64() < 1/(1+math.Exp(-eta)) {
			died[i] = 1
		}
	}
	// Missing values.
	for i := 0; i < n; i += 37 {
		age[i] = math.NaN()
	}
	for i := 5; i < n; i += 53 {
		stage[i] = ""
	}
	for i := 11; i < n; i += 71 {
		y[i] = math.NaN()
	}
	m := newMem(n)
	m.num("y", y).num("age", age).num("bmi", bmi).num("grade", grade).num("died", died)
	m.cat("sex", sex).cat("stage", stage)
	return m
}

func nan() float64 { return math.NaN() }
