package dicomweb

import (
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	v, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatalf("ParseQuery(%q): %v", raw, err)
	}
	return v
}

func TestParseQueryMatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		level Level
		query string
		want  Match
	}{
		// Keyword and hexadecimal forms, either case of hex digits.
		{Study, "PatientID=12345", Match{Tag: 0x00100020, Keyword: "PatientID", VR: dicom.LO, Kind: Exact, Values: []string{"12345"}}},
		{Study, "00100020=12345", Match{Tag: 0x00100020, Keyword: "PatientID", VR: dicom.LO, Kind: Exact, Values: []string{"12345"}}},
		{Study, "0020000d=1.2.3", Match{Tag: 0x0020000D, Keyword: "StudyInstanceUID", VR: dicom.UI, Kind: Exact, Values: []string{"1.2.3"}}},
		// Wild cards, PN case-insensitive.
		{Study, "PatientName=DOE%5EJ*", Match{Tag: 0x00100010, Keyword: "PatientName", VR: dicom.PN, Kind: Wildcard, Values: []string{"DOE^J*"}, CaseInsensitive: true}},
		{Study, "PatientName=D?E", Match{Tag: 0x00100010, Keyword: "PatientName", VR: dicom.PN, Kind: Wildcard, Values: []string{"D?E"}, CaseInsensitive: true}},
		{Study, "PatientName=Doe%5EJohn", Match{Tag: 0x00100010, Keyword: "PatientName", VR: dicom.PN, Kind: Exact, Values: []string{"Doe^John"}, CaseInsensitive: true}},
		{Study, "AccessionNumber=A*1", Match{Tag: 0x00080050, Keyword: "AccessionNumber", VR: dicom.SH, Kind: Wildcard, Values: []string{"A*1"}}},
		{Study, "ModalitiesInStudy=CT", Match{Tag: 0x00080061, Keyword: "ModalitiesInStudy", VR: dicom.CS, Kind: Exact, Values: []string{"CT"}}},
		// Universal: empty value, or only stars on a text VR.
		{Study, "PatientName=", Match{Tag: 0x00100010, Keyword: "PatientName", VR: dicom.PN, Kind: Universal, CaseInsensitive: true}},
		{Study, "PatientID=*", Match{Tag: 0x00100020, Keyword: "PatientID", VR: dicom.LO, Kind: Universal}},
		{Study, "StudyDate=", Match{Tag: 0x00080020, Keyword: "StudyDate", VR: dicom.DA, Kind: Universal}},
		// UID lists, comma (PS3.18) or backslash (PS3.4) separated.
		{Study, "StudyInstanceUID=1.2.3,1.2.4", Match{Tag: 0x0020000D, Keyword: "StudyInstanceUID", VR: dicom.UI, Kind: UIDList, Values: []string{"1.2.3", "1.2.4"}}},
		{Study, `StudyInstanceUID=1.2.3%5C1.2.4%5C1.2.5`, Match{Tag: 0x0020000D, Keyword: "StudyInstanceUID", VR: dicom.UI, Kind: UIDList, Values: []string{"1.2.3", "1.2.4", "1.2.5"}}},
		// Dates and times.
		{Study, "StudyDate=20200101", Match{Tag: 0x00080020, Keyword: "StudyDate", VR: dicom.DA, Kind: Exact, Values: []string{"20200101"}}},
		{Study, "StudyDate=20200101-20201231", Match{Tag: 0x00080020, Keyword: "StudyDate", VR: dicom.DA, Kind: DateRange, Min: "20200101", Max: "20201231"}},
		{Study, "StudyDate=-20200101", Match{Tag: 0x00080020, Keyword: "StudyDate", VR: dicom.DA, Kind: DateRange, Max: "20200101"}},
		{Study, "StudyDate=20200101-", Match{Tag: 0x00080020, Keyword: "StudyDate", VR: dicom.DA, Kind: DateRange, Min: "20200101"}},
		{Study, "StudyDate=20240229", Match{Tag: 0x00080020, Keyword: "StudyDate", VR: dicom.DA, Kind: Exact, Values: []string{"20240229"}}},
		{Study, "StudyTime=0800-123000.5", Match{Tag: 0x00080030, Keyword: "StudyTime", VR: dicom.TM, Kind: TimeRange, Min: "0800", Max: "123000.5"}},
		{Study, "StudyTime=-235959.999999", Match{Tag: 0x00080030, Keyword: "StudyTime", VR: dicom.TM, Kind: TimeRange, Max: "235959.999999"}},
		{Study, "StudyTime=07", Match{Tag: 0x00080030, Keyword: "StudyTime", VR: dicom.TM, Kind: Exact, Values: []string{"07"}}},
		// Numbers.
		{Series, "SeriesNumber=3", Match{Tag: 0x00200011, Keyword: "SeriesNumber", VR: dicom.IS, Kind: Exact, Values: []string{"3"}}},
		{Instance, "InstanceNumber=-12", Match{Tag: 0x00200013, Keyword: "InstanceNumber", VR: dicom.IS, Kind: Exact, Values: []string{"-12"}}},
		// Parent-level keys at lower levels.
		{Series, "StudyInstanceUID=1.2", Match{Tag: 0x0020000D, Keyword: "StudyInstanceUID", VR: dicom.UI, Kind: Exact, Values: []string{"1.2"}}},
		{Instance, "SeriesInstanceUID=1.2", Match{Tag: 0x0020000E, Keyword: "SeriesInstanceUID", VR: dicom.UI, Kind: Exact, Values: []string{"1.2"}}},
		{Instance, "PatientID=x", Match{Tag: 0x00100020, Keyword: "PatientID", VR: dicom.LO, Kind: Exact, Values: []string{"x"}}},
		{Series, "PerformedProcedureStepStartDate=20200101-", Match{Tag: 0x00400244, Keyword: "PerformedProcedureStepStartDate", VR: dicom.DA, Kind: DateRange, Min: "20200101"}},
		// SQL-looking values are data, kept verbatim.
		{Study, "PatientID=" + url.QueryEscape(`1' OR '1'='1`), Match{Tag: 0x00100020, Keyword: "PatientID", VR: dicom.LO, Kind: Exact, Values: []string{`1' OR '1'='1`}}},
		{Study, "PatientName=" + url.QueryEscape(`O'Brien; DROP TABLE study;--`), Match{Tag: 0x00100010, Keyword: "PatientName", VR: dicom.PN, Kind: Exact, Values: []string{`O'Brien; DROP TABLE study;--`}, CaseInsensitive: true}},
		{Study, "AccessionNumber=" + url.QueryEscape(`50%_off"`), Match{Tag: 0x00080050, Keyword: "AccessionNumber", VR: dicom.SH, Kind: Exact, Values: []string{`50%_off"`}}},
		{Study, "AccessionNumber=" + url.QueryEscape(`%_*`), Match{Tag: 0x00080050, Keyword: "AccessionNumber", VR: dicom.SH, Kind: Wildcard, Values: []string{`%_*`}}},
	}
	for _, tt := range tests {
		q, err := ParseQuery(tt.level, mustQuery(t, tt.query))
		if err != nil {
			t.Errorf("%s %q: %v", tt.level, tt.query, err)
			continue
		}
		if len(q.Match) != 1 {
			t.Errorf("%s %q: %d matches", tt.level, tt.query, len(q.Match))
			continue
		}
		if !reflect.DeepEqual(q.Match[0], tt.want) {
			t.Errorf("%s %q:\n got %+v\nwant %+v", tt.level, tt.query, q.Match[0], tt.want)
		}
	}
}

func TestParseQueryErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		level Level
		query string
		// inReason must appear in the error; notInReason must not (the
		// value, which may be patient data).
		inReason, notInReason string
	}{
		{Study, "PatientNam=DOE", `unknown query parameter "PatientNam"`, ""},
		{Study, "patientname=DOE", `unknown query parameter "patientname"`, ""},
		{Study, "0010001=DOE", "unknown query parameter", ""},
		{Study, "001000G0=DOE", "unknown query parameter", ""},
		{Study, "00400275.00321060=X", "nested attribute matching is not supported", ""},
		{Study, "RequestAttributesSequence.ScheduledProcedureStepID=X", "nested attribute matching is not supported", ""},
		{Study, "includefield=00400275.00321060", "nested attributes in includefield", ""},
		{Study, "includefield=NoSuchKeyword", `unknown attribute "NoSuchKeyword" in includefield`, ""},
		{Study, "StudyDescription=CHEST", "matching on StudyDescription is not supported at the study level", ""},
		{Study, "Modality=CT", "matching on Modality is not supported at the study level", ""},
		{Series, "SOPInstanceUID=1.2", "matching on SOPInstanceUID is not supported at the series level", ""},
		{Study, "00091001=x", "private or unknown attribute", ""},
		{Study, "StudyDate=2020-01-01", "invalid value for StudyDate", "2020"},
		{Study, "StudyDate=20201301", "not a valid DA", "2020"},
		{Study, "StudyDate=20230229", "not a valid DA", ""},
		{Study, "StudyDate=2020.01.01", "not a valid DA", ""},
		{Study, "StudyDate=-", "range", ""},
		{Study, "StudyDate=20200101-20200102-20200103", "range", ""},
		{Study, "StudyDate=2020*", "not a valid DA", ""},
		{Study, "StudyTime=25", "not a valid TM", ""},
		{Study, "StudyTime=08:00", "not a valid TM", ""},
		{Study, "StudyTime=1230.5", "not a valid TM", ""},
		{Study, "StudyTime=0800-9999", "not a valid TM range", ""},
		{Study, "StudyInstanceUID=1.2.abc", "not a UID list", "abc"},
		{Study, "StudyInstanceUID=1..2", "not a UID list", ""},
		{Study, "StudyInstanceUID=1.2.3,", "empty UID", ""},
		{Study, "StudyInstanceUID=1.2.*", "wild cards do not apply", ""},
		{Study, "StudyInstanceUID=" + strings.Repeat("1", 65), "not a UID list", ""},
		{Study, "ModalitiesInStudy=CT%5CMR", "several values are only supported in UID lists", ""},
		{Series, "SeriesNumber=abc", "not an integer", "abc"},
		{Series, "SeriesNumber=1*", "not an integer", ""},
		{Study, "PatientName=SMITH%00", "control character", "SMITH"},
		{Study, "PatientName=%FF", "UTF-8", ""},
		{Study, "PatientID=" + strings.Repeat("x", 1025), "longer than 1024 bytes", "xxxx"},
		{Study, "limit=-1", "limit must be an unsigned integer", ""},
		{Study, "limit=1.5", "limit must be an unsigned integer", ""},
		{Study, "limit=", "limit must be an unsigned integer", ""},
		{Study, "limit=%2B5", "limit must be an unsigned integer", ""},
		{Study, "limit=10&limit=20", `"limit" given more than once`, ""},
		{Study, "offset=x", "offset must be an unsigned integer", ""},
		{Study, "offset=99999999999", "offset is too large", ""},
		{Study, "fuzzymatching=yes", "fuzzymatching must be true or false", ""},
		{Study, "PatientID=a&PatientID=b", `"PatientID" given more than once`, ""},
		{Study, "PatientID=a&00100020=b", "PatientID given more than once", ""},
		{Study, strings.Repeat("Z", 500) + "=1", "unknown query parameter", strings.Repeat("Z", 100)},
	}
	for _, tt := range tests {
		q, err := ParseQuery(tt.level, mustQuery(t, tt.query))
		if err == nil {
			t.Errorf("%s %q: accepted as %+v", tt.level, tt.query, q)
			continue
		}
		if !errors.Is(err, ErrInvalidQuery) || StatusOf(err) != http.StatusBadRequest {
			t.Errorf("%s %q: got %v (status %d), want ErrInvalidQuery 400", tt.level, tt.query, err, StatusOf(err))
		}
		if !strings.Contains(err.Error(), tt.inReason) {
			t.Errorf("%s %q: error %q does not say %q", tt.level, tt.query, err, tt.inReason)
		}
		if tt.notInReason != "" && strings.Contains(err.Error(), tt.notInReason) {
			t.Errorf("%s %q: error %q quotes the value", tt.level, tt.query, err)
		}
	}
	if _, err := ParseQuery(Level(9), nil); !errors.Is(err, ErrInvalidQuery) {
		t.Errorf("invalid level: %v", err)
	}
}

