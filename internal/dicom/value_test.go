package dicom

import (
	"testing"
	"time"
)

func TestLookup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tag     Tag
		keyword string
		vr      VR
	}{
		{NewTag(0x0010, 0x0010), "PatientName", PN},
		{NewTag(0x7FE0, 0x0010), "PixelData", OB},
		{NewTag(0x0000, 0x0100), "CommandField", US}, // command group
		{NewTag(0x6002, 0x3000), "OverlayData", OB},  // repeating group 60xx
		{NewTag(0x5010, 0x3000), "CurveData", OB},    // repeating group 50xx
		{NewTag(0x0028, 0x1201), "RedPaletteColorLookupTableData", OW},
		{NewTag(0x0018, 0x0000), "GroupLength", UL}, // any even group length
	}
	for _, tt := range tests {
		e, ok := Lookup(tt.tag)
		if !ok || e.Keyword != tt.keyword || e.VR != tt.vr {
			t.Errorf("Lookup(%s) = %q %s %v, want %q %s", tt.tag, e.Keyword, e.VR, ok, tt.keyword, tt.vr)
		}
	}
	if _, ok := Lookup(NewTag(0x0009, 0x1001)); ok {
		t.Error("private tag found in the dictionary")
	}
	if e, ok := LookupKeyword("StudyInstanceUID"); !ok || e.Tag != NewTag(0x0020, 0x000D) {
		t.Errorf("LookupKeyword(StudyInstanceUID) = %s, %v", e.Tag, ok)
	}
}

func TestTypedValues(t *testing.T) {
	t.Parallel()
	for _, big := range []bool{false, true} {
		var ds Dataset
		ds.bigEndian = big
		ds.SetInts(NewTag(0x0028, 0x0010), US, 512)
		ds.SetInts(NewTag(0x0028, 0x1052), SS, -1024)
		ds.SetInts(NewTag(0x0020, 0x0013), IS, 7, -3)
		ds.SetFloats(NewTag(0x0028, 0x0030), DS, 0.703125, 0.703125)
		ds.SetFloats(NewTag(0x0018, 0x9087), FD, 1000.5)
		ds.SetInts(NewTag(0x0020, 0x5000), AT, int64(NewTag(0x0010, 0x0010)))
		if v, _ := ds.Int(NewTag(0x0028, 0x0010)); v != 512 {
			t.Errorf("US: got %d", v)
		}
		if v, _ := ds.Int(NewTag(0x0028, 0x1052)); v != -1024 {
			t.Errorf("SS: got %d", v)
		}
		if v, err := ds.Ints(ds.Get(NewTag(0x0020, 0x0013))); err != nil || len(v) != 2 || v[1] != -3 {
			t.Errorf("IS: got %v %v", v, err)
		}
		if v, err := ds.Floats(ds.Get(NewTag(0x0028, 0x0030))); err != nil || len(v) != 2 || v[0] != 0.703125 {
			t.Errorf("DS: got %v %v", v, err)
		}
		if v, _ := ds.Float(NewTag(0x0018, 0x9087)); v != 1000.5 {
			t.Errorf("FD: got %v", v)
		}
		if v, _ := ds.Int(NewTag(0x0020, 0x5000)); Tag(v) != NewTag(0x0010, 0x0010) {
			t.Errorf("AT: got %s", Tag(v))
		}
	}
}

func TestStringTrimming(t *testing.T) {
	t.Parallel()
	var ds Dataset
	ds.Set(Element{Tag: NewTag(0x0008, 0x0060), VR: CS, Value: []byte(" CT ")})
	ds.Set(Element{Tag: NewTag(0x0008, 0x0018), VR: UI, Value: []byte("1.2.3\x00")})
	ds.Set(Element{Tag: NewTag(0x0008, 0x0008), VR: CS, Value: []byte(`ORIGINAL\PRIMARY `)})
	ds.Set(Element{Tag: NewTag(0x0020, 0x4000), VR: LT, Value: []byte(` leading kept\no split `)})
	if v, _ := ds.String(NewTag(0x0008, 0x0060)); v != "CT" {
		t.Errorf("CS: got %q", v)
	}
	if v := ds.UID(NewTag(0x0008, 0x0018)); v != "1.2.3" {
		t.Errorf("UI: got %q", v)
	}
	if v := ds.Strings(ds.Get(NewTag(0x0008, 0x0008))); len(v) != 2 || v[1] != "PRIMARY" {
		t.Errorf("multi-valued CS: got %q", v)
	}
	if v := ds.Strings(ds.Get(NewTag(0x0020, 0x4000))); len(v) != 1 || v[0] != ` leading kept\no split` {
		t.Errorf("LT: got %q", v)
	}
}

func TestDatesAndTimes(t *testing.T) {
	t.Parallel()
	d, err := ParseDA("20240229")
	if err != nil || d.Time != time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC) {
		t.Errorf("DA: %v %v", d.Time, err)
	}
	if _, err := ParseDA("20230229"); err == nil {
		t.Error("DA 2023-02-29 accepted")
	}
	if d, err := ParseDA("2001.05.07"); err != nil || d.Time.Month() != 5 {
		t.Errorf("ACR-NEMA DA: %v %v", d.Time, err)
	}
	tm, err := ParseTM("235959.123")
	if err != nil || tm.Precision != PrecisionFraction || tm.FracDigits != 3 || tm.Time.Nanosecond() != 123000000 {
		t.Errorf("TM: %+v %v", tm, err)
	}
	if tm, err := ParseTM("07"); err != nil || tm.Precision != PrecisionHour {
		t.Errorf("TM hour only: %+v %v", tm, err)
	}
	if _, err := ParseTM("2460"); err == nil {
		t.Error("TM 24:60 accepted")
	}
	dt, err := ParseDT("20200102030405.5+0130", nil)
	if err != nil || !dt.HasOffset || dt.Time.UTC() != time.Date(2020, 1, 2, 1, 34, 5, 500000000, time.UTC) {
		t.Errorf("DT with offset: %+v %v", dt, err)
	}
	if dt, err := ParseDT("2020", nil); err != nil || dt.Precision != PrecisionYear {
		t.Errorf("DT year: %+v %v", dt, err)
	}
	if _, err := ParseDT("2020011", nil); err == nil {
		t.Error("DT with odd digits accepted")
	}
}

func TestPersonName(t *testing.T) {
	t.Parallel()
	pn := ParsePN("Yamada^Tarou=山田^太郎=やまだ^たろう")
	if pn.Alphabetic.Family != "Yamada" || pn.Ideographic.Given != "太郎" || pn.Phonetic.Family != "やまだ" {
		t.Errorf("groups: %+v", pn)
	}
	if a, b := ParsePN("Doe^Jane").String(), ParsePN("Doe^Jane^^^").String(); a != b {
		t.Errorf("normal forms differ: %q vs %q", a, b)
	}
	if got := ParsePN("Doe^Jane^^Dr").String(); got != "Doe^Jane^^Dr" {
		t.Errorf("inner empty component lost: %q", got)
	}
}
