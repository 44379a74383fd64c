package executor

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// containerUID is the unprivileged user a container runs as (nobody).
const containerUID = 65534

// imageRef is an image reference by digest: a name, optionally tagged,
// then @sha256: and 64 hex digits.
var imageRef = regexp.MustCompile(`^[a-z0-9][a-z0-9._/:-]*@(sha256:[0-9a-f]{64})$`)

// ImageDigest returns the digest (sha256:...) of an image reference by
// digest, or an error for a reference by tag alone or a malformed one.
func ImageDigest(image string) (string, error) {
	m := imageRef.FindStringSubmatch(image)
	if m == nil {
		return "", fmt.Errorf("%w: the image must be referenced by digest (name@sha256:...)", ErrInvalid)
	}
	return m[1], nil
}

// allowedImage checks image against an allow-list of digests; entries
// may be written as sha256:... or as a whole name@sha256:... reference.
func allowedImage(image string, allow map[string]bool) (string, error) {
	d, err := ImageDigest(image)
	if err != nil {
		return "", err
	}
	if !allow[d] {
		return "", fmt.Errorf("%w: image %s", ErrNotAllowed, d)
	}
	return d, nil
}

func imageAllowSet(list []string) map[string]bool {
	m := map[string]bool{}
	for _, e := range list {
		e = strings.ToLower(strings.TrimSpace(e))
		if i := strings.LastIndexByte(e, '@'); i >= 0 {
			e = e[i+1:]
		}
		if e != "" {
			m[e] = true
		}
	}
	return m
}

// ContainerExecutor runs an OCI image by digest with Podman or the
// Docker CLI: no network, a read-only root, no capabilities,
// no_new_privileges, user 65534, limits on processes (pids cgroup),
// memory (no swap), CPUs and rlimits, the inputs read-only and the
// output folder at /out. The image must already be on the node (it is
// never pulled) and its digest on the allow-list.
type ContainerExecutor struct {
	cli           string
	podman        bool
	runtime       string
	cgroupManager string
	limits        Limits
	allow         map[string]bool
	maxLog        int
	// Tick is how often the watchdog samples the run (default 100 ms).
	Tick time.Duration
}

// NewContainer returns the container executor; cfg.ContainerCLI is
// "podman" (default), "docker" or a path to either.
func NewContainer(cfg Config) (*ContainerExecutor, error) {
	cli := cfg.ContainerCLI
	if cli == "" {
		cli = "podman"
	}
	path, err := exec.LookPath(cli)
	if err != nil {
		return nil, fmt.Errorf("%w: container CLI: %v", ErrUnavailable, err)
	}
	c := &ContainerExecutor{
		cli: path, podman: !strings.Contains(filepath.Base(path), "docker"),
		runtime: cfg.ContainerRuntime, cgroupManager: cfg.CgroupManager,
		limits: cfg.Limits, allow: imageAllowSet(cfg.AllowImages), maxLog: cfg.MaxLogBytes,
		Tick: 100 * time.Millisecond,
	}
	for _, v := range []string{c.runtime, c.cgroupManager} {
		if strings.ContainsAny(v, " \t\n\x00") || strings.HasPrefix(v, "-") {
			return nil, fmt.Errorf("%w: container runtime or cgroup manager %q", ErrInvalid, v)
		}
	}
	return c, nil
}

// Kind is Container.
func (c *ContainerExecutor) Kind() Kind { return Container }

// global are the CLI's options before its command.
func (c *ContainerExecutor) global() []string {
	var a []string
	if c.podman {
		if c.runtime != "" {
			a = append(a, "--runtime", c.runtime)
		}
		if c.cgroupManager != "" {
			a = append(a, "--cgroup-manager="+c.cgroupManager)
		}
	}
	return a
}

