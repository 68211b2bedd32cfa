// SPDX-License-Identifier: AGPL-3.0-or-later
//! Intel's certificate revocation lists: the PCK CRL (issued by the PCK Platform or Processor CA)
//! and the root CA CRL (issued by the Intel SGX Root CA), parsed into an owned value that keeps
//! the DER received and the exact to-be-signed bytes.
//!
//! PCS serves DER or PEM and PCCS 3.0 hex-encoded DER; THIM's encoding is not documented
//! (wire-formats §2.5), so [`IntelCrl::parse`] sniffs the three forms.

use base64::Engine;
use thiserror::Error;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::snp::cert::SigAlg;

/// Why a CRL could not be parsed.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CrlError {
    #[error("not a DER, PEM or hex X.509 CRL: {reason}")]
    Der { reason: String },
    #[error("{len} trailing bytes after the CRL")]
    Trailing { len: usize },
}

/// A parsed CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntelCrl {
    der: Vec<u8>,
    tbs: (usize, usize),
    pub signature_alg: SigAlg,
    pub signature: Vec<u8>,
    pub issuer: String,
    pub issuer_cn: String,
    issuer_raw: Vec<u8>,
    /// `thisUpdate`, seconds since the epoch.
    pub this_update: i64,
    /// `nextUpdate`, seconds since the epoch (Intel CRLs always carry one).
    pub next_update: Option<i64>,
    /// Serial numbers of the revoked certificates, as the DER INTEGER content bytes (the form
    /// `AmdCert::serial_hex` encodes).
    pub revoked: Vec<Vec<u8>>,
}

/// Decodes PEM (`-----BEGIN X509 CRL-----`) or hex to DER; anything else is taken as DER.
fn to_der(bytes: &[u8]) -> Result<Vec<u8>, CrlError> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(bytes.to_vec());
    };
    let t = text.trim();
    const BEGIN: &str = "-----BEGIN X509 CRL-----";
    const END: &str = "-----END X509 CRL-----";
    if let Some(rest) = t.strip_prefix(BEGIN) {
        let Some(end) = rest.find(END) else {
            return Err(CrlError::Der {
                reason: "PEM CRL has no END line".into(),
            });
        };
        let b64: String = rest[..end].chars().filter(|c| !c.is_whitespace()).collect();
        return base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|e| CrlError::Der {
                reason: format!("PEM CRL: {e}"),
            });
    }
    if !t.is_empty() && t.len() % 2 == 0 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return hex::decode(t).map_err(|e| CrlError::Der {
            reason: format!("hex CRL: {e}"),
        });
    }
    Ok(bytes.to_vec())
}

impl IntelCrl {
    /// Parses a CRL in DER, PEM or hex.
    pub fn parse(bytes: &[u8]) -> Result<IntelCrl, CrlError> {
        let der = to_der(bytes)?;
        let (rem, crl) = CertificateRevocationList::from_der(&der).map_err(|e| CrlError::Der {
            reason: e.to_string(),
        })?;
        if !rem.is_empty() {
            return Err(CrlError::Trailing { len: rem.len() });
        }
        let tbs_raw = crl.tbs_cert_list.as_ref();
        let start = (tbs_raw.as_ptr() as usize).wrapping_sub(der.as_ptr() as usize);
        let tbs = (start, start.saturating_add(tbs_raw.len()));
        if der.get(tbs.0..tbs.1) != Some(tbs_raw) {
            return Err(CrlError::Der {
                reason: "TBSCertList could not be located".into(),
            });
        }
        let signature_alg = match crl.signature_algorithm.algorithm.to_id_string().as_str() {
            "1.2.840.10045.4.3.2" => SigAlg::EcdsaSha256,
            "1.2.840.10045.4.3.3" => SigAlg::EcdsaSha384,
            "1.2.840.113549.1.1.11" => SigAlg::RsaPkcs1Sha256,
            "1.2.840.113549.1.1.12" => SigAlg::RsaPkcs1Sha384,
            other => SigAlg::Other {
                oid: other.to_string(),
            },
        };
        let issuer = crl.issuer();
        let issuer_cn = issuer
            .iter_common_name()
            .next()
            .and_then(|c| c.as_str().ok())
            .unwrap_or("")
            .to_string();
        Ok(IntelCrl {
            tbs,
            signature_alg,
            signature: crl.signature_value.data.to_vec(),
            issuer: issuer.to_string(),
            issuer_cn,
            issuer_raw: issuer.as_raw().to_vec(),
            this_update: crl.last_update().timestamp(),
            next_update: crl.next_update().map(|t| t.timestamp()),
            revoked: crl
                .iter_revoked_certificates()
                .map(|r| r.raw_serial().to_vec())
                .collect(),
            der,
        })
    }

    /// The DER (decoded from PEM or hex if it came so).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The exact TBSCertList bytes the issuer signed.
    pub fn tbs_bytes(&self) -> &[u8] {
        &self.der[self.tbs.0..self.tbs.1]
    }

    /// The issuer name as DER, to compare with a certificate's subject.
    pub fn issuer_raw(&self) -> &[u8] {
        &self.issuer_raw
    }

    /// Whether a certificate serial (DER INTEGER content bytes) is listed.
    pub fn is_revoked(&self, serial: &[u8]) -> bool {
        self.revoked.iter().any(|s| s == serial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        assert_eq!(to_der(b"3003").unwrap(), vec![0x30, 0x03]);
        assert_eq!(to_der(&[0x30, 0x82]).unwrap(), vec![0x30, 0x82]);
        assert!(matches!(
            to_der(b"-----BEGIN X509 CRL-----\nAAAA"),
            Err(CrlError::Der { .. })
        ));
        assert!(matches!(
            IntelCrl::parse(b"junk"),
            Err(CrlError::Der { .. })
        ));
    }
}
