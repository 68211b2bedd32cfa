// SPDX-License-Identifier: Apache-2.0
//! `thimble collect` for Intel TDX: a quote from configfs-tsm (`tdx_guest`), or a TDREPORT from
//! `/dev/tdx_guest` quoted by the host's Quote Generation Service over vsock, or the simulated
//! TD; then the DCAP collateral (TCB info, QE identity, PCK CRL, root CA CRL) from Azure THIM or
//! Intel PCS, checked against the quote before it goes into the bundle.

use std::sync::Arc;
use std::time::{Duration, Instant};

use thimble_collect::endorse::EndorseError;
use thimble_collect::http::{HttpClient, HttpConfig};
use thimble_collect::intel::{
    CollateralService, FetchedItem, IntelCollateralConfig, IntelSettings, PckCa, PckCertId,
    fetch_pck_cert, fetch_tdx_collateral, qcnl,
};
use thimble_collect::qgs::{
    DEFAULT_CONF_PATH, DEFAULT_PORT, QgsClient, QgsTransport, VsockTransport, configured_port,
};
use thimble_collect::tdx_guest::{LinuxTdxGuest, TdxGuestClient, TdxGuestDevice};
use thimble_collect::tsm::{ConfigFs, Provider, RealConfigFs, TsmClient, TsmRequest};
use thimble_evidence::bundle::{
    Bundle, Collection, Endorsement, EndorsementKind, Evidence, Nonce, Origin, Tee, b64,
};
use thimble_evidence::tdx::quote::TdxQuote;
use thimble_evidence::tdx::{PckCaType, PckInfo, TdxClaims};
use thimble_evidence::time_fmt::format_unix;
use thimble_sim::fake_qgs::FakeQgs;
use thimble_sim::fake_tdx_guest::FakeTdxGuest;
use thimble_sim::fake_tsm::{FakeTsm, KernelProfile};
use thimble_sim::tdx_signer::{SimTdx, TdQuoteTemplate};
use thimble_verify::bundle::{VerifyOptions, tdx_collateral};
use thimble_verify::roots::IntelRoots;
use thimble_verify::tdx::verify_quote;

use crate::args::{CollectArgs, IntelServiceArg, SourceArg};
use crate::cmd::collect::{agent, kernel_release, output_path};
use crate::common;
use crate::error::CliError;
use crate::exit;
use crate::io::write_output;
use crate::output::warn;

/// Where the quote comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TdxSource {
    ConfigfsTsm,
    /// `/dev/tdx_guest` for the TDREPORT, the host's QGS over vsock for the quote.
    DeviceQgs,
}

struct Raw {
    quote: Vec<u8>,
    td_report: Option<Vec<u8>>,
    collection: Collection,
}

fn via_tsm<F: ConfigFs>(client: &TsmClient<F>, rd: &[u8; 64]) -> Result<Raw, CliError> {
    let mut req = TsmRequest::new(*rd);
    req.expected_provider = Some(Provider::TdxGuest);
    let r = client
        .get_report(&req)
        .map_err(|e| CliError::collection("configfs-tsm", e))?;
    Ok(Raw {
        quote: r.outblob,
        td_report: None,
        collection: Collection {
            source: "configfs-tsm".into(),
            provider: Some(r.provider.as_str().to_string()),
            privlevel: None,
            generation: Some(r.generation),
            path: Some(client.root().display().to_string()),
            ..Collection::default()
        },
    })
}

fn via_device_qgs<D: TdxGuestDevice, T: QgsTransport>(
    dev: D,
    qgs: T,
    label: String,
    rd: &[u8; 64],
) -> Result<Raw, CliError> {
    let td_report = TdxGuestClient::new(dev)
        .get_report(rd)
        .map_err(|e| CliError::collection("tdx-guest", e))?;
    let report: &[u8; 1024] = td_report
        .as_slice()
        .try_into()
        .map_err(|_| CliError::Other("the TDREPORT is not 1024 bytes".into()))?;
    let quote = QgsClient::new(qgs)
        .get_quote(report)
        .map_err(|e| CliError::collection("qgs", e))?;
    Ok(Raw {
        quote,
        td_report: Some(td_report),
        collection: Collection {
            source: "tdx-guest+qgs".into(),
            provider: None,
            privlevel: None,
            generation: None,
            path: Some(label),
            ..Collection::default()
        },
    })
}

