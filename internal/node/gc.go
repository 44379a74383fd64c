package node

import (
	"context"
	"errors"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/blobstore"
)

// blobRef is the blob store's name for an indexed object's blob.
func blobRef(key, loc string) blobstore.Ref {
	return blobstore.Ref{Key: blobstore.Key(key), Loc: blobstore.Loc(loc)}
}

// GCStats reports a garbage collection.
type GCStats struct {
	Referenced, Unreferenced int
	Removed                  int
	RemovedBytes             int64
	Young                    int
	// Failed counts blobs that could not be checked or deleted, and a
	// pass over the packs that could not finish (logged; the next
	// collection tries again).
	Failed int
	// Packs counts pack files removed because nothing in them was left.
	Packs int
	// Since is, for a collection that looked only at what changed since
	// the last complete one (CollectRecentGarbage), the mark it started
	// from; zero when it looked at everything.
	Since blobstore.GCMark
}

// markedStore is a blob store that can list only what changed since a
// collection left its mark, and keeps that mark (the pack engine).
type markedStore interface {
	GCMark() blobstore.GCMark
	SetGCMark(blobstore.GCMark) error
	IdleSeq() (uint64, error)
	ListChanged(ctx context.Context, m blobstore.GCMark, fn func(r blobstore.Ref, size int64, mod time.Time) error) error
	RemoveEmptyChanged(ctx context.Context, m blobstore.GCMark) (int, error)
}

var _ markedStore = (*blobstore.Packs)(nil)

// CollectGarbage removes blobs that no index row refers to and that are
// older than grace (younger ones may belong to an ingest whose commit is
// in flight). A crash between writing a blob and committing its row
// leaves such blobs; never the reverse, since rows are committed only
// after their blobs are synced. It reads every index row and every blob
// the store lists. A complete run (not dryRun, nothing failed) leaves a
// mark in a pack store for CollectRecentGarbage.
func (n *Node) CollectGarbage(ctx context.Context, grace time.Duration, dryRun bool) (GCStats, error) {
	return n.collect(ctx, grace, dryRun, false)
}

// CollectRecentGarbage is the collection `node serve` runs at start. On a
// pack store with a mark from an earlier complete collection it looks
// only at the packs that may have changed since (see blobstore.GCMark:
// objects left by a crash, copies whose deletion did not happen) and
// checks their records against the index, so that its cost follows what
// was written since rather than everything held. Without a usable mark,
// or past maxChanged records, it is CollectGarbage.
//
// Blobs can only become garbage by a write or a failed delete, which
// change their pack, or by index rows going away: whatever removes rows
// without deleting their blobs (restoring an older index, for one) must
// be followed by a complete collection (`mosaic node gc`).
func (n *Node) CollectRecentGarbage(ctx context.Context, grace time.Duration) (GCStats, error) {
	return n.collect(ctx, grace, false, true)
}

