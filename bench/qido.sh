#!/usr/bin/env bash
# QIDO-RS study search benchmark over a large synthetic index, on SQLite
# (the default) and then on PostgreSQL, in one run.
#
#   bench/qido.sh [N]      (default 1000000 instances)
#
# For each engine the script makes a new node data directory, creates a
# dataset and a read token for it with `mosaic node`, fills the index with N
# synthetic instances (bench/qido load: one patient per 100 instances, 1 to
# 3 studies each, 2 to 6 series per study, CT, MR, PET-CT, CR and US), then
# serves the node on a free port of 127.0.0.1 and times QIDO-RS study
# searches against it (bench/qido query): an even mix of searches by
# PatientID, by StudyDate over 1 to 3 months (with the node's default limit
# and with limit=100), by ModalitiesInStudy (both limits), by the three
# together, and by a PatientName prefix, from 1 and then 4 concurrent
# clients. It ends each engine with the same mix run in-process against
# the index (bench/qido search, one client): the database's share of the
# time, without HTTP and JSON. Load time and database size are printed
# with the tables.
#
# PostgreSQL runs through scripts/with-postgres.sh: a throwaway server in
# /tmp with its settings (shared_buffers 64MB, fsync off), one new database
# for the benchmark; the node is served with --db URL. The loader ends with
# VACUUM ANALYZE there, as autovacuum would shortly after a bulk load.
#
# Environment:
#   QIDO_BENCH_ONLY      sqlite or postgres: run one engine only
#   QIDO_BENCH_DIR       folder for the data directories (default $TMPDIR
#                        or /tmp; a million instances take about 2.3 GB on
#                        SQLite, deleted before PostgreSQL starts; the
#                        PostgreSQL cluster, about 2.4 GB, lives in /tmp)
#   QIDO_BENCH_M         searches timed per run (default 2000)
#   QIDO_BENCH_CLIENTS   concurrency levels, in turn (default "1 4")
#   QIDO_BENCH_WORKERS   loader transactions in flight (default: 1 on SQLite,
#                        4 on PostgreSQL)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
m=${QIDO_BENCH_M:-2000}
clients=${QIDO_BENCH_CLIENTS:-1 4}
only=${QIDO_BENCH_ONLY:-}
case $only in
"" | sqlite | postgres) ;;
*)
	echo "QIDO_BENCH_ONLY must be sqlite or postgres, not '$only'" >&2
	exit 2
	;;
esac

server_pid=
# The PostgreSQL half runs as a second invocation of this script under
# scripts/with-postgres.sh, in the first one's work folder.
if [ "${QIDO_BENCH_PHASE:-}" = postgres ]; then
	work=$QIDO_BENCH_WORK
	trap '[ -z "$server_pid" ] || { kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; } || true' EXIT
else
	base=${QIDO_BENCH_DIR:-${TMPDIR:-/tmp}}
	work=$(mktemp -d "$base/qido-bench.XXXXXX")
	cleanup() {
		if [ -n "$server_pid" ]; then
			kill "$server_pid" 2>/dev/null || true
			wait "$server_pid" 2>/dev/null || true
		fi
		rm -rf "$work"
	}
	trap cleanup EXIT
	go build -o "$work/mosaic" ./cmd/mosaic
	go build -o "$work/qido" ./bench/qido
	echo "QIDO-RS benchmark: $n instances; $m searches per run; clients: $clients"
	echo "machine: $(nproc) CPUs, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), $(df -T "$work" | awk 'NR==2{print $2}') file system, $(go version | cut -d' ' -f3)"
fi
trap 'exit 130' INT TERM
mosaic=$work/mosaic
qido=$work/qido

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

# must LOG COMMAND...: run a command with its output in LOG, showing the
# end of LOG if it fails.
must() {
	local log=$1
	shift
	"$@" >"$log" 2>&1 || {
		echo "failed: $*" >&2
		tail -20 "$log" >&2
		exit 1
	}
}

# bench ENGINE [--db URL]: one engine from an empty index to the tables.
bench() {
	local engine=$1 d="$work/$1" port token t0 t1
	shift
	local db=("$@") dsn="$work/$engine/data/index.db"
	if [ $# -gt 0 ]; then dsn=$2; fi
	mkdir -p "$d"
	echo
	echo "== $engine"
	must "$d/create.log" "$mosaic" node dataset create --create --data "$d/data" "${db[@]}" --id bench --title "QIDO benchmark"
	token=$("$mosaic" node token create --data "$d/data" --scope read --dataset bench "${db[@]}" 2>"$d/token.log" | tr -d '[:space:]') || true
	if [ -z "$token" ]; then
		echo "mosaic node token create printed no token:" >&2
		tail -20 "$d/token.log" >&2
		exit 1
	fi
	local workers=()
	if [ -n "${QIDO_BENCH_WORKERS:-}" ]; then workers=(-workers "$QIDO_BENCH_WORKERS"); fi
	t0=$(date +%s.%N)
	"$qido" load -db "$dsn" -dataset bench -n "$n" -sample "$d/sample.json" "${workers[@]}" | tee "$d/load.log"
	t1=$(date +%s.%N)
	echo "load time (wall, including the final maintenance): $(echo "$t0 $t1" | awk '{printf "%.1f s", $2 - $1}')"
	if [ "$engine" = sqlite ]; then
		echo "SQLite files: $(du -sh "$d/data"/index.db* | awk '{printf "%s %s  ", $2, $1}' | sed "s|$d/data/||g")"
	fi

	port=$(free_port)
	"$mosaic" node serve --data "$d/data" "${db[@]}" --listen "127.0.0.1:$port" >"$d/server.log" 2>&1 &
	server_pid=$!
	wait_ready "http://127.0.0.1:$port/readyz" "$d/server.log"
	for c in $clients; do
		echo
		"$qido" query -url "http://127.0.0.1:$port" -token "$token" -sample "$d/sample.json" -m "$m" -c "$c" || {
			echo "$engine: the query client failed; server log:" >&2
			tail -10 "$d/server.log" >&2
			exit 1
		}
	done
	echo
	"$qido" search -db "$dsn" -sample "$d/sample.json" -m "$m" -c 1
	kill "$server_pid"
	wait "$server_pid" 2>/dev/null || true
	server_pid=
}

if [ "${QIDO_BENCH_PHASE:-}" = postgres ]; then
	url=$("$qido" createdb -server "$MOSAIC_TEST_POSTGRES" -name mosaic_qido_bench)
	bench postgres --db "$url"
	exit 0
fi

if [ "$only" != postgres ]; then
	bench sqlite
	# The SQLite index is not needed any more: free the disk.
	rm -rf "$work/sqlite/data"
fi
if [ "$only" != sqlite ]; then
	QIDO_BENCH_PHASE=postgres QIDO_BENCH_WORK=$work scripts/with-postgres.sh "$0" "$n"
fi
