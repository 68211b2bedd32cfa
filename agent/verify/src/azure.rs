// SPDX-License-Identifier: AGPL-3.0-or-later
//! Verifying Azure paravisor evidence: an HCL report (vTPM NV `0x01400001`) with its hardware
//! endorsements, and a vTPM quote.
//!
//! The chain of trust, checked in this order and stopping at the first authenticity failure:
//! 1. the hardware report: the SEV-SNP report in the HCL report under its VCEK chain
//!    ([`crate::snp::verify_report`]), or, for TDX, the quote made from the HCL report's TD report
//!    under Intel's collateral ([`crate::tdx::verify_quote`]) and the TD report matching the quote
//!    body field by field (the TD report itself is only MAC-ed, the quote is what is signed);
//! 2. the HCL binding: REPORT_DATA = hash(runtime data as received) ‖ zeros, so the runtime data,
//!    and with it the vTPM attestation key `HCLAkPub`, is the paravisor's;
//! 3. the TPM quote signature (RSASSA-PKCS1-v1_5, SHA-256) under `HCLAkPub`, over the
//!    `TPMS_ATTEST` as received;
//! 4. the PCR values given with the quote hash to its `pcrDigest`.
//!
//! The quote's `qualifiedSigner` (the AK's TPM name) is reported, not checked: computing it needs
//! the AK's `TPMT_PUBLIC`, which the runtime data does not carry; the signature under `HCLAkPub`
//! is what ties the quote to the key the hardware report vouches for.
//!
//! Policy, every violation reported: the hardware policies ([`crate::Policy`],
//! [`crate::tdx::TdxPolicy`]), the nonce in the quote's `extraData`, and the presence of a quote
//! at all (the paravisor makes the HCL report at boot: only a quote over a fresh nonce says the
//! VM is running now).
//!
//! On Azure the TD runs under the paravisor with all TD attributes zero, so without
//! SEPT_VE_DISABLE; the default TDX policy does not require it (it warns).

use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use serde_json::{Map, Value, json};
use thimble_evidence::azure::{HclReport, HclReportType, QuoteClaims, RsaPublicKey, TpmQuote};
use thimble_evidence::snp::{AmdCert, SnpReport};
use thimble_evidence::tdx::{TdReport, TdxQuote};
use thimble_evidence::time_fmt::format_unix;

use crate::options::{Options, Policy};
use crate::outcome::{ErrorClass, Outcome, VerifyError};
use crate::roots::{IntelRoots, TrustedRoots};
use crate::snp::verify_report;
use crate::tdx::{TdxCollateral, TdxPolicy, verify_quote};

/// What vouches for the hardware report inside the HCL report.
#[derive(Debug, Clone)]
pub enum HardwareEndorsements {
    /// The VCEK (or VLEK) and its chain, from THIM or KDS, in any order.
    Snp { certs: Vec<AmdCert> },
    /// The TDX quote made from the HCL report's TD report (IMDS `/acc/tdquote`) and Intel's
    /// collateral for it.
    Tdx {
        quote: Vec<u8>,
        collateral: TdxCollateral,
    },
}

/// The roots an Azure verification trusts: AMD's ARKs for SEV-SNP, Intel's root for TDX.
#[derive(Debug, Clone, Default)]
pub struct AzureRoots {
    pub amd: TrustedRoots,
    pub intel: IntelRoots,
}

impl AzureRoots {
    /// The pinned vendor roots.
    pub fn pinned() -> AzureRoots {
        AzureRoots {
            amd: TrustedRoots::amd(),
            intel: IntelRoots::intel(),
        }
    }
}

/// What authentic Azure evidence must also satisfy.
///
/// `snp.report_data` and `tdx.report_data` are not used: on Azure the paravisor sets REPORT_DATA
/// to the runtime data digest, which the HCL binding checks. The verifier's nonce goes in
/// `expected_nonce` and is checked in the TPM quote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AzurePolicy {
    pub snp: Policy,
    pub tdx: TdxPolicy,
    /// The nonce the TPM quote's `extraData` must hold.
    pub expected_nonce: Option<Vec<u8>>,
    /// Accept an HCL report without a TPM quote, with a warning. The report is made at boot, so
    /// alone it proves what the VM booted as, not that it is running now, and no PCR is covered.
    pub allow_stale_report: bool,
}

fn fatal(out: &mut Outcome, e: VerifyError) {
    // Malformed and authenticity errors go first: they are why the rest was not checked.
    out.errors.insert(0, e);
}

