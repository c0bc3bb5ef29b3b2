#!/usr/bin/env bash
# Runs dmalog_bench, RocksDB's db_bench and fio on the same workloads in one
# run, on the same filesystem, and prints one table of medians and ratios.
#
#   bench/compare.sh [--runs=3] [--build=build] [--dir=build/bench-data/compare]
#
# Workloads (16-byte keys made as db_bench makes them, 100-byte values):
#   durable-16t     fillrandom --sync=1 --threads=16        (dmalog vs db_bench)
#   durable-inflight fillrandom --sync=1 --inflight=256      (dmalog vs db_bench's best of 16/64 threads)
#                    (600 K operations, about 2 s: long enough that a new
#                    database's segment preparation is not most of the run)
#   durable-1t-p50  fillrandom --sync=1 --threads=1, P50 us (dmalog vs fio write+fdatasync qd1:
#                   the P50 of the write's whole latency, submission included, plus the
#                   P50 of the fdatasync's)
#   fillseq-nosync  fillseq --sync=0                        (dmalog vs db_bench)
#   readrandom-16t  readrandom --threads=16, O_DIRECT        (dmalog vs fio randread qd16)
# Needs: build/dmalog_bench, db_bench (rocksdb-tools), fio, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=3
build=build
dir=""
for arg in "$@"; do
  case "$arg" in
    --runs=*) runs=${arg#--runs=} ;;
    --build=*) build=${arg#--build=} ;;
    --dir=*) dir=${arg#--dir=} ;;
    *) echo "usage: bench/compare.sh [--runs=N] [--build=DIR] [--dir=DATA_DIR]" >&2; exit 2 ;;
  esac
done
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: --runs must be a number >= 1, not '$runs'" >&2; exit 2; }
dir=${dir:-$build/bench-data/compare}
mkdir -p "$dir"
out=$(mktemp -d "$dir/results.XXXX")
bench="$build/dmalog_bench"
for tool in "$bench" db_bench fio python3; do
  command -v "$tool" >/dev/null || [ -x "$tool" ] || { echo "compare.sh: $tool not found" >&2; exit 2; }
done
common="--key_size=16 --value_size=100"

# One command per workload side; each writes its output to $out/NAME.ROUND.
cmd_dm_durable16() { "$bench" --db="$dir/dm" --benchmarks=fillrandom --sync=1 --threads=16 --num=2000 $common; }
cmd_rk_durable16() { db_bench --db="$dir/rk" --benchmarks=fillrandom --sync=1 --threads=16 --num=2000 $common; }
cmd_dm_inflight()  { "$bench" --db="$dir/dm" --benchmarks=fillrandom --sync=1 --threads=2 --inflight=256 --num=300000 $common; }
cmd_rk_best16()    { cmd_rk_durable16; }
cmd_rk_best64()    { db_bench --db="$dir/rk" --benchmarks=fillrandom --sync=1 --threads=64 --num=500 $common; }
cmd_dm_1t()        { "$bench" --db="$dir/dm" --benchmarks=fillrandom --sync=1 --threads=1 --num=5000 $common; }
cmd_fio_wsync()    { fio --output-format=json --directory="$dir" fio-profiles/write-fdatasync-4k-qd1.fio --runtime=5; }
cmd_dm_fillseq()   { "$bench" --db="$dir/dm" --benchmarks=fillseq --sync=0 --threads=1 --num=500000 $common; }
cmd_rk_fillseq()   { db_bench --db="$dir/rk" --benchmarks=fillseq --sync=0 --threads=1 --num=500000 $common; }
cmd_dm_read16()    { "$bench" --db="$dir/dm" --benchmarks=fillseq,readrandom --sync=0 --threads=16 --num=50000 --reads=5000 $common; }
cmd_fio_rread()    { fio --output-format=json --directory="$dir" fio-profiles/randread-4k-qd16.fio --runtime=5 --size=512m; }
# dmalog and its baseline(s) run back to back, so that all see the same phase
# of a shared device (on the VM, fio's randread IOPS moved from 50 K to
# 170 K within an hour); the order in a group flips every round, and the
# ratio reported is the median of the rounds' ratios.
groups="dm_durable16:rk_durable16 dm_inflight:rk_best16:rk_best64 dm_1t:fio_wsync dm_fillseq:rk_fillseq dm_read16:fio_rread"

