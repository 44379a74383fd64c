package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The sandbox's user: each run gets a host uid of its own from this
// range (never 0, never a login user's), so RLIMIT_NPROC counts only
// that run's processes and the run's files are its own.
const (
	sandboxUIDBase  = 2_000_000
	sandboxUIDRange = 1_000_000
)

var (
	uidMu    sync.Mutex
	uidInUse = map[int]bool{}
)

func takeUID() int {
	uidMu.Lock()
	defer uidMu.Unlock()
	for {
		u := sandboxUIDBase + rand.IntN(sandboxUIDRange)
		if !uidInUse[u] {
			uidInUse[u] = true
			return u
		}
	}
}

func releaseUID(u int) {
	uidMu.Lock()
	defer uidMu.Unlock()
	delete(uidInUse, u)
}

// ProcessExecutor runs a program in a bubblewrap sandbox: new pid, net,
// ipc, uts and cgroup namespaces (so no network at all), a fresh /proc,
// a minimal /dev, read-only /usr (and /bin, /sbin, /lib, /lib64 as on the
// host), the spec's inputs read-only, its output folder writable at /out,
// a private /tmp, and nothing else of the host. The program runs as an
// unprivileged uid of its own, with no capabilities and no_new_privs,
// under setrlimit limits (CPU, address space, file size, processes, open
// files) set by setpriv and prlimit from util-linux, and a watchdog
// stops it at its wall clock, its output folder's size, its processes,
// its summed CPU time and resident memory.
type ProcessExecutor struct {
	bwrap   string
	setpriv string
	prlimit string
	limits  Limits
	allow   map[string]bool
	system  []string
	maxLog  int
	// Tick is how often the watchdog samples the run (default 50 ms).
	Tick time.Duration
	// onUID, when set, learns each run's uid (for tests).
	onUID func(int)
}

// NewProcess returns the bubblewrap executor; it fails when bwrap,
// setpriv or prlimit is missing.
func NewProcess(cfg Config) (*ProcessExecutor, error) {
	bw := cfg.Bwrap
	if bw == "" {
		bw = "bwrap"
	}
	p := &ProcessExecutor{limits: cfg.Limits, allow: digestSet(cfg.AllowPrograms), maxLog: cfg.MaxLogBytes, Tick: 50 * time.Millisecond}
	var err error
	if p.bwrap, err = exec.LookPath(bw); err != nil {
		return nil, fmt.Errorf("%w: bubblewrap: %v", ErrUnavailable, err)
	}
	for _, t := range []struct {
		name string
		dst  *string
	}{{"setpriv", &p.setpriv}, {"prlimit", &p.prlimit}} {
		path, err := exec.LookPath(t.name)
		if err == nil {
			path, err = filepath.EvalSymlinks(path)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s (util-linux): %v", ErrUnavailable, t.name, err)
		}
		if !strings.HasPrefix(path, "/usr/") {
			return nil, fmt.Errorf("%w: %s must be under /usr to be seen in the sandbox", ErrUnavailable, t.name)
		}
		*t.dst = path
	}
	for _, sp := range cfg.SystemPaths {
		c := filepath.Clean(sp)
		if !filepath.IsAbs(sp) || c == "/" || strings.ContainsAny(c, ",:\x00") {
			return nil, fmt.Errorf("%w: system path %q", ErrInvalid, sp)
		}
		for _, r := range []string{"/out", "/tmp", "/proc", "/dev", "/root", "/home", "/etc/shadow"} {
			if c == r || strings.HasPrefix(c, r+"/") {
				return nil, fmt.Errorf("%w: system path %q may not be shown", ErrInvalid, sp)
			}
		}
		p.system = append(p.system, c)
	}
	return p, nil
}

// defaultSystemPaths are shown in every sandbox, read-only: the
// dynamic linker's cache and Debian's alternatives, through which shared
// libraries such as BLAS are found. Neither holds anything of the host's
// users or secrets; the rest of /etc stays hidden.
var defaultSystemPaths = []string{"/etc/ld.so.cache", "/etc/alternatives"}

