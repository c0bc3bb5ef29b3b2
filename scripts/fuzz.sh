#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/*_fuzz.cc) with clang-14 in build-fuzz/
# and runs each over a scratch copy of its seed corpus (fuzz/corpus/<target>).
#   scripts/fuzz.sh                  every target for 60 s (what CI runs)
#   scripts/fuzz.sh --seconds=3600   a longer run
#   scripts/fuzz.sh record_fuzz ...  only the named targets
# Exits non-zero when any target crashes, hangs or fails a check; the input
# that did is kept in build-fuzz/fuzz-artifacts/ (replay it with
# build-fuzz/<target> <file>). New corpus entries stay in
# build-fuzz/fuzz-scratch/<target>/ (copy good small ones into fuzz/corpus).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=60
targets=()
for arg in "$@"; do
  case "$arg" in
    --seconds=*) seconds=${arg#--seconds=} ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown flag $arg" >&2; exit 2 ;;
    *) targets+=("$arg") ;;
  esac
done
if ((${#targets[@]} == 0)); then
  targets=(record_fuzz cli_fuzz recovery_fuzz api_fuzz hint_fuzz)
fi
# Largest input each target is given (bytes): enough for its format.
declare -A max_len=([record_fuzz]=65536 [cli_fuzz]=1024 [recovery_fuzz]=16384 [api_fuzz]=4096
  [hint_fuzz]=16384)

scripts/deps.sh
# BUILD_DIR=build-x scripts/fuzz.sh ... builds elsewhere (one per engineer).
export BUILD_DIR=${BUILD_DIR:-build-fuzz}
CC=clang-14 CXX=clang++-14 cmake -S . -B "$BUILD_DIR" -DDMALOG_FUZZ=ON \
  -DDMALOG_BUILD_TESTS=OFF -DDMALOG_BUILD_BENCH=OFF >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target "${targets[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
artifacts="$BUILD_DIR/fuzz-artifacts"
mkdir -p "$artifacts"
# Runs one target; its exit status says whether it found a crash.
run_target() {
  local t=$1
  local scratch="$BUILD_DIR/fuzz-scratch/$t"
  rm -rf "$scratch"
  mkdir -p "$scratch"
  cp fuzz/corpus/"$t"/* "$scratch"/
  echo "fuzz: $t for ${seconds} s"
  # -timeout: one input taking longer is a hang (recovery_fuzz opens the
  # database about eight times per input).
  "$BUILD_DIR/$t" -max_total_time="$seconds" -timeout=60 -rss_limit_mb=4096 \
      -max_len="${max_len[$t]:-4096}" -print_final_stats=1 \
      -artifact_prefix="$artifacts/$t-" "$scratch" >"$BUILD_DIR/fuzz-$t.log" 2>&1
}
# One target per CPU at a time (each fuzzer is single-threaded).
parallel=$(nproc)
failed=()
for ((i = 0; i < ${#targets[@]}; i += parallel)); do
  batch=("${targets[@]:i:parallel}")
  pids=()
  for t in "${batch[@]}"; do
    run_target "$t" &
    pids+=($!)
  done
  for j in "${!batch[@]}"; do
    t=${batch[$j]}
    if ! wait "${pids[$j]}"; then
      tail -n 60 "$BUILD_DIR/fuzz-$t.log" >&2
      failed+=("$t")
    fi
    grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec)' \
      "$BUILD_DIR/fuzz-$t.log" | sed "s/^/fuzz: $t: /"
  done
done
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]} (inputs in $artifacts, logs in $BUILD_DIR/fuzz-*.log)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds} s each, no crash"
