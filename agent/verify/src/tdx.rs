// SPDX-License-Identifier: Apache-2.0
//! Verifying an Intel TDX quote with DCAP collateral, the way Intel's Quote Verification Library
//! does, but with thimble's own TD-attribute policy.
//!
//! Authenticity, in this order, stopping at the first failure:
//! 1. the PCK chain (from the quote's certification data, type 6 nesting type 5) up to the pinned
//!    Intel SGX Root CA, every certificate valid at the verification time;
//! 2. revocation: the root CA CRL (signed by the root) for the CAs, the PCK CRL (signed by the
//!    PCK's own CA) for the PCK certificate;
//! 3. the QE report signature under the PCK key, and the QE report binding
//!    (`REPORTDATA[0..32] = SHA-256(attestation key ‖ QE authentication data)`);
//! 4. the quote signature under the attestation key, over header ‖ body as received;
//! 5. TCB info and QE identity: signer chain, signature over the exact inner-object bytes, dates
//!    (`issueDate` ≤ time ≤ `nextUpdate`; stale collateral is an error unless allowed), and that
//!    they are for this platform (FMSPC, PCE ID) and this TEE (`TDX`, `TD_QE`);
//! 6. the QE report against the QE identity, and the TDX module (MRSIGNERSEAM, SEAM attributes)
//!    against the TCB info;
//! 7. the TCB status: the first platform TCB level (in Intel's canonical order) that the PCK's
//!    CPUSVN/PCESVN and the quote's TEE_TCB_SVN meet, converged with the TDX module level (when
//!    `TEE_TCB_SVN[1]` is not zero, TDX components 0 and 1 are judged by the module identity
//!    `TDX_{TEE_TCB_SVN[1]:02X}`, not the platform levels) and with the QE level; for a TDX 1.5
//!    body the current TCB (`TEE_TCB_SVN_2`) too. No matching level and `Revoked` are failures.
//!
//! The TCB level data model and matching come from `dcap-qvl` (`TcbInfo`, `TcbLevel::shortfalls`,
//! `TcbInfo::tdx_module_identity`, `TcbStatusWithAdvisory::merge`), which mirrors Intel's QVL;
//! signatures, chains, CRLs and dates are thimble's own checks with `ring`. dcap-qvl's
//! whole-quote `verify` is not used here: it also applies its own TD-attribute policy (it requires
//! SEPT_VE_DISABLE, so it refuses every Azure TDX quote, and refuses debug TDs and a non-zero
//! MRSERVICETD). The tests run it as an oracle where that policy lets it.
//!
//! Policy (every violation reported): debug TDs are rejected unless allowed; SEPT_VE_DISABLE is
//! required only when asked; statuses other than `UpToDate` are accepted with a warning unless a
//! minimum is set; expected MRTD, MRCONFIGID, MROWNER, RTMRs and REPORT_DATA are compared.

use std::fmt;
use std::str::FromStr;

use dcap_qvl::{QeIdentity, TcbInfo, TcbLevel, TcbStatusWithAdvisory};
use serde::Serialize;
use thimble_evidence::digest::Sha256;
use thimble_evidence::snp::AmdCert;
use thimble_evidence::tdx::quote::INTEL_QE_VENDOR_ID;
use thimble_evidence::tdx::{
    EnclaveReport, IntelCrl, PckInfo, QeIdentityBody, TcbInfoBody, TdAttributes, TdxBody,
    TdxClaims, TdxQuote,
};
use thimble_evidence::time_fmt::format_unix;

use crate::intel_chain::{IntelChain, check_crl_issuer, check_not_revoked, verify_intel_chain};
use crate::outcome::{Code, Outcome, VerifyError};
use crate::roots::IntelRoots;
use crate::signature::verify_p256_fixed;

/// The DCAP collateral for one quote, as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TdxCollateral {
    /// TCB info body, `{"tcbInfo":{…},"signature":"…"}`, byte for byte.
    pub tcb_info: Vec<u8>,
    /// DER certificates: Intel SGX TCB Signing, then the root.
    pub tcb_info_issuer_chain: Vec<Vec<u8>>,
    /// QE identity body, `{"enclaveIdentity":{…},"signature":"…"}`, byte for byte.
    pub qe_identity: Vec<u8>,
    /// DER certificates: Intel SGX TCB Signing, then the root.
    pub qe_identity_issuer_chain: Vec<Vec<u8>>,
    /// PCK CRL (DER; PEM and hex are accepted too). Without it the PCK's revocation is not
    /// checked, with a warning.
    pub pck_crl: Option<Vec<u8>>,
    /// Kept for completeness: the PCK CRL's issuer is the PCK certificate's own CA, which the
    /// PCK chain already establishes, so this chain is not needed.
    pub pck_crl_issuer_chain: Vec<Vec<u8>>,
    /// Intel SGX Root CA CRL. Without it the CAs' revocation is not checked, with a warning.
    pub root_ca_crl: Option<Vec<u8>>,
    /// DER PCK chain, leaf first, for quotes that do not carry it (certification data other
    /// than type 5). Ignored when the quote has its own.
    pub pck_chain: Option<Vec<Vec<u8>>>,
}

/// Intel's TCB statuses, best first. The order is the one [`TdxPolicy::min_tcb_status`] uses:
/// a status is acceptable when it is no worse than the minimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum TcbStatus {
    /// The TCB is current.
    UpToDate,
    /// Current, but software mitigations are needed for some advisories.
    SWHardeningNeeded,
    /// Current, but the platform's configuration needs changing for some advisories.
    ConfigurationNeeded,
    /// Current, with both configuration and software mitigations needed.
    ConfigurationAndSWHardeningNeeded,
    /// TDX 1.5: launched on an out-of-date TCB, current TCB fine after a TD-preserving update.
    TDRelaunchAdvised,
    /// `TDRelaunchAdvised`, and configuration needed as well.
    TDRelaunchAdvisedConfigurationNeeded,
    /// The TCB is older than the latest; a firmware or microcode update is available.
    OutOfDate,
    /// `OutOfDate`, and configuration needed as well.
    OutOfDateConfigurationNeeded,
    /// The TCB level has been revoked (always an error).
    Revoked,
}

