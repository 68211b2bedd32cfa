// SPDX-License-Identifier: Apache-2.0
//! Simulated Intel TDX quoting: builds v4 TDX quotes the way Intel's TD quoting enclave lays them
//! out and signs them (quote signature by the attestation key, QE report signed by the PCK key and
//! binding the attestation key, PCK chain in certification data type 5 nested in type 6), and the
//! DCAP collateral that goes with them (TCB info, QE identity, CRLs), signed by the simulated
//! Intel PKI committed under `agent/sim/keys/tdx/` (see its README). The bytes are laid out by
//! `thimble_evidence::tdx`'s encoders, the same layouts the parser reads; this module only fills
//! in values and signs.
//!
//! Everything here is test material. The PKI is rooted in a simulation "Intel SGX Root CA" that a
//! real verification never trusts (only `--insecure-allow-simulated` accepts it), so nothing
//! signed here can pass for real evidence. The collateral's dates are computed around the time
//! the caller gives, so a simulation always sees fresh collateral.

use std::sync::Arc;

use ring::digest::{SHA256, SHA384, digest};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::Serialize;
use thimble_collect::tdx_guest::TDX_REPORT_LEN;
use thimble_evidence::tdx::pcs::PckCa;
use thimble_evidence::tdx::quote::CERT_DATA_PCK_CHAIN;
use thimble_evidence::tdx::{
    EnclaveReport, QeCertification, QuoteHeader, SignatureData, TdReportFields, TdxBody,
    UnsignedQuote,
};
use thimble_evidence::time_fmt::format_unix;

use crate::fake_qgs::QuoteMaker;
use crate::fake_tdx_guest::TdReportTemplate;
use crate::fake_tsm::ReportGenerator;
use crate::intel_emulator::{IntelEmulatorConfig, ServedItem, thim_pck_cert_body};

/// FMSPC of the simulated platform, as in the PCK certificate's SGX extension. Not a real
/// family/model/stepping encoding, so it never selects a real platform's collateral.
pub const SIM_FMSPC: [u8; 6] = [0x00, 0x51, 0x3D, 0x00, 0x00, 0x00];

/// PCE ID of the simulated platform (0, as on every Intel platform so far).
pub const SIM_PCE_ID: [u8; 2] = [0x00, 0x00];

/// CPUSVN the simulated PCK certificate is issued for (also the QE report's CPUSVN and the
/// `cpu_svn` of [`TdQuoteTemplate::td_report_template`]). The TCB info's UpToDate level requires
/// exactly this.
pub const SIM_CPUSVN: [u8; 16] = [3, 3, 2, 2, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// PCESVN the simulated PCK certificate is issued for.
pub const SIM_PCESVN: u16 = 13;

/// TEE_TCB_SVN of the TCB info's UpToDate level: TDX module ISVSVN 5, module major version 1
/// (so the module identity `TDX_01` judges components 0 and 1), component 2 at 2. The same as
/// `fake_tdx_guest`'s default report.
pub const SIM_TEE_TCB_SVN: [u8; 16] = [5, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// TEE_TCB_SVN that meets only the TCB info's OutOfDate level (module ISVSVN 3, component 2 at
/// 1).
pub const SIM_OUT_OF_DATE_TEE_TCB_SVN: [u8; 16] = [3, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// ISVSVN of the simulated quoting enclave: the QE identity's UpToDate level.
pub const SIM_QE_ISVSVN: u16 = 4;

/// ISVPRODID of Intel's TD quoting enclave, which the simulated one shares.
pub const SIM_QE_ISVPRODID: u16 = 2;

/// TD attribute bit 28, SEPT_VE_DISABLE, in the little-endian byte layout of TD_ATTRIBUTES.
pub const TD_ATTRIBUTES_SEPT_VE_DISABLE: [u8; 8] = [0, 0, 0, 0x10, 0, 0, 0, 0];

/// TD attribute bit 0, DEBUG.
pub const TD_ATTRIBUTES_DEBUG: [u8; 8] = [0x01, 0, 0, 0, 0, 0, 0, 0];

/// `tcbEvaluationDataNumber` of the simulated TCB info and QE identity.
pub const SIM_TCB_EVALUATION_DATA_NUMBER: u32 = 17;

/// Advisory listed on the OutOfDate levels of the simulated collateral; obviously not Intel's.
pub const SIM_ADVISORY_ID: &str = "THIMBLE-SIM-SA-00001";

/// Quote version: Intel's TD QE writes v4 quotes with a TDX 1.0 body.
const QUOTE_VERSION: u16 = 4;

/// TCB info `tcbDate`s of the simulated levels.
const UP_TO_DATE_TCB_DATE: &str = "2024-11-13T00:00:00Z";
const OUT_OF_DATE_TCB_DATE: &str = "2023-08-09T00:00:00Z";

/// How long before and after `at` the simulated collateral is issued and due for renewal.
const ISSUED_BEFORE_SECS: i64 = 86_400;
const NEXT_UPDATE_AFTER_SECS: i64 = 30 * 86_400;

fn sha256(label: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, label.as_bytes()).as_ref());
    out
}

fn sha384(label: &str) -> [u8; 48] {
    let mut out = [0u8; 48];
    out.copy_from_slice(digest(&SHA384, label.as_bytes()).as_ref());
    out
}

/// The committed simulated Intel PKI (`agent/sim/keys/tdx/`).
#[derive(Clone, Copy, Debug)]
pub struct SimTdxPki {
    /// Simulated "Intel SGX Root CA", P-256, self-signed, DER.
    pub root_ca_der: &'static [u8],
    /// Simulated "Intel SGX PCK Platform CA", issued by the root, DER.
    pub pck_ca_der: &'static [u8],
    /// Simulated "Intel SGX TCB Signing", issued by the root, DER.
    pub tcb_signing_der: &'static [u8],
    /// Simulated "Intel SGX PCK Certificate" for [`SIM_FMSPC`] at [`SIM_CPUSVN`]/[`SIM_PCESVN`],
    /// issued by the PCK CA, DER.
    pub pck_der: &'static [u8],
    /// The PCK private key, unencrypted PKCS#8 DER.
    pub pck_pk8: &'static [u8],
    /// The TCB Signing private key, unencrypted PKCS#8 DER.
    pub tcb_signing_pk8: &'static [u8],
    /// The simulated quoting enclave's attestation key, unencrypted PKCS#8 DER.
    pub attestation_pk8: &'static [u8],
    /// Empty PCK CRL signed by the PCK CA, valid 2024-01-01 to 2049-12-31, DER.
    pub pck_crl_der: &'static [u8],
    /// Empty root CA CRL signed by the root, valid 2024-01-01 to 2049-12-31, DER.
    pub root_ca_crl_der: &'static [u8],
    /// PCK, PCK CA, root, PEM (the quote's certification data type 5).
    pub pck_chain_pem: &'static str,
    /// PCK CA, root, PEM.
    pub pck_crl_issuer_chain_pem: &'static str,
    /// TCB Signing, root, PEM.
    pub tcb_signing_chain_pem: &'static str,
}

/// The simulated Intel PKI, embedded at build time.
pub fn sim_tdx_pki() -> SimTdxPki {
    SimTdxPki {
        root_ca_der: include_bytes!("../keys/tdx/root_ca.der"),
        pck_ca_der: include_bytes!("../keys/tdx/pck_ca.der"),
        tcb_signing_der: include_bytes!("../keys/tdx/tcb_signing.der"),
        pck_der: include_bytes!("../keys/tdx/pck.der"),
        pck_pk8: include_bytes!("../keys/tdx/pck.pk8"),
        tcb_signing_pk8: include_bytes!("../keys/tdx/tcb_signing.pk8"),
        attestation_pk8: include_bytes!("../keys/tdx/attestation.pk8"),
        pck_crl_der: include_bytes!("../keys/tdx/pck_crl.der"),
        root_ca_crl_der: include_bytes!("../keys/tdx/root_ca_crl.der"),
        pck_chain_pem: include_str!("../keys/tdx/pck_chain.pem"),
        pck_crl_issuer_chain_pem: include_str!("../keys/tdx/pck_crl_issuer_chain.pem"),
        tcb_signing_chain_pem: include_str!("../keys/tdx/tcb_signing_chain.pem"),
    }
}

/// The simulated quoting enclave's report (`sgx_report_body_t`), as far as QE identity appraisal
/// looks at it. The defaults match the simulated QE identity's UpToDate level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QeReportTemplate {
    /// CPUSVN of the platform the QE ran on.
    pub cpu_svn: [u8; 16],
    /// MISCSELECT, compared under the QE identity's `miscselectMask`.
    pub miscselect: u32,
    /// ATTRIBUTES in report byte order (flags, then XFRM).
    pub attributes: [u8; 16],
    /// MRENCLAVE: the QE's measurement (QE identity appraisal does not look at it).
    pub mrenclave: [u8; 32],
    /// MRSIGNER: hash of the QE's signing key; must equal the QE identity's `mrsigner`.
    pub mrsigner: [u8; 32],
    /// ISVPRODID; must equal the QE identity's `isvprodid`.
    pub isv_prod_id: u16,
    /// ISVSVN: picks the QE identity's TCB level, the first one it reaches (4 UpToDate and 2
    /// OutOfDate in the simulated identity).
    pub isv_svn: u16,
}

