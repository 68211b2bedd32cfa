// SPDX-License-Identifier: Apache-2.0
//! Microsoft Azure Attestation (MAA) request bodies from a stored bundle: `SevSnpVm` for SEV-SNP
//! evidence (`POST /attest/SevSnpVm?api-version=2022-08-01`) and `TdxVm` for TDX evidence
//! (`POST /attest/TdxVm`). Pure: a bundle (and runtime data) in, the body's JSON out; nothing
//! is sent.
//!
//! The bodies, as MAA's own clients write them (Azure/cvm-attestation-tools@1f543f7c
//! `cvm-attestation/src/attestation_client.py` `attest_platform` and
//! `cvm-attestation/src/attestation_provider.py` `create_payload`;
//! microsoft/confidential-sidecar-containers@322bc6b2 `pkg/attest/maa.go`; the MS Learn REST
//! pages "Attestation - Attest Sev Snp Vm" and "Attest Tdx Vm"):
//!
//! ```text
//! SevSnpVm: {"report": B64URL(JSON{"SnpReport": B64URL(report),
//!                                  "VcekCertChain": B64URL(PEM(VCEK) PEM(ASK) PEM(ARK))}),
//!            "runtimeData": {"data": B64URL(runtime data), "dataType": "JSON"}}
//! TdxVm:    {"quote": B64URL(quote),
//!            "runtimeData": {"data": B64URL(runtime data), "dataType": "JSON"}}
//! ```
//!
//! Base64url is written without padding (cvm-attestation-tools strips it; the sidecar keeps it;
//! MAA takes both). `dataType` is always `"JSON"`: the sidecar notes that MAA did not accept
//! `"Binary"`, so runtime data that is not JSON is refused here rather than sent mislabelled.
//!
//! MAA needs no nonce of its own: it checks that REPORT_DATA[0..32] (of the SEV-SNP report, or of
//! the quote's TD report body) is SHA-256 of the runtime data it is sent, so a stored bundle
//! satisfies it whenever it was collected with that binding. On Azure (`azure-sev-snp`,
//! `azure-tdx`) the paravisor made the binding: the runtime data is the HCL report's, and
//! [`export`] takes it from there. A `sev-snp` or `tdx` bundle does not hold runtime data; give
//! it to [`export_with_runtime_data`], which works only for evidence collected with
//! REPORT_DATA = SHA-256(runtime data) ‖ anything (`thimble collect --report-data` with that
//! digest). Both check the binding and refuse ([`ExportError::Binding`]) a body MAA would refuse.

use crate::digest::Sha256;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::IgnoredAny;

use crate::azure::HclReport;
use crate::bundle::{Bundle, EndorsementKind, Evidence};
use crate::snp::{SigningKey, SnpReport};
use crate::tdx::TdxQuote;

use super::{ExportError, Exported, Format};

/// The largest runtime data [`export_with_runtime_data`] takes. The paravisor's is about 1 KiB
/// (the HCL report's NV index is 2600 bytes); anything near this limit is not runtime data.
pub const MAX_RUNTIME_DATA_LEN: usize = 1 << 20;

/// `runtimeData.dataType`: the one type MAA is known to accept.
pub const RUNTIME_DATA_TYPE: &str = "JSON";

/// The bytes of REPORT_DATA MAA compares with SHA-256 of the runtime data.
const BOUND_LEN: usize = 32;

/// The body of `bundle` for MAA: `SevSnpVm` for `azure-sev-snp`, `TdxVm` for `azure-tdx`, with the
/// HCL report's runtime data. A `sev-snp` or `tdx` bundle carries no runtime data, so it gets
/// [`ExportError::Missing`]: use [`export_with_runtime_data`].
///
/// Checks what MAA checks of the binding (REPORT_DATA[0..32] == SHA-256(runtime data)) and
/// returns [`ExportError::Binding`] when it does not hold.
pub fn export(bundle: &Bundle) -> Result<Exported, ExportError> {
    match &bundle.evidence {
        Evidence::AzureSevSnp(e) => {
            let hcl = parse_hcl(&e.hcl_report)?;
            snp_body(bundle, hcl.hw_report(), hcl.runtime_data_bytes())
        }
        Evidence::AzureTdx(e) => {
            let hcl = parse_hcl(&e.hcl_report)?;
            tdx_body(&e.tdx_quote, hcl.runtime_data_bytes())
        }
        Evidence::SevSnp(_) | Evidence::Tdx(_) => Err(ExportError::Missing {
            format: Format::Maa,
            what: "the runtime data whose SHA-256 is REPORT_DATA[0..32] (only Azure bundles \
                   carry it; give it separately)"
                .to_owned(),
        }),
    }
}

