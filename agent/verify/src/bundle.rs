// SPDX-License-Identifier: Apache-2.0
//! Verifying a whole bundle: picks the TEE's verifier by the bundle's evidence (one variant per
//! TEE, which the bundle's `tee` was checked against when it was read), gathers the
//! endorsements it needs from the bundle, and applies the bundle's own nonce when the caller gave
//! no expected REPORT_DATA. Nothing in the bundle but bytes that get checked is believed, and no
//! check depends on an unsigned member: the `simulated` flag only explains a failure, the
//! `collection` member is never read, and the bundle's own nonce can only add a consistency
//! check (a verifier that wants freshness passes its own).

use thimble_evidence::bundle::{Bundle, Endorsement, EndorsementKind, Evidence, Tee};
use thimble_evidence::cert_file::pem_certificates;
use thimble_evidence::report_data;
use thimble_evidence::snp::AmdCert;
use thimble_evidence::time_fmt::format_unix;

use crate::azure::{
    AzurePolicy, AzureRoots, ExpectedUserData, HardwareEndorsements, ParavisorPolicy, verify_hcl,
};
use crate::eventlog::{EventLogPolicy, SignedRegisters, check_bundle_logs, check_policy};
use crate::options::{Options, Policy};
use crate::outcome::{Code, ErrorClass, Outcome, VerifyError};
use crate::policy::{ClaimedNonce, check_report_data};
use crate::roots::{IntelRoots, TrustedRoots};
use crate::tdx::{TdxCollateral, TdxPolicy, verify_quote};

/// Everything a bundle verification depends on.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The verification time, seconds since the Unix epoch: certificates, CRLs and collateral
    /// must be valid then.
    pub at: i64,
    /// The AMD roots SEV-SNP chains (and Azure SEV-SNP ones) may end at.
    pub amd_roots: TrustedRoots,
    /// The Intel roots TDX chains are verified against first.
    pub intel_roots: IntelRoots,
    /// A test PKI's root (`--insecure-allow-simulated`), tried for TDX and Azure TDX bundles
    /// only when `intel_roots` did not chain; the bundle's unsigned `simulated` member is not
    /// consulted.
    pub intel_simulated_roots: Option<IntelRoots>,
    /// The SEV-SNP policy (also applied to the report inside an Azure SEV-SNP HCL report).
    pub snp: Policy,
    /// The TDX policy (also applied to the quote of an Azure TDX bundle).
    pub tdx: TdxPolicy,
    /// The caller trusts the simulation roots (`--insecure-allow-simulated`): a simulated
    /// bundle that still fails then keeps its real error.
    pub allow_simulated: bool,
    /// The verifier's nonce, as given (Azure: it must be in the TPM quote, and bound in the HCL
    /// report's user-data unless `hcl_user_data` says otherwise).
    pub nonce: Option<Vec<u8>>,
    /// Azure: the user-data the HCL report must carry, for evidence whose collector bound
    /// something other than the nonce there.
    pub hcl_user_data: Option<Vec<u8>>,
    /// Azure: accept an HCL report without a TPM quote, or not made for this request, with a
    /// warning.
    pub allow_stale_report: bool,
    /// Azure: the paravisors trusted.
    pub paravisor: ParavisorPolicy,
    /// Revocation data is mandatory for every vendor: for SEV-SNP a current AMD CRL (without
    /// it, a warning), for TDX the PCK and root CA CRLs (mandatory by default anyway).
    pub require_revocation: bool,
    /// What the verifier pins about measured boot, judged on the bundle's event logs.
    pub event_log: EventLogPolicy,
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
            allow_simulated: false,
            nonce: None,
            hcl_user_data: None,
            allow_stale_report: false,
            paravisor: ParavisorPolicy::pinned(),
            require_revocation: false,
            event_log: EventLogPolicy::default(),
        }
    }
}

