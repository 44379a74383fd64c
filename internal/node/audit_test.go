package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/audit"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/index"
)

// TestSearchFailsWhenAuditFails: a search answer leaves the node only
// once it is in the audit log. With a log that cannot be written the
// answer carries an error and no counts; with a working log it carries
// the counts and the log has the record.
func TestSearchFailsWhenAuditFails(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	n, err := Open(ctx, Config{Data: dir, SearchNoise: new(float64), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(ctx)
	if _, err := n.CreateDataset(ctx, index.Dataset{ID: "lung", Title: "Lung", Description: "Patients.", Licence: "CC-BY-4.0",
		Contact: "data@example.org", Tier: 3}); err != nil {
		t.Fatal(err)
	}
	var pats []index.ClinicalPatient
	for i := range 40 {
		age := 40 + i
		pats = append(pats, index.ClinicalPatient{PatientID: fmt.Sprintf("MOS-%03d", i), BirthSex: "male",
			Condition: &index.Condition{CancerType: "lung", AgeAtDiagnosis: &age, ICD10: "C34.1"}})
	}
	if err := n.ix.PutClinical(ctx, "lung", pats); err != nil {
		t.Fatal(err)
	}
	hubPub, hubKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, nodeKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.log")
	al, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l := &Link{n: n, f: Federation{EnrollResponse: fed.EnrollResponse{Node: "north"}}, hubKey: hubPub, key: nodeKey, audit: al}
	task := func(id string) []byte {
		body, _ := json.Marshal(fed.SearchBody{Query: json.RawMessage(`{"operand":"AND","children":[]}`), Researchers: map[string]string{"north": "r1"}})
		now := time.Now()
		msg, err := fed.Seal(hubKey, "hub", fed.Task{ID: id, Kind: "search", Issued: now, Expires: now.Add(time.Minute), Audience: "*", Body: body})
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}

	ans, ok := l.answer(task("t1"), time.Now())
	if !ok || ans.Error != "" || len(ans.Datasets) != 1 || ans.Datasets[0].SubjectsCount != 40 {
		t.Fatalf("answer with a working audit log: %v %+v", ok, ans)
	}
	b, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(b), `"search"`) || !strings.Contains(string(b), "lung=40") {
		t.Fatalf("the audit log lacks the search: %v\n%s", err, b)
	}

	// The log cannot be written any more.
	al.Close()
	if _, err := al.Append(audit.Entry{Actor: "node", Action: "probe"}); !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("append to a closed log: %v", err)
	}
	ans, ok = l.answer(task("t2"), time.Now())
	if !ok || ans.Error != errAuditAnswer || len(ans.Datasets) != 0 {
		t.Errorf("answer with an audit log that cannot be written: %v %+v; want an error and no counts", ok, ans)
	}
}
