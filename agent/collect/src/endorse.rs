// SPDX-License-Identifier: Apache-2.0
//! Gathering the AMD endorsements a verifier needs for a report: the VCEK (or VLEK) and the
//! ASK/ASVK + ARK chain, from an ordered list of [`AmdSource`]s, and then the ARK's CRL.
//!
//! The sources, in their default order:
//! 1. The host's certificate table (configfs-tsm `auxblob`, SNP_GET_EXT_REPORT): when it already
//!    forms a chain that verifies the report, no network is touched, so a guest outside Azure
//!    never waits on an IMDS address that does not answer.
//! 2. The on-disk cache ([`crate::cache`]), holding what an earlier run fetched for this chip and
//!    TCB.
//! 3. Azure THIM (`{imds}/metadata/THIM/amd/certification`, `Metadata: true`, never a proxy).
//!    THIM is outside the trust boundary: its `tcbm` must be REPORTED_TCB.
//! 4. AMD KDS (VCEK by chip id and TCB, `cert_chain`).
//!
//! Whatever the source, a set of certificates is kept only when it verifies the report
//! ([`check_certs`]: chain to a pinned ARK, hwID = CHIP_ID, SPLs = REPORTED_TCB, report
//! signature). Every rejected or failed source is a line in the bundle's endorsement log, and a
//! typed [`EndorseFailure`] in the error when none is left. What THIM or KDS gave is stored in the
//! cache. Before the first fetch, the entry's lock is taken and the cache looked at again, so
//! that collections sharing a cache make one request per item between them ([`crate::cache`]).
//!
//! Once the chain is settled, [`settle_amd_crl`] adds the CRL of the ARK it ended at: the host's
//! table entry when that is the ARK's and current, else the on-disk cache, else KDS
//! (`/vcek/v1/{product}/crl`, or `/vlek/` for a VLEK chain). A CRL is used only when it is
//! issued and signed by that ARK (`thimble_verify::amd_crl`). A CRL that cannot be had is logged
//! and the collection goes on: revocation is the verifier's decision, and it can ask for a CRL.

use std::fmt;
use std::time::SystemTime;

use thimble_evidence::bundle::{Endorsement, EndorsementKind, Origin, OriginKind};
use thimble_evidence::cert_file::{FileError, pem_certificates};
use thimble_evidence::crl::Crl;
use thimble_evidence::kds;
use thimble_evidence::snp::cert::AmdRole;
use thimble_evidence::snp::{AmdCert, AmdCertError, Product, SigningKey, SnpReport};
use thimble_evidence::thim::{ThimAmdCertification, ThimError};
use thimble_evidence::time_fmt::format_unix;
use thimble_verify::amd_crl::{MAX_CRL_CANDIDATES, authenticate_amd_crl, lists};
use thimble_verify::chain::{VerifiedChain, verify_leaf};
use thimble_verify::signature::verify_report_signature;
use thimble_verify::snp::verify_report;
use thimble_verify::{Code, Options, Policy, TrustedRoots};

use crate::cache::{EndorsementCache, EntryLock, crl_hit_line, hit_line};
use crate::error::Warning;
use crate::http::{Fetch, FetchError, HttpResponse};
use crate::intel::IntelFetchError;

/// Default IMDS base URL. Tests and emulators override it; nothing else should.
pub const DEFAULT_IMDS_BASE: &str = "http://169.254.169.254";
/// Path of the THIM AMD endpoint below the IMDS base.
pub const THIM_AMD_PATH: &str = "/metadata/THIM/amd/certification";

/// A place AMD certificates may come from. A request lists them in the order they are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AmdSource {
    /// The certificates the host attached to the report.
    HostTable,
    /// The on-disk cache.
    Cache,
    /// Azure THIM behind IMDS.
    Thim,
    /// AMD KDS.
    Kds,
}

impl AmdSource {
    /// Every source, in thimble's order.
    pub const ALL: [AmdSource; 4] = [
        AmdSource::HostTable,
        AmdSource::Cache,
        AmdSource::Thim,
        AmdSource::Kds,
    ];

