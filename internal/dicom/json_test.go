package dicom_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

// Tags used by the tests below.
const (
	tagPatientName       dicom.Tag = 0x00100010
	tagPatientID         dicom.Tag = 0x00100020
	tagOtherPatientNames dicom.Tag = 0x00101001
	tagInstitutionName   dicom.Tag = 0x00080080
	tagImageType         dicom.Tag = 0x00080008
	tagRows              dicom.Tag = 0x00280010
	tagSeriesNumber      dicom.Tag = 0x00200011
	tagSliceThickness    dicom.Tag = 0x00180050
	tagPixelSpacing      dicom.Tag = 0x00280030
	tagFrameIncrement    dicom.Tag = 0x00280009
	tagReferencedSeries  dicom.Tag = 0x00081115
	tagReferencedImage   dicom.Tag = 0x00081140
	tagRefSOPInstance    dicom.Tag = 0x00081155
	tagStudyDescription  dicom.Tag = 0x00081030
	tagImageComments     dicom.Tag = 0x00204000
)

// marshal returns the JSON of ds, failing the test on error or on output
// that is not valid JSON.
func marshal(t *testing.T, ds *dicom.Dataset, opts dicom.JSONOptions) []byte {
	t.Helper()
	b, err := dicom.MarshalJSON(ds, opts)
	if err != nil {
		t.Fatalf("MarshalJSON: %v", err)
	}
	if !json.Valid(b) {
		t.Fatalf("MarshalJSON gave invalid JSON:\n%s", b)
	}
	return b
}

