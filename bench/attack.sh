#!/usr/bin/env bash
# Attack harness: replays a curious researcher's attacks on the counts of
# federated search (complement and general differencing, histogram
# reconstruction, narrowing to one patient, averaging equivalent rewrites,
# Denning's trackers, several accounts) against a hub and three nodes
# started in one process (bench/attack, internal/attack), and prints for
# each the share of counts hidden under the floor it recovers exactly, the
# searches it spent, and a blind guess's share; then the accuracy of
# ordinary counts of 20 and more on larger nodes (300 patients each).
#
#   bench/attack.sh [FLAGS]      (bench/attack -h lists them)
#
# Examples:
#   bench/attack.sh                                  # the nodes' defaults (docs/disclosure.md)
#   bench/attack.sh -controls off                    # no disclosure control at all: every leak found
#   bench/attack.sh -daily-epsilon -1 -total-epsilon -1   # no budget: what noise and the
#                                                    # overlap control hold alone (many accounts)
#   bench/attack.sh -seeds 1,2,3 -short              # three cohorts, the test's short plan
#
# The hub's daily query limit is raised so that the nodes' own controls
# are what is measured; the nodes' budget days run on a fake clock the
# harness moves on, so many days replay in seconds. Everything lives in a
# temporary folder removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./bench/attack "$@"