const ALL_STATUSES: [TcbStatus; 9] = [
    TcbStatus::UpToDate,
    TcbStatus::SWHardeningNeeded,
    TcbStatus::ConfigurationNeeded,
    TcbStatus::ConfigurationAndSWHardeningNeeded,
    TcbStatus::TDRelaunchAdvised,
    TcbStatus::TDRelaunchAdvisedConfigurationNeeded,
    TcbStatus::OutOfDate,
    TcbStatus::OutOfDateConfigurationNeeded,
    TcbStatus::Revoked,
];

impl TcbStatus {
    /// Intel's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TcbStatus::UpToDate => "UpToDate",
            TcbStatus::SWHardeningNeeded => "SWHardeningNeeded",
            TcbStatus::ConfigurationNeeded => "ConfigurationNeeded",
            TcbStatus::ConfigurationAndSWHardeningNeeded => "ConfigurationAndSWHardeningNeeded",
            TcbStatus::TDRelaunchAdvised => "TDRelaunchAdvised",
            TcbStatus::TDRelaunchAdvisedConfigurationNeeded => {
                "TDRelaunchAdvisedConfigurationNeeded"
            }
            TcbStatus::OutOfDate => "OutOfDate",
            TcbStatus::OutOfDateConfigurationNeeded => "OutOfDateConfigurationNeeded",
            TcbStatus::Revoked => "Revoked",
        }
    }

    fn from_qvl(s: dcap_qvl::TcbStatus) -> TcbStatus {
        use dcap_qvl::TcbStatus as Q;
        match s {
            Q::UpToDate => TcbStatus::UpToDate,
            Q::SWHardeningNeeded => TcbStatus::SWHardeningNeeded,
            Q::ConfigurationNeeded => TcbStatus::ConfigurationNeeded,
            Q::ConfigurationAndSWHardeningNeeded => TcbStatus::ConfigurationAndSWHardeningNeeded,
            Q::TDRelaunchAdvised => TcbStatus::TDRelaunchAdvised,
            Q::TDRelaunchAdvisedConfigurationNeeded => {
                TcbStatus::TDRelaunchAdvisedConfigurationNeeded
            }
            Q::OutOfDate => TcbStatus::OutOfDate,
            Q::OutOfDateConfigurationNeeded => TcbStatus::OutOfDateConfigurationNeeded,
            Q::Revoked => TcbStatus::Revoked,
        }
    }

    fn configuration_needed(self) -> bool {
        matches!(
            self,
            TcbStatus::ConfigurationNeeded
                | TcbStatus::OutOfDateConfigurationNeeded
                | TcbStatus::ConfigurationAndSWHardeningNeeded
                | TcbStatus::TDRelaunchAdvisedConfigurationNeeded
        )
    }

    /// Combines the launch status of a TDX 1.5 TD with its current one (Intel QVL
    /// `checkForRelaunch`): an out-of-date launch TCB whose current TCB is not out of date
    /// means the TD should be relaunched to benefit from the update.
    fn check_for_relaunch(self, current: TcbStatus) -> TcbStatus {
        use TcbStatus::*;
        match (self, current) {
            (
                OutOfDate | OutOfDateConfigurationNeeded,
                UpToDate
                | SWHardeningNeeded
                | ConfigurationNeeded
                | ConfigurationAndSWHardeningNeeded,
            ) => {
                if self.configuration_needed() || current.configuration_needed() {
                    TDRelaunchAdvisedConfigurationNeeded
                } else {
                    TDRelaunchAdvised
                }
            }
            _ => self,
        }
    }
}

impl fmt::Display for TcbStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of Intel's TCB statuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a TCB status (UpToDate, SWHardeningNeeded, ConfigurationNeeded, ConfigurationAndSWHardeningNeeded, TDRelaunchAdvised, TDRelaunchAdvisedConfigurationNeeded, OutOfDate, OutOfDateConfigurationNeeded, Revoked)"
)]
pub struct UnknownTcbStatus(pub String);

impl FromStr for TcbStatus {
    type Err = UnknownTcbStatus;

    /// Intel's spelling, compared without regard to case.
    fn from_str(s: &str) -> Result<TcbStatus, UnknownTcbStatus> {
        ALL_STATUSES
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownTcbStatus(s.to_string()))
    }
}

/// What an authentic TDX quote must also satisfy. The default accepts any non-debug TD whose
/// TCB matches a level other than `Revoked`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TdxPolicy {
    /// Accept TDs with a TUD attribute bit (DEBUG, bit 0, or bits 7:1) set.
    pub allow_debug: bool,
    /// Require TD attribute SEPT_VE_DISABLE (bit 28). Off by default: Azure's paravisor TDs run
    /// without it.
    pub require_sept_ve_disable: bool,
    /// Accept collateral (TCB info, QE identity, CRLs) past its `nextUpdate`, with a warning.
    pub allow_stale_collateral: bool,
    /// Worst TCB status accepted (see [`TcbStatus`]'s order); `None` accepts all but `Revoked`.
    pub min_tcb_status: Option<TcbStatus>,
    /// Accept a quote without the PCK CRL or the root CA CRL, with a warning. Intel's QVL needs
    /// both; without them a revoked PCK or CA would pass, so by default their absence is a
    /// missing endorsement.
    pub allow_missing_crl: bool,
    /// Accepted MRTDs (48 bytes each): the quote's must be one of them. Empty: not checked.
    pub mrtd: Vec<Vec<u8>>,
    /// Expected MRCONFIGID (48 bytes).
    pub mrconfigid: Option<Vec<u8>>,
    /// Expected MROWNER (48 bytes).
    pub mrowner: Option<Vec<u8>>,
    /// Expected MROWNERCONFIG (48 bytes).
    pub mrownerconfig: Option<Vec<u8>>,
    /// Expected MRSEAM (48 bytes): the measurement of the TDX module.
    pub mrseam: Option<Vec<u8>>,
    /// Expected TD attributes (8 bytes, as in the quote).
    pub td_attributes: Option<Vec<u8>>,
    /// Expected XFAM (8 bytes, as in the quote).
    pub xfam: Option<Vec<u8>>,
    /// Expected RTMR0..3 (48 bytes each), each optional.
    pub rtmrs: [Option<Vec<u8>>; 4],
    /// Minimum TEE_TCB_SVN, compared byte by byte (16 bytes), as go-tdx-guest does.
    pub min_tee_tcb_svn: Option<[u8; 16]>,
    /// Minimum ISVSVN of the quoting enclave (from its signed QE report).
    pub min_qe_svn: Option<u16>,
    /// Minimum PCESVN (from the PCK certificate).
    pub min_pce_svn: Option<u16>,
    /// Expected REPORT_DATA.
    pub report_data: Option<[u8; 64]>,
}

