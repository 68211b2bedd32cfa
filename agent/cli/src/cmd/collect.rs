// SPDX-License-Identifier: Apache-2.0
//! `thimble collect`: REPORT_DATA from the nonce, a report from configfs-tsm or /dev/sev-guest
//! (or the simulated guest), endorsements from the host's certificate table, THIM or KDS, the
//! ARK's CRL from the host's table, the cache or KDS, and one bundle written atomically.

use std::path::Path;
use std::time::Duration;

use thimble_collect::cache::{EndorsementCache, hit_line as cache_hit_line};
use thimble_collect::endorse::{
    CrlSource, EndorseConfig, check_certs, fetch_amd_endorsements, settle_amd_crl,
};
use thimble_collect::http::{HttpClient, HttpConfig};
use thimble_collect::sev_guest::{LinuxSevGuest, SevGuestClient, SevGuestDevice};
use thimble_collect::tsm::{ConfigFs, Provider, RealConfigFs, TsmClient, TsmError, TsmRequest};
use thimble_evidence::bundle::{
    Agent, Bundle, Claims, Collection, Endorsement, Evidence, Nonce, Origin, Tee, b64,
};
use thimble_evidence::report_data::{self, Derivation};
use thimble_evidence::snp::{AmdCert, CertKind, CertTable, SnpReport};
use thimble_evidence::time_fmt::format_unix;
use thimble_sim::emulator::{Emulator, EmulatorConfig};
use thimble_sim::fake_sev_guest::{FakeSevGuest, sim_cert_table};
use thimble_sim::fake_tsm::{FakeTsm, KernelProfile};
use thimble_sim::signer::{ReportSigner, ReportTemplate};

use crate::args::{CollectArgs, SimulateArg, SourceArg};
use crate::cmd::collect_azure;
use crate::cmd::collect_tdx::{self, TdxSource};
use crate::common;
use crate::error::CliError;
use crate::exit;
use crate::io::{parse_hex, write_output};
use crate::output::warn;

/// Where fetched endorsements are cached unless `--cache-dir` or `--no-cache` says otherwise.
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/thimble";

/// Where the bundle goes: `-o`, which `collect` requires (`exec` fills in its default).
pub fn output_path(a: &CollectArgs) -> Result<std::path::PathBuf, CliError> {
    a.output.clone().ok_or_else(|| {
        CliError::Usage("collect needs -o FILE (or -o - for standard output)".into())
    })
}

/// The agent identity recorded in bundles.
pub fn agent() -> Agent {
    Agent {
        name: "thimble".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    }
}

/// Claims for a report, decoding the TCB with the product the report or its certificates name.
pub fn claims_for(report: &SnpReport, certs: &[AmdCert]) -> serde_json::Value {
    let product = report
        .product_hint()
        .or_else(|| certs.iter().find_map(|c| c.product()));
    serde_json::to_value(Claims::from_report(report, product)).unwrap_or_default()
}

/// Whether this collection is a TDX one, and through which source: `--source tdx-guest`, a
/// configfs-tsm whose provider is `tdx_guest`, or (in `auto`, with no SEV-SNP source)
/// `/dev/tdx_guest`.
fn tdx_source(a: &CollectArgs) -> Result<Option<TdxSource>, CliError> {
    let tsm_provider = || {
        TsmClient::new(RealConfigFs, &a.location.tsm_root)
            .probe()
            .ok()
    };
    Ok(match a.source {
        SourceArg::TdxGuest => Some(TdxSource::DeviceQgs),
        SourceArg::SevGuest | SourceArg::Vtpm => None,
        SourceArg::ConfigfsTsm => {
            (tsm_provider() == Some(Provider::TdxGuest)).then_some(TdxSource::ConfigfsTsm)
        }
        SourceArg::Auto => match tsm_provider() {
            Some(Provider::TdxGuest) => Some(TdxSource::ConfigfsTsm),
            Some(Provider::SevGuest) => None,
            _ if a.location.device.exists() => None,
            _ if a.tdx_device.exists() => Some(TdxSource::DeviceQgs),
            _ => None,
        },
    })
}

/// What a source produced.
struct Raw {
    report: Vec<u8>,
    auxblob: Option<Vec<u8>>,
    collection: Collection,
}