/// Verifies `bundle` with the verifier of its TEE, then judges its event logs against the
/// registers the verified evidence signs (see [`with_event_logs`]).
pub fn verify_bundle(bundle: &Bundle, o: &VerifyOptions) -> Outcome {
    let out = verify_evidence(bundle, o);
    with_event_logs(bundle, out, &o.event_log)
}

/// The event-log step of a verification: once the evidence verified (no malformed or
/// authenticity error: a TEE verifier stops at the first of those, so every signature, chain and
/// `pcrDigest` held), every log of the bundle is replayed against the registers that evidence
/// signs, a TDX quote's RTMRs and a vTPM quote's selected PCRs, and `policy` is judged on the
/// claims of the logs that matched. Evidence that did not verify has nothing to replay against:
/// its logs are neither judged nor reported.
pub fn with_event_logs(bundle: &Bundle, mut out: Outcome, policy: &EventLogPolicy) -> Outcome {
    let verified = out.worst_class().is_none_or(|c| c == ErrorClass::Policy);
    if !verified {
        return out;
    }
    let signed = SignedRegisters {
        rtmrs: bundle
            .evidence
            .tdx_quote()
            .and_then(|q| thimble_evidence::tdx::TdxQuote::parse(q).ok())
            .map(|q| q.body.rtmr),
        tpm_quote: bundle.evidence.tpm_quote().map(|q| q.quote.clone()),
    };
    let (logs, errors) = check_bundle_logs(&bundle.event_logs, &signed);
    out.errors.extend(errors);
    out.errors.extend(check_policy(policy, &logs));
    out.event_logs = logs;
    out.finish()
}

fn verify_evidence(bundle: &Bundle, o: &VerifyOptions) -> Outcome {
    match &bundle.evidence {
        Evidence::SevSnp(_) => crate::snp::verify_bundle(
            bundle,
            &Options {
                at: o.at,
                roots: o.amd_roots.clone(),
                policy: snp_policy(o),
            },
            o.allow_simulated,
        ),
        Evidence::Tdx(e) => verify_tdx_bundle(bundle, &e.quote, o),
        Evidence::AzureSevSnp(e) => {
            let tpm_quote = e.tpm_quote.as_ref().map(|q| &q.quote);
            verify_azure_bundle(bundle, &e.hcl_report, tpm_quote, None, o)
        }
        Evidence::AzureTdx(e) => {
            let tpm_quote = e.tpm_quote.as_ref().map(|q| &q.quote);
            verify_azure_bundle(bundle, &e.hcl_report, tpm_quote, Some(&e.tdx_quote), o)
        }
    }
}

