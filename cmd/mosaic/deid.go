package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mosaic-imaging/mosaic/internal/deid"
	"github.com/mosaic-imaging/mosaic/internal/ingest"
)

// siteKeyEnv names the environment variable with the site key path.
const siteKeyEnv = "MOSAIC_SITE_KEY"

type deidFlags struct {
	out       string
	format    string
	policy    string
	siteKey   string
	report    string
	workers   int
	maxMember int64
	maxRatio  int
	sync      bool
	quiet     bool
}

func newDeidCmd(e *env) *cobra.Command {
	var fl deidFlags
	cmd := &cobra.Command{
		Use:   "deid --out OUTDIR [--policy P] [--site-key FILE] [--report FILE] [-o table|json] INPUT...",
		Short: "De-identify DICOM files, folders and zip archives (PS3.15 basic profile)",
		Long: `De-identify DICOM objects with the Basic Application Level Confidentiality
Profile of DICOM PS3.15 Annex E and the options the policy switches on, so
that they can leave the site for research. What each preset removes, keeps
and changes is explained for a data protection officer in
docs/deidentification.md.

Each INPUT is a DICOM file, a folder (read recursively, every file in it is
expected to be DICOM) or a zip archive (each member is streamed into the
engine, nothing is extracted to disk; a zip found in a folder is read the
same way). Every object is de-identified, checked for leaks, and written to

  OUTDIR/<patient pseudonym>/<study UID>/<series UID>/<SOP instance UID>.dcm

Pseudonyms, UIDs and date shifts are keyed hashes of the originals, so the
same site key gives the same names in every run and every process, without
a mapping table. Each file gets its name only once it is complete (it is
written unnamed, or under a temporary name, in OUTDIR and then linked or
renamed into place). A file already there with the same bytes is left alone
(counted as skipped); one with other bytes is never overwritten: the object
fails. Two inputs of one run that become the same file with different bytes
fail the same way ("duplicate SOP Instance UID with different content").

Objects that cannot be made safe are rejected, and nothing of them is
written: text burned into the pixels (Burned In Annotation YES, ultrasound,
secondary capture and similar classes), an identifying value still present
after de-identification (the leak check), a missing UID. Inputs that cannot
be read fail: files that are not DICOM or are truncated, zip members with an
absolute name or "..", zip members beyond --zip-max-size or --zip-max-ratio.
Files and folders that cannot be opened or walked fail the same way. The
run always goes on with the next object; when it is cancelled (Ctrl-C),
the objects not read yet are reported as cancelled. An INPUT named like a
subcommand (clinical, policy) is written with its folder, as ./clinical.

Policy: --policy takes a preset (basic, eucaim, longitudinal) or the path of
a policy file (JSON; use ./basic for a file named like a preset).
'mosaic deid policy show --policy P' prints the action on every attribute.

Site key: 32 secret bytes that every pseudonym, UID and date shift derives
from. It is read from --site-key, else from $MOSAIC_SITE_KEY, else from
$XDG_CONFIG_HOME/mosaic/site.key ($HOME/.config/mosaic/site.key). When the
file does not exist a new random key is created there (mode 0600) and its
path is printed on standard error. The key is never printed. Keep it, back
it up, and never let it leave the site: whoever holds it can link
pseudonyms to patient IDs they know, and a new key gives new pseudonyms. A
key inside OUTDIR is refused.

Output: a progress line on standard error when it is a terminal, a line on
standard error for every object that failed, and a summary on standard
output: objects ok (written), skipped (identical file present), rejected by
reason and failed, and the number of patients written. -o json prints the
summary as one JSON document instead. (-o is the summary's format, as in
every command that prints results; the output directory is --out.) --report FILE writes JSON Lines, one object per input
object in input order: input (the path; "archive.zip!member" for zip
members), output (empty when nothing was written), status (ok, rejected or
failed), code, reason and counts (attributes removed, emptied, replaced...).
Reports and messages hold paths, codes, tags and offsets, never a value
read from a file; but input paths may name patients, so keep the report at
the site (it is refused inside OUTDIR).

Durability: files are not flushed one by one; once all are written, one
sync of OUTDIR's file system makes the run durable before the summary
(--sync=false leaves it to the system).

Exit status: 0 when every object is ok or rejected, 1 when any failed (or
the run could not complete), 2 when the command line is wrong.`,
		Example: `  mosaic deid --out /data/deid --report deid.jsonl /data/export
  mosaic deid --out /data/deid --policy eucaim --site-key /etc/mosaic/site.key -o json study.zip
  mosaic deid clinical --id-column patient_id --date-columns diagnosis_date --out clinical-deid.csv clinical.csv
  mosaic deid policy show --policy longitudinal`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDeid(e, fl, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.out, "out", "", "output directory (required); created when missing")
	addOutputFlag(cmd, &fl.format)
	f.StringVar(&fl.policy, "policy", "basic", "preset (basic, eucaim, longitudinal) or policy file (JSON)")
	f.StringVar(&fl.siteKey, "site-key", "", "site key file, created when missing (default $"+siteKeyEnv+", else $XDG_CONFIG_HOME/mosaic/site.key)")
	f.StringVar(&fl.report, "report", "", "write a JSON Lines report, one line per input object, to this file")
	f.IntVar(&fl.workers, "workers", 0, "objects de-identified at once (0: one per CPU)")
	f.Int64Var(&fl.maxMember, "zip-max-size", ingest.DefaultMaxMember, "most bytes read from one zip member; a larger member fails")
	f.IntVar(&fl.maxRatio, "zip-max-ratio", ingest.DefaultMaxRatio, "most times a zip member over 1 MiB may inflate; more fails as a likely zip bomb")
	f.BoolVar(&fl.sync, "sync", true, "sync OUTDIR's file system once at the end")
	f.BoolVarP(&fl.quiet, "quiet", "q", false, "print no progress line")
	cmd.AddCommand(newDeidClinicalCmd(e), newDeidPolicyCmd(e))
	return cmd
}

// loadPolicy resolves --policy: a preset name or a policy file. Every
// failure is a usage error.
func loadPolicy(name string) (deid.Policy, error) {
	if name == "" {
		name = "basic"
	}
	if slices.Contains(deid.Presets, name) {
		return deid.Preset(name)
	}
	if fi, err := os.Stat(name); err == nil && fi.Mode().IsRegular() {
		p, err := deid.LoadPolicy(name)
		if err != nil {
			return p, usageError{err}
		}
		return p, nil
	}
	return deid.Policy{}, usagef("deid: unknown policy %q: neither a preset (%s) nor a policy file", name, strings.Join(deid.Presets, ", "))
}

// siteKeyPath returns the site key path from the flag, the environment or
// the per-user configuration directory.
func siteKeyPath(e *env, flag string) (string, error) {
	switch {
	case flag != "":
		return flag, nil
	case e.getenv(siteKeyEnv) != "":
		return e.getenv(siteKeyEnv), nil
	case e.getenv("XDG_CONFIG_HOME") != "":
		return filepath.Join(e.getenv("XDG_CONFIG_HOME"), "mosaic", "site.key"), nil
	case e.getenv("HOME") != "":
		return filepath.Join(e.getenv("HOME"), ".config", "mosaic", "site.key"), nil
	}
	return "", usagef("deid: no site key: give --site-key FILE or set $%s", siteKeyEnv)
}

// openSiteKey loads or creates the key, telling the user (path only) when
// it was created.
func openSiteKey(e *env, path string) (deid.Key, error) {
	k, created, err := deid.LoadOrCreateKey(path)
	if err != nil {
		if errors.Is(err, deid.ErrKeyFile) {
			return k, usageError{err}
		}
		return k, fmt.Errorf("deid: site key %s: %w", path, err)
	}
	if created {
		fmt.Fprintf(e.stderr, "deid: created a new site key in %s (mode 0600): keep it and back it up; without it the same patients get other pseudonyms\n", path)
	}
	return k, nil
}

// formatFlag checks -o/--output of a command whose output path was -o
// before: a value that is not a format is most likely a path.
func formatFlag(cmdName, format, pathFlag string) error {
	if validOutput(format) == nil {
		return nil
	}
	return usagef("%s: -o/--output is the summary's format (table or json), not %q; name the output with %s", cmdName, format, pathFlag)
}

func runDeid(e *env, fl deidFlags, args []string) error {
	if err := formatFlag("deid", fl.format, "--out OUTDIR"); err != nil {
		return err
	}
	if fl.out == "" {
		return usagef("deid: missing output directory (--out OUTDIR)")
	}
	if len(args) == 0 {
		return usagef("deid: no input: name DICOM files, folders or zip archives")
	}
	if fl.workers < 0 {
		return usagef("deid: --workers must not be negative")
	}
	if fl.maxMember <= 0 {
		return usagef("deid: --zip-max-size must be positive")
	}
	if fl.maxRatio < 1 {
		return usagef("deid: --zip-max-ratio must be at least 1")
	}
	pol, err := loadPolicy(fl.policy)
	if err != nil {
		return err
	}
	outRes, err := ingest.ResolvePath(fl.out)
	if err != nil {
		return usagef("deid: output directory: %v", err)
	}
	keyPath, err := siteKeyPath(e, fl.siteKey)
	if err != nil {
		return err
	}
	keyRes, err := ingest.ResolvePath(keyPath)
	if err != nil {
		return usagef("deid: site key: %v", err)
	}
	if ingest.Within(keyRes, outRes) {
		return usagef("deid: the site key %s is inside the output directory %s: it must never leave the site; keep it elsewhere", keyPath, fl.out)
	}
	var reportRes string
	if fl.report != "" {
		if reportRes, err = ingest.ResolvePath(fl.report); err != nil {
			return usagef("deid: report: %v", err)
		}
		if ingest.Within(reportRes, outRes) {
			return usagef("deid: the report %s is inside the output directory %s: it names input files, keep it at the site", fl.report, fl.out)
		}
		if reportRes == keyRes {
			return usagef("deid: the report and the site key are the same file")
		}
	}
	for _, in := range args {
		r, err := ingest.ResolvePath(in)
		if err == nil && ingest.Within(r, outRes) {
			return usagef("deid: input %s is inside the output directory %s", in, fl.out)
		}
		if err == nil && r == keyRes {
			return usagef("deid: input %s is the site key", in)
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
	tree, err := deid.OpenTree(fl.out, eng)
	if err != nil {
		return fmt.Errorf("deid: %w", err)
	}
	skip := map[string]bool{keyRes: true}
	if reportRes != "" {
		skip[reportRes] = true
	}
	if e.getenv("GOGC") == "" {
		// The engine allocates per element; the heap stays small (a few
		// MB per worker), so collecting less often is cheap and saves
		// about a sixth of the CPU time.
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	return deidRun(e, fl, tree, pol.Name, args, ingest.Options{
		ListOptions: ingest.ListOptions{
			Limits:    ingest.Limits{MaxMember: fl.maxMember, MaxRatio: fl.maxRatio},
			SkipDir:   outRes,
			SkipFiles: skip,
		},
		Workers: fl.workers,
	})
}
