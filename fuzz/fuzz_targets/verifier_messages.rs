// SPDX-License-Identifier: Apache-2.0
//! Fuzz target: the answers of remote verifiers (KBS challenge and resource JWE, ITA nonce, Veraison session, tokens) and the requests their emulators read. Any input must give a value or a typed error: no panic, no
//! allocation beyond the parser's documented caps, no unbounded loop.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    use thimble_evidence::attest::{Verifier, ita, kbs, token, veraison};
    let _ = kbs::parse_challenge(data);
    let _ = kbs::parse_jwe(data);
    let _ = kbs::parse_auth_request(data);
    let _ = kbs::parse_attest_request(data);
    let _ = ita::parse_nonce(data);
    let _ = ita::parse_attest_request(data);
    let _ = veraison::parse_session(data);
    let _ = token::parse_token_answer(Verifier::Maa, data);
});
