package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes shared by every command.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// env is what a command may touch of its process: no globals, so tests
// run commands side by side.
type env struct {
	ctx    context.Context
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// usageError marks an error as a misuse of the command line (exit 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// run executes the command line args and returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRootCmd(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "mosaic: %v\n", err)
	var u usageError
	if errors.As(err, &u) || isCobraUsage(err) {
		return exitUsage
	}
	var x exitError
	if errors.As(err, &x) {
		return x.code
	}
	return exitFailure
}

// exitError carries a specific exit status after its message was printed.
type exitError struct {
	code int
	msg  string
}

func (x exitError) Error() string { return x.msg }

func isCobraUsage(err error) bool {
	// cobra reports flag and argument errors as plain errors; they all
	// come from parsing, before any RunE ran.
	var fe *flagError
	if errors.As(err, &fe) {
		return true
	}
	// cobra's own command-resolution errors carry no type.
	return strings.HasPrefix(err.Error(), "unknown command ")
}

type flagError struct{ err error }

func (f *flagError) Error() string { return f.err.Error() }

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "mosaic",
		Short: "Federated infrastructure for cancer imaging",
		Long: `Mosaic keeps de-identified cancer images and clinical data at each hospital's node,
publishes what exists through a central hub, and answers federated questions
without moving patient data.

Exit status: 0 on success, 1 when the work failed, 2 when the command line
was wrong.`,
		Version:       version(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &flagError{fmt.Errorf("%s: %w (see '%s --help')", c.CommandPath(), err, c.CommandPath())}
	})
	root.AddCommand(newSynthCmd(e), newDumpCmd(e), newDeidCmd(e), newNodeCmd(e), newHubCmd(e), newDemoCmd(e), newAuditCmd(e), newLoginCmd(e), newLogoutCmd(e),
		newJobCmd(e), newAnalyzeCmd(e), newToolCmd(e),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version of this binary (the same as --version)",
			Args:  argsError(cobra.NoArgs),
			Run: func(cmd *cobra.Command, args []string) {
				fmt.Fprintf(e.stdout, "mosaic version %s\n", version())
			},
		})
	return root
}

// argsError wraps cobra's positional-argument validators as usage errors.
func argsError(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := v(c, args); err != nil {
			return &flagError{fmt.Errorf("%s: %w (see '%s --help')", c.CommandPath(), err, c.CommandPath())}
		}
		return nil
	}
}
