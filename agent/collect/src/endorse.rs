// SPDX-License-Identifier: AGPL-3.0-or-later
//! Gathering the AMD endorsements a verifier needs for a report: the VCEK (or VLEK) and the
//! ASK/ASVK + ARK chain.
//!
//! Order of sources:
//! 1. Certificates the host attached to the report (configfs-tsm `auxblob`, SNP_GET_EXT_REPORT):
//!    when they already form a chain that verifies the report, no network is touched, so a guest
//!    outside Azure never waits on an IMDS address that does not answer.
//! 2. Azure THIM (`{imds}/metadata/THIM/amd/certification`, `Metadata: true`, never a proxy).
//!    THIM is outside the trust boundary: its VCEK must match the report (hwID = CHIP_ID, SPLs =
//!    REPORTED_TCB, `tcbm` = REPORTED_TCB), chain to the pinned ARK of the report's product and
//!    verify the report signature before it is used.
//! 3. AMD KDS (VCEK by chip id and TCB, `cert_chain`), checked the same way.
//!
//! Every rejected or failed source is recorded with its reason in the bundle's endorsement log.

use std::time::SystemTime;

use thimble_evidence::bundle::{Endorsement, EndorsementKind, Origin};
use thimble_evidence::cert_file::pem_certificates;
use thimble_evidence::kds;
use thimble_evidence::snp::cert::AmdRole;
use thimble_evidence::snp::{AmdCert, Product, SigningKey, SnpReport};
use thimble_evidence::thim::ThimAmdCertification;
use thimble_evidence::time_fmt::format_unix;
use thimble_verify::snp::verify_report;
use thimble_verify::{Options, Policy, TrustedRoots};

use crate::http::{Fetch, HttpResponse};

/// Default IMDS base URL. Tests and emulators override it; nothing else should.
pub const DEFAULT_IMDS_BASE: &str = "http://169.254.169.254";
/// Path of the THIM AMD endpoint below the IMDS base.
pub const THIM_AMD_PATH: &str = "/metadata/THIM/amd/certification";

/// Which sources to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndorseConfig {
    pub imds_base: String,
    pub kds_base: String,
    pub use_thim: bool,
    pub use_kds: bool,
    /// Accept the host-attached certificates without going to the network when they verify.
    pub prefer_attached: bool,
}

impl Default for EndorseConfig {
    fn default() -> Self {
        EndorseConfig {
            imds_base: DEFAULT_IMDS_BASE.into(),
            kds_base: kds::DEFAULT_KDS_BASE.into(),
            use_thim: true,
            use_kds: true,
            prefer_attached: true,
        }
    }
}

/// What was gathered.
#[derive(Debug, Clone, Default)]
pub struct Endorsements {
    pub endorsements: Vec<Endorsement>,
    /// One line per source tried and why it was or was not used.
    pub log: Vec<String>,
    /// The source whose chain verified the report: `auxblob`, `thim` or `kds`.
    pub used: Option<String>,
}

/// No source produced a usable chain.
#[derive(Debug, thiserror::Error)]
#[error("no endorsement source produced endorsements that verify the evidence: {}", .attempts.join("; "))]
pub struct EndorseError {
    pub attempts: Vec<String>,
}

fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
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

