package main

import (
	"encoding/json"
	"io"

	"github.com/spf13/cobra"
)

// Output formats of commands that print results (-o/--output).
const (
	outputTable = "table" // aligned text for people (the default)
	outputJSON  = "json"  // one JSON document for scripts
)

// addOutputFlag registers -o/--output on cmd, storing the chosen format in
// *format; validOutput checks it before the command runs.
func addOutputFlag(cmd *cobra.Command, format *string) {
	cmd.Flags().StringVarP(format, "output", "o", outputTable, "output format: table or json")
}

// validOutput returns a usage error unless format is one addOutputFlag offers.
func validOutput(format string) error {
	switch format {
	case outputTable, outputJSON:
		return nil
	}
	return usagef("--output must be table or json, not %q", format)
}

// writeJSON writes v as one indented JSON document followed by a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
