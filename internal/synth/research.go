package synth

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
)

// ResearchModel holds the true coefficients the research table's
// outcomes are drawn from, so that tests and the demo can check a fitted
// model against them. Terms are age in years, male (0 or 1), stage II,
// III and IV (treatment contrasts against stage I) and haemoglobin in
// g/dL.
type ResearchModel struct {
	// Logistic model of response (1 responded): its intercept and
	// coefficients.
	LogitIntercept, LogitAge, LogitMale float64
	LogitStage                          [3]float64
	LogitHb                             float64
	// Linear model of pfs_months with Gaussian noise of standard
	// deviation Sigma.
	LinIntercept, LinAge, LinMale float64
	LinStage                      [3]float64
	LinHb, Sigma                  float64
}

// Research is the model WriteResearch draws its outcomes from.
var Research = ResearchModel{
	LogitIntercept: 2.2, LogitAge: -0.03, LogitMale: -0.4, LogitStage: [3]float64{-0.5, -1.1, -1.8}, LogitHb: 0.05,
	LinIntercept: 20, LinAge: -0.15, LinMale: -1.5, LinStage: [3]float64{-4, -9, -15}, LinHb: 1.2, Sigma: 4,
}

// ResearchColumns are the columns of the research table, in order.
var ResearchColumns = []string{"patient_id", "age", "sex", "stage", "hb", "crp", "ldh", "albumin", "response", "pfs_months"}

// WriteResearch writes a research table of one row per patient (given by
// their pseudonyms, in that order) as CSV: patient_id, age (integer),
// sex and stage (categorical), four laboratory values (hb, crp and
// albumin numeric, ldh integer; about 3% NA each), a binary response
// drawn from a logistic model of the covariates, and pfs_months, linear in
// them with Gaussian noise (Research gives both models). The same seed and
// patients give the same bytes.
func WriteResearch(w io.Writer, patients []string, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, 0x7265736561726368))
	cw := csv.NewWriter(w)
	if err := cw.Write(ResearchColumns); err != nil {
		return err
	}
	stages := []string{"I", "II", "III", "IV"}
	m := Research
	num := func(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }
	na := func(s string) string {
		if r.IntN(100) < 3 {
			return "NA"
		}
		return s
	}
	for _, p := range patients {
		age := math.Round(min(90, max(30, 62+10*r.NormFloat64())))
		male := r.IntN(2)
		sex := []string{"female", "male"}[male]
		stage := pick(r, []int{0, 0, 1, 1, 1, 2, 2, 3})
		hb := math.Round((13.2-0.6*float64(stage)+0.8*float64(male)+1.2*r.NormFloat64())*10) / 10
		crp := math.Round(math.Exp(1.5+0.3*float64(stage)+0.8*r.NormFloat64())*10) / 10
		ldh := math.Round(200 + 20*float64(stage) + 40*r.NormFloat64())
		alb := math.Round((41-1.5*float64(stage)+4*r.NormFloat64())*10) / 10
		eta := m.LogitIntercept + m.LogitAge*age + m.LogitMale*float64(male) + m.LogitHb*hb
		lin := m.LinIntercept + m.LinAge*age + m.LinMale*float64(male) + m.LinHb*hb + m.Sigma*r.NormFloat64()
		if stage > 0 {
			eta += m.LogitStage[stage-1]
			lin += m.LinStage[stage-1]
		}
		resp := 0
		if r.Float64() < 1/(1+math.Exp(-eta)) {
			resp = 1
		}
		rec := []string{p, num(age, 0), sex, stages[stage], na(num(hb, 1)), na(num(crp, 1)), na(num(ldh, 0)), na(num(alb, 1)),
			strconv.Itoa(resp), num(math.Round(lin*10)/10, 1)}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("synth: research table: %w", err)
	}
	return nil
}
