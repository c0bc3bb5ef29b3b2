#!/usr/bin/env bash
# The README's "run" command: set up, build, and run `dmalog demo` on the
# default database directory (./dmalog-data).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh -DDMALOG_BUILD_TESTS=OFF -DDMALOG_BUILD_BENCH=OFF
exec build/dmalog demo "$@"