/// REPORT_DATA and the nonce record, from the flags.
fn plan_report_data(a: &CollectArgs) -> Result<([u8; 64], Nonce), CliError> {
    if let Some(rd) = &a.report_data {
        let v = parse_hex("--report-data", rd)?;
        let arr: [u8; 64] = v.as_slice().try_into().map_err(|_| {
            CliError::Usage(format!(
                "--report-data takes exactly 64 bytes (128 hex digits), got {}",
                v.len()
            ))
        })?;
        return Ok((
            arr,
            Nonce {
                value: hex::encode(arr),
                generated: false,
                report_data_derivation: Derivation::Raw,
            },
        ));
    }
    let (nonce, generated) = match &a.nonce {
        Some(n) => {
            let v = parse_hex("--nonce", n)?;
            if v.is_empty() {
                return Err(CliError::Usage("--nonce must not be empty".into()));
            }
            (v, false)
        }
        None => {
            let mut v = [0u8; 32];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut v)
                .map_err(|_| CliError::Other("the system random generator failed".into()))?;
            (v.to_vec(), true)
        }
    };
    Ok((
        report_data::from_nonce(&nonce),
        Nonce {
            value: hex::encode(&nonce),
            generated,
            report_data_derivation: Derivation::Sha512,
        },
    ))
}

/// configfs-tsm. `Ok(None)` means "not usable here" (no configfs, no provider, another TEE).
fn via_tsm<F: ConfigFs>(
    client: &TsmClient<F>,
    rd: &[u8; 64],
    privlevel: Option<u32>,
) -> Result<Option<Raw>, CliError> {
    let mut req = TsmRequest::new(*rd);
    req.privlevel = privlevel;
    req.expected_provider = Some(Provider::SevGuest);
    match client.get_report(&req) {
        Ok(r) => Ok(Some(Raw {
            report: r.outblob,
            auxblob: r.auxblob.filter(|a| !a.is_empty()),
            collection: Collection {
                source: "configfs-tsm".into(),
                provider: Some(r.provider.as_str().to_string()),
                privlevel: r.privlevel,
                generation: Some(r.generation),
                path: Some(client.root().display().to_string()),
                ..Collection::default()
            },
        })),
        Err(
            TsmError::Unavailable { .. }
            | TsmError::NoProvider { .. }
            | TsmError::ProviderMismatch { .. },
        ) => Ok(None),
        Err(e) => Err(CliError::collection("configfs-tsm", e)),
    }
}

fn via_device<D: SevGuestDevice>(
    dev: D,
    label: &str,
    rd: &[u8; 64],
    vmpl: u32,
) -> Result<Raw, CliError> {
    let mut client = SevGuestClient::new(dev);
    let (report, certs) = client
        .get_ext_report(rd, vmpl)
        .map_err(|e| CliError::collection("sev-guest", e))?;
    Ok(Raw {
        report,
        auxblob: (!certs.is_empty()).then_some(certs),
        collection: Collection {
            source: "sev-guest".into(),
            provider: None,
            privlevel: Some(vmpl),
            generation: None,
            path: Some(label.to_string()),
            ..Collection::default()
        },
    })
}

fn open_device(path: &Path) -> Result<LinuxSevGuest, CliError> {
    LinuxSevGuest::open(path).map_err(|e| CliError::collection("sev-guest", e))
}

/// The simulated guest. `--source configfs-tsm` goes through the configfs-tsm client against the
/// kernel-faithful fake, whose host attaches the certificate table as `auxblob` (so no fetch is
/// needed); otherwise the sev-guest client runs against the device fake with a host that
/// attaches nothing, as on Azure, so that THIM is exercised.
fn simulated_source(a: &CollectArgs, rd: &[u8; 64]) -> Result<Raw, CliError> {
    if a.source == SourceArg::ConfigfsTsm {
        let signer = ReportSigner::sim();
        let generator = Box::new(move |inblob: &[u8; 64], privlevel: u32| {
            let template = ReportTemplate {
                vmpl: privlevel,
                ..ReportTemplate::default()
            };
            Ok((signer.sign(&template, inblob), sim_cert_table()))
        });
        let fake = FakeTsm::new(KernelProfile::Linux6_10, Provider::SevGuest, generator)
            .with_root("/simulated/sys/kernel/config/tsm/report");
        let client = TsmClient::new(fake.clone(), fake.root().to_path_buf());
        return via_tsm(&client, rd, a.privlevel)?.ok_or_else(|| {
            CliError::Other("the simulated configfs-tsm has no sev_guest provider".into())
        });
    }
    let dev = FakeSevGuest::new().with_cert_table(Vec::new());
    via_device(
        dev,
        "simulated:/dev/sev-guest",
        rd,
        a.privlevel.unwrap_or(0),
    )
}