impl Default for QeReportTemplate {
    /// `mrsigner` is `sha256("thimble simulated TD QE signer")` and `mrenclave`
    /// `sha256("thimble simulated TD QE")`, obviously synthetic; ATTRIBUTES are those of Intel's
    /// production QE (INIT, MODE64BIT, PROVISIONKEY; XFRM 0xe7), which the identity's mask
    /// accepts; ISVPRODID 2 and ISVSVN 4.
    fn default() -> Self {
        Self {
            cpu_svn: SIM_CPUSVN,
            miscselect: 0,
            attributes: [0x15, 0, 0, 0, 0, 0, 0, 0, 0xe7, 0, 0, 0, 0, 0, 0, 0],
            mrenclave: sha256("thimble simulated TD QE"),
            mrsigner: sha256("thimble simulated TD QE signer"),
            isv_prod_id: SIM_QE_ISVPRODID,
            isv_svn: SIM_QE_ISVSVN,
        }
    }
}

impl QeReportTemplate {
    /// The QE report with `report_data`.
    fn enclave_report(&self, report_data: &[u8; 64]) -> EnclaveReport {
        EnclaveReport {
            cpu_svn: self.cpu_svn,
            miscselect: self.miscselect,
            attributes: self.attributes,
            mrenclave: self.mrenclave,
            mrsigner: self.mrsigner,
            isv_prod_id: self.isv_prod_id,
            isv_svn: self.isv_svn,
            report_data: *report_data,
        }
    }
}

/// What the simulated TD and TDX module report, plus the quoting enclave's side of the quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdQuoteTemplate {
    /// Quote header `user_data`: the QE ID (16 bytes) and 4 zero bytes, as Intel's QE fills it.
    pub user_data: [u8; 20],
    /// TEE_TCB_SVN of the TDX module, matched against the TCB info's `tdxtcbcomponents` and
    /// module identities ([`SIM_TEE_TCB_SVN`] is UpToDate, [`SIM_OUT_OF_DATE_TEE_TCB_SVN`]
    /// OutOfDate).
    pub tee_tcb_svn: [u8; 16],
    /// MRSEAM: measurement of the TDX module.
    pub mr_seam: [u8; 48],
    /// MRSIGNERSEAM: the module signer's measurement, matched against the TDX module `mrsigner`
    /// of the TCB info (all zero, as for Intel's modules).
    pub mr_signer_seam: [u8; 48],
    /// SEAMATTRIBUTES of the TDX module, matched against the TCB info's TDX module attributes
    /// under their mask (all zero).
    pub seam_attributes: [u8; 8],
    /// TD_ATTRIBUTES, little-endian (see [`TD_ATTRIBUTES_DEBUG`] and
    /// [`TD_ATTRIBUTES_SEPT_VE_DISABLE`]).
    pub td_attributes: [u8; 8],
    /// XFAM: the XCR0/IA32_XSS feature bits the TD may use.
    pub xfam: [u8; 8],
    /// MRTD: the TD's build-time measurement.
    pub mr_td: [u8; 48],
    /// MRCONFIGID, set by the host when it creates the TD.
    pub mr_config_id: [u8; 48],
    /// MROWNER, set by the host when it creates the TD.
    pub mr_owner: [u8; 48],
    /// MROWNERCONFIG, set by the host when it creates the TD.
    pub mr_owner_config: [u8; 48],
    /// RTMR\[0..4\]: the runtime measurement registers.
    pub rtmr: [[u8; 48]; 4],
    /// The quoting enclave's report, which the PCK key signs.
    pub qe: QeReportTemplate,
    /// QE authentication data; the QE report binds SHA-256(attestation key ‖ this).
    pub qe_auth_data: Vec<u8>,
}