    /// The name the endorsement log and the cache use: `auxblob`, `cache`, `thim`, `kds`.
    pub fn as_str(self) -> &'static str {
        match self {
            AmdSource::HostTable => "auxblob",
            AmdSource::Cache => "cache",
            AmdSource::Thim => "thim",
            AmdSource::Kds => "kds",
        }
    }
}

impl fmt::Display for AmdSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`gather_amd_endorsements`] may use.
pub struct AmdGathering<'a> {
    /// The sources, in the order they are tried.
    pub sources: &'a [AmdSource],
    /// The certificates the host attached (already in the bundle with the table's entries).
    pub host_certs: &'a [AmdCert],
    /// The cache, if any.
    pub cache: Option<&'a EndorsementCache>,
    /// The IMDS base URL (THIM lives below it).
    pub imds_base: &'a str,
    /// The KDS base URL.
    pub kds_base: &'a str,
    /// The client for THIM (never through a proxy).
    pub thim: &'a dyn Fetch,
    /// The client for KDS.
    pub kds: &'a dyn Fetch,
    /// Told before each request to THIM or KDS.
    pub progress: &'a crate::Progress,
}

/// What was gathered.
#[derive(Debug, Default)]
pub struct Endorsements {
    /// The certificates to add to the bundle (none when the host's table was enough).
    pub endorsements: Vec<Endorsement>,
    /// One line per source tried and why it was or was not used.
    pub log: Vec<String>,
    /// The source whose chain verified the report.
    pub used: Option<AmdSource>,
    /// What the caller should hear about (a cache that could not be written).
    pub warnings: Vec<Warning>,
}

/// No source produced a usable chain.
///
/// It has no single [`source`](std::error::Error::source): each source failed for its own
/// reason, and [`EndorseError::attempts`] keeps every one, typed, in the order tried.
#[derive(Debug, thiserror::Error)]
#[error("no endorsement source produced endorsements that verify the evidence: {}", .attempts.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct EndorseError {
    /// Why each source failed, in the order they were tried.
    pub attempts: Vec<EndorseFailure>,
}

impl EndorseError {
    /// The error of a single failure.
    pub fn one(failure: EndorseFailure) -> EndorseError {
        EndorseError {
            attempts: vec![failure],
        }
    }
}

/// Endorsements that do not verify the evidence: the first error `thimble-verify` found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({code})")]
pub struct Rejection {
    /// The verification error's stable code.
    pub code: Code,
    /// Its message.
    pub message: String,
}

/// Why one endorsement source gave nothing usable. The message of each is the endorsement
/// log's line for it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndorseFailure {
    /// The host's certificates do not verify the report.
    #[error("auxblob: host-attached certificates not usable: {0}")]
    HostTable(Rejection),
    /// A VLEK-signed report: only the host can supply a VLEK.
    #[error("the report is VLEK-signed and only the host can supply a VLEK")]
    VlekNotFetchable,
    /// THIM failed.
    #[error("thim {url}: {failure}")]
    Thim {
        /// The THIM URL asked.
        url: String,
        /// Why.
        failure: ThimFailure,
    },
    /// CHIP_ID is masked, so KDS cannot be asked.
    #[error(
        "kds: CHIP_ID is masked (MASK_CHIP_ID), so AMD KDS cannot be asked for this chip's VCEK"
    )]
    KdsChipIdMasked,
    /// KDS failed for one product.
    #[error("kds ({product}): {failure}")]
    Kds {
        /// The product asked for.
        product: Product,
        /// Why.
        failure: KdsFailure,
    },
    /// Every source is switched off.
    #[error("every endorsement source is disabled")]
    AllDisabled,
    /// TDX: the quote carries neither a PCK chain nor the identity to fetch its PCK certificate.
    #[error("the quote carries neither a PCK chain nor the platform identity to fetch one")]
    NoPckIdentity,
    /// TDX: the PCK certificate could not be had from the local THIM agent.
    #[error("{0}")]
    PckCert(IntelFetchError),
    /// TDX: the PCK certificate's SGX extension does not decode.
    #[error("the PCK certificate has no readable SGX extension")]
    PckExtension,
    /// TDX: the collateral could not be fetched.
    #[error("{0}")]
    Collateral(IntelFetchError),
    /// TDX: the collateral does not verify the quote.
    #[error("the collateral does not verify the quote: {0}")]
    CollateralRejected(Rejection),
}

