// SPDX-License-Identifier: Apache-2.0
//! Trustee's Key Broker Service, protocol 0.4.0 (the RCAR handshake): the `auth` request and its
//! challenge, the binding digest, the `attest` request, and the JWE a resource comes back in.
//!
//! The exchange (confidential-containers/trustee@78962cd4 `kbs/docs/kbs_attestation_protocol.md`;
//! the client side of confidential-containers/guest-components@8246e5e0
//! `attestation-agent/kbs_protocol/src/client/rcar_client.rs`; the types of
//! confidential-containers/kbs-types):
//!
//! 1. `POST /kbs/v0/auth` `{"version": "0.4.0", "tee": T, "extra-params":
//!    {"supported-hash-algorithms": [...]}}`; the answer is `{"nonce": N, "extra-params": E}` with
//!    a `kbs-session-id` cookie. `E` may name `selected-hash-algorithm`; without it the hash is
//!    SHA-384 (Trustee selects only for IBM SE today).
//! 2. The guest makes a key pair for the session; its public half `K` is a JWK (here EC P-256
//!    for `ECDH-ES+A256KW`, which Trustee's `jwe` module supports beside RSA).
//! 3. `digest = H(JCS({"nonce": N, "tee-pubkey": K, "additional-evidence": ""}))`, JCS being
//!    RFC 8785; REPORT_DATA is the digest zero-padded to 64 bytes. On Azure the digest is the TPM
//!    quote's qualifying data and, padded, the HCL report's `user-data` (Trustee's Azure
//!    verifiers compare the quote's `extraData` exactly and `user-data` by prefix).
//! 4. `POST /kbs/v0/attest` with the cookie: `{"init-data": null, "runtime-data": {"nonce": N,
//!    "tee-pubkey": K}, "tee-evidence": {"primary_evidence": P, "additional_evidence": ""}}`, P
//!    being Trustee's evidence JSON of the TEE (`crate::interop::trustee`); the answer is
//!    `{"token": JWT}`.
//! 5. `GET /kbs/v0/resource/{repository}/{type}/{tag}` with the cookie answers a JWE in the
//!    flattened JSON serialization (RFC 7516 §7.2.2) encrypted to K: `alg` `ECDH-ES+A256KW` with
//!    the KBS's ephemeral key in `epk`, `enc` `A256GCM`, the AAD the protected header's base64url
//!    text. [`Jwe`] reads it; `thimble_collect::attest::jwe` decrypts it.

use crate::digest::{Sha256, Sha384, Sha512};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::{MessageError, Verifier, json_object, string_member};

/// The protocol version thimble speaks.
pub const PROTOCOL_VERSION: &str = "0.4.0";
/// `POST` path of the challenge request.
pub const AUTH_PATH: &str = "/kbs/v0/auth";
/// `POST` path of the evidence.
pub const ATTEST_PATH: &str = "/kbs/v0/attest";
/// Prefix of `GET` resource paths.
pub const RESOURCE_PREFIX: &str = "/kbs/v0/resource/";
/// The session cookie's name.
pub const SESSION_COOKIE: &str = "kbs-session-id";
/// The JWE key-management algorithm of thimble's session keys.
pub const KEY_ALGORITHM: &str = "ECDH-ES+A256KW";
/// The JWE content encryption.
pub const CONTENT_ENCRYPTION: &str = "A256GCM";
/// Longest nonce accepted from a KBS.
pub const MAX_NONCE_LEN: usize = 1024;

const V: Verifier = Verifier::Kbs;

/// The hash a KBS selects for the binding digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// SHA-256 (32-byte digest).
    Sha256,
    /// SHA-384 (48 bytes), the protocol's default.
    Sha384,
    /// SHA-512 (64 bytes).
    Sha512,
}

impl HashAlgorithm {
    /// Those thimble offers in `supported-hash-algorithms`, in its order of preference.
    pub const SUPPORTED: [HashAlgorithm; 3] = [
        HashAlgorithm::Sha384,
        HashAlgorithm::Sha512,
        HashAlgorithm::Sha256,
    ];

