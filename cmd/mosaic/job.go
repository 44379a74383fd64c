package main

import "github.com/spf13/cobra"

// newJobCmd is a contract stub, filled in by the work that owns this file.
func newJobCmd(e *env) *cobra.Command {
	return &cobra.Command{Use: "job", Short: "(not yet built)", Hidden: true}
}