/// An Azure bundle: its HCL report, its TPM quote if any, and on TDX the quote IMDS made.
fn verify_azure_bundle(
    bundle: &Bundle,
    hcl: &[u8],
    tpm_quote: Option<&thimble_evidence::azure::TpmQuote>,
    tdx_quote: Option<&[u8]>,
    o: &VerifyOptions,
) -> Outcome {
    let tee = bundle.tee().as_str();
    let fail_with = |e: VerifyError| fail(tee, o.at, e);
    let mut warnings = Vec::new();
    let hardware = if let Some(quote) = tdx_quote {
        match tdx_collateral(bundle) {
            Ok(collateral) => HardwareEndorsements::Tdx {
                quote: quote.to_vec(),
                collateral,
            },
            Err(e) => return fail_with(e),
        }
    } else {
        match crate::snp::bundle_certificates(bundle) {
            Ok(e) => {
                warnings = e.warnings;
                HardwareEndorsements::Snp {
                    certs: e.certs,
                    crls: e.crls,
                }
            }
            Err(e) => return fail_with(e),
        }
    };
    // The nonce is in the TPM quote; REPORT_DATA carries the runtime data's digest instead.
    // Without the verifier's own nonce, the bundle's is checked for consistency only.
    let nonce = o.nonce.clone().or_else(|| {
        bundle
            .nonce
            .as_ref()
            .and_then(|n| hex::decode(&n.value).ok())
    });
    // Freshness of the hardware report is judged only on the verifier's inputs.
    let expected_user_data = match (&o.hcl_user_data, &o.nonce) {
        (Some(v), _) => Some(ExpectedUserData::Exact(v.clone())),
        (None, Some(n)) => Some(ExpectedUserData::Nonce(n.clone())),
        (None, None) => None,
    };
    let policy = AzurePolicy {
        snp: Policy {
            report_data: None,
            ..snp_policy(o)
        },
        tdx: TdxPolicy {
            report_data: None,
            ..tdx_policy(o)
        },
        expected_nonce: nonce.as_deref().map(report_data::tpm_qualifying_data),
        expected_user_data,
        allow_stale_report: o.allow_stale_report,
        paravisor: o.paravisor.clone(),
    };
    // Intel's root first; the test root only when the caller allowed it and Intel's did not
    // chain, so that real evidence is never labelled simulated.
    let roots = AzureRoots {
        amd: o.amd_roots.clone(),
        intel: o.intel_roots.clone(),
    };
    let mut out = verify_hcl(hcl, tpm_quote, &hardware, o.at, &roots, &policy);
    if let Some(sim) = &o.intel_simulated_roots {
        if bundle.tee() == Tee::AzureTdx && out.errors.iter().any(|e| e.code == "chain") {
            let roots = AzureRoots {
                amd: o.amd_roots.clone(),
                intel: sim.clone(),
            };
            let alt = verify_hcl(hcl, tpm_quote, &hardware, o.at, &roots, &policy);
            if !alt.errors.iter().any(|e| e.code == "chain") {
                out = alt;
            }
        }
    }
    out.warnings.extend(warnings);
    crate::outcome::explain_simulated(out, bundle.simulated, o.allow_simulated)
}

/// The SEV-SNP policy with the cross-vendor revocation setting applied.
fn snp_policy(o: &VerifyOptions) -> Policy {
    Policy {
        require_revocation: o.snp.require_revocation || o.require_revocation,
        ..o.snp.clone()
    }
}

/// The TDX policy with the cross-vendor revocation setting applied: required revocation data
/// means no missing CRL is accepted.
fn tdx_policy(o: &VerifyOptions) -> TdxPolicy {
    TdxPolicy {
        allow_missing_crl: o.tdx.allow_missing_crl && !o.require_revocation,
        ..o.tdx.clone()
    }
}

/// The bundle's own nonce, if it has one.
pub fn claimed_nonce(bundle: &Bundle) -> Result<Option<ClaimedNonce>, VerifyError> {
    let Some(n) = &bundle.nonce else {
        return Ok(None);
    };
    let value = hex::decode(&n.value)
        .map_err(|_| VerifyError::new(Code::MalformedBundle, "nonce.value is not hex"))?;
    Ok(Some(ClaimedNonce {
        value,
        derivation: n.report_data_derivation,
    }))
}

/// REPORT_DATA of a quote that parses.
fn tdx_report_data(quote: &[u8]) -> Option<[u8; 64]> {
    thimble_evidence::tdx::TdxQuote::parse(quote)
        .ok()
        .map(|q| q.body.report_data)
}

fn fail(tee: &'static str, at: i64, e: VerifyError) -> Outcome {
    let mut out = Outcome::new(tee, format_unix(at));
    out.errors.push(e);
    out.finish()
}

/// The subject common name of a DER certificate, when it parses.
fn cn_of(der: &[u8]) -> Option<String> {
    AmdCert::parse_der(der).ok().map(|c| c.subject_cn)
}

/// The collateral a TDX bundle carries. Issuer chains come from the item's own `issuer_chain`
/// when the source sent one, else from the bundle's certificates by role: the TCB Signing
/// certificate for TCB info and QE identity, the PCK CA for the PCK CRL, the root for both.
pub fn tdx_collateral(bundle: &Bundle) -> Result<TdxCollateral, VerifyError> {
    tdx_collateral_from(&bundle.endorsements)
}

