#!/usr/bin/env bash
# Side-by-side ingest benchmark over DICOMweb STOW-RS, on one synthetic
# corpus, in one run: Orthanc with its DICOMweb plugin and a Mosaic data
# node, both receiving the same files from the same load client
# (bench/stow: the files of one study go together, up to 16 instances per
# multipart request, 4 requests in flight).
#
#   bench/ingest.sh [PATIENTS] [REPEAT]      (defaults: 10 3)
#
# PATIENTS sizes the `mosaic synth --size bench` corpus (10 patients: about
# 2,600 files, 1 GB). Each server runs REPEAT times, in turns (each turn
# starting with the other server), each time as a new process on new, empty
# storage on the corpus's file system, after `sync`. The time measured is
# the load client's wall time, from its first request to the last response;
# starting the server is not counted. The server's CPU time during the load
# (user and system, read from /proc before and after) is printed too: on
# a machine the client and server share, it says how much each server
# spends per instance whatever the other processes do. The best and the
# median of each figure are printed.
#
# Orthanc (Debian packages orthanc and orthanc-dicomweb, installed when
# missing) runs as a throwaway process with its own configuration in the
# work folder: Orthanc's defaults (SQLite index, files on disk) except for
# the folders, a free HTTP port on 127.0.0.1, no DICOM port, no remote
# access, no authentication, and the DICOMweb plugin. The system service is
# never used. The Mosaic node is built from this tree, given a dataset and
# a write token for it, and served on a free port; its STOW-RS requests carry
# the token.
#
# The corpus holds CT, MR and PET series, and a few ultrasound and
# secondary-capture objects with the patient's details burned into the
# pixels, which a Mosaic node refuses at its de-identification door while
# Orthanc stores everything. Both "instances offered" and "instances
# stored" are printed; the rates count instances offered, since each
# server receives, parses and judges every one. The CT slices are 512x512 16-bit; the
# "CT slices/s" column is a CT-slice-equivalent rate: the corpus's CT
# instances divided by the wall time of the whole (mixed) run.
#
# Environment:
#   INGEST_BENCH_ONLY=orthanc|mosaic   run one server only (orthanc until
#                                      `mosaic node` exists)
#   INGEST_BENCH_DIR       folder for the corpus and the servers' storage
#                          (default $TMPDIR or /tmp)
#   INGEST_BENCH_SETTLE    seconds of pause after each turn's storage is
#                          deleted (default 40; see bench/deid.sh for why)
#   INGEST_BENCH_WORKERS   requests in flight (default 4)
#   INGEST_BENCH_BATCH     instances per request at most (default 16)
#   INGEST_BENCH_MOSAIC    a mosaic binary to run instead of building this
#                          tree (it also generates the corpus)
set -euo pipefail
cd "$(dirname "$0")/.."
patients=${1:-10}
repeat=${2:-3}
only=${INGEST_BENCH_ONLY:-}
settle=${INGEST_BENCH_SETTLE:-40}
workers=${INGEST_BENCH_WORKERS:-4}
batch=${INGEST_BENCH_BATCH:-16}
base=${INGEST_BENCH_DIR:-${TMPDIR:-/tmp}}
case $only in
"") tools=(orthanc mosaic) ;;
orthanc | mosaic) tools=("$only") ;;
*)
	echo "INGEST_BENCH_ONLY must be orthanc or mosaic, not '$only'" >&2
	exit 2
	;;
esac

