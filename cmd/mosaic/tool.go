package main

import "github.com/spf13/cobra"

// newToolCmd is a contract stub, filled in by the work that owns this file.
func newToolCmd(e *env) *cobra.Command {
	return &cobra.Command{Use: "tool", Short: "(not yet built)", Hidden: true}
}
