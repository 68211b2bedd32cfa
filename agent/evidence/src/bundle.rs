// SPDX-License-Identifier: Apache-2.0
//! The thimble evidence bundle: one versioned JSON document holding the raw evidence bytes, every
//! endorsement with where and when it came from, and the claims parsed from the evidence.
//!
//! This is the project's public contract; `docs/bundle-format.md` specifies it and
//! `docs/bundle.schema.json` is its JSON Schema. Readers reject a `format` or major `version` they
//! do not know and ignore fields they do not know, so that fields can be added without a new
//! version. A verifier trusts nothing here but bytes it checks: `claims` are a convenience for
//! readers and are recomputed from the report during verification.

use base64::Engine;
use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::report_data::Derivation;
use crate::snp::{CertKind, GuestPolicy, Product, SigningKey, SnpReport, TcbVersion};

/// The value of the `format` field.
pub const FORMAT: &str = "thimble-evidence-bundle";
/// The version this code writes and reads.
pub const VERSION: u32 = 1;

/// The largest bundle [`Bundle::parse`] reads, in bytes. Real bundles are tens of kilobytes (a
/// TDX bundle with all of Intel's collateral is under 64 KiB); the limit leaves room for event
/// logs and keeps the cost of a hostile bundle small. Readers may choose another limit with
/// [`Bundle::parse_limited`].
pub const DEFAULT_MAX_BUNDLE_LEN: usize = 8 << 20;
/// The most endorsements a bundle may carry. A real one has at most a dozen; every endorsement
/// costs a parse (and for certificates, possibly a signature check), so the count is bounded.
pub const MAX_ENDORSEMENTS: usize = 256;

/// The trusted execution environment the evidence comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tee {
    /// AMD SEV-SNP (`sev-snp`): a report and its AMD endorsements.
    SevSnp,
    /// Intel TDX (`tdx`): a quote and Intel's collateral.
    Tdx,
    /// An Azure confidential VM behind the paravisor, on SEV-SNP: the HCL report from the vTPM
    /// and a TPM quote.
    AzureSevSnp,
    /// An Azure confidential VM behind the paravisor, on TDX: the HCL report, the TD quote IMDS
    /// made from it, and a TPM quote.
    AzureTdx,
}

impl Tee {
    /// The name used in the bundle and in `verify` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Tee::SevSnp => "sev-snp",
            Tee::Tdx => "tdx",
            Tee::AzureSevSnp => "azure-sev-snp",
            Tee::AzureTdx => "azure-tdx",
        }
    }
}

/// The whole bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    /// Always [`FORMAT`].
    pub format: String,
    /// The major version; [`VERSION`] for this code.
    pub version: u32,
    /// Which TEE; decides the `evidence` members, the endorsements and the `claims` shape.
    pub tee: Tee,
    /// True when produced by `--simulate`: signed by test keys, never trusted by default.
    pub simulated: bool,
    /// The program that wrote the bundle.
    pub agent: Agent,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// `uname -r` of the guest that collected (absent for imports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_release: Option<String>,
    /// How the evidence was obtained.
    pub collection: Collection,
    /// The nonce, when known. Absent for imported evidence whose nonce was not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<Nonce>,
    /// The raw evidence.
    pub evidence: Evidence,
    /// Certificates, CRLs and Intel collateral, each with its bytes and provenance (at most
    /// [`MAX_ENDORSEMENTS`] when parsed).
    pub endorsements: Vec<Endorsement>,
    /// Why endorsements came from where they came from (fallbacks, rejected responses).
    #[serde(default)]
    pub endorsement_log: Vec<String>,
    /// Claims parsed from the evidence, in the TEE's own shape ([`Claims`] for SEV-SNP,
    /// `tdx::TdxClaims` for TDX). Written for readers; never read back: [`Bundle::parse`] skips
    /// the member without building it (it is `Null` in a parsed bundle), because nothing a
    /// verifier decides may rest on it and a hostile bundle could make it arbitrarily costly.
    /// `verify` recomputes the claims from the verified bytes.
    #[serde(default, deserialize_with = "skip_value")]
    pub claims: serde_json::Value,
}

/// A JSON value kept as the text received.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawJson(pub Box<serde_json::value::RawValue>);

