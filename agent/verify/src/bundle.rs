// SPDX-License-Identifier: AGPL-3.0-or-later
//! Verifying a whole bundle: picks the TEE's verifier by the bundle's `tee`, gathers the
//! endorsements it needs from the bundle, and applies the bundle's own nonce when the caller gave
//! no expected REPORT_DATA. Nothing in the bundle but bytes that get checked is believed.

use thimble_evidence::bundle::{Bundle, EndorsementKind, Tee};
use thimble_evidence::cert_file::pem_certificates;
use thimble_evidence::report_data;
use thimble_evidence::snp::AmdCert;
use thimble_evidence::time_fmt::format_unix;

use thimble_evidence::azure::TpmQuote;

use crate::azure::{AzurePolicy, AzureRoots, HardwareEndorsements, verify_hcl};
use crate::options::{Options, Policy};
use crate::outcome::{Outcome, VerifyError};
use crate::roots::{IntelRoots, TrustedRoots};
use crate::tdx::{TdxCollateral, TdxPolicy, verify_quote};

/// Everything a bundle verification depends on.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Seconds since the epoch.
    pub at: i64,
    pub amd_roots: TrustedRoots,
    pub intel_roots: IntelRoots,
    /// A test PKI's root, used only for bundles that say they are simulated
    /// (`--insecure-allow-simulated`).
    pub intel_simulated_roots: Option<IntelRoots>,
    pub snp: Policy,
    pub tdx: TdxPolicy,
    /// The verifier's nonce, as given (Azure: it must be in the TPM quote).
    pub nonce: Option<Vec<u8>>,
    /// Azure: accept an HCL report without a TPM quote, with a warning.
    pub allow_stale_report: bool,
}

impl VerifyOptions {
    /// Pinned vendor roots and default policies.
    pub fn strict(at: i64) -> VerifyOptions {
        VerifyOptions {
            at,
            amd_roots: TrustedRoots::amd(),
            intel_roots: IntelRoots::intel(),
            intel_simulated_roots: None,
            snp: Policy::default(),
            tdx: TdxPolicy::default(),
            nonce: None,
            allow_stale_report: false,
        }
    }
}

/// Verifies `bundle` with the verifier of its TEE.
pub fn verify_bundle(bundle: &Bundle, o: &VerifyOptions) -> Outcome {
    match bundle.tee {
        Tee::SevSnp => crate::snp::verify_bundle(
            bundle,
            &Options {
                at: o.at,
                roots: o.amd_roots.clone(),
                policy: o.snp.clone(),
            },
        ),
        Tee::Tdx => verify_tdx_bundle(bundle, o),
        Tee::AzureSevSnp | Tee::AzureTdx => verify_azure_bundle(bundle, o),
    }
}

fn verify_azure_bundle(bundle: &Bundle, o: &VerifyOptions) -> Outcome {
    let tee = bundle.tee.as_str();
    let fail_with = |e: VerifyError| fail(tee, o.at, bundle.simulated, e);
    let malformed = |e: thimble_evidence::bundle::BundleError| {
        VerifyError::malformed("malformed-bundle", e.to_string())
    };
    let hcl = match bundle.hcl_report_bytes() {
        Ok(h) => h,
        Err(e) => return fail_with(malformed(e)),
    };
    let tpm_quote = match &bundle.evidence.tpm_quote {
        None => None,
        Some(v) => match serde_json::to_vec(v)
            .ok()
            .and_then(|b| TpmQuote::parse_json(&b).ok())
        {
            Some(q) => Some(q),
            None => {
                return fail_with(VerifyError::malformed(
                    "malformed-tpm-quote",
                    "evidence.tpm_quote is not {signature, message, pcrs} in hex",
                ));
            }
        },
    };
    let hardware = if bundle.tee == Tee::AzureTdx {
        let quote = match bundle.tdx_quote_bytes() {
            Ok(q) => q,
            Err(e) => return fail_with(malformed(e)),
        };
        match tdx_collateral(bundle) {
            Ok(collateral) => HardwareEndorsements::Tdx { quote, collateral },
            Err(e) => return fail_with(e),
        }
    } else {
        match crate::snp::bundle_certificates(bundle) {
            Ok((certs, _)) => HardwareEndorsements::Snp { certs },
            Err(e) => return fail_with(e),
        }
    };
    // The nonce is in the TPM quote; REPORT_DATA carries the runtime data's digest instead.
    let nonce = o.nonce.clone().or_else(|| {
        bundle
            .nonce
            .as_ref()
            .and_then(|n| hex::decode(&n.value).ok())
    });
    let policy = AzurePolicy {
        snp: Policy {
            report_data: None,
            ..o.snp.clone()
        },
        tdx: TdxPolicy {
            report_data: None,
            ..o.tdx.clone()
        },
        expected_nonce: nonce.as_deref().map(report_data::tpm_qualifying_data),
        allow_stale_report: o.allow_stale_report,
    };
    // Intel's root first; the test root only when the caller allowed it and Intel's did not
    // chain, so that real evidence is never labelled simulated.
    let roots = AzureRoots {
        amd: o.amd_roots.clone(),
        intel: o.intel_roots.clone(),
    };
    let mut out = verify_hcl(&hcl, tpm_quote.as_ref(), &hardware, o.at, &roots, &policy);
    if let Some(sim) = &o.intel_simulated_roots {
        if bundle.tee == Tee::AzureTdx && out.errors.iter().any(|e| e.code == "chain") {
            let roots = AzureRoots {
                amd: o.amd_roots.clone(),
                intel: sim.clone(),
            };
            let alt = verify_hcl(&hcl, tpm_quote.as_ref(), &hardware, o.at, &roots, &policy);
            if !alt.errors.iter().any(|e| e.code == "chain") {
                out = alt;
            }
        }
    }
    out = crate::outcome::explain_simulated(out, bundle.simulated);
    hcl_freshness(
        bundle,
        &hcl,
        nonce.as_deref(),
        o.allow_stale_report,
        &mut out,
    );
    out.finish()
}