/// The body of `bundle` for MAA with `runtime_data` as `runtimeData`: `SevSnpVm` for SEV-SNP
/// evidence (`sev-snp`, `azure-sev-snp`), `TdxVm` for TDX evidence (`tdx`, `azure-tdx`). For an
/// Azure bundle `runtime_data` replaces the HCL report's.
///
/// MAA accepts the body only when REPORT_DATA[0..32] == SHA-256(`runtime_data`), so this works
/// for evidence collected with that binding (`collect --report-data` of the digest, followed by
/// any 32 bytes); otherwise it returns [`ExportError::Binding`]. `runtime_data` must be JSON
/// (`dataType` is `"JSON"`) of at most [`MAX_RUNTIME_DATA_LEN`] bytes, else that is
/// [`ExportError::Binding`] too.
pub fn export_with_runtime_data(
    bundle: &Bundle,
    runtime_data: &[u8],
) -> Result<Exported, ExportError> {
    if runtime_data.len() > MAX_RUNTIME_DATA_LEN {
        return Err(refused(format!(
            "the runtime data is {} bytes, more than the {MAX_RUNTIME_DATA_LEN} accepted",
            runtime_data.len()
        )));
    }
    if let Err(e) = serde_json::from_slice::<IgnoredAny>(runtime_data) {
        return Err(refused(format!(
            "the runtime data is not JSON ({e}), and MAA is sent it with dataType \"JSON\", the \
             only type it is known to accept"
        )));
    }
    match &bundle.evidence {
        Evidence::SevSnp(e) => snp_body(bundle, &e.report, runtime_data),
        Evidence::Tdx(e) => tdx_body(&e.quote, runtime_data),
        Evidence::AzureSevSnp(e) => {
            let hcl = parse_hcl(&e.hcl_report)?;
            snp_body(bundle, hcl.hw_report(), runtime_data)
        }
        Evidence::AzureTdx(e) => tdx_body(&e.tdx_quote, runtime_data),
    }
}

/// `runtimeData`.
#[derive(Serialize)]
struct RuntimeData {
    data: String,
    #[serde(rename = "dataType")]
    data_type: &'static str,
}

impl RuntimeData {
    fn new(bytes: &[u8]) -> RuntimeData {
        RuntimeData {
            data: URL_SAFE_NO_PAD.encode(bytes),
            data_type: RUNTIME_DATA_TYPE,
        }
    }
}

/// The JSON inside `report` of a `SevSnpVm` body.
#[derive(Serialize)]
struct SnpEvidence {
    #[serde(rename = "SnpReport")]
    snp_report: String,
    #[serde(rename = "VcekCertChain")]
    vcek_cert_chain: String,
}

/// The `SevSnpVm` body.
#[derive(Serialize)]
struct SevSnpVmBody {
    report: String,
    #[serde(rename = "runtimeData")]
    runtime_data: RuntimeData,
}

/// The `TdxVm` body.
#[derive(Serialize)]
struct TdxVmBody {
    quote: String,
    #[serde(rename = "runtimeData")]
    runtime_data: RuntimeData,
}

fn malformed(reason: String) -> ExportError {
    ExportError::Malformed {
        format: Format::Maa,
        reason,
    }
}

/// A body MAA would refuse whatever the binding: what it checks and why it fails.
fn refused(reason: String) -> ExportError {
    ExportError::Binding {
        format: Format::Maa,
        reason,
    }
}

fn parse_hcl(bytes: &[u8]) -> Result<HclReport, ExportError> {
    HclReport::parse(bytes).map_err(|e| malformed(format!("evidence.hcl_report: {e}")))
}

/// Refuses the body unless REPORT_DATA[0..32] == SHA-256(`runtime_data`), as MAA checks.
fn check_binding(
    what: &str,
    report_data: &[u8; 64],
    runtime_data: &[u8],
) -> Result<(), ExportError> {
    let digest = Sha256::digest(runtime_data);
    if report_data[..BOUND_LEN] == digest[..] {
        return Ok(());
    }
    Err(ExportError::Binding {
        format: Format::Maa,
        reason: format!(
            "MAA accepts the evidence only when REPORT_DATA[0..32] is SHA-256 of the runtime \
             data, but the {what}'s REPORT_DATA[0..32] is {} and SHA-256 of the runtime data \
             ({} bytes) is {}",
            hex::encode(&report_data[..BOUND_LEN]),
            runtime_data.len(),
            hex::encode(digest)
        ),
    })
}

