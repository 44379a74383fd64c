package lens

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func leaf(key, typ, value string) string {
	return fmt.Sprintf(`{"key":%q,"type":%q,"system":"","value":%s}`, key, typ, value)
}

func and(kids ...string) string {
	return `{"operand":"AND","children":[` + strings.Join(kids, ",") + `]}`
}
func or(kids ...string) string {
	return `{"operand":"OR","children":[` + strings.Join(kids, ",") + `]}`
}
func not(kid string) string { return `{"operand":"NOT","children":[` + kid + `]}` }

func mustParse(t *testing.T, s string) *Query {
	t.Helper()
	q, err := Parse([]byte(s))
	if err != nil {
		t.Fatalf("Parse(%s): %v", s, err)
	}
	return q
}

// TestConditions covers every key with every type it allows: the
// normalised matches (through the canonical form) and the description.
func TestConditions(t *testing.T) {
	t.Parallel()
	const (
		gender = "SNOMEDCT263495000"
		age    = "SNOMEDCT423493009"
		diag   = "SNOMEDCT439401001"
		year   = "SNOMEDCT432213005"
		mod    = "RID10311"
		body   = "SNOMEDCT123037004"
		manu   = "C25392"
	)
	tests := []struct {
		key, typ, value string
		canon, describe string
	}{
		{gender, "EQUALS", `"SNOMEDCT248152002"`, `{"attr":"gender","match":["exact:female"]}`, "gender = female"},
		{gender, "EQUALS", `"SNOMEDCT248153007"`, `{"attr":"gender","match":["exact:male"]}`, "gender = male"},
		{gender, "EQUALS", `"SNOMEDCT74964007"`, `{"attr":"gender","match":["exact:other"]}`, "gender = other"},
		{gender, "EQUALS", `"SNOMEDCT261665006"`, `{"attr":"gender","match":["exact:unknown"]}`, "gender = unknown"},
		{gender, "EQUALS", `"248152002"`, `{"attr":"gender","match":["exact:female"]}`, "gender = female"},
		{gender, "EQUALS", `"Female"`, `{"attr":"gender","match":["exact:female"]}`, "gender = female"},
		{gender, "NOT_EQUALS", `"SNOMEDCT248152002"`, `{"attr":"gender","match":["exact:female"],"not":true}`, "gender != female"},
		{gender, "IN", `["SNOMEDCT248153007","SNOMEDCT248152002","F"]`, `{"attr":"gender","match":["exact:female","exact:male"]}`, "gender in (female, male)"},

		{age, "BETWEEN", `{"min":50,"max":70}`, `{"attr":"age_at_diagnosis","max":70,"min":50}`, "age at diagnosis 50..70"},
		{age, "BETWEEN", `{"min":49.5,"max":70.2}`, `{"attr":"age_at_diagnosis","max":70,"min":50}`, "age at diagnosis 50..70"},
		{age, "BETWEEN", `{"min":50}`, `{"attr":"age_at_diagnosis","min":50}`, "age at diagnosis >= 50"},
		{age, "BETWEEN", `{"min":50,"max":null}`, `{"attr":"age_at_diagnosis","min":50}`, "age at diagnosis >= 50"},
		{age, "BETWEEN", `{"min":50,"max":0}`, `{"attr":"age_at_diagnosis","min":50}`, "age at diagnosis >= 50"},
		{age, "BETWEEN", `{"max":40}`, `{"attr":"age_at_diagnosis","max":40}`, "age at diagnosis <= 40"},
		{age, "BETWEEN", `{"min":0,"max":40}`, `{"attr":"age_at_diagnosis","max":40,"min":0}`, "age at diagnosis 0..40"},
		{age, "BETWEEN", `{"min":60,"max":60}`, `{"attr":"age_at_diagnosis","max":60,"min":60}`, "age at diagnosis = 60"},
		{age, "EQUALS", `60`, `{"attr":"age_at_diagnosis","max":60,"min":60}`, "age at diagnosis = 60"},
		{age, "EQUALS", `60.0`, `{"attr":"age_at_diagnosis","max":60,"min":60}`, "age at diagnosis = 60"},
		{age, "NOT_EQUALS", `60`, `{"attr":"age_at_diagnosis","max":60,"min":60,"not":true}`, "age at diagnosis != 60"},
		{age, "GREATER_THAN", `50`, `{"attr":"age_at_diagnosis","min":51}`, "age at diagnosis >= 51"},
		{age, "GREATER_THAN", `50.5`, `{"attr":"age_at_diagnosis","min":51}`, "age at diagnosis >= 51"},
		{age, "LOWER_THAN", `70`, `{"attr":"age_at_diagnosis","max":69}`, "age at diagnosis <= 69"},
		{age, "LOWER_THAN", `69.5`, `{"attr":"age_at_diagnosis","max":69}`, "age at diagnosis <= 69"},
		{year, "BETWEEN", `{"min":2016,"max":2019}`, `{"attr":"year_of_diagnosis","max":2019,"min":2016}`, "year of diagnosis 2016..2019"},
		{year, "EQUALS", `2018`, `{"attr":"year_of_diagnosis","max":2018,"min":2018}`, "year of diagnosis = 2018"},
		{year, "GREATER_THAN", `2019`, `{"attr":"year_of_diagnosis","min":2020}`, "year of diagnosis >= 2020"},
		{year, "LOWER_THAN", `2017`, `{"attr":"year_of_diagnosis","max":2016}`, "year of diagnosis <= 2016"},
		{year, "NOT_EQUALS", `2018`, `{"attr":"year_of_diagnosis","max":2018,"min":2018,"not":true}`, "year of diagnosis != 2018"},

		{diag, "EQUALS", `"SNOMEDCT363406005"`, `{"attr":"diagnosis","match":["prefix:C18","prefix:C19","prefix:C20","cancer_type:colorectal"]}`, "diagnosis = colon cancer"},
		{diag, "EQUALS", `"SNOMEDCT254837009"`, `{"attr":"diagnosis","match":["prefix:C50","cancer_type:breast"]}`, "diagnosis = breast cancer"},
		{diag, "EQUALS", `"SNOMEDCT363358000"`, `{"attr":"diagnosis","match":["prefix:C34","cancer_type:lung"]}`, "diagnosis = lung cancer"},
		{diag, "EQUALS", `"SNOMEDCT363484005"`, `{"attr":"diagnosis","match":["prefix:C19","prefix:C20","prefix:C21","prefix:C51","prefix:C52","prefix:C53","prefix:C54","prefix:C55","prefix:C56","prefix:C57","prefix:C58","prefix:C61","prefix:C67","prefix:C68","cancer_type:bladder","cancer_type:cervix","cancer_type:ovary","cancer_type:prostate"]}`, "diagnosis = pelvis cancer"},
		{diag, "EQUALS", `"SNOMEDCT399068003"`, `{"attr":"diagnosis","match":["prefix:C61","cancer_type:prostate"]}`, "diagnosis = prostate cancer"},
		{diag, "EQUALS", `"SNOMEDCT93870000"`, `{"attr":"diagnosis","match":["prefix:C22","cancer_type:liver"]}`, "diagnosis = liver cancer"},
		{diag, "EQUALS", `"SNOMEDCT363418001"`, `{"attr":"diagnosis","match":["prefix:C25","cancer_type:pancreas"]}`, "diagnosis = pancreas cancer"},
		{diag, "EQUALS", `"colorectal"`, `{"attr":"diagnosis","match":["prefix:C18","prefix:C19","prefix:C20","cancer_type:colorectal"]}`, "diagnosis = colon cancer"},
		{diag, "EQUALS", `"C34.1"`, `{"attr":"diagnosis","match":["prefix:C341"]}`, "diagnosis = C34.1"},
		{diag, "EQUALS", `"c34"`, `{"attr":"diagnosis","match":["prefix:C34"]}`, "diagnosis = C34"},
		{diag, "EQUALS", `"C341"`, `{"attr":"diagnosis","match":["prefix:C341"]}`, "diagnosis = C34.1"},
		{diag, "NOT_EQUALS", `"C61"`, `{"attr":"diagnosis","match":["prefix:C61"],"not":true}`, "diagnosis != C61"},
		{diag, "IN", `["C50.9","SNOMEDCT363358000","C50.9"]`, `{"attr":"diagnosis","match":["prefix:C34","prefix:C509","cancer_type:lung"]}`, "diagnosis in (C50.9, lung cancer)"},

		{mod, "EQUALS", `"RID10312"`, `{"attr":"modality","match":["exact:MR"]}`, "modality = MR"},
		{mod, "EQUALS", `"RID10337"`, `{"attr":"modality","match":["exact:PT"]}`, "modality = PT"},
		{mod, "EQUALS", `"RID10334"`, `{"attr":"modality","match":["exact:NM"]}`, "modality = NM"},
		{mod, "EQUALS", `"RID10321"`, `{"attr":"modality","match":["exact:CT"]}`, "modality = CT"},
		{mod, "EQUALS", `"ct"`, `{"attr":"modality","match":["exact:CT"]}`, "modality = CT"},
		{mod, "NOT_EQUALS", `"US"`, `{"attr":"modality","match":["exact:US"],"not":true}`, "modality != US"},
		{mod, "IN", `["MG","CR","DX","RID10321","CT"]`, `{"attr":"modality","match":["exact:CR","exact:CT","exact:DX","exact:MG"]}`, "modality in (CR, CT, DX, MG)"},

		{body, "EQUALS", `"SNOMEDCT76752008"`, `{"attr":"body_part","match":["exact:BREAST"]}`, "body part = breast"},
		{body, "EQUALS", `"SNOMEDCT71854001"`, `{"attr":"body_part","match":["exact:COLON"]}`, "body part = colon"},
		{body, "EQUALS", `"SNOMEDCT39607008"`, `{"attr":"body_part","match":["exact:CHEST","exact:LUNG","exact:THORAX"]}`, "body part = lung"},
		{body, "EQUALS", `"SNOMEDCT12921003"`, `{"attr":"body_part","match":["exact:PELVIS"]}`, "body part = pelvis"},
		{body, "EQUALS", `"SNOMEDCT41216001"`, `{"attr":"body_part","match":["exact:PROSTATE"]}`, "body part = prostate"},
		{body, "EQUALS", `"SNOMEDCT51185008"`, `{"attr":"body_part","match":["exact:CHEST","exact:LUNG","exact:THORAX"]}`, "body part = chest"},
		{body, "EQUALS", `"SNOMEDCT818981001"`, `{"attr":"body_part","match":["exact:ABDOMEN"]}`, "body part = abdomen"},
		{body, "EQUALS", `"SNOMEDCT113345001"`, `{"attr":"body_part","match":["exact:ABDOMEN"]}`, "body part = abdomen"},
		{body, "EQUALS", `"SNOMEDCT38266002"`, `{"attr":"body_part","match":["exact:WHOLEBODY"]}`, "body part = whole body"},
		{body, "EQUALS", `"head"`, `{"attr":"body_part","match":["exact:HEAD"]}`, "body part = HEAD"},
		{body, "NOT_EQUALS", `"SNOMEDCT39607008"`, `{"attr":"body_part","match":["exact:CHEST","exact:LUNG","exact:THORAX"],"not":true}`, "body part != lung"},
		{body, "IN", `["SNOMEDCT41216001","PELVIS"]`, `{"attr":"body_part","match":["exact:PELVIS","exact:PROSTATE"]}`, "body part in (PELVIS, prostate)"},

		{manu, "EQUALS", `"C200140"`, `{"attr":"manufacturer","match":["word:SIEMENS"]}`, "manufacturer = Siemens"},
		{manu, "EQUALS", `"birnlex_3066"`, `{"attr":"manufacturer","match":["word:SIEMENS"]}`, "manufacturer = Siemens"},
		{manu, "EQUALS", `"birnlex_12833"`, `{"attr":"manufacturer","match":["word:GE","word:GEMS","word:GENERAL ELECTRIC"]}`, "manufacturer = GE"},
		{manu, "EQUALS", `"birnlex_3065"`, `{"attr":"manufacturer","match":["word:PHILIPS"]}`, "manufacturer = Philips"},
		{manu, "EQUALS", `"birnlex_3067"`, `{"attr":"manufacturer","match":["word:CANON","word:TOSHIBA"]}`, "manufacturer = Toshiba/Canon"},
		{manu, "EQUALS", `"GE Healthcare"`, `{"attr":"manufacturer","match":["word:GE","word:GEMS","word:GENERAL ELECTRIC"]}`, "manufacturer = GE"},
		{manu, "EQUALS", `"Hologic, Inc."`, `{"attr":"manufacturer","match":["exact:HOLOGIC, INC."]}`, `manufacturer = "Hologic, Inc."`},
		{manu, "NOT_EQUALS", `"birnlex_3065"`, `{"attr":"manufacturer","match":["word:PHILIPS"],"not":true}`, "manufacturer != Philips"},
		{manu, "IN", `["C200140","birnlex_3065"]`, `{"attr":"manufacturer","match":["word:PHILIPS","word:SIEMENS"]}`, "manufacturer in (Philips, Siemens)"},
		{manu, "CONTAINS", `"holo"`, `{"attr":"manufacturer","match":["substring:HOLO"]}`, `manufacturer contains "holo"`},
	}
	for _, tc := range tests {
		t.Run(tc.key+"/"+tc.typ+"/"+tc.value, func(t *testing.T) {
			q := mustParse(t, leaf(tc.key, tc.typ, tc.value))
			want := `{"lens":1,"ast":` + tc.canon + `}`
			if got := string(q.Canonical()); got != want {
				t.Errorf("canonical:\n got %s\nwant %s", got, want)
			}
			if got := q.Describe(); got != tc.describe {
				t.Errorf("describe: got %q, want %q", got, tc.describe)
			}
			roundTrip(t, q)
		})
	}
}

