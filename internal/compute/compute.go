// Package compute runs federated computations over the federation link:
// regression and summaries whose node parts are summed under secure
// aggregation, rounds of federated learning, and federated validation.
// The hub side drives the steps through an interface the hub
// implements; the node side answers each step from a permit's snapshot
// through an interface the node implements. It imports neither.
package compute
