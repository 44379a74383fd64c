package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mosaic-imaging/mosaic/internal/node"
)

func newNodeImportClinicalCmd(e *env) *cobra.Command {
	var f nodeFlags
	var dataset, format string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "import-clinical --data DIR --dataset D [-o table|json] FILE.csv",
		Short: "Load a clinical table into the dataset's common data model",
		Long: `Load a clinical table in the layout of docs/clinical-csv.md (the one
'mosaic synth' writes) into the dataset's CDM tables (patient,
cancer_condition, cancer_stage, episode, treatment). Patient IDs become the
node's pseudonyms and dates go through the node's policy, with the same key
as the images, so clinical rows join the de-identified images. Importing a
patient again replaces its rows.

The report lists rows skipped for missing mandatory values or unknown codes
(by row number and column, never quoting identifying values), and the
patients with clinical rows but no images and the reverse: their true
counts, and the first 20 pseudonyms of each with -o json. Exit status 1
when any row was skipped.`,
		Args: argsError(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validOutput(format); err != nil {
				return err
			}
			if asJSON {
				format = outputJSON
			}
			if dataset == "" {
				return usagef("%s: --dataset is required", cmd.CommandPath())
			}
			n, err := f.open(e, cmd)
			if err != nil {
				return err
			}
			defer closeNode(n)
			fh, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer fh.Close()
			rep, err := n.ImportClinical(e.ctx, dataset, fh)
			if err != nil {
				return err
			}
			if format == outputJSON {
				if err := writeJSON(e.stdout, rep); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(e.stdout, "clinical import into %s: %s, %s imported, %s skipped\n", dataset,
					plural(rep.Rows, "row"), plural(rep.Imported, "patient"), plural(rep.Skipped, "row"))
				if rep.Sealed > 0 {
					fmt.Fprintf(e.stdout, "  %s from 'mosaic deid clinical' with this site key: pseudonyms kept\n", plural(rep.Sealed, "row"))
				}
				for _, x := range rep.Errors {
					fmt.Fprintf(e.stdout, "  error   row %d %s: %s\n", x.Row, x.Column, x.Problem)
				}
				for _, x := range rep.Warnings {
					fmt.Fprintf(e.stdout, "  warning row %d %s: %s\n", x.Row, x.Column, x.Problem)
				}
				j := rep.Join
				fmt.Fprintf(e.stdout, "join with images: %s with clinical rows, %s with images; %d with clinical rows but no images, %d with images but no clinical rows\n",
					plural(int(j.ClinicalPatients), "patient"), plural(int(j.ImagedPatients), "patient"), j.ClinicalNoImagesCount, j.ImagesNoClinicalCount)
			}
			if rep.Skipped > 0 {
				return exitError{code: exitFailure, msg: fmt.Sprintf("node import-clinical: %s skipped", plural(rep.Skipped, "row"))}
			}
			return nil
		},
	}
	f.register(cmd.Flags(), false)
	cmd.Flags().StringVar(&dataset, "dataset", "", "dataset to import into (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON (the same as -o json)")
	addOutputFlag(cmd, &format)
	return cmd
}

