// SPDX-License-Identifier: Apache-2.0
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
//! is what ties the quote to the key the hardware report vouches for. The quote must select the
//! SHA-256 bank once, and exactly the PCRs whose values are given: a value the quote does not
//! cover would be unauthenticated.
//!
//! Policy, every violation reported:
//! - **the paravisor**: the chain above proves that *some* guest code chose the runtime data, not
//!   that Azure's paravisor did. Any SEV-SNP guest or TD can put the hash of its own runtime data
//!   (with its own "attestation key") into REPORT_DATA. What makes the hardware report the
//!   paravisor's is its identity, which the verifier must trust: on SEV-SNP, the report was made
//!   at VMPL 0 (where the paravisor runs; a guest above it cannot request a VMPL 0 report) and
//!   its ID block was signed by one of Microsoft's paravisor keys (ID_KEY_DIGEST, or
//!   AUTHOR_KEY_DIGEST with AUTHOR_KEY_EN); on TDX, the TD's MRTD is a known paravisor build
//!   ([`ParavisorPolicy`]);
//! - the hardware policies ([`crate::Policy`], [`crate::tdx::TdxPolicy`]);
//! - the nonce in the quote's `extraData`, and the presence of a quote at all (the paravisor
//!   makes the HCL report at boot: only a quote over a fresh nonce says the VM is running now);
//! - the runtime data's `user-data`, when the verifier expects a value there
//!   ([`ExpectedUserData`]): it shows that the hardware report itself was made for this request.
//!
//! On Azure the TD runs under the paravisor with all TD attributes zero, so without
//! SEPT_VE_DISABLE; the default TDX policy does not require it (it warns).

use serde_json::{Map, Value, json};
use thimble_evidence::azure::tpm::{TPM_ALG_SHA256, TpmsAttest};
use thimble_evidence::azure::{HclReport, HclReportType, QuoteClaims, TpmQuote};
use thimble_evidence::report_data::{self, REPORT_DATA_LEN};
use thimble_evidence::snp::{AmdCert, SnpReport};
use thimble_evidence::tdx::{TdReport, TdxQuote};
use thimble_evidence::time_fmt::format_unix;

use crate::options::{Options, Policy};
use crate::outcome::{Code, ErrorClass, Outcome, VerifyError};
use crate::roots::{IntelRoots, TrustedRoots};
use crate::signature::verify_rsa_pkcs1_sha256;
use crate::snp::verify_report_with_crls;
use crate::tdx::{TdxCollateral, TdxPolicy, verify_quote};

/// What vouches for the hardware report inside the HCL report.
#[derive(Debug, Clone)]
pub enum HardwareEndorsements {
    /// The VCEK (or VLEK) and its chain, from THIM or KDS, in any order, and AMD CRL
    /// candidates (DER).
    Snp {
        /// The certificates, parsed (unverified).
        certs: Vec<AmdCert>,
        /// AMD CRL candidates, DER.
        crls: Vec<Vec<u8>>,
    },
    /// The TDX quote made from the HCL report's TD report (IMDS `/acc/tdquote`) and Intel's
    /// collateral for it.
    Tdx {
        /// The quote as received.
        quote: Vec<u8>,
        /// TCB info, QE identity, CRLs and issuer chains for it.
        collateral: TdxCollateral,
    },
}

