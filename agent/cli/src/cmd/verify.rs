// SPDX-License-Identifier: Apache-2.0
//! `thimble verify`: checks a bundle offline against the pinned roots at a given time, prints the
//! outcome (human or `--json`) and exits 0, 6, 7 or 8 by the worst error. Given several bundles
//! (a relying party checking a fleet's), it verifies them in parallel on every core and prints
//! one result per bundle in the order given; the exit code is the first failing bundle's.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use thimble_evidence::bundle::Tee;
use thimble_verify::Verdict;
use thimble_verify::bundle::{VerifyOptions, verify_bundle};
use thimble_verify::outcome::{ErrorClass, Outcome};

use crate::args::VerifyArgs;
use crate::common;
use crate::error::CliError;
use crate::exit;
use crate::output::print_stdout;
use thimble_verify::eventlog::{LogOutcome, LogStatus, RegisterStatus};

pub fn exit_code(outcome: &Outcome) -> u8 {
    match outcome.worst_class() {
        None => exit::OK,
        Some(ErrorClass::Malformed) => exit::MALFORMED,
        Some(ErrorClass::Authenticity) => exit::AUTHENTICITY,
        Some(ErrorClass::Policy) => exit::POLICY,
    }
}

pub fn run(a: VerifyArgs) -> Result<u8, CliError> {
    let at = common::verification_time(a.at.as_deref())?;
    let opts = common::verify_options(at, &a.policy)?;
    if let [path] = a.bundles.as_slice() {
        let outcome = verify_one(&a, path, &opts)?;
        if a.json {
            let mut s = serde_json::to_string_pretty(&outcome)
                .map_err(|e| CliError::Other(e.to_string()))?;
            s.push('\n');
            print_stdout(&s);
        } else {
            print_stdout(&render(&outcome));
        }
        return Ok(exit_code(&outcome));
    }
    if a.bundles.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        return Err(CliError::Usage(
            "standard input (`-`) can be given as a bundle only once".into(),
        ));
    }
    Ok(run_many(&a, &opts))
}

/// Reads one bundle, refuses flags that do not fit its TEE, and verifies it.
fn verify_one(a: &VerifyArgs, path: &Path, opts: &VerifyOptions) -> Result<Outcome, CliError> {
    let bundle = common::read_bundle(path, a.max_bundle_size)?;
    check_flags_fit(a, bundle.tee())?;
    Ok(verify_bundle(&bundle, opts))
}

/// Verifies several bundles on every available core (one worker thread each, taking the next
/// bundle in turn) and prints each result as soon as every result before it is printed, so that
/// the output is in the order given and memory holds only the results waiting for an earlier
/// one. Returns the exit code of the first bundle that does not pass, or 0.
fn run_many(a: &VerifyArgs, opts: &VerifyOptions) -> u8 {
    let paths = &a.bundles;
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(paths.len());
    let next = AtomicUsize::new(0);
    let mut first_failure = None;
    if a.json {
        print_stdout("[\n");
    }
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(usize, u8, String)>();
        for _ in 0..workers {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = paths.get(i) else { break };
                    let (code, text) = one_result(a, path, opts);
                    if tx.send((i, code, text)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut waiting = BTreeMap::new();
        let mut printed = 0;
        for (i, code, text) in rx {
            waiting.insert(i, (code, text));
            while let Some((code, text)) = waiting.remove(&printed) {
                if code != exit::OK && first_failure.is_none() {
                    first_failure = Some(code);
                }
                let separator = match (printed, a.json) {
                    (0, _) => "",
                    (_, true) => ",\n",
                    (_, false) => "\n",
                };
                print_stdout(&format!("{separator}{text}"));
                printed += 1;
            }
        }
    });
    if a.json {
        print_stdout("\n]\n");
    }
    first_failure.unwrap_or(exit::OK)
}