    /// The protocol's name.
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha384 => "sha384",
            HashAlgorithm::Sha512 => "sha512",
        }
    }

    /// The algorithm named `name` (case-insensitive), if thimble supports it.
    pub fn from_name(name: &str) -> Option<HashAlgorithm> {
        Self::SUPPORTED
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(name.trim()))
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashAlgorithm::Sha256 => Sha256::digest(data).to_vec(),
            HashAlgorithm::Sha384 => Sha384::digest(data).to_vec(),
            HashAlgorithm::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

/// The session's public key: an EC P-256 point, sent as the JWK `tee-pubkey`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TeePubKey {
    /// The X coordinate, big-endian.
    pub x: [u8; 32],
    /// The Y coordinate, big-endian.
    pub y: [u8; 32],
}

impl TeePubKey {
    /// The key from its uncompressed SEC 1 encoding (`0x04 ‖ X ‖ Y`, 65 bytes).
    pub fn from_uncompressed(point: &[u8]) -> Option<TeePubKey> {
        if point.len() != 65 || point[0] != 4 {
            return None;
        }
        let mut x = [0u8; 32];
        let mut y = [0u8; 32];
        x.copy_from_slice(&point[1..33]);
        y.copy_from_slice(&point[33..65]);
        Some(TeePubKey { x, y })
    }

    /// The uncompressed SEC 1 encoding.
    pub fn uncompressed(&self) -> [u8; 65] {
        let mut out = [0u8; 65];
        out[0] = 4;
        out[1..33].copy_from_slice(&self.x);
        out[33..].copy_from_slice(&self.y);
        out
    }

    /// The JWK kbs-types writes for an EC key.
    pub fn to_jwk(&self) -> Value {
        json!({
            "kty": "EC",
            "crv": "P-256",
            "alg": KEY_ALGORITHM,
            "x": URL_SAFE_NO_PAD.encode(self.x),
            "y": URL_SAFE_NO_PAD.encode(self.y),
        })
    }

    /// Reads a JWK of an EC P-256 key for [`KEY_ALGORITHM`].
    pub fn from_jwk(jwk: &Value) -> Result<TeePubKey, MessageError> {
        let what = "tee-pubkey";
        let Value::Object(map) = jwk else {
            return Err(MessageError::new(V, what, "not a JSON object"));
        };
        for (name, want) in [("kty", "EC"), ("crv", "P-256"), ("alg", KEY_ALGORITHM)] {
            let have = string_member(V, what, map, name)?;
            if have != want {
                return Err(MessageError::new(
                    V,
                    what,
                    format!("`{name}` is {have:?}; thimble's sessions use {want:?}"),
                ));
            }
        }
        let coordinate = |name: &str| -> Result<[u8; 32], MessageError> {
            let text = string_member(V, what, map, name)?;
            URL_SAFE_NO_PAD
                .decode(text)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
                .ok_or_else(|| {
                    MessageError::new(V, what, format!("`{name}` is not 32 bytes of base64url"))
                })
        };
        Ok(TeePubKey {
            x: coordinate("x")?,
            y: coordinate("y")?,
        })
    }
}

/// The body of `POST /kbs/v0/auth` for Trustee's TEE name `tee`.
pub fn auth_request(tee: &str) -> Vec<u8> {
    let supported: Vec<&str> = HashAlgorithm::SUPPORTED
        .iter()
        .map(|a| a.as_str())
        .collect();
    json!({
        "version": PROTOCOL_VERSION,
        "tee": tee,
        "extra-params": { "supported-hash-algorithms": supported },
    })
    .to_string()
    .into_bytes()
}

/// A parsed `auth` request, as the KBS reads it (for emulators).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    /// The protocol version asked for.
    pub version: String,
    /// Trustee's TEE name.
    pub tee: String,
}

