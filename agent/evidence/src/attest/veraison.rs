// SPDX-License-Identifier: Apache-2.0
//! Veraison's challenge-response API (veraison/services@6b881029 `verification/api/router.go`,
//! `handler.go`; the SEVSNP scheme in `scheme/sevsnp/`):
//!
//! 1. `POST /challenge-response/v1/newSession?nonceSize=64` answers `201 Created` with a
//!    `Location` (the session, relative to the API) and the session object `{"nonce": B64,
//!    "expiry": RFC 3339, "accept": [media types], "status": "waiting"}`.
//! 2. REPORT_DATA is the session nonce itself: the SEVSNP scheme compares all 64 bytes.
//! 3. `POST` the evidence to the session with its media type as `Content-Type`: the tsm-report
//!    JSON (`crate::interop::tsm_report`), which carries the report and the host's certificate
//!    table. The answer is the session, `status` `complete` with the EAR (a JWT) in `result`, or
//!    `processing`, to be asked again with `GET`, or `failed`.
//!
//! There is no TDX scheme in Veraison's services, so only SEV-SNP evidence is sent.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use serde_json::Value;

use super::{MessageError, Verifier, json_object, string_member};

/// `POST` path that opens a session.
pub const NEW_SESSION_PATH: &str = "/challenge-response/v1/newSession";
/// The nonce size asked for: all of REPORT_DATA.
pub const NONCE_SIZE: usize = 64;

const V: Verifier = Verifier::Veraison;

/// A session as the verifier describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The session nonce.
    pub nonce: Vec<u8>,
    /// `waiting`, `processing`, `complete` or `failed`.
    pub status: String,
    /// Media types the session accepts.
    pub accept: Vec<String>,
    /// The attestation result (an EAR JWT) once `complete`.
    pub result: Option<String>,
}

/// Reads a session object.
pub fn parse_session(bytes: &[u8]) -> Result<Session, MessageError> {
    let what = "session";
    let map = json_object(V, what, bytes)?;
    let nonce_text = string_member(V, what, &map, "nonce")?;
    // Go's []byte is standard base64; accept the URL-safe alphabet too.
    let nonce = STANDARD
        .decode(nonce_text)
        .or_else(|_| URL_SAFE.decode(nonce_text))
        .map_err(|e| MessageError::new(V, what, format!("`nonce` is not base64: {e}")))?;
    let accept = match map.get("accept") {
        None => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(_) => return Err(MessageError::new(V, what, "`accept` is not an array")),
    };
    let result = match map.get("result") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(MessageError::new(V, what, "`result` is not a string")),
    };
    Ok(Session {
        nonce,
        status: string_member(V, what, &map, "status")?.to_owned(),
        accept,
        result,
    })
}

/// The session object a verifier writes (for emulators).
pub fn session_json(nonce: &[u8], status: &str, accept: &[&str], result: Option<&str>) -> Vec<u8> {
    let mut v = serde_json::json!({
        "nonce": STANDARD.encode(nonce),
        "expiry": "2030-01-01T00:00:00Z",
        "accept": accept,
        "status": status,
    });
    if let Some(r) = result {
        v["result"] = Value::String(r.to_owned());
    }
    v.to_string().into_bytes()
}

/// REPORT_DATA for a session nonce: the nonce itself, which must be 64 bytes.
pub fn report_data(nonce: &[u8]) -> Result<[u8; 64], MessageError> {
    nonce.try_into().map_err(|_| {
        MessageError::new(
            V,
            "session",
            format!(
                "the nonce is {} bytes; REPORT_DATA takes exactly {NONCE_SIZE}",
                nonce.len()
            ),
        )
    })
}

/// The session's URL from the `Location` of the new session, resolved against `base` (the
/// verifier's URL, without a trailing slash): absolute URLs must stay on `base`'s origin, a
/// relative one is taken under `/challenge-response/v1/`.
pub fn session_url(base: &str, location: &str) -> Result<String, MessageError> {
    let what = "newSession answer";
    let origin = origin_of(base).unwrap_or(base);
    if location.starts_with("http://") || location.starts_with("https://") {
        if origin_of(location) != Some(origin) {
            return Err(MessageError::new(
                V,
                what,
                format!("the session {location:?} is not on {origin}"),
            ));
        }
        return Ok(location.to_owned());
    }
    if location.is_empty() || location.contains("..") || location.contains(['?', '#', ' ']) {
        return Err(MessageError::new(
            V,
            what,
            format!("`Location` {location:?} is not a session path"),
        ));
    }
    if location.starts_with('/') {
        return Ok(format!("{origin}{location}"));
    }
    Ok(format!(
        "{}/challenge-response/v1/{location}",
        base.trim_end_matches('/')
    ))
}

/// `scheme://host[:port]` of `url`.
fn origin_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let end = rest
        .find('/')
        .map_or(url.len(), |i| url.len() - rest.len() + i);
    Some(&url[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_round_trips() {
        let body = session_json(&[7; 64], "waiting", &["application/x"], None);
        let s = parse_session(&body).unwrap();
        assert_eq!(s.nonce, vec![7; 64]);
        assert_eq!(s.status, "waiting");
        assert_eq!(s.accept, vec!["application/x"]);
        assert!(report_data(&s.nonce).is_ok());
        assert!(report_data(&[1; 32]).is_err());
        let done = parse_session(&session_json(&[7; 64], "complete", &[], Some("a.b.c"))).unwrap();
        assert_eq!(done.result.as_deref(), Some("a.b.c"));
    }

    #[test]
    fn session_urls_stay_on_the_verifier() {
        let base = "http://127.0.0.1:8080";
        assert_eq!(
            session_url(base, "session/abc").unwrap(),
            "http://127.0.0.1:8080/challenge-response/v1/session/abc"
        );
        assert_eq!(
            session_url(base, "/challenge-response/v1/session/x").unwrap(),
            "http://127.0.0.1:8080/challenge-response/v1/session/x"
        );
        assert_eq!(
            session_url(
                base,
                "http://127.0.0.1:8080/challenge-response/v1/session/y"
            )
            .unwrap(),
            "http://127.0.0.1:8080/challenge-response/v1/session/y"
        );
        assert!(session_url(base, "http://evil.example/session/1").is_err());
        assert!(session_url(base, "session/../../x").is_err());
        assert!(session_url(base, "").is_err());
    }
}