/// One bundle's exit code and printed result among several. Human form: a `==> PATH <==` line,
/// then the outcome as for one bundle, or `error: ...` lines. JSON: an object with `bundle`,
/// `exit_code`, and `outcome` (as for one bundle) or `error` (the message with its causes),
/// indented as an element of the array.
fn one_result(a: &VerifyArgs, path: &Path, opts: &VerifyOptions) -> (u8, String) {
    let result = verify_one(a, path, opts);
    let code = match &result {
        Ok(outcome) => exit_code(outcome),
        Err(e) => e.exit_code(),
    };
    let text = if a.json {
        let mut element = serde_json::Map::new();
        element.insert("bundle".into(), path.display().to_string().into());
        element.insert("exit_code".into(), code.into());
        match &result {
            Ok(outcome) => match serde_json::to_value(outcome) {
                Ok(v) => element.insert("outcome".into(), v),
                Err(e) => element.insert("error".into(), e.to_string().into()),
            },
            Err(e) => element.insert("error".into(), crate::error::with_causes(e).into()),
        };
        let pretty = serde_json::to_string_pretty(&element).unwrap_or_default();
        pretty
            .lines()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        let mut s = format!("==> {} <==\n", path.display());
        match &result {
            Ok(outcome) => s.push_str(&render(outcome)),
            Err(e) => {
                s.push_str(&format!("error: {e}\n"));
                let mut source = std::error::Error::source(e);
                while let Some(cause) = source {
                    s.push_str(&format!("  caused by: {cause}\n"));
                    source = cause.source();
                }
            }
        }
        s
    };
    (code, text)
}

