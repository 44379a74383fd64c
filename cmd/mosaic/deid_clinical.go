package main

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mosaic-imaging/mosaic/internal/deid"
	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

type clinicalFlags struct {
	out          string
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
		Use:   "clinical --id-column COL [--issuer-column COL | --issuers-from PATH... | --issuer NAME] [--date-columns A,B] [--drop-columns C,D] -o OUT.csv IN.csv",
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
--issuer for a site with a single issuer. With none of them the issuer is
taken as empty, which matches only images without an issuer.

Rows without an ID, or whose ID the --issuers-from images give several
issuers, are left out and reported by row number; the exit status is then
1. Messages name rows and columns, never a value.

The output is written to a temporary file next to OUT.csv and renamed over
it. The site key is found as for 'mosaic deid' (--site-key, $MOSAIC_SITE_KEY,
then $XDG_CONFIG_HOME/mosaic/site.key) and created when missing.`,
		Example: `  mosaic deid clinical --id-column patient_id --issuer-column issuer_of_patient_id \
      --date-columns diagnosis_date,last_contact_date -o clinical-deid.csv cohort/clinical.csv`,
		Args: argsError(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runClinical(e, fl, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVarP(&fl.out, "output", "o", "", "output CSV file (required)")
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

func runClinical(e *env, fl clinicalFlags, in string) error {
	if fl.out == "" {
		return usagef("deid clinical: missing output file (-o OUT.csv)")
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
	inRes, _ := resolvePath(in)
	outRes, _ := resolvePath(fl.out)
	if inRes == outRes {
		return usagef("deid clinical: the output would replace the input %s", in)
	}
	keyPath, err := siteKeyPath(e, fl.siteKey)
	if err != nil {
		return err
	}
	if keyRes, _ := resolvePath(keyPath); keyRes == outRes || keyRes == inRes {
		return usagef("deid clinical: the site key %s is the input or the output", keyPath)
	}

	src, err := os.Open(in)
	if err != nil {
		return fmt.Errorf("deid clinical: %w", err)
	}
	defer src.Close()
	cr := csv.NewReader(bufio.NewReader(src))
	cr.ReuseRecord = false
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("deid clinical: %s: header: %w", in, err)
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	col := map[string]int{}
	for i, h := range header {
		if _, dup := col[h]; dup {
			return usagef("deid clinical: %s: column %q appears twice", in, h)
		}
		col[h] = i
	}
	need := func(flag, name string) (int, error) {
		i, ok := col[name]
		if !ok {
			return 0, usagef("deid clinical: %s has no column %q (%s); columns: %s", in, name, flag, strings.Join(header, ", "))
		}
		return i, nil
	}
	idCol, err := need("--id-column", fl.idColumn)
	if err != nil {
		return err
	}
	issuerCol := -1
	if fl.issuerColumn != "" {
		if issuerCol, err = need("--issuer-column", fl.issuerColumn); err != nil {
			return err
		}
	}
	dateCol := map[int]bool{}
	for _, c := range fl.dateColumns {
		i, err := need("--date-columns", c)
		if err != nil {
			return err
		}
		if i == idCol {
			return usagef("deid clinical: --date-columns names the ID column %q", c)
		}
		dateCol[i] = true
	}
	drop := map[int]bool{}
	for _, c := range fl.dropColumns {
		i, err := need("--drop-columns", c)
		if err != nil {
			return err
		}
		if i == idCol {
			return usagef("deid clinical: --drop-columns names the ID column %q", c)
		}
		drop[i] = true
	}
	if issuerCol >= 0 {
		drop[issuerCol] = true
	}

	var issuers map[string][]string
	if len(fl.issuersFrom) > 0 {
		if issuers, err = scanIssuers(e, fl.issuersFrom); err != nil {
			return err
		}
	}
	key, err := openSiteKey(e, keyPath)
	if err != nil {
		return err
	}
	eng, err := deid.NewEngine(pol, key)
	if err != nil {
		return usageError{err}
	}

	dir := filepath.Dir(fl.out)
	tmp, err := os.CreateTemp(dir, ".deid-clinical-*.tmp")
	if err != nil {
		return fmt.Errorf("deid clinical: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriter(tmp)
	cw := csv.NewWriter(bw)
	keep := func(rec []string) []string {
		out := make([]string, 0, len(rec))
		for i, v := range rec {
			if !drop[i] {
				out = append(out, v)
			}
		}
		return out
	}
	if err := cw.Write(keep(header)); err != nil {
		return fmt.Errorf("deid clinical: %w", err)
	}
	var (
		rows, written, notFound, badDates int
		problems                          []string
	)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			// csv errors name the line and column, not the value.
			return fmt.Errorf("deid clinical: %s: %w", in, err)
		}
		rows++
		line, _ := cr.FieldPos(0)
		id := strings.TrimSpace(rec[idCol])
		if id == "" {
			problems = append(problems, fmt.Sprintf("line %d: empty %s; row left out", line, fl.idColumn))
			continue
		}
		issuer := fl.issuer
		switch {
		case issuerCol >= 0:
			issuer = rec[issuerCol]
		case issuers != nil:
			switch found := issuers[id]; len(found) {
			case 0:
				notFound++
			case 1:
				issuer = found[0]
			default:
				problems = append(problems, fmt.Sprintf("line %d: the images give this %s %d different issuers; row left out (use --issuer-column)", line, fl.idColumn, len(found)))
				continue
			}
		}
		rec[idCol] = eng.PatientPseudonym(id, issuer)
		for i := range dateCol {
			v, err := eng.ChangeDate(id, issuer, rec[i])
			if err != nil {
				v = ""
				badDates++
			}
			rec[i] = v
		}
		if err := cw.Write(keep(rec)); err != nil {
			return fmt.Errorf("deid clinical: %w", err)
		}
		written++
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("deid clinical: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("deid clinical: %w", err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("deid clinical: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("deid clinical: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("deid clinical: %w", err)
	}
	if err := os.Rename(tmp.Name(), fl.out); err != nil {
		return fmt.Errorf("deid clinical: %w", err)
	}
	done = true

	for _, p := range problems {
		fmt.Fprintf(e.stderr, "deid clinical: %s: %s\n", in, p)
	}
	w := e.stdout
	fmt.Fprintf(w, "de-identified %d of %d rows of %s into %s with policy %s\n", written, rows, in, fl.out, pol.Name)
	fmt.Fprintf(w, "  %s: patient pseudonyms\n", fl.idColumn)
	if len(fl.dateColumns) > 0 {
		fmt.Fprintf(w, "  dates (%s): %s\n", pol.Dates, strings.Join(fl.dateColumns, ", "))
	}
	var dropped []string
	for i, h := range header {
		if drop[i] {
			dropped = append(dropped, h)
		}
	}
	if len(dropped) > 0 {
		fmt.Fprintf(w, "  left out: %s\n", strings.Join(dropped, ", "))
	}
	fmt.Fprintf(w, "  copied unchanged: %d columns\n", len(header)-len(dropped)-1-len(dateCol))
	if badDates > 0 {
		fmt.Fprintf(w, "  values that were not dates, emptied: %d\n", badDates)
	}
	if issuers != nil {
		fmt.Fprintf(w, "  issuers from %d patient IDs in the images; rows whose ID was not found there: %d\n", len(issuers), notFound)
	}
	if len(problems) > 0 {
		return exitError{code: exitFailure, msg: fmt.Sprintf("deid clinical: %d rows left out (listed above)", len(problems))}
	}
	return nil
}

// scanIssuers reads the headers of the original images and returns the
// issuers seen with each Patient ID.
func scanIssuers(e *env, inputs []string) (map[string][]string, error) {
	for _, in := range inputs {
		if _, err := os.Stat(in); err != nil {
			return nil, usagef("deid clinical: --issuers-from: %v", err)
		}
	}
	r := &runner{e: e, fl: deidFlags{maxMember: defaultMaxMember}}
	out := map[string][]string{}
	var ferr error
	add := func(id, issuer string) {
		id = strings.TrimSpace(id)
		if id == "" {
			return
		}
		issuer = strings.TrimSpace(issuer)
		if !slices.Contains(out[id], issuer) {
			out[id] = append(out[id], issuer)
		}
	}
	ropts := dicom.ReadOptions{StopAtPixelData: true, MaxInflated: maxInflated}
	r.list(inputs, func(t task) bool {
		if err := e.ctx.Err(); err != nil {
			ferr = err
			return false
		}
		var rd io.Reader
		switch {
		case t.fail != nil:
			return true // unreadable: nothing to learn
		case t.zf != nil:
			defer t.arch.release()
			rc, err := t.zf.Open()
			if err != nil {
				return true
			}
			defer rc.Close()
			rd = &zipLimit{r: rc, max: defaultMaxMember, ratio: defaultMaxRatio, comp: int64(t.zf.CompressedSize64)}
		default:
			f, err := os.Open(t.path)
			if err != nil {
				return true
			}
			defer f.Close()
			rd = f
		}
		df, err := dicom.NewDecoder(rd, ropts).ReadFile()
		if err != nil {
			return true // not DICOM: nothing to learn
		}
		id, _ := df.Dataset.String(dicom.NewTag(0x0010, 0x0020))
		issuer, _ := df.Dataset.String(dicom.NewTag(0x0010, 0x0021))
		add(id, issuer)
		return true
	})
	if ferr != nil {
		return nil, fmt.Errorf("deid clinical: --issuers-from: %w", ferr)
	}
	return out, nil
}
