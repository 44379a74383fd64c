package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mosaic-imaging/mosaic/internal/hub"
)

// parseRepresentations reads NODE/DATASET arguments.
func parseRepresentations(args []string) ([]hub.Representation, error) {
	var out []hub.Representation
	for _, a := range args {
		n, d, ok := strings.Cut(a, "/")
		if !ok || n == "" || d == "" {
			return nil, usagef("%q: give NODE/DATASET, or NODE/* for every dataset of the node", a)
		}
		out = append(out, hub.Representation{Node: n, Dataset: d})
	}
	return out, nil
}

func newHubUserRepresentCmd(e *env) *cobra.Command {
	var f hubFlags
	var email string
	cmd := &cobra.Command{
		Use:   "represent --data DIR USER NODE/DATASET... [--email ADDR]",
		Short: "Make a user a representative of datasets: they decide access requests for them",
		Long: `Make an existing account a representative of one or more datasets (NODE/* for
every dataset of a node). Representatives see the access requests that name
their datasets, and only those, and decide them: each decision that makes a
dataset available has the node freeze the cohort and the hub sign a permit.
Set --email so that they are told of new requests, messages and reminders.`,
		Args: argsError(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			reps, err := parseRepresentations(args[1:])
			if err != nil {
				return err
			}
			st, err := f.openAdmin(e, cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			if email != "" {
				if err := st.SetEmail(e.ctx, args[0], email, ""); err != nil {
					return err
				}
			}
			for _, r := range reps {
				if err := st.AddRepresentative(e.ctx, args[0], r); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "%s represents %s/%s\n", args[0], r.Node, r.Dataset)
			}
			return nil
		},
	}
	f.register(cmd.Flags(), false)
	cmd.Flags().StringVar(&email, "email", "", "the address notifications go to")
	return cmd
}
