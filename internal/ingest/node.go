package ingest

import (
	"context"

	"github.com/mosaic-imaging/mosaic/internal/node"
)

// Node is the sink that passes objects through a node's de-identification
// door into a dataset. Outcomes have the node's statuses (stored,
// duplicate, rejected, conflict, failed) and a node.Outcome as Detail.
// This is the only place that uses the node's tickets.
type Node struct {
	N       *node.Node
	Dataset string
	// Path labels the node's metrics ("cli" when empty).
	Path string
}

// Worker returns the sink itself: the node is safe for concurrent use.
func (s Node) Worker() Worker { return s }

// Put starts the object's ingest; the ticket is waited for apart, so that
// the node commits the index rows of many objects at once.
func (s Node) Put(ctx context.Context, src *Source) Pending {
	path := s.Path
	if path == "" {
		path = "cli"
	}
	return ticket{ctx, s.N.Ingest(ctx, s.Dataset, path, src)}
}

type ticket struct {
	ctx context.Context // the Put's, for Wait
	t   *node.Ticket
}

// Wait waits for the object's commit even when the run was cancelled: an
// object written is reported as what became of it, and the node's commit
// timeout bounds the wait.
func (t ticket) Wait() Outcome {
	o := t.t.Wait(context.WithoutCancel(t.ctx))
	out := Outcome{Status: o.Status, Code: o.Code, Reason: o.Reason, Detail: o}
	if o.Status == node.StatusStored {
		out.Bytes = o.Size
	}
	return out
}
