#!/usr/bin/env bash
# Installs dmalog from build/ into a prefix inside the build tree, then builds
# examples/embed against the installed package (CMake and pkg-config) and
# runs it. Used by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
prefix="$PWD/$BUILD_DIR/install-prefix"
rm -rf "$prefix" "$BUILD_DIR/embed-example"
cmake --install "$BUILD_DIR" --prefix "$prefix" >/dev/null
cmake -S examples/embed -B "$BUILD_DIR/embed-example" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$BUILD_DIR/embed-example" -j"$(nproc)" >/dev/null
data="$PWD/$BUILD_DIR/test-data/embed-example"
rm -rf "$data"
"$BUILD_DIR/embed-example/embed_example" "$data"
# The same program through pkg-config.
PKG_CONFIG_PATH="$prefix/lib/pkgconfig" g++ -o "$BUILD_DIR/embed-example/embed_pc" \
  examples/embed/main.cc $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs --static dmalog)
rm -rf "$data"
"$BUILD_DIR/embed-example/embed_pc" "$data" >/dev/null
echo "check-install: the installed package builds and runs examples/embed (CMake and pkg-config)"