impl RawJson {
    /// Wraps JSON text; fails if it is not one JSON value.
    pub fn from_json(text: String) -> Result<RawJson, BundleError> {
        serde_json::value::RawValue::from_string(text)
            .map(RawJson)
            .map_err(|e| BundleError::Json {
                reason: e.to_string(),
            })
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &RawJson) -> bool {
        self.get() == other.get()
    }
}

impl Eq for RawJson {}

/// Consumes any JSON value without materialising it.
fn skip_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<serde_json::Value, D::Error> {
    serde::de::IgnoredAny::deserialize(d)?;
    Ok(serde_json::Value::Null)
}

/// The program that wrote a bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    /// `thimble`.
    pub name: String,
    /// The crate version.
    pub version: String,
}

/// How the evidence was obtained.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Collection {
    /// `configfs-tsm`, `sev-guest`, `tdx-guest+qgs`, `vtpm` or `import` (an open set).
    pub source: String,
    /// configfs-tsm `provider` (`sev_guest`), when collected through configfs-tsm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The privilege level (VMPL) requested, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privlevel: Option<u32>,
    /// configfs-tsm `generation` read after the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// The device or configfs path used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Azure: whether the HCL report's `user-data` echoed the REPORT_DATA written for this
    /// collection (`false` only when a stale report was accepted with `--allow-stale-report`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hcl_user_data_echoed: Option<bool>,
}

/// The nonce and how REPORT_DATA was derived from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nonce {
    /// The nonce, hex.
    pub value: String,
    /// Whether the agent generated it (no `--nonce` given).
    #[serde(default)]
    pub generated: bool,
    /// How REPORT_DATA was made from `value` (not used for Azure bundles).
    pub report_data_derivation: Derivation,
}

/// The raw evidence, base64; which fields are present depends on `tee`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// SEV-SNP: the 1184-byte ATTESTATION_REPORT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snp_report: Option<String>,
    /// SEV-SNP: the configfs-tsm `auxblob` or SNP_GET_EXT_REPORT certificate table, when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auxblob: Option<String>,
    /// TDX: the quote as received (trailing padding included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tdx_quote: Option<String>,
    /// TDX: the 1024-byte TDREPORT the quote was made from, when thimble asked for it itself
    /// (`/dev/tdx_guest` and the Quote Generation Service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub td_report: Option<String>,
    /// Azure: the vTPM NV index 0x01400001 contents (the HCL report), base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hcl_report: Option<String>,
    /// Azure: the TPM quote over PCRs 0-23 by the attestation key, as `{signature, message,
    /// pcrs}` in hex (`message` is the TPMS_ATTEST, `signature` the RSASSA signature). Kept as
    /// the JSON text received, which `azure::TpmQuote::parse_json` decodes, so that reading a
    /// bundle never builds a generic JSON tree of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm_quote: Option<RawJson>,
}

/// The role of an endorsement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndorsementKind {
    /// SEV-SNP: the chip's VCEK.
    Vcek,
    /// SEV-SNP: a cloud provider's VLEK.
    Vlek,
    /// SEV-SNP: the ASK, which signs VCEKs.
    Ask,
    /// SEV-SNP: the ASVK, which signs VLEKs.
    Asvk,
    /// SEV-SNP: AMD's root as received (verification uses the pinned ARKs only).
    Ark,
    /// SEV-SNP: a CRL of the ARK, which can list the ASK or ASVK.
    Crl,
    /// A certificate whose role could not be told, or one of an Intel issuer chain (its role
    /// follows from its subject).
    Certificate,
    /// Intel TCB info body (`{"tcbInfo":…,"signature":…}`), byte for byte.
    TcbInfo,
    /// Intel QE identity body (`{"enclaveIdentity":…,"signature":…}`), byte for byte.
    QeIdentity,
    /// Intel PCK CRL (Platform or Processor CA), DER.
    PckCrl,
    /// Intel SGX Root CA CRL, DER.
    RootCaCrl,
}

