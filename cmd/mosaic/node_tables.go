package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mosaic-imaging/mosaic/internal/table"
)

// newNodeImportTableCmd is `mosaic node import-table`: a research table
// into a dataset.
func newNodeImportTableCmd(e *env) *cobra.Command {
	var f nodeFlags
	var dataset, name, dictFile, patient, format string
	var types []string
	cmd := &cobra.Command{
		Use:   "import-table --data DIR --dataset ID --name NAME [--dictionary FILE.json] FILE.csv|-",
		Short: "Store a research table (any CSV) for a dataset",
		Long: `Store a research table for a dataset, beside its clinical data: any CSV
with a header line, read from FILE.csv or, with -, from standard input.
Researchers holding a process permit model these tables at the node; the
catalogue entry of a Tier 3 dataset lists their names, columns and types
(never values). A table of the same name is replaced only once the new one
has been read whole: a bad row fails the import, names its line and column
(never its values) and leaves the old table as it was.

Column types are inferred: integer when every value is a whole number,
numeric when a number, date when YYYY-MM-DD, categorical when there are
few distinct values (at most 50, and at most half the rows), else text.
NA and empty cells are missing. A data dictionary overrides the types and
names the patient column, as a JSON file

  {"patient": "patient_id", "columns": {"age": "integer", "stage": "categorical", "visit": "date"}}

or with --patient and --type COLUMN=TYPE. A date column of the dictionary
also takes YYYYMMDD.

The patient column links the table to the dataset's patients: a value that
is already one of the dataset's pseudonyms is kept, any other is taken as
an original patient ID and pseudonymised with the node's key, as
import-clinical does; every row must then name a patient of the dataset.
A snapshot's patients select the rows of such a table; a table without a
patient column belongs to the dataset as a whole.

The same is possible while the node serves: PUT
/api/v1/datasets/ID/tables/NAME with the CSV as the body (docs/processing.md).`,
		Example: `  mosaic node import-table --data /srv/mosaic --dataset lung --name clinical --patient patient_id labs.csv
  mosaic node import-table --data /srv/mosaic --dataset lung --name sites --type beds=integer - < sites.csv`,
		Args: argsError(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validOutput(format); err != nil {
				return err
			}
			if dataset == "" || name == "" {
				return usagef("%s: --dataset and --name are required", cmd.CommandPath())
			}
			if !table.ValidName(name) {
				return usagef("%s: --name: 1 to 64 letters, digits, dashes and underscores, starting with a letter", cmd.CommandPath())
			}
			dict, err := readDictionary(dictFile, patient, types)
			if err != nil {
				return usagef("%s: %v", cmd.CommandPath(), err)
			}
			var in io.Reader = e.stdin
			if args[0] != "-" {
				fh, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer fh.Close()
				in = fh
			}
			n, err := f.open(e, cmd)
			if err != nil {
				return err
			}
			defer closeNode(n)
			info, err := n.PutTable(e.ctx, dataset, name, in, dict)
			if err != nil {
				var re *table.RowError
				if errors.As(err, &re) {
					return fmt.Errorf("node import-table: nothing imported: %w", err)
				}
				return err
			}
			if format == outputJSON {
				return writeJSON(e.stdout, info)
			}
			fmt.Fprintf(e.stdout, "table %s of dataset %s: %s, %s\n", name, dataset, plural(info.Rows, "row"), plural(len(info.Schema.Columns), "column"))
			for _, c := range info.Schema.Columns {
				extra := ""
				switch {
				case c.Name == info.Schema.Patient:
					extra = " (patient, linked to the dataset's pseudonyms)"
				case c.Type == table.Categorical:
					extra = fmt.Sprintf(" (%s)", plural(len(c.Levels), "level"))
				}
				fmt.Fprintf(e.stdout, "  %-24s %s%s\n", c.Name, c.Type, extra)
			}
			return nil
		},
	}
	f.register(cmd.Flags(), false)
	cmd.Flags().StringVar(&dataset, "dataset", "", "dataset to store the table for (required)")
	cmd.Flags().StringVar(&name, "name", "", "the table's name: letters, digits, - and _ (required)")
	cmd.Flags().StringVar(&dictFile, "dictionary", "", "data dictionary, a JSON file: {\"patient\": COL, \"columns\": {COL: TYPE}}")
	cmd.Flags().StringVar(&patient, "patient", "", "the column of patient IDs or pseudonyms")
	cmd.Flags().StringArrayVar(&types, "type", nil, "a column's type, COLUMN=TYPE (numeric, integer, categorical, date, text); repeatable")
	addOutputFlag(cmd, &format)
	return cmd
}

// readDictionary builds the data dictionary from a JSON file and the
// flags (nil when none is given).
func readDictionary(file, patient string, types []string) (*table.Dictionary, error) {
	var d *table.Dictionary
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		d = &table.Dictionary{}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(d); err != nil {
			return nil, fmt.Errorf("--dictionary %s: %v", file, err)
		}
	}
	if patient != "" || len(types) > 0 {
		if d == nil {
			d = &table.Dictionary{}
		}
		if patient != "" {
			d.Patient = patient
		}
		for _, t := range types {
			col, typ, ok := strings.Cut(t, "=")
			if !ok || col == "" {
				return nil, fmt.Errorf("--type %q: use COLUMN=TYPE", t)
			}
			if d.Columns == nil {
				d.Columns = map[string]table.Type{}
			}
			d.Columns[col] = table.Type(typ)
		}
	}
	return d, d.Check()
}
