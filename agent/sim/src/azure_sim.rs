// SPDX-License-Identifier: Apache-2.0
//! A simulated Azure confidential VM behind the paravisor: the HCL report its vTPM exposes at NV
//! `0x01400001` ([`SimHcl`]), the TPM quotes its attestation key makes ([`SimTpmQuote`]), and the
//! IMDS `/acc/tdquote` service that turns a TD report into a quote ([`AzureImds`]).
//!
//! The HCL report has the exact layout of the real ones in `tests/vectors/azure` (see
//! `thimble_evidence::azure::hcl`): header, hardware report slot, IGVM request data, runtime data
//! JSON with the vTPM keys, the VM configuration and the user data. The hardware report is signed
//! by the simulated AMD chain ([`ReportSigner::sim`]) or is a TD report of the simulated TDX module
//! ([`build_td_report`]) that [`SimTdx`] can quote, in both cases with REPORT_DATA = SHA-256(runtime
//! data) ‖ zeros as the paravisor sets it. The attestation key is the committed test key
//! `keys/azure/ak.pk8`, so the chain of trust is the real one end to end, rooted in test roots
//! that a verifier accepts only when told to.

use std::fmt;
use std::io;
use std::sync::{Arc, OnceLock};

use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ring::digest::{SHA256, digest};
use ring::rand::SystemRandom;
use ring::rsa::PublicKeyComponents;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde::{Deserialize, Serialize};
use thimble_collect::tdx_guest::TDX_REPORT_LEN;
use thimble_evidence::azure::hcl::{
    AK_PUB_KID, EK_PUB_KID, HCL_SIGNATURE, HW_REPORT_OFFSET, HW_REPORT_SLOT_LEN, REQUEST_DATA_LEN,
    REQUEST_DATA_OFFSET, RUNTIME_DATA_OFFSET,
};
use thimble_evidence::azure::{ClockInfo, PcrSelection, TpmQuote, TpmsAttest};
use thimble_evidence::tpm2::{Marshal, MarshalError, TpmtPublic, TpmtSigScheme, sha256_name};

use crate::emulator::{Emulator, FaultRule, MISSING_METADATA_BODY, RecordedRequest, Reply, Routes};
use crate::fake_tdx_guest::{TdReportTemplate, build_td_report};
use crate::signer::{ReportSigner, ReportTemplate};
use crate::tdx_signer::SimTdx;

/// Size of the simulated NV index `0x01400001`, and so of every simulated HCL report (zero
/// padded, as the real 2600-byte ones are). Azure's vTPM has room for 2600 bytes; swtpm on Debian
/// bookworm caps an NV index at 2048, and the simulated report must fit there too.
pub const SIM_HCL_NV_SIZE: usize = 2048;

/// Header `version` of SNP HCL reports (every SNP vector).
const HCL_VERSION_SNP: u32 = 1;
/// Header `version` of TDX HCL reports (the TDX vector).
const HCL_VERSION_TDX: u32 = 2;
/// Header `request_type`: `AK_CERT_REQUEST`, the request the paravisor keeps in the NV index.
const REQUEST_TYPE_AK_CERT: u32 = 2;
/// IGVM request data `version` 1: no capability word before the runtime data.
const REQUEST_DATA_VERSION: u32 = 1;
/// IGVM `report_type` values.
const REPORT_TYPE_SNP: u32 = 2;
const REPORT_TYPE_TDX: u32 = 4;
/// IGVM `report_data_hash_type` 1: SHA-256, as in every vector.
const HASH_TYPE_SHA256: u32 = 1;

/// The simulated paravisor's SEV-SNP identity: the ID_KEY_DIGEST of its ID block,
/// SHA-384("thimble simulated paravisor ID key"). A verifier trusts it only with
/// `--insecure-allow-simulated`, like the simulated AMD chain.
pub const SIM_PARAVISOR_ID_KEY_DIGEST: [u8; 48] = [
    0x26, 0xa2, 0x1d, 0x7b, 0xb9, 0x96, 0x8a, 0xc9, 0x77, 0xb4, 0x8e, 0x42, 0xbf, 0x2c, 0x29, 0x91,
    0xc1, 0x9b, 0x2c, 0x49, 0xad, 0xa8, 0x9f, 0x03, 0xb0, 0xf1, 0xb9, 0xee, 0x29, 0xab, 0xc1, 0x87,
    0xc0, 0xdd, 0x03, 0x8a, 0x01, 0xd1, 0xa7, 0xa0, 0x0f, 0x82, 0xca, 0x39, 0x58, 0x99, 0xef, 0xcf,
];

