package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/mosaic-imaging/mosaic/internal/demo"
)

func newDemoCmd(e *env) *cobra.Command {
	var data, addr string
	var reset bool
	cmd := &cobra.Command{
		Use:   "demo [--data DIR] [--addr HOST:PORT] [--reset]",
		Short: "Run a whole federation on this machine: a hub and three nodes with synthetic data",
		Long: `Run a hub and three nodes in one process, each node with its own synthetic
cohort (different cancer sites, sizes and scanners) generated, de-identified
and ingested on the first run and reused afterwards. Open the printed URL and
log in with the printed demo account to browse the catalogue and run
federated searches; the nodes answer with counts under disclosure control
(no count from 1 to 9 ever leaves a node).

DIR/demo.json holds the hub URL, the demo user, its password and an API
token, and each node's URL and a token that may only read the node's
dataset (QIDO-RS, WADO-RS), for scripts:

  curl -s "$(jq -r .hub_url DIR/demo.json)/api/v1/datasets"
  curl -s -H "Authorization: Bearer $(jq -r .token DIR/demo.json)" \
       -d '{"operand":"AND","children":[]}' "$(jq -r .hub_url DIR/demo.json)/api/v1/search"
  curl -s -H "Authorization: Bearer $(jq -r '.nodes[0].token' DIR/demo.json)" \
       "$(jq -r '.nodes[0].url' DIR/demo.json)/dicom-web/$(jq -r '.nodes[0].dataset' DIR/demo.json)/studies?limit=5"

To store objects or change datasets, make a token with more scope while
the demo runs: mosaic node token create --data DIR/nodes/NAME --scope write
--dataset ID.

--reset deletes DIR first. Stop with Ctrl-C.`,
		Args: argsError(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDemo(e, data, addr, reset)
		},
	}
	cmd.Flags().StringVar(&data, "data", "mosaic-demo", "folder for the demo's hub, nodes and cohorts")
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "the hub's HTTP address (port 0 picks a free one)")
	cmd.Flags().BoolVar(&reset, "reset", false, "delete DIR and start from scratch")
	return cmd
}

func runDemo(e *env, data, addr string, reset bool) error {
	say := func(format string, a ...any) { fmt.Fprintf(e.stdout, format+"\n", a...) }
	return demo.Run(e.ctx, demo.Options{Data: data, Addr: addr, Reset: reset, Version: version(), Say: say,
		Ready: func(info demo.Info, took time.Duration) {
			say("")
			say("Mosaic demo federation ready in %.1f s: a hub and %d nodes.", took.Seconds(), len(info.Nodes))
			say("  open     %s", info.HubURL)
			say("  log in   user %q, password %q (researcher)", info.User, info.Password)
			say("  admin    user %q, password %q", info.Admin, info.AdminPW)
			for _, n := range info.Nodes {
				say("  node     %-28s %s (DICOMweb %s/dicom-web/%s/)", n.Name, n.URL, n.URL, n.Dataset)
				rep := info.Representatives[n.Name]
				say("           representative user %q, password %q", rep.User, rep.Password)
			}
			say("  details  %s", filepath.Join(data, "demo.json"))
			say("Stop with Ctrl-C.")
		}})
}
