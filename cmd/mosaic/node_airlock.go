package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mosaic-imaging/mosaic/internal/airlock"
	"github.com/mosaic-imaging/mosaic/internal/node"
)

const airlockLong = `Nothing a job writes leaves the node unchecked. The airlock checks each
output against the node's policy (node.json "airlock"; the defaults are those
of SACRO's ACRO): cell threshold 10 on tables, zeros sent to review,
residual degrees of freedom at least 10 for models, dominance (2, 90%) and
p-ratio 10% on sums and means, negative or unusual values sent to review;
size limits; allowed types by content (the structured JSON outputs, UTF-8
text, CSV, PNG; other binary content refused); no DICOM or row-level output
unless the permit allows it. Logs are released line by line, or held.

Each output ends up:

  released  the checks (or people) let it out; the node sends it to the hub
  held      it waits for a person: free text, CSV, images, anything sent
            to review, and everything when the node sets manual_release
  rejected  a person said no
  refused   the checks said no; nobody can release it

With two_person set, a release needs two different people: the first
approval is recorded, the second releases. Every hold, release, approval,
rejection and refusal is in the node's audit log (airlock-*).

These commands work on the data directory, also while 'mosaic node serve'
runs: a serving node linked to its hub holds the node's audit log, so
release and reject then hand the decision to it and wait (--wait) for it to
record and take it. The node's page (/airlock) and its API (admin token) do
the same.

  list     the outputs, newest last
  show     one output: its checks and findings, and its content on request
  release  approve (and, with one person enough, release) a held output
  reject   refuse a held output for good, with a reason`

func newNodeAirlockCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "airlock",
		Short: "See and decide on what jobs would send out of this node",
		Long:  airlockLong,
		Example: `  mosaic node airlock list --data /srv/node --state held
  mosaic node airlock show --data /srv/node out-3f2a... --content -
  mosaic node airlock release --data /srv/node out-3f2a... --as alice
  mosaic node airlock reject --data /srv/node out-3f2a... --as alice --reason "names a rare subgroup"`,
	}
	cmd.AddCommand(newAirlockListCmd(e), newAirlockShowCmd(e), newAirlockDecideCmd(e, true), newAirlockDecideCmd(e, false))
	return cmd
}

// withStore runs fn on an open node's airlock store.
func withStore(n *node.Node, fn func(*airlock.Store) error) error {
	s, err := n.Airlock()
	if err != nil {
		return err
	}
	return fn(s)
}

// withAirlock opens the node and its airlock store and runs fn.
func withAirlock(e *env, cmd *cobra.Command, f *nodeFlags, fn func(*airlock.Store) error) error {
	n, err := f.open(e, cmd)
	if err != nil {
		return err
	}
	s, err := n.Airlock()
	if err != nil {
		closeNode(n)
		return err
	}
	err = fn(s)
	if cerr := closeNode(n); err == nil {
		err = cerr
	}
	return err
}