/// The simulated TDX paravisor's MRTD, SHA-384("thimble simulated paravisor MRTD"), trusted only
/// with `--insecure-allow-simulated`.
pub const SIM_PARAVISOR_MRTD: [u8; 48] = [
    0x46, 0xc9, 0x13, 0x50, 0x88, 0x86, 0xdf, 0x29, 0x46, 0x06, 0xac, 0x3f, 0xb6, 0x0e, 0x52, 0xe9,
    0x63, 0x77, 0x6d, 0x32, 0x42, 0x0d, 0xf3, 0x03, 0x9a, 0xdf, 0x90, 0x61, 0xaf, 0x70, 0x97, 0xbb,
    0x25, 0xd2, 0x77, 0x91, 0x6c, 0x10, 0xb4, 0x80, 0x4b, 0xab, 0x95, 0x92, 0xa9, 0x5b, 0xfe, 0x50,
];

/// The report template of the simulated SEV-SNP paravisor: the default simulated guest, at
/// VMPL 0, launched with an ID block signed by [`SIM_PARAVISOR_ID_KEY_DIGEST`].
pub fn paravisor_snp_template() -> ReportTemplate {
    ReportTemplate {
        vmpl: 0,
        id_key_digest: SIM_PARAVISOR_ID_KEY_DIGEST,
        ..ReportTemplate::default()
    }
}

/// The TD report template of the simulated TDX paravisor: the default simulated TD with
/// [`SIM_PARAVISOR_MRTD`].
pub fn paravisor_td_template() -> TdReportTemplate {
    TdReportTemplate {
        mr_td: SIM_PARAVISOR_MRTD,
        ..TdReportTemplate::default()
    }
}

/// The longest nonce a quote takes: `TPM2B_DATA` holds at most one digest of the largest
/// algorithm (SHA-512), and `thimble_evidence::report_data::tpm_qualifying_data` hashes anything
/// longer down to that.
pub const MAX_NONCE_LEN: usize = 64;

/// `TPMA_OBJECT` of the attestation key: Azure's (fixedTPM, fixedParent, sensitiveDataOrigin,
/// userWithAuth, noDA, restricted, sign), the attributes the swtpm harness provisions too.
const AK_OBJECT_ATTRIBUTES: u32 = crate::swtpm::AZURE_AK_ATTRIBUTES;

/// The simulated vTPM attestation key (`HCLAkPub`): `keys/azure/ak.pk8`, RSA-2048.
pub struct SimAk {
    key: RsaKeyPair,
    rng: SystemRandom,
}

impl fmt::Debug for SimAk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimAk")
            .field("modulus_bits", &(self.key.public().modulus_len() * 8))
            .finish_non_exhaustive()
    }
}

