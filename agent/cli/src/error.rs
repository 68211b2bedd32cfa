// SPDX-License-Identifier: Apache-2.0
//! The CLI's error type: every failure a user can cause, each with the exit code it maps to.

use std::path::PathBuf;

use thiserror::Error;

use crate::exit;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot read {path}")]
    ReadInput {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    MalformedFile { path: PathBuf, reason: String },
    #[error("no usable evidence source: {0}")]
    NoTee(String),
    /// A collection failed (its own messages and causes; "no source" is [`CliError::NoTee`]).
    #[error(transparent)]
    Collect(thimble_collect::CollectError),
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An `attest` run failed (a collection failure inside it maps as `collect`'s does).
    #[error(transparent)]
    Attest(thimble_collect::attest::AttestError),
    #[error("{0}")]
    Other(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        use thimble_collect::CollectError;
        match self {
            CliError::Usage(_) | CliError::ReadInput { .. } => exit::USAGE,
            CliError::MalformedFile { .. } => exit::MALFORMED,
            CliError::NoTee(_) => exit::NO_TEE,
            CliError::Attest(e) => {
                use thimble_collect::attest::AttestError;
                match e {
                    AttestError::Unavailable { .. } => exit::VERIFIER_UNAVAILABLE,
                    AttestError::Refused { .. } => exit::VERIFIER_REFUSED,
                    AttestError::Message(_) | AttestError::Jwe(_) => exit::MALFORMED,
                    AttestError::Unsupported { .. } | AttestError::Export(_) => exit::USAGE,
                    _ => exit::OTHER,
                }
            }
            CliError::Collect(e) => match e {
                CollectError::NoSource(_) => exit::NO_TEE,
                CollectError::Source { .. } => exit::COLLECTION_FAILED,
                CollectError::Endorsements(_) => exit::ENDORSEMENT_FAILED,
                // An operator's QCNL file that cannot be read or parsed is a configuration
                // mistake, like a bad flag.
                CollectError::Qcnl(_) | CollectError::InvalidRequest { .. } => exit::USAGE,
                _ => exit::OTHER,
            },
            CliError::Write { .. } | CliError::Other(_) => exit::OTHER,
        }
    }
}

/// `e`'s message and its causes', joined by `: `, for an error that becomes a one-line reason
/// (such as [`CliError::MalformedFile`]'s).
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
