// Package executor runs a job's program at a node, confined: built-in
// analyses in process; a local process in a bubblewrap sandbox with no
// network, a read-only view of only the job's inputs, a private writable
// output folder, and CPU time, memory, disk and process limits; an OCI
// image by digest from an allow-list through Podman or Docker; or a
// Kubernetes Job through client-go.
package executor

import (
	"context"
	"errors"
	"time"
)

// ErrNotImplemented marks the contract's stubs.
var ErrNotImplemented = errors.New("executor: not implemented")

// Kind names an executor.
type Kind string

// Executors.
const (
	Builtin    Kind = "builtin"
	Process    Kind = "process"
	Container  Kind = "container"
	Kubernetes Kind = "kubernetes"
)

// Limits bound one run. Zero fields take the executor's defaults.
type Limits struct {
	CPUSeconds  int           `json:"cpu_seconds"`
	MemoryBytes int64         `json:"memory_bytes"`
	DiskBytes   int64         `json:"disk_bytes"` // the output folder
	Processes   int           `json:"processes"`
	WallClock   time.Duration `json:"wall_clock"`
}

// Mount is a host path shown read-only at Target inside the run.
type Mount struct {
	Host   string `json:"host"`
	Target string `json:"target"`
}

// Spec is one run.
type Spec struct {
	Job string
	// Command is the program and its arguments (for Builtin, the
	// analysis's name and arguments); Image is an OCI image reference by
	// digest (name@sha256:...) for Container and Kubernetes.
	Command []string
	Image   string
	Env     map[string]string
	// Inputs are shown read-only; Output is a host folder shown writable
	// at /out, and nothing else is writable.
	Inputs []Mount
	Output string
	Limits Limits
}

// Result is how a run ended.
type Result struct {
	ExitCode int
	// Killed names the limit that ended the run ("cpu", "memory",
	// "disk", "processes", "timeout") or "cancelled"; "" when it ended
	// by itself.
	Killed   string
	Duration time.Duration
}

// Executor runs specs. Run returns when the run ended and nothing of it
// runs any more; log gets its output line by line (stdout and stderr),
// at most a bounded number of bytes per line.
type Executor interface {
	Kind() Kind
	Run(ctx context.Context, spec Spec, log func(line string)) (Result, error)
}

// Config chooses and configures a node's executor (node.json "jobs").
type Config struct {
	Kind   Kind   `json:"executor"`
	Bwrap  string `json:"bwrap,omitempty"`
	Limits Limits `json:"limits"`
	// Podman or Docker, for Container.
	ContainerCLI     string   `json:"container_cli,omitempty"`
	ContainerRuntime string   `json:"container_runtime,omitempty"`
	CgroupManager    string   `json:"cgroup_manager,omitempty"`
	AllowImages      []string `json:"allow_images,omitempty"` // digests (sha256:...)
	// AllowPrograms lists the SHA-256 digests (sha256:...) of the
	// programs (scripts) the Process executor may run for jobs and
	// training; empty refuses every program.
	AllowPrograms []string `json:"allow_programs,omitempty"`
	// Kubernetes.
	Namespace  string `json:"namespace,omitempty"`
	Kubeconfig string `json:"kubeconfig,omitempty"`
}

// New returns the executor cfg names.
func New(cfg Config) (Executor, error) { return nil, ErrNotImplemented }
