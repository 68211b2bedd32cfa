// SPDX-License-Identifier: Apache-2.0
//! The thimble evidence bundle: one versioned JSON document holding the raw evidence bytes, every
//! endorsement with where and when it came from, and the claims parsed from the evidence.
//!
//! This is the project's public contract; `docs/bundle-format.md` specifies it and
//! `docs/bundle.schema.json` is its JSON Schema. Readers reject a `format` or major `version` they
//! do not know and ignore members they do not know, so that members can be added without a new
//! version. A verifier trusts nothing here but bytes it checks: `claims` are a convenience for
//! readers, written and never read back.
//!
//! The types follow the TEE: [`Evidence`] has one variant per [`Tee`], holding exactly the members
//! that TEE carries, decoded ([`SevSnpEvidence`], [`TdxEvidence`], [`AzureSevSnpEvidence`],
//! [`AzureTdxEvidence`]), and [`Claims`] likewise. The JSON keeps `tee` beside `evidence`, so
//! reading checks that they fit ([`BundleError::Missing`], [`BundleError::Unexpected`]) and
//! writing derives `tee` from the evidence: a bundle whose members do not fit its TEE cannot be
//! represented. Writing gives the bytes thimble has always written (member names, order and
//! encodings). `Bundle` implements `Serialize` and `Deserialize` by hand, through private structs
//! that mirror the JSON, so that serde users get the same checks as [`Bundle::parse`].
//! `collection.source` and `origin.kind` are open sets ([`CollectionSource`], [`OriginKind`]):
//! values this version does not know are kept, as the format requires of readers.

use std::fmt;

use crate::digest::Sha256;
use base64::Engine;
use base64::display::Base64Display;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use thiserror::Error;

use crate::azure::{HclReport, HclReportType, TpmError, TpmQuote};
use crate::report_data::Derivation;
use crate::snp::{CertKind, GuestPolicy, Product, SigningKey, SnpReport, TcbVersion};
use crate::tdx::TdxClaims;
use crate::tdx::pcs::ServiceKind;

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

/// The most event logs a bundle may carry (a TD's CC log, a TPM's log, the IMA log, and one to
/// spare): a reader refuses more before decoding any.
pub const MAX_EVENT_LOGS: usize = 4;

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

impl fmt::Display for Tee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The whole bundle.
///
/// Its TEE is the evidence's ([`Bundle::tee`]); the JSON's `tee` member is written from it and
/// checked against the evidence members when read.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    /// Always [`FORMAT`].
    pub format: String,
    /// The major version; [`VERSION`] for this code.
    pub version: u32,
    /// True when produced by `--simulate`: signed by test keys, never trusted by default.
    pub simulated: bool,
    /// The program that wrote the bundle.
    pub agent: Agent,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// `uname -r` of the guest that collected (absent for imports).
    pub kernel_release: Option<String>,
    /// How the evidence was obtained.
    pub collection: Collection,
    /// The nonce, when known. Absent for imported evidence whose nonce was not given.
    pub nonce: Option<Nonce>,
    /// The raw evidence, of one TEE; decides `tee`.
    pub evidence: Evidence,
    /// Certificates, CRLs and Intel collateral, each with its bytes and provenance (at most
    /// [`MAX_ENDORSEMENTS`] when parsed).
    pub endorsements: Vec<Endorsement>,
    /// Why endorsements came from where they came from (fallbacks, rejected responses).
    pub endorsement_log: Vec<String>,
    /// Measured-boot event logs, as read from the guest (at most [`MAX_EVENT_LOGS`] when
    /// parsed). Not signed: `verify` believes a log only as far as it replays to registers that
    /// signed evidence holds.
    pub event_logs: Vec<EventLogEvidence>,
    /// Claims decoded from the evidence, for readers; of the evidence's TEE. Written, never read
    /// back: reading skips the member without building it (this is `None` in a parsed bundle,
    /// and `None` is written as `null`), because nothing a verifier decides may rest on it and a
    /// hostile bundle could make it arbitrarily costly. `verify` decodes the claims again from
    /// the verified bytes.
    pub claims: Option<Claims>,
}

impl Bundle {
    /// The TEE of the evidence, written as the bundle's `tee`.
    pub fn tee(&self) -> Tee {
        self.evidence.tee()
    }
}

/// The program that wrote a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// `thimble`.
    pub name: String,
    /// The crate version.
    pub version: String,
}

/// Declares an open set of names (`collection.source`, `origin.kind`): an enum of the values this
/// version knows, plus `Other` for the ones it does not, which readers must accept (a writer may
/// add values within a version). Serialised as the name; any name reads as its known variant.
macro_rules! open_set {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this version does not know, as read. The set is open, so readers accept
            /// it; a known value always reads as its own variant (build values with `From<&str>`
            /// to get the same).
            Other(String),
        }

        impl $name {
            /// The value as the bundle writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $text, )*
                    $name::Other(other) => other,
                }
            }
        }

        impl From<&str> for $name {
            /// The known variant `name` names, else [`Other`](Self::Other).
            fn from(name: &str) -> $name {
                match name {
                    $( $text => $name::$variant, )*
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let name = String::deserialize(d)?;
                Ok($name::from(name.as_str()))
            }
        }
    };
}

open_set! {
    /// How the evidence was obtained: the bundle's `collection.source`.
    pub enum CollectionSource {
        /// `configfs-tsm`: the Linux configfs-tsm report interface (SEV-SNP or TDX).
        ConfigfsTsm = "configfs-tsm",
        /// `sev-guest`: the `/dev/sev-guest` ioctl (SNP_GET_EXT_REPORT).
        SevGuest = "sev-guest",
        /// `tdx-guest+qgs`: a TDREPORT from `/dev/tdx_guest`, quoted by the host's Quote
        /// Generation Service over vsock.
        TdxGuestQgs = "tdx-guest+qgs",
        /// `vtpm`: Azure, the HCL report and a TPM quote from the vTPM.
        Vtpm = "vtpm",
        /// `import`: `thimble import`, from files.
        Import = "import",
    }
}

open_set! {
    /// Where an endorsement came from: its `origin.kind`.
    pub enum OriginKind {
        /// `auxblob`: an entry of the configfs-tsm `auxblob` certificate table.
        Auxblob = "auxblob",
        /// `ext-report`: an entry of the certificate table `SNP_GET_EXT_REPORT` returned.
        ExtReport = "ext-report",
        /// `thim`: Azure THIM (AMD certificates, Intel collateral, or the local PCK endpoint).
        Thim = "thim",
        /// `kds`: AMD KDS.
        Kds = "kds",
        /// `pcs`: Intel PCS, or a PCCS.
        Pcs = "pcs",
        /// `file`: a file given to `thimble import --add`.
        File = "file",
        /// `vtpm`: Azure, the vTPM attestation key's certificate from NV.
        Vtpm = "vtpm",
    }
}

