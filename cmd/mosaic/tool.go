package main

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mosaic-imaging/mosaic/internal/jobs"
)

func newToolCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tool",
		Short: "The hub's tool catalogue: register, review and list the images and programs jobs may run",
		Long: `A container image (by digest) or a program (by the SHA-256 of its file) runs
in a job only once people of different organisations approved it in the
hub's catalogue (by default two people of two organisations, never the one
who registered it), and only at nodes whose own allow-list names its digest
(node.json jobs.allow_images and jobs.allow_programs).`,
		Example: `  mosaic tool register --hub https://hub.example --name train --program train.py --description "logistic regression"
  mosaic tool register --hub https://hub.example --name seg --image registry.example/seg@sha256:...
  mosaic tool list --hub https://hub.example
  mosaic tool review --hub https://hub.example tool-1234 --approve --comment "read the code"`,
	}
	cmd.AddCommand(newToolRegisterCmd(e), newToolReviewCmd(e), newToolListCmd(e))
	return cmd
}

func newToolRegisterCmd(e *env) *cobra.Command {
	var f jobAPIFlags
	var name, image, program, description string
	cmd := &cobra.Command{
		Use:   "register --hub URL --name N (--image NAME@sha256:... | --program FILE) [--description D]",
		Short: "Register an image or a program; it waits for reviews",
		Args:  argsError(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := f.open(e, "tool register")
			if err != nil {
				return err
			}
			in := jobs.ToolInput{Name: name, Description: description}
			switch {
			case (image == "") == (program == ""):
				return usagef("tool register: give one of --image and --program")
			case image != "":
				d := jobs.ImageDigest(image)
				if !jobs.ValidDigest(d) {
					return usagef("tool register: --image %q: use NAME@sha256:<64 hex digits>", image)
				}
				in.Kind, in.Digest = jobs.KindContainer, d
			default:
				b, err := os.ReadFile(program)
				if err != nil {
					return usageError{err}
				}
				in.Kind, in.Digest, in.Program = jobs.KindProcess, jobs.Digest(b), b
			}
			var t jobs.Tool
			if err := api.call(e, "POST", "/api/v1/tools", in, &t); err != nil {
				return fmt.Errorf("tool register: %w", err)
			}
			fmt.Fprintf(e.stdout, "tool %s registered (%s %s): %s\n", t.ID, t.Kind, t.Digest, t.State)
			return nil
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().StringVar(&name, "name", "", "the tool's name")
	cmd.Flags().StringVar(&image, "image", "", "a container image by digest")
	cmd.Flags().StringVar(&program, "program", "", "a program file (sent to the hub, which gives it to the nodes with each job)")
	cmd.Flags().StringVar(&description, "description", "", "what the tool does")
	return cmd
}

func newToolReviewCmd(e *env) *cobra.Command {
	var f jobAPIFlags
	var approve, reject bool
	var comment string
	cmd := &cobra.Command{
		Use:   "review --hub URL TOOL (--approve | --reject) [--comment C]",
		Short: "Approve or reject a tool someone else registered (a rejection needs a comment)",
		Args:  argsError(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := f.open(e, "tool review")
			if err != nil {
				return err
			}
			if approve == reject {
				return usagef("tool review: give one of --approve and --reject")
			}
			decision := "approve"
			if reject {
				decision = "reject"
			}
			var t jobs.Tool
			if err := api.call(e, "POST", "/api/v1/tools/"+url.PathEscape(args[0])+"/reviews", map[string]string{"decision": decision, "comment": comment}, &t); err != nil {
				return fmt.Errorf("tool review: %w", err)
			}
			fmt.Fprintf(e.stdout, "tool %s: %s (%d reviews)\n", t.ID, t.State, len(t.Reviews))
			return nil
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().BoolVar(&approve, "approve", false, "approve the tool")
	cmd.Flags().BoolVar(&reject, "reject", false, "reject the tool")
	cmd.Flags().StringVar(&comment, "comment", "", "why")
	return cmd
}

func newToolListCmd(e *env) *cobra.Command {
	var f jobAPIFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list --hub URL [--json]",
		Short: "List the catalogue with each tool's state and reviews",
		Args:  argsError(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := f.open(e, "tool list")
			if err != nil {
				return err
			}
			var l struct {
				Tools []jobs.Tool `json:"tools"`
			}
			if err := api.call(e, "GET", "/api/v1/tools", nil, &l); err != nil {
				return fmt.Errorf("tool list: %w", err)
			}
			if asJSON {
				return printJobJSON(e.stdout, l.Tools)
			}
			tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tKIND\tDIGEST\tSTATE\tREVIEWS")
			for _, t := range l.Tools {
				var rs []string
				for _, r := range t.Reviews {
					rs = append(rs, r.Decision+":"+r.Reviewer)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Kind, t.Digest, t.State, strings.Join(rs, ","))
			}
			return tw.Flush()
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