/// Statuses Intel's QVL accepts in each structure (anything else is malformed collateral).
const TCB_INFO_STATUSES: [TcbStatus; 7] = [
    TcbStatus::UpToDate,
    TcbStatus::SWHardeningNeeded,
    TcbStatus::ConfigurationNeeded,
    TcbStatus::ConfigurationAndSWHardeningNeeded,
    TcbStatus::OutOfDate,
    TcbStatus::OutOfDateConfigurationNeeded,
    TcbStatus::Revoked,
];
const TDX_MODULE_STATUSES: [TcbStatus; 3] = [
    TcbStatus::UpToDate,
    TcbStatus::OutOfDate,
    TcbStatus::Revoked,
];
/// The statuses Intel's QVL reads in a QE identity's levels (its `TcbStatus.h`); any other makes
/// the identity invalid. Intel's PCS documents only `UpToDate`, `OutOfDate` and `Revoked` here;
/// QVL treats the two `ConfigurationNeeded` forms as `OutOfDate` ([`qe_status`]).
const QE_IDENTITY_STATUSES: [TcbStatus; 5] = [
    TcbStatus::UpToDate,
    TcbStatus::ConfigurationNeeded,
    TcbStatus::OutOfDate,
    TcbStatus::OutOfDateConfigurationNeeded,
    TcbStatus::Revoked,
];

/// What a QE identity level's status means for the quote, as Intel's QVL decides it
/// (`EnclaveReportVerifier`): `UpToDate` is fine, `Revoked` is revoked, and every other status it
/// accepts means the QE's ISVSVN is out of date.
fn qe_status(s: TcbStatus) -> TcbStatus {
    match s {
        TcbStatus::UpToDate => TcbStatus::UpToDate,
        TcbStatus::Revoked => TcbStatus::Revoked,
        _ => TcbStatus::OutOfDate,
    }
}

/// The platform status converged with the QE's (Intel QVL `convergeTcbStatusWithQeTcbStatus`).
fn converge_with_qe(platform: TcbStatus, qe: TcbStatus) -> TcbStatus {
    use TcbStatus::*;
    match (qe, platform) {
        (Revoked, _) => Revoked,
        (OutOfDate, UpToDate | SWHardeningNeeded) => OutOfDate,
        (OutOfDate, ConfigurationNeeded | ConfigurationAndSWHardeningNeeded) => {
            OutOfDateConfigurationNeeded
        }
        _ => platform,
    }
}

fn ensure_status(
    status: dcap_qvl::TcbStatus,
    allowed: &[TcbStatus],
    structure: &str,
) -> Result<(), VerifyError> {
    let s = TcbStatus::from_qvl(status);
    if allowed.contains(&s) {
        return Ok(());
    }
    Err(VerifyError::new(
        Code::MalformedCollateral,
        format!("{structure} has a level with status {s}, which it may not carry"),
    ))
}

/// State shared by the steps: inputs and the warnings gathered so far.
struct Ctx<'a> {
    at: i64,
    roots: &'a IntelRoots,
    policy: &'a TdxPolicy,
    warnings: Vec<String>,
}

impl Ctx<'_> {
    /// A CRL the bundle lacks: a missing endorsement, as in Intel's QVL, unless the policy
    /// accepts its absence, in which case a warning.
    fn missing_crl(&mut self, which: &str, consequence: &str) -> Result<(), VerifyError> {
        if self.policy.allow_missing_crl {
            self.warnings.push(format!(
                "no {which} given: {consequence}; accepted because missing CRLs are allowed"
            ));
            return Ok(());
        }
        Err(VerifyError::new(
            Code::MissingEndorsement,
            format!(
                "the bundle has no Intel {which}, so a revoked certificate would pass ({consequence}); pass --allow-missing-crl to accept that"
            ),
        ))
    }

    /// Checks an `issueDate`/`nextUpdate` (or `thisUpdate`/`nextUpdate`) pair against the time.
    fn check_dates(
        &mut self,
        what: &str,
        issued: i64,
        next_update: Option<i64>,
    ) -> Result<(), VerifyError> {
        if issued > self.at {
            return Err(VerifyError::new(
                Code::CollateralNotYetValid,
                format!(
                    "{what} was issued at {}, after the verification time {}",
                    format_unix(issued),
                    format_unix(self.at)
                ),
            ));
        }
        if let Some(next) = next_update.filter(|&n| n < self.at) {
            let msg = format!(
                "{what} is past its nextUpdate {} at the verification time {}",
                format_unix(next),
                format_unix(self.at)
            );
            if !self.policy.allow_stale_collateral {
                return Err(VerifyError::new(
                    Code::CollateralExpired,
                    format!(
                        "{msg}: stale collateral cannot vouch for the quote (pass --allow-stale-collateral to accept it)"
                    ),
                ));
            }
            self.warnings.push(format!(
                "{msg}; accepted because stale collateral is allowed"
            ));
        }
        Ok(())
    }
}

fn parse_certs(ders: &[Vec<u8>], what: &str) -> Result<Vec<AmdCert>, VerifyError> {
    ders.iter()
        .enumerate()
        .map(|(i, d)| {
            AmdCert::parse_der(d).map_err(|e| {
                VerifyError::new(
                    Code::MalformedCertificate,
                    format!("{what} certificate {i}: {e}"),
                )
            })
        })
        .collect()
}

fn parse_crl(bytes: &[u8], what: &str) -> Result<IntelCrl, VerifyError> {
    IntelCrl::parse(bytes)
        .map_err(|e| VerifyError::new(Code::MalformedCollateral, format!("{what}: {e}")))
}

/// The CRLs that were given, checked and current (or stale but allowed).
struct Crls {
    root: Option<IntelCrl>,
}

