// Package node is a data holder's node: it takes DICOM objects in through
// the de-identification door, keeps them in a content-addressed blob
// store, indexes them (internal/index) for DICOMweb and federated search,
// and serves the node API and DICOMweb over HTTP.
package node

import (
	"context"
	"errors"
	"fmt"
	"github.com/mosaic-imaging/mosaic/internal/airlock"
	"github.com/mosaic-imaging/mosaic/internal/executor"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/blobstore"
	"github.com/mosaic-imaging/mosaic/internal/deid"
	"github.com/mosaic-imaging/mosaic/internal/disclosure"
	"github.com/mosaic-imaging/mosaic/internal/index"
)

// Config is a node's configuration. Zero fields take the defaults
// Defaults documents.
type Config struct {
	// Data is the node's data directory: SQLite index, blobs and site
	// key live there unless DB, Blobs or SiteKey say otherwise.
	Data string `json:"data"`
	// Listen is the HTTP address of serve.
	Listen string `json:"listen"`
	// DB is the index: a SQLite path or a postgres:// URL.
	DB string `json:"db"`
	// Blobs is the object store: a path, or a gocloud.dev/blob URL
	// (s3://..., file://..., mem://).
	Blobs string `json:"blobs"`
	// BlobLayout is how a blob store on a local disk (Blobs a path) keeps
	// objects: "packs" (appended to large pack files, one fdatasync per
	// pack per batch; the default), "files" (a file per object, named by
	// its SHA-256, fsync of each new file and directory) or "files-syncfs"
	// (files, made durable by one syncfs of the whole file system: for a
	// file system given over to the node). Objects stored under one
	// layout stay readable under "packs".
	BlobLayout string `json:"blob_layout"`
	// Policy is the de-identification policy: a preset or a policy file.
	Policy string `json:"policy"`
	// SiteKey is the file of the node's pseudonymisation key (created on
	// first use).
	SiteKey string `json:"site_key"`
	// KeyMustExist makes Open refuse a SiteKey file that does not exist
	// rather than create one: a new key would give every later object
	// other pseudonyms than those the node holds. Commands that may not
	// make a node set it.
	KeyMustExist bool `json:"-"`
	// MaxObjectBytes caps one DICOM object received (a STOW-RS part or a
	// file), in bytes.
	MaxObjectBytes int64 `json:"max_object_bytes"`
	// MaxRequestBytes caps one STOW-RS request body.
	MaxRequestBytes int64 `json:"max_request_bytes"`
	// BatchMax caps how many objects one index commit takes.
	BatchMax int `json:"batch_max"`
	// CommitTimeout bounds one commit (blob store sync and index
	// commit) and each request's wait for the index database: past it
	// the objects are not acknowledged and STOW-RS answers 503, rather
	// than hanging on a stalled database. Default 30 s.
	CommitTimeout time.Duration `json:"commit_timeout"`
	// MaxQIDOLimit caps QIDO-RS result pages.
	MaxQIDOLimit int `json:"max_qido_limit"`
	// Workers is the number of objects ingested in parallel by the CLI.
	Workers int `json:"workers"`
	// BlobGrace is how old an unreferenced blob must be before garbage
	// collection removes it (younger ones may belong to an ingest in
	// flight).
	BlobGrace time.Duration `json:"blob_grace"`
	// SearchFloor is the disclosure floor k of federated search answers
	// and catalogue aggregates: a count under it leaves the node as an
	// empty result, and two sets that differ by fewer patients are never
	// told apart (docs/disclosure.md).
	SearchFloor int `json:"search_floor"`
	// SearchRound rounds counts to a multiple (1: exact above the floor).
	SearchRound int `json:"search_round"`
	// SearchNoise is the scale b of the Laplace noise added to counts,
	// drawn from the set of patients counted (nil: DefaultSearchNoise; 0
	// turns noise off).
	SearchNoise *float64 `json:"search_noise,omitempty"`
	// SearchOverlap turns the overlap control on or off (nil: on): a set
	// within the floor of one answered before gets that set's answer.
	SearchOverlap *bool `json:"search_overlap,omitempty"`
	// SearchEpsilon is what each answer costs a researcher's privacy
	// budget (0: 1/SearchNoise, the epsilon of the Laplace mechanism).
	SearchEpsilon float64 `json:"search_epsilon,omitempty"`
	// SearchDailyEpsilon and SearchTotalEpsilon cap what one researcher
	// may spend at one dataset in a day and in all (0: the defaults,
	// disclosure.DefaultDailyEpsilon and DefaultTotalEpsilon; negative: no
	// cap).
	SearchDailyEpsilon float64 `json:"search_daily_epsilon,omitempty"`
	SearchTotalEpsilon float64 `json:"search_total_epsilon,omitempty"`
	// HubWebSocket connects to the hub over NATS's WebSocket (wss://)
	// rather than its plain protocol (tls://), for sites whose proxies
	// pass only HTTP(S); the hub must offer it (nats_websocket).
	HubWebSocket bool `json:"hub_websocket"`
	// PermitOfflineLimit is how long the node honours permits without
	// hearing the hub's signed revocation list (which the hub sends every
	// 15 s): past it every permit is refused until the hub is heard again
	// (fail closed). Default 5 minutes.
	PermitOfflineLimit time.Duration `json:"permit_offline_limit"`

	// Jobs chooses and confines the executor of processing jobs
	// (docs/processing.md); without one, the node runs built-in analyses
	// only.
	Jobs executor.Config `json:"jobs"`
	// MaxJobs caps the jobs the node runs at once (default 2).
	MaxJobs int `json:"max_jobs,omitempty"`
	// Airlock is what the node checks before any output of a job or an
	// analysis leaves it (defaults: SACRO ACRO's).
	Airlock airlock.Policy `json:"airlock"`

	// Clock, when set, replaces time.Now for the privacy budget's days
	// (the attack harness moves it on to replay many days).
	Clock func() time.Time `json:"-"`

	Log *slog.Logger `json:"-"`
}

