// SPDX-License-Identifier: Apache-2.0
//! Trustee's evidence JSON (the `primary_evidence` a KBS `/attest` request carries in
//! `tee-evidence`) written from a stored bundle, and read back into evidence. Pure: JSON in and
//! out, nothing sent, nothing verified.
//!
//! The shapes are those Trustee's verifiers deserialize (confidential-containers/trustee@78962cd4
//! `deps/verifier/src/snp/mod.rs` `SnpEvidence`, `tdx/mod.rs` `TdxEvidence`,
//! `az_snp_vtpm/compat.rs` and `az_tdx_vtpm/compat.rs` `EvidenceV0`/`V1`/`V2`), one per Trustee TEE
//! name ([`tee_name`]):
//!
//! - `snp`: `{"attestation_report": R, "cert_chain": [{"cert_type": "VCEK", "data": [u8…]}…] |
//!   null}`, where R is the report as the `sev` crate's serde derive writes its
//!   `AttestationReport` at the revision Trustee pins (virtee/sev@d4878091
//!   `src/firmware/guest/types/snp.rs`; `TcbVersion`, `CertType` and `CertTableEntry` in
//!   `src/firmware/host/types/snp.rs`; `Signature` in `src/certs/snp/ecdsa/mod.rs`): named
//!   fields, byte arrays as arrays of numbers, the policy, platform-info and key-info words as
//!   integers, each TCB_VERSION decoded (`{"fmc": u8|null, "bootloader", "tee", "snp",
//!   "microcode"}`), the CPUID bytes (version 3+) and mitigation vectors (version 5+) as
//!   integers or `null`, the signature as its two 72-byte little-endian halves. The crate's
//!   release 8.0.0 writes the same names in the same order.
//! - `tdx`: `{"cc_eventlog": B64 | null, "quote": B64}`, standard base64; `cc_eventlog` is the
//!   CCEL log area (the bundle's `ccel` event log).
//! - `az-snp-vtpm`, `az-tdx-vtpm`: `{"version": 1|2, "tpm_quote": {"signature": HEX, "message":
//!   HEX, "pcrs": [HEX…]}, "hcl_report": B64URL, "vcek" | "td_quote": B64URL}`, base64url with
//!   padding (serde_with's `Base64<UrlSafe>`), the VCEK as DER.
//!
//! **Binding.** Trustee binds evidence to its session: REPORT_DATA (snp, tdx; zero-padded to 64
//! bytes) or the TPM quote's qualifying data (az-*) must be H(JCS(runtime-data)), the hash the
//! KBS selected over the canonical JSON of its nonce and the guest's key. A stored bundle
//! satisfies that only when it was collected for that nonce (`collect --report-data` of the
//! digest); the export has no nonce and cannot check it. What it can check, it does:
//!
//! - `snp`: Trustee re-encodes the report from the serde fields and checks the signature over
//!   that encoding, and the fields do not carry every byte (the reserved bytes of the four
//!   TCB_VERSIONs, the mitigation vectors before version 5, the reserved ranges); a report with
//!   a non-zero byte there would fail, so the export refuses it.
//! - `snp`, `az-snp-vtpm`: Trustee tells the product from the CPUID fields of a version 3
//!   report; the export refuses older reports, and products other than Milan, Genoa and Turin.
//! - az-*: version 2 makes Trustee also require that the HCL runtime data's `user-data` starts
//!   with the expected report data, which the TPM quote's qualifying data must equal as well. So
//!   the export writes version 2 when `user-data` starts with the quote's qualifying data, and
//!   version 1 (same members, which Trustee still accepts) otherwise, where version 2 could
//!   never pass.
//!
//! **Import** ([`import`]) reads `tdx`, `az-snp-vtpm` and `az-tdx-vtpm` evidence (versions 0 to
//! 2) back byte for byte, and also the same JSON inside a KBS `/attest` body or its
//! `tee-evidence`. For `snp` it does what Trustee does: it re-encodes the 1184-byte report from
//! the serde form (the TCB_VERSIONs in the layout of the product the CPUID fields name, reserved
//! bytes zero) and parses that with every check of [`SnpReport::parse`]. The signature is then
//! checked over the re-encoding, which equals the bytes the firmware signed only when the serde
//! form carried every signed byte (as it does for every report the export writes): a report
//! whose re-encoding differs is read, and simply fails signature verification later.

use std::fmt;

use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::azure::{HclReport, HclReportType, RuntimeData, TpmQuote, TpmsAttest};
use crate::bundle::{
    AzureSevSnpEvidence, AzureTdxEvidence, Bundle, EndorsementKind, EventLogEvidence, EventLogKind,
    Evidence, SevSnpEvidence, TdxEvidence, Tee, TpmQuoteEvidence,
};
use crate::snp::report::layout;
use crate::snp::{GuestPolicy, Product, SigningKey, SnpReport, SnpReportFields, TcbVersion};
use crate::tdx::TdxQuote;

use super::{ExportError, Exported, Format, ImportError, Imported, NamedBytes};

/// The largest input [`import`] reads, in bytes (the bundle's limit): real evidence is tens of
/// kilobytes, a CC event log at most a few hundred.
pub const MAX_IMPORT_LEN: usize = crate::bundle::DEFAULT_MAX_BUNDLE_LEN;

/// The most PCR values a TPM quote may list: a TPM has 24 PCRs per bank.
pub const MAX_PCRS: usize = 24;

/// The `source` of a CC event log read from `cc_eventlog`.
pub const CC_EVENTLOG_SOURCE: &str = "trustee cc_eventlog";

/// The oldest and newest report versions Trustee's `snp` verifier accepts (`REPORT_VERSION_MIN`,
/// `REPORT_VERSION_MAX`): it needs the CPUID fields of version 3 to tell the product.
const SNP_VERSIONS: std::ops::RangeInclusive<u32> = 3..=5;

/// How many `{"tee-evidence": {"primary_evidence": …}}` levels [`import`] looks through.
const MAX_ENVELOPES: usize = 2;

/// Base64url, padded or not: serde_with's `Base64<UrlSafe>` writes padding, other writers may
/// not.
const URL_SAFE_ANY_PAD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Standard base64, padded or not.
const STANDARD_ANY_PAD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The name Trustee (and the KBS protocol's `tee` member) gives `tee`: `snp`, `tdx`,
/// `az-snp-vtpm` or `az-tdx-vtpm`.
pub fn tee_name(tee: Tee) -> &'static str {
    match tee {
        Tee::SevSnp => "snp",
        Tee::Tdx => "tdx",
        Tee::AzureSevSnp => "az-snp-vtpm",
        Tee::AzureTdx => "az-tdx-vtpm",
    }
}

/// The TEE Trustee calls `name`.
fn tee_from_name(name: &str) -> Option<Tee> {
    [Tee::SevSnp, Tee::Tdx, Tee::AzureSevSnp, Tee::AzureTdx]
        .into_iter()
        .find(|&t| tee_name(t) == name)
}

// ---------------------------------------------------------------------------------------------
// Export
// ---------------------------------------------------------------------------------------------

/// The `primary_evidence` JSON of `bundle`'s TEE, as Trustee's verifier for [`tee_name`] reads
/// it (compact, with a trailing newline).
///
/// The export cannot check Trustee's binding (REPORT_DATA or the TPM qualifying data equal to
/// the hash of the KBS session's runtime data): the evidence passes only if it was collected
/// for that nonce. It refuses ([`ExportError::Binding`], with what Trustee checks and why it
/// would fail) what Trustee would refuse whatever the nonce: an SEV-SNP report older than
/// version 3, of a product other than Milan, Genoa or Turin, or with bytes the serde form cannot
/// carry. Azure evidence without a TPM quote or VCEK is [`ExportError::Missing`]; members that
/// do not decode are [`ExportError::Malformed`].
pub fn export(bundle: &Bundle) -> Result<Exported, ExportError> {
    let mut out = match &bundle.evidence {
        Evidence::SevSnp(e) => serde_json::to_vec(&snp_evidence(bundle, &e.report)?),
        Evidence::Tdx(e) => serde_json::to_vec(&tdx_evidence(bundle, e)),
        Evidence::AzureSevSnp(e) => {
            let vcek = endorsement_der(bundle, EndorsementKind::Vcek)?.ok_or_else(|| {
                ExportError::Missing {
                    format: Format::Trustee,
                    what: "the VCEK certificate (az-snp-vtpm evidence carries it as vcek)"
                        .to_owned(),
                }
            })?;
            let tpm_quote = tpm_quote(e.tpm_quote.as_ref())?;
            let version = az_version(&e.hcl_report, tpm_quote)?;
            az_snp_report_fits(&e.hcl_report)?;
            serde_json::to_vec(&AzSnpVtpmOut {
                version,
                tpm_quote: TpmQuoteHex::new(tpm_quote),
                hcl_report: URL_SAFE.encode(&e.hcl_report),
                vcek: URL_SAFE.encode(vcek),
            })
        }
        Evidence::AzureTdx(e) => {
            let tpm_quote = tpm_quote(e.tpm_quote.as_ref())?;
            let version = az_version(&e.hcl_report, tpm_quote)?;
            serde_json::to_vec(&AzTdxVtpmOut {
                version,
                tpm_quote: TpmQuoteHex::new(tpm_quote),
                hcl_report: URL_SAFE.encode(&e.hcl_report),
                td_quote: URL_SAFE.encode(&e.tdx_quote),
            })
        }
    }
    .map_err(|e| malformed(e.to_string()))?;
    out.push(b'\n');
    Ok(Exported::File(out))
}

fn malformed(reason: String) -> ExportError {
    ExportError::Malformed {
        format: Format::Trustee,
        reason,
    }
}

/// Evidence Trustee's verifier would refuse whatever the nonce: what it checks and why it fails.
fn refused(reason: String) -> ExportError {
    ExportError::Binding {
        format: Format::Trustee,
        reason,
    }
}

/// The DER of the bundle's first endorsement of `kind`, if it has one.
fn endorsement_der(bundle: &Bundle, kind: EndorsementKind) -> Result<Option<Vec<u8>>, ExportError> {
    super::endorsement_der(bundle, kind, Format::Trustee)
}

/// `tdx`: `TdxEvidence`, members in its order.
#[derive(Serialize)]
struct TdxOut {
    cc_eventlog: Option<String>,
    quote: String,
}

