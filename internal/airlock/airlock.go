// Package airlock checks everything a job or an analysis would send out
// of a node before it leaves: statistical disclosure checks no weaker
// than the defaults of SACRO's ACRO (cell threshold 10, zeros
// disclosive, degrees of freedom at least 10, dominance (2, 90%) and
// p-ratio 10% on sums and means, negative or unusual values to review),
// file types, sizes, row-level and DICOM content, and logs; outputs that
// need a person wait in the node's store until released (by two people
// where the node says so) or rejected, every decision audited.
//
// Check decides on one output; CheckJob on all outputs of one job, with
// the limits on their number and total size. The structured formats a
// job writes so that checks can be exact are JSON objects with a
// "mosaic_output" member (FormatTable, FormatModel, FormatStats); plain
// text, CSV and PNG files are allowed too, but a person must look at
// them. LogFilter releases a job's log lines one by one. Store keeps
// what waits for a person (Hold, Release, Reject).
package airlock

import (
	"errors"
	"fmt"
	"time"
)

// ErrNotImplemented marks the contract's stubs.
var ErrNotImplemented = errors.New("airlock: not implemented")

// Policy is a node's airlock settings (node.json "airlock").
type Policy struct {
	CellThreshold int     `json:"cell_threshold"`   // default 10
	MinDF         int     `json:"min_df"`           // default 10
	DominanceN    int     `json:"dominance_n"`      // default 2
	DominanceK    float64 `json:"dominance_k"`      // default 0.9
	PRatio        float64 `json:"p_ratio"`          // default 0.1
	ZerosDisclose *bool   `json:"zeros_disclosive"` // default true
	MaxFileBytes  int64   `json:"max_file_bytes"`   // default 10 MiB
	MaxTotalBytes int64   `json:"max_total_bytes"`  // default 50 MiB
	MaxFiles      int     `json:"max_files"`        // default 100
	MaxLogLines   int     `json:"max_log_lines"`    // default 10000
	ManualRelease bool    `json:"manual_release"`   // every output waits for a person
	TwoPerson     bool    `json:"two_person"`       // a release needs two different people
}

// The defaults of Policy: ACRO's for the statistical checks.
const (
	DefaultCellThreshold = 10
	DefaultMinDF         = 10
	DefaultDominanceN    = 2
	DefaultDominanceK    = 0.9
	DefaultPRatio        = 0.1
	DefaultMaxFileBytes  = 10 << 20
	DefaultMaxTotalBytes = 50 << 20
	DefaultMaxFiles      = 100
	DefaultMaxLogLines   = 10000
)

// WithDefaults returns p with its zero fields set to the defaults.
func (p Policy) WithDefaults() Policy {
	if p.CellThreshold == 0 {
		p.CellThreshold = DefaultCellThreshold
	}
	if p.MinDF == 0 {
		p.MinDF = DefaultMinDF
	}
	if p.DominanceN == 0 {
		p.DominanceN = DefaultDominanceN
	}
	if p.DominanceK == 0 {
		p.DominanceK = DefaultDominanceK
	}
	if p.PRatio == 0 {
		p.PRatio = DefaultPRatio
	}
	if p.ZerosDisclose == nil {
		on := true
		p.ZerosDisclose = &on
	}
	if p.MaxFileBytes == 0 {
		p.MaxFileBytes = DefaultMaxFileBytes
	}
	if p.MaxTotalBytes == 0 {
		p.MaxTotalBytes = DefaultMaxTotalBytes
	}
	if p.MaxFiles == 0 {
		p.MaxFiles = DefaultMaxFiles
	}
	if p.MaxLogLines == 0 {
		p.MaxLogLines = DefaultMaxLogLines
	}
	return p
}

// Validate refuses a policy weaker than ACRO's defaults or out of range
// (after WithDefaults). A node may be stricter, never laxer.
func (p Policy) Validate() error {
	switch {
	case p.CellThreshold < DefaultCellThreshold:
		return fmt.Errorf("airlock: cell_threshold %d is under the minimum of %d", p.CellThreshold, DefaultCellThreshold)
	case p.MinDF < DefaultMinDF:
		return fmt.Errorf("airlock: min_df %d is under the minimum of %d", p.MinDF, DefaultMinDF)
	case p.DominanceN < DefaultDominanceN || p.DominanceN > 10:
		return fmt.Errorf("airlock: dominance_n must be from %d to 10, not %d", DefaultDominanceN, p.DominanceN)
	case !(p.DominanceK > 0 && p.DominanceK <= DefaultDominanceK):
		return fmt.Errorf("airlock: dominance_k must be in (0, %g]", DefaultDominanceK)
	case !(p.PRatio >= DefaultPRatio && p.PRatio < 1):
		return fmt.Errorf("airlock: p_ratio must be in [%g, 1)", DefaultPRatio)
	case p.MaxFileBytes < 0 || p.MaxTotalBytes < 0 || p.MaxFiles < 0 || p.MaxLogLines < 0:
		return errors.New("airlock: size and count limits cannot be negative")
	}
	return nil
}