/// Reads an `auth` request body.
pub fn parse_auth_request(bytes: &[u8]) -> Result<AuthRequest, MessageError> {
    let what = "auth request";
    let map = json_object(V, what, bytes)?;
    Ok(AuthRequest {
        version: string_member(V, what, &map, "version")?.to_owned(),
        tee: string_member(V, what, &map, "tee")?.to_owned(),
    })
}

/// The KBS's challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The nonce, as sent (a string the binding includes verbatim).
    pub nonce: String,
    /// The hash for the binding digest.
    pub hash: HashAlgorithm,
}

/// Reads the answer to `auth`.
pub fn parse_challenge(bytes: &[u8]) -> Result<Challenge, MessageError> {
    let what = "auth answer";
    let map = json_object(V, what, bytes)?;
    let nonce = string_member(V, what, &map, "nonce")?;
    if nonce.is_empty() || nonce.len() > MAX_NONCE_LEN {
        return Err(MessageError::new(
            V,
            what,
            format!(
                "the nonce is {} bytes; 1 to {MAX_NONCE_LEN} are accepted",
                nonce.len()
            ),
        ));
    }
    // `extra-params` is an object, or an empty string from KBS versions that select nothing.
    let selected = match map.get("extra-params") {
        Some(Value::Object(extra)) => extra.get("selected-hash-algorithm"),
        _ => None,
    };
    let hash = match selected {
        None => HashAlgorithm::Sha384,
        Some(Value::String(name)) => HashAlgorithm::from_name(name).ok_or_else(|| {
            MessageError::new(
                V,
                what,
                format!("selected-hash-algorithm {name:?} was not offered"),
            )
        })?,
        Some(_) => {
            return Err(MessageError::new(
                V,
                what,
                "selected-hash-algorithm is not a string",
            ));
        }
    };
    Ok(Challenge {
        nonce: nonce.to_owned(),
        hash,
    })
}

/// The challenge answer a KBS sends (for emulators).
pub fn challenge_answer(nonce: &str, selected: Option<HashAlgorithm>) -> Vec<u8> {
    let extra = match selected {
        Some(h) => json!({ "selected-hash-algorithm": h.as_str() }),
        None => Value::String(String::new()),
    };
    json!({ "nonce": nonce, "extra-params": extra })
        .to_string()
        .into_bytes()
}

/// The binding digest: `H(JCS({"nonce", "tee-pubkey", "additional-evidence"}))`.
pub fn binding_digest(
    hash: HashAlgorithm,
    nonce: &str,
    key: &Value,
    additional_evidence: &str,
) -> Vec<u8> {
    let mut object = Map::new();
    object.insert("nonce".to_owned(), Value::String(nonce.to_owned()));
    object.insert("tee-pubkey".to_owned(), key.clone());
    object.insert(
        "additional-evidence".to_owned(),
        Value::String(additional_evidence.to_owned()),
    );
    hash.digest(canonical_json(&Value::Object(object)).as_bytes())
}

/// RFC 8785 canonical JSON of `value`.
pub fn canonical_json(value: &Value) -> String {
    // Serialising a `Value` cannot fail: its keys are strings and it holds no non-finite number.
    serde_json_canonicalizer::to_string(value).unwrap_or_default()
}

/// The body of `POST /kbs/v0/attest`.
pub fn attest_request(nonce: &str, key: &TeePubKey, primary_evidence: Value) -> Vec<u8> {
    json!({
        "init-data": null,
        "runtime-data": { "nonce": nonce, "tee-pubkey": key.to_jwk() },
        "tee-evidence": {
            "primary_evidence": primary_evidence,
            "additional_evidence": "",
        },
    })
    .to_string()
    .into_bytes()
}

/// A parsed `attest` request, as the KBS reads it (for emulators).
#[derive(Debug, Clone, PartialEq)]
pub struct AttestRequest {
    /// `runtime-data.nonce`.
    pub nonce: String,
    /// `runtime-data.tee-pubkey`, as sent (the digest covers it as sent).
    pub key_jwk: Value,
    /// The key it holds.
    pub key: TeePubKey,
    /// `tee-evidence.primary_evidence`.
    pub primary_evidence: Value,
    /// `tee-evidence.additional_evidence`.
    pub additional_evidence: String,
}

