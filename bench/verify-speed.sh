#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Verification speed of thimble against OpenSSL doing the same signature work.
#
# One SEV-SNP verification checks two RSA-4096 PSS signatures (ASK under ARK, VCEK under ASK)
# and one ECDSA P-384 signature (the report). This script measures thimble's in-process
# verification of a real Milan report (tests/vectors/snp/milan-v3-oak) with the release build of
# agent/verify/examples/bench_verify.rs, asks `openssl speed` for its RSA-4096 and ECDSA P-384
# verification rates on this machine, and prints the ratio thimble / OpenSSL.
# The last two lines, `thimble_us=` and `openssl_us=`, are for bench/run.
# Usage: bench/verify-speed.sh [ITERATIONS]   (CARGO_TARGET_DIR is honoured)
set -euo pipefail
cd "$(dirname "$0")/.."
iters=${1:-300}
target=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --quiet --release --locked --example bench_verify -p thimble-verify
thimble_us=$("$target/release/examples/bench_verify" "$iters" | awk '/^per_verification_us/ { print $2 }')
speed=$(openssl speed -seconds 2 -mr rsa4096 ecdsap384 2>/dev/null)
# -mr lines: "+F2:<n>:<bits>:<sign/s>:<verify/s>" for RSA, "+F4:<n>:<bits>:<sign/s>:<verify/s>" for ECDSA.
rsa_verify_per_s=$(printf '%s\n' "$speed" | awk -F: '/^\+F2:/ && $3 == 4096 { print $5 }' | tail -1)
ec_verify_per_s=$(printf '%s\n' "$speed" | awk -F: '/^\+F4:/ && $3 == 384 { print $5 }' | tail -1)
if [ -z "$rsa_verify_per_s" ] || [ -z "$ec_verify_per_s" ]; then
  echo "verify-speed: could not read openssl speed output" >&2
  printf '%s\n' "$speed" >&2
  exit 1
fi
awk -v t="$thimble_us" -v r="$rsa_verify_per_s" -v e="$ec_verify_per_s" 'BEGIN {
  o = 2 * 1e6 / r + 1e6 / e
  printf "thimble verify (parse, chain, binding, signatures): %.1f us\n", t
  printf "openssl, same signatures (2 x RSA-4096 verify + 1 x P-384 verify): %.1f us\n", o
  printf "ratio thimble/openssl: %.2f\n", t / o
  printf "thimble_us=%.1f\nopenssl_us=%.1f\n", t, o
}'
