// SPDX-License-Identifier: Apache-2.0
//! Intel Trust Authority's appraisal API v2 (intel/trustauthority-client-for-go@f8dc47b8
//! `go-connector/nonce.go`, `attest_evidence.go`, `evidence_builder.go`, `go-tdx/tdx_adapter.go`,
//! `go-aztdx/aztdx_adapter.go`):
//!
//! 1. `GET /appraisal/v2/nonce` with `x-api-key`: `{"val": B64, "iat": B64, "signature": B64}`
//!    (standard base64, as Go marshals `[]byte`).
//! 2. REPORT_DATA = SHA-512(val ‖ iat ‖ runtime data) for a plain TD; behind Azure's paravisor,
//!    SHA-512(val ‖ iat ‖ user data) is the HCL report's `user-data` and the runtime data is the
//!    HCL report's own.
//! 3. `POST /appraisal/v2/attest` (Azure: `/appraisal/v2/attest/azure`) with `x-api-key`:
//!    `{"tdx": {"quote", "runtime_data", "user_data"?, "event_log"?, "verifier_nonce"}, "policy_ids"?}`;
//!    the answer is `{"token": JWT}`.
//!
//! The Azure path and its `user_data` member follow the Go client; they could not be checked
//! against the service itself (docs/attest.md).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::{MessageError, Verifier, json_object, string_member};

/// `GET` path of the nonce.
pub const NONCE_PATH: &str = "/appraisal/v2/nonce";
/// `POST` path of a TD's evidence.
pub const ATTEST_PATH: &str = "/appraisal/v2/attest";
/// `POST` path of an Azure TD's evidence.
pub const AZURE_ATTEST_PATH: &str = "/appraisal/v2/attest/azure";
/// The header carrying the API key.
pub const API_KEY_HEADER: &str = "x-api-key";
/// Longest nonce member accepted, decoded.
const MAX_NONCE_PART: usize = 4096;

const V: Verifier = Verifier::Ita;

/// The service's signed nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierNonce {
    /// `val`.
    pub val: Vec<u8>,
    /// `iat`, the issue time as the service encodes it.
    pub iat: Vec<u8>,
    /// `signature`, the service's over `val ‖ iat`; sent back unchanged.
    pub signature: Vec<u8>,
}

impl VerifierNonce {
    /// The JSON form, in the encoding the service uses.
    pub fn to_json(&self) -> Value {
        json!({
            "val": STANDARD.encode(&self.val),
            "iat": STANDARD.encode(&self.iat),
            "signature": STANDARD.encode(&self.signature),
        })
    }
}

/// Reads the nonce answer (also the form `--verifier-nonce` takes).
pub fn parse_nonce(bytes: &[u8]) -> Result<VerifierNonce, MessageError> {
    let what = "nonce answer";
    let map = json_object(V, what, bytes)?;
    nonce_from_map(what, &map)
}

fn nonce_from_map(
    what: &'static str,
    map: &Map<String, Value>,
) -> Result<VerifierNonce, MessageError> {
    let part = |name: &str| -> Result<Vec<u8>, MessageError> {
        let bytes = STANDARD
            .decode(string_member(V, what, map, name)?)
            .map_err(|e| MessageError::new(V, what, format!("`{name}` is not base64: {e}")))?;
        if bytes.is_empty() || bytes.len() > MAX_NONCE_PART {
            return Err(MessageError::new(
                V,
                what,
                format!(
                    "`{name}` is {} bytes; 1 to {MAX_NONCE_PART} are accepted",
                    bytes.len()
                ),
            ));
        }
        Ok(bytes)
    };
    Ok(VerifierNonce {
        val: part("val")?,
        iat: part("iat")?,
        signature: part("signature")?,
    })
}

/// What the evidence binds, hashed with SHA-512 into REPORT_DATA (or `user-data`):
/// `val ‖ iat ‖ data`.
pub fn binding_input(nonce: Option<&VerifierNonce>, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(n) = nonce {
        out.extend_from_slice(&n.val);
        out.extend_from_slice(&n.iat);
    }
    out.extend_from_slice(data);
    out
}

