// SPDX-License-Identifier: Apache-2.0
//! The same evidence in other tools' and verifiers' forms: what `thimble export` writes from a
//! stored bundle and what `thimble import --from` reads back. Pure: bundles and bytes in, bytes
//! (or a directory's files) out; nothing here sends anything or judges the evidence.
//!
//! A stored bundle can only become what needs no fresh nonce (docs/interop.md says which form
//! needs what): the file layouts of snpguest and go-sev-guest, the tsm-report JSON and its CMW
//! wrapping, MAA's SevSnpVm and TdxVm request bodies (whose binding is the runtime data the
//! bundle already carries, on Azure), and Trustee's evidence JSON, which a KBS accepts only when
//! the evidence was collected for its nonce. Where a form's binding does not hold for the
//! bundle, the export says so ([`ExportError::Binding`]) instead of writing something a verifier
//! would refuse.
//!
//! - [`snpguest`]: the report and `ark`/`ask`/`asvk`/`vcek`/`vlek`/`crl` files as snpguest reads
//!   them.
//! - [`go_sev_guest`]: the extended report (the report followed by the certificate table).
//! - [`tsm_report`]: the tsm-report JSON (Veraison, ratsd) and its CMW record.
//! - [`maa`]: Microsoft Azure Attestation's SevSnpVm and TdxVm request bodies.
//! - [`trustee`]: the evidence JSON of Trustee's `snp`, `tdx`, `az-snp-vtpm` and `az-tdx-vtpm`
//!   verifiers.

use thiserror::Error;

use crate::bundle::Tee;

pub mod go_sev_guest;
pub mod maa;
pub mod snpguest;
pub mod trustee;
pub mod tsm_report;

/// A form `export` writes and `import --from` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// snpguest's directory: `attestation-report.bin` and `certs/`.
    Snpguest,
    /// go-sev-guest's `attest -outform bin -extended` file.
    GoSevGuest,
    /// The tsm-report JSON (`application/vnd.veraison.tsm-report+json`).
    TsmReport,
    /// The tsm-report JSON wrapped as a CMW JSON record (`application/cmw+json`).
    Cmw,
    /// MAA's request body: `SevSnpVm` for SEV-SNP evidence, `TdxVm` for TDX evidence.
    Maa,
    /// Trustee's evidence JSON for the bundle's TEE.
    Trustee,
}

impl Format {
    /// Every format, in the order the documentation lists them.
    pub const ALL: [Format; 6] = [
        Format::Snpguest,
        Format::GoSevGuest,
        Format::TsmReport,
        Format::Cmw,
        Format::Maa,
        Format::Trustee,
    ];

    /// The name `--format` and `--from` take.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Snpguest => "snpguest",
            Format::GoSevGuest => "go-sev-guest",
            Format::TsmReport => "tsm-report",
            Format::Cmw => "cmw",
            Format::Maa => "maa",
            Format::Trustee => "trustee",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an export produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exported {
    /// One file.
    File(Vec<u8>),
    /// A directory's files, by path relative to it (`certs/vcek.pem`).
    Directory(Vec<(String, Vec<u8>)>),
}

/// Why a bundle cannot be written in a form.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExportError {
    /// The form does not carry this TEE's evidence.
    #[error("{format} does not carry {tee} evidence")]
    NotForTee {
        /// The form asked for.
        format: Format,
        /// The bundle's TEE.
        tee: Tee,
    },
    /// The bundle lacks something the form needs.
    #[error("{format} needs {what}, which the bundle does not have")]
    Missing {
        /// The form asked for.
        format: Format,
        /// What is missing.
        what: String,
    },
    /// The evidence is not bound the way the form's verifier checks.
    #[error("{format}: {reason}")]
    Binding {
        /// The form asked for.
        format: Format,
        /// What the verifier would check and why it would fail.
        reason: String,
    },
    /// A member of the bundle does not decode as the form needs it.
    #[error("{format}: {reason}")]
    Malformed {
        /// The form asked for.
        format: Format,
        /// What does not decode.
        reason: String,
    },
}

/// Why another tool's output cannot be read as evidence.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("not {format} input: {reason}")]
pub struct ImportError {
    /// The form it was read as.
    pub format: Format,
    /// What is wrong with it, naming the file or member.
    pub reason: String,
}

/// Evidence read from another tool's output, for `import` to make a bundle of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The evidence, of one TEE.
    pub evidence: crate::bundle::Evidence,
    /// Files or members beside it that may be endorsements (certificates, CRLs, collateral), as
    /// found, each with the name it had there; `import` recognises them by content, as it does
    /// `--add` files.
    pub endorsements: Vec<NamedBytes>,
    /// Event logs that came with it.
    pub event_logs: Vec<crate::bundle::EventLogEvidence>,
}

/// Bytes with the file or member name they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedBytes {
    /// `certs/vcek.pem`, `cert_chain[0]`.
    pub name: String,
    /// The contents.
    pub bytes: Vec<u8>,
}

/// The DER of `bundle`'s first endorsement of `kind`, if it has one, for an export to `format`:
/// an endorsement that is not DER, or whose data does not decode, is malformed.
fn endorsement_der(
    bundle: &crate::bundle::Bundle,
    kind: crate::bundle::EndorsementKind,
    format: Format,
) -> Result<Option<Vec<u8>>, ExportError> {
    let malformed = |reason: String| ExportError::Malformed { format, reason };
    let Some(e) = bundle.endorsements.iter().find(|e| e.kind == kind) else {
        return Ok(None);
    };
    if e.format != "der" {
        return Err(malformed(format!(
            "the bundle's {kind} endorsement is in format {:?}, not der",
            e.format
        )));
    }
    e.bytes()
        .map(Some)
        .map_err(|err| malformed(format!("the bundle's {kind} endorsement: {err}")))
}
