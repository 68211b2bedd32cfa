// SPDX-License-Identifier: Apache-2.0
//! Fuzz target: the GHCB certificate table a host attaches (configfs-tsm auxblob, SNP_GET_EXT_REPORT). Any input must give a value or a typed error: no panic, no
//! allocation beyond the parser's documented caps, no unbounded loop.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = thimble_evidence::snp::CertTable::parse(data);
});