func TestParseQueryParameters(t *testing.T) {
	t.Parallel()
	q, err := ParseQuery(Study, mustQuery(t,
		"includefield=StudyDescription&includefield=00081030,PatientAge,%2000100040%20,&INCLUDEFIELD=00091010&limit=25&offset=50&PatientID=x&StudyDate=20200101-&accept=application/dicom%2Bjson&charset=utf-8"))
	if err != nil {
		t.Fatal(err)
	}
	// Parameter names are taken in sorted order: INCLUDEFIELD first.
	wantFields := []dicom.Tag{0x00091010, 0x00081030, 0x00101010, 0x00100040}
	if !slices.Equal(q.IncludeFields, wantFields) {
		t.Errorf("IncludeFields %v, want %v", q.IncludeFields, wantFields)
	}
	if q.IncludeAll || q.Limit != 25 || q.LimitCapped || q.Offset != 50 || q.FuzzyMatching || len(q.Warnings) != 0 {
		t.Errorf("got %+v", q)
	}
	if len(q.Match) != 2 || q.Match[0].Tag != 0x00080020 || q.Match[1].Tag != 0x00100020 {
		t.Errorf("matches not sorted by tag: %+v", q.Match)
	}
	if q.Level != Study {
		t.Errorf("level %v", q.Level)
	}

	q, err = ParseQuery(Series, mustQuery(t, "includefield=all&includefield=Modality"))
	if err != nil || !q.IncludeAll || len(q.IncludeFields) != 1 {
		t.Errorf("includefield=all: %+v, %v", q, err)
	}
}

func TestParseQueryLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		query       string
		opts        QueryOptions
		limit       int
		capped      bool
		offset      int
		fuzzy       bool
		warnings    int
		wantWarning string
	}{
		{"", QueryOptions{}, DefaultMaxLimit, true, 0, false, 0, ""},
		{"limit=0", QueryOptions{}, 0, false, 0, false, 0, ""},
		{"limit=1000", QueryOptions{}, 1000, false, 0, false, 0, ""},
		{"limit=1001", QueryOptions{}, 1000, true, 0, false, 0, ""},
		{"limit=99999999999999999999999", QueryOptions{}, 1000, true, 0, false, 0, ""},
		{"limit=007", QueryOptions{}, 7, false, 0, false, 0, ""},
		{"Limit=5&OFFSET=2", QueryOptions{MaxLimit: 3}, 3, true, 2, false, 0, ""},
		{"offset=0", QueryOptions{MaxLimit: 50}, 50, true, 0, false, 0, ""},
		{"offset=2147483647", QueryOptions{}, 1000, true, 2147483647, false, 0, ""},
		{"fuzzymatching=true", QueryOptions{}, 1000, true, 0, false, 1, WarningFuzzyNotSupported},
		{"fuzzymatching=TRUE", QueryOptions{FuzzyMatching: true}, 1000, true, 0, true, 0, ""},
		{"fuzzymatching=false", QueryOptions{}, 1000, true, 0, false, 0, ""},
		{"emptyvaluematching=true", QueryOptions{}, 1000, true, 0, false, 1, WarningEmptyValueNotSupported},
		{"multiplevaluematching=true&emptyvaluematching=false", QueryOptions{}, 1000, true, 0, false, 1, WarningMultipleValueNotSupported},
	}
	for _, tt := range tests {
		q, err := ParseQueryWith(Study, mustQuery(t, tt.query), tt.opts)
		if err != nil {
			t.Errorf("%q: %v", tt.query, err)
			continue
		}
		if q.Limit != tt.limit || q.LimitCapped != tt.capped || q.Offset != tt.offset || q.FuzzyMatching != tt.fuzzy || len(q.Warnings) != tt.warnings {
			t.Errorf("%q: got limit %d capped %v offset %d fuzzy %v warnings %q", tt.query, q.Limit, q.LimitCapped, q.Offset, q.FuzzyMatching, q.Warnings)
		}
		if tt.wantWarning != "" && (len(q.Warnings) == 0 || q.Warnings[0] != tt.wantWarning) {
			t.Errorf("%q: warnings %q", tt.query, q.Warnings)
		}
	}
	if got := MoreResultsWarning("https://node.example/dicomweb"); !strings.HasPrefix(got, "299 https://node.example/dicomweb: ") {
		t.Errorf("MoreResultsWarning %q", got)
	}
}