/// Verifies the bytes of NV index `0x01400001`, the vTPM quote and the hardware endorsements at
/// `at` (seconds since the epoch).
pub fn verify_hcl(
    hcl_bytes: &[u8],
    tpm_quote: Option<&TpmQuote>,
    hardware: &HardwareEndorsements,
    at: i64,
    roots: &AzureRoots,
    policy: &AzurePolicy,
) -> Outcome {
    let tee = |t: HclReportType| match t {
        HclReportType::Snp => "azure-sev-snp",
        HclReportType::Tdx => "azure-tdx",
    };
    let given = match hardware {
        HardwareEndorsements::Snp { .. } => HclReportType::Snp,
        HardwareEndorsements::Tdx { .. } => HclReportType::Tdx,
    };
    let mut out = Outcome::new(tee(given), format_unix(at));
    let mut claims = Map::new();
    let hcl = match HclReport::parse(hcl_bytes) {
        Ok(h) => h,
        Err(e) => {
            fatal(
                &mut out,
                VerifyError::malformed("malformed-hcl-report", e.to_string()),
            );
            return out.finish();
        }
    };
    out.tee = tee(hcl.report_type());
    claims.insert(
        "hcl".into(),
        json!({
            "header": hcl.header,
            "request_data": hcl.request_data,
            "runtime_data_digest": hex::encode(hcl.runtime_data_digest()),
        }),
    );
    if let Err(e) = check(
        &hcl,
        tpm_quote,
        hardware,
        at,
        roots,
        policy,
        &mut out,
        &mut claims,
    ) {
        fatal(&mut out, e);
    }
    out.claims = Some(Value::Object(claims));
    out.finish()
}

/// The steps of the module documentation; an `Err` is the authenticity or malformed error that
/// stopped them, policy errors are pushed to `out` as they are found.
#[expect(
    clippy::too_many_arguments,
    reason = "the inputs of verify_hcl and its two outputs"
)]
fn check(
    hcl: &HclReport,
    tpm_quote: Option<&TpmQuote>,
    hardware: &HardwareEndorsements,
    at: i64,
    roots: &AzureRoots,
    policy: &AzurePolicy,
    out: &mut Outcome,
    claims: &mut Map<String, Value>,
) -> Result<(), VerifyError> {
    // 1. The hardware report.
    let report_data = match (hcl.report_type(), hardware) {
        (HclReportType::Snp, HardwareEndorsements::Snp { certs }) => {
            let opts = Options {
                at,
                roots: roots.amd.clone(),
                policy: Policy {
                    report_data: None,
                    ..policy.snp.clone()
                },
            };
            let hw = verify_report(hcl.hw_report(), certs, None, &opts);
            adopt_hardware(out, claims, hw)?;
            // verify_report parsed these very bytes without error.
            SnpReport::parse(hcl.hw_report())
                .map_err(|e| VerifyError::malformed("malformed-report", e.to_string()))?
                .report_data
        }
        (HclReportType::Tdx, HardwareEndorsements::Tdx { quote, collateral }) => {
            let tdx_policy = TdxPolicy {
                report_data: None,
                ..policy.tdx.clone()
            };
            let hw = verify_quote(quote, collateral, at, &roots.intel, &tdx_policy);
            adopt_hardware(out, claims, hw)?;
            let quote = TdxQuote::parse(quote)
                .map_err(|e| VerifyError::malformed("malformed-quote", e.to_string()))?;
            let td = TdReport::parse(hcl.hw_report())
                .map_err(|e| VerifyError::malformed("malformed-hcl-report", e.to_string()))?;
            let differ = td.mismatches(&quote.body);
            if !differ.is_empty() {
                return Err(VerifyError::authenticity(
                    "td-report-mismatch",
                    format!(
                        "the quote was not made from the HCL report's TD report: {} differ",
                        differ.join(", ")
                    ),
                ));
            }
            quote.body.report_data
        }
        (t, _) => {
            return Err(VerifyError::authenticity(
                "missing-endorsement",
                format!(
                    "the HCL report holds a {} report but the endorsements given are for {}",
                    kind(t),
                    match hardware {
                        HardwareEndorsements::Snp { .. } => "SEV-SNP (AMD certificates)",
                        HardwareEndorsements::Tdx { .. } => "TDX (a quote and Intel collateral)",
                    }
                ),
            ));
        }
    };

    // 2. The HCL binding.
    let expected = hcl.expected_report_data();
    if report_data != expected {
        let n = hcl.runtime_data_digest().len();
        return Err(VerifyError::authenticity(
            "hcl-binding",
            format!(
                "REPORT_DATA {} is not {:?}(runtime data) {} followed by zeros: the runtime data (and the attestation key in it) is not the one the hardware report vouches for",
                hex::encode(report_data),
                hcl.request_data.report_data_hash_type,
                hex::encode(&expected[..n])
            ),
        ));
    }
    let runtime = hcl
        .runtime_data()
        .map_err(|e| VerifyError::malformed("malformed-runtime-data", e.to_string()))?;
    claims.insert(
        "runtime_data".into(),
        serde_json::to_value(&runtime).unwrap_or(Value::Null),
    );

    // 3 and 4. The TPM quote.
    let Some(q) = tpm_quote else {
        if policy.allow_stale_report {
            out.warnings.push("no TPM quote: the HCL report was made at boot, so the evidence says what the VM booted as, not that it runs now, and covers no PCR; accepted because stale reports are allowed".into());
        } else {
            out.errors.push(VerifyError::policy(
                "missing-tpm-quote",
                "no TPM quote: the HCL report was made at boot and proves nothing about the VM now; a quote by HCLAkPub over a fresh nonce is needed (or allow stale reports)",
            ));
        }
        if policy.expected_nonce.is_some() {
            out.errors.push(VerifyError::policy(
                "nonce-mismatch",
                "a nonce was expected but there is no TPM quote to carry it",
            ));
        }
        return Ok(());
    };
    let ak = runtime
        .ak_pub()
        .map_err(|e| VerifyError::malformed("malformed-runtime-data", e.to_string()))?;
    if !verify_rsa_pkcs1_sha256(ak, &q.message, &q.signature) {
        return Err(VerifyError::authenticity(
            "tpm-quote-signature",
            format!(
                "TPM quote signature does not verify under HCLAkPub (RSA-{}, PKCS#1 v1.5, SHA-256)",
                ak.bits()
            ),
        ));
    }
    let attest = q
        .attest()
        .map_err(|e| VerifyError::malformed("malformed-tpm-quote", e.to_string()))?;
    let computed = attest
        .compute_pcr_digest(&q.pcrs)
        .map_err(|e| VerifyError::authenticity("tpm-pcr-digest", e.to_string()))?;
    if computed[..] != attest.pcr_digest[..] {
        return Err(VerifyError::authenticity(
            "tpm-pcr-digest",
            format!(
                "the PCR values hash to {} but the quote's pcrDigest is {}: they are not the values quoted",
                hex::encode(computed),
                hex::encode(&attest.pcr_digest)
            ),
        ));
    }
    let quote_claims = QuoteClaims::new(&attest, &q.pcrs);
    if quote_claims.pcrs.len() < q.pcrs.len() {
        out.warnings.push(format!(
            "{} PCR values were given but the quote covers only PCRs {:?}; the others were ignored",
            q.pcrs.len(),
            quote_claims.pcrs.keys().collect::<Vec<_>>()
        ));
    }
    claims.insert(
        "tpm_quote".into(),
        serde_json::to_value(&quote_claims).unwrap_or(Value::Null),
    );
    match &policy.expected_nonce {
        Some(n) if n != &attest.extra_data => out.errors.push(VerifyError::policy(
            "nonce-mismatch",
            format!(
                "TPM quote extraData {} is not the expected nonce {}",
                hex::encode(&attest.extra_data),
                hex::encode(n)
            ),
        )),
        Some(_) => {}
        None => out.warnings.push(format!(
            "no nonce was expected: the TPM quote's extraData ({}) was not checked, so the evidence may be a replay",
            hex::encode(&attest.extra_data)
        )),
    }
    Ok(())
}

