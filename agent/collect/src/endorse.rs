// SPDX-License-Identifier: Apache-2.0
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
//!
//! Once the chain is settled, [`settle_amd_crl`] adds the CRL of the ARK it ended at: the host's
//! table entry when that is the ARK's and current, else the on-disk cache, else KDS
//! (`/vcek/v1/{product}/crl`, or `/vlek/` for a VLEK chain). A CRL is used only when it is
//! issued and signed by that ARK (`thimble_verify::amd_crl`). A CRL that cannot be had is logged
//! and the collection goes on: revocation is the verifier's decision, and it can ask for a CRL.

use std::time::SystemTime;

use thimble_evidence::bundle::{Endorsement, EndorsementKind, Origin};
use thimble_evidence::cert_file::pem_certificates;
use thimble_evidence::crl::Crl;
use thimble_evidence::kds;
use thimble_evidence::snp::cert::AmdRole;
use thimble_evidence::snp::{AmdCert, Product, SigningKey, SnpReport};
use thimble_evidence::thim::ThimAmdCertification;
use thimble_evidence::time_fmt::format_unix;
use thimble_verify::amd_crl::{MAX_CRL_CANDIDATES, authenticate_amd_crl, lists};
use thimble_verify::chain::{VerifiedChain, verify_leaf};
use thimble_verify::signature::verify_report_signature;
use thimble_verify::snp::verify_report;
use thimble_verify::{Options, Policy, TrustedRoots};

use crate::cache::{EndorsementCache, crl_hit_line};
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
    Kds { fetch: &'a dyn Fetch, base: &'a str },
    /// Fetching is off (`--offline`, `--no-kds`), for the reason given.
    Disabled { why: &'a str },
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

    if let Some(c) = cache {
        let path = c.crl_path_for(chain.product, vlek, &chain.root);
        if let Some((entry, bytes)) = c.lookup_crl(chain.product, vlek, &chain.root, now) {
            match authenticate_amd_crl(&bytes, &chain.intermediate, &chain.root) {
                Ok(crl) if !current(&crl) => out.log.push(format!(
                    "cache: CRL entry {} ignored: past its nextUpdate",
                    path.display()
                )),
                Ok(crl) => {
                    if lists(&crl, &chain.intermediate) {
                        let line = revoked_line(&crl, "the cache");
                        out.log.push(line.clone());
                        out.revoked = Some(line);
                    } else {
                        out.log.push(crl_hit_line(&entry, &path));
                    }
                    out.endorsement = entry.endorsements.into_iter().next();
                    return out;
                }
                Err(why) => out.log.push(format!(
                    "cache: CRL entry {} ignored: {why}",
                    path.display()
                )),
            }
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
        Origin {
            kind: "kds".into(),
            url: Some(url.clone()),
            path: None,
        },
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
