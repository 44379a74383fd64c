package charset

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// The reference decoder for this comparison is pydicom as Debian packages
// it (python3-pydicom), run by Debian's own interpreter.
const pythonPath = "/usr/bin/python3"

// pydicomScript reads {"cases": [{"terms", "kind", "hex"}]} on standard
// input and writes {"version", "files": [...], "cases": [...]}: every text
// value of the character set test files that pydicom ships, with the terms
// in force for it, and the pydicom decoding of each given case.
//
// Values are decoded with pydicom.charset.decode_bytes as pydicom itself
// does it: multi-valued strings split at backslashes and person names also
// at '=', each piece decoded with the delimiters pydicom uses for it.
const pydicomScript = `
import glob, json, os, sys, warnings
warnings.simplefilter("ignore")
import pydicom
from pydicom.charset import convert_encodings, decode_bytes
from pydicom.valuerep import PN_DELIMS, TEXT_VR_DELIMS

def decode(raw, terms, kind):
    encodings = convert_encodings(list(terms) or [""])
    if kind == "Text":
        return decode_bytes(raw, encodings, TEXT_VR_DELIMS)
    if kind == "PersonName":
        return "\\".join(
            "=".join(decode_bytes(c, encodings, PN_DELIMS) for c in v.split(b"="))
            for v in raw.split(b"\\"))
    return "\\".join(decode_bytes(v, encodings, TEXT_VR_DELIMS) for v in raw.split(b"\\"))

KINDS = {"PN": "PersonName", "ST": "Text", "LT": "Text", "UT": "Text",
         "SH": "Multi", "LO": "Multi", "UC": "Multi"}

def terms_of(ds, inherited):
    if 0x00080005 not in ds:
        return inherited
    value = ds.get_item(0x00080005).value
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace").split("\\")
    elif isinstance(value, str):
        value = [value]
    return [t.strip(" \x00") for t in value]

def walk(path, ds, inherited, out):
    terms = terms_of(ds, inherited)
    for tag in list(ds.keys()):
        elem = ds.get_item(tag)
        if elem.VR == "SQ":
            for item in ds[tag].value:
                walk(path, item, terms, out)
        elif elem.VR in KINDS and isinstance(elem.value, bytes):
            kind = KINDS[elem.VR]
            out.append({"file": os.path.basename(path), "tag": str(tag), "vr": elem.VR,
                        "terms": terms, "kind": kind, "hex": elem.value.hex(),
                        "decoded": decode(elem.value, terms, kind)})

request = json.load(sys.stdin)
data = os.path.join(os.path.dirname(pydicom.__file__), "data", "charset_files")
files = []
for path in sorted(glob.glob(os.path.join(data, "*.dcm"))):
    walk(path, pydicom.dcmread(path), [""], files)
cases = [decode(bytes.fromhex(c["hex"]), c["terms"], c["kind"]) for c in request["cases"]]
json.dump({"version": pydicom.__version__, "files": files, "cases": cases}, sys.stdout)
`

type pyCase struct {
	Terms []string `json:"terms"`
	Kind  string   `json:"kind"`
	Hex   string   `json:"hex"`
	name  string
}

type pyFileValue struct {
	File    string   `json:"file"`
	Tag     string   `json:"tag"`
	VR      string   `json:"vr"`
	Terms   []string `json:"terms"`
	Kind    string   `json:"kind"`
	Hex     string   `json:"hex"`
	Decoded string   `json:"decoded"`
}

type pyResult struct {
	Version string        `json:"version"`
	Files   []pyFileValue `json:"files"`
	Cases   []string      `json:"cases"`
}

func kindByName(t *testing.T, name string) Kind {
	for _, k := range []Kind{Multi, Text, PersonName} {
		if k.String() == name {
			return k
		}
	}
	t.Fatalf("unknown kind %q", name)
	return Multi
}

// pydicomUnavailable skips the test, or fails it when CI is set: there the
// comparison with the reference must not be silently lost.
func pydicomUnavailable(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s; CI is set, so the pydicom comparison must run (install Debian's python3-pydicom)", reason)
	}
	t.Skipf("%s; skipping the comparison with pydicom", reason)
}

