package fl

import (
	"slices"
	"strings"
	"testing"
)

func TestReadScores(t *testing.T) {
	s, l, err := ReadScores(strings.NewReader("label,score,extra\n1,0.9,x\n0,1e-3,y\n"), 0)
	if err != nil || !slices.Equal(s, []float64{0.9, 0.001}) || !slices.Equal(l, []float64{1, 0}) {
		t.Fatalf("%v %v %v", s, l, err)
	}
	for name, in := range map[string]string{
		"empty":     "",
		"no label":  "score\n0.5\n",
		"bad score": "score,label\n0.5,1\nsecret-value,0\n",
		"NaN":       "score,label\nNaN,1\n",
		"label 2":   "score,label\n0.5,2\n",
		"ragged":    "score,label\n0.5\n",
		"too many":  "score,label\n0.1,0\n0.2,1\n0.3,0\n",
	} {
		_, _, err := ReadScores(strings.NewReader(in), 2)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: error carries the value: %v", name, err)
		}
	}
}
