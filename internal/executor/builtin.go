package executor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// BuiltinFunc is a built-in analysis: it runs in the node's process with
// the spec (Command[0] is its name, the rest its arguments; Inputs and
// Output as for any run) and logs lines through log. It must return when
// ctx is done. A returned error fails the run (exit code 1) and is
// logged, so it must not hold data.
type BuiltinFunc func(ctx context.Context, spec Spec, log func(line string)) error

var (
	builtinMu sync.RWMutex
	builtins  = map[string]BuiltinFunc{}
)

// Register adds a built-in analysis under name for every Builtin
// executor; registering a name again replaces it. A nil fn removes it.
func Register(name string, fn BuiltinFunc) {
	builtinMu.Lock()
	defer builtinMu.Unlock()
	if fn == nil {
		delete(builtins, name)
		return
	}
	builtins[name] = fn
}

// Registered lists the names of the built-in analyses, sorted.
func Registered() []string {
	builtinMu.RLock()
	defer builtinMu.RUnlock()
	names := make([]string, 0, len(builtins))
	for n := range builtins {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// BuiltinExecutor runs registered analyses in process.
type BuiltinExecutor struct {
	limits Limits
	maxLog int
	mu     sync.RWMutex
	own    map[string]BuiltinFunc
}

// NewBuiltin returns the in-process executor. It sees the package's
// registry (Register) and its own (its Register method).
func NewBuiltin(cfg Config) *BuiltinExecutor {
	return &BuiltinExecutor{limits: cfg.Limits, maxLog: cfg.MaxLogBytes, own: map[string]BuiltinFunc{}}
}

// Kind is Builtin.
func (b *BuiltinExecutor) Kind() Kind { return Builtin }

// Register adds an analysis to this executor only, ahead of the
// package's registry.
func (b *BuiltinExecutor) Register(name string, fn BuiltinFunc) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if fn == nil {
		delete(b.own, name)
		return
	}
	b.own[name] = fn
}

func (b *BuiltinExecutor) lookup(name string) BuiltinFunc {
	b.mu.RLock()
	fn := b.own[name]
	b.mu.RUnlock()
	if fn != nil {
		return fn
	}
	builtinMu.RLock()
	defer builtinMu.RUnlock()
	return builtins[name]
}

// Run calls the analysis Command[0] names, bounded by the wall clock
// limit. An unknown name is an error before anything runs; a failure or
// panic of the analysis is exit code 1.
func (b *BuiltinExecutor) Run(ctx context.Context, spec Spec, log func(line string)) (res Result, err error) {
	if len(spec.Command) == 0 || spec.Command[0] == "" {
		return Result{}, fmt.Errorf("%w: no analysis named", ErrInvalid)
	}
	fn := b.lookup(spec.Command[0])
	if fn == nil {
		return Result{}, fmt.Errorf("%w: no built-in analysis %q", ErrInvalid, spec.Command[0])
	}
	lim := effective(b.limits, spec.Limits)
	s := newSink(log, b.maxLog)
	rctx, cancel := context.WithTimeout(ctx, lim.WallClock)
	defer cancel()
	start := time.Now()
	ferr := func() (ferr error) {
		defer func() {
			if p := recover(); p != nil {
				ferr = errors.New("the analysis failed unexpectedly")
			}
		}()
		return fn(rctx, spec, s.line)
	}()
	res.Duration = time.Since(start)
	switch {
	case ctx.Err() != nil:
		res.Killed, res.ExitCode = KilledCancelled, -1
	case rctx.Err() != nil:
		res.Killed, res.ExitCode = KilledTimeout, -1
	case ferr != nil:
		res.ExitCode = 1
		s.line("error: " + ferr.Error())
	}
	return res, nil
}