impl Default for TdQuoteTemplate {
    /// A production TD on the simulated platform at the TCB info's UpToDate level:
    /// SEPT_VE_DISABLE set and DEBUG clear; `mr_td` is `sha384("thimble simulated TD")`, RTMR0..3
    /// the values the simulated TD's event log replays to ([`crate::boot_log::td_boot`]: RTMR3
    /// zero), the owner/config measurements zero;
    /// `mr_seam` `sha384("thimble simulated TDX module")` and `mr_signer_seam` zero (Intel signs
    /// its own TDX module with an all-zero MRSIGNERSEAM, and so does the simulated TCB info);
    /// `xfam` 0x602e7 (x87, SSE, AVX, AVX-512 state, PKRU); `user_data` starts with
    /// `sha256("thimble simulated QE ID")[..16]`; QE authentication data 0x00..0x1f as Intel's QE
    /// sends it.
    fn default() -> Self {
        let mut user_data = [0u8; 20];
        user_data[..16].copy_from_slice(&sha256("thimble simulated QE ID")[..16]);
        Self {
            user_data,
            tee_tcb_svn: SIM_TEE_TCB_SVN,
            mr_seam: sha384("thimble simulated TDX module"),
            mr_signer_seam: [0; 48],
            seam_attributes: [0; 8],
            td_attributes: TD_ATTRIBUTES_SEPT_VE_DISABLE,
            xfam: [0xe7, 0x02, 0x06, 0, 0, 0, 0, 0],
            mr_td: sha384("thimble simulated TD"),
            mr_config_id: [0; 48],
            mr_owner: [0; 48],
            mr_owner_config: [0; 48],
            // The registers the simulated TD's CCEL log replays to, so that the log a
            // simulated collection carries is the record of the quoted boot.
            rtmr: crate::boot_log::td_boot().rtmr,
            qe: QeReportTemplate::default(),
            qe_auth_data: (0u8..32).collect(),
        }
    }
}

impl TdQuoteTemplate {
    /// The default TD on a TDX module that meets only the TCB info's OutOfDate level.
    pub fn out_of_date() -> Self {
        Self {
            tee_tcb_svn: SIM_OUT_OF_DATE_TEE_TCB_SVN,
            ..Self::default()
        }
    }

    /// The TD fields of `td_report` (a `TDREPORT_STRUCT`, docs/formats.md §6.2) and its report
    /// data; the QE side keeps its defaults. The report's MAC is not checked: only the CPU could.
    pub fn from_td_report(td_report: &[u8; TDX_REPORT_LEN]) -> (Self, [u8; 64]) {
        let r = TdReportFields::decode(td_report);
        let template = Self {
            tee_tcb_svn: r.tee_tcb_svn,
            mr_seam: r.mrseam,
            mr_signer_seam: r.mrsignerseam,
            seam_attributes: r.seam_attributes,
            td_attributes: r.td_attributes,
            xfam: r.xfam,
            mr_td: r.mrtd,
            mr_config_id: r.mrconfigid,
            mr_owner: r.mrowner,
            mr_owner_config: r.mrownerconfig,
            rtmr: r.rtmr,
            ..Self::default()
        };
        (template, r.report_data)
    }

    /// The `fake_tdx_guest` template whose reports quote to this template (with the platform's
    /// CPUSVN), so that a simulated `/dev/tdx_guest` and this signer agree.
    pub fn td_report_template(&self) -> TdReportTemplate {
        TdReportTemplate {
            cpu_svn: SIM_CPUSVN,
            tee_tcb_svn: self.tee_tcb_svn,
            mr_seam: self.mr_seam,
            mr_signer_seam: self.mr_signer_seam,
            seam_attributes: self.seam_attributes,
            td_attributes: self.td_attributes,
            xfam: self.xfam,
            mr_td: self.mr_td,
            mr_config_id: self.mr_config_id,
            mr_owner: self.mr_owner,
            mr_owner_config: self.mr_owner_config,
            rtmr: self.rtmr,
        }
    }

    /// The header and TDX 1.0 body Intel's TD QE quotes this TD with (docs/formats.md §6.3).
    /// The header's reserved bytes are zero, as Intel's QE leaves them.
    fn unsigned_quote(&self, report_data: &[u8; 64]) -> UnsignedQuote {
        UnsignedQuote {
            header: QuoteHeader::tdx(QUOTE_VERSION, self.user_data),
            body: TdxBody {
                tee_tcb_svn: self.tee_tcb_svn,
                mrseam: self.mr_seam,
                mrsignerseam: self.mr_signer_seam,
                seam_attributes: self.seam_attributes,
                td_attributes: self.td_attributes,
                xfam: self.xfam,
                mrtd: self.mr_td,
                mrconfigid: self.mr_config_id,
                mrowner: self.mr_owner,
                mrownerconfig: self.mr_owner_config,
                rtmr: self.rtmr,
                report_data: *report_data,
                tee_tcb_svn_2: None,
                mrservicetd: None,
            },
        }
    }
}