func runPydicom(t *testing.T, cases []pyCase) pyResult {
	t.Helper()
	if _, err := os.Stat(pythonPath); err != nil {
		pydicomUnavailable(t, pythonPath+" is missing")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	probe := exec.CommandContext(ctx, pythonPath, "-c", "import pydicom")
	if out, err := probe.CombinedOutput(); err != nil {
		pydicomUnavailable(t, "pydicom cannot be imported by "+pythonPath+": "+strings.TrimSpace(string(out)))
	}
	input, err := json.Marshal(map[string]any{"cases": cases})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, pythonPath, "-c", pydicomScript)
	cmd.Stdin = bytes.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pydicom script: %v\n%s", err, stderr.String())
	}
	var res pyResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("pydicom script output: %v\n%s", err, out)
	}
	if len(res.Cases) != len(cases) {
		t.Fatalf("pydicom returned %d decodings for %d cases", len(res.Cases), len(cases))
	}
	return res
}

// pydicomView adjusts a pydicom decoding for a known flaw of pydicom 2.x:
// it decodes ISO 2022 IR 58 with Python's plain GB 2312 codec, which keeps
// the escape sequence ESC $ ) A in the text.
func pydicomView(terms []string, decoded string) string {
	if slices.Contains(terms, "ISO 2022 IR 58") {
		return strings.ReplaceAll(decoded, "\x1b$)A", "")
	}
	return decoded
}

// pydicomKnows reports whether pydicom 2.3 knows every term (it predates
// ISO_IR 203).
func pydicomKnows(terms []string) bool {
	for _, t := range terms {
		if strings.HasSuffix(t, "IR 203") {
			return false
		}
	}
	return true
}

// comparisonCases builds the values that both decoders read: the examples,
// this package's encodings of them, and whole character repertoires.
func comparisonCases(t *testing.T) []pyCase {
	var cases []pyCase
	add := func(name string, terms []string, kind Kind, raw []byte) {
		if terms == nil {
			terms = []string{}
		}
		cases = append(cases, pyCase{Terms: terms, Kind: kind.String(), Hex: hex.EncodeToString(raw), name: name})
	}
	for _, ex := range examples {
		if !pydicomKnows(ex.terms) {
			continue
		}
		// pydicom splits multi-valued strings at every backslash byte,
		// even inside a JIS X 0208 character.
		if ex.kind == Multi && strings.Contains(ex.raw, "\x1b$") {
			continue
		}
		add(ex.name, ex.terms, ex.kind, []byte(ex.raw))
		s := mustParse(t, ex.terms)
		enc, err := s.Encode(ex.text, ex.kind)
		if err != nil {
			t.Fatalf("%s: Encode: %v", ex.name, err)
		}
		add(ex.name+" encoded", ex.terms, ex.kind, enc)
	}
	// Every byte 0x80-0xFF of each single-byte set.
	for _, term := range []string{"ISO_IR 100", "ISO_IR 101", "ISO_IR 109", "ISO_IR 110",
		"ISO_IR 126", "ISO_IR 127", "ISO_IR 138", "ISO_IR 144", "ISO_IR 148", "ISO_IR 166", "ISO_IR 13"} {
		var raw []byte
		for b := 0x80; b <= 0xFF; b++ {
			// pydicom reads 0xA0 of TIS 620 as undefined; here it is
			// NO-BREAK SPACE as in ISO 8859-11.
			if term == "ISO_IR 166" && b == 0xA0 {
				continue
			}
			// JIS X 0201 has no characters outside 0xA1-0xDF, and
			// pydicom reads the rest as Shift_JIS lead bytes.
			if term == "ISO_IR 13" && (b < 0xA1 || b > 0xDF) {
				continue
			}
			raw = append(raw, byte(b))
		}
		add("all of "+term, []string{term}, Text, raw)
	}
	// Every character of each multi-byte set, encoded by this package.
	for _, rep := range []struct {
		terms []string
		g     gset
	}{
		{[]string{"", "ISO 2022 IR 87"}, gJIS0208},
		{[]string{"", "ISO 2022 IR 159"}, gJIS0212},
		{[]string{"", "ISO 2022 IR 149"}, gKSX1001},
		{[]string{"", "ISO 2022 IR 58"}, gGB2312},
	} {
		var text strings.Builder
		enc := dbcsEncodeMap(rep.g)
		for code, r := range dbcsDecodeTable(rep.g) {
			// U+3164 HANGUL FILLER starts a composed syllable in
			// Python's EUC-KR codec and cannot stand alone there.
			if r == 0 || enc[rune(r)] != uint16(code) || r == 0x3164 {
				continue
			}
			text.WriteRune(rune(r))
		}
		s := mustParse(t, rep.terms)
		raw, err := s.Encode(text.String(), Text)
		if err != nil {
			t.Fatalf("%q: Encode of the repertoire: %v", rep.terms, err)
		}
		add("repertoire of "+rep.terms[1], rep.terms, Text, raw)
	}
	// Person names and text that switch between sets.
	for _, tc := range []struct {
		terms []string
		kind  Kind
		text  string
	}{
		{[]string{"ISO 2022 IR 13", "ISO 2022 IR 87"}, PersonName, "ﾔﾏﾀﾞ^ﾀﾛｳ=山田ﾀﾛｳ^太郎=やまだ^たろう"},
		{[]string{"", "ISO 2022 IR 87", "ISO 2022 IR 159"}, PersonName, "森^鷗外=もり^おうがい"},
		{[]string{"", "ISO 2022 IR 149"}, Text, "첫째 줄\r\n둘째 줄 (洪吉洞)\r\n"},
		{[]string{"ISO 2022 IR 100", "ISO 2022 IR 144", "ISO 2022 IR 126"}, PersonName, "Müller^Ivan=Мюллер^Иван=Μύλλερ^Ιβάν"},
		{[]string{"ISO 2022 IR 100", "ISO 2022 IR 87"}, Text, "Jérôme: 山田\tさん\r\nfin"},
		{[]string{"", "ISO 2022 IR 58"}, PersonName, "Li^Ming=李^明="},
		{[]string{"GB18030"}, Text, "中文 € 𠀀"},
		{[]string{"GBK"}, PersonName, "王^小东"},
		{[]string{"ISO_IR 192"}, PersonName, "Wang^XiaoDong=王^小東=😀"},
	} {
		s := mustParse(t, tc.terms)
		raw, err := s.Encode(tc.text, tc.kind)
		if err != nil {
			t.Fatalf("%q: Encode(%q): %v", tc.terms, tc.text, err)
		}
		add(tc.text, tc.terms, tc.kind, raw)
	}
	return cases
}

