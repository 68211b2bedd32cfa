// SPDX-License-Identifier: AGPL-3.0-or-later
//! Recognising what a file holds by its content, never by its name: DER certificates, PEM files
//! with one or several certificates, and (through [`crate::thim`]) THIM JSON bodies.

use base64::Engine;
use thiserror::Error;

/// What a file was recognised as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileContent {
    /// One or more DER certificates (from DER or PEM), in file order.
    Certificates(Vec<Vec<u8>>),
    /// A THIM `/metadata/THIM/amd/certification` body.
    ThimAmd(crate::thim::ThimAmdCertification),
}

#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileError {
    #[error("PEM block {index} is not valid base64")]
    PemBase64 { index: usize },
    #[error("PEM block {index} has no END line")]
    PemUnterminated { index: usize },
    #[error("content is not a certificate (DER or PEM) nor a THIM AMD response")]
    Unrecognised,
    #[error(transparent)]
    Thim(#[from] crate::thim::ThimError),
}

/// Extracts every `-----BEGIN CERTIFICATE-----` block, in order. Other PEM blocks are ignored.
pub fn pem_certificates(text: &str) -> Result<Vec<Vec<u8>>, FileError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let index = out.len();
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

/// Recognises `bytes` as certificates or a THIM AMD body.
pub fn recognise(bytes: &[u8]) -> Result<FileContent, FileError> {
    // DER: a SEQUENCE with a long-form length, as every certificate is.
    if bytes.first() == Some(&0x30) && crate::snp::AmdCert::parse_der(bytes).is_ok() {
        return Ok(FileContent::Certificates(vec![bytes.to_vec()]));
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(FileError::Unrecognised);
    };
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') {
        return Ok(FileContent::ThimAmd(
            crate::thim::ThimAmdCertification::parse(bytes)?,
        ));
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
