package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
)

// TestStartupIsCheap: no package of Mosaic does heavy work when the
// binary starts (an Argon2id hash, parsing templates, large tables):
// each package's initialisation allocates less than 1 MiB. The test
// binary links every package mosaic does; it is run again with no test
// selected and GODEBUG=inittrace=1, which reports each package's
// initialisation.
func TestStartupIsCheap(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %s", err, stderr.Bytes())
	}
	line := regexp.MustCompile(`^init (github\.com/mosaic-imaging/mosaic/\S+) @\S+ ms, (\S+) ms clock, (\d+) bytes, (\d+) allocs`)
	seen := 0
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		seen++
		if b, _ := strconv.Atoi(m[3]); b > 1<<20 {
			t.Errorf("initialising %s allocates %s bytes (%s ms): make it on first use", m[1], m[3], m[2])
		}
	}
	if seen < 5 {
		t.Fatalf("only %d packages of Mosaic in the init trace:\n%s", seen, stderr.Bytes())
	}
}
