package ingest

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// StatusFailed is the status of an object this package fails itself
// (listing, opening, limits, cancellation). Sinks use it for their own
// failures too; their other statuses are theirs (a tree's ok and
// rejected, a node's stored, duplicate, rejected and conflict).
const StatusFailed = "failed"

// Outcome is what became of one object.
type Outcome struct {
	Status string
	Code   string
	Reason string
	// Bytes is what the sink newly stored for the object (0 when it was
	// already there, refused or failed).
	Bytes int64
	// Patient identifies the object's patient in the destination (the
	// pseudonym), when the sink knows it, to count patients.
	Patient string
	// Detail is the sink's own record of the object (a tree's
	// deid.Placed, a node's node.Outcome); nil for failures found before
	// the sink saw the object.
	Detail any
}

// Pending is an object a sink took; Wait gives its outcome once settled
// (a node commits objects in groups, so waiting is apart from taking).
type Pending interface {
	Wait() Outcome
}

// Done is a Pending already settled.
type Done Outcome

// Wait returns the outcome.
func (d Done) Wait() Outcome { return Outcome(d) }

// Sink is where a run puts objects: a folder of de-identified files
// (Tree) or a node's door (Node).
type Sink interface {
	// Worker returns the state of one worker goroutine.
	Worker() Worker
}

// Worker puts objects into a sink; each is used by one goroutine.
type Worker interface {
	// Put passes one object read from src. It must not keep an object
	// whose src.LimitErr is set once read (Run fails it anyway).
	Put(ctx context.Context, src *Source) Pending
}

// Result is the outcome of one object, in input order.
type Result struct {
	Seq   int
	Input string
	Outcome
}

// Progress is a snapshot of a running ingest.
type Progress struct {
	// Found is how many objects were listed so far; Listed says that
	// listing is over, so Found is the total.
	Found  int64
	Listed bool
	// Done is how many objects have an outcome, Failed and Rejected how
	// many of them failed or were refused (status "rejected").
	Done, Failed, Rejected int64
	// Bytes is what was stored so far.
	Bytes   int64
	Elapsed time.Duration
}

// Options of Run.
type Options struct {
	ListOptions
	// Workers is how many objects are read at once (GOMAXPROCS when 0).
	Workers int
	// OnResult is called for each result in input order.
	OnResult func(Result)
	// OnProgress is called about every ProgressEvery (200 ms when 0)
	// while the run lasts. OnResult and OnProgress are never called at
	// the same time.
	OnProgress    func(Progress)
	ProgressEvery time.Duration
}

// Summary counts the outcomes of a run.
type Summary struct {
	Objects int `json:"objects"`
	// Statuses counts objects by status.
	Statuses map[string]int `json:"statuses"`
	// Codes counts objects by status and code (when a code was given).
	Codes map[string]map[string]int `json:"codes"`
	// Patients counts the distinct patients of the objects whose sink
	// named them.
	Patients int `json:"patients"`
	// Bytes is what was stored.
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	// Cancelled says the run was cancelled: objects listed but not read
	// are failed with code "cancelled", and inputs not listed are not
	// counted.
	Cancelled bool `json:"cancelled"`
}

// Count returns how many objects have the status, and with a code given,
// that code.
func (s Summary) Count(status string, code ...string) int {
	if len(code) == 0 {
		return s.Statuses[status]
	}
	n := 0
	for _, c := range code {
		n += s.Codes[status][c]
	}
	return n
}

