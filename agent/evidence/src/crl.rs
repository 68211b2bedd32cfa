// SPDX-License-Identifier: Apache-2.0
//! X.509 certificate revocation lists (RFC 5280 §5), parsed into an owned value that keeps the
//! DER received and the exact TBSCertList bytes, so that a verifier checks the issuer's
//! signature over what was signed and never over a re-encoding. Parsing only: whether a CRL is
//! the right one, signed, current or lists a certificate is the verifier's business.
//!
//! Two vendors' CRLs pass through here. AMD KDS serves one CRL per product and key type
//! (`/vcek/v1/{product}/crl`, `/vlek/v1/{product}/crl`, DER), issued by the product's ARK and
//! signed with RSASSA-PSS (SHA-384, MGF1-SHA-384, 48-byte salt), with only the Authority Key
//! Identifier and CRL Number extensions. Intel's are the PCK CRL (issued by the PCK Platform or
//! Processor CA) and the root CA CRL, ECDSA-signed; PCS serves DER or PEM, PCCS 3.0 hex-encoded
//! DER, and THIM's encoding is not documented (docs/formats.md §4.5), so [`Crl::parse`] sniffs the
//! three forms.
//!
//! The input may come from an untrusted host or network: the number of revoked entries kept is
//! capped ([`MAX_REVOKED_ENTRIES`]), and every critical extension this parser does not interpret
//! is listed in [`Crl::unhandled_critical`] so that a verifier can refuse the CRL rather than
//! misread its scope (RFC 5280 §5.2: an unrecognised critical extension means the CRL must not be
//! used to decide revocation).

use base64::Engine;
use thiserror::Error;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::snp::cert::{SigAlg, signature_alg};

/// Most revoked entries a CRL may list. AMD's CRLs list none or one entry (a revoked ASK) and
/// Intel's PCK CRLs tens; the cap bounds the memory kept and the cost of each serial lookup for a
/// CRL that an untrusted host or network hands over, with two orders of magnitude to spare.
pub const MAX_REVOKED_ENTRIES: usize = 10_000;

/// `cRLNumber` (RFC 5280 §5.2.3).
const OID_CRL_NUMBER: &str = "2.5.29.20";
/// `issuingDistributionPoint` (RFC 5280 §5.2.5), always critical.
const OID_ISSUING_DISTRIBUTION_POINT: &str = "2.5.29.28";
/// `authorityKeyIdentifier` (RFC 5280 §5.2.1); never critical in a CRL, listed so that a
/// non-conformant critical one is not reported as unknown.
const OID_AUTHORITY_KEY_IDENTIFIER: &str = "2.5.29.35";

/// Why a CRL could not be parsed.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CrlError {
    /// Not a CRL in any of the three encodings (or a PEM block without its END line).
    #[error("not a DER, PEM or hex X.509 CRL: {reason}")]
    Der {
        /// What is wrong, from the decoder.
        reason: String,
    },
    /// Bytes follow the CRL's outer SEQUENCE.
    #[error("{len} trailing bytes after the CRL")]
    Trailing {
        /// How many.
        len: usize,
    },
    /// More revoked entries than the cap.
    #[error("CRL lists {count} revoked certificates, more than the {max} accepted")]
    TooManyEntries {
        /// Entries in the CRL.
        count: usize,
        /// The cap ([`MAX_REVOKED_ENTRIES`]).
        max: usize,
    },
    /// A CRL Number or Issuing Distribution Point extension that does not decode.
    #[error("CRL extension {oid} is malformed")]
    Extension {
        /// The extension's OID in dotted form.
        oid: String,
    },
    /// RFC 5280 §5.1.1.2: the algorithm inside TBSCertList must be the one outside it.
    #[error("CRL signature algorithm {outer} differs from the one it signed ({inner})")]
    AlgorithmMismatch {
        /// OID of `signatureAlgorithm` (outside, unsigned).
        outer: String,
        /// OID of TBSCertList's `signature` (inside, signed).
        inner: String,
    },
}