work=$(mktemp -d "$base/ingest-bench.XXXXXX")
server_pid=
policy_made=
cleanup() {
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	if [ -n "$policy_made" ]; then rm -f /usr/sbin/policy-rc.d; fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for c in jq curl; do
	if ! command -v $c >/dev/null; then
		echo "installing $c..." >&2
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $c >/dev/null
	fi
done

need_orthanc=0
for t in "${tools[@]}"; do [ "$t" = orthanc ] && need_orthanc=1; done

# stop_system_orthanc stops the orthanc service if the package's install
# started it: this benchmark runs its own server and wants no other load.
stop_system_orthanc() {
	pgrep -u orthanc -x Orthanc >/dev/null 2>&1 || return 0
	echo "stopping the orthanc system service started by the install..." >&2
	if [ -d /run/systemd/system ]; then
		systemctl stop orthanc 2>/dev/null || true
	fi
	if pgrep -u orthanc -x Orthanc >/dev/null 2>&1; then
		service orthanc stop >/dev/null 2>&1 || /etc/init.d/orthanc stop >/dev/null 2>&1 || true
	fi
	if pgrep -u orthanc -x Orthanc >/dev/null 2>&1; then
		echo "warning: the orthanc system service is still running (its ports are not used here)" >&2
	fi
}

if [ $need_orthanc = 1 ]; then
	if ! command -v Orthanc >/dev/null || ! dpkg -s orthanc-dicomweb >/dev/null 2>&1; then
		echo "installing Orthanc and its DICOMweb plugin (Debian packages orthanc, orthanc-dicomweb)..." >&2
		# invoke-rc.d asks policy-rc.d whether the maintainer scripts may
		# start the service; 101 says no. An existing policy is kept.
		if [ ! -e /usr/sbin/policy-rc.d ]; then
			printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
			chmod 755 /usr/sbin/policy-rc.d
			policy_made=1
		fi
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq orthanc orthanc-dicomweb >/dev/null
		if [ -n "$policy_made" ]; then
			rm -f /usr/sbin/policy-rc.d
			policy_made=
		fi
	fi
	stop_system_orthanc
	orthanc_plugin=$(dpkg -L orthanc-dicomweb | grep -E '/libOrthancDicomWeb\.so[.0-9]*$' | head -1)
	if [ -z "$orthanc_plugin" ] || [ ! -f "$orthanc_plugin" ]; then
		echo "cannot find the DICOMweb plugin in 'dpkg -L orthanc-dicomweb'" >&2
		exit 1
	fi
	orthanc_version="Orthanc $(dpkg-query -W -f '${Version}' orthanc), DICOMweb plugin $(dpkg-query -W -f '${Version}' orthanc-dicomweb)"
fi

mosaic=${INGEST_BENCH_MOSAIC:-}
if [ -z "$mosaic" ]; then
	mosaic="$work/mosaic"
	go build -o "$mosaic" ./cmd/mosaic
fi
go build -o "$work/stow" ./bench/stow
need_mosaic=0
for t in "${tools[@]}"; do [ "$t" = mosaic ] && need_mosaic=1; done
if [ $need_mosaic = 1 ] && ! "$mosaic" node --help >/dev/null 2>&1; then
	echo "this mosaic has no 'node' command yet; run with INGEST_BENCH_ONLY=orthanc" >&2
	exit 1
fi

"$mosaic" synth --out "$work/cohort" --patients "$patients" --seed 42 --size bench -q >/dev/null
corpus="$work/cohort/dicom"
manifest="$work/cohort/manifest.json"
n=$(find "$corpus" -type f -name '*.dcm' | wc -l)
bytes=$(du -sb "$corpus" | cut -f1)
ct=$(jq '.modalities.CT.instances // 0' "$manifest")
echo "corpus: $n files, $((bytes / 1000000)) MB ($patients patients, --size bench, seed 42)"
echo "  by modality: $(jq -r '[.modalities | to_entries[] | "\(.key) \(.value.instances)"] | join(", ")' "$manifest")"
echo "  by SOP class: $(jq -r '[.sop_classes | to_entries[] | "\(.key) \(.value)"] | join(", ")' "$manifest")"
risky=$(jq '.risky | length' "$manifest")
if [ "$risky" -gt 0 ]; then
	echo "  $risky with text burned into the pixels ($(jq -r '[.risky | group_by(.modality)[] | "\(.[0].modality) \(length)"] | join(", ")' "$manifest")), which a Mosaic node refuses"
fi
echo "machine: $(nproc) CPUs, $(uname -sr), $(df -T "$work" | awk 'NR==2{print $2}') file system${orthanc_version:+; $orthanc_version}"
echo "client: bench/stow, up to $batch instances of one study per request, $workers requests in flight"

# Warm-up: read the whole corpus into the page cache.
find "$corpus" -type f -exec cat {} + >/dev/null

# free_port (bench/lib.sh) prints a TCP port nothing listens on.
. bench/lib.sh

# wait_ready URL LOG: wait until URL answers 200, while the server lives.
wait_ready() {
	local i
	for i in $(seq 1 600); do
		if curl -sf -o /dev/null "$1"; then return 0; fi
		if ! kill -0 "$server_pid" 2>/dev/null; then
			echo "the server exited before answering $1:" >&2
			tail -20 "$2" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "no answer from $1 after 60 s:" >&2
	tail -20 "$2" >&2
	exit 1
}

stop_server() {
	kill "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
	server_pid=
}

# start_orthanc DIR: a new Orthanc on empty storage in DIR; sets url.
start_orthanc() {
	local d=$1 port
	port=$(free_port)
	mkdir -p "$d/storage" "$d/index"
	cat >"$d/orthanc.json" <<EOF
{
  "Name": "ingest-bench",
  "StorageDirectory": "$d/storage",
  "IndexDirectory": "$d/index",
  "HttpPort": $port,
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false,
  "DicomServerEnabled": false,
  "Plugins": ["$orthanc_plugin"],
  "DicomWeb": { "Enable": true, "Root": "/dicom-web/" }
}
EOF
	Orthanc "$d/orthanc.json" >"$d/server.log" 2>&1 &
	server_pid=$!
	wait_ready "http://127.0.0.1:$port/system" "$d/server.log"
	url="http://127.0.0.1:$port/dicom-web/studies"
	token=
	admin="http://127.0.0.1:$port"
}

# start_mosaic DIR: a new Mosaic node with one empty dataset in DIR; sets
# url and token.
start_mosaic() {
	local d=$1 port
	port=$(free_port)
	mkdir -p "$d/data"
	"$mosaic" node dataset create --create --data "$d/data" --id bench --title "Ingest benchmark" >"$d/create.log" 2>&1 || {
		echo "mosaic node dataset create failed:" >&2
		tail -20 "$d/create.log" >&2
		exit 1
	}
	token=$("$mosaic" node token create --data "$d/data" --scope write --dataset bench 2>"$d/token.log" | tr -d '[:space:]') || true
	if [ -z "$token" ]; then
		echo "mosaic node token create printed no token:" >&2
		tail -20 "$d/token.log" >&2
		exit 1
	fi
	"$mosaic" node serve --data "$d/data" --listen "127.0.0.1:$port" >"$d/server.log" 2>&1 &
	server_pid=$!
	wait_ready "http://127.0.0.1:$port/readyz" "$d/server.log"
	url="http://127.0.0.1:$port/dicom-web/bench/studies"
	admin=
}

# cpu_seconds PID: the user and system CPU time the process has used.
tck=$(getconf CLK_TCK)
cpu_seconds() {
	awk -v t="$tck" '{sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / t}' "/proc/$1/stat" 2>/dev/null || echo 0
}

declare -A all_rate all_mb all_ct all_cpu offered stored
# run_tool NAME OUTBASE: one timed ingest into a new server.
run_tool() {
	local name=$1 d="$2/$1" out rc=0
	mkdir -p "$d"
	"start_$name" "$d"
	sync
	local cpu0
	cpu0=$(cpu_seconds "$server_pid")
	out="$d/stow.json"
	local auth=()
	if [ -n "$token" ]; then auth=(-token "$token"); fi
	"$work/stow" -url "$url" "${auth[@]}" -dir "$corpus" -batch "$batch" -workers "$workers" -json \
		>"$out" 2>"$d/stow.err" || rc=$?
	# 1: the server refused some instances, which is measured; 2 or
	# anything else: a request failed, and the figures mean nothing.
	if [ $rc -ne 0 ] && [ $rc -ne 1 ]; then
		echo "$name: the load client failed (exit $rc):" >&2
		tail -5 "$d/stow.err" >&2
		echo "$name server log:" >&2
		tail -10 "$d/server.log" >&2
		exit 1
	fi
	local cpu
	cpu=$(echo "$(cpu_seconds "$server_pid") $cpu0" | awk '{printf "%.2f", $1 - $2}')
	local held=
	if [ "$name" = orthanc ]; then
		held=$(curl -sf "$admin/statistics" | jq '.CountInstances') || held=
	fi
	stop_server
	local wall rate mb ctr
	wall=$(jq '.wall_seconds' "$out")
	rate=$(jq '.instances_per_second' "$out")
	mb=$(jq '.mb_per_second' "$out")
	ctr=$(echo "$ct $wall" | awk '{printf "%.1f", $1 / $2}')
	offered[$name]=$(jq '.instances_offered' "$out")
	stored[$name]=$(jq '.instances_stored' "$out")
	all_rate[$name]="${all_rate[$name]:-} $rate"
	all_mb[$name]="${all_mb[$name]:-} $mb"
	all_ct[$name]="${all_ct[$name]:-} $ctr"
	all_cpu[$name]="${all_cpu[$name]:-} $cpu"
	printf '  %-8s %8.3f s  %5d offered  %5d stored  %7.1f instances/s  %6.1f MB/s  %6.1f CT slices/s  latency p50 %.3f s, p95 %.3f s  server CPU %.2f s\n' \
		"$name" "$wall" "${offered[$name]}" "${stored[$name]}" "$rate" "$mb" "$ctr" \
		"$(jq '.latency_p50_seconds' "$out")" "$(jq '.latency_p95_seconds' "$out")" "$cpu"
	if [ $rc -eq 1 ]; then
		echo "           refused: $(jq -r '.failure_reasons | to_entries | map("\(.key): \(.value)") | join("; ")' "$out")"
	fi
	if [ -n "$held" ] && [ "$held" != "${stored[$name]}" ]; then
		echo "           warning: Orthanc holds $held instances, its responses said ${stored[$name]} stored" >&2
	fi
}

for i in $(seq 1 "$repeat"); do
	echo "run $i of $repeat"
	o="$work/out$i"
	mkdir -p "$o"
	# Each turn starts with another server, so neither always runs first.
	for k in $(seq 0 $((${#tools[@]} - 1))); do
		run_tool "${tools[$(((k + i - 1) % ${#tools[@]}))]}" "$o"
	done
	rm -rf "$o"
	sync
	if [ "$i" -lt "$repeat" ]; then sleep "$settle"; fi
done

best() { echo "$1" | tr ' ' '\n' | grep . | sort -g | tail -1; }
# median LIST [DECIMALS]: the median of the numbers in LIST.
median() { echo "$1" | tr ' ' '\n' | grep . | sort -g | awk -v d="${2:-1}" '{v[NR]=$1} END{printf "%.*f", d, NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
least() { echo "$1" | tr ' ' '\n' | grep . | sort -g | head -1; }
row() {
	printf '  %-26s %7d %7d  %8.1f %8.1f  %7.1f %7.1f  %7.1f %7.1f  %6.2f %6.2f\n' "$1" "${offered[$2]}" "${stored[$2]}" \
		"$(best "${all_rate[$2]}")" "$(median "${all_rate[$2]}")" "$(best "${all_mb[$2]}")" "$(median "${all_mb[$2]}")" \
		"$(best "${all_ct[$2]}")" "$(median "${all_ct[$2]}")" "$(least "${all_cpu[$2]}")" "$(median "${all_cpu[$2]}" 2)"
}
echo
echo "STOW-RS ingest, best and median of $repeat (rates of instances offered; MB/s of files sent;"
echo "CT slices/s = $ct CT instances of 512x512 / wall time of the whole run;"
echo "CPU s = user and system CPU time of the server process during the load, least and median):"
printf '  %-26s %7s %7s  %8s %8s  %7s %7s  %7s %7s  %6s %6s\n' "" offered stored "inst/s" median "MB/s" median "CT/s" median "CPU s" median
for t in "${tools[@]}"; do
	case $t in
	orthanc) row "Orthanc + DICOMweb plugin" orthanc ;;
	mosaic) row "mosaic node serve" mosaic ;;
	esac
done
if [ ${#tools[@]} -eq 2 ]; then
	ratio() { echo "$1 $2" | awk '{printf "%.2f", $1 / $2}'; }
	echo "ratio mosaic / orthanc, instances/s offered: $(ratio "$(best "${all_rate[mosaic]}")" "$(best "${all_rate[orthanc]}")") best" \
		"($(ratio "$(median "${all_rate[mosaic]}")" "$(median "${all_rate[orthanc]}")") medians)"
	echo "ratio orthanc / mosaic, server CPU time for the corpus: $(ratio "$(median "${all_cpu[orthanc]}" 2)" "$(median "${all_cpu[mosaic]}" 2)") (medians)"
	if [ "${stored[mosaic]}" -lt "${stored[orthanc]}" ]; then
		echo "mosaic stored $((stored[orthanc] - stored[mosaic])) instances fewer (see the refusals above; the rates count instances offered)."
	fi
fi
