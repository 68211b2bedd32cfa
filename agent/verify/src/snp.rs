// SPDX-License-Identifier: Apache-2.0
//! Verifying SEV-SNP evidence: the report signature under a VCEK/VLEK that chains to a pinned
//! ARK, the binding of that certificate to the report (hwID = CHIP_ID, SPLs = REPORTED_TCB,
//! signer kind = the report's key selector, product = the report's CPUID product), then policy.
//!
//! Checks run in that order and stop at the first authenticity failure. Binding is checked before
//! the report signature so that a certificate for another chip is reported as such rather than
//! as a bad signature.
//!
//! A bundle may carry any number of VCEK-like certificates. Identical ones count once, those
//! whose hwID and SPLs already match the report are tried first, and at most [`MAX_LEAVES`] are
//! tried at all, so a hostile bundle costs at most a few dozen signature checks.

use thimble_evidence::bundle::{Bundle, Evidence, SnpClaims};
use thimble_evidence::snp::cert::AmdRole;
use thimble_evidence::snp::{AmdCert, CertKind, CertTable, SigningKey, SnpReport};
use thimble_evidence::time_fmt::format_unix;

use crate::amd_crl::{AmdRevocation, check_amd_revocation};
use crate::chain::{VerifiedChain, distinct, verify_leaf};
use crate::options::Options;
use crate::outcome::{Code, Outcome, VerifyError};
use crate::policy::{self, ClaimedNonce};
use crate::signature::verify_report_signature;

fn claims_json(
    report: &SnpReport,
    product: Option<thimble_evidence::snp::Product>,
) -> Option<serde_json::Value> {
    serde_json::to_value(SnpClaims::from_report(report, product)).ok()
}

/// The most distinct VCEK (or VLEK) certificates tried for one report.
pub const MAX_LEAVES: usize = 4;

/// Whether `leaf` looks like the certificate of `report`'s chip and TCB, by its extensions alone
/// (no signature): used to try the likely leaves first. `check_binding` decides.
fn looks_bound(report: &SnpReport, leaf: &AmdCert) -> bool {
    let Some(product) = leaf.product().or_else(|| report.product_hint()) else {
        return false;
    };
    let chip_ok = match &leaf.amd.hw_id {
        Some(hw) => report.chip_id.get(..hw.len()) == Some(hw.as_slice()),
        None => leaf.amd_role() == Some(AmdRole::Vlek),
    };
    chip_ok
        && leaf
            .tcb(product)
            .is_some_and(|t| t.raw == report.reported_tcb)
}