impl Crls {
    /// Fails if any CA of `chain` below the root is on the root CA CRL.
    fn check_cas(&self, chain: &IntelChain) -> Result<(), VerifyError> {
        if let Some(crl) = &self.root {
            let root = chain.root();
            for c in chain.certs.iter().filter(|c| !c.self_issued()) {
                if c.issued_by_name(root) {
                    check_not_revoked(c, crl)?;
                }
            }
        }
        Ok(())
    }
}

/// The common name of the certificate that signs Intel's TCB info and QE identities.
pub const TCB_SIGNING_CN: &str = "Intel SGX TCB Signing";

/// Verifies a collateral issuer chain (signer first) and returns it.
fn verify_signer_chain(
    ctx: &Ctx<'_>,
    crls: &Crls,
    ders: &[Vec<u8>],
    what: &str,
) -> Result<IntelChain, VerifyError> {
    let certs = parse_certs(ders, what)?;
    let Some((leaf, pool)) = certs.split_first() else {
        return Err(VerifyError::new(
            Code::MissingEndorsement,
            format!("no {what} issuer chain given"),
        ));
    };
    let chain = verify_intel_chain(leaf, pool, ctx.roots, ctx.at, what)?;
    // Only Intel's TCB Signing certificate, issued directly by the root, signs TCB info and QE
    // identities (Intel QVL `TCBSigningChain`: a two-certificate chain whose signer's CN names
    // the SGX TCB Signing role). Any other certificate under the root, a PCK CA for one, is not
    // a collateral signer even though it chains.
    if chain.certs.len() != 2 || chain.leaf().subject_cn != TCB_SIGNING_CN {
        return Err(VerifyError::new(
            Code::Chain,
            format!(
                "{what} is signed by {:?}{}, not by the {TCB_SIGNING_CN:?} certificate directly under the Intel SGX Root CA",
                chain.leaf().subject_cn,
                if chain.certs.len() == 2 {
                    String::new()
                } else {
                    format!(
                        " through {} intermediate certificates",
                        chain.certs.len() - 2
                    )
                }
            ),
        ));
    }
    crls.check_cas(&chain)?;
    Ok(chain)
}

fn check_collateral_signature(
    chain: &IntelChain,
    signed: &[u8],
    signature: &[u8; 64],
    what: &str,
) -> Result<(), VerifyError> {
    verify_p256_fixed(&chain.leaf().public_key, signed, signature).map_err(|e| {
        VerifyError::new(
            Code::CollateralSignature,
            format!(
                "{what} signature does not verify under {}: {e}",
                chain.leaf().subject_cn
            ),
        )
    })
}

/// The QE report against the QE identity (Intel QVL `verifyQeIdentity`): MRSIGNER, ISVPRODID,
/// masked MISCSELECT and ATTRIBUTES, no debug QE; then the QE TCB level by ISVSVN.
fn appraise_qe(qe: &EnclaveReport, id: &QeIdentity) -> Result<QeVerdict, VerifyError> {
    let fail = |m: String| Err(VerifyError::new(Code::QeIdentity, m));
    if qe.mrsigner != id.mrsigner {
        return fail(format!(
            "QE MRSIGNER {} is not the QE identity's {}",
            hex::encode(qe.mrsigner),
            hex::encode(id.mrsigner)
        ));
    }
    if qe.attributes[0] & 0x02 != 0 {
        return fail("the quoting enclave is a debug enclave".into());
    }
    if qe.isv_prod_id != id.isvprodid {
        return fail(format!(
            "QE ISVPRODID {} is not the QE identity's {}",
            qe.isv_prod_id, id.isvprodid
        ));
    }
    // The identity gives MISCSELECT and its mask as 4 bytes in report (little-endian) order,
    // like ATTRIBUTES; compared bytewise, as dcap-qvl does.
    let misc = qe.miscselect.to_le_bytes();
    let masked = |v: &[u8], m: &[u8]| v.iter().zip(m).map(|(a, b)| a & b).collect::<Vec<u8>>();
    if masked(&misc, &id.miscselect_mask) != masked(&id.miscselect, &id.miscselect_mask) {
        return fail(format!(
            "QE MISCSELECT {:08x} does not match the QE identity under its mask",
            qe.miscselect
        ));
    }
    if masked(&qe.attributes, &id.attributes_mask) != masked(&id.attributes, &id.attributes_mask) {
        return fail(format!(
            "QE ATTRIBUTES {} do not match the QE identity under its mask",
            hex::encode(qe.attributes)
        ));
    }
    // Like Intel's QVL: every level must carry a status a QE identity may have (one that does
    // not makes the identity invalid, whichever level the QE matches), and the level is the
    // first one, in the order Intel wrote them, whose ISVSVN the QE meets.
    for level in &id.tcb_levels {
        ensure_status(level.tcb_status, &QE_IDENTITY_STATUSES, "QE identity")?;
    }
    let Some(level) = id.tcb_levels.iter().find(|l| qe.isv_svn >= l.tcb.isvsvn) else {
        return Err(VerifyError::new(
            Code::TcbLevelNotFound,
            format!(
                "QE ISVSVN {} is below every level of the QE identity (lowest {})",
                qe.isv_svn,
                id.tcb_levels
                    .iter()
                    .map(|l| l.tcb.isvsvn)
                    .min()
                    .unwrap_or(0)
            ),
        ));
    };
    Ok(QeVerdict {
        status: qe_status(TcbStatus::from_qvl(level.tcb_status)),
        advisory_ids: level.advisory_ids.clone(),
    })
}

/// The QE's TCB status as it bears on the quote (see [`qe_status`]) and its advisories.
#[derive(Debug, Clone, PartialEq, Eq)]
struct QeVerdict {
    status: TcbStatus,
    advisory_ids: Vec<String>,
}

fn hex_array<const N: usize>(s: &str, field: &str) -> Result<[u8; N], VerifyError> {
    hex::decode(s)
        .ok()
        .and_then(|v| <[u8; N]>::try_from(v).ok())
        .ok_or_else(|| {
            VerifyError::new(
                Code::MalformedCollateral,
                format!("TCB info {field} is not {N} bytes of hex"),
            )
        })
}

