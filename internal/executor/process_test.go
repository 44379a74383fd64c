package executor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// needTool skips a test when a tool is missing, except under CI, where
// it fails.
func needTool(t testing.TB, name string) {
	t.Helper()
	if _, err := os.Stat(name); err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is missing (scripts/test-deps.sh installs it)", name)
	}
	t.Skipf("%s is not installed", name)
}

// sandbox is one run's setup: a program folder shown at /prog, an output
// folder, and an executor allowing the programs written.
type sandbox struct {
	t      testing.TB
	prog   string
	out    string
	allow  []string
	limits Limits
	extra  []Mount
	mu     sync.Mutex
	uids   []int
}

func newSandbox(t testing.TB) *sandbox {
	needTool(t, "/usr/bin/bwrap")
	root := t.TempDir()
	sb := &sandbox{t: t, prog: filepath.Join(root, "prog"), out: filepath.Join(root, "out")}
	if err := os.Mkdir(sb.prog, 0o755); err != nil {
		t.Fatal(err)
	}
	return sb
}

// script writes an allowed program and returns its path in the sandbox.
func (sb *sandbox) script(name, body string) string {
	sb.t.Helper()
	host := filepath.Join(sb.prog, name)
	if err := os.WriteFile(host, []byte(body), 0o644); err != nil {
		sb.t.Fatal(err)
	}
	d, err := FileDigest(host)
	if err != nil {
		sb.t.Fatal(err)
	}
	sb.allow = append(sb.allow, d)
	return "/prog/" + name
}

func (sb *sandbox) executor() *ProcessExecutor {
	sb.t.Helper()
	e, err := New(Config{Kind: Process, AllowPrograms: sb.allow, Limits: sb.limits})
	if err != nil {
		sb.t.Fatal(err)
	}
	pe := e.(*ProcessExecutor)
	pe.onUID = func(u int) {
		sb.mu.Lock()
		sb.uids = append(sb.uids, u)
		sb.mu.Unlock()
	}
	return pe
}

func (sb *sandbox) spec(cmd ...string) Spec {
	return Spec{Job: "job-1", Command: cmd, Inputs: append([]Mount{{Host: sb.prog, Target: "/prog"}}, sb.extra...), Output: sb.out}
}

// run runs cmd and collects its lines.
func (sb *sandbox) run(ctx context.Context, cmd ...string) (Result, []string) {
	sb.t.Helper()
	var mu sync.Mutex
	var lines []string
	res, err := sb.executor().Run(ctx, sb.spec(cmd...), func(l string) {
		mu.Lock()
		lines = append(lines, l)
		mu.Unlock()
	})
	if err != nil {
		sb.t.Fatalf("run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return res, append([]string(nil), lines...)
}

// noSandboxLeft fails when any process of the sandbox's runs is alive.
func (sb *sandbox) noSandboxLeft(t testing.TB) {
	t.Helper()
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if len(sb.uids) == 0 {
		t.Fatal("no run was seen")
	}
	mine := map[uint32]bool{}
	for _, u := range sb.uids {
		mine[uint32(u)] = true
	}
	names, _ := filepath.Glob("/proc/[0-9]*")
	for _, n := range names {
		var st syscall.Stat_t
		if syscall.Stat(n, &st) == nil && mine[st.Uid] {
			comm, _ := os.ReadFile(n + "/comm")
			t.Errorf("process %s (%s) of sandbox uid %d is still alive", n, strings.TrimSpace(string(comm)), st.Uid)
		}
	}
}

// hostListener is a TCP server on the host's loopback that counts the
// connections it accepts; it proves the host keeps serving.
type hostListener struct {
	ln       net.Listener
	mu       sync.Mutex
	accepted int
}

func newHostListener(t testing.TB) *hostListener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hostListener{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.accepted++
			h.mu.Unlock()
			_, _ = c.Write([]byte("hello\n"))
			c.Close()
		}
	}()
	return h
}

func (h *hostListener) port() int { return h.ln.Addr().(*net.TCPAddr).Port }

func (h *hostListener) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.accepted
}