/// For a bundle thimble collected from the vTPM: the HCL report's `user-data` must be the
/// REPORT_DATA derived from the nonce, which shows that the hardware report itself (not only the
/// TPM quote) was made for this collection. Imports carry no such promise and are not judged.
fn hcl_freshness(
    bundle: &Bundle,
    hcl: &[u8],
    nonce: Option<&[u8]>,
    allow_stale: bool,
    out: &mut Outcome,
) {
    if bundle.collection.source != "vtpm"
        || !out
            .errors
            .iter()
            .all(|e| e.class == crate::outcome::ErrorClass::Policy)
    {
        return;
    }
    let (Some(nonce), Some(n)) = (nonce, &bundle.nonce) else {
        return;
    };
    let expected = report_data::derive(n.report_data_derivation, nonce);
    let user_data = thimble_evidence::azure::HclReport::parse(hcl)
        .ok()
        .and_then(|h| h.runtime_data().ok())
        .and_then(|r| r.user_data);
    if expected.is_some() && user_data.as_deref() == expected.as_ref().map(|e| &e[..]) {
        return;
    }
    let message = "the HCL report's user-data is not the REPORT_DATA of this nonce: the hardware report was made before this collection (stale)".to_string();
    if allow_stale {
        out.warnings.push(message);
    } else {
        out.errors.push(VerifyError::policy(
            "stale-hcl-report",
            format!("{message}; pass --allow-stale-report to accept it"),
        ));
    }
}

fn fail(tee: &'static str, at: i64, simulated: bool, e: VerifyError) -> Outcome {
    let mut out = Outcome::new(tee, format_unix(at));
    out.simulated = simulated;
    out.errors.push(e);
    out.finish()
}

/// Whether a certificate belongs to a chain of the given Intel role, by its subject.
fn cn_of(der: &[u8]) -> Option<String> {
    AmdCert::parse_der(der).ok().map(|c| c.subject_cn)
}

