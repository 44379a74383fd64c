#!/usr/bin/env bash
# Federated search benchmark: a hub and NODES node processes on this
# machine, each node holding PATIENTS synthetic patients (clinical CDM rows
# and imaging index rows; no image files), and QUERIES searches of mixed
# shapes sent through the hub's API.
#
#   bench/search.sh [NODES] [PATIENTS] [QUERIES]      (defaults: 10 10000 1000)
#
# The script builds mosaic and the load client (bench/search) from this
# tree, starts a hub on free ports of 127.0.0.1 (HTTP and its embedded
# NATS) with a daily query limit raised to 100,000 (DATA/hub.json), adds
# an admin user and an API token, registers NODES nodes, creates a Tier 3
# dataset in each node's data directory (`mosaic node dataset create`) and
# fills them, several at once (bench/search load: one seed per node, so
# the cohorts differ), enrolls them and starts them with `mosaic node
# serve` (the default disclosure control: floor 10, noise 2.5, overlap
# control; node.json lifts the budget's caps so that one researcher can
# send every search, each still charged and recorded). Once the hub lists every node
# online and the catalogue holds every dataset, it runs 20 warm-up
# searches, then QUERIES timed searches from one client, then the same
# searches from 4 concurrent clients (bench/search query: an even mix of
# twelve shapes, from no criterion to nested AND/OR/NOT; see its doc
# comment). Each run prints latency per shape and overall, the nodes that
# answered, and the CPU time the nodes and the hub spent per search (from
# /proc: on a shared machine the latency depends on what else runs, the
# CPU time much less). The script ends with the machine's facts, its load
# average before and after, and kills every process it started.
#
# Every search must be answered by every node: the exit status is 1 when a
# request failed or a node was late, unreachable or in error. jq and curl
# are installed from Debian when missing.
#
# Environment:
#   SEARCH_BENCH_DIR       folder for the data directories (default $TMPDIR
#                          or /tmp; about 90 MB per node of 10,000 patients)
#   SEARCH_BENCH_CLIENTS   concurrency levels, in turn (default "1 4")
#   SEARCH_BENCH_LOADERS   nodes loaded at once (default: the number of CPUs)
#   SEARCH_BENCH_MOSAIC    a mosaic binary to run instead of building this tree
#   SEARCH_BENCH_KEEP      set to keep the work folder (printed at the end)
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=${1:-10}
patients=${2:-10000}
queries=${3:-1000}
clients=${SEARCH_BENCH_CLIENTS:-1 4}
loaders=${SEARCH_BENCH_LOADERS:-$(nproc)}
base=${SEARCH_BENCH_DIR:-${TMPDIR:-/tmp}}

# The hub and nodes read MOSAIC_* variables; none from the caller's
# environment may change what is measured.
for v in $(compgen -e | grep '^MOSAIC_' || true); do unset "$v"; done

work=$(mktemp -d "$base/search-bench.XXXXXX")
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ -n "${SEARCH_BENCH_KEEP:-}" ]; then
		echo "work folder kept: $work"
	else
		rm -rf "$work"
	fi
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

mosaic=${SEARCH_BENCH_MOSAIC:-}
if [ -z "$mosaic" ]; then
	mosaic="$work/mosaic"
	go build -o "$mosaic" ./cmd/mosaic
fi
search="$work/search"
go build -o "$search" ./bench/search
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# free_port (bench/lib.sh) prints a TCP port nothing listens on.
. bench/lib.sh

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

# alive PID LOG WHAT: stop with the end of LOG if the process has exited.
alive() {
	if ! kill -0 "$1" 2>/dev/null; then
		echo "$3 exited:" >&2
		tail -20 "$2" >&2
		exit 1
	fi
}

# cpu_ms PID...: the user and system CPU time of the processes, in ms.
tck=$(getconf CLK_TCK)
cpu_ms() {
	local p sum=0 t
	for p in "$@"; do
		t=$(awk '{print $14 + $15}' "/proc/$p/stat")
		sum=$((sum + t))
	done
	echo $((sum * 1000 / tck))
}

echo "federated search benchmark: $nodes nodes x $patients patients, $queries searches per run; clients: $clients"

# The hub.
hub="$work/hub"
mkdir -p "$hub"
echo '{"queries_per_day": 100000}' >"$hub/hub.json"
http_port=$(free_port)
nats_port=$(free_port)
while [ "$nats_port" = "$http_port" ]; do nats_port=$(free_port); done
hub_url="http://127.0.0.1:$http_port"
"$mosaic" hub serve --create --data "$hub" --listen "127.0.0.1:$http_port" --nats-listen "127.0.0.1:$nats_port" >"$work/hub.log" 2>&1 &
hub_pid=$!
pids+=("$hub_pid")
for i in $(seq 1 600); do
	if curl -sf -o /dev/null "$hub_url/readyz"; then break; fi
	alive "$hub_pid" "$work/hub.log" "the hub"
	if [ "$i" = 600 ]; then
		echo "the hub did not answer $hub_url/readyz in 60 s" >&2
		exit 1
	fi
	sleep 0.1