/// The TDX module that produced the quote is Intel's (Intel QVL `checkTdxModule`): MRSIGNERSEAM
/// and the masked SEAM attributes, from the module identity selected by `TEE_TCB_SVN[1]` or else
/// from `tdxModule`.
fn check_tdx_module(info: &TcbInfo, body: &TdxBody) -> Result<(), VerifyError> {
    let Some(base) = &info.tdx_module else {
        return Err(VerifyError::new(
            Code::MalformedCollateral,
            "TDX TCB info has no tdxModule",
        ));
    };
    let (mrsigner, attributes, mask) = match info.tdx_module_identity(&body.tee_tcb_svn) {
        Ok(Some(id)) => (&id.mrsigner, &id.attributes, &id.attributes_mask),
        _ => (&base.mrsigner, &base.attributes, &base.attributes_mask),
    };
    let mrsigner: [u8; 48] = hex_array(mrsigner, "TDX module mrsigner")?;
    let attributes: [u8; 8] = hex_array(attributes, "TDX module attributes")?;
    let mask: [u8; 8] = hex_array(mask, "TDX module attributesMask")?;
    if body.mrsignerseam != mrsigner {
        return Err(VerifyError::new(
            Code::TdxModule,
            format!(
                "MRSIGNERSEAM {} is not the TDX module signer {} of the TCB info",
                hex::encode(body.mrsignerseam),
                hex::encode(mrsigner)
            ),
        ));
    }
    let seam = body.seam_attributes;
    let ok =
        (0..8).all(|i| seam[i] & mask[i] == attributes[i] & mask[i] && seam[i] & !mask[i] == 0);
    if !ok {
        return Err(VerifyError::new(
            Code::TdxModule,
            format!(
                "SEAM attributes {} do not match the TDX module's {} under mask {}",
                hex::encode(seam),
                hex::encode(attributes),
                hex::encode(mask)
            ),
        ));
    }
    Ok(())
}

fn describe_shortfalls(level: &TcbLevel, pck: &PckInfo, svn: &[u8; 16]) -> String {
    match level.shortfalls(&pck.cpusvn, pck.pcesvn, Some(svn)) {
        Ok(s) => s
            .iter()
            .map(|s| {
                let name = match s.component {
                    dcap_qvl::SvnComponent::Sgx(i) => format!("sgx[{i}]"),
                    dcap_qvl::SvnComponent::Tdx(i) => format!("tdx[{i}]"),
                    dcap_qvl::SvnComponent::PceSvn => "pcesvn".into(),
                    dcap_qvl::SvnComponent::TdxModuleIsvSvn => "tdx module isvsvn".into(),
                };
                format!("{name}={} < {}", s.have, s.needs)
            })
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => format!("{e:#}"),
    }
}

/// The platform level met by CPUSVN/PCESVN and `svn` (TEE_TCB_SVN or TEE_TCB_SVN_2), converged
/// with the TDX module level (Intel QVL `getMatchingTcbLevel` and `convergeTcbStatuses`).
fn platform_status(
    info: &TcbInfo,
    levels: &[&TcbLevel],
    pck: &PckInfo,
    svn: &[u8; 16],
    which: &str,
) -> Result<TcbStatusWithAdvisory, VerifyError> {
    let mut found = None;
    for level in levels {
        let short = level
            .shortfalls(&pck.cpusvn, pck.pcesvn, Some(svn))
            .map_err(|e| VerifyError::new(Code::MalformedCollateral, format!("TCB info: {e:#}")))?;
        if short.is_empty() {
            found = Some(*level);
            break;
        }
    }
    let Some(level) = found else {
        let closest = levels
            .last()
            .map(|l| {
                format!(
                    "; against the lowest level ({}): {}",
                    l.tcb_date,
                    describe_shortfalls(l, pck, svn)
                )
            })
            .unwrap_or_default();
        return Err(VerifyError::new(
            Code::TcbLevelNotFound,
            format!(
                "no TCB level of the TCB info is met by CPUSVN {}, PCESVN {} and {which} {}{closest}",
                hex::encode(pck.cpusvn),
                pck.pcesvn,
                hex::encode(svn)
            ),
        ));
    };
    ensure_status(level.tcb_status, &TCB_INFO_STATUSES, "TCB info")?;
    let mut status = TcbStatusWithAdvisory::new(level.tcb_status, level.advisory_ids.clone());
    let identity = info.tdx_module_identity(svn).map_err(|e| {
        VerifyError::new(
            Code::TcbLevelNotFound,
            format!("{which} {}: {e:#}", hex::encode(svn)),
        )
    })?;
    if let Some(identity) = identity {
        let Some(module) = identity
            .tcb_levels
            .iter()
            .find(|l| l.shortfall(svn).is_none())
        else {
            return Err(VerifyError::new(
                Code::TcbLevelNotFound,
                format!(
                    "TDX module ISVSVN {} ({which}[0]) is below every level of module identity {}",
                    svn[0], identity.id
                ),
            ));
        };
        ensure_status(
            module.tcb_status,
            &TDX_MODULE_STATUSES,
            "TDX module identity",
        )?;
        status = status.merge(&TcbStatusWithAdvisory::new(
            module.tcb_status,
            module.advisory_ids.clone(),
        ));
    }
    Ok(status)
}

/// Intel QVL's order of TCB levels (it does not rely on the JSON order): SGX components, then
/// PCESVN, then TDX components, each highest first.
fn canonical_levels(info: &TcbInfo) -> Vec<&TcbLevel> {
    let mut levels: Vec<&TcbLevel> = info.tcb_levels.iter().collect();
    levels.sort_by(|a, b| {
        b.tcb
            .sgx_components
            .cmp(&a.tcb.sgx_components)
            .then_with(|| b.tcb.pce_svn.cmp(&a.tcb.pce_svn))
            .then_with(|| b.tcb.tdx_components.cmp(&a.tcb.tdx_components))
    });
    levels
}

/// A TCB status with the advisories that apply to it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TcbVerdict {
    status: TcbStatus,
    advisory_ids: Vec<String>,
}

