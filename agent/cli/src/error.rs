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
    #[error("evidence collection failed ({source_name})")]
    Collection {
        source_name: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("endorsements could not be fetched")]
    Endorsements(#[source] thimble_collect::endorse::EndorseError),
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

impl CliError {
    /// An evidence source (`source_name`) failed while collecting.
    pub fn collection(
        source_name: &str,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> CliError {
        CliError::Collection {
            source_name: source_name.into(),
            source: Box::new(e),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::ReadInput { .. } => exit::USAGE,
            CliError::MalformedFile { .. } => exit::MALFORMED,
            CliError::NoTee(_) => exit::NO_TEE,
            CliError::Collection { .. } => exit::COLLECTION_FAILED,
            CliError::Endorsements(_) => exit::ENDORSEMENT_FAILED,
            CliError::Write { .. } | CliError::Other(_) => exit::OTHER,
        }
    }
}
