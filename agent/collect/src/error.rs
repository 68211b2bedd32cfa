// SPDX-License-Identifier: Apache-2.0
//! Why a collection failed ([`CollectError`]), and what it warned about while succeeding
//! ([`Warning`]). The categories are the ones a caller branches on, and the ones `thimble collect`
//! maps to its documented exit codes: no usable source (3), the source failed (4), no endorsement
//! source verified the evidence (5), an unreadable QCNL file (2), the environment (1). Every
//! cause is kept as a typed value: a source's error as its client's error type, each endorsement
//! source's failure as an [`EndorseFailure`](crate::endorse::EndorseFailure).

use std::fmt;
use std::path::PathBuf;

use thimble_evidence::azure::HclError;
use thimble_evidence::snp::ReportError;
use thimble_evidence::snp::cert_table::CertTableError;
use thimble_evidence::tdx::QuoteError;

use crate::acc::AccError;
use crate::cache::CacheError;
use crate::endorse::EndorseError;
use crate::env::EnvError;
use crate::intel::qcnl::QcnlError;
use crate::qgs::QgsError;
use crate::sev_guest::SevGuestError;
use crate::tdx_guest::TdxGuestError;
use crate::tsm::TsmError;
use crate::vtpm::VtpmError;

/// An evidence source, by the name the bundle's `collection.source` and the error messages use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SourceName {
    /// configfs-tsm (either provider).
    ConfigfsTsm,
    /// `/dev/sev-guest`.
    SevGuest,
    /// `/dev/tdx_guest`, for the TDREPORT.
    TdxGuest,
    /// The host's Quote Generation Service.
    Qgs,
    /// `/dev/tdx_guest` and the QGS together, as a bundle records the pair.
    TdxGuestQgs,
    /// The Azure vTPM.
    Vtpm,
    /// IMDS `/acc/tdquote`, which quotes an Azure TD's report.
    ImdsTdQuote,
}

impl SourceName {
    /// The name: `configfs-tsm`, `sev-guest`, `tdx-guest`, `qgs`, `tdx-guest+qgs`, `vtpm`,
    /// `imds /acc/tdquote`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceName::ConfigfsTsm => "configfs-tsm",
            SourceName::SevGuest => "sev-guest",
            SourceName::TdxGuest => "tdx-guest",
            SourceName::Qgs => "qgs",
            SourceName::TdxGuestQgs => "tdx-guest+qgs",
            SourceName::Vtpm => "vtpm",
            SourceName::ImdsTdQuote => "imds /acc/tdquote",
        }
    }
}