// Defaults fills in the zero fields of c.
func (c *Config) Defaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8180"
	}
	if c.DB == "" {
		c.DB = filepath.Join(c.Data, "index.db")
	}
	if c.Blobs == "" {
		c.Blobs = filepath.Join(c.Data, "blobs")
	}
	if c.Policy == "" {
		c.Policy = DefaultPolicy
	}
	if c.BlobLayout == "" {
		c.BlobLayout = "packs"
	}
	if c.SiteKey == "" {
		c.SiteKey = filepath.Join(c.Data, "site.key")
	}
	if c.MaxObjectBytes == 0 {
		c.MaxObjectBytes = 4 << 30
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = 64 << 30
	}
	if c.BatchMax == 0 {
		c.BatchMax = 256
	}
	if c.CommitTimeout == 0 {
		c.CommitTimeout = DefaultCommitTimeout
	}
	if c.MaxQIDOLimit == 0 {
		c.MaxQIDOLimit = 1000
	}
	if c.Workers == 0 {
		c.Workers = runtime.NumCPU()
	}
	if c.BlobGrace == 0 {
		c.BlobGrace = time.Hour
	}
	if c.PermitOfflineLimit == 0 {
		c.PermitOfflineLimit = DefaultPermitOfflineLimit
	}
	if c.SearchFloor == 0 {
		c.SearchFloor = 10
	}
	if c.SearchRound == 0 {
		c.SearchRound = 1
	}
	if c.SearchNoise == nil {
		b := DefaultSearchNoise
		c.SearchNoise = &b
	}
	if c.SearchOverlap == nil {
		on := true
		c.SearchOverlap = &on
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
}