impl From<CertKind> for EndorsementKind {
    fn from(k: CertKind) -> Self {
        match k {
            CertKind::Vcek => EndorsementKind::Vcek,
            CertKind::Vlek => EndorsementKind::Vlek,
            CertKind::Ask => EndorsementKind::Ask,
            CertKind::Ark => EndorsementKind::Ark,
            CertKind::Crl => EndorsementKind::Crl,
            CertKind::Unknown => EndorsementKind::Certificate,
        }
    }
}

/// Where an endorsement came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// `auxblob`, `ext-report`, `thim`, `kds`, `pcs`, `file` or `vtpm` (an open set).
    pub kind: String,
    /// The URL fetched (`thim`, `kds`, `pcs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The file read (`file`), or the NV index read (`vtpm`, as `nv:0x01c101d0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// One endorsement with its exact bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endorsement {
    /// The endorsement's role.
    pub kind: EndorsementKind,
    /// How `data` is encoded: `der` for certificates and CRLs, `json` for TCB info and QE
    /// identity (an open set).
    pub format: String,
    /// The bytes, base64.
    pub data: String,
    /// SHA-256 of the bytes, hex, for humans comparing bundles.
    pub sha256: String,
    /// Where the bytes came from.
    pub origin: Origin,
    /// When it was retrieved (RFC 3339), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieved_at: Option<String>,
    /// How long the source said it may be cached, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_max_age_secs: Option<u64>,
    /// The issuer chain the source sent with it (PEM, as received after percent-decoding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_chain: Option<String>,
    /// When the item itself says it should be replaced (`nextUpdate`, RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_update: Option<String>,
}

impl Endorsement {
    /// A DER endorsement.
    pub fn der(
        kind: EndorsementKind,
        der: &[u8],
        origin: Origin,
        retrieved_at: Option<String>,
    ) -> Endorsement {
        Endorsement::bytes_as(kind, "der", der, origin, retrieved_at)
    }

    /// An endorsement of any format (`der`, `json`).
    pub fn bytes_as(
        kind: EndorsementKind,
        format: &str,
        bytes: &[u8],
        origin: Origin,
        retrieved_at: Option<String>,
    ) -> Endorsement {
        Endorsement {
            kind,
            format: format.into(),
            data: b64(bytes),
            sha256: hex::encode(Sha256::digest(bytes)),
            origin,
            retrieved_at,
            cache_max_age_secs: None,
            issuer_chain: None,
            next_update: None,
        }
    }

    /// The decoded bytes.
    pub fn bytes(&self) -> Result<Vec<u8>, BundleError> {
        unb64(&self.data, "endorsements[].data")
    }
}

/// Claims parsed from the report, for readers. Never trusted by `verify`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// VERSION.
    pub report_version: u32,
    /// The product, when the report or the certificates tell it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<Product>,
    /// MEASUREMENT, hex.
    pub measurement: String,
    /// REPORT_DATA, hex.
    pub report_data: String,
    /// HOST_DATA, hex.
    pub host_data: String,
    /// The guest POLICY: [`GuestPolicy`]'s fields, with `raw` as a `0x` hex string.
    pub policy: serde_json::Value,
    /// VMPL.
    pub vmpl: u32,
    /// GUEST_SVN.
    pub guest_svn: u32,
    /// FAMILY_ID, hex.
    pub family_id: String,
    /// IMAGE_ID, hex.
    pub image_id: String,
    /// ID_KEY_DIGEST, hex.
    pub id_key_digest: String,
    /// AUTHOR_KEY_DIGEST, hex.
    pub author_key_digest: String,
    /// REPORT_ID, hex.
    pub report_id: String,
    /// CHIP_ID, hex (all zero when masked).
    pub chip_id: String,
    /// SIGNING_KEY: `vcek`, `vlek`, `none` or `reserved-N`.
    pub signing_key: String,
    /// REPORTED_TCB: `tcbm`, and the decoded SPLs when the product is known.
    pub reported_tcb: serde_json::Value,
    /// CURRENT_TCB, as `reported_tcb`.
    pub current_tcb: serde_json::Value,
    /// COMMITTED_TCB, as `reported_tcb`.
    pub committed_tcb: serde_json::Value,
    /// LAUNCH_TCB, as `reported_tcb`.
    pub launch_tcb: serde_json::Value,
    /// PLATFORM_INFO.
    pub platform_info: u64,
    /// `major.minor.build` of the running firmware (CURRENT_MAJOR, _MINOR, _BUILD).
    pub firmware_version: String,
}