fn qgs_port(a: &CollectArgs) -> Result<u32, CliError> {
    match a.qgs_port {
        Some(p) => Ok(p),
        None if std::path::Path::new(DEFAULT_CONF_PATH).exists() => {
            configured_port(std::path::Path::new(DEFAULT_CONF_PATH))
                .map_err(|e| CliError::collection("qgs", e))
        }
        None => Ok(DEFAULT_PORT),
    }
}

fn simulated(a: &CollectArgs, sim: &Arc<SimTdx>, rd: &[u8; 64]) -> Result<Raw, CliError> {
    if a.source == SourceArg::TdxGuest {
        let qgs = FakeQgs::new().with_quote_maker(Arc::clone(sim).quote_maker());
        return via_device_qgs(
            FakeTdxGuest::new(),
            qgs,
            "simulated:/dev/tdx_guest".into(),
            rd,
        );
    }
    let generator = Arc::clone(sim).tsm_generator(TdQuoteTemplate::default());
    let fake = FakeTsm::new(KernelProfile::Linux6_10, Provider::TdxGuest, generator)
        .with_root("/simulated/sys/kernel/config/tsm/report");
    let client = TsmClient::new(fake.clone(), fake.root().to_path_buf());
    via_tsm(&client, rd)
}

fn endorsement(kind: EndorsementKind, item: &FetchedItem) -> Endorsement {
    let origin = Origin {
        kind: item.source.as_str().into(),
        url: Some(item.url.clone()),
        path: None,
    };
    // JSON bodies are kept byte for byte; CRLs as DER whatever the service sent.
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
        .and_then(thimble_collect::http::cache_max_age);
    e
}