/// The DER of the bundle's first endorsement of `kind`, if it has one.
fn endorsement_der(bundle: &Bundle, kind: EndorsementKind) -> Result<Option<Vec<u8>>, ExportError> {
    super::endorsement_der(bundle, kind, Format::Maa)
}

/// A certificate as PEM, lines of 64 characters, as THIM and KDS serve them.
fn pem(der: &[u8]) -> String {
    crate::cert_file::pem_encode("CERTIFICATE", der)
}

/// `VcekCertChain`: PEM(VCEK) ‖ PEM(ASK) ‖ PEM(ARK), as THIM's `vcekCert` + `certificateChain`.
/// A VLEK-signed report gets PEM(VLEK) ‖ PEM(ASVK) ‖ PEM(ARK) (MAA is not known to accept VLEK
/// reports; the chain is at least the one that signed).
pub(crate) fn cert_chain_pem(bundle: &Bundle, report: &SnpReport) -> Result<String, ExportError> {
    let (key, issuer) = match report.signing_key {
        SigningKey::Vlek => (EndorsementKind::Vlek, EndorsementKind::Asvk),
        _ => (EndorsementKind::Vcek, EndorsementKind::Ask),
    };
    let mut chain = String::new();
    for kind in [key, issuer, EndorsementKind::Ark] {
        let der = endorsement_der(bundle, kind)?.ok_or_else(|| ExportError::Missing {
            format: Format::Maa,
            what: format!(
                "the {kind} certificate (VcekCertChain is PEM of the {key}, {issuer} and ARK)"
            ),
        })?;
        chain.push_str(&pem(&der));
    }
    Ok(chain)
}

fn to_json<T: Serialize>(body: &T) -> Result<Exported, ExportError> {
    let mut out = serde_json::to_vec(body).map_err(|e| malformed(e.to_string()))?;
    out.push(b'\n');
    Ok(Exported::File(out))
}

fn snp_body(bundle: &Bundle, report: &[u8], runtime_data: &[u8]) -> Result<Exported, ExportError> {
    let parsed =
        SnpReport::parse(report).map_err(|e| malformed(format!("the SEV-SNP report: {e}")))?;
    check_binding("SEV-SNP report", &parsed.report_data, runtime_data)?;
    let chain = cert_chain_pem(bundle, &parsed)?;
    let inner = serde_json::to_vec(&SnpEvidence {
        snp_report: URL_SAFE_NO_PAD.encode(report),
        vcek_cert_chain: URL_SAFE_NO_PAD.encode(chain.as_bytes()),
    })
    .map_err(|e| malformed(e.to_string()))?;
    to_json(&SevSnpVmBody {
        report: URL_SAFE_NO_PAD.encode(inner),
        runtime_data: RuntimeData::new(runtime_data),
    })
}

fn tdx_body(quote: &[u8], runtime_data: &[u8]) -> Result<Exported, ExportError> {
    let parsed = TdxQuote::parse(quote).map_err(|e| malformed(format!("the TDX quote: {e}")))?;
    check_binding("TDX quote", &parsed.body.report_data, runtime_data)?;
    // The quote as received, trailing bytes included: MAA gets what the quoting service gave.
    to_json(&TdxVmBody {
        quote: URL_SAFE_NO_PAD.encode(quote),
        runtime_data: RuntimeData::new(runtime_data),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_wraps_at_64_columns() {
        let text = pem(&[0xab; 100]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        // 100 bytes are 136 base64 characters: two full lines and 8 more.
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines[2].len(), 64);
        assert_eq!(lines[3].len(), 8);
        assert_eq!(lines[4], "-----END CERTIFICATE-----");
        assert_eq!(
            crate::cert_file::pem_certificates(&text).unwrap(),
            vec![vec![0xab; 100]]
        );
        // An exact multiple of 64 characters leaves no empty line.
        assert_eq!(pem(&[1; 48]).lines().count(), 3);
    }

    #[test]
    fn binding_names_both_digests() {
        let mut rd = [0u8; 64];
        rd[..32].copy_from_slice(&Sha256::digest(b"{}"));
        assert_eq!(check_binding("x", &rd, b"{}"), Ok(()));
        let Err(ExportError::Binding { reason, .. }) = check_binding("x", &rd, b"{ }") else {
            panic!("a different runtime data must not bind");
        };
        assert!(reason.contains(&hex::encode(&rd[..32])), "{reason}");
        assert!(
            reason.contains(&hex::encode(Sha256::digest(b"{ }"))),
            "{reason}"
        );
    }
}
