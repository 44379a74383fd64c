package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mosaic-imaging/mosaic/internal/deid"
)

// Defaults of mosaic deid.
const (
	// defaultMaxMember bounds the bytes read from one zip member.
	defaultMaxMember = 4 << 30
	// defaultMaxRatio bounds how many times a zip member may inflate.
	defaultMaxRatio = 200
	// ratioFloor is the size below which the ratio is not enforced: a
	// small member cannot be a bomb, and tiny files compress well.
	ratioFloor = 1 << 20
	// maxInflated bounds the inflated size of a dataset in the deflated
	// transfer syntax, which is held in memory.
	maxInflated = 512 << 20
	// siteKeyEnv names the environment variable with the site key path.
	siteKeyEnv = "MOSAIC_SITE_KEY"
)

type deidFlags struct {
	out         string
	policy      string
	siteKey     string
	report      string
	workers     int
	maxMember   int64
	maxRatio    int
	sync        bool
	quiet       bool
	maxInflated int64
}

func newDeidCmd(e *env) *cobra.Command {
	var fl deidFlags
	cmd := &cobra.Command{
		Use:   "deid -o OUTDIR [--policy P] [--site-key FILE] [--report FILE] INPUT...",
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
The run always goes on with the next object. An INPUT named like a
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
reason and failed. --report FILE writes JSON Lines, one object per input
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
		Example: `  mosaic deid -o /data/deid --report deid.jsonl /data/export
  mosaic deid -o /data/deid --policy eucaim --site-key /etc/mosaic/site.key study.zip
  mosaic deid clinical --id-column patient_id --date-columns diagnosis_date -o clinical-deid.csv clinical.csv
  mosaic deid policy show --policy longitudinal`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDeid(e, fl, args)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&fl.out, "output", "o", "", "output directory (required); created when missing")
	f.StringVar(&fl.policy, "policy", "basic", "preset (basic, eucaim, longitudinal) or policy file (JSON)")
	f.StringVar(&fl.siteKey, "site-key", "", "site key file, created when missing (default $"+siteKeyEnv+", else $XDG_CONFIG_HOME/mosaic/site.key)")
	f.StringVar(&fl.report, "report", "", "write a JSON Lines report, one line per input object, to this file")
	f.IntVar(&fl.workers, "workers", 0, "objects de-identified at once (0: one per CPU)")
	f.Int64Var(&fl.maxMember, "zip-max-size", defaultMaxMember, "most bytes read from one zip member; a larger member fails")
	f.IntVar(&fl.maxRatio, "zip-max-ratio", defaultMaxRatio, "most times a zip member over 1 MiB may inflate; more fails as a likely zip bomb")
	f.BoolVar(&fl.sync, "sync", true, "sync OUTDIR's file system once at the end")
	f.BoolVarP(&fl.quiet, "quiet", "q", false, "print no progress line")
	fl.maxInflated = maxInflated
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

// resolvePath returns the absolute form of p with symbolic links resolved
// in the longest part of it that exists, so paths can be compared even
// before they are created.
func resolvePath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	rest := ""
	cur := abs
	for {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest), nil
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return abs, nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// within reports whether path p is dir or lies under it (both resolved).
func within(p, dir string) bool {
	if p == dir {
		return true
	}
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

func runDeid(e *env, fl deidFlags, args []string) error {
	if fl.out == "" {
		return usagef("deid: missing output directory (-o OUTDIR)")
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
	outRes, err := resolvePath(fl.out)
	if err != nil {
		return usagef("deid: output directory: %v", err)
	}
	keyPath, err := siteKeyPath(e, fl.siteKey)
	if err != nil {
		return err
	}
	keyRes, err := resolvePath(keyPath)
	if err != nil {
		return usagef("deid: site key: %v", err)
	}
	if within(keyRes, outRes) {
		return usagef("deid: the site key %s is inside the output directory %s: it must never leave the site; keep it elsewhere", keyPath, fl.out)
	}
	var reportRes string
	if fl.report != "" {
		if reportRes, err = resolvePath(fl.report); err != nil {
			return usagef("deid: report: %v", err)
		}
		if within(reportRes, outRes) {
			return usagef("deid: the report %s is inside the output directory %s: it names input files, keep it at the site", fl.report, fl.out)
		}
		if reportRes == keyRes {
			return usagef("deid: the report and the site key are the same file")
		}
	}
	for _, in := range args {
		r, err := resolvePath(in)
		if err == nil && within(r, outRes) {
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
	if err := os.MkdirAll(fl.out, 0o700); err != nil {
		return fmt.Errorf("deid: %w", err)
	}
	workers := fl.workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	r := &runner{
		e:         e,
		eng:       eng,
		fl:        fl,
		workers:   workers,
		outDir:    fl.out,
		outRes:    outRes,
		skipFiles: map[string]bool{keyRes: true},
		written:   map[string]struct{}{},
	}
	if reportRes != "" {
		r.skipFiles[reportRes] = true
	}
	if e.getenv("GOGC") == "" {
		// The engine allocates per element; the heap stays small (a few
		// MB per worker), so collecting less often is cheap and saves
		// about a sixth of the CPU time.
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	start := time.Now()
	sum, err := r.run(args)
	if err != nil {
		return err
	}
	r.printSummary(sum, time.Since(start), pol.Name)
	if sum.failed > 0 {
		return exitError{code: exitFailure, msg: fmt.Sprintf("deid: %d of %d objects failed%s", sum.failed, sum.total(), reportHint(fl.report))}
	}
	return nil
}

func reportHint(report string) string {
	if report == "" {
		return " (listed above)"
	}
	return " (see " + report + ")"
}
