package dicomweb

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

// attr and dataset decode the DICOM JSON model for the tests.
type attr struct {
	VR    string            `json:"vr"`
	Value []json.RawMessage `json:"Value"`
}

type dataset map[string]attr

func (d dataset) str(t *testing.T, key string) string {
	t.Helper()
	a, ok := d[key]
	if !ok {
		t.Fatalf("attribute %s missing", key)
	}
	if len(a.Value) == 0 {
		return ""
	}
	var s string
	if err := json.Unmarshal(a.Value[0], &s); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return s
}

func (d dataset) us(t *testing.T, key string) uint16 {
	t.Helper()
	a := d[key]
	if a.VR != "US" || len(a.Value) != 1 {
		t.Fatalf("%s: %+v", key, a)
	}
	var n uint16
	if err := json.Unmarshal(a.Value[0], &n); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return n
}

func (d dataset) items(t *testing.T, key string) []dataset {
	t.Helper()
	a, ok := d[key]
	if !ok {
		return nil
	}
	if a.VR != "SQ" {
		t.Fatalf("%s: VR %s", key, a.VR)
	}
	out := make([]dataset, len(a.Value))
	for i, raw := range a.Value {
		if err := json.Unmarshal(raw, &out[i]); err != nil {
			t.Fatalf("%s item %d: %v", key, i, err)
		}
	}
	return out
}

func TestStoreResponseJSON(t *testing.T) {
	t.Parallel()
	var r StoreResponse
	r.RetrieveURL = "https://node.example/dicomweb/studies/1.2.3?a=1&b=2"
	r.AddStored("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4", "https://node.example/dicomweb/studies/1.2.3/series/1.2.3.1/instances/1.2.3.4", 0)
	r.AddStored("1.2.840.10008.5.1.4.1.1.4", "1.2.3.5", "", WarningCoercion)
	r.AddFailed("", "", FailureCannotUnderstand, "part 3 is not DICOM")
	r.AddFailed("1.2.840.10008.5.1.4.1.1.7", "1.2.3.6", FailureRefusedByPolicy, "burned-in annotation "+strings.Repeat("é", 6000))
	r.AddFailed("1.2.840.10008.5.1.4.1.1.2", "1.2.3.7", FailureOutOfResources, "")

	b := r.JSON()
	if strings.Contains(string(b), `\u0026`) || !strings.Contains(string(b), "?a=1&b=2") {
		t.Error("& escaped in URLs")
	}
	// Through encoding/json the same data comes out, escaped.
	viaMarshal, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	var m1, m2 any
	json.Unmarshal(b, &m1)
	json.Unmarshal(viaMarshal, &m2)
	if fmt.Sprint(m1) != fmt.Sprint(m2) {
		t.Error("MarshalJSON and JSON differ")
	}
	// Keys in ascending tag order at the top level.
	i1, i2, i3 := strings.Index(string(b), `"00081190"`), strings.Index(string(b), `"00081198"`), strings.Index(string(b), `"00081199"`)
	if !(i1 >= 0 && i1 < i2 && i2 < i3) {
		t.Errorf("top-level keys out of order: %s", b[:min(len(b), 200)])
	}

	var top dataset
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	if len(top) != 3 {
		t.Errorf("top-level attributes: %d", len(top))
	}
	if top["00081190"].VR != "UR" || top.str(t, "00081190") != r.RetrieveURL {
		t.Errorf("study Retrieve URL %+v", top["00081190"])
	}

	stored := top.items(t, "00081199")
	if len(stored) != 2 {
		t.Fatalf("%d stored items", len(stored))
	}
	if stored[0]["00081150"].VR != "UI" || stored[0].str(t, "00081150") != "1.2.840.10008.5.1.4.1.1.2" ||
		stored[0].str(t, "00081155") != "1.2.3.4" || !strings.HasSuffix(stored[0].str(t, "00081190"), "/instances/1.2.3.4") {
		t.Errorf("stored item 1: %+v", stored[0])
	}
	if _, ok := stored[0]["00081196"]; ok {
		t.Error("warning reason without a warning")
	}
	if stored[1].us(t, "00081196") != 0xB000 {
		t.Error("warning reason")
	}
	if a := stored[1]["00081190"]; a.VR != "UR" || a.Value != nil {
		t.Errorf("empty retrieve URL: %+v", a)
	}

	failed := top.items(t, "00081198")
	if len(failed) != 3 {
		t.Fatalf("%d failed items", len(failed))
	}
	// Unknown UIDs: the attributes are present and empty.
	if a := failed[0]["00081150"]; a.VR != "UI" || a.Value != nil {
		t.Errorf("empty class UID: %+v", a)
	}
	if failed[0].str(t, "00081155") != "" {
		t.Error("empty instance UID has a value")
	}
	if failed[0].us(t, "00081197") != 0xC000 {
		t.Error("failure reason 1")
	}
	if failed[0].str(t, "00090010") != PrivateCreator || failed[0]["00091001"].VR != "LT" || failed[0].str(t, "00091001") != "part 3 is not DICOM" {
		t.Errorf("failure detail: %+v", failed[0])
	}
	if d := failed[1].str(t, "00091001"); len(d) > maxDetailBytes || !strings.HasPrefix(d, "burned-in annotation é") || !strings.HasSuffix(d, "é") {
		t.Errorf("long detail not cut at a character boundary within %d bytes: %d bytes", maxDetailBytes, len(d))
	}
	if failed[2].us(t, "00081197") != 0xA700 || failed[2].str(t, "00081155") != "1.2.3.7" {
		t.Errorf("failed item 3: %+v", failed[2])
	}
	if _, ok := failed[2]["00091001"]; ok {
		t.Error("detail attribute without detail")
	}
	if _, ok := failed[2]["00090010"]; ok {
		t.Error("private creator without detail")
	}
}

