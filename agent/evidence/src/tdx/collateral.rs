// SPDX-License-Identifier: Apache-2.0
//! Intel's signed collateral bodies, as Intel PCS and Azure THIM serve them (docs/formats.md §4.5):
//! `{"tcbInfo":{…},"signature":"…"}` and `{"enclaveIdentity":{…},"signature":"…"}`.
//!
//! The signature (ECDSA P-256, raw `r ‖ s` in hex) covers the exact bytes of the inner object as
//! they appear in the body. The body is kept byte for byte and the inner object's byte range is
//! taken from the raw input (serde_json `RawValue` borrows it), never re-serialised: a
//! re-encoding would change whitespace, key order or number forms and break the signature.
//!
//! The inner objects are decoded into `dcap-qvl`'s types, which mirror Intel's QVL; the dates are
//! also decoded here so that a verifier can compare them with its verification time.

use std::ops::Range;

use dcap_qvl::{QeIdentity, TcbInfo};
use serde::Deserialize;
use serde_json::value::RawValue;
use thiserror::Error;

use crate::time_fmt::parse_rfc3339;

/// Why a collateral body could not be parsed.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CollateralError {
    /// The body is not a JSON object with the inner object and a `signature` string (or has a
    /// key twice).
    #[error(
        "{what} body is not JSON of the form {{\"{key}\":{{…}},\"signature\":\"…\"}}: {reason}"
    )]
    Envelope {
        /// `TCB info` or `QE identity`.
        what: &'static str,
        /// The key of the inner object.
        key: &'static str,
        /// The JSON parser's message.
        reason: String,
    },
    /// `signature` is not 128 hex digits.
    #[error("{what} signature is not 64 bytes of hex (r ‖ s)")]
    Signature {
        /// `TCB info` or `QE identity`.
        what: &'static str,
    },
    /// The inner object does not decode into `dcap-qvl`'s type.
    #[error("{what} content does not decode: {reason}")]
    Content {
        /// `TCB info` or `QE identity`.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// `issueDate` or `nextUpdate` is not an RFC 3339 time.
    #[error("{what} {field} {value:?} is not an RFC 3339 time")]
    Date {
        /// `TCB info` or `QE identity`.
        what: &'static str,
        /// The JSON key.
        field: &'static str,
        /// The value as given.
        value: String,
    },
    /// The body is larger than [`MAX_COLLATERAL_LEN`]; nothing was decoded.
    #[error("{what} body is {len} bytes, more than the {max} accepted")]
    TooLarge {
        /// `TCB info` or `QE identity`.
        what: &'static str,
        /// Its length.
        len: usize,
        /// [`MAX_COLLATERAL_LEN`].
        max: usize,
    },
}

/// The largest TCB info or QE identity body parsed. Intel's are tens of kilobytes; decoding
/// builds a structure several times the size of its text, so the size is bounded first.
pub const MAX_COLLATERAL_LEN: usize = 1 << 20;

fn check_len(raw: &[u8], what: &'static str) -> Result<(), CollateralError> {
    if raw.len() > MAX_COLLATERAL_LEN {
        return Err(CollateralError::TooLarge {
            what,
            len: raw.len(),
            max: MAX_COLLATERAL_LEN,
        });
    }
    Ok(())
}

/// A signed collateral body: the bytes received, the signed range, the signature and the
/// decoded content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCollateral<T> {
    raw: Vec<u8>,
    signed: Range<usize>,
    /// `r ‖ s`, big-endian.
    pub signature: [u8; 64],
    /// The inner object, decoded (`dcap-qvl`'s `TcbInfo` or `QeIdentity`).
    pub content: T,
    /// `issueDate`, seconds since the epoch.
    pub issue_date: i64,
    /// `nextUpdate`, seconds since the epoch.
    pub next_update: i64,
}

/// A TCB info body (`/tdx/certification/v4/tcb`).
pub type TcbInfoBody = SignedCollateral<TcbInfo>;
/// A QE identity body (`/tdx/certification/v4/qe/identity`).
pub type QeIdentityBody = SignedCollateral<QeIdentity>;

#[derive(Deserialize)]
struct TcbInfoEnvelope<'a> {
    #[serde(rename = "tcbInfo", borrow)]
    inner: &'a RawValue,
    signature: String,
}

#[derive(Deserialize)]
struct QeIdentityEnvelope<'a> {
    // v2+ bodies say `enclaveIdentity`; the v1 API said `qeIdentity`.
    #[serde(rename = "enclaveIdentity", alias = "qeIdentity", borrow)]
    inner: &'a RawValue,
    signature: String,
}

fn signature(hex_sig: &str, what: &'static str) -> Result<[u8; 64], CollateralError> {
    let bytes = hex::decode(hex_sig).map_err(|_| CollateralError::Signature { what })?;
    bytes
        .try_into()
        .map_err(|_| CollateralError::Signature { what })
}

fn date(value: &str, what: &'static str, field: &'static str) -> Result<i64, CollateralError> {
    parse_rfc3339(value).ok_or_else(|| CollateralError::Date {
        what,
        field,
        value: value.to_string(),
    })
}