/// Reads an `attest` request body.
pub fn parse_attest_request(bytes: &[u8]) -> Result<AttestRequest, MessageError> {
    let what = "attest request";
    let map = json_object(V, what, bytes)?;
    let object = |name: &str| match map.get(name) {
        Some(Value::Object(o)) => Ok(o),
        _ => Err(MessageError::new(
            V,
            what,
            format!("`{name}` is not an object"),
        )),
    };
    let runtime = object("runtime-data")?;
    let evidence = object("tee-evidence")?;
    let key_jwk = runtime
        .get("tee-pubkey")
        .cloned()
        .ok_or_else(|| MessageError::new(V, what, "no `runtime-data.tee-pubkey`"))?;
    Ok(AttestRequest {
        nonce: string_member(V, what, runtime, "nonce")?.to_owned(),
        key: TeePubKey::from_jwk(&key_jwk)?,
        key_jwk,
        primary_evidence: evidence
            .get("primary_evidence")
            .cloned()
            .ok_or_else(|| MessageError::new(V, what, "no `primary_evidence`"))?,
        additional_evidence: match evidence.get("additional_evidence") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(MessageError::new(
                    V,
                    what,
                    "`additional_evidence` is not a string",
                ));
            }
        },
    })
}

/// The path of resource `name` (`repository/type/tag`), each segment checked so that a name
/// cannot walk elsewhere on the KBS.
pub fn resource_path(name: &str) -> Result<String, String> {
    let segments: Vec<&str> = name.split('/').collect();
    let ok = |s: &&str| {
        !s.is_empty()
            && *s != "."
            && *s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if segments.len() != 3 || !segments.iter().all(ok) {
        return Err(format!(
            "a KBS resource is REPOSITORY/TYPE/TAG, each of letters, digits, '-', '_' and '.'; \
             {name:?} is not"
        ));
    }
    Ok(format!("{RESOURCE_PREFIX}{name}"))
}

/// A JWE in the flattened JSON serialization, as a KBS sends a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwe {
    /// The protected header's base64url text, as received: it is the AAD.
    pub protected: String,
    /// The KBS's ephemeral public key (`epk`), uncompressed SEC 1.
    pub epk: [u8; 65],
    /// The wrapped content key (40 bytes for a 256-bit key).
    pub encrypted_key: Vec<u8>,
    /// The AES-GCM nonce (12 bytes).
    pub iv: Vec<u8>,
    /// The ciphertext.
    pub ciphertext: Vec<u8>,
    /// The GCM tag (16 bytes).
    pub tag: Vec<u8>,
}

impl Jwe {
    /// The additional authenticated data of the content encryption.
    pub fn aad(&self) -> &[u8] {
        self.protected.as_bytes()
    }
}