// TestSystemICD10 reads a diagnosis value as ICD-10 when the system says
// so, even where it would otherwise be a cancer type word.
func TestSystemICD10(t *testing.T) {
	t.Parallel()
	q := mustParse(t, `{"key":"SNOMEDCT439401001","type":"EQUALS","system":"http://hl7.org/fhir/sid/icd-10","value":"C61"}`)
	if got, want := q.Describe(), "diagnosis = C61"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := Parse([]byte(`{"key":"SNOMEDCT439401001","type":"EQUALS","system":"ICD-10","value":"lung"}`)); err == nil {
		t.Error("a word under the ICD-10 system was accepted")
	}
}

// lensQuery is what the Explorer sends for "female, aged 50 to 70, with
// an MR" (Lens nests OR, AND, OR and marks branches with their key).
const lensQuery = `{"ast":{"nodeType":"branch","operand":"OR","children":[{"nodeType":"branch","operand":"AND","children":[
	{"nodeType":"branch","key":"SNOMEDCT263495000","operand":"OR","children":[{"nodeType":"leaf","key":"SNOMEDCT263495000","type":"EQUALS","system":"","value":"SNOMEDCT248152002"}]},
	{"nodeType":"branch","key":"SNOMEDCT423493009","operand":"OR","children":[{"nodeType":"leaf","key":"SNOMEDCT423493009","type":"BETWEEN","system":"","value":{"min":50,"max":70}}]},
	{"nodeType":"branch","key":"RID10311","operand":"OR","children":[{"nodeType":"leaf","key":"RID10311","type":"EQUALS","system":"","value":"RID10312"}]}
	]}]},"id":"0b29f6b5-4b0c-4ee8-9d2f-4a7f1a7ef1ce__search__0b29f6b5-4b0c-4ee8-9d2f-4a7f1a7ef1cf"}`

