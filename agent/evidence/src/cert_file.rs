// SPDX-License-Identifier: Apache-2.0
//! Recognising what a file holds by its content, never by its name: DER certificates, PEM files
//! with one or several certificates, DER or PEM CRLs, THIM AMD JSON bodies (through
//! [`crate::thim`]) and Intel TCB info and QE identity bodies (through
//! [`crate::tdx::collateral`]). Recognition parses; it verifies nothing.

use base64::Engine;
use thiserror::Error;

/// What a file was recognised as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileContent {
    /// One or more DER certificates (from DER or PEM), in file order.
    Certificates(Vec<Vec<u8>>),
    /// A THIM `/metadata/THIM/amd/certification` body.
    ThimAmd(crate::thim::ThimAmdCertification),
    /// An Intel TCB info body (`{"tcbInfo":…,"signature":…}`), bytes as given.
    TcbInfo(Vec<u8>),
    /// An Intel QE identity body (`{"enclaveIdentity":…,"signature":…}`), bytes as given.
    QeIdentity(Vec<u8>),
    /// A CRL (from DER or PEM), with its issuer's common name.
    Crl {
        /// The CRL as DER.
        der: Vec<u8>,
        /// The issuer's common name (empty when it has none).
        issuer_cn: String,
    },
}

/// Why a file's content was not recognised. PEM blocks are numbered from 0.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileError {
    /// A certificate block's body does not decode as base64.
    #[error("PEM block {index} is not valid base64")]
    PemBase64 {
        /// The block.
        index: usize,
    },
    /// A `BEGIN CERTIFICATE` line has no `END CERTIFICATE` after it.
    #[error("PEM block {index} has no END line")]
    PemUnterminated {
        /// The block.
        index: usize,
    },
    /// More than [`MAX_PEM_CERTIFICATES`] certificate blocks.
    #[error("more than {max} PEM certificates")]
    PemTooMany {
        /// [`MAX_PEM_CERTIFICATES`].
        max: usize,
    },
    /// Neither DER, nor JSON, nor PEM with a certificate or CRL.
    #[error(
        "content is not a certificate (DER or PEM), a CRL, a THIM AMD response, or Intel TCB info or QE identity"
    )]
    Unrecognised,
    /// A JSON object without the keys of any known body.
    #[error("JSON is neither a THIM AMD response nor Intel TCB info or QE identity")]
    UnknownJson,
    /// Looked like Intel TCB info, QE identity or a PEM CRL but did not parse (the parser's
    /// message).
    #[error("Intel collateral: {0}")]
    Collateral(String),
    /// Not valid JSON, or a THIM AMD body that did not parse.
    #[error(transparent)]
    Thim(#[from] crate::thim::ThimError),
}

/// The most certificates [`pem_certificates`] takes from one text: a chain has three, a CA
/// bundle a handful; the cap bounds the work of a hostile issuer chain.
pub const MAX_PEM_CERTIFICATES: usize = 16;

/// PEM (RFC 7468) of `der` under `label` (`CERTIFICATE`, `X509 CRL`): the BEGIN line, the
/// standard base64 in lines of 64 characters, the END line, each ending in a newline; the form
/// THIM and KDS serve and snpguest writes, and what [`pem_certificates`] reads back.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    let mut rest = b64.as_str();
    while !rest.is_empty() {
        // Base64 is ASCII, so any byte index is a character boundary.
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Extracts every `-----BEGIN CERTIFICATE-----` block, in order, as DER (base64-decoded, not
/// parsed). Other PEM blocks are ignored.
pub fn pem_certificates(text: &str) -> Result<Vec<Vec<u8>>, FileError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let index = out.len();
        if index == MAX_PEM_CERTIFICATES {
            return Err(FileError::PemTooMany {
                max: MAX_PEM_CERTIFICATES,
            });
        }
        let body_start = start + BEGIN.len();
        let Some(end) = rest[body_start..].find(END) else {
            return Err(FileError::PemUnterminated { index });
        };
        let b64: String = rest[body_start..body_start + end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|_| FileError::PemBase64 { index })?;
        out.push(der);
        rest = &rest[body_start + end + END.len()..];
    }
    Ok(out)
}

/// Recognises `bytes` as certificates, a CRL, a THIM AMD body, or Intel TCB info / QE identity.
pub fn recognise(bytes: &[u8]) -> Result<FileContent, FileError> {
    // DER: a SEQUENCE with a long-form length, as every certificate and CRL is.
    if bytes.first() == Some(&0x30) {
        if crate::snp::AmdCert::parse_der(bytes).is_ok() {
            return Ok(FileContent::Certificates(vec![bytes.to_vec()]));
        }
        if let Ok(crl) = crate::crl::Crl::parse(bytes) {
            return Ok(FileContent::Crl {
                der: crl.der().to_vec(),
                issuer_cn: crl.issuer_cn.clone(),
            });
        }
        return Err(FileError::Unrecognised);
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(FileError::Unrecognised);
    };
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(trimmed).map_err(|e| {
            FileError::Thim(crate::thim::ThimError::Json {
                reason: e.to_string(),
            })
        })?;
        if v.get("tcbInfo").is_some() {
            crate::tdx::collateral::TcbInfoBody::parse(bytes)
                .map_err(|e| FileError::Collateral(e.to_string()))?;
            return Ok(FileContent::TcbInfo(bytes.to_vec()));
        }
        if v.get("enclaveIdentity").is_some() || v.get("qeIdentity").is_some() {
            crate::tdx::collateral::QeIdentityBody::parse(bytes)
                .map_err(|e| FileError::Collateral(e.to_string()))?;
            return Ok(FileContent::QeIdentity(bytes.to_vec()));
        }
        if v.get("vcekCert").is_some() || v.get("certificateChain").is_some() {
            return Ok(FileContent::ThimAmd(
                crate::thim::ThimAmdCertification::parse(bytes)?,
            ));
        }
        return Err(FileError::UnknownJson);
    }
    if trimmed.starts_with("-----BEGIN X509 CRL-----") {
        let crl =
            crate::crl::Crl::parse(bytes).map_err(|e| FileError::Collateral(e.to_string()))?;
        return Ok(FileContent::Crl {
            der: crl.der().to_vec(),
            issuer_cn: crl.issuer_cn.clone(),
        });
    }
    let certs = pem_certificates(text)?;
    if certs.is_empty() {
        return Err(FileError::Unrecognised);
    }
    Ok(FileContent::Certificates(certs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unrecognised_content() {
        assert_eq!(recognise(b"hello"), Err(FileError::Unrecognised));
        assert_eq!(
            recognise(&[0x30, 0x03, 0x01, 0x01, 0x00]),
            Err(FileError::Unrecognised)
        );
        assert!(matches!(
            pem_certificates("-----BEGIN CERTIFICATE-----\nAAAA"),
            Err(FileError::PemUnterminated { index: 0 })
        ));
        assert!(matches!(
            pem_certificates("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"),
            Err(FileError::PemBase64 { index: 0 })
        ));
    }
}
