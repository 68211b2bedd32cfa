// SPDX-License-Identifier: Apache-2.0
//! The Azure IMDS TD quote service (`POST {imds}/acc/tdquote`, docs/formats.md §5): on a TDX
//! confidential VM behind the paravisor the guest cannot reach a quoting enclave, so it sends the
//! TD report from the HCL report (vTPM NV `0x01400001`) to IMDS and gets a DCAP quote back.
//!
//! The request is exactly what every known client sends and IMDS accepts: `Content-Type:
//! application/json` with no parameter (`application/json; charset=utf-8` is refused with 415),
//! `Metadata: true`, and `{"report":"<base64url of the 1024-byte TD report, unpadded>"}`. The
//! reply `{"quote":"…"}` is base64url; it is decoded with or without padding, because the
//! service's padding is only observed (clients that reject `=` work, so none is sent today), not
//! documented. The standard alphabet is refused: nothing says IMDS ever uses it, and accepting
//! it would hide a server that changed encodings.
//!
//! The quote is returned as received; parsing and checking it belong to `thimble-evidence` and
//! `thimble-verify`. Like every IMDS call this one must never go through a proxy: give it an
//! [`HttpClient`](crate::http::HttpClient) made with [`imds_http_config`].

use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::Value;

use crate::http::{Fetch, FetchError, HttpConfig};
use crate::tdx_guest::TDX_REPORT_LEN;

pub use crate::endorse::DEFAULT_IMDS_BASE;

/// Path of the TD quote endpoint below the IMDS base (no `api-version`, docs/formats.md §2).
pub const ACC_TDQUOTE_PATH: &str = "/acc/tdquote";

/// The only `Content-Type` IMDS accepts for `/acc/tdquote`.
pub const ACC_CONTENT_TYPE: &str = "application/json";

/// Base64url that decodes padded and unpadded input alike (canonical padding only when present).
const URL_SAFE_ANY_PAD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why no quote was obtained. Every variant names the URL asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccError {
    /// IMDS refused the request's media type.
    #[error(
        "IMDS {url} refused the request with 415 Unsupported Media Type: it accepts only `Content-Type: application/json`, exactly, with no charset parameter (body {body_excerpt:?})"
    )]
    UnsupportedMediaType {
        /// The URL asked.
        url: String,
        /// Start of the reply body, printable characters only.
        body_excerpt: String,
    },
    /// The request failed: a non-2xx status (after retries, when retryable), a timeout, no
    /// connection, the deadline. The [`FetchError`] names the URL.
    #[error("TD quote request to IMDS failed")]
    Fetch(#[source] FetchError),
    /// The reply is not a JSON object.
    #[error("IMDS {url} reply is not a JSON object: {reason}")]
    MalformedJson {
        /// The URL asked.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The reply is a JSON object without a `quote` member (or with `"quote": null`).
    #[error("IMDS {url} reply has no \"quote\" member (members: {members:?})")]
    MissingQuote {
        /// The URL asked.
        url: String,
        /// The members the reply has.
        members: Vec<String>,
    },
    /// `quote` is present but not a string.
    #[error("IMDS {url} reply \"quote\" is a JSON {found}, not a string")]
    QuoteNotString {
        /// The URL asked.
        url: String,
        /// The JSON type found.
        found: &'static str,
    },
    /// `quote` is not base64url.
    #[error("IMDS {url} reply \"quote\" is not base64url: {reason}")]
    QuoteBase64 {
        /// The URL asked.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// `quote` decodes to nothing.
    #[error("IMDS {url} reply \"quote\" is empty")]
    EmptyQuote {
        /// The URL asked.
        url: String,
    },
}

impl AccError {
    /// The HTTP status IMDS answered with, when the failure is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            AccError::UnsupportedMediaType { .. } => Some(415),
            AccError::Fetch(FetchError::Status { status, .. }) => Some(*status),
            _ => None,
        }
    }
}

/// `{imds_base}/acc/tdquote`.
pub fn tdquote_url(imds_base: &str) -> String {
    format!("{}{ACC_TDQUOTE_PATH}", imds_base.trim_end_matches('/'))
}

/// `config` made fit for IMDS: the proxy environment is ignored (IMDS is unsupported behind a
/// proxy, docs/formats.md §2), whatever the caller set.
pub fn imds_http_config(config: HttpConfig) -> HttpConfig {
    HttpConfig {
        use_proxy_env: false,
        ..config
    }
}

/// The request body, `{"report":"<base64url, unpadded>"}` (the form KV and CN send).
pub fn request_body(td_report: &[u8; TDX_REPORT_LEN]) -> Vec<u8> {
    serde_json::json!({ "report": URL_SAFE_NO_PAD.encode(td_report) })
        .to_string()
        .into_bytes()
}

/// Sends `td_report` to `{imds_base}/acc/tdquote` and returns the quote IMDS made of it.
///
/// Retries are the client's ([`HttpClient`](crate::http::HttpClient) retries 5xx, 429, 410, 404
/// and 408 within its deadline); a 415 is reported as [`AccError::UnsupportedMediaType`].
pub fn fetch_td_quote(
    fetch: &dyn Fetch,
    imds_base: &str,
    td_report: &[u8; TDX_REPORT_LEN],
) -> Result<Vec<u8>, AccError> {
    let url = tdquote_url(imds_base);
    let headers = [
        ("Metadata", "true"),
        ("Content-Type", ACC_CONTENT_TYPE),
        ("Accept", ACC_CONTENT_TYPE),
    ];
    let response = match fetch.post(&url, &headers, &request_body(td_report)) {
        Ok(r) => r,
        Err(FetchError::Status {
            url,
            status: 415,
            body_excerpt,
            ..
        }) => return Err(AccError::UnsupportedMediaType { url, body_excerpt }),
        Err(e) => return Err(AccError::Fetch(e)),
    };
    parse_response(&url, &response.body)
}