func (n *Node) collect(ctx context.Context, grace time.Duration, dryRun, recent bool) (GCStats, error) {
	var st GCStats
	start := time.Now()
	cutoff := start.Add(-grace)
	marked, _ := n.blobs.(markedStore)
	var idle uint64
	var idleErr error
	if marked != nil && !dryRun {
		// Taken first: packs closed by now take no new garbage.
		idle, idleErr = marked.IdleSeq()
	}
	if recent && marked != nil {
		st.Since = marked.GCMark()
		if st.Since.Time.After(start) {
			// A mark from the future (the clock was set back): look at
			// everything.
			st.Since = blobstore.GCMark{}
		}
	}
	var doomed []blobstore.Ref
	var sizes []int64
	consider := func(k blobstore.Ref, size int64, mod time.Time, held bool) {
		if held {
			st.Referenced++
			return
		}
		st.Unreferenced++
		if mod.After(cutoff) {
			st.Young++
			return
		}
		doomed = append(doomed, k)
		sizes = append(sizes, size)
	}
	if st.Since.IsZero() {
		refs := map[blobstore.Ref]bool{}
		if err := n.ix.BlobRefs(ctx, func(k, loc string, _ int64) error { refs[blobRef(k, loc)] = true; return nil }); err != nil {
			return st, err
		}
		err := n.blobs.List(ctx, func(k blobstore.Ref, size int64, mod time.Time) error {
			consider(k, size, mod, refs[k])
			return nil
		})
		if err != nil {
			return st, err
		}
		// Rows whose blob the store did not list count too.
		st.Referenced = len(refs)
	} else if err := n.collectChanged(ctx, marked, st.Since, consider); errors.Is(err, errManyChanged) {
		// Much was written since: reading every row is cheaper than
		// looking each record up.
		return n.collect(ctx, grace, dryRun, false)
	} else if err != nil {
		return st, err
	}
	for i, k := range doomed {
		if !dryRun {
			// Check again: an ingest may have committed a row for the
			// same content since the listing.
			ok, err := n.ix.HasBlob(ctx, string(k.Key), string(k.Loc))
			if err != nil {
				if ctx.Err() != nil {
					return st, ctx.Err()
				}
				n.log.Warn("garbage collection: could not check a blob", "blob", k.String(), "err", err)
				st.Failed++
				continue
			}
			if ok {
				continue
			}
			if err := n.blobs.Delete(ctx, k); err != nil {
				if ctx.Err() != nil {
					return st, ctx.Err()
				}
				n.log.Warn("garbage collection: could not delete a blob", "blob", k.String(), "err", err)
				st.Failed++
				continue
			}
		}
		st.Removed++
		st.RemovedBytes += sizes[i]
	}
	if p, ok := n.blobs.(interface {
		RemoveEmpty(context.Context) (int, error)
	}); ok && !dryRun {
		var removed int
		var err error
		if st.Since.IsZero() {
			removed, err = p.RemoveEmpty(ctx)
		} else {
			removed, err = marked.RemoveEmptyChanged(ctx, st.Since)
		}
		st.Packs = removed
		if err != nil {
			if ctx.Err() != nil {
				return st, ctx.Err()
			}
			n.log.Warn("garbage collection: could not check every pack for removal", "err", err)
			st.Failed++
		}
	}
	if marked != nil && !dryRun && st.Failed == 0 && idleErr == nil {
		// Everything older than the cutoff was looked at: the next
		// collection can start there. Younger blobs were kept, and
		// their packs changed after it (a minute earlier still, since a
		// file's modification time comes from a coarser clock). Packs
		// still being written when this one started are numbered above
		// idle, whatever the clock says.
		m := blobstore.GCMark{Time: cutoff.Add(-markSlack), Seq: idle}
		if err := marked.SetGCMark(m); err != nil {
			n.log.Warn("garbage collection: could not store its mark; the next one looks at everything", "err", err)
		}
	} else if idleErr != nil {
		n.log.Warn("garbage collection: could not tell which packs are closed; the mark is left as it was", "err", idleErr)
	}
	if (st.Removed > 0 || st.Packs > 0) && !dryRun {
		n.log.Info("garbage collected", "objects", st.Removed, "bytes", st.RemovedBytes, "packs", st.Packs, "failed", st.Failed)
	}
	return st, nil
}

// markSlack is how much earlier than its cutoff a collection sets the
// mark.
const markSlack = time.Minute

// maxChanged is the number of records in changed packs past which a
// collection at start reads every row instead (BlobRefs): looking records
// up by key costs about three times as much per record as reading a row
// (BenchmarkCollectGarbage).
var maxChanged = 50_000

// errManyChanged stops collectChanged past maxChanged records.
var errManyChanged = errors.New("many records changed")

// collectChanged feeds consider with the records ListChanged gives for
// the mark, each with whether an index row refers to it (asked in
// batches of a thousand). It stops with errManyChanged, before
// considering anything, when there are more than maxChanged records.
func (n *Node) collectChanged(ctx context.Context, marked markedStore, since blobstore.GCMark, consider func(blobstore.Ref, int64, time.Time, bool)) error {
	type rec struct {
		ref  blobstore.Ref
		size int64
		mod  time.Time
	}
	var batch, all []rec
	count := 0
	err := marked.ListChanged(ctx, since, func(k blobstore.Ref, size int64, mod time.Time) error {
		if count++; count > maxChanged {
			return errManyChanged
		}
		all = append(all, rec{k, size, mod})
		return nil
	})
	if err != nil {
		return err
	}
	for len(all) > 0 {
		batch, all = all[:min(1000, len(all))], all[min(1000, len(all)):]
		ask := make([][2]string, len(batch))
		for i, r := range batch {
			ask[i] = [2]string{string(r.ref.Key), string(r.ref.Loc)}
		}
		held, err := n.ix.HeldBlobs(ctx, ask)
		if err != nil {
			return err
		}
		for i, r := range batch {
			consider(r.ref, r.size, r.mod, held[ask[i]])
		}
	}
	return nil
}