// answers checks the listener still answers the host.
func (h *hostListener) answers(t testing.TB) {
	t.Helper()
	c, err := net.DialTimeout("tcp", h.ln.Addr().String(), 2*time.Second)
	if err != nil {
		t.Fatalf("the host's listener no longer answers: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	l, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || l != "hello\n" {
		t.Fatalf("the host's listener answered %q, %v", l, err)
	}
}

func TestProcessRunsAndWritesOutput(t *testing.T) {
	sb := newSandbox(t)
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "t.csv"), []byte("a,b\n1,2\n3,4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sb.extra = []Mount{{Host: data, Target: "/data/tables"}}
	p := sb.script("ok.sh", `set -e
echo "rows $(wc -l < /data/tables/t.csv)"
echo "to stderr" >&2
id -u > /out/uid
echo "$MOSAIC_JOB $GREETING" > /out/result.txt
printf 'no newline at end'
`)
	e := sb.executor()
	spec := sb.spec("/bin/sh", p)
	spec.Env = map[string]string{"GREETING": "hi"}
	var lines []string
	res, err := e.Run(context.Background(), spec, func(l string) { lines = append(lines, l) })
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 || res.Killed != "" {
		t.Fatalf("result %+v, lines %q", res, lines)
	}
	want := map[string]bool{"rows 3": false, "to stderr": false, "no newline at end": false}
	for _, l := range lines {
		if _, ok := want[l]; ok {
			want[l] = true
		}
	}
	for l, seen := range want {
		if !seen {
			t.Errorf("line %q not logged; got %q", l, lines)
		}
	}
	b, err := os.ReadFile(filepath.Join(sb.out, "result.txt"))
	if err != nil || string(b) != "job-1 hi\n" {
		t.Fatalf("output %q, %v", b, err)
	}
	u, _ := os.ReadFile(filepath.Join(sb.out, "uid"))
	uid, _ := strconv.Atoi(strings.TrimSpace(string(u)))
	if uid < sandboxUIDBase {
		t.Fatalf("the program ran as uid %d, not a sandbox uid", uid)
	}
	sb.noSandboxLeft(t)
}

func TestProcessRefusesProgramsNotAllowed(t *testing.T) {
	sb := newSandbox(t)
	p := sb.script("a.sh", "echo a\n")
	// A changed script no longer has the approved digest.
	if err := os.WriteFile(filepath.Join(sb.prog, "a.sh"), []byte("echo changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := sb.executor()
	if _, err := e.Run(context.Background(), sb.spec("/bin/sh", p), nil); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("changed script: err %v, want ErrNotAllowed", err)
	}
	// A system shell with an inline command is its own program: refused
	// unless the shell itself is approved.
	if _, err := e.Run(context.Background(), sb.spec("/bin/sh", "-c", "echo hi"), nil); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("sh -c: err %v, want ErrNotAllowed", err)
	}
	// An empty allow-list refuses everything.
	sb.allow = nil
	sb.script("b.sh", "echo b\n")
	e0, err := New(Config{Kind: Process})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e0.Run(context.Background(), sb.spec("/bin/sh", "/prog/b.sh"), nil); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("empty allow-list: err %v", err)
	}
	for _, bad := range []Spec{
		{Command: nil, Output: sb.out},
		{Command: []string{"/bin/sh", p}, Output: "relative"},
		{Command: []string{"/bin/sh", p}, Output: sb.out, Inputs: []Mount{{Host: sb.prog, Target: "/usr"}}},
		{Command: []string{"/bin/sh", p}, Output: sb.out, Inputs: []Mount{{Host: sb.prog, Target: "/out/x"}}},
		{Command: []string{"/bin/sh", p}, Output: sb.out, Inputs: []Mount{{Host: "/nonexistent/x", Target: "/in"}}},
		{Command: []string{"/bin/sh", p}, Output: sb.out, Env: map[string]string{"A=B": "x"}},
	} {
		if _, err := e.Run(context.Background(), bad, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("spec %+v: err %v, want ErrInvalid", bad, err)
		}
	}
}

func TestProcessHasNoNetwork(t *testing.T) {
	sb := newSandbox(t)
	h := newHostListener(t)
	p := sb.script("net.py", fmt.Sprintf(`import socket
for host in ("127.0.0.1", "10.0.2.2", "8.8.8.8"):
    try:
        s = socket.create_connection((host, %d), timeout=2)
        print("CONNECTED", host)
    except OSError as e:
        print("refused", host, type(e).__name__)
try:
    print("LOOKUP", socket.gethostbyname("example.org"))
except OSError:
    print("no name lookup")
import os
print("interfaces", sorted(os.listdir("/sys/class/net")) if os.path.exists("/sys/class/net") else "none")
`, h.port()))
	res, lines := sb.run(context.Background(), "/usr/bin/python3", p)
	out := strings.Join(lines, "\n")
	if strings.Contains(out, "CONNECTED") || strings.Contains(out, "LOOKUP") {
		t.Fatalf("the sandbox reached the network: %s", out)
	}
	if strings.Count(out, "refused") != 3 || res.ExitCode != 0 {
		t.Fatalf("result %+v, output %s", res, out)
	}
	if h.count() != 0 {
		t.Fatalf("the host listener accepted %d connections from the sandbox", h.count())
	}
	h.answers(t)
}