fn tdx_evidence(bundle: &Bundle, e: &TdxEvidence) -> TdxOut {
    TdxOut {
        cc_eventlog: bundle
            .event_logs
            .iter()
            .find(|l| l.kind == EventLogKind::Ccel)
            .map(|l| STANDARD.encode(&l.data)),
        quote: STANDARD.encode(&e.quote),
    }
}

/// `tpm_quote` of the az-* evidence: serde_with `Hex` (lower case) for each member.
#[derive(Serialize)]
struct TpmQuoteHex {
    signature: String,
    message: String,
    pcrs: Vec<String>,
}

impl TpmQuoteHex {
    fn new(q: &TpmQuote) -> TpmQuoteHex {
        TpmQuoteHex {
            signature: hex::encode(&q.signature),
            message: hex::encode(&q.message),
            pcrs: q.pcrs.iter().map(hex::encode).collect(),
        }
    }
}

/// `az-snp-vtpm`: `EvidenceV1`/`EvidenceV2`, members in their order.
#[derive(Serialize)]
struct AzSnpVtpmOut {
    version: u32,
    tpm_quote: TpmQuoteHex,
    hcl_report: String,
    vcek: String,
}

/// `az-tdx-vtpm`: `EvidenceV1`/`EvidenceV2`, members in their order.
#[derive(Serialize)]
struct AzTdxVtpmOut {
    version: u32,
    tpm_quote: TpmQuoteHex,
    hcl_report: String,
    td_quote: String,
}

fn tpm_quote(q: Option<&TpmQuoteEvidence>) -> Result<&TpmQuote, ExportError> {
    q.map(|q| &q.quote).ok_or_else(|| ExportError::Missing {
        format: Format::Trustee,
        what: "the vTPM quote (evidence.tpm_quote), which Trustee's az-* verifiers check"
            .to_owned(),
    })
}

/// 2 when the HCL runtime data's `user-data` starts with the TPM quote's qualifying data (so
/// that Trustee's version 2 check, both equal to its expected report data, can hold), else 1.
fn az_version(hcl_report: &[u8], quote: &TpmQuote) -> Result<u32, ExportError> {
    let hcl =
        HclReport::parse(hcl_report).map_err(|e| malformed(format!("evidence.hcl_report: {e}")))?;
    let runtime = RuntimeData::parse(hcl.runtime_data_bytes())
        .map_err(|e| malformed(format!("evidence.hcl_report runtime data: {e}")))?;
    let attest = TpmsAttest::parse(&quote.message)
        .map_err(|e| malformed(format!("evidence.tpm_quote message: {e}")))?;
    let echoes = runtime
        .user_data
        .as_deref()
        .is_some_and(|u| u.starts_with(&attest.extra_data));
    Ok(if echoes { 2 } else { 1 })
}

/// `snp`: `SnpEvidence`.
#[derive(Serialize)]
struct SnpOut<'a> {
    attestation_report: SevReport<'a>,
    cert_chain: Option<Vec<SevCertEntry>>,
}

/// sev's `AttestationReport` as its serde derive writes it: these names, in this order.
#[derive(Serialize)]
struct SevReport<'a> {
    version: u32,
    guest_svn: u32,
    policy: u64,
    family_id: &'a [u8],
    image_id: &'a [u8],
    vmpl: u32,
    sig_algo: u32,
    current_tcb: SevTcb,
    plat_info: u64,
    key_info: u32,
    report_data: &'a [u8],
    measurement: &'a [u8],
    host_data: &'a [u8],
    id_key_digest: &'a [u8],
    author_key_digest: &'a [u8],
    report_id: &'a [u8],
    report_id_ma: &'a [u8],
    reported_tcb: SevTcb,
    cpuid_fam_id: Option<u8>,
    cpuid_mod_id: Option<u8>,
    cpuid_step: Option<u8>,
    chip_id: &'a [u8],
    committed_tcb: SevTcb,
    current: SevVersion,
    committed: SevVersion,
    launch_tcb: SevTcb,
    launch_mit_vector: Option<u64>,
    current_mit_vector: Option<u64>,
    signature: SevSignature<'a>,
}

/// sev's `TcbVersion`: `fmc` is `null` before Turin.
#[derive(Serialize)]
struct SevTcb {
    fmc: Option<u8>,
    bootloader: u8,
    tee: u8,
    snp: u8,
    microcode: u8,
}

impl From<TcbVersion> for SevTcb {
    fn from(t: TcbVersion) -> SevTcb {
        SevTcb {
            fmc: t.fmc,
            bootloader: t.bootloader,
            tee: t.tee,
            snp: t.snp,
            microcode: t.microcode,
        }
    }
}

/// sev's `Version` (firmware major, minor, build).
#[derive(Serialize)]
struct SevVersion {
    major: u8,
    minor: u8,
    build: u8,
}

impl SevVersion {
    fn new((build, minor, major): (u8, u8, u8)) -> SevVersion {
        SevVersion {
            major,
            minor,
            build,
        }
    }
}

/// sev's `Signature`: R and S as the report stores them, 72 bytes little-endian each.
#[derive(Serialize)]
struct SevSignature<'a> {
    r: &'a [u8],
    s: &'a [u8],
}

/// sev's `CertTableEntry`: `cert_type` is the unit variant's name, `data` the DER.
#[derive(Serialize)]
struct SevCertEntry {
    cert_type: &'static str,
    data: Vec<u8>,
}

/// The four TCB_VERSIONs re-encoded from their SPLs alone, as sev's encoder writes them (zero in
/// the reserved bytes); the rest as thimble's encoder writes the fields, which is sev's layout
/// for versions 3 to 5 (reserved ranges zero, mitigation vectors from version 5).
fn sev_reencoded(report: &SnpReport, product: Product) -> [u8; crate::snp::report::SNP_REPORT_LEN] {
    let again = |raw: [u8; 8]| {
        let t = TcbVersion::decode(raw, product);
        TcbVersion::encode(
            product,
            t.bootloader,
            t.tee,
            t.snp,
            t.microcode,
            t.fmc.unwrap_or(0),
        )
        .raw
    };
    let mut fields = report.fields().clone();
    fields.current_tcb = again(fields.current_tcb);
    fields.reported_tcb = again(fields.reported_tcb);
    fields.committed_tcb = again(fields.committed_tcb);
    fields.launch_tcb = again(fields.launch_tcb);
    fields.to_bytes()
}

fn u32_field(raw: &[u8], field: crate::snp::report::Field<4>) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&raw[field.range()]);
    u32::from_le_bytes(b)
}

/// The product of a report Trustee's verifiers can take: version 3 to 5, whose CPUID fields
/// name Milan, Genoa or Turin (both the `snp` and the `az-snp-vtpm` verifier need them).
fn trustee_product(report: &SnpReport) -> Result<Product, ExportError> {
    if !SNP_VERSIONS.contains(&report.version) {
        return Err(refused(format!(
            "the SEV-SNP report is version {}, and Trustee's verifiers accept versions {} to {} \
             only (they tell the product from the CPUID fields of version 3)",
            report.version,
            SNP_VERSIONS.start(),
            SNP_VERSIONS.end()
        )));
    }
    report.product_from_cpuid().ok_or_else(|| {
        let (fam, model, _) = report.cpuid.unwrap_or_default();
        refused(format!(
            "the SEV-SNP report's CPUID family {fam:#x} model {model:#x} is not Milan, Genoa or \
             Turin, the products sev and Trustee's verifiers know"
        ))
    })
}

/// Refuses an Azure SEV-SNP bundle whose report Trustee's `az-snp-vtpm` verifier cannot take.
fn az_snp_report_fits(hcl_report: &[u8]) -> Result<(), ExportError> {
    let hcl =
        HclReport::parse(hcl_report).map_err(|e| malformed(format!("evidence.hcl_report: {e}")))?;
    let report = match hcl.snp_report() {
        Some(Ok(report)) => report,
        Some(Err(e)) => {
            return Err(malformed(format!(
                "evidence.hcl_report SEV-SNP report: {e}"
            )));
        }
        None => {
            return Err(malformed(
                "evidence.hcl_report holds a TDX report, not an SEV-SNP one".to_owned(),
            ));
        }
    };
    trustee_product(&report).map(|_| ())
}

fn snp_evidence<'a>(bundle: &Bundle, raw: &'a [u8]) -> Result<SnpOut<'a>, ExportError> {
    let report =
        SnpReport::parse(raw).map_err(|e| malformed(format!("evidence.snp_report: {e}")))?;
    let product = trustee_product(&report)?;
    let again = sev_reencoded(&report, product);
    if let Some(offset) = again.iter().zip(raw).position(|(a, b)| a != b) {
        return Err(refused(format!(
            "the SEV-SNP report has byte {:#04x} at offset {offset:#x}, which the sev crate's \
             serde form does not carry (a reserved byte of a TCB_VERSION, or a mitigation \
             vector before version 5): Trustee re-encodes the report from that form with a zero \
             there, and the signature would not verify",
            raw.get(offset).copied().unwrap_or_default()
        )));
    }
    Ok(SnpOut {
        attestation_report: sev_form(raw, &report, product),
        cert_chain: snp_cert_chain(bundle, report.signing_key)?,
    })
}

/// The serde form of `report` (parsed from `raw`), its TCB_VERSIONs decoded for `product`.
fn sev_form<'a>(raw: &'a [u8], report: &SnpReport, product: Product) -> SevReport<'a> {
    let tcb = |raw: [u8; 8]| SevTcb::from(TcbVersion::decode(raw, product));
    let (fam, model, step) = match report.cpuid {
        Some((fam, model, step)) => (Some(fam), Some(model), Some(step)),
        None => (None, None, None),
    };
    // Bytes straight from the received report: the parse checked every reserved byte, and the
    // export checked that the re-encoding equals it, so these are the values sev's decoder would
    // read.
    let slice = |range: std::ops::Range<usize>| &raw[range];
    SevReport {
        version: report.version,
        guest_svn: report.guest_svn,
        policy: report.policy.raw,
        family_id: slice(layout::FAMILY_ID.range()),
        image_id: slice(layout::IMAGE_ID.range()),
        vmpl: report.vmpl,
        sig_algo: report.signature_algo,
        current_tcb: tcb(report.current_tcb),
        plat_info: report.platform_info,
        key_info: u32_field(raw, layout::KEY_INFO),
        report_data: slice(layout::REPORT_DATA.range()),
        measurement: slice(layout::MEASUREMENT.range()),
        host_data: slice(layout::HOST_DATA.range()),
        id_key_digest: slice(layout::ID_KEY_DIGEST.range()),
        author_key_digest: slice(layout::AUTHOR_KEY_DIGEST.range()),
        report_id: slice(layout::REPORT_ID.range()),
        report_id_ma: slice(layout::REPORT_ID_MA.range()),
        reported_tcb: tcb(report.reported_tcb),
        cpuid_fam_id: fam,
        cpuid_mod_id: model,
        cpuid_step: step,
        chip_id: slice(layout::CHIP_ID.range()),
        committed_tcb: tcb(report.committed_tcb),
        current: SevVersion::new(report.current_version),
        committed: SevVersion::new(report.committed_version),
        launch_tcb: tcb(report.launch_tcb),
        launch_mit_vector: report.launch_mit_vector,
        current_mit_vector: report.current_mit_vector,
        signature: SevSignature {
            r: slice(layout::SIGNATURE_R.range()),
            s: slice(layout::SIGNATURE_S.range()),
        },
    }
}

