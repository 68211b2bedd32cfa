// SPDX-License-Identifier: Apache-2.0
//! What the in-process benchmark drivers (`bench_verify`, `bench_verify_tdx`) share: the
//! iteration count from the command line, reading a vector's files, and the timed loop with the
//! output `bench/verify-speed.sh` and `bench/run` read.

use std::time::Instant;

/// The first argument as the iteration count, 300 without one.
pub fn iterations() -> u32 {
    std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(300)
}

/// A file of the vector case `case` (a path under tests/vectors).
pub fn vector_file(case: &str, name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/vectors/{case}/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs `run` ten times unmeasured (caches, lazily parsed roots), then `iters` times, and prints
/// `iterations N` and `per_verification_us T`, the mean.
pub fn time(iters: u32, run: impl Fn()) {
    for _ in 0..10 {
        run();
    }
    let start = Instant::now();
    for _ in 0..iters {
        run();
    }
    let per = start.elapsed().as_secs_f64() * 1e6 / f64::from(iters);
    println!("iterations {iters}");
    println!("per_verification_us {per:.1}");
}
