// SPDX-License-Identifier: Apache-2.0
//! Intel chains and CRLs: a PCK certificate under the PCK Platform or Processor CA, a TCB Signing
//! certificate, each up to the pinned Intel SGX Root CA; each signature checked over the bytes
//! received, each certificate valid at the verification time, and revocation checked against the
//! root CA CRL and the PCK CRL (each CRL signed by the CA it names, and current).
//!
//! As for AMD, only the root is pinned: intermediates come from the quote or the collateral, and
//! a self-issued certificate among them is never taken as a root (a look-alike "Intel SGX Root
//! CA" in the input is ignored, the pinned one decides). The search is bounded like the AMD one:
//! a candidate issuer must match by name and key identifier before its signature is checked,
//! repeats count once, and at most [`MAX_CANDIDATES`] are tried at each step.

use thimble_evidence::digest::Sha256;
use thimble_evidence::snp::AmdCert;
use thimble_evidence::tdx::IntelCrl;
use thimble_evidence::time_fmt::format_unix;

use crate::outcome::{ChainLink, Code, VerifyError};
use crate::roots::IntelRoots;
use crate::signature::{verify_cert_signature, verify_crl_signature};

/// Intel's chains are leaf, at most one intermediate, root; a little slack, and no more, so that
/// a long input cannot make the search expensive.
const MAX_DEPTH: usize = 4;

/// The most issuer candidates whose signature is tried at one step of a chain.
pub const MAX_CANDIDATES: usize = 4;

/// A verified chain, leaf first, the pinned root last: always at least two certificates, since
/// [`verify_intel_chain`] only returns once it has appended a pinned root to the leaf.
#[derive(Debug, Clone)]
pub struct IntelChain {
    /// The certificates, leaf first and the pinned root last. Accessors such as
    /// [`IntelChain::leaf`] index it and rely on the two-certificate minimum.
    pub certs: Vec<AmdCert>,
}

impl IntelChain {
    /// The leaf certificate.
    pub fn leaf(&self) -> &AmdCert {
        &self.certs[0]
    }

    /// The certificate that issued the leaf.
    pub fn leaf_issuer(&self) -> &AmdCert {
        &self.certs[1]
    }

    /// The pinned root the chain ends at.
    pub fn root(&self) -> &AmdCert {
        &self.certs[self.certs.len() - 1]
    }

    /// The CAs above the leaf, root included.
    pub fn cas(&self) -> &[AmdCert] {
        &self.certs[1..]
    }

    /// The links for output, with `leaf_role` for the leaf; CAs are named by their CN.
    pub fn links(&self, leaf_role: &str) -> Vec<ChainLink> {
        self.certs
            .iter()
            .enumerate()
            .map(|(i, c)| ChainLink {
                role: if i == 0 {
                    leaf_role.to_string()
                } else {
                    ca_role(c)
                },
                subject: c.subject.clone(),
                sha256: hex::encode(Sha256::digest(c.der())),
                not_before: format_unix(c.not_before),
                not_after: format_unix(c.not_after),
            })
            .collect()
    }
}

fn ca_role(c: &AmdCert) -> String {
    match c.subject_cn.as_str() {
        "Intel SGX Root CA" => "intel-root-ca".into(),
        "Intel SGX PCK Platform CA" => "pck-platform-ca".into(),
        "Intel SGX PCK Processor CA" => "pck-processor-ca".into(),
        other => other.to_lowercase().replace(' ', "-"),
    }
}

fn describe(c: &AmdCert) -> String {
    format!(
        "{} (sha256 {})",
        c.subject_cn,
        &hex::encode(Sha256::digest(c.der()))[..16]
    )
}

fn check_validity(c: &AmdCert, at: i64) -> Result<(), VerifyError> {
    if c.valid_at(at) {
        return Ok(());
    }
    Err(VerifyError::new(
        Code::CertificateExpired,
        format!(
            "{} is not valid at {} (valid from {} to {})",
            c.subject_cn,
            format_unix(at),
            format_unix(c.not_before),
            format_unix(c.not_after)
        ),
    ))
}

/// Verifies `leaf` up to a pinned Intel root, with CAs from `pool`. `what` names the chain in
/// messages ("PCK", "TCB info signer").
pub fn verify_intel_chain(
    leaf: &AmdCert,
    pool: &[AmdCert],
    roots: &IntelRoots,
    at: i64,
    what: &str,
) -> Result<IntelChain, VerifyError> {
    let mut certs = vec![leaf.clone()];
    while let Some(current) = certs.last() {
        if let Some(root) = roots
            .roots()
            .iter()
            .find(|r| current.may_be_issued_by(r) && verify_cert_signature(current, r).is_ok())
        {
            certs.push(root.clone());
            break;
        }
        if certs.len() >= MAX_DEPTH {
            return Err(VerifyError::new(
                Code::Chain,
                format!("{what} chain is longer than {MAX_DEPTH} certificates"),
            ));
        }
        let candidates = crate::chain::distinct(pool.iter().filter(|c| {
            c.is_ca
                && !c.self_issued()
                && current.may_be_issued_by(c)
                && !certs.iter().any(|seen| seen.der() == c.der())
        }));
        let Some(issuer) = candidates
            .into_iter()
            .take(MAX_CANDIDATES)
            .find(|c| verify_cert_signature(current, c).is_ok())
        else {
            return Err(VerifyError::new(
                Code::Chain,
                format!(
                    "{what} chain: no certificate named {:?} signs {}, and it does not chain to the pinned Intel SGX Root CA",
                    current.issuer_cn,
                    describe(current)
                ),
            ));
        };
        certs.push(issuer.clone());
    }
    for c in &certs {
        check_validity(c, at)?;
    }
    Ok(IntelChain { certs })
}

/// Checks that `crl` names `issuer` and is signed by its key. Its dates are the caller's to
/// check (stale CRLs may be allowed).
pub fn check_crl_issuer(crl: &IntelCrl, issuer: &AmdCert) -> Result<(), VerifyError> {
    if crl.issuer_raw() != issuer.subject_raw() {
        return Err(VerifyError::new(
            Code::CollateralMismatch,
            format!(
                "CRL issued by {:?} was given where one by {:?} is needed",
                crl.issuer_cn, issuer.subject_cn
            ),
        ));
    }
    verify_crl_signature(crl, issuer).map_err(|e| {
        VerifyError::new(
            Code::CollateralSignature,
            format!(
                "CRL of {:?} is not signed by {}: {e}",
                crl.issuer_cn,
                describe(issuer)
            ),
        )
    })
}

/// Fails if `cert` is listed in `crl` (which must be its issuer's).
pub fn check_not_revoked(cert: &AmdCert, crl: &IntelCrl) -> Result<(), VerifyError> {
    let serial = hex::decode(&cert.serial_hex).unwrap_or_default();
    if crl.is_revoked(&serial) {
        return Err(VerifyError::new(
            Code::CrlRevoked,
            format!(
                "{} (serial {}) is revoked by the CRL of {:?}",
                describe(cert),
                cert.serial_hex,
                crl.issuer_cn
            ),
        ));
    }
    Ok(())
}
