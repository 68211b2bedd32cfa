// SPDX-License-Identifier: Apache-2.0
//! AMD SEV-SNP certificates: ARK, ASK, ASVK, VCEK and VLEK, parsed into an owned value that keeps
//! the DER received and the exact to-be-signed bytes.
//!
//! The VCEK/VLEK carry AMD extensions under OID arc 1.3.6.1.4.1.3704.1 (AMD "Versioned Chip
//! Endorsement Key" spec, 57230): `.2` productName, `.3.x` SPLs as DER INTEGERs, `.4` hwID (raw
//! bytes, 64 on Milan/Genoa, 8 on Turin), `.5` cspID (VLEK). Some hand-made certificates wrap the
//! hwID in an OCTET STRING; both encodings are accepted, since the bytes are compared with the
//! report either way.

use serde::Serialize;
use thiserror::Error;
use x509_parser::extensions::ParsedExtension;
use x509_parser::oid_registry::Oid;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::signature_algorithm::SignatureAlgorithm;
use x509_parser::x509::AlgorithmIdentifier;

use crate::snp::{Product, TcbVersion};

/// How a certificate is signed, with the parameters a verifier must enforce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SigAlg {
    /// RSASSA-PSS; `hash` and `mgf1_hash` are "sha256"/"sha384"/"sha512".
    RsaPss {
        /// The message digest.
        hash: &'static str,
        /// The digest MGF1 uses.
        mgf1_hash: &'static str,
        /// The salt length in bytes, as the parameters give it (20 when absent, per RFC 4055).
        salt_len: u32,
    },
    /// `sha256WithRSAEncryption` (PKCS#1 v1.5).
    RsaPkcs1Sha256,
    /// `sha384WithRSAEncryption` (PKCS#1 v1.5).
    RsaPkcs1Sha384,
    /// `ecdsa-with-SHA256`; the signature is a DER `Ecdsa-Sig-Value`.
    EcdsaSha256,
    /// `ecdsa-with-SHA384`; the signature is a DER `Ecdsa-Sig-Value`.
    EcdsaSha384,
    /// Anything else, including RSASSA-PSS with parameters thimble does not support. No verifier
    /// accepts it.
    Other {
        /// The algorithm's OID in dotted form (with a note for unsupported PSS parameters).
        oid: String,
    },
}

/// Public key algorithm of the subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlg {
    /// `rsaEncryption` or `id-RSASSA-PSS`; the key is a PKCS#1 RSAPublicKey.
    Rsa,
    /// EC key on P-256; the key is an uncompressed SEC1 point.
    EcP256,
    /// EC key on P-384; the key is an uncompressed SEC1 point.
    EcP384,
    /// Any other key algorithm or curve.
    Other {
        /// The algorithm's OID in dotted form; for an EC key on another curve, `ec:` and the
        /// curve's OID (`ec:?` when absent).
        oid: String,
    },
}

/// The AMD extensions of a VCEK or VLEK.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AmdExtensions {
    /// `.1` structVersion.
    pub struct_version: Option<u64>,
    /// `.2` productName, e.g. `Milan-B0` (see [`Product::from_name`]).
    pub product_name: Option<String>,
    /// `.3.1` blSPL: the boot loader SPL the key was derived for.
    pub bl_spl: Option<u8>,
    /// `.3.2` teeSPL.
    pub tee_spl: Option<u8>,
    /// `.3.3` snpSPL.
    pub snp_spl: Option<u8>,
    /// `.3.8` ucodeSPL.
    pub ucode_spl: Option<u8>,
    /// `.3.9` fmcSPL (Turin).
    pub fmc_spl: Option<u8>,
    /// `.4` hwID: the CHIP_ID the VCEK belongs to (64 bytes; 8 on Turin), unwrapped from an
    /// OCTET STRING when a certificate wraps it. Its length is not checked here.
    #[serde(serialize_with = "crate::bundle::hex_opt")]
    pub hw_id: Option<Vec<u8>>,
    /// `.5` cspID: the cloud provider a VLEK was issued to.
    pub csp_id: Option<String>,
}