// Validate checks a configuration after Defaults.
func (c *Config) Validate() error {
	switch {
	case c.Data == "":
		return errors.New("node: the data directory is required (--data)")
	case c.MaxObjectBytes < 1024:
		return fmt.Errorf("node: max_object_bytes %d is too small", c.MaxObjectBytes)
	case c.MaxRequestBytes < c.MaxObjectBytes:
		return fmt.Errorf("node: max_request_bytes must be at least max_object_bytes")
	case c.BatchMax < 1 || c.BatchMax > 10000:
		return fmt.Errorf("node: batch_max %d: use 1 to 10000", c.BatchMax)
	case c.BlobLayout != "packs" && c.BlobLayout != "files" && c.BlobLayout != "files-syncfs":
		return fmt.Errorf("node: blob_layout %q: use packs, files or files-syncfs", c.BlobLayout)
	case c.CommitTimeout < 0:
		return fmt.Errorf("node: commit_timeout must be positive (default %s)", DefaultCommitTimeout)
	case c.PermitOfflineLimit < 0:
		return fmt.Errorf("node: permit_offline_limit must be positive (default %s)", DefaultPermitOfflineLimit)
	case c.MaxQIDOLimit < 1:
		return fmt.Errorf("node: max_qido_limit must be positive")
	case c.Workers < 1 || c.Workers > 256:
		return fmt.Errorf("node: workers %d: use 1 to 256", c.Workers)
	case c.SearchFloor < 1:
		return fmt.Errorf("node: search_floor %d: use 1 or more (10 is the federation's default)", c.SearchFloor)
	case c.SearchRound < 1:
		return fmt.Errorf("node: search_round %d: use 1 (no rounding) or more", c.SearchRound)
	case *c.SearchNoise < 0:
		return fmt.Errorf("node: search_noise must not be negative (0 turns noise off)")
	case c.SearchEpsilon < 0:
		return fmt.Errorf("node: search_epsilon must not be negative")
	}
	// The noise key comes from the site key later; a placeholder of the
	// right length lets the settings be checked now.
	if _, err := disclosure.NewControl(c.disclosurePolicy(make([]byte, 32)), c.disclosureSettings(), nil); err != nil {
		return fmt.Errorf("node: search_floor, search_round, search_noise, search_epsilon: %w", err)
	}
	if err := c.Airlock.WithDefaults().Validate(); err != nil {
		return fmt.Errorf("node: airlock: %w", err)
	}
	return nil
}

// DefaultCommitTimeout is how long a commit, or a request's wait for the
// index database, may take when commit_timeout is not set.
const DefaultCommitTimeout = 30 * time.Second

// DefaultPermitOfflineLimit is how long a node cut off from the hub
// honours permits when permit_offline_limit is not set.
const DefaultPermitOfflineLimit = 5 * time.Minute

// DefaultSearchNoise is the scale of the Laplace noise on federated
// counts when search_noise is not set.
const DefaultSearchNoise = 2.5

func (c *Config) disclosurePolicy(key []byte) disclosure.Policy {
	return disclosure.Policy{Floor: c.SearchFloor, Round: c.SearchRound, Noise: *c.SearchNoise, Key: key}
}

func (c *Config) disclosureSettings() disclosure.Settings {
	return disclosure.Settings{NoOverlap: !*c.SearchOverlap, Epsilon: c.SearchEpsilon,
		DailyEpsilon: c.SearchDailyEpsilon, TotalEpsilon: c.SearchTotalEpsilon, Clock: c.Clock}
}

// ErrNoSiteKey marks an Open with KeyMustExist whose site key file does
// not exist.
var ErrNoSiteKey = errors.New("node: the site key does not exist")

// DefaultPolicy is the de-identification policy of a node whose
// configuration names none.
const DefaultPolicy = "eucaim"

// Node is an open node. Its index, blob store and de-identification
// engine are its own: callers use its methods (facade.go and the rest).
type Node struct {
	cfg   Config
	ix    *index.Store
	blobs blobstore.Store
	eng   *deid.Engine
	pol   deid.Policy
	// ctl is the disclosure control of every figure that leaves the node.
	ctl    *disclosure.Control
	log    *slog.Logger
	m      *metrics
	commit *committer
	cancel context.CancelFunc
	done   chan struct{}
	// drops carries copies to delete (see dropCopy) to a goroutine of
	// their own, so that their disk flushes never hold up a commit.
	drops     chan blobstore.Ref
	stopDrops chan struct{}
	dropsDone chan struct{}
	// cancelDrops ends runDrops's deletes when Close's context ended.
	cancelDrops context.CancelFunc
	// touched is when this process last recorded each token's use;
	// touches are the recordings under way (see touchToken).
	touched sync.Map // token id -> time.Time
	touches sync.WaitGroup
	// pubs caches each dataset's publication decision (pubgate.go).
	pubs pubCache
	// jobs are the processing jobs the node runs (jobs.go).
	jobs jobsState
	// air is the airlock's store and the shared audit log (airlock.go).
	air airlockState
}

