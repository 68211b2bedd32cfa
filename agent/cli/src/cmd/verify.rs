// SPDX-License-Identifier: AGPL-3.0-or-later
//! `thimble verify`: checks a bundle offline against the pinned roots at a given time, prints the
//! outcome (human or `--json`) and exits 0, 6, 7 or 8 by the worst error.

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
