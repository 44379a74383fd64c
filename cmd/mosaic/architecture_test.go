package main

import (
	"bufio"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestArchitectureImports keeps docs/architecture.md true: each row of its
// package table names the Mosaic packages that package imports, and go list
// must agree.
func TestArchitectureImports(t *testing.T) {
	const module = "github.com/mosaic-imaging/mosaic/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "../../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	actual := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], module) {
			continue
		}
		var deps []string
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, module) {
				deps = append(deps, strings.TrimPrefix(imp, module))
			}
		}
		slices.Sort(deps)
		actual[strings.TrimPrefix(f[0], module)] = deps
	}

	doc, err := os.Open("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	defer doc.Close()
	documented := map[string][]string{}
	sc := bufio.NewScanner(doc)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		cells := strings.Split(sc.Text(), "|")
		if len(cells) < 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		pkg := strings.Trim(strings.TrimSpace(cells[1]), "`")
		var deps []string
		for _, d := range strings.Split(cells[len(cells)-2], ",") {
			if d = strings.Trim(strings.TrimSpace(d), "`"); d != "" && d != "none" {
				deps = append(deps, d)
			}
		}
		slices.Sort(deps)
		documented[pkg] = deps
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(documented) < 10 {
		t.Fatalf("read only %d package rows from docs/architecture.md", len(documented))
	}
	for pkg, deps := range actual {
		doc, ok := documented[pkg]
		if !ok {
			t.Errorf("docs/architecture.md has no row for %s", pkg)
			continue
		}
		if !slices.Equal(doc, deps) {
			t.Errorf("%s imports %v; docs/architecture.md says %v", pkg, deps, doc)
		}
	}
	for pkg := range documented {
		if _, ok := actual[pkg]; !ok {
			t.Errorf("docs/architecture.md describes %s, which does not exist", pkg)
		}
	}
}
