// SPDX-License-Identifier: Apache-2.0
//! Fuzz target: the Quote Generation Service's GET_QUOTE response over vsock. Any input must give a value or a typed error: no panic, no
//! allocation beyond the parser's documented caps, no unbounded loop.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = thimble_collect::qgs::decode_get_quote_resp(data);
});
