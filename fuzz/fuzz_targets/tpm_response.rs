// SPDX-License-Identifier: Apache-2.0
//! Fuzz target: TPM 2.0 responses: the frame, then each response body thimble reads. Any input must give a value or a typed error: no panic, no
//! allocation beyond the parser's documented caps, no unbounded loop.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    use thimble_evidence::tpm2::{
        GetCapabilityResponse, NvReadPublicResponse, NvReadResponse, PcrReadResponse,
        QuoteResponse, ReadPublicResponse, TpmReader, decode_response,
    };
    let Some((&shape, rest)) = data.split_first() else {
        return;
    };
    let Ok(body) = decode_response(rest, usize::from(shape & 1), shape & 2 != 0) else {
        return;
    };
    let p = &body.params;
    let _ = TpmReader::new(p).unmarshal::<GetCapabilityResponse>();
    let _ = TpmReader::new(p).unmarshal::<NvReadPublicResponse>();
    let _ = TpmReader::new(p).unmarshal::<NvReadResponse>();
    let _ = TpmReader::new(p).unmarshal::<PcrReadResponse>();
    let _ = TpmReader::new(p).unmarshal::<QuoteResponse>();
    let _ = TpmReader::new(p).unmarshal::<ReadPublicResponse>();
});
