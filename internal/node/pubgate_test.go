package node

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/lens"
)

// syncBuffer is a log sink safe for the node's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestGate(t *testing.T) {
	for _, c := range []struct {
		probs []index.Problem
		want  string
	}{
		{nil, "publish"},
		{[]index.Problem{{Kind: "series-no-body-part", Severity: "warning", Count: 4, Message: "series without Body Part Examined"}}, "publish"},
		{describeProblems(index.Dataset{Description: "d", Contact: "c"}), "no licence"},
		{describeProblems(index.Dataset{Licence: "l"}), "no description; no contact point"},
		{[]index.Problem{{Kind: "series-no-modality", Severity: "error", Count: 3, Message: "series without Modality"}},
			"series without Modality: 3 (series-no-modality)"},
	} {
		p := gate(c.probs)
		got := "publish"
		if !p.Publish {
			got = strings.Join(p.HeldBack, "; ")
		}
		if got != c.want || p.Publish != (len(p.HeldBack) == 0) {
			t.Errorf("gate(%v) = %+v, want %s", c.probs, p, c.want)
		}
	}
}

// TestHeldBackUntilChecksPass: a Tier 3 dataset without licence and
// contact point is neither in the catalogue the node sends its hub nor
// in search answers; the catalogue message and the log say why; once the
// fields are set it is published.
func TestHeldBackUntilChecksPass(t *testing.T) {
	ctx := context.Background()
	var logs syncBuffer
	n, err := Open(ctx, Config{Data: t.TempDir(), Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(ctx)
	if _, err := n.CreateDataset(ctx, index.Dataset{ID: "t3", Title: "Tier 3", Description: "Patients.", Tier: 3}); err != nil {
		t.Fatal(err)
	}
	var pats []index.ClinicalPatient
	for i := range 30 {
		age := 40 + i
		pats = append(pats, index.ClinicalPatient{PatientID: fmt.Sprintf("MOS-%03d", i), BirthSex: "female",
			Condition: &index.Condition{CancerType: "breast", AgeAtDiagnosis: &age, ICD10: "C50.9"}})
	}
	if err := n.ix.PutClinical(ctx, "t3", pats); err != nil {
		t.Fatal(err)
	}
	q, err := lens.Parse([]byte(`{"operand":"AND","children":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	published := func() (cat []string, held string, searched int) {
		t.Helper()
		c, err := n.CatalogueSummary(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range c.Datasets {
			cat = append(cat, d.ID)
		}
		for _, h := range c.HeldBack {
			held += h.ID + ": " + strings.Join(h.Reasons, ", ")
		}
		res, _, err := n.Search(ctx, q, "r1")
		if err != nil {
			t.Fatal(err)
		}
		return cat, held, len(res)
	}
	cat, held, searched := published()
	if len(cat) != 0 || held != "t3: no licence, no contact point" || searched != 0 {
		t.Errorf("without licence and contact: catalogue %v, held back %q, %d search answers; want none, the reasons, none", cat, held, searched)
	}
	if l := logs.String(); !strings.Contains(l, "held back") || !strings.Contains(l, "no licence") {
		t.Errorf("the log does not say the dataset is held back and why:\n%s", l)
	}
	info, err := n.DatasetInfo(ctx, "t3")
	if err != nil || info.Publish || len(info.HeldBack) != 2 {
		t.Errorf("dataset info: %+v %v", info.Publication, err)
	}
	if _, err := n.UpdateDataset(ctx, "t3", func(d *index.Dataset) error {
		d.Licence, d.Contact = "CC-BY-4.0", "data@example.org"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	cat, held, searched = published()
	if strings.Join(cat, ",") != "t3" || held != "" || searched != 1 {
		t.Errorf("with licence and contact: catalogue %v, held back %q, %d search answers; want t3 published", cat, held, searched)
	}
}