func TestProcessSeesOnlyItsFiles(t *testing.T) {
	sb := newSandbox(t)
	// The node's data folder and another job's folder, readable by
	// anyone on the host: only the sandbox hides them.
	nodeData := filepath.Join(t.TempDir(), "node-data")
	other := filepath.Join(t.TempDir(), "job-2-out")
	for _, d := range []string{nodeData, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "secret.txt"), []byte("secret\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{filepath.Dir(nodeData), filepath.Dir(other)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The test's own source folder: a host folder anyone may read,
	// which the sandbox must not show.
	src, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{"/etc/shadow", "/etc/passwd", "/root/.bashrc", "/home", src, filepath.Join(nodeData, "secret.txt"),
		filepath.Join(other, "secret.txt"), "/proc/1/root/etc/shadow", "/sys/kernel", "/tmp/" + filepath.Base(filepath.Dir(nodeData))}
	var checks strings.Builder
	for _, p := range paths {
		fmt.Fprintf(&checks, "check(%q)\n", p)
	}
	p := sb.script("files.py", `import os
def check(p):
    try:
        if os.path.isdir(p):
            print("LEAK", p, len(os.listdir(p)))
        else:
            with open(p) as f:
                f.read(1)
            print("LEAK", p)
    except OSError as e:
        print("denied", p)
def write(p):
    try:
        with open(p, "w") as f:
            f.write("x")
        print("WROTE", p)
    except OSError:
        print("not written", p)
`+checks.String()+`
for p in ("/prog/new.txt", "/usr/new.txt", "/new.txt", "/etc/new.txt", "/proc/new.txt", "/dev/new.txt"):
    write(p)
with open("/tmp/scratch", "w") as f:
    f.write("ok")
with open("/out/ok.txt", "w") as f:
    f.write("ok")
print("done")
`)
	res, lines := sb.run(context.Background(), "/usr/bin/python3", p)
	out := strings.Join(lines, "\n")
	if strings.Contains(out, "LEAK") || strings.Contains(out, "WROTE") {
		t.Fatalf("the sandbox reached host files:\n%s", out)
	}
	if strings.Count(out, "denied") != len(paths) || strings.Count(out, "not written") != 6 || !strings.Contains(out, "done") || res.ExitCode != 0 {
		t.Fatalf("result %+v, output:\n%s", res, out)
	}
	if _, err := os.Stat(filepath.Join(sb.prog, "new.txt")); err == nil {
		t.Fatal("the sandbox wrote into an input")
	}
	if _, err := os.Stat(filepath.Join(sb.out, "ok.txt")); err != nil {
		t.Fatalf("the sandbox could not write its output: %v", err)
	}
}

func TestProcessForkBombIsContained(t *testing.T) {
	sb := newSandbox(t)
	h := newHostListener(t)
	sb.limits = Limits{Processes: 32, WallClock: 20 * time.Second}
	p := sb.script("bomb.sh", "echo start\nbomb() { bomb | bomb & }\nbomb\nwait\nsleep 60\n")
	start := time.Now()
	res, lines := sb.run(context.Background(), "/bin/sh", p)
	if res.Killed != KilledProcesses {
		t.Fatalf("result %+v after %v, lines %d", res, time.Since(start), len(lines))
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("the fork bomb ran %v", time.Since(start))
	}
	sb.noSandboxLeft(t)
	h.answers(t)
}

func TestProcessDiskLimit(t *testing.T) {
	sb := newSandbox(t)
	const limit = 50 << 20
	sb.limits = Limits{DiskBytes: limit, WallClock: 20 * time.Second}
	p := sb.script("fill.py", `import signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
chunk = b"x" * (1 << 20)
n = 0
with open("/out/big", "wb") as f:
    while n < 10 * 1024:  # 10 GB
        f.write(chunk)
        n += 1
print("wrote", n)
`)
	start := time.Now()
	res, lines := sb.run(context.Background(), "/usr/bin/python3", p)
	if res.Killed != KilledDisk {
		t.Fatalf("result %+v, lines %q", res, lines)
	}
	fi, err := os.Stat(filepath.Join(sb.out, "big"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > limit {
		t.Fatalf("the file grew to %d bytes, over the limit %d", fi.Size(), limit)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("stopping took %v", d)
	}

	// Many files, each under the limit, are stopped by the watchdog.
	sb2 := newSandbox(t)
	sb2.limits = Limits{DiskBytes: 20 << 20, WallClock: 20 * time.Second}
	p2 := sb2.script("many.py", `import time
chunk = b"x" * (1 << 20)
for i in range(10000):
    with open("/out/f%d" % i, "wb") as f:
        f.write(chunk)
    time.sleep(0.005)
`)
	res, _ = sb2.run(context.Background(), "/usr/bin/python3", p2)
	if res.Killed != KilledDisk {
		t.Fatalf("many files: %+v", res)
	}
	used, _ := diskUse(sb2.out, 1<<40)
	// The watchdog samples every 50 ms and measures the folder: a run
	// writing fast overshoots by what it writes meanwhile, more on a
	// loaded machine (49 MB seen at a load average of 20), never without
	// bound.
	if used > 120<<20 {
		t.Fatalf("many files: %d bytes written, limit 20 MiB", used)
	}
}

func TestProcessWallClock(t *testing.T) {
	sb := newSandbox(t)
	sb.limits = Limits{WallClock: time.Second}
	p := sb.script("sleep.sh", "echo sleeping\nsleep infinity &\nsleep infinity\n")
	start := time.Now()
	res, _ := sb.run(context.Background(), "/bin/sh", p)
	if res.Killed != KilledTimeout {
		t.Fatalf("result %+v", res)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("killed after %v, limit 1 s", d)
	}
	sb.noSandboxLeft(t)
}

func TestProcessCPULimit(t *testing.T) {
	sb := newSandbox(t)
	sb.limits = Limits{CPUSeconds: 1, WallClock: 30 * time.Second}
	p := sb.script("spin.sh", "while :; do :; done\n")
	res, _ := sb.run(context.Background(), "/bin/sh", p)
	if res.Killed != KilledCPU {
		t.Fatalf("result %+v", res)
	}
}

func TestProcessMemoryLimit(t *testing.T) {
	sb := newSandbox(t)
	sb.limits = Limits{MemoryBytes: 200 << 20, WallClock: 30 * time.Second}
	p := sb.script("hog.py", `blocks = []
while True:
    blocks.append(bytearray(8 << 20))
`)
	res, lines := sb.run(context.Background(), "/usr/bin/python3", p)
	if res.Killed != KilledMemory || res.ExitCode == 0 {
		t.Fatalf("result %+v, lines %q", res, lines)
	}
}

func TestProcessCancelKillsEverything(t *testing.T) {
	sb := newSandbox(t)
	p := sb.script("tree.sh", "sleep 1000 &\n(sleep 1000 &) \nsh -c 'sleep 1000' &\necho started\nwait\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := sb.executor()
	var res Result
	var err error
	finished := make(chan struct{})
	started := make(chan struct{}, 1)
	go func() {
		res, err = e.Run(ctx, sb.spec("/bin/sh", p), func(l string) {
			if l == "started" {
				started <- struct{}{}
			}
		})
		close(finished)
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the run did not start")
	}
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if err != nil || res.Killed != KilledCancelled {
		t.Fatalf("result %+v, %v", res, err)
	}
	sb.noSandboxLeft(t)
}

// TestProcessFirstLine measures the time from Run to the program's first
// line of output (issue target: under 1 s).
func TestProcessFirstLine(t *testing.T) {
	sb := newSandbox(t)
	p := sb.script("hello.sh", "echo hello\n")
	e := sb.executor()
	var best time.Duration
	for i := 0; i < 5; i++ {
		start := time.Now()
		var first time.Duration
		_, err := e.Run(context.Background(), sb.spec("/bin/sh", p), func(string) {
			if first == 0 {
				first = time.Since(start)
			}
		})
		if err != nil || first == 0 {
			t.Fatalf("run: %v, first line after %v", err, first)
		}
		if best == 0 || first < best {
			best = first
		}
	}
	t.Logf("dispatch to first output line (bwrap, best of 5): %v", best)
	if best > time.Second {
		t.Fatalf("first line after %v, target under 1 s", best)
	}
}

func BenchmarkProcessFirstLine(b *testing.B) {
	sb := newSandbox(b)
	p := sb.script("hello.sh", "echo hello\n")
	e := sb.executor()
	spec := sb.spec("/bin/sh", p)
	var total time.Duration
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		var first time.Duration
		if _, err := e.Run(context.Background(), spec, func(string) {
			if first == 0 {
				first = time.Since(start)
			}
		}); err != nil {
			b.Fatal(err)
		}
		total += first
		n++
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(n), "ms-to-first-line")
}

func TestProcessSetupFailureIsAnError(t *testing.T) {
	sb := newSandbox(t)
	p := sb.script("ok.sh", "echo ok\n")
	// A bubblewrap that fails before any sandbox exists (here: false).
	e, err := NewProcess(Config{Kind: Process, Bwrap: "/bin/false", AllowPrograms: sb.allow})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(context.Background(), sb.spec("/bin/sh", p), nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("failed setup: %v, want ErrUnavailable", err)
	}
}