/// Reads a resource JWE. Only [`KEY_ALGORITHM`] with [`CONTENT_ENCRYPTION`] is accepted: it is
/// what a key of [`TeePubKey`]'s kind is answered with.
pub fn parse_jwe(bytes: &[u8]) -> Result<Jwe, MessageError> {
    let what = "resource";
    let map = json_object(V, what, bytes)?;
    let b64 = |name: &str| -> Result<Vec<u8>, MessageError> {
        let text = string_member(V, what, &map, name)?;
        URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|e| MessageError::new(V, what, format!("`{name}` is not base64url: {e}")))
    };
    let protected = string_member(V, what, &map, "protected")?.to_owned();
    let header_bytes = b64("protected")?;
    let header = match serde_json::from_slice::<Value>(&header_bytes) {
        Ok(Value::Object(h)) => h,
        _ => {
            return Err(MessageError::new(
                V,
                what,
                "the protected header is not a JSON object",
            ));
        }
    };
    for (name, want) in [("alg", KEY_ALGORITHM), ("enc", CONTENT_ENCRYPTION)] {
        let have = string_member(V, what, &header, name)?;
        if have != want {
            return Err(MessageError::new(
                V,
                what,
                format!("`{name}` is {have:?}, not the {want:?} of thimble's session key"),
            ));
        }
    }
    let epk = match header.get("epk") {
        Some(epk) => {
            let mut epk = epk.clone();
            // The ephemeral key's JWK carries no `alg`; check it as the session key's kind.
            if let Value::Object(m) = &mut epk {
                m.insert("alg".to_owned(), Value::String(KEY_ALGORITHM.to_owned()));
            }
            TeePubKey::from_jwk(&epk)?.uncompressed()
        }
        None => {
            return Err(MessageError::new(
                V,
                what,
                "no `epk` in the protected header",
            ));
        }
    };
    let jwe = Jwe {
        protected,
        epk,
        encrypted_key: b64("encrypted_key")?,
        iv: b64("iv")?,
        ciphertext: b64("ciphertext")?,
        tag: b64("tag")?,
    };
    if jwe.encrypted_key.len() != 40 || jwe.iv.len() != 12 || jwe.tag.len() != 16 {
        return Err(MessageError::new(
            V,
            what,
            format!(
                "encrypted_key, iv and tag are {}, {} and {} bytes, not 40, 12 and 16",
                jwe.encrypted_key.len(),
                jwe.iv.len(),
                jwe.tag.len()
            ),
        ));
    }
    Ok(jwe)
}

/// The protected header a KBS writes for `epk` (its ephemeral key), base64url.
pub fn protected_header(epk: &TeePubKey) -> String {
    let header = json!({
        "alg": KEY_ALGORITHM,
        "enc": CONTENT_ENCRYPTION,
        "epk": {
            "crv": "P-256",
            "kty": "EC",
            "x": URL_SAFE_NO_PAD.encode(epk.x),
            "y": URL_SAFE_NO_PAD.encode(epk.y),
        },
    });
    URL_SAFE_NO_PAD.encode(header.to_string())
}