impl fmt::Display for SourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong with an evidence source: its client's error, or evidence that does not belong
/// to this request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// configfs-tsm.
    #[error(transparent)]
    Tsm(#[from] TsmError),
    /// `/dev/sev-guest`.
    #[error(transparent)]
    SevGuest(#[from] SevGuestError),
    /// `/dev/tdx_guest`.
    #[error(transparent)]
    TdxGuest(#[from] TdxGuestError),
    /// The Quote Generation Service.
    #[error(transparent)]
    Qgs(#[from] QgsError),
    /// The vTPM.
    #[error(transparent)]
    Vtpm(#[from] VtpmError),
    /// IMDS `/acc/tdquote`.
    #[error(transparent)]
    Acc(#[from] AccError),
    /// The SEV-SNP report does not parse.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// The TDX quote does not parse.
    #[error(transparent)]
    Quote(#[from] QuoteError),
    /// The HCL report does not parse.
    #[error(transparent)]
    Hcl(#[from] HclError),
    /// The report or quote carries other REPORT_DATA than requested: a racing writer or a broken
    /// host.
    #[error("the {what}'s REPORT_DATA {} is not the {} requested", hex::encode(.found), hex::encode(.requested))]
    ReportDataMismatch {
        /// `report` or `quote`.
        what: &'static str,
        /// What the evidence carries.
        found: [u8; 64],
        /// What was asked for.
        requested: [u8; 64],
    },
    /// The hardware report in the HCL report does not bind the runtime data: the paravisor did
    /// not make it for the runtime data it came with.
    #[error("the HCL report's REPORT_DATA is not SHA-256 of its runtime data")]
    HclBinding,
    /// The HCL report says SEV-SNP but holds no SEV-SNP report that parses.
    #[error("the HCL report holds no SEV-SNP report")]
    HclWithoutSnpReport,
    /// The HCL report says TDX but holds no TD report that parses.
    #[error("the HCL report holds no TD report")]
    HclWithoutTdReport,
    /// The TDX guest device returned a TDREPORT of the wrong size.
    #[error("the TDREPORT is {len} bytes, not 1024")]
    TdReportLength {
        /// Its length.
        len: usize,
    },
}

/// Why no evidence source could be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoSource {
    /// Nothing thimble collects from is present.
    #[error(
        "neither configfs-tsm ({}) with a provider, nor {}, nor {}, nor a vTPM holding an Azure HCL report is present",
        tsm_root.display(), sev_guest.display(), tdx_guest.display()
    )]
    Nothing {
        /// The configfs-tsm directory looked at.
        tsm_root: PathBuf,
        /// The SEV-SNP guest device looked for.
        sev_guest: PathBuf,
        /// The TDX guest device looked for.
        tdx_guest: PathBuf,
    },
    /// configfs-tsm was asked for, and it has no `sev_guest` (nor `tdx_guest`) provider.
    #[error("configfs-tsm at {} has no sev_guest provider", tsm_root.display())]
    NoSevGuestProvider {
        /// The configfs-tsm directory.
        tsm_root: PathBuf,
    },
}

/// Why a collection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectError {
    /// No usable evidence source on this machine.
    #[error("no usable evidence source: {0}")]
    NoSource(NoSource),
    /// The evidence source failed while collecting (a forced source whose device is missing
    /// included).
    #[error("evidence collection failed ({source_name})")]
    Source {
        /// The source.
        source_name: SourceName,
        /// What went wrong (boxed: some evidence errors are large, and an error path should
        /// not make every `Result` of the crate as large).
        #[source]
        error: Box<SourceError>,
    },
    /// No endorsement source produced endorsements or collateral that verify the evidence.
    #[error("endorsements could not be fetched")]
    Endorsements(#[source] EndorseError),
    /// The operator's QCNL configuration exists but cannot be read or parsed.
    #[error(transparent)]
    Qcnl(#[from] QcnlError),
    /// The environment failed (a simulated service that cannot start, no random bytes).
    #[error(transparent)]
    Environment(#[from] EnvError),
    /// The request cannot be carried out as given (a padded binding value that is empty or
    /// longer than REPORT_DATA).
    #[error("invalid collection request: {reason}")]
    InvalidRequest {
        /// What is wrong.
        reason: String,
    },
}

impl CollectError {
    /// The source `source_name` failed with `error`.
    pub fn source_failed(source_name: SourceName, error: impl Into<SourceError>) -> CollectError {
        CollectError::Source {
            source_name,
            error: Box::new(error.into()),
        }
    }
}

/// Something a successful collection wants its caller to know (a library never prints).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Warning {
    /// The host's certificate table does not parse; it is kept in the bundle as received, and
    /// its certificates are not used.
    #[error("auxblob: the host's certificate table is malformed and was ignored: {0}")]
    HostTableMalformed(CertTableError),
    /// A fetched endorsement could not be stored in the cache (a read-only or missing
    /// directory); the collection goes on.
    #[error("{error}: {}", .error.source)]
    CacheNotWritten {
        /// The write that failed.
        error: CacheError,
    },
    /// AMD's CRL lists the chain's ASK or ASVK: the bundle carries it, so that the verifier
    /// sees the revocation; the text is the endorsement log's line.
    #[error("{line}")]
    Revoked {
        /// The endorsement log's line about it.
        line: String,
    },
}