/// `cert_chain`: the key that signed first (Trustee takes the first VCEK or VLEK), then its
/// issuer (the ASVK as `ASK`, which is where Trustee looks for a VLEK's issuer), the ARK and the
/// CRL; `None` when the bundle has none of them (Trustee then fetches the VCEK from KDS).
fn snp_cert_chain(
    bundle: &Bundle,
    signer: SigningKey,
) -> Result<Option<Vec<SevCertEntry>>, ExportError> {
    let order: [(EndorsementKind, &'static str); 6] = match signer {
        SigningKey::Vlek => [
            (EndorsementKind::Vlek, "VLEK"),
            (EndorsementKind::Asvk, "ASK"),
            (EndorsementKind::Vcek, "VCEK"),
            (EndorsementKind::Ask, "ASK"),
            (EndorsementKind::Ark, "ARK"),
            (EndorsementKind::Crl, "CRL"),
        ],
        _ => [
            (EndorsementKind::Vcek, "VCEK"),
            (EndorsementKind::Ask, "ASK"),
            (EndorsementKind::Vlek, "VLEK"),
            (EndorsementKind::Asvk, "ASK"),
            (EndorsementKind::Ark, "ARK"),
            (EndorsementKind::Crl, "CRL"),
        ],
    };
    let mut chain = Vec::new();
    for (kind, cert_type) in order {
        if let Some(data) = endorsement_der(bundle, kind)? {
            chain.push(SevCertEntry { cert_type, data });
        }
    }
    Ok((!chain.is_empty()).then_some(chain))
}

// ---------------------------------------------------------------------------------------------
// Import
// ---------------------------------------------------------------------------------------------

/// Reads Trustee evidence JSON back into evidence. `tee` is Trustee's name for it ([`tee_name`]);
/// when `None`, the TEE is told from the members present (`attestation_report`: `snp`; a string
/// `quote`: `tdx`; `hcl_report` or `report` with `vcek`: `az-snp-vtpm`, with `td_quote`:
/// `az-tdx-vtpm`). The evidence may also be given inside a KBS `/attest` body
/// (`{"tee-evidence": {"primary_evidence": …}}`) or its `tee-evidence`.
///
/// - `tdx`: the quote, and `cc_eventlog` (when present and not empty) as a `ccel` event log with
///   source [`CC_EVENTLOG_SOURCE`].
/// - `az-snp-vtpm` / `az-tdx-vtpm`, versions 0 (byte arrays, the VCEK as PEM), 1 and 2: the HCL
///   report, the TPM quote and the TD quote as evidence, the VCEK as the endorsement `vcek`.
/// - `snp`: the report re-encoded from the sev crate's serde form, as Trustee re-encodes it
///   (see [`SNP_REPORT_MEMBERS`]): every member present, named as sev names it and nothing else,
///   byte arrays of their exact length, integers in range, the TCB_VERSIONs encoded in the
///   layout of the product the CPUID fields name (version 3+; for version 2, Turin when CHIP_ID
///   is Turin-shaped, else the Milan/Genoa layout), reserved bytes zero; the result must pass
///   [`SnpReport::parse`]. The evidence is that re-encoding (no auxblob). The signature is
///   checked over it, so it verifies only when the serde form carried every byte the firmware
///   signed (a report whose signed bytes held anything in a reserved byte, or mitigation vectors
///   before version 5, re-encodes differently and fails signature verification later). The
///   `cert_chain` entries (at most [`MAX_CERT_CHAIN`]; `null` or absent is none) become the
///   endorsements `cert_chain[i] (VCEK)`, `(VLEK)`, `(ASK)`, `(ARK)` or `(CRL)`; `Empty` and
///   `{"OTHER": uuid}` entries, and entries with no data, are checked and left out, as thimble
///   reads the host's certificate table.
///
/// Input is at most [`MAX_IMPORT_LEN`] bytes; the quotes, the HCL report and the SEV-SNP report
/// must parse, and the HCL report must hold the hardware report of the TEE named.
pub fn import(tee: Option<&str>, bytes: &[u8]) -> Result<Imported, ImportError> {
    if bytes.len() > MAX_IMPORT_LEN {
        return Err(bad(format!(
            "the input is {} bytes, more than the {MAX_IMPORT_LEN} accepted",
            bytes.len()
        )));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| bad(format!("not UTF-8 text: {e}")))?;
    let given = tee
        .map(|name| {
            tee_from_name(name).ok_or_else(|| {
                bad(format!(
                    "tee {name:?} is not one of snp, tdx, az-snp-vtpm, az-tdx-vtpm"
                ))
            })
        })
        .transpose()?;
    let mut members = Members::parse(text)?;
    for _ in 0..MAX_ENVELOPES {
        match members.inner() {
            Some(inner) => members = Members::parse(inner.get())?,
            None => break,
        }
    }
    let tee = match given {
        Some(tee) => tee,
        None => members.detect()?,
    };
    match tee {
        Tee::SevSnp => members.snp(),
        Tee::Tdx => members.tdx(),
        Tee::AzureSevSnp => members.az(HclReportType::Snp),
        Tee::AzureTdx => members.az(HclReportType::Tdx),
    }
}

fn bad(reason: String) -> ImportError {
    ImportError {
        format: Format::Trustee,
        reason,
    }
}

/// The members any Trustee evidence has, undecoded (duplicates are refused by serde).
#[derive(Deserialize)]
struct Members<'a> {
    #[serde(borrow, default)]
    attestation_report: Option<&'a RawValue>,
    #[serde(borrow, default)]
    cert_chain: Option<&'a RawValue>,
    #[serde(borrow, default)]
    cc_eventlog: Option<&'a RawValue>,
    #[serde(borrow, default)]
    quote: Option<&'a RawValue>,
    #[serde(borrow, default)]
    version: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tpm_quote: Option<&'a RawValue>,
    #[serde(borrow, default)]
    hcl_report: Option<&'a RawValue>,
    #[serde(borrow, default)]
    report: Option<&'a RawValue>,
    #[serde(borrow, default)]
    vcek: Option<&'a RawValue>,
    #[serde(borrow, default)]
    td_quote: Option<&'a RawValue>,
    #[serde(borrow, default)]
    primary_evidence: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "tee-evidence")]
    tee_evidence: Option<&'a RawValue>,
}

impl<'a> Members<'a> {
    fn parse(text: &'a str) -> Result<Members<'a>, ImportError> {
        // serde would also fill the struct from an array, member by position.
        if !text.trim_start().starts_with('{') {
            return Err(bad("not a JSON object of Trustee evidence".to_owned()));
        }
        serde_json::from_str(text)
            .map_err(|e| bad(format!("not a JSON object of Trustee evidence: {e}")))
    }

    /// The evidence inside a `/attest` body or its `tee-evidence`, when this is one.
    fn inner(&self) -> Option<&'a RawValue> {
        let evidence_members = [
            self.attestation_report,
            self.quote,
            self.tpm_quote,
            self.hcl_report,
            self.report,
        ];
        if evidence_members.iter().any(Option::is_some) {
            return None;
        }
        self.tee_evidence.or(self.primary_evidence)
    }

    /// The TEE whose members these are.
    fn detect(&self) -> Result<Tee, ImportError> {
        if self.attestation_report.is_some() {
            return Ok(Tee::SevSnp);
        }
        if self.hcl_report.is_some() || self.report.is_some() {
            return match (self.vcek.is_some(), self.td_quote.is_some()) {
                (true, false) => Ok(Tee::AzureSevSnp),
                (false, true) => Ok(Tee::AzureTdx),
                (true, true) => Err(bad(
                    "both vcek (az-snp-vtpm) and td_quote (az-tdx-vtpm) are present".to_owned(),
                )),
                (false, false) => Err(bad(
                    "an HCL report without vcek (az-snp-vtpm) or td_quote (az-tdx-vtpm)".to_owned(),
                )),
            };
        }
        if self.quote.is_some_and(|q| q.get().starts_with('"')) {
            return Ok(Tee::Tdx);
        }
        Err(bad(
            "no member tells the TEE (attestation_report for snp, quote for tdx, hcl_report \
             with vcek or td_quote for az-snp-vtpm or az-tdx-vtpm); name it"
                .to_owned(),
        ))
    }

    /// `snp`: the report re-encoded from its serde form, the certificate chain as endorsements.
    fn snp(&self) -> Result<Imported, ImportError> {
        let report = snp_report_from_sev(required(self.attestation_report, "attestation_report")?)?;
        let endorsements = match self.cert_chain {
            Some(raw) => cert_chain_in(raw)?,
            None => Vec::new(),
        };
        Ok(Imported {
            evidence: Evidence::SevSnp(SevSnpEvidence {
                report,
                auxblob: None,
            }),
            endorsements,
            event_logs: Vec::new(),
        })
    }

