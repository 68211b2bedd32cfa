// SPDX-License-Identifier: Apache-2.0
//! Fuzz target: AMD certificates (VCEK, VLEK, ASK, ARK) in DER, and recognising any file by content. Any input must give a value or a typed error: no panic, no
//! allocation beyond the parser's documented caps, no unbounded loop.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = thimble_evidence::snp::AmdCert::parse_der(data);
    let _ = thimble_evidence::cert_file::recognise(data);
});
