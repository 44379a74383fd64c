package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mosaic-imaging/mosaic/internal/compute"
	"github.com/mosaic-imaging/mosaic/internal/oidc"
	"github.com/mosaic-imaging/mosaic/internal/stats"
)

// mosaic analyze: federated summaries and regressions through the hub's
// API, printed as R prints them.

// analyzeHTTPClient is the client of analyze (tests may replace it).
var analyzeHTTPClient = &http.Client{Timeout: 30 * time.Minute}

func newAnalyzeCmd(e *env) *cobra.Command {
	var hubURL, token, request, tbl, formula, family, output string
	var permits, variables []string
	cmd := &cobra.Command{
		Use:   "analyze summary|lm|glm --hub URL (--request ID | --permit ID...) --table NAME (--formula F | --variables V,...)",
		Short: "Run a federated summary, linear or logistic regression over your process permits",
		Long: `Runs a federated analysis at the nodes your process permits name: each node
computes its part from its research table (its checks refuse a part under
its floor, a saturated model or a category level with too few rows), the
parts are summed under secure aggregation so the hub sees only their sum,
and the hub fits the model. The fit equals the fit of the pooled rows.

  summary   counts, means and standard deviations of numeric --variables
  lm        linear regression (gaussian), --formula 'y ~ a + b + factor(c)'
  glm       logistic regression, --family binomial (the default)

Formulas take R's notation: terms joined by +, factor(x) for a categorical
term, a:b for an interaction, - 1 to drop the intercept.

The token is --token, else $MOSAIC_TOKEN, else the one 'mosaic login --hub
URL' stored.

Examples:
  mosaic analyze lm --hub https://hub.example --request req-12 --table clinical \
      --formula 'survival_months ~ age + factor(stage)'
  mosaic analyze glm --hub https://hub.example --permit pm-1 --permit pm-2 \
      --table clinical --formula 'response ~ age + factor(sex)' -o json
  mosaic analyze summary --hub https://hub.example --request req-12 --table clinical \
      --variables age,bmi`,
		Args: argsError(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := compute.AnalysisRequest{Type: args[0], Table: tbl, Formula: formula, Family: family, Variables: variables}
			if hubURL == "" {
				return usagef("mosaic analyze: --hub URL is required")
			}
			if (request == "") == (len(permits) == 0) {
				return usagef("mosaic analyze: give --request ID or --permit ID (one or more), not both")
			}
			if output != "" && output != "json" && output != "text" {
				return usagef("mosaic analyze: -o json or text")
			}
			if err := q.Check(); err != nil {
				return usagef("mosaic analyze: %v", err)
			}
			key, err := oidc.HubKey(hubURL)
			if err != nil {
				return usageError{err}
			}
			if token == "" {
				token = e.getenv("MOSAIC_TOKEN")
			}
			if token == "" {
				if creds, err := oidc.CredentialsFile(e.getenv); err == nil {
					token, _ = creds.Token(key)
				}
			}
			if token == "" {
				return usagef("mosaic analyze: no token: give --token, set MOSAIC_TOKEN, or run 'mosaic login --hub %s'", key)
			}
			body := map[string]any{"type": q.Type, "table": q.Table}
			if q.Formula != "" {
				body["formula"] = q.Formula
			}
			if q.Family != "" {
				body["family"] = q.Family
			}
			if len(q.Variables) > 0 {
				body["variables"] = q.Variables
			}
			if request != "" {
				body["request"] = request
			} else {
				body["permits"] = permits
			}
			raw, _ := json.Marshal(body)
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, key+"/api/v1/analyses", bytes.NewReader(raw))
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := analyzeHTTPClient.Do(req)
			if err != nil {
				return fmt.Errorf("analyze: %w", err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
			if err != nil {
				return fmt.Errorf("analyze: reading the answer: %w", err)
			}
			var res analyzeResult
			if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnprocessableEntity {
				var ae struct {
					Error string `json:"error"`
				}
				json.Unmarshal(b, &ae)
				if ae.Error == "" {
					ae.Error = strings.TrimSpace(string(b))
				}
				return fmt.Errorf("analyze: the hub answered %d: %s", resp.StatusCode, ae.Error)
			}
			if err := json.Unmarshal(b, &res); err != nil {
				return fmt.Errorf("analyze: the hub's answer is not JSON: %w", err)
			}
			if output == "json" {
				var pretty bytes.Buffer
				json.Indent(&pretty, b, "", "  ")
				fmt.Fprintln(e.stdout, pretty.String())
			} else {
				printAnalysis(e.stdout, q, &res)
			}
			if res.Error != "" {
				return fmt.Errorf("analyze: %s", res.Error)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&hubURL, "hub", "", "the hub's URL (required)")
	f.StringVar(&token, "token", "", "a hub API token (else $MOSAIC_TOKEN or the one 'mosaic login' stored)")
	f.StringVar(&request, "request", "", "an access request id: its process permits name the nodes")
	f.StringSliceVar(&permits, "permit", nil, "a process permit id (repeat for each node)")
	f.StringVar(&tbl, "table", "", "the research table's name at the nodes (required)")
	f.StringVar(&formula, "formula", "", "the model, in R's notation: 'y ~ a + factor(b)' (lm, glm)")
	f.StringVar(&family, "family", "", "glm's family: binomial (the default)")
	f.StringSliceVar(&variables, "variables", nil, "numeric variables to summarise (summary)")
	f.StringVarP(&output, "output", "o", "text", "text (R-like) or json")
	return cmd
}

// analyzeResult is the hub's answer to an analysis.
type analyzeResult struct {
	ID string `json:"id"`
	stats.Fit
	Summary     []compute.VarSummary `json:"summary"`
	RowsPerNode map[string]int       `json:"rows_per_node"`
	Refused     map[string]string    `json:"refused"`
	Error       string               `json:"error"`
}

// printAnalysis writes a fit as R's summary() does, then the nodes.
func printAnalysis(w io.Writer, q compute.AnalysisRequest, r *analyzeResult) {
	if q.Type == compute.TypeSummary {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "Variable\tN\tMean\tSD\t")
		for _, s := range r.Summary {
			fmt.Fprintf(tw, "%s\t%.0f\t%.6g\t%.6g\t\n", s.Variable, s.N, s.Mean, s.SD)
		}
		tw.Flush()
	} else if len(r.Coefficients) > 0 {
		call := "lm"
		if q.Type == compute.TypeGLM {
			call = "glm"
		}
		fmt.Fprintf(w, "Call:\n%s(formula = %s", call, q.Formula)
		if q.Type == compute.TypeGLM {
			fmt.Fprintf(w, ", family = %s", r.Family)
		}
		fmt.Fprintf(w, ", data = %s)  [federated over %d nodes]\n\nCoefficients:\n", q.Table, len(r.RowsPerNode))
		stat, p := "t value", "Pr(>|t|)"
		if q.Type == compute.TypeGLM {
			stat, p = "z value", "Pr(>|z|)"
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "\tEstimate\tStd. Error\t%s\t%s\t\t\n", stat, p)
		for _, c := range r.Coefficients {
			fmt.Fprintf(tw, "%s\t%.6g\t%.6g\t%.3f\t%s\t%s\t\n", c.Term, c.Estimate, c.StdError, c.Statistic, pValue(c.PValue), stars(c.PValue))
		}
		tw.Flush()
		fmt.Fprintln(w, "---\nSignif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1")
		fmt.Fprintln(w)
		if q.Type == compute.TypeLM {
			fmt.Fprintf(w, "Residual standard error: %.4g on %d degrees of freedom\n", r.Sigma, r.DF)
			fmt.Fprintf(w, "Multiple R-squared:  %.4g,\tAdjusted R-squared:  %.4g\n", r.RSquared, r.AdjRSquared)
			if r.FStatistic > 0 {
				fmt.Fprintf(w, "F-statistic: %.4g\n", r.FStatistic)
			}
		} else {
			fmt.Fprintf(w, "    Null deviance: %.5g\n", r.NullDeviance)
			fmt.Fprintf(w, "Residual deviance: %.5g  on %d degrees of freedom\n", r.Deviance, r.DF)
			fmt.Fprintf(w, "AIC: %.5g\n\nNumber of Fisher Scoring iterations: %d\n", r.AIC, r.Iterations)
		}
	}
	fmt.Fprintln(w)
	nodes := make([]string, 0, len(r.RowsPerNode))
	for n := range r.RowsPerNode {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	for _, n := range nodes {
		fmt.Fprintf(w, "Rows at %s: %d\n", n, r.RowsPerNode[n])
	}
	refused := make([]string, 0, len(r.Refused))
	for n := range r.Refused {
		refused = append(refused, n)
	}
	sort.Strings(refused)
	for _, n := range refused {
		fmt.Fprintf(w, "Left out %s: %s\n", n, r.Refused[n])
	}
}

func pValue(p float64) string {
	if math.IsNaN(p) {
		return "NA"
	}
	if p < 2e-16 {
		return "<2e-16"
	}
	return fmt.Sprintf("%.3g", p)
}

func stars(p float64) string {
	switch {
	case p < 0.001:
		return "***"
	case p < 0.01:
		return "**"
	case p < 0.05:
		return "*"
	case p < 0.1:
		return "."
	}
	return ""
}
