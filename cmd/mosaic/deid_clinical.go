package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mosaic-imaging/mosaic/internal/deid"
	"github.com/mosaic-imaging/mosaic/internal/ingest"
)

type clinicalFlags struct {
	out          string
	format       string
	policy       string
	siteKey      string
	idColumn     string
	issuerColumn string
	issuer       string
	issuersFrom  []string
	dateColumns  []string
	dropColumns  []string
}

func newDeidClinicalCmd(e *env) *cobra.Command {
	var fl clinicalFlags
	cmd := &cobra.Command{
		Use:   "clinical --id-column COL [--issuer-column COL | --issuers-from PATH... | --issuer NAME] [--date-columns A,B] [--drop-columns C,D] --out OUT.csv [-o table|json] IN.csv",
		Short: "De-identify a clinical table so that its rows join the de-identified images",
		Long: `De-identify a clinical table (CSV with a header row) with the same site key
and policy as the images, so that each row still joins its patient's
de-identified images:

  - the --id-column value becomes the patient pseudonym the images get, the
    name of the patient's folder in the output of 'mosaic deid';
  - each --date-columns value (YYYY-MM-DD or YYYYMMDD) is changed as the
    policy changes that patient's image dates: emptied (basic), moved to the
    first of the month (eucaim), or shifted by the patient's own offset
    (longitudinal); a value that is not a date is emptied;
  - the --drop-columns and the --issuer-column are left out;
  - every other column is copied unchanged. The engine cannot tell which
    columns identify someone: list every such column (names, addresses,
    phone numbers, free text, other IDs) in --drop-columns or --date-columns.

The images' pseudonym derives from the Patient ID and its Issuer of Patient
ID. Say where the issuer comes from: --issuer-column for a table that has
it; --issuers-from with the original (not de-identified) DICOM files,
folders or zip archives, whose headers give each Patient ID its issuer,
for a table without an issuer column; or
--issuer for a site with a single issuer. With none of them a column named
issuer_of_patient_id (Mosaic's clinical table format) is used and left
out; without that either the issuer is taken as empty, which matches only
images without an issuer. Columns copied unchanged whose names say dates
(birth_date, last_contact_date, ...) get a warning: name them in
--date-columns or --drop-columns.

Rows without an ID, or whose ID the --issuers-from images give several
issuers, are left out and reported by row number; the exit status is then
1. Messages name rows and columns, never a value.

The output is written to a temporary file next to OUT.csv and renamed over
it. The site key is found as for 'mosaic deid' (--site-key, $MOSAIC_SITE_KEY,
then $XDG_CONFIG_HOME/mosaic/site.key) and created when missing. The summary
counts rows and patients; -o json prints it as one JSON document.`,
		Example: `  mosaic deid clinical --id-column patient_id --issuer-column issuer_of_patient_id \
      --date-columns diagnosis_date,last_contact_date --out clinical-deid.csv cohort/clinical.csv`,
		Args: argsError(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runClinical(e, fl, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.out, "out", "", "output CSV file (required)")
	addOutputFlag(cmd, &fl.format)
	f.StringVar(&fl.policy, "policy", "basic", "preset (basic, eucaim, longitudinal) or policy file (JSON): use the images' policy")
	f.StringVar(&fl.siteKey, "site-key", "", "site key file (default $"+siteKeyEnv+", else $XDG_CONFIG_HOME/mosaic/site.key)")
	f.StringVar(&fl.idColumn, "id-column", "", "column holding the Patient ID (required)")
	f.StringVar(&fl.issuerColumn, "issuer-column", "", "column holding the Issuer of Patient ID (dropped from the output)")
	f.StringVar(&fl.issuer, "issuer", "", "Issuer of Patient ID of every row (or of rows not found with --issuers-from)")
	f.StringSliceVar(&fl.issuersFrom, "issuers-from", nil, "original DICOM files, folders or zips giving each Patient ID its issuer")
	f.StringSliceVar(&fl.dateColumns, "date-columns", nil, "comma-separated date columns, changed per the policy")
	f.StringSliceVar(&fl.dropColumns, "drop-columns", nil, "comma-separated columns left out of the output")
	return cmd
}

// clinicalSummary is the summary of mosaic deid clinical (-o json
// prints it).
type clinicalSummary struct {
	Input    string `json:"input"`
	Output   string `json:"output"`
	Policy   string `json:"policy"`
	IDColumn string `json:"id_column"`
	deid.TableReport
	// IssuerPatients counts the patient IDs --issuers-from found.
	IssuerPatients *int `json:"issuer_patients,omitempty"`
}

func runClinical(e *env, fl clinicalFlags, in string) error {
	if err := formatFlag("deid clinical", fl.format, "--out OUT.csv"); err != nil {
		return err
	}
	if fl.out == "" {
		return usagef("deid clinical: missing output file (--out OUT.csv)")
	}
	if fl.idColumn == "" {
		return usagef("deid clinical: missing --id-column")
	}
	if fl.issuerColumn != "" && len(fl.issuersFrom) > 0 {
		return usagef("deid clinical: give --issuer-column or --issuers-from, not both")
	}
	pol, err := loadPolicy(fl.policy)
	if err != nil {
		return err
	}
	inRes, _ := ingest.ResolvePath(in)
	outRes, _ := ingest.ResolvePath(fl.out)
	if inRes == outRes {
		return usagef("deid clinical: the output would replace the input %s", in)
	}
	keyPath, err := siteKeyPath(e, fl.siteKey)
	if err != nil {
		return err
	}
	if keyRes, _ := ingest.ResolvePath(keyPath); keyRes == outRes || keyRes == inRes {
		return usagef("deid clinical: the site key %s is the input or the output", keyPath)
	}
	opts := deid.TableOptions{IDColumn: fl.idColumn, IssuerColumn: fl.issuerColumn, Issuer: fl.issuer,
		DateColumns: fl.dateColumns, DropColumns: fl.dropColumns}
	tableErr := func(err error) error {
		if errors.Is(err, deid.ErrTableColumns) {
			return usagef("deid clinical: %s: %v", in, err)
		}
		return fmt.Errorf("deid clinical: %w", err)
	}
	if err := deid.CheckTable(in, opts); err != nil {
		return tableErr(err)
	}
	var issuerPatients *int
	if len(fl.issuersFrom) > 0 {
		for _, p := range fl.issuersFrom {
			if _, err := os.Stat(p); err != nil {
				return usagef("deid clinical: --issuers-from: %v", err)
			}
		}
		is, _, err := ingest.ScanIssuers(e.ctx, fl.issuersFrom, ingest.Limits{})
		if err != nil {
			return fmt.Errorf("deid clinical: --issuers-from: %w", err)
		}
		opts.Issuers = is
		n := len(is)
		issuerPatients = &n
	}
	key, err := openSiteKey(e, keyPath)
	if err != nil {
		return err
	}
	eng, err := deid.NewEngine(pol, key)
	if err != nil {
		return usageError{err}
	}
	rep, err := eng.DeidentifyTableFile(fl.out, in, opts)
	if err != nil {
		return tableErr(err)
	}
	for _, p := range rep.LeftOut {
		fmt.Fprintf(e.stderr, "deid clinical: %s: %s\n", in, p)
	}
	s := clinicalSummary{Input: in, Output: fl.out, Policy: pol.Name, IDColumn: fl.idColumn, TableReport: rep, IssuerPatients: issuerPatients}
	if fl.format == outputJSON {
		if err := writeJSON(e.stdout, s); err != nil {
			return err
		}
	} else {
		printClinicalSummary(e, s, string(pol.Dates))
	}
	if len(rep.LeftOut) > 0 {
		return exitError{code: exitFailure, msg: fmt.Sprintf("deid clinical: %s left out (listed above)", plural(len(rep.LeftOut), "row"))}
	}
	return nil
}

func printClinicalSummary(e *env, s clinicalSummary, dates string) {
	w := e.stdout
	fmt.Fprintf(w, "de-identified %d of %s of %s (%s) into %s with policy %s\n", s.Written, plural(s.Rows, "row"), s.Input, plural(s.Patients, "patient"), s.Output, s.Policy)
	fmt.Fprintf(w, "  %s: patient pseudonyms\n", s.IDColumn)
	if len(s.Dates) > 0 {
		fmt.Fprintf(w, "  dates (%s): %s\n", dates, strings.Join(s.Dates, ", "))
	}
	if len(s.Dropped) > 0 {
		fmt.Fprintf(w, "  left out: %s\n", strings.Join(s.Dropped, ", "))
	}
	if s.IssuerColumnFound != "" {
		fmt.Fprintf(w, "  issuers: column %s (Mosaic's clinical table format), left out\n", s.IssuerColumnFound)
	}
	fmt.Fprintf(w, "  copied unchanged: %s\n", plural(s.Copied, "column"))
	if len(s.DateLikeCopied) > 0 {
		fmt.Fprintf(e.stderr, "deid clinical: warning: %s copied unchanged although the names say dates: %s; name them in --date-columns (or --drop-columns)\n",
			plural(len(s.DateLikeCopied), "column"), strings.Join(s.DateLikeCopied, ", "))
	}
	fmt.Fprintf(w, "  %s: each row's keyed mark for the node\n", deid.ClinicalMarkColumn)
	if s.Sealed > 0 {
		fmt.Fprintf(w, "  rows this site key de-identified before, pseudonyms kept: %d\n", s.Sealed)
	}
	if s.Unsealed > 0 {
		fmt.Fprintf(e.stderr, "deid clinical: warning: %s look like Mosaic pseudonyms but carry no valid %s mark of this site key: taken as original IDs, pseudonymised and their dates treated again\n",
			plural(s.Unsealed, "row"), deid.ClinicalMarkColumn)
	}
	if s.BadDates > 0 {
		fmt.Fprintf(w, "  values that were not dates, emptied: %d\n", s.BadDates)
	}
	if s.IssuerPatients != nil {
		fmt.Fprintf(w, "  issuers from %s in the images; rows whose ID was not found there: %d\n", plural(*s.IssuerPatients, "patient ID"), s.NotFound)
	}
}