    fn tdx(&self) -> Result<Imported, ImportError> {
        let quote = decode_b64(required(self.quote, "quote")?, "quote", &STANDARD_ANY_PAD)?;
        TdxQuote::parse(&quote).map_err(|e| bad(format!("member quote: {e}")))?;
        let mut event_logs = Vec::new();
        if let Some(raw) = self.cc_eventlog {
            let text: Option<String> = serde_json::from_str(raw.get())
                .map_err(|_| bad("member cc_eventlog is not a string or null".to_owned()))?;
            // Trustee reads an empty string as no log.
            if let Some(text) = text.filter(|t| !t.is_empty()) {
                let data = STANDARD_ANY_PAD
                    .decode(text.as_bytes())
                    .map_err(|_| bad("member cc_eventlog is not base64".to_owned()))?;
                event_logs.push(EventLogEvidence {
                    kind: EventLogKind::Ccel,
                    source: CC_EVENTLOG_SOURCE.to_owned(),
                    data,
                });
            }
        }
        Ok(Imported {
            evidence: Evidence::Tdx(TdxEvidence {
                quote,
                td_report: None,
            }),
            endorsements: Vec::new(),
            event_logs,
        })
    }

    /// `az-snp-vtpm` (`hw` SNP) or `az-tdx-vtpm` (`hw` TDX), any version.
    fn az(&self, hw: HclReportType) -> Result<Imported, ImportError> {
        let version = match self.version {
            None => 0,
            Some(raw) => serde_json::from_str::<u32>(raw.get())
                .ok()
                .filter(|v| (1..=2).contains(v))
                .ok_or_else(|| bad(format!("member version {} is not 1 or 2", raw.get())))?,
        };
        let snp = hw == HclReportType::Snp;
        // Version 0 names its members differently on SEV-SNP and lists bytes as numbers.
        let (quote_name, quote_raw, hcl_name, hcl_raw) = if version == 0 && snp {
            ("quote", self.quote, "report", self.report)
        } else {
            ("tpm_quote", self.tpm_quote, "hcl_report", self.hcl_report)
        };
        let quote = TpmQuote::parse_json(required(quote_raw, quote_name)?.get().as_bytes())
            .map_err(|e| bad(format!("member {quote_name}: {e}")))?;
        if quote.pcrs.len() > MAX_PCRS {
            return Err(bad(format!(
                "member {quote_name}.pcrs has {} values, more than the {MAX_PCRS} PCRs of a TPM",
                quote.pcrs.len()
            )));
        }
        let bytes = |raw: Option<&RawValue>, name: &str| -> Result<Vec<u8>, ImportError> {
            let raw = required(raw, name)?;
            if version == 0 {
                serde_json::from_str::<Vec<u8>>(raw.get())
                    .map_err(|_| bad(format!("member {name} is not an array of bytes")))
            } else {
                decode_b64(raw, name, &URL_SAFE_ANY_PAD)
            }
        };
        let hcl_report = bytes(hcl_raw, hcl_name)?;
        let hcl =
            HclReport::parse(&hcl_report).map_err(|e| bad(format!("member {hcl_name}: {e}")))?;
        if hcl.report_type() != hw {
            return Err(bad(format!(
                "member {hcl_name} holds a {:?} hardware report, not the {hw:?} one {} evidence \
                 carries",
                hcl.report_type(),
                if snp { "az-snp-vtpm" } else { "az-tdx-vtpm" }
            )));
        }
        let tpm_quote = Some(TpmQuoteEvidence::new(quote));
        if snp {
            let vcek_raw = required(self.vcek, "vcek")?;
            let vcek = if version == 0 {
                // A PEM string; `import` recognises certificates by content.
                serde_json::from_str::<String>(vcek_raw.get())
                    .map_err(|_| bad("member vcek is not a string".to_owned()))?
                    .into_bytes()
            } else {
                decode_b64(vcek_raw, "vcek", &URL_SAFE_ANY_PAD)?
            };
            Ok(Imported {
                evidence: Evidence::AzureSevSnp(AzureSevSnpEvidence {
                    hcl_report,
                    tpm_quote,
                }),
                endorsements: vec![NamedBytes {
                    name: "vcek".to_owned(),
                    bytes: vcek,
                }],
                event_logs: Vec::new(),
            })
        } else {
            let td_quote = bytes(self.td_quote, "td_quote")?;
            TdxQuote::parse(&td_quote).map_err(|e| bad(format!("member td_quote: {e}")))?;
            Ok(Imported {
                evidence: Evidence::AzureTdx(AzureTdxEvidence {
                    hcl_report,
                    tdx_quote: td_quote,
                    tpm_quote,
                }),
                endorsements: Vec::new(),
                event_logs: Vec::new(),
            })
        }
    }
}

fn required<'a>(raw: Option<&'a RawValue>, name: &str) -> Result<&'a RawValue, ImportError> {
    raw.ok_or_else(|| bad(format!("member {name} is missing")))
}

fn decode_b64(raw: &RawValue, name: &str, engine: &GeneralPurpose) -> Result<Vec<u8>, ImportError> {
    let text: String = serde_json::from_str(raw.get())
        .map_err(|_| bad(format!("member {name} is not a string")))?;
    engine
        .decode(text.as_bytes())
        .map_err(|_| bad(format!("member {name} is not base64")))
}

// ---------------------------------------------------------------------------------------------
// Import: the sev crate's serde form of an SEV-SNP report
// ---------------------------------------------------------------------------------------------

/// The members of the sev crate's `AttestationReport` serde form, in its order: [`import`]
/// needs every one and refuses any other.
pub const SNP_REPORT_MEMBERS: [&str; 29] = [
    "version",
    "guest_svn",
    "policy",
    "family_id",
    "image_id",
    "vmpl",
    "sig_algo",
    "current_tcb",
    "plat_info",
    "key_info",
    "report_data",
    "measurement",
    "host_data",
    "id_key_digest",
    "author_key_digest",
    "report_id",
    "report_id_ma",
    "reported_tcb",
    "cpuid_fam_id",
    "cpuid_mod_id",
    "cpuid_step",
    "chip_id",
    "committed_tcb",
    "current",
    "committed",
    "launch_tcb",
    "launch_mit_vector",
    "current_mit_vector",
    "signature",
];

/// sev's `TcbVersion`.
const TCB_MEMBERS: [&str; 5] = ["fmc", "bootloader", "tee", "snp", "microcode"];

/// sev's `Version`.
const VERSION_MEMBERS: [&str; 3] = ["major", "minor", "build"];

/// sev's `Signature`.
const SIGNATURE_MEMBERS: [&str; 2] = ["r", "s"];

/// sev's `CertTableEntry`.
const CERT_ENTRY_MEMBERS: [&str; 2] = ["cert_type", "data"];

/// The most `cert_chain` entries [`import`] reads (a chain is the signing key, its issuer, the
/// ARK and a CRL; the export writes at most six).
pub const MAX_CERT_CHAIN: usize = 16;

/// The most members of an object that are kept to be named in an error; the rest are counted.
const MAX_OBJECT_MEMBERS: usize = 64;

/// The report sev's serde form in `raw` describes, re-encoded as Trustee re-encodes it (see
/// [`import`]), and parsed.
fn snp_report_from_sev(raw: &RawValue) -> Result<Vec<u8>, ImportError> {
    let r = Obj::parse(raw, "attestation_report", &SNP_REPORT_MEMBERS)?;
    let version: u32 = r.get("version", int)?;
    if !(2..=5).contains(&version) {
        return Err(bad(format!(
            "member attestation_report.version is {version}; thimble reads SEV-SNP report \
             versions 2 to 5"
        )));
    }
    let cpuid = match (
        version >= 3,
        r.get("cpuid_fam_id", opt_int::<u8>)?,
        r.get("cpuid_mod_id", opt_int::<u8>)?,
        r.get("cpuid_step", opt_int::<u8>)?,
    ) {
        (true, Some(fam), Some(model), Some(step)) => Some((fam, model, step)),
        (false, None, None, None) => None,
        (has, ..) => {
            return Err(bad(format!(
                "members attestation_report.cpuid_fam_id, cpuid_mod_id and cpuid_step must all \
                 be {} in a version {version} report (version 3 added them)",
                if has { "integers" } else { "null" }
            )));
        }
    };
    let chip_id: [u8; 64] = r.get("chip_id", byte_array)?;
    // The TCB_VERSION layout, told as sev's encoder tells it.
    let (product, layout_name) = match cpuid {
        Some((fam, model, _)) => {
            let product = Product::from_cpuid(fam, model).ok_or_else(|| {
                bad(format!(
                    "members attestation_report.cpuid_fam_id {fam:#04x} and cpuid_mod_id \
                     {model:#04x} name no product thimble knows (Milan, Genoa, Turin), so the \
                     TCB_VERSION layout is unknown"
                ))
            })?;
            (product, product.kds_name())
        }
        None => {
            let (hw_id, rest) = chip_id.split_at(8);
            if hw_id.iter().any(|&b| b != 0) && rest.iter().all(|&b| b == 0) {
                (Product::Turin, "Turin")
            } else {
                // Genoa shares Milan's layout.
                (Product::Milan, "Milan or Genoa")
            }
        }
    };
    let tcb = |name: &str| r.get(name, |raw, path| tcb_raw(raw, path, product, layout_name));
    let key_info: u32 = r.get("key_info", int)?;
    if key_info & !0x1f != 0 {
        return Err(bad(format!(
            "member attestation_report.key_info is {key_info:#x}: bits 31:5 are reserved and \
             must be zero"
        )));
    }
    let launch_mit_vector = r.get("launch_mit_vector", opt_int::<u64>)?;
    let current_mit_vector = r.get("current_mit_vector", opt_int::<u64>)?;
    let has_mit = version >= 5;
    if launch_mit_vector.is_some() != has_mit || current_mit_vector.is_some() != has_mit {
        return Err(bad(format!(
            "members attestation_report.launch_mit_vector and current_mit_vector must both be \
             {} in a version {version} report (version 5 added them)",
            if has_mit { "integers" } else { "null" }
        )));
    }
    let (signature_r, signature_s) = r.get("signature", signature)?;
    let fields = SnpReportFields {
        version,
        guest_svn: r.get("guest_svn", int)?,
        policy: GuestPolicy::decode(r.get("policy", int)?),
        family_id: r.get("family_id", byte_array)?,
        image_id: r.get("image_id", byte_array)?,
        vmpl: r.get("vmpl", int)?,
        signature_algo: r.get("sig_algo", int)?,
        current_tcb: tcb("current_tcb")?,
        platform_info: r.get("plat_info", int)?,
        author_key_en: key_info & 1 != 0,
        mask_chip_key: key_info & 2 != 0,
        // KEY_INFO is at most 0x1f, so its low byte holds SIGNING_KEY whole.
        signing_key: SigningKey::from_bits(key_info.to_le_bytes()[0] >> 2),
        report_data: r.get("report_data", byte_array)?,
        measurement: r.get("measurement", byte_array)?,
        host_data: r.get("host_data", byte_array)?,
        id_key_digest: r.get("id_key_digest", byte_array)?,
        author_key_digest: r.get("author_key_digest", byte_array)?,
        report_id: r.get("report_id", byte_array)?,
        report_id_ma: r.get("report_id_ma", byte_array)?,
        reported_tcb: tcb("reported_tcb")?,
        cpuid,
        chip_id,
        committed_tcb: tcb("committed_tcb")?,
        current_version: r.get("current", fw_version)?,
        committed_version: r.get("committed", fw_version)?,
        launch_tcb: tcb("launch_tcb")?,
        launch_mit_vector,
        current_mit_vector,
        signature_r,
        signature_s,
    };
    let bytes = fields.to_bytes();
    SnpReport::parse(&bytes).map_err(|e| bad(format!("member attestation_report: {e}")))?;
    Ok(bytes.to_vec())
}