/// DCAP collateral for the simulated platform, as the collateral service serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCollateral {
    /// `{"tcbInfo":{…},"signature":"…"}`, TDX TCB info version 3, signed by TCB Signing.
    pub tcb_info: Vec<u8>,
    /// TCB Signing, root, PEM.
    pub tcb_info_issuer_chain_pem: String,
    /// `{"enclaveIdentity":{…},"signature":"…"}`, TD_QE identity version 2, signed by TCB
    /// Signing.
    pub qe_identity: Vec<u8>,
    /// TCB Signing, root, PEM.
    pub qe_identity_issuer_chain_pem: String,
    /// The PCK CA's CRL, DER.
    pub pck_crl_der: Vec<u8>,
    /// PCK CA, root, PEM.
    pub pck_crl_issuer_chain_pem: String,
    /// The root's CRL, DER.
    pub root_ca_crl_der: Vec<u8>,
    /// The simulated root, DER: what `IntelRoots::insecure_custom` must be given.
    pub root_der: Vec<u8>,
}

/// One SVN of a TCB info level; Intel names the components it uses.
#[derive(Serialize)]
struct Component {
    svn: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<&'static str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
}

/// Names of the SGX TCB components Intel labels in TDX TCB info (the rest are bare SVNs).
const SGX_COMPONENT_NAMES: [(usize, &str, &str); 5] = [
    (0, "BIOS", "Early Microcode Update"),
    (1, "OS/VMM", "SGX Late Microcode Update"),
    (2, "OS/VMM", "TXT SINIT"),
    (3, "BIOS", ""),
    (7, "OS/VMM", "SEAMLDR ACM"),
];
const TDX_COMPONENT_NAMES: [(usize, &str, &str); 3] = [
    (0, "OS/VMM", "TDX Module"),
    (1, "OS/VMM", "TDX Module"),
    (2, "OS/VMM", "TDX Late Microcode Update"),
];

fn components(svns: &[u8; 16], names: &[(usize, &'static str, &'static str)]) -> Vec<Component> {
    svns.iter()
        .enumerate()
        .map(|(i, &svn)| {
            let name = names.iter().find(|(n, _, _)| *n == i);
            Component {
                svn,
                category: name.map(|(_, c, _)| *c),
                kind: name.map(|(_, _, t)| *t).filter(|t| !t.is_empty()),
            }
        })
        .collect()
}

#[derive(Serialize)]
struct PlatformTcb {
    sgxtcbcomponents: Vec<Component>,
    pcesvn: u16,
    tdxtcbcomponents: Vec<Component>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Level<T> {
    tcb: T,
    tcb_date: &'static str,
    tcb_status: &'static str,
    #[serde(rename = "advisoryIDs", skip_serializing_if = "Vec::is_empty")]
    advisory_ids: Vec<&'static str>,
}

#[derive(Serialize)]
struct IsvSvn {
    isvsvn: u16,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TdxModule {
    mrsigner: String,
    attributes: &'static str,
    attributes_mask: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TdxModuleIdentity {
    id: String,
    #[serde(flatten)]
    module: TdxModule,
    tcb_levels: Vec<Level<IsvSvn>>,
}

/// Intel's TCB info v3 for TDX, fields in the order PCS sends them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TcbInfo {
    id: &'static str,
    version: u32,
    issue_date: String,
    next_update: String,
    fmspc: String,
    pce_id: String,
    tcb_type: u32,
    tcb_evaluation_data_number: u32,
    tdx_module: TdxModule,
    tdx_module_identities: Vec<TdxModuleIdentity>,
    tcb_levels: Vec<Level<PlatformTcb>>,
}

/// Intel's enclave identity v2 for the TD QE, fields in the order PCS sends them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EnclaveIdentity {
    id: &'static str,
    version: u32,
    issue_date: String,
    next_update: String,
    tcb_evaluation_data_number: u32,
    miscselect: String,
    miscselect_mask: &'static str,
    attributes: &'static str,
    attributes_mask: &'static str,
    mrsigner: String,
    isvprodid: u16,
    tcb_levels: Vec<Level<IsvSvn>>,
}

fn level<T>(tcb: T, up_to_date: bool) -> Level<T> {
    if up_to_date {
        Level {
            tcb,
            tcb_date: UP_TO_DATE_TCB_DATE,
            tcb_status: "UpToDate",
            advisory_ids: Vec::new(),
        }
    } else {
        Level {
            tcb,
            tcb_date: OUT_OF_DATE_TCB_DATE,
            tcb_status: "OutOfDate",
            advisory_ids: vec![SIM_ADVISORY_ID],
        }
    }
}

/// The simulated TDX module: Intel's (all-zero) signer, no SEAM attributes, all of them checked.
fn sim_tdx_module() -> TdxModule {
    TdxModule {
        mrsigner: "00".repeat(48),
        attributes: "0000000000000000",
        attributes_mask: "FFFFFFFFFFFFFFFF",
    }
}

fn json<T: Serialize>(value: &T) -> String {
    // Plain structs of strings and integers: serde_json cannot fail on them.
    serde_json::to_string(value).expect("collateral structs serialise")
}

/// Simulated TDX platform: the quoting enclave, the PCK and the collateral service's signer.
#[derive(Debug)]
pub struct SimTdx {
    pki: SimTdxPki,
    attestation_key: EcdsaKeyPair,
    pck_key: EcdsaKeyPair,
    tcb_signing_key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl SimTdx {
    /// The simulated platform from the committed keys.
    pub fn load() -> Self {
        let pki = sim_tdx_pki();
        let rng = SystemRandom::new();
        // The keys are committed fixtures that the tests below load; they cannot be malformed at
        // run time.
        let key = |pk8: &[u8]| {
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pk8, &rng)
                .expect("the committed simulated Intel keys load")
        };
        Self {
            attestation_key: key(pki.attestation_pk8),
            pck_key: key(pki.pck_pk8),
            tcb_signing_key: key(pki.tcb_signing_pk8),
            pki,
            rng,
        }
    }

    /// The committed PKI this platform signs with.
    pub fn pki(&self) -> &SimTdxPki {
        &self.pki
    }

