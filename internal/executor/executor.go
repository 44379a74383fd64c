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
	"fmt"
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
	// Flavor is jobman's resources flavor (no-gpu, small-gpu,
	// medium-gpu, large-gpu; "" is no-gpu): the CPUs of a container or
	// Kubernetes run and its GPUs. The Process and Container executors
	// have no GPUs and refuse a GPU flavor.
	Flavor string
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
	// SystemPaths are further host paths the Process executor shows
	// read-only at the same place (for example /etc/R for Rscript);
	// by default only /usr and its links (/bin, /sbin, /lib, /lib64)
	// are shown.
	SystemPaths []string `json:"system_paths,omitempty"`
	// MaxLogBytes bounds the output one run logs (default 1 MiB);
	// lines past it are dropped and one line says so.
	MaxLogBytes int `json:"max_log_bytes,omitempty"`
}

// Errors of Run and New beside a run's own failure (which is a Result
// with a non-zero ExitCode or a Killed reason, not an error).
var (
	// ErrInvalid marks a malformed spec or configuration.
	ErrInvalid = errors.New("executor: invalid")
	// ErrNotAllowed marks a program or image that is not on the node's
	// allow-list (an empty allow-list refuses everything).
	ErrNotAllowed = errors.New("executor: not on the node's allow-list")
	// ErrUnavailable marks an executor whose tool (bwrap, podman, the
	// cluster) is missing or failed before the run started.
	ErrUnavailable = errors.New("executor: unavailable")
)

// Reasons a run was stopped, as Result.Killed holds them.
const (
	KilledCPU       = "cpu"
	KilledMemory    = "memory"
	KilledDisk      = "disk"
	KilledProcesses = "processes"
	KilledTimeout   = "timeout"
	KilledCancelled = "cancelled"
)

// DefaultLimits are the limits of a node that sets none.
var DefaultLimits = Limits{
	CPUSeconds:  3600,
	MemoryBytes: 4 << 30,
	DiskBytes:   1 << 30,
	Processes:   64,
	WallClock:   2 * time.Hour,
}

// effective returns the limits of one run: the spec's, each bounded by
// the node's (a zero field takes the node's value), whose own zero fields
// take DefaultLimits.
func effective(node, spec Limits) Limits {
	n := node
	if n.CPUSeconds <= 0 {
		n.CPUSeconds = DefaultLimits.CPUSeconds
	}
	if n.MemoryBytes <= 0 {
		n.MemoryBytes = DefaultLimits.MemoryBytes
	}
	if n.DiskBytes <= 0 {
		n.DiskBytes = DefaultLimits.DiskBytes
	}
	if n.Processes <= 0 {
		n.Processes = DefaultLimits.Processes
	}
	if n.WallClock <= 0 {
		n.WallClock = DefaultLimits.WallClock
	}
	out := n
	if spec.CPUSeconds > 0 && spec.CPUSeconds < n.CPUSeconds {
		out.CPUSeconds = spec.CPUSeconds
	}
	if spec.MemoryBytes > 0 && spec.MemoryBytes < n.MemoryBytes {
		out.MemoryBytes = spec.MemoryBytes
	}
	if spec.DiskBytes > 0 && spec.DiskBytes < n.DiskBytes {
		out.DiskBytes = spec.DiskBytes
	}
	if spec.Processes > 0 && spec.Processes < n.Processes {
		out.Processes = spec.Processes
	}
	if spec.WallClock > 0 && spec.WallClock < n.WallClock {
		out.WallClock = spec.WallClock
	}
	return out
}

// New returns the executor cfg names. The Kubernetes executor builds its
// client from cfg.Kubeconfig, or from the cluster it runs in when that is
// empty; NewKubernetes takes a ready client instead.
func New(cfg Config) (Executor, error) {
	switch cfg.Kind {
	case Builtin:
		return NewBuiltin(cfg), nil
	case Process:
		e, err := NewProcess(cfg)
		if err != nil {
			return nil, err
		}
		return e, nil
	case Container:
		e, err := NewContainer(cfg)
		if err != nil {
			return nil, err
		}
		return e, nil
	case Kubernetes:
		return newKubernetesFromConfig(cfg)
	case "":
		return nil, fmt.Errorf("%w: no executor configured", ErrInvalid)
	default:
		return nil, fmt.Errorf("%w: unknown executor %q", ErrInvalid, cfg.Kind)
	}
}