func airlockWhen(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func newAirlockListCmd(e *env) *cobra.Command {
	var f nodeFlags
	var format, state, job string
	cmd := &cobra.Command{
		Use:   "list --data DIR [--state STATE] [--job JOB] [-o table|json]",
		Short: "List the outputs in the airlock",
		Long: `List the outputs of jobs in the airlock, oldest first: id, job, name, what
the content is, the checks' decision, the state (held, released, rejected,
refused) and, for held outputs of a two-person node, the approvals so far.`,
		Args: argsError(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validOutput(format); err != nil {
				return err
			}
			switch state {
			case "", airlock.StateHeld, airlock.StateReleased, airlock.StateRejected, airlock.StateRefused:
			default:
				return usagef("--state must be held, released, rejected or refused, not %q", state)
			}
			return withAirlock(e, cmd, &f, func(s *airlock.Store) error {
				all, err := s.List()
				if err != nil {
					return err
				}
				out := []airlock.Held{}
				for _, h := range all {
					if (state == "" || h.State == state) && (job == "" || h.Job == job) {
						out = append(out, h)
					}
				}
				if format == outputJSON {
					return writeJSON(e.stdout, map[string]any{"outputs": out})
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tJOB\tNAME\tTYPE\tCHECKS\tSTATE\tAPPROVALS\tHELD")
				for _, h := range out {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", h.ID, h.Job, h.Name, h.Verdict.Type, h.Verdict.Decision, h.State, len(h.Approvals), airlockWhen(h.Created))
				}
				return tw.Flush()
			})
		},
	}
	f.registerStore(cmd.Flags())
	addOutputFlag(cmd, &format)
	cmd.Flags().StringVar(&state, "state", "", "only outputs in this state: held, released, rejected or refused")
	cmd.Flags().StringVar(&job, "job", "", "only the outputs of this job")
	return cmd
}

func newAirlockShowCmd(e *env) *cobra.Command {
	var f nodeFlags
	var format, content string
	cmd := &cobra.Command{
		Use:   "show --data DIR OUTPUT-ID [--content FILE|-] [-o table|json]",
		Short: "Show one output: its checks, findings and decisions",
		Long: `Show one output of the airlock: its job, name, size and SHA-256, what its
content is, the checks' decision with every finding (which check, what it
found, never the values), its state, who approved, released or rejected it
and why. --content writes the content itself to FILE, or to standard output
with '-', for a person to look at before deciding.`,
		Args: argsError(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validOutput(format); err != nil {
				return err
			}
			return withAirlock(e, cmd, &f, func(s *airlock.Store) error {
				h, err := s.Get(args[0])
				if err != nil {
					return err
				}
				if content != "" {
					data, err := s.Content(h.ID)
					if err != nil {
						return err
					}
					if content == "-" {
						_, err = e.stdout.Write(data)
						return err
					}
					if err := os.WriteFile(content, data, 0o600); err != nil {
						return err
					}
					fmt.Fprintf(e.stderr, "wrote %d bytes to %s\n", len(data), content)
					return nil
				}
				if format == outputJSON {
					return writeJSON(e.stdout, h)
				}
				printHeld(e.stdout, h)
				return nil
			})
		},
	}
	f.registerStore(cmd.Flags())
	addOutputFlag(cmd, &format)
	cmd.Flags().StringVar(&content, "content", "", "write the output's content to this file ('-': standard output) instead")
	return cmd
}

func printHeld(w io.Writer, h airlock.Held) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "id\t%s\njob\t%s\nname\t%s\ntype\t%s\nsize\t%d bytes\nsha256\t%s\nheld\t%s\nchecks\t%s\nstate\t%s\n",
		h.ID, h.Job, h.Name, h.Verdict.Type, h.Size, h.SHA256, airlockWhen(h.Created), h.Verdict.Decision, h.State)
	if len(h.Approvals) > 0 {
		fmt.Fprintf(tw, "approvals\t%s\n", strings.Join(h.Approvals, ", "))
	}
	if len(h.DecidedBy) > 0 {
		fmt.Fprintf(tw, "decided by\t%s (%s)\n", strings.Join(h.DecidedBy, ", "), airlockWhen(h.Decided))
	}
	if h.Reason != "" {
		fmt.Fprintf(tw, "reason\t%s\n", h.Reason)
	}
	tw.Flush()
	if len(h.Verdict.Findings) > 0 {
		fmt.Fprintln(w, "\nfindings:")
		for _, f := range h.Verdict.Findings {
			fmt.Fprintf(w, "  %-7s %s: %s\n", f.Result, f.Check, f.Detail)
		}
	}
}

func newAirlockDecideCmd(e *env, release bool) *cobra.Command {
	var f nodeFlags
	var person, reason string
	var wait time.Duration
	use, short, long := "release --data DIR OUTPUT-ID --as PERSON", "Approve a held output (a second person releases it where two are needed)",
		`Approve a held output as PERSON. Where the node needs one person, the
output is released: the node sends it to the hub with the job's next
report. Where it needs two (two_person), the first approval is recorded and
a second, different person releases it; the same person twice is refused.
An output the checks refused cannot be released. PERSON defaults to the
login name ($USER). The decision is in the node's audit log before it takes
effect.`
	if !release {
		use, short, long = "reject --data DIR OUTPUT-ID --as PERSON --reason TEXT", "Refuse a held output for good",
			`Reject a held output as PERSON, for good, with a reason in words (it goes
to the audit log: say why, never quote the data). PERSON defaults to the
login name ($USER).`
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  argsError(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if person == "" {
				person = e.getenv("USER")
			}
			if person == "" {
				return usagef("say who decides: --as PERSON")
			}
			if !release && strings.TrimSpace(reason) == "" {
				return usagef("say why: --reason TEXT")
			}
			n, err := f.open(e, cmd)
			if err != nil {
				return err
			}
			defer closeNode(n)
			return withStore(n, func(s *airlock.Store) error {
				var h airlock.Held
				var err error
				if release {
					h, err = s.Release(args[0], person)
				} else {
					h, err = s.Reject(args[0], person, reason)
				}
				if errors.Is(err, node.ErrAuditBusy) {
					// A serving node holds the audit log: it decides.
					op := "reject"
					if release {
						op = "release"
					}
					ctx, cancel := context.WithTimeout(e.ctx, wait)
					h, err = n.AirlockRequest(ctx, op, args[0], person, reason)
					cancel()
				}
				if errors.Is(err, airlock.ErrPerson) {
					return usageError{err}
				}
				if err != nil {
					return err
				}
				switch {
				case h.State == airlock.StateReleased:
					fmt.Fprintf(e.stdout, "output %s released by %s\n", h.ID, strings.Join(h.DecidedBy, " and "))
				case h.State == airlock.StateHeld:
					fmt.Fprintf(e.stdout, "output %s approved by %s; a second person must release it\n", h.ID, person)
				default:
					fmt.Fprintf(e.stdout, "output %s rejected by %s\n", h.ID, person)
				}
				return nil
			})
		},
	}
	f.registerStore(cmd.Flags())
	cmd.Flags().StringVar(&person, "as", "", "who decides (default $USER)")
	cmd.Flags().DurationVar(&wait, "wait", 15*time.Second, "while the node serves, how long to wait for it to take the decision")
	if !release {
		cmd.Flags().StringVar(&reason, "reason", "", "why, in words (required)")
	}
	return cmd
}