    /// The attestation public key as a quote carries it: `x ‖ y`, without the SEC1 0x04 prefix.
    pub fn attestation_public_key(&self) -> [u8; 64] {
        let mut key = [0u8; 64];
        // ring's P-256 public key is always the 65-byte uncompressed point.
        key.copy_from_slice(&self.attestation_key.public_key().as_ref()[1..]);
        key
    }

    /// `r ‖ s` (32 bytes each, big-endian) over `message`, as DCAP stores ECDSA signatures.
    fn sign(&self, key: &EcdsaKeyPair, message: &[u8]) -> [u8; 64] {
        // ring only fails to sign when the system RNG fails, which leaves nothing to simulate.
        let signature = key
            .sign(&self.rng, message)
            .expect("system random number generator available");
        let mut out = [0u8; 64];
        out.copy_from_slice(signature.as_ref());
        out
    }

    /// A signed v4 TDX quote of `t` with `report_data`: header ‖ TD body, then the signature
    /// data (quote signature by the attestation key, attestation key, certification data type 6
    /// holding the QE report signed by the PCK key, the QE authentication data, and type 5 with
    /// the PEM PCK chain, NUL-terminated as Intel's QE writes it).
    pub fn quote(&self, t: &TdQuoteTemplate, report_data: &[u8; 64]) -> Vec<u8> {
        let unsigned = t.unsigned_quote(report_data);
        let signature = self.sign(&self.attestation_key, &unsigned.signed_bytes());
        let attestation_key = self.attestation_public_key();

        // DCAP: the QE report's REPORTDATA is SHA-256(attestation key ‖ QE auth data) ‖ zeros.
        let mut binding = Vec::with_capacity(64 + t.qe_auth_data.len());
        binding.extend_from_slice(&attestation_key);
        binding.extend_from_slice(&t.qe_auth_data);
        let mut qe_report_data = [0u8; 64];
        qe_report_data[..32].copy_from_slice(digest(&SHA256, &binding).as_ref());
        let qe_report = t.qe.enclave_report(&qe_report_data).encode();
        let qe_report_signature = self.sign(&self.pck_key, &qe_report);

        let mut pck_chain = self.pki.pck_chain_pem.as_bytes().to_vec();
        pck_chain.push(0);
        // A template with more than 64 KiB of auth data is truncated to what its u16 size field
        // can count rather than refused. With that, and the committed chain far below the u32
        // limits, no length overflows its field and the encoder cannot fail.
        let auth = &t.qe_auth_data[..t.qe_auth_data.len().min(usize::from(u16::MAX))];
        let signature_data = SignatureData {
            signature,
            attestation_key,
            qe: QeCertification {
                qe_report,
                qe_report_signature,
                qe_auth_data: auth.to_vec(),
                inner_type: CERT_DATA_PCK_CHAIN,
                inner_data: pck_chain,
            },
        };
        unsigned
            .to_bytes(&signature_data)
            .expect("every length is within its size field")
    }

    /// The quote the host's quote generation service would make of `td_report` (as produced by
    /// `fake_tdx_guest`): TD fields and report data from the report, QE side from the defaults.
    pub fn quote_from_td_report(&self, td_report: &[u8; TDX_REPORT_LEN]) -> Vec<u8> {
        let (template, report_data) = TdQuoteTemplate::from_td_report(td_report);
        self.quote(&template, &report_data)
    }

    /// A `fake_qgs` quote maker that answers with [`SimTdx::quote_from_td_report`]. A request
    /// whose report is not a whole TDREPORT gets an empty quote, as a service that cannot quote
    /// it would send none.
    pub fn quote_maker(self: Arc<Self>) -> QuoteMaker {
        Arc::new(
            move |report: &[u8]| match <&[u8; TDX_REPORT_LEN]>::try_from(report) {
                Ok(report) => self.quote_from_td_report(report),
                Err(_) => Vec::new(),
            },
        )
    }

    /// A `fake_tsm` report generator for the `tdx_guest` provider: the `inblob` becomes the TD's
    /// report data and the `outblob` a quote of `template`, with no `auxblob` content.
    pub fn tsm_generator(self: Arc<Self>, template: TdQuoteTemplate) -> ReportGenerator {
        Box::new(move |inblob, _privlevel| Ok((self.quote(&template, inblob), Vec::new())))
    }

    /// Collateral for the simulated platform, fresh at `at` (seconds since the epoch): issued a
    /// day before, next update 30 days after. The TCB info has one UpToDate level (the PCK's
    /// CPUSVN/PCESVN and [`SIM_TEE_TCB_SVN`]) and one OutOfDate level below it, and module
    /// identity `TDX_01` with the same two statuses; the QE identity matches
    /// [`QeReportTemplate::default`] at ISVSVN 4 (UpToDate) and has an OutOfDate level at 2.
    pub fn collateral(&self, at: i64) -> SimCollateral {
        let issue_date = format_unix(at.saturating_sub(ISSUED_BEFORE_SECS));
        let next_update = format_unix(at.saturating_add(NEXT_UPDATE_AFTER_SECS));
        let tcb_chain = self.pki.tcb_signing_chain_pem.to_owned();
        SimCollateral {
            tcb_info: self.signed_body("tcbInfo", &self.tcb_info_json(&issue_date, &next_update)),
            tcb_info_issuer_chain_pem: tcb_chain.clone(),
            qe_identity: self.signed_body(
                "enclaveIdentity",
                &self.qe_identity_json(&issue_date, &next_update),
            ),
            qe_identity_issuer_chain_pem: tcb_chain,
            pck_crl_der: self.pki.pck_crl_der.to_vec(),
            pck_crl_issuer_chain_pem: self.pki.pck_crl_issuer_chain_pem.to_owned(),
            root_ca_crl_der: self.pki.root_ca_crl_der.to_vec(),
            root_der: self.pki.root_ca_der.to_vec(),
        }
    }