/// The TCB status and advisories of the quote's platform, TDX module and QE, combined in Intel
/// QVL's order: the platform level with the TDX module, then (TDX 1.5) the relaunch check
/// against the current TCB, and the QE last. `Revoked` is returned as a status, for the caller
/// to report and refuse.
fn evaluate_tcb(
    info: &TcbInfo,
    pck: &PckInfo,
    body: &TdxBody,
    qe: &QeVerdict,
) -> Result<TcbVerdict, VerifyError> {
    let levels = canonical_levels(info);
    let launch = platform_status(info, &levels, pck, &body.tee_tcb_svn, "TEE_TCB_SVN")?;
    check_tdx_module(info, body)?;
    let current = match &body.tee_tcb_svn_2 {
        Some(svn2) => Some(TcbStatus::from_qvl(
            platform_status(info, &levels, pck, svn2, "TEE_TCB_SVN_2")?.status,
        )),
        None => None,
    };
    let mut status = TcbStatus::from_qvl(launch.status);
    // Unlike Intel's QVL, and like dcap-qvl, a revoked current TCB of a TDX 1.5 TD counts too.
    if status == TcbStatus::Revoked || current == Some(TcbStatus::Revoked) {
        status = TcbStatus::Revoked;
    } else if let Some(current) = current {
        status = status.check_for_relaunch(current);
    }
    status = converge_with_qe(status, qe.status);
    let mut advisory_ids = launch.advisory_ids;
    for id in &qe.advisory_ids {
        if !advisory_ids.contains(id) {
            advisory_ids.push(id.clone());
        }
    }
    Ok(TcbVerdict {
        status,
        advisory_ids,
    })
}

/// The QE and PCE SVNs the authenticity steps established, for the policy.
#[derive(Debug, Clone, Copy)]
struct Svns {
    qe: u16,
    pce: u16,
}

fn check_policy(
    quote: &TdxQuote,
    status: TcbStatus,
    advisory_ids: &[String],
    svns: Svns,
    policy: &TdxPolicy,
    warnings: &mut Vec<String>,
) -> Vec<VerifyError> {
    let mut errors = Vec::new();
    let b = &quote.body;
    let attrs = TdAttributes::decode(b.td_attributes);
    if attrs.tud != 0 && !policy.allow_debug {
        errors.push(VerifyError::new(
            Code::PolicyDebug,
            format!(
                "TD attributes {:#018x} mark a debug TD (TUD bits 7:0{}): the host can read and change its memory and CPU state; pass --allow-debug to accept it",
                attrs.raw,
                if attrs.debug { ", DEBUG set" } else { "" }
            ),
        ));
    }
    if !attrs.sept_ve_disable {
        if policy.require_sept_ve_disable {
            errors.push(VerifyError::new(
                Code::PolicySeptVeDisable,
                format!(
                    "TD attributes {:#018x} lack SEPT_VE_DISABLE (bit 28), which the policy requires",
                    attrs.raw
                ),
            ));
        } else {
            warnings.push("TD attribute SEPT_VE_DISABLE (bit 28) is not set: the TD must handle #VE on pending pages itself".into());
        }
    }
    if attrs.migratable {
        warnings.push("TD attribute MIGRATABLE (bit 29) is set: a migration TD may move this TD to another platform".into());
    }
    if b.mrservicetd.is_some_and(|m| m != [0u8; 48]) {
        warnings.push("MRSERVICETD is not zero: service TDs are bound to this TD".into());
    }
    let advisories = if advisory_ids.is_empty() {
        String::new()
    } else {
        format!(" ({})", advisory_ids.join(", "))
    };
    match policy.min_tcb_status {
        Some(min) if status > min => errors.push(VerifyError::new(
            Code::PolicyTcbStatus,
            format!("TCB status {status}{advisories} is worse than the minimum {min}"),
        )),
        _ if status != TcbStatus::UpToDate => warnings.push(format!(
            "TCB status is {status}{advisories}: accepted by the policy"
        )),
        _ => {}
    }
    if !policy.mrtd.is_empty() && !policy.mrtd.iter().any(|m| m.as_slice() == b.mrtd) {
        errors.push(VerifyError::new(
            Code::PolicyMrtd,
            format!(
                "MRTD {} is not {}",
                hex::encode(b.mrtd),
                match policy.mrtd.as_slice() {
                    [one] => format!("the expected {}", hex::encode(one)),
                    many => format!("any of the {} expected values", many.len()),
                }
            ),
        ));
    }
    let mut expect = |code: Code, name: &str, want: &Option<Vec<u8>>, have: &[u8]| {
        if let Some(w) = want {
            if w.as_slice() != have {
                errors.push(VerifyError::new(
                    code,
                    format!(
                        "{name} {} is not the expected {}",
                        hex::encode(have),
                        hex::encode(w)
                    ),
                ));
            }
        }
    };
    expect(
        Code::PolicyMrconfigid,
        "MRCONFIGID",
        &policy.mrconfigid,
        &b.mrconfigid,
    );
    expect(Code::PolicyMrowner, "MROWNER", &policy.mrowner, &b.mrowner);
    expect(
        Code::PolicyMrownerconfig,
        "MROWNERCONFIG",
        &policy.mrownerconfig,
        &b.mrownerconfig,
    );
    expect(Code::PolicyMrseam, "MRSEAM", &policy.mrseam, &b.mrseam);
    expect(
        Code::PolicyTdAttributes,
        "TD attributes",
        &policy.td_attributes,
        &b.td_attributes,
    );
    expect(Code::PolicyXfam, "XFAM", &policy.xfam, &b.xfam);
    for (i, name) in ["RTMR0", "RTMR1", "RTMR2", "RTMR3"].into_iter().enumerate() {
        expect(Code::PolicyRtmr, name, &policy.rtmrs[i], &b.rtmr[i]);
    }
    if let Some(min) = &policy.min_tee_tcb_svn {
        // Byte by byte, as go-tdx-guest compares it: every component at least the minimum's.
        let low: Vec<String> = (0..16)
            .filter(|&i| b.tee_tcb_svn[i] < min[i])
            .map(|i| format!("[{i}]={} < {}", b.tee_tcb_svn[i], min[i]))
            .collect();
        if !low.is_empty() {
            errors.push(VerifyError::new(
                Code::PolicyTeeTcbSvn,
                format!(
                    "TEE_TCB_SVN {} is below the minimum {}: {}",
                    hex::encode(b.tee_tcb_svn),
                    hex::encode(min),
                    low.join(", ")
                ),
            ));
        }
    }
    // The quote header's QE and PCE SVN bytes are zero in real version 4 quotes, so the signed
    // values are used: the QE report's ISVSVN and the PCK certificate's PCESVN.
    if let Some(min) = policy.min_qe_svn {
        if svns.qe < min {
            errors.push(VerifyError::new(
                Code::PolicyQeSvn,
                format!("the QE's ISVSVN {} is below the minimum {min}", svns.qe),
            ));
        }
    }
    if let Some(min) = policy.min_pce_svn {
        if svns.pce < min {
            errors.push(VerifyError::new(
                Code::PolicyQeSvn,
                format!(
                    "the PCK certificate's PCESVN {} is below the minimum {min}",
                    svns.pce
                ),
            ));
        }
    }
    errors.extend(crate::policy::check_report_data(
        &b.report_data,
        policy.report_data.as_ref(),
        None,
    ));
    errors
}