/// Refuses policy flags that do not apply to the bundle's TEE: a check the user asked for must
/// never be silently skipped. (A policy file may hold settings for every TEE; only flags are
/// judged here.)
fn check_flags_fit(a: &VerifyArgs, tee: Tee) -> Result<(), CliError> {
    let p = &a.policy;
    let snp_only = [
        ("--measurement", p.snp.measurement.is_some()),
        ("--host-data", p.snp.host_data.is_some()),
        ("--max-vmpl", p.snp.max_vmpl.is_some()),
        ("--min-tcb", p.snp.min_tcb.is_some()),
        ("--min-launch-tcb", p.snp.min_launch_tcb.is_some()),
        ("--min-guest-svn", p.snp.min_guest_svn.is_some()),
        ("--min-build", p.snp.min_build.is_some()),
        ("--min-version", p.snp.min_version.is_some()),
        (
            "--deny-provisional-firmware",
            p.snp.deny_provisional_firmware,
        ),
        ("--family-id", p.snp.family_id.is_some()),
        ("--image-id", p.snp.image_id.is_some()),
        ("--report-id", p.snp.report_id.is_some()),
        ("--report-id-ma", p.snp.report_id_ma.is_some()),
        ("--chip-id", p.snp.chip_id.is_some()),
        ("--min-abi", p.snp_guest.min_abi.is_some()),
        ("--deny-smt", p.snp_guest.deny_smt),
        ("--allow-migration-agent", p.snp_guest.allow_migration_agent),
        ("--deny-cxl", p.snp_guest.deny_cxl),
        ("--require-single-socket", p.snp_guest.require_single_socket),
        (
            "--require-mem-aes-256-xts",
            p.snp_guest.require_mem_aes_256_xts,
        ),
        ("--require-rapl-dis", p.snp_guest.require_rapl_dis),
        (
            "--require-ciphertext-hiding",
            p.snp_guest.require_ciphertext_hiding,
        ),
        (
            "--require-page-swap-disable",
            p.snp_guest.require_page_swap_disable,
        ),
        (
            "--require-platform-info",
            !p.snp_guest.require_platform_info.is_empty(),
        ),
        (
            "--deny-platform-info",
            !p.snp_guest.deny_platform_info.is_empty(),
        ),
        ("--require-id-block", p.snp_guest.require_id_block),
        ("--require-author-key", p.snp_guest.require_author_key),
        (
            "--trusted-id-key-digest",
            !p.snp_guest.trusted_id_key_digest.is_empty(),
        ),
        (
            "--trusted-author-key-digest",
            !p.snp_guest.trusted_author_key_digest.is_empty(),
        ),
    ];
    let tdx_only = [
        ("--mrtd", !p.tdx.mrtd.is_empty()),
        ("--mrconfigid", p.tdx.mrconfigid.is_some()),
        ("--mrowner", p.tdx.mrowner.is_some()),
        ("--mrownerconfig", p.tdx.mrownerconfig.is_some()),
        ("--mrseam", p.tdx.mrseam.is_some()),
        ("--td-attributes", p.tdx.td_attributes.is_some()),
        ("--xfam", p.tdx.xfam.is_some()),
        ("--rtmr", !p.tdx.rtmr.is_empty()),
        ("--min-tee-tcb-svn", p.tdx.min_tee_tcb_svn.is_some()),
        ("--min-qe-svn", p.tdx.min_qe_svn.is_some()),
        ("--min-pce-svn", p.tdx.min_pce_svn.is_some()),
        ("--min-tcb-status", p.tdx.min_tcb_status.is_some()),
        ("--require-sept-ve-disable", p.tdx.require_sept_ve_disable),
        ("--allow-stale-collateral", p.tdx.allow_stale_collateral),
        ("--allow-missing-crl", p.tdx.allow_missing_crl),
    ];
    let azure_only = [
        ("--allow-stale-report", p.azure.allow_stale_report),
        ("--hcl-user-data", p.azure.hcl_user_data.is_some()),
        (
            "--paravisor-id-key-digest",
            !p.azure.paravisor_id_key_digest.is_empty(),
        ),
        ("--paravisor-mrtd", !p.azure.paravisor_mrtd.is_empty()),
        ("--no-pinned-paravisors", p.azure.no_pinned_paravisors),
        ("--allow-unknown-paravisor", p.azure.allow_unknown_paravisor),
    ];
    let not_azure = [("--report-data", p.report_data.is_some())];
    let (snp, tdx, azure) = match tee {
        Tee::SevSnp => (true, false, false),
        Tee::Tdx => (false, true, false),
        Tee::AzureSevSnp => (true, false, true),
        Tee::AzureTdx => (false, true, true),
    };
    let misfits: Vec<&str> = snp_only
        .iter()
        .filter(|(_, set)| *set && !snp)
        .chain(tdx_only.iter().filter(|(_, set)| *set && !tdx))
        .chain(azure_only.iter().filter(|(_, set)| *set && !azure))
        .chain(not_azure.iter().filter(|(_, set)| *set && azure))
        .map(|(flag, _)| *flag)
        .collect();
    if misfits.is_empty() {
        return Ok(());
    }
    Err(CliError::Usage(format!(
        "{} cannot be checked on a {} bundle{}",
        misfits.join(", "),
        tee.as_str(),
        if azure && p.report_data.is_some() {
            " (on Azure the nonce is in the TPM quote: use --nonce)"
        } else {
            ""
        }
    )))
}

