// Package synth generates deterministic synthetic cancer-imaging cohorts
// that look like what hospitals send: DICOM CT, MR and PET series with
// fake but realistic identifying details (names, IDs, addresses,
// physicians, institutions, a vendor private block), a few risky objects
// (ultrasound and secondary captures with text burned into the pixels), a
// clinical table laid out after the EUCAIM common data model, and a
// manifest that states the ground truth tests can count against.
//
// Every identifying value is invented. The same Options produce the same
// bytes on every run and machine, whatever the number of workers.
package synth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// Size selects image matrices and slice counts.
type Size string

const (
	// SizeSmall uses reduced matrices for speed (CT and MR 128x128, PET
	// 64x64, 8 to 24 slices per series): fit for tests and demos.
	SizeSmall Size = "small"
	// SizeBench uses clinical matrices (CT 512x512 16-bit, MR 256x256,
	// PET 128x128) and clinical slice counts: with DefaultPatients it
	// writes well over 1 GB in several thousand files.
	SizeBench Size = "bench"
)

// Limits of Options.
const (
	DefaultPatients = 20
	MaxPatients     = 100000
	// MinCTMatrix and MaxCTMatrix bound Options.CTMatrix.
	MinCTMatrix = 32
	MaxCTMatrix = 1024
	// RiskyFloor is the cohort size from which at least one ultrasound
	// study and one secondary capture are guaranteed.
	RiskyFloor = 10
)

// ErrInvalid marks invalid Options.
var ErrInvalid = errors.New("invalid options")

// ErrExists reports that the output directory already holds a cohort.
var ErrExists = errors.New("output directory already holds a cohort")

// Options steer Generate.
type Options struct {
	// Dir is the output directory; it is created when missing and must not
	// already hold a dicom/ directory, clinical.csv or manifest.json.
	Dir string
	// Patients is the number of patients (1 to MaxPatients).
	Patients int
	// Seed makes the cohort: the same seed gives byte-identical output.
	Seed uint64
	// Size is SizeSmall when empty.
	Size Size
	// CTMatrix overrides the CT matrix (rows and columns) when not zero.
	CTMatrix int
	// Workers bounds the files written at once (0: GOMAXPROCS). It never
	// changes the output.
	Workers int
	// Progress, when set, is called after each file with the number of
	// DICOM files written so far and the total. Calls are serialised.
	Progress func(done, total int)
	// CancerTypes, when not empty, limits the cohort to these cancer types
	// (breast, lung, prostate, colorectal, liver, pancreas), keeping their
	// relative weights. Empty keeps every type (and the same output as
	// before the option existed).
	CancerTypes []string
	// Manufacturers, when not empty, limits each modality's scanners to
	// those of these manufacturers where the modality has one.
	Manufacturers []string
}

// CancerTypes lists the cancer types the generator knows.
func CancerTypes() []string {
	var out []string
	for _, s := range cancerSites {
		out = append(out, s.cancerType)
	}
	return out
}

// Manufacturers lists the invented scanner manufacturers.
func Manufacturers() []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range []string{"CT", "MR", "PT", "US", "OT"} {
		for _, e := range vendors[m] {
			if !seen[e.manufacturer] {
				seen[e.manufacturer] = true
				out = append(out, e.manufacturer)
			}
		}
	}
	return out
}