// RunArgs returns the CLI's arguments for one run (exported so the
// node's operators can see exactly what runs).
func (c *ContainerExecutor) RunArgs(spec Spec, lim Limits, name, cidfile string) ([]string, error) {
	f, err := LookupFlavor(spec.Flavor)
	if err != nil {
		return nil, err
	}
	if f.GPUs > 0 {
		return nil, fmt.Errorf("%w: the container executor has no GPUs (flavor %s)", ErrUnavailable, f.Name)
	}
	tmp := lim.DiskBytes
	if tmp > 256<<20 {
		tmp = 256 << 20
	}
	nproc := max(lim.Processes, 1024)
	a := append(c.global(), "run", "--rm", "--name", name, "--cidfile", cidfile,
		"--pull", "never", "--log-driver", "none",
		"--network", "none", "--read-only", "--cap-drop", "all",
		"--security-opt", "no-new-privileges",
		"--user", fmt.Sprintf("%d:%d", containerUID, containerUID),
		"--pids-limit", strconv.Itoa(lim.Processes),
		"--memory", strconv.FormatInt(lim.MemoryBytes, 10),
		"--memory-swap", strconv.FormatInt(lim.MemoryBytes, 10),
		"--cpus", strconv.FormatFloat(f.CPUs, 'f', -1, 64),
		"--ulimit", "nofile=1024:1024",
		"--ulimit", fmt.Sprintf("nproc=%d:%d", nproc, nproc),
		"--ulimit", fmt.Sprintf("cpu=%d:%d", lim.CPUSeconds, lim.CPUSeconds+2),
		"--ulimit", fmt.Sprintf("fsize=%d:%d", lim.DiskBytes, lim.DiskBytes),
		"--ulimit", "core=0:0",
		"--tmpfs", fmt.Sprintf("/tmp:rw,noexec,nosuid,size=%d,mode=1777", tmp),
		"--workdir", "/out",
		"--label", "mosaic.job="+sanitizeName(spec.Job),
	)
	if c.podman {
		a = append(a, "--passwd=false", "--no-hosts")
	}
	for _, m := range spec.Inputs {
		a = append(a, "-v", m.Host+":"+m.Target+":ro")
	}
	a = append(a, "-v", spec.Output+":/out:rw")
	env := map[string]string{"MOSAIC_OUTPUT": "/out", "MOSAIC_JOB": spec.Job}
	for k, v := range spec.Env {
		env[k] = v
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		a = append(a, "-e", k+"="+env[k])
	}
	a = append(a, spec.Image)
	return append(a, spec.Command...), nil
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

func sanitizeName(s string) string {
	s = unsafeName.ReplaceAllString(s, "-")
	if len(s) > 40 {
		s = s[:40]
	}
	return strings.Trim(s, "-.")
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Run runs spec.Image with spec.Command as the arguments of the image's
// entrypoint, and returns when the container is gone. An image not
// referenced by digest, or whose digest is not on the allow-list, is
// refused before anything runs.
func (c *ContainerExecutor) Run(ctx context.Context, spec Spec, log func(line string)) (Result, error) {
	if err := validate(spec, true, false); err != nil {
		return Result{}, err
	}
	if _, err := allowedImage(spec.Image, c.allow); err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{Killed: KilledCancelled, ExitCode: -1}, nil
	}
	lim := effective(c.limits, spec.Limits)
	dir, err := os.MkdirTemp("", "mosaic-container-")
	if err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer os.RemoveAll(dir)
	name := "mosaic-" + sanitizeName(spec.Job)
	name = strings.TrimSuffix(name, "-") + "-" + randomHex(6)
	cidfile := filepath.Join(dir, "cid")
	args, err := c.RunArgs(spec, lim, name, cidfile)
	if err != nil {
		return Result{}, err
	}
	if err := prepareOutput(spec.Output, containerUID); err != nil {
		return Result{}, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	cmd := exec.Command(c.cli, args...)
	cmd.Stdout, cmd.Stderr = outW, outW
	// Podman's monitor may leave a file ("oom" after an out-of-memory
	// kill) in its working folder: make that the folder around the
	// output, never the node's own, and never the output itself.
	cmd.Dir = filepath.Dir(spec.Output)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	err = cmd.Start()
	outW.Close()
	if err != nil {
		outR.Close()
		return Result{}, fmt.Errorf("%w: %s: %v", ErrUnavailable, filepath.Base(c.cli), err)
	}
	w := &watch{lim: lim, out: spec.Output}
	s := newSink(log, c.maxLog)
	var last string
	s.seen = func(l string) { w.line(l); last = l }
	pumped := make(chan struct{})
	go func() { s.pump(outR); close(pumped) }()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	cg := &containerCgroups{}
	killed := ""
	killing := false
	var forceAt <-chan time.Time
	kill := func(reason string) {
		if killed == "" {
			killed = reason
		}
		if killing {
			return
		}
		killing = true
		go c.remove(name)
		forceAt = time.After(15 * time.Second)
	}
	tick := c.Tick
	if tick <= 0 {
		tick = 100 * time.Millisecond
	}
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	wall := time.NewTimer(lim.WallClock)
	defer wall.Stop()
	ctxDone := ctx.Done()
	var waitErr error
loop:
	for {
		select {
		case waitErr = <-done:
			break loop
		case <-ctxDone:
			ctxDone = nil
			kill(KilledCancelled)
		case <-wall.C:
			kill(KilledTimeout)
		case <-forceAt:
			// The CLI did not return after the container was removed.
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		case <-ticker.C:
			if killing {
				continue
			}
			if !cg.found {
				cg.find(c, name, cidfile)
			}
			if reason := cg.sample(); reason != "" {
				kill(reason)
				continue
			}
			if used, n := diskUse(spec.Output, lim.DiskBytes); used >= lim.DiskBytes || n > maxOutputEntries {
				kill(KilledDisk)
			}
		}
	}
	select {
	case <-pumped:
	case <-time.After(5 * time.Second):
		outR.Close()
		<-pumped
	}
	outR.Close()
	if killing {
		c.remove(name)
	}
	res := Result{Duration: time.Since(start), ExitCode: exitCode(cmd.ProcessState, waitErr)}
	if _, err := os.Stat(cidfile); err != nil && killed == "" && res.ExitCode >= 125 && res.ExitCode <= 127 {
		// The CLI failed before a container existed (no such image, a
		// broken runtime): not a run.
		return res, fmt.Errorf("%w: %s could not start the container: %s", ErrUnavailable, filepath.Base(c.cli), last)
	}
	if killed == "" && cg.sample() == KilledMemory {
		killed = KilledMemory
	}
	if killed == "" && cg.oom {
		killed = KilledMemory
	}
	if killed == "" && cg.pidsMax {
		killed = KilledProcesses
	}
	if killed == "" && res.ExitCode == 128+int(syscall.SIGKILL) {
		// Nothing of the node killed it: the kernel's OOM killer did.
		killed = KilledMemory
	}
	res.Killed = w.classify(killed, res.ExitCode)
	return res, nil
}

// remove kills and removes the container.
func (c *ContainerExecutor) remove(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = exec.CommandContext(ctx, c.cli, append(c.global(), "rm", "--force", "--time", "0", name)...).Run()
}

// containerCgroups finds a running container's pids and memory cgroups
// (cgroup v1 or v2) to tell when it hit its process or memory limit.
type containerCgroups struct {
	found   bool
	tries   int
	pids    string // pids.events
	memory  string // memory.oom_control (v1) or memory.events (v2)
	pidsMax bool
	oom     bool
}

func (g *containerCgroups) find(c *ContainerExecutor, name, cidfile string) {
	if _, err := os.Stat(cidfile); err != nil || g.tries > 20 {
		return
	}
	g.tries++
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, c.cli, append(c.global(), "inspect", "--format", "{{.State.Pid}}", name)...).Output()
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || pid <= 0 {
		return
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, ctl := range strings.Split(parts[1], ",") {
			switch ctl {
			case "pids":
				g.pids = filepath.Join("/sys/fs/cgroup/pids", parts[2], "pids.events")
			case "memory":
				g.memory = filepath.Join("/sys/fs/cgroup/memory", parts[2], "memory.oom_control")
			case "":
				if parts[0] == "0" {
					base := filepath.Join("/sys/fs/cgroup", parts[2])
					if g.pids == "" {
						g.pids = filepath.Join(base, "pids.events")
					}
					if g.memory == "" {
						g.memory = filepath.Join(base, "memory.events")
					}
				}
			}
		}
	}
	g.found = true
}

// sample reads the cgroups' counters of refused forks and OOM kills.
func (g *containerCgroups) sample() string {
	if !g.found {
		return ""
	}
	if n := counter(g.pids, "max"); n > 0 {
		g.pidsMax = true
		return KilledProcesses
	}
	if n := counter(g.memory, "oom_kill"); n > 0 {
		g.oom = true
		return KilledMemory
	}
	return ""
}

// counter reads "key value" from a cgroup file, 0 when absent.
func counter(path, key string) int64 {
	if path == "" {
		return 0
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[0] == key {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}