// Kind is Process.
func (p *ProcessExecutor) Kind() Kind { return Process }

// args builds bwrap's command line.
func (p *ProcessExecutor) args(spec Spec, lim Limits, uid int) []string {
	a := []string{
		"--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
		"--die-with-parent", "--new-session", "--hostname", "mosaic-job",
		"--ro-bind", "/usr", "/usr",
	}
	for _, d := range []string{"/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"} {
		fi, err := os.Lstat(d)
		if err != nil {
			continue
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if t, err := os.Readlink(d); err == nil {
				a = append(a, "--symlink", t, d)
			}
		} else if fi.IsDir() {
			a = append(a, "--ro-bind", d, d)
		}
	}
	made := map[string]bool{}
	// bwrap makes missing parents of a target readable by root only:
	// make them open to the sandbox's user first.
	openParents := func(target string) {
		var parents []string
		for d := filepath.Dir(target); d != "/" && !made[d]; d = filepath.Dir(d) {
			parents = append(parents, d)
			made[d] = true
		}
		for i := len(parents) - 1; i >= 0; i-- {
			a = append(a, "--perms", "0755", "--dir", parents[i])
		}
	}
	for _, sp := range append(slices.Clone(defaultSystemPaths), p.system...) {
		openParents(sp)
		a = append(a, "--ro-bind-try", sp, sp)
	}
	tmp := lim.DiskBytes
	if tmp > 256<<20 {
		tmp = 256 << 20
	}
	a = append(a, "--proc", "/proc", "--dev", "/dev",
		"--perms", "1777", "--size", strconv.FormatInt(tmp, 10), "--tmpfs", "/tmp")
	for _, m := range spec.Inputs {
		openParents(m.Target)
		a = append(a, "--ro-bind", m.Host, m.Target)
	}
	a = append(a, "--bind", spec.Output, "/out", "--remount-ro", "/", "--chdir", "/out", "--clearenv")
	env := map[string]string{
		"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp",
		"LANG": "C.UTF-8", "MOSAIC_OUTPUT": "/out", "MOSAIC_JOB": spec.Job,
	}
	for k, v := range spec.Env {
		env[k] = v
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		a = append(a, "--setenv", k, env[k])
	}
	u := strconv.Itoa(uid)
	a = append(a, "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP",
		"--info-fd", "3", "--",
		p.setpriv, "--reuid", u, "--regid", u, "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
		p.prlimit,
		fmt.Sprintf("--cpu=%d:%d", lim.CPUSeconds, lim.CPUSeconds+2),
		fmt.Sprintf("--as=%d", lim.MemoryBytes),
		fmt.Sprintf("--fsize=%d", lim.DiskBytes),
		fmt.Sprintf("--nproc=%d", lim.Processes),
		"--nofile=1024", "--core=0", "--")
	return append(a, spec.Command...)
}

// prepareOutput makes the output folder (a real folder, not a link)
// belong to the run's uid.
func prepareOutput(dir string, uid int) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%w: output folder: %v", ErrInvalid, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("%w: output folder: %v", ErrInvalid, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: the output folder is not a folder", ErrInvalid)
	}
	if err := os.Chown(dir, uid, uid); err != nil {
		return fmt.Errorf("%w: output folder: %v", ErrUnavailable, err)
	}
	return os.Chmod(dir, 0o700)
}

