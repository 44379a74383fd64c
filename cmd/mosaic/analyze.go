package main

import "github.com/spf13/cobra"

// newAnalyzeCmd is a contract stub, filled in by the work that owns this file.
func newAnalyzeCmd(e *env) *cobra.Command {
	return &cobra.Command{Use: "analyze", Short: "(not yet built)", Hidden: true}
}
