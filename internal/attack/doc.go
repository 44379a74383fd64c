// Package attack is a harness that replays, against a real hub and real
// nodes in one process, the attacks a curious researcher with an
// ordinary API token would try to learn counts under the nodes' floor or
// attributes of one patient, and scores them against the nodes' raw
// counts.
package attack
