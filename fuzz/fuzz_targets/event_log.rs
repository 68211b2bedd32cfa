// SPDX-License-Identifier: Apache-2.0
//! Fuzz target: measured-boot event logs (TCG crypto-agile, CCEL) and the ACPI CCEL table, with their claims. Any input must give a value or a typed error: no panic, no
//! allocation beyond the parser's documented caps, no unbounded loop.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(log) = thimble_evidence::eventlog::EventLog::parse(data) {
        let _ = thimble_evidence::eventlog::EventLogClaims::from_log(&log);
    }
    let _ = thimble_evidence::eventlog::CcelTable::parse(data);
});
