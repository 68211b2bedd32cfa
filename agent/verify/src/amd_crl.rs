// SPDX-License-Identifier: Apache-2.0
//! AMD revocation: whether the ASK or ASVK of a verified chain is listed in a CRL of the ARK the
//! chain ended at. Pure: CRL bytes, the two certificates and a time in, a finding out.
//!
//! AMD KDS publishes one CRL per product and key type, `/vcek/v1/{product}/crl` and
//! `/vlek/v1/{product}/crl`. Both are issued and signed by the product's ARK (the ASK's and the
//! ASVK's CRL distribution points name them, and the VCEK and VLEK chains share one ARK), with
//! RSASSA-PSS (SHA-384, MGF1-SHA-384, salt 48), and both may only list certificates the ARK
//! issued: ASKs and ASVKs. VCEKs and VLEKs are issued by the intermediate, which publishes no
//! CRL; AMD replaces them by TCB version instead of revoking them, so nothing here checks the leaf.
//!
//! The CRLs come from unsigned bundle data (KDS answers stored by `collect`, the host's
//! certificate table, imported files), so a candidate counts only when it proves itself: it
//! parses, its issuer name is the ARK's subject byte for byte, it has no critical extension this
//! code does not understand, its Issuing Distribution Point (if any) covers the intermediate, and
//! the ARK's key signed it. Junk is skipped, so data a host or a network adds can neither fail a
//! verification nor pass one.
//!
//! Staleness is reported, not enforced; the caller decides with its policy. A CRL whose
//! thisUpdate is after the verification time still counts: revocation is never undone (AMD's
//! CRLs are complete CRLs without `removeFromCRL` entries), so a key revoked now was not
//! trustworthy at an earlier `at` either, and hiding a later revocation from a verification
//! "as of" an earlier time would only help an attacker. For the same reason a revocation listed by
//! any good CRL is final, not only one listed by the newest.

use thimble_evidence::crl::{Crl, CrlError};
use thimble_evidence::digest::Sha256;
use thimble_evidence::snp::AmdCert;
use thimble_evidence::time_fmt::format_unix;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::outcome::{Code, VerifyError};
use crate::signature::{SignatureError, verify_crl_signature};

/// Most distinct candidates that reach the signature check. A genuine bundle holds one or two
/// (the KDS answer and the host's table entry, often the same bytes); anything that fails to
/// parse, names another issuer or is out of scope is dropped before this point at no signature
/// cost. Checking only some of more plausible candidates could let forged ones crowd out a
/// genuine revocation, so more than this many is an error, not a truncation.
pub const MAX_CRL_CANDIDATES: usize = 8;

/// Most skipped candidates whose reasons are kept for warnings.
const MAX_SKIPPED_REASONS: usize = 16;

/// Most CRL distribution point URIs read from the intermediate.
const MAX_DISTRIBUTION_POINTS: usize = 16;