// The node asks its blob store for these where the engine has them (the
// pack engine does).
var (
	_ interface{ Err() error } = (*blobstore.Packs)(nil)
	_ interface {
		RemoveEmpty(context.Context) (int, error)
	} = (*blobstore.Packs)(nil)
)

// Open opens the node described by cfg, creating its data directory,
// index, blob store and site key as needed.
func Open(ctx context.Context, cfg Config) (*Node, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var key deid.Key
	if cfg.KeyMustExist {
		k, err := deid.LoadKey(cfg.SiteKey)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s; pass the key this node was made with (its path is site_key in node.json), or make a new node", ErrNoSiteKey, cfg.SiteKey)
		}
		if err != nil {
			return nil, fmt.Errorf("node: site key: %w", err)
		}
		key = k
	}
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("node: data directory: %w", err)
	}
	pol, err := loadPolicy(cfg.Policy)
	if err != nil {
		return nil, err
	}
	if !cfg.KeyMustExist {
		k, _, err := deid.LoadOrCreateKey(cfg.SiteKey)
		if err != nil {
			return nil, fmt.Errorf("node: site key: %w", err)
		}
		key = k
	}
	eng, err := deid.NewEngine(pol, key)
	if err != nil {
		return nil, err
	}
	ix, err := index.Open(ctx, cfg.DB)
	if err != nil {
		return nil, fmt.Errorf("node: index: %w", err)
	}
	var bs blobstore.Store
	switch {
	case strings.Contains(cfg.Blobs, "://"):
		bs, err = blobstore.Open(ctx, cfg.Blobs)
	case cfg.BlobLayout == "files":
		bs, err = blobstore.OpenLocal(cfg.Blobs)
	case cfg.BlobLayout == "files-syncfs":
		bs, err = blobstore.OpenLocalSyncFS(cfg.Blobs)
	default:
		bs, err = blobstore.OpenPacks(cfg.Blobs, blobstore.PackOptions{})
	}
	if err != nil {
		ix.Close()
		return nil, fmt.Errorf("node: blob store: %w", err)
	}
	ctl, err := disclosure.NewControl(cfg.disclosurePolicy(eng.NoiseKey()), cfg.disclosureSettings(), ix)
	if err != nil {
		bs.Close()
		ix.Close()
		return nil, fmt.Errorf("node: disclosure control: %w", err)
	}
	n := &Node{cfg: cfg, ix: ix, blobs: bs, eng: eng, pol: pol, ctl: ctl, log: cfg.Log, m: newMetrics()}
	cctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.commit = newCommitter(n, cfg.BatchMax)
	n.done = make(chan struct{})
	go func() {
		defer close(n.done)
		n.commit.run(cctx)
	}()
	n.drops = make(chan blobstore.Ref, 4096)
	n.stopDrops = make(chan struct{})
	n.dropsDone = make(chan struct{})
	dctx, dcancel := context.WithCancel(context.Background())
	n.cancelDrops = dcancel
	go n.runDrops(dctx)
	return n, nil
}