/// The flattened JSON serialization of a JWE (for emulators).
pub fn jwe_json(
    protected: &str,
    encrypted_key: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Vec<u8> {
    json!({
        "protected": protected,
        "encrypted_key": URL_SAFE_NO_PAD.encode(encrypted_key),
        "iv": URL_SAFE_NO_PAD.encode(iv),
        "ciphertext": URL_SAFE_NO_PAD.encode(ciphertext),
        "tag": URL_SAFE_NO_PAD.encode(tag),
    })
    .to_string()
    .into_bytes()
}

/// The Concat KDF (NIST SP 800-56A, as RFC 7518 §4.6.2 applies it) of the shared secret `z`
/// for `ECDH-ES+A256KW`: one SHA-256 round, no party information, 256 bits.
pub fn key_wrapping_key(z: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(1u32.to_be_bytes());
    h.update(z);
    h.update((KEY_ALGORITHM.len() as u32).to_be_bytes());
    h.update(KEY_ALGORITHM.as_bytes());
    h.update(0u32.to_be_bytes()); // PartyUInfo: empty
    h.update(0u32.to_be_bytes()); // PartyVInfo: empty
    h.update(256u32.to_be_bytes()); // SuppPubInfo: key length in bits
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_request_names_version_tee_and_hashes() {
        let body: Value = serde_json::from_slice(&auth_request("snp")).unwrap();
        assert_eq!(body["version"], "0.4.0");
        assert_eq!(body["tee"], "snp");
        assert_eq!(
            body["extra-params"]["supported-hash-algorithms"],
            json!(["sha384", "sha512", "sha256"])
        );
        let parsed = parse_auth_request(&auth_request("az-snp-vtpm")).unwrap();
        assert_eq!(parsed.tee, "az-snp-vtpm");
    }

    #[test]
    fn challenge_defaults_to_sha384_and_refuses_the_unoffered() {
        let c = parse_challenge(br#"{"nonce":"abc","extra-params":""}"#).unwrap();
        assert_eq!(c.hash, HashAlgorithm::Sha384);
        let c = parse_challenge(&challenge_answer("n", Some(HashAlgorithm::Sha512))).unwrap();
        assert_eq!((c.nonce.as_str(), c.hash), ("n", HashAlgorithm::Sha512));
        let e =
            parse_challenge(br#"{"nonce":"abc","extra-params":{"selected-hash-algorithm":"sm3"}}"#)
                .unwrap_err();
        assert!(e.to_string().contains("sm3"), "{e}");
        assert!(parse_challenge(br#"{"nonce":""}"#).is_err());
        assert!(parse_challenge(br#"{"extra-params":""}"#).is_err());
    }

    #[test]
    fn the_digest_is_over_the_canonical_form() {
        let key = TeePubKey {
            x: [1; 32],
            y: [2; 32],
        };
        // Members in RFC 8785 order (sorted by UTF-16 code units), no white space.
        let expected = format!(
            r#"{{"additional-evidence":"","nonce":"n0","tee-pubkey":{{"alg":"ECDH-ES+A256KW","crv":"P-256","kty":"EC","x":"{}","y":"{}"}}}}"#,
            URL_SAFE_NO_PAD.encode([1u8; 32]),
            URL_SAFE_NO_PAD.encode([2u8; 32])
        );
        let d = binding_digest(HashAlgorithm::Sha384, "n0", &key.to_jwk(), "");
        assert_eq!(d, Sha384::digest(expected.as_bytes()).to_vec());
        assert_eq!(d.len(), 48);
    }

    #[test]
    fn attest_request_round_trips() {
        let key = TeePubKey {
            x: [3; 32],
            y: [4; 32],
        };
        let body = attest_request("n1", &key, json!({"quote": "q"}));
        let r = parse_attest_request(&body).unwrap();
        assert_eq!(r.nonce, "n1");
        assert_eq!(r.key, key);
        assert_eq!(r.primary_evidence["quote"], "q");
        assert_eq!(r.additional_evidence, "");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert!(v["init-data"].is_null());
    }

    #[test]
    fn resource_names_cannot_escape() {
        assert_eq!(
            resource_path("default/key/disk").unwrap(),
            "/kbs/v0/resource/default/key/disk"
        );
        for bad in [
            "a/b", "a/b/c/d", "../b/c", "a/./c", "a/b c/d", "a//c", "a/b/%2e",
        ] {
            assert!(resource_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn jwe_round_trips_and_is_checked() {
        let epk = TeePubKey {
            x: [5; 32],
            y: [6; 32],
        };
        let protected = protected_header(&epk);
        let body = jwe_json(&protected, &[7; 40], &[8; 12], b"secret", &[9; 16]);
        let jwe = parse_jwe(&body).unwrap();
        assert_eq!(jwe.epk, epk.uncompressed());
        assert_eq!(jwe.aad(), protected.as_bytes());
        assert_eq!(jwe.ciphertext, b"secret");
        let short = jwe_json(&protected, &[7; 39], &[8; 12], b"", &[9; 16]);
        assert!(parse_jwe(&short).is_err());
        let rsa = URL_SAFE_NO_PAD.encode(r#"{"alg":"RSA1_5","enc":"A256GCM"}"#);
        let e = parse_jwe(&jwe_json(&rsa, &[7; 40], &[8; 12], b"", &[9; 16])).unwrap_err();
        assert!(e.to_string().contains("RSA1_5"), "{e}");
    }

    #[test]
    fn kdf_matches_rfc_7518_appendix_c_shape() {
        // The single-round Concat KDF: SHA-256(counter ‖ Z ‖ OtherInfo).
        let z = [0x42u8; 32];
        let mut other = Vec::new();
        other.extend_from_slice(&14u32.to_be_bytes());
        other.extend_from_slice(b"ECDH-ES+A256KW");
        other.extend_from_slice(&[0; 8]);
        other.extend_from_slice(&256u32.to_be_bytes());
        let mut input = vec![0, 0, 0, 1];
        input.extend_from_slice(&z);
        input.extend_from_slice(&other);
        assert_eq!(
            key_wrapping_key(&z).to_vec(),
            Sha256::digest(&input).to_vec()
        );
    }
}
