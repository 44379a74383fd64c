#!/usr/bin/env bash
# Federated processing against the issue's targets, in one run:
#
#   bench/processing.sh
#
#   - a linear model over 3 nodes × 1M rows × 20 terms, end to end through
#     the compute runner with secure aggregation (target under 2 s), and a
#     node's part alone (stats.NodeLM);
#   - dispatch to the first line of output of the bubblewrap sandbox
#     (target under 1 s);
#   - one secure aggregation across 10 nodes; masking and summing a 10 MB
#     float32 model (2.6M values) for 10 nodes against the plain sum
#     (target: secure aggregation under 2× the plain round's overhead);
#   - FedAvg of 10 updates of 10 MB;
#   - one whole round for a 10 MB model across 10 nodes in memory, plain
#     and secure, weights and results in chunks (BenchmarkRound10Nodes:
#     about a minute and a half).
#
# Each is a Go benchmark of the real packages (no mocks); the nodes of the
# compute benchmark share this machine's CPUs, so its time is the sum of
# what separate nodes would do in parallel. Figures go to
# docs/performance.md with the machine's load average.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
run() { go test -run '^$' -bench "$2" -benchtime "${3:-1x}" -benchmem -count 1 "$1" | grep -E '^Benchmark' ; }
run ./internal/compute/ 'BenchmarkLM3x1M|BenchmarkAggregate10Nodes|BenchmarkRound10Nodes' 1x
run ./internal/stats/ '^BenchmarkNodeLM$' 3x
run ./internal/executor/ '^BenchmarkProcessFirstLine$' 5x
run ./internal/secagg/ '^(BenchmarkMask|BenchmarkMask48|BenchmarkSum|BenchmarkPlainSum)$' 3x
run ./internal/fl/ '^BenchmarkFedAvg$' 3x
