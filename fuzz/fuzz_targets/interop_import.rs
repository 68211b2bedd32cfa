// SPDX-License-Identifier: Apache-2.0
//! Fuzz target: the other tools' evidence forms `import` reads (Trustee JSON, tsm-report, CMW,
//! go-sev-guest). Any input must give a value or a typed error: no panic, no allocation beyond
//! the parser's documented caps, no unbounded loop.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    use thimble_evidence::interop::{go_sev_guest, trustee, tsm_report};
    let _ = trustee::import(None, data);
    let _ = tsm_report::import(data);
    let _ = tsm_report::import_cmw(data);
    let _ = go_sev_guest::import(data);
});
