package node

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/permit"
)

// resolvePermit is how a node answers a DICOMweb request the hub relays:
// the node checks the permit itself (CheckPermit: signature, window,
// researcher, node, dataset, operation, revocation, freshness, local
// approval; every use recorded), then serves the permit's snapshot and
// nothing else. The hub's word that a permit is valid counts for nothing
// here.
func (l *Link) resolvePermit(ctx context.Context, req fed.RelayRequest) (http.Handler, error) {
	c, err := l.CheckPermit(ctx, req.Permit, req.Researcher, relayOp(req.Path))
	if err != nil {
		return nil, err
	}
	h, err := l.n.SnapshotHandler(c, req.Root)
	if errors.Is(err, ErrNoSnapshot) {
		return nil, &PermitError{Status: http.StatusNotFound, Reason: "no-snapshot"}
	}
	return h, err
}

// relayOp is the operation a relayed path needs: whole objects and the
// archive need download, everything else (searches, metadata, frames,
// bulk data) view. The snapshot's handler checks the same again.
func relayOp(path string) permit.Op {
	p := strings.Trim(path, "/")
	if strings.HasPrefix(p, "archive/") || p == "archive" {
		return permit.OpDownload
	}
	s := strings.Split(p, "/")
	// studies/{s}, studies/{s}/series/{se}, .../instances/{i}: retrieval.
	switch {
	case len(s) == 2 && s[0] == "studies",
		len(s) == 4 && s[0] == "studies" && s[2] == "series",
		len(s) == 6 && s[0] == "studies" && s[2] == "series" && s[4] == "instances":
		return permit.OpDownload
	}
	return permit.OpView
}
