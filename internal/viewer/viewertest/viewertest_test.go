package viewertest

import (
	"strings"
	"testing"
)

func goodReport() (*Report, Want) {
	rep := &Report{Studies: []Study{{
		UID: "1.2", MetadataInstances: 2,
		Series: []Series{{UID: "1.2.3", Modality: "CT", Instances: []string{"1.2.3.1", "1.2.3.2"}, MetadataInstances: 2,
			Frames: []Frame{{SOP: "1.2.3.1", Frame: 1, Rows: 4, Columns: 3, BitsAllocated: 16, SamplesPerPixel: 1, Bytes: 24}}}},
	}}}
	return rep, Want{"1.2": {"1.2.3": {"1.2.3.2", "1.2.3.1"}}}
}

// TestCheck: a faithful report passes, and each kind of difference is
// reported.
func TestCheck(t *testing.T) {
	rep, want := goodReport()
	if errs := rep.Check(want); len(errs) != 0 {
		t.Fatalf("a faithful report: %v", errs)
	}
	cases := []struct {
		name, msg string
		edit      func(*Report, Want)
	}{
		{"missing study", "study 9.9 is missing", func(r *Report, w Want) { w["9.9"] = map[string][]string{} }},
		{"extra study", "should not be there", func(r *Report, w Want) { delete(w, "1.2") }},
		{"missing series", "series 1.2.4 of study 1.2 is missing", func(r *Report, w Want) { w["1.2"]["1.2.4"] = []string{"1.2.4.1"} }},
		{"extra series", "series 1.2.3 of study 1.2 was found", func(r *Report, w Want) { w["1.2"] = map[string][]string{} }},
		{"instances", "searchForInstances found 1", func(r *Report, w Want) { r.Studies[0].Series[0].Instances = []string{"1.2.3.1"} }},
		{"series metadata", "retrieveSeriesMetadata gave 1", func(r *Report, w Want) { r.Studies[0].Series[0].MetadataInstances = 1 }},
		{"study metadata", "retrieveStudyMetadata gave 3", func(r *Report, w Want) { r.Studies[0].MetadataInstances = 3 }},
		{"frame length", "23 bytes, want", func(r *Report, w Want) { r.Studies[0].Series[0].Frames[0].Bytes = 23 }},
		{"frame without size", "0 bytes, want", func(r *Report, w Want) {
			f := &r.Studies[0].Series[0].Frames[0]
			f.Rows, f.Bytes = 0, 0
		}},
		{"frame of another instance", "not in the series", func(r *Report, w Want) { r.Studies[0].Series[0].Frames[0].SOP = "7.7" }},
	}
	for _, c := range cases {
		rep, want := goodReport()
		c.edit(rep, want)
		errs := rep.Check(want)
		found := false
		for _, e := range errs {
			found = found || strings.Contains(e.Error(), c.msg)
		}
		if !found {
			t.Errorf("%s: no error saying %q in %v", c.name, c.msg, errs)
		}
	}
}
