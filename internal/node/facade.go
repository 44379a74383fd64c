package node

import (
	"context"

	"github.com/mosaic-imaging/mosaic/internal/index"
)

// This file is what the node's callers (the CLI, the demo, the attack
// harness) may do with its index: the node keeps its index, blob store
// and de-identification engine to itself.

// Datasets lists the node's datasets.
func (n *Node) Datasets(ctx context.Context) ([]index.Dataset, error) { return n.ix.Datasets(ctx) }

// Dataset returns one dataset (index.ErrNotFound when there is none).
func (n *Node) Dataset(ctx context.Context, id string) (index.Dataset, error) {
	return n.ix.Dataset(ctx, id)
}

// DatasetInfos lists the datasets with what each holds and whether the
// node publishes it to the hub.
func (n *Node) DatasetInfos(ctx context.Context) ([]DatasetInfo, error) {
	ds, err := n.ix.Datasets(ctx)
	if err != nil {
		return nil, err
	}
	out := []DatasetInfo{}
	for _, d := range ds {
		info, err := n.datasetInfo(ctx, d)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// DatasetInfo returns one dataset with what it holds and whether the
// node publishes it.
func (n *Node) DatasetInfo(ctx context.Context, id string) (DatasetInfo, error) {
	d, err := n.ix.Dataset(ctx, id)
	if err != nil {
		return DatasetInfo{}, err
	}
	return n.datasetInfo(ctx, d)
}

// CreateDataset creates a dataset.
func (n *Node) CreateDataset(ctx context.Context, d index.Dataset) (index.Dataset, error) {
	return n.ix.CreateDataset(ctx, d)
}

// UpdateDataset changes a dataset's description fields through edit.
func (n *Node) UpdateDataset(ctx context.Context, id string, edit func(*index.Dataset) error) (index.Dataset, error) {
	return n.ix.UpdateDataset(ctx, id, edit)
}

// DeleteDataset deletes an empty dataset.
func (n *Node) DeleteDataset(ctx context.Context, id string) error {
	return n.ix.DeleteDataset(ctx, id)
}

// CreateToken creates an API token and returns its secret, shown once.
func (n *Node) CreateToken(ctx context.Context, name, scope, dataset string) (string, index.Token, error) {
	return n.ix.CreateToken(ctx, name, scope, dataset)
}

// Tokens lists the API tokens (never their secrets).
func (n *Node) Tokens(ctx context.Context) ([]index.Token, error) { return n.ix.Tokens(ctx) }

// CheckToken returns the token a secret belongs to (index.ErrBadToken
// when it is unknown or revoked).
func (n *Node) CheckToken(ctx context.Context, secret string) (index.Token, error) {
	return n.ix.CheckToken(ctx, secret)
}

// RevokeToken revokes a token at once.
func (n *Node) RevokeToken(ctx context.Context, id string) error { return n.ix.RevokeToken(ctx, id) }

// Where says where the node's index is (a file or a database server,
// without credentials), for logs.
func (n *Node) Where() string { return n.ix.DB().Where }

// PolicyName is the name of the node's de-identification policy.
func (n *Node) PolicyName() string { return n.pol.Name }
