// SPDX-License-Identifier: Apache-2.0
//! Intel TDX collateral: the TCB info and QE identity (PCS API v4), the PCK CRL of the quote's PCK
//! CA and the Intel SGX Root CA CRL, fetched concurrently from Azure THIM or Intel PCS, plus the
//! PCK certificate from the local THIM agent behind IMDS for quotes that carry no PCK chain.
//!
//! Two layers over the pure URL scheme of [`thimble_evidence::tdx::pcs`] (re-exported here, with
//! the QCNL parser, so that callers need one module):
//! - Configuration: thimble's own settings merged over `/etc/sgx_default_qcnl.conf` ([`qcnl`]),
//!   the file operators already maintain for Intel's quote provider library, with the winning
//!   source of each setting recorded so that a bundle can say where its endpoints came from.
//! - Fetching through [`Fetch`], so that every request gets the same per-request timeout,
//!   retries, deadline and size cap as the AMD endorsements.
//!
//! Nothing here judges the collateral: signatures, chains and validity belong to
//! `thimble-verify` (see [`crate::collateral`], which checks the set against the quote). Each
//! answer is only checked to be the item that was asked for (parseable, right `id`, FMSPC or CA),
//! so that a misrouted or truncated answer fails here, naming the item and URL, rather than later
//! as an unexplained signature error. Bodies are kept byte for byte: Intel's signatures cover the
//! exact bytes of `tcbInfo` and `enclaveIdentity`. CRLs are parsed by
//! [`thimble_evidence::crl::Crl`], the parser `verify` uses, and kept as DER.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use thimble_evidence::cert_file::pem_certificates;
use thimble_evidence::crl::Crl;
use thimble_evidence::time_fmt::format_unix;
use x509_parser::prelude::{FromDer, X509Certificate};

pub use thimble_evidence::tdx::pcs::{
    CollateralKind, CollateralService, CollateralTarget, DEFAULT_PCS_BASE,
    DEFAULT_PCS_ROOT_CA_CRL_URL, DEFAULT_THIM_BASE, ENCLAVE_IDENTITY_ISSUER_CHAIN,
    IMDS_INSTANCE_API_VERSION, IMDS_INSTANCE_PATH, InvalidRegion, PCK_CERT_ISSUER_CHAIN,
    PCK_CRL_ISSUER_CHAIN, PCS_ROOT_CA_CRL_PATH, PckCa, PckCertId, PckCertTarget,
    PercentDecodeError, QE_IDENTITY_ISSUER_CHAIN, ROOT_CA_COMMON_NAME, SGX_TCB_INFO_ISSUER_CHAIN,
    ServiceKind, TCB_INFO_ISSUER_CHAIN, THIM_CLIENT_ID, THIM_COLLATERAL_API_VERSION,
    THIM_PCK_CHAIN_KEY, THIM_PCKCERT_API_VERSION, THIM_PCKCERT_DIR, THIM_PCKCERT_PATH, TargetError,
    UnknownPckCa, default_local_pck_url, imds_instance_url, parse_collateral_target,
    parse_pck_cert_target, parse_query, parse_regional_thim_base, pck_cert_url, pck_crl_url,
    percent_decode, percent_encode, qe_identity_url, regional_thim_base, root_ca_crl_url,
    tcb_info_url,
};
pub use thimble_evidence::tdx::qcnl::{
    CustomRequestOptions, DEFAULT_QCNL_CONF_PATH, QCNL_CONF_PATH_ENV, RequestOptions,
};

use crate::http::{Fetch, FetchError, HttpConfig, HttpResponse};

/// IMDS base address (docs/formats.md §2 \[V\]).
pub const DEFAULT_IMDS_BASE: &str = crate::endorse::DEFAULT_IMDS_BASE;

// ---------------------------------------------------------------------------------------------
// CRL bodies

/// How a body was encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BodyEncoding {
    /// A JSON body (TCB info, QE identity, THIM answers).
    Json,
    /// DER.
    Der,
    /// PEM text.
    Pem,
    /// Hex text of DER, as PCCS's `rootcacrl` answers (docs/formats.md §4.3 \[V QC\]).
    Hex,
}

impl BodyEncoding {
    /// Stable machine name, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Der => "der",
            Self::Pem => "pem",
            Self::Hex => "hex",
        }
    }
}

impl fmt::Display for BodyEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration

/// Retry settings in QCNL's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Retries after the first attempt.
    pub times: u32,
    /// Wait between attempts; zero keeps the client's own exponential backoff, as QCNL falls back
    /// to 1, 2, 4 … s (docs/formats.md §4.6 \[V\]).
    pub delay: Duration,
}

