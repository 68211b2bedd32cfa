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
//! `tee-evidence`. It refuses `snp` evidence: the serde form does not carry every byte of the
//! report (see above), and thimble verifies the signature over the bytes the firmware wrote, so
//! it will not rebuild them.

use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::azure::{HclReport, HclReportType, RuntimeData, TpmQuote, TpmsAttest};
use crate::bundle::{
    AzureSevSnpEvidence, AzureTdxEvidence, Bundle, EndorsementKind, EventLogEvidence, EventLogKind,
    Evidence, TdxEvidence, Tee, TpmQuoteEvidence,
};
use crate::snp::report::layout;
use crate::snp::{Product, SigningKey, SnpReport, TcbVersion};
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
    let tcb = |raw: [u8; 8]| SevTcb::from(TcbVersion::decode(raw, product));
    let (fam, model, step) = match report.cpuid {
        Some((fam, model, step)) => (Some(fam), Some(model), Some(step)),
        None => (None, None, None),
    };
    // Bytes straight from the received report: the parse checked every reserved byte, and the
    // re-encoding above equals it, so these are the values sev's decoder would read.
    let slice = |range: std::ops::Range<usize>| &raw[range];
    let attestation_report = SevReport {
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
    };
    Ok(SnpOut {
        attestation_report,
        cert_chain: snp_cert_chain(bundle, report.signing_key)?,
    })
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
/// - `snp`: refused. Its report is the sev crate's serde form, which does not carry every byte
///   the firmware signed (TCB_VERSION reserved bytes, reserved ranges, the mitigation vectors
///   before version 5); thimble checks signatures over the bytes as written and does not
///   rebuild them.
///
/// Input is at most [`MAX_IMPORT_LEN`] bytes; the quotes and the HCL report must parse, and the
/// HCL report must hold the hardware report of the TEE named.
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
        Tee::SevSnp => Err(bad(
            "snp evidence cannot be imported: its attestation_report is the sev crate's serde \
             form of the report, which does not carry every byte the firmware signed (the \
             reserved bytes of the TCB_VERSIONs, the reserved ranges, the mitigation vectors \
             before version 5), and thimble verifies the signature over the bytes as the \
             firmware wrote them rather than over a rebuilt report; import the raw 1184-byte \
             report (snpguest or go-sev-guest form) instead"
                .to_owned(),
        )),
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
}
