// SPDX-License-Identifier: Apache-2.0
//! The Intel collateral of a TDX quote (TCB info, QE identity, PCK CRL, root CA CRL), shared by
//! the TDX and the Azure TDX collectors. The sources, in order ([`IntelSource`]): the on-disk
//! cache, then the one collateral service the configuration names (Azure THIM, Intel PCS or a
//! PCCS; [`crate::intel`] fetches the four items concurrently). Whatever the source, the set is
//! kept only once `thimble-verify` finds that it verifies the quote, against Intel's pinned root
//! (or a test root the request allows, when Intel's does not chain), exactly as `verify` will: a
//! debug TD and stale collateral are accepted here, because both are the verifier's decision.
//!
//! A quote without a PCK chain (certification data of type 2 or 3: an encrypted PPID) gets its
//! PCK certificate from the local THIM agent behind IMDS first; it goes into the bundle too.
//!
//! Before fetching from the service, the cache entry's lock is taken and the cache looked at
//! again, so that collections sharing a cache fetch each platform's collateral once between them
//! ([`crate::cache`]).

use std::fmt;

use thimble_evidence::bundle::{Endorsement, EndorsementKind, Origin, OriginKind};
use thimble_evidence::tdx::{PckInfo, TdxQuote};
use thimble_evidence::time_fmt::format_unix;
use thimble_verify::bundle::tdx_collateral_from;
use thimble_verify::tdx::{TdxPolicy, verify_quote};
use thimble_verify::{Code, IntelRoots, Outcome};

use crate::cache::{EndorsementCache, tdx_collateral_expiry, tdx_hit_line};
use crate::context::Context;
use crate::endorse::{EndorseError, EndorseFailure, Rejection};
use crate::env::{Endpoint, Environment};
use crate::error::{CollectError, Warning};
use crate::http::Fetch;
use crate::intel::{
    CollateralService, DEFAULT_PCS_BASE, DEFAULT_THIM_BASE, FetchedItem, IntelCollateralConfig,
    IntelSettings, PckCertId, fetch_pck_cert, fetch_tdx_collateral,
};
use crate::request::{IntelService, QcnlSource};

/// A place TDX collateral may come from, in the order they are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntelSource {
    /// The on-disk cache.
    Cache,
    /// The collateral service of the configuration: Azure THIM, Intel PCS or a PCCS.
    Service,
}

impl IntelSource {
    /// Every source, in thimble's order.
    pub const ALL: [IntelSource; 2] = [IntelSource::Cache, IntelSource::Service];
}

impl fmt::Display for IntelSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IntelSource::Cache => "cache",
            IntelSource::Service => "service",
        })
    }
}

/// What [`gather_tdx_collateral`] may use.
pub struct CollateralGathering<'a> {
    /// The collateral service and the rest of the Intel settings.
    pub config: &'a IntelCollateralConfig,
    /// The HTTP client (the local PCK agent is IMDS: the client must not use a proxy for it,
    /// which [`crate::http::HttpClient`] ensures for link-local addresses).
    pub http: &'a (dyn Fetch + Sync),
    /// The cache, if any.
    pub cache: Option<&'a EndorsementCache>,
    /// The roots the collateral must chain to.
    pub roots: &'a IntelRoots,
    /// A test root tried when `roots` does not chain.
    pub test_roots: Option<&'a IntelRoots>,
    /// Told before the PCK certificate and the collateral are fetched.
    pub progress: &'a crate::Progress,
}

/// The collateral of a quote, checked against it.
#[derive(Debug, Default)]
pub struct Collateral {
    /// The endorsements to add to the bundle: the PCK certificate and its chain when they were
    /// fetched, then the four items.
    pub endorsements: Vec<Endorsement>,
    /// What was done, for the bundle's endorsement log.
    pub log: Vec<String>,
    /// The PCK's platform data, when the quote or the local THIM gave the certificate.
    pub pck: Option<PckInfo>,
    /// What the caller should hear about (a cache that could not be written).
    pub warnings: Vec<Warning>,
}