/// Settings given to thimble itself (flags or its configuration file). `None` defers to
/// `sgx_default_qcnl.conf`, then to the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntelSettings {
    /// The collateral service.
    pub service: Option<CollateralService>,
    /// The IMDS base URL (also moves the local PCK URL).
    pub imds_base: Option<String>,
    /// The local THIM PCK certificate directory URL.
    pub local_pck_url: Option<String>,
    /// Retry settings.
    pub retry: Option<Retry>,
    /// QCNL `custom_request_options`.
    pub custom_request_options: Option<CustomRequestOptions>,
}

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SettingSource {
    /// thimble's flags or configuration.
    Flag,
    /// `sgx_default_qcnl.conf`.
    Qcnl,
    /// thimble's built-in default.
    Default,
}

impl SettingSource {
    /// Stable machine name, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Flag => "flag",
            Self::Qcnl => "qcnl",
            Self::Default => "default",
        }
    }
}

impl fmt::Display for SettingSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The winning source of each setting of an [`IntelCollateralConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingSources {
    /// Of the collateral service.
    pub service: SettingSource,
    /// Of the IMDS base URL.
    pub imds_base: SettingSource,
    /// Of the local PCK URL.
    pub local_pck_url: SettingSource,
    /// Of the retry settings.
    pub retry: SettingSource,
    /// Of the request options.
    pub custom_request_options: SettingSource,
}

/// The resolved Intel collateral configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntelCollateralConfig {
    /// The collateral service.
    pub service: CollateralService,
    /// The IMDS base URL.
    pub imds_base: String,
    /// Directory URL of the local THIM PCK certificate endpoint (QCNL's `local_pck_url`).
    pub local_pck_url: String,
    /// `None` keeps the HTTP client's own retry policy.
    pub retry: Option<Retry>,
    /// QCNL `custom_request_options`.
    pub custom_request_options: CustomRequestOptions,
    /// Where each setting came from.
    pub source_of_each_setting: SettingSources,
    /// How the QCNL file was interpreted, where that needed a choice.
    pub notes: Vec<String>,
}

impl Default for IntelCollateralConfig {
    fn default() -> Self {
        Self::resolve(&IntelSettings::default(), None)
    }
}

impl IntelCollateralConfig {
    /// Merges `explicit` settings over `qcnl` over the defaults, setting by setting.
    ///
    /// The collateral service comes from QCNL's `collateral_service`, else its `pccs_url` (QCNL
    /// itself falls back the same way, docs/formats.md §4.1 \[V\]). An explicit IMDS base also moves
    /// the local PCK URL unless that is given explicitly too: an operator who points thimble at
    /// another IMDS means it for every IMDS request, whatever the QCNL file says.
    pub fn resolve(explicit: &IntelSettings, qcnl: Option<&qcnl::QcnlConfig>) -> Self {
        let mut notes = Vec::new();
        let qcnl_service = qcnl.and_then(|q| {
            let (key, url) = match (&q.collateral_service, &q.pccs_url) {
                (Some(url), _) => ("collateral_service", url),
                (None, Some(url)) => ("pccs_url", url),
                (None, None) => return None,
            };
            Some(CollateralService::from_qcnl_url(key, url, &mut notes))
        });
        let (service, service_source) = match (&explicit.service, qcnl_service) {
            (Some(s), _) => (s.clone(), SettingSource::Flag),
            (None, Some(s)) => (s, SettingSource::Qcnl),
            (None, None) => (CollateralService::default(), SettingSource::Default),
        };

        let (imds_base, imds_source) = match &explicit.imds_base {
            Some(b) => (b.clone(), SettingSource::Flag),
            None => (DEFAULT_IMDS_BASE.to_owned(), SettingSource::Default),
        };

        let qcnl_pck = qcnl.and_then(|q| q.local_pck_url.clone());
        let (local_pck_url, pck_source) = match (&explicit.local_pck_url, &explicit.imds_base) {
            (Some(url), _) => (url.clone(), SettingSource::Flag),
            (None, Some(imds)) => (default_local_pck_url(imds), SettingSource::Flag),
            (None, None) => match qcnl_pck {
                Some(url) => (url, SettingSource::Qcnl),
                None => (default_local_pck_url(&imds_base), SettingSource::Default),
            },
        };

        let qcnl_retry = qcnl.and_then(|q| {
            if q.retry_times.is_none() && q.retry_delay_secs.is_none() {
                return None;
            }
            // QCNL's own defaults for the half that is missing: no retry, no fixed delay.
            Some(Retry {
                times: q.retry_times.unwrap_or(0),
                delay: Duration::from_secs(u64::from(q.retry_delay_secs.unwrap_or(0))),
            })
        });
        let (retry, retry_source) = match (explicit.retry, qcnl_retry) {
            (Some(r), _) => (Some(r), SettingSource::Flag),
            (None, Some(r)) => (Some(r), SettingSource::Qcnl),
            (None, None) => (None, SettingSource::Default),
        };

        let qcnl_options = qcnl.and_then(|q| q.custom_request_options.clone());
        let (custom_request_options, options_source) =
            match (&explicit.custom_request_options, qcnl_options) {
                (Some(o), _) => (o.clone(), SettingSource::Flag),
                (None, Some(o)) => (o, SettingSource::Qcnl),
                (None, None) => (CustomRequestOptions::default(), SettingSource::Default),
            };

        if let Some(q) = qcnl {
            notes.extend(q.ignored.iter().map(|i| format!("qcnl: ignored {i}")));
        }
        Self {
            service,
            imds_base,
            local_pck_url,
            retry,
            custom_request_options,
            source_of_each_setting: SettingSources {
                service: service_source,
                imds_base: imds_source,
                local_pck_url: pck_source,
                retry: retry_source,
                custom_request_options: options_source,
            },
            notes,
        }
    }

    /// One line per setting, with its source, then the notes: for the bundle's endorsement log.
    pub fn describe(&self) -> Vec<String> {
        let s = &self.source_of_each_setting;
        let retry = match self.retry {
            None => "the HTTP client's policy".to_owned(),
            Some(r) => format!("{} retries, {:?} apart", r.times, r.delay),
        };
        let options = &self.custom_request_options.get_cert;
        let mut lines = vec![
            format!("intel collateral service: {} ({})", self.service, s.service),
            format!("imds: {} ({})", self.imds_base, s.imds_base),
            format!(
                "local THIM PCK certificate URL: {} ({})",
                self.local_pck_url, s.local_pck_url
            ),
            format!("intel retry: {retry} ({})", s.retry),
            format!(
                "PCK certificate request options: {} header(s), {} parameter(s) ({})",
                options.headers.len(),
                options.params.len(),
                s.custom_request_options
            ),
        ];
        lines.extend(self.notes.iter().cloned());
        lines
    }

    /// `base` with the retry settings applied: `times` retries, waits of about `delay` (the
    /// client's equal jitter puts each wait between half the delay and the delay, where QCNL
    /// waits exactly). The overall deadline still bounds everything: QCNL's sample
    /// `retry_times: 6, retry_delay: 10` would otherwise wait a minute.
    pub fn http_config(&self, base: &HttpConfig) -> HttpConfig {
        let mut config = base.clone();
        if let Some(retry) = self.retry {
            config.max_attempts = retry.times.saturating_add(1);
            if !retry.delay.is_zero() {
                config.backoff_base = retry.delay;
                config.max_backoff = retry.delay;
            }
        }
        config
    }
}

/// `/etc/sgx_default_qcnl.conf`, Intel's quote-provider configuration: the pure parser of
/// [`thimble_evidence::tdx::qcnl`], and reading the file.
pub mod qcnl {
    use std::io;
    use std::path::{Path, PathBuf};

    pub use thimble_evidence::tdx::qcnl::{
        QcnlConfig, QcnlFormat, QcnlParseError, conf_path, parse,
    };

    /// Why a QCNL file could not be read.
    #[derive(Debug, thiserror::Error)]
    #[non_exhaustive]
    pub enum QcnlError {
        /// The file exists but cannot be read.
        #[error("cannot read the QCNL configuration {path}")]
        Read {
            /// The file.
            path: PathBuf,
            /// The read error.
            #[source]
            source: io::Error,
        },
        /// The file was read but does not parse.
        #[error("QCNL configuration {path}")]
        InFile {
            /// The file.
            path: PathBuf,
            /// What is wrong with its text.
            #[source]
            source: QcnlParseError,
        },
    }

    /// Reads and parses `path`; `Ok(None)` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<QcnlConfig>, QcnlError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(QcnlError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        parse(&text).map(Some).map_err(|source| QcnlError::InFile {
            path: path.to_owned(),
            source,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Fetching

/// One fetched item, as it goes into the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedItem {
    /// The item.
    pub kind: CollateralKind,
    /// The underlying error.
    pub source: ServiceKind,
    /// The URL asked.
    pub url: String,
    /// The body exactly as received.
    pub body: Vec<u8>,
    /// How the body was encoded.
    pub body_encoding: BodyEncoding,
    /// The DER of a CRL or certificate, whatever `body_encoding`; `None` for JSON items.
    pub der: Option<Vec<u8>>,
    /// When the response arrived, RFC 3339.
    pub retrieved_at: String,
    /// Attempts the HTTP client needed.
    pub attempts: u32,
    /// The `Cache-Control` response header, verbatim.
    pub cache_control: Option<String>,
    /// `nextUpdate` of the JSON body or of the CRL, RFC 3339.
    pub next_update: Option<String>,
    /// The percent-decoded issuer chain, leaf-most CA first.
    pub issuer_chain_pem: Option<String>,
    /// The header (or THIM JSON key) that carried the issuer chain.
    pub issuer_chain_header: Option<String>,
}

/// TDX collateral for one quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxCollateralItems {
    /// The TDX TCB info.
    pub tcb_info: FetchedItem,
    /// The TD QE identity.
    pub qe_identity: FetchedItem,
    /// The PCK CRL.
    pub pck_crl: FetchedItem,
    /// The Intel SGX Root CA CRL.
    pub root_ca_crl: FetchedItem,
    /// One line per item: where it came from and what it held.
    pub log: Vec<String>,
}

impl TdxCollateralItems {
    /// The four items, in a fixed order.
    pub fn items(&self) -> [&FetchedItem; 4] {
        [
            &self.tcb_info,
            &self.qe_identity,
            &self.pck_crl,
            &self.root_ca_crl,
        ]
    }
}

/// A PCK certificate from the local THIM agent (or a PCS-shaped answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PckCertResponse {
    /// The response as received; `der` is the PCK certificate and `issuer_chain_pem` its chain.
    pub item: FetchedItem,
    /// The PCK certificate, PEM, ending with a newline (THIM leaves it out, docs/formats.md §4.2).
    pub pck_cert_pem: String,
    /// The PCK certificate, DER.
    pub pck_cert_der: Vec<u8>,
    /// The issuer chain as DER, in the order received (PCK CA, then root).
    pub chain_der: Vec<Vec<u8>>,
    /// `sgx-Tcbm` / `SGX-TCBm`, for diagnostics only: its PCESVN byte order is ambiguous
    /// (docs/formats.md §4.2).
    pub tcbm: Option<String>,
    /// `SGX-FMSPC` (PCS only).
    pub fmspc: Option<String>,
    /// `SGX-PCK-Certificate-CA-Type` (PCS only).
    pub ca_type: Option<String>,
    /// THIM's `cacheMaxAge`, else `Cache-Control: max-age`.
    pub cache_max_age_secs: Option<u64>,
}

/// Why Intel collateral could not be fetched. Every variant that concerns an item names it and
/// its URL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntelFetchError {
    /// The request failed.
    #[error("cannot fetch the {item} from {url}")]
    Fetch {
        /// The item concerned.
        item: CollateralKind,
        /// The URL asked.
        url: String,
        /// The underlying error.
        #[source]
        source: FetchError,
    },
    /// A TCB info or QE identity body is not the JSON expected.
    #[error("the {item} from {url} is not the expected JSON: {reason}")]
    MalformedJson {
        /// The item concerned.
        item: CollateralKind,
        /// The URL asked.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The answer is another item than the one asked for.
    #[error("the {item} from {url} is not the item asked for: {reason}")]
    WrongItem {
        /// The item concerned.
        item: CollateralKind,
        /// The URL asked.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A CRL body does not parse as a CRL.
    #[error("the {item} from {url} is not a usable CRL: {error}")]
    MalformedCrl {
        /// The item asked for.
        item: CollateralKind,
        /// Where it came from.
        url: String,
        /// The parser's error (in the message, not a `source()`: the message is all there is).
        error: thimble_evidence::crl::CrlError,
    },
    /// The PCK certificate answer is unusable.
    #[error("the {item} from {url} is not a usable PCK certificate answer: {reason}")]
    MalformedPckCert {
        /// The item concerned.
        item: CollateralKind,
        /// The URL asked.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The answer carries no issuer chain.
    #[error("the {item} response from {url} has no issuer chain ({} header)", .headers.join(" or "))]
    MissingIssuerChain {
        /// The item concerned.
        item: CollateralKind,
        /// The URL asked.
        url: String,
        /// The headers looked for.
        headers: Vec<String>,
    },
    /// The issuer chain does not decode to certificates.
    #[error("the issuer chain of the {item} from {url} ({header}) is unusable: {reason}")]
    BadIssuerChain {
        /// The item concerned.
        item: CollateralKind,
        /// The URL asked.
        url: String,
        /// The header (or THIM JSON key) that carried it.
        header: String,
        /// What is wrong.
        reason: String,
    },
    /// A fetching thread ended without an answer.
    #[error("fetching the {item} from {url} stopped unexpectedly")]
    Worker {
        /// The item concerned.
        item: CollateralKind,
        /// The URL asked.
        url: String,
    },
    /// IMDS instance metadata could not be fetched.
    #[error("cannot read the Azure location from IMDS {url}")]
    ImdsFetch {
        /// The URL asked.
        url: String,
        /// The underlying error.
        #[source]
        source: FetchError,
    },
    /// IMDS instance metadata has no region.
    #[error("IMDS {url} gave no usable compute.location: {reason}")]
    ImdsLocation {
        /// The URL asked.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// Several items failed.
    #[error("{} of the TDX collateral items failed: {}", .errors.len(), .errors.iter().map(error_chain).collect::<Vec<_>>().join("; "))]
    Several {
        /// Every failure, in the order of the items.
        errors: Vec<IntelFetchError>,
    },
}

impl IntelFetchError {
    /// The item concerned, when there is exactly one.
    pub fn item(&self) -> Option<CollateralKind> {
        match self {
            Self::Fetch { item, .. }
            | Self::MalformedJson { item, .. }
            | Self::WrongItem { item, .. }
            | Self::MalformedCrl { item, .. }
            | Self::MalformedPckCert { item, .. }
            | Self::MissingIssuerChain { item, .. }
            | Self::BadIssuerChain { item, .. }
            | Self::Worker { item, .. } => Some(*item),
            _ => None,
        }
    }
}

/// The error and its sources, `: `-separated, for errors aggregated into one message.
fn error_chain(e: &IntelFetchError) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// What the four answers must match.
struct Expected<'a> {
    fmspc: &'a [u8; 6],
    ca: PckCa,
}

/// Fetches the TDX TCB info for `fmspc`, the TD QE identity, the PCK CRL of `ca` and the root CA
/// CRL from `cfg.service`, the four requests in parallel (each is a separate HTTP round trip with
/// its own retries, and together they would otherwise take four times as long). All four are
/// needed to verify a quote, so any failure fails the call; when several fail, the error lists
/// them all.
pub fn fetch_tdx_collateral(
    cfg: &IntelCollateralConfig,
    fetch: &(dyn Fetch + Sync),
    fmspc: &[u8; 6],
    ca: PckCa,
) -> Result<TdxCollateralItems, IntelFetchError> {
    let service = &cfg.service;
    let jobs = [
        (CollateralKind::TcbInfo, tcb_info_url(service, fmspc)),
        (CollateralKind::QeIdentity, qe_identity_url(service)),
        (CollateralKind::PckCrl, pck_crl_url(service, ca)),
        (CollateralKind::RootCaCrl, root_ca_crl_url(service)),
    ];
    let expected = Expected { fmspc, ca };
    let source = service.kind();
    let results: Vec<Result<FetchedItem, IntelFetchError>> = std::thread::scope(|scope| {
        let expected = &expected;
        let handles: Vec<_> = jobs
            .iter()
            .map(|(kind, url)| {
                let work = move || fetch_item(fetch, source, *kind, url, expected);
                // Without a thread (resource exhaustion) the item is fetched in this one: slower,
                // but not a failure.
                let spawned = std::thread::Builder::new()
                    .name(format!("intel-{}", kind.as_str()))
                    .spawn_scoped(scope, work);
                (*kind, url, spawned)
            })
            .collect();
        handles
            .into_iter()
            .map(|(kind, url, spawned)| match spawned {
                Ok(handle) => handle.join().unwrap_or_else(|_| {
                    Err(IntelFetchError::Worker {
                        item: kind,
                        url: url.clone(),
                    })
                }),
                Err(_) => fetch_item(fetch, source, kind, url, expected),
            })
            .collect()
    });

    let mut items = Vec::with_capacity(4);
    let mut errors = Vec::new();
    for result in results {
        match result {
            Ok(item) => items.push(item),
            Err(e) => errors.push(e),
        }
    }
    if errors.len() == 1 {
        if let Some(e) = errors.pop() {
            return Err(e);
        }
    }
    if !errors.is_empty() {
        return Err(IntelFetchError::Several { errors });
    }
    let [tcb_info, qe_identity, pck_crl, root_ca_crl]: [FetchedItem; 4] = match items.try_into() {
        Ok(four) => four,
        // Four jobs and no error give four items.
        Err(_) => {
            return Err(IntelFetchError::Worker {
                item: CollateralKind::TcbInfo,
                url: tcb_info_url(service, fmspc),
            });
        }
    };
    let mut log = vec![format!(
        "intel collateral: {service} ({})",
        cfg.source_of_each_setting.service
    )];
    for item in [&tcb_info, &qe_identity, &pck_crl, &root_ca_crl] {
        log.push(log_line(item));
    }
    Ok(TdxCollateralItems {
        tcb_info,
        qe_identity,
        pck_crl,
        root_ca_crl,
        log,
    })
}

fn log_line(item: &FetchedItem) -> String {
    format!(
        "{}: {} from {} ({} attempt(s), {}, next update {}, cache-control {})",
        item.kind.as_str(),
        item.source,
        item.url,
        item.attempts,
        item.body_encoding,
        item.next_update.as_deref().unwrap_or("none"),
        item.cache_control.as_deref().unwrap_or("none"),
    )
}

fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    format_unix(secs)
}

fn fetch_item(
    fetch: &(dyn Fetch + Sync),
    source: ServiceKind,
    kind: CollateralKind,
    url: &str,
    expected: &Expected<'_>,
) -> Result<FetchedItem, IntelFetchError> {
    let response = fetch
        .get(url, &[])
        .map_err(|source| IntelFetchError::Fetch {
            item: kind,
            url: url.to_owned(),
            source,
        })?;
    let (body_encoding, der, next_update) = match kind {
        CollateralKind::TcbInfo | CollateralKind::QeIdentity => {
            let next_update = check_json(kind, url, &response.body, expected)?;
            (BodyEncoding::Json, None, next_update)
        }
        _ => {
            let crl = check_crl(kind, url, &response.body, expected)?;
            (crl.encoding, Some(crl.der), crl.next_update)
        }
    };
    // A root CA CRL from Intel's distribution point comes without headers: the root signs it.
    let chain_required = kind != CollateralKind::RootCaCrl;
    let chain = issuer_chain(kind, url, &response, chain_required)?;
    let (issuer_chain_header, issuer_chain_pem) = chain.unzip();
    let cache_control = response.header("cache-control").map(str::to_owned);
    Ok(FetchedItem {
        kind,
        source,
        url: url.to_owned(),
        body: response.body,
        body_encoding,
        der,
        retrieved_at: rfc3339(response.fetched_at),
        attempts: response.attempts,
        cache_control,
        next_update,
        issuer_chain_pem,
        issuer_chain_header,
    })
}

/// Checks a TCB info or QE identity body; returns its `nextUpdate`.
fn check_json(
    kind: CollateralKind,
    url: &str,
    body: &[u8],
    expected: &Expected<'_>,
) -> Result<Option<String>, IntelFetchError> {
    let malformed = |reason: String| IntelFetchError::MalformedJson {
        item: kind,
        url: url.to_owned(),
        reason,
    };
    let wrong = |reason: String| IntelFetchError::WrongItem {
        item: kind,
        url: url.to_owned(),
        reason,
    };
    let value: Value = serde_json::from_slice(body).map_err(|e| malformed(e.to_string()))?;
    let (key, want_id) = if kind == CollateralKind::TcbInfo {
        ("tcbInfo", "TDX")
    } else {
        ("enclaveIdentity", "TD_QE")
    };
    let Some(inner) = value.get(key).and_then(Value::as_object) else {
        return Err(malformed(format!("no {key} object")));
    };
    if !value.get("signature").is_some_and(Value::is_string) {
        return Err(malformed("no signature string".into()));
    }
    match inner.get("id").and_then(Value::as_str) {
        Some(id) if id == want_id => {}
        Some(id) => return Err(wrong(format!("{key}.id is {id:?}, not {want_id:?}"))),
        None => return Err(malformed(format!("no {key}.id"))),
    }
    if kind == CollateralKind::TcbInfo {
        let want = hex::encode_upper(expected.fmspc);
        match inner.get("fmspc").and_then(Value::as_str) {
            Some(f) if f.eq_ignore_ascii_case(&want) => {}
            Some(f) => return Err(wrong(format!("tcbInfo.fmspc is {f}, not {want}"))),
            None => return Err(malformed("no tcbInfo.fmspc".into())),
        }
    }
    Ok(inner
        .get("nextUpdate")
        .and_then(Value::as_str)
        .map(str::to_owned))
}

/// What a CRL body held, in the form thimble keeps.
struct CheckedCrl {
    encoding: BodyEncoding,
    der: Vec<u8>,
    next_update: Option<String>,
}

/// Parses a CRL body with the evidence crate's parser (DER, PEM or hex, as it sniffs them) and
/// checks that its issuer is the CA asked for.
fn check_crl(
    kind: CollateralKind,
    url: &str,
    body: &[u8],
    expected: &Expected<'_>,
) -> Result<CheckedCrl, IntelFetchError> {
    let crl = Crl::parse(body).map_err(|error| IntelFetchError::MalformedCrl {
        item: kind,
        url: url.to_owned(),
        error,
    })?;
    let want = if kind == CollateralKind::PckCrl {
        expected.ca.common_name()
    } else {
        ROOT_CA_COMMON_NAME
    };
    if crl.issuer_cn != want {
        return Err(IntelFetchError::WrongItem {
            item: kind,
            url: url.to_owned(),
            reason: format!(
                "the CRL is issued by {:?}, not {want:?}",
                if crl.issuer_cn.is_empty() {
                    "(no common name)"
                } else {
                    crl.issuer_cn.as_str()
                }
            ),
        });
    }
    // The parser decoded PEM or hex when the body was not DER already; which one it was is
    // recorded for the log (THIM's choice is undocumented, docs/formats.md §4.5).
    let encoding = if body == crl.der() {
        BodyEncoding::Der
    } else if body.trim_ascii_start().starts_with(b"-----BEGIN") {
        BodyEncoding::Pem
    } else {
        BodyEncoding::Hex
    };
    Ok(CheckedCrl {
        encoding,
        der: crl.der().to_vec(),
        next_update: crl.next_update.map(format_unix),
    })
}

/// The percent-decoded issuer chain of `response`, with the header that carried it.
fn issuer_chain(
    kind: CollateralKind,
    url: &str,
    response: &HttpResponse,
    required: bool,
) -> Result<Option<(String, String)>, IntelFetchError> {
    let headers = kind.issuer_chain_headers();
    let found = headers
        .iter()
        .find_map(|name| response.header(name).map(|value| (*name, value)));
    let Some((header, encoded)) = found else {
        if required {
            return Err(IntelFetchError::MissingIssuerChain {
                item: kind,
                url: url.to_owned(),
                headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            });
        }
        return Ok(None);
    };
    let pem = decode_chain(kind, url, header, encoded)?;
    Ok(Some((header.to_owned(), pem)))
}

/// Percent-decodes an issuer chain and checks that it is a non-empty list of certificates.
fn decode_chain(
    kind: CollateralKind,
    url: &str,
    header: &str,
    encoded: &str,
) -> Result<String, IntelFetchError> {
    let bad = |reason: String| IntelFetchError::BadIssuerChain {
        item: kind,
        url: url.to_owned(),
        header: header.to_owned(),
        reason,
    };
    let pem = percent_decode(encoded).map_err(|e| bad(e.to_string()))?;
    let ders = pem_certificates(&pem).map_err(|e| bad(e.to_string()))?;
    if ders.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    for (i, der) in ders.iter().enumerate() {
        X509Certificate::from_der(der)
            .map_err(|e| bad(format!("certificate {i} does not parse: {e}")))?;
    }
    Ok(pem)
}

/// Fetches the PCK certificate for `id` from the local THIM agent, `{local_pck_url}pckcert`,
/// with `Metadata: true` and `api-version=2021-07-22-preview` plus the configured
/// `custom_request_options.get_cert` (docs/formats.md §4.1–4.2 \[V\]).
///
/// `fetch` must be a client without a proxy ([`crate::http::HttpConfig::use_proxy_env`] false),
/// as IMDS requires (docs/formats.md §2 \[V\]). The answer may be THIM's JSON (`pckCert`,
/// percent-encoded `sgx-Pck-Certificate-Issuer-Chain`, `sgx-Tcbm`, `cacheMaxAge`) or PCS's PEM
/// body with headers; QCNL accepts both (docs/formats.md §4.2 \[V\]) and so does this.
pub fn fetch_pck_cert(
    cfg: &IntelCollateralConfig,
    fetch: &dyn Fetch,
    id: &PckCertId,
) -> Result<PckCertResponse, IntelFetchError> {
    let options = &cfg.custom_request_options.get_cert;
    let url = pck_cert_url(&cfg.local_pck_url, id, &options.params);
    // IMDS rejects a request without `Metadata: true` (docs/formats.md §2 [V]); a configured
    // header may add to it but not replace it.
    let mut headers: Vec<(&str, &str)> = vec![("Metadata", "true")];
    headers.extend(
        options
            .headers
            .iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("metadata"))
            .map(|(name, value)| (name.as_str(), value.as_str())),
    );
    let response = fetch
        .get(&url, &headers)
        .map_err(|source| IntelFetchError::Fetch {
            item: CollateralKind::PckCert,
            url: url.clone(),
            source,
        })?;
    parse_pck_cert_response(&url, response)
}

/// The fields of a PCK certificate answer, in THIM's JSON form or PCS's PEM-and-headers form.
struct RawPckAnswer {
    encoding: BodyEncoding,
    pem: String,
    chain_header: &'static str,
    encoded_chain: String,
    tcbm: Option<String>,
    fmspc: Option<String>,
    ca_type: Option<String>,
    cache_max_age: Option<u64>,
}

fn parse_pck_cert_response(
    url: &str,
    response: HttpResponse,
) -> Result<PckCertResponse, IntelFetchError> {
    let kind = CollateralKind::PckCert;
    let malformed = |reason: String| IntelFetchError::MalformedPckCert {
        item: kind,
        url: url.to_owned(),
        reason,
    };
    let max_age_header = response
        .header("cache-control")
        .and_then(crate::http::cache_max_age);
    let header = |name: &str| response.header(name).map(str::to_owned);
    let raw = if response.body.trim_ascii_start().starts_with(b"{") {
        let value: Value =
            serde_json::from_slice(&response.body).map_err(|e| malformed(e.to_string()))?;
        let field = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        // `cacheMaxAge` is parsed with `stoi` by DC, so a string or a number
        // (docs/formats.md §4.2 [U]).
        let cache = match value.get("cacheMaxAge") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        RawPckAnswer {
            encoding: BodyEncoding::Json,
            pem: field("pckCert").ok_or_else(|| malformed("no pckCert string".into()))?,
            chain_header: THIM_PCK_CHAIN_KEY,
            encoded_chain: field(THIM_PCK_CHAIN_KEY)
                .ok_or_else(|| malformed(format!("no {THIM_PCK_CHAIN_KEY} string")))?,
            tcbm: field("sgx-Tcbm"),
            fmspc: None,
            ca_type: None,
            cache_max_age: cache.or(max_age_header),
        }
    } else {
        let pem = std::str::from_utf8(&response.body)
            .map_err(|_| malformed("the body is neither JSON nor PEM text".into()))?;
        RawPckAnswer {
            encoding: BodyEncoding::Pem,
            pem: pem.to_owned(),
            chain_header: PCK_CERT_ISSUER_CHAIN,
            encoded_chain: header(PCK_CERT_ISSUER_CHAIN).ok_or_else(|| {
                IntelFetchError::MissingIssuerChain {
                    item: kind,
                    url: url.to_owned(),
                    headers: vec![PCK_CERT_ISSUER_CHAIN.to_owned()],
                }
            })?,
            tcbm: header("SGX-TCBm"),
            fmspc: header("SGX-FMSPC"),
            ca_type: header("SGX-PCK-Certificate-CA-Type"),
            cache_max_age: max_age_header,
        }
    };
    let RawPckAnswer {
        encoding,
        pem,
        chain_header,
        encoded_chain,
        tcbm,
        fmspc,
        ca_type,
        cache_max_age,
    } = raw;
    let ders = pem_certificates(&pem).map_err(|e| malformed(format!("pckCert: {e}")))?;
    let [pck_cert_der] = <[Vec<u8>; 1]>::try_from(ders).map_err(|ders| {
        malformed(format!(
            "pckCert holds {} certificates, not one",
            ders.len()
        ))
    })?;
    X509Certificate::from_der(&pck_cert_der)
        .map_err(|e| malformed(format!("pckCert does not parse: {e}")))?;
    let chain_pem = decode_chain(kind, url, chain_header, &encoded_chain)?;
    let chain_der = pem_certificates(&chain_pem).map_err(|e| malformed(e.to_string()))?;
    let mut pck_cert_pem = pem;
    // DC appends the newline THIM leaves out, so that certificate and chain concatenate.
    if !pck_cert_pem.ends_with('\n') {
        pck_cert_pem.push('\n');
    }
    let item = FetchedItem {
        kind,
        source: ServiceKind::LocalThim,
        url: url.to_owned(),
        retrieved_at: rfc3339(response.fetched_at),
        attempts: response.attempts,
        cache_control: response.header("cache-control").map(str::to_owned),
        body: response.body,
        body_encoding: encoding,
        der: Some(pck_cert_der.clone()),
        next_update: None,
        issuer_chain_pem: Some(chain_pem),
        issuer_chain_header: Some(chain_header.to_owned()),
    };
    Ok(PckCertResponse {
        item,
        pck_cert_pem,
        pck_cert_der,
        chain_der,
        tcbm,
        fmspc,
        ca_type,
        cache_max_age_secs: cache_max_age,
    })
}

/// Reads the VM's Azure region from IMDS instance metadata (`compute.location`, DC \[V\]), for
/// [`regional_thim_base`].
pub fn fetch_imds_location(fetch: &dyn Fetch, imds_base: &str) -> Result<String, IntelFetchError> {
    let url = imds_instance_url(imds_base);
    let response =
        fetch
            .get(&url, &[("Metadata", "true")])
            .map_err(|source| IntelFetchError::ImdsFetch {
                url: url.clone(),
                source,
            })?;
    let bad = |reason: String| IntelFetchError::ImdsLocation {
        url: url.clone(),
        reason,
    };
    let value: Value = serde_json::from_slice(&response.body).map_err(|e| bad(e.to_string()))?;
    value
        .pointer("/compute/location")
        .and_then(Value::as_str)
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .ok_or_else(|| bad("no compute.location string".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_maps_onto_the_http_config() {
        let mut cfg = IntelCollateralConfig::default();
        let base = HttpConfig::default();
        assert_eq!(cfg.http_config(&base), base);
        cfg.retry = Some(Retry {
            times: 6,
            delay: Duration::from_secs(5),
        });
        let c = cfg.http_config(&base);
        assert_eq!(c.max_attempts, 7);
        assert_eq!(c.backoff_base, Duration::from_secs(5));
        assert_eq!(c.max_backoff, Duration::from_secs(5));
        assert_eq!(c.deadline, base.deadline);
        cfg.retry = Some(Retry {
            times: 0,
            delay: Duration::ZERO,
        });
        let c = cfg.http_config(&base);
        assert_eq!(c.max_attempts, 1);
        assert_eq!(c.backoff_base, base.backoff_base);
    }
}
