// SPDX-License-Identifier: Apache-2.0
//! `thimble collect`: the flags become a `thimble_collect::CollectRequest`, `--simulate` (in builds
//! with the `simulate` feature) chooses a `thimble_sim::SimEnvironment` instead of the real
//! machine, and the library collects; this
//! module only warns about flags that do not apply to the TEE found, prints, and writes the
//! bundle atomically. `--every` repeats it.

use std::path::PathBuf;
use std::time::Duration;

use thimble_collect::endorse::AmdSource;
use thimble_collect::{
    Binding, CacheChoice, CollectError, CollectRequest, Devices, Environment, EventLogs, Fetching,
    IntelService, NoSource, Plan, SourceChoice, SystemEnvironment,
};
#[cfg(feature = "simulate")]
use thimble_sim::{SimEnvironment, SimMachine, insecure_trust_test_roots};

#[cfg(feature = "simulate")]
use crate::args::SimulateArg;
use crate::args::{CollectArgs, CollectCommandArgs, IntelServiceArg, SourceArg};
use crate::error::CliError;
use crate::exit;
use crate::io::{parse_hex, write_output};
use crate::output::{info, print_error, warn};

/// Where the bundle goes: `-o`, which `collect` requires (`exec` fills in its default).
pub fn output_path(a: &CollectArgs) -> Result<PathBuf, CliError> {
    a.output.clone().ok_or_else(|| {
        CliError::Usage("collect needs -o FILE (or -o - for standard output)".into())
    })
}

/// REPORT_DATA's binding, from `--nonce` or `--report-data` (a random nonce without either).
fn binding(a: &CollectArgs) -> Result<Binding, CliError> {
    if let Some(rd) = &a.report_data {
        let v = parse_hex("--report-data", rd)?;
        let rd: [u8; 64] = v.as_slice().try_into().map_err(|_| {
            CliError::Usage(format!(
                "--report-data takes exactly 64 bytes (128 hex digits), got {}",
                v.len()
            ))
        })?;
        return Ok(Binding::ReportData(rd));
    }
    match &a.nonce {
        None => Ok(Binding::RandomNonce),
        Some(n) => {
            let v = parse_hex("--nonce", n)?;
            if v.is_empty() {
                return Err(CliError::Usage("--nonce must not be empty".into()));
            }
            Ok(Binding::Nonce(v))
        }
    }
}

/// The request the flags describe.
pub(crate) fn request(a: &CollectArgs) -> Result<CollectRequest, CliError> {
    let mut amd_sources = AmdSource::ALL.to_vec();
    amd_sources
        .retain(|s| !(a.no_thim && *s == AmdSource::Thim || a.no_kds && *s == AmdSource::Kds));
    let request = CollectRequest {
        binding: binding(a)?,
        source: match a.source {
            SourceArg::Auto => SourceChoice::Auto,
            SourceArg::ConfigfsTsm => SourceChoice::ConfigfsTsm,
            SourceArg::SevGuest => SourceChoice::SevGuest,
            SourceArg::TdxGuest => SourceChoice::TdxGuest,
            SourceArg::Vtpm => SourceChoice::Vtpm,
        },
        devices: Devices {
            tsm_root: a.location.tsm_root.clone(),
            sev_guest: a.location.device.clone(),
            tdx_guest: a.tdx_device.clone(),
            tpm: a.tpm_device.clone(),
            qgs_port: a.qgs_port,
        },
        privlevel: a.privlevel,
        allow_stale_report: a.allow_stale_report,
        fetching: Fetching {
            offline: a.offline,
            deadline: Duration::from_secs(a.deadline),
            per_request_timeout: Duration::from_secs(a.timeout),
            imds: a.imds.clone(),
            kds: a.kds.clone(),
            amd_sources,
            amd_crl_from_kds: !a.no_kds,
            intel_service: a.intel_collateral.map(|s| match s {
                IntelServiceArg::Thim => IntelService::Thim,
                IntelServiceArg::Pcs => IntelService::Pcs,
            }),
            intel_url: a.intel_collateral_url.clone(),
            ..Fetching::default()
        },
        cache: match (&a.cache_dir, a.no_cache) {
            (_, true) => CacheChoice::Disabled,
            (Some(dir), false) => CacheChoice::Dir(dir.clone()),
            (None, false) => CacheChoice::Default,
        },
        event_logs: event_logs(a),
        progress: crate::output::progress_hook(),
        ..CollectRequest::default()
    };
    #[cfg(feature = "simulate")]
    let request = {
        let mut request = request;
        if a.simulate.is_some() || a.insecure_allow_simulated {
            insecure_trust_test_roots(&mut request);
        }
        request
    };
    Ok(request)
}

