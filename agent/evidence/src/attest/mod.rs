// SPDX-License-Identifier: Apache-2.0
//! The messages `thimble attest` exchanges with remote verifiers: Microsoft Azure Attestation
//! ([`maa`], and its Azure guest protocol with an ephemeral TPM key, [`azure_guest`]), the Confidential Containers key broker, Trustee's KBS ([`kbs`]), Intel Trust
//! Authority ([`ita`]) and Veraison ([`veraison`]). Pure: each module builds the requests its
//! verifier parses, computes REPORT_DATA by that verifier's binding rule, and reads the answers,
//! bounded and typed; nothing here sends, collects or decrypts (the exchange is
//! `thimble_collect::attest`). The verifiers' emulators (`thimble_sim::verifiers`) parse the
//! requests with the same functions, so a request that this module builds wrongly fails there as
//! it would at the service. docs/attest.md documents every exchange with its sources.

pub mod azure_guest;
pub mod ita;
pub mod kbs;
pub mod maa;
pub mod token;
pub mod veraison;

use thiserror::Error;

/// Largest verifier answer read, in bytes: tokens are a few kilobytes, a KBS resource is a key.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// The verifiers `thimble attest` talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verifier {
    /// Microsoft Azure Attestation.
    Maa,
    /// Trustee's Key Broker Service (protocol 0.4.0).
    Kbs,
    /// Intel Trust Authority.
    Ita,
    /// A Veraison verifier's challenge-response API.
    Veraison,
}

impl Verifier {
    /// The name used on the command line and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Verifier::Maa => "maa",
            Verifier::Kbs => "kbs",
            Verifier::Ita => "ita",
            Verifier::Veraison => "veraison",
        }
    }
}

impl std::fmt::Display for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verifier's answer (or, read by an emulator, a request) that is not what its protocol
/// says.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{verifier}: {what}: {reason}")]
pub struct MessageError {
    /// Whose message.
    pub verifier: Verifier,
    /// Which message (`auth answer`, `attest request`, `resource`).
    pub what: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl MessageError {
    pub(crate) fn new(verifier: Verifier, what: &'static str, reason: impl Into<String>) -> Self {
        MessageError {
            verifier,
            what,
            reason: reason.into(),
        }
    }
}

/// Parses `bytes` as a JSON object, bounded by [`MAX_ANSWER_BYTES`].
pub(crate) fn json_object(
    verifier: Verifier,
    what: &'static str,
    bytes: &[u8],
) -> Result<serde_json::Map<String, serde_json::Value>, MessageError> {
    if bytes.len() > MAX_ANSWER_BYTES {
        return Err(MessageError::new(
            verifier,
            what,
            format!(
                "{} bytes, more than the {MAX_ANSWER_BYTES} accepted",
                bytes.len()
            ),
        ));
    }
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(MessageError::new(verifier, what, "not a JSON object")),
        Err(e) => Err(MessageError::new(verifier, what, format!("not JSON: {e}"))),
    }
}

/// The string member `name` of `map`.
pub(crate) fn string_member<'a>(
    verifier: Verifier,
    what: &'static str,
    map: &'a serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<&'a str, MessageError> {
    match map.get(name) {
        Some(serde_json::Value::String(s)) => Ok(s),
        Some(_) => Err(MessageError::new(
            verifier,
            what,
            format!("`{name}` is not a string"),
        )),
        None => Err(MessageError::new(verifier, what, format!("no `{name}`"))),
    }
}