/// Checks that `certs` verify `report` (chain, binding and signature; no policy). Returns the
/// reason when they do not.
pub fn check_certs(
    report: &SnpReport,
    certs: &[AmdCert],
    roots: &TrustedRoots,
    now: i64,
) -> Result<(), String> {
    let opts = Options {
        at: now,
        roots: roots.clone(),
        policy: Policy {
            allow_debug: true,
            ..Policy::default()
        },
    };
    let out = verify_report(report.as_bytes(), certs, None, &opts);
    match out.errors.first() {
        None => Ok(()),
        Some(e) => Err(format!("{} ({})", e.message, e.code)),
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

/// Gathers endorsements for `report`. `attached` are certificates the host supplied with the
/// report (already recorded in the bundle as `auxblob`).
pub fn fetch_amd_endorsements(
    cfg: &EndorseConfig,
    thim: &dyn Fetch,
    kds_fetch: &dyn Fetch,
    report: &SnpReport,
    attached: &[AmdCert],
    roots: &TrustedRoots,
    now: i64,
) -> Result<Endorsements, EndorseError> {
    let mut out = Endorsements::default();
    let mut attempts = Vec::new();

    if !attached.is_empty() {
        match check_certs(report, attached, roots, now) {
            Ok(()) if cfg.prefer_attached => {
                out.log.push(
                    "auxblob: the host-attached certificates verify the report; no fetch needed"
                        .into(),
                );
                out.used = Some("auxblob".into());
                return Ok(out);
            }
            Ok(()) => out
                .log
                .push("auxblob: the host-attached certificates verify the report".into()),
            Err(why) => {
                let line = format!("auxblob: host-attached certificates not usable: {why}");
                out.log.push(line.clone());
                attempts.push(line);
            }
        }
    }

    if report.signing_key == SigningKey::Vlek {
        // THIM and KDS serve VCEKs only; a VLEK is provisioned by the cloud provider and must
        // come with the report.
        attempts.push("the report is VLEK-signed and only the host can supply a VLEK".into());
        return Err(EndorseError { attempts });
    }

    if cfg.use_thim {
        let url = format!("{}{THIM_AMD_PATH}", cfg.imds_base.trim_end_matches('/'));
        match thim_attempt(thim, &url, report, roots, now) {
            Ok((mut e, log)) => {
                out.endorsements.append(&mut e);
                out.log.push(log);
                out.used = Some("thim".into());
                return Ok(out);
            }
            Err(why) => {
                let line = format!("thim {url}: {why}");
                out.log.push(line.clone());
                attempts.push(line);
            }
        }
    }

    if cfg.use_kds {
        if report.chip_id_masked() {
            let line = "kds: CHIP_ID is masked (MASK_CHIP_ID), so AMD KDS cannot be asked for this chip's VCEK".to_string();
            out.log.push(line.clone());
            attempts.push(line);
        } else {
            for product in candidate_products(report) {
                match kds_attempt(kds_fetch, &cfg.kds_base, product, report, roots, now) {
                    Ok(mut e) => {
                        out.endorsements.append(&mut e);
                        out.log.push(format!(
                            "kds: VCEK and {product} chain from AMD KDS verify the report"
                        ));
                        out.used = Some("kds".into());
                        return Ok(out);
                    }
                    Err(why) => {
                        let line = format!("kds ({product}): {why}");
                        out.log.push(line.clone());
                        attempts.push(line);
                    }
                }
            }
        }
    }

    if attempts.is_empty() {
        attempts.push("every endorsement source is disabled".into());
    }
    Err(EndorseError { attempts })
}

fn thim_attempt(
    fetch: &dyn Fetch,
    url: &str,
    report: &SnpReport,
    roots: &TrustedRoots,
    now: i64,
) -> Result<(Vec<Endorsement>, String), String> {
    let resp = fetch
        .get(url, &[("Metadata", "true")])
        .map_err(|e| e.to_string())?;
    let body = ThimAmdCertification::parse(&resp.body).map_err(|e| e.to_string())?;
    let mut certs = Vec::with_capacity(1 + body.chain.len());
    certs.push(AmdCert::parse_der(&body.vcek).map_err(|e| format!("vcekCert: {e}"))?);
    for (i, der) in body.chain.iter().enumerate() {
        certs.push(AmdCert::parse_der(der).map_err(|e| format!("certificateChain[{i}]: {e}"))?);
    }
    if let Some(tcbm) = body.tcbm {
        if tcbm != report.reported_tcb {
            return Err(format!(
                "tcbm {:016x} is not the report's REPORTED_TCB {:016x}: THIM holds a VCEK for another TCB",
                u64::from_le_bytes(tcbm),
                u64::from_le_bytes(report.reported_tcb)
            ));
        }
    }
    check_certs(report, &certs, roots, now).map_err(|why| format!("VCEK rejected: {why}"))?;
    let at = rfc3339(resp.fetched_at);
    let origin = Origin {
        kind: "thim".into(),
        url: Some(url.to_string()),
        path: None,
    };
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
    fetch: &dyn Fetch,
    base: &str,
    product: Product,
    report: &SnpReport,
    roots: &TrustedRoots,
    now: i64,
) -> Result<Vec<Endorsement>, String> {
    let tcb = report.reported_tcb(product);
    let vcek_url = kds::vcek_url(base, product, &report.chip_id, &tcb);
    let chain_url = kds::cert_chain_url(base, product, false);
    let vcek_resp = fetch.get(&vcek_url, &[]).map_err(|e| e.to_string())?;
    let vcek = AmdCert::parse_der(&vcek_resp.body).map_err(|e| format!("{vcek_url}: VCEK: {e}"))?;
    let chain_resp = fetch.get(&chain_url, &[]).map_err(|e| e.to_string())?;
    let text = std::str::from_utf8(&chain_resp.body)
        .map_err(|_| format!("{chain_url}: cert_chain is not PEM text"))?;
    let ders = pem_certificates(text).map_err(|e| format!("{chain_url}: {e}"))?;
    let mut certs = vec![vcek];
    for (i, d) in ders.iter().enumerate() {
        certs
            .push(AmdCert::parse_der(d).map_err(|e| format!("{chain_url}: certificate {i}: {e}"))?);
    }
    check_certs(report, &certs, roots, now).map_err(|why| format!("VCEK rejected: {why}"))?;
    let mut out = Vec::new();
    for (i, c) in certs.iter().enumerate() {
        let (url, resp) = if i == 0 {
            (&vcek_url, &vcek_resp)
        } else {
            (&chain_url, &chain_resp)
        };
        let origin = Origin {
            kind: "kds".into(),
            url: Some(url.clone()),
            path: None,
        };
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
