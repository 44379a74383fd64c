package executor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestProcessAllowListNotFooledByArguments: an approved script named
// after an interpreter's own options does not make the interpreter's
// inline code approved. "/bin/sh -c CODE /prog/ok.sh" runs CODE (the
// script is only $0); the allow-list must judge what runs.
func TestProcessAllowListNotFooledByArguments(t *testing.T) {
	sb := newSandbox(t)
	ok := sb.script("ok.sh", "echo approved\n")
	e := sb.executor()
	for _, cmd := range [][]string{
		{"/bin/sh", "-c", "echo pwned > /out/pwned", ok},
		{"/bin/sh", "-e", "-c", "echo pwned > /out/pwned", ok},
	} {
		_, err := e.Run(context.Background(), sb.spec(cmd...), nil)
		if _, serr := os.Stat(filepath.Join(sb.out, "pwned")); serr == nil {
			t.Errorf("%q ran unapproved inline code", cmd)
		}
		if !errors.Is(err, ErrNotAllowed) {
			t.Errorf("%q: err %v, want ErrNotAllowed", cmd, err)
		}
	}
	// The ordinary forms still run.
	if res, lines := sb.run(context.Background(), "/bin/sh", ok); res.ExitCode != 0 || len(lines) != 1 {
		t.Fatalf("sh script: %+v %q", res, lines)
	}
	if res, _ := sb.run(context.Background(), ok); res.ExitCode == 0 {
		t.Logf("direct run: %+v", res)
	}
}

// TestProcessRefusesLoaderVariables: the job's environment is set for
// setpriv and prlimit too, which run inside the sandbox holding
// CAP_SETUID and CAP_SETGID before they drop to the run's uid: the
// dynamic loader's variables (LD_PRELOAD, LD_AUDIT, ...) must not reach
// them.
func TestProcessRefusesLoaderVariables(t *testing.T) {
	sb := newSandbox(t)
	ok := sb.script("ok.sh", "echo approved\n")
	e := sb.executor()
	for _, name := range []string{"LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "GCONV_PATH"} {
		spec := sb.spec("/bin/sh", ok)
		spec.Env = map[string]string{name: "/out/x.so"}
		if _, err := e.Run(context.Background(), spec, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err %v, want ErrInvalid", name, err)
		}
	}
}
