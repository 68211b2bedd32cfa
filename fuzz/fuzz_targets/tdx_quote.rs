// SPDX-License-Identifier: Apache-2.0
//! Fuzz target: the TDX quote (v4 and v5), with its certification data. Any input must give a value or a typed error: no panic, no
//! allocation beyond the parser's documented caps, no unbounded loop.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = thimble_evidence::tdx::TdxQuote::parse(data);
});