fn tcb_json(raw: [u8; 8], product: Option<Product>) -> serde_json::Value {
    let t = TcbVersion::decode(raw, product.unwrap_or(Product::Milan));
    let mut v = serde_json::json!({ "tcbm": t.tcbm() });
    if product.is_some() {
        if let (Some(o), Ok(serde_json::Value::Object(d))) =
            (v.as_object_mut(), serde_json::to_value(t))
        {
            o.extend(d);
        }
    }
    v
}

impl Claims {
    /// Claims of `report`; `product` decides how TCB bytes are decoded (omitted when unknown).
    pub fn from_report(report: &SnpReport, product: Option<Product>) -> Claims {
        let policy: GuestPolicy = report.policy;
        let mut policy_json = serde_json::to_value(policy).unwrap_or(serde_json::Value::Null);
        if let Some(o) = policy_json.as_object_mut() {
            o.insert(
                "raw".into(),
                serde_json::Value::String(format!("{:#x}", policy.raw)),
            );
        }
        let (b, mi, ma) = report.current_version;
        Claims {
            report_version: report.version,
            product,
            measurement: hex::encode(report.measurement),
            report_data: hex::encode(report.report_data),
            host_data: hex::encode(report.host_data),
            policy: policy_json,
            vmpl: report.vmpl,
            guest_svn: report.guest_svn,
            family_id: hex::encode(report.family_id),
            image_id: hex::encode(report.image_id),
            id_key_digest: hex::encode(report.id_key_digest),
            author_key_digest: hex::encode(report.author_key_digest),
            report_id: hex::encode(report.report_id),
            chip_id: hex::encode(report.chip_id),
            signing_key: match report.signing_key {
                SigningKey::Vcek => "vcek".into(),
                SigningKey::Vlek => "vlek".into(),
                SigningKey::None => "none".into(),
                SigningKey::Reserved(v) => format!("reserved-{v}"),
            },
            reported_tcb: tcb_json(report.reported_tcb, product),
            current_tcb: tcb_json(report.current_tcb, product),
            committed_tcb: tcb_json(report.committed_tcb, product),
            launch_tcb: tcb_json(report.launch_tcb, product),
            platform_info: report.platform_info,
            firmware_version: format!("{ma}.{mi}.{b}"),
        }
    }
}

/// Why a bundle could not be read, or lacks what its `tee` needs.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BundleError {
    /// Not JSON, or not of the bundle's shape (a required member missing, a value of the wrong
    /// type, an unknown `tee`, `kind` or derivation).
    #[error("bundle is not valid JSON of the expected shape: {reason}")]
    Json {
        /// The JSON parser's message.
        reason: String,
    },
    /// `format` is not [`FORMAT`] (or is missing: `found` is then empty).
    #[error("not a thimble bundle (format is {found:?}, expected {FORMAT:?})")]
    Format {
        /// The `format` found.
        found: String,
    },
    /// `version` is not [`VERSION`] (0 when missing).
    #[error("bundle version {found} is not supported (this thimble reads version {VERSION})")]
    Version {
        /// The `version` found.
        found: u32,
    },
    /// A base64 member does not decode.
    #[error("bundle field {field} is not valid base64")]
    Base64 {
        /// Its path in the bundle.
        field: &'static str,
    },
    /// A member the bundle's `tee` needs is absent.
    #[error("bundle has no {field}, which a {tee} bundle needs")]
    Missing {
        /// Its path in the bundle.
        field: &'static str,
        /// The TEE that needs it.
        tee: &'static str,
    },
    /// The input is larger than the limit; nothing was parsed.
    #[error("bundle is {len} bytes, more than the {max} bytes accepted")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More elements than accepted (endorsements, over [`MAX_ENDORSEMENTS`]).
    #[error("bundle has {count} {field}, more than the {max} accepted")]
    TooMany {
        /// The member.
        field: &'static str,
        /// Its elements.
        count: usize,
        /// The cap.
        max: usize,
    },
}

