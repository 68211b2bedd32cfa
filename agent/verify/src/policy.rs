// SPDX-License-Identifier: AGPL-3.0-or-later
//! Policy over authentic evidence. Every violation is reported, not only the first, so that an
//! operator sees all that is wrong with a guest at once.

use thimble_evidence::report_data::{self, Derivation};
use thimble_evidence::snp::{Product, SnpReport};

use crate::options::Policy;
use crate::outcome::VerifyError;

/// The nonce the bundle claims, for the REPORT_DATA check when the caller gave none.
#[derive(Debug, Clone)]
pub struct ClaimedNonce {
    pub value: Vec<u8>,
    pub derivation: Derivation,
}

/// Checks `report` against `policy`; `product` decodes the TCB.
pub fn check(
    report: &SnpReport,
    product: Product,
    policy: &Policy,
    claimed: Option<&ClaimedNonce>,
) -> Vec<VerifyError> {
    let mut errors = Vec::new();
    if report.policy.debug_allowed && !policy.allow_debug {
        errors.push(VerifyError::policy(
            "policy-debug",
            format!(
                "guest policy {:#x} allows debugging (bit 19): the host can read and change guest memory; pass --allow-debug to accept it",
                report.policy.raw
            ),
        ));
    }
    match (&policy.report_data, claimed) {
        (Some(expected), _) => {
            if expected != &report.report_data {
                errors.push(VerifyError::policy(
                    "nonce-mismatch",
                    format!(
                        "REPORT_DATA {} does not match the expected {}",
                        hex::encode(report.report_data),
                        hex::encode(expected)
                    ),
                ));
            }
        }
        (None, Some(n)) => match report_data::derive(n.derivation, &n.value) {
            Some(rd) if rd == report.report_data => {}
            _ => errors.push(VerifyError::policy(
                "nonce-mismatch",
                format!(
                    "REPORT_DATA {} does not match the bundle's nonce {} ({:?} derivation)",
                    hex::encode(report.report_data),
                    hex::encode(&n.value),
                    n.derivation
                ),
            )),
        },
        (None, None) => {}
    }
    if let Some(min) = &policy.min_tcb {
        let t = report.reported_tcb(product);
        let low: Vec<String> = [
            ("bl", t.bootloader, min.bootloader),
            ("tee", t.tee, min.tee),
            ("snp", t.snp, min.snp),
            ("ucode", t.microcode, min.microcode),
            (
                "fmc",
                t.fmc.unwrap_or(0),
                if product.turin_tcb_layout() {
                    min.fmc
                } else {
                    0
                },
            ),
        ]
        .iter()
        .filter(|(_, have, want)| have < want)
        .map(|(n, have, want)| format!("{n}={have} < {want}"))
        .collect();
        if !low.is_empty() {
            errors.push(VerifyError::policy(
                "policy-tcb",
                format!(
                    "REPORTED_TCB ({t}) is below the minimum: {}",
                    low.join(", ")
                ),
            ));
        }
    }
    if let Some(m) = &policy.measurement {
        if m.as_slice() != report.measurement {
            errors.push(VerifyError::policy(
                "policy-measurement",
                format!(
                    "MEASUREMENT {} is not the expected {}",
                    hex::encode(report.measurement),
                    hex::encode(m)
                ),
            ));
        }
    }
    if let Some(h) = &policy.host_data {
        if h.as_slice() != report.host_data {
            errors.push(VerifyError::policy(
                "policy-host-data",
                format!(
                    "HOST_DATA {} is not the expected {}",
                    hex::encode(report.host_data),
                    hex::encode(h)
                ),
            ));
        }
    }
    if let Some(max) = policy.max_vmpl {
        if report.vmpl > max {
            errors.push(VerifyError::policy(
                "policy-vmpl",
                format!("VMPL {} is above the maximum {max}", report.vmpl),
            ));
        }
    }
    errors
}