impl SimAk {
    /// The committed key, loaded once.
    pub fn get() -> &'static SimAk {
        static AK: OnceLock<SimAk> = OnceLock::new();
        AK.get_or_init(|| SimAk {
            // A committed fixture that the tests load; it cannot be malformed at run time.
            key: RsaKeyPair::from_pkcs8(include_bytes!("../keys/azure/ak.pk8"))
                .expect("the committed simulated AK loads"),
            rng: SystemRandom::new(),
        })
    }

    /// The public modulus, big-endian, without leading zeros.
    pub fn modulus(&self) -> Vec<u8> {
        strip_leading_zeros(&PublicKeyComponents::<Vec<u8>>::from(self.key.public()).n)
    }

    /// The public exponent, big-endian, without leading zeros.
    pub fn exponent(&self) -> Vec<u8> {
        strip_leading_zeros(&PublicKeyComponents::<Vec<u8>>::from(self.key.public()).e)
    }

    /// The key's `TPMT_PUBLIC` as the vTPM would marshal it (RSA-2048, name algorithm SHA-256,
    /// the usual AK attributes, no policy, RSASSA/SHA-256 scheme, default exponent).
    pub fn tpmt_public(&self) -> Vec<u8> {
        let modulus = self.modulus();
        TpmtPublic::rsa_signing_key(
            AK_OBJECT_ATTRIBUTES,
            TpmtSigScheme::RSASSA_SHA256,
            len_u16(modulus.len() * 8),
            modulus,
        )
        .to_bytes()
        // The committed key is RSA-2048: its 256-byte modulus always fits a TPM2B.
        .expect("the simulated AK's public area marshals")
    }

    /// The key's TPM name (`qualifiedSigner` of its quotes): name algorithm ‖ SHA-256 of
    /// [`SimAk::tpmt_public`].
    pub fn name(&self) -> Vec<u8> {
        sha256_name(&self.tpmt_public())
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message`, as `TPM2_Quote` signs with an RSASSA key.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        // PKCS#1 v1.5 signing only fails when the RNG used for blinding fails, which leaves
        // nothing to simulate.
        self.key
            .sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut signature)
            .expect("system random number generator available");
        signature
    }
}

/// The modulus of the simulated endorsement key (`HCLEkPub`), `keys/azure/ek_modulus.hex`. Only
/// its public part exists; it is RSA-512 to keep the runtime data small (see `keys/azure`).
pub fn ek_modulus() -> Vec<u8> {
    // A committed fixture that the tests decode; it cannot be malformed at run time.
    hex::decode(include_str!("../keys/azure/ek_modulus.hex").trim())
        .expect("the committed simulated EK modulus is hex")
}

fn strip_leading_zeros(b: &[u8]) -> Vec<u8> {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b[start..].to_vec()
}

/// Lengths here are of fixed-size keys and bounded inputs; saturating keeps a framing bug visible
/// as a parse error rather than a panic.
fn len_u16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A JWK as the paravisor writes it, members in its order.
#[derive(Serialize)]
struct JwkOut {
    kid: &'static str,
    key_ops: [&'static str; 1],
    kty: &'static str,
    e: String,
    n: String,
}

impl JwkOut {
    fn rsa(kid: &'static str, op: &'static str, n: &[u8], e: &[u8]) -> Self {
        JwkOut {
            kid,
            key_ops: [op],
            kty: "RSA",
            e: URL_SAFE_NO_PAD.encode(e),
            n: URL_SAFE_NO_PAD.encode(n),
        }
    }
}

/// `vm-configuration`, the members the SNP vectors have except `vmUniqueId` (see
/// [`SimHcl::runtime_data`] for why it is left out).
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct VmConfigurationOut {
    console_enabled: bool,
    secure_boot: bool,
    tpm_enabled: bool,
}

#[derive(Serialize)]
struct RuntimeDataOut {
    keys: [JwkOut; 2],
    #[serde(rename = "vm-configuration")]
    vm_configuration: VmConfigurationOut,
    #[serde(rename = "user-data")]
    user_data: String,
}

/// Builder of simulated HCL reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimHcl;

impl SimHcl {
    /// The runtime data JSON for `user_data` (the 64 bytes a guest writes to NV `0x01400002`):
    /// `keys` (`HCLAkPub` from [`SimAk`], `HCLEkPub` from [`ek_modulus`]), `vm-configuration`,
    /// `user-data` in upper-case hex, compact, members in Azure's order.
    ///
    /// It must stay at most `SIM_HCL_NV_SIZE - RUNTIME_DATA_OFFSET` = 812 bytes so that the whole
    /// report fits swtpm's 2048-byte NV index. The AK modulus (342 base64url characters) and the
    /// user data (128 hex characters) are fixed; that is why the EK is a small key and
    /// `vm-configuration` leaves out `vmUniqueId`.
    pub fn runtime_data(user_data: &[u8; 64]) -> Vec<u8> {
        let ak = SimAk::get();
        let runtime = RuntimeDataOut {
            keys: [
                JwkOut::rsa(AK_PUB_KID, "sign", &ak.modulus(), &ak.exponent()),
                JwkOut::rsa(EK_PUB_KID, "encrypt", &ek_modulus(), &[1, 0, 1]),
            ],
            vm_configuration: VmConfigurationOut {
                console_enabled: false,
                secure_boot: true,
                tpm_enabled: true,
            },
            user_data: hex::encode_upper(user_data),
        };
        // Strings and booleans only: serialising cannot fail.
        serde_json::to_vec(&runtime).unwrap_or_default()
    }

    /// The REPORT_DATA the paravisor puts in the hardware report: SHA-256(runtime data) ‖ zeros.
    pub fn report_data(runtime_data: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(digest(&SHA256, runtime_data).as_ref());
        out
    }

    /// An SEV-SNP HCL report for `user_data`: the simulated paravisor's report
    /// ([`paravisor_snp_template`]), signed by the simulated VCEK.
    pub fn snp(user_data: &[u8; 64]) -> Vec<u8> {
        Self::snp_with(&paravisor_snp_template(), user_data)
    }

    /// [`SimHcl::snp`] with the hardware report made from `template`.
    pub fn snp_with(template: &ReportTemplate, user_data: &[u8; 64]) -> Vec<u8> {
        let runtime = Self::runtime_data(user_data);
        let report = ReportSigner::sim().sign(template, &Self::report_data(&runtime));
        assemble(HCL_VERSION_SNP, REPORT_TYPE_SNP, &report, &runtime)
    }

    /// A TDX HCL report for `user_data`: a TD report of the simulated paravisor's TD
    /// ([`paravisor_td_template`]; all TD attributes zero, as under Azure's paravisor), which
    /// [`SimTdx::quote_from_td_report`] quotes.
    pub fn tdx(user_data: &[u8; 64]) -> Vec<u8> {
        Self::tdx_with(&paravisor_td_template(), user_data)
    }

    /// [`SimHcl::tdx`] with the TD report made from `template`.
    pub fn tdx_with(template: &TdReportTemplate, user_data: &[u8; 64]) -> Vec<u8> {
        let runtime = Self::runtime_data(user_data);
        let report = build_td_report(template, &Self::report_data(&runtime));
        assemble(HCL_VERSION_TDX, REPORT_TYPE_TDX, &report, &runtime)
    }

    /// The TD report inside a TDX HCL report: what a guest sends to `/acc/tdquote`. `None` when
    /// `hcl` is too short or holds another report type.
    pub fn td_report(hcl: &[u8]) -> Option<[u8; TDX_REPORT_LEN]> {
        let report_type = hcl.get(REQUEST_DATA_OFFSET + 8..REQUEST_DATA_OFFSET + 12)?;
        if report_type != REPORT_TYPE_TDX.to_le_bytes() {
            return None;
        }
        hcl.get(HW_REPORT_OFFSET..HW_REPORT_OFFSET + TDX_REPORT_LEN)?
            .try_into()
            .ok()
    }
}

/// Lays out an HCL report (module docs of `thimble_evidence::azure::hcl`), zero-padded to
/// [`SIM_HCL_NV_SIZE`].
fn assemble(version: u32, report_type: u32, hw_report: &[u8], runtime: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(SIM_HCL_NV_SIZE);
    b.extend_from_slice(&HCL_SIGNATURE);
    for word in [
        version,
        len_u32(RUNTIME_DATA_OFFSET + runtime.len()), // report_size
        REQUEST_TYPE_AK_CERT,
        0, // status
        0,
        0,
        0, // reserved
    ] {
        b.extend_from_slice(&word.to_le_bytes());
    }
    // A TD report is 1024 bytes; the rest of the 1184-byte slot stays zero, as in the vector.
    let hw = &hw_report[..hw_report.len().min(HW_REPORT_SLOT_LEN)];
    b.extend_from_slice(hw);
    b.resize(REQUEST_DATA_OFFSET, 0);
    for word in [
        len_u32(REQUEST_DATA_LEN + runtime.len()), // data_size
        REQUEST_DATA_VERSION,
        report_type,
        HASH_TYPE_SHA256,
        len_u32(runtime.len()), // variable_data_size
    ] {
        b.extend_from_slice(&word.to_le_bytes());
    }
    b.extend_from_slice(runtime);
    let padded = b.len().max(SIM_HCL_NV_SIZE);
    b.resize(padded, 0);
    b
}

/// Why the simulated TPM refused to quote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimTpmError {
    /// `TPM2_Quote` answers `TPM_RC_SIZE` for qualifying data longer than a `TPM2B_DATA`.
    #[error("quote nonce is {len} bytes; a TPM takes at most {MAX_NONCE_LEN}")]
    NonceTooLong {
        /// Bytes given.
        len: usize,
    },
    /// The quote did not marshal; after the nonce check this cannot happen, but the codec is
    /// fallible and the simulator does not hide it.
    #[error("marshalling the quote: {0}")]
    Marshal(#[from] MarshalError),
}

/// The simulated vTPM's quotes: `TPM2_Quote` of the 24 SHA-256 PCRs with the attestation key
/// [`SimAk`], in the `tpm_quote.json` shape (`thimble_evidence::azure::TpmQuote`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimTpmQuote {
    /// `TPMS_CLOCK_INFO` in the attestation: `clock` in milliseconds, reset and restart counts,
    /// and `safe`.
    pub clock_info: ClockInfo,
    /// `firmwareVersion` of the TPM.
    pub firmware_version: u64,
}

impl Default for SimTpmQuote {
    /// An hour of uptime after three resets, clock safe, and the firmware version Azure's vTPM
    /// reports in the vectors.
    fn default() -> Self {
        SimTpmQuote {
            clock_info: ClockInfo {
                clock: 3_600_000,
                reset_count: 3,
                restart_count: 0,
                safe: true,
            },
            firmware_version: 0x2020_0312_0012_0003,
        }
    }
}

impl SimTpmQuote {
    /// A quote of `pcrs` (SHA-256 bank, by PCR number) over `nonce` with the default clock.
    pub fn quote(nonce: &[u8], pcrs: &[[u8; 32]; 24]) -> Result<TpmQuote, SimTpmError> {
        SimTpmQuote::default().quote_with(nonce, pcrs)
    }

    /// A quote with this clock and firmware version.
    pub fn quote_with(&self, nonce: &[u8], pcrs: &[[u8; 32]; 24]) -> Result<TpmQuote, SimTpmError> {
        let message = self.attest(nonce, pcrs)?;
        Ok(TpmQuote {
            signature: SimAk::get().sign(&message),
            message,
            pcrs: pcrs.iter().map(|p| p.to_vec()).collect(),
        })
    }

    /// The marshalled `TPMS_ATTEST` the quote signs: magic, `TPM_ST_ATTEST_QUOTE`, the AK's name,
    /// `extraData` = `nonce`, clock info, firmware version, then `TPMS_QUOTE_INFO`: one selection
    /// of PCRs 0-23 in the SHA-256 bank and `pcrDigest` = SHA-256 of their values in order.
    pub fn attest(&self, nonce: &[u8], pcrs: &[[u8; 32]; 24]) -> Result<Vec<u8>, SimTpmError> {
        if nonce.len() > MAX_NONCE_LEN {
            return Err(SimTpmError::NonceTooLong { len: nonce.len() });
        }
        let concatenated: Vec<u8> = pcrs.iter().flatten().copied().collect();
        let pcr_digest = digest(&SHA256, &concatenated);
        let all: Vec<u32> = (0..24).collect();
        let selection = PcrSelection::sha256(&all)?;
        Ok(TpmsAttest::marshal_quote(
            &SimAk::get().name(),
            nonce,
            &self.clock_info,
            self.firmware_version,
            &[selection],
            pcr_digest.as_ref(),
        )?)
    }

    /// PCR values shaped like a booted Azure CVM's: 0-9 and 14 as the simulated guest's TCG2
    /// log replays them ([`crate::boot_log::vtpm_boot`]), 10 and 12 extended by what that log
    /// does not record (IMA, systemd-stub: SHA-256 of `thimble simulated PCR {i}`), 17-22 all
    /// ones (never reset by a locality-4 event), the rest zero.
    pub fn default_pcrs() -> [[u8; 32]; 24] {
        let logged = &crate::boot_log::vtpm_boot().pcrs;
        let mut pcrs = [[0u8; 32]; 24];
        for (i, pcr) in pcrs.iter_mut().enumerate() {
            if let Some(value) = u32::try_from(i).ok().and_then(|i| logged.get(&i)) {
                *pcr = *value;
                continue;
            }
            match i {
                10 | 12 => {
                    let label = format!("thimble simulated PCR {i}");
                    pcr.copy_from_slice(digest(&SHA256, label.as_bytes()).as_ref());
                }
                17..=22 => *pcr = [0xff; 32],
                _ => {}
            }
        }
        pcrs
    }
}

/// Path of the IMDS TD quote endpoint (docs/formats.md §5).
pub const ACC_TDQUOTE_PATH: &str = "/acc/tdquote";

/// Makes a quote of a TD report; an empty result means the service could not quote it.
pub type TdQuoteFn = Arc<dyn Fn(&[u8; TDX_REPORT_LEN]) -> Vec<u8> + Send + Sync>;

/// How the emulated `/acc/tdquote` encodes the quote in its reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuoteEncoding {
    /// Base64url without padding: what IMDS sends (docs/formats.md §5).
    #[default]
    UrlSafeNoPad,
    /// Base64url with `=` padding.
    UrlSafePadded,
}

/// Base64url, request padding optional: IMDS accepts both forms (docs/formats.md §5).
const URL_SAFE_ANY_PAD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The request body of `/acc/tdquote`.
#[derive(Deserialize)]
struct TdQuoteRequest {
    report: String,
}

/// Azure IMDS as a TDX CVM sees it: `POST /acc/tdquote`, answered with quotes from a
/// [`TdQuoteFn`], in front of an optional `inner` service for every other path (THIM, Intel
/// collateral: [`crate::emulator::EmulatorConfig`], [`crate::intel_emulator::IntelEmulatorConfig`]).
/// Runs on the [`Emulator`] machinery, so the IMDS contract checks and the [`FaultRule`]s apply.
///
/// `/acc/tdquote` is strict where IMDS is documented or observed to be: `POST` only,
/// `Content-Type` exactly `application/json` (415 otherwise), a body `{"report": base64url}` of a
/// 1024-byte TD report. It also requires `Metadata: true`, which IMDS does not for this path
/// (docs/formats.md §5): thimble always sends it, and a strict emulator catches the day it stops.
#[derive(Clone)]
pub struct AzureImds {
    quote: TdQuoteFn,
    encoding: QuoteEncoding,
    inner: Option<Arc<dyn Routes>>,
    own_faults: Vec<FaultRule>,
    /// `own_faults`, then the inner service's: the list [`Routes::faults`] returns.
    faults: Vec<FaultRule>,
}

impl fmt::Debug for AzureImds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureImds")
            .field("encoding", &self.encoding)
            .field("inner", &self.inner)
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl AzureImds {
    /// `/acc/tdquote` answered with `quote(td_report)`, nothing else served.
    pub fn new(quote: impl Fn(&[u8; TDX_REPORT_LEN]) -> Vec<u8> + Send + Sync + 'static) -> Self {
        AzureImds {
            quote: Arc::new(quote),
            encoding: QuoteEncoding::default(),
            inner: None,
            own_faults: Vec::new(),
            faults: Vec::new(),
        }
    }

    /// `/acc/tdquote` answered by the simulated TDX platform ([`SimTdx::quote_from_td_report`]).
    pub fn sim_tdx(sim: Arc<SimTdx>) -> Self {
        Self::new(move |report| sim.quote_from_td_report(report))
    }

    /// Encodes quotes with `encoding`.
    pub fn with_encoding(mut self, encoding: QuoteEncoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Serves every path other than `/acc/tdquote` with `inner`, its faults included (after this
    /// service's own).
    pub fn with_inner(mut self, inner: impl Routes) -> Self {
        self.inner = Some(Arc::new(inner));
        self.rebuild_faults();
        self
    }

    /// Adds a fault rule (tried after the ones added before, and before the inner service's).
    pub fn with_fault(mut self, rule: FaultRule) -> Self {
        self.own_faults.push(rule);
        self.rebuild_faults();
        self
    }

    /// Starts serving on `127.0.0.1` at an ephemeral port.
    pub fn start(self) -> io::Result<Emulator> {
        Emulator::start_routes(self)
    }

    fn rebuild_faults(&mut self) {
        let mut faults = self.own_faults.clone();
        if let Some(inner) = &self.inner {
            faults.extend_from_slice(inner.faults());
        }
        self.faults = faults;
    }

    fn td_quote(&self, request: &RecordedRequest) -> Reply {
        if request.method != "POST" {
            return Reply::json_error(405, "Method not allowed");
        }
        if request.header("metadata").map(str::trim) != Some("true") {
            return Reply::new(
                400,
                "application/json; charset=utf-8",
                MISSING_METADATA_BODY.as_bytes().to_vec(),
            );
        }
        // Exactly: IMDS answers "415 Unknown media type" even to `application/json;
        // charset=utf-8` (docs/formats.md §5).
        if request.header("content-type") != Some("application/json") {
            return Reply::json_error(415, "Unknown media type");
        }
        let Ok(body) = serde_json::from_slice::<TdQuoteRequest>(&request.body) else {
            return Reply::json_error(400, "Bad request. Body is not {\"report\": string}");
        };
        let Ok(report) = URL_SAFE_ANY_PAD.decode(&body.report) else {
            return Reply::json_error(400, "Bad request. report is not base64url");
        };
        let Ok(report) = <[u8; TDX_REPORT_LEN]>::try_from(report.as_slice()) else {
            return Reply::json_error(
                400,
                &format!(
                    "Bad request. report is {} bytes, not a {TDX_REPORT_LEN}-byte TD report",
                    report.len()
                ),
            );
        };
        let quote = (self.quote)(&report);
        if quote.is_empty() {
            return Reply::json_error(500, "Internal error. No quote was generated");
        }
        let encoded = match self.encoding {
            QuoteEncoding::UrlSafeNoPad => URL_SAFE_NO_PAD.encode(&quote),
            QuoteEncoding::UrlSafePadded => URL_SAFE.encode(&quote),
        };
        let body = serde_json::json!({ "quote": encoded }).to_string();
        Reply::new(200, "application/json", body.into_bytes())
    }
}