func newNodeCheckCmd(e *env) *cobra.Command {
	var f nodeFlags
	var dataset string
	var verify bool
	var examples int
	var format string
	cmd := &cobra.Command{
		Use:   "check --data DIR --dataset D",
		Short: "Check a dataset before publishing it",
		Long: `Check a dataset against EUCAIM's minimum metadata for its tier (Modality,
Body Part Examined, Manufacturer, dates and Patient's Age in the images;
sex, age at diagnosis, topography, morphology, treatments and offsets in
the clinical data) and for problems a data holder must fix: duplicate
objects, series or studies whose instances disagree on the patient or the
study, patients with images but no clinical data and the reverse.

With --verify-objects it also reads back every stored object of the
dataset and checks that it is there, has its indexed size and hashes to
its SHA-256: a scrub that finds objects lost or damaged on disk (it reads
the whole dataset; progress goes to stderr).

Each problem is printed with its count and a few examples (de-identified
UIDs or pseudonyms). Exit status 1 when a problem of severity error is
found.`,
		Args: argsError(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dataset == "" {
				return usagef("%s: --dataset is required", cmd.CommandPath())
			}
			if err := validOutput(format); err != nil {
				return err
			}
			n, err := f.open(e, cmd)
			if err != nil {
				return err
			}
			defer closeNode(n)
			d, probs, err := n.Check(e.ctx, dataset, examples)
			if err != nil {
				return err
			}
			pub, err := n.Publication(e.ctx, d)
			if err != nil {
				return err
			}
			var verified *node.VerifyStats
			if verify {
				t0 := time.Now()
				last := t0
				st, err := n.VerifyObjects(e.ctx, dataset, func(done, bytes int64) {
					if now := time.Now(); now.Sub(last) >= 2*time.Second {
						last = now
						fmt.Fprintf(e.stderr, "verifying: %s, %d MB\n", plural(int(done), "object"), bytes/1e6)
					}
				})
				if err != nil {
					return fmt.Errorf("node check: verifying objects: %w", err)
				}
				verified = &st
				probs = append(probs, node.VerifyProblems(st, examples)...)
				fmt.Fprintf(e.stderr, "verified %s, %d MB in %.1f s\n", plural(int(st.Objects), "object"), st.Bytes/1e6, time.Since(t0).Seconds())
			}
			errs := 0
			for _, p := range probs {
				if p.Severity == "error" {
					errs++
				}
			}
			if format == outputJSON {
				out := map[string]any{"dataset": dataset, "tier": d.Tier, "checked": time.Now().UTC(), "problems": probs,
					"publish": pub.Publish, "held_back": pub.HeldBack}
				if verified != nil {
					out["objects_verified"] = verified.Objects
				}
				if err := writeJSON(e.stdout, out); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(e.stdout, "check of %s (tier %d): %s, %s\n", dataset, d.Tier, plural(len(probs), "problem"), plural(errs, "error"))
				fmt.Fprintf(e.stdout, "  hub: %s\n", publicationText(pub))
				if verified != nil {
					fmt.Fprintf(e.stdout, "  %s read back and verified\n", plural(int(verified.Objects), "object"))
				}
				for _, p := range probs {
					fmt.Fprintf(e.stdout, "  %-7s %-24s %6d  %s\n", p.Severity, p.Kind, p.Count, p.Message)
					for _, x := range p.Examples {
						fmt.Fprintf(e.stdout, "          e.g. %s\n", x)
					}
				}
			}
			if errs > 0 {
				return exitError{code: exitFailure, msg: fmt.Sprintf("node check: %d problems must be fixed", errs)}
			}
			return nil
		},
	}
	f.registerStore(cmd.Flags())
	cmd.Flags().StringVar(&dataset, "dataset", "", "dataset to check (required)")
	addOutputFlag(cmd, &format)
	addJSONAlias(cmd, &format)
	cmd.Flags().IntVar(&examples, "examples", 3, "examples listed per problem")
	cmd.Flags().BoolVar(&verify, "verify-objects", false, "also read back every stored object and check its size and SHA-256")
	return cmd
}

func newNodeGCCmd(e *env) *cobra.Command {
	var f nodeFlags
	var dry bool
	var grace time.Duration
	var format string
	cmd := &cobra.Command{
		Use:   "gc --data DIR [--dry-run]",
		Short: "Remove stored objects no index row refers to",
		Long: `Remove objects of the blob store that no index row refers to: left by an
ingest interrupted between writing an object and committing its row, or by
a conflict. Objects younger than --grace are kept, since they may belong to
an ingest in flight.

This command reads every index row and every stored object, and leaves a
mark when it could delete everything it meant to (not with --dry-run).
'mosaic node serve' collects at start too, but after a complete collection
(this command's, or its own first one) it looks only at the pack files
that were still being written, or changed, since the mark: a crash or a
failed delete leaves garbage only there. After anything that removes index
rows without their objects, such as restoring an older index, run this
command.`,
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
			st, err := n.CollectGarbage(e.ctx, grace, dry)
			if err != nil {
				return err
			}
			if format == outputJSON {
				if err := writeJSON(e.stdout, map[string]any{"dry_run": dry, "grace": grace.String(), "referenced": st.Referenced,
					"unreferenced": st.Unreferenced, "removed": st.Removed, "removed_bytes": st.RemovedBytes, "young": st.Young,
					"packs_removed": st.Packs, "failed": st.Failed}); err != nil {
					return err
				}
			} else {
				printGC(e, st, dry, grace)
			}
			if st.Failed > 0 {
				return fmt.Errorf("gc: %d objects (or passes over the packs) could not be checked or removed; see the log, then run gc again", st.Failed)
			}
			return nil
		},
	}
	f.registerStore(cmd.Flags())
	cmd.Flags().BoolVar(&dry, "dry-run", false, "only count what would be removed")
	cmd.Flags().DurationVar(&grace, "grace", time.Hour, "keep unreferenced objects younger than this")
	addOutputFlag(cmd, &format)
	return cmd
}

// printGC prints what a collection did, in a line.
func printGC(e *env, st node.GCStats, dry bool, grace time.Duration) {
	verb := "removed"
	if dry {
		verb = "would remove"
	}
	fmt.Fprintf(e.stdout, "gc: %d objects referenced, %d unreferenced: %s %d (%d bytes), kept %d younger than %s",
		st.Referenced, st.Unreferenced, verb, st.Removed, st.RemovedBytes, st.Young, grace)
	if st.Packs > 0 {
		fmt.Fprintf(e.stdout, "; %d empty pack files removed", st.Packs)
	}
	fmt.Fprintln(e.stdout)
}

// publicationText says whether the node publishes a dataset to its hub.
func publicationText(p node.Publication) string {
	if p.Publish {
		return "published"
	}
	return "held back: " + strings.Join(p.HeldBack, ", ")
}

// closeNode closes a node, giving up on queued commits after twice the
// commit timeout (the node then says so in its error).
func closeNode(n *node.Node) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*n.Config().CommitTimeout)
	defer cancel()
	return n.Close(ctx)
}