/// What the authenticity steps established.
struct Verified {
    quote: TdxQuote,
    pck: PckInfo,
    chain_links: Vec<crate::outcome::ChainLink>,
    status: TcbStatus,
    advisory_ids: Vec<String>,
    svns: Svns,
}

/// Steps 1 to 7 of the module documentation. On failure, what is known so far is returned with
/// the error so that the outcome still carries claims.
fn authenticate(
    ctx: &mut Ctx<'_>,
    quote_bytes: &[u8],
    collateral: &TdxCollateral,
    out: &mut Outcome,
) -> Result<Verified, VerifyError> {
    let quote = TdxQuote::parse(quote_bytes)
        .map_err(|e| VerifyError::new(Code::MalformedQuote, e.to_string()))?;
    out.claims = serde_json::to_value(TdxClaims::from_quote(&quote, None)).ok();
    if quote.header.qe_vendor_id != INTEL_QE_VENDOR_ID {
        return Err(VerifyError::new(
            Code::QeIdentity,
            format!(
                "QE vendor {} is not Intel's quoting enclave",
                hex::encode(quote.header.qe_vendor_id)
            ),
        ));
    }

    // 1. PCK chain.
    let pck_ders = match (&quote.pck_chain, &collateral.pck_chain) {
        (Some(c), _) | (None, Some(c)) => c.clone(),
        (None, None) => {
            return Err(VerifyError::new(
                Code::MissingEndorsement,
                format!(
                    "the quote carries no PCK chain (certification data type {}) and none was given",
                    quote.qe.inner_type
                ),
            ));
        }
    };
    let pck_certs = parse_certs(&pck_ders, "PCK chain")?;
    let Some((leaf, pool)) = pck_certs.split_first() else {
        return Err(VerifyError::new(
            Code::MissingEndorsement,
            "the PCK chain is empty",
        ));
    };
    let pck_chain = verify_intel_chain(leaf, pool, ctx.roots, ctx.at, "PCK")?;
    let pck = PckInfo::from_der(pck_chain.leaf().der())
        .map_err(|e| VerifyError::new(Code::MalformedCertificate, e.to_string()))?;
    out.claims = serde_json::to_value(TdxClaims::from_quote(&quote, Some(&pck))).ok();
    let mut chain_links = pck_chain.links("pck");

    // 2. Revocation.
    let root = pck_chain.root();
    let root_crl = match &collateral.root_ca_crl {
        Some(bytes) => {
            let crl = parse_crl(bytes, "root CA CRL")?;
            check_crl_issuer(&crl, root)?;
            ctx.check_dates("root CA CRL", crl.this_update, crl.next_update)?;
            Some(crl)
        }
        None => {
            ctx.missing_crl(
                "root CA CRL",
                "revocation of the Intel CAs (PCK CA, TCB Signing) was not checked",
            )?;
            None
        }
    };
    let crls = Crls { root: root_crl };
    crls.check_cas(&pck_chain)?;
    match &collateral.pck_crl {
        Some(bytes) => {
            let crl = parse_crl(bytes, "PCK CRL")?;
            check_crl_issuer(&crl, pck_chain.leaf_issuer())?;
            ctx.check_dates("PCK CRL", crl.this_update, crl.next_update)?;
            check_not_revoked(pck_chain.leaf(), &crl)?;
        }
        None => ctx.missing_crl(
            "PCK CRL",
            "revocation of the PCK certificate was not checked",
        )?,
    }

    // 3. QE report and its binding to the attestation key.
    verify_p256_fixed(
        &pck_chain.leaf().public_key,
        &quote.qe.qe_report,
        &quote.qe.qe_report_signature,
    )
    .map_err(|e| {
        VerifyError::new(
            Code::Signature,
            format!("QE report signature does not verify under the PCK key: {e}"),
        )
    })?;
    let qe_report = EnclaveReport::decode(&quote.qe.qe_report);
    let mut h = Sha256::new();
    h.update(quote.attestation_key);
    h.update(&quote.qe.qe_auth_data);
    if h.finalize()[..] != qe_report.report_data[..32] {
        return Err(VerifyError::new(
            Code::QeBinding,
            "QE report REPORTDATA is not SHA-256(attestation key ‖ QE authentication data): the attestation key was not certified by this QE",
        ));
    }

    // 4. The quote signature.
    let mut key = Vec::with_capacity(65);
    key.push(0x04);
    key.extend_from_slice(&quote.attestation_key);
    verify_p256_fixed(&key, quote.signed_bytes(), &quote.signature).map_err(|e| {
        VerifyError::new(
            Code::Signature,
            format!("quote signature does not verify under the attestation key: {e}"),
        )
    })?;

    // 5. TCB info and QE identity.
    let tcb_info = TcbInfoBody::parse(&collateral.tcb_info)
        .map_err(|e| VerifyError::new(Code::MalformedCollateral, e.to_string()))?;
    let tcb_chain = verify_signer_chain(ctx, &crls, &collateral.tcb_info_issuer_chain, "TCB info")?;
    check_collateral_signature(
        &tcb_chain,
        tcb_info.signed_bytes(),
        &tcb_info.signature,
        "TCB info",
    )?;
    let info = &tcb_info.content;
    if info.id != "TDX" || info.version < 3 {
        return Err(VerifyError::new(
            Code::CollateralMismatch,
            format!(
                "TCB info is {} version {}, not TDX version 3 or later",
                info.id, info.version
            ),
        ));
    }
    if !info.fmspc.eq_ignore_ascii_case(&hex::encode(pck.fmspc))
        || !info.pce_id.eq_ignore_ascii_case(&hex::encode(pck.pce_id))
    {
        return Err(VerifyError::new(
            Code::CollateralMismatch,
            format!(
                "TCB info is for FMSPC {} PCE ID {}, the PCK certificate for FMSPC {} PCE ID {}",
                info.fmspc,
                info.pce_id,
                hex::encode(pck.fmspc),
                hex::encode(pck.pce_id)
            ),
        ));
    }
    ctx.check_dates("TCB info", tcb_info.issue_date, Some(tcb_info.next_update))?;
    for link in tcb_chain.links("tcb-signing").into_iter().take(1) {
        chain_links.push(link);
    }

    let qe_identity = QeIdentityBody::parse(&collateral.qe_identity)
        .map_err(|e| VerifyError::new(Code::MalformedCollateral, e.to_string()))?;
    let qe_chain = if collateral.qe_identity_issuer_chain == collateral.tcb_info_issuer_chain {
        tcb_chain
    } else {
        let c = verify_signer_chain(
            ctx,
            &crls,
            &collateral.qe_identity_issuer_chain,
            "QE identity",
        )?;
        if !chain_links
            .iter()
            .any(|l| l.sha256 == hex::encode(Sha256::digest(c.leaf().der())))
        {
            chain_links.extend(c.links("qe-identity-signing").into_iter().take(1));
        }
        c
    };
    check_collateral_signature(
        &qe_chain,
        qe_identity.signed_bytes(),
        &qe_identity.signature,
        "QE identity",
    )?;
    let id = &qe_identity.content;
    if id.id != "TD_QE" || !matches!(id.version, 2 | 3) {
        return Err(VerifyError::new(
            Code::CollateralMismatch,
            format!(
                "QE identity is {} version {}, not TD_QE version 2 or 3",
                id.id, id.version
            ),
        ));
    }
    ctx.check_dates(
        "QE identity",
        qe_identity.issue_date,
        Some(qe_identity.next_update),
    )?;
    out.chain = chain_links.clone();

    // 6 and 7. The QE, the TDX module, the TCB status.
    let qe_status = appraise_qe(&qe_report, id)?;
    let TcbVerdict {
        status,
        advisory_ids,
    } = evaluate_tcb(info, &pck, &quote.body, &qe_status)?;
    if status == TcbStatus::Revoked {
        let listed = if advisory_ids.is_empty() {
            String::new()
        } else {
            format!(" ({})", advisory_ids.join(", "))
        };
        out.tcb_status = Some(status.to_string());
        out.advisory_ids = advisory_ids;
        return Err(VerifyError::new(
            Code::TcbRevoked,
            format!(
                "the platform, TDX module or QE TCB is Revoked{listed}: its keys cannot be trusted"
            ),
        ));
    }
    let svns = Svns {
        qe: qe_report.isv_svn,
        pce: pck.pcesvn,
    };
    Ok(Verified {
        quote,
        pck,
        chain_links,
        status,
        advisory_ids,
        svns,
    })
}

