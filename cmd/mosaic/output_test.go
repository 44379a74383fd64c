package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

func TestValidOutput(t *testing.T) {
	for _, f := range []string{outputTable, outputJSON} {
		if err := validOutput(f); err != nil {
			t.Errorf("validOutput(%q) = %v", f, err)
		}
	}
	err := validOutput("yaml")
	var u usageError
	if !errors.As(err, &u) {
		t.Fatalf("validOutput(yaml) = %v, want a usage error", err)
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := writeJSON(&b, map[string]int{"objects": 3}); err != nil {
		t.Fatal(err)
	}
	var got map[string]int
	if err := json.Unmarshal(b.Bytes(), &got); err != nil || got["objects"] != 3 {
		t.Fatalf("writeJSON wrote %q (%v)", b.String(), err)
	}
}
