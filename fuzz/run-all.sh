#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Seeds the fuzz corpora from the recorded vectors (tests/vectors) and runs every fuzz target for
# SECONDS each (default 30) on the stable toolchain (`cargo fuzz run -s none`), with libFuzzer's
# RSS limit so that an allocation beyond the parsers' caps fails the run. A crash, a time-out or
# an out-of-memory stops the script with libFuzzer's exit code and leaves the input in
# fuzz/artifacts/TARGET/. CI runs it for a few seconds per target; run it longer by hand, or with
# `RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET` for the address sanitizer.
#
# Usage: [THIMBLE_BIN=path/to/dev/thimble] fuzz/run-all.sh [SECONDS] [TARGET...]
# (THIMBLE_BIN, a build with the simulator, seeds the bundle targets with simulated bundles.)
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-30}
shift || true
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked --quiet cargo-fuzz --version 0.13.2
v=../tests/vectors

# seed TARGET [PREFIX_BYTE] FILE...: copies the files into the target's corpus (named by their
# hash, so that seeding twice adds nothing), each after PREFIX_BYTE when one is given (as
# 0x00..0xff) for the targets whose first byte chooses a parser.
seed() {
  target=$1
  shift
  prefix=
  case "${1:-}" in 0x??) prefix=$1; shift ;; esac
  mkdir -p "corpus/$target"
  for f in "$@"; do
    [ -f "$f" ] || continue
    tmp=$(mktemp)
    if [ -n "$prefix" ]; then
      printf "\\x${prefix#0x}" >"$tmp"
    fi
    cat "$f" >>"$tmp"
    mv "$tmp" "corpus/$target/seed-$(sha256sum "$tmp" 2>/dev/null | cut -c1-16 || sha256sum <"$tmp" | cut -c1-16)"
  done
}
shopt -s nullglob
seed snp_report "$v"/snp/*/report.bin
seed amd_cert "$v"/snp/*/vcek.der "$v"/snp/*/*.pem "$v"/azure/*/vcek* "$v"/roots/*
seed tdx_quote "$v"/tdx/*/quote.bin "$v"/azure/*/quote.bin
seed intel_collateral 0x00 "$v"/tdx/*/tcb_info.json "$v"/azure/*/tcb_info.json
seed intel_collateral 0x01 "$v"/tdx/*/qe_identity.json "$v"/azure/*/qe_identity.json
seed intel_collateral 0x02 "$v"/tdx/*/*crl.der "$v"/crl/*
seed hcl_report "$v"/azure/*/hcl_report.bin "$v"/azure/*/tpm_quote.json
seed service_json "$v"/snp/*/thim.json
seed event_log "$v"/eventlog/*/*
# Bundles of every TEE, from the simulator of a development binary when one is given.
if [ -n "${THIMBLE_BIN:-}" ] && [ -x "$THIMBLE_BIN" ]; then
  bundles=$(mktemp -d)
  for tee in snp tdx azure-snp azure-tdx; do
    "$THIMBLE_BIN" collect --simulate "$tee" -o "$bundles/$tee.json" 2>/dev/null || :
  done
  seed bundle "$bundles"/*.json
  seed verify_bundle "$bundles"/*.json
  rm -rf "$bundles"
fi
seed verifier_messages
seed interop_import
for t in cert_table td_report qgs_response tpm_response; do seed "$t"; done

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
for t in "${targets[@]}"; do
  echo "==> fuzz $t for ${secs}s"
  cargo fuzz run -s none "$t" "corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 2>&1 |
    grep -E '^(#[0-9]+ *DONE|stat::number_of_executed_units|==|ERROR|SUMMARY|Done)' || true
  # The pipeline hides libFuzzer's status: a crash leaves an artifact.
  if compgen -G "artifacts/$t/*" >/dev/null; then
    echo "fuzz: $t found a failing input: $(ls "artifacts/$t")" >&2
    exit 1
  fi
done
echo "fuzz: every target ran ${secs}s without a failure"