/// The event logs to carry: the firmware logs unless `--no-event-logs`, IMA with `--ima-log`.
fn event_logs(a: &CollectArgs) -> EventLogs {
    let defaults = EventLogs::default();
    EventLogs {
        firmware: !a.no_event_logs,
        ima: a.ima_log,
        tcg2: a.tpm_event_log.clone().unwrap_or(defaults.tcg2),
        // The table sits where sysfs puts it, `../CCEL` beside the `data` directory.
        ccel_table: a
            .ccel_log
            .as_deref()
            .and_then(|p| p.parent()?.parent())
            .map_or(defaults.ccel_table, |dir| dir.join("CCEL")),
        ccel_data: a.ccel_log.clone().unwrap_or(defaults.ccel_data),
        ..EventLogs::default()
    }
}

/// `collect`: as [`collect`], with `--json`.
pub fn run(a: CollectCommandArgs) -> Result<u8, CliError> {
    collect(a.collect, a.json)
}

/// Collects as `a` says (`exec` too); `json`: the summary is a JSON document on stdout instead of
/// the line on stderr (one line per round with `--every`).
pub fn collect(a: CollectArgs, json: bool) -> Result<u8, CliError> {
    let summary = if json {
        if output_path(&a)?.as_os_str() == "-" {
            return Err(CliError::Usage(
                "--json prints on standard output, where -o - puts the bundle; give -o FILE".into(),
            ));
        }
        Summary::Json {
            one_line: a.every.is_some(),
        }
    } else {
        Summary::Line
    };
    let Some(every) = a.every else {
        return run_once(&a, summary);
    };
    let output = output_path(&a)?;
    if output.as_os_str() == "-" {
        return Err(CliError::Usage(
            "--every writes to a file; -o - is not possible".into(),
        ));
    }
    // Usage errors do not get better with time: stop on the first round that has one.
    loop {
        match run_once(&a, summary) {
            Ok(exit::OK) => info(&format!(
                "bundle written to {}; next collection in {every} s",
                output.display()
            )),
            Ok(code) => warn(&format!(
                "collection failed (exit {code}); keeping the previous bundle, retrying in {every} s"
            )),
            Err(e @ CliError::Usage(_)) => return Err(e),
            Err(e) => {
                print_error(&e);
                warn(&format!(
                    "collection failed (exit {}); keeping the previous bundle, retrying in {every} s",
                    e.exit_code()
                ));
            }
        }
        std::thread::sleep(Duration::from_secs(every));
    }
}

/// How a successful collection is reported.
#[derive(Debug, Clone, Copy)]
enum Summary {
    /// The one line on stderr ([`crate::output::collected`]).
    Line,
    /// A JSON document on stdout: pretty, or on one line (`--every`, a document per round).
    Json { one_line: bool },
}

fn run_once(a: &CollectArgs, summary: Summary) -> Result<u8, CliError> {
    // Checked before anything touches a device, so a usage error costs no guest request.
    let output = output_path(a)?;
    let request = request(a)?;
    #[cfg(feature = "simulate")]
    if let Some(simulate) = a.simulate {
        return simulated(simulate, a, &request, &output, summary);
    }
    collect_in(&SystemEnvironment::new(), a, &request, &output, summary)
}

/// Collects in the simulated machine `--simulate` and `--source` name.
#[cfg(feature = "simulate")]
fn simulated(
    simulate: SimulateArg,
    a: &CollectArgs,
    request: &CollectRequest,
    output: &std::path::Path,
    summary: Summary,
) -> Result<u8, CliError> {
    let machine = sim_machine(simulate, a.source)?;
    collect_in(&SimEnvironment::new(machine), a, request, output, summary)
}

