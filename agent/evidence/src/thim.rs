// SPDX-License-Identifier: Apache-2.0
//! The Azure THIM AMD response: `GET /metadata/THIM/amd/certification` returns one JSON object of
//! strings: `vcekCert` (PEM), `certificateChain` (PEM, ASK then ARK), `tcbm` (16 hex digits) and
//! `cacheControl` (decimal seconds). Only the certificates are required; the body comes from the
//! host, outside the trust boundary, so it is parsed strictly and nothing in it is trusted until
//! the certificates are verified.

use thiserror::Error;

use crate::cert_file::pem_certificates;
use crate::snp::TcbVersion;

/// A parsed THIM AMD body, with the raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThimAmdCertification {
    /// The body as received.
    pub raw: Vec<u8>,
    /// The VCEK as DER.
    pub vcek: Vec<u8>,
    /// The chain as DER, in the order given (ASK then ARK).
    pub chain: Vec<Vec<u8>>,
    /// The raw TCB_VERSION bytes from `tcbm`, when present.
    pub tcbm: Option<[u8; 8]>,
    /// `cacheControl` in seconds, when present.
    pub cache_control_secs: Option<u64>,
}

/// Why a THIM AMD body was refused.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ThimError {
    /// The body is not JSON, or its top level is not an object.
    #[error("THIM response is not a JSON object: {reason}")]
    Json {
        /// What is wrong.
        reason: String,
    },
    /// A required field (`vcekCert`, `certificateChain`) is absent or null.
    #[error("THIM response has no `{field}`")]
    Missing {
        /// The JSON key.
        field: &'static str,
    },
    /// A field is present but not a JSON string.
    #[error("THIM response field `{field}` is not a string")]
    NotString {
        /// The JSON key.
        field: &'static str,
    },
    /// A string field does not hold what it should.
    #[error("THIM response field `{field}` is malformed: {reason}")]
    Field {
        /// The JSON key.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl ThimAmdCertification {
    /// Parses a body. `vcekCert` must hold exactly one PEM certificate and `certificateChain` at
    /// least one; `tcbm` and `cacheControl` are optional (absent or null) but checked when given.
    /// Nothing is verified: the order, roles and signatures of the certificates are the verifier's
    /// concern.
    pub fn parse(body: &[u8]) -> Result<ThimAmdCertification, ThimError> {
        let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| ThimError::Json {
            reason: e.to_string(),
        })?;
        let obj = v.as_object().ok_or_else(|| ThimError::Json {
            reason: "top level is not an object".into(),
        })?;
        let string = |field: &'static str| -> Result<Option<&str>, ThimError> {
            match obj.get(field) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(ThimError::NotString { field }),
            }
        };
        let vcek_pem = string("vcekCert")?.ok_or(ThimError::Missing { field: "vcekCert" })?;
        let chain_pem = string("certificateChain")?.ok_or(ThimError::Missing {
            field: "certificateChain",
        })?;
        let mut vcek = pem_certificates(vcek_pem).map_err(|e| ThimError::Field {
            field: "vcekCert",
            reason: e.to_string(),
        })?;
        if vcek.len() != 1 {
            return Err(ThimError::Field {
                field: "vcekCert",
                reason: format!("holds {} certificates, expected 1", vcek.len()),
            });
        }
        let chain = pem_certificates(chain_pem).map_err(|e| ThimError::Field {
            field: "certificateChain",
            reason: e.to_string(),
        })?;
        if chain.is_empty() {
            return Err(ThimError::Field {
                field: "certificateChain",
                reason: "holds no certificate".into(),
            });
        }
        let tcbm = match string("tcbm")? {
            None => None,
            Some(t) => {
                Some(
                    TcbVersion::raw_from_tcbm(t.trim()).ok_or_else(|| ThimError::Field {
                        field: "tcbm",
                        reason: format!("{t:?} is not 16 hex digits"),
                    })?,
                )
            }
        };
        let cache_control_secs = match string("cacheControl")? {
            None => None,
            Some(c) => Some(c.trim().parse::<u64>().map_err(|_| ThimError::Field {
                field: "cacheControl",
                reason: format!("{c:?} is not a number of seconds"),
            })?),
        };
        Ok(ThimAmdCertification {
            raw: body.to_vec(),
            vcek: vcek.remove(0),
            chain,
            tcbm,
            cache_control_secs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_wrong_fields() {
        assert!(matches!(
            ThimAmdCertification::parse(b"nope"),
            Err(ThimError::Json { .. })
        ));
        assert!(matches!(
            ThimAmdCertification::parse(b"[]"),
            Err(ThimError::Json { .. })
        ));
        assert_eq!(
            ThimAmdCertification::parse(br#"{"certificateChain":"x"}"#),
            Err(ThimError::Missing { field: "vcekCert" })
        );
        assert_eq!(
            ThimAmdCertification::parse(br#"{"vcekCert":1,"certificateChain":"x"}"#),
            Err(ThimError::NotString { field: "vcekCert" })
        );
        assert!(matches!(
            ThimAmdCertification::parse(br#"{"vcekCert":"","certificateChain":""}"#),
            Err(ThimError::Field {
                field: "vcekCert",
                ..
            })
        ));
    }
}
