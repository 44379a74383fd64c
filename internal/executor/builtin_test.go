package executor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestBuiltinRegistry(t *testing.T) {
	Register("test-echo", func(ctx context.Context, spec Spec, log func(string)) error {
		for _, a := range spec.Command[1:] {
			log(a)
		}
		return nil
	})
	defer Register("test-echo", nil)
	e, err := New(Config{Kind: Builtin})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	res, err := e.Run(context.Background(), Spec{Command: []string{"test-echo", "a", "b"}}, func(l string) { lines = append(lines, l) })
	if err != nil || res.ExitCode != 0 || strings.Join(lines, ",") != "a,b" {
		t.Fatalf("%+v %v %q", res, err, lines)
	}
	found := false
	for _, n := range Registered() {
		found = found || n == "test-echo"
	}
	if !found {
		t.Fatal("Registered does not list test-echo")
	}
	if _, err := e.Run(context.Background(), Spec{Command: []string{"no-such-analysis"}}, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown name: %v", err)
	}
	if _, err := e.Run(context.Background(), Spec{}, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no name: %v", err)
	}
}

func TestBuiltinFailuresAndLimits(t *testing.T) {
	b := NewBuiltin(Config{Limits: Limits{WallClock: 100 * time.Millisecond}})
	b.Register("fail", func(context.Context, Spec, func(string)) error { return errors.New("too few rows") })
	b.Register("panic", func(context.Context, Spec, func(string)) error { panic("boom") })
	b.Register("wait", func(ctx context.Context, _ Spec, _ func(string)) error { <-ctx.Done(); return ctx.Err() })
	b.Register("long", func(_ context.Context, _ Spec, log func(string)) error {
		log(strings.Repeat("x", 10000))
		return nil
	})
	var lines []string
	log := func(l string) { lines = append(lines, l) }
	if res, err := b.Run(context.Background(), Spec{Command: []string{"fail"}}, log); err != nil || res.ExitCode != 1 || lines[len(lines)-1] != "error: too few rows" {
		t.Fatalf("fail: %+v %v %q", res, err, lines)
	}
	if res, err := b.Run(context.Background(), Spec{Command: []string{"panic"}}, log); err != nil || res.ExitCode != 1 {
		t.Fatalf("panic: %+v %v", res, err)
	}
	if strings.Contains(strings.Join(lines, "\n"), "boom") {
		t.Fatal("a panic's value reached the log")
	}
	if res, _ := b.Run(context.Background(), Spec{Command: []string{"wait"}}, log); res.Killed != KilledTimeout {
		t.Fatalf("wall clock: %+v", res)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if res, _ := b.Run(ctx, Spec{Command: []string{"wait"}, Limits: Limits{WallClock: time.Hour}}, log); res.Killed != KilledCancelled {
		t.Fatalf("cancel: %+v", res)
	}
	lines = nil
	if _, err := b.Run(context.Background(), Spec{Command: []string{"long"}}, log); err != nil || len(lines) != 1 || len(lines[0]) > MaxLineBytes+10 {
		t.Fatalf("long line: %v, %d lines, %d bytes", err, len(lines), len(lines[0]))
	}
}

func TestSinkCapsLinesAndTotal(t *testing.T) {
	var got []string
	s := newSink(func(l string) { got = append(got, l) }, MaxLineBytes+200)
	r := strings.NewReader(strings.Repeat("y", 3*MaxLineBytes) + "\nshort\r\n" + strings.Repeat("z\n", 200))
	s.pump(r)
	if len(got[0]) > MaxLineBytes+len(" [cut]") || !strings.HasSuffix(got[0], "[cut]") {
		t.Fatalf("first line %d bytes", len(got[0]))
	}
	// 200 bytes past the long line leave room for about 95 more lines.
	if got[1] != "short" || len(got) > 100 || len(got) < 90 || !strings.Contains(got[len(got)-1], "output cut") {
		t.Fatalf("got %d lines: %q", len(got), got[1:])
	}
	got = nil
	s = newSink(func(l string) { got = append(got, l) }, 1<<20)
	s.pump(strings.NewReader("a\nb\r\n\xff\xfe bad utf8\nlast"))
	if strings.Join(got, "|") != "a|b|\uFFFD bad utf8|last" {
		t.Fatalf("got %q", got)
	}
}

func TestEffectiveLimits(t *testing.T) {
	node := Limits{CPUSeconds: 100, MemoryBytes: 1 << 30}
	l := effective(node, Limits{CPUSeconds: 1000, MemoryBytes: 1 << 20, WallClock: time.Minute})
	if l.CPUSeconds != 100 || l.MemoryBytes != 1<<20 || l.WallClock != time.Minute || l.DiskBytes != DefaultLimits.DiskBytes || l.Processes != DefaultLimits.Processes {
		t.Fatalf("effective: %+v", l)
	}
}

func TestNewRejectsUnknownKinds(t *testing.T) {
	for _, k := range []Kind{"", "vm"} {
		if _, err := New(Config{Kind: k}); !errors.Is(err, ErrInvalid) {
			t.Errorf("kind %q: %v", k, err)
		}
	}
	if _, err := New(Config{Kind: Process, Bwrap: "/nonexistent/bwrap"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("missing bwrap: %v", err)
	}
	if _, err := New(Config{Kind: Container, ContainerCLI: "/nonexistent/podman"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("missing podman: %v", err)
	}
}