/// A TCB_VERSION's SPLs encoded in the layout of `product` (`layout_name` in errors): `fmc` is
/// a number on Turin and `null` before.
fn tcb_raw(
    raw: &RawValue,
    path: &str,
    product: Product,
    layout_name: &str,
) -> Result<[u8; 8], ImportError> {
    let t = Obj::parse(raw, path, &TCB_MEMBERS)?;
    let fmc = match (product.turin_tcb_layout(), t.get("fmc", opt_int::<u8>)?) {
        (true, Some(fmc)) => fmc,
        (false, None) => 0,
        (true, None) => {
            return Err(bad(format!(
                "member {path}.fmc is null, but a Turin TCB_VERSION has an FMC SPL"
            )));
        }
        (false, Some(fmc)) => {
            return Err(bad(format!(
                "member {path}.fmc is {fmc}, but a {layout_name} TCB_VERSION has no FMC SPL \
                 (only Turin's has one; it should be null)"
            )));
        }
    };
    Ok(TcbVersion::encode(
        product,
        t.get("bootloader", int)?,
        t.get("tee", int)?,
        t.get("snp", int)?,
        t.get("microcode", int)?,
        fmc,
    )
    .raw)
}

/// sev's `Version` as the report's (build, minor, major).
fn fw_version(raw: &RawValue, path: &str) -> Result<(u8, u8, u8), ImportError> {
    let v = Obj::parse(raw, path, &VERSION_MEMBERS)?;
    let major = v.get("major", int)?;
    let minor = v.get("minor", int)?;
    let build = v.get("build", int)?;
    Ok((build, minor, major))
}

/// sev's `Signature` as big-endian R and S.
fn signature(raw: &RawValue, path: &str) -> Result<([u8; 48], [u8; 48]), ImportError> {
    let s = Obj::parse(raw, path, &SIGNATURE_MEMBERS)?;
    Ok((s.get("r", scalar)?, s.get("s", scalar)?))
}

/// A P-384 scalar stored as the report stores it (72 bytes little-endian, the last 24 zero),
/// big-endian.
fn scalar(raw: &RawValue, path: &str) -> Result<[u8; 48], ImportError> {
    let le: [u8; 72] = byte_array(raw, path)?;
    let (low, high) = le.split_at(48);
    if high.iter().any(|&b| b != 0) {
        return Err(bad(format!(
            "member {path} has non-zero bytes after the 48th: the report stores a P-384 scalar \
             little-endian in 72 bytes, the rest zero"
        )));
    }
    let mut be = [0u8; 48];
    for (dst, src) in be.iter_mut().zip(low.iter().rev()) {
        *dst = *src;
    }
    Ok(be)
}

/// `cert_chain`: the entries of a type thimble reads, with data, named `cert_chain[i] (TYPE)`.
fn cert_chain_in(raw: &RawValue) -> Result<Vec<NamedBytes>, ImportError> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let (entries, len) = RawArray {
        keep: MAX_CERT_CHAIN,
    }
    .deserialize(&mut de)
    .map_err(|_| bad("member cert_chain is not an array or null".to_owned()))?;
    if len > MAX_CERT_CHAIN {
        return Err(bad(format!(
            "member cert_chain has {len} entries, more than the {MAX_CERT_CHAIN} accepted"
        )));
    }
    let mut out = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let path = format!("cert_chain[{i}]");
        let e = Obj::parse(entry, &path, &CERT_ENTRY_MEMBERS)?;
        let cert_type = e.get("cert_type", cert_type)?;
        let data = e.get("data", |raw, path| {
            bytes_of(raw, path, MAX_IMPORT_LEN).map(|b| b.bytes)
        })?;
        if let Some(cert_type) = cert_type
            && !data.is_empty()
        {
            out.push(NamedBytes {
                name: format!("{path} ({cert_type})"),
                bytes: data,
            });
        }
    }
    Ok(out)
}

/// sev's `CertType`: the name of a type thimble reads, or `None` for `Empty` and
/// `{"OTHER": uuid}`.
fn cert_type(raw: &RawValue, path: &str) -> Result<Option<&'static str>, ImportError> {
    const READ: [&str; 5] = ["VCEK", "VLEK", "ASK", "ARK", "CRL"];
    if raw.get().starts_with('{') {
        let o = Obj::parse(raw, path, &["OTHER"])?;
        return o.get("OTHER", |raw, path| {
            serde_json::from_str::<String>(raw.get())
                .ok()
                .filter(|s| is_uuid(s))
                .map(|_| None)
                .ok_or_else(|| bad(format!("member {path} is {}, not a UUID", shown(raw.get()))))
        });
    }
    let name = serde_json::from_str::<String>(raw.get()).ok();
    if name.as_deref() == Some("Empty") {
        return Ok(None);
    }
    match READ.into_iter().find(|&r| name.as_deref() == Some(r)) {
        Some(known) => Ok(Some(known)),
        None => Err(bad(format!(
            "member {path} is {}, not one of \"VCEK\", \"VLEK\", \"ASK\", \"ARK\", \"CRL\", \
             \"Empty\" or {{\"OTHER\": UUID}}",
            shown(raw.get())
        ))),
    }
}

/// A UUID as the uuid crate reads one: hyphenated, simple, braced or as a URN.
fn is_uuid(s: &str) -> bool {
    let s = s.strip_prefix("urn:uuid:").unwrap_or(s);
    let s = s
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(s);
    let hex = |c: char| c.is_ascii_hexdigit();
    match s.len() {
        32 => s.chars().all(hex),
        36 => s.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                hex(c)
            }
        }),
        _ => false,
    }
}

/// Text of the input shown in an error: at most 40 characters of it.
fn shown(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((end, _)) => format!("{}…", text.get(..end).unwrap_or_default()),
        None => text.to_owned(),
    }
}

/// The unsigned integer types of sev's form.
trait Int: std::str::FromStr {
    const MAX: u64;
}

impl Int for u8 {
    const MAX: u64 = u8::MAX as u64;
}

impl Int for u32 {
    const MAX: u64 = u32::MAX as u64;
}

impl Int for u64 {
    const MAX: u64 = u64::MAX;
}

/// An integer member: plain JSON digits in range (no sign, fraction or exponent).
fn int<T: Int>(raw: &RawValue, path: &str) -> Result<T, ImportError> {
    raw.get().parse().map_err(|_| {
        bad(format!(
            "member {path} is {}, not an integer from 0 to {}",
            shown(raw.get()),
            T::MAX
        ))
    })
}

/// An `Option` integer member: `null` or [`int`].
fn opt_int<T: Int>(raw: &RawValue, path: &str) -> Result<Option<T>, ImportError> {
    if raw.get() == "null" {
        return Ok(None);
    }
    raw.get().parse().map(Some).map_err(|_| {
        bad(format!(
            "member {path} is {}, not null or an integer from 0 to {}",
            shown(raw.get()),
            T::MAX
        ))
    })
}

/// A byte array member of exactly `N` elements.
fn byte_array<const N: usize>(raw: &RawValue, path: &str) -> Result<[u8; N], ImportError> {
    let b = bytes_of(raw, path, N)?;
    if b.len != N {
        return Err(bad(format!(
            "member {path} has {} elements, not the {N} bytes it must have",
            b.len
        )));
    }
    b.bytes
        .try_into()
        .map_err(|_| bad(format!("member {path} does not have {N} bytes")))
}

/// A byte array member: its first `keep` bytes and its length.
fn bytes_of(raw: &RawValue, path: &str, keep: usize) -> Result<Bytes, ImportError> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let b = ByteArray { keep }
        .deserialize(&mut de)
        .map_err(|_| bad(format!("member {path} is not an array of bytes")))?;
    if let Some((i, text)) = &b.bad {
        return Err(bad(format!(
            "member {path}[{i}] is {text}, not a byte (an integer from 0 to 255)"
        )));
    }
    Ok(b)
}

/// A JSON object's members, undecoded, checked against the names its type has: each present,
/// once, and no other.
struct Obj<'a> {
    path: String,
    names: &'static [&'static str],
    values: Vec<&'a RawValue>,
}

impl<'a> Obj<'a> {
    /// The object `raw` (member `path`) with the members `names`.
    fn parse(
        raw: &'a RawValue,
        path: &str,
        names: &'static [&'static str],
    ) -> Result<Obj<'a>, ImportError> {
        let mut de = serde_json::Deserializer::from_str(raw.get());
        let (entries, len) = RawObject
            .deserialize(&mut de)
            .map_err(|_| bad(format!("member {path} is not an object")))?;
        let mut values: Vec<Option<&'a RawValue>> = vec![None; names.len()];
        for (key, value) in entries {
            let slot = names
                .iter()
                .position(|n| *n == key)
                .and_then(|i| values.get_mut(i))
                .ok_or_else(|| {
                    bad(format!(
                        "member {path} has a member {:?}, which is not one of {}",
                        shown(&key),
                        names.join(", ")
                    ))
                })?;
            if slot.replace(value).is_some() {
                return Err(bad(format!("member {path}.{key} appears more than once")));
            }
        }
        if len > names.len() {
            return Err(bad(format!(
                "member {path} has {len} members, more than the {} it may have",
                names.len()
            )));
        }
        let values = names
            .iter()
            .zip(values)
            .map(|(name, v)| v.ok_or_else(|| bad(format!("member {path}.{name} is missing"))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Obj {
            path: path.to_owned(),
            names,
            values,
        })
    }

    /// Member `name`, decoded by `decode` (given its path for errors).
    fn get<T>(
        &self,
        name: &str,
        decode: impl FnOnce(&'a RawValue, &str) -> Result<T, ImportError>,
    ) -> Result<T, ImportError> {
        let path = format!("{}.{name}", self.path);
        let raw = self
            .names
            .iter()
            .position(|n| *n == name)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| bad(format!("member {path} is missing")))?;
        decode(raw, &path)
    }
}