impl From<ServiceKind> for OriginKind {
    /// The origin of an item from an Intel collateral service: THIM (the collateral cache or the
    /// local PCK endpoint behind IMDS) or PCS.
    fn from(kind: ServiceKind) -> OriginKind {
        match kind {
            ServiceKind::Thim | ServiceKind::LocalThim => OriginKind::Thim,
            ServiceKind::Pcs => OriginKind::Pcs,
        }
    }
}

/// How the evidence was obtained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collection {
    /// The interface the evidence came from.
    pub source: CollectionSource,
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
    /// What the collection noted that is not an endorsement's story: an event log that is
    /// absent, unreadable or does not parse (not fatal; the bundle simply does not carry it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<String>,
}

impl Collection {
    /// A collection from `source`, with nothing else recorded.
    pub fn new(source: CollectionSource) -> Collection {
        Collection {
            source,
            provider: None,
            privlevel: None,
            generation: None,
            path: None,
            hcl_user_data_echoed: None,
            log: Vec::new(),
        }
    }
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

/// The raw evidence, of one TEE: exactly the members that TEE carries, as the bytes received
/// (the bundle encodes them in base64, the TPM quote's members in hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// `sev-snp`.
    SevSnp(SevSnpEvidence),
    /// `tdx`.
    Tdx(TdxEvidence),
    /// `azure-sev-snp`.
    AzureSevSnp(AzureSevSnpEvidence),
    /// `azure-tdx`.
    AzureTdx(AzureTdxEvidence),
}

/// SEV-SNP evidence: `evidence.snp_report` and `evidence.auxblob`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SevSnpEvidence {
    /// The 1184-byte ATTESTATION_REPORT, as the interface returned it.
    pub report: Vec<u8>,
    /// The host's certificate table (configfs-tsm `auxblob` or the SNP_GET_EXT_REPORT
    /// certificate buffer), when it attached one; kept even when it does not parse.
    pub auxblob: Option<Vec<u8>>,
}

/// TDX evidence: `evidence.tdx_quote` and `evidence.td_report`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxEvidence {
    /// The quote as received, trailing padding included.
    pub quote: Vec<u8>,
    /// The 1024-byte TDREPORT the quote was made from, when thimble asked for it itself
    /// (`/dev/tdx_guest` and the Quote Generation Service). MAC-ed, not signed: verification
    /// does not read it.
    pub td_report: Option<Vec<u8>>,
}

/// Azure evidence on SEV-SNP: `evidence.hcl_report` and `evidence.tpm_quote`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureSevSnpEvidence {
    /// The vTPM NV index 0x01400001 contents (the HCL report, with the SEV-SNP report inside).
    pub hcl_report: Vec<u8>,
    /// The vTPM quote; always written by `collect`, by `import` only when given one.
    pub tpm_quote: Option<TpmQuoteEvidence>,
}

/// Azure evidence on TDX: `evidence.hcl_report`, `evidence.tdx_quote` and `evidence.tpm_quote`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureTdxEvidence {
    /// The vTPM NV index 0x01400001 contents (the HCL report, with the TD report inside).
    pub hcl_report: Vec<u8>,
    /// The quote IMDS made from the HCL report's TD report, as received.
    pub tdx_quote: Vec<u8>,
    /// The vTPM quote; always written by `collect`, by `import` only when given one.
    pub tpm_quote: Option<TpmQuoteEvidence>,
}

/// `evidence.tpm_quote`: the vTPM quote by the attestation key (`{signature, message, pcrs}`,
/// each in hex) and, from `collect`, the key as the TPM reported it. The quote's `message` is the
/// signed `TPMS_ATTEST`, kept as received; the JSON around it is not signed.
///
/// Written as one compact JSON object inside the pretty-printed bundle, as thimble has always
/// written it (the object is a serde_json raw value, so other serializers see serde_json's
/// raw-value token). Read through [`TpmQuote::parse_json`], which caps its size
/// ([`MAX_TPM_QUOTE_JSON_LEN`](crate::azure::tpm::MAX_TPM_QUOTE_JSON_LEN)) and also accepts
/// byte arrays for the three members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmQuoteEvidence {
    /// The signature, the `TPMS_ATTEST` it covers and the PCR values.
    pub quote: TpmQuote,
    /// `ak_public`: the attestation key's `TPMT_PUBLIC` as `TPM2_ReadPublic` returned it
    /// (`collect` only; not read by `verify`).
    pub ak_public: Option<Vec<u8>>,
    /// `ak_qualified_name`: the key's qualified name, which the quote's `qualifiedSigner`
    /// matched at collection (`collect` only; not read by `verify`).
    pub ak_qualified_name: Option<Vec<u8>>,
}

impl TpmQuoteEvidence {
    /// A quote without the attestation key's details (as `import` writes it).
    pub fn new(quote: TpmQuote) -> TpmQuoteEvidence {
        TpmQuoteEvidence {
            quote,
            ak_public: None,
            ak_qualified_name: None,
        }
    }

    /// Reads the member's JSON text: the quote through [`TpmQuote::parse_json`] (size cap
    /// included), then the attestation key's hex members.
    fn parse_json(text: &str) -> Result<TpmQuoteEvidence, TpmError> {
        let quote = TpmQuote::parse_json(text.as_bytes())?;
        #[derive(Deserialize)]
        struct Ak {
            #[serde(default)]
            ak_public: Option<String>,
            #[serde(default)]
            ak_qualified_name: Option<String>,
        }
        let ak: Ak = serde_json::from_str(text).map_err(|e| TpmError::Json {
            reason: e.to_string(),
        })?;
        let unhex = |v: Option<String>, what: &str| {
            v.map(|h| {
                hex::decode(h).map_err(|_| TpmError::Json {
                    reason: format!("{what} is not hex"),
                })
            })
            .transpose()
        };
        Ok(TpmQuoteEvidence {
            quote,
            ak_public: unhex(ak.ak_public, "ak_public")?,
            ak_qualified_name: unhex(ak.ak_qualified_name, "ak_qualified_name")?,
        })
    }
}

impl Serialize for TpmQuoteEvidence {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Hex {
            signature: String,
            message: String,
            pcrs: Vec<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            ak_public: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            ak_qualified_name: Option<String>,
        }
        let q = &self.quote;
        let hex = Hex {
            signature: hex::encode(&q.signature),
            message: hex::encode(&q.message),
            pcrs: q.pcrs.iter().map(hex::encode).collect(),
            ak_public: self.ak_public.as_ref().map(hex::encode),
            ak_qualified_name: self.ak_qualified_name.as_ref().map(hex::encode),
        };
        let text = serde_json::to_string(&hex).map_err(serde::ser::Error::custom)?;
        RawValue::from_string(text)
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
}