impl Bundle {
    /// Parses a bundle of at most [`DEFAULT_MAX_BUNDLE_LEN`] bytes and checks `format` and
    /// `version`.
    pub fn parse(bytes: &[u8]) -> Result<Bundle, BundleError> {
        Bundle::parse_limited(bytes, DEFAULT_MAX_BUNDLE_LEN)
    }

    /// [`Bundle::parse`] with another size limit. The cost of reading a bundle (memory and
    /// time) grows linearly with its size and is bounded by the limit: no member is expanded
    /// into a generic JSON tree, and the number of endorsements is capped.
    pub fn parse_limited(bytes: &[u8], max_len: usize) -> Result<Bundle, BundleError> {
        if bytes.len() > max_len {
            return Err(BundleError::TooLarge {
                len: bytes.len(),
                max: max_len,
            });
        }
        // Check the envelope first so that a future version gets a version error, not a shape one.
        #[derive(Deserialize)]
        struct Envelope {
            format: Option<String>,
            version: Option<u32>,
        }
        let env: Envelope = serde_json::from_slice(bytes).map_err(|e| BundleError::Json {
            reason: e.to_string(),
        })?;
        let format = env.format.unwrap_or_default();
        if format != FORMAT {
            return Err(BundleError::Format { found: format });
        }
        match env.version {
            Some(VERSION) => {}
            other => {
                return Err(BundleError::Version {
                    found: other.unwrap_or(0),
                });
            }
        }
        let bundle: Bundle = serde_json::from_slice(bytes).map_err(|e| BundleError::Json {
            reason: e.to_string(),
        })?;
        if bundle.endorsements.len() > MAX_ENDORSEMENTS {
            return Err(BundleError::TooMany {
                field: "endorsements",
                count: bundle.endorsements.len(),
                max: MAX_ENDORSEMENTS,
            });
        }
        Ok(bundle)
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// The SEV-SNP report bytes.
    pub fn report_bytes(&self) -> Result<Vec<u8>, BundleError> {
        let s = self
            .evidence
            .snp_report
            .as_deref()
            .ok_or(BundleError::Missing {
                field: "evidence.snp_report",
                tee: "sev-snp",
            })?;
        unb64(s, "evidence.snp_report")
    }

    /// The HCL report bytes (Azure).
    pub fn hcl_report_bytes(&self) -> Result<Vec<u8>, BundleError> {
        let s = self
            .evidence
            .hcl_report
            .as_deref()
            .ok_or(BundleError::Missing {
                field: "evidence.hcl_report",
                tee: self.tee.as_str(),
            })?;
        unb64(s, "evidence.hcl_report")
    }

    /// The TDX quote bytes.
    pub fn tdx_quote_bytes(&self) -> Result<Vec<u8>, BundleError> {
        let s = self
            .evidence
            .tdx_quote
            .as_deref()
            .ok_or(BundleError::Missing {
                field: "evidence.tdx_quote",
                tee: "tdx",
            })?;
        unb64(s, "evidence.tdx_quote")
    }

    /// The auxblob bytes, if any.
    pub fn auxblob_bytes(&self) -> Result<Option<Vec<u8>>, BundleError> {
        self.evidence
            .auxblob
            .as_deref()
            .map(|a| unb64(a, "evidence.auxblob"))
            .transpose()
    }
}

/// Standard base64.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(s: &str, field: &'static str) -> Result<Vec<u8>, BundleError> {
    base64::engine::general_purpose::STANDARD
        .decode(s.as_bytes())
        .map_err(|_| BundleError::Base64 { field })
}