/// The Intel settings of a collection: the collateral service from the request (or, when it
/// names no base URL, `service_base` from the environment: a simulation's emulator), the
/// request's IMDS, and the operator's QCNL file under them.
pub(crate) fn intel_config<E: Environment>(
    ctx: &Context<'_, E>,
) -> Result<IntelCollateralConfig, CollectError> {
    let fetching = &ctx.request.fetching;
    let base = match &fetching.intel_url {
        Some(url) => Some(url.clone()),
        None => ctx.env.endpoint(Endpoint::IntelCollateral)?,
    };
    let service = match (fetching.intel_service, base) {
        // A PCS base other than Intel's is a PCCS (or a simulation's emulator): it serves the
        // root CA CRL itself, as QCNL expects of a PCCS, so nothing goes to Intel. Intel's own
        // PCS does not serve the root CA CRL: that comes from Intel's distribution point, as
        // with no URL at all.
        (Some(IntelService::Pcs), Some(b)) if b.contains("api.trustedservices.intel.com") => {
            Some(CollateralService::pcs(b))
        }
        (Some(IntelService::Pcs), Some(b)) => Some(CollateralService::Pcs {
            root_ca_crl_url: format!("{}/sgx/certification/v4/rootcacrl", b.trim_end_matches('/')),
            base: b,
        }),
        (Some(IntelService::Pcs), None) => Some(CollateralService::pcs(DEFAULT_PCS_BASE)),
        (_, Some(b)) => Some(CollateralService::thim(b)),
        (Some(IntelService::Thim), None) => Some(CollateralService::thim(DEFAULT_THIM_BASE)),
        (None, None) => None,
    };
    let settings = IntelSettings {
        service,
        imds_base: fetching.imds.clone(),
        ..IntelSettings::default()
    };
    let qcnl = match &fetching.qcnl {
        QcnlSource::FromEnvironment => ctx.env.qcnl()?,
        QcnlSource::Ignore => None,
        QcnlSource::Given(c) => Some(c.clone()),
    };
    Ok(IntelCollateralConfig::resolve(&settings, qcnl.as_ref()))
}

/// The PCK identity of a quote whose certification data carries the encrypted PPID (nested
/// type 2 or 3: PPID, CPUSVN, PCESVN, PCEID) instead of the PCK chain.
pub fn pck_cert_id(quote: &TdxQuote) -> Option<PckCertId> {
    let inner = &quote.qe.inner_data;
    let ppid_len = match quote.qe.inner_type {
        2 => 256,
        3 => 384,
        _ => return None,
    };
    let rest = inner.get(ppid_len..ppid_len + 20)?;
    let mut qe_id = [0u8; 16];
    qe_id.copy_from_slice(quote.header.user_data.get(..16)?);
    let mut cpu_svn = [0u8; 16];
    cpu_svn.copy_from_slice(&rest[..16]);
    Some(PckCertId {
        qe_id,
        cpu_svn,
        pce_svn: u16::from_le_bytes([rest[16], rest[17]]),
        pce_id: u16::from_le_bytes([rest[18], rest[19]]),
        encrypted_ppid: Some(inner[..ppid_len].to_vec()),
    })
}

/// An item as it goes into the bundle: JSON bodies byte for byte, CRLs as DER whatever the
/// service sent.
fn endorsement(kind: EndorsementKind, item: &FetchedItem) -> Endorsement {
    let origin = Origin::url(item.source.into(), item.url.clone());
    let mut e = match &item.der {
        Some(der) => Endorsement::der(kind, der, origin, Some(item.retrieved_at.clone())),
        None => Endorsement::bytes_as(
            kind,
            "json",
            &item.body,
            origin,
            Some(item.retrieved_at.clone()),
        ),
    };
    e.issuer_chain = item.issuer_chain_pem.clone();
    e.next_update = item.next_update.clone();
    e.cache_max_age_secs = item
        .cache_control
        .as_deref()
        .and_then(crate::http::cache_max_age);
    e
}

