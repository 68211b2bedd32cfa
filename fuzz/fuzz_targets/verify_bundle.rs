// SPDX-License-Identifier: Apache-2.0
//! Fuzz target: a whole bundle through verify, at a fixed time, with the pinned roots. Any input must give a value or a typed error: no panic, no
//! allocation beyond the parser's documented caps, no unbounded loop.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = thimble_evidence::bundle::Bundle::parse(data) {
        let options = thimble_verify::bundle::VerifyOptions::strict(1_780_000_000);
        let _ = thimble_verify::bundle::verify_bundle(&b, &options);
    }
});