func TestAgainstPydicom(t *testing.T) {
	t.Parallel()
	cases := comparisonCases(t)
	res := runPydicom(t, cases)
	t.Logf("pydicom %s: %d values from the test files, %d constructed values", res.Version, len(res.Files), len(cases))

	if len(res.Files) < 100 {
		t.Errorf("only %d values read from pydicom's character set test files", len(res.Files))
	}
	seen := map[string]bool{}
	for _, v := range res.Files {
		seen[v.File] = true
		raw, err := hex.DecodeString(v.Hex)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := Parse(v.Terms)
		got := s.Decode(raw, kindByName(t, v.Kind))
		if want := pydicomView(v.Terms, v.Decoded); got != want {
			t.Errorf("%s %s %s %q: Decode(%q) = %q, pydicom %q", v.File, v.Tag, v.VR, v.Terms, raw, got, want)
		}
	}
	for _, f := range []string{"chrH31.dcm", "chrH32.dcm", "chrI2.dcm", "chrX1.dcm", "chrX2.dcm",
		"chrJapMulti.dcm", "chrKoreanMulti.dcm", "chrGreek.dcm", "chrRuss.dcm", "chrArab.dcm",
		"chrHbrw.dcm", "chrSQEncoding.dcm"} {
		if !seen[f] {
			t.Errorf("no values read from %s", f)
		}
	}
	for i, c := range cases {
		raw, _ := hex.DecodeString(c.Hex)
		s := mustParse(t, c.Terms)
		got := s.Decode(raw, kindByName(t, c.Kind))
		if want := pydicomView(c.Terms, res.Cases[i]); got != want {
			t.Errorf("%s %q: %s", c.name, c.Terms, difference(got, want))
		}
	}
}

// difference describes where got and want first differ, with a few
// characters around it (the whole-repertoire values are long).
func difference(got, want string) string {
	g, w := []rune(got), []rune(want)
	i := 0
	for i < len(g) && i < len(w) && g[i] == w[i] {
		i++
	}
	around := func(r []rune) string {
		lo, hi := max(i-8, 0), min(i+8, len(r))
		if lo > hi {
			lo = hi
		}
		return string(r[lo:hi])
	}
	return fmt.Sprintf("first difference at character %d: got %q, pydicom %q", i, around(g), around(w))
}