/// Verifies a TDX quote with its collateral at `at` (seconds since the epoch).
pub fn verify_quote(
    quote: &[u8],
    collateral: &TdxCollateral,
    at: i64,
    roots: &IntelRoots,
    policy: &TdxPolicy,
) -> Outcome {
    let mut out = Outcome::new("tdx", format_unix(at));
    out.simulated = roots.is_simulated();
    let mut ctx = Ctx {
        at,
        roots,
        policy,
        warnings: Vec::new(),
    };
    if roots.is_simulated() {
        ctx.warnings.push("verified against a TEST root, not the Intel SGX Root CA: this evidence proves nothing about real hardware".into());
    }
    match authenticate(&mut ctx, quote, collateral, &mut out) {
        Ok(v) => {
            out.claims = serde_json::to_value(TdxClaims::from_quote(&v.quote, Some(&v.pck))).ok();
            out.chain = v.chain_links;
            out.tcb_status = Some(v.status.to_string());
            out.advisory_ids = v.advisory_ids.clone();
            let errors = check_policy(
                &v.quote,
                v.status,
                &v.advisory_ids,
                v.svns,
                policy,
                &mut ctx.warnings,
            );
            out.errors.extend(errors);
        }
        Err(e) => out.errors.push(e),
    }
    out.warnings.extend(ctx.warnings);
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_and_order() {
        for s in ALL_STATUSES {
            assert_eq!(s.as_str().parse::<TcbStatus>(), Ok(s));
        }
        assert_eq!("outofdate".parse::<TcbStatus>(), Ok(TcbStatus::OutOfDate));
        assert!("fine".parse::<TcbStatus>().is_err());
        assert!(TcbStatus::UpToDate < TcbStatus::SWHardeningNeeded);
        assert!(TcbStatus::TDRelaunchAdvised < TcbStatus::OutOfDate);
        assert!(TcbStatus::OutOfDateConfigurationNeeded < TcbStatus::Revoked);
    }

    #[test]
    fn relaunch_matches_intel() {
        use TcbStatus::*;
        for (launch, current, expected) in [
            (OutOfDate, UpToDate, TDRelaunchAdvised),
            (OutOfDate, SWHardeningNeeded, TDRelaunchAdvised),
            (
                OutOfDate,
                ConfigurationNeeded,
                TDRelaunchAdvisedConfigurationNeeded,
            ),
            (
                OutOfDateConfigurationNeeded,
                UpToDate,
                TDRelaunchAdvisedConfigurationNeeded,
            ),
            (OutOfDate, OutOfDate, OutOfDate),
            (UpToDate, UpToDate, UpToDate),
            (ConfigurationNeeded, UpToDate, ConfigurationNeeded),
        ] {
            assert_eq!(launch.check_for_relaunch(current), expected);
        }
    }
}
