// SPDX-License-Identifier: Apache-2.0
//! How REPORT_DATA (64 bytes) is obtained from a verifier's nonce.
//!
//! The one documented derivation is `REPORT_DATA = SHA-512(nonce)`: any nonce length fits, the
//! result fills the field exactly, and a verifier recomputes it with any SHA-512. `--report-data`
//! bypasses it for callers that bind something else (a key hash, a TLS exporter). A verifier with
//! its own rule (Trustee: its digest, zero-padded) gets the `padded` derivation from
//! `thimble attest`.

use crate::digest::Sha512;
use serde::{Deserialize, Serialize};

/// Length of REPORT_DATA in SNP reports and TDX quotes.
pub const REPORT_DATA_LEN: usize = 64;

/// How REPORT_DATA relates to the bundle's nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Derivation {
    /// `REPORT_DATA = SHA-512(nonce)`.
    Sha512,
    /// REPORT_DATA was given verbatim; the "nonce" is REPORT_DATA itself.
    Raw,
    /// REPORT_DATA is the nonce (1 to 64 bytes) followed by zeros: Trustee's rule for its
    /// binding digest. On Azure the nonce itself is the TPM quote's qualifying data.
    Padded,
}

impl Derivation {
    /// The name the bundle uses: `sha512` or `raw`.
    pub fn as_str(self) -> &'static str {
        match self {
            Derivation::Sha512 => "sha512",
            Derivation::Raw => "raw",
            Derivation::Padded => "padded",
        }
    }
}

impl std::fmt::Display for Derivation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `SHA-512(nonce)`.
pub fn from_nonce(nonce: &[u8]) -> [u8; REPORT_DATA_LEN] {
    let mut out = [0u8; REPORT_DATA_LEN];
    out.copy_from_slice(&Sha512::digest(nonce));
    out
}

/// The REPORT_DATA a nonce gives under `derivation`, or `None` when a raw value is not 64 bytes
/// or a padded one is empty or longer than 64.
pub fn derive(derivation: Derivation, nonce: &[u8]) -> Option<[u8; REPORT_DATA_LEN]> {
    match derivation {
        Derivation::Sha512 => Some(from_nonce(nonce)),
        Derivation::Raw => nonce.try_into().ok(),
        Derivation::Padded => padded(nonce),
    }
}

/// `value` followed by zeros up to 64 bytes, or `None` when it is empty or longer.
pub fn padded(value: &[u8]) -> Option<[u8; REPORT_DATA_LEN]> {
    if value.is_empty() || value.len() > REPORT_DATA_LEN {
        return None;
    }
    let mut out = [0u8; REPORT_DATA_LEN];
    out[..value.len()].copy_from_slice(value);
    Some(out)
}

/// The TPM quote's qualifying data for a nonce (Azure vTPM): the nonce itself when it fits a
/// TPM2B_DATA (64 bytes, the size of the largest digest), else `SHA-512(nonce)`.
pub fn tpm_qualifying_data(nonce: &[u8]) -> Vec<u8> {
    if nonce.len() <= REPORT_DATA_LEN {
        nonce.to_vec()
    } else {
        from_nonce(nonce).to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha512_of_nonce() {
        // SHA-512("abc"), FIPS 180-2 appendix C.1.
        let d = from_nonce(b"abc");
        assert_eq!(hex::encode(&d[..8]), "ddaf35a193617aba");
        assert_eq!(derive(Derivation::Raw, &[1u8; 63]), None);
        assert_eq!(derive(Derivation::Raw, &[1u8; 64]), Some([1u8; 64]));
        let mut padded = [0u8; 64];
        padded[..48].fill(7);
        assert_eq!(derive(Derivation::Padded, &[7u8; 48]), Some(padded));
        assert_eq!(derive(Derivation::Padded, &[]), None);
        assert_eq!(derive(Derivation::Padded, &[1u8; 65]), None);
    }
}
