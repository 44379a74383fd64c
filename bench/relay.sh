#!/usr/bin/env bash
# DICOMweb through the hub's relay against the same node served directly,
# side by side in one run.
#
#   bench/relay.sh [PATIENTS]     (default 3: about 560 MB of CT, MR and PET)
#
# The script makes a synthetic cohort with `mosaic synth --size bench`
# (512x512 images), then runs bench/relay, which starts the node as a
# second process of itself: it ingests the cohort into a real node
# (internal/node, SQLite and pack files), serves the node's
# DICOMweb directly over HTTP, and starts the node's real outbound link to
# an embedded NATS server that confines the node exactly as the hub does
# (fed.NodePublishAllow, fed.NodeSubscribeAllow), with the relay's client
# (internal/relay) behind a second HTTP server, as the hub mounts it. It
# then times, alternating the two ways:
#   - WADO-RS retrieval of every study (RELAY_BENCH_ROUNDS rounds, default
#     2): throughput and time to first byte;
#   - QIDO-RS (RELAY_BENCH_QIDO searches each way, default 200: study
#     searches with limit=10 and the series of a study): p50 and p95;
#   - at least RELAY_BENCH_GB (default 1) GB through the relay, study
#     after study: the peak RSS of the node's process and of the hub
#     side's (NATS server, relay client and the measuring HTTP client),
#     reset just before, and the hub side's peak Go heap in use.
# RELAY_BENCH_PROFILE=FILE writes a CPU profile of the run.
set -euo pipefail
cd "$(dirname "$0")/.."
patients=${1:-3}
base=${RELAY_BENCH_DIR:-${TMPDIR:-/tmp}}
work=$(mktemp -d "$base/relay-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
go build -o "$work/mosaic" ./cmd/mosaic
go build -o "$work/relay" ./bench/relay
echo "relay benchmark: $patients patients (synth --size bench)"
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg), $(go version | cut -d' ' -f3)"
"$work/mosaic" synth --out "$work/cohort" --patients "$patients" --seed 1 --size bench >"$work/synth.log" 2>&1 || {
	cat "$work/synth.log" >&2
	exit 1
}
echo "cohort: $(du -sm "$work/cohort/dicom" | cut -f1) MB"
profile=()
if [ -n "${RELAY_BENCH_PROFILE:-}" ]; then
	profile=(-cpuprofile "$RELAY_BENCH_PROFILE")
fi
"$work/relay" -cohort "$work/cohort" -work "$work" -rounds "${RELAY_BENCH_ROUNDS:-2}" \
	-qido "${RELAY_BENCH_QIDO:-200}" -big "${RELAY_BENCH_GB:-1}" "${profile[@]}"