impl Evidence {
    /// The TEE this evidence is of.
    pub fn tee(&self) -> Tee {
        match self {
            Evidence::SevSnp(_) => Tee::SevSnp,
            Evidence::Tdx(_) => Tee::Tdx,
            Evidence::AzureSevSnp(_) => Tee::AzureSevSnp,
            Evidence::AzureTdx(_) => Tee::AzureTdx,
        }
    }

    /// The TDX quote (`tdx` and `azure-tdx`).
    pub fn tdx_quote(&self) -> Option<&[u8]> {
        match self {
            Evidence::Tdx(e) => Some(&e.quote),
            Evidence::AzureTdx(e) => Some(&e.tdx_quote),
            Evidence::SevSnp(_) | Evidence::AzureSevSnp(_) => None,
        }
    }

    /// The HCL report (Azure).
    pub fn hcl_report(&self) -> Option<&[u8]> {
        match self {
            Evidence::AzureSevSnp(e) => Some(&e.hcl_report),
            Evidence::AzureTdx(e) => Some(&e.hcl_report),
            Evidence::SevSnp(_) | Evidence::Tdx(_) => None,
        }
    }

    /// The TPM quote (Azure), when the bundle has one.
    pub fn tpm_quote(&self) -> Option<&TpmQuoteEvidence> {
        match self {
            Evidence::AzureSevSnp(e) => e.tpm_quote.as_ref(),
            Evidence::AzureTdx(e) => e.tpm_quote.as_ref(),
            Evidence::SevSnp(_) | Evidence::Tdx(_) => None,
        }
    }
}

impl From<SevSnpEvidence> for Evidence {
    fn from(e: SevSnpEvidence) -> Evidence {
        Evidence::SevSnp(e)
    }
}

impl From<TdxEvidence> for Evidence {
    fn from(e: TdxEvidence) -> Evidence {
        Evidence::Tdx(e)
    }
}

impl From<AzureSevSnpEvidence> for Evidence {
    fn from(e: AzureSevSnpEvidence) -> Evidence {
        Evidence::AzureSevSnp(e)
    }
}

impl From<AzureTdxEvidence> for Evidence {
    fn from(e: AzureTdxEvidence) -> Evidence {
        Evidence::AzureTdx(e)
    }
}

/// Bytes written as standard base64, without an intermediate string.
struct B64<'a>(&'a [u8]);

impl Serialize for B64<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&Base64Display::new(
            self.0,
            &base64::engine::general_purpose::STANDARD,
        ))
    }
}

/// `evidence` as written: every member of every TEE, in the order thimble has always written
/// them, each left out when absent.
#[derive(Default, Serialize)]
struct EvidenceOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    snp_report: Option<B64<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auxblob: Option<B64<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tdx_quote: Option<B64<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    td_report: Option<B64<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hcl_report: Option<B64<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tpm_quote: Option<&'a TpmQuoteEvidence>,
}

impl Serialize for Evidence {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let out = match self {
            Evidence::SevSnp(e) => EvidenceOut {
                snp_report: Some(B64(&e.report)),
                auxblob: e.auxblob.as_deref().map(B64),
                ..EvidenceOut::default()
            },
            Evidence::Tdx(e) => EvidenceOut {
                tdx_quote: Some(B64(&e.quote)),
                td_report: e.td_report.as_deref().map(B64),
                ..EvidenceOut::default()
            },
            Evidence::AzureSevSnp(e) => EvidenceOut {
                hcl_report: Some(B64(&e.hcl_report)),
                tpm_quote: e.tpm_quote.as_ref(),
                ..EvidenceOut::default()
            },
            Evidence::AzureTdx(e) => EvidenceOut {
                tdx_quote: Some(B64(&e.tdx_quote)),
                hcl_report: Some(B64(&e.hcl_report)),
                tpm_quote: e.tpm_quote.as_ref(),
                ..EvidenceOut::default()
            },
        };
        out.serialize(s)
    }
}

/// `evidence` as read: every member any TEE has, undecoded, until `tee` says which belong.
#[derive(Deserialize)]
struct EvidenceIn {
    #[serde(default)]
    snp_report: Option<String>,
    #[serde(default)]
    auxblob: Option<String>,
    #[serde(default)]
    tdx_quote: Option<String>,
    #[serde(default)]
    td_report: Option<String>,
    #[serde(default)]
    hcl_report: Option<String>,
    /// The text as received: its size is checked before anything is decoded from it.
    #[serde(default)]
    tpm_quote: Option<Box<RawValue>>,
}

impl EvidenceIn {
    /// The evidence of `tee`: its members decoded, an absent required one or a present one of
    /// another TEE refused.
    fn into_evidence(self, tee: Tee) -> Result<Evidence, BundleError> {
        let present = [
            ("evidence.snp_report", self.snp_report.is_some()),
            ("evidence.auxblob", self.auxblob.is_some()),
            ("evidence.tdx_quote", self.tdx_quote.is_some()),
            ("evidence.td_report", self.td_report.is_some()),
            ("evidence.hcl_report", self.hcl_report.is_some()),
            ("evidence.tpm_quote", self.tpm_quote.is_some()),
        ];
        let carried: &[&str] = match tee {
            Tee::SevSnp => &["evidence.snp_report", "evidence.auxblob"],
            Tee::Tdx => &["evidence.tdx_quote", "evidence.td_report"],
            Tee::AzureSevSnp => &["evidence.hcl_report", "evidence.tpm_quote"],
            Tee::AzureTdx => &[
                "evidence.hcl_report",
                "evidence.tdx_quote",
                "evidence.tpm_quote",
            ],
        };
        if let Some((field, _)) = present
            .iter()
            .find(|(field, is)| *is && !carried.contains(field))
        {
            return Err(BundleError::Unexpected { field, tee });
        }
        let required = |v: Option<String>, field: &'static str| match v {
            Some(text) => unb64(&text, field),
            None => Err(BundleError::Missing { field, tee }),
        };
        let optional =
            |v: Option<String>, field: &'static str| v.map(|text| unb64(&text, field)).transpose();
        let tpm_quote = self
            .tpm_quote
            .map(|raw| TpmQuoteEvidence::parse_json(raw.get()))
            .transpose()
            .map_err(|source| BundleError::TpmQuote { source });
        Ok(match tee {
            Tee::SevSnp => Evidence::SevSnp(SevSnpEvidence {
                report: required(self.snp_report, "evidence.snp_report")?,
                auxblob: optional(self.auxblob, "evidence.auxblob")?,
            }),
            Tee::Tdx => Evidence::Tdx(TdxEvidence {
                quote: required(self.tdx_quote, "evidence.tdx_quote")?,
                td_report: optional(self.td_report, "evidence.td_report")?,
            }),
            Tee::AzureSevSnp => Evidence::AzureSevSnp(AzureSevSnpEvidence {
                hcl_report: required(self.hcl_report, "evidence.hcl_report")?,
                tpm_quote: tpm_quote?,
            }),
            Tee::AzureTdx => Evidence::AzureTdx(AzureTdxEvidence {
                hcl_report: required(self.hcl_report, "evidence.hcl_report")?,
                tdx_quote: required(self.tdx_quote, "evidence.tdx_quote")?,
                tpm_quote: tpm_quote?,
            }),
        })
    }
}