fn kind(t: HclReportType) -> &'static str {
    match t {
        HclReportType::Snp => "SEV-SNP",
        HclReportType::Tdx => "TDX",
    }
}

/// Takes the hardware verification's findings into the Azure outcome; fails with its first
/// malformed or authenticity error, since nothing after it could be trusted.
fn adopt_hardware(
    out: &mut Outcome,
    claims: &mut Map<String, Value>,
    hw: Outcome,
) -> Result<(), VerifyError> {
    if let Some(c) = hw.claims {
        claims.insert("hardware".into(), c);
    }
    out.warnings.extend(hw.warnings);
    out.product = hw.product;
    out.signer = hw.signer;
    out.simulated |= hw.simulated;
    out.chain = hw.chain;
    out.tcb_status = hw.tcb_status;
    out.advisory_ids = hw.advisory_ids;
    let (fatal, policy): (Vec<_>, Vec<_>) = hw
        .errors
        .into_iter()
        .partition(|e| e.class != ErrorClass::Policy);
    out.errors.extend(policy);
    match fatal.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// RSASSA-PKCS1-v1_5 with SHA-256 under a JWK RSA key.
fn verify_rsa_pkcs1_sha256(key: &RsaPublicKey, message: &[u8], signature: &[u8]) -> bool {
    // ring wants minimal big-endian integers; a JWK should have no leading zeros (RFC 7518
    // §6.3.1.1) but one that has them is the same key.
    let strip = |b: &[u8]| -> Vec<u8> {
        let i = b.iter().position(|&x| x != 0).unwrap_or(b.len());
        b[i..].to_vec()
    };
    RsaPublicKeyComponents {
        n: strip(&key.n),
        e: strip(&key.e),
    }
    .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
    .is_ok()
}
