// SPDX-License-Identifier: AGPL-3.0-or-later
//! Verifying SEV-SNP evidence: the report signature under a VCEK/VLEK that chains to a pinned
//! ARK, the binding of that certificate to the report (hwID = CHIP_ID, SPLs = REPORTED_TCB,
//! signer kind = the report's key selector, product = the report's CPUID product), then policy.
//!
//! Checks run in that order and stop at the first authenticity failure. Binding is checked before
//! the report signature so that a certificate for another chip is reported as such rather than
//! as a bad signature.

use thimble_evidence::bundle::{Bundle, Claims};
use thimble_evidence::snp::cert::AmdRole;
use thimble_evidence::snp::{AmdCert, CertTable, SigningKey, SnpReport};
use thimble_evidence::time_fmt::format_unix;

use crate::chain::{VerifiedChain, verify_leaf};
use crate::options::Options;
use crate::outcome::{Outcome, VerifyError};
use crate::policy::{self, ClaimedNonce};
use crate::signature::verify_report_signature;

fn claims_json(
    report: &SnpReport,
    product: Option<thimble_evidence::snp::Product>,
) -> Option<serde_json::Value> {
    serde_json::to_value(Claims::from_report(report, product)).ok()
}

/// Checks that `chain.leaf` is the key of the chip and TCB that produced `report`.
fn check_binding(report: &SnpReport, chain: &VerifiedChain) -> Result<(), VerifyError> {
    let expected_role = match report.signing_key {
        SigningKey::Vcek => AmdRole::Vcek,
        SigningKey::Vlek => AmdRole::Vlek,
        other => {
            return Err(VerifyError::authenticity(
                "signature",
                format!(
                    "report key selector is {other:?}: the report is not signed by a VCEK or VLEK"
                ),
            ));
        }
    };
    if chain.leaf_role != expected_role {
        return Err(VerifyError::authenticity(
            "vcek-mismatch",
            format!(
                "report says it is signed by the {expected_role:?} but the certificate is a {:?}",
                chain.leaf_role
            ),
        ));
    }
    if let Some(p) = report.product_from_cpuid() {
        if p != chain.product {
            return Err(VerifyError::authenticity(
                "vcek-mismatch",
                format!(
                    "report comes from a {p} chip (CPUID) but the certificate chains to the {} root",
                    chain.product
                ),
            ));
        }
    }
    if expected_role == AmdRole::Vcek {
        let n = chain.product.hw_id_len();
        match &chain.leaf.amd.hw_id {
            Some(hw)
                if hw.as_slice() == &report.chip_id[..n]
                    && report.chip_id[n..].iter().all(|&b| b == 0) => {}
            Some(hw) => {
                return Err(VerifyError::authenticity(
                    "vcek-mismatch",
                    format!(
                        "VCEK hwID {} is not the report's CHIP_ID {}: the certificate belongs to another chip",
                        hex::encode(hw),
                        hex::encode(report.chip_id)
                    ),
                ));
            }
            None => {
                return Err(VerifyError::authenticity(
                    "vcek-mismatch",
                    "VCEK has no hwID extension",
                ));
            }
        }
    }
    let Some(tcb) = chain.leaf.tcb(chain.product) else {
        return Err(VerifyError::authenticity(
            "vcek-mismatch",
            "certificate lacks an SPL extension, so its TCB cannot be compared with REPORTED_TCB",
        ));
    };
    if tcb.raw != report.reported_tcb {
        let rt = report.reported_tcb(chain.product);
        return Err(VerifyError::authenticity(
            "vcek-mismatch",
            format!(
                "certificate TCB ({tcb}, tcbm {}) is not the report's REPORTED_TCB ({rt}, tcbm {})",
                tcb.tcbm(),
                rt.tcbm()
            ),
        ));
    }
    Ok(())
}

