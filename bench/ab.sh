#!/usr/bin/env bash
# Compares two builds of dmalog_bench on one workload: the builds alternate,
# round by round (the order flips every round), and the script prints each
# run's ops/s and CPU per operation, each build's medians, and the median of
# the rounds' B/A ratios. On a VM whose device speed moves 3x within an hour,
# only such back-to-back pairs say anything about a change.
#
#   bench/ab.sh --a=OLD/dmalog_bench --b=NEW/dmalog_bench [--rounds=N] \
#       [--fill="FLAGS"] -- BENCH_FLAGS...
#
# --fill: dmalog_bench flags that fill one database first (with build A);
# every run then reuses it (--use_existing_db=1 is added). Without --fill,
# each run starts from an empty database.
# Example (readrandom, 16 threads):
#   bench/ab.sh --a=old/dmalog_bench --b=build/dmalog_bench --rounds=10 \
#     --fill="--benchmarks=fillseq --sync=0 --threads=16 --num=50000" -- \
#     --benchmarks=readrandom --threads=16 --num=50000 --reads=5000
set -euo pipefail
cd "$(dirname "$0")/.."
a="" b="" rounds=5 fill=""
while (($# > 0)); do
  case "$1" in
    --a=*) a=${1#--a=} ;;
    --b=*) b=${1#--b=} ;;
    --rounds=*) rounds=${1#--rounds=} ;;
    --fill=*) fill=${1#--fill=} ;;
    --) shift; break ;;
    *) echo "ab.sh: unknown argument '$1' (see the top of bench/ab.sh)" >&2; exit 2 ;;
  esac
  shift
done
[[ -x "$a" && -x "$b" ]] || { echo "ab.sh: --a and --b must name dmalog_bench binaries" >&2; exit 2; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "ab.sh: --rounds must be a number >= 1" >&2; exit 2; }
(($# > 0)) || { echo "ab.sh: give the dmalog_bench flags after --" >&2; exit 2; }
command -v python3 >/dev/null || { echo "ab.sh: needs python3" >&2; exit 2; }
common="--key_size=16 --value_size=100"
dir=build/bench-data/ab
rm -rf "$dir"
mkdir -p "$dir"
results="$dir/results.txt"
: >"$results"
if [[ -n "$fill" ]]; then
  # shellcheck disable=SC2086 # $fill is a list of flags.
  "$a" --db="$dir/db" $fill $common >"$dir/fill.log" 2>&1 || { cat "$dir/fill.log" >&2; exit 1; }
fi
# Runs build $2 (label $1) once and appends "label ops cpu" to the results.
run() {
  local label=$1 bin=$2 log="$dir/run.log"
  if [[ -n "$fill" ]]; then
    "$bin" --db="$dir/db" --use_existing_db=1 "${@:3}" $common >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
  else
    rm -rf "$dir/db"
    "$bin" --db="$dir/db" "${@:3}" $common >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
  fi
  local ops cpu
  ops=$(grep -m1 -E '^[a-z]+ +:' "$log" | awk '{print $5}')
  cpu=$(grep -m1 'CPU:' "$log" | sed -E 's/.*CPU: ([0-9.]+).*/\1/')
  echo "$label ${ops:-0} ${cpu:-0}" | tee -a "$results"
}
for ((r = 1; r <= rounds; r++)); do
  if ((r % 2 == 1)); then
    run A "$a" "$@"; run B "$b" "$@"
  else
    run B "$b" "$@"; run A "$a" "$@"
  fi
done
python3 - "$results" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
runs = {"A": [], "B": []}
for label, ops, cpu in rows:
    runs[label].append((float(ops), float(cpu)))
for label in "AB":
    ops = [o for o, _ in runs[label]]
    cpu = [c for _, c in runs[label]]
    print(f"{label}: median {statistics.median(ops):.0f} ops/s, "
          f"{statistics.median(cpu):.2f} us CPU/op (ops/s {min(ops):.0f}-{max(ops):.0f})")
ratios = [b[0] / a[0] for a, b in zip(runs["A"], runs["B"]) if a[0] > 0]
print(f"B/A ops/s, median of rounds: {statistics.median(ratios):.3f} "
      f"(range {min(ratios):.2f}-{max(ratios):.2f})")
EOF