func TestForms(t *testing.T) {
	t.Parallel()
	want := mustParse(t, lensQuery)
	if want.ID != "0b29f6b5-4b0c-4ee8-9d2f-4a7f1a7ef1ce__search__0b29f6b5-4b0c-4ee8-9d2f-4a7f1a7ef1cf" {
		t.Errorf("id: %q", want.ID)
	}
	if got, d := want.Describe(), "gender = female AND age at diagnosis 50..70 AND modality = MR"; got != d {
		t.Errorf("describe: got %q, want %q", got, d)
	}
	bare := lensQuery[len(`{"ast":`):strings.LastIndex(lensQuery, `,"id"`)]
	forms := map[string]string{
		"bare":            bare,
		"envelope std":    `{"lang":"ast","query":"` + base64.StdEncoding.EncodeToString([]byte(lensQuery)) + `"}`,
		"envelope raw":    `{"lang":"ast","query":"` + base64.RawStdEncoding.EncodeToString([]byte(lensQuery)) + `"}`,
		"envelope url":    `{"lang":"ast","query":"` + base64.URLEncoding.EncodeToString([]byte(lensQuery)) + `"}`,
		"envelope rawurl": `{"query":"` + base64.RawURLEncoding.EncodeToString([]byte(lensQuery)) + `","lang":"AST"}`,
		"envelope bare":   `{"lang":"ast","query":"` + base64.StdEncoding.EncodeToString([]byte(bare)) + `"}`,
		"envelope wrapped": `{"lang":"ast","query":"` + func() string {
			s := base64.StdEncoding.EncodeToString([]byte(lensQuery))
			return s[:40] + `\n` + s[40:]
		}() + `"}`,
		"no id": `{"ast":` + bare + `}`,
	}
	for name, body := range forms {
		t.Run(name, func(t *testing.T) {
			q := mustParse(t, body)
			if string(q.Canonical()) != string(want.Canonical()) {
				t.Errorf("canonical:\n got %s\nwant %s", q.Canonical(), want.Canonical())
			}
		})
	}
}