// Permissions are what the permit allows beyond aggregates.
type Permissions struct {
	RowLevel bool
	DICOM    bool
}

// Decision is the airlock's verdict on one output.
type Decision string

// Decisions.
const (
	Release Decision = "release"
	Review  Decision = "review" // waits for a person
	Refuse  Decision = "refuse"
)

// rank orders decisions from the mildest.
func (d Decision) rank() int {
	switch d {
	case Release:
		return 0
	case Review:
		return 1
	}
	return 2
}

// Finding is one check's result.
type Finding struct {
	Check  string   `json:"check"`
	Result Decision `json:"result"`
	Detail string   `json:"detail"` // never the values themselves
}

// Verdict is the decision on one output and why.
type Verdict struct {
	Decision Decision  `json:"decision"`
	Findings []Finding `json:"findings"`
	// Type is what the content was found to be: "table", "model",
	// "stats" (the structured formats), "text", "csv", "png", "dicom",
	// "binary" or "" when not looked at (too large).
	Type string `json:"type,omitempty"`

	// dropped counts the findings past maxFindings.
	dropped int
}

// maxFindings bounds the findings a verdict keeps (an output of a
// million bad cells would otherwise make a million).
const maxFindings = 100

// add records a finding and makes the decision at least as strict.
func (v *Verdict) add(check string, d Decision, format string, args ...any) {
	if d.rank() > v.Decision.rank() {
		v.Decision = d
	}
	if len(v.Findings) >= maxFindings {
		v.dropped++
		return
	}
	v.Findings = append(v.Findings, Finding{Check: check, Result: d, Detail: fmt.Sprintf(format, args...)})
}

// summariseDropped records how many findings were left out.
func (v *Verdict) summariseDropped() {
	if v.dropped > 0 {
		v.Findings = append(v.Findings, Finding{Check: "more", Result: v.Decision, Detail: fmt.Sprintf("and %d more findings", v.dropped)})
		v.dropped = 0
	}
}

// Output is one output of a job or analysis.
type Output struct {
	Job  string
	Name string
	Data []byte
	// InputRows are the row counts of the job's inputs (its tables, its
	// snapshot's patients), when known: an output with as many rows as an
	// input looks like row-level data.
	InputRows []int
	// IsPseudonym, when set, tells whether a string is a patient
	// pseudonym of the job's dataset (PseudonymSet makes one).
	IsPseudonym func(string) bool
}

// Check runs every check on one output.
func Check(pol Policy, perm Permissions, out Output) Verdict {
	pol = pol.WithDefaults()
	v := Verdict{Decision: Release}
	if int64(len(out.Data)) > pol.MaxFileBytes {
		v.add("size", Refuse, "%d bytes is over the limit of %d bytes per file", len(out.Data), pol.MaxFileBytes)
		return v
	}
	checkContent(&v, pol, perm, out)
	if pol.ManualRelease && v.Decision == Release {
		v.add("manual-release", Review, "this node releases every output by hand")
	}
	v.summariseDropped()
	return v
}

// CheckJob checks every output of one job: each as Check does, then the
// limits on their number (MaxFiles) and total size (MaxTotalBytes), in
// order: an output past a limit is refused.
func CheckJob(pol Policy, perm Permissions, outs []Output) []Verdict {
	pol = pol.WithDefaults()
	vs := make([]Verdict, len(outs))
	var total int64
	for i, o := range outs {
		vs[i] = Check(pol, perm, o)
		if i >= pol.MaxFiles {
			vs[i].add("count", Refuse, "the job wrote more than %d outputs", pol.MaxFiles)
			continue
		}
		total += int64(len(o.Data))
		if total > pol.MaxTotalBytes {
			vs[i].add("total-size", Refuse, "the job's outputs pass the limit of %d bytes in all", pol.MaxTotalBytes)
		}
	}
	return vs
}

// Held is an output waiting in the store.
type Held struct {
	ID        string    `json:"id"`
	Job       string    `json:"job"`
	Name      string    `json:"name"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"`
	Verdict   Verdict   `json:"verdict"`
	Created   time.Time `json:"created"`
	State     string    `json:"state"` // held, released, rejected, refused
	Approvals []string  `json:"approvals,omitempty"`
	DecidedBy []string  `json:"decided_by,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	// Decided is when the output was released, rejected or refused.
	Decided time.Time `json:"decided,omitzero"`
	// Stored says the content is kept (not for outputs over the size
	// limit).
	Stored bool `json:"stored"`
	// Sent is when a released output was marked as sent to the hub.
	Sent time.Time `json:"sent,omitzero"`
}

// States of a Held output.
const (
	StateHeld     = "held"     // waits for a person
	StateReleased = "released" // may leave (by the checks, or people)
	StateRejected = "rejected" // a person said no
	StateRefused  = "refused"  // the checks said no; no person can release it
)
