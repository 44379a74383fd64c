package airlock

import (
	"bytes"
	"testing"
)

// TestStructuredKeysNotCaseFolded: Go's JSON decoder matches member names
// without regard to case and keeps the last of duplicates, while
// Publishable strips only the exact "top" and "total" and keeps every
// other member: a table whose checked cells are benign could carry
// unchecked cells under "CELLS", or single units' values under "TOP",
// out of the node. Such outputs are refused.
func TestStructuredKeysNotCaseFolded(t *testing.T) {
	cases := map[string]string{
		"TOP kept by Publishable": `{"mosaic_output":"table","version":1,"kind":"magnitude","statistic":"sum","cells":[` +
			`{"key":["a"],"count":20,"value":1000,"TOP":[61.5,60.25]},{"key":["b"],"count":30,"value":1500,"TOP":[70.125,69.5]}]}`,
		"duplicate cells": `{"mosaic_output":"table","version":1,"kind":"frequency","CELLS":[{"key":["P-ABC row level"],"count":1}],` +
			`"cells":[{"key":["a"],"count":12},{"key":["b"],"count":15}]}`,
		"duplicate member": `{"mosaic_output":"table","version":1,"kind":"frequency","cells":[{"key":["x"],"count":1},{"key":["y"],"count":1}],` +
			`"cells":[{"key":["a"],"count":12},{"key":["b"],"count":15}]}`,
	}
	for name, data := range cases {
		v := Check(Policy{}, Permissions{}, Output{Job: "j", Name: "t.json", Data: []byte(data)})
		pub := Publishable([]byte(data))
		if v.Decision == Release {
			t.Errorf("%s: released; what leaves: %s", name, pub)
		}
	}
	// The ordinary form still passes.
	ok := `{"mosaic_output":"table","version":1,"kind":"magnitude","statistic":"sum","cells":[` +
		`{"key":["a"],"count":20,"value":1000,"top":[61.5,60.25]},{"key":["b"],"count":30,"value":1500,"top":[70.125,69.5]}]}`
	if v := Check(Policy{}, Permissions{}, Output{Job: "j", Name: "t.json", Data: []byte(ok)}); v.Decision != Release {
		t.Fatalf("a plain magnitude table: %+v", v)
	}
	if bytes.Contains(Publishable([]byte(ok)), []byte("61.5")) {
		t.Fatal("top left in the published table")
	}
}
