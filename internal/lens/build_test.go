package lens

import (
	"errors"
	"strings"
	"testing"
)

func mustNode(t *testing.T) func(*Node, error) *Node {
	return func(n *Node, err error) *Node {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
}

// A query built in Go is the query parsed from the same JSON: same
// canonical form, same description, and its JSON parses back to it.
func TestBuiltQueriesEqualParsedOnes(t *testing.T) {
	must := mustNode(t)
	forty, seventy, y2015 := 40, 70, 2015
	for _, c := range []struct {
		name  string
		built *Node
		json  string
	}{
		{"everyone", AllOf(), `{"operand":"AND","children":[]}`},
		{"empty OR", AnyOf(), `{"operand":"OR","children":[]}`},
		{"gender", AllOf(must(Is(Gender, "SNOMEDCT248152002"))),
			`{"operand":"AND","children":[{"key":"SNOMEDCT263495000","type":"EQUALS","system":"","value":"SNOMEDCT248152002"}]}`},
		{"every criterion", AllOf(
			must(Is(Gender, "SNOMEDCT248153007")),
			must(Between(AgeAtDiagnosis, &forty, &seventy)),
			must(Is(Diagnosis, "SNOMEDCT399068003")),
			must(Between(YearOfDiagnosis, &y2015, nil)),
			AnyOf(must(Is(Modality, "RID10321")), must(Is(Modality, "RID10312"))),
			must(Is(BodyPart, "SNOMEDCT12921003")),
			Negate(must(Contains(Manufacturer, "helix"))),
		), `{"operand":"AND","children":[
			{"key":"SNOMEDCT263495000","type":"EQUALS","system":"","value":"SNOMEDCT248153007"},
			{"key":"SNOMEDCT423493009","type":"BETWEEN","system":"","value":{"min":40,"max":70}},
			{"key":"SNOMEDCT439401001","type":"EQUALS","system":"","value":"SNOMEDCT399068003"},
			{"key":"SNOMEDCT432213005","type":"BETWEEN","system":"","value":{"min":2015}},
			{"operand":"OR","children":[
				{"key":"RID10311","type":"EQUALS","system":"","value":"RID10321"},
				{"key":"RID10311","type":"EQUALS","system":"","value":"RID10312"}]},
			{"key":"SNOMEDCT123037004","type":"EQUALS","system":"","value":"SNOMEDCT12921003"},
			{"operand":"NOT","children":[{"key":"C25392","type":"CONTAINS","system":"","value":"helix"}]}]}`},
		{"IN and NOT_EQUALS", AnyOf(must(Is(Modality, "CT", "MR")), must(IsNot(Gender, "female"))),
			`{"operand":"OR","children":[{"key":"RID10311","type":"IN","value":["CT","MR"]},{"key":"SNOMEDCT263495000","type":"NOT_EQUALS","value":"F"}]}`},
		{"upper bound only", Negate(must(Between(AgeAtDiagnosis, nil, &seventy))),
			`{"operand":"NOT","children":[{"key":"SNOMEDCT423493009","type":"LOWER_THAN","value":71}]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			built, err := NewQuery(c.built)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := Parse([]byte(c.json))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(built.Canonical()), string(parsed.Canonical()); got != want {
				t.Errorf("canonical\n got %s\nwant %s", got, want)
			}
			if got, want := built.Describe(), parsed.Describe(); got != want {
				t.Errorf("description %q, want %q", got, want)
			}
			wire, _ := built.MarshalJSON()
			back, err := Parse(wire)
			if err != nil {
				t.Fatalf("%s: %v", wire, err)
			}
			if string(back.Canonical()) != string(built.Canonical()) {
				t.Errorf("%s reads back as %s", wire, back.Canonical())
			}
		})
	}
}

func TestBuildersRefuseWhatParseRefuses(t *testing.T) {
	one, two := 1, 2
	for _, c := range []struct {
		name string
		f    func() (*Node, error)
		want string
	}{
		{"unknown code", func() (*Node, error) { return Is(Gender, "SNOMEDCT1") }, "unknown gender value"},
		{"unknown modality", func() (*Node, error) { return Is(Modality, "XRAY") }, "unknown modality value"},
		{"empty value", func() (*Node, error) { return Is(BodyPart, " ") }, "empty value"},
		{"no value", func() (*Node, error) { return Is(Diagnosis) }, "no value"},
		{"control character", func() (*Node, error) { return Contains(Manufacturer, "a\x01b") }, "control character"},
		{"contains on gender", func() (*Node, error) { return Contains(Gender, "f") }, "CONTAINS is not allowed"},
		{"numeric with Is", func() (*Node, error) { return Is(AgeAtDiagnosis, "40") }, "use Between"},
		{"range of a coded attribute", func() (*Node, error) { return Between(Gender, &one, &two) }, "not numeric"},
		{"open range", func() (*Node, error) { return Between(AgeAtDiagnosis, nil, nil) }, "needs a lower or an upper bound"},
		{"reversed range", func() (*Node, error) { return Between(YearOfDiagnosis, &two, &one) }, "min is greater than max"},
		{"unknown attribute", func() (*Node, error) { return Is(Attr(99), "x") }, "unknown attribute"},
	} {
		n, err := c.f()
		var le *Error
		if err == nil || !errors.As(err, &le) || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, %v; want an *Error saying %q", c.name, n, err, c.want)
		}
	}
}

func TestNewQueryChecksTheTree(t *testing.T) {
	f, _ := Is(Gender, "female")
	deep := f
	for range DefaultLimits.MaxDepth {
		deep = Negate(deep)
	}
	many := make([]*Node, DefaultLimits.MaxLeaves+1)
	for i := range many {
		many[i] = f
	}
	for _, c := range []struct {
		name string
		root *Node
		want string
	}{
		{"nil", nil, "missing node"},
		{"nil child", AllOf(f, nil), "children[1]: missing node"},
		{"NOT of two", &Node{Op: Not, Children: []*Node{f, f}}, "NOT takes exactly one child"},
		{"bad operator", &Node{Op: "XOR"}, "unknown operand"},
		{"hand-made condition", &Node{Cond: &Condition{Attr: Gender}}, "needs values"},
		{"hand-made range", &Node{Cond: &Condition{Attr: AgeAtDiagnosis}}, "needs a range"},
		{"both", &Node{Op: And, Cond: f.Cond}, "not both"},
		{"too deep", deep, "nested deeper"},
		{"too many", AnyOf(many...), "more than 200 conditions"},
	} {
		if q, err := NewQuery(c.root); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, %v; want an error saying %q", c.name, q, err, c.want)
		}
	}
}
