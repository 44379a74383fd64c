package airlock

import (
	"strings"
	"testing"
)

// TestModelDeclaredCountsAgree: a model's residual degrees of freedom
// cannot exceed its rows less its coefficients; one that says so lies
// about the only figure the check looks at (a "model" of as many
// coefficients as rows is the rows themselves).
func TestModelDeclaredCountsAgree(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"mosaic_output":"model","version":1,"n":40,"df_residual":30,"coefficients":[`)
	for i := 0; i < 40; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"term":"x` + string(rune('a'+i%26)) + `","estimate":61.5}`)
	}
	b.WriteString("]}")
	v := Check(Policy{}, Permissions{}, Output{Job: "j", Name: "m.json", Data: []byte(b.String())})
	if v.Decision == Release {
		t.Errorf("a model with 40 coefficients over 40 rows claiming 30 residual degrees of freedom was released")
	}
	noN := `{"mosaic_output":"model","version":1,"df_residual":30,"coefficients":[{"term":"a","estimate":1}]}`
	if v := Check(Policy{}, Permissions{}, Output{Job: "j", Name: "m.json", Data: []byte(noN)}); v.Decision == Release {
		t.Errorf("a model without its number of rows was released")
	}
}