/// The Issuing Distribution Point extension (RFC 5280 §5.2.5): which certificates a CRL
/// covers. A CRL without one covers every certificate its issuer issued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssuingDistributionPoint {
    /// The `uniformResourceIdentifier` names of `distributionPoint` `fullName`.
    pub uris: Vec<String>,
    /// `distributionPoint` holds names that are not URIs (or a name relative to the issuer),
    /// which thimble does not match.
    pub other_names: bool,
    /// `onlyContainsUserCerts`: the CRL covers end-entity certificates only.
    pub only_contains_user_certs: bool,
    /// `onlyContainsCACerts`: the CRL covers CA certificates only.
    pub only_contains_ca_certs: bool,
    /// `onlySomeReasons` is present: the CRL is not complete for every reason.
    pub only_some_reasons: bool,
    /// `indirectCRL`: the CRL may list certificates other issuers issued.
    pub indirect_crl: bool,
    /// `onlyContainsAttributeCerts`: the CRL covers attribute certificates only.
    pub only_contains_attribute_certs: bool,
}

/// A parsed CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crl {
    der: Vec<u8>,
    tbs: (usize, usize),
    /// The algorithm the issuer signed with.
    pub signature_alg: SigAlg,
    /// The signature value (the BIT STRING's bytes).
    pub signature: Vec<u8>,
    /// The issuer name, rendered as text.
    pub issuer: String,
    /// The issuer's first common name, or empty.
    pub issuer_cn: String,
    issuer_raw: Vec<u8>,
    /// `thisUpdate`, seconds since the epoch.
    pub this_update: i64,
    /// `nextUpdate`, seconds since the epoch (AMD's and Intel's CRLs always carry one).
    pub next_update: Option<i64>,
    /// Serial numbers of the revoked certificates, as the DER INTEGER content bytes (the form
    /// `AmdCert::serial_hex` encodes). At most [`MAX_REVOKED_ENTRIES`].
    pub revoked: Vec<Vec<u8>>,
    /// `cRLNumber`, big-endian, when present.
    pub crl_number: Option<Vec<u8>>,
    /// The Issuing Distribution Point, when present: the CRL's scope.
    pub issuing_distribution_point: Option<IssuingDistributionPoint>,
    /// OIDs of critical extensions this parser does not interpret (a Delta CRL Indicator, say).
    pub unhandled_critical: Vec<String>,
}

/// Decodes PEM (`-----BEGIN X509 CRL-----`) or hex to DER; anything else is taken as DER.
fn to_der(bytes: &[u8]) -> Result<Vec<u8>, CrlError> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(bytes.to_vec());
    };
    let t = text.trim();
    const BEGIN: &str = "-----BEGIN X509 CRL-----";
    const END: &str = "-----END X509 CRL-----";
    if let Some(rest) = t.strip_prefix(BEGIN) {
        let Some(end) = rest.find(END) else {
            return Err(CrlError::Der {
                reason: "PEM CRL has no END line".into(),
            });
        };
        let b64: String = rest[..end].chars().filter(|c| !c.is_whitespace()).collect();
        return base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|e| CrlError::Der {
                reason: format!("PEM CRL: {e}"),
            });
    }
    if !t.is_empty() && t.len() % 2 == 0 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return hex::decode(t).map_err(|e| CrlError::Der {
            reason: format!("hex CRL: {e}"),
        });
    }
    Ok(bytes.to_vec())
}

fn issuing_distribution_point(
    idp: &x509_parser::extensions::IssuingDistributionPoint<'_>,
) -> IssuingDistributionPoint {
    let mut out = IssuingDistributionPoint {
        only_contains_user_certs: idp.only_contains_user_certs,
        only_contains_ca_certs: idp.only_contains_ca_certs,
        only_some_reasons: idp.only_some_reasons.is_some(),
        indirect_crl: idp.indirect_crl,
        only_contains_attribute_certs: idp.only_contains_attribute_certs,
        ..IssuingDistributionPoint::default()
    };
    match &idp.distribution_point {
        None => {}
        Some(DistributionPointName::FullName(names)) => {
            for name in names {
                match name {
                    GeneralName::URI(uri) => out.uris.push((*uri).to_string()),
                    _ => out.other_names = true,
                }
            }
        }
        Some(DistributionPointName::NameRelativeToCRLIssuer(_)) => out.other_names = true,
    }
    out
}