/// The quote in a `/acc/tdquote` reply body; `url` only names the source in errors.
pub fn parse_response(url: &str, body: &[u8]) -> Result<Vec<u8>, AccError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| AccError::MalformedJson {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    let Value::Object(members) = value else {
        return Err(AccError::MalformedJson {
            url: url.to_owned(),
            reason: format!("the reply is a JSON {}", json_kind(&value)),
        });
    };
    let encoded = match members.get("quote") {
        None | Some(Value::Null) => {
            return Err(AccError::MissingQuote {
                url: url.to_owned(),
                members: members.keys().cloned().collect(),
            });
        }
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(AccError::QuoteNotString {
                url: url.to_owned(),
                found: json_kind(other),
            });
        }
    };
    let quote = URL_SAFE_ANY_PAD
        .decode(encoded)
        .map_err(|e| AccError::QuoteBase64 {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
    if quote.is_empty() {
        return Err(AccError::EmptyQuote {
            url: url.to_owned(),
        });
    }
    Ok(quote)
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://127.0.0.1:1/acc/tdquote";

    #[test]
    fn url_and_body() {
        assert_eq!(
            tdquote_url("http://169.254.169.254/"),
            "http://169.254.169.254/acc/tdquote"
        );
        let mut report = [0u8; TDX_REPORT_LEN];
        report[0] = 0xfb;
        report[1] = 0xff;
        let body: Value = serde_json::from_slice(&request_body(&report)).unwrap();
        let encoded = body["report"].as_str().unwrap();
        // 1024 bytes: 1366 characters unpadded, with the URL-safe alphabet.
        assert_eq!(encoded.len(), 1366);
        assert!(encoded.starts_with("-_8"));
        assert!(!encoded.contains(['=', '+', '/']));
        assert_eq!(body.as_object().unwrap().len(), 1);
    }

    #[test]
    fn proxy_env_is_forced_off() {
        let config = imds_http_config(HttpConfig {
            use_proxy_env: true,
            max_attempts: 7,
            ..HttpConfig::default()
        });
        assert!(!config.use_proxy_env);
        assert_eq!(config.max_attempts, 7);
    }

    #[test]
    fn quote_padding_is_optional() {
        // 4 bytes: "-_8A_w" unpadded, "-_8A_w==" padded.
        let want = vec![0xfb, 0xff, 0x00, 0xff];
        // A short padding run is tolerated too (the base64 crate's "indifferent" mode).
        for body in [
            r#"{"quote":"-_8A_w"}"#,
            r#"{"quote":"-_8A_w=="}"#,
            r#"{"quote":"-_8A_w="}"#,
        ] {
            assert_eq!(
                parse_response(URL, body.as_bytes()).unwrap(),
                want,
                "{body}"
            );
        }
        // Unknown members are ignored.
        let body = r#"{"quote":"AQ","other":1}"#;
        assert_eq!(parse_response(URL, body.as_bytes()).unwrap(), [1]);
    }

    #[test]
    fn reply_errors() {
        let e = |body: &str| parse_response(URL, body.as_bytes()).unwrap_err();
        assert!(matches!(e("not json"), AccError::MalformedJson { .. }));
        assert!(matches!(e(""), AccError::MalformedJson { .. }));
        let array = e(r#"["quote"]"#);
        assert!(array.to_string().contains("array"), "{array}");
        let missing = e(r#"{"error":"busy"}"#);
        assert!(
            matches!(&missing, AccError::MissingQuote { members, .. } if members == &["error"])
        );
        assert!(matches!(
            e(r#"{"quote":null}"#),
            AccError::MissingQuote { .. }
        ));
        assert!(matches!(
            e(r#"{"quote":12}"#),
            AccError::QuoteNotString {
                found: "number",
                ..
            }
        ));
        for bad in ["+/8A/w", "-_8A_w===", "!!", "AQ==AQ", " AQ"] {
            assert!(
                matches!(
                    e(&format!(r#"{{"quote":"{bad}"}}"#)),
                    AccError::QuoteBase64 { .. }
                ),
                "{bad}"
            );
        }
        assert!(matches!(e(r#"{"quote":""}"#), AccError::EmptyQuote { .. }));
        assert!(e(r#"{"quote":""}"#).to_string().contains(URL));
    }

    #[test]
    fn status_of_errors() {
        let fetch = AccError::Fetch(FetchError::Status {
            url: URL.to_owned(),
            status: 503,
            attempts: 4,
            body_excerpt: String::new(),
        });
        assert_eq!(fetch.status(), Some(503));
        let media = AccError::UnsupportedMediaType {
            url: URL.to_owned(),
            body_excerpt: String::new(),
        };
        assert_eq!(media.status(), Some(415));
        assert!(media.to_string().contains("application/json"));
        assert_eq!(
            AccError::EmptyQuote {
                url: URL.to_owned()
            }
            .status(),
            None
        );
    }
}
