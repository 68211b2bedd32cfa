// SPDX-License-Identifier: Apache-2.0
//! Fuzz target: the SEV-SNP attestation report (1184 bytes), and its signed range. Any input must give a value or a typed error: no panic, no
//! allocation beyond the parser's documented caps, no unbounded loop.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = thimble_evidence::snp::SnpReport::parse(data) {
        let _ = r.signed_bytes();
        let _ = r.product_hint();
    }
});