    /// A collateral body (TCB info or QE identity) with its inner object changed by `edit`, then
    /// signed again by the simulated TCB Signing key: for tests of what a verifier makes of
    /// collateral that Intel signed but that says something unusual.
    pub fn resign(&self, body: &[u8], edit: impl FnOnce(&str) -> String) -> Vec<u8> {
        let text = String::from_utf8_lossy(body);
        let (key, rest) = match text.strip_prefix("{\"tcbInfo\":") {
            Some(rest) => ("tcbInfo", rest),
            None => (
                "enclaveIdentity",
                text.strip_prefix("{\"enclaveIdentity\":").unwrap_or(&text),
            ),
        };
        let inner = rest
            .rsplit_once(",\"signature\":")
            .map_or(rest, |(inner, _)| inner);
        self.signed_body(key, &edit(inner))
    }

    /// `{"<key>":<inner>,"signature":"<hex r ‖ s>"}` with the signature over the exact bytes of
    /// `inner`, as PCS signs.
    fn signed_body(&self, key: &str, inner: &str) -> Vec<u8> {
        let signature = self.sign(&self.tcb_signing_key, inner.as_bytes());
        format!(
            "{{\"{key}\":{inner},\"signature\":\"{}\"}}",
            hex::encode(signature)
        )
        .into_bytes()
    }

    fn tcb_info_json(&self, issue_date: &str, next_update: &str) -> String {
        let platform = |sgx: &[u8; 16], pcesvn: u16, tdx: &[u8; 16]| PlatformTcb {
            sgxtcbcomponents: components(sgx, &SGX_COMPONENT_NAMES),
            pcesvn,
            tdxtcbcomponents: components(tdx, &TDX_COMPONENT_NAMES),
        };
        let old_cpusvn: [u8; 16] = [2, 2, 2, 2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let module_version = SIM_TEE_TCB_SVN[1];
        json(&TcbInfo {
            id: "TDX",
            version: 3,
            issue_date: issue_date.to_owned(),
            next_update: next_update.to_owned(),
            fmspc: hex::encode_upper(SIM_FMSPC),
            pce_id: hex::encode_upper(SIM_PCE_ID),
            tcb_type: 0,
            tcb_evaluation_data_number: SIM_TCB_EVALUATION_DATA_NUMBER,
            tdx_module: sim_tdx_module(),
            tdx_module_identities: vec![TdxModuleIdentity {
                id: format!("TDX_{module_version:02X}"),
                module: sim_tdx_module(),
                tcb_levels: vec![
                    level(
                        IsvSvn {
                            isvsvn: u16::from(SIM_TEE_TCB_SVN[0]),
                        },
                        true,
                    ),
                    level(
                        IsvSvn {
                            isvsvn: u16::from(SIM_OUT_OF_DATE_TEE_TCB_SVN[0]),
                        },
                        false,
                    ),
                ],
            }],
            tcb_levels: vec![
                level(platform(&SIM_CPUSVN, SIM_PCESVN, &SIM_TEE_TCB_SVN), true),
                level(
                    platform(
                        &old_cpusvn,
                        SIM_PCESVN.saturating_sub(2),
                        &SIM_OUT_OF_DATE_TEE_TCB_SVN,
                    ),
                    false,
                ),
            ],
        })
    }

    fn qe_identity_json(&self, issue_date: &str, next_update: &str) -> String {
        let qe = QeReportTemplate::default();
        json(&EnclaveIdentity {
            id: "TD_QE",
            version: 2,
            issue_date: issue_date.to_owned(),
            next_update: next_update.to_owned(),
            tcb_evaluation_data_number: SIM_TCB_EVALUATION_DATA_NUMBER,
            miscselect: hex::encode_upper(qe.miscselect.to_le_bytes()),
            miscselect_mask: "FFFFFFFF",
            // INIT (bit 0) and PROVISIONKEY (bit 4) must be set and DEBUG (bit 1) clear;
            // MODE64BIT (bit 2) and XFRM are free, as in Intel's TD_QE identity.
            attributes: "11000000000000000000000000000000",
            attributes_mask: "FBFFFFFFFFFFFFFF0000000000000000",
            mrsigner: hex::encode_upper(qe.mrsigner),
            isvprodid: qe.isv_prod_id,
            tcb_levels: vec![
                level(IsvSvn { isvsvn: qe.isv_svn }, true),
                level(
                    IsvSvn {
                        isvsvn: qe.isv_svn.saturating_sub(2),
                    },
                    false,
                ),
            ],
        })
    }

    /// An Intel collateral service emulator serving [`SimTdx::collateral`] for `at`: TCB info for
    /// [`SIM_FMSPC`], the TD QE identity, the PCK Platform CA's CRL, the root CA CRL (with the
    /// root as its issuer chain, for THIM-shaped requests), and a THIM `pckcert` answer with the
    /// PCK certificate. No IMDS location: callers that need one set `imds_location`.
    pub fn intel_emulator_config(&self, at: i64) -> IntelEmulatorConfig {
        let c = self.collateral(at);
        let root_pem = pem_blocks(self.pki.pck_crl_issuer_chain_pem)
            .last()
            .copied()
            .unwrap_or_default()
            .to_owned();
        let pck_pem = pem_blocks(self.pki.pck_chain_pem)
            .first()
            .copied()
            .unwrap_or_default();
        // sgx-Tcbm: CPUSVN, then PCESVN little-endian (the layout the collect tests use).
        let tcbm = format!(
            "{}{}",
            hex::encode(SIM_CPUSVN),
            hex::encode(SIM_PCESVN.to_le_bytes())
        );
        IntelEmulatorConfig {
            tcb_info: vec![(
                SIM_FMSPC,
                ServedItem {
                    body: c.tcb_info,
                    issuer_chain_pem: Some(c.tcb_info_issuer_chain_pem),
                },
            )],
            qe_identity: Some(ServedItem {
                body: c.qe_identity,
                issuer_chain_pem: Some(c.qe_identity_issuer_chain_pem),
            }),
            pck_crl: vec![(
                PckCa::Platform,
                ServedItem {
                    body: c.pck_crl_der,
                    issuer_chain_pem: Some(c.pck_crl_issuer_chain_pem.clone()),
                },
            )],
            root_ca_crl: Some(ServedItem {
                body: c.root_ca_crl_der,
                issuer_chain_pem: Some(root_pem),
            }),
            pck_cert: Some(thim_pck_cert_body(
                pck_pem,
                &c.pck_crl_issuer_chain_pem,
                &tcbm,
                86_400,
            )),
            imds_location: None,
            cache_control: Some("public, max-age=86400".to_owned()),
            faults: Vec::new(),
        }
    }
}

/// The certificates of a PEM chain, each with its BEGIN and END lines.
fn pem_blocks(pem: &str) -> Vec<&str> {
    const END: &str = "-----END CERTIFICATE-----\n";
    pem.split_inclusive(END)
        .filter_map(|block| block.find("-----BEGIN").map(|start| &block[start..]))
        .collect()
}

#[cfg(test)]
mod tests {
    use ring::signature::{
        ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED, UnparsedPublicKey,
    };
    use thimble_evidence::cert_file::pem_certificates;
    use thimble_evidence::tdx::{IntelCrl, PckCaType, PckInfo, QeIdentityBody, TcbInfoBody};
    use x509_parser::certificate::X509Certificate;
    use x509_parser::prelude::FromDer;

