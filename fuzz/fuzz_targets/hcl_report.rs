// SPDX-License-Identifier: Apache-2.0
//! Fuzz target: the Azure HCL report from the vTPM, its runtime data, and the TPM quote JSON. Any input must give a value or a typed error: no panic, no
//! allocation beyond the parser's documented caps, no unbounded loop.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = thimble_evidence::azure::HclReport::parse(data) {
        let _ = h.runtime_data();
        let _ = h.snp_report();
        let _ = h.td_report();
    }
    let _ = thimble_evidence::azure::RuntimeData::parse(data);
    let _ = thimble_evidence::azure::TpmQuote::parse_json(data);
    let _ = thimble_evidence::azure::TpmsAttest::parse(data);
});
