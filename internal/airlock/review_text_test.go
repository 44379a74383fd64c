package airlock

import (
	"strings"
	"testing"
)

// TestStructuredFreeText: the text members of structured outputs (a
// model's terms, a title) leave without a person; they must not carry
// records, long numbers or pseudonyms.
func TestStructuredFreeText(t *testing.T) {
	rows := strings.Repeat("P-AB12 61 F 3.2; ", 200)
	model := `{"mosaic_output":"model","version":1,"n":500,"df_residual":498,"coefficients":[{"term":"(Intercept)","estimate":1.5},` +
		`{"term":"` + rows + `","estimate":0.25}]}`
	v := Check(Policy{}, Permissions{}, Output{Job: "j", Name: "m.json", Data: []byte(model)})
	if v.Decision == Release {
		t.Errorf("a model whose term holds 3 kB of records was released")
	}
	title := `{"mosaic_output":"stats","version":1,"title":"MRN 123456789","statistics":[{"name":"n","statistic":"count","count":40}]}`
	if v := Check(Policy{}, Permissions{}, Output{Job: "j", Name: "s.json", Data: []byte(title)}); v.Decision == Release {
		t.Errorf("a stats output titled with a long number was released")
	}
	is := PseudonymSet([]string{"MOSAIC-7F3A"})
	st := `{"mosaic_output":"stats","version":1,"statistics":[{"name":"age of MOSAIC-7F3A","statistic":"count","count":40}]}`
	if v := Check(Policy{}, Permissions{}, Output{Job: "j", Name: "s.json", Data: []byte(st), IsPseudonym: is}); v.Decision == Release {
		t.Errorf("a stats output naming a pseudonym was released")
	}
	okModel := `{"mosaic_output":"model","version":1,"formula":"y ~ age + factor(stage)","n":500,"df_residual":497,"coefficients":[` +
		`{"term":"(Intercept)","estimate":1.5},{"term":"age","estimate":0.25},{"term":"factor(stage)II","estimate":-0.5}]}`
	if v := Check(Policy{}, Permissions{}, Output{Job: "j", Name: "m.json", Data: []byte(okModel)}); v.Decision != Release {
		t.Fatalf("an ordinary model: %+v", v)
	}
}