/// Why THIM's answer was not used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ThimFailure {
    /// The request failed.
    #[error("{0}")]
    Fetch(FetchError),
    /// The body is not a THIM AMD answer.
    #[error("{0}")]
    Body(ThimError),
    /// `vcekCert` is not a certificate.
    #[error("vcekCert: {0}")]
    Vcek(AmdCertError),
    /// A certificate of `certificateChain` is not a certificate.
    #[error("certificateChain[{index}]: {error}")]
    Chain {
        /// Its index.
        index: usize,
        /// The parser's error.
        error: AmdCertError,
    },
    /// THIM's `tcbm` is another TCB than the report's.
    #[error(
        "tcbm {:016x} is not the report's REPORTED_TCB {:016x}: THIM holds a VCEK for another TCB",
        u64::from_le_bytes(*.tcbm),
        u64::from_le_bytes(*.reported_tcb)
    )]
    OtherTcb {
        /// THIM's `tcbm`.
        tcbm: [u8; 8],
        /// The report's REPORTED_TCB.
        reported_tcb: [u8; 8],
    },
    /// The certificates do not verify the report.
    #[error("VCEK rejected: {0}")]
    Rejected(Rejection),
}

/// Why KDS's answer for a product was not used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KdsFailure {
    /// A request failed.
    #[error("{0}")]
    Fetch(FetchError),
    /// The VCEK is not a certificate.
    #[error("{url}: VCEK: {error}")]
    Vcek {
        /// The VCEK URL.
        url: String,
        /// The parser's error.
        error: AmdCertError,
    },
    /// `cert_chain` is not text.
    #[error("{url}: cert_chain is not PEM text")]
    ChainNotText {
        /// The `cert_chain` URL.
        url: String,
    },
    /// `cert_chain` is not PEM certificates.
    #[error("{url}: {error}")]
    ChainPem {
        /// The `cert_chain` URL.
        url: String,
        /// The PEM reader's error.
        error: FileError,
    },
    /// A certificate of `cert_chain` does not parse.
    #[error("{url}: certificate {index}: {error}")]
    ChainCert {
        /// The `cert_chain` URL.
        url: String,
        /// Its index.
        index: usize,
        /// The parser's error.
        error: AmdCertError,
    },
    /// The certificates do not verify the report.
    #[error("VCEK rejected: {0}")]
    Rejected(Rejection),
}

fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    format_unix(secs)
}

/// The endorsement kind of an AMD certificate, by its role.
pub fn role_kind(c: &AmdCert) -> EndorsementKind {
    match c.amd_role() {
        Some(AmdRole::Vcek) => EndorsementKind::Vcek,
        Some(AmdRole::Vlek) => EndorsementKind::Vlek,
        Some(AmdRole::Ask) => EndorsementKind::Ask,
        Some(AmdRole::Asvk) => EndorsementKind::Asvk,
        Some(AmdRole::Ark) => EndorsementKind::Ark,
        None => EndorsementKind::Certificate,
    }
}

/// Checks that `certs` verify `report` (chain, binding and signature; no policy).
pub fn check_certs(
    report: &SnpReport,
    certs: &[AmdCert],
    roots: &TrustedRoots,
    now: i64,
) -> Result<(), Rejection> {
    let opts = Options {
        at: now,
        roots: roots.clone(),
        policy: Policy {
            allow_debug: true,
            ..Policy::default()
        },
    };
    let out = verify_report(report.as_bytes(), certs, None, &opts);
    match out.errors.into_iter().next() {
        None => Ok(()),
        Some(e) => Err(Rejection {
            code: e.code,
            message: e.message,
        }),
    }
}

