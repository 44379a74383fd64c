package main

import "github.com/spf13/cobra"

// newNodeImportTableCmd is a contract stub, filled in by the work that owns this file.
func newNodeImportTableCmd(e *env) *cobra.Command {
	return &cobra.Command{Use: "import-table", Short: "(not yet built)", Hidden: true}
}
