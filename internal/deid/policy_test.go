package deid

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

func TestProfileTable(t *testing.T) {
	// Rows of the 2024b table and of the current edition's additions.
	for _, tt := range []struct {
		tag   dicom.Tag
		basic string
	}{
		{0x00100010, "Z"},     // Patient's Name
		{0x0020000D, "U"},     // Study Instance UID
		{0x00080080, "X/Z/D"}, // Institution Name
		{0x00100011, "X"},     // added in the current edition
		{0x300A0054, "U"},     // added in the current edition
		{0x60023000, "X"},     // Overlay Data, repeating group 60xx
		{0x50100010, "X"},     // Curve data, 50xx,xxxx
	} {
		r, ok := lookupRow(tt.tag)
		if !ok || r.basic != tt.basic {
			t.Errorf("row %s: got %v %q, want %q", tt.tag, ok, r.basic, tt.basic)
		}
	}
	if _, ok := lookupRow(0x00280010); ok {
		t.Error("Rows (0028,0010) found in the profile table")
	}
}

func TestOptionsChangeActions(t *testing.T) {
	basic, _ := Preset("basic")
	long, _ := Preset("longitudinal")
	tests := []struct {
		p    Policy
		tag  dicom.Tag
		want Action
	}{
		{basic, 0x00100040, Zero},              // Patient's Sex
		{long, 0x00100040, Keep},               // retained patient characteristics
		{basic, 0x00080020, Zero},              // Study Date
		{long, 0x00080020, Clean},              // shifted
		{basic, 0x00181000, RemoveZeroOrDummy}, // Device Serial Number
		{long, 0x00181000, Keep},               // retained device identity
		{basic, 0x0020000D, UID},               // Study Instance UID
		{basic, 0x00081030, Remove},            // Study Description
		{withOptions(t, CleanDescriptors), 0x00081030, Clean},
		{withOptions(t, RetainUIDs), 0x0020000D, Keep},
	}
	for _, tt := range tests {
		got, because, _ := tt.p.action(tt.tag)
		if got != tt.want {
			t.Errorf("%s under %s: got %s (%s), want %s", tt.tag, tt.p.Name, got, because, tt.want)
		}
	}
}