/// Products to ask KDS for, best guess first: CPUID (v3+), a Turin-shaped chip id, else both
/// Milan and Genoa (a version 2 report does not say which).
pub fn candidate_products(report: &SnpReport) -> Vec<Product> {
    match report.product_hint() {
        Some(p) => vec![p],
        None => vec![Product::Milan, Product::Genoa],
    }
}

fn cache_secs(resp: &HttpResponse) -> Option<u64> {
    resp.header("cache-control")
        .and_then(crate::http::cache_max_age)
}

/// Gathers the certificates that endorse `report` from `g.sources`, in order, and stores what
/// THIM or KDS gave in the cache.
pub fn gather_amd_endorsements(
    g: &AmdGathering<'_>,
    report: &SnpReport,
    roots: &TrustedRoots,
    now: i64,
) -> Result<Endorsements, EndorseError> {
    let mut out = Endorsements::default();
    let mut attempts = Vec::new();
    // A failed source is a log line, and a typed cause should none be left.
    let fail = |out: &mut Endorsements, attempts: &mut Vec<_>, failure: EndorseFailure| {
        out.log.push(failure.to_string());
        attempts.push(failure);
    };
    let mut vlek_refused = false;
    // Held from the first fetch to the return, across the store (see crate::cache).
    let mut lock: Option<Option<EntryLock>> = None;
    for &source in g.sources {
        let first_fetch = lock.is_none()
            && g.sources.contains(&AmdSource::Cache)
            && matches!(source, AmdSource::Thim | AmdSource::Kds)
            && report.signing_key != SigningKey::Vlek;
        if let (true, Some(cache), Some(path)) = (
            first_fetch,
            g.cache,
            g.cache.and_then(|c| c.path_for(report)),
        ) {
            lock = Some(match cache.lock(&path) {
                Ok(held) => Some(held),
                Err(e) => {
                    out.log.push(format!("cache: {e}; fetching without it"));
                    None
                }
            });
            // Whoever held the lock before may have stored the entry meanwhile.
            if cached_chain(cache, report, roots, now, &mut out) {
                out.used = Some(AmdSource::Cache);
                return Ok(out);
            }
        }
        match source {
            AmdSource::HostTable if !g.host_certs.is_empty() => {
                match check_certs(report, g.host_certs, roots, now) {
                    Ok(()) => {
                        out.log.push(
                            "auxblob: the host-attached certificates verify the report; no fetch needed"
                                .into(),
                        );
                        out.used = Some(source);
                        return Ok(out);
                    }
                    Err(why) => fail(&mut out, &mut attempts, EndorseFailure::HostTable(why)),
                }
            }
            AmdSource::HostTable => {}
            AmdSource::Cache => {
                let Some(cache) = g.cache else { continue };
                if cached_chain(cache, report, roots, now, &mut out) {
                    out.used = Some(source);
                    return Ok(out);
                }
            }
            AmdSource::Thim | AmdSource::Kds if report.signing_key == SigningKey::Vlek => {
                // THIM and KDS serve VCEKs only; a VLEK is provisioned by the cloud provider and
                // must come with the report.
                if !vlek_refused {
                    vlek_refused = true;
                    attempts.push(EndorseFailure::VlekNotFetchable);
                }
            }
            AmdSource::Thim => {
                let url = format!("{}{THIM_AMD_PATH}", g.imds_base.trim_end_matches('/'));
                g.progress.report(&format!(
                    "fetching the VCEK and its chain from THIM ({url})"
                ));
                match thim_attempt(g.thim, &url, report, roots, now) {
                    Ok((endorsements, line)) => {
                        out.log.push(line);
                        store(g.cache, report, source, &endorsements, now, &mut out);
                        out.endorsements = endorsements;
                        out.used = Some(source);
                        return Ok(out);
                    }
                    Err(failure) => fail(
                        &mut out,
                        &mut attempts,
                        EndorseFailure::Thim { url, failure },
                    ),
                }
            }
            AmdSource::Kds if report.chip_id_masked() => {
                fail(&mut out, &mut attempts, EndorseFailure::KdsChipIdMasked);
            }
            AmdSource::Kds => {
                for product in candidate_products(report) {
                    match kds_attempt(g, product, report, roots, now) {
                        Ok(endorsements) => {
                            out.log.push(format!(
                                "kds: VCEK and {product} chain from AMD KDS verify the report"
                            ));
                            store(g.cache, report, source, &endorsements, now, &mut out);
                            out.endorsements = endorsements;
                            out.used = Some(source);
                            return Ok(out);
                        }
                        Err(failure) => {
                            fail(
                                &mut out,
                                &mut attempts,
                                EndorseFailure::Kds { product, failure },
                            );
                        }
                    }
                }
            }
        }
    }
    if attempts.is_empty() {
        attempts.push(EndorseFailure::AllDisabled);
    }
    Err(EndorseError { attempts })
}