func TestEmpty(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		`{"ast":{"operand":"OR","children":[]},"id":"x"}`,
		`{"operand":"AND","children":[]}`,
		`{"operand":"OR"}`,
		or(and(), or()),
		and(or(and())),
	} {
		q := mustParse(t, s)
		if !q.Root.All() || q.Describe() != "all patients" || string(q.Canonical()) != `{"lens":1,"ast":{"and":[]}}` {
			t.Errorf("%s: got %s %q", s, q.Canonical(), q.Describe())
		}
		if !q.Root.Eval(func(*Condition) bool { return false }) {
			t.Errorf("%s: empty query does not match", s)
		}
	}
	// An empty branch next to a condition changes nothing in an AND and
	// makes an OR true.
	f := leaf("SNOMEDCT263495000", "EQUALS", `"F"`)
	if got := mustParse(t, and(f, or())).Describe(); got != "gender = female" {
		t.Errorf("AND with empty: %q", got)
	}
	if !mustParse(t, or(f, and())).Root.All() {
		t.Error("OR with empty is not everything")
	}
	// NOT of everything is nothing.
	q := mustParse(t, not(or()))
	if q.Root.Eval(func(*Condition) bool { return true }) || q.Describe() != "NOT all patients" {
		t.Errorf("NOT everything: %q", q.Describe())
	}
}