/// Checks that `endorsements` verify `quote` (chain, CRLs, QE, signatures, TCB level; a debug TD
/// and stale collateral allowed), against `roots` and then, if Intel's root did not chain,
/// `test_roots`.
pub fn check_collateral(
    quote: &[u8],
    endorsements: &[Endorsement],
    roots: &IntelRoots,
    test_roots: Option<&IntelRoots>,
    expected_report_data: Option<[u8; 64]>,
    now: i64,
) -> Result<Outcome, Rejection> {
    let collateral = tdx_collateral_from(endorsements).map_err(|e| Rejection {
        code: e.code,
        message: e.message,
    })?;
    let policy = TdxPolicy {
        allow_debug: true,
        allow_stale_collateral: true,
        report_data: expected_report_data,
        ..TdxPolicy::default()
    };
    let chain_failed = |o: &Outcome| o.errors.iter().any(|e| e.code == Code::Chain);
    let mut out = verify_quote(quote, &collateral, now, roots, &policy);
    if let Some(test) = test_roots {
        if chain_failed(&out) {
            let alt = verify_quote(quote, &collateral, now, test, &policy);
            if !chain_failed(&alt) {
                out = alt;
            }
        }
    }
    match out.errors.first() {
        Some(e) => Err(Rejection {
            code: e.code,
            message: e.message.clone(),
        }),
        None => Ok(out),
    }
}

/// The endorsement log's line for a set that verified.
fn verified_line(out: &Outcome) -> String {
    format!(
        "collateral verifies the quote: TCB status {}{}",
        out.tcb_status.as_deref().unwrap_or("unknown"),
        if out.warnings.is_empty() {
            String::new()
        } else {
            format!(" ({})", out.warnings.join("; "))
        }
    )
}

