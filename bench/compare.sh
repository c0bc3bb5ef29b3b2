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
#   durable-1t-p50  fillrandom --sync=1 --threads=1, P50 us (dmalog vs fio write+fdatasync qd1)
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
dir=${dir:-$build/bench-data/compare}
mkdir -p "$dir"
out=$(mktemp -d "$dir/results.XXXX")
bench="$build/dmalog_bench"
for tool in "$bench" db_bench fio python3; do
  command -v "$tool" >/dev/null || [ -x "$tool" ] || { echo "compare.sh: $tool not found" >&2; exit 2; }
done
common="--key_size=16 --value_size=100"

run() {  # name tool args...  -> appends the output to $out/name.N
  local name=$1; shift
  for i in $(seq 1 "$runs"); do
    "$@" > "$out/$name.$i" 2>&1 || { echo "compare.sh: $name failed:" >&2; tail -5 "$out/$name.$i" >&2; exit 3; }
  done
}

echo "compare.sh: $(date -u +%F) on $(uname -r), $(nproc) CPUs, data in $dir; $runs run(s) each" >&2
run dm_durable16  "$bench" --db="$dir/dm" --benchmarks=fillrandom --sync=1 --threads=16 --num=2000 $common
run rk_durable16  db_bench --db="$dir/rk" --benchmarks=fillrandom --sync=1 --threads=16 --num=2000 $common
run dm_inflight   "$bench" --db="$dir/dm" --benchmarks=fillrandom --sync=1 --threads=2 --inflight=256 --num=300000 $common
run rk_best16     db_bench --db="$dir/rk" --benchmarks=fillrandom --sync=1 --threads=16 --num=2000 $common
run rk_best64     db_bench --db="$dir/rk" --benchmarks=fillrandom --sync=1 --threads=64 --num=500 $common
run dm_1t         "$bench" --db="$dir/dm" --benchmarks=fillrandom --sync=1 --threads=1 --num=5000 $common
run fio_wsync     fio --output-format=json --directory="$dir" fio-profiles/write-fdatasync-4k-qd1.fio --runtime=5
run dm_fillseq    "$bench" --db="$dir/dm" --benchmarks=fillseq --sync=0 --threads=1 --num=500000 $common
run rk_fillseq    db_bench --db="$dir/rk" --benchmarks=fillseq --sync=0 --threads=1 --num=500000 $common
run dm_read16     "$bench" --db="$dir/dm" --benchmarks=fillseq,readrandom --sync=0 --threads=16 --num=50000 --reads=5000 $common
run fio_rread     fio --output-format=json --directory="$dir" fio-profiles/randread-4k-qd16.fio --runtime=5 --size=512m

python3 - "$out" "$runs" <<'PY'
import json, re, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
def texts(name):
    return [open(f"{out}/{name}.{i}").read() for i in range(1, runs + 1)]
def ops(name, bench):
    vals = []
    for t in texts(name):
        m = re.search(rf"^{bench}\s*:\s*[\d.]+ micros/op (\d+) ops/sec", t, re.M)
        vals.append(float(m.group(1)))
    return statistics.median(vals)
def p50(name, bench):
    vals = []
    for t in texts(name):
        m = re.search(rf"^{bench}\s*:.*\nPercentiles: P50: ([\d.]+)", t, re.M)
        vals.append(float(m.group(1)))
    return statistics.median(vals)
def fio(name):
    iops, p50us = [], []
    for t in texts(name):
        j = json.loads(t[t.index("{"):])["jobs"][0]
        rw = "write" if j["write"]["io_bytes"] > 0 else "read"
        iops.append(j[rw]["iops"])
        lat = j[rw]["clat_ns"]["percentile"]["50.000000"]
        if "sync" in j and j["sync"].get("lat_ns", {}).get("percentile"):
            lat += j["sync"]["lat_ns"]["percentile"]["50.000000"]
        p50us.append(lat / 1000)
    return statistics.median(iops), statistics.median(p50us)
rows = []
d, r = ops("dm_durable16", "fillrandom"), ops("rk_durable16", "fillrandom")
rows.append(("durable puts, 16 threads (ops/s)", d, "db_bench", r, d / r, ">= 5x"))
best = max(ops("rk_best16", "fillrandom"), ops("rk_best64", "fillrandom"))
d = ops("dm_inflight", "fillrandom")
rows.append(("durable puts, 2x256 in flight (ops/s)", d, "db_bench best 16/64t", best, d / best, ">= 10x"))
fi, fp = fio("fio_wsync")
d = p50("dm_1t", "fillrandom")
rows.append(("durable put, 1 thread, P50 (us)", d, "fio write+fdatasync qd1", fp, d / fp, "<= 1.3x"))
d, r = ops("dm_fillseq", "fillseq"), ops("rk_fillseq", "fillseq")
rows.append(("fillseq --sync=0 (ops/s)", d, "db_bench", r, d / r, ">= 2x"))
ri, _ = fio("fio_rread")
d = ops("dm_read16", "readrandom")
rows.append(("readrandom, 16 threads, O_DIRECT (ops/s)", d, "fio randread qd16 IOPS", ri, d / ri, ">= 0.7x"))
print(f"{'workload':42} {'dmalog':>10}  {'baseline':26} {'value':>10} {'ratio':>7}  target")
for w, d, bn, b, ratio, target in rows:
    print(f"{w:42} {d:10.1f}  {bn:26} {b:10.1f} {ratio:7.2f}  {target}")
PY
echo "raw outputs: $out" >&2
