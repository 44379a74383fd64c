package node

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/index"
)

// Publication is whether the node publishes a dataset to its hub (in the
// catalogue, and in answers to searches), and if not, why.
type Publication struct {
	// Publish is true when every check the dataset's tier needs passes.
	Publish bool `json:"publish"`
	// HeldBack says, in a few words each, what keeps the dataset back:
	// "no licence", "no contact point", "12 series without Modality".
	HeldBack []string `json:"held_back,omitempty"`
}

// Dataset description problems: the catalogue publishes these fields,
// so a dataset without them is held back at every tier.
const (
	ProblemNoDescription = "dataset-no-description"
	ProblemNoLicence     = "dataset-no-licence"
	ProblemNoContact     = "dataset-no-contact"
)

// Check runs the checks a dataset must pass before the node publishes
// it: its description, licence and contact point, which the catalogue
// publishes, and the index's data-quality checks for its tier (with up to
// examples UIDs or pseudonyms each). Problems of severity "error" hold
// the dataset back (see Publication).
func (n *Node) Check(ctx context.Context, dataset string, examples int) (index.Dataset, []index.Problem, error) {
	d, err := n.ix.Dataset(ctx, dataset)
	if err != nil {
		return d, nil, err
	}
	probs, err := n.ix.Check(ctx, dataset, d.Tier, examples)
	if err != nil {
		return d, nil, err
	}
	return d, append(describeProblems(d), probs...), nil
}

// describeProblems are the problems of a dataset's own description.
func describeProblems(d index.Dataset) []index.Problem {
	var out []index.Problem
	add := func(kind, msg string) {
		out = append(out, index.Problem{Kind: kind, Severity: "error", Tier: 1, Count: 1, Message: msg})
	}
	if strings.TrimSpace(d.Description) == "" {
		add(ProblemNoDescription, "the dataset has no description, which the catalogue publishes (node dataset update --description)")
	}
	if strings.TrimSpace(d.Licence) == "" {
		add(ProblemNoLicence, "the dataset has no licence, which the catalogue publishes (node dataset update --licence)")
	}
	if strings.TrimSpace(d.Contact) == "" {
		add(ProblemNoContact, "the dataset has no contact point, which the catalogue publishes (node dataset update --contact)")
	}
	return out
}

// gate turns the problems of a dataset's checks into the decision to
// publish it: any problem of severity "error" holds it back.
func gate(probs []index.Problem) Publication {
	p := Publication{Publish: true}
	for _, pr := range probs {
		if pr.Severity != "error" {
			continue
		}
		p.Publish = false
		switch pr.Kind {
		case ProblemNoDescription:
			p.HeldBack = append(p.HeldBack, "no description")
		case ProblemNoLicence:
			p.HeldBack = append(p.HeldBack, "no licence")
		case ProblemNoContact:
			p.HeldBack = append(p.HeldBack, "no contact point")
		default:
			p.HeldBack = append(p.HeldBack, fmt.Sprintf("%s: %d (%s)", pr.Message, pr.Count, pr.Kind))
		}
	}
	return p
}

// pubCache keeps each dataset's publication decision until the dataset
// changes (its description or its content), so that catalogue
// publication, searches and listings do not run the checks again.
type pubCache struct {
	mu sync.Mutex
	m  map[string]pubEntry
}

type pubEntry struct {
	updated, changed time.Time
	tier             int
	pub              Publication
}

// Publication says whether the node publishes d to its hub, running the
// checks d's tier needs unless d has not changed since they last ran.
func (n *Node) Publication(ctx context.Context, d index.Dataset) (Publication, error) {
	return n.publication(ctx, d, false)
}

// publication is Publication; with anyContent it takes the decision last
// taken for d's description whatever content d had then (searches during
// an ingest do not run the checks over the whole dataset again; the
// catalogue, sent after every change, does).
func (n *Node) publication(ctx context.Context, d index.Dataset, anyContent bool) (Publication, error) {
	n.pubs.mu.Lock()
	e, ok := n.pubs.m[d.ID]
	n.pubs.mu.Unlock()
	if ok && e.updated.Equal(d.Updated) && (anyContent || e.changed.Equal(d.Changed)) && e.tier == d.Tier {
		return e.pub, nil
	}
	probs, err := n.ix.Check(ctx, d.ID, d.Tier, 0)
	if err != nil {
		return Publication{}, fmt.Errorf("node: checks of dataset %s: %w", d.ID, err)
	}
	pub := gate(append(describeProblems(d), probs...))
	n.pubs.mu.Lock()
	if n.pubs.m == nil {
		n.pubs.m = map[string]pubEntry{}
	}
	n.pubs.m[d.ID] = pubEntry{updated: d.Updated, changed: d.Changed, tier: d.Tier, pub: pub}
	n.pubs.mu.Unlock()
	return pub, nil
}

// logHeldBack says in the node's log that a dataset is held back from
// the hub, and why.
func (n *Node) logHeldBack(d index.Dataset, pub Publication) {
	n.log.Warn("dataset held back from the hub until its checks pass (mosaic node check)", "dataset", d.ID, "tier", d.Tier, "held_back", pub.HeldBack)
}