/// Looks `report`'s entry up in `cache` and, when its certificates verify the report, takes them
/// into `out`; says in `out`'s log why an entry was not used.
fn cached_chain(
    cache: &EndorsementCache,
    report: &SnpReport,
    roots: &TrustedRoots,
    now: i64,
    out: &mut Endorsements,
) -> bool {
    let (Some((entry, certs)), Some(path)) = (cache.lookup(report, now), cache.path_for(report))
    else {
        return false;
    };
    match check_certs(report, &certs, roots, now) {
        Ok(()) => {
            out.log.push(hit_line(&entry, &path));
            out.endorsements = entry.endorsements;
            true
        }
        Err(why) => {
            // Looked at twice when the lock was taken after the cache was tried: say it once.
            let line = format!("cache: entry {} ignored: {why}", path.display());
            if !out.log.contains(&line) {
                out.log.push(line);
            }
            false
        }
    }
}

/// Stores what `source` gave in the cache, if there is one; a failure is a warning.
fn store(
    cache: Option<&EndorsementCache>,
    report: &SnpReport,
    source: AmdSource,
    endorsements: &[Endorsement],
    now: i64,
    out: &mut Endorsements,
) {
    let Some(cache) = cache else { return };
    match cache.store(report, source.as_str(), endorsements, now) {
        Ok(Some(path)) => out.log.push(format!("cache: stored in {}", path.display())),
        Ok(None) => {}
        // A read-only or missing cache directory must not fail a collect.
        Err(e) => out.warnings.push(Warning::CacheNotWritten { error: e }),
    }
}

fn thim_attempt(
    fetch: &dyn Fetch,
    url: &str,
    report: &SnpReport,
    roots: &TrustedRoots,
    now: i64,
) -> Result<(Vec<Endorsement>, String), ThimFailure> {
    let resp = fetch
        .get(url, &[("Metadata", "true")])
        .map_err(ThimFailure::Fetch)?;
    let body = ThimAmdCertification::parse(&resp.body).map_err(ThimFailure::Body)?;
    let mut certs = Vec::with_capacity(1 + body.chain.len());
    certs.push(AmdCert::parse_der(&body.vcek).map_err(ThimFailure::Vcek)?);
    for (index, der) in body.chain.iter().enumerate() {
        certs.push(AmdCert::parse_der(der).map_err(|error| ThimFailure::Chain { index, error })?);
    }
    if let Some(tcbm) = body.tcbm {
        if tcbm != report.reported_tcb {
            return Err(ThimFailure::OtherTcb {
                tcbm,
                reported_tcb: report.reported_tcb,
            });
        }
    }
    check_certs(report, &certs, roots, now).map_err(ThimFailure::Rejected)?;
    let at = rfc3339(resp.fetched_at);
    let origin = Origin::url(OriginKind::Thim, url);
    let endorsements = certs
        .iter()
        .map(|c| {
            let mut e = Endorsement::der(role_kind(c), c.der(), origin.clone(), Some(at.clone()));
            e.cache_max_age_secs = body.cache_control_secs.or_else(|| cache_secs(&resp));
            e
        })
        .collect();
    Ok((
        endorsements,
        format!("thim: VCEK and chain from {url} verify the report"),
    ))
}

