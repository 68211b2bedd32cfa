#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Size of the static thimble binary against the budget ("a couple of MiB").
# Usage: bench/size.sh [BINARY]   (default: the musl release build)
# Exits 1 when the binary is over THIMBLE_SIZE_BUDGET bytes (default 3.5 MiB), so CI notices growth.
set -euo pipefail
bin=${1:-target/x86_64-unknown-linux-musl/release/thimble}
budget=${THIMBLE_SIZE_BUDGET:-3670016}
[ -f "$bin" ] || { echo "size: $bin not found; build it with: cargo build --release --target x86_64-unknown-linux-musl -p thimble --no-default-features" >&2; exit 2; }
size=$(stat -c %s "$bin")
awk -v s="$size" -v b="$budget" -v f="$bin" 'BEGIN { printf "size: %s is %d bytes (%.2f MiB), budget %.2f MiB\n", f, s, s/1048576, b/1048576 }'
if [ "$size" -gt "$budget" ]; then
  echo "size: over budget" >&2
  exit 1
fi