/// Why a CRL candidate was not used. None of these is an error of the verification: the candidate
/// is skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CrlRejection {
    /// The bytes are not a CRL.
    #[error("CRL does not parse")]
    Malformed(#[source] CrlError),
    /// The CRL's issuer name is not the ARK's subject, byte for byte.
    #[error("CRL is issued by {issuer:?}, not by the ARK {ark:?}")]
    Issuer {
        /// The CRL's issuer, as text.
        issuer: String,
        /// The ARK's subject, as text.
        ark: String,
    },
    /// RFC 5280 §5.2: a CRL with a critical extension the reader does not process must not be
    /// used to decide revocation (a delta CRL, for one, is not complete on its own).
    #[error("CRL has critical extension {oid}, which is not understood")]
    CriticalExtension {
        /// The extension's OID in dotted form.
        oid: String,
    },
    /// RFC 5280 §6.3.3 (b)(2): the Issuing Distribution Point does not cover the certificate.
    #[error("CRL scope does not cover {subject:?}: {why}")]
    OutOfScope {
        /// The intermediate's subject, as text.
        subject: String,
        /// Which part of the Issuing Distribution Point excludes it.
        why: &'static str,
    },
    /// The ARK's key did not sign the CRL (or its algorithm is not supported).
    #[error("CRL is not signed by the ARK")]
    Signature(#[source] SignatureError),
}

/// What the revocation check found, for warnings and claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmdRevocation {
    /// A good CRL was found and does not list the intermediate. The fields describe the one with
    /// the latest thisUpdate.
    Checked {
        /// SHA-256 of the CRL's DER, hex.
        crl_sha256: String,
        /// Its thisUpdate, seconds since the Unix epoch.
        this_update: i64,
        /// Its nextUpdate, seconds since the Unix epoch, when it has one.
        next_update: Option<i64>,
        /// nextUpdate is before the verification time.
        stale: bool,
        /// Candidates that were not used, and why (at most 16 are kept).
        skipped: Vec<CrlRejection>,
    },
    /// No candidate was a good CRL of the ARK.
    NoCrl {
        /// Candidates that were not used, and why (at most 16 are kept).
        skipped: Vec<CrlRejection>,
    },
}