open_set! {
    /// The format and origin of a measured-boot event log: its `kind`.
    pub enum EventLogKind {
        /// `tcg2`: a TPM's TCG PC Client crypto-agile log
        /// (`/sys/kernel/security/tpm0/binary_bios_measurements`); its registers are PCRs.
        Tcg2 = "tcg2",
        /// `ccel`: a TD's confidential-computing event log, the log area the ACPI CCEL table
        /// names, trimmed after its last event; the same crypto-agile format, its registers CC
        /// measurement register indices (1 to 4 for RTMR0 to RTMR3).
        Ccel = "ccel",
        /// `ima`: the kernel's IMA log (`binary_runtime_measurements`), carried for verifiers
        /// that read it; thimble does not replay it.
        Ima = "ima",
    }
}

/// A measured-boot event log (`event_logs[]`): its kind, where it was read and its bytes
/// (`data`, base64, with its `size`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLogEvidence {
    /// The log's format and origin.
    pub kind: EventLogKind,
    /// The file it was read from (`simulated:` in a simulation); information only.
    pub source: String,
    /// The log as read (a CCEL log area trimmed after its last event).
    pub data: Vec<u8>,
}

impl Serialize for EventLogEvidence {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a> {
            kind: &'a EventLogKind,
            source: &'a str,
            size: usize,
            data: B64<'a>,
        }
        Out {
            kind: &self.kind,
            source: &self.source,
            size: self.data.len(),
            data: B64(&self.data),
        }
        .serialize(s)
    }
}

/// `event_logs[]` as read, before its data is decoded.
#[derive(Deserialize)]
struct EventLogIn {
    kind: EventLogKind,
    source: String,
    size: u64,
    data: String,
}

impl EventLogIn {
    fn decode(self) -> Result<EventLogEvidence, BundleError> {
        let data = unb64(&self.data, "event_logs[].data")?;
        if u64::try_from(data.len()).ok() != Some(self.size) {
            return Err(BundleError::EventLogSize {
                kind: self.kind.to_string(),
                size: self.size,
                len: data.len(),
            });
        }
        Ok(EventLogEvidence {
            kind: self.kind,
            source: self.source,
            data,
        })
    }
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

impl EndorsementKind {
    /// The name the bundle uses (`vcek`, `tcb-info`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EndorsementKind::Vcek => "vcek",
            EndorsementKind::Vlek => "vlek",
            EndorsementKind::Ask => "ask",
            EndorsementKind::Asvk => "asvk",
            EndorsementKind::Ark => "ark",
            EndorsementKind::Crl => "crl",
            EndorsementKind::Certificate => "certificate",
            EndorsementKind::TcbInfo => "tcb-info",
            EndorsementKind::QeIdentity => "qe-identity",
            EndorsementKind::PckCrl => "pck-crl",
            EndorsementKind::RootCaCrl => "root-ca-crl",
        }
    }
}

impl fmt::Display for EndorsementKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
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
    /// The kind of source (an open set).
    pub kind: OriginKind,
    /// The URL fetched (`thim`, `kds`, `pcs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The file read (`file`), or the NV index read (`vtpm`, as `nv:0x01c101d0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl Origin {
    /// An origin of `kind` with the URL it was fetched from.
    pub fn url(kind: OriginKind, url: impl Into<String>) -> Origin {
        Origin {
            kind,
            url: Some(url.into()),
            path: None,
        }
    }

    /// An origin of `kind` with the path it was read from.
    pub fn path(kind: OriginKind, path: impl Into<String>) -> Origin {
        Origin {
            kind,
            url: None,
            path: Some(path.into()),
        }
    }

    /// An origin of `kind` with neither.
    pub fn kind(kind: OriginKind) -> Origin {
        Origin {
            kind,
            url: None,
            path: None,
        }
    }
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

/// The bundle's `claims`: the evidence's fields decoded for readers, in the shape of its TEE
/// (`docs/bundle-format.md` §9). Never read back, never trusted.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Claims {
    /// `sev-snp`: the report's fields.
    SevSnp(SnpClaims),
    /// `tdx`: the quote's fields.
    Tdx(TdxClaims),
    /// `azure-sev-snp`: the HCL report's, with the SEV-SNP report's as `hardware`.
    AzureSevSnp(AzureClaims<SnpClaims>),
    /// `azure-tdx`: the HCL report's, with the TDX quote's as `hardware`.
    AzureTdx(AzureClaims<TdxClaims>),
}

impl Claims {
    /// The TEE these claims are shaped for.
    pub fn tee(&self) -> Tee {
        match self {
            Claims::SevSnp(_) => Tee::SevSnp,
            Claims::Tdx(_) => Tee::Tdx,
            Claims::AzureSevSnp(_) => Tee::AzureSevSnp,
            Claims::AzureTdx(_) => Tee::AzureTdx,
        }
    }
}

/// Claims of an SEV-SNP report, for readers (`claims` of an SEV-SNP bundle, `claims.hardware` of
/// an Azure SEV-SNP one, and `verify`'s claims). Never trusted by `verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnpClaims {
    /// VERSION.
    pub report_version: u32,
    /// The product, when the report or the certificates tell it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<Product>,
    /// MEASUREMENT, hex.
    pub measurement: String,
    /// REPORT_DATA, hex.
    pub report_data: String,
    /// HOST_DATA, hex.
    pub host_data: String,
    /// The guest POLICY (its `raw` word written as a `0x` hex string).
    pub policy: GuestPolicy,
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
    pub signing_key: SigningKey,
    /// REPORTED_TCB.
    pub reported_tcb: TcbClaims,
    /// CURRENT_TCB.
    pub current_tcb: TcbClaims,
    /// COMMITTED_TCB.
    pub committed_tcb: TcbClaims,
    /// LAUNCH_TCB.
    pub launch_tcb: TcbClaims,
    /// PLATFORM_INFO.
    pub platform_info: u64,
    /// `major.minor.build` of the running firmware (CURRENT_MAJOR, _MINOR, _BUILD).
    pub firmware_version: String,
}