func TestExtraMatchable(t *testing.T) {
	t.Parallel()
	opts := QueryOptions{ExtraMatchable: []dicom.Tag{0x00081030, 0x00080022, 0x0008002A, 0x00101010}} // StudyDescription, AcquisitionDate, AcquisitionDateTime, PatientAge
	tests := []struct {
		query string
		want  Match
	}{
		{"StudyDescription=CHEST*", Match{Tag: 0x00081030, Keyword: "StudyDescription", VR: dicom.LO, Kind: Wildcard, Values: []string{"CHEST*"}}},
		{"AcquisitionDate=20200101-20200105", Match{Tag: 0x00080022, Keyword: "AcquisitionDate", VR: dicom.DA, Kind: DateRange, Min: "20200101", Max: "20200105"}},
		{"AcquisitionDateTime=20200101120000-20200102", Match{Tag: 0x0008002A, Keyword: "AcquisitionDateTime", VR: dicom.DT, Kind: DateTimeRange, Min: "20200101120000", Max: "20200102"}},
		{"AcquisitionDateTime=-2020", Match{Tag: 0x0008002A, Keyword: "AcquisitionDateTime", VR: dicom.DT, Kind: DateTimeRange, Max: "2020"}},
		{"AcquisitionDateTime=20200101120000.5%2B0100", Match{Tag: 0x0008002A, Keyword: "AcquisitionDateTime", VR: dicom.DT, Kind: Exact, Values: []string{"20200101120000.5+0100"}}},
		{"AcquisitionDateTime=20200101120000-0500-20200101130000-0500", Match{Tag: 0x0008002A, Keyword: "AcquisitionDateTime", VR: dicom.DT, Kind: DateTimeRange, Min: "20200101120000-0500", Max: "20200101130000-0500"}},
		{"PatientAge=045Y", Match{Tag: 0x00101010, Keyword: "PatientAge", VR: dicom.AS, Kind: Exact, Values: []string{"045Y"}}},
	}
	for _, tt := range tests {
		q, err := ParseQueryWith(Study, mustQuery(t, tt.query), opts)
		if err != nil {
			t.Errorf("%q: %v", tt.query, err)
			continue
		}
		if len(q.Match) != 1 || !reflect.DeepEqual(q.Match[0], tt.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", tt.query, q.Match, tt.want)
		}
	}
	for _, bad := range []string{
		"AcquisitionDateTime=20200101120000-0500", // one DT with offset, or a range to year 0500
		"AcquisitionDateTime=2020-13",
		"PatientAge=45Y",
		"AcquisitionDate=2020*",
	} {
		if _, err := ParseQueryWith(Study, mustQuery(t, bad), opts); !errors.Is(err, ErrInvalidQuery) {
			t.Errorf("%q: got %v", bad, err)
		}
	}
	// Not listed: refused.
	if _, err := ParseQuery(Study, mustQuery(t, "StudyDescription=X")); err == nil {
		t.Error("StudyDescription accepted without ExtraMatchable")
	}
	// A sequence cannot be matched even when listed.
	if _, err := ParseQueryWith(Study, mustQuery(t, "ReferencedSOPSequence=X"), QueryOptions{ExtraMatchable: []dicom.Tag{0x00081199}}); err == nil || !strings.Contains(err.Error(), "VR SQ") {
		t.Errorf("sequence match: %v", err)
	}
}