    use super::*;

    fn cert(der: &[u8]) -> X509Certificate<'_> {
        let (rest, cert) = X509Certificate::from_der(der).unwrap();
        assert!(rest.is_empty());
        cert
    }

    fn spki(der: &[u8]) -> Vec<u8> {
        cert(der).public_key().subject_public_key.data.to_vec()
    }

    fn issued_by(child_der: &[u8], issuer_der: &[u8]) -> bool {
        let child = cert(child_der);
        let key = spki(issuer_der);
        let sig = &child.signature_value.data;
        UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, key)
            .verify(child.tbs_certificate.as_ref(), sig)
            .is_ok()
    }

    #[test]
    fn keys_load_in_ring_both_ways_and_match_the_certificates() {
        let pki = sim_tdx_pki();
        let rng = SystemRandom::new();
        for pk8 in [pki.pck_pk8, pki.tcb_signing_pk8, pki.attestation_pk8] {
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pk8, &rng).unwrap();
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pk8, &rng).unwrap();
        }
        let sim = SimTdx::load();
        assert_eq!(sim.pck_key.public_key().as_ref(), spki(pki.pck_der));
        assert_eq!(
            sim.tcb_signing_key.public_key().as_ref(),
            spki(pki.tcb_signing_der)
        );
        // The attestation key is the QE's own: no certificate carries it.
        assert_ne!(sim.attestation_key.public_key().as_ref(), spki(pki.pck_der));
    }

    #[test]
    fn chain_shape_and_names() {
        let pki = sim_tdx_pki();
        assert!(issued_by(pki.root_ca_der, pki.root_ca_der));
        assert!(issued_by(pki.pck_ca_der, pki.root_ca_der));
        assert!(issued_by(pki.tcb_signing_der, pki.root_ca_der));
        assert!(issued_by(pki.pck_der, pki.pck_ca_der));
        assert!(!issued_by(pki.pck_der, pki.root_ca_der));
        for (der, cn) in [
            (pki.root_ca_der, "Intel SGX Root CA"),
            (pki.pck_ca_der, "Intel SGX PCK Platform CA"),
            (pki.tcb_signing_der, "Intel SGX TCB Signing"),
            (pki.pck_der, "Intel SGX PCK Certificate"),
        ] {
            let c = cert(der);
            let subject = c.subject();
            assert_eq!(
                subject.iter_common_name().next().unwrap().as_str().unwrap(),
                cn
            );
            let o = subject
                .iter_organization()
                .next()
                .unwrap()
                .as_str()
                .unwrap();
            assert!(o.contains("SIMULATION"), "{o}");
            assert_eq!(c.validity().not_after.to_datetime().year(), 2049);
        }
        let pems = |pem: &str| pem_certificates(pem).unwrap();
        assert_eq!(
            pems(pki.pck_chain_pem),
            [pki.pck_der, pki.pck_ca_der, pki.root_ca_der]
        );
        assert_eq!(
            pems(pki.pck_crl_issuer_chain_pem),
            [pki.pck_ca_der, pki.root_ca_der]
        );
        assert_eq!(
            pems(pki.tcb_signing_chain_pem),
            [pki.tcb_signing_der, pki.root_ca_der]
        );
    }

    #[test]
    fn pck_extension_certifies_the_sim_platform() {
        let info = PckInfo::from_der(sim_tdx_pki().pck_der).unwrap();
        assert_eq!(info.fmspc, SIM_FMSPC);
        assert_eq!(info.pce_id, SIM_PCE_ID);
        assert_eq!(info.cpusvn, SIM_CPUSVN);
        assert_eq!(info.pcesvn, SIM_PCESVN);
        assert_eq!(info.ca_type, PckCaType::Platform);
        assert_eq!(info.ppid, sha256("thimble simulated PPID")[..16]);
        assert_eq!(info.sgx_type, 1);
        let ext = dcap_qvl::intel::parse_pck_extension(sim_tdx_pki().pck_der).unwrap();
        assert_eq!(
            ext.platform_instance_id.as_deref(),
            Some(&sha256("thimble simulated platform instance")[..16])
        );
        assert_eq!(
            (ext.dynamic_platform, ext.cached_keys, ext.smt_enabled),
            (Some(true), Some(true), Some(true))
        );
    }

    #[test]
    fn crls_are_empty_signed_and_long_lived() {
        let pki = sim_tdx_pki();
        for (der, issuer, cn) in [
            (pki.pck_crl_der, pki.pck_ca_der, "Intel SGX PCK Platform CA"),
            (pki.root_ca_crl_der, pki.root_ca_der, "Intel SGX Root CA"),
        ] {
            let crl = IntelCrl::parse(der).unwrap();
            assert_eq!(crl.issuer_cn, cn);
            assert!(crl.revoked.is_empty());
            assert_eq!(crl.this_update, 1_704_067_200); // 2024-01-01
            assert_eq!(crl.next_update, Some(2_524_607_999)); // 2049-12-31T23:59:59Z
            let (_, parsed) =
                x509_parser::revocation_list::CertificateRevocationList::from_der(der).unwrap();
            UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, spki(issuer))
                .verify(parsed.tbs_cert_list.as_ref(), &parsed.signature_value.data)
                .unwrap();
        }
    }

    #[test]
    fn quote_layout_and_signatures() {
        let sim = SimTdx::load();
        let t = TdQuoteTemplate::default();
        let quote = sim.quote(&t, &[0x5A; 64]);
        assert_eq!(&quote[0..8], &[4, 0, 2, 0, 0x81, 0, 0, 0]);
        assert_eq!(
            &quote[12..28],
            &thimble_evidence::tdx::quote::INTEL_QE_VENDOR_ID
        );
        assert_eq!(&quote[184..232], &sha384("thimble simulated TD"));
        assert_eq!(&quote[568..632], &[0x5A; 64]);
        let q = thimble_evidence::tdx::TdxQuote::parse(&quote).unwrap();
        assert_eq!(q.trailing_len, 0);
        assert_eq!(q.body.td_attributes, TD_ATTRIBUTES_SEPT_VE_DISABLE);
        assert_eq!(q.attestation_key, sim.attestation_public_key());
        let mut key = vec![0x04];
        key.extend_from_slice(&q.attestation_key);
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &key)
            .verify(q.signed_bytes(), &q.signature)
            .unwrap();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, spki(sim.pki().pck_der))
            .verify(&q.qe.qe_report, &q.qe.qe_report_signature)
            .unwrap();
        let report = thimble_evidence::tdx::EnclaveReport::decode(&q.qe.qe_report);
        let mut bound = q.attestation_key.to_vec();
        bound.extend_from_slice(&q.qe.qe_auth_data);
        assert_eq!(&report.report_data[..32], digest(&SHA256, &bound).as_ref());
        assert_eq!(report.report_data[32..], [0; 32]);
        assert_eq!(report.isv_svn, SIM_QE_ISVSVN);
        assert_eq!(q.qe.inner_data.last(), Some(&0));
        assert_eq!(q.pck_chain.unwrap().len(), 3);
    }

    #[test]
    fn td_report_round_trip() {
        let t = TdQuoteTemplate {
            td_attributes: TD_ATTRIBUTES_DEBUG,
            mr_owner: [7; 48],
            ..TdQuoteTemplate::default()
        };
        let report = crate::fake_tdx_guest::build_td_report(&t.td_report_template(), &[9; 64]);
        let (back, report_data) = TdQuoteTemplate::from_td_report(&report);
        assert_eq!(back, t);
        assert_eq!(report_data, [9; 64]);
        // The same header and body either way (signatures differ: ECDSA is randomised).
        let sim = SimTdx::load();
        let signed = |quote: &[u8]| {
            thimble_evidence::tdx::TdxQuote::parse(quote)
                .unwrap()
                .signed_bytes()
                .to_vec()
        };
        assert_eq!(
            signed(&sim.quote_from_td_report(&report)),
            signed(&sim.quote(&t, &[9; 64]))
        );
    }

    #[test]
    fn collateral_parses_and_is_fresh() {
        let sim = SimTdx::load();
        let at = 1_780_272_000;
        let c = sim.collateral(at);
        let tcb = TcbInfoBody::parse(&c.tcb_info).unwrap();
        assert_eq!(tcb.issue_date, at - 86_400);
        assert_eq!(tcb.next_update, at + 30 * 86_400);
        assert_eq!(tcb.content.id, "TDX");
        assert_eq!(tcb.content.version, 3);
        assert_eq!(tcb.content.fmspc, "00513D000000");
        assert_eq!(tcb.content.tcb_levels.len(), 2);
        assert_eq!(tcb.content.tdx_module_identities[0].id, "TDX_01");
        let qe = QeIdentityBody::parse(&c.qe_identity).unwrap();
        assert_eq!(qe.content.id, "TD_QE");
        assert_eq!(qe.content.mrsigner, QeReportTemplate::default().mrsigner);
        let key = spki(sim.pki().tcb_signing_der);
        for (signed, sig) in [
            (tcb.signed_bytes(), tcb.signature),
            (qe.signed_bytes(), qe.signature),
        ] {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &key)
                .verify(signed, &sig)
                .unwrap();
        }
        let text = String::from_utf8(c.tcb_info).unwrap();
        assert!(text.starts_with(r#"{"tcbInfo":{"id":"TDX","version":3,"issueDate":"#));
        assert!(text.contains(r#""tcbStatus":"OutOfDate","advisoryIDs":["THIMBLE-SIM-SA-00001"]"#));
    }

    #[test]
    fn emulator_config_serves_the_pki() {
        let sim = SimTdx::load();
        let pki = sim.pki();
        let config = sim.intel_emulator_config(1_780_272_000);
        assert_eq!(config.tcb_info[0].0, SIM_FMSPC);
        assert_eq!(config.pck_crl[0].0, PckCa::Platform);
        let root = config.root_ca_crl.unwrap().issuer_chain_pem.unwrap();
        assert_eq!(pem_certificates(&root).unwrap(), [pki.root_ca_der]);
        let body: serde_json::Value = serde_json::from_slice(&config.pck_cert.unwrap()).unwrap();
        let pck = body["pckCert"].as_str().unwrap();
        assert_eq!(pem_certificates(pck).unwrap(), [pki.pck_der]);
        assert_eq!(body["sgx-Tcbm"], "030302020500000000000000000000000d00");
    }

    #[test]
    fn makers_for_the_fakes() {
        let sim = Arc::new(SimTdx::load());
        let maker = Arc::clone(&sim).quote_maker();
        assert!(maker(&[0; 10]).is_empty());
        let report = crate::fake_tdx_guest::build_td_report(
            &TdQuoteTemplate::default().td_report_template(),
            &[3; 64],
        );
        assert_eq!(maker(&report)[568..632], [3; 64]);
        let generator = sim.tsm_generator(TdQuoteTemplate::out_of_date());
        let (out, aux) = generator(&[4; 64], 0).unwrap();
        assert_eq!(out[48..64], SIM_OUT_OF_DATE_TEE_TCB_SVN);
        assert!(aux.is_empty());
    }
}