func (o *Options) normalise() error {
	if o.Size == "" {
		o.Size = SizeSmall
	}
	if o.Size != SizeSmall && o.Size != SizeBench {
		return fmt.Errorf("synth: %w: size %q (want %s or %s)", ErrInvalid, o.Size, SizeSmall, SizeBench)
	}
	if o.Patients < 1 || o.Patients > MaxPatients {
		return fmt.Errorf("synth: %w: patients %d (want 1 to %d)", ErrInvalid, o.Patients, MaxPatients)
	}
	if o.CTMatrix != 0 && (o.CTMatrix < MinCTMatrix || o.CTMatrix > MaxCTMatrix) {
		return fmt.Errorf("synth: %w: CT matrix %d (want %d to %d)", ErrInvalid, o.CTMatrix, MinCTMatrix, MaxCTMatrix)
	}
	if o.Dir == "" {
		return fmt.Errorf("synth: %w: no output directory", ErrInvalid)
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	for _, t := range o.CancerTypes {
		if !slices.Contains(CancerTypes(), t) {
			return fmt.Errorf("synth: %w: cancer type %q (want one of %s)", ErrInvalid, t, strings.Join(CancerTypes(), ", "))
		}
	}
	for _, m := range o.Manufacturers {
		if !slices.Contains(Manufacturers(), m) {
			return fmt.Errorf("synth: %w: manufacturer %q (want one of %s)", ErrInvalid, m, strings.Join(Manufacturers(), ", "))
		}
	}
	return nil
}

// Output file names inside Options.Dir.
const (
	DICOMDir     = "dicom"
	ClinicalFile = "clinical.csv"
	ManifestFile = "manifest.json"
)

// Generate writes a cohort to opts.Dir: DICOM files under dicom/, then
// clinical.csv, then manifest.json (last, so its presence means the
// cohort is complete). It returns the manifest it wrote.
func Generate(ctx context.Context, opts Options) (Manifest, error) {
	if err := opts.normalise(); err != nil {
		return Manifest{}, err
	}
	for _, name := range []string{DICOMDir, ClinicalFile, ManifestFile} {
		if _, err := os.Lstat(filepath.Join(opts.Dir, name)); err == nil {
			return Manifest{}, fmt.Errorf("synth: %s: %w", opts.Dir, ErrExists)
		}
	}
	c := planCohort(opts)
	if err := os.MkdirAll(filepath.Join(opts.Dir, DICOMDir), 0o755); err != nil {
		return Manifest{}, fmt.Errorf("synth: %w", err)
	}
	sizes, err := writeInstances(ctx, opts, c)
	if err != nil {
		return Manifest{}, err
	}
	if err := writeAtomic(filepath.Join(opts.Dir, ClinicalFile), func(w writer) error { return writeClinical(w, c) }); err != nil {
		return Manifest{}, fmt.Errorf("synth: %w", err)
	}
	m := buildManifest(opts, c, sizes)
	if err := writeAtomic(filepath.Join(opts.Dir, ManifestFile), func(w writer) error { return m.encode(w) }); err != nil {
		return Manifest{}, fmt.Errorf("synth: %w", err)
	}
	return m, nil
}

// job is one DICOM file to write.
type job struct {
	idx int
	ins *instance
}

// writeInstances renders and writes every instance, in parallel, and
// returns the size of each file in plan order.
func writeInstances(ctx context.Context, opts Options, c *cohort) ([]int64, error) {
	all := c.instances()
	sizes := make([]int64, len(all))
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Create every directory first, in order, so workers only write files.
	made := ""
	for _, in := range all {
		d := filepath.Join(opts.Dir, filepath.FromSlash(in.dir()))
		if d == made {
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("synth: %w", err)
		}
		made = d
	}

	jobs := make(chan job)
	var (
		mu       sync.Mutex
		done     int
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	for range opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newRenderer()
			for j := range jobs {
				path := filepath.Join(opts.Dir, filepath.FromSlash(j.ins.path()))
				n, err := writeInstance(path, r, j.ins)
				if err != nil {
					fail(fmt.Errorf("synth: write %s: %w", j.ins.path(), err))
					continue
				}
				sizes[j.idx] = n
				mu.Lock()
				done++
				if opts.Progress != nil {
					opts.Progress(done, len(all))
				}
				mu.Unlock()
			}
		}()
	}
	for i, in := range all {
		select {
		case jobs <- job{i, in}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := parent.Err(); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	return sizes, nil
}

// clock is the fixed reference "today" of every cohort: dates are laid out
// before it so output never depends on when it is generated.
var clock = time.Date(2025, time.June, 30, 0, 0, 0, 0, time.UTC)
