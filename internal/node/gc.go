package node

import (
	"context"
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
}

// CollectGarbage removes blobs that no index row refers to and that are
// older than grace (younger ones may belong to an ingest whose commit is
// in flight). A crash between writing a blob and committing its row
// leaves such blobs; never the reverse, since rows are committed only
// after their blobs are synced.
func (n *Node) CollectGarbage(ctx context.Context, grace time.Duration, dryRun bool) (GCStats, error) {
	var st GCStats
	refs := map[blobstore.Ref]bool{}
	if err := n.Index.BlobRefs(ctx, func(k, loc string, _ int64) error { refs[blobRef(k, loc)] = true; return nil }); err != nil {
		return st, err
	}
	st.Referenced = len(refs)
	cutoff := time.Now().Add(-grace)
	var doomed []blobstore.Ref
	var sizes []int64
	err := n.Blobs.List(ctx, func(k blobstore.Ref, size int64, mod time.Time) error {
		if refs[k] {
			return nil
		}
		st.Unreferenced++
		if mod.After(cutoff) {
			st.Young++
			return nil
		}
		doomed = append(doomed, k)
		sizes = append(sizes, size)
		return nil
	})
	if err != nil {
		return st, err
	}
	for i, k := range doomed {
		if !dryRun {
			// Check again: an ingest may have committed a row for the
			// same content since the listing.
			ok, err := n.Index.HasBlob(ctx, string(k.Key), string(k.Loc))
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
			if err := n.Blobs.Delete(ctx, k); err != nil {
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
	if p, ok := n.Blobs.(interface {
		RemoveEmpty(context.Context) (int, error)
	}); ok && !dryRun {
		removed, err := p.RemoveEmpty(ctx)
		st.Packs = removed
		if err != nil {
			if ctx.Err() != nil {
				return st, ctx.Err()
			}
			n.log.Warn("garbage collection: could not check every pack for removal", "err", err)
			st.Failed++
		}
	}
	if (st.Removed > 0 || st.Packs > 0) && !dryRun {
		n.log.Info("garbage collected", "objects", st.Removed, "bytes", st.RemovedBytes, "packs", st.Packs, "failed", st.Failed)
	}
	return st, nil
}