fn kds_attempt(
    g: &AmdGathering<'_>,
    product: Product,
    report: &SnpReport,
    roots: &TrustedRoots,
    now: i64,
) -> Result<Vec<Endorsement>, KdsFailure> {
    let (fetch, base) = (g.kds, g.kds_base);
    let tcb = report.reported_tcb(product);
    let vcek_url = kds::vcek_url(base, product, &report.chip_id, &tcb);
    let chain_url = kds::cert_chain_url(base, product, false);
    g.progress
        .report(&format!("fetching the VCEK from AMD KDS ({vcek_url})"));
    let vcek_resp = fetch.get(&vcek_url, &[]).map_err(KdsFailure::Fetch)?;
    let vcek = AmdCert::parse_der(&vcek_resp.body).map_err(|error| KdsFailure::Vcek {
        url: vcek_url.clone(),
        error,
    })?;
    g.progress.report(&format!(
        "fetching the {product} certificate chain from AMD KDS ({chain_url})"
    ));
    let chain_resp = fetch.get(&chain_url, &[]).map_err(KdsFailure::Fetch)?;
    let text = std::str::from_utf8(&chain_resp.body).map_err(|_| KdsFailure::ChainNotText {
        url: chain_url.clone(),
    })?;
    let ders = pem_certificates(text).map_err(|error| KdsFailure::ChainPem {
        url: chain_url.clone(),
        error,
    })?;
    let mut certs = vec![vcek];
    for (index, d) in ders.iter().enumerate() {
        certs.push(
            AmdCert::parse_der(d).map_err(|error| KdsFailure::ChainCert {
                url: chain_url.clone(),
                index,
                error,
            })?,
        );
    }
    check_certs(report, &certs, roots, now).map_err(KdsFailure::Rejected)?;
    let mut out = Vec::new();
    for (i, c) in certs.iter().enumerate() {
        let (url, resp) = if i == 0 {
            (&vcek_url, &vcek_resp)
        } else {
            (&chain_url, &chain_resp)
        };
        let origin = Origin::url(OriginKind::Kds, url.clone());
        let mut e = Endorsement::der(
            role_kind(c),
            c.der(),
            origin,
            Some(rfc3339(resp.fetched_at)),
        );
        e.cache_max_age_secs = cache_secs(resp);
        out.push(e);
    }
    Ok(out)
}

/// The chain that verifies `report` among `certs`: the first VCEK (or VLEK, for a VLEK-signed
/// report) that chains to a root of `roots` and whose key signed the report.
pub fn verified_chain(
    report: &SnpReport,
    certs: &[AmdCert],
    roots: &TrustedRoots,
    now: i64,
) -> Option<VerifiedChain> {
    let wanted = if report.signing_key == SigningKey::Vlek {
        AmdRole::Vlek
    } else {
        AmdRole::Vcek
    };
    certs
        .iter()
        .filter(|c| c.amd_role() == Some(wanted))
        .find_map(|leaf| {
            let chain = verify_leaf(leaf, certs, roots, now).ok()?;
            verify_report_signature(report, &chain.leaf).ok()?;
            Some(chain)
        })
}

/// Where AMD's CRL may be fetched from.
#[derive(Clone, Copy)]
pub enum CrlSource<'a> {
    /// AMD KDS (or an emulator) at `base`.
    Kds {
        /// The client.
        fetch: &'a dyn Fetch,
        /// The KDS base URL.
        base: &'a str,
    },
    /// Fetching is off (`--offline`, `--no-kds`), for the reason given.
    Disabled {
        /// Why, as the log line says it (`offline`, `--no-kds`).
        why: &'a str,
    },
}

/// What [`settle_amd_crl`] found.
#[derive(Debug, Clone, Default)]
pub struct CrlSettlement {
    /// The CRL to add to the bundle, fetched or from the cache. A CRL the host's table carried is
    /// already in the bundle with the table's other entries, so it is not repeated here.
    pub endorsement: Option<Endorsement>,
    /// One line per CRL source tried, for the bundle's endorsement log.
    pub log: Vec<String>,
    /// The ARK's CRL lists the chain's ASK or ASVK: the log line saying so, which the caller also
    /// shows as a warning.
    pub revoked: Option<String>,
}