/// Checks that `chain.leaf` is the key of the chip and TCB that produced `report`.
fn check_binding(report: &SnpReport, chain: &VerifiedChain) -> Result<(), VerifyError> {
    let expected_role = match report.signing_key {
        SigningKey::Vcek => AmdRole::Vcek,
        SigningKey::Vlek => AmdRole::Vlek,
        other => {
            return Err(VerifyError::new(
                Code::Signature,
                format!(
                    "report key selector is {other:?}: the report is not signed by a VCEK or VLEK"
                ),
            ));
        }
    };
    if chain.leaf_role != expected_role {
        return Err(VerifyError::new(
            Code::VcekMismatch,
            format!(
                "report says it is signed by the {expected_role:?} but the certificate is a {:?}",
                chain.leaf_role
            ),
        ));
    }
    if let Some(p) = report.product_from_cpuid() {
        if p != chain.product {
            return Err(VerifyError::new(
                Code::VcekMismatch,
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
                return Err(VerifyError::new(
                    Code::VcekMismatch,
                    format!(
                        "VCEK hwID {} is not the report's CHIP_ID {}: the certificate belongs to another chip",
                        hex::encode(hw),
                        hex::encode(report.chip_id)
                    ),
                ));
            }
            None => {
                return Err(VerifyError::new(
                    Code::VcekMismatch,
                    "VCEK has no hwID extension",
                ));
            }
        }
    }
    let Some(tcb) = chain.leaf.tcb(chain.product) else {
        return Err(VerifyError::new(
            Code::VcekMismatch,
            "certificate lacks an SPL extension, so its TCB cannot be compared with REPORTED_TCB",
        ));
    };
    if tcb.raw != report.reported_tcb {
        let rt = report.reported_tcb(chain.product);
        return Err(VerifyError::new(
            Code::VcekMismatch,
            format!(
                "certificate TCB ({tcb}, tcbm {}) is not the report's REPORTED_TCB ({rt}, tcbm {})",
                tcb.tcbm(),
                rt.tcbm()
            ),
        ));
    }
    Ok(())
}

/// Verifies a report with a pool of certificates (any order, any source) and no CRL.
pub fn verify_report(
    report_bytes: &[u8],
    certs: &[AmdCert],
    claimed_nonce: Option<&ClaimedNonce>,
    opts: &Options,
) -> Outcome {
    verify_report_with_crls(report_bytes, certs, &[], claimed_nonce, opts)
}

/// Verifies a report with a pool of certificates and the AMD CRL candidates that came with them
/// (see [`check_amd_revocation`]).
pub fn verify_report_with_crls(
    report_bytes: &[u8],
    certs: &[AmdCert],
    crls: &[&[u8]],
    claimed_nonce: Option<&ClaimedNonce>,
    opts: &Options,
) -> Outcome {
    let mut out = Outcome::new("sev-snp", format_unix(opts.at));
    let report = match SnpReport::parse(report_bytes) {
        Ok(r) => r,
        Err(e) => {
            out.errors
                .push(VerifyError::new(Code::MalformedReport, e.to_string()));
            return out.finish();
        }
    };
    out.claims = claims_json(&report, report.product_hint());
    if let (Some((family, model, stepping)), None) = (report.cpuid, report.product_from_cpuid()) {
        // Without a known product there is no root to hold the certificate to, and the TCB
        // layout is unknown: the report is refused rather than checked halfway.
        out.errors.push(VerifyError::new(
            Code::UnsupportedProduct,
            format!(
                "report comes from CPUID family {family:#04x} model {model:#04x} stepping {stepping:#04x}, which is not a product thimble knows (Milan, Genoa, Turin)"
            ),
        ));
        return out.finish();
    }
    out.signer = Some(match report.signing_key {
        SigningKey::Vlek => "vlek".into(),
        _ => "vcek".into(),
    });

    let wanted = if report.signing_key == SigningKey::Vlek {
        AmdRole::Vlek
    } else {
        AmdRole::Vcek
    };
    let mut leaves = distinct(certs.iter().filter(|c| c.amd_role() == Some(wanted)));
    // Likely leaves first (a stable sort keeps the bundle's order otherwise), then the cap.
    leaves.sort_by_key(|leaf| !looks_bound(&report, leaf));
    leaves.truncate(MAX_LEAVES);
    if leaves.is_empty() {
        out.errors.push(VerifyError::new(
            Code::MissingEndorsement,
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
                    VerifyError::new(
                        Code::Signature,
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
    if let Err(e) = revocation(&chain, crls, opts, &mut out.warnings) {
        out.errors.push(e);
        return out.finish();
    }
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

/// The ASK or ASVK of a verified chain against the CRLs given, by the policy's rule: a listed
/// intermediate always fails; a missing or stale CRL fails only when revocation data is
/// required, and is a warning otherwise.
fn revocation(
    chain: &VerifiedChain,
    crls: &[&[u8]],
    opts: &Options,
    warnings: &mut Vec<String>,
) -> Result<(), VerifyError> {
    let require = opts.policy.require_revocation;
    let ark = &chain.root.subject_cn;
    let (skipped, problem) = match check_amd_revocation(
        &chain.intermediate,
        &chain.root,
        crls,
        opts.at,
    )? {
        AmdRevocation::Checked {
            stale,
            next_update,
            skipped,
            ..
        } => {
            let problem = stale.then(|| {
                (
                    Code::CollateralExpired,
                    format!(
                        "the newest CRL of {ark:?} is past its nextUpdate {}: revocations since then are unknown",
                        next_update.map_or_else(|| "?".into(), format_unix)
                    ),
                )
            });
            (skipped, problem)
        }
        AmdRevocation::NoCrl { skipped } => (
            skipped,
            Some((
                Code::MissingEndorsement,
                format!(
                    "the bundle has no CRL of {ark:?}, so a revoked {} would pass",
                    if chain.leaf_role == AmdRole::Vlek {
                        "ASVK"
                    } else {
                        "ASK"
                    }
                ),
            )),
        ),
    };
    for r in skipped {
        warnings.push(format!("an AMD CRL candidate was ignored: {r}"));
    }
    match problem {
        Some((code, message)) if require => Err(VerifyError::new(
            code,
            format!("{message}; revocation data is required (--require-revocation)"),
        )),
        Some((_, message)) => {
            warnings.push(format!(
                "{message}; accepted because revocation data is not required"
            ));
            Ok(())
        }
        None => Ok(()),
    }
}

/// Every certificate a bundle carries: its endorsements and its auxblob's certificate table,
/// with warnings about host-written data that was ignored. Endorsements that are not
/// certificates (CRLs, and Intel collateral, which cannot endorse an SEV-SNP report) are left
/// out; a bundle whose only endorsements are Intel's then fails for want of a VCEK.
pub fn bundle_certificates(bundle: &Bundle) -> Result<AmdEndorsements, VerifyError> {
    use thimble_evidence::bundle::EndorsementKind as K;
    let mut certs = Vec::new();
    let mut crls = Vec::new();
    let mut warnings = Vec::new();
    let intel: Vec<&str> = bundle
        .endorsements
        .iter()
        .filter_map(|e| match e.kind {
            K::TcbInfo => Some("tcb-info"),
            K::QeIdentity => Some("qe-identity"),
            K::PckCrl => Some("pck-crl"),
            K::RootCaCrl => Some("root-ca-crl"),
            _ => None,
        })
        .collect();
    if !intel.is_empty() {
        warnings.push(format!(
            "endorsements of kind {} ignored: Intel TDX collateral cannot endorse an SEV-SNP report",
            intel.join(", ")
        ));
    }
    for (i, e) in bundle.endorsements.iter().enumerate() {
        let is_certificate = matches!(
            e.kind,
            K::Vcek | K::Vlek | K::Ask | K::Asvk | K::Ark | K::Certificate
        );
        if e.format == "der" && e.kind == K::Crl {
            crls.push(
                e.bytes()
                    .map_err(|err| VerifyError::new(Code::MalformedBundle, err.to_string()))?,
            );
            continue;
        }
        if e.format != "der" || !is_certificate {
            continue;
        }
        let bytes = e
            .bytes()
            .map_err(|err| VerifyError::new(Code::MalformedBundle, err.to_string()))?;
        let cert = AmdCert::parse_der(&bytes).map_err(|err| {
            VerifyError::new(
                Code::MalformedCertificate,
                format!("endorsements[{i}] ({:?}): {err}", e.kind),
            )
        })?;
        certs.push(cert);
    }
    let auxblob = match &bundle.evidence {
        Evidence::SevSnp(e) => e.auxblob.as_deref(),
        Evidence::Tdx(_) | Evidence::AzureSevSnp(_) | Evidence::AzureTdx(_) => None,
    };
    if let Some(aux) = auxblob {
        // The host wrote this table: a malformed one is ignored (the endorsements may come from
        // elsewhere), not a reason to reject evidence that verifies without it.
        let table = CertTable::parse(aux).unwrap_or_else(|e| {
            warnings.push(format!("auxblob certificate table ignored: {e}"));
            CertTable::default()
        });
        for entry in table.entries {
            // A CRL entry is a revocation candidate, checked like any other; a certificate entry
            // that does not parse is ignored rather than fatal, since the host wrote it.
            if entry.kind == CertKind::Crl {
                crls.push(entry.data);
            } else if let Ok(cert) = AmdCert::parse_der(&entry.data) {
                certs.push(cert);
            }
        }
    }
    Ok(AmdEndorsements {
        certs,
        crls,
        warnings,
    })
}

/// What an SEV-SNP bundle (or the SEV-SNP report of an Azure bundle) carries to endorse its
/// report.
#[derive(Debug, Clone, Default)]
pub struct AmdEndorsements {
    /// The DER certificates among the endorsements, then those of the auxblob's table that
    /// parse (unverified; the chain search picks from them).
    pub certs: Vec<AmdCert>,
    /// AMD CRL candidates, DER as given.
    pub crls: Vec<Vec<u8>>,
    /// Host-written data that was ignored, and why.
    pub warnings: Vec<String>,
}

/// Verifies an SEV-SNP bundle (another TEE's is `malformed-bundle`: it has no SEV-SNP report).
/// `allow_simulated` says whether the caller trusts the simulation root (it only changes how a
/// failure of a simulated bundle is explained).
pub fn verify_bundle(bundle: &Bundle, opts: &Options, allow_simulated: bool) -> Outcome {
    let fail = |e: VerifyError| {
        let mut o = Outcome::new("sev-snp", format_unix(opts.at));
        o.errors.push(e);
        o.finish()
    };
    let report = match &bundle.evidence {
        Evidence::SevSnp(e) => &e.report,
        other => {
            return fail(VerifyError::new(
                Code::MalformedBundle,
                format!("a {} bundle has no SEV-SNP report", other.tee()),
            ));
        }
    };
    let AmdEndorsements {
        certs,
        crls,
        warnings,
    } = match bundle_certificates(bundle) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let crls: Vec<&[u8]> = crls.iter().map(Vec::as_slice).collect();
    let claimed = match crate::bundle::claimed_nonce(bundle) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let mut out = verify_report_with_crls(report, &certs, &crls, claimed.as_ref(), opts);
    out.warnings.extend(warnings);
    crate::outcome::explain_simulated(out, bundle.simulated, allow_simulated)
}
