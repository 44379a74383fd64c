package airlock

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestFindingsBounded: a 10 MiB table of tiny cells each under the
// threshold made one finding per cell, close to a million, kept in the
// output's record (which the store reads back for every later output of
// every job) and shown on the page: the findings are capped, the
// decision still the strictest.
func TestFindingsBounded(t *testing.T) {
	var b bytes.Buffer
	b.WriteString(`{"mosaic_output":"table","version":1,"kind":"frequency","cells":[`)
	for i := 0; b.Len() < 9<<20; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"count":3}`)
	}
	b.WriteString(`]}`)
	v := Check(Policy{}, Permissions{}, Output{Job: "j", Name: "t.json", Data: b.Bytes()})
	if v.Decision != Refuse {
		t.Fatalf("decision %s", v.Decision)
	}
	rec, _ := json.Marshal(v)
	if len(v.Findings) > 200 || len(rec) > 64<<10 {
		t.Fatalf("%d findings, %d bytes of verdict", len(v.Findings), len(rec))
	}
}