func TestStoreResponseEmptySequences(t *testing.T) {
	t.Parallel()
	r := StoreResponse{}
	r.AddStored("1.2", "1.3", "u", 0)
	b, _ := json.Marshal(&r)
	var top dataset
	json.Unmarshal(b, &top)
	if _, ok := top["00081198"]; ok {
		t.Error("Failed SOP Sequence present with no failure")
	}
	r = StoreResponse{}
	r.AddFailed("1.2", "1.3", FailureProcessing, "")
	b, _ = json.Marshal(&r)
	top = nil
	json.Unmarshal(b, &top)
	if _, ok := top["00081199"]; ok {
		t.Error("Referenced SOP Sequence present with nothing stored")
	}
	if a, ok := top["00081190"]; !ok || a.Value != nil {
		t.Errorf("Type 2 Retrieve URL: %+v, %v", a, ok)
	}
}

func TestStoreResponseStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		stored, warned, failed int
		want                   int
	}{
		{0, 0, 0, http.StatusBadRequest},
		{3, 0, 0, http.StatusOK},
		{2, 1, 0, http.StatusAccepted},
		{2, 0, 1, http.StatusAccepted},
		{0, 1, 0, http.StatusAccepted},
		{0, 0, 2, http.StatusConflict},
	}
	for _, tt := range tests {
		var r StoreResponse
		for i := 0; i < tt.stored; i++ {
			r.AddStored("1.2", fmt.Sprint("1.3.", i), "", 0)
		}
		for i := 0; i < tt.warned; i++ {
			r.AddStored("1.2", fmt.Sprint("1.4.", i), "", WarningElementsDiscarded)
		}
		for i := 0; i < tt.failed; i++ {
			r.AddFailed("", "", FailureProcessing, "")
		}
		if got := r.Status(); got != tt.want {
			t.Errorf("%d stored, %d with warnings, %d failed: got %d, want %d", tt.stored, tt.warned, tt.failed, got, tt.want)
		}
	}
}

func TestFailureReasonFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want FailureReason
	}{
		{&Error{Status: 413, Err: ErrPartTooLarge, Part: 2}, FailureOutOfResources},
		{fmt.Errorf("store: %w", &Error{Status: 415, Err: ErrUnsupportedPartType}), FailureCannotUnderstand},
		{&Error{Status: 400, Err: ErrInvalidPart}, FailureCannotUnderstand},
		{&dicom.Error{Op: "read", Err: dicom.ErrTruncated}, FailureCannotUnderstand},
		{&dicom.Error{Op: "read", Err: dicom.ErrUnknownSyntax}, FailureTransferSyntaxNotSupported},
		{&dicom.Error{Op: "read", Err: &Error{Status: 413, Err: ErrPartTooLarge}}, FailureOutOfResources},
		{errors.New("disk full"), FailureProcessing},
	}
	for _, tt := range tests {
		if got := FailureReasonFor(tt.err); got != tt.want {
			t.Errorf("%v: got %04X, want %04X", tt.err, got, tt.want)
		}
	}
}

func TestErrorJSON(t *testing.T) {
	t.Parallel()
	status, body := ErrorJSON(&Error{Status: 413, Reason: "part is larger than 10 bytes", Part: 3, Err: ErrPartTooLarge, Cause: errors.New("secret internal detail")})
	var got struct {
		Error  string `json:"error"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if status != 413 || got.Status != 413 || got.Error != "part is larger than 10 bytes (part 3)" {
		t.Errorf("got %d %+v", status, got)
	}
	status, body = ErrorJSON(fmt.Errorf("wrapped: %w", queryError("limit must be an unsigned integer")))
	if status != 400 || !strings.Contains(string(body), "limit must be an unsigned integer") {
		t.Errorf("wrapped: %d %s", status, body)
	}
	status, body = ErrorJSON(errors.New("db password wrong for host x"))
	if status != 500 || strings.Contains(string(body), "password") {
		t.Errorf("internal error leaked: %d %s", status, body)
	}
	e := &Error{Status: 400, Reason: "reading the request body failed", Err: ErrBodyRead, Cause: errors.New("reset")}
	if !strings.Contains(e.Error(), "reset") || !errors.Is(e, ErrBodyRead) {
		t.Errorf("Error() %q", e.Error())
	}
}
