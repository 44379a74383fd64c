package ingest

import (
	"context"

	"github.com/mosaic-imaging/mosaic/internal/deid"
	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

// Tree is the sink that writes de-identified files into a deid.Tree.
// Outcomes have the tree's statuses (ok, rejected, failed) and a
// deid.Placed as Detail.
type Tree struct {
	T *deid.Tree
	// MaxInflated bounds a deflated dataset held in memory (MaxInflated
	// when 0).
	MaxInflated int64
}

// Worker returns a writer for one goroutine.
func (t Tree) Worker() Worker { return &treeWorker{w: t.T.Writer(), maxInflated: t.MaxInflated} }

type treeWorker struct {
	w           *deid.TreeWriter
	maxInflated int64
}

func (tw *treeWorker) Put(_ context.Context, src *Source) Pending {
	ropts := dicom.ReadOptions{MaxInflated: tw.maxInflated}
	if ropts.MaxInflated <= 0 {
		ropts.MaxInflated = MaxInflated
	}
	if m := src.MaxBytes(); m > 0 {
		ropts.MaxInflated = min(ropts.MaxInflated, m)
	}
	p := tw.w.Write(src, ropts, func() (string, error) { return CodeZipLimit, src.LimitErr() })
	return Done{Status: p.Status, Code: p.Code, Reason: p.Reason, Bytes: p.Bytes, Patient: p.Patient, Detail: p}
}