// runDrops deletes the copies dropCopy queues until Close, then those
// still queued, unless ctx ends first: it then returns after the delete
// under way, and the copies left are gc's. The channel is never closed,
// so a late dropCopy cannot panic; what it queues after the end is left
// to gc.
func (n *Node) runDrops(ctx context.Context) {
	defer close(n.dropsDone)
	del := func(ref blobstore.Ref) {
		if err := n.blobs.Delete(ctx, ref); err != nil && ctx.Err() == nil {
			n.log.Warn("could not delete an unneeded copy; gc will", "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ref := <-n.drops:
			if ctx.Err() != nil {
				return
			}
			del(ref)
		case <-n.stopDrops:
			for ctx.Err() == nil {
				select {
				case ref := <-n.drops:
					del(ref)
				default:
					return
				}
			}
			return
		}
	}
}

func loadPolicy(p string) (deid.Policy, error) {
	if pol, err := deid.Preset(p); err == nil {
		return pol, nil
	}
	if _, err := os.Stat(p); err != nil {
		return deid.Policy{}, fmt.Errorf("node: policy %q is neither a preset (%v) nor a readable file", p, deid.Presets)
	}
	return deid.LoadPolicy(p)
}

// Config returns the node's effective configuration.
func (n *Node) Config() Config { return n.cfg }

// Close stops the committer after it commits what is queued, and closes
// the stores. When ctx ends first, Close stops waiting: the commit under
// way is cancelled and what is still queued fails (none of it was
// acknowledged), and Close returns ctx's error. If the commit under way
// does not give up within a few seconds of that (a store that ignores
// cancellation), Close returns without closing the stores. Unneeded
// copies still queued for deletion are deleted before the stores close,
// or, once ctx ended, left to gc; either way no delete runs after Close
// returns.
func (n *Node) Close(ctx context.Context) error {
	n.jobs.stop()
	n.commit.close()
	var errs []error
	select {
	case <-n.done:
	case <-ctx.Done():
		n.cancel()
		select {
		case <-n.done:
		case <-time.After(closeGrace):
			n.cancelDrops()
			return fmt.Errorf("node: close: the commit under way did not stop; the stores are left open: %w", ctx.Err())
		}
		errs = append(errs, fmt.Errorf("node: close: stopped waiting for queued commits (they were not acknowledged): %w", ctx.Err()))
	}
	close(n.stopDrops)
	select {
	case <-n.dropsDone:
	case <-ctx.Done():
		// Copies not deleted yet are left to gc; the delete under way
		// ends before the stores close.
		n.cancelDrops()
		<-n.dropsDone
	}
	n.cancelDrops()
	n.touches.Wait() // each bounded by the commit timeout
	n.cancel()
	errs = append(errs, n.blobs.Close(), n.ix.Close())
	return errors.Join(errs...)
}

// closeGrace is how long Close waits, once its context ended, for the
// commit under way to notice its cancellation.
const closeGrace = 5 * time.Second

// dbContext bounds a request's use of the index database by the commit
// timeout, so that a stalled database gives an error, not a hang.
func (n *Node) dbContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, n.cfg.CommitTimeout)
}

// rowWatch bounds a streamed query by the commit timeout between rows:
// the query is cancelled when the database gives no row for that long,
// while the time the caller spends on each row (between pause and
// resume) does not count. stop ends the watch; err turns the error of a
// query it cancelled into one that wraps context.DeadlineExceeded.
func (n *Node) rowWatch(ctx context.Context) (context.Context, *watch) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &watch{d: n.cfg.CommitTimeout, ctx: ctx, cancel: cancel}
	w.t = time.AfterFunc(w.d, func() { cancel(errRowTimeout) })
	return ctx, w
}

// errRowTimeout is the cause of a query rowWatch cancelled.
var errRowTimeout = fmt.Errorf("no row from the index database in time: %w", context.DeadlineExceeded)

type watch struct {
	d      time.Duration
	ctx    context.Context
	cancel context.CancelCauseFunc
	t      *time.Timer
}

func (w *watch) pause()  { w.t.Stop() }
func (w *watch) resume() { w.t.Reset(w.d) }
func (w *watch) stop()   { w.t.Stop(); w.cancel(nil) }

func (w *watch) err(err error) error {
	if err != nil && errors.Is(context.Cause(w.ctx), errRowTimeout) {
		return fmt.Errorf("%w (%v)", errRowTimeout, err)
	}
	return err
}