/// Verifies a report with a pool of certificates (any order, any source).
pub fn verify_report(
    report_bytes: &[u8],
    certs: &[AmdCert],
    claimed_nonce: Option<&ClaimedNonce>,
    opts: &Options,
) -> Outcome {
    let mut out = Outcome::new("sev-snp", format_unix(opts.at));
    let report = match SnpReport::parse(report_bytes) {
        Ok(r) => r,
        Err(e) => {
            out.errors
                .push(VerifyError::malformed("malformed-report", e.to_string()));
            return out.finish();
        }
    };
    out.claims = claims_json(&report, report.product_hint());
    out.signer = Some(match report.signing_key {
        SigningKey::Vlek => "vlek".into(),
        _ => "vcek".into(),
    });

    let wanted = if report.signing_key == SigningKey::Vlek {
        AmdRole::Vlek
    } else {
        AmdRole::Vcek
    };
    let leaves: Vec<&AmdCert> = certs
        .iter()
        .filter(|c| c.amd_role() == Some(wanted))
        .collect();
    if leaves.is_empty() {
        out.errors.push(VerifyError::authenticity(
            "missing-endorsement",
            format!(
                "no {} certificate among the endorsements; the report cannot be checked",
                if wanted == AmdRole::Vlek {
                    "VLEK"
                } else {
                    "VCEK"
                }
            ),
        ));
        return out.finish();
    }

    // Several leaves can be present (auxblob and THIM, say). Take the first that passes every
    // authenticity check; otherwise report the failure of the one that got furthest.
    let mut best: Option<(u8, VerifyError)> = None;
    let mut verified = None;
    for leaf in leaves {
        let step = (|| -> Result<VerifiedChain, (u8, VerifyError)> {
            let chain = verify_leaf(leaf, certs, &opts.roots, opts.at).map_err(|e| (0, e))?;
            check_binding(&report, &chain).map_err(|e| (1, e))?;
            verify_report_signature(&report, &chain.leaf).map_err(|e| {
                (
                    2,
                    VerifyError::authenticity(
                        "signature",
                        format!(
                            "report signature does not verify under {}: {e}",
                            chain.leaf.subject_cn
                        ),
                    ),
                )
            })?;
            Ok(chain)
        })();
        match step {
            Ok(chain) => {
                verified = Some(chain);
                break;
            }
            Err((depth, e)) => {
                if best.as_ref().is_none_or(|(d, _)| depth > *d) {
                    best = Some((depth, e));
                }
            }
        }
    }
    let Some(chain) = verified else {
        if let Some((_, e)) = best {
            out.errors.push(e);
        }
        return out.finish();
    };
    out.product = Some(chain.product);
    out.simulated = chain.simulated;
    out.chain = chain.links();
    out.claims = claims_json(&report, Some(chain.product));
    if chain.simulated {
        out.warnings.push("verified against the SIMULATION test root: this evidence proves nothing about real hardware".into());
    }
    out.errors.extend(policy::check(
        &report,
        chain.product,
        &opts.policy,
        claimed_nonce,
    ));
    out.finish()
}

/// Every certificate a bundle carries: its endorsements and its auxblob's certificate table,
/// with warnings about host-written data that was ignored.
pub fn bundle_certificates(bundle: &Bundle) -> Result<(Vec<AmdCert>, Vec<String>), VerifyError> {
    let mut certs = Vec::new();
    let mut warnings = Vec::new();
    for (i, e) in bundle.endorsements.iter().enumerate() {
        if e.format != "der" || e.kind == thimble_evidence::bundle::EndorsementKind::Crl {
            continue;
        }
        let bytes = e
            .bytes()
            .map_err(|err| VerifyError::malformed("malformed-bundle", err.to_string()))?;
        let cert = AmdCert::parse_der(&bytes).map_err(|err| {
            VerifyError::malformed(
                "malformed-certificate",
                format!("endorsements[{i}] ({:?}): {err}", e.kind),
            )
        })?;
        certs.push(cert);
    }
    if let Some(aux) = bundle
        .auxblob_bytes()
        .map_err(|e| VerifyError::malformed("malformed-bundle", e.to_string()))?
    {
        // The host wrote this table: a malformed one is ignored (the endorsements may come from
        // elsewhere), not a reason to reject evidence that verifies without it.
        let table = CertTable::parse(&aux).unwrap_or_else(|e| {
            warnings.push(format!("auxblob certificate table ignored: {e}"));
            CertTable::default()
        });
        for entry in table.entries {
            // CRLs and unknown entries are not certificates; a certificate entry that does not
            // parse is ignored rather than fatal, since the host wrote it.
            if let Ok(cert) = AmdCert::parse_der(&entry.data) {
                certs.push(cert);
            }
        }
    }
    Ok((certs, warnings))
}

/// Verifies a bundle.
pub fn verify_bundle(bundle: &Bundle, opts: &Options) -> Outcome {
    let fail = |e: VerifyError| {
        let mut o = Outcome::new("sev-snp", format_unix(opts.at));
        o.simulated = bundle.simulated;
        o.errors.push(e);
        o.finish()
    };
    let report = match bundle.report_bytes() {
        Ok(r) => r,
        Err(e) => return fail(VerifyError::malformed("malformed-bundle", e.to_string())),
    };
    let (certs, warnings) = match bundle_certificates(bundle) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let claimed = match &bundle.nonce {
        None => None,
        Some(n) => match hex::decode(&n.value) {
            Ok(value) => Some(ClaimedNonce {
                value,
                derivation: n.report_data_derivation,
            }),
            Err(_) => {
                return fail(VerifyError::malformed(
                    "malformed-bundle",
                    "nonce.value is not hex",
                ));
            }
        },
    };
    let mut out = verify_report(&report, &certs, claimed.as_ref(), opts);
    out.warnings.extend(warnings);
    crate::outcome::explain_simulated(out, bundle.simulated)
}