/// The simulated machine `--simulate` and `--source` name.
#[cfg(feature = "simulate")]
pub(crate) fn sim_machine(
    simulate: SimulateArg,
    source: SourceArg,
) -> Result<SimMachine, CliError> {
    // A simulation is of one TEE; a source of another is a contradiction, not a hint.
    let machine = match (simulate, source) {
        (SimulateArg::Snp, SourceArg::ConfigfsTsm) => Some(SimMachine::SnpConfigfs),
        (SimulateArg::Snp, SourceArg::Auto | SourceArg::SevGuest) => Some(SimMachine::SnpDevice),
        (SimulateArg::Tdx, SourceArg::Auto | SourceArg::ConfigfsTsm | SourceArg::TdxGuest) => {
            Some(SimMachine::Tdx)
        }
        (SimulateArg::AzureSnp, SourceArg::Auto | SourceArg::Vtpm) => Some(SimMachine::AzureSnp),
        (SimulateArg::AzureTdx, SourceArg::Auto | SourceArg::Vtpm) => Some(SimMachine::AzureTdx),
        _ => None,
    };
    let Some(machine) = machine else {
        let name = clap::ValueEnum::to_possible_value(&source)
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        return Err(CliError::Usage(format!(
            "--source {name} is not a source of the simulated TEE"
        )));
    };
    Ok(machine)
}

/// Collects in `env`, warns, writes the bundle and prints the summary line.
fn collect_in<E: Environment>(
    env: &E,
    a: &CollectArgs,
    request: &CollectRequest,
    output: &std::path::Path,
    summary: Summary,
) -> Result<u8, CliError> {
    let plan = thimble_collect::plan(env, request);
    // Settings of another TEE have no meaning for this one; say so rather than drop them in
    // silence.
    let (ignored, why): (&[(&str, bool)], &str) = match plan {
        Plan::Tdx(_) => (
            &[
                ("--privlevel", a.privlevel.is_some()),
                ("--no-thim", a.no_thim),
                ("--no-kds", a.no_kds),
                ("--kds", a.kds.is_some()),
            ],
            "applies to SEV-SNP collection and is ignored for TDX",
        ),
        Plan::Azure => (
            &[
                ("--privlevel", a.privlevel.is_some()),
                ("--cache-dir", a.cache_dir.is_some()),
                ("--no-cache", a.no_cache),
                ("--qgs-port", a.qgs_port.is_some()),
            ],
            "does not apply to collection from the Azure vTPM and is ignored",
        ),
        _ => (&[], ""),
    };
    let mut said: Vec<String> = Vec::new();
    for (flag, _) in ignored.iter().filter(|(_, set)| *set) {
        said.push(format!("{flag} {why}"));
        warn(&format!("{flag} {why}"));
    }
    let mut warnings = Vec::new();
    let collected = plan.collect_into(env, request, env.now(), &mut warnings);
    for w in &warnings {
        said.push(w.to_string());
        warn(&w.to_string());
    }
    let bundle = collected.map_err(cli_error)?;
    write_output(output, &bundle.to_json())?;
    crate::output::bundle_details(&bundle);
    match summary {
        Summary::Line => crate::output::collected(&bundle, output),
        Summary::Json { one_line } => {
            let value = json_summary(&bundle, output, &said);
            if one_line {
                crate::output::print_stdout(&format!("{value}\n"));
            } else {
                crate::output::print_json(&value);
            }
        }
    }
    Ok(exit::OK)
}

/// `collect --json`: what [`crate::output::collected`] says, as members (docs/collect.md).
fn json_summary(
    bundle: &thimble_evidence::bundle::Bundle,
    output: &std::path::Path,
    warnings: &[String],
) -> serde_json::Value {
    serde_json::json!({
        "path": output.to_string_lossy(),
        "tee": bundle.tee().as_str(),
        "simulated": bundle.simulated,
        "source": bundle.collection.source.to_string(),
        "nonce": bundle.nonce.as_ref().map(|n| &n.value),
        "endorsement_origins": crate::output::endorsement_origins(bundle),
        "endorsements": bundle.endorsements.len(),
        "event_logs": bundle.event_logs.iter().map(|l| l.kind.as_str()).collect::<Vec<_>>(),
        "warnings": warnings,
    })
}

/// What to try on a machine without a TEE: the simulation, in a build that has one.
#[cfg(feature = "simulate")]
const NO_TEE_HINT: &str =
    "; on a machine without a TEE, `--simulate snp|tdx|azure-snp|azure-tdx` runs a simulated guest";
#[cfg(not(feature = "simulate"))]
const NO_TEE_HINT: &str = "";

/// The CLI's error for a failed collection: the library's, except that "no source" carries the
/// CLI's hints.
pub(crate) fn cli_error(e: CollectError) -> CliError {
    match e {
        CollectError::NoSource(n @ NoSource::Nothing { .. }) => CliError::NoTee(format!(
            "{n} (run `thimble detect` for details{NO_TEE_HINT})"
        )),
        CollectError::NoSource(n) => {
            CliError::NoTee(format!("{n} (run `thimble detect` for details)"))
        }
        e => CliError::Collect(e),
    }
}