func TestLikePattern(t *testing.T) {
	t.Parallel()
	tests := []struct {
		m      Match
		escape byte
		want   string
	}{
		{Match{Kind: Exact, Values: []string{"DOE^JOHN"}}, '\\', "DOE^JOHN"},
		{Match{Kind: Exact, Values: []string{`50%_off\`}}, '\\', `50\%\_off\\`},
		{Match{Kind: Exact, Values: []string{`a*b?c`}}, '\\', `a*b?c`}, // no wild cards in an exact match
		{Match{Kind: Wildcard, Values: []string{"DOE*"}}, '\\', "DOE%"},
		{Match{Kind: Wildcard, Values: []string{"D?E*%_!"}}, '!', "D_E%!%!_!!"},
		{Match{Kind: Wildcard, Values: []string{`O'Brien*`}}, '\\', `O'Brien%`},
		{Match{Kind: Wildcard, Values: []string{"Ünïcödé*"}}, '\\', "Ünïcödé%"},
		{Match{Kind: Universal}, '\\', "%"},
		{Match{Kind: DateRange, Min: "20200101"}, '\\', ""},
		{Match{Kind: UIDList, Values: []string{"1.2", "1.3"}}, '\\', ""},
	}
	for _, tt := range tests {
		if got := tt.m.LikePattern(tt.escape); got != tt.want {
			t.Errorf("%+v: got %q, want %q", tt.m, got, tt.want)
		}
	}
	for _, esc := range []byte{0, '%', '_', '*', '?', 0xC3} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("escape %q did not panic", esc)
				}
			}()
			Match{Kind: Exact, Values: []string{"x"}}.LikePattern(esc)
		}()
	}
}

func TestMatchableTags(t *testing.T) {
	t.Parallel()
	study := Study.MatchableTags()
	if len(study) != 9 || !slices.Contains(study, 0x00100010) || slices.Contains(study, 0x00080060) {
		t.Errorf("study tags %v", study)
	}
	series := Series.MatchableTags()
	for _, tag := range []dicom.Tag{0x00080060, 0x0020000E, 0x00200011, 0x00400244, 0x00400245, 0x0020000D} {
		if !slices.Contains(series, tag) {
			t.Errorf("series level lacks %v", tag)
		}
	}
	instance := Instance.MatchableTags()
	for _, tag := range []dicom.Tag{0x00080016, 0x00080018, 0x00200013, 0x0020000E, 0x0020000D} {
		if !slices.Contains(instance, tag) {
			t.Errorf("instance level lacks %v", tag)
		}
	}
	// Every tag is in the dictionary, and a new slice each time.
	for _, tag := range instance {
		if _, ok := dicom.Lookup(tag); !ok {
			t.Errorf("%v not in the dictionary", tag)
		}
	}
	instance[0] = 0
	if Instance.MatchableTags()[0] == 0 {
		t.Error("MatchableTags shares its slice")
	}
	if l, ok := LevelOf(0x00200013); !ok || l != Instance {
		t.Errorf("LevelOf(InstanceNumber) = %v, %v", l, ok)
	}
	if _, ok := LevelOf(0x00081030); ok {
		t.Error("LevelOf(StudyDescription) found")
	}
	if Study.String() != "study" || Kind(DateRange).String() != "date-range" {
		t.Error("String")
	}
}
