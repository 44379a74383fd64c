package dicomweb

import "testing"

func TestAcceptsMultipartDICOM(t *testing.T) {
	t.Parallel()
	tests := []struct {
		accept string
		ok     bool
		ts     string
	}{
		{"", true, ""},
		{"   ", true, ""},
		{"*/*", true, ""},
		{"multipart/*", true, ""},
		{"multipart/related", true, ""},
		{`multipart/related; type="application/dicom"`, true, ""},
		{`multipart/related; type=application/dicom`, true, ""},
		{`multipart/related; type="Application/DICOM"; transfer-syntax=1.2.840.10008.1.2.1`, true, "1.2.840.10008.1.2.1"},
		{`multipart/related; type=application/dicom; transfer-syntax=*`, true, "*"},
		{`multipart/related; type="application/dicom"; transfer-syntax="1.2.840.10008.1.2.4.50"`, true, "1.2.840.10008.1.2.4.50"},
		// Highest q among the most specific wins.
		{`multipart/related; type=application/dicom; transfer-syntax=1.2.840.10008.1.2.4.50; q=0.9, multipart/related; type=application/dicom; transfer-syntax=*; q=0.5`, true, "1.2.840.10008.1.2.4.50"},
		{`multipart/related; type=application/dicom; transfer-syntax=1.2.840.10008.1.2.4.50; q=0.4, multipart/related; type=application/dicom; transfer-syntax=1.2.840.10008.1.2.1`, true, "1.2.840.10008.1.2.1"},
		// A less specific range does not give its (absent) syntax.
		{`*/*, multipart/related; type=application/dicom; transfer-syntax=1.2.840.10008.1.2.1; q=0.1`, true, "1.2.840.10008.1.2.1"},
		// Refusals.
		{"application/dicom+json", false, ""},
		{"application/dicom", false, ""},
		{`multipart/related; type="application/dicom+xml"`, false, ""},
		{`multipart/related; type=application/octet-stream`, false, ""},
		{`multipart/related; type=application/dicom; q=0`, false, ""},
		{`*/*, multipart/related; type=application/dicom; q=0`, false, ""},
		{`multipart/*; q=0, */*`, false, ""},
		{`multipart/related; type=application/dicom; transfer-syntax=garbage`, false, ""},
		// Invalid elements are dropped; if nothing remains the header is
		// as good as absent.
		{`multipart/related; q=2, application/json`, false, ""},
		{`;;;`, true, ""},
		{`text/html, application/xhtml+xml, */*;q=0.8`, true, ""},
	}
	for _, tt := range tests {
		ok, ts := AcceptsMultipartDICOM(tt.accept)
		if ok != tt.ok || ts != tt.ts {
			t.Errorf("%q: got %v %q, want %v %q", tt.accept, ok, ts, tt.ok, tt.ts)
		}
	}
}

func TestAcceptsJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		accept string
		want   bool
	}{
		{"", true},
		{"*/*", true},
		{"application/*", true},
		{"application/dicom+json", true},
		{"application/json", true},
		{"Application/DICOM+JSON; charset=utf-8", true},
		{"text/html, application/json;q=0.9", true},
		{"application/dicom+json; q=0.001", true},
		{"multipart/related; type=application/dicom", false},
		{"application/dicom+xml", false},
		{"application/dicom+json; q=0", false},
		{"application/dicom+json; q=0, */*", false},
		{"application/json; q=0, application/dicom+json; q=0.5", true},
		{"application/*; q=0, application/dicom+json", true},
		{"text/*", false},
	}
	for _, tt := range tests {
		if got := AcceptsJSON(tt.accept); got != tt.want {
			t.Errorf("%q: got %v, want %v", tt.accept, got, tt.want)
		}
	}
}

func TestParseMediaType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		mt     string
		params map[string]string
		ok     bool
	}{
		{`a/b`, "a/b", map[string]string{}, true},
		{` A/B ; X=Y ; z="q\"uote;d" ;`, "a/b", map[string]string{"x": "Y", "z": `q"uote;d`}, true},
		{`a/b; type=application/dicom`, "a/b", map[string]string{"type": "application/dicom"}, true},
		{`a/b; x="a,b"`, "a/b", map[string]string{"x": "a,b"}, true},
		{`a`, "", nil, false},
		{`a/b c`, "", nil, false},
		{`a/b; x`, "", nil, false},
		{`a/b; x=1; X=2`, "", nil, false},
		{`a/b; x="open`, "", nil, false},
		{`a/b; x=a b`, "", nil, false},
		{"a/b; x=\"\x01\"", "", nil, false},
		{`a/b x=1`, "", nil, false},
	}
	for _, tt := range tests {
		mt, params, ok := parseMediaType(tt.in)
		if ok != tt.ok || mt != tt.mt || len(params) != len(tt.params) {
			t.Errorf("%q: got %q %v %v", tt.in, mt, params, ok)
			continue
		}
		for k, v := range tt.params {
			if params[k] != v {
				t.Errorf("%q: param %s = %q, want %q", tt.in, k, params[k], v)
			}
		}
	}
	if got := splitList(`a, "b,c", ,d`); len(got) != 3 || got[1] != `"b,c"` {
		t.Errorf("splitList: %q", got)
	}
}