impl Crl {
    /// Parses a CRL in DER, PEM or hex. Checks structure only: the DER decodes with nothing after
    /// it, the inner and outer signature algorithms agree, at most [`MAX_REVOKED_ENTRIES`] entries,
    /// and a CRL Number or Issuing Distribution Point that decodes. The signature, dates and issuer
    /// are not checked.
    pub fn parse(bytes: &[u8]) -> Result<Crl, CrlError> {
        Self::parse_capped(bytes, MAX_REVOKED_ENTRIES)
    }

    fn parse_capped(bytes: &[u8], max_entries: usize) -> Result<Crl, CrlError> {
        let der = to_der(bytes)?;
        let (rem, crl) = CertificateRevocationList::from_der(&der).map_err(|e| CrlError::Der {
            reason: e.to_string(),
        })?;
        if !rem.is_empty() {
            return Err(CrlError::Trailing { len: rem.len() });
        }
        let tbs_raw = crl.tbs_cert_list.as_ref();
        let start = (tbs_raw.as_ptr() as usize).wrapping_sub(der.as_ptr() as usize);
        let tbs = (start, start.saturating_add(tbs_raw.len()));
        if der.get(tbs.0..tbs.1) != Some(tbs_raw) {
            return Err(CrlError::Der {
                reason: "TBSCertList could not be located".into(),
            });
        }
        if crl.tbs_cert_list.signature != crl.signature_algorithm {
            return Err(CrlError::AlgorithmMismatch {
                outer: crl.signature_algorithm.algorithm.to_id_string(),
                inner: crl.tbs_cert_list.signature.algorithm.to_id_string(),
            });
        }
        let count = crl.tbs_cert_list.revoked_certificates.len();
        if count > max_entries {
            return Err(CrlError::TooManyEntries {
                count,
                max: max_entries,
            });
        }

        let mut crl_number = None;
        let mut idp = None;
        let mut unhandled_critical = Vec::new();
        for ext in crl.extensions() {
            let oid = ext.oid.to_id_string();
            let malformed = || CrlError::Extension { oid: oid.clone() };
            match (oid.as_str(), ext.parsed_extension()) {
                (OID_CRL_NUMBER, ParsedExtension::CRLNumber(n)) => {
                    crl_number = Some(n.to_bytes_be());
                }
                (OID_ISSUING_DISTRIBUTION_POINT, ParsedExtension::IssuingDistributionPoint(p)) => {
                    idp = Some(issuing_distribution_point(p));
                }
                (OID_CRL_NUMBER | OID_ISSUING_DISTRIBUTION_POINT, _) => return Err(malformed()),
                (OID_AUTHORITY_KEY_IDENTIFIER, _) => {}
                _ if ext.critical => unhandled_critical.push(oid),
                _ => {}
            }
        }

        let issuer = crl.issuer();
        let issuer_cn = issuer
            .iter_common_name()
            .next()
            .and_then(|c| c.as_str().ok())
            .unwrap_or("")
            .to_string();
        Ok(Crl {
            tbs,
            signature_alg: signature_alg(&crl.signature_algorithm),
            signature: crl.signature_value.data.to_vec(),
            issuer: issuer.to_string(),
            issuer_cn,
            issuer_raw: issuer.as_raw().to_vec(),
            this_update: crl.last_update().timestamp(),
            next_update: crl.next_update().map(|t| t.timestamp()),
            revoked: crl
                .iter_revoked_certificates()
                .map(|r| r.raw_serial().to_vec())
                .collect(),
            crl_number,
            issuing_distribution_point: idp,
            unhandled_critical,
            der,
        })
    }

    /// The DER (decoded from PEM or hex if it came so).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The exact TBSCertList bytes the issuer signed.
    pub fn tbs_bytes(&self) -> &[u8] {
        // `parse` checked that this range lies within `der`.
        self.der.get(self.tbs.0..self.tbs.1).unwrap_or_default()
    }

    /// The issuer name as DER, to compare with a certificate's subject.
    pub fn issuer_raw(&self) -> &[u8] {
        &self.issuer_raw
    }

