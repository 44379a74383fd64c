package executor

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTicks is the kernel's USER_HZ, the unit of CPU times in
// /proc/PID/stat.
const clockTicks = 100

// maxOutputEntries bounds the number of files and folders a run may
// create in its output folder (counted as part of the disk limit).
const maxOutputEntries = 100_000

// watch samples one sandboxed run through /proc: its processes are the
// ones of its own uid.
type watch struct {
	uid int
	lim Limits
	out string

	mu        sync.Mutex
	peakProcs int
	peakVM    int64
	memLine   bool
	forkLine  bool
	diskSeen  bool
	last      string
	lastDisk  time.Time
	diskEvery time.Duration
}

// procStat is what the watchdog reads of one process.
type procStat struct {
	pid     int
	threads int
	ticks   int64 // utime+stime+cutime+cstime
	vsize   int64
	rss     int64 // bytes
}

var pageSize = int64(os.Getpagesize())

// procsOf lists the processes whose owner is uid.
func procsOf(uid int) []procStat {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	var out []procStat
	for _, n := range names {
		if n[0] < '0' || n[0] > '9' {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+n, &st) != nil || int(st.Uid) != uid {
			continue
		}
		pid, _ := strconv.Atoi(n)
		ps := procStat{pid: pid, threads: 1}
		if b, err := os.ReadFile("/proc/" + n + "/stat"); err == nil {
			// Fields after the command name, which is in parentheses.
			if i := strings.LastIndexByte(string(b), ')'); i > 0 {
				f := strings.Fields(string(b[i+1:]))
				// f[0] is field 3 (state): field k is f[k-3].
				num := func(k int) int64 {
					if k-3 < len(f) {
						v, _ := strconv.ParseInt(f[k-3], 10, 64)
						return v
					}
					return 0
				}
				ps.ticks = num(14) + num(15) + num(16) + num(17)
				ps.threads = int(num(20))
				ps.vsize = num(23)
				ps.rss = num(24) * pageSize
			}
		}
		out = append(out, ps)
	}
	return out
}

// sample checks the run against its limits and names the one it broke.
func (w *watch) sample() string {
	procs := procsOf(w.uid)
	var tasks int
	var ticks, rss int64
	w.mu.Lock()
	for _, p := range procs {
		tasks += max(p.threads, 1)
		ticks += p.ticks
		rss += p.rss
		if p.vsize > w.peakVM {
			w.peakVM = p.vsize
		}
	}
	if tasks > w.peakProcs {
		w.peakProcs = tasks
	}
	w.mu.Unlock()
	switch {
	case tasks >= w.lim.Processes:
		return KilledProcesses
	case rss > w.lim.MemoryBytes:
		return KilledMemory
	case ticks > int64(w.lim.CPUSeconds+1)*clockTicks:
		return KilledCPU
	}
	if w.diskEvery == 0 {
		w.diskEvery = 100 * time.Millisecond
	}
	if time.Since(w.lastDisk) >= w.diskEvery {
		t := time.Now()
		used, n := diskUse(w.out, w.lim.DiskBytes)
		// A big tree is walked less often, so the walk stays a small
		// part of the watchdog's time.
		w.diskEvery = max(100*time.Millisecond, 10*time.Since(t))
		w.lastDisk = time.Now()
		if used >= w.lim.DiskBytes || n > maxOutputEntries {
			w.mu.Lock()
			w.diskSeen = true
			w.mu.Unlock()
			return KilledDisk
		}
	}
	return ""
}

// diskUse sums the space the files under dir take (allocated blocks, or
// the size when larger) and counts them, stopping early past limit.
func diskUse(dir string, limit int64) (int64, int) {
	var used int64
	n := 0
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		n++
		if fi, err := d.Info(); err == nil {
			sz := fi.Size()
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Blocks*512 > sz {
				sz = st.Blocks * 512
			}
			if !d.IsDir() {
				used += sz
			}
		}
		if used >= limit || n > maxOutputEntries {
			return fs.SkipAll
		}
		return nil
	})
	return used, n
}

// killAll sends SIGKILL to every process of the run's uid until none is
// left (at most a second).
func (w *watch) killAll() {
	deadline := time.Now().Add(time.Second)
	for {
		procs := procsOf(w.uid)
		if len(procs) == 0 || time.Now().After(deadline) {
			return
		}
		for _, p := range procs {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// line looks at each output line for the words of a failed allocation
// or fork, which tell a limit from an ordinary failure.
func (w *watch) line(l string) {
	w.mu.Lock()
	w.last = cutUTF8(l, 200)
	w.mu.Unlock()
	low := strings.ToLower(l)
	mem := strings.Contains(l, "MemoryError") || strings.Contains(low, "cannot allocate memory") ||
		strings.Contains(low, "out of memory") || strings.Contains(l, "bad_alloc")
	disk := strings.Contains(low, "file too large") || strings.Contains(low, "no space left on device") ||
		strings.Contains(low, "file size limit exceeded")
	fork := strings.Contains(low, "cannot fork") || strings.Contains(low, "fork: retry") ||
		(strings.Contains(low, "fork") && strings.Contains(low, "resource temporarily unavailable"))
	if mem || fork || disk {
		w.mu.Lock()
		w.diskSeen = w.diskSeen || disk
		w.memLine = w.memLine || mem
		w.forkLine = w.forkLine || fork
		w.mu.Unlock()
	}
}

// lastLine is the last output line seen, cut short.
func (w *watch) lastLine() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// classify names the limit that ended a run: the watchdog's reason when
// it stopped the run, else the signal of an rlimit (SIGXCPU, SIGXFSZ),
// else, for a failed run, the signs of a refused allocation or fork.
func (w *watch) classify(killed string, code int) string {
	if killed != "" {
		return killed
	}
	switch code {
	case 0:
		return ""
	case 128 + int(syscall.SIGXCPU):
		return KilledCPU
	case 128 + int(syscall.SIGXFSZ):
		return KilledDisk
	}
	if used, n := diskUse(w.out, w.lim.DiskBytes); used >= w.lim.DiskBytes || n > maxOutputEntries {
		return KilledDisk
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.diskSeen:
		return KilledDisk
	case w.memLine || (w.lim.MemoryBytes > 0 && w.peakVM*10 >= w.lim.MemoryBytes*9):
		return KilledMemory
	case w.forkLine || w.peakProcs >= w.lim.Processes:
		return KilledProcesses
	}
	return ""
}