/// Serialises optional bytes as hex.
pub fn hex_opt<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(b) => s.serialize_str(&hex::encode(b)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_errors() {
        assert!(matches!(Bundle::parse(b"{"), Err(BundleError::Json { .. })));
        assert_eq!(
            Bundle::parse(br#"{"format":"other","version":1}"#),
            Err(BundleError::Format {
                found: "other".into()
            })
        );
        assert_eq!(
            Bundle::parse(br#"{"format":"thimble-evidence-bundle","version":2}"#),
            Err(BundleError::Version { found: 2 })
        );
        assert!(matches!(
            Bundle::parse(br#"{"format":"thimble-evidence-bundle","version":1}"#),
            Err(BundleError::Json { .. })
        ));
    }

    fn sample() -> Bundle {
        let mut raw = vec![0u8; crate::snp::report::SNP_REPORT_LEN];
        raw[0] = 3;
        raw[0x0a] = 0x03; // POLICY 0x30000: SMT allowed, reserved bit 17 set
        raw[0x34] = 1;
        let report = SnpReport::parse(&raw).unwrap();
        Bundle {
            format: FORMAT.into(),
            version: VERSION,
            tee: Tee::SevSnp,
            simulated: false,
            agent: Agent {
                name: "thimble".into(),
                version: "0.1.0".into(),
            },
            created_at: "2026-06-01T00:00:00Z".into(),
            kernel_release: Some("6.12.0".into()),
            collection: Collection {
                source: "configfs-tsm".into(),
                provider: Some("sev_guest".into()),
                privlevel: Some(0),
                generation: Some(1),
                path: None,
                ..Collection::default()
            },
            nonce: Some(Nonce {
                value: "aa".into(),
                generated: false,
                report_data_derivation: Derivation::Sha512,
            }),
            evidence: Evidence {
                snp_report: Some(b64(&raw)),
                ..Evidence::default()
            },
            endorsements: vec![Endorsement::der(
                EndorsementKind::Vcek,
                b"der",
                Origin {
                    kind: "thim".into(),
                    url: Some("http://x".into()),
                    path: None,
                },
                None,
            )],
            endorsement_log: vec!["thim: ok".into()],
            claims: serde_json::to_value(Claims::from_report(&report, Some(Product::Milan)))
                .unwrap(),
        }
    }

    #[test]
    fn round_trip() {
        let mut b = sample();
        let parsed = Bundle::parse(&b.to_json()).unwrap();
        // Claims are written, never read back.
        assert_eq!(parsed.claims, serde_json::Value::Null);
        b.claims = serde_json::Value::Null;
        assert_eq!(parsed, b);
        assert_eq!(parsed.report_bytes().unwrap().len(), 0x4a0);
        assert_eq!(parsed.endorsements[0].bytes().unwrap(), b"der");
    }

    #[test]
    fn old_reader_accepts_additive_fields_and_rejects_a_new_major_version() {
        let mut v: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        v["a_field_from_the_future"] = serde_json::json!({"x": 1});
        v["evidence"]["another"] = serde_json::json!("y");
        assert!(Bundle::parse(&serde_json::to_vec(&v).unwrap()).is_ok());
        v["version"] = serde_json::json!(2);
        assert_eq!(
            Bundle::parse(&serde_json::to_vec(&v).unwrap()),
            Err(BundleError::Version { found: 2 })
        );
    }

    #[test]
    fn new_reader_accepts_a_minimal_old_bundle() {
        // Optional fields absent, as an older or foreign writer may leave them.
        let mut v: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("kernel_release");
        o.remove("nonce");
        o.remove("endorsement_log");
        o.remove("claims");
        let b = Bundle::parse(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert!(b.nonce.is_none() && b.endorsement_log.is_empty());
        let mut bad = v.clone();
        bad["evidence"]["snp_report"] = serde_json::json!("***");
        assert_eq!(
            Bundle::parse(&serde_json::to_vec(&bad).unwrap())
                .unwrap()
                .report_bytes(),
            Err(BundleError::Base64 {
                field: "evidence.snp_report"
            })
        );
    }

    #[test]
    fn limits() {
        let json = sample().to_json();
        assert_eq!(
            Bundle::parse_limited(&json, 100),
            Err(BundleError::TooLarge {
                len: json.len(),
                max: 100
            })
        );
        let mut b = sample();
        let one = b.endorsements[0].clone();
        b.endorsements = vec![one; MAX_ENDORSEMENTS + 1];
        assert_eq!(
            Bundle::parse(&b.to_json()),
            Err(BundleError::TooMany {
                field: "endorsements",
                count: MAX_ENDORSEMENTS + 1,
                max: MAX_ENDORSEMENTS
            })
        );
        // Claims of any shape are skipped, not built.
        let mut v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        v["claims"] = serde_json::json!([[[[{"a": [1, 2, 3]}]]], "x", {"y": null}]);
        assert!(Bundle::parse(&serde_json::to_vec(&v).unwrap()).is_ok());
    }
}