    /// Whether a certificate serial (DER INTEGER content bytes) is listed.
    pub fn is_revoked(&self, serial: &[u8]) -> bool {
        self.revoked.iter().any(|s| s == serial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AMD's Milan CRL as KDS served it on 2022-05-09 (CRL Number 3, no revoked entries) and
    /// its Genoa CRL of 2022-10-31 (CRL Number 2, revoking serial 0x020001, the first Genoa
    /// ASK). Both were carried inside `crates/attestation/src/snp/milan.signed.crl.csr` of
    /// enarx/steward (commit bb0ea54f); see `tests/vectors/crl/amd/case.toml`.
    const MILAN_CRL: &[u8] = include_bytes!("../../../tests/vectors/crl/amd/milan.crl");
    const GENOA_CRL: &[u8] = include_bytes!("../../../tests/vectors/crl/amd/genoa.crl");

    #[test]
    fn sniffing() {
        assert_eq!(to_der(b"3003").unwrap(), vec![0x30, 0x03]);
        assert_eq!(to_der(&[0x30, 0x82]).unwrap(), vec![0x30, 0x82]);
        assert!(matches!(
            to_der(b"-----BEGIN X509 CRL-----\nAAAA"),
            Err(CrlError::Der { .. })
        ));
        assert!(matches!(Crl::parse(b"junk"), Err(CrlError::Der { .. })));
    }

    #[test]
    fn amd_crls_use_rsassa_pss_and_name_the_ark() {
        let milan = Crl::parse(MILAN_CRL).unwrap();
        assert_eq!(
            milan.signature_alg,
            SigAlg::RsaPss {
                hash: "sha384",
                mgf1_hash: "sha384",
                salt_len: 48
            }
        );
        assert_eq!(milan.issuer_cn, "ARK-Milan");
        assert_eq!(milan.this_update, 1_652_116_065); // 2022-05-09T17:07:45Z
        assert_eq!(milan.next_update, Some(1_683_673_200)); // 2023-05-09T23:00:00Z
        assert!(milan.revoked.is_empty());
        assert_eq!(milan.crl_number, Some(vec![3]));
        assert_eq!(milan.issuing_distribution_point, None);
        assert!(milan.unhandled_critical.is_empty());
        assert_eq!(milan.signature.len(), 512);
        assert_eq!(milan.tbs_bytes().first(), Some(&0x30));

        let genoa = Crl::parse(GENOA_CRL).unwrap();
        assert_eq!(genoa.issuer_cn, "ARK-Genoa");
        assert_eq!(genoa.revoked, vec![vec![0x02, 0x00, 0x01]]);
        assert!(genoa.is_revoked(&[0x02, 0x00, 0x01]));
        assert!(!genoa.is_revoked(&[0x02, 0x00, 0x02]));
        assert_eq!(genoa.crl_number, Some(vec![2]));
    }

    #[test]
    fn revoked_entries_are_capped() {
        assert_eq!(
            Crl::parse_capped(GENOA_CRL, 0),
            Err(CrlError::TooManyEntries { count: 1, max: 0 })
        );
        assert!(Crl::parse_capped(GENOA_CRL, 1).is_ok());
    }

    #[test]
    fn scope_and_unhandled_critical_extensions_are_reported() {
        // The simulated ARK's CRLs (agent/sim/keys): one scoped to the VLEK CRL, one delta.
        let scoped = Crl::parse(include_bytes!("../../sim/keys/crl_other_scope.der")).unwrap();
        assert_eq!(
            scoped.issuing_distribution_point,
            Some(IssuingDistributionPoint {
                uris: vec!["https://kds.thimble-sim.invalid/vlek/v1/Milan/crl".into()],
                ..IssuingDistributionPoint::default()
            })
        );
        assert!(scoped.unhandled_critical.is_empty());
        let delta = Crl::parse(include_bytes!("../../sim/keys/crl_delta.der")).unwrap();
        assert_eq!(delta.unhandled_critical, ["2.5.29.27"]);
        assert_eq!(delta.crl_number, Some(vec![4]));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut der = MILAN_CRL.to_vec();
        der.push(0);
        assert_eq!(Crl::parse(&der), Err(CrlError::Trailing { len: 1 }));
    }
}
