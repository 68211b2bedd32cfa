// SPDX-License-Identifier: AGPL-3.0-or-later
//! Building and checking an AMD chain: VCEK under ASK (or VLEK under ASVK), the intermediate
//! under a pinned ARK, each signature checked over the bytes received, each certificate valid at
//! the verification time, and one product throughout.
//!
//! Intermediates must come from the evidence (THIM, KDS, auxblob or files); only the ARK is
//! pinned. A chain that names the wrong product's intermediate therefore fails instead of being
//! silently repaired.

use sha2::{Digest, Sha256};
use thimble_evidence::snp::cert::AmdRole;
use thimble_evidence::snp::{AmdCert, Product};
use thimble_evidence::time_fmt::format_unix;

use crate::outcome::{ChainLink, VerifyError};
use crate::roots::TrustedRoots;
use crate::signature::verify_cert_signature;

/// A chain that verified.
#[derive(Debug, Clone)]
pub struct VerifiedChain {
    pub product: Product,
    pub simulated: bool,
    pub leaf: AmdCert,
    pub leaf_role: AmdRole,
    pub intermediate: AmdCert,
    pub root: AmdCert,
}

impl VerifiedChain {
    /// The links for output, leaf first.
    pub fn links(&self) -> Vec<ChainLink> {
        let role = |r: AmdRole| format!("{r:?}").to_lowercase();
        let inter_role = if self.leaf_role == AmdRole::Vlek {
            AmdRole::Asvk
        } else {
            AmdRole::Ask
        };
        [
            (&self.leaf, role(self.leaf_role)),
            (&self.intermediate, role(inter_role)),
            (&self.root, "ark".into()),
        ]
        .into_iter()
        .map(|(c, r)| ChainLink {
            role: r,
            subject: c.subject.clone(),
            sha256: hex::encode(Sha256::digest(c.der())),
            not_before: format_unix(c.not_before),
            not_after: format_unix(c.not_after),
        })
        .collect()
    }
}

fn describe(c: &AmdCert) -> String {
    format!(
        "{} (sha256 {})",
        c.subject_cn,
        &hex::encode(Sha256::digest(c.der()))[..16]
    )
}

fn check_validity(c: &AmdCert, role: &str, at: i64) -> Result<(), VerifyError> {
    if c.valid_at(at) {
        return Ok(());
    }
    Err(VerifyError::authenticity(
        "certificate-expired",
        format!(
            "{role} {} is not valid at {} (valid from {} to {})",
            c.subject_cn,
            format_unix(at),
            format_unix(c.not_before),
            format_unix(c.not_after)
        ),
    ))
}

/// Verifies `leaf` (a VCEK or VLEK) up to a trusted root, using intermediates from `pool`.
pub fn verify_leaf(
    leaf: &AmdCert,
    pool: &[AmdCert],
    roots: &TrustedRoots,
    at: i64,
) -> Result<VerifiedChain, VerifyError> {
    let leaf_role = match leaf.amd_role() {
        Some(r @ (AmdRole::Vcek | AmdRole::Vlek)) => r,
        _ => {
            return Err(VerifyError::authenticity(
                "chain",
                format!("{} is not a VCEK or VLEK certificate", describe(leaf)),
            ));
        }
    };
    let wanted = if leaf_role == AmdRole::Vlek {
        AmdRole::Asvk
    } else {
        AmdRole::Ask
    };
    let candidates: Vec<&AmdCert> = pool
        .iter()
        .filter(|c| c.amd_role() == Some(wanted) && leaf.issued_by_name(c))
        .collect();
    if candidates.is_empty() {
        return Err(VerifyError::authenticity(
            "chain",
            format!(
                "no {} named {:?} among the endorsements, so the {} cannot be chained",
                if wanted == AmdRole::Asvk {
                    "ASVK"
                } else {
                    "ASK"
                },
                leaf.issuer_cn,
                if leaf_role == AmdRole::Vlek {
                    "VLEK"
                } else {
                    "VCEK"
                }
            ),
        ));
    }
    let Some(intermediate) = candidates
        .iter()
        .find(|c| verify_cert_signature(leaf, c).is_ok())
    else {
        return Err(VerifyError::authenticity(
            "chain",
            format!(
                "{} is not signed by {}",
                describe(leaf),
                describe(candidates[0])
            ),
        ));
    };
    let Some(root) = roots.roots.iter().find(|r| {
        intermediate.issued_by_name(&r.cert) && verify_cert_signature(intermediate, &r.cert).is_ok()
    }) else {
        return Err(VerifyError::authenticity(
            "chain",
            format!(
                "{} does not chain to a pinned AMD root key",
                describe(intermediate)
            ),
        ));
    };
    if let Some(p) = leaf.product() {
        if p != root.product {
            return Err(VerifyError::authenticity(
                "chain",
                format!(
                    "{} names product {p} but chains to the {} root",
                    describe(leaf),
                    root.product
                ),
            ));
        }
    }
    check_validity(
        leaf,
        if leaf_role == AmdRole::Vlek {
            "VLEK"
        } else {
            "VCEK"
        },
        at,
    )?;
    check_validity(
        intermediate,
        if wanted == AmdRole::Asvk {
            "ASVK"
        } else {
            "ASK"
        },
        at,
    )?;
    check_validity(&root.cert, "ARK", at)?;
    Ok(VerifiedChain {
        product: root.product,
        simulated: root.simulated,
        leaf: leaf.clone(),
        leaf_role,
        intermediate: (*intermediate).clone(),
        root: root.cert.clone(),
    })
}

/// Verifies a set of certificates on its own (no report): every VCEK/VLEK in it must chain.
pub fn verify_certificates(
    certs: &[AmdCert],
    roots: &TrustedRoots,
    at: i64,
) -> Result<Vec<VerifiedChain>, VerifyError> {
    let leaves: Vec<&AmdCert> = certs
        .iter()
        .filter(|c| matches!(c.amd_role(), Some(AmdRole::Vcek | AmdRole::Vlek)))
        .collect();
    if leaves.is_empty() {
        return Err(VerifyError::authenticity(
            "missing-endorsement",
            "no VCEK or VLEK certificate given",
        ));
    }
    leaves
        .into_iter()
        .map(|l| verify_leaf(l, certs, roots, at))
        .collect()
}