// attribute decodes ds to JSON and returns the compact JSON of the
// attribute with tag t ("" when absent).
func attribute(t *testing.T, ds *dicom.Dataset, tag dicom.Tag, opts dicom.JSONOptions) string {
	t.Helper()
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(marshal(t, ds, opts), &obj); err != nil {
		t.Fatal(err)
	}
	raw, ok := obj[tag.Hex()]
	if !ok {
		return ""
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func raw(tag dicom.Tag, vr dicom.VR, v string) dicom.Element {
	return dicom.Element{Tag: tag, VR: vr, Value: []byte(v), Length: uint32(len(v))}
}

func TestJSONPersonNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		value string
		want  string
	}{
		{"three groups", "Yamada^Tarou=山田^太郎=やまだ^たろう", `{"vr":"PN","Value":[{"Alphabetic":"Yamada^Tarou","Ideographic":"山田^太郎","Phonetic":"やまだ^たろう"}]}`},
		{"alphabetic only", "Doe^John ", `{"vr":"PN","Value":[{"Alphabetic":"Doe^John"}]}`},
		{"empty groups left out", "=山田^太郎", `{"vr":"PN","Value":[{"Ideographic":"山田^太郎"}]}`},
		{"trailing empty groups", "Wang^XiaoDong=王^小東=", `{"vr":"PN","Value":[{"Alphabetic":"Wang^XiaoDong","Ideographic":"王^小東"}]}`},
		{"several values, one empty", `Doe^John\\Roe^Jane`, `{"vr":"PN","Value":[{"Alphabetic":"Doe^John"},null,{"Alphabetic":"Roe^Jane"}]}`},
		{"a name of no group", "==", `{"vr":"PN"}`},
		{"components kept", "^^^^", `{"vr":"PN","Value":[{"Alphabetic":"^^^^"}]}`},
		{"spaces only", "    ", `{"vr":"PN"}`},
		{"empty", "", `{"vr":"PN"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ds dicom.Dataset
			ds.Set(raw(dicom.TagSpecificCharacterSet, dicom.CS, "ISO_IR 192"))
			ds.Set(raw(tagOtherPatientNames, dicom.PN, tt.value))
			if got := attribute(t, &ds, tagOtherPatientNames, dicom.JSONOptions{}); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestJSONStringsAndEmptyValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		el   dicom.Element
		want string
	}{
		{"empty LO has no Value", raw(tagInstitutionName, dicom.LO, ""), `{"vr":"LO"}`},
		{"padding removed", raw(tagPatientID, dicom.LO, " ID 7 "), `{"vr":"LO","Value":["ID 7"]}`},
		{"multi-valued CS with an empty value", raw(tagImageType, dicom.CS, `ORIGINAL\\AXIAL `), `{"vr":"CS","Value":["ORIGINAL",null,"AXIAL"]}`},
		{"all values empty", raw(tagImageType, dicom.CS, `\ `), `{"vr":"CS"}`},
		{"LT is one value, backslashes kept, leading spaces kept", raw(tagImageComments, dicom.LT, "  a\\b\r\nc\"q\" "), `{"vr":"LT","Value":["  a\\b\r\nc\"q\""]}`},
		{"UI padding", raw(dicom.TagSOPInstanceUID, dicom.UI, "1.2.3\x00"), `{"vr":"UI","Value":["1.2.3"]}`},
		{"control characters escaped", raw(tagStudyDescription, dicom.LO, "a\x01b\tc"), `{"vr":"LO","Value":["a\u0001b\tc"]}`},
		{"bytes that are not UTF-8 in a VR without character set", raw(tagImageType, dicom.CS, "A\xffB"), `{"vr":"CS","Value":["A\ufffdB"]}`},
		{"empty sequence has no Value", dicom.Element{Tag: tagReferencedSeries, VR: dicom.SQ, Length: dicom.UndefinedLength, Items: []*dicom.Item{}}, `{"vr":"SQ"}`},
		{"empty OB", raw(0x00091010, dicom.OB, ""), `{"vr":"OB"}`},
		{"empty US", raw(tagRows, dicom.US, ""), `{"vr":"US"}`},
		{"unknown VR written as UN", raw(0x00091011, dicom.VR('Q'<<8|'Q'), "ab"), `{"vr":"UN","InlineBinary":"YWI="}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ds dicom.Dataset
			ds.Set(tt.el)
			if got := attribute(t, &ds, tt.el.Tag, dicom.JSONOptions{}); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestJSONEscapesLineSeparators(t *testing.T) {
	t.Parallel()
	var ds dicom.Dataset
	ds.Set(raw(dicom.TagSpecificCharacterSet, dicom.CS, "ISO_IR 192"))
	ds.Set(raw(tagStudyDescription, dicom.LO, "a\u2028b\u2029c é"))
	want := `{"vr":"LO","Value":["a\u2028b\u2029c é"]}`
	if got := attribute(t, &ds, tagStudyDescription, dicom.JSONOptions{}); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	b := marshal(t, &ds, dicom.JSONOptions{})
	if bytes.Contains(b, []byte("\u2028")) || !bytes.Contains(b, []byte(`a\u2028b\u2029c`)) {
		t.Errorf("line separators not escaped: %s", b)
	}
}

func TestJSONNumbers(t *testing.T) {
	t.Parallel()
	le := binary.LittleEndian
	f32 := func(v ...float32) string {
		var b []byte
		for _, x := range v {
			b = le.AppendUint32(b, math.Float32bits(x))
		}
		return string(b)
	}
	f64 := func(v ...float64) string {
		var b []byte
		for _, x := range v {
			b = le.AppendUint64(b, math.Float64bits(x))
		}
		return string(b)
	}
	tests := []struct {
		name string
		el   dicom.Element
		want string
	}{
		{"US", raw(tagRows, dicom.US, "\x00\x02\xff\xff"), `{"vr":"US","Value":[512,65535]}`},
		{"SS", raw(0x00280106, dicom.SS, "\x00\x80\xff\x7f"), `{"vr":"SS","Value":[-32768,32767]}`},
		{"UL", raw(0x00280000, dicom.UL, "\xff\xff\xff\xff"), `{"vr":"UL","Value":[4294967295]}`},
		{"SL", raw(0x00189219, dicom.SL, "\x00\x00\x00\x80"), `{"vr":"SL","Value":[-2147483648]}`},
		{"UV past 2^53 keeps every digit", raw(0x00189220, dicom.UV, "\xff\xff\xff\xff\xff\xff\xff\xff"), `{"vr":"UV","Value":[18446744073709551615]}`},
		{"SV", raw(0x00189221, dicom.SV, "\x00\x00\x00\x00\x00\x00\x00\x80"), `{"vr":"SV","Value":[-9223372036854775808]}`},
		{"incomplete value dropped", raw(tagRows, dicom.US, "\x01\x00\x02"), `{"vr":"US","Value":[1]}`},
		{"FL shortest form", raw(0x00189218, dicom.FL, f32(0.1, -77.20406, 1e-7, 3e38)), `{"vr":"FL","Value":[0.1,-77.20406,1e-7,3e+38]}`},
		{"FD", raw(0x00189217, dicom.FD, f64(0.625, 1e21, 123456789.123456789, math.Copysign(0, -1))), `{"vr":"FD","Value":[0.625,1e+21,123456789.12345679,-0]}`},
		{"FD NaN and infinities as strings", raw(0x00189217, dicom.FD, f64(math.NaN(), math.Inf(1), math.Inf(-1))), `{"vr":"FD","Value":["NaN","Infinity","-Infinity"]}`},
		{"FL NaN", raw(0x00189218, dicom.FL, f32(float32(math.NaN()))), `{"vr":"FL","Value":["NaN"]}`},
		{"IS", raw(tagSeriesNumber, dicom.IS, " +12\\-3\\007 "), `{"vr":"IS","Value":[12,-3,7]}`},
		{"IS whole number with a fraction", raw(tagSeriesNumber, dicom.IS, "1.0 "), `{"vr":"IS","Value":[1]}`},
		{"IS not a number kept as text", raw(tagSeriesNumber, dicom.IS, "1A"), `{"vr":"IS","Value":["1A"]}`},
		{"IS with a fraction kept as text", raw(tagSeriesNumber, dicom.IS, "1.5 "), `{"vr":"IS","Value":["1.5"]}`},
		{"DS digits kept", raw(tagSliceThickness, dicom.DS, "239.531250000000"), `{"vr":"DS","Value":[239.531250000000]}`},
		{"DS forms that are not JSON numbers", raw(tagPixelSpacing, dicom.DS, `.5\1.\+2E3\-0.25e-2\007`), `{"vr":"DS","Value":[0.5,1,2000,-0.25e-2,7]}`},
		{"DS with an empty value", raw(tagPixelSpacing, dicom.DS, `1\\3 `), `{"vr":"DS","Value":[1,null,3]}`},
		{"DS not a number kept as text", raw(tagSliceThickness, dicom.DS, "abc "), `{"vr":"DS","Value":["abc"]}`},
		{"DS NaN text kept as text", raw(tagSliceThickness, dicom.DS, "NaN "), `{"vr":"DS","Value":["NaN"]}`},
		{"DS out of range kept as text", raw(tagSliceThickness, dicom.DS, "1e400 "), `{"vr":"DS","Value":["1e400"]}`},
		{"AT", raw(tagFrameIncrement, dicom.AT, "\x18\x00\x63\x10\x54\x00\x10\x00"), `{"vr":"AT","Value":["00181063","00540010"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ds dicom.Dataset
			ds.Set(tt.el)
			if got := attribute(t, &ds, tt.el.Tag, dicom.JSONOptions{}); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// nestedDataset builds a dataset in ISO_IR 100 with two levels of
// sequences whose items carry Latin-1 text but no character set of their
// own.
func nestedDataset(t *testing.T) *dicom.Dataset {
	t.Helper()
	var ds dicom.Dataset
	ds.Set(raw(dicom.TagSpecificCharacterSet, dicom.CS, "ISO_IR 100"))
	ds.Set(raw(tagPatientName, dicom.PN, "Buc^J\xe9r\xf4me"))
	inner := dicom.NewItem()
	inner.Set(raw(tagRefSOPInstance, dicom.UI, "1.2.3.4\x00"))
	inner.Set(raw(tagImageComments, dicom.LT, "Gr\xfc\xdfe"))
	outer1 := dicom.NewItem()
	outer1.Set(raw(tagStudyDescription, dicom.LO, "\xc9tude"))
	outer1.SetSequence(tagReferencedImage, inner)
	outer2 := dicom.NewItem()
	ds.SetSequence(tagReferencedSeries, outer1, outer2)
	return &ds
}

func TestJSONNestedSequencesInheritCharset(t *testing.T) {
	t.Parallel()
	ds := nestedDataset(t)
	got := string(marshal(t, ds, dicom.JSONOptions{}))
	want := `{"00080005":{"vr":"CS","Value":["ISO_IR 100"]},` +
		`"00081115":{"vr":"SQ","Value":[` +
		`{"00081030":{"vr":"LO","Value":["Étude"]},` +
		`"00081140":{"vr":"SQ","Value":[{"00081155":{"vr":"UI","Value":["1.2.3.4"]},"00204000":{"vr":"LT","Value":["Grüße"]}}]}},` +
		`{}]},` +
		`"00100010":{"vr":"PN","Value":[{"Alphabetic":"Buc^Jérôme"}]}}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}

	// Pretty-printing changes the layout only.
	pretty := marshal(t, ds, dicom.JSONOptions{Indent: "  "})
	if !bytes.Contains(pretty, []byte("\n    \"vr\": \"CS\"")) {
		t.Errorf("indented output is not indented:\n%s", pretty)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, pretty); err != nil {
		t.Fatal(err)
	}
	if compact.String() != want {
		t.Errorf("indented output differs once compacted:\n%s", compact.String())
	}
	// Deterministic.
	if again := string(marshal(t, ds, dicom.JSONOptions{})); again != got {
		t.Errorf("second run differs:\n%s", again)
	}
}

func TestJSONBulkData(t *testing.T) {
	t.Parallel()
	small := bytes.Repeat([]byte{1, 2, 3, 4}, 4)
	large := bytes.Repeat([]byte{0xAB}, 2000)
	var ds dicom.Dataset
	ds.Set(dicom.Element{Tag: 0x00091010, VR: dicom.OB, Value: small})
	ds.Set(dicom.Element{Tag: 0x00091011, VR: dicom.UN, Value: large})
	ds.Set(dicom.Element{Tag: 0x00091012, VR: dicom.OB, Value: large[:dicom.DefaultBulkThreshold]})
	frags := &dicom.Fragments{OffsetTable: []byte{0, 0, 0, 0}, Items: [][]byte{{0xFF, 0xD8, 0xFF, 0xD9}, {1, 2}}}
	ds.Set(dicom.Element{Tag: dicom.TagPixelData, VR: dicom.OW, Length: dicom.UndefinedLength, Fragments: frags})

	inline := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	encaps := []byte{
		0xFE, 0xFF, 0x00, 0xE0, 4, 0, 0, 0, 0, 0, 0, 0,
		0xFE, 0xFF, 0x00, 0xE0, 4, 0, 0, 0, 0xFF, 0xD8, 0xFF, 0xD9,
		0xFE, 0xFF, 0x00, 0xE0, 2, 0, 0, 0, 1, 2,
		0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0,
	}
	tests := []struct {
		name string
		opts dicom.JSONOptions
		tag  dicom.Tag
		want string
	}{
		{"small inline", dicom.JSONOptions{}, 0x00091010, `{"vr":"OB","InlineBinary":"` + inline(small) + `"}`},
		{"large summarised", dicom.JSONOptions{}, 0x00091011, `{"vr":"UN","BulkDataURI":"urn:mosaic:bulk:length=2000"}`},
		{"at the threshold inline", dicom.JSONOptions{}, 0x00091012, `{"vr":"OB","InlineBinary":"` + inline(large[:1024]) + `"}`},
		{"threshold of 8", dicom.JSONOptions{BulkThreshold: 8}, 0x00091010, `{"vr":"OB","BulkDataURI":"urn:mosaic:bulk:length=16"}`},
		{"no limit", dicom.JSONOptions{BulkThreshold: -1}, 0x00091011, `{"vr":"UN","InlineBinary":"` + inline(large) + `"}`},
		{"nothing inline", dicom.JSONOptions{NoInline: true}, 0x00091010, `{"vr":"OB","BulkDataURI":"urn:mosaic:bulk:length=16"}`},
		{"encapsulated inline as OB", dicom.JSONOptions{}, dicom.TagPixelData, `{"vr":"OB","InlineBinary":"` + inline(encaps) + `"}`},
		{"encapsulated summarised", dicom.JSONOptions{BulkThreshold: 16}, dicom.TagPixelData, `{"vr":"OB","BulkDataURI":"urn:mosaic:bulk:length=42;fragments=2"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := attribute(t, &ds, tt.tag, tt.opts); got != tt.want {
				t.Errorf("got  %.200s\nwant %.200s", got, tt.want)
			}
		})
	}
}

func TestJSONUnreadPixelData(t *testing.T) {
	t.Parallel()
	// Native pixel data left unread: its length is known.
	f, err := dicom.Parse(bigEndianFile(t), dicom.ReadOptions{StopAtPixelData: true})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"vr":"OW","BulkDataURI":"urn:mosaic:bulk:length=4"}`
	if got := attribute(t, &f.Dataset, dicom.TagPixelData, dicom.JSONOptions{BulkThreshold: -1}); got != want {
		t.Errorf("native: got %s, want %s", got, want)
	}

	// Encapsulated pixel data left unread: it is not.
	enc := &dicom.File{Syntax: dicom.Syntax{UID: dicom.RLELossless, Encapsulated: true}}
	enc.Dataset.Set(dicom.Element{Tag: dicom.TagPixelData, VR: dicom.OB, Length: dicom.UndefinedLength,
		Fragments: &dicom.Fragments{Items: [][]byte{{1, 2, 3, 4}}}})
	var b bytes.Buffer
	if err := dicom.WriteFile(&b, enc); err != nil {
		t.Fatal(err)
	}
	g, err := dicom.Parse(b.Bytes(), dicom.ReadOptions{StopAtPixelData: true})
	if err != nil {
		t.Fatal(err)
	}
	want = `{"vr":"OB","BulkDataURI":"urn:mosaic:bulk:length=undefined"}`
	if got := attribute(t, &g.Dataset, dicom.TagPixelData, dicom.JSONOptions{}); got != want {
		t.Errorf("encapsulated: got %s, want %s", got, want)
	}
}

// beElement encodes one explicit VR big endian element.
func beElement(tag dicom.Tag, vr dicom.VR, value []byte) []byte {
	be := binary.BigEndian
	b := be.AppendUint16(nil, tag.Group())
	b = be.AppendUint16(b, tag.Element())
	b = append(b, byte(vr>>8), byte(vr))
	if vr.HasLongLength() {
		b = append(b, 0, 0)
		b = be.AppendUint32(b, uint32(len(value)))
	} else {
		b = be.AppendUint16(b, uint16(len(value)))
	}
	return append(b, value...)
}

// bigEndianFile returns a Part 10 file in explicit VR big endian holding
// binary numbers of several VRs and a small OW value.
func bigEndianFile(t *testing.T) []byte {
	t.Helper()
	be := binary.BigEndian
	var meta dicom.File
	meta.Preamble = make([]byte, 128)
	meta.Syntax = dicom.Syntax{UID: dicom.ExplicitVRBigEndian, BigEndian: true}
	var head bytes.Buffer
	if err := dicom.WriteFile(&head, &meta); err != nil {
		t.Fatal(err)
	}
	var ds []byte
	ds = append(ds, beElement(tagFrameIncrement, dicom.AT, []byte{0x00, 0x18, 0x10, 0x63, 0x00, 0x54, 0x00, 0x10})...)
	ds = append(ds, beElement(tagRows, dicom.US, be.AppendUint16(be.AppendUint16(nil, 512), 1))...)
	ds = append(ds, beElement(0x00280106, dicom.SS, be.AppendUint16(nil, 0xFFFE))...)
	ds = append(ds, beElement(0x00189219, dicom.SL, be.AppendUint32(nil, 0xFFFFFFFF))...)
	ds = append(ds, beElement(0x00189217, dicom.FD, be.AppendUint64(nil, math.Float64bits(2.5)))...)
	ds = append(ds, beElement(0x00189218, dicom.FL, be.AppendUint32(nil, math.Float32bits(-0.75)))...)
	ds = append(ds, beElement(dicom.TagPixelData, dicom.OW, []byte{0x12, 0x34, 0xAB, 0xCD})...)
	return append(head.Bytes(), ds...)
}

func TestJSONBigEndian(t *testing.T) {
	t.Parallel()
	data := bigEndianFile(t)
	f, err := dicom.Parse(data, dicom.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !f.Syntax.BigEndian {
		t.Fatalf("syntax %+v, want big endian", f.Syntax)
	}
	got := string(marshal(t, &f.Dataset, dicom.JSONOptions{}))
	want := `{"00280009":{"vr":"AT","Value":["00181063","00540010"]},` +
		`"00280010":{"vr":"US","Value":[512,1]},` +
		`"00280106":{"vr":"SS","Value":[-2]},` +
		`"00189217":{"vr":"FD","Value":[2.5]},` +
		`"00189218":{"vr":"FL","Value":[-0.75]},` +
		`"00189219":{"vr":"SL","Value":[-1]},` +
		// OW is given in little-endian byte order.
		`"7FE00010":{"vr":"OW","InlineBinary":"` + base64.StdEncoding.EncodeToString([]byte{0x34, 0x12, 0xCD, 0xAB}) + `"}}`
	// The file has its elements out of tag order: the output keeps the
	// order read.
	var wantObj, gotObj map[string]any
	if err := json.Unmarshal([]byte(want), &wantObj); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(got), &gotObj); err != nil {
		t.Fatal(err)
	}
	wb, _ := json.Marshal(wantObj)
	gb, _ := json.Marshal(gotObj)
	if string(wb) != string(gb) {
		t.Errorf("got  %s\nwant %s", gb, wb)
	}
	if !strings.HasPrefix(got, `{"00280009":`) || !strings.Contains(got, `"00280106":{"vr":"SS","Value":[-2]},"00189219"`) {
		t.Errorf("elements not in the order read: %s", got)
	}
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errTestWrite }

var errTestWrite = &dicom.Error{Op: "test", Err: dicom.ErrNotEncodable}

func TestJSONWriteError(t *testing.T) {
	t.Parallel()
	ds := nestedDataset(t)
	if err := dicom.WriteJSON(failWriter{}, ds, dicom.JSONOptions{}); err == nil {
		t.Fatal("WriteJSON to a failing writer succeeded")
	}
}

func TestJSONBulkURIPrefix(t *testing.T) {
	t.Parallel()
	ds := &dicom.Dataset{}
	ds.SetBytes(dicom.NewTag(0x0009, 0x1010), dicom.OB, make([]byte, 2000))
	item := dicom.NewItem()
	item.SetBytes(dicom.TagPixelData, dicom.OW, make([]byte, 4000))
	ds.SetSequence(dicom.NewTag(0x0088, 0x0200), item)
	b, err := dicom.MarshalJSON(ds, dicom.JSONOptions{BulkURIPrefix: "http://node/x/bulk/"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"BulkDataURI":"http://node/x/bulk/00091010"`, `"BulkDataURI":"http://node/x/bulk/00880200/0/7FE00010"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s:\n%s", want, b)
		}
	}
}
