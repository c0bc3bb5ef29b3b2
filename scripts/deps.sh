#!/usr/bin/env bash
# Installs what dmalog needs on a fresh Debian 12 machine (idempotent).
# g++, cmake, GoogleTest and Google Benchmark come with the machine image.
set -euo pipefail
pkgs=(cmake g++ pkg-config liburing-dev libxxhash-dev libgflags-dev libgtest-dev
      libbenchmark-dev libabsl-dev python3 librocksdb-dev rocksdb-tools fio xfsprogs
      clang-14 libclang-rt-14-dev libfuse3-dev fuse3)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