/// Reads a JSON object: its first [`MAX_OBJECT_MEMBERS`] members undecoded, and how many it
/// has.
struct RawObject;

impl<'de> DeserializeSeed<'de> for RawObject {
    type Value = (Vec<(String, &'de RawValue)>, usize);

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RawObject {
    type Value = (Vec<(String, &'de RawValue)>, usize);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut kept = Vec::new();
        while kept.len() < MAX_OBJECT_MEMBERS {
            match map.next_entry::<String, &'de RawValue>()? {
                Some(entry) => kept.push(entry),
                None => {
                    let len = kept.len();
                    return Ok((kept, len));
                }
            }
        }
        let mut len = kept.len();
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
            len += 1;
        }
        Ok((kept, len))
    }
}

/// Reads a JSON array: its first `keep` elements undecoded, and how many it has.
struct RawArray {
    keep: usize,
}

impl<'de> DeserializeSeed<'de> for RawArray {
    type Value = (Vec<&'de RawValue>, usize);

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RawArray {
    type Value = (Vec<&'de RawValue>, usize);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut kept = Vec::new();
        while kept.len() < self.keep {
            match seq.next_element::<&'de RawValue>()? {
                Some(v) => kept.push(v),
                None => {
                    let len = kept.len();
                    return Ok((kept, len));
                }
            }
        }
        let mut len = kept.len();
        while seq.next_element::<IgnoredAny>()?.is_some() {
            len += 1;
        }
        Ok((kept, len))
    }
}

/// A JSON array of bytes as read: the first `keep` elements decoded, how many there are, and
/// the first element (index and text) that is not an integer from 0 to 255.
struct Bytes {
    bytes: Vec<u8>,
    len: usize,
    bad: Option<(usize, String)>,
}

/// Reads a JSON array of bytes to its end without failing on an element (see [`Bytes`]).
struct ByteArray {
    keep: usize,
}

impl<'de> DeserializeSeed<'de> for ByteArray {
    type Value = Bytes;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Bytes, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ByteArray {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of bytes")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
        let mut out = Bytes {
            bytes: Vec::with_capacity(self.keep.min(4096)),
            len: 0,
            bad: None,
        };
        loop {
            if out.len < self.keep {
                let Some(v) = seq.next_element::<&'de RawValue>()? else {
                    break;
                };
                match v.get().parse::<u8>() {
                    Ok(b) => out.bytes.push(b),
                    Err(_) => {
                        if out.bad.is_none() {
                            out.bad = Some((out.len, shown(v.get())));
                        }
                    }
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            out.len += 1;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tee_names_round_trip() {
        for tee in [Tee::SevSnp, Tee::Tdx, Tee::AzureSevSnp, Tee::AzureTdx] {
            assert_eq!(tee_from_name(tee_name(tee)), Some(tee));
        }
        assert_eq!(tee_from_name("sev-snp"), None);
    }

    #[test]
    fn base64url_padding_is_optional_on_import() {
        assert_eq!(URL_SAFE_ANY_PAD.decode("_-8").unwrap(), [0xff, 0xef]);
        assert_eq!(URL_SAFE_ANY_PAD.decode("_-8=").unwrap(), [0xff, 0xef]);
        assert_eq!(STANDARD_ANY_PAD.decode("/+8").unwrap(), [0xff, 0xef]);
    }

    #[test]
    fn envelopes_and_detection() {
        let m =
            Members::parse(r#"{"tee-evidence":{"primary_evidence":{"quote":"AA=="}}}"#).unwrap();
        let inner = Members::parse(m.inner().unwrap().get()).unwrap();
        let inner = Members::parse(inner.inner().unwrap().get()).unwrap();
        assert!(inner.inner().is_none());
        assert_eq!(inner.detect().unwrap(), Tee::Tdx);
        let v0 = Members::parse(r#"{"quote":{"signature":[]},"report":[],"vcek":""}"#).unwrap();
        assert_eq!(v0.detect().unwrap(), Tee::AzureSevSnp);
        assert!(Members::parse(r#"{"quote":"a","quote":"b"}"#).is_err());
        assert!(Members::parse("[]").is_err());
    }

    // -----------------------------------------------------------------------------------------
    // snp import
    // -----------------------------------------------------------------------------------------

    use crate::bundle::{
        Agent, Collection, CollectionSource, Endorsement, FORMAT, Origin, OriginKind, VERSION,
    };
    use serde_json::{Value, json};

    const VECTORS_V3: [(&str, &[u8]); 2] = [
        (
            "snp/milan-v3-oak",
            include_bytes!("../../../../tests/vectors/snp/milan-v3-oak/report.bin"),
        ),
        (
            "snp/milan-v3-vlek-aws",
            include_bytes!("../../../../tests/vectors/snp/milan-v3-vlek-aws/report.bin"),
        ),
    ];

    /// Version 2 reports, which the export refuses (Trustee needs version 3).
    const VECTORS_V2: [(&str, &[u8]); 6] = [
        (
            "snp/milan-v2-aci-thim",
            include_bytes!("../../../../tests/vectors/snp/milan-v2-aci-thim/report.bin"),
        ),
        (
            "snp/milan-v2-debug-guest",
            include_bytes!("../../../../tests/vectors/snp/milan-v2-debug-guest/report.bin"),
        ),
        (
            "snp/milan-v2-trustee",
            include_bytes!("../../../../tests/vectors/snp/milan-v2-trustee/report.bin"),
        ),
        (
            "snp/milan-v2-virtee",
            include_bytes!("../../../../tests/vectors/snp/milan-v2-virtee/report.bin"),
        ),
        (
            "snp/negative-forged-vcek-legacy",
            include_bytes!("../../../../tests/vectors/snp/negative-forged-vcek-legacy/report.bin"),
        ),
        (
            "snp/negative-forged-vcek-new",
            include_bytes!("../../../../tests/vectors/snp/negative-forged-vcek-new/report.bin"),
        ),
    ];

    /// Azure HCL reports, whose SEV-SNP reports are real Milan ones (version 2 and 3).
    const AZURE_HCL: [(&str, &[u8]); 4] = [
        (
            "azure/snp-hcl-milan-v2",
            include_bytes!("../../../../tests/vectors/azure/snp-hcl-milan-v2/hcl_report.bin"),
        ),
        (
            "azure/snp-hcl-milan-v3-v0",
            include_bytes!("../../../../tests/vectors/azure/snp-hcl-milan-v3-v0/hcl_report.bin"),
        ),
        (
            "azure/snp-hcl-milan-v3-v1",
            include_bytes!("../../../../tests/vectors/azure/snp-hcl-milan-v3-v1/hcl_report.bin"),
        ),
        (
            "azure/snp-hcl-milan-v3-v2",
            include_bytes!("../../../../tests/vectors/azure/snp-hcl-milan-v3-v2/hcl_report.bin"),
        ),
    ];

    const OAK_VCEK: &[u8] = include_bytes!("../../../../tests/vectors/snp/milan-v3-oak/vcek.der");
    const AWS_VLEK: &[u8] =
        include_bytes!("../../../../tests/vectors/snp/milan-v3-vlek-aws/vlek.der");

    fn snp_bundle(report: &[u8], endorsements: Vec<Endorsement>) -> Bundle {
        Bundle {
            format: FORMAT.into(),
            version: VERSION,
            simulated: false,
            agent: Agent {
                name: "thimble".into(),
                version: "0.1.0".into(),
            },
            created_at: "2026-06-01T00:00:00Z".into(),
            kernel_release: None,
            collection: Collection::new(CollectionSource::Import),
            nonce: None,
            evidence: Evidence::SevSnp(SevSnpEvidence {
                report: report.to_vec(),
                auxblob: None,
            }),
            endorsements,
            endorsement_log: Vec::new(),
            event_logs: Vec::new(),
            claims: None,
        }
    }

    fn der(kind: EndorsementKind, der: &[u8]) -> Endorsement {
        Endorsement::der(kind, der, Origin::path(OriginKind::File, "x.der"), None)
    }

    fn exported(bundle: &Bundle) -> Vec<u8> {
        match export(bundle).unwrap() {
            Exported::File(bytes) => bytes,
            Exported::Directory(_) => panic!("Trustee evidence is one file"),
        }
    }

    /// The serde form of any report (the export's checks bypassed), its layout told as sev's
    /// encoder tells it.
    fn sev_json(raw: &[u8]) -> Vec<u8> {
        let report = SnpReport::parse(raw).unwrap();
        let product = report.product_hint().unwrap_or(Product::Milan);
        serde_json::to_vec(&SnpOut {
            attestation_report: sev_form(raw, &report, product),
            cert_chain: None,
        })
        .unwrap()
    }

    fn imported_report(json: &[u8]) -> Vec<u8> {
        let imported = import(None, json).unwrap();
        let Evidence::SevSnp(e) = imported.evidence else {
            panic!("not SEV-SNP evidence");
        };
        assert_eq!(e.auxblob, None);
        e.report
    }

    fn azure_reports() -> Vec<(&'static str, Vec<u8>)> {
        AZURE_HCL
            .iter()
            .map(|(case, hcl)| {
                let hcl = crate::azure::HclReport::parse(hcl).unwrap();
                let report = hcl.snp_report().unwrap().unwrap();
                (*case, report.as_bytes().to_vec())
            })
            .collect()
    }

    fn pattern<const N: usize>(seed: u8) -> [u8; N] {
        std::array::from_fn(|i| seed.wrapping_add(u8::try_from(i % 256).unwrap()).max(1))
    }

    /// Simulated reports of the products and versions no real vector has: Genoa version 3,
    /// Turin version 3 and 5 (FMC in the TCB_VERSIONs), Turin version 2 (told by its chip id),
    /// Milan version 5 (mitigation vectors).
    fn simulated() -> Vec<(&'static str, Vec<u8>)> {
        let make = |version: u32, product: Product, cpuid: Option<(u8, u8, u8)>| {
            let tcb = |n: u8| TcbVersion::encode(product, n, n + 1, n + 2, n + 3, n + 4).raw;
            let mut chip_id: [u8; 64] = pattern(0xa0);
            if product == Product::Turin {
                chip_id[8..].fill(0);
            }
            SnpReportFields {
                version,
                guest_svn: 7,
                policy: GuestPolicy::decode(0x3_0000),
                family_id: pattern(0x10),
                image_id: pattern(0x20),
                vmpl: 1,
                signature_algo: 1,
                current_tcb: tcb(10),
                platform_info: 0x25,
                author_key_en: true,
                mask_chip_key: false,
                signing_key: SigningKey::Vcek,
                report_data: pattern(0x50),
                measurement: pattern(0x90),
                host_data: pattern(0xc0),
                id_key_digest: pattern(0xe0),
                author_key_digest: pattern(0x11),
                report_id: pattern(0x40),
                report_id_ma: pattern(0x60),
                reported_tcb: tcb(20),
                cpuid,
                chip_id,
                committed_tcb: tcb(30),
                current_version: (29, 55, 1),
                committed_version: (28, 54, 1),
                launch_tcb: tcb(40),
                launch_mit_vector: (version >= 5).then_some(0x1122_3344_5566_7788),
                current_mit_vector: (version >= 5).then_some(0x99aa_bbcc_ddee_ff00),
                signature_r: pattern(0xb0),
                signature_s: pattern(0xd0),
            }
            .to_bytes()
            .to_vec()
        };
        vec![
            (
                "genoa-v3",
                make(3, Product::Genoa, Some((0x19, 0x11, 0x01))),
            ),
            (
                "turin-v3",
                make(3, Product::Turin, Some((0x1a, 0x02, 0x00))),
            ),
            (
                "turin-v5",
                make(5, Product::Turin, Some((0x1a, 0x02, 0x00))),
            ),
            ("turin-v2", make(2, Product::Turin, None)),
            (
                "milan-v5",
                make(5, Product::Milan, Some((0x19, 0x01, 0x01))),
            ),
        ]
    }

    /// Every report the tests read back: (name, bytes, whether the export takes it).
    fn all_reports() -> Vec<(String, Vec<u8>, bool)> {
        let mut out: Vec<(String, Vec<u8>, bool)> = Vec::new();
        for (case, raw) in VECTORS_V3 {
            out.push((case.to_owned(), raw.to_vec(), true));
        }
        for (case, raw) in VECTORS_V2 {
            out.push((case.to_owned(), raw.to_vec(), false));
        }
        for (case, raw) in azure_reports().into_iter().chain(simulated()) {
            let v3 = SnpReport::parse(&raw).unwrap().version >= 3;
            out.push((case.to_owned(), raw, v3));
        }
        out
    }

    #[test]
    fn snp_export_import_round_trips_the_report_bytes() {
        let all = all_reports();
        assert_eq!(all.len(), 17);
        for (case, raw, exports) in all {
            let json = if exports {
                let json = exported(&snp_bundle(&raw, Vec::new()));
                assert_eq!(json, [sev_json(&raw), b"\n".to_vec()].concat(), "{case}");
                json
            } else {
                sev_json(&raw)
            };
            assert_eq!(imported_report(&json), raw, "{case}");
            // Whitespace anywhere is fine.
            let v: Value = serde_json::from_slice(&json).unwrap();
            let pretty = serde_json::to_vec_pretty(&v).unwrap();
            assert_eq!(imported_report(&pretty), raw, "{case}");
            let imported = import(Some("snp"), &json).unwrap();
            assert!(imported.endorsements.is_empty(), "{case}");
            assert!(imported.event_logs.is_empty(), "{case}");
            // Inside a KBS /attest body, too.
            let attest = format!(r#"{{"tee-evidence":{{"primary_evidence":{}}}}}"#, {
                std::str::from_utf8(&json).unwrap()
            });
            assert_eq!(imported_report(attest.as_bytes()), raw, "{case}");
        }
    }

    #[test]
    fn snp_cert_chain_becomes_endorsements() {
        let (_, oak) = VECTORS_V3[0];
        let b = snp_bundle(oak, vec![der(EndorsementKind::Vcek, OAK_VCEK)]);
        let imported = import(None, &exported(&b)).unwrap();
        assert_eq!(
            imported.endorsements,
            [NamedBytes {
                name: "cert_chain[0] (VCEK)".to_owned(),
                bytes: OAK_VCEK.to_vec(),
            }]
        );
        let (_, aws) = VECTORS_V3[1];
        let b = snp_bundle(
            aws,
            vec![
                der(EndorsementKind::Vlek, AWS_VLEK),
                der(EndorsementKind::Ark, b"ark"),
            ],
        );
        let json = exported(&b);
        let imported = import(None, &json).unwrap();
        let names: Vec<&str> = imported
            .endorsements
            .iter()
            .map(|n| n.name.as_str())
            .collect();
        assert_eq!(names, ["cert_chain[0] (VLEK)", "cert_chain[1] (ARK)"]);
        assert_eq!(imported.endorsements[0].bytes, AWS_VLEK);

        // Empty and OTHER entries, and entries without data, are read and left out; null and
        // absent are no chain.
        let mut v: Value = serde_json::from_slice(&json).unwrap();
        v["cert_chain"] = json!([
            {"cert_type": "Empty", "data": []},
            {"cert_type": {"OTHER": "a8074bc2-a25a-483e-aae6-39c045a0b8a1"}, "data": [1, 2]},
            {"cert_type": "CRL", "data": []},
            {"cert_type": "ASK", "data": [3]},
        ]);
        let imported = import(None, v.to_string().as_bytes()).unwrap();
        assert_eq!(
            imported.endorsements,
            [NamedBytes {
                name: "cert_chain[3] (ASK)".to_owned(),
                bytes: vec![3],
            }]
        );
        v["cert_chain"] = Value::Null;
        assert!(
            import(None, v.to_string().as_bytes())
                .unwrap()
                .endorsements
                .is_empty()
        );
        v.as_object_mut().unwrap().remove("cert_chain");
        assert!(
            import(None, v.to_string().as_bytes())
                .unwrap()
                .endorsements
                .is_empty()
        );
    }

    /// sev's `AttestationReport` built from the serde form member by member, as its serde
    /// derive fills it (the crate is a dev-dependency without its `serde` feature).
    fn sev_report(v: &Value) -> sev::firmware::guest::AttestationReport {
        use sev::firmware::guest::{AttestationReport, KeyInfo, PlatformInfo, Version};
        use sev::firmware::host::TcbVersion as SevTcbVersion;
        fn arr<const N: usize>(v: &Value) -> [u8; N] {
            let bytes: Vec<u8> = v
                .as_array()
                .unwrap()
                .iter()
                .map(|b| u8::try_from(b.as_u64().unwrap()).unwrap())
                .collect();
            bytes.try_into().unwrap()
        }
        let u8_of = |v: &Value| u8::try_from(v.as_u64().unwrap()).unwrap();
        let u32_of = |v: &Value| u32::try_from(v.as_u64().unwrap()).unwrap();
        let opt_u8 = |v: &Value| v.as_u64().map(|x| u8::try_from(x).unwrap());
        let tcb = |v: &Value| SevTcbVersion {
            fmc: opt_u8(&v["fmc"]),
            bootloader: u8_of(&v["bootloader"]),
            tee: u8_of(&v["tee"]),
            snp: u8_of(&v["snp"]),
            microcode: u8_of(&v["microcode"]),
        };
        let version =
            |v: &Value| Version::new(u8_of(&v["major"]), u8_of(&v["minor"]), u8_of(&v["build"]));
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, SNP_REPORT_MEMBERS);
        AttestationReport {
            version: u32_of(&v["version"]),
            guest_svn: u32_of(&v["guest_svn"]),
            policy: sev::firmware::guest::GuestPolicy::from(v["policy"].as_u64().unwrap()),
            family_id: arr(&v["family_id"]),
            image_id: arr(&v["image_id"]),
            vmpl: u32_of(&v["vmpl"]),
            sig_algo: u32_of(&v["sig_algo"]),
            current_tcb: tcb(&v["current_tcb"]),
            plat_info: PlatformInfo::from(v["plat_info"].as_u64().unwrap()),
            key_info: KeyInfo::from(u32_of(&v["key_info"])),
            report_data: arr(&v["report_data"]),
            measurement: arr(&v["measurement"]),
            host_data: arr(&v["host_data"]),
            id_key_digest: arr(&v["id_key_digest"]),
            author_key_digest: arr(&v["author_key_digest"]),
            report_id: arr(&v["report_id"]),
            report_id_ma: arr(&v["report_id_ma"]),
            reported_tcb: tcb(&v["reported_tcb"]),
            cpuid_fam_id: opt_u8(&v["cpuid_fam_id"]),
            cpuid_mod_id: opt_u8(&v["cpuid_mod_id"]),
            cpuid_step: opt_u8(&v["cpuid_step"]),
            chip_id: arr(&v["chip_id"]),
            committed_tcb: tcb(&v["committed_tcb"]),
            current: version(&v["current"]),
            committed: version(&v["committed"]),
            launch_tcb: tcb(&v["launch_tcb"]),
            launch_mit_vector: v["launch_mit_vector"].as_u64(),
            current_mit_vector: v["current_mit_vector"].as_u64(),
            signature: sev::certs::snp::ecdsa::Signature::new(
                arr(&v["signature"]["r"]),
                arr(&v["signature"]["s"]),
            ),
        }
    }

    #[test]
    fn snp_reencoding_agrees_with_the_sev_crate() {
        use sev::parser::ByteParser;
        // Every report, and one whose TCB_VERSION reserved byte the form drops: sev's encoder
        // and thimble's write the same bytes from the same form.
        let mut dropped = VECTORS_V3[0].1.to_vec();
        dropped[0x38 + 3] = 1;
        let mut reports: Vec<(String, Vec<u8>)> =
            all_reports().into_iter().map(|(c, r, _)| (c, r)).collect();
        reports.push(("tcb reserved byte".to_owned(), dropped.clone()));
        for (case, raw) in reports {
            let json = sev_json(&raw);
            let v: Value = serde_json::from_slice(&json).unwrap();
            let theirs = sev_report(&v["attestation_report"]).to_bytes().unwrap();
            let ours = imported_report(&json);
            assert_eq!(ours, theirs.to_vec(), "{case}");
            // And sev reads the re-encoding back to the same form.
            let again = sev::firmware::guest::AttestationReport::from_bytes(&ours).unwrap();
            assert_eq!(again, sev_report(&v["attestation_report"]), "{case}");
        }
        // The dropped byte is not in the re-encoding: the signature over it would not verify.
        let again = imported_report(&sev_json(&dropped));
        assert_ne!(again, dropped);
        let report = SnpReport::parse(&dropped).unwrap();
        assert_eq!(again, sev_reencoded(&report, Product::Milan).to_vec());
    }

    /// The import error for `v` (the oak report's export, changed by `change`).
    fn snp_error(change: impl FnOnce(&mut Value)) -> String {
        let (_, oak) = VECTORS_V3[0];
        let b = snp_bundle(oak, vec![der(EndorsementKind::Vcek, OAK_VCEK)]);
        let mut v: Value = serde_json::from_slice(&exported(&b)).unwrap();
        change(&mut v);
        let err = import(None, v.to_string().as_bytes()).unwrap_err();
        assert_eq!(err.format, Format::Trustee);
        err.reason
    }

    #[track_caller]
    fn expect(reason: &str, wanted: &str) {
        assert!(reason.contains(wanted), "{reason:?} lacks {wanted:?}");
    }

    #[test]
    fn snp_import_refuses_hostile_reports() {
        fn ar(v: &mut Value) -> &mut Value {
            &mut v["attestation_report"]
        }
        expect(
            &snp_error(|v| ar(v)["family_id"].as_array_mut().unwrap().truncate(15)),
            "member attestation_report.family_id has 15 elements, not the 16 bytes",
        );
        expect(
            &snp_error(|v| ar(v)["chip_id"].as_array_mut().unwrap().push(json!(0))),
            "member attestation_report.chip_id has 65 elements",
        );
        expect(
            &snp_error(|v| ar(v)["measurement"][3] = json!(256)),
            "member attestation_report.measurement[3] is 256, not a byte",
        );
        for bad in [json!(-1), json!(1.5), json!("1"), json!(null), json!([1])] {
            expect(
                &snp_error(|v| ar(v)["report_data"][0] = bad),
                "member attestation_report.report_data[0] is ",
            );
        }
        expect(
            &snp_error(|v| ar(v)["report_data"] = json!(vec![0u8; 1_000_000])),
            "member attestation_report.report_data has 1000000 elements, not the 64",
        );
        expect(
            &snp_error(|v| ar(v)["host_data"] = json!("AAAA")),
            "member attestation_report.host_data is not an array of bytes",
        );
        expect(
            &snp_error(|v| {
                ar(v).as_object_mut().unwrap().remove("vmpl");
            }),
            "member attestation_report.vmpl is missing",
        );
        expect(
            &snp_error(|v| ar(v)["extra"] = json!(0)),
            r#"member attestation_report has a member "extra", which is not one of version"#,
        );
        expect(
            &snp_error(|v| ar(v)["current_tcb"]["spl"] = json!(0)),
            r#"member attestation_report.current_tcb has a member "spl""#,
        );
        expect(
            &snp_error(|v| {
                ar(v)["signature"].as_object_mut().unwrap().remove("s");
            }),
            "member attestation_report.signature.s is missing",
        );
        expect(
            &snp_error(|v| *ar(v) = json!([1, 2])),
            "member attestation_report is not an object",
        );
        expect(
            &snp_error(|v| ar(v)["vmpl"] = json!(4_294_967_296u64)),
            "member attestation_report.vmpl is 4294967296, not an integer from 0 to 4294967295",
        );
        expect(
            &snp_error(|v| ar(v)["policy"] = json!(-1)),
            "member attestation_report.policy is -1, not an integer",
        );
        expect(
            &snp_error(|v| ar(v)["current"]["major"] = json!(256)),
            "member attestation_report.current.major is 256, not an integer from 0 to 255",
        );
        expect(
            &snp_error(|v| ar(v)["reported_tcb"]["microcode"] = json!(1e3)),
            "member attestation_report.reported_tcb.microcode is 1000.0",
        );
        expect(
            &snp_error(|v| ar(v)["version"] = json!(6)),
            "member attestation_report.version is 6",
        );
        expect(
            &snp_error(|v| ar(v)["cpuid_step"] = Value::Null),
            "cpuid_step must all be integers in a version 3 report",
        );
        expect(
            &snp_error(|v| ar(v)["cpuid_fam_id"] = json!(0x17)),
            "cpuid_fam_id 0x17 and cpuid_mod_id 0x01 name no product",
        );
        expect(
            &snp_error(|v| ar(v)["launch_mit_vector"] = json!(1)),
            "must both be null in a version 3 report",
        );
        expect(
            &snp_error(|v| ar(v)["launch_tcb"]["fmc"] = json!(1)),
            "member attestation_report.launch_tcb.fmc is 1, but a Milan TCB_VERSION has no FMC",
        );
        expect(
            &snp_error(|v| ar(v)["key_info"] = json!(0x20)),
            "member attestation_report.key_info is 0x20: bits 31:5 are reserved",
        );
        expect(
            &snp_error(|v| ar(v)["signature"]["r"][60] = json!(1)),
            "member attestation_report.signature.r has non-zero bytes after the 48th",
        );
        // What the fields can say but the firmware never writes: SnpReport::parse decides.
        expect(
            &snp_error(|v| ar(v)["policy"] = json!(0)),
            "member attestation_report: SEV-SNP report POLICY 0x0 has bit 17 clear",
        );
        expect(
            &snp_error(|v| ar(v)["sig_algo"] = json!(2)),
            "member attestation_report: SEV-SNP report signature_algo is 2",
        );
        // A very long unknown name is shown cut short.
        let long = "x".repeat(10_000);
        let reason = snp_error(|v| ar(v)[long.as_str()] = json!(0));
        assert!(reason.len() < 1_000, "{reason}");
        // Many members, no panic.
        expect(
            &snp_error(|v| {
                for i in 0..1000 {
                    ar(v)[format!("m{i}")] = json!(i);
                }
            }),
            r#"has a member "m0""#,
        );
    }

    #[test]
    fn snp_import_refuses_hostile_cert_chains() {
        expect(
            &snp_error(|v| v["cert_chain"][0]["cert_type"] = json!("VCEK2")),
            r#"member cert_chain[0].cert_type is "VCEK2", not one of "VCEK""#,
        );
        expect(
            &snp_error(|v| v["cert_chain"][0]["cert_type"] = json!({"OTHER": "nope"})),
            r#"member cert_chain[0].cert_type.OTHER is "nope", not a UUID"#,
        );
        expect(
            &snp_error(|v| v["cert_chain"][0]["cert_type"] = json!({"VCEK": null})),
            r#"member cert_chain[0].cert_type has a member "VCEK""#,
        );
        expect(
            &snp_error(|v| v["cert_chain"][0]["cert_type"] = json!(3)),
            "member cert_chain[0].cert_type is 3",
        );
        expect(
            &snp_error(|v| v["cert_chain"][0]["data"][5] = json!(300)),
            "member cert_chain[0].data[5] is 300, not a byte",
        );
        expect(
            &snp_error(|v| {
                v["cert_chain"][0].as_object_mut().unwrap().remove("data");
            }),
            "member cert_chain[0].data is missing",
        );
        expect(
            &snp_error(|v| v["cert_chain"] = json!("VCEK")),
            "member cert_chain is not an array or null",
        );
        expect(
            &snp_error(|v| v["cert_chain"] = json!(vec![json!({}); 100_000])),
            "member cert_chain has 100000 entries, more than the 16 accepted",
        );
        expect(
            &snp_error(|v| v["cert_chain"][0]["data"] = json!({"a": 1})),
            "member cert_chain[0].data is not an array of bytes",
        );
    }

    #[test]
    fn snp_import_refuses_duplicates_and_a_missing_report() {
        let (_, oak) = VECTORS_V3[0];
        let json = String::from_utf8(exported(&snp_bundle(oak, Vec::new()))).unwrap();
        let twice = json.replacen(r#""vmpl":"#, r#""vmpl":0,"vmpl":"#, 1);
        let err = import(None, twice.as_bytes()).unwrap_err();
        expect(
            &err.reason,
            "member attestation_report.vmpl appears more than once",
        );
        let err = import(Some("snp"), br#"{"cert_chain":null}"#).unwrap_err();
        expect(&err.reason, "member attestation_report is missing");
        let err = import(Some("snp"), br#"{"attestation_report":null}"#).unwrap_err();
        expect(&err.reason, "member attestation_report is missing");
        // Turin TCB_VERSIONs carry fmc.
        let (_, turin) = simulated()
            .into_iter()
            .find(|(c, _)| *c == "turin-v5")
            .unwrap();
        let mut v: Value = serde_json::from_slice(&sev_json(&turin)).unwrap();
        assert_eq!(v["attestation_report"]["current_tcb"]["fmc"], json!(14));
        v["attestation_report"]["current_tcb"]["fmc"] = Value::Null;
        let err = import(None, v.to_string().as_bytes()).unwrap_err();
        expect(
            &err.reason,
            "member attestation_report.current_tcb.fmc is null, but a Turin TCB_VERSION has an \
             FMC SPL",
        );
    }

    #[test]
    fn uuids_and_shown_text() {
        assert!(is_uuid("a8074bc2-a25a-483e-aae6-39c045a0b8a1"));
        assert!(is_uuid("a8074bc2a25a483eaae639c045a0b8a1"));
        assert!(is_uuid("{a8074bc2-a25a-483e-aae6-39c045a0b8a1}"));
        assert!(is_uuid("urn:uuid:a8074bc2-a25a-483e-aae6-39c045a0b8a1"));
        assert!(!is_uuid("a8074bc2-a25a-483e-aae6-39c045a0b8a"));
        assert!(!is_uuid("a8074bc2_a25a-483e-aae6-39c045a0b8a1"));
        assert!(!is_uuid("é8074bc2-a25a-483e-aae6-39c045a0b8a1"));
        assert_eq!(shown("abc"), "abc");
        assert_eq!(shown(&"é".repeat(50)), format!("{}…", "é".repeat(40)));
    }
}
