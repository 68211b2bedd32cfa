// SPDX-License-Identifier: Apache-2.0
//! Building and checking an AMD chain: VCEK under ASK (or VLEK under ASVK), the intermediate
//! under a pinned ARK, each signature checked over the bytes received, each certificate valid at
//! the verification time, and one product throughout.
//!
//! Intermediates must come from the evidence (THIM, KDS, auxblob or files); only the ARK is
//! pinned. A chain that names the wrong product's intermediate therefore fails instead of being
//! silently repaired.
//!
//! The pool of certificates comes from an untrusted bundle, so the search is bounded: identical
//! certificates count once, a candidate issuer must match by name (and by key identifier where
//! both certificates have one) before its signature is checked, and at most
//! [`MAX_INTERMEDIATES`] candidates are tried for a leaf. The cost of a chain is then a handful
//! of signature checks however many certificates the bundle carries.

use thimble_evidence::digest::Sha256;
use thimble_evidence::snp::cert::AmdRole;
use thimble_evidence::snp::{AmdCert, Product};
use thimble_evidence::time_fmt::format_unix;

use crate::outcome::{ChainLink, Code, VerifyError};
use crate::roots::{Root, TrustedRoots};
use crate::signature::verify_cert_signature;

/// The most intermediates (ASK or ASVK) whose signature is tried for one leaf. AMD has one per
/// product; a bundle may carry the same one from several sources, which count once.
pub const MAX_INTERMEDIATES: usize = 4;

/// Certificates of `pool` that are not byte-for-byte repeats of an earlier one, in order.
pub fn distinct<'a>(pool: impl IntoIterator<Item = &'a AmdCert>) -> Vec<&'a AmdCert> {
    let mut out: Vec<&AmdCert> = Vec::new();
    for c in pool {
        if !out.iter().any(|o| o.der() == c.der()) {
            out.push(c);
        }
    }
    out
}

/// A chain that verified.
#[derive(Debug, Clone)]
pub struct VerifiedChain {
    /// The product of the root the chain ends at.
    pub product: Product,
    /// Whether that root is a simulation root.
    pub simulated: bool,
    /// The VCEK or VLEK.
    pub leaf: AmdCert,
    /// [`AmdRole::Vcek`] or [`AmdRole::Vlek`].
    pub leaf_role: AmdRole,
    /// The ASK (for a VCEK) or ASVK (for a VLEK) that signed the leaf.
    pub intermediate: AmdCert,
    /// The ARK that signed the intermediate.
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
    Err(VerifyError::new(
        Code::CertificateExpired,
        format!(
            "{role} {} is not valid at {} (valid from {} to {})",
            c.subject_cn,
            format_unix(at),
            format_unix(c.not_before),
            format_unix(c.not_after)
        ),
    ))
}

/// Verifies `leaf` (a VCEK or VLEK) up to a trusted root, using intermediates from `pool`:
/// the leaf's signature by an ASK (ASVK for a VLEK) of `pool`, the intermediate's by one of
/// `roots`, the leaf's productName against the root's product, and every certificate's
/// validity at `at`. Revocation is not checked here (see [`crate::amd_crl`]). Errors are
/// [`Code::Chain`] or [`Code::CertificateExpired`].
pub fn verify_leaf(
    leaf: &AmdCert,
    pool: &[AmdCert],
    roots: &TrustedRoots,
    at: i64,
) -> Result<VerifiedChain, VerifyError> {
    let leaf_role = match leaf.amd_role() {
        Some(r @ (AmdRole::Vcek | AmdRole::Vlek)) => r,
        _ => {
            return Err(VerifyError::new(
                Code::Chain,
                format!("{} is not a VCEK or VLEK certificate", describe(leaf)),
            ));
        }
    };
    let wanted = if leaf_role == AmdRole::Vlek {
        AmdRole::Asvk
    } else {
        AmdRole::Ask
    };
    let candidates: Vec<&AmdCert> = distinct(
        pool.iter()
            .filter(|c| c.amd_role() == Some(wanted) && leaf.may_be_issued_by(c)),
    )
    .into_iter()
    .take(MAX_INTERMEDIATES)
    .collect();
    if candidates.is_empty() {
        return Err(VerifyError::new(
            Code::Chain,
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
        return Err(VerifyError::new(
            Code::Chain,
            format!(
                "{} is not signed by {}",
                describe(leaf),
                describe(candidates[0])
            ),
        ));
    };
    // The roots of the leaf's own product first: pinned roots are parsed on first use
    // (roots.rs), so a Genoa chain then parses only the Genoa ARK. The order changes no outcome:
    // at most one root can sign the intermediate, and a product mismatch is still reported below.
    let same = |r: &&Root| leaf.product().is_none_or(|p| p == r.product());
    let mut ordered = roots
        .roots()
        .iter()
        .filter(same)
        .chain(roots.roots().iter().filter(|r| !same(r)));
    let Some((root, ark)) = ordered.find_map(|r| {
        let ark = r.cert()?;
        (intermediate.may_be_issued_by(ark) && verify_cert_signature(intermediate, ark).is_ok())
            .then_some((r, ark))
    }) else {
        return Err(VerifyError::new(
            Code::Chain,
            format!(
                "{} does not chain to a pinned AMD root key",
                describe(intermediate)
            ),
        ));
    };
    if let Some(p) = leaf.product() {
        if p != root.product() {
            return Err(VerifyError::new(
                Code::Chain,
                format!(
                    "{} names product {p} but chains to the {} root",
                    describe(leaf),
                    root.product()
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
    check_validity(ark, "ARK", at)?;
    Ok(VerifiedChain {
        product: root.product(),
        simulated: root.is_simulated(),
        leaf: leaf.clone(),
        leaf_role,
        intermediate: (*intermediate).clone(),
        root: ark.clone(),
    })
}

/// Verifies a set of certificates on its own (no report): every VCEK/VLEK in it must chain.
pub fn verify_certificates(
    certs: &[AmdCert],
    roots: &TrustedRoots,
    at: i64,
) -> Result<Vec<VerifiedChain>, VerifyError> {
    let leaves = distinct(
        certs
            .iter()
            .filter(|c| matches!(c.amd_role(), Some(AmdRole::Vcek | AmdRole::Vlek))),
    );
    if leaves.is_empty() {
        return Err(VerifyError::new(
            Code::MissingEndorsement,
            "no VCEK or VLEK certificate given",
        ));
    }
    leaves
        .into_iter()
        .map(|l| verify_leaf(l, certs, roots, at))
        .collect()
}