/// What goes into an attest request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evidence {
    /// The TD quote.
    pub quote: Vec<u8>,
    /// The runtime data (Azure: the HCL report's runtime claims).
    pub runtime_data: Vec<u8>,
    /// Azure: the caller's data, bound through `user-data`.
    pub user_data: Option<Vec<u8>>,
    /// The CCEL event log.
    pub event_log: Option<Vec<u8>>,
    /// The service's nonce.
    pub verifier_nonce: Option<VerifierNonce>,
    /// Policies the token is to be checked against.
    pub policy_ids: Vec<String>,
}

/// The body of `POST /appraisal/v2/attest` (or its Azure path).
pub fn attest_request(e: &Evidence) -> Vec<u8> {
    let mut tdx = Map::new();
    tdx.insert("quote".to_owned(), STANDARD.encode(&e.quote).into());
    tdx.insert(
        "runtime_data".to_owned(),
        STANDARD.encode(&e.runtime_data).into(),
    );
    if let Some(u) = &e.user_data {
        tdx.insert("user_data".to_owned(), STANDARD.encode(u).into());
    }
    if let Some(l) = &e.event_log {
        tdx.insert("event_log".to_owned(), STANDARD.encode(l).into());
    }
    if let Some(n) = &e.verifier_nonce {
        tdx.insert("verifier_nonce".to_owned(), n.to_json());
    }
    let mut body = Map::new();
    body.insert("tdx".to_owned(), Value::Object(tdx));
    if !e.policy_ids.is_empty() {
        body.insert("policy_ids".to_owned(), json!(e.policy_ids));
    }
    Value::Object(body).to_string().into_bytes()
}

/// Reads an attest request body (for emulators).
pub fn parse_attest_request(bytes: &[u8]) -> Result<Evidence, MessageError> {
    let what = "attest request";
    let map = json_object(V, what, bytes)?;
    let Some(Value::Object(tdx)) = map.get("tdx") else {
        return Err(MessageError::new(V, what, "no `tdx` object"));
    };
    let b64 = |name: &str| -> Result<Option<Vec<u8>>, MessageError> {
        match tdx.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => STANDARD.decode(s).map(Some).map_err(|e| {
                MessageError::new(V, what, format!("`tdx.{name}` is not base64: {e}"))
            }),
            Some(_) => Err(MessageError::new(
                V,
                what,
                format!("`tdx.{name}` is not a string"),
            )),
        }
    };
    let verifier_nonce = match tdx.get("verifier_nonce") {
        None => None,
        Some(Value::Object(n)) => Some(nonce_from_map(what, n)?),
        Some(_) => {
            return Err(MessageError::new(
                V,
                what,
                "`tdx.verifier_nonce` is not an object",
            ));
        }
    };
    let policy_ids = match map.get("policy_ids") {
        None => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| MessageError::new(V, what, "`policy_ids` holds a non-string"))?,
        Some(_) => return Err(MessageError::new(V, what, "`policy_ids` is not an array")),
    };
    Ok(Evidence {
        quote: b64("quote")?.ok_or_else(|| MessageError::new(V, what, "no `tdx.quote`"))?,
        runtime_data: b64("runtime_data")?.unwrap_or_default(),
        user_data: b64("user_data")?,
        event_log: b64("event_log")?,
        verifier_nonce,
        policy_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips() {
        let n = VerifierNonce {
            val: b"v".to_vec(),
            iat: b"i".to_vec(),
            signature: b"s".to_vec(),
        };
        let e = Evidence {
            quote: vec![1, 2, 3],
            runtime_data: b"{}".to_vec(),
            user_data: Some(b"u".to_vec()),
            event_log: None,
            verifier_nonce: Some(n.clone()),
            policy_ids: vec!["p".to_owned()],
        };
        let body = attest_request(&e);
        assert_eq!(parse_attest_request(&body).unwrap(), e);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["tdx"]["quote"], "AQID");
        assert_eq!(parse_nonce(n.to_json().to_string().as_bytes()).unwrap(), n);
        assert_eq!(binding_input(Some(&n), b"rd"), b"vird".to_vec());
        assert_eq!(binding_input(None, b"rd"), b"rd".to_vec());
    }

    #[test]
    fn nonce_members_are_checked() {
        assert!(parse_nonce(br#"{"val":"dg==","iat":"aQ=="}"#).is_err());
        assert!(parse_nonce(br#"{"val":"!","iat":"aQ==","signature":"cw=="}"#).is_err());
        assert!(parse_nonce(br#"{"val":"","iat":"aQ==","signature":"cw=="}"#).is_err());
    }
}
