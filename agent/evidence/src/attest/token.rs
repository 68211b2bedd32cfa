// SPDX-License-Identifier: Apache-2.0
//! Attestation tokens: the `{"token": "<JWT>"}` answer MAA, Trustee and Intel Trust Authority
//! give, and the JWT's compact form (RFC 7519) read far enough to show its header and claims.
//! The token is the relying party's to verify (its signer is the verifier, whose keys thimble
//! does not pin); `attest` checks only that it is a well-formed JWT and hands it on unchanged.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::{MessageError, Verifier, json_object, string_member};

/// Largest token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 256 * 1024;

/// A JWT as received, with its decoded (unverified) header and claims.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// The compact form, exactly as received.
    pub jwt: String,
    /// The JOSE header.
    pub header: Value,
    /// The claims set, not verified: for display.
    pub claims: Value,
}

/// Reads the `{"token": "<JWT>"}` answer of `verifier`.
pub fn parse_token_answer(verifier: Verifier, bytes: &[u8]) -> Result<Token, MessageError> {
    let what = "attestation answer";
    let map = json_object(verifier, what, bytes)?;
    let jwt = string_member(verifier, what, &map, "token")?;
    parse_jwt(verifier, jwt)
}

/// Reads a JWT in compact form: three base64url parts, the first two JSON objects.
pub fn parse_jwt(verifier: Verifier, jwt: &str) -> Result<Token, MessageError> {
    let what = "token";
    let bad = |reason: String| MessageError::new(verifier, what, reason);
    if jwt.len() > MAX_TOKEN_LEN {
        return Err(bad(format!(
            "{} bytes, more than the {MAX_TOKEN_LEN} accepted",
            jwt.len()
        )));
    }
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return Err(bad(format!(
            "a JWT has three parts separated by '.', this has {}",
            parts.len()
        )));
    }
    let decode = |i: usize, name: &str| -> Result<Value, MessageError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(parts[i].trim_end_matches('='))
            .map_err(|e| bad(format!("its {name} is not base64url: {e}")))?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err(bad(format!("its {name} is not a JSON object"))),
        }
    };
    let header = decode(0, "header")?;
    let claims = decode(1, "claims")?;
    if parts[2].is_empty() {
        return Err(bad("it is unsigned (empty signature part)".to_owned()));
    }
    Ok(Token {
        jwt: jwt.to_owned(),
        header,
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(header: &str, claims: &str, sig: &str) -> String {
        format!(
            "{}.{}.{sig}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    #[test]
    fn reads_a_token_answer() {
        let t = jwt(r#"{"alg":"RS256"}"#, r#"{"x":1}"#, "c2ln");
        let body = serde_json::json!({ "token": t }).to_string();
        let token = parse_token_answer(Verifier::Maa, body.as_bytes()).unwrap();
        assert_eq!(token.jwt, t);
        assert_eq!(token.claims["x"], 1);
        assert_eq!(token.header["alg"], "RS256");
    }

    #[test]
    fn refuses_what_is_not_a_jwt() {
        for (body, needle) in [
            (r#"{"token":"a.b"}"#.to_owned(), "three parts"),
            (r#"{"tok":"a.b.c"}"#.to_owned(), "no `token`"),
            (r#"[1]"#.to_owned(), "not a JSON object"),
            (
                serde_json::json!({ "token": jwt("{}", "{}", "") }).to_string(),
                "unsigned",
            ),
            (
                serde_json::json!({ "token": jwt("[]", "{}", "x") }).to_string(),
                "header is not a JSON object",
            ),
        ] {
            let e = parse_token_answer(Verifier::Kbs, body.as_bytes()).unwrap_err();
            assert!(e.to_string().contains(needle), "{e}");
        }
    }
}
