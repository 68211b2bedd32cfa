// SPDX-License-Identifier: Apache-2.0
//! Fuzz target: the JSON of THIM (AMD certification) and of a QCNL configuration. Any input must give a value or a typed error: no panic, no
//! allocation beyond the parser's documented caps, no unbounded loop.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = thimble_evidence::thim::ThimAmdCertification::parse(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = thimble_evidence::tdx::qcnl::parse(text);
    }
});