/// The PCK identity of a quote whose certification data carries the encrypted PPID (nested
/// type 2 or 3: PPID, CPUSVN, PCESVN, PCEID) instead of the PCK chain.
fn pck_cert_id(quote: &TdxQuote) -> Option<PckCertId> {
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

/// Runs a TDX collection into a bundle.
pub fn run(
    a: &CollectArgs,
    rd: [u8; 64],
    nonce: Nonce,
    source: Option<TdxSource>,
) -> Result<u8, CliError> {
    let sim = a.simulate.is_some().then(|| Arc::new(SimTdx::load()));
    // SEV-SNP settings have no meaning for a TD; say so rather than drop them in silence.
    for (flag, set) in [
        ("--privlevel", a.privlevel.is_some()),
        ("--cache-dir", a.cache_dir.is_some()),
        ("--no-thim", a.no_thim),
        ("--no-kds", a.no_kds),
        ("--kds", a.kds.is_some()),
    ] {
        if set {
            warn(&format!(
                "{flag} applies to SEV-SNP collection and is ignored for TDX"
            ));
        }
    }
    let raw = match (&sim, source) {
        (Some(s), _) => simulated(a, s, &rd)?,
        (None, Some(TdxSource::ConfigfsTsm) | None) => {
            via_tsm(&TsmClient::new(RealConfigFs, &a.location.tsm_root), &rd)?
        }
        (None, Some(TdxSource::DeviceQgs)) => {
            let dev = LinuxTdxGuest::open(&a.tdx_device)
                .map_err(|e| CliError::collection("tdx-guest", e))?;
            let port = qgs_port(a)?;
            via_device_qgs(
                dev,
                VsockTransport::new(port),
                a.tdx_device.display().to_string(),
                &rd,
            )?
        }
    };
    let quote =
        TdxQuote::parse(&raw.quote).map_err(|e| CliError::collection(&raw.collection.source, e))?;
    if quote.body.report_data != rd {
        return Err(CliError::Collection {
            source_name: raw.collection.source.clone(),
            source: format!(
                "the quote's REPORT_DATA {} is not the {} requested",
                hex::encode(quote.body.report_data),
                hex::encode(rd)
            )
            .into(),
        });
    }

    let now = common::now();
    let gathered = if a.offline {
        Gathered {
            log: vec!["offline: no collateral fetched".to_string()],
            ..Gathered::default()
        }
    } else {
        gather_collateral(a, &raw.quote, &quote, sim.as_ref(), None, now, Some(rd))?
    };
    let pck = gathered.pck.or_else(|| {
        quote
            .pck_chain
            .as_ref()
            .and_then(|c| c.first())
            .and_then(|d| PckInfo::from_der(d).ok())
    });
    let bundle = Bundle {
        format: thimble_evidence::bundle::FORMAT.into(),
        version: thimble_evidence::bundle::VERSION,
        tee: Tee::Tdx,
        simulated: sim.is_some(),
        agent: agent(),
        created_at: format_unix(now),
        kernel_release: kernel_release(),
        collection: raw.collection,
        nonce: Some(nonce),
        evidence: Evidence {
            tdx_quote: Some(b64(&raw.quote)),
            td_report: raw.td_report.as_deref().map(b64),
            ..Evidence::default()
        },
        endorsements: gathered.endorsements,
        endorsement_log: gathered.log,
        claims: serde_json::to_value(TdxClaims::from_quote(&quote, pck.as_ref()))
            .unwrap_or_default(),
    };
    let path = output_path(a)?;
    write_output(&path, &bundle.to_json())?;
    crate::output::collected(&bundle, &path);
    Ok(exit::OK)
}

/// The DCAP collateral for a quote, and what was learnt on the way.
#[derive(Default)]
pub struct Gathered {
    pub endorsements: Vec<Endorsement>,
    pub log: Vec<String>,
    /// The PCK's platform data, when the quote or the local THIM gave the certificate.
    pub pck: Option<PckInfo>,
}

/// Fetches the collateral for `quote` (from `intel_base` when given, else the configured
/// service, else the simulation's emulator) and checks that it verifies the quote before
/// returning it. `expected_report_data` is the REPORT_DATA the quote must carry, when the
/// caller chose it (not on Azure, where it is the runtime data's digest).
pub fn gather_collateral(
    a: &CollectArgs,
    quote_bytes: &[u8],
    quote: &TdxQuote,
    sim: Option<&Arc<SimTdx>>,
    intel_base: Option<String>,
    now: i64,
    expected_report_data: Option<[u8; 64]>,
) -> Result<Gathered, CliError> {
    let mut log = Vec::new();
    let mut endorsements = Vec::new();
    let mut pck = quote
        .pck_chain
        .as_ref()
        .and_then(|c| c.first())
        .and_then(|d| PckInfo::from_der(d).ok());
    let _emulator;
    {
        let mut settings = IntelSettings::default();
        let base = match (sim, a.intel_collateral_url.clone().or(intel_base)) {
            (_, Some(url)) => Some(url),
            (Some(s), None) => {
                let emu = s.intel_emulator_config(now).start().map_err(|e| {
                    CliError::Other(format!(
                        "cannot start the collateral emulator on loopback: {e}"
                    ))
                })?;
                let url = emu.base_url();
                _emulator = Some(emu);
                Some(url)
            }
            (None, None) => None,
        };
        settings.service = match (a.intel_collateral, base) {
            // A PCS base other than Intel's is a PCCS (or the simulation's emulator): it serves
            // the root CA CRL itself, as QCNL expects of a PCCS, so nothing goes to Intel.
            // Intel's own PCS does not serve the root CA CRL: that comes from Intel's
            // distribution point, as with no URL at all.
            (Some(IntelServiceArg::Pcs), Some(b))
                if b.contains("api.trustedservices.intel.com") =>
            {
                Some(CollateralService::pcs(b))
            }
            (Some(IntelServiceArg::Pcs), Some(b)) => Some(CollateralService::Pcs {
                root_ca_crl_url: format!(
                    "{}/sgx/certification/v4/rootcacrl",
                    b.trim_end_matches('/')
                ),
                base: b,
            }),
            (Some(IntelServiceArg::Pcs), None) => Some(CollateralService::pcs(
                thimble_collect::intel::DEFAULT_PCS_BASE,
            )),
            (_, Some(b)) => Some(CollateralService::thim(b)),
            (Some(IntelServiceArg::Thim), None) => Some(CollateralService::thim(
                thimble_collect::intel::DEFAULT_THIM_BASE,
            )),
            (None, None) => None,
        };
        settings.imds_base = a.imds.clone();
        // The operator's QCNL file counts only on a real guest; the simulation is self-contained.
        let qcnl = if sim.is_some() {
            None
        } else {
            let path = qcnl::conf_path(std::env::var_os("QCNL_CONF_PATH").as_deref());
            qcnl::load(&path).map_err(|e| CliError::Usage(format!("{e}")))?
        };
        let cfg = IntelCollateralConfig::resolve(&settings, qcnl.as_ref());
        log.extend(cfg.describe());
        let deadline = Duration::from_secs(a.deadline.max(1));
        let http = HttpClient::new(cfg.http_config(&HttpConfig {
            per_request_timeout: Duration::from_secs(a.timeout.max(1)),
            deadline,
            use_proxy_env: sim.is_none(),
            overall_end: Some(Instant::now() + deadline),
            ..HttpConfig::default()
        }));

        if pck.is_none() {
            // No PCK chain in the quote: ask the local THIM for the PCK certificate.
            let id = pck_cert_id(quote).ok_or_else(|| {
                CliError::Endorsements(EndorseError {
                    attempts: vec!["the quote carries neither a PCK chain nor the platform identity to fetch one".into()],
                })
            })?;
            let resp = fetch_pck_cert(&cfg, &http, &id).map_err(|e| {
                CliError::Endorsements(EndorseError {
                    attempts: vec![e.to_string()],
                })
            })?;
            pck = PckInfo::from_der(&resp.pck_cert_der).ok();
            let origin = Origin {
                kind: "thim".into(),
                url: Some(resp.item.url.clone()),
                path: None,
            };
            let mut e = Endorsement::der(
                EndorsementKind::Certificate,
                &resp.pck_cert_der,
                origin.clone(),
                Some(resp.item.retrieved_at.clone()),
            );
            e.cache_max_age_secs = resp.cache_max_age_secs;
            endorsements.push(e);
            for der in &resp.chain_der {
                endorsements.push(Endorsement::der(
                    EndorsementKind::Certificate,
                    der,
                    origin.clone(),
                    Some(resp.item.retrieved_at.clone()),
                ));
            }
            log.push(format!("pck: PCK certificate from {}", resp.item.url));
        }
        let info = pck.as_ref().ok_or_else(|| {
            CliError::Endorsements(EndorseError {
                attempts: vec!["the PCK certificate has no readable SGX extension".into()],
            })
        })?;
        let ca = match info.ca_type {
            PckCaType::Platform => PckCa::Platform,
            PckCaType::Processor => PckCa::Processor,
        };
        let items = fetch_tdx_collateral(&cfg, &http, &info.fmspc, ca).map_err(|e| {
            CliError::Endorsements(EndorseError {
                attempts: vec![e.to_string()],
            })
        })?;
        endorsements.push(endorsement(EndorsementKind::TcbInfo, &items.tcb_info));
        endorsements.push(endorsement(EndorsementKind::QeIdentity, &items.qe_identity));
        endorsements.push(endorsement(EndorsementKind::PckCrl, &items.pck_crl));
        endorsements.push(endorsement(EndorsementKind::RootCaCrl, &items.root_ca_crl));
        log.extend(items.log);
    }

    let check = Bundle {
        format: thimble_evidence::bundle::FORMAT.into(),
        version: thimble_evidence::bundle::VERSION,
        tee: Tee::Tdx,
        simulated: sim.is_some(),
        agent: agent(),
        created_at: format_unix(now),
        kernel_release: None,
        collection: Collection::default(),
        nonce: None,
        evidence: Evidence::default(),
        endorsements,
        endorsement_log: Vec::new(),
        claims: serde_json::Value::Null,
    };
    {
        // The collateral is hostile input too: check that it verifies this quote before it goes
        // into the bundle. Staleness is reported, not refused: THIM serves an older baseline on
        // purpose, and the verifier decides with --allow-stale-collateral.
        let collateral = tdx_collateral(&check).map_err(|e| CliError::Other(e.message))?;
        let roots = match sim {
            Some(s) => IntelRoots::insecure_custom(s.pki().root_ca_der),
            None if a.insecure_allow_simulated => {
                IntelRoots::insecure_custom(thimble_sim::tdx_signer::sim_tdx_pki().root_ca_der)
            }
            None => VerifyOptions::strict(now).intel_roots,
        };
        let mut policy = thimble_verify::tdx::TdxPolicy {
            allow_debug: true,
            allow_stale_collateral: true,
            ..Default::default()
        };
        policy.report_data = expected_report_data;
        let out = verify_quote(quote_bytes, &collateral, now, &roots, &policy);
        if let Some(e) = out.errors.first() {
            return Err(CliError::Endorsements(EndorseError {
                attempts: vec![format!(
                    "the collateral does not verify the quote: {} ({})",
                    e.message, e.code
                )],
            }));
        }
        log.push(format!(
            "collateral verifies the quote: TCB status {}{}",
            out.tcb_status.as_deref().unwrap_or("unknown"),
            if out.warnings.is_empty() {
                String::new()
            } else {
                format!(" ({})", out.warnings.join("; "))
            }
        ));
    }
    Ok(Gathered {
        endorsements: check.endorsements,
        log,
        pck,
    })
}
