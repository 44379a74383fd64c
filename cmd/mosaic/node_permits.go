package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newNodePermitsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "permits",
		Short: "See the hub's permits used at this node, approve or revoke them, require approval",
		Long: `Permits are the hub's signed access decisions: a researcher, this node, a
dataset, a cohort snapshot, the operations allowed (view, download, process)
and a validity window. The node checks each one itself on every access: the
hub's signature, the window, the researcher, the node, the dataset, the
operation, the revocations it heard from the hub or made itself, that it
heard the hub's revocation list within permit_offline_limit (node.json,
default 5m; else it refuses every permit until it hears the hub again), and,
for a dataset that requires it, this node's own approval. Every check is in
the node's audit log (permit-use, permit-refused).

  list      the permits this node has checked, approved or revoked
  approve   approve a permit (required for datasets set with 'require')
  revoke    refuse a permit at this node from now on (the hub is not told)
  require   make a dataset's permits need this node's approval, or not

These commands work on the data directory and take effect at the next
access, also while 'mosaic node serve' runs.`,
	}
	var f nodeFlags
	var format string
	list := &cobra.Command{
		Use:   "list --data DIR [-o table|json]",
		Short: "List the permits this node knows of, with their state and use",
		Long: `List the permits this node has checked (even once, allowed or refused),
approved or revoked, by id: the researcher (the hub's user id), dataset,
operations, expiry, uses and refusals, and the state:

  active    honoured; its dataset needs no approval of this node
  approved  approved here ('mosaic node permits approve')
  pending   its dataset needs this node's approval, not given yet
  revoked   revoked by the hub or here
  expired   past its expiry
  conflict  a permit with other claims was presented under this id and
            refused (CONFLICTS counts them; the claims listed are those
            first seen; see the audit log, permit-refused permit-conflict)`,
		Args: argsError(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validOutput(format); err != nil {
				return err
			}
			n, err := f.open(e, cmd)
			if err != nil {
				return err
			}
			defer closeNode(n)
			ps, err := n.Permits(e.ctx)
			if err != nil {
				return err
			}
			need, err := n.PermitApprovalRequired(e.ctx)
			if err != nil {
				return err
			}
			if format == outputJSON {
				if need == nil {
					need = []string{}
				}
				return writeJSON(e.stdout, map[string]any{"permits": ps, "approval_required": need})
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tRESEARCHER\tDATASET\tOPS\tEXPIRES\tSTATE\tUSES\tREFUSED\tCONFLICTS")
			for _, p := range ps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", p.ID, permitDash(p.Researcher), permitDash(p.Dataset), permitDash(strings.Join(p.Ops, ",")),
					permitTime(p.Expires), p.State, p.Uses, p.Refusals, p.Conflicts)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(need) > 0 {
				fmt.Fprintf(e.stdout, "\ndatasets whose permits need this node's approval: %s\n", strings.Join(need, ", "))
			}
			return nil
		},
	}
	f.registerStore(list.Flags())
	addOutputFlag(list, &format)

	var approveToken string
	approve := &cobra.Command{
		Use:   "approve --data DIR PERMIT-ID [--token JWS]",
		Short: "Approve a permit's content at this node",
		Long: `Approve a permit, so that it is honoured for a dataset whose permits need
this node's approval ('mosaic node permits require DATASET on'). The
approval is of the permit's content, not of its id: the claims first seen
under PERMIT-ID at this node (printed: researcher, dataset, snapshot,
operations, expiry), so a permit signed later under the same id with other
claims is refused ("permit-conflict"). An id never seen here is refused,
unless --token gives the permit itself (the JWS the hub issued, signed by the
hub this node enrolled with, for this node): then its claims are approved
ahead of any use. Approval does not outweigh a revocation, an expiry or any
other check.`,
		Args: argsError(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := f.open(e, cmd)
			if err != nil {
				return err
			}
			defer closeNode(n)
			p, err := n.ApprovePermitContent(e.ctx, args[0], approveToken)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "permit %s approved at this node, for this content only:\n", args[0])
			tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
			fmt.Fprintf(tw, "  researcher\t%s\n  dataset\t%s\n  snapshot\t%s\n  ops\t%s\n  expires\t%s\n  sha256\t%s\n",
				permitDash(p.Researcher), permitDash(p.Dataset), permitDash(p.Snapshot), permitDash(strings.Join(p.Ops, ",")), permitTime(p.Expires), permitDash(p.Digest))
			return tw.Flush()
		},
	}
	f.registerStore(approve.Flags())
	approve.Flags().StringVar(&approveToken, "token", "", "the permit itself (JWS), to approve a permit not seen here yet")

	var reason string
	revoke := &cobra.Command{
		Use:   "revoke --data DIR PERMIT-ID [--reason TEXT]",
		Short: "Refuse a permit at this node from now on (a local revocation)",
		Long: `Revoke a permit at this node alone: it is refused here from the next access
on. This is a local revocation: it does NOT go to the hub, and the permit
stays valid at the hub and at other nodes; ask the hub's administrator or
the dataset's representative to revoke it there. It cannot be undone.
A permit not seen yet may be revoked ahead.`,
		Args: argsError(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := f.open(e, cmd)
			if err != nil {
				return err
			}
			defer closeNode(n)
			if err := n.RevokePermit(e.ctx, args[0], reason); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "permit %s revoked at this node (the hub is not told)\n", args[0])
			return nil
		},
	}
	f.registerStore(revoke.Flags())
	revoke.Flags().StringVar(&reason, "reason", "", "why, kept with the revocation (no patient data)")

	require := &cobra.Command{
		Use:   "require --data DIR DATASET on|off",
		Short: "Make a dataset's permits need this node's approval, or not",
		Long: `With on, permits for DATASET are honoured only once approved at this node
('mosaic node permits approve'), so that the hub alone can grant nothing
there. With off, the hub's signature and the other checks suffice.`,
		Args: argsError(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			var on bool
			switch args[1] {
			case "on":
				on = true
			case "off":
			default:
				return usagef("%s: say on or off, not %q", cmd.CommandPath(), args[1])
			}
			n, err := f.open(e, cmd)
			if err != nil {
				return err
			}
			defer closeNode(n)
			if err := n.RequirePermitApproval(e.ctx, args[0], on); err != nil {
				return err
			}
			if on {
				fmt.Fprintf(e.stdout, "permits for dataset %s now need this node's approval\n", args[0])
			} else {
				fmt.Fprintf(e.stdout, "permits for dataset %s no longer need this node's approval\n", args[0])
			}
			return nil
		},
	}
	f.registerStore(require.Flags())
	cmd.AddCommand(list, approve, revoke, require)
	return cmd
}

func permitDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func permitTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}
