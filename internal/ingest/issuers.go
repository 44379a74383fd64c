package ingest

import (
	"context"

	"github.com/mosaic-imaging/mosaic/internal/deid"
)

// ScanIssuers reads the headers of the original images in the inputs
// (files, folders, zip archives, with the guards of List) and returns the
// issuers seen with each Patient ID. Objects that cannot be read teach
// nothing and are counted in unreadable.
func ScanIssuers(ctx context.Context, inputs []string, lim Limits) (issuers deid.Issuers, unreadable int, err error) {
	issuers = deid.Issuers{}
	err = List(ctx, inputs, ListOptions{Limits: lim}, func(o *Object) bool {
		defer o.Release()
		src, f := o.Open()
		if f != nil {
			unreadable++
			return true
		}
		defer src.Close()
		maxInflated := int64(MaxInflated)
		if m := src.MaxBytes(); m > 0 {
			maxInflated = min(maxInflated, m)
		}
		if issuers.Read(src, maxInflated) != nil {
			unreadable++
		}
		return true
	})
	return issuers, unreadable, err
}
