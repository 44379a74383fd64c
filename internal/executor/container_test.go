package executor

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

const probeName = "localhost/mosaic-executor-probe"

var (
	probeOnce   sync.Once
	probeDigest string
	probeErr    error
)

// probeImage builds testdata/probe as a static binary into a FROM
// scratch image with podman and returns its reference by digest.
func probeImage(t *testing.T) string {
	t.Helper()
	needTool(t, "/usr/bin/podman")
	needTool(t, "/usr/sbin/runc")
	probeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mosaic-probe-")
		if err != nil {
			probeErr = err
			return
		}
		defer os.RemoveAll(dir)
		gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
		build := exec.Command(gobin, "build", "-o", filepath.Join(dir, "probe"), "./testdata/probe")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			probeErr = errors.New("go build: " + err.Error() + ": " + string(out))
			return
		}
		cf := "FROM scratch\nCOPY probe /probe\nENTRYPOINT [\"/probe\"]\n"
		if err := os.WriteFile(filepath.Join(dir, "Containerfile"), []byte(cf), 0o644); err != nil {
			probeErr = err
			return
		}
		pb := exec.Command("podman", "--runtime", "runc", "--cgroup-manager=cgroupfs", "build", "-q", "-t", probeName+":test", dir)
		if out, err := pb.CombinedOutput(); err != nil {
			probeErr = errors.New("podman build: " + err.Error() + ": " + string(out))
			return
		}
		out, err := exec.Command("podman", "image", "inspect", "--format", "{{.Digest}}", probeName+":test").Output()
		if err != nil {
			probeErr = err
			return
		}
		probeDigest = strings.TrimSpace(string(out))
	})
	if probeErr != nil {
		t.Fatalf("building the probe image: %v", probeErr)
	}
	return probeName + "@" + probeDigest
}

func containerExecutor(t *testing.T, allow []string, lim Limits) *ContainerExecutor {
	t.Helper()
	e, err := New(Config{Kind: Container, ContainerRuntime: "runc", CgroupManager: "cgroupfs", AllowImages: allow, Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	return e.(*ContainerExecutor)
}

func runProbe(t *testing.T, e *ContainerExecutor, ctx context.Context, spec Spec) (Result, string) {
	t.Helper()
	var mu sync.Mutex
	var lines []string
	res, err := e.Run(ctx, spec, func(l string) {
		mu.Lock()
		lines = append(lines, l)
		mu.Unlock()
	})
	if err != nil {
		t.Fatalf("run %v: %v", spec.Command, err)
	}
	mu.Lock()
	defer mu.Unlock()
	return res, strings.Join(lines, "\n")
}

// hostAddrs are the host's addresses a container might try to reach.
func hostAddrs() []string {
	out := []string{"127.0.0.1"}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ip, ok := a.(*net.IPNet); ok && ip.IP.To4() != nil && !ip.IP.IsLoopback() {
			out = append(out, ip.IP.String())
		}
	}
	return out
}

func TestContainerSandbox(t *testing.T) {
	t.Parallel()
	image := probeImage(t)
	digest, _ := ImageDigest(image)
	e := containerExecutor(t, []string{digest}, Limits{WallClock: time.Minute})
	in := filepath.Join(t.TempDir(), "in")
	if err := os.MkdirAll(in, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, "table.csv"), []byte("a\n1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	spec := func(args ...string) Spec {
		return Spec{Job: "job/1", Image: image, Command: args, Inputs: []Mount{{Host: in, Target: "/data"}}, Output: out,
			Env: map[string]string{"GREETING": "hi"}}
	}
	ctx := context.Background()

	res, text := runProbe(t, e, ctx, spec("write"))
	if res.ExitCode != 0 || res.Killed != "" || !strings.Contains(text, "uid 65534 env hi") || !strings.Contains(text, "root filesystem read-only") {
		t.Fatalf("write: %+v\n%s", res, text)
	}
	if b, err := os.ReadFile(filepath.Join(out, "hello.txt")); err != nil || !strings.Contains(string(b), "hello") {
		t.Fatalf("the output was not written: %q %v", b, err)
	}

	h := newHostListener(t)
	actions := []string{"read=/data/table.csv"}
	denied := []string{"/etc/passwd", "/etc/shadow", "/root/.bashrc", filepath.Join(in, "table.csv")}
	for _, p := range denied {
		actions = append(actions, "read="+p)
	}
	addrs := []string{h.ln.Addr().String()}
	for _, a := range hostAddrs()[1:] {
		// A second listener answers on the host's other addresses.
		ln, err := net.Listen("tcp", net.JoinHostPort(a, "0"))
		if err != nil {
			continue
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				t.Errorf("the container reached the host at %s", ln.Addr())
				c.Close()
			}
		}()
		addrs = append(addrs, ln.Addr().String())
	}
	for _, a := range addrs {
		actions = append(actions, "net="+a)
	}
	res, text = runProbe(t, e, ctx, spec(actions...))
	if !strings.Contains(text, "READ /data/table.csv 4 bytes") {
		t.Fatalf("input not readable: %+v %s", res, text)
	}
	for _, p := range denied {
		if !strings.Contains(text, "cannot read "+p) {
			t.Errorf("read %s: %s", p, text)
		}
	}
	for _, a := range addrs {
		if !strings.Contains(text, "no network to "+a) {
			t.Errorf("net %s: %s", a, text)
		}
	}
	if strings.Contains(text, "CONNECTED") || strings.Count(text, "READ") != 1 {
		t.Fatalf("the container got out:\n%s", text)
	}
	if h.count() != 0 {
		t.Fatal("the container reached the host's listener")
	}
	h.answers(t)
}