/// The human form of an outcome.
pub fn render(o: &Outcome) -> String {
    let mut s = String::new();
    let verdict = match o.verdict {
        Verdict::Valid => "valid",
        Verdict::Invalid => "INVALID",
    };
    s.push_str(&format!("verdict:   {verdict}\n"));
    s.push_str(&format!("tee:       {}\n", o.tee));
    s.push_str(&format!("checked:   at {}\n", o.verified_at));
    if let Some(p) = o.product {
        s.push_str(&format!("product:   {p}\n"));
    }
    if let Some(status) = &o.tcb_status {
        s.push_str(&format!("tcb:       {status}\n"));
    }
    if !o.advisory_ids.is_empty() {
        s.push_str(&format!("advisories: {}\n", o.advisory_ids.join(", ")));
    }
    if let Some(signer) = &o.signer {
        s.push_str(&format!("signer:    {signer}\n"));
    }
    if o.simulated {
        s.push_str("simulated: yes (test keys; proves nothing about real hardware)\n");
    }
    for link in &o.chain {
        s.push_str(&format!(
            "chain:     {:<5} {}  valid {} .. {}\n",
            link.role, link.subject, link.not_before, link.not_after
        ));
    }
    if let Some(c) = &o.claims {
        for key in ["measurement", "mrtd", "report_data"] {
            if let Some(v) = c.get(key).and_then(|v| v.as_str()) {
                s.push_str(&format!("{key}: {v}\n"));
            }
        }
    }
    for l in &o.event_logs {
        render_event_log(&mut s, l);
    }
    for w in &o.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    for e in &o.errors {
        s.push_str(&format!("error[{}]: {}\n", e.code, e.message));
    }
    s
}

/// One event log of the outcome: its status, each register, and what it measured. Text from
/// the log is printed escaped (`{:?}`): it is the guest's, not ours.
fn render_event_log(s: &mut String, l: &LogOutcome) {
    let status = match l.status {
        LogStatus::Replayed => "replayed",
        LogStatus::Mismatch => "MISMATCH",
        LogStatus::Malformed => "MALFORMED",
        LogStatus::NotReplayed => "not replayed",
        _ => "?",
    };
    s.push_str(&format!(
        "event log: {} ({} bytes, {}): {status}\n",
        l.kind, l.size, l.source
    ));
    if let Some(reason) = &l.reason {
        s.push_str(&format!("           {reason}\n"));
    }
    if let Some(replay) = &l.replay {
        let registers: Vec<String> = replay
            .checks
            .iter()
            .map(|c| {
                let what = match &c.status {
                    RegisterStatus::Matches { events } => format!("matches ({events} events)"),
                    RegisterStatus::Mismatch { .. } => "MISMATCH".to_string(),
                    RegisterStatus::NotCovered { at_reset: true, .. } => {
                        "not extended (reset value)".to_string()
                    }
                    RegisterStatus::NotCovered { .. } => "not covered by the log".to_string(),
                    RegisterStatus::NotInEvidence { .. } => "not signed".to_string(),
                    RegisterStatus::NotReplayable { .. } => "not replayable".to_string(),
                    _ => "?".to_string(),
                };
                format!("{} {what}", c.register)
            })
            .collect();
        s.push_str(&format!("           {}\n", registers.join(", ")));
    }
    if let Some(c) = &l.claims {
        let secure_boot = match c.secure_boot {
            Some(true) => "on",
            Some(false) => "off",
            None => "not measured",
        };
        s.push_str(&format!("secure boot: {secure_boot}\n"));
        for a in &c.boot_applications {
            s.push_str(&format!(
                "boot app:  {:?} {}\n",
                a.file_path.as_deref().unwrap_or("?"),
                strongest(&a.digests)
            ));
        }
        for k in &c.kernels {
            s.push_str(&format!(
                "kernel:    {:?} {}\n",
                k.path.as_deref().unwrap_or("?"),
                strongest(&k.digests)
            ));
        }
        for i in &c.initrds {
            s.push_str(&format!(
                "initrd:    {:?} {}\n",
                i.path.as_deref().unwrap_or("?"),
                strongest(&i.digests)
            ));
        }
        for line in c
            .kernel_cmdlines
            .iter()
            .filter(|l| l.data_verified == Some(true))
        {
            s.push_str(&format!("cmdline:   {:?}\n", line.text));
        }
    }
}

/// `alg:hex` of the strongest bank of an event's digests (the names sort SHA-1 first and
/// SHA-512 last).
fn strongest(digests: &thimble_evidence::eventlog::claims::Digests) -> String {
    digests
        .iter()
        .next_back()
        .map_or_else(String::new, |(alg, hex)| format!("{alg}:{hex}"))
}
