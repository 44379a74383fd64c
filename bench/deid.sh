#!/usr/bin/env bash
# Side-by-side de-identification benchmark on one synthetic corpus, in one
# run: mosaic deid (basic preset), gdcmanon (GDCM's PS3.15 basic profile)
# and cp -r as the floor (the same bytes read and written, no work).
#
#   bench/deid.sh [PATIENTS] [REPEAT]      (defaults: 10 5)
#
# PATIENTS sizes the `mosaic synth --size bench` corpus (10 patients: about
# 2,600 files, 1 GB). Each tool runs REPEAT times, in turns (each turn
# starting with another tool), each time into a new output folder on the
# corpus's file system after `sync`. The best and the median time of each
# are printed: on a shared machine, other load and the file system's state
# make single runs vary by a factor of two or more. The corpus is read once
# beforehand so every run starts from the page cache. Outputs are deleted
# only after each turn, followed by a pause of DEID_BENCH_SETTLE seconds
# (default 40): ext4 without a journal checks inodes freed in the last half
# minute when it allocates new ones, which slows whatever runs right after
# a large deletion. Set DEID_BENCH_DIR to put the corpus and outputs
# elsewhere than $TMPDIR (or /tmp).
#
# mosaic runs twice per turn: with --sync=false, which is what cp -r and
# gdcmanon do (they leave writeback to the system), and as it runs by
# default, ending with one sync of the output's file system, which is
# compared with "cp -r; sync". The ratios compare like with like.
set -euo pipefail
cd "$(dirname "$0")/.."
patients=${1:-10}
repeat=${2:-5}
settle=${DEID_BENCH_SETTLE:-40}
base=${DEID_BENCH_DIR:-${TMPDIR:-/tmp}}
work=$(mktemp -d "$base/deid-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

if ! command -v gdcmanon >/dev/null; then
	echo "installing gdcmanon (Debian package libgdcm-tools)..." >&2
	apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libgdcm-tools >/dev/null
fi
gdcm_version=$(dpkg-query -W -f '${Version}' libgdcm-tools 2>/dev/null || echo unknown)

go build -o "$work/mosaic" ./cmd/mosaic
"$work/mosaic" synth --out "$work/cohort" --patients "$patients" --seed 42 --size bench -q >/dev/null
corpus="$work/cohort/dicom"
n=$(find "$corpus" -type f | wc -l)
bytes=$(du -sb "$corpus" | cut -f1)
risky=$(grep -c '"burned_in_text"' "$work/cohort/manifest.json" || true)
echo "corpus: $n files, $((bytes / 1000000)) MB ($patients patients, --size bench, seed 42; $risky with burned-in text)"
echo "machine: $(nproc) CPUs, $(uname -sr), $(df -T "$work" | awk 'NR==2{print $2}') file system; gdcmanon $gdcm_version"

# A throwaway certificate: gdcmanon's basic profile encrypts the original
# attributes into the Encrypted Attributes Sequence with it.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
	-days 1 -subj /CN=bench >/dev/null 2>&1

# Warm-up: read the whole corpus into the page cache.
find "$corpus" -type f -exec cat {} + >/dev/null

declare -A best files all
now() { date +%s.%N; }
# measure NAME OUTDIR COMMAND...: one timed run into a new OUTDIR.
measure() {
	local name=$1 out=$2
	shift 2
	sync
	local t0 t1 el
	t0=$(now)
	"$@" >/dev/null 2>"$work/$name.err" || {
		local rc=$?
		# mosaic exits 1 when an object failed; anything else is fatal.
		if [ "$name" != "mosaic" ] && [ "$name" != "mosaic-nosync" ] || [ $rc -ne 1 ]; then
			echo "$name failed (exit $rc):" >&2
			tail -5 "$work/$name.err" >&2
			exit 1
		fi
	}
	t1=$(now)
	el=$(echo "$t0 $t1" | awk '{printf "%.3f", $2 - $1}')
	files[$name]=$(find "$out" -type f -name '*.dcm' | wc -l)
	all[$name]="${all[$name]:-} $el"
	if [ -z "${best[$name]:-}" ] || awk -v a="$el" -v b="${best[$name]}" 'BEGIN{exit !(a < b)}'; then
		best[$name]=$el
	fi
	printf '  %-14s %7.3f s  %6d files\n' "$name" "$el" "${files[$name]}"
}

# run_tool NAME OUTBASE: one timed run of a tool.
run_tool() {
	local o=$2
	case $1 in
	cp) measure cp "$o/cp" cp -r "$corpus" "$o/cp" ;;
	cp-sync) measure cp-sync "$o/cp-sync" sh -c 'cp -r "$1" "$2" && sync' sh "$corpus" "$o/cp-sync" ;;
	gdcmanon) measure gdcmanon "$o/gdcm" gdcmanon -e -c "$work/cert.pem" -r --continue -i "$corpus" -o "$o/gdcm" ;;
	mosaic-nosync) measure mosaic-nosync "$o/mosaic-nosync" "$work/mosaic" deid -q --sync=false --policy basic \
		--site-key "$work/site.key" -o "$o/mosaic-nosync" "$corpus" ;;
	mosaic) measure mosaic "$o/mosaic" "$work/mosaic" deid -q --policy basic --site-key "$work/site.key" \
		-o "$o/mosaic" "$corpus" ;;
	esac
}

tools=(cp mosaic-nosync gdcmanon cp-sync mosaic)
for i in $(seq 1 "$repeat"); do
	echo "run $i of $repeat"
	o="$work/out$i"
	mkdir -p "$o"
	# Each turn starts with another tool, so none always runs first.
	for k in $(seq 0 $((${#tools[@]} - 1))); do
		run_tool "${tools[$(((k + i - 1) % ${#tools[@]}))]}" "$o"
	done
	rm -rf "$o"
	sync
	if [ "$i" -lt "$repeat" ]; then sleep "$settle"; fi
done

ratio() { echo "$1 $2" | awk '{printf "%.2f", $1 / $2}'; }
mb() { echo "$bytes $1" | awk '{printf "%.0f", $1 / $2 / 1e6}'; }
median() { echo "${all[$1]}" | tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END{printf "%.3f", NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
row() { printf '  %-36s %7.3f s  %7s s  %6d files  %5s MB/s\n' "$1" "${best[$2]}" "$(median "$2")" "${files[$2]}" "$(mb "${best[$2]}")"; }
echo
echo "wall time, best and median of $repeat; files written; input MB/s at the best time:"
row "cp -r" cp
row "gdcmanon -e (basic profile)" gdcmanon
row "mosaic deid --sync=false" mosaic-nosync
row "cp -r; sync" cp-sync
row "mosaic deid (default: final syncfs)" mosaic
echo "ratios of best times (of medians) (target: mosaic <= 0.6x gdcmanon, <= 1.3x cp -r):"
both() { echo "$(ratio "${best[$1]}" "${best[$2]}") ($(ratio "$(median "$1")" "$(median "$2")"))"; }
echo "  mosaic --sync=false / gdcmanon:   $(both mosaic-nosync gdcmanon)"
echo "  mosaic --sync=false / cp -r:      $(both mosaic-nosync cp)"
echo "  gdcmanon / cp -r:                 $(both gdcmanon cp)"
echo "  mosaic (with sync) / cp -r; sync: $(both mosaic cp-sync)"
echo "mosaic writes fewer files: it rejects the objects with text burned into the pixels (see the summary of 'mosaic deid')."
