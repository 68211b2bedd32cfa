// SPDX-License-Identifier: Apache-2.0
//! Signature checks over the exact bytes received, with `ring`: RSASSA-PSS (AMD ARK/ASK/VCEK),
//! PKCS#1 v1.5 and ECDSA for certificates and CRLs, ECDSA P-384 for the SNP report, and raw
//! ECDSA P-256 `r ‖ s` for Intel's quote, QE report and collateral signatures.
//!
//! The signature parameters are enforced, not just read: RSASSA-PSS is accepted only with
//! SHA-384, MGF1-SHA-384 and a 48-byte salt (what AMD signs with, exactly what `ring`'s
//! `RSA_PSS_2048_8192_SHA384` verifies) or with SHA-256, MGF1-SHA-256 and a 32-byte salt; any
//! other combination is [`SignatureError::Unsupported`]. The algorithm is not tied to the
//! vendor: an AMD certificate signed with PKCS#1 v1.5 by the right key would verify too.

use std::cell::Cell;

use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use thimble_evidence::snp::cert::{KeyAlg, SigAlg};
use thimble_evidence::snp::{AmdCert, SnpReport};
use thimble_evidence::tdx::IntelCrl;

thread_local! {
    static CHECKS: Cell<u64> = const { Cell::new(0) };
}

/// How many signatures this thread has verified (or tried to) since it started. Verification
/// cost is dominated by signature checks, so the tests bound a hostile bundle's cost by this
/// count rather than by time.
pub fn signature_checks() -> u64 {
    CHECKS.with(Cell::get)
}

fn counted(
    key: UnparsedPublicKey<&[u8]>,
    message: &[u8],
    sig: &[u8],
) -> Result<(), SignatureError> {
    CHECKS.with(|c| c.set(c.get().saturating_add(1)));
    key.verify(message, sig)
        .map_err(|_| SignatureError::Invalid)
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The signature algorithm (with its parameters) and the signer's key type are not a pair
    /// this module verifies.
    #[error("signature algorithm {alg} with a {key} key is not supported")]
    Unsupported {
        /// The signature algorithm, as debug text.
        alg: String,
        /// The key algorithm, as debug text.
        key: String,
    },
    /// The signature does not verify (or the key does not parse).
    #[error("signature does not verify")]
    Invalid,
}

fn cert_algorithm(
    sig: &SigAlg,
    key: &KeyAlg,
) -> Result<&'static dyn VerificationAlgorithm, SignatureError> {
    let alg: &'static dyn VerificationAlgorithm = match (sig, key) {
        (
            SigAlg::RsaPss {
                hash: "sha384",
                mgf1_hash: "sha384",
                salt_len: 48,
            },
            KeyAlg::Rsa,
        ) => &signature::RSA_PSS_2048_8192_SHA384,
        (
            SigAlg::RsaPss {
                hash: "sha256",
                mgf1_hash: "sha256",
                salt_len: 32,
            },
            KeyAlg::Rsa,
        ) => &signature::RSA_PSS_2048_8192_SHA256,
        (SigAlg::RsaPkcs1Sha256, KeyAlg::Rsa) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (SigAlg::RsaPkcs1Sha384, KeyAlg::Rsa) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (SigAlg::EcdsaSha256, KeyAlg::EcP256) => &signature::ECDSA_P256_SHA256_ASN1,
        (SigAlg::EcdsaSha384, KeyAlg::EcP384) => &signature::ECDSA_P384_SHA384_ASN1,
        (SigAlg::EcdsaSha256, KeyAlg::EcP384) => &signature::ECDSA_P384_SHA256_ASN1,
        (SigAlg::EcdsaSha384, KeyAlg::EcP256) => &signature::ECDSA_P256_SHA384_ASN1,
        _ => {
            return Err(SignatureError::Unsupported {
                alg: format!("{sig:?}"),
                key: format!("{key:?}"),
            });
        }
    };
    Ok(alg)
}

/// Verifies that `issuer`'s key signed `cert`'s TBSCertificate as received.
pub fn verify_cert_signature(cert: &AmdCert, issuer: &AmdCert) -> Result<(), SignatureError> {
    let alg = cert_algorithm(&cert.signature_alg, &issuer.key_alg)?;
    counted(
        UnparsedPublicKey::new(alg, &issuer.public_key),
        cert.tbs_bytes(),
        &cert.signature,
    )
}

/// Verifies that `issuer`'s key signed `crl`'s TBSCertList as received.
pub fn verify_crl_signature(crl: &IntelCrl, issuer: &AmdCert) -> Result<(), SignatureError> {
    let alg = cert_algorithm(&crl.signature_alg, &issuer.key_alg)?;
    counted(
        UnparsedPublicKey::new(alg, &issuer.public_key),
        crl.tbs_bytes(),
        &crl.signature,
    )
}

/// Verifies an RSASSA-PKCS1-v1_5 / SHA-256 signature under the RSA key (`n`, `e`), big-endian
/// integers as a JWK carries them (the vTPM attestation key `HCLAkPub`).
pub fn verify_rsa_pkcs1_sha256(
    n: &[u8],
    e: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    // ring wants minimal big-endian integers; a JWK should have no leading zeros (RFC 7518
    // §6.3.1.1) but one that has them is the same key.
    let strip = |b: &[u8]| -> Vec<u8> {
        let i = b.iter().position(|&x| x != 0).unwrap_or(b.len());
        b[i..].to_vec()
    };
    CHECKS.with(|c| c.set(c.get().saturating_add(1)));
    signature::RsaPublicKeyComponents {
        n: strip(n),
        e: strip(e),
    }
    .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, signature)
    .map_err(|_| SignatureError::Invalid)
}

/// Verifies a raw ECDSA P-256 / SHA-256 signature (`r ‖ s`, 64 bytes big-endian) over `message`
/// with `public_key`, an uncompressed SEC1 point (65 bytes, 0x04 first).
pub fn verify_p256_fixed(
    public_key: &[u8],
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), SignatureError> {
    counted(
        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, public_key),
        message,
        signature,
    )
}

/// Verifies the report signature (ECDSA P-384, SHA-384, over bytes 0x000..0x2A0) with the
/// VCEK/VLEK public key.
pub fn verify_report_signature(report: &SnpReport, signer: &AmdCert) -> Result<(), SignatureError> {
    if signer.key_alg != KeyAlg::EcP384 {
        return Err(SignatureError::Unsupported {
            alg: "ECDSA P-384".into(),
            key: format!("{:?}", signer.key_alg),
        });
    }
    counted(
        UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, &signer.public_key),
        report.signed_bytes(),
        &report.signature_fixed(),
    )
}