/// An X.509 certificate as thimble needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmdCert {
    der: Vec<u8>,
    tbs: (usize, usize),
    /// The algorithm the issuer signed with.
    pub signature_alg: SigAlg,
    /// The signature value (the BIT STRING's bytes).
    pub signature: Vec<u8>,
    /// The subject's public key algorithm.
    pub key_alg: KeyAlg,
    /// RSAPublicKey DER for RSA, the SEC1 point for EC.
    pub public_key: Vec<u8>,
    /// The subject name, rendered as text (for messages and matching by string).
    pub subject: String,
    /// The issuer name, rendered as text.
    pub issuer: String,
    /// The subject's first common name, or empty.
    pub subject_cn: String,
    /// The issuer's first common name, or empty.
    pub issuer_cn: String,
    subject_raw: Vec<u8>,
    issuer_raw: Vec<u8>,
    /// The serial number's content bytes in lowercase hex, as encoded (big-endian).
    pub serial_hex: String,
    /// Start of validity (notBefore), seconds since the Unix epoch.
    pub not_before: i64,
    /// End of validity (notAfter), seconds since the Unix epoch; inclusive.
    pub not_after: i64,
    /// Whether basicConstraints says cA.
    pub is_ca: bool,
    /// The subjectKeyIdentifier extension, when present.
    pub subject_key_id: Option<Vec<u8>>,
    /// The keyIdentifier of the authorityKeyIdentifier extension, when present.
    pub authority_key_id: Option<Vec<u8>>,
    /// The AMD extensions (all `None` on a certificate without them).
    pub amd: AmdExtensions,
}

/// A name as text, exactly as x509-parser's `Display` renders it (`CN=…, O=…`, attributes of one
/// RDN joined by ` + `). x509-parser builds its whole OID registry the first time it renders a
/// name, which was about a twentieth of a whole-process `verify` (docs/performance.md); the
/// attribute types AMD's and Intel's certificates use are the ones x509-parser abbreviates
/// itself, so those names are rendered here and anything else goes to x509-parser.
fn name_text(name: &x509_parser::x509::X509Name<'_>) -> String {
    simple_name_text(name).unwrap_or_else(|| name.to_string())
}

/// The fast path of [`name_text`]: `None` when an attribute's type is not one of x509-parser's
/// fixed abbreviations or its value is not a string type it copies through as UTF-8.
fn simple_name_text(name: &x509_parser::x509::X509Name<'_>) -> Option<String> {
    use x509_parser::der_parser::asn1_rs::Tag;
    use x509_parser::oid_registry as reg;
    let abbrev = |oid: &Oid<'_>| {
        [
            (reg::OID_X509_COMMON_NAME, "CN"),
            (reg::OID_X509_COUNTRY_NAME, "C"),
            (reg::OID_X509_LOCALITY_NAME, "L"),
            (reg::OID_X509_STATE_OR_PROVINCE_NAME, "ST"),
            (reg::OID_X509_ORGANIZATION_NAME, "O"),
            (reg::OID_X509_ORGANIZATIONAL_UNIT, "OU"),
            (reg::OID_DOMAIN_COMPONENT, "DC"),
            (reg::OID_PKCS9_EMAIL_ADDRESS, "Email"),
        ]
        .into_iter()
        .find(|(known, _)| known == oid)
        .map(|(_, a)| a)
    };
    let mut out = String::new();
    for (i, rdn) in name.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        for (j, attr) in rdn.iter().enumerate() {
            if j > 0 {
                out.push_str(" + ");
            }
            let value = attr.attr_value();
            let text = match value.tag() {
                Tag::NumericString
                | Tag::VisibleString
                | Tag::PrintableString
                | Tag::GeneralString
                | Tag::ObjectDescriptor
                | Tag::GraphicString
                | Tag::T61String
                | Tag::VideotexString
                | Tag::Utf8String
                | Tag::Ia5String => std::str::from_utf8(value.data).ok()?,
                _ => return None,
            };
            out.push_str(abbrev(attr.attr_type())?);
            out.push('=');
            out.push_str(text);
        }
    }
    Some(out)
}

/// Why a certificate could not be parsed.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AmdCertError {
    /// Not a DER X.509 certificate.
    #[error("not a DER X.509 certificate: {reason}")]
    Der {
        /// The DER parser's message.
        reason: String,
    },
    /// Bytes follow the certificate's outer SEQUENCE.
    #[error("{len} trailing bytes after the certificate")]
    Trailing {
        /// How many.
        len: usize,
    },
    /// An AMD extension (structVersion, productName or an SPL) does not decode.
    #[error("AMD extension {oid} is malformed")]
    Extension {
        /// The extension's OID in dotted form.
        oid: String,
    },
}

const AMD_ARC: &str = "1.3.6.1.4.1.3704.1";