/// The range of `inner` (a sub-slice of `raw`) within `raw`.
fn range_in(raw: &[u8], inner: &str, what: &'static str) -> Result<Range<usize>, CollateralError> {
    // `inner` borrows from `raw` (serde_json hands out the input's own bytes for a borrowed
    // `RawValue`), so the address difference is its offset. Checked all the same, so that a
    // change in serde_json could not make the signed range point elsewhere.
    let start = (inner.as_ptr() as usize).wrapping_sub(raw.as_ptr() as usize);
    let range = start..start.saturating_add(inner.len());
    match raw.get(range.clone()) {
        Some(bytes) if bytes == inner.as_bytes() => Ok(range),
        _ => Err(CollateralError::Content {
            what,
            reason: "the signed object could not be located in the body".into(),
        }),
    }
}

impl<T> SignedCollateral<T> {
    /// The body as received.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The exact bytes of the inner object: what the signature covers.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.raw[self.signed.clone()]
    }
}

impl TcbInfoBody {
    /// Parses a TCB info body, keeping its bytes. Checks the size, the envelope, the content's
    /// shape, the signature's length and the dates' syntax; not the signature, the dates'
    /// currency, nor whether it is TDX's or SGX's TCB info.
    pub fn parse(raw: &[u8]) -> Result<TcbInfoBody, CollateralError> {
        const WHAT: &str = "TCB info";
        check_len(raw, WHAT)?;
        let env: TcbInfoEnvelope<'_> =
            serde_json::from_slice(raw).map_err(|e| CollateralError::Envelope {
                what: WHAT,
                key: "tcbInfo",
                reason: e.to_string(),
            })?;
        let signed = range_in(raw, env.inner.get(), WHAT)?;
        let content: TcbInfo =
            serde_json::from_str(env.inner.get()).map_err(|e| CollateralError::Content {
                what: WHAT,
                reason: e.to_string(),
            })?;
        Ok(SignedCollateral {
            signature: signature(&env.signature, WHAT)?,
            issue_date: date(&content.issue_date, WHAT, "issueDate")?,
            next_update: date(&content.next_update, WHAT, "nextUpdate")?,
            content,
            signed,
            raw: raw.to_vec(),
        })
    }
}

impl QeIdentityBody {
    /// Parses a QE identity body (`enclaveIdentity`, or v1's `qeIdentity`), keeping its bytes.
    /// Checks what [`TcbInfoBody::parse`] checks, and verifies as little.
    pub fn parse(raw: &[u8]) -> Result<QeIdentityBody, CollateralError> {
        const WHAT: &str = "QE identity";
        check_len(raw, WHAT)?;
        let env: QeIdentityEnvelope<'_> =
            serde_json::from_slice(raw).map_err(|e| CollateralError::Envelope {
                what: WHAT,
                key: "enclaveIdentity",
                reason: e.to_string(),
            })?;
        let signed = range_in(raw, env.inner.get(), WHAT)?;
        let content: QeIdentity =
            serde_json::from_str(env.inner.get()).map_err(|e| CollateralError::Content {
                what: WHAT,
                reason: e.to_string(),
            })?;
        Ok(SignedCollateral {
            signature: signature(&env.signature, WHAT)?,
            issue_date: date(&content.issue_date, WHAT, "issueDate")?,
            next_update: date(&content.next_update, WHAT, "nextUpdate")?,
            content,
            signed,
            raw: raw.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_bytes_are_the_inner_object_verbatim() {
        // Odd spacing and key order: a re-serialisation would not reproduce these bytes.
        let body = br#"{ "signature" : "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", "enclaveIdentity":{"id":"TD_QE","version":2, "issueDate":"2025-05-27T19:22:46Z","nextUpdate":"2025-06-26T19:22:46Z","tcbEvaluationDataNumber":17,"miscselect":"00000000","miscselectMask":"FFFFFFFF","attributes":"11000000000000000000000000000000","attributesMask":"FBFFFFFFFFFFFFFF0000000000000000","mrsigner":"DC9E2A7C6F948F17474E34A7FC43ED030F7C1563F1BABDDF6340C82E0E54A8C5","isvprodid":2,"tcbLevels":[{"tcb":{"isvsvn":4},"tcbDate":"2024-03-13T00:00:00Z","tcbStatus":"UpToDate"}]} }"#;
        let q = QeIdentityBody::parse(body).unwrap();
        let s = std::str::from_utf8(q.signed_bytes()).unwrap();
        assert!(s.starts_with(r#"{"id":"TD_QE","version":2, "issueDate""#));
        assert!(s.ends_with(r#""tcbStatus":"UpToDate"}]}"#));
        assert_eq!(q.content.isvprodid, 2);
        assert_eq!(q.signature[1], 0x11);
        assert_eq!(q.next_update - q.issue_date, 30 * 86400);
    }

    #[test]
    fn rejects_bad_envelopes() {
        assert!(matches!(
            TcbInfoBody::parse(b"[]"),
            Err(CollateralError::Envelope { .. })
        ));
        assert!(matches!(
            TcbInfoBody::parse(br#"{"tcbInfo":{},"signature":"zz"}"#),
            Err(CollateralError::Content { .. }) | Err(CollateralError::Signature { .. })
        ));
        assert!(matches!(
            TcbInfoBody::parse(br#"{"tcbInfo":{},"tcbInfo":{},"signature":""}"#),
            Err(CollateralError::Envelope { .. })
        ));
    }
}