func TestCanonical(t *testing.T) {
	t.Parallel()
	g := leaf("SNOMEDCT263495000", "EQUALS", `"SNOMEDCT248152002"`)
	a := leaf("SNOMEDCT423493009", "BETWEEN", `{"min":50,"max":70}`)
	a2 := leaf("SNOMEDCT423493009", "BETWEEN", `{"max":70.0,"min":49.2}`)
	m := leaf("RID10311", "EQUALS", `"RID10312"`)
	m2 := leaf("RID10311", "EQUALS", `"mr"`)
	in1 := leaf("RID10311", "IN", `["CT","MR","PT"]`)
	in2 := leaf("RID10311", "IN", `["PT","RID10321","MR","CT"]`)
	same := [][]string{
		{and(g, a, m), and(m, a, g), and(and(g, a), m2), or(and(g, or(a2), m)), and(g, a, m, g), not(not(and(m, g, a)))},
		{and(g, in1), and(in2, g), `{"ast":` + and(in1, g) + `,"id":"other"}`},
		{or(and(g, a), m), or(m, and(a, g)), or(or(m), and(and(a), g))},
		{not(or(g, m)), not(or(m2, g))},
	}
	for i, group := range same {
		want := mustParse(t, group[0])
		for _, s := range group[1:] {
			if got := mustParse(t, s); string(got.Canonical()) != string(want.Canonical()) {
				t.Errorf("group %d: %s\n got %s\nwant %s", i, s, got.Canonical(), want.Canonical())
			}
		}
	}
	// Different queries, different bytes.
	seen := map[string]string{}
	for _, s := range []string{g, a, m, and(g, a), or(g, a), and(g, not(a)), not(and(g, a)), and(g, in1),
		leaf("SNOMEDCT263495000", "NOT_EQUALS", `"SNOMEDCT248152002"`), leaf("RID10311", "IN", `["CT","MR"]`)} {
		c := string(mustParse(t, s).Canonical())
		if prev, ok := seen[c]; ok {
			t.Errorf("%s and %s share canonical %s", prev, s, c)
		}
		seen[c] = s
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	g := leaf("SNOMEDCT263495000", "EQUALS", `"F"`)
	a := leaf("SNOMEDCT423493009", "GREATER_THAN", `60`)
	m := leaf("RID10311", "EQUALS", `"CT"`)
	b := leaf("SNOMEDCT123037004", "EQUALS", `"SNOMEDCT39607008"`)
	tests := map[string]string{
		and(g, or(m, b)):      "gender = female AND (modality = CT OR body part = lung)",
		or(and(g, a), m):      "modality = CT OR (gender = female AND age at diagnosis >= 61)",
		and(g, not(m)):        "gender = female AND NOT modality = CT",
		not(and(g, m)):        "NOT (gender = female AND modality = CT)",
		not(not(not(m))):      "NOT modality = CT",
		and(a, not(or(m, b))): "age at diagnosis >= 61 AND NOT (modality = CT OR body part = lung)",
	}
	for in, want := range tests {
		if got := mustParse(t, in).Describe(); got != want {
			t.Errorf("%s:\n got %q\nwant %q", in, got, want)
		}
	}
	// Long descriptions are cut.
	var vals []string
	for i := 0; i < 150; i++ {
		vals = append(vals, fmt.Sprintf(`"free text manufacturer number %d"`, i))
	}
	if d := mustParse(t, leaf("C25392", "IN", "["+strings.Join(vals, ",")+"]")).Describe(); len(d) > maxDescribe+3 || !strings.HasSuffix(d, "...") {
		t.Errorf("long description: %d bytes", len(d))
	}
}

func TestEval(t *testing.T) {
	t.Parallel()
	q := mustParse(t, or(and(leaf("SNOMEDCT263495000", "EQUALS", `"F"`), not(leaf("RID10311", "EQUALS", `"CT"`))), leaf("SNOMEDCT423493009", "GREATER_THAN", `80`)))
	for _, tc := range []struct {
		female, ct, old, want bool
	}{{true, false, false, true}, {true, true, false, false}, {false, false, false, false}, {false, true, true, true}} {
		got := q.Root.Eval(func(c *Condition) bool {
			switch c.Attr {
			case Gender:
				return tc.female
			case Modality:
				return tc.ct
			}
			return tc.old
		})
		if got != tc.want {
			t.Errorf("%+v: got %v", tc, got)
		}
	}
	if !q.Uses(Modality) || q.Uses(BodyPart) {
		t.Error("Uses")
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	deep := leaf("RID10311", "EQUALS", `"CT"`)
	for i := 0; i < 16; i++ {
		deep = and(deep)
	}
	var many []string
	for i := 0; i < 201; i++ {
		many = append(many, leaf("RID10311", "EQUALS", `"CT"`))
	}
	var manyValues []string
	for i := 0; i < 201; i++ {
		manyValues = append(manyValues, `"CT"`)
	}
	long := strings.Repeat("x", 300)
	tests := []struct {
		name, in, path, reason string
	}{
		{"empty", ``, "", "empty query"},
		{"blank", " \n\t", "", "empty query"},
		{"malformed", `{"operand":`, "", "malformed JSON"},
		{"syntax", `{"operand" "AND"}`, "", "malformed JSON at byte"},
		{"trailing", `{"operand":"AND","children":[]} {}`, "", "data after the query"},
		{"not object", `[1,2]`, "", "must be a JSON object"},
		{"no form", `{"foo":1}`, "", "not a Lens query"},
		{"too large", `{"operand":"AND","children":[]}` + strings.Repeat(" ", 64<<10), "", "larger than 65536 bytes"},
		{"ast not object", `{"ast":"x"}`, "ast", "must be a JSON object"},
		{"id type", `{"ast":{"operand":"AND","children":[]},"id":5}`, "id", "must be a string"},
		{"lang", `{"lang":"cql","query":"eA=="}`, "lang", `unsupported query language "cql"`},
		{"query type", `{"lang":"ast","query":5}`, "query", "base64"},
		{"base64", `{"lang":"ast","query":"%%%"}`, "query", "not valid base64"},
		{"envelope in envelope", `{"lang":"ast","query":"` + base64.StdEncoding.EncodeToString([]byte(`{"lang":"ast","query":"e30="}`)) + `"}`, "query", "envelope inside an envelope"},
		{"envelope bad json", `{"lang":"ast","query":"` + base64.StdEncoding.EncodeToString([]byte(`{"operand":`)) + `"}`, "", "malformed JSON"},
		{"operand", `{"operand":"XOR","children":[]}`, "operand", `unknown operand "XOR"`},
		{"operand type", `{"operand":1,"children":[]}`, "operand", "unknown operand"},
		{"children type", `{"operand":"AND","children":{}}`, "children", "must be an array"},
		{"child type", and(`"x"`), "children[0]", "must be a JSON object"},
		{"neither", and(`{"type":"EQUALS"}`), "children[0]", "needs an operand or a key"},
		{"not none", `{"operand":"NOT","children":[]}`, "children", "exactly one child, not 0"},
		{"not missing", `{"operand":"NOT"}`, "children", "must be an array"},
		{"not two", `{"operand":"NOT","children":[` + leaf("RID10311", "EQUALS", `"CT"`) + `,` + leaf("RID10311", "EQUALS", `"MR"`) + `]}`, "children", "exactly one child, not 2"},
		{"unknown key", and(leaf("SNOMEDCT999", "EQUALS", `"x"`)), "children[0].key", `unknown key "SNOMEDCT999"`},
		{"long key", leaf(long, "EQUALS", `"x"`), "key", "unknown key"},
		{"key type", `{"key":1,"type":"EQUALS","value":"x"}`, "key", "must be a string"},
		{"missing type", `{"key":"RID10311","value":"CT"}`, "type", "missing"},
		{"type type", `{"key":"RID10311","type":3,"value":"CT"}`, "type", "must be a string"},
		{"unknown type", leaf("RID10311", "LIKE", `"CT"`), "type", `unknown type "LIKE"`},
		{"type for key", leaf("RID10311", "BETWEEN", `{"min":1}`), "type", "BETWEEN is not allowed for modality"},
		{"contains gender", leaf("SNOMEDCT263495000", "CONTAINS", `"fem"`), "type", "CONTAINS is not allowed for gender"},
		{"in age", leaf("SNOMEDCT423493009", "IN", `[50]`), "type", "IN is not allowed for age at diagnosis"},
		{"system type", `{"key":"RID10311","type":"EQUALS","system":1,"value":"CT"}`, "system", "must be a string"},
		{"missing value", `{"key":"RID10311","type":"EQUALS"}`, "value", "missing"},
		{"string for number", leaf("SNOMEDCT423493009", "EQUALS", `"50"`), "value", "must be a number"},
		{"number for string", leaf("RID10311", "EQUALS", `5`), "value", "takes a string"},
		{"range for string", leaf("RID10311", "EQUALS", `{"min":1}`), "value", "takes a string"},
		{"number for range", leaf("SNOMEDCT423493009", "BETWEEN", `50`), "value", "BETWEEN takes"},
		{"range for number", leaf("SNOMEDCT423493009", "GREATER_THAN", `{"min":50}`), "value", "must be a number"},
		{"range string", leaf("SNOMEDCT423493009", "BETWEEN", `{"min":"50"}`), "value.min", "must be a number"},
		{"range empty", leaf("SNOMEDCT423493009", "BETWEEN", `{}`), "value", "needs min or max"},
		{"range reversed", leaf("SNOMEDCT423493009", "BETWEEN", `{"min":70,"max":50}`), "value", "min is greater than max"},
		{"fraction", leaf("SNOMEDCT423493009", "EQUALS", `50.5`), "value", "whole number"},
		{"huge", leaf("SNOMEDCT432213005", "EQUALS", `1e300`), "value", "out of range"},
		{"in not array", leaf("RID10311", "IN", `"CT"`), "value", "IN takes an array"},
		{"in empty", leaf("RID10311", "IN", `[]`), "value", "at least one value"},
		{"in element", leaf("RID10311", "IN", `["CT",5]`), "value[1]", "must be a string"},
		{"empty value", leaf("RID10311", "EQUALS", `"  "`), "value", "empty value"},
		{"long value", leaf("C25392", "EQUALS", `"`+long+`"`), "value", "longer than 256"},
		{"control", leaf("C25392", "EQUALS", `"a\u0001b"`), "value", "control character"},
		{"unknown gender", leaf("SNOMEDCT263495000", "EQUALS", `"SNOMEDCT1"`), "value", `unknown gender value "SNOMEDCT1"`},
		{"unknown diagnosis", leaf("SNOMEDCT439401001", "EQUALS", `"SNOMEDCT22298006"`), "value", "unknown diagnosis value"},
		{"diagnosis text", leaf("SNOMEDCT439401001", "EQUALS", `"cancer"`), "value", "unknown diagnosis value"},
		{"unknown modality", leaf("RID10311", "EQUALS", `"RID99"`), "value", "unknown modality value"},
		{"modality text", leaf("RID10311", "EQUALS", `"XYZ"`), "value", "unknown modality value"},
		{"in unknown", leaf("RID10311", "IN", `["CT","XYZ"]`), "value[1]", "unknown modality value"},
		{"unknown body part", leaf("SNOMEDCT123037004", "EQUALS", `"SNOMEDCT80891009"`), "value", "unknown body part value"},
		{"body part text", leaf("SNOMEDCT123037004", "EQUALS", `"chest; drop"`), "value", "unknown body part value"},
		{"unknown manufacturer", leaf("C25392", "EQUALS", `"birnlex_1"`), "value", "unknown manufacturer value"},
		{"long value not quoted", leaf("SNOMEDCT263495000", "EQUALS", `"`+strings.Repeat("y", 40)+`"`), "value", "unknown gender value"},
		{"depth", deep, strings.Repeat("children[0].", 15) + "children[0]", "nested deeper than 16 levels"},
		{"leaves", and(many...), "children[200]", "more than 200 conditions"},
		{"in values", leaf("RID10311", "IN", "["+strings.Join(manyValues, ",")+"]"), "", "more than 200 conditions"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			var le *Error
			if !errors.As(err, &le) {
				t.Fatalf("got %v, want *Error", err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Error("not ErrInvalid")
			}
			if le.Path != tc.path || !strings.Contains(le.Reason, tc.reason) {
				t.Errorf("got path %q reason %q, want %q %q", le.Path, le.Reason, tc.path, tc.reason)
			}
			if strings.Contains(err.Error(), "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx") || strings.Contains(err.Error(), strings.Repeat("y", 40)) {
				t.Errorf("error quotes a long value: %v", err)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	q := and(leaf("RID10311", "EQUALS", `"CT"`), leaf("RID10311", "EQUALS", `"MR"`))
	if _, err := (Limits{MaxLeaves: 1}).Parse([]byte(q)); err == nil {
		t.Error("MaxLeaves 1 accepted two conditions")
	}
	if _, err := (Limits{MaxDepth: 1}).Parse([]byte(q)); err == nil {
		t.Error("MaxDepth 1 accepted depth 2")
	}
	if _, err := (Limits{MaxBytes: 10}).Parse([]byte(q)); err == nil {
		t.Error("MaxBytes 10 accepted more")
	}
	if _, err := (Limits{MaxDepth: 2, MaxLeaves: 2}).Parse([]byte(q)); err != nil {
		t.Errorf("at the limits: %v", err)
	}
	// Duplicate members: the last one wins.
	if q, err := Parse([]byte(`{"key":"RID10311","type":"EQUALS","value":"CT","value":"MR"}`)); err != nil || q.Describe() != "modality = MR" {
		t.Errorf("duplicate members: %v %v", q, err)
	}
}

// roundTrip checks that the Explorer form MarshalJSON writes parses back
// to the same canonical query.
func roundTrip(t *testing.T, q *Query) {
	t.Helper()
	b, err := q.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	q2, err := (Limits{MaxBytes: 1 << 22, MaxLeaves: 1 << 20, MaxDepth: 1 << 10}).Parse(b)
	if err != nil {
		t.Fatalf("re-parse of %s: %v", b, err)
	}
	if string(q2.Canonical()) != string(q.Canonical()) || q2.ID != q.ID {
		t.Fatalf("round trip through %s:\n got %s\nwant %s", b, q2.Canonical(), q.Canonical())
	}
}

func TestMarshalJSON(t *testing.T) {
	t.Parallel()
	q := mustParse(t, lensQuery)
	b, _ := q.MarshalJSON()
	want := `{"ast":{"operand":"AND","children":[{"key":"SNOMEDCT263495000","type":"EQUALS","system":"","value":"female"},` +
		`{"key":"SNOMEDCT423493009","type":"BETWEEN","system":"","value":{"min":50,"max":70}},` +
		`{"key":"RID10311","type":"EQUALS","system":"","value":"MR"}]},"id":"` + q.ID + `"}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	for _, s := range []string{
		lensQuery,
		or(),
		not(or()),
		leaf("SNOMEDCT423493009", "BETWEEN", `{"min":50.2,"max":50.8}`),
		leaf("SNOMEDCT423493009", "BETWEEN", `{"min":-3.5,"max":-3.2}`),
		leaf("SNOMEDCT439401001", "IN", `["SNOMEDCT363484005","SNOMEDCT363406005","C61","C34.12","lung"]`),
		leaf("SNOMEDCT439401001", "NOT_EQUALS", `"SNOMEDCT363484005"`),
		leaf("SNOMEDCT439401001", "NOT_EQUALS", `"prostate"`),
		leaf("SNOMEDCT123037004", "IN", `["SNOMEDCT39607008","SNOMEDCT51185008","CHEST","SNOMED"]`),
		leaf("SNOMEDCT123037004", "NOT_EQUALS", `"SNOMEDCT51185008"`),
		leaf("C25392", "IN", `["C200140","birnlex_3066","Siemens Healthineers","toshiba_mec","Agfa"]`),
		leaf("C25392", "NOT_EQUALS", `"birnlex_12833"`),
		and(not(leaf("C25392", "CONTAINS", `"siem"`)), or(leaf("RID10311", "IN", `["CT","PT"]`), not(leaf("SNOMEDCT263495000", "EQUALS", `"O"`)))),
	} {
		roundTrip(t, mustParse(t, s))
	}
}
