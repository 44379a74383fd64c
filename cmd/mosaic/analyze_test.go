package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestAnalyzeCommand: mosaic analyze sends the request with the token,
// prints the fit as R does with the rows per node and the nodes left
// out, prints JSON with -o json, and refuses bad usage with words.
func TestAnalyzeCommand(t *testing.T) {
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/analyses" || r.Header.Get("Authorization") != "Bearer tok-1" {
			http.Error(w, `{"error":"no"}`, http.StatusUnauthorized)
			return
		}
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &got)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"an-1","formula":"y ~ x + factor(stage)","family":"gaussian","coefficients":[
{"term":"(Intercept)","estimate":1.02,"std_error":0.05,"statistic":20.4,"p_value":1e-40},
{"term":"x","estimate":1.98,"std_error":0.04,"statistic":49.5,"p_value":1e-90},
{"term":"factor(stage)II","estimate":0.61,"std_error":0.09,"statistic":6.8,"p_value":0.003}],
"sigma":0.99,"df":697,"r_squared":0.8,"adj_r_squared":0.79,"n":700,
"rows_per_node":{"north":400,"south":300},"refused":{"east":"saturated: too many parameters"}}`)
	}))
	defer srv.Close()
	getenv := func(k string) string {
		if k == "XDG_CONFIG_HOME" {
			return t.TempDir()
		}
		return ""
	}
	var stdout, stderr bytes.Buffer
	args := []string{"analyze", "lm", "--hub", srv.URL, "--token", "tok-1", "--request", "req-1", "--table", "clinical", "--formula", "y ~ x + factor(stage)"}
	if code := run(context.Background(), args, getenv, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"Call:\nlm(formula = y ~ x + factor(stage)", "Coefficients:", "factor(stage)II", "Pr(>|t|)", "<2e-16", "**",
		"Residual standard error: 0.99 on 697 degrees of freedom", "Rows at north: 400", "Left out east: saturated"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if got["type"] != "lm" || got["request"] != "req-1" || got["table"] != "clinical" {
		t.Errorf("request body %v", got)
	}
	stdout.Reset()
	if code := run(context.Background(), append(args, "-o", "json"), getenv, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("-o json: exit %d", code)
	}
	var js map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &js); err != nil || js["id"] != "an-1" {
		t.Errorf("-o json: %v %s", err, stdout.String())
	}
	for _, bad := range [][]string{
		{"analyze", "lm", "--hub", srv.URL, "--token", "t", "--table", "clinical", "--formula", "y ~ x"},
		{"analyze", "anova", "--hub", srv.URL, "--token", "t", "--request", "r", "--table", "clinical", "--formula", "y ~ x"},
		{"analyze", "lm", "--hub", srv.URL, "--token", "t", "--request", "r", "--table", "clinical", "--formula", "y ~"},
		{"analyze", "lm", "--token", "t", "--request", "r", "--table", "clinical", "--formula", "y ~ x"},
	} {
		stderr.Reset()
		if code := run(context.Background(), bad, getenv, strings.NewReader(""), &stdout, &stderr); code == 0 || stderr.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q", bad, code, stderr.String())
		}
	}
	// A refused token says so.
	stderr.Reset()
	if code := run(context.Background(), []string{"analyze", "lm", "--hub", srv.URL, "--token", "bad", "--request", "r", "--table", "clinical", "--formula", "y ~ x"},
		getenv, strings.NewReader(""), &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), "401") {
		t.Errorf("a refused token: %d %q", code, stderr.String())
	}
}
