package main

import (
	"encoding/json"
	"io"
	"strconv"

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

// addJSONAlias keeps --json, which some commands had before -o, as a
// hidden synonym of -o json.
func addJSONAlias(cmd *cobra.Command, format *string) {
	cmd.Flags().Var(jsonAlias{format}, "json", "same as -o json")
	cmd.Flags().Lookup("json").NoOptDefVal = "true"
	cmd.Flags().MarkHidden("json")
}

// jsonAlias is the flag value of --json: true sets the output format to
// json, false to table.
type jsonAlias struct{ format *string }

func (j jsonAlias) String() string {
	return strconv.FormatBool(j.format != nil && *j.format == outputJSON)
}
func (j jsonAlias) Type() string { return "bool" }
func (j jsonAlias) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	if b {
		*j.format = outputJSON
	} else {
		*j.format = outputTable
	}
	return nil
}