done
printf 'bench password %s\n' "$RANDOM$RANDOM$RANDOM" |
	must "$work/user.log" "$mosaic" hub user add --data "$hub" bench --admin --password-stdin
token=$("$mosaic" hub token create --data "$hub" --user bench --name search-bench)

# The nodes: data directories, datasets, enrolment tokens.
names=()
for i in $(seq 1 "$nodes"); do names+=("$(printf 'node%02d' "$i")"); done
for n in "${names[@]}"; do
	# The node's disclosure control as deployed (noise, overlap control,
	# budget charged in the index on every answer), without the budget's
	# caps, which would refuse one researcher after 12 searches a day.
	mkdir -p "$work/$n"
	echo '{"search_daily_epsilon": -1, "search_total_epsilon": -1}' >"$work/$n/node.json"
	must "$work/$n-create.log" "$mosaic" node dataset create --create --data "$work/$n" --id cohort \
		--title "Synthetic cohort of $n" --tier 3 --description "Synthetic patients for the search benchmark." \
		--licence CC-BY-4.0 --contact bench@example.org
done

echo "loading $nodes nodes, $loaders at a time..."
t0=$(date +%s.%N)
# Seeds 1, 2, ... NODES: each node its own cohort and scanner fleet.
printf '%s\n' "${names[@]}" | xargs -P "$loaders" -I{} sh -c \
	'"$1" load -data "$2/$3" -dataset cohort -patients "$4" -seed "$(expr "${3#node}" + 0)" >"$2/$3-load.log" 2>&1 || { tail -5 "$2/$3-load.log" >&2; exit 1; }' \
	sh "$search" "$work" {} "$patients"
t1=$(date +%s.%N)
sed -n 's/^load [^ ]*\/\(node[0-9]*\)\/cohort: /  \1: /p' "$work"/node*-load.log
load_s=$(echo "$t0 $t1" | awk '{printf "%.1f", $2 - $1}')
echo "loaded $((nodes * patients)) patients in $load_s s ($loaders loaders)"

for n in "${names[@]}"; do
	etok=$("$mosaic" hub node add --data "$hub" "$n" --title "Hospital $n")
	must "$work/$n-enroll.log" "$mosaic" node enroll --data "$work/$n" --hub "$hub_url" --token "$etok"
done
node_pids=()
for n in "${names[@]}"; do
	"$mosaic" node serve --data "$work/$n" --listen 127.0.0.1:0 >"$work/$n.log" 2>&1 &
	pids+=($!)
	node_pids+=($!)
done

# Wait until every node is online and every dataset is in the catalogue
# (each node computes its catalogue summary when it connects).
t0=$(date +%s)
while :; do
	online=$(curl -sf -H "Authorization: Bearer $token" "$hub_url/api/v1/nodes" | jq '[.nodes[] | select(.status == "online")] | length' || echo 0)
	listed=$(curl -sf "$hub_url/api/v1/datasets" | jq '.total // 0' || echo 0)
	if [ "$online" = "$nodes" ] && [ "$listed" = "$nodes" ]; then break; fi
	alive "$hub_pid" "$work/hub.log" "the hub"
	for k in "${!node_pids[@]}"; do alive "${node_pids[$k]}" "$work/${names[$k]}.log" "node ${names[$k]}"; done
	if [ $(($(date +%s) - t0)) -gt 180 ]; then
		echo "after 180 s: $online of $nodes nodes online, $listed datasets in the catalogue" >&2
		tail -5 "$work/hub.log" >&2
		exit 1
	fi
	sleep 0.5
done
echo "all $nodes nodes online, $listed datasets in the catalogue after $(($(date +%s) - t0)) s"

status=0
warmup=20
for c in $clients; do
	echo
	n0=$(cpu_ms "${node_pids[@]}")
	h0=$(cpu_ms "$hub_pid")
	"$search" query -hub "$hub_url" -token "$token" -n "$queries" -c "$c" -warmup "$warmup" -nodes "$nodes" || status=1
	n1=$(cpu_ms "${node_pids[@]}")
	h1=$(cpu_ms "$hub_pid")
	echo "CPU per search (warm-up included): nodes $(((n1 - n0) / (queries + warmup))) ms (all $nodes together), hub $(((h1 - h0) / (queries + warmup))) ms"
	warmup=0
done

# The hub's own histogram of search times, for the record.
curl -sf "$hub_url/metrics" | awk '/^mosaic_hub_search_seconds_(sum|count)/{v[$1]=$2} END{if (v["mosaic_hub_search_seconds_count"] > 0) printf "hub: %d searches, mean %.1f ms (mosaic_hub_search_seconds)\n", v["mosaic_hub_search_seconds_count"], 1000*v["mosaic_hub_search_seconds_sum"]/v["mosaic_hub_search_seconds_count"]}'
echo
echo "machine: $(nproc) CPUs ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), $(df -T "$work" | awk 'NR==2{print $2}') file system, $(go version | cut -d' ' -f3)"
echo "load average (1, 5, 15 min): $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after"
exit $status
