// SPDX-License-Identifier: Apache-2.0
//! Microsoft Azure Attestation, as `thimble attest` drives it: no nonce is asked of the service;
//! the guest's runtime data (a JSON document) is bound by REPORT_DATA[0..32] = SHA-256(runtime
//! data), the evidence is collected with that binding and sent in the `SevSnpVm` or `TdxVm` body
//! (`crate::interop::maa` builds the bodies), and the answer is `{"token": JWT}`. Behind
//! Azure's paravisor the runtime data is the HCL report's own, which the paravisor binds; the
//! guest's nonce is then in its `user-data`.

use crate::digest::Sha256;

use crate::bundle::Tee;

/// The `SevSnpVm` path and API version (MS Learn "Attestation - Attest Sev Snp Vm").
pub const SEV_SNP_PATH: &str = "/attest/SevSnpVm?api-version=2022-08-01";
/// The `TdxVm` path and API version (Azure/cvm-attestation-tools).
pub const TDX_PATH: &str = "/attest/TdxVm?api-version=2023-04-01-preview";

/// The path MAA takes `tee`'s evidence on.
pub fn path(tee: Tee) -> &'static str {
    match tee {
        Tee::SevSnp | Tee::AzureSevSnp => SEV_SNP_PATH,
        Tee::Tdx | Tee::AzureTdx => TDX_PATH,
    }
}

/// The runtime data `attest` sends when the caller gives none: `{"nonce": "<hex>"}`, so that the
/// token's `x-ms-runtime` claims carry the caller's nonce.
pub fn default_runtime_data(nonce: &[u8]) -> Vec<u8> {
    serde_json::json!({ "nonce": hex::encode(nonce) })
        .to_string()
        .into_bytes()
}

/// REPORT_DATA binding `runtime_data`: its SHA-256, then 32 zero bytes.
pub fn report_data(runtime_data: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&Sha256::digest(runtime_data));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_is_sha256_then_zeros() {
        let rd = default_runtime_data(&[0xab, 0xcd]);
        assert_eq!(rd, br#"{"nonce":"abcd"}"#);
        let r = report_data(&rd);
        assert_eq!(r[..32], Sha256::digest(&rd)[..]);
        assert_eq!(r[32..], [0u8; 32]);
        assert_eq!(path(Tee::AzureTdx), TDX_PATH);
    }
}
