// SPDX-License-Identifier: AGPL-3.0-or-later
//! `thimble verify`: checks a bundle offline against the pinned roots at a given time, prints the
//! outcome (human or `--json`) and exits 0, 6, 7 or 8 by the worst error.

use thimble_evidence::bundle::Tee;
use thimble_verify::Verdict;
use thimble_verify::bundle::verify_bundle;
use thimble_verify::outcome::{ErrorClass, Outcome};

use crate::args::VerifyArgs;
use crate::common;
use crate::error::CliError;
use crate::exit;
use crate::output::print_stdout;

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
    let bundle = common::read_bundle(&a.bundle)?;
    check_flags_fit(&a, bundle.tee)?;
    let outcome = verify_bundle(&bundle, &opts);
    if a.json {
        let mut s =
            serde_json::to_string_pretty(&outcome).map_err(|e| CliError::Other(e.to_string()))?;
        s.push('\n');
        print_stdout(&s);
    } else {
        print_stdout(&render(&outcome));
    }
    Ok(exit_code(&outcome))
}

/// Refuses policy flags that do not apply to the bundle's TEE: a check the user asked for must
/// never be silently skipped.
fn check_flags_fit(a: &VerifyArgs, tee: Tee) -> Result<(), CliError> {
    let p = &a.policy;
    let snp_only = [
        ("--measurement", p.measurement.is_some()),
        ("--host-data", p.host_data.is_some()),
        ("--max-vmpl", p.max_vmpl.is_some()),
        ("--min-tcb", p.min_tcb.is_some()),
    ];
    let tdx_only = [
        ("--mrtd", p.mrtd.is_some()),
        ("--mrconfigid", p.mrconfigid.is_some()),
        ("--mrowner", p.mrowner.is_some()),
        ("--rtmr", !p.rtmr.is_empty()),
        ("--min-tcb-status", p.min_tcb_status.is_some()),
        ("--require-sept-ve-disable", p.require_sept_ve_disable),
        ("--allow-stale-collateral", p.allow_stale_collateral),
    ];
    let azure_only = [("--allow-stale-report", p.allow_stale_report)];
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
    for w in &o.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    for e in &o.errors {
        s.push_str(&format!("error[{}]: {}\n", e.code, e.message));
    }
    s
}