one() {  # name round -> $out/name.round
  "cmd_$1" > "$out/$1.$2" 2>&1 || { echo "compare.sh: $1 failed:" >&2; tail -5 "$out/$1.$2" >&2; exit 3; }
}

echo "compare.sh: $(date -u +%F) on $(uname -r), $(nproc) CPUs, data in $dir; $runs round(s)" >&2
for i in $(seq 1 "$runs"); do
  for group in $groups; do
    IFS=: read -ra names <<< "$group"
    if (( i % 2 == 0 )); then  # Reversed on even rounds.
      for (( k = ${#names[@]} - 1; k >= 0; k-- )); do one "${names[k]}" "$i"; done
    else
      for name in "${names[@]}"; do one "$name" "$i"; done
    fi
  done
  echo "compare.sh: round $i of $runs done" >&2
done

python3 - "$out" "$runs" <<'PY'
import json, re, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
med = statistics.median
def texts(name):
    return [open(f"{out}/{name}.{i}").read() for i in range(1, runs + 1)]
def ops(name, bench):  # one figure per round
    vals = []
    for t in texts(name):
        m = re.search(rf"^{bench}\s*:\s*[\d.]+ micros/op (\d+) ops/sec", t, re.M)
        vals.append(float(m.group(1)))
    return vals
def p50(name, bench):
    vals = []
    for t in texts(name):
        m = re.search(rf"^{bench}\s*:.*\nPercentiles: P50: ([\d.]+)", t, re.M)
        vals.append(float(m.group(1)))
    return vals
def fio(name):  # (IOPS, P50 us) per round
    iops, p50us = [], []
    for t in texts(name):
        j = json.loads(t[t.index("{"):])["jobs"][0]
        rw = "write" if j["write"]["io_bytes"] > 0 else "read"
        iops.append(j[rw]["iops"])
        # The whole latency (submission + completion) when the profile asks
        # fio for it (lat_percentiles=1), as a dmalog call's latency is.
        lat_ns = j[rw]["lat_ns"] if "percentile" in j[rw]["lat_ns"] else j[rw]["clat_ns"]
        lat = lat_ns["percentile"]["50.000000"]
        if "sync" in j and j["sync"].get("lat_ns", {}).get("percentile"):
            lat += j["sync"]["lat_ns"]["percentile"]["50.000000"]
        p50us.append(lat / 1000)
    return iops, p50us
rows = []
def row(workload, d, base_name, b, target):
    ratios = [x / y for x, y in zip(d, b)]
    rows.append((workload, med(d), base_name, med(b), med(ratios), min(ratios), max(ratios), target))
row("durable puts, 16 threads (ops/s)", ops("dm_durable16", "fillrandom"), "db_bench",
    ops("rk_durable16", "fillrandom"), ">= 5x")
best = [max(x, y) for x, y in zip(ops("rk_best16", "fillrandom"), ops("rk_best64", "fillrandom"))]
row("durable puts, 2x256 in flight (ops/s)", ops("dm_inflight", "fillrandom"),
    "db_bench best 16/64t", best, ">= 10x")
row("durable put, 1 thread, P50 (us)", p50("dm_1t", "fillrandom"), "fio write+fdatasync qd1",
    fio("fio_wsync")[1], "<= 1.3x")
row("fillseq --sync=0 (ops/s)", ops("dm_fillseq", "fillseq"), "db_bench",
    ops("rk_fillseq", "fillseq"), ">= 2x")
row("readrandom, 16 threads, O_DIRECT (ops/s)", ops("dm_read16", "readrandom"),
    "fio randread qd16 IOPS", fio("fio_rread")[0], ">= 0.7x")
print("Figures are medians over the rounds; the ratio is the median of the rounds' ratios")
print("(dmalog and its baseline run back to back in each round), with their range.")
print(f"{'workload':42} {'dmalog':>10}  {'baseline':24} {'value':>10} {'ratio':>6} {'range':>12}  target")
for w, d, bn, b, ratio, lo, hi, target in rows:
    rng = f"{lo:.2f}-{hi:.2f}"
    print(f"{w:42} {d:10.1f}  {bn:24} {b:10.1f} {ratio:6.2f} {rng:>12}  {target}")
PY
echo "raw outputs: $out" >&2