func withOptions(t *testing.T, opts ...Option) Policy {
	t.Helper()
	p := Policy{Version: 1, Name: "test"}
	for _, o := range opts {
		p.Options = append(p.Options, o.String())
	}
	if err := p.compile(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCombinedActionsByType(t *testing.T) {
	tests := []struct {
		a    Action
		typ  int
		want Action
	}{
		{RemoveZeroOrDummy, 1, Dummy}, {RemoveZeroOrDummy, 2, Zero}, {RemoveZeroOrDummy, 3, Remove}, {RemoveZeroOrDummy, 0, Zero},
		{RemoveOrZero, 2, Zero}, {RemoveOrZero, 0, Zero}, {RemoveOrZero, 3, Remove}, {ZeroOrDummy, 1, Dummy}, {ZeroOrDummy, 0, Zero},
		{RemoveOrDummy, 1, Dummy}, {RemoveOrDummy, 3, Remove}, {RemoveZeroOrUID, 3, UID},
	}
	for _, tt := range tests {
		if got := tt.a.byType(tt.typ); got != tt.want {
			t.Errorf("%s with type %d: got %s, want %s", tt.a, tt.typ, got, tt.want)
		}
	}
}

func TestLoadPolicy(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p, err := LoadPolicy(write("site.json", `{"version": 1, "preset": "longitudinal", "patient_id_prefix": "SITE7-",
		"overrides": {"SeriesDescription": "K", "00181030": "X"}, "allow_classes": ["1.2.840.10008.5.1.4.1.1.7"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.PatientIDPrefix != "SITE7-" || p.Dates != DatesShift || !p.Enabled(RetainPatientCharacteristics) {
		t.Errorf("policy not built on its preset: %+v", p)
	}
	if a, why, _ := p.action(0x0008103E); a != Keep || why != "policy override" {
		t.Errorf("override: got %s (%s)", a, why)
	}
	for name, body := range map[string]string{
		"unknown-field.json":   `{"version": 1, "colour": "blue"}`,
		"bad-version.json":     `{"version": 2}`,
		"bad-option.json":      `{"version": 1, "options": ["retain-everything"]}`,
		"bad-action.json":      `{"version": 1, "overrides": {"PatientName": "X/Z"}}`,
		"bad-attribute.json":   `{"version": 1, "overrides": {"NoSuchKeyword": "X"}}`,
		"patient-id.json":      `{"version": 1, "overrides": {"PatientID": "K"}}`,
		"bad-dates.json":       `{"version": 1, "dates": "fuzzy"}`,
		"exclusive-dates.json": `{"version": 1, "options": ["retain-longitudinal-full-dates"], "dates": "shift"}`,
		"not-json.json":        `version: 1`,
	} {
		if _, err := LoadPolicy(write(name, body)); !errors.Is(err, ErrPolicy) {
			t.Errorf("%s: got %v, want ErrPolicy", name, err)
		}
	}
	if _, err := Preset("nonsense"); !errors.Is(err, ErrPolicy) {
		t.Errorf("unknown preset: %v", err)
	}
}

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "site.key")
	k1, created, err := LoadOrCreateKey(path)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != KeySize {
		t.Fatalf("key file: %v %v", fi.Mode(), err)
	}
	k2, created, err := LoadOrCreateKey(path)
	if err != nil || created || k1 != k2 {
		t.Fatalf("reload: created %v, same %v, %v", created, k1 == k2, err)
	}
	if s := k1.String() + k1.GoString(); strings.Contains(s, string(k1.b[:4])) || !strings.Contains(s, "hidden") {
		t.Errorf("key printed: %q", s)
	}
	os.Chmod(path, 0o644)
	if _, _, err := LoadOrCreateKey(path); !errors.Is(err, ErrKeyFile) {
		t.Errorf("world-readable key accepted: %v", err)
	}
	short := filepath.Join(t.TempDir(), "short.key")
	os.WriteFile(short, []byte("too short"), 0o600)
	if _, _, err := LoadOrCreateKey(short); !errors.Is(err, ErrKeyFile) {
		t.Errorf("short key accepted: %v", err)
	}
}

func TestKeyedMappings(t *testing.T) {
	h := newHasher(testKey(t))
	other, _ := NewKey(bytes.Repeat([]byte{9}, KeySize))
	h2 := newHasher(other)
	u := h.uid("1.2.840.113619.2.55.3.1234")
	if !strings.HasPrefix(u, "2.25.") || len(u) > 64 || u != h.uid("1.2.840.113619.2.55.3.1234") {
		t.Errorf("uid mapping %q not stable or not valid", u)
	}
	if u == h2.uid("1.2.840.113619.2.55.3.1234") {
		t.Error("a different key maps the UID the same way")
	}
	if u == h.uid("1.2.840.113619.2.55.3.1235") {
		t.Error("two UIDs map to one")
	}
	for _, c := range u[5:] {
		if c < '0' || c > '9' {
			t.Fatalf("non-digit in %q", u)
		}
	}
	if u[5] == '0' && len(u) > 6 {
		t.Errorf("leading zero in %q", u)
	}
	p := h.pseudonym("MOS-", "patient-id", "id\x00123\x00HOSP")
	if len(p) != 20 || !strings.HasPrefix(p, "MOS-") {
		t.Errorf("pseudonym %q", p)
	}
	for i := 0; i < 200; i++ {
		d := h.shiftDays(string(rune('a'+i%26))+strings.Repeat("x", i), 30)
		if d < -30 || d > -1 {
			t.Fatalf("shift %d outside [-30,-1]", d)
		}
	}
}

func TestNameNormalisation(t *testing.T) {
	for _, pair := range [][2]string{{"Doe^Jane", "DOE^JANE^^"}, {"doe^jane", " Doe ^Jane"}, {"Doe^Jane^^^", "Doe^Jane"}} {
		if a, b := normaliseName(pair[0]), normaliseName(pair[1]); a != b {
			t.Errorf("%q and %q normalise to %q and %q", pair[0], pair[1], a, b)
		}
	}
	if normaliseName("Doe^Jane") == normaliseName("Doe^John") {
		t.Error("different people normalise alike")
	}
}

func TestChangeDate(t *testing.T) {
	tests := []struct {
		v    string
		vr   dicom.VR
		mode DateMode
		days int
		want string
		ok   bool
	}{
		{"20240315", dicom.DA, DatesMonth, 0, "20240301", true},
		{"20240301", dicom.DA, DatesShift, -1, "20240229", true},
		{"20240315103000.5+0100", dicom.DT, DatesShift, -10, "20240305103000.5+0100", true},
		{"202403", dicom.DT, DatesMonth, 0, "202403", true},
		{"2024", dicom.DT, DatesShift, -400, "2022", true},
		{"garbage!", dicom.DA, DatesShift, -3, "", false},
		{"20241399", dicom.DA, DatesShift, -3, "", false},
	}
	for _, tt := range tests {
		got, ok := changeDate(tt.v, tt.vr, tt.mode, tt.days)
		if got != tt.want || ok != tt.ok {
			t.Errorf("changeDate(%q, %s, %d): got %q %v, want %q %v", tt.v, tt.mode, tt.days, got, ok, tt.want, tt.ok)
		}
	}
}

func TestClinicalHelpers(t *testing.T) {
	long := testEngine(t, "longitudinal")
	basic := testEngine(t, "basic")
	if long.PatientPseudonym("123", "HOSP") != long.PatientPseudonym(" 123 ", "HOSP") {
		t.Error("pseudonym depends on padding")
	}
	if long.PatientPseudonym("123", "HOSP") == long.PatientPseudonym("123", "OTHER") {
		t.Error("issuer ignored")
	}
	d1, err := long.ChangeDate("123", "HOSP", "2024-03-15")
	if err != nil || len(d1) != 10 || d1 == "2024-03-15" {
		t.Errorf("shifted date: %q %v", d1, err)
	}
	if d2, _ := long.ChangeDate("123", "HOSP", "20240315"); d2 != strings.ReplaceAll(d1, "-", "") {
		t.Errorf("shift differs between date forms: %q vs %q", d1, d2)
	}
	if d, _ := basic.ChangeDate("123", "HOSP", "2024-03-15"); d != "" {
		t.Errorf("basic keeps a date: %q", d)
	}
	if _, err := long.ChangeDate("123", "HOSP", "15/03/2024"); err == nil {
		t.Error("bad date accepted")
	}
}

func TestPrivateRuleJSON(t *testing.T) {
	p, _ := Preset("basic")
	p.RetainPrivate = []PrivateRule{{Creator: "SIEMENS CSA HEADER", Group: 0x0029, Elements: []byte{0x08, 0x10}}, {Creator: "ACME"}}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `"retain_private":[{"creator":"SIEMENS CSA HEADER","group":"0029","elements":["08","10"]},{"creator":"ACME","elements":[]}]`
	if !strings.Contains(string(b), want) {
		t.Fatalf("policy JSON\n%s\nlacks\n%s", b, want)
	}
	var back Policy
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.RetainPrivate[0], p.RetainPrivate[0]) || back.RetainPrivate[1].Creator != "ACME" || len(back.RetainPrivate[1].Elements) != 0 {
		t.Fatalf("round trip: got %+v, want %+v", back.RetainPrivate, p.RetainPrivate)
	}
	for _, bad := range []string{
		`{"creator":"A","group":"29","elements":[]}`,
		`{"creator":"A","group":"zz29","elements":[]}`,
		`{"creator":"A","elements":["100"]}`,
		`{"creator":"A","elements":[16]}`,
		`{"creator":"A","group":41,"elements":[]}`,
	} {
		var r PrivateRule
		if err := json.Unmarshal([]byte(bad), &r); err == nil {
			t.Errorf("%s: accepted as %+v", bad, r)
		}
	}
}

func TestTableMasks(t *testing.T) {
	p, _ := Preset("basic")
	var overlay, plain bool
	for _, r := range p.Table() {
		switch r.Tag {
		case 0x60003000:
			overlay = r.Mask == 0xFF00FFFF
		case 0x00100010:
			plain = r.Mask == 0xFFFFFFFF
		}
	}
	if !overlay || !plain {
		t.Fatalf("masks: overlay data repeating %v, patient name exact %v", overlay, plain)
	}
}