impl SnpClaims {
    /// Claims of `report`; `product` decides how TCB bytes are decoded (omitted when unknown).
    pub fn from_report(report: &SnpReport, product: Option<Product>) -> SnpClaims {
        let (b, mi, ma) = report.current_version;
        SnpClaims {
            report_version: report.version,
            product,
            measurement: hex::encode(report.measurement),
            report_data: hex::encode(report.report_data),
            host_data: hex::encode(report.host_data),
            policy: report.policy,
            vmpl: report.vmpl,
            guest_svn: report.guest_svn,
            family_id: hex::encode(report.family_id),
            image_id: hex::encode(report.image_id),
            id_key_digest: hex::encode(report.id_key_digest),
            author_key_digest: hex::encode(report.author_key_digest),
            report_id: hex::encode(report.report_id),
            chip_id: hex::encode(report.chip_id),
            signing_key: report.signing_key,
            reported_tcb: TcbClaims::new(report.reported_tcb, product),
            current_tcb: TcbClaims::new(report.current_tcb, product),
            committed_tcb: TcbClaims::new(report.committed_tcb, product),
            launch_tcb: TcbClaims::new(report.launch_tcb, product),
            platform_info: report.platform_info,
            firmware_version: format!("{ma}.{mi}.{b}"),
        }
    }
}

/// A TCB_VERSION in the claims: `tcbm` always, and the decoded SPLs (`bootloader`, `tee`, `snp`,
/// `microcode`, and `fmc` on Turin) when the product, which decides the byte layout, is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TcbClaims {
    /// The 8 bytes as a little-endian u64, 16 hex digits (THIM's form).
    pub tcbm: String,
    /// The SPLs, written beside `tcbm`; `None` when the product is not known.
    #[serde(flatten)]
    pub spls: Option<TcbVersion>,
}

impl TcbClaims {
    /// The claims of the TCB_VERSION bytes `raw` of a report of `product`.
    pub fn new(raw: [u8; 8], product: Option<Product>) -> TcbClaims {
        let decoded = TcbVersion::decode(raw, product.unwrap_or(Product::Milan));
        TcbClaims {
            tcbm: decoded.tcbm(),
            spls: product.map(|_| decoded),
        }
    }
}

/// Claims of an Azure HCL report: the hardware report's type, its claims (`hardware`: SEV-SNP
/// [`SnpClaims`] or TDX [`TdxClaims`]), and the runtime data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AzureClaims<H> {
    /// `snp` or `tdx`: the hardware report inside the HCL report.
    pub hcl_report_type: HclReportType,
    /// The claims of that hardware report (TDX: of the quote made from it); `null` when there
    /// are none.
    pub hardware: Option<H>,
    /// The runtime data JSON as the paravisor wrote it (`keys`, `vm-configuration`,
    /// `user-data`, …); `null` when it is not JSON. Its members are Azure's, an open set, so it
    /// stays a JSON value (written with its members in the paravisor's order).
    pub runtime_data: Option<serde_json::Value>,
}