/// The collateral a TDX bundle carries. Issuer chains come from the item's own `issuer_chain`
/// when the source sent one, else from the bundle's certificates by role: the TCB Signing
/// certificate for TCB info and QE identity, the PCK CA for the PCK CRL, the root for both.
pub fn tdx_collateral(bundle: &Bundle) -> Result<TdxCollateral, VerifyError> {
    let malformed = |e: thimble_evidence::bundle::BundleError| {
        VerifyError::malformed("malformed-bundle", e.to_string())
    };
    let mut c = TdxCollateral::default();
    let mut certs: Vec<Vec<u8>> = Vec::new();
    let mut tcb_chain_pem = None;
    let mut qe_chain_pem = None;
    let mut crl_chain_pem = None;
    for e in &bundle.endorsements {
        let bytes = e.bytes().map_err(malformed)?;
        match e.kind {
            EndorsementKind::TcbInfo => {
                c.tcb_info = bytes;
                tcb_chain_pem = e.issuer_chain.clone();
            }
            EndorsementKind::QeIdentity => {
                c.qe_identity = bytes;
                qe_chain_pem = e.issuer_chain.clone();
            }
            EndorsementKind::PckCrl => {
                c.pck_crl = Some(bytes);
                crl_chain_pem = e.issuer_chain.clone();
            }
            EndorsementKind::RootCaCrl => c.root_ca_crl = Some(bytes),
            EndorsementKind::Certificate if e.format == "der" => certs.push(bytes),
            _ => {}
        }
    }
    let by_role = |needle: &str| -> Vec<Vec<u8>> {
        let mut chain: Vec<Vec<u8>> = certs
            .iter()
            .filter(|d| cn_of(d).is_some_and(|cn| cn.contains(needle)))
            .cloned()
            .collect();
        chain.extend(
            certs
                .iter()
                .filter(|d| cn_of(d).is_some_and(|cn| cn.contains("Root CA")))
                .cloned(),
        );
        chain
    };
    let from_pem =
        |pem: &Option<String>, fallback: Vec<Vec<u8>>| -> Result<Vec<Vec<u8>>, VerifyError> {
            match pem {
                Some(p) => pem_certificates(p).map_err(|e| {
                    VerifyError::malformed("malformed-bundle", format!("issuer_chain: {e}"))
                }),
                None => Ok(fallback),
            }
        };
    // Without them nothing vouches for the quote's TCB: the bundle is incomplete, not malformed.
    for (item, missing) in [
        ("TCB info", c.tcb_info.is_empty()),
        ("QE identity", c.qe_identity.is_empty()),
    ] {
        if missing {
            return Err(VerifyError::authenticity(
                "missing-endorsement",
                format!("the bundle has no Intel {item}, so the quote's TCB cannot be judged"),
            ));
        }
    }
    c.tcb_info_issuer_chain = from_pem(&tcb_chain_pem, by_role("TCB Signing"))?;
    c.qe_identity_issuer_chain = from_pem(&qe_chain_pem, by_role("TCB Signing"))?;
    c.pck_crl_issuer_chain = from_pem(&crl_chain_pem, by_role("PCK"))?;
    // A PCK leaf among the certificates serves quotes that do not carry their chain.
    let pck_leaf: Vec<Vec<u8>> = certs
        .iter()
        .filter(|d| cn_of(d).is_some_and(|cn| cn == "Intel SGX PCK Certificate"))
        .cloned()
        .collect();
    if !pck_leaf.is_empty() {
        let mut chain = pck_leaf;
        chain.extend(
            by_role("PCK Platform CA")
                .into_iter()
                .chain(by_role("PCK Processor CA")),
        );
        chain.dedup();
        c.pck_chain = Some(chain);
    }
    Ok(c)
}

fn verify_tdx_bundle(bundle: &Bundle, o: &VerifyOptions) -> Outcome {
    let quote = match bundle.tdx_quote_bytes() {
        Ok(q) => q,
        Err(e) => {
            return fail(
                "tdx",
                o.at,
                bundle.simulated,
                VerifyError::malformed("malformed-bundle", e.to_string()),
            );
        }
    };
    let collateral = match tdx_collateral(bundle) {
        Ok(c) => c,
        Err(e) => return fail("tdx", o.at, bundle.simulated, e),
    };
    let mut policy = o.tdx.clone();
    if policy.report_data.is_none() {
        if let Some(n) = &bundle.nonce {
            match hex::decode(&n.value) {
                // The bundle's own nonce: the best the verifier can do without one of its own.
                Ok(v) => policy.report_data = report_data::derive(n.report_data_derivation, &v),
                Err(_) => {
                    return fail(
                        "tdx",
                        o.at,
                        bundle.simulated,
                        VerifyError::malformed("malformed-bundle", "nonce.value is not hex"),
                    );
                }
            }
        }
    }
    // Intel's root first; the test root only when the caller allowed it and Intel's did not
    // chain, so that real evidence is never labelled simulated.
    let mut out = verify_quote(&quote, &collateral, o.at, &o.intel_roots, &policy);
    if let Some(sim) = &o.intel_simulated_roots {
        if out.errors.iter().any(|e| e.code == "chain") {
            let alt = verify_quote(&quote, &collateral, o.at, sim, &policy);
            if !alt.errors.iter().any(|e| e.code == "chain") {
                out = alt;
            }
        }
    }
    crate::outcome::explain_simulated(out, bundle.simulated)
}
