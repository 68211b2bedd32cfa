// SPDX-License-Identifier: Apache-2.0
//! What the Intel PCK certificate says about the platform: the SGX extension (OID
//! 1.2.840.113741.1.13.1; Intel "SGX PCK Certificate and CRL Profile", docs/formats.md §6.4) gives
//! FMSPC, PCE ID, CPUSVN and PCESVN, and the issuer names the CA (platform or processor), which
//! selects the PCK CRL.
//!
//! These values, not the quote header nor THIM's `tcbm`, are what TCB info is matched against:
//! they are under Intel's signature. The extension is decoded by `dcap-qvl` (the decoder its
//! Intel-QVL-compatible verifier uses); the CA type is read strictly from the issuer common name
//! (dcap-qvl's own helper falls back to "processor" for an unknown issuer).

use serde::Serialize;
use thiserror::Error;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Which Intel CA issued the PCK certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PckCaType {
    /// "Intel SGX PCK Platform CA" (multi-package platforms, all cloud TDX hosts seen so far).
    Platform,
    /// "Intel SGX PCK Processor CA".
    Processor,
}

impl PckCaType {
    /// The `ca=` value of the PCS `pckcrl` request.
    pub fn as_str(self) -> &'static str {
        match self {
            PckCaType::Platform => "platform",
            PckCaType::Processor => "processor",
        }
    }
}

/// Why the PCK certificate's platform data could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PckError {
    /// Not a DER X.509 certificate.
    #[error("PCK certificate is not DER X.509: {reason}")]
    Der {
        /// The DER parser's message.
        reason: String,
    },
    /// The SGX extension is absent or does not decode (or its PCE-ID is not 2 bytes).
    #[error("PCK certificate SGX extension is missing or malformed: {reason}")]
    Extension {
        /// What is wrong.
        reason: String,
    },
    /// The issuer's common name is not one of the two PCK CAs.
    #[error(
        "PCK certificate issuer {issuer_cn:?} is neither the Intel PCK Platform CA nor the Processor CA"
    )]
    UnknownCa {
        /// The issuer's first common name, or empty.
        issuer_cn: String,
    },
}

/// The platform identity and TCB a PCK certificate was issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PckInfo {
    /// FMSPC: the platform's family, model, stepping and platform type; selects the TCB info.
    pub fmspc: [u8; 6],
    /// PCE-ID: the provisioning certification enclave's ID.
    pub pce_id: [u8; 2],
    /// CPUSVN of the TCB the certificate was issued for.
    pub cpusvn: [u8; 16],
    /// PCESVN of the TCB the certificate was issued for.
    pub pcesvn: u16,
    /// The CA that issued the certificate, from its issuer common name.
    pub ca_type: PckCaType,
    /// PPID: the platform provisioning ID (encrypted for Intel's use).
    pub ppid: Vec<u8>,
    /// 0 Standard, 1 Scalable, 2 ScalableWithIntegrity.
    pub sgx_type: u64,
}

impl PckInfo {
    /// Reads the SGX extension and CA type of a DER PCK certificate.
    pub fn from_der(der: &[u8]) -> Result<PckInfo, PckError> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| PckError::Der {
            reason: e.to_string(),
        })?;
        let issuer_cn = cert
            .issuer()
            .iter_common_name()
            .next()
            .and_then(|c| c.as_str().ok())
            .unwrap_or("")
            .to_string();
        let ca_type = match issuer_cn.as_str() {
            "Intel SGX PCK Platform CA" => PckCaType::Platform,
            "Intel SGX PCK Processor CA" => PckCaType::Processor,
            _ => return Err(PckError::UnknownCa { issuer_cn }),
        };
        let ext = dcap_qvl::intel::parse_pck_extension(der).map_err(|e| PckError::Extension {
            reason: format!("{e:#}"),
        })?;
        let pce_id: [u8; 2] =
            ext.pce_id
                .as_slice()
                .try_into()
                .map_err(|_| PckError::Extension {
                    reason: format!("PCE-ID has {} bytes, expected 2", ext.pce_id.len()),
                })?;
        Ok(PckInfo {
            fmspc: ext.fmspc,
            pce_id,
            cpusvn: ext.cpu_svn,
            pcesvn: ext.pce_svn,
            ca_type,
            ppid: ext.ppid,
            sgx_type: ext.sgx_type,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            PckInfo::from_der(b"junk"),
            Err(PckError::Der { .. })
        ));
    }
}
