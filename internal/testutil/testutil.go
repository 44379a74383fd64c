// Package testutil holds helpers shared by the project's tests: waiting
// for a condition with a deadline (Eventually, Poll) and checking that JSON log
// records name each key once (JSONKeysOnce). It imports nothing of the
// project, so any package's tests may use it.
package testutil

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// T is the part of testing.TB that Eventually uses.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Eventually calls cond until it returns nil, every 10 ms at first and
// every 100 ms at most, and fails the test with cond's last error when
// timeout passes first. cond is always called at least once.
func Eventually(t T, timeout time.Duration, cond func() error) {
	t.Helper()
	if err := Poll(timeout, cond); err != nil {
		t.Fatalf("%v", err)
	}
}

// Poll is Eventually for a test that goes on either way: it returns nil
// once cond does, or, after timeout, an error carrying cond's last one.
func Poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	pause := 10 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("not true after %s: %w", timeout, err)
		}
		time.Sleep(min(pause, time.Until(deadline)+time.Millisecond))
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// JSONKeysOnce returns an error when the JSON document b holds an object,
// at any depth, that names a key twice (encoding/json would keep the last
// value and hide it), or when b is not one JSON value.
func JSONKeysOnce(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := keysOnce(dec, ""); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("more than one JSON value")
	}
	return nil
}

// keysOnce reads one value from dec, checking the objects in it.
func keysOnce(dec *json.Decoder, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			key := k.(string)
			if seen[key] {
				return fmt.Errorf("key %q appears twice in %s", key, or(path, "the record"))
			}
			seen[key] = true
			if err := keysOnce(dec, path+"."+key); err != nil {
				return err
			}
		}
		_, err = dec.Token() // '}'
		return err
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if err := keysOnce(dec, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ']'
		return err
	}
	return nil
}

func or(s, alt string) string {
	if s == "" {
		return alt
	}
	return strings.TrimPrefix(s, ".")
}

// JSONLogKeysOnce checks every line of r that starts with '{' (a JSON log
// record; other lines are skipped) with JSONKeysOnce. It returns the
// number of records checked and the first problem, naming its line.
func JSONLogKeysOnce(r io.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 4<<20)
	n, line := 0, 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 || b[0] != '{' {
			continue
		}
		n++
		if err := JSONKeysOnce(b); err != nil {
			return n, fmt.Errorf("log line %d: %w: %s", line, err, b)
		}
	}
	return n, sc.Err()
}
