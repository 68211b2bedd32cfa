#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Wall time of a whole `thimble collect` when no endorsement has to be fetched: the simulated
# configfs-tsm guest whose host attaches the certificate table (auxblob), so the run is report,
# chain check and bundle write. Uses hyperfine when installed, else a plain loop.
# Usage: bench/collect-speed.sh [BINARY] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/thimble}
runs=${2:-50}
[ -x "$bin" ] || cargo build --quiet --release -p thimble
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cmd="$bin collect --simulate snp --source configfs-tsm -o $out/e.json"
if command -v hyperfine >/dev/null 2>&1; then
  hyperfine --warmup 3 --runs "$runs" "$cmd"
else
  start=$(date +%s%N)
  for _ in $(seq "$runs"); do $cmd; done
  end=$(date +%s%N)
  awk -v s="$start" -v e="$end" -v n="$runs" 'BEGIN { printf "collect (auxblob, no fetch): %.2f ms per run over %d runs\n", (e - s) / 1e6 / n, n }'
fi