/// The collateral among `endorsements`, gathered as [`tdx_collateral`] does for a bundle's; for
/// a collector that checks what it fetched before it has a bundle.
pub fn tdx_collateral_from(endorsements: &[Endorsement]) -> Result<TdxCollateral, VerifyError> {
    let malformed = |e: thimble_evidence::bundle::BundleError| {
        VerifyError::new(Code::MalformedBundle, e.to_string())
    };
    let mut c = TdxCollateral::default();
    let mut certs: Vec<Vec<u8>> = Vec::new();
    let mut tcb_chain_pem = None;
    let mut qe_chain_pem = None;
    let mut crl_chain_pem = None;
    // One of each: with two TCB infos (or QE identities, or CRLs) the verdict would depend on
    // which one a verifier happened to pick, so a bundle that carries two is refused.
    let mut seen: Vec<EndorsementKind> = Vec::new();
    for e in endorsements {
        let single = match e.kind {
            EndorsementKind::TcbInfo => Some("tcb-info"),
            EndorsementKind::QeIdentity => Some("qe-identity"),
            EndorsementKind::PckCrl => Some("pck-crl"),
            EndorsementKind::RootCaCrl => Some("root-ca-crl"),
            _ => None,
        };
        if let Some(kind) = single {
            if seen.contains(&e.kind) {
                return Err(VerifyError::new(
                    Code::MalformedBundle,
                    format!("the bundle has more than one {kind} endorsement; it must carry one"),
                ));
            }
            seen.push(e.kind);
        }
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
    // Identical certificates (the same one from two chain files) count once.
    let mut distinct: Vec<Vec<u8>> = Vec::new();
    for c in certs {
        if !distinct.contains(&c) {
            distinct.push(c);
        }
    }
    let certs = distinct;
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
    let from_pem = |pem: &Option<String>,
                    fallback: Vec<Vec<u8>>|
     -> Result<Vec<Vec<u8>>, VerifyError> {
        match pem {
            Some(p) => pem_certificates(p)
                .map_err(|e| VerifyError::new(Code::MalformedBundle, format!("issuer_chain: {e}"))),
            None => Ok(fallback),
        }
    };
    // Without them nothing vouches for the quote's TCB: the bundle is incomplete, not malformed.
    for (item, missing) in [
        ("TCB info", c.tcb_info.is_empty()),
        ("QE identity", c.qe_identity.is_empty()),
    ] {
        if missing {
            return Err(VerifyError::new(
                Code::MissingEndorsement,
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

fn verify_tdx_bundle(bundle: &Bundle, quote: &[u8], o: &VerifyOptions) -> Outcome {
    let collateral = match tdx_collateral(bundle) {
        Ok(c) => c,
        Err(e) => return fail("tdx", o.at, e),
    };
    let claimed = match claimed_nonce(bundle) {
        Ok(c) => c,
        Err(e) => return fail("tdx", o.at, e),
    };
    // Intel's root first; the test root only when the caller allowed it and Intel's did not
    // chain, so that real evidence is never labelled simulated.
    let policy = &tdx_policy(o);
    let mut out = verify_quote(quote, &collateral, o.at, &o.intel_roots, policy);
    if let Some(sim) = &o.intel_simulated_roots {
        if out.errors.iter().any(|e| e.code == Code::Chain) {
            let alt = verify_quote(quote, &collateral, o.at, sim, policy);
            if !alt.errors.iter().any(|e| e.code == Code::Chain) {
                out = alt;
            }
        }
    }
    // Without the caller's expected value, the bundle's own nonce, by the rule every TEE shares.
    if policy.report_data.is_none() && out.worst_class().is_none_or(|c| c == ErrorClass::Policy) {
        if let Some(rd) = tdx_report_data(quote) {
            out.errors
                .extend(check_report_data(&rd, None, claimed.as_ref()));
        }
    }
    crate::outcome::explain_simulated(out, bundle.simulated, o.allow_simulated)
}
