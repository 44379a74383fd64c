package attack

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"

	"github.com/mosaic-imaging/mosaic/internal/lens"
)

// Expr is a Samply Lens AST node as the Explorer sends it: an operator
// {"operand", "children"} or a condition {"key", "type", "system",
// "value"}.
type Expr map[string]any

// JSON is the bare AST, the body the hub's search API takes.
func (e Expr) JSON() []byte {
	b, _ := json.Marshal(e)
	return b
}

func (e Expr) String() string { return string(e.JSON()) }

func cond(a lens.Attr, typ string, value any) Expr {
	return Expr{"key": a.Key(), "type": typ, "system": "", "value": value}
}

func operator(op string, children ...Expr) Expr {
	if children == nil {
		children = []Expr{}
	}
	return Expr{"operand": op, "children": children}
}

// And, Or and Not are the operators; And() matches every patient.
func And(children ...Expr) Expr { return operator("AND", children...) }
func Or(children ...Expr) Expr  { return operator("OR", children...) }
func Not(child Expr) Expr       { return operator("NOT", child) }

// All matches every patient (what Lens sends with no criterion).
func All() Expr { return Or() }

// The values of the catalogue the attacks use.
const (
	Female = "SNOMEDCT248152002"
	Male   = "SNOMEDCT248153007"
)

// Diagnoses are the catalogue's cancer terms (SNOMED CT) for the
// cohort's cancer types.
var Diagnoses = []struct{ Name, Code string }{
	{"breast", "SNOMEDCT254837009"}, {"lung", "SNOMEDCT363358000"}, {"prostate", "SNOMEDCT399068003"},
	{"colorectal", "SNOMEDCT363406005"}, {"liver", "SNOMEDCT93870000"}, {"pancreas", "SNOMEDCT363418001"},
}

// Gender is gender EQUALS g.
func Gender(g string) Expr { return cond(lens.Gender, "EQUALS", g) }

// Diagnosis is diagnosis EQUALS code.
func Diagnosis(code string) Expr { return cond(lens.Diagnosis, "EQUALS", code) }

// AgeEq is age at diagnosis EQUALS a.
func AgeEq(a int) Expr { return cond(lens.AgeAtDiagnosis, "EQUALS", a) }

// AgeRange is age at diagnosis BETWEEN lo and hi; a nil side is open.
func AgeRange(lo, hi *int) Expr { return cond(lens.AgeAtDiagnosis, "BETWEEN", bounds(lo, hi)) }

// YearEq is year of diagnosis EQUALS y.
func YearEq(y int) Expr { return cond(lens.YearOfDiagnosis, "EQUALS", y) }

// YearRange is year of diagnosis BETWEEN lo and hi; a nil side is open.
func YearRange(lo, hi *int) Expr { return cond(lens.YearOfDiagnosis, "BETWEEN", bounds(lo, hi)) }

func bounds(lo, hi *int) map[string]int {
	m := map[string]int{}
	if lo != nil {
		m["min"] = *lo
	}
	if hi != nil {
		m["max"] = *hi
	}
	return m
}

func ip(i int) *int { return &i }

// Group is a small group of patients an attack tries to count: a name
// for the report and its query.
type Group struct {
	Name string
	Expr Expr
}

// AgeGroups are the groups "age at diagnosis = a" for a in lo..hi.
func AgeGroups(lo, hi int) []Group {
	var out []Group
	for a := lo; a <= hi; a++ {
		out = append(out, Group{fmt.Sprintf("age=%d", a), AgeEq(a)})
	}
	return out
}

// ComboGroups are gender x diagnosis and gender x year of diagnosis:
// groups that are often small in a cohort of tens of patients.
func ComboGroups() []Group {
	var out []Group
	for _, g := range []struct{ name, code string }{{"female", Female}, {"male", Male}} {
		for _, d := range Diagnoses {
			out = append(out, Group{g.name + "&" + d.Name, And(Gender(g.code), Diagnosis(d.Code))})
		}
		for y := 2015; y <= 2024; y++ {
			out = append(out, Group{fmt.Sprintf("%s&year=%d", g.name, y), And(Gender(g.code), YearEq(y))})
		}
	}
	return out
}