pub fn kernel_release() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_string())
}

pub fn run(a: CollectArgs) -> Result<u8, CliError> {
    let Some(every) = a.every else {
        return run_once(a);
    };
    let output = output_path(&a)?;
    if output.as_os_str() == "-" {
        return Err(CliError::Usage(
            "--every writes to a file; -o - is not possible".into(),
        ));
    }
    // Usage errors do not get better with time: stop on the first round that has one.
    loop {
        match run_once(a.clone()) {
            Ok(exit::OK) => crate::output::info(&format!(
                "bundle written to {}; next collection in {every} s",
                output.display()
            )),
            Ok(code) => warn(&format!(
                "collection failed (exit {code}); keeping the previous bundle, retrying in {every} s"
            )),
            Err(e @ CliError::Usage(_)) => return Err(e),
            Err(e) => {
                crate::output::print_error(&e);
                warn(&format!(
                    "collection failed (exit {}); keeping the previous bundle, retrying in {every} s",
                    e.exit_code()
                ));
            }
        }
        std::thread::sleep(std::time::Duration::from_secs(every));
    }
}

fn run_once(a: CollectArgs) -> Result<u8, CliError> {
    // Checked before anything touches a device, so a usage error costs no guest request.
    output_path(&a)?;
    let (rd, nonce) = plan_report_data(&a)?;
    // A simulation is of one TEE; a source of another is a contradiction, not a hint.
    let fits = match a.simulate {
        None => true,
        Some(SimulateArg::Snp) => matches!(
            a.source,
            SourceArg::Auto | SourceArg::ConfigfsTsm | SourceArg::SevGuest
        ),
        Some(SimulateArg::Tdx) => matches!(
            a.source,
            SourceArg::Auto | SourceArg::ConfigfsTsm | SourceArg::TdxGuest
        ),
        Some(SimulateArg::AzureSnp | SimulateArg::AzureTdx) => {
            matches!(a.source, SourceArg::Auto | SourceArg::Vtpm)
        }
    };
    if !fits {
        let name = clap::ValueEnum::to_possible_value(&a.source)
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        return Err(CliError::Usage(format!(
            "--source {name} is not a source of the simulated TEE"
        )));
    }
    if a.simulate == Some(SimulateArg::Tdx) {
        return collect_tdx::run(&a, rd, nonce, None);
    }
    if matches!(
        a.simulate,
        Some(SimulateArg::AzureSnp | SimulateArg::AzureTdx)
    ) || a.source == SourceArg::Vtpm
    {
        return collect_azure::run(&a, rd, nonce);
    }
    if a.simulate.is_none() {
        if let Some(source) = tdx_source(&a)? {
            return collect_tdx::run(&a, rd, nonce, Some(source));
        }
        // An Azure CVM behind the paravisor has no guest device and no configfs provider; its
        // evidence is in the vTPM.
        let tsm_usable = TsmClient::new(RealConfigFs, &a.location.tsm_root)
            .probe()
            .is_ok();
        if a.source == SourceArg::Auto
            && !tsm_usable
            && !a.location.device.exists()
            && collect_azure::detect(&a)
        {
            return collect_azure::run(&a, rd, nonce);
        }
    }
    let simulated = a.simulate.is_some();

    // The simulation replaces the device and the network endpoints, and nothing else: the same
    // client, endorsement and bundle code runs.
    let mut imds = a
        .imds
        .clone()
        .unwrap_or_else(|| thimble_collect::endorse::DEFAULT_IMDS_BASE.into());
    let mut kds = a
        .kds
        .clone()
        .unwrap_or_else(|| thimble_evidence::kds::DEFAULT_KDS_BASE.into());
    let _emulator: Option<Emulator> = match a.simulate {
        Some(SimulateArg::Snp) => {
            let emu = Emulator::start(EmulatorConfig::sim()).map_err(|e| {
                CliError::Other(format!("cannot start the THIM emulator on loopback: {e}"))
            })?;
            // Endpoints given on the command line win, so that tests can aim a simulated guest at
            // an emulator with faults.
            if a.imds.is_none() {
                imds = emu.base_url();
            }
            if a.kds.is_none() {
                kds = emu.base_url();
            }
            Some(emu)
        }
        Some(SimulateArg::Tdx | SimulateArg::AzureSnp | SimulateArg::AzureTdx) | None => None,
    };

    let raw = if simulated {
        simulated_source(&a, &rd)?
    } else {
        let tsm = TsmClient::new(RealConfigFs, &a.location.tsm_root);
        match a.source {
            // TDX and Azure sources were dispatched before this point.
            SourceArg::TdxGuest | SourceArg::Vtpm => {
                return Err(CliError::NoTee(format!(
                    "{} is not an Intel TDX guest device",
                    a.tdx_device.display()
                )));
            }
            SourceArg::ConfigfsTsm => via_tsm(&tsm, &rd, a.privlevel)?.ok_or_else(|| {
                CliError::NoTee(format!(
                    "configfs-tsm at {} has no sev_guest provider (run `thimble detect` for details)",
                    a.location.tsm_root.display()
                ))
            })?,
            SourceArg::SevGuest => {
                via_device(open_device(&a.location.device)?, &a.location.device.display().to_string(), &rd, a.privlevel.unwrap_or(0))?
            }
            SourceArg::Auto => match via_tsm(&tsm, &rd, a.privlevel)? {
                Some(r) => r,
                None if a.location.device.exists() => via_device(
                    open_device(&a.location.device)?,
                    &a.location.device.display().to_string(),
                    &rd,
                    a.privlevel.unwrap_or(0),
                )?,
                None => {
                    return Err(CliError::NoTee(format!(
                        "neither configfs-tsm ({}) with a provider, nor {}, nor {}, nor a vTPM holding an Azure HCL report is present (run `thimble detect` for details; on a machine without a TEE, `--simulate snp|tdx|azure-snp|azure-tdx` runs a simulated guest)",
                        a.location.tsm_root.display(),
                        a.location.device.display(),
                        a.tdx_device.display()
                    )));
                }
            },
        }
    };

    let report = SnpReport::parse(&raw.report).map_err(|e| CliError::Collection {
        source_name: raw.collection.source.clone(),
        source: Box::new(e),
    })?;
    if report.report_data != rd {
        // The interface handed back a report for other data: a racing writer or a broken host.
        return Err(CliError::Collection {
            source_name: raw.collection.source.clone(),
            source: format!(
                "the report's REPORT_DATA {} is not the {} requested",
                hex::encode(report.report_data),
                hex::encode(rd)
            )
            .into(),
        });
    }

    let mut attached = Vec::new();
    let mut attached_crls = Vec::new();
    let mut table_log = Vec::new();
    let mut endorsements = Vec::new();
    if let Some(aux) = &raw.auxblob {
        match CertTable::parse(aux) {
            Ok(table) => {
                for entry in table.entries {
                    if entry.kind == CertKind::Crl {
                        attached_crls.push(entry.data.clone());
                    }
                    let origin_kind = if raw.collection.source == "configfs-tsm" {
                        "auxblob"
                    } else {
                        "ext-report"
                    };
                    endorsements.push(Endorsement::der(
                        entry.kind.into(),
                        &entry.data,
                        Origin {
                            kind: origin_kind.into(),
                            url: None,
                            path: None,
                        },
                        Some(format_unix(common::now())),
                    ));
                    if let Ok(c) = AmdCert::parse_der(&entry.data) {
                        attached.push(c);
                    }
                }
            }
            Err(e) => {
                let line = format!(
                    "auxblob: the host's certificate table is malformed and was ignored: {e}"
                );
                warn(&line);
                table_log.push(line);
            }
        }
    }

    let roots = common::roots(simulated || a.insecure_allow_simulated);
    let mut log = table_log;
    let cache = match (&a.cache_dir, a.no_cache, simulated) {
        (_, true, _) | (None, false, true) => None,
        (Some(dir), false, _) => Some(EndorsementCache::new(dir)),
        (None, false, false) => Some(EndorsementCache::new(DEFAULT_CACHE_DIR)),
    };
    let now = common::now();
    // --deadline bounds the whole gathering (THIM, every KDS attempt and the CRL together), not
    // each request. THIM may use at most half of it: IMDS is on the host and answers at once
    // when it exists, so a THIM that hangs must leave time for the KDS fallback.
    let deadline = Duration::from_secs(a.deadline.max(1));
    let overall_end = std::time::Instant::now() + deadline;
    let http = |proxy: bool, own: Duration| {
        HttpClient::new(HttpConfig {
            per_request_timeout: Duration::from_secs(a.timeout.max(1)),
            deadline: own,
            use_proxy_env: proxy,
            overall_end: Some(overall_end),
            ..HttpConfig::default()
        })
    };
    // KDS may need the operator's proxy; IMDS is never reached through one.
    let kds_client = http(!simulated, deadline);
    let attached_verify =
        !attached.is_empty() && check_certs(&report, &attached, &roots, now).is_ok();
    let cached = if a.offline || attached_verify {
        None
    } else {
        cache.as_ref().and_then(|c| {
            let (entry, certs) = c.lookup(&report, now)?;
            let path = c.path_for(&report)?;
            match check_certs(&report, &certs, &roots, now) {
                Ok(()) => Some((entry, path)),
                Err(why) => {
                    log.push(format!("cache: entry {} ignored: {why}", path.display()));
                    None
                }
            }
        })
    };
    if a.offline {
        log.push("offline: no endorsements fetched".to_string());
    } else if let Some((entry, path)) = cached {
        log.push(cache_hit_line(&entry, &path));
        endorsements.extend(entry.endorsements);
    } else {
        let thim_client = http(false, if a.no_kds { deadline } else { deadline / 2 });
        let cfg = EndorseConfig {
            imds_base: imds,
            kds_base: kds.clone(),
            use_thim: !a.no_thim,
            use_kds: !a.no_kds,
            prefer_attached: true,
        };
        let got = fetch_amd_endorsements(
            &cfg,
            &thim_client,
            &kds_client,
            &report,
            &attached,
            &roots,
            now,
        )
        .map_err(CliError::Endorsements)?;
        log.extend(got.log);
        if let (Some(c), Some(source @ ("thim" | "kds"))) = (&cache, got.used.as_deref()) {
            match c.store(&report, source, &got.endorsements, now) {
                Ok(Some(path)) => log.push(format!("cache: stored in {}", path.display())),
                Ok(None) => {}
                // A read-only or missing cache directory must not fail a collect.
                Err(e) => warn(&format!("{e}: {}", e.source)),
            }
        }
        endorsements.extend(got.endorsements);
    }

    let certs: Vec<AmdCert> = endorsements
        .iter()
        .filter_map(|e| e.bytes().ok())
        .filter_map(|b| AmdCert::parse_der(&b).ok())
        .collect();
    let crl_source = if a.offline {
        CrlSource::Disabled { why: "offline" }
    } else if a.no_kds {
        CrlSource::Disabled { why: "--no-kds" }
    } else {
        CrlSource::Kds {
            fetch: &kds_client,
            base: &kds,
        }
    };
    let crl = settle_amd_crl(
        crl_source,
        cache.as_ref(),
        &report,
        &certs,
        &attached_crls,
        &roots,
        now,
    );
    if let Some(line) = &crl.revoked {
        warn(line);
    }
    log.extend(crl.log);
    endorsements.extend(crl.endorsement);
    let bundle = Bundle {
        format: thimble_evidence::bundle::FORMAT.into(),
        version: thimble_evidence::bundle::VERSION,
        tee: Tee::SevSnp,
        simulated,
        agent: agent(),
        created_at: format_unix(common::now()),
        kernel_release: kernel_release(),
        collection: raw.collection,
        nonce: Some(nonce),
        evidence: Evidence {
            snp_report: Some(b64(&raw.report)),
            auxblob: raw.auxblob.as_deref().map(b64),
            ..Evidence::default()
        },
        endorsements,
        endorsement_log: log,
        claims: claims_for(&report, &certs),
    };
    let path = output_path(&a)?;
    write_output(&path, &bundle.to_json())?;
    crate::output::collected(&bundle, &path);
    Ok(exit::OK)
}
