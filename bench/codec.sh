#!/usr/bin/env bash
# Side-by-side codec benchmark: Mosaic, dcmtk and pydicom on the same
# synthetic files, in one run, printing ratios.
#
#   bench/codec.sh [PATIENTS] [SIZE]     (defaults: 10 bench)
#
# Header parse: Mosaic (pixel data skipped) vs pydicom dcmread with
# stop_before_pixels in one process. Rewrite (read, write back unchanged):
# Mosaic's streaming rewrite vs pydicom dcmread+save_as in one process vs
# dcmtk's dcmconv (one process per file, as it is used).
set -euo pipefail
cd "$(dirname "$0")/.."
patients=${1:-10}
size=${2:-bench}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

go build -o "$work/mosaic" ./cmd/mosaic
go build -o "$work/codec" ./bench/codec
"$work/mosaic" synth --out "$work/cohort" --patients "$patients" --seed 42 --size "$size" >/dev/null 2>&1
find "$work/cohort/dicom" -name '*.dcm' | sort > "$work/files"
n=$(wc -l < "$work/files")
bytes=$(du -sb "$work/cohort/dicom" | cut -f1)
echo "cohort: $n files, $((bytes / 1000000)) MB ($size, $patients patients)"
sync

mkdir -p "$work/out-mosaic" "$work/out-pydicom" "$work/out-dcmtk"
mosaic_out=$("$work/codec" -in "$work/cohort/dicom" -out "$work/out-mosaic")
echo "$mosaic_out"
m_parse=$(echo "$mosaic_out" | awk '$1=="parse"{print $6}')
m_rw=$(echo "$mosaic_out" | awk '$1=="rewrite"{print $6}')

py_out=$(/usr/bin/python3 - "$work/files" "$work/out-pydicom" <<'PY'
import sys, time, os
import pydicom
files = [l.strip() for l in open(sys.argv[1])]
out = sys.argv[2]
t = time.perf_counter()
for p in files:
    pydicom.dcmread(p, stop_before_pixels=True)
el = time.perf_counter() - t
print("parse\t%d files\t%.3f s\t%.0f files/s" % (len(files), el, len(files) / el))
total = sum(os.path.getsize(p) for p in files)
t = time.perf_counter()
for i, p in enumerate(files):
    ds = pydicom.dcmread(p)
    ds.save_as(os.path.join(out, "%06d.dcm" % i))
el = time.perf_counter() - t
print("rewrite\t%d files\t%.3f s\t%.1f MB/s" % (len(files), el, total / el / 1e6))
PY
)
echo "$py_out" | sed "s/^/pydicom /"
p_parse=$(echo "$py_out" | awk '$1=="parse"{print $6}')
p_rw=$(echo "$py_out" | awk '$1=="rewrite"{print $6}')

start=$(date +%s.%N)
i=0
while read -r f; do
	dcmconv "$f" "$work/out-dcmtk/$i.dcm"
	i=$((i + 1))
done < "$work/files"
end=$(date +%s.%N)
d_rw=$(echo "$bytes $start $end" | awk '{printf "%.1f", $1 / ($3 - $2) / 1e6}')
echo "dcmtk rewrite	$n files	dcmconv	$d_rw MB/s"

echo
printf 'header parse: mosaic %s files/s, pydicom %s files/s, ratio %.1fx\n' "$m_parse" "$p_parse" "$(echo "$m_parse $p_parse" | awk '{print $1/$2}')"
printf 'rewrite: mosaic %s MB/s, pydicom %s MB/s (%.1fx), dcmtk dcmconv %s MB/s (%.1fx)\n' "$m_rw" "$p_rw" \
	"$(echo "$m_rw $p_rw" | awk '{print $1/$2}')" "$d_rw" "$(echo "$m_rw $d_rw" | awk '{print $1/$2}')"
