// Package jobs is processing jobs as the hub records them, in EUCAIM
// jobman's shape: a researcher submits a job under process permits, the
// hub signs it and sends it to the permitted nodes, and keeps the
// state, released logs and released outputs each node reports; and the
// tool catalogue, where a container image or training program needs
// reviews by two people of two organisations before nodes accept it.
package jobs

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Spec is a job as submitted (jobman's SubmitProps, with the permits it
// runs under).
type Spec struct {
	JobName      string            `json:"jobName"`
	Image        string            `json:"image"`
	Resources    Resources         `json:"resources"`
	CommandArgs  []string          `json:"commandArgs"`
	DatasetsList []string          `json:"datasetsList"`
	Env          []EnvVar          `json:"env"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	DryRun       bool              `json:"dryRun"`
	// Permits are the ids of the researcher's process permits, one per
	// node and dataset the job runs on.
	Permits []string `json:"permits"`
	// Kind is the tool's kind: container (the default; Image is
	// name@sha256:...), process (Image is the sha256:... digest of a
	// program in the catalogue) or builtin (Image names a built-in
	// analysis, which needs no review).
	Kind string `json:"kind,omitempty"`
	// DICOM asks the node to show the snapshot's DICOM files to the job
	// (under /data/dicom) beside its research tables.
	DICOM bool `json:"dicom,omitempty"`
}

// Resources is jobman's resources: a flavor (no-gpu, small-gpu,
// medium-gpu, large-gpu).
type Resources struct {
	Flavor string `json:"flavor"`
}

// EnvVar is one environment variable.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Tool kinds.
const (
	KindContainer = "container"
	KindProcess   = "process"
	KindBuiltin   = "builtin"
)

// Flavors are the resources a job may ask for.
var Flavors = []string{"no-gpu", "small-gpu", "medium-gpu", "large-gpu"}

// Tool states in the catalogue.
const (
	ToolPending  = "pending"
	ToolApproved = "approved"
	ToolRejected = "rejected"
)

// Tool is an entry of the catalogue: a container image by digest or a
// training program by the SHA-256 of its file.
type Tool struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Kind        string    `json:"kind"`
	Digest      string    `json:"digest"` // sha256:<64 hex>
	Description string    `json:"description"`
	Submitter   string    `json:"submitter"`
	Created     time.Time `json:"created"`
	State       string    `json:"state"`
	Reviews     []Review  `json:"reviews"`
	// Program is the program file of a process tool, when the catalogue
	// holds it; nodes run exactly these bytes (their digest is Digest).
	Program []byte `json:"program,omitempty"`
}

// Review is one person's decision on a tool.
type Review struct {
	Reviewer     string    `json:"reviewer"`
	Organisation string    `json:"organisation"`
	Decision     string    `json:"decision"` // approve or reject
	Comment      string    `json:"comment"`
	Time         time.Time `json:"time"`
}

// Approved reports whether t has reviews approving it by at least
// reviews people of at least orgs different organisations, and no
// rejection.
func (t *Tool) Approved(reviews, orgs int) bool {
	people, os := map[string]bool{}, map[string]bool{}
	for _, r := range t.Reviews {
		if r.Decision == "reject" {
			return false
		}
		if r.Decision == "approve" && r.Reviewer != t.Submitter {
			people[r.Reviewer] = true
			if r.Organisation != "" {
				os[r.Organisation] = true
			}
		}
	}
	return len(people) >= reviews && len(os) >= orgs
}

// Job is a job as the hub keeps it.
type Job struct {
	ID         string      `json:"id"`
	Name       string      `json:"name"`
	Researcher string      `json:"researcher"`
	Spec       Spec        `json:"spec"`
	Tool       string      `json:"tool,omitempty"` // the catalogue's tool id
	State      string      `json:"state"`
	Created    time.Time   `json:"created"`
	Cancelled  bool        `json:"cancelled,omitempty"`
	Nodes      []NodeState `json:"nodes"`
	DryRun     bool        `json:"dry_run,omitempty"`
}

// NodeState is a job at one node.
type NodeState struct {
	Node     string  `json:"node"`
	Dataset  string  `json:"dataset"`
	Permit   string  `json:"permit"`
	State    string  `json:"state"`
	Progress float64 `json:"progress"`
	ExitCode *int    `json:"exit_code,omitempty"`
	// Refused is the node's refusal code, Message its words.
	Refused    string       `json:"refused,omitempty"`
	Message    string       `json:"message,omitempty"`
	LogLines   int          `json:"log_lines"`
	LogDropped int          `json:"log_dropped,omitempty"`
	Outputs    []OutputInfo `json:"outputs,omitempty"`
	Updated    time.Time    `json:"updated"`
}

// OutputInfo describes an output a node released.
type OutputInfo struct {
	Node     string    `json:"node"`
	Name     string    `json:"name"`
	Size     int64     `json:"size"`
	SHA256   string    `json:"sha256"`
	Received time.Time `json:"received"`
}

// LogLine is one released log line.
type LogLine struct {
	ID   int64     `json:"id"`
	Node string    `json:"node"`
	Line string    `json:"line"`
	Time time.Time `json:"time"`
}

// Errors, for errors.Is.
var (
	ErrNotFound  = errors.New("jobs: not found")
	ErrInvalid   = errors.New("jobs: invalid")
	ErrForbidden = errors.New("jobs: forbidden")
	ErrConflict  = errors.New("jobs: conflict")
)

var (
	digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	imageRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9._/:-]{0,199}@sha256:[0-9a-f]{64}$`)
	envRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	nameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$`)
	outRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
)

// ValidDigest reports whether d is sha256: and 64 lower-case hex digits.
func ValidDigest(d string) bool { return digestRE.MatchString(d) }

// ValidOutputName reports whether name can name an output file.
func ValidOutputName(name string) bool {
	return outRE.MatchString(name) && !strings.Contains(name, "..")
}

// Digest returns the sha256: digest of b.
func Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// ImageDigest returns the digest part of a name@sha256:... reference.
func ImageDigest(image string) string {
	_, d, ok := strings.Cut(image, "@")
	if !ok {
		return ""
	}
	return d
}

// Limits on a spec.
const (
	MaxArgs       = 64
	MaxArgBytes   = 4096
	MaxEnv        = 64
	MaxPermits    = 64
	MaxProgram    = 256 << 10
	MaxToolFields = 2000
)

// Normalize fills in defaults and checks the spec in itself (not its
// permits or its tool).
func (s *Spec) Normalize() error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(f, a...)) }
	s.JobName = strings.TrimSpace(s.JobName)
	if !nameRE.MatchString(s.JobName) {
		return bad("jobName must be 1 to 100 letters, digits, spaces, dots, dashes or underscores")
	}
	if s.Kind == "" {
		s.Kind = KindContainer
	}
	switch s.Kind {
	case KindContainer:
		if !imageRE.MatchString(s.Image) {
			return bad("a container job's image must be NAME@sha256:<64 hex digits> (by digest, not by tag)")
		}
	case KindProcess:
		if !ValidDigest(s.Image) {
			return bad("a process job's image must be the sha256:<64 hex digits> digest of a program in the tool catalogue")
		}
	case KindBuiltin:
		if !outRE.MatchString(s.Image) {
			return bad("a built-in job's image must name a built-in analysis")
		}
	default:
		return bad("kind must be container, process or builtin")
	}
	if s.Resources.Flavor == "" {
		s.Resources.Flavor = "no-gpu"
	}
	ok := false
	for _, f := range Flavors {
		ok = ok || f == s.Resources.Flavor
	}
	if !ok {
		return bad("flavor must be one of %s", strings.Join(Flavors, ", "))
	}
	if len(s.CommandArgs) > MaxArgs {
		return bad("at most %d command arguments", MaxArgs)
	}
	for _, a := range s.CommandArgs {
		if len(a) > MaxArgBytes || strings.ContainsRune(a, 0) {
			return bad("a command argument is longer than %d bytes or holds a NUL", MaxArgBytes)
		}
	}
	if len(s.Env) > MaxEnv {
		return bad("at most %d environment variables", MaxEnv)
	}
	for _, e := range s.Env {
		if !envRE.MatchString(e.Name) || len(e.Value) > MaxArgBytes || strings.ContainsRune(e.Value, 0) {
			return bad("environment variable %q: a name of letters, digits and underscores, a value under %d bytes", trunc(e.Name), MaxArgBytes)
		}
	}
	if len(s.Annotations) > MaxEnv {
		return bad("at most %d annotations", MaxEnv)
	}
	if len(s.Permits) == 0 {
		return bad("a job needs at least one process permit (permits)")
	}
	if len(s.Permits) > MaxPermits {
		return bad("at most %d permits", MaxPermits)
	}
	seen := map[string]bool{}
	for _, p := range s.Permits {
		if p == "" || len(p) > 200 || seen[p] {
			return bad("permits must be distinct, non-empty ids")
		}
		seen[p] = true
	}
	if len(s.DatasetsList) == 0 {
		return bad("datasetsList must name the datasets the job runs on")
	}
	return nil
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