/// The role a certificate plays in an AMD chain, from its names and extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AmdRole {
    /// AMD Root Key, self-signed, one per product (CN `ARK-<product>`).
    Ark,
    /// AMD SEV Key, signed by the ARK, signs VCEKs (CN `SEV-<product>`).
    Ask,
    /// AMD SEV VLEK Key, signed by the ARK, signs VLEKs (CN `SEV-VLEK-<product>`).
    Asvk,
    /// Versioned Chip Endorsement Key: per chip and TCB (hwID extension or CN `SEV-VCEK`).
    Vcek,
    /// Versioned Loaded Endorsement Key: per cloud provider and TCB (cspID extension or CN
    /// `SEV-VLEK`).
    Vlek,
}

fn hash_name(oid: &Oid<'_>) -> Option<&'static str> {
    match oid.to_id_string().as_str() {
        "2.16.840.1.101.3.4.2.1" => Some("sha256"),
        "2.16.840.1.101.3.4.2.2" => Some("sha384"),
        "2.16.840.1.101.3.4.2.3" => Some("sha512"),
        _ => None,
    }
}

/// Decodes the signature algorithm of a certificate or a CRL, with the parameters a verifier must
/// enforce. RSASSA-PSS (RFC 4055) is what AMD signs ARK, ASK, ASVK, VCEK, VLEK and its CRLs with;
/// PSS parameters other than a SHA-2 hash with MGF1 over a SHA-2 hash, and any algorithm not
/// listed, come out as [`SigAlg::Other`], which no verifier accepts.
pub(crate) fn signature_alg(alg: &AlgorithmIdentifier<'_>) -> SigAlg {
    match SignatureAlgorithm::try_from(alg) {
        Ok(SignatureAlgorithm::RSASSA_PSS(p)) => {
            let hash = hash_name(p.hash_algorithm_oid());
            let mgf = p
                .mask_gen_algorithm()
                .ok()
                .and_then(|m| hash_name(&m.hash).map(|h| (m.mgf, h)));
            match (hash, mgf) {
                (Some(hash), Some((mgf_oid, mgf1_hash)))
                    if mgf_oid.to_id_string() == "1.2.840.113549.1.1.8" =>
                {
                    SigAlg::RsaPss {
                        hash,
                        mgf1_hash,
                        salt_len: p.salt_length(),
                    }
                }
                _ => SigAlg::Other {
                    oid: "1.2.840.113549.1.1.10 (unsupported parameters)".into(),
                },
            }
        }
        _ => match alg.algorithm.to_id_string().as_str() {
            "1.2.840.113549.1.1.11" => SigAlg::RsaPkcs1Sha256,
            "1.2.840.113549.1.1.12" => SigAlg::RsaPkcs1Sha384,
            "1.2.840.10045.4.3.2" => SigAlg::EcdsaSha256,
            "1.2.840.10045.4.3.3" => SigAlg::EcdsaSha384,
            other => SigAlg::Other {
                oid: other.to_string(),
            },
        },
    }
}

/// Reads a DER INTEGER that fits in a u64 (non-negative).
fn der_uint(v: &[u8]) -> Option<u64> {
    let (&tag, rest) = v.split_first()?;
    let (&len, body) = rest.split_first()?;
    if tag != 0x02 || len as usize != body.len() || body.is_empty() || body.len() > 9 {
        return None;
    }
    if body[0] & 0x80 != 0 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in body {
        n = n.checked_mul(256)?.checked_add(u64::from(b))?;
    }
    Some(n)
}

fn der_string(v: &[u8]) -> Option<String> {
    let (&tag, rest) = v.split_first()?;
    let (&len, body) = rest.split_first()?;
    // IA5String (0x16) in AMD certs; accept UTF8String/PrintableString too.
    if !matches!(tag, 0x16 | 0x0c | 0x13) || len as usize != body.len() || len >= 0x80 {
        return None;
    }
    String::from_utf8(body.to_vec()).ok()
}

fn spl(v: &[u8], oid: &str) -> Result<u8, AmdCertError> {
    der_uint(v)
        .and_then(|n| u8::try_from(n).ok())
        .ok_or_else(|| AmdCertError::Extension {
            oid: oid.to_string(),
        })
}

impl AmdCert {
    /// Parses one DER certificate; trailing bytes are an error.
    pub fn parse_der(der: &[u8]) -> Result<AmdCert, AmdCertError> {
        let (rem, cert) = X509Certificate::from_der(der).map_err(|e| AmdCertError::Der {
            reason: e.to_string(),
        })?;
        if !rem.is_empty() {
            return Err(AmdCertError::Trailing { len: rem.len() });
        }
        let tbs_raw = cert.tbs_certificate.as_ref();
        let start = tbs_raw.as_ptr() as usize - der.as_ptr() as usize;
        let tbs = (start, start + tbs_raw.len());

        let signature_alg = signature_alg(&cert.signature_algorithm);

        let spki = cert.public_key();
        let key_alg = match spki.algorithm.algorithm.to_id_string().as_str() {
            "1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10" => KeyAlg::Rsa,
            "1.2.840.10045.2.1" => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string());
                match curve.as_deref() {
                    Some("1.2.840.10045.3.1.7") => KeyAlg::EcP256,
                    Some("1.3.132.0.34") => KeyAlg::EcP384,
                    other => KeyAlg::Other {
                        oid: format!("ec:{}", other.unwrap_or("?")),
                    },
                }
            }
            other => KeyAlg::Other {
                oid: other.to_string(),
            },
        };

        let cn = |name: &x509_parser::x509::X509Name<'_>| {
            name.iter_common_name()
                .next()
                .and_then(|c| c.as_str().ok())
                .unwrap_or("")
                .to_string()
        };

        let mut amd = AmdExtensions::default();
        for ext in cert.extensions() {
            let oid = ext.oid.to_id_string();
            let Some(sub) = oid.strip_prefix(AMD_ARC) else {
                continue;
            };
            let v = ext.value;
            match sub {
                ".1" => {
                    amd.struct_version =
                        Some(der_uint(v).ok_or(AmdCertError::Extension { oid: oid.clone() })?)
                }
                ".2" => {
                    amd.product_name =
                        Some(der_string(v).ok_or(AmdCertError::Extension { oid: oid.clone() })?)
                }
                ".3.1" => amd.bl_spl = Some(spl(v, &oid)?),
                ".3.2" => amd.tee_spl = Some(spl(v, &oid)?),
                ".3.3" => amd.snp_spl = Some(spl(v, &oid)?),
                ".3.8" => amd.ucode_spl = Some(spl(v, &oid)?),
                ".3.9" => amd.fmc_spl = Some(spl(v, &oid)?),
                ".4" => {
                    // Raw bytes (AMD) or an OCTET STRING around them (some hand-made certs).
                    let raw = match v {
                        [0x04, len, rest @ ..]
                            if *len as usize == rest.len()
                                && (rest.len() == 64 || rest.len() == 8) =>
                        {
                            rest.to_vec()
                        }
                        _ => v.to_vec(),
                    };
                    amd.hw_id = Some(raw);
                }
                ".5" => {
                    amd.csp_id = Some(
                        der_string(v).unwrap_or_else(|| String::from_utf8_lossy(v).into_owned()),
                    )
                }
                _ => {}
            }
        }

        let is_ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
        let mut subject_key_id = None;
        let mut authority_key_id = None;
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => subject_key_id = Some(k.0.to_vec()),
                ParsedExtension::AuthorityKeyIdentifier(a) => {
                    authority_key_id = a.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                _ => {}
            }
        }

        Ok(AmdCert {
            tbs,
            signature_alg,
            signature: cert.signature_value.data.to_vec(),
            key_alg,
            public_key: spki.subject_public_key.data.to_vec(),
            subject: name_text(cert.subject()),
            issuer: name_text(cert.issuer()),
            subject_cn: cn(cert.subject()),
            issuer_cn: cn(cert.issuer()),
            subject_raw: cert.subject().as_raw().to_vec(),
            issuer_raw: cert.issuer().as_raw().to_vec(),
            serial_hex: hex::encode(cert.raw_serial()),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            is_ca,
            subject_key_id,
            authority_key_id,
            amd,
            der: der.to_vec(),
        })
    }

    /// The DER received.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The exact TBSCertificate bytes the issuer signed.
    pub fn tbs_bytes(&self) -> &[u8] {
        &self.der[self.tbs.0..self.tbs.1]
    }

    /// The subject name as DER, to compare with a CRL's issuer.
    pub fn subject_raw(&self) -> &[u8] {
        &self.subject_raw
    }

    /// Whether `issuer`'s subject name is this certificate's issuer name (byte equality).
    pub fn issued_by_name(&self, issuer: &AmdCert) -> bool {
        self.issuer_raw == issuer.subject_raw
    }

    /// Whether `issuer` may have issued this certificate, judged without a signature check: the
    /// names are equal and, when both certificates carry key identifiers, they agree. Chain
    /// building narrows its candidates with this so that signatures are only checked where they
    /// can succeed.
    pub fn may_be_issued_by(&self, issuer: &AmdCert) -> bool {
        self.issued_by_name(issuer)
            && match (&self.authority_key_id, &issuer.subject_key_id) {
                (Some(a), Some(s)) => a == s,
                _ => true,
            }
    }

    /// Whether subject and issuer are the same name (a root).
    pub fn self_issued(&self) -> bool {
        self.issuer_raw == self.subject_raw
    }

    /// The role this certificate plays in an AMD chain, if it is an AMD one.
    pub fn amd_role(&self) -> Option<AmdRole> {
        let cn = self.subject_cn.as_str();
        if self.amd.csp_id.is_some() || cn == "SEV-VLEK" {
            return Some(AmdRole::Vlek);
        }
        if self.amd.hw_id.is_some() || cn == "SEV-VCEK" {
            return Some(AmdRole::Vcek);
        }
        if cn.starts_with("ARK-") {
            return Some(AmdRole::Ark);
        }
        if cn.starts_with("SEV-VLEK-") {
            return Some(AmdRole::Asvk);
        }
        if cn.starts_with("SEV-") {
            return Some(AmdRole::Ask);
        }
        None
    }

    /// The product named by the certificate: the productName extension on a VCEK/VLEK, the
    /// common name suffix on ARK/ASK/ASVK (`ARK-Milan`, `SEV-Genoa`, `SEV-VLEK-Turin`).
    pub fn product(&self) -> Option<Product> {
        if let Some(name) = &self.amd.product_name {
            return Product::from_name(name);
        }
        let cn = &self.subject_cn;
        let suffix = cn.rsplit('-').next()?;
        Product::from_name(suffix)
    }

    /// The TCB the VCEK/VLEK was issued for, encoded with the layout of `product`. `None` when an
    /// SPL extension is missing.
    pub fn tcb(&self, product: Product) -> Option<TcbVersion> {
        let a = &self.amd;
        let fmc = if product.turin_tcb_layout() {
            a.fmc_spl?
        } else {
            0
        };
        Some(TcbVersion::encode(
            product,
            a.bl_spl?,
            a.tee_spl?,
            a.snp_spl?,
            a.ucode_spl?,
            fmc,
        ))
    }

    /// Whether `at` (seconds since the epoch) lies within the validity period.
    pub fn valid_at(&self, at: i64) -> bool {
        self.not_before <= at && at <= self.not_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path's agreement with x509-parser on every certificate we hold is tested in
    /// tests/cert_names.rs; this is a name it must hand over.
    #[test]
    fn names_outside_the_fast_path_fall_back() {
        // A name with a serialNumber attribute (2.5.4.5, not abbreviated by x509-parser) and a
        // multi-valued RDN, in DER written out by hand: SEQUENCE { SET { CN "a" },
        // SET { CN "b", serialNumber "7" } }.
        let der = [
            0x30, 0x22, 0x31, 0x0a, 0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x01, b'a',
            0x31, 0x14, 0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x01, b'b', 0x30, 0x08,
            0x06, 0x03, 0x55, 0x04, 0x05, 0x13, 0x01, b'7',
        ];
        let (_, name) = x509_parser::x509::X509Name::from_der(&der).unwrap();
        assert_eq!(simple_name_text(&name), None);
        assert_eq!(name_text(&name), name.to_string());
        assert!(name_text(&name).starts_with("CN=a, CN=b + "));
    }

    #[test]
    fn der_integers() {
        assert_eq!(der_uint(&[0x02, 0x01, 0x73]), Some(0x73));
        assert_eq!(der_uint(&[0x02, 0x02, 0x00, 0xdb]), Some(0xdb));
        assert_eq!(der_uint(&[0x02, 0x01, 0xdb]), None); // negative
        assert_eq!(der_uint(&[0x02, 0x02, 0x00]), None); // short
        assert_eq!(der_string(&[0x16, 0x02, b'h', b'i']).as_deref(), Some("hi"));
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            AmdCert::parse_der(b"not a cert"),
            Err(AmdCertError::Der { .. })
        ));
    }
}