// Run lists the inputs, puts every object into the sink on a pool of
// workers, and calls OnResult for each result in input order. It returns
// the summary, and ctx's error when the run was cancelled (the summary
// then counts what was done).
func Run(ctx context.Context, inputs []string, sink Sink, opts Options) (Summary, error) {
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	every := opts.ProgressEvery
	if every <= 0 {
		every = 200 * time.Millisecond
	}
	start := time.Now()
	var found, done, failedN, rejectedN, bytes atomic.Int64
	var listed atomic.Bool

	objects := make(chan *Object, 4*workers)
	go func() {
		defer close(objects)
		defer listed.Store(true)
		List(ctx, inputs, opts.ListOptions, func(o *Object) bool {
			found.Add(1)
			select {
			case objects <- o:
				return true
			case <-ctx.Done():
				o.Release()
				found.Add(-1)
				return false
			}
		})
	}()

	// Workers put objects into the sink; the outcomes are waited for
	// apart, in the order each worker took them, so that a node commits
	// many objects at once.
	type taken struct {
		seq   int
		input string
		p     Pending
	}
	inflight := make(chan taken, 1024)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := sink.Worker()
			for o := range objects {
				inflight <- taken{o.Seq, o.Input, put(ctx, w, o)}
			}
		}()
	}
	go func() { wg.Wait(); close(inflight) }()
	results := make(chan Result, 4*workers)
	go func() {
		defer close(results)
		for t := range inflight {
			o := t.p.Wait()
			switch o.Status {
			case StatusFailed:
				failedN.Add(1)
			case "rejected":
				rejectedN.Add(1)
			}
			bytes.Add(o.Bytes)
			done.Add(1)
			results <- Result{Seq: t.seq, Input: t.input, Outcome: o}
		}
	}()

	sum := Summary{Statuses: map[string]int{}, Codes: map[string]map[string]int{}}
	patients := map[string]struct{}{}
	emit := func(r Result) {
		sum.Objects++
		sum.Statuses[r.Status]++
		if r.Code != "" {
			if sum.Codes[r.Status] == nil {
				sum.Codes[r.Status] = map[string]int{}
			}
			sum.Codes[r.Status][r.Code]++
		}
		sum.Bytes += r.Bytes
		if r.Patient != "" {
			patients[r.Patient] = struct{}{}
		}
		if opts.OnResult != nil {
			opts.OnResult(r)
		}
	}
	var tick <-chan time.Time
	if opts.OnProgress != nil {
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}
	// Reorder so that results follow the input order.
	pending := map[int]Result{}
	next := 0
	for open := true; open; {
		select {
		case r, ok := <-results:
			if !ok {
				open = false
				break
			}
			pending[r.Seq] = r
			for {
				p, ok := pending[next]
				if !ok {
					break
				}
				delete(pending, next)
				next++
				emit(p)
			}
		case <-tick:
			opts.OnProgress(Progress{Found: found.Load(), Listed: listed.Load(), Done: done.Load(),
				Failed: failedN.Load(), Rejected: rejectedN.Load(), Bytes: bytes.Load(), Elapsed: time.Since(start)})
		}
	}
	// Only a cancelled run can leave gaps (objects dropped between the
	// lister and the workers are never counted as found).
	keys := make([]int, 0, len(pending))
	for k := range pending {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		emit(pending[k])
	}
	sum.Patients = len(patients)
	sum.Seconds = time.Since(start).Seconds()
	if err := ctx.Err(); err != nil {
		sum.Cancelled = true
		return sum, err
	}
	return sum, nil
}

// put reads one object into the sink, or fails it.
func put(ctx context.Context, w Worker, o *Object) Pending {
	defer o.Release()
	if o.Failure != nil {
		return Done{Status: StatusFailed, Code: o.Failure.Code, Reason: o.Failure.Reason}
	}
	if ctx.Err() != nil {
		return Done{Status: StatusFailed, Code: CodeCancelled, Reason: ReasonCancelled}
	}
	src, f := o.Open()
	if f != nil {
		return Done{Status: StatusFailed, Code: f.Code, Reason: f.Reason}
	}
	defer src.Close()
	p := w.Put(ctx, src)
	if err := src.LimitErr(); err != nil {
		return limitFailed{p, err}
	}
	return p
}

// limitFailed settles what a sink made of a source cut by a limit, and
// reports the limit: nothing of the object is kept.
type limitFailed struct {
	p   Pending
	err error
}

func (l limitFailed) Wait() Outcome {
	l.p.Wait()
	return Outcome{Status: StatusFailed, Code: CodeZipLimit, Reason: l.err.Error()}
}
