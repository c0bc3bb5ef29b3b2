#!/usr/bin/env bash
# Configures and builds dmalog into build/ (or $BUILD_DIR), passing extra
# arguments to cmake's configure step; BUILD_TARGETS limits the targets.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
# BUILD_TARGETS (space-separated) limits the build to those targets.
targets=()
for t in ${BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$BUILD_DIR" -j"$(nproc)" "${targets[@]}"