impl Routes for AzureImds {
    fn route(&self, request: &RecordedRequest) -> Reply {
        if request.path == ACC_TDQUOTE_PATH {
            return self.td_quote(request);
        }
        match &self.inner {
            Some(inner) => inner.route(request),
            None => Reply::json_error(404, "Not found"),
        }
    }

    fn faults(&self) -> &[FaultRule] {
        &self.faults
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thimble_evidence::azure::{HclReport, HclReportType, TpmsAttest};

    const REAL_SNP: &[u8] =
        include_bytes!("../../../tests/vectors/azure/snp-hcl-milan-v2/hcl_report.bin");
    const REAL_TDX: &[u8] =
        include_bytes!("../../../tests/vectors/azure/tdx-hcl-v4-outofdate/hcl_report.bin");

    #[test]
    fn committed_keys_load() {
        let ak = SimAk::get();
        assert_eq!(ak.modulus().len(), 256);
        assert_eq!(ak.modulus()[0] & 0x80, 0x80, "a full 2048-bit modulus");
        assert_eq!(ak.exponent(), [1, 0, 1]);
        assert_eq!(ek_modulus().len(), 64);
        let name = ak.name();
        assert_eq!(name.len(), 34);
        assert_eq!(name[..2], [0x00, 0x0b]);
    }

    #[test]
    fn framing_matches_the_real_reports() {
        let user = [0x5a; 64];
        for (hcl, real) in [
            (SimHcl::snp(&user), REAL_SNP),
            (SimHcl::tdx(&user), REAL_TDX),
        ] {
            assert_eq!(hcl.len(), SIM_HCL_NV_SIZE);
            let sim = HclReport::parse(&hcl).unwrap();
            let real = HclReport::parse(real).unwrap();
            assert_eq!(sim.header.version, real.header.version);
            assert_eq!(sim.header.request_type, real.header.request_type);
            assert_eq!(sim.header.status, real.header.status);
            assert_eq!(sim.request_data.version, real.request_data.version);
            assert_eq!(sim.request_data.report_type, real.request_data.report_type);
            assert_eq!(
                sim.request_data.report_data_hash_type,
                real.request_data.report_data_hash_type
            );
            assert_eq!(sim.runtime_data_range.start, real.runtime_data_range.start);
            assert_eq!(sim.runtime_data_range.end, sim.header.report_size as usize);
            assert!(hcl[sim.runtime_data_range.end..].iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn runtime_data_fits_the_swtpm_nv_index() {
        let runtime = SimHcl::runtime_data(&[0xff; 64]);
        assert!(
            RUNTIME_DATA_OFFSET + runtime.len() <= SIM_HCL_NV_SIZE,
            "{} bytes of runtime data",
            runtime.len()
        );
        let text = std::str::from_utf8(&runtime).unwrap();
        assert!(text.starts_with(
            r#"{"keys":[{"kid":"HCLAkPub","key_ops":["sign"],"kty":"RSA","e":"AQAB","n":""#
        ));
        assert!(text.ends_with(&format!(r#""user-data":"{}"}}"#, "FF".repeat(64))));
    }

    #[test]
    fn report_data_binds_the_runtime_data() {
        let user: [u8; 64] = std::array::from_fn(|i| i as u8);
        let snp = HclReport::parse(&SimHcl::snp(&user)).unwrap();
        assert_eq!(snp.report_type(), HclReportType::Snp);
        let report = snp.snp_report().unwrap().unwrap();
        assert_eq!(report.report_data, snp.expected_report_data());
        let rt = snp.runtime_data().unwrap();
        assert_eq!(rt.user_data.as_deref(), Some(&user[..]));
        assert_eq!(rt.ak_pub().unwrap().n, SimAk::get().modulus());
        assert_eq!(rt.ek_pub().unwrap().n, ek_modulus());

        let hcl = SimHcl::tdx(&user);
        let tdx = HclReport::parse(&hcl).unwrap();
        let td = tdx.td_report().unwrap().unwrap();
        assert_eq!(td.report_data, tdx.expected_report_data());
        assert_eq!(SimHcl::td_report(&hcl).unwrap()[..], tdx.hw_report()[..]);
        assert_eq!(SimHcl::td_report(&SimHcl::snp(&user)), None);
        assert_eq!(SimHcl::td_report(&hcl[..100]), None);
    }

    #[test]
    fn attest_layout() {
        let pcrs = SimTpmQuote::default_pcrs();
        let q = SimTpmQuote::quote(b"nonce", &pcrs).unwrap();
        let a = TpmsAttest::parse(&q.message).unwrap();
        assert_eq!(a.extra_data, b"nonce");
        assert_eq!(a.qualified_signer, SimAk::get().name());
        assert_eq!(a.selected_pcrs().unwrap(), (0..24).collect::<Vec<_>>());
        assert_eq!(a.compute_pcr_digest(&q.pcrs).unwrap()[..], a.pcr_digest[..]);
        assert_eq!(a.clock_info, SimTpmQuote::default().clock_info);
        assert_eq!(q.signature.len(), 256);
        assert_eq!(pcrs[17], [0xff; 32]);
        // PCR 8 holds GRUB's strings, as the simulated boot log replays them; 11 nothing.
        assert_eq!(Some(&pcrs[8]), crate::boot_log::vtpm_boot().pcrs.get(&8));
        assert_eq!(pcrs[11], [0; 32]);

        assert!(SimTpmQuote::quote(&[0; 64], &pcrs).is_ok());
        assert_eq!(
            SimTpmQuote::quote(&[0; 65], &pcrs).unwrap_err(),
            SimTpmError::NonceTooLong { len: 65 }
        );
    }

    #[test]
    fn paravisor_identities_are_the_documented_digests() {
        let d = |label: &str| -> Vec<u8> {
            ring::digest::digest(&ring::digest::SHA384, label.as_bytes())
                .as_ref()
                .to_vec()
        };
        assert_eq!(
            SIM_PARAVISOR_ID_KEY_DIGEST.to_vec(),
            d("thimble simulated paravisor ID key")
        );
        assert_eq!(
            SIM_PARAVISOR_MRTD.to_vec(),
            d("thimble simulated paravisor MRTD")
        );
    }
}