// largeSets are conditions that hold for a large share of a cohort
// (each about a third or more), the material of the sets B of general
// differencing and of trackers. Their order is fixed.
func largeSets() []Expr {
	var out []Expr
	out = append(out, Gender(Female), Gender(Male))
	for y := 2016; y <= 2023; y++ {
		out = append(out, YearRange(nil, ip(y)), YearRange(ip(y), nil))
	}
	for a := 55; a <= 75; a += 2 {
		out = append(out, AgeRange(nil, ip(a)), AgeRange(ip(a), nil))
	}
	out = append(out, cond(lens.Modality, "EQUALS", "CT"), cond(lens.Modality, "EQUALS", "MR"),
		Or(Diagnosis(Diagnoses[0].Code), Diagnosis(Diagnoses[1].Code)),
		Or(Diagnosis(Diagnoses[2].Code), Diagnosis(Diagnoses[3].Code)),
		Not(Diagnosis(Diagnoses[1].Code)), Not(Diagnosis(Diagnoses[0].Code)))
	return out
}

// Ordinary draws a researcher's ordinary query: an AND of 1 to 3
// criteria on different keys, like bench/search's mix.
func Ordinary(r *rand.Rand) Expr {
	kinds := r.Perm(6)[:1+r.IntN(3)]
	var kids []Expr
	for _, k := range kinds {
		switch k {
		case 0:
			kids = append(kids, Gender([]string{Female, Male}[r.IntN(2)]))
		case 1:
			lo := 30 + r.IntN(45)
			kids = append(kids, AgeRange(ip(lo), ip(lo+5+r.IntN(25))))
		case 2:
			kids = append(kids, Diagnosis(Diagnoses[r.IntN(len(Diagnoses))].Code))
		case 3:
			lo := 2015 + r.IntN(10)
			kids = append(kids, YearRange(ip(lo), ip(min(2024, lo+r.IntN(5)))))
		case 4:
			kids = append(kids, cond(lens.Modality, "EQUALS", []string{"RID10312", "RID10321", "RID10337", "MG"}[r.IntN(4)]))
		case 5:
			kids = append(kids, cond(lens.BodyPart, "EQUALS", []string{"SNOMEDCT76752008", "SNOMEDCT39607008", "SNOMEDCT818981001", "SNOMEDCT12921003"}[r.IntN(4)]))
		}
	}
	return And(kids...)
}

// Rewrite returns the i-th of an endless family of queries logically
// equivalent to x (i = 0 is x itself). Some have the same canonical form
// as x (children reordered, a wrapper AND, BETWEEN a..a for EQUALS), so
// the node gives them the same noise; the others differ only by
// conditions no patient can fail (an age of 1000 or more, a year of 3000
// or more, "g OR NOT g", a range over every age with bounds that differ)
// and get fresh noise.
func Rewrite(x Expr, i int) Expr {
	g := Gender(Female)
	switch i {
	case 0:
		return x
	case 1:
		return And(x) // the same canonical form
	case 2:
		return And(Or(Not(g), g), x)
	case 3:
		return Or(And(x, g), And(x, Not(g)))
	}
	j := i - 4
	switch j % 4 {
	case 0:
		return And(x, Not(AgeEq(1000+j)))
	case 1:
		return And(Not(YearEq(3000+j)), x)
	case 2:
		all := AgeRange(ip(-1-j), ip(200+j))
		return And(x, Or(all, Not(all)))
	default:
		return Not(Or(Not(x), AgeEq(1000+j)))
	}
}

func itoa(i int) string { return fmt.Sprint(i) }