/// The roots an Azure verification trusts: AMD's ARKs for SEV-SNP, Intel's root for TDX.
#[derive(Debug, Clone, Default)]
pub struct AzureRoots {
    /// The AMD roots (ARKs), for SEV-SNP.
    pub amd: TrustedRoots,
    /// The Intel roots, for TDX.
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

/// A paravisor identity trusted by default, with where it was seen.
#[derive(Debug, Clone, Copy)]
pub struct KnownParavisor {
    /// 48 bytes, hex.
    pub value: &'static str,
    /// Where the value was seen, for claims and messages.
    pub label: &'static str,
}

/// Digests of the keys that sign the ID block of Azure's SEV-SNP paravisor, as published in the
/// reports it makes (`x-ms-sevsnpvm-idkeydigest` in Azure Attestation tokens). Microsoft rotates
/// the key about once a year and publishes no list; these are the two in current use, each seen
/// in genuine Azure HCL reports (see docs/azure.md for the sources and the retired keys).
pub const PINNED_SNP_PARAVISOR_KEYS: [KnownParavisor; 2] = [
    KnownParavisor {
        value: "942fd93ebde6ea7a96efadeafc60f1c6b3d10e703b1dafd7555b92f7f3d32d0e006767648cba5b102af3d65756af4177",
        label: "Azure paravisor ID key (seen from 2025 on Milan and Genoa)",
    },
    KnownParavisor {
        value: "0356215882a825279a85b300b0b742931d113bf7e32dde2e50ffde7ec743ca491ecdd7f336dc28a6e0b2bb57af7a44a3",
        label: "Azure paravisor ID key (seen 2023 to 2025)",
    },
];

/// MRTDs of Azure's TDX paravisor builds seen in public evidence. The MRTD changes with every
/// paravisor release and Microsoft publishes no list, so this can never be complete: a current
/// Azure TD is likely to need its MRTD given by the verifier (docs/azure.md).
pub const PINNED_TDX_PARAVISOR_MRTDS: [KnownParavisor; 3] = [
    KnownParavisor {
        value: "024a32b070383331181619fa387cb4d55d1e38879f989933055ccad5bc2db795d1737b66205949d15469dc8c1ba7ab7b",
        label: "Azure TDX paravisor build in Trustee's az-tdx-vtpm test evidence",
    },
    KnownParavisor {
        value: "75f3acc2e1dfc3acf404d7eaa69a2eefcd0475a0dd6516ef5ba3cb83399c61b4aa1c638e3622bb650a514bfc6e858886",
        label: "Azure TDX paravisor build in azure-cvm-tooling's test HCL report (2023)",
    },
    KnownParavisor {
        value: "5be56d418d33661a6c21da77c9503a07e430b35eb92a0bd042a6b3c4e79b3c82bb1c594e770d0d129a0724669f1e953f",
        label: "Azure TDX paravisor build in Microsoft's Azure Attestation TDX token example",
    },
];

/// A trusted paravisor identity: a 48-byte value and a label for the claims and messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedParavisor {
    /// The ID key digest (SEV-SNP) or MRTD (TDX).
    pub value: [u8; 48],
    /// A name for it in claims and messages.
    pub label: String,
}

impl TrustedParavisor {
    fn pinned(known: &[KnownParavisor]) -> Vec<TrustedParavisor> {
        known
            .iter()
            .filter_map(|k| {
                // The pinned strings are checked by a test below; one that did not decode would
                // be dropped, which fails closed.
                let value = hex::decode(k.value).ok()?.try_into().ok()?;
                Some(TrustedParavisor {
                    value,
                    label: k.label.to_string(),
                })
            })
            .collect()
    }
}

/// The paravisors a verifier trusts. [`Default`] is the pinned Microsoft identities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParavisorPolicy {
    /// SEV-SNP: digests of keys that sign the paravisor's ID block (matched against
    /// ID_KEY_DIGEST, and against AUTHOR_KEY_DIGEST when AUTHOR_KEY_EN is set).
    pub snp_keys: Vec<TrustedParavisor>,
    /// TDX: the paravisor's MRTDs.
    pub tdx_mrtds: Vec<TrustedParavisor>,
    /// Accept a paravisor that is none of these, with a warning.
    pub allow_unknown: bool,
}

impl Default for ParavisorPolicy {
    fn default() -> Self {
        ParavisorPolicy::pinned()
    }
}

impl ParavisorPolicy {
    /// The pinned identities ([`PINNED_SNP_PARAVISOR_KEYS`], [`PINNED_TDX_PARAVISOR_MRTDS`]).
    pub fn pinned() -> ParavisorPolicy {
        ParavisorPolicy {
            snp_keys: TrustedParavisor::pinned(&PINNED_SNP_PARAVISOR_KEYS),
            tdx_mrtds: TrustedParavisor::pinned(&PINNED_TDX_PARAVISOR_MRTDS),
            allow_unknown: false,
        }
    }