// Run runs spec in the sandbox and returns when every process of it has
// ended. A program not on the allow-list is refused (ErrNotAllowed)
// before anything runs.
func (p *ProcessExecutor) Run(ctx context.Context, spec Spec, log func(line string)) (Result, error) {
	if err := validate(spec, true, true); err != nil {
		return Result{}, err
	}
	if f, err := LookupFlavor(spec.Flavor); err != nil {
		return Result{}, err
	} else if f.GPUs > 0 {
		return Result{}, fmt.Errorf("%w: the process executor has no GPUs (flavor %s)", ErrUnavailable, f.Name)
	}
	prog, err := Program(spec)
	if err != nil {
		return Result{}, err
	}
	d, err := FileDigest(prog)
	if err != nil {
		return Result{}, fmt.Errorf("%w: the program cannot be read: %v", ErrInvalid, err)
	}
	if !p.allow[d] {
		return Result{}, fmt.Errorf("%w: program %s (%s)", ErrNotAllowed, filepath.Base(prog), d)
	}
	if err := ctx.Err(); err != nil {
		return Result{Killed: KilledCancelled, ExitCode: -1}, nil
	}
	lim := effective(p.limits, spec.Limits)
	uid := takeUID()
	defer releaseUID(uid)
	if p.onUID != nil {
		p.onUID(uid)
	}
	if err := prepareOutput(spec.Output, uid); err != nil {
		return Result{}, err
	}

	infoR, infoW, err := os.Pipe()
	if err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		infoR.Close()
		infoW.Close()
		return Result{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	cmd := exec.Command(p.bwrap, p.args(spec, lim, uid)...)
	cmd.Env = []string{}
	cmd.Stdout, cmd.Stderr = outW, outW
	cmd.ExtraFiles = []*os.File{infoW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	err = cmd.Start()
	outW.Close()
	infoW.Close()
	if err != nil {
		outR.Close()
		infoR.Close()
		return Result{}, fmt.Errorf("%w: bubblewrap: %v", ErrUnavailable, err)
	}

	w := &watch{uid: uid, lim: lim, out: spec.Output}
	s := newSink(log, p.maxLog)
	s.seen = w.line
	pumped := make(chan struct{})
	go func() { s.pump(outR); close(pumped) }()
	child := make(chan int, 1)
	go func() {
		var info struct {
			ChildPid int `json:"child-pid"`
		}
		_ = json.NewDecoder(infoR).Decode(&info)
		infoR.Close()
		child <- info.ChildPid
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	childPid := 0
	killed := ""
	kill := func(reason string) {
		if killed == "" {
			killed = reason
		}
		if childPid > 0 {
			_ = syscall.Kill(childPid, syscall.SIGKILL)
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		w.killAll()
	}
	tick := p.Tick
	if tick <= 0 {
		tick = 50 * time.Millisecond
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
		case pid := <-child:
			childPid = pid
			if killed != "" {
				kill(killed)
			}
		case <-ctxDone:
			ctxDone = nil
			kill(KilledCancelled)
		case <-wall.C:
			kill(KilledTimeout)
		case <-ticker.C:
			if killed != "" {
				kill(killed)
				continue
			}
			if reason := w.sample(); reason != "" {
				kill(reason)
			}
		}
	}
	// Whatever of the run is left (nothing, once the namespace's first
	// process has gone) is ended before Run returns.
	w.killAll()
	select {
	case <-pumped:
	case <-time.After(2 * time.Second):
		outR.Close()
		<-pumped
	}
	outR.Close()
	res := Result{Duration: time.Since(start), ExitCode: exitCode(cmd.ProcessState, waitErr)}
	if childPid == 0 && killed == "" {
		select {
		case childPid = <-child:
		case <-time.After(time.Second):
		}
		if childPid == 0 {
			// bubblewrap failed before the sandbox existed.
			return res, fmt.Errorf("%w: bubblewrap could not set up the sandbox: %s", ErrUnavailable, w.lastLine())
		}
	}
	res.Killed = w.classify(killed, res.ExitCode)
	return res, nil
}

// exitCode is the run's exit code, 128+signal for a signal, as a shell
// reports it.
func exitCode(ps *os.ProcessState, err error) int {
	if ps == nil {
		return -1
	}
	if st, ok := ps.Sys().(syscall.WaitStatus); ok && st.Signaled() {
		return 128 + int(st.Signal())
	}
	return ps.ExitCode()
}