impl CrlSettlement {
    /// Adds the settlement to a collection: the CRL to `endorsements`, the log lines to `log`,
    /// a revocation to `warnings`.
    pub fn add_to(
        self,
        endorsements: &mut Vec<Endorsement>,
        log: &mut Vec<String>,
        warnings: &mut Vec<Warning>,
    ) {
        if let Some(line) = self.revoked {
            warnings.push(Warning::Revoked { line });
        }
        log.extend(self.log);
        endorsements.extend(self.endorsement);
    }
}

/// The AMD certificates among `endorsements` (those that parse), for [`settle_amd_crl`].
pub fn amd_certificates(endorsements: &[Endorsement]) -> Vec<AmdCert> {
    endorsements
        .iter()
        .filter_map(|e| e.bytes().ok())
        .filter_map(|b| AmdCert::parse_der(&b).ok())
        .collect()
}

/// Adds the CRL of the ARK that `report`'s chain ends at (see the module documentation).
/// `certs` are every certificate gathered for the report (host table and fetched), and
/// `attached_crls` the CRL entries of the host's certificate table. Never fails: a CRL that
/// cannot be had is a log line.
pub fn settle_amd_crl(
    source: CrlSource<'_>,
    cache: Option<&EndorsementCache>,
    report: &SnpReport,
    certs: &[AmdCert],
    attached_crls: &[Vec<u8>],
    roots: &TrustedRoots,
    now: i64,
) -> CrlSettlement {
    let mut out = CrlSettlement::default();
    let Some(chain) = verified_chain(report, certs, roots, now) else {
        // Nothing verified the report (an offline collect without the host's certificates):
        // there is no ARK whose CRL would mean anything.
        return out;
    };
    let vlek = chain.leaf_role == AmdRole::Vlek;
    let inter = if vlek { "ASVK" } else { "ASK" };
    let revoked_line = |crl: &Crl, from: &str| {
        format!(
            "crl: REVOKED: the CRL of {:?} from {from} (thisUpdate {}) lists this chain's {inter} {:?} (serial {}): AMD has revoked this chain",
            chain.root.subject_cn,
            format_unix(crl.this_update),
            chain.intermediate.subject_cn,
            chain.intermediate.serial_hex
        )
    };
    let current = |crl: &Crl| crl.next_update.is_none_or(|n| n > now);

    // The host's table: use its CRL when it is the ARK's and current, and say why not otherwise.
    for bytes in attached_crls.iter().take(MAX_CRL_CANDIDATES) {
        match authenticate_amd_crl(bytes, &chain.intermediate, &chain.root) {
            Ok(crl) if lists(&crl, &chain.intermediate) => {
                let line = revoked_line(&crl, "the host's certificate table");
                out.log.push(line.clone());
                out.revoked = Some(line);
                return out;
            }
            Ok(crl) if current(&crl) => {
                out.log.push(format!(
                    "crl: the host's certificate table carries the CRL of {:?} (thisUpdate {}, nextUpdate {}); no fetch needed",
                    chain.root.subject_cn,
                    format_unix(crl.this_update),
                    crl.next_update.map_or_else(|| "none".into(), format_unix)
                ));
                return out;
            }
            Ok(crl) => out.log.push(format!(
                "crl: the host's CRL of {:?} is past its nextUpdate {}",
                chain.root.subject_cn,
                crl.next_update.map_or_else(|| "none".into(), format_unix)
            )),
            Err(why) => out
                .log
                .push(format!("crl: the host's CRL entry is not usable: {why}")),
        }
    }

    let (fetch, base) = match source {
        CrlSource::Kds { fetch, base } => (fetch, base),
        CrlSource::Disabled { why } => {
            out.log
                .push(format!("crl: {why}: AMD's CRL was not fetched"));
            return out;
        }
    };

    // Held from the look-up after it was taken to the return, across the store (see
    // crate::cache).
    let mut _lock = None;
    if let Some(c) = cache {
        let path = c.crl_path_for(chain.product, vlek, &chain.root);
        let cached = |out: &mut CrlSettlement| {
            let (entry, bytes) = c.lookup_crl(chain.product, vlek, &chain.root, now)?;
            let line = match authenticate_amd_crl(&bytes, &chain.intermediate, &chain.root) {
                Ok(crl) if !current(&crl) => format!(
                    "cache: CRL entry {} ignored: past its nextUpdate",
                    path.display()
                ),
                Ok(crl) => {
                    if lists(&crl, &chain.intermediate) {
                        let line = revoked_line(&crl, "the cache");
                        out.log.push(line.clone());
                        out.revoked = Some(line);
                    } else {
                        out.log.push(crl_hit_line(&entry, &path));
                    }
                    return Some(entry.endorsements.into_iter().next());
                }
                Err(why) => format!("cache: CRL entry {} ignored: {why}", path.display()),
            };
            // Looked at twice when the lock was taken: say it once.
            if !out.log.contains(&line) {
                out.log.push(line);
            }
            None
        };
        if let Some(e) = cached(&mut out) {
            out.endorsement = e;
            return out;
        }
        // About to fetch what the cache stores: one process fetches, the others wait and find
        // its entry.
        match c.lock(&path) {
            Ok(held) => _lock = Some(held),
            Err(e) => out.log.push(format!("cache: {e}; fetching without it")),
        }
        if let Some(e) = cached(&mut out) {
            out.endorsement = e;
            return out;
        }
    }

    let url = kds::crl_url(base, chain.product, vlek);
    let resp = match fetch.get(&url, &[]) {
        Ok(r) => r,
        Err(e) => {
            out.log.push(format!("crl: {e}; the bundle has no AMD CRL"));
            return out;
        }
    };
    let crl = match authenticate_amd_crl(&resp.body, &chain.intermediate, &chain.root) {
        Ok(crl) => crl,
        Err(why) => {
            out.log.push(format!(
                "crl {url}: rejected, the bundle has no AMD CRL: {why}"
            ));
            return out;
        }
    };
    let mut e = Endorsement::der(
        EndorsementKind::Crl,
        crl.der(),
        Origin::url(OriginKind::Kds, url.clone()),
        Some(rfc3339(resp.fetched_at)),
    );
    e.cache_max_age_secs = cache_secs(&resp);
    e.next_update = crl.next_update.map(format_unix);
    if lists(&crl, &chain.intermediate) {
        let line = revoked_line(&crl, &url);
        out.log.push(line.clone());
        out.revoked = Some(line);
    } else if current(&crl) {
        out.log.push(format!(
            "crl: the CRL of {:?} from {url} (thisUpdate {}, nextUpdate {}) does not list this chain's {inter}",
            chain.root.subject_cn,
            format_unix(crl.this_update),
            crl.next_update.map_or_else(|| "none".into(), format_unix)
        ));
    } else {
        out.log.push(format!(
            "crl: the CRL of {:?} from {url} is past its nextUpdate {}; kept, a verifier may refuse it",
            chain.root.subject_cn,
            crl.next_update.map_or_else(|| "none".into(), format_unix)
        ));
    }
    if let Some(c) = cache {
        // Kept until the CRL's own nextUpdate; one without a nextUpdate for the default time.
        let expires = crl.next_update.unwrap_or_else(|| {
            now.saturating_add(
                i64::try_from(crate::cache::DEFAULT_MAX_AGE_SECS).unwrap_or(i64::MAX),
            )
        });
        if expires > now {
            match c.store_crl(chain.product, vlek, &chain.root, &e, expires, now) {
                Ok(path) => out
                    .log
                    .push(format!("cache: CRL stored in {}", path.display())),
                // A read-only or missing cache directory must not fail a collect.
                Err(err) => out.log.push(format!("cache: {err}: {}", err.source)),
            }
        }
    }
    out.endorsement = Some(e);
    out
}