    /// No identity at all: the verifier supplies every one.
    pub fn empty() -> ParavisorPolicy {
        ParavisorPolicy {
            snp_keys: Vec::new(),
            tdx_mrtds: Vec::new(),
            allow_unknown: false,
        }
    }
}

/// What the HCL report's `user-data` must hold: evidence that the hardware report itself, not
/// only the TPM quote, was made for this request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedUserData {
    /// The verifier's nonce, bound as `thimble collect` binds it (SHA-512(nonce)) or as tools
    /// that write the nonce itself do (the nonce, zero-padded to 64 bytes).
    Nonce(Vec<u8>),
    /// Exactly these bytes (zero-padded to 64), for evidence from a tool with its own binding.
    Exact(Vec<u8>),
}

impl ExpectedUserData {
    fn accepts(&self, user_data: &[u8]) -> bool {
        let padded = |v: &[u8]| -> Option<Vec<u8>> {
            (v.len() <= REPORT_DATA_LEN).then(|| {
                let mut p = v.to_vec();
                p.resize(REPORT_DATA_LEN, 0);
                p
            })
        };
        let padded_ud = padded(user_data);
        match self {
            ExpectedUserData::Nonce(n) => {
                user_data == report_data::from_nonce(n).as_slice()
                    || (padded(n).is_some() && padded(n) == padded_ud)
            }
            ExpectedUserData::Exact(v) => padded(v).is_some() && padded(v) == padded_ud,
        }
    }