/// The URIs of `cert`'s CRL Distribution Points (fullName), to match a CRL's Issuing
/// Distribution Point against.
fn distribution_points(cert: &AmdCert) -> Vec<String> {
    let Ok((_, x509)) = X509Certificate::from_der(cert.der()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for ext in x509.extensions() {
        let ParsedExtension::CRLDistributionPoints(points) = ext.parsed_extension() else {
            continue;
        };
        for point in points.iter() {
            if let Some(DistributionPointName::FullName(names)) = &point.distribution_point {
                for name in names {
                    if let GeneralName::URI(uri) = name {
                        if out.len() < MAX_DISTRIBUTION_POINTS {
                            out.push((*uri).to_string());
                        }
                    }
                }
            }
        }
    }
    out
}

/// RFC 5280 §6.3.3 (b)(2) for the two certificates an ARK issues: whether `crl` covers
/// `intermediate`, whose distribution points are `cdp`.
///
/// AMD's CRLs carry no Issuing Distribution Point, so they cover everything the ARK issued. If
/// one ever names its endpoint, this is what keeps the VCEK CRL from standing in for the VLEK
/// CRL (or the other way round): the name must be one of the intermediate's distribution points.
fn check_scope(crl: &Crl, intermediate: &AmdCert, cdp: &[String]) -> Result<(), CrlRejection> {
    let Some(idp) = &crl.issuing_distribution_point else {
        return Ok(());
    };
    let out = |why| {
        Err(CrlRejection::OutOfScope {
            subject: intermediate.subject_cn.clone(),
            why,
        })
    };
    if idp.only_contains_attribute_certs {
        return out("the CRL only lists attribute certificates");
    }
    if idp.only_contains_user_certs && intermediate.is_ca {
        return out("the CRL only lists end-entity certificates");
    }
    if idp.only_some_reasons {
        return out("the CRL only lists some revocation reasons, so it is not complete");
    }
    if idp.indirect_crl {
        return out("indirect CRLs are not supported");
    }
    if idp.other_names {
        return out("the distribution point names are not URIs");
    }
    if !idp.uris.is_empty() && !idp.uris.iter().any(|u| cdp.contains(u)) {
        return out("the CRL's distribution point is not one of the certificate's");
    }
    Ok(())
}

/// The checks that cost no signature: parse, issuer, extensions, scope.
fn screen(
    bytes: &[u8],
    intermediate: &AmdCert,
    root: &AmdCert,
    cdp: &[String],
) -> Result<Crl, CrlRejection> {
    let crl = Crl::parse(bytes).map_err(CrlRejection::Malformed)?;
    if crl.issuer_raw() != root.subject_raw() {
        return Err(CrlRejection::Issuer {
            issuer: crl.issuer_cn.clone(),
            ark: root.subject_cn.clone(),
        });
    }
    if let Some(oid) = crl.unhandled_critical.first() {
        return Err(CrlRejection::CriticalExtension { oid: oid.clone() });
    }
    check_scope(&crl, intermediate, cdp)?;
    Ok(crl)
}

/// Checks one CRL candidate: it must parse, be issued by `root` (byte equality of the names),
/// have no critical extension that is not understood, cover `intermediate`, and be signed by
/// `root`'s key. Whether it lists `intermediate` and whether it is current are left to the
/// caller ([`lists`], [`Crl::next_update`]). `collect` uses this to judge one CRL it fetched.
pub fn authenticate_amd_crl(
    bytes: &[u8],
    intermediate: &AmdCert,
    root: &AmdCert,
) -> Result<Crl, CrlRejection> {
    let crl = screen(
        bytes,
        intermediate,
        root,
        &distribution_points(intermediate),
    )?;
    verify_crl_signature(&crl, root).map_err(CrlRejection::Signature)?;
    Ok(crl)
}

/// Whether `crl` lists `cert`'s serial number. Serials are compared as unsigned integers, so a
/// leading zero octet in one encoding and not the other does not hide an entry.
pub fn lists(crl: &Crl, cert: &AmdCert) -> bool {
    let Ok(serial) = hex::decode(&cert.serial_hex) else {
        return false;
    };
    let trim = |s: &[u8]| -> Vec<u8> { s.iter().copied().skip_while(|b| *b == 0).collect() };
    let wanted = trim(&serial);
    crl.revoked.iter().any(|s| trim(s) == wanted)
}

/// Checks the intermediate of a verified chain (the ASK or ASVK) against the CRLs among
/// `candidates`: the bundle's endorsements of kind `crl` and the `auxblob`'s CRL entries. `root`
/// is the ARK the chain ended at and `at` the verification time (seconds since the epoch).
///
/// Identical candidates are considered once. `Err(crl-revoked)` when a good CRL lists the
/// intermediate; `Err(chain)` when `intermediate` does not name `root` as its issuer (a caller
/// defect: an ARK's CRL says nothing about another issuer's certificates); and
/// `Err(malformed-collateral)` when more than [`MAX_CRL_CANDIDATES`] distinct candidates pass
/// every check but the signature.
pub fn check_amd_revocation(
    intermediate: &AmdCert,
    root: &AmdCert,
    candidates: &[&[u8]],
    at: i64,
) -> Result<AmdRevocation, VerifyError> {
    if !intermediate.issued_by_name(root) {
        return Err(VerifyError::new(
            Code::Chain,
            format!(
                "{:?} is not issued by {:?}, so that ARK's CRL cannot revoke it",
                intermediate.subject_cn, root.subject_cn
            ),
        ));
    }
    let cdp = distribution_points(intermediate);
    let mut skipped = Vec::new();
    let mut skip = |r: CrlRejection| {
        if skipped.len() < MAX_SKIPPED_REASONS {
            skipped.push(r);
        }
    };

    let mut seen: Vec<[u8; 32]> = Vec::new();
    let mut plausible = Vec::new();
    for bytes in candidates {
        let digest: [u8; 32] = Sha256::digest(bytes);
        if seen.contains(&digest) {
            continue;
        }
        seen.push(digest);
        match screen(bytes, intermediate, root, &cdp) {
            Ok(crl) => plausible.push(crl),
            Err(r) => skip(r),
        }
    }
    if plausible.len() > MAX_CRL_CANDIDATES {
        return Err(VerifyError::new(
            Code::MalformedCollateral,
            format!(
                "{} different CRLs claim to be issued by {:?}; at most {MAX_CRL_CANDIDATES} are checked",
                plausible.len(),
                root.subject_cn
            ),
        ));
    }

    let mut newest: Option<Crl> = None;
    for crl in plausible {
        if let Err(e) = verify_crl_signature(&crl, root) {
            skip(CrlRejection::Signature(e));
            continue;
        }
        if lists(&crl, intermediate) {
            return Err(VerifyError::new(
                Code::CrlRevoked,
                format!(
                    "{:?} (serial {}) is revoked by the CRL of {:?} issued {}",
                    intermediate.subject_cn,
                    intermediate.serial_hex,
                    root.subject_cn,
                    format_unix(crl.this_update)
                ),
            ));
        }
        if newest
            .as_ref()
            .is_none_or(|n| crl.this_update > n.this_update)
        {
            newest = Some(crl);
        }
    }
    Ok(match newest {
        Some(crl) => AmdRevocation::Checked {
            crl_sha256: hex::encode(Sha256::digest(crl.der())),
            this_update: crl.this_update,
            next_update: crl.next_update,
            stale: crl.next_update.is_some_and(|n| n < at),
            skipped,
        },
        None => AmdRevocation::NoCrl { skipped },
    })
}

#[cfg(test)]
mod tests {
    use thimble_evidence::cert_file::pem_certificates;

    use super::*;

    // The simulated chain and its CRLs (agent/sim/keys, see its README): the ARK's empty CRL
    // (2024-01-01..2045-01-01), an older one revoking the ASK, one whose Issuing Distribution
    // Point names the VLEK CRL, and a delta CRL.
    const ARK: &[u8] = include_bytes!("../../sim/keys/ark.der");
    const ASK: &[u8] = include_bytes!("../../sim/keys/ask.der");
    const VCEK: &[u8] = include_bytes!("../../sim/keys/vcek.der");
    const CRL: &[u8] = include_bytes!("../../sim/keys/crl.der");
    const CRL_ASK_REVOKED: &[u8] = include_bytes!("../../sim/keys/crl_ask_revoked.der");
    const CRL_OTHER_SCOPE: &[u8] = include_bytes!("../../sim/keys/crl_other_scope.der");
    const CRL_DELTA: &[u8] = include_bytes!("../../sim/keys/crl_delta.der");
    /// 2026-01-01T00:00:00Z.
    const AT: i64 = 1_767_225_600;

    fn chain() -> (AmdCert, AmdCert) {
        (
            AmdCert::parse_der(ASK).unwrap(),
            AmdCert::parse_der(ARK).unwrap(),
        )
    }

    fn skipped(r: &AmdRevocation) -> &[CrlRejection] {
        match r {
            AmdRevocation::Checked { skipped, .. } | AmdRevocation::NoCrl { skipped } => skipped,
        }
    }

    /// `crl` with one byte of its signature changed.
    fn tampered(crl: &[u8]) -> Vec<u8> {
        let mut v = crl.to_vec();
        let last = v.len() - 1;
        v[last] ^= 1;
        v
    }

    #[test]
    fn good_crl() {
        let (ask, ark) = chain();
        let r = check_amd_revocation(&ask, &ark, &[CRL], AT).unwrap();
        let crl = Crl::parse(CRL).unwrap();
        assert_eq!(
            r,
            AmdRevocation::Checked {
                crl_sha256: hex::encode(Sha256::digest(CRL)),
                this_update: 1_704_067_200,       // 2024-01-01
                next_update: Some(2_366_841_600), // 2045-01-01
                stale: false,
                skipped: Vec::new(),
            }
        );
        assert!(!lists(&crl, &ask));
        assert_eq!(authenticate_amd_crl(CRL, &ask, &ark).unwrap(), crl);
    }

    #[test]
    fn revoked_ask() {
        let (ask, ark) = chain();
        let e = check_amd_revocation(&ask, &ark, &[CRL_ASK_REVOKED], AT).unwrap_err();
        assert_eq!(e.code, Code::CrlRevoked);
        // Final even next to a newer CRL that no longer lists it, in either order.
        for pair in [[CRL, CRL_ASK_REVOKED], [CRL_ASK_REVOKED, CRL]] {
            let e = check_amd_revocation(&ask, &ark, &pair, AT).unwrap_err();
            assert_eq!(e.code, Code::CrlRevoked);
        }
        // And whatever the verification time: revocation is not undone.
        let e = check_amd_revocation(&ask, &ark, &[CRL_ASK_REVOKED], 0).unwrap_err();
        assert_eq!(e.code, Code::CrlRevoked);
    }

    #[test]
    fn wrong_issuer() {
        let (ask, ark) = chain();
        // A CRL of the real Milan ARK, for a chain rooted in the simulated one.
        let real = include_bytes!("../../../tests/vectors/crl/amd/milan.crl");
        let r = check_amd_revocation(&ask, &ark, &[real], AT).unwrap();
        assert!(matches!(
            skipped(&r),
            [CrlRejection::Issuer { issuer, .. }] if issuer == "ARK-Milan"
        ));
        assert!(matches!(r, AmdRevocation::NoCrl { .. }));
        // An intermediate the ARK did not issue.
        let vcek = AmdCert::parse_der(VCEK).unwrap();
        let e = check_amd_revocation(&vcek, &ark, &[CRL], AT).unwrap_err();
        assert_eq!(e.code, Code::Chain);
    }

    #[test]
    fn bad_signature() {
        let (ask, ark) = chain();
        let forged = tampered(CRL_ASK_REVOKED);
        let r = check_amd_revocation(&ask, &ark, &[&forged], AT).unwrap();
        assert!(matches!(r, AmdRevocation::NoCrl { .. }));
        assert!(matches!(
            skipped(&r),
            [CrlRejection::Signature(SignatureError::Invalid)]
        ));
        // The good CRL next to it is still found.
        let r = check_amd_revocation(&ask, &ark, &[&forged, CRL], AT).unwrap();
        assert!(matches!(r, AmdRevocation::Checked { .. }));
        assert!(matches!(
            authenticate_amd_crl(&forged, &ask, &ark),
            Err(CrlRejection::Signature(_))
        ));
    }

    #[test]
    fn stale() {
        let (ask, ark) = chain();
        // 2045-01-02: past nextUpdate.
        let r = check_amd_revocation(&ask, &ark, &[CRL], 2_366_928_000).unwrap();
        assert!(matches!(r, AmdRevocation::Checked { stale: true, .. }));
        // A CRL issued after the verification time still counts.
        let r = check_amd_revocation(&ask, &ark, &[CRL], 0).unwrap();
        assert!(matches!(r, AmdRevocation::Checked { stale: false, .. }));
    }

    #[test]
    fn junk_candidates_are_skipped() {
        let (ask, ark) = chain();
        let junk: [&[u8]; 4] = [b"", b"junk", ASK, &CRL[..CRL.len() - 1]];
        let r = check_amd_revocation(&ask, &ark, &junk, AT).unwrap();
        assert!(matches!(r, AmdRevocation::NoCrl { .. }));
        assert_eq!(skipped(&r).len(), 4);
        assert!(
            skipped(&r)
                .iter()
                .all(|s| matches!(s, CrlRejection::Malformed(_)))
        );
        let mut with_good = junk.to_vec();
        with_good.push(CRL);
        let r = check_amd_revocation(&ask, &ark, &with_good, AT).unwrap();
        assert!(matches!(r, AmdRevocation::Checked { .. }));
        assert!(matches!(
            check_amd_revocation(&ask, &ark, &[], AT),
            Ok(AmdRevocation::NoCrl { .. })
        ));
    }

    #[test]
    fn scope_and_critical_extensions() {
        let (ask, ark) = chain();
        // Both revoke the ASK, and neither may be believed for it.
        let r = check_amd_revocation(&ask, &ark, &[CRL_OTHER_SCOPE, CRL_DELTA], AT).unwrap();
        assert!(matches!(r, AmdRevocation::NoCrl { .. }));
        assert!(matches!(
            skipped(&r),
            [
                CrlRejection::OutOfScope { .. },
                CrlRejection::CriticalExtension { oid }
            ] if oid == "2.5.29.27"
        ));
        let scoped = Crl::parse(CRL_OTHER_SCOPE).unwrap();
        let idp = scoped.issuing_distribution_point.unwrap();
        assert_eq!(
            idp.uris,
            ["https://kds.thimble-sim.invalid/vlek/v1/Milan/crl"]
        );
        assert_eq!(
            distribution_points(&ask),
            ["https://kds.thimble-sim.invalid/vcek/v1/Milan/crl"]
        );
    }

    #[test]
    fn cap() {
        let (ask, ark) = chain();
        // Identical copies count once.
        let copies = [CRL; 3 * MAX_CRL_CANDIDATES];
        assert!(matches!(
            check_amd_revocation(&ask, &ark, &copies, AT),
            Ok(AmdRevocation::Checked { .. })
        ));
        // Distinct forgeries that pass every cheap check are refused as a whole rather than
        // checked in part, so that they cannot crowd out a genuine revocation.
        let forged: Vec<Vec<u8>> = (0..=MAX_CRL_CANDIDATES)
            .map(|i| {
                let mut v = CRL.to_vec();
                let at = v.len() - 1 - i;
                v[at] ^= 1;
                v
            })
            .collect();
        let mut refs: Vec<&[u8]> = forged.iter().map(Vec::as_slice).collect();
        refs.push(CRL_ASK_REVOKED);
        let e = check_amd_revocation(&ask, &ark, &refs, AT).unwrap_err();
        assert_eq!(e.code, Code::MalformedCollateral);
        // Junk that fails the cheap checks does not count towards the limit.
        let mut junk: Vec<&[u8]> = vec![b"junk"; 100];
        junk.extend(&refs[..MAX_CRL_CANDIDATES - 1]);
        junk.push(CRL_ASK_REVOKED);
        let e = check_amd_revocation(&ask, &ark, &junk, AT).unwrap_err();
        assert_eq!(e.code, Code::CrlRevoked);
    }

    #[test]
    fn amd_crls_from_kds() {
        // AMD's own CRLs of 2022 (tests/vectors/crl/amd) under the pinned ARKs.
        let roots = crate::roots::TrustedRoots::amd();
        let ark = |cn: &str| {
            roots
                .roots()
                .iter()
                .filter_map(|r| r.cert())
                .find(|c| c.subject_cn == cn)
                .unwrap()
                .clone()
        };
        let ask = |file: &str| {
            let pem = std::str::from_utf8(match file {
                "milan" => include_bytes!("../../../tests/vectors/roots/amd/milan_ask_ark.pem"),
                _ => include_bytes!("../../../tests/vectors/roots/amd/genoa_ask_ark.pem"),
            })
            .unwrap();
            AmdCert::parse_der(&pem_certificates(pem).unwrap()[0]).unwrap()
        };
        let milan = include_bytes!("../../../tests/vectors/crl/amd/milan.crl");
        let genoa = include_bytes!("../../../tests/vectors/crl/amd/genoa.crl");
        // 2022-11-01, inside both CRLs' validity.
        let at = 1_667_260_800;
        let r = check_amd_revocation(&ask("milan"), &ark("ARK-Milan"), &[milan, genoa], at);
        assert!(matches!(r, Ok(AmdRevocation::Checked { stale: false, .. })));
        // The Genoa CRL revokes serial 0x020001, the first Genoa ASK; KDS now serves 0x020002.
        let genoa_ask = ask("genoa");
        assert_eq!(genoa_ask.serial_hex, "020002");
        let r = check_amd_revocation(&genoa_ask, &ark("ARK-Genoa"), &[genoa], AT);
        assert!(matches!(r, Ok(AmdRevocation::Checked { stale: true, .. })));
        let crl = authenticate_amd_crl(genoa, &genoa_ask, &ark("ARK-Genoa")).unwrap();
        assert_eq!(crl.revoked, [vec![0x02, 0x00, 0x01]]);
    }
}
