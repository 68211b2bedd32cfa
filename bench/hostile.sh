#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Time and memory of `thimble verify` on the most hostile bundles the format allows (built by
# agent/verify/examples/hostile_bundles from real vectors): a certificate table of overlapping
# entries, 7 MiB of claims, a bundle at the 8 MiB limit full of look-alike certificates, and a
# TDX quote behind look-alike Intel CAs. The target is that any bundle up to the limit is decided
# in well under a second with under 128 MiB; the tests assert the counts behind it (signature
# checks, bytes allocated) and never time anything.
# Usage: bench/hostile.sh [BINARY]   (default: the release build, built here)
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-$PWD/target}
bin=${1:-}
if [ -z "$bin" ]; then
  cargo build --quiet --release --locked -p thimble
  bin=$target/release/thimble
fi
cargo build --quiet --release --locked --example hostile_bundles -p thimble-verify
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$target/release/examples/hostile_bundles" "$dir" >/dev/null
printf '%-20s %10s %8s %10s %s\n' bundle bytes exit ms max_rss_kib
for json in "$dir"/*.json; do
  name=$(basename "$json" .json)
  at=$(cat "$dir/$name.at")
  start=$(date +%s%N)
  # GNU time is not on every machine; /proc gives the peak RSS of the child just as well.
  set +e
  "$bin" verify --json --at "$at" "$json" >"$dir/$name.out" 2>&1 &
  pid=$!
  peak=0
  while kill -0 "$pid" 2>/dev/null; do
    rss=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$rss" ] && [ "$rss" -gt "$peak" ] && peak=$rss
    sleep 0.001
  done
  wait "$pid"
  code=$?
  set -e
  end=$(date +%s%N)
  printf '%-20s %10d %8d %10.1f %s\n' "$name" "$(stat -c %s "$json")" "$code" \
    "$(awk -v a="$start" -v b="$end" 'BEGIN { print (b - a) / 1e6 }')" "$peak"
done
