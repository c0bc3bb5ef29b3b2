#!/usr/bin/env bash
# The README's test command: set up, build, and run the whole test suite.
#   scripts/test.sh            RelWithDebInfo build in build/
#   scripts/test.sh --asan     ASan+UBSan build in build-asan/
#   scripts/test.sh --tsan     TSan build in build-tsan/ (concurrency tests)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
scripts/deps.sh
case "$mode" in
  "") export BUILD_DIR=build; cmake_args=() ; ctest_args=() ;;
  --asan) export BUILD_DIR=build-asan; cmake_args=(-DDMALOG_ASAN=ON -DDMALOG_BUILD_BENCH=OFF); ctest_args=() ;;
  --tsan)
    # The concurrency tests: the scheduler's, and the engine's many-thread test.
    export BUILD_DIR=build-tsan
    export BUILD_TARGETS="executor_test scheduling_test cross_shard_test io_class_test engine_test request_pool_test close_race_test op_gate_test write_order_test thread_rules_test multi_shard_forms_test callback_awaitable_test broken_ring_test caller_reads_test"
    cmake_args=(-DDMALOG_TSAN=ON -DDMALOG_BUILD_BENCH=OFF)
    ctest_args=(-R '^(ExecutorTest|SchedulingTest|CrossShardTest|IoClassTest|EngineTest|RequestPoolTest|CloseRaceTest|OpGateTest|WriteOrderStallTest|ThreadRulesTest|MultiShardFormsTest|CallbackAwaitableTest|BrokenRingTest|CallerReadsTest)\.|/WriteOrderTest\.|/MultiShardScanTest\.') ;;
  *) echo "usage: scripts/test.sh [--asan|--tsan]" >&2; exit 2 ;;
esac
scripts/build.sh "${cmake_args[@]}"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
if [ "$mode" = "--asan" ]; then
  # The plain run covers the full counts (200 kill -9 cycles, 1000 power-loss
  # seeds); under the sanitizers every cycle is several times slower, so they
  # run a sample that still crosses every code path.
  export DMALOG_CRASH_CYCLES=${DMALOG_CRASH_CYCLES:-25}
  export DMALOG_POWERLOSS_SEEDS=${DMALOG_POWERLOSS_SEEDS:-150}
  export DMALOG_POWERCUT_CYCLES=${DMALOG_POWERCUT_CYCLES:-20}
fi
ctest --test-dir "$BUILD_DIR" --output-on-failure -j2 --timeout 300 "${ctest_args[@]}"
