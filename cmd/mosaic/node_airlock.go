package main

import "github.com/spf13/cobra"

// newNodeAirlockCmd is a contract stub, filled in by the work that owns this file.
func newNodeAirlockCmd(e *env) *cobra.Command {
	return &cobra.Command{Use: "airlock", Short: "(not yet built)", Hidden: true}
}