impl<H> AzureClaims<H> {
    /// The claims of `hcl`, with `hardware` as the claims of its hardware report.
    pub fn new(hcl: &HclReport, hardware: Option<H>) -> AzureClaims<H> {
        AzureClaims {
            hcl_report_type: hcl.report_type(),
            hardware,
            runtime_data: serde_json::from_slice(hcl.runtime_data_bytes()).ok(),
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
    /// An evidence member the bundle's `tee` needs is absent.
    #[error("bundle of tee {tee} has no {field}, which that TEE needs")]
    Missing {
        /// Its path in the bundle.
        field: &'static str,
        /// The bundle's TEE.
        tee: Tee,
    },
    /// An evidence member of another TEE is present: the evidence does not fit `tee`.
    #[error("bundle of tee {tee} has {field}, which that TEE does not carry")]
    Unexpected {
        /// Its path in the bundle.
        field: &'static str,
        /// The bundle's TEE.
        tee: Tee,
    },
    /// `evidence.tpm_quote` is not `{signature, message, pcrs}` in hex (or byte arrays), one of
    /// its attestation key members is not hex, or it is too large.
    #[error("bundle field evidence.tpm_quote is not a TPM quote")]
    TpmQuote {
        /// What is wrong with it.
        #[source]
        source: TpmError,
    },
    /// An event log's `size` is not the length of its decoded `data`.
    #[error("bundle event log {kind} says it is {size} bytes but its data is {len} bytes")]
    EventLogSize {
        /// The log's kind.
        kind: String,
        /// Its `size`.
        size: u64,
        /// The length of its decoded data.
        len: usize,
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

/// The bundle as written: [`Bundle`]'s members by reference, with `tee` from the evidence.
#[derive(Serialize)]
struct BundleOut<'a> {
    format: &'a str,
    version: u32,
    tee: Tee,
    simulated: bool,
    agent: &'a Agent,
    created_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel_release: Option<&'a str>,
    collection: &'a Collection,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a Nonce>,
    evidence: &'a Evidence,
    endorsements: &'a [Endorsement],
    endorsement_log: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    event_logs: &'a [EventLogEvidence],
    claims: Option<&'a Claims>,
}

impl Serialize for Bundle {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        BundleOut {
            format: &self.format,
            version: self.version,
            tee: self.tee(),
            simulated: self.simulated,
            agent: &self.agent,
            created_at: &self.created_at,
            kernel_release: self.kernel_release.as_deref(),
            collection: &self.collection,
            nonce: self.nonce.as_ref(),
            evidence: &self.evidence,
            endorsements: &self.endorsements,
            endorsement_log: &self.endorsement_log,
            event_logs: &self.event_logs,
            claims: self.claims.as_ref(),
        }
        .serialize(s)
    }
}

/// The bundle as read, before `tee` and the evidence are checked against each other.
#[derive(Deserialize)]
struct BundleIn {
    format: String,
    version: u32,
    tee: Tee,
    simulated: bool,
    agent: Agent,
    created_at: String,
    #[serde(default)]
    kernel_release: Option<String>,
    collection: Collection,
    #[serde(default)]
    nonce: Option<Nonce>,
    evidence: EvidenceIn,
    endorsements: Vec<Endorsement>,
    #[serde(default)]
    endorsement_log: Vec<String>,
    /// Each log's members undecoded, so that their number is checked before any is decoded.
    #[serde(default)]
    event_logs: Vec<EventLogIn>,
    /// Skipped without being built (see [`Bundle::claims`]).
    #[serde(default, rename = "claims")]
    _claims: IgnoredAny,
}

impl TryFrom<BundleIn> for Bundle {
    type Error = BundleError;

    fn try_from(b: BundleIn) -> Result<Bundle, BundleError> {
        if b.format != FORMAT {
            return Err(BundleError::Format { found: b.format });
        }
        if b.version != VERSION {
            return Err(BundleError::Version { found: b.version });
        }
        if b.endorsements.len() > MAX_ENDORSEMENTS {
            return Err(BundleError::TooMany {
                field: "endorsements",
                count: b.endorsements.len(),
                max: MAX_ENDORSEMENTS,
            });
        }
        if b.event_logs.len() > MAX_EVENT_LOGS {
            return Err(BundleError::TooMany {
                field: "event_logs",
                count: b.event_logs.len(),
                max: MAX_EVENT_LOGS,
            });
        }
        let event_logs = b
            .event_logs
            .into_iter()
            .map(EventLogIn::decode)
            .collect::<Result<_, _>>()?;
        Ok(Bundle {
            format: b.format,
            version: b.version,
            simulated: b.simulated,
            agent: b.agent,
            created_at: b.created_at,
            kernel_release: b.kernel_release,
            collection: b.collection,
            nonce: b.nonce,
            evidence: b.evidence.into_evidence(b.tee)?,
            endorsements: b.endorsements,
            endorsement_log: b.endorsement_log,
            event_logs,
            claims: None,
        })
    }
}

impl<'de> Deserialize<'de> for Bundle {
    /// Reads a bundle as [`Bundle::parse`] does (without its size limit, and with its errors as
    /// messages).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Bundle, D::Error> {
        Bundle::try_from(BundleIn::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl Bundle {
    /// Parses a bundle of at most [`DEFAULT_MAX_BUNDLE_LEN`] bytes and checks `format` and
    /// `version`.
    pub fn parse(bytes: &[u8]) -> Result<Bundle, BundleError> {
        Bundle::parse_limited(bytes, DEFAULT_MAX_BUNDLE_LEN)
    }

    /// [`Bundle::parse`] with another size limit. The cost of reading a bundle (memory and
    /// time) grows linearly with its size and is bounded by the limit: no member is expanded
    /// into a generic JSON tree, the TPM quote's size is capped before it is decoded, and the
    /// number of endorsements is capped.
    ///
    /// After `format` and `version`, the rest is checked: known `tee`, `kind` and derivation
    /// values, the evidence members of `tee` present and decoded, none of another TEE's.
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
        let read: BundleIn = serde_json::from_slice(bytes).map_err(|e| BundleError::Json {
            reason: e.to_string(),
        })?;
        Bundle::try_from(read)
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> Vec<u8> {
        // An SEV-SNP bundle is about 11 KB and a TDX one a few times that: starting at 16 KiB
        // spares the writer most of its doublings from 128 bytes, each a fresh allocation.
        let mut v = Vec::with_capacity(16 * 1024);
        if serde_json::to_writer_pretty(&mut v, self).is_err() {
            v.clear();
        }
        v.push(b'\n');
        v
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

    fn report_bytes() -> Vec<u8> {
        let mut raw = vec![0u8; crate::snp::report::SNP_REPORT_LEN];
        raw[0] = 3;
        raw[0x0a] = 0x03; // POLICY 0x30000: SMT allowed, reserved bit 17 set
        raw[0x34] = 1;
        raw
    }

    fn sample() -> Bundle {
        let raw = report_bytes();
        let report = SnpReport::parse(&raw).unwrap();
        Bundle {
            format: FORMAT.into(),
            version: VERSION,
            simulated: false,
            agent: Agent {
                name: "thimble".into(),
                version: "0.1.0".into(),
            },
            created_at: "2026-06-01T00:00:00Z".into(),
            kernel_release: Some("6.12.0".into()),
            collection: Collection {
                provider: Some("sev_guest".into()),
                privlevel: Some(0),
                generation: Some(1),
                ..Collection::new(CollectionSource::ConfigfsTsm)
            },
            nonce: Some(Nonce {
                value: "aa".into(),
                generated: false,
                report_data_derivation: Derivation::Sha512,
            }),
            evidence: Evidence::SevSnp(SevSnpEvidence {
                report: raw,
                auxblob: None,
            }),
            endorsements: vec![Endorsement::der(
                EndorsementKind::Vcek,
                b"der",
                Origin::url(OriginKind::Thim, "http://x"),
                None,
            )],
            endorsement_log: vec!["thim: ok".into()],
            event_logs: Vec::new(),
            claims: Some(Claims::SevSnp(SnpClaims::from_report(
                &report,
                Some(Product::Milan),
            ))),
        }
    }

    fn json_of(b: &Bundle) -> serde_json::Value {
        serde_json::from_slice(&b.to_json()).unwrap()
    }

    fn parse_value(v: &serde_json::Value) -> Result<Bundle, BundleError> {
        Bundle::parse(&serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn round_trip() {
        let mut b = sample();
        let parsed = Bundle::parse(&b.to_json()).unwrap();
        // Claims are written, never read back.
        assert_eq!(parsed.claims, None);
        b.claims = None;
        assert_eq!(parsed, b);
        assert_eq!(parsed.tee(), Tee::SevSnp);
        let Evidence::SevSnp(e) = &parsed.evidence else {
            panic!("{:?}", parsed.evidence)
        };
        assert_eq!(e.report, report_bytes());
        assert_eq!(parsed.endorsements[0].bytes().unwrap(), b"der");
        // A parsed bundle writes `claims` as null, and reads back the same.
        assert!(b.to_json().windows(14).any(|w| w == b"\"claims\": null"));
        assert_eq!(Bundle::parse(&parsed.to_json()).unwrap(), parsed);
        // serde's way in reads the same.
        assert_eq!(serde_json::from_slice::<Bundle>(&b.to_json()).unwrap(), b);
    }

    #[test]
    fn old_reader_accepts_additive_fields_and_rejects_a_new_major_version() {
        let mut v = json_of(&sample());
        v["a_field_from_the_future"] = serde_json::json!({"x": 1});
        v["evidence"]["another"] = serde_json::json!("y");
        v["collection"]["source"] = serde_json::json!("a-future-source");
        v["endorsements"][0]["origin"]["kind"] = serde_json::json!("a-future-origin");
        let b = parse_value(&v).unwrap();
        assert_eq!(
            b.collection.source,
            CollectionSource::Other("a-future-source".into())
        );
        assert_eq!(b.endorsements[0].origin.kind, "a-future-origin");
        // Unknown values are written back as read.
        let again = json_of(&b);
        assert_eq!(again["collection"]["source"], "a-future-source");
        assert_eq!(
            again["endorsements"][0]["origin"]["kind"],
            "a-future-origin"
        );
        v["version"] = serde_json::json!(2);
        assert_eq!(parse_value(&v), Err(BundleError::Version { found: 2 }));
    }

    #[test]
    fn new_reader_accepts_a_minimal_old_bundle() {
        // Optional fields absent, as an older or foreign writer may leave them.
        let mut v = json_of(&sample());
        let o = v.as_object_mut().unwrap();
        o.remove("kernel_release");
        o.remove("nonce");
        o.remove("endorsement_log");
        o.remove("claims");
        let b = parse_value(&v).unwrap();
        assert!(b.nonce.is_none() && b.endorsement_log.is_empty());
        let mut bad = v.clone();
        bad["evidence"]["snp_report"] = serde_json::json!("***");
        assert_eq!(
            parse_value(&bad),
            Err(BundleError::Base64 {
                field: "evidence.snp_report"
            })
        );
    }

    #[test]
    fn open_sets_read_known_values_as_their_variants() {
        for (name, source) in [
            ("configfs-tsm", CollectionSource::ConfigfsTsm),
            ("sev-guest", CollectionSource::SevGuest),
            ("tdx-guest+qgs", CollectionSource::TdxGuestQgs),
            ("vtpm", CollectionSource::Vtpm),
            ("import", CollectionSource::Import),
        ] {
            assert_eq!(CollectionSource::from(name), source);
            assert_eq!(source.as_str(), name);
            assert_eq!(
                serde_json::from_str::<CollectionSource>(&format!("{name:?}")).unwrap(),
                source
            );
        }
        for (name, kind) in [
            ("auxblob", OriginKind::Auxblob),
            ("ext-report", OriginKind::ExtReport),
            ("thim", OriginKind::Thim),
            ("kds", OriginKind::Kds),
            ("pcs", OriginKind::Pcs),
            ("file", OriginKind::File),
            ("vtpm", OriginKind::Vtpm),
        ] {
            assert_eq!(OriginKind::from(name), kind);
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("{name:?}"));
        }
        assert_eq!(OriginKind::from(ServiceKind::Pcs), OriginKind::Pcs);
        assert_eq!(OriginKind::from(ServiceKind::LocalThim), OriginKind::Thim);
    }

    #[test]
    fn names_are_the_serialised_names() {
        for d in [Derivation::Sha512, Derivation::Raw, Derivation::Padded] {
            assert_eq!(serde_json::to_value(d).unwrap(), d.as_str());
        }
        for k in [
            EndorsementKind::Vcek,
            EndorsementKind::Vlek,
            EndorsementKind::Ask,
            EndorsementKind::Asvk,
            EndorsementKind::Ark,
            EndorsementKind::Crl,
            EndorsementKind::Certificate,
            EndorsementKind::TcbInfo,
            EndorsementKind::QeIdentity,
            EndorsementKind::PckCrl,
            EndorsementKind::RootCaCrl,
        ] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        for t in [Tee::SevSnp, Tee::Tdx, Tee::AzureSevSnp, Tee::AzureTdx] {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
    }

    fn tpm_quote() -> TpmQuoteEvidence {
        TpmQuoteEvidence {
            quote: TpmQuote {
                signature: vec![1, 2],
                message: vec![0xff, 0x54],
                pcrs: vec![vec![0; 2], vec![0xab]],
            },
            ak_public: Some(vec![0, 1]),
            ak_qualified_name: Some(vec![0, 0x0b]),
        }
    }

    fn with_evidence(evidence: Evidence) -> Bundle {
        Bundle {
            evidence,
            claims: None,
            ..sample()
        }
    }

    /// The `evidence` member of `b` as written, from its opening brace to its closing one.
    fn evidence_text(b: &Bundle) -> String {
        let text = String::from_utf8(b.to_json()).unwrap();
        let start = text.find("\"evidence\": ").unwrap();
        let end = start + text[start..].find("\n  },\n").unwrap();
        text[start..end + 4].to_string()
    }

    #[test]
    fn evidence_is_written_as_thimble_always_wrote_it() {
        // Member names, order and encodings of the struct of optional members this enum
        // replaced: base64 blobs, and the TPM quote as one compact object.
        let azure_tdx = with_evidence(Evidence::AzureTdx(AzureTdxEvidence {
            hcl_report: vec![1, 2, 3],
            tdx_quote: vec![4, 5],
            tpm_quote: Some(tpm_quote()),
        }));
        assert_eq!(
            evidence_text(&azure_tdx),
            "\"evidence\": {\n    \"tdx_quote\": \"BAU=\",\n    \"hcl_report\": \"AQID\",\n    \
             \"tpm_quote\": {\"signature\":\"0102\",\"message\":\"ff54\",\"pcrs\":[\"0000\",\"ab\"],\
             \"ak_public\":\"0001\",\"ak_qualified_name\":\"000b\"}\n  }"
        );
        let imported = with_evidence(Evidence::AzureSevSnp(AzureSevSnpEvidence {
            hcl_report: vec![1, 2, 3],
            tpm_quote: Some(TpmQuoteEvidence::new(tpm_quote().quote)),
        }));
        assert_eq!(
            evidence_text(&imported),
            "\"evidence\": {\n    \"hcl_report\": \"AQID\",\n    \"tpm_quote\": \
             {\"signature\":\"0102\",\"message\":\"ff54\",\"pcrs\":[\"0000\",\"ab\"]}\n  }"
        );
        let snp = with_evidence(Evidence::SevSnp(SevSnpEvidence {
            report: vec![0; 3],
            auxblob: Some(vec![0xff]),
        }));
        assert_eq!(
            evidence_text(&snp),
            "\"evidence\": {\n    \"snp_report\": \"AAAA\",\n    \"auxblob\": \"/w==\"\n  }"
        );
        let tdx = with_evidence(Evidence::Tdx(TdxEvidence {
            quote: vec![7],
            td_report: Some(vec![8]),
        }));
        assert_eq!(
            evidence_text(&tdx),
            "\"evidence\": {\n    \"tdx_quote\": \"Bw==\",\n    \"td_report\": \"CA==\"\n  }"
        );
        // Each reads back as written, `tee` and all.
        for b in [azure_tdx, imported, snp, tdx] {
            let parsed = Bundle::parse(&b.to_json()).unwrap();
            assert_eq!(parsed, b);
            assert_eq!(json_of(&parsed)["tee"], b.tee().as_str());
        }
    }

    #[test]
    fn evidence_that_does_not_fit_the_tee_is_refused_by_name() {
        let snp = json_of(&sample());
        let mut tdx_quote = snp.clone();
        tdx_quote["evidence"]["tdx_quote"] = "AAAA".into();
        assert_eq!(
            parse_value(&tdx_quote),
            Err(BundleError::Unexpected {
                field: "evidence.tdx_quote",
                tee: Tee::SevSnp
            })
        );
        let mut relabelled = snp.clone();
        relabelled["tee"] = "tdx".into();
        assert_eq!(
            parse_value(&relabelled),
            Err(BundleError::Unexpected {
                field: "evidence.snp_report",
                tee: Tee::Tdx
            })
        );
        let mut empty = snp.clone();
        empty["evidence"] = serde_json::json!({});
        assert_eq!(
            parse_value(&empty),
            Err(BundleError::Missing {
                field: "evidence.snp_report",
                tee: Tee::SevSnp
            })
        );
        let mut azure_tdx = snp.clone();
        azure_tdx["tee"] = "azure-tdx".into();
        azure_tdx["evidence"] = serde_json::json!({"hcl_report": "AQID"});
        assert_eq!(
            parse_value(&azure_tdx),
            Err(BundleError::Missing {
                field: "evidence.tdx_quote",
                tee: Tee::AzureTdx
            })
        );
        azure_tdx["evidence"]["tdx_quote"] = "BAU=".into();
        azure_tdx["evidence"]["td_report"] = "BAU=".into();
        assert_eq!(
            parse_value(&azure_tdx),
            Err(BundleError::Unexpected {
                field: "evidence.td_report",
                tee: Tee::AzureTdx
            })
        );
        // Through serde, the same errors as messages.
        let e = serde_json::from_value::<Bundle>(relabelled).unwrap_err();
        assert!(
            e.to_string().contains(
                "bundle of tee tdx has evidence.snp_report, which that TEE does not carry"
            ),
            "{e}"
        );
    }

    #[test]
    fn tpm_quote_is_read_typed_and_bounded() {
        let b = with_evidence(Evidence::AzureSevSnp(AzureSevSnpEvidence {
            hcl_report: vec![1],
            tpm_quote: Some(tpm_quote()),
        }));
        let v = json_of(&b);
        for (bad, reason) in [
            (
                serde_json::json!({"signature": "zz", "message": "", "pcrs": []}),
                "signature is not hex",
            ),
            (
                serde_json::json!({"message": "", "pcrs": []}),
                "missing field",
            ),
            (
                serde_json::json!({"signature": "", "message": "", "pcrs": [], "ak_public": "x"}),
                "ak_public is not hex",
            ),
        ] {
            let mut broken = v.clone();
            broken["evidence"]["tpm_quote"] = bad;
            match parse_value(&broken) {
                Err(BundleError::TpmQuote {
                    source: TpmError::Json { reason: r },
                }) => assert!(r.contains(reason), "{r}"),
                other => panic!("{other:?}"),
            }
        }
        // Byte arrays, which Azure tooling also writes, are the same quote.
        let mut arrays = v.clone();
        arrays["evidence"]["tpm_quote"] =
            serde_json::json!({"signature": [1, 2], "message": [255, 84], "pcrs": [[0, 0], [171]]});
        let parsed = parse_value(&arrays).unwrap();
        assert_eq!(
            parsed.evidence.tpm_quote().map(|q| &q.quote),
            Some(&tpm_quote().quote)
        );
        // The size is checked before anything is decoded.
        let mut huge = v.clone();
        huge["evidence"]["tpm_quote"] = serde_json::json!({
            "signature": "", "message": "", "pcrs": [], "padding": "x".repeat(64 << 10)
        });
        assert!(matches!(
            parse_value(&huge),
            Err(BundleError::TpmQuote {
                source: TpmError::TooLarge { .. }
            })
        ));
        // `null` is no quote.
        let mut none = v;
        none["evidence"]["tpm_quote"] = serde_json::Value::Null;
        assert_eq!(parse_value(&none).unwrap().evidence.tpm_quote(), None);
    }

    #[test]
    fn snp_claims_are_written_in_the_documented_shape() {
        let report = SnpReport::parse(&report_bytes()).unwrap();
        let known =
            serde_json::to_string(&SnpClaims::from_report(&report, Some(Product::Milan))).unwrap();
        assert!(
            known.contains(
                r#""policy":{"raw":"0x30000","abi_minor":0,"abi_major":0,"smt_allowed":true,"#
            ),
            "{known}"
        );
        assert!(
            known.contains(
                r#""reported_tcb":{"tcbm":"0000000000000000","bootloader":0,"tee":0,"snp":0,"microcode":0},"#
            ),
            "{known}"
        );
        assert!(known.contains(r#""signing_key":"vcek""#), "{known}");
        let unknown = serde_json::to_value(SnpClaims::from_report(&report, None)).unwrap();
        assert_eq!(
            unknown["launch_tcb"],
            serde_json::json!({"tcbm": "0000000000000000"})
        );
        assert!(unknown.get("product").is_none());
        let turin = serde_json::to_value(TcbClaims::new(
            [1, 2, 3, 4, 0, 0, 0, 9],
            Some(Product::Turin),
        ))
        .unwrap();
        assert_eq!(
            turin,
            serde_json::json!({"tcbm": "0900000004030201", "bootloader": 2, "tee": 3, "snp": 4, "microcode": 9, "fmc": 1})
        );
        assert_eq!(
            serde_json::to_value(SigningKey::Reserved(5)).unwrap(),
            "reserved-5"
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
        let mut v = json_of(&sample());
        v["claims"] = serde_json::json!([[[[{"a": [1, 2, 3]}]]], "x", {"y": null}]);
        assert!(parse_value(&v).is_ok());
    }

    #[test]
    fn event_logs_round_trip_and_are_bounded() {
        // Without logs, the member is not written (bundles read as before).
        let plain = json_of(&sample());
        assert!(plain.get("event_logs").is_none());
        let mut b = sample();
        b.event_logs = vec![EventLogEvidence {
            kind: EventLogKind::Ccel,
            source: "/sys/firmware/acpi/tables/data/CCEL".into(),
            data: vec![1, 2, 3, 4],
        }];
        b.collection.log = vec!["event log: no TPM log at /x".into()];
        let v = json_of(&b);
        assert_eq!(v["event_logs"][0]["kind"], "ccel");
        assert_eq!(v["event_logs"][0]["size"], 4);
        assert_eq!(v["event_logs"][0]["data"], "AQIDBA==");
        assert_eq!(v["collection"]["log"][0], "event log: no TPM log at /x");
        let back = parse_value(&v).unwrap();
        assert_eq!(back.event_logs, b.event_logs);
        assert_eq!(back.collection.log, b.collection.log);

        // An unknown kind is carried as read.
        let mut w = v.clone();
        w["event_logs"][0]["kind"] = "future-log".into();
        assert_eq!(
            parse_value(&w).unwrap().event_logs[0].kind,
            EventLogKind::Other("future-log".into())
        );
        // A size that is not the data's, data that is not base64, too many logs.
        let mut w = v.clone();
        w["event_logs"][0]["size"] = 5.into();
        assert!(matches!(
            parse_value(&w),
            Err(BundleError::EventLogSize {
                size: 5,
                len: 4,
                ..
            })
        ));
        let mut w = v.clone();
        w["event_logs"][0]["data"] = "!!".into();
        assert!(matches!(
            parse_value(&w),
            Err(BundleError::Base64 {
                field: "event_logs[].data"
            })
        ));
        let mut w = v.clone();
        w["event_logs"] = serde_json::Value::Array(vec![v["event_logs"][0].clone(); 5]);
        assert!(matches!(
            parse_value(&w),
            Err(BundleError::TooMany {
                field: "event_logs",
                count: 5,
                max: MAX_EVENT_LOGS
            })
        ));
    }
}
