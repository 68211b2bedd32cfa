// SPDX-License-Identifier: Apache-2.0
//! Fuzz target: Intel collateral: TCB info and QE identity (signed JSON bodies) and CRLs (the first byte picks which). Any input must give a value or a typed error: no panic, no
//! allocation beyond the parser's documented caps, no unbounded loop.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => drop(thimble_evidence::tdx::TcbInfoBody::parse(rest)),
        1 => drop(thimble_evidence::tdx::QeIdentityBody::parse(rest)),
        _ => drop(thimble_evidence::crl::Crl::parse(rest)),
    }
});