    fn describe(&self) -> String {
        match self {
            ExpectedUserData::Nonce(n) => format!(
                "SHA-512 of the nonce {} or the nonce itself",
                hex::encode(n)
            ),
            ExpectedUserData::Exact(v) => format!("the expected {}", hex::encode(v)),
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
    /// The SEV-SNP policy, for the report in an SEV-SNP HCL report (its `report_data` unused).
    pub snp: Policy,
    /// The TDX policy, for the quote of a TDX HCL report (its `report_data` unused).
    pub tdx: TdxPolicy,
    /// The exact `extraData` the TPM quote must hold, compared as is: the verifier's nonce as
    /// [`report_data::tpm_qualifying_data`] makes it (the nonce, or SHA-512 of a nonce over 64
    /// bytes), not the raw nonce.
    pub expected_nonce: Option<Vec<u8>>,
    /// What the runtime data's `user-data` must hold; `None` checks nothing there.
    pub expected_user_data: Option<ExpectedUserData>,
    /// Accept an HCL report without a TPM quote, or one whose `user-data` is not the expected
    /// one, with a warning. The report may then date from boot: alone it proves what the VM
    /// booted as, not that it is running now.
    pub allow_stale_report: bool,
    /// The paravisor identities trusted.
    pub paravisor: ParavisorPolicy,
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
                VerifyError::new(Code::MalformedHclReport, e.to_string()),
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
        (HclReportType::Snp, HardwareEndorsements::Snp { certs, crls }) => {
            let opts = Options {
                at,
                roots: roots.amd.clone(),
                policy: Policy {
                    report_data: None,
                    ..policy.snp.clone()
                },
            };
            let crls: Vec<&[u8]> = crls.iter().map(Vec::as_slice).collect();
            let hw = verify_report_with_crls(hcl.hw_report(), certs, &crls, None, &opts);
            adopt_hardware(out, claims, hw)?;
            // verify_report parsed these very bytes without error.
            let report = SnpReport::parse(hcl.hw_report())
                .map_err(|e| VerifyError::new(Code::MalformedReport, e.to_string()))?;
            snp_paravisor(&report, &policy.paravisor, out, claims);
            report.report_data
        }
        (HclReportType::Tdx, HardwareEndorsements::Tdx { quote, collateral }) => {
            let tdx_policy = TdxPolicy {
                report_data: None,
                ..policy.tdx.clone()
            };
            let hw = verify_quote(quote, collateral, at, &roots.intel, &tdx_policy);
            adopt_hardware(out, claims, hw)?;
            let quote = TdxQuote::parse(quote)
                .map_err(|e| VerifyError::new(Code::MalformedQuote, e.to_string()))?;
            let td = TdReport::parse(hcl.hw_report())
                .map_err(|e| VerifyError::new(Code::MalformedHclReport, e.to_string()))?;
            let differ = td.mismatches(&quote.body);
            if !differ.is_empty() {
                return Err(VerifyError::new(
                    Code::TdReportMismatch,
                    format!(
                        "the quote was not made from the HCL report's TD report: {} differ",
                        differ.join(", ")
                    ),
                ));
            }
            tdx_paravisor(&quote.body.mrtd, &policy.paravisor, out, claims);
            quote.body.report_data
        }
        (t, _) => {
            return Err(VerifyError::new(
                Code::MissingEndorsement,
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
        return Err(VerifyError::new(
            Code::HclBinding,
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
        .map_err(|e| VerifyError::new(Code::MalformedRuntimeData, e.to_string()))?;
    claims.insert(
        "runtime_data".into(),
        serde_json::to_value(&runtime).unwrap_or(Value::Null),
    );

    // 3 and 4. The TPM quote.
    let Some(q) = tpm_quote else {
        if policy.allow_stale_report {
            out.warnings.push("no TPM quote: the HCL report was made at boot, so the evidence says what the VM booted as, not that it runs now, and covers no PCR; accepted because stale reports are allowed".into());
        } else {
            out.errors.push(VerifyError::new(
                Code::MissingTpmQuote,
                "no TPM quote: the HCL report was made at boot and proves nothing about the VM now; a quote by HCLAkPub over a fresh nonce is needed (or allow stale reports)",
            ));
        }
        if policy.expected_nonce.is_some() {
            out.errors.push(VerifyError::new(
                Code::NonceMismatch,
                "a nonce was expected but there is no TPM quote to carry it",
            ));
        }
        return Ok(());
    };
    let ak = runtime
        .ak_pub()
        .map_err(|e| VerifyError::new(Code::MalformedRuntimeData, e.to_string()))?;
    if verify_rsa_pkcs1_sha256(&ak.n, &ak.e, &q.message, &q.signature).is_err() {
        return Err(VerifyError::new(
            Code::TpmQuoteSignature,
            format!(
                "TPM quote signature does not verify under HCLAkPub (RSA-{}, PKCS#1 v1.5, SHA-256)",
                ak.bits()
            ),
        ));
    }
    let attest = q
        .attest()
        .map_err(|e| VerifyError::new(Code::MalformedTpmQuote, e.to_string()))?;
    check_pcr_selection(&attest, q.pcrs.len())?;
    let computed = attest
        .compute_pcr_digest(&q.pcrs)
        .map_err(|e| VerifyError::new(Code::TpmPcrDigest, e.to_string()))?;
    if computed[..] != attest.pcr_digest[..] {
        return Err(VerifyError::new(
            Code::TpmPcrDigest,
            format!(
                "the PCR values hash to {} but the quote's pcrDigest is {}: they are not the values quoted",
                hex::encode(computed),
                hex::encode(&attest.pcr_digest)
            ),
        ));
    }
    let quote_claims = QuoteClaims::new(&attest, &q.pcrs);
    claims.insert(
        "tpm_quote".into(),
        serde_json::to_value(&quote_claims).unwrap_or(Value::Null),
    );
    let nonce_ok = match &policy.expected_nonce {
        Some(n) if n != &attest.extra_data => {
            out.errors.push(VerifyError::new(
                Code::NonceMismatch,
                format!(
                    "TPM quote extraData {} is not the expected nonce {}: the evidence was made for another request",
                    hex::encode(&attest.extra_data),
                    hex::encode(n)
                ),
            ));
            false
        }
        Some(_) => true,
        None => {
            out.warnings.push(format!(
                "no nonce was expected: the TPM quote's extraData ({}) was not checked, so the evidence may be a replay",
                hex::encode(&attest.extra_data)
            ));
            true
        }
    };
    // With a wrong nonce the evidence is simply not for this request; saying that its hardware
    // report is stale as well would only confuse.
    if nonce_ok {
        check_user_data(runtime.user_data.as_deref(), policy, out, claims);
    }
    Ok(())
}

/// The quote must cover exactly the PCRs given (indices 0 to `given - 1`), each once, from one
/// SHA-256 selection: a value it does not cover is not authenticated by it, and a bank selected
/// twice or an empty selection makes "the quoted PCRs" ambiguous.
fn check_pcr_selection(attest: &TpmsAttest, given: usize) -> Result<(), VerifyError> {
    let fail = |m: String| Err(VerifyError::new(Code::TpmPcrSelection, m));
    let banks: Vec<u16> = attest.pcr_select.iter().map(|s| s.hash).collect();
    if banks.is_empty() {
        return fail("the TPM quote selects no PCR bank, so it covers no PCR".into());
    }
    if let Some(b) = banks.iter().find(|&&b| b != TPM_ALG_SHA256) {
        return fail(format!(
            "the TPM quote selects PCR bank {b:#06x}; only SHA-256 (0x000b) is verified"
        ));
    }
    if banks.len() > 1 {
        return fail(format!(
            "the TPM quote selects the SHA-256 bank {} times",
            banks.len()
        ));
    }
    let selected = attest.pcr_select[0].indices();
    if selected.is_empty() {
        return fail("the TPM quote's PCR selection is empty: it covers no PCR".into());
    }
    let expected: Vec<u32> = (0..given as u32).collect();
    if selected != expected {
        return fail(format!(
            "the TPM quote covers PCRs {selected:?} but {given} PCR values (PCRs 0 to {}) are given: every value given must be covered, each once",
            given.saturating_sub(1)
        ));
    }
    Ok(())
}

/// The runtime data's `user-data` against what the verifier expects there.
fn check_user_data(
    user_data: Option<&[u8]>,
    policy: &AzurePolicy,
    out: &mut Outcome,
    claims: &mut Map<String, Value>,
) {
    let Some(expected) = &policy.expected_user_data else {
        return;
    };
    let fresh = user_data.is_some_and(|ud| expected.accepts(ud));
    claims.insert("hcl_report_fresh".into(), Value::Bool(fresh));
    if fresh {
        return;
    }
    let seen = match user_data {
        None => "has no user-data".to_string(),
        Some(ud) if ud.iter().all(|&b| b == 0) => {
            "user-data is zero: the paravisor made it at boot, before any request".to_string()
        }
        Some(ud) => format!("user-data is {}", hex::encode(ud)),
    };
    let message = format!(
        "the HCL report's {seen}, not {}: the hardware report was not made for this request and its claims may date from boot (the TPM quote is fresh)",
        expected.describe()
    );
    if policy.allow_stale_report {
        out.warnings.push(format!(
            "{message}; accepted because stale reports are allowed"
        ));
    } else {
        out.errors.push(VerifyError::new(
            Code::StaleHclReport,
            format!(
                "{message}; pass --hcl-user-data with the value the collecting tool wrote there, or --allow-stale-report to accept a report made before the request"
            ),
        ));
    }
}

/// The paravisor of an SEV-SNP HCL report: VMPL 0 and a trusted ID block signer.
fn snp_paravisor(
    report: &SnpReport,
    trusted: &ParavisorPolicy,
    out: &mut Outcome,
    claims: &mut Map<String, Value>,
) {
    if report.vmpl != 0 {
        out.errors.push(VerifyError::new(
            Code::ParavisorVmpl,
            format!(
                "the hardware report was made at VMPL {}, but Azure's paravisor runs at VMPL 0: a guest above the paravisor requested it, so it cannot vouch for the vTPM",
                report.vmpl
            ),
        ));
    }
    let by_id = trusted
        .snp_keys
        .iter()
        .find(|k| k.value == report.id_key_digest)
        .map(|k| ("id-key", k));
    let by_author = || {
        trusted
            .snp_keys
            .iter()
            .find(|k| report.author_key_en && k.value == report.author_key_digest)
            .map(|k| ("author-key", k))
    };
    let matched = by_id.or_else(by_author);
    claims.insert(
        "paravisor".into(),
        json!({
            "id_key_digest": hex::encode(report.id_key_digest),
            "author_key_digest": report.author_key_en.then(|| hex::encode(report.author_key_digest)),
            "matched": matched.map(|(how, _)| how),
            "label": matched.map(|(_, k)| k.label.clone()),
        }),
    );
    if matched.is_some() {
        return;
    }
    let seen = hex::encode(report.id_key_digest);
    let what = format!(
        "the ID_KEY_DIGEST {seen}{} is not one of the {} trusted paravisor signing keys: the hardware report may not come from Azure's paravisor",
        if report.author_key_en {
            format!(
                " (AUTHOR_KEY_DIGEST {})",
                hex::encode(report.author_key_digest)
            )
        } else {
            String::new()
        },
        trusted.snp_keys.len()
    );
    unknown_paravisor(
        trusted.allow_unknown,
        what,
        format!("--paravisor-id-key-digest {seen}"),
        out,
    );
}

/// The paravisor of a TDX HCL report: a trusted MRTD.
fn tdx_paravisor(
    mrtd: &[u8; 48],
    trusted: &ParavisorPolicy,
    out: &mut Outcome,
    claims: &mut Map<String, Value>,
) {
    let matched = trusted.tdx_mrtds.iter().find(|k| &k.value == mrtd);
    claims.insert(
        "paravisor".into(),
        json!({
            "mrtd": hex::encode(mrtd),
            "matched": matched.map(|_| "mrtd"),
            "label": matched.map(|k| k.label.clone()),
        }),
    );
    if matched.is_some() {
        return;
    }
    let seen = hex::encode(mrtd);
    let what = format!(
        "the TD's MRTD {seen} is not one of the {} trusted paravisor builds: the hardware report may not come from Azure's paravisor (Azure publishes no list of paravisor MRTDs, so a new release needs its MRTD given)",
        trusted.tdx_mrtds.len()
    );
    unknown_paravisor(
        trusted.allow_unknown,
        what,
        format!("--paravisor-mrtd {seen}"),
        out,
    );
}

fn unknown_paravisor(allow: bool, what: String, flag: String, out: &mut Outcome) {
    if allow {
        out.warnings.push(format!(
            "{what}; accepted because unknown paravisors are allowed"
        ));
    } else {
        out.errors.push(VerifyError::new(
            Code::UnknownParavisor,
            format!("{what}; pass {flag} to trust it, or --allow-unknown-paravisor"),
        ));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_paravisors_decode() {
        let p = ParavisorPolicy::pinned();
        assert_eq!(p.snp_keys.len(), PINNED_SNP_PARAVISOR_KEYS.len());
        assert_eq!(p.tdx_mrtds.len(), PINNED_TDX_PARAVISOR_MRTDS.len());
        assert_eq!(ParavisorPolicy::default(), p);
        assert!(!p.allow_unknown);
    }

    #[test]
    fn user_data_forms() {
        let nonce = b"challenge".to_vec();
        let e = ExpectedUserData::Nonce(nonce.clone());
        assert!(e.accepts(&report_data::from_nonce(&nonce)));
        let mut padded = nonce.clone();
        padded.resize(64, 0);
        assert!(e.accepts(&padded));
        assert!(!e.accepts(&[0u8; 64]));
        assert!(!e.accepts(&nonce[..3]));
        let exact = ExpectedUserData::Exact(vec![0u8; 64]);
        assert!(exact.accepts(&[0u8; 64]));
        assert!(!exact.accepts(&padded));
        assert!(!ExpectedUserData::Exact(vec![1; 65]).accepts(&[1; 65]));
    }
}