/// Gathers the collateral of `quote` (whose bytes are `quote_bytes`) from the cache, then the
/// configured service, and keeps the first set that verifies it. `expected_report_data` is the
/// REPORT_DATA the quote must carry, when the caller chose it (not on Azure, where it is the
/// runtime data's digest).
pub fn gather_tdx_collateral(
    g: &CollateralGathering<'_>,
    quote_bytes: &[u8],
    quote: &TdxQuote,
    expected_report_data: Option<[u8; 64]>,
    now: i64,
) -> Result<Collateral, EndorseError> {
    let mut out = Collateral {
        log: g.config.describe(),
        pck: quote
            .pck_chain
            .as_ref()
            .and_then(|c| c.first())
            .and_then(|d| PckInfo::from_der(d).ok()),
        ..Collateral::default()
    };
    if out.pck.is_none() {
        // No PCK chain in the quote: ask the local THIM for the PCK certificate.
        let id = pck_cert_id(quote).ok_or(EndorseError::one(EndorseFailure::NoPckIdentity))?;
        g.progress.report(&format!(
            "fetching the PCK certificate from the local THIM ({})",
            g.config.local_pck_url
        ));
        let resp = fetch_pck_cert(g.config, g.http, &id)
            .map_err(|e| EndorseError::one(EndorseFailure::PckCert(e)))?;
        out.pck = PckInfo::from_der(&resp.pck_cert_der).ok();
        let origin = Origin::url(OriginKind::Thim, resp.item.url.clone());
        let at = Some(resp.item.retrieved_at.clone());
        let mut e = Endorsement::der(
            EndorsementKind::Certificate,
            &resp.pck_cert_der,
            origin.clone(),
            at.clone(),
        );
        e.cache_max_age_secs = resp.cache_max_age_secs;
        out.endorsements.push(e);
        for der in &resp.chain_der {
            out.endorsements.push(Endorsement::der(
                EndorsementKind::Certificate,
                der,
                origin.clone(),
                at.clone(),
            ));
        }
        out.log
            .push(format!("pck: PCK certificate from {}", resp.item.url));
    }
    let Some(info) = out.pck.clone() else {
        return Err(EndorseError::one(EndorseFailure::PckExtension));
    };
    let service = &g.config.service;
    let pck_endorsements = out.endorsements.clone();
    let check = |items: &[Endorsement]| {
        let mut candidate = pck_endorsements.clone();
        candidate.extend_from_slice(items);
        check_collateral(
            quote_bytes,
            &candidate,
            g.roots,
            g.test_roots,
            expected_report_data,
            now,
        )
    };
    for source in IntelSource::ALL {
        match source {
            IntelSource::Cache => {
                let Some(cache) = g.cache else { continue };
                let Some(entry) =
                    cache.lookup_tdx_collateral(service, &info.fmspc, info.ca_type, now)
                else {
                    continue;
                };
                let path = cache.tdx_collateral_path(service, &info.fmspc, info.ca_type);
                match check(&entry.endorsements) {
                    Ok(verified) => {
                        out.log.push(tdx_hit_line(&entry, &path));
                        out.log.push(verified_line(&verified));
                        out.endorsements.extend(entry.endorsements);
                        return Ok(out);
                    }
                    Err(why) => out.log.push(format!(
                        "cache: TDX collateral entry {} ignored: {why}",
                        path.display()
                    )),
                }
            }
            IntelSource::Service => {
                // About to fetch what the cache stores: one process fetches, the others wait and
                // find its entry (see crate::cache). Held across the store, to the return.
                let _lock = match g.cache {
                    Some(cache) => {
                        let path = cache.tdx_collateral_path(service, &info.fmspc, info.ca_type);
                        let held = match cache.lock(&path) {
                            Ok(held) => Some(held),
                            Err(e) => {
                                out.log.push(format!("cache: {e}; fetching without it"));
                                None
                            }
                        };
                        if let Some(entry) =
                            cache.lookup_tdx_collateral(service, &info.fmspc, info.ca_type, now)
                        {
                            if let Ok(verified) = check(&entry.endorsements) {
                                out.log.push(tdx_hit_line(&entry, &path));
                                out.log.push(verified_line(&verified));
                                out.endorsements.extend(entry.endorsements);
                                return Ok(out);
                            }
                        }
                        held
                    }
                    None => None,
                };
                g.progress.report(&format!(
                    "fetching TCB info, QE identity and CRLs for FMSPC {} from {}",
                    hex::encode(info.fmspc),
                    g.config.service
                ));
                let fetched = fetch_tdx_collateral(g.config, g.http, &info.fmspc, info.ca_type)
                    .map_err(|e| EndorseError::one(EndorseFailure::Collateral(e)))?;
                let items = vec![
                    endorsement(EndorsementKind::TcbInfo, &fetched.tcb_info),
                    endorsement(EndorsementKind::QeIdentity, &fetched.qe_identity),
                    endorsement(EndorsementKind::PckCrl, &fetched.pck_crl),
                    endorsement(EndorsementKind::RootCaCrl, &fetched.root_ca_crl),
                ];
                out.log.extend(fetched.log);
                // The collateral is hostile input too: it goes into the bundle only once it
                // verifies this quote. Staleness is reported, not refused: THIM serves an older
                // baseline on purpose, and the verifier decides.
                let verified = check(&items)
                    .map_err(|why| EndorseError::one(EndorseFailure::CollateralRejected(why)))?;
                out.log.push(verified_line(&verified));
                if let Some(cache) = g.cache {
                    let expires = tdx_collateral_expiry(&items, now);
                    if expires > now {
                        match cache.store_tdx_collateral(
                            service,
                            &info.fmspc,
                            info.ca_type,
                            &items,
                            expires,
                            now,
                        ) {
                            Ok(path) => out.log.push(format!(
                                "cache: TDX collateral stored in {} (until {})",
                                path.display(),
                                format_unix(expires)
                            )),
                            // A read-only or missing cache directory must not fail a collect.
                            Err(e) => out.warnings.push(Warning::CacheNotWritten { error: e }),
                        }
                    }
                }
                out.endorsements.extend(items);
                return Ok(out);
            }
        }
    }
    // The service is always in the list; this is for the compiler.
    Err(EndorseError::one(EndorseFailure::AllDisabled))
}