func TestContainerLimits(t *testing.T) {
	t.Parallel()
	image := probeImage(t)
	digest, _ := ImageDigest(image)
	ctx := context.Background()
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		e := containerExecutor(t, []string{digest}, Limits{MemoryBytes: 64 << 20, WallClock: 30 * time.Second})
		res, text := runProbe(t, e, ctx, Spec{Job: "mem", Image: image, Command: []string{"mem"}, Output: filepath.Join(t.TempDir(), "out")})
		if res.Killed != KilledMemory {
			t.Fatalf("memory: %+v\n%s", res, text)
		}
	})
	t.Run("processes", func(t *testing.T) {
		t.Parallel()
		e := containerExecutor(t, []string{digest}, Limits{Processes: 16, WallClock: 30 * time.Second})
		start := time.Now()
		res, text := runProbe(t, e, ctx, Spec{Job: "pids", Image: image, Command: []string{"pids"}, Output: filepath.Join(t.TempDir(), "out")})
		if res.Killed != KilledProcesses || time.Since(start) > 20*time.Second {
			t.Fatalf("processes: %+v after %v\n%s", res, time.Since(start), text)
		}
	})
	t.Run("wall-clock", func(t *testing.T) {
		t.Parallel()
		e := containerExecutor(t, []string{digest}, Limits{WallClock: 2 * time.Second})
		res, _ := runProbe(t, e, ctx, Spec{Job: "sleep", Image: image, Command: []string{"sleep"}, Output: filepath.Join(t.TempDir(), "out")})
		if res.Killed != KilledTimeout {
			t.Fatalf("wall clock: %+v", res)
		}
		noContainerLeft(t, "mosaic-sleep")
	})
	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		e := containerExecutor(t, []string{digest}, Limits{WallClock: time.Minute})
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(2*time.Second, cancel)
		res, _ := runProbe(t, e, cctx, Spec{Job: "cancel-me", Image: image, Command: []string{"sleep"}, Output: filepath.Join(t.TempDir(), "out")})
		if res.Killed != KilledCancelled {
			t.Fatalf("cancel: %+v", res)
		}
		noContainerLeft(t, "mosaic-cancel-me")
	})
}

// noContainerLeft fails when a container whose name starts with prefix
// still exists.
func noContainerLeft(t *testing.T, prefix string) {
	t.Helper()
	left, err := exec.Command("podman", "ps", "-a", "--filter", "label=mosaic.job", "--format", "{{.Names}}").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range strings.Fields(string(left)) {
		if strings.HasPrefix(n, prefix) {
			t.Fatalf("container %s is left after its run", n)
		}
	}
}

func TestContainerAllowList(t *testing.T) {
	out := t.TempDir()
	good := "localhost/x@sha256:" + strings.Repeat("a", 64)
	other := "localhost/x@sha256:" + strings.Repeat("b", 64)
	e := &ContainerExecutor{cli: "/nonexistent/podman", podman: true, allow: imageAllowSet([]string{"sha256:" + strings.Repeat("A", 64)})}
	for _, c := range []struct {
		image string
		want  error
	}{
		{other, ErrNotAllowed},
		{"localhost/x:latest", ErrInvalid},
		{"localhost/x@sha256:abc", ErrInvalid},
		{"--privileged@sha256:" + strings.Repeat("a", 64), ErrInvalid},
	} {
		if _, err := e.Run(context.Background(), Spec{Image: c.image, Output: out}, nil); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.image, err, c.want)
		}
	}
	// The allowed digest passes the check and then fails only because
	// this executor's CLI does not exist.
	if _, err := e.Run(context.Background(), Spec{Image: good, Output: out}, nil); !errors.Is(err, ErrUnavailable) {
		t.Errorf("allowed image: %v", err)
	}
	// An empty allow-list refuses everything.
	e.allow = imageAllowSet(nil)
	if _, err := e.Run(context.Background(), Spec{Image: good, Output: out}, nil); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("empty allow-list: %v", err)
	}
	// A real image missing from the allow-list is refused before it runs.
	if _, err := exec.LookPath("podman"); err == nil || os.Getenv("CI") != "" {
		image := probeImage(t)
		ce := containerExecutor(t, []string{"sha256:" + strings.Repeat("c", 64)}, Limits{})
		if _, err := ce.Run(context.Background(), Spec{Image: image, Command: []string{"write"}, Output: filepath.Join(out, "o")}, nil); !errors.Is(err, ErrNotAllowed) {
			t.Fatalf("probe not on the list: %v", err)
		}
		if _, err := os.Stat(filepath.Join(out, "o", "hello.txt")); err == nil {
			t.Fatal("a refused image ran")
		}
	}
}
