// SPDX-License-Identifier: Apache-2.0
//! Azure vTPM client: the HCL report in NV index `0x01400001`, fresh reports through the user-data
//! index `0x01400002`, and quotes with the attestation key at `0x81000003`, over a TPM 2.0
//! character device.
//!
//! The few TPM 2.0 commands thimble needs (TPM 2.0 Library Part 3: `TPM2_GetCapability`,
//! `TPM2_NV_ReadPublic`, `TPM2_NV_Read`, `TPM2_NV_DefineSpace`, `TPM2_NV_Write`, `TPM2_PCR_Read`,
//! `TPM2_Quote`, `TPM2_ReadPublic`, and for MAA's Azure guest flow `TPM2_StartAuthSession`,
//! `TPM2_PolicyPCR`, `TPM2_CreatePrimary`, `TPM2_Certify`, `TPM2_RSA_Decrypt` and
//! `TPM2_FlushContext`) are marshalled, and their responses bounds-checked and
//! unmarshalled, by the pure codec `thimble_evidence::tpm2`, which the fake vTPM shares; this
//! module owns what is I/O or Azure policy: the transport, the choice of authorization (empty
//! passwords, `TPM_RS_PW`), chunking by `TPM_PT_NV_BUFFER_MAX`, the fresh-report polling, and
//! [`VtpmError`], which names the command and the TPM response code (Part 2 §6.6). Bytes go
//! through the narrow [`TpmTransport`] trait (one command in, one response out, the contract of
//! `/dev/tpmrm0`), so that `thimble_sim::fake_vtpm::FakeVtpm` and swtpm's TCP server can stand in
//! for the device in tests. This module does not verify anything; it checks only what tells a
//! response apart from garbage and what ties the quote to the request (its nonce, its signer,
//! its PCR digest). The codec's names are re-exported here, as they were defined here before.
//!
//! Freshness on Azure: the paravisor regenerates the HCL report from the 64 bytes in `0x01400002`
//! when the guest starts an `NV_Read` of `0x01400001` at offset 0, at most once every 2 s, and a
//! read inside that window returns the previous report (microsoft/openvmm
//! `vm/devices/tpm/tpm_device/src/lib.rs`, `refresh_device_attestation_data_on_nv_read`,
//! `REPORT_TIMER_PERIOD`). So [`VtpmClient::fresh_hcl_report`] writes the user data, then reads the
//! report until its runtime data's `user-data` echoes what was written, within a deadline, and
//! says which case happened; it never returns a stale report unless the caller opted in.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

pub use thimble_evidence::azure::{HCL_REPORT_NV_INDEX, HCL_USER_DATA_NV_INDEX, VTPM_AK_HANDLE};
use thimble_evidence::azure::{
    HclError, HclReport, RsaPublicKey, RuntimeDataError, TpmError as AttestError, TpmQuote,
    TpmsAttest,
};
use thimble_evidence::tpm2::{
    self, CertifyAttest, CertifyCommand, CertifyResponse, Command, CreatePrimaryCommand,
    CreatePrimaryResponse, FlushContextCommand, GetCapabilityCommand, GetCapabilityResponse,
    Marshal, NvDefineSpaceCommand, NvReadCommand, NvReadPublicResponse, NvReadResponse,
    NvWriteCommand, PcrReadCommand, PcrReadResponse, PcrSelection, PolicyPcrCommand, PublicDetail,
    QuoteCommand, QuoteResponse, ReadPublicResponse, ResponseError, RsaDecryptCommand,
    RsaDecryptResponse, RsaDecryptScheme, StartAuthSessionCommand, StartAuthSessionResponse,
    TpmlPcrSelection, TpmsAuthCommand, TpmsNvPublic, TpmtPublic, TpmtSigScheme, TpmtSignature,
    TpmtSymDefObject, cap, ephemeral_key_template, policy_pcr_digest, pt, sha256_name,
    sha256_pcr_digest, tpma_session,
};
pub use thimble_evidence::tpm2::{
    HEADER_LEN, Malformed, MarshalError, RcPosition, ResponseBody, ResponseCode, TpmReader,
    TpmWriter, alg, cc, command_name, declared_size, encode_command, rc, rh, st,
    tpma_nv as nv_attr,
};

use crate::request::Progress;

/// Device nodes tried in order: the kernel's resource manager first (it lets other TPM users run
/// concurrently and flushes our transient state), then the raw device.
pub const DEFAULT_DEVICE_PATHS: [&str; 2] = ["/dev/tpmrm0", "/dev/tpm0"];

/// The NV index of the vTPM attestation key's certificate (openvmm `TPM_NV_INDEX_AIK_CERT`,
/// TCG-assigned base `0x01C00000` + `0x101D0`). Filled by the host some time after boot; absent or
/// never written on VMs without one.
pub const AK_CERT_NV_INDEX: u32 = 0x01C1_01D0;

/// Size of the user data the paravisor reads from `0x01400002` (openvmm
/// `ATTESTATION_REPORT_DATA_SIZE`, the SNP/TDX REPORT_DATA size).
pub const USER_DATA_LEN: usize = 64;

/// Chunk size when the TPM does not report `TPM_PT_NV_BUFFER_MAX`: the reference
/// implementation's `MAX_NV_BUFFER_SIZE`, which every TPM 2.0 seen (swtpm, Hyper-V) meets.
pub const DEFAULT_NV_BUFFER_MAX: u16 = 1024;

/// Upper bound on an `NV_Read` chunk, whatever the TPM reports: the Linux TPM driver moves at
/// most `TPM_BUFSIZE` (4096) bytes per response, headers and session area included.
pub const MAX_NV_CHUNK: u16 = 3072;

/// The PCRs Azure's tools quote: all 24 of the SHA-256 bank (kinvolk/azure-cvm-tooling
/// `az-cvm-vtpm/src/vtpm/mod.rs`, `VTPM_QUOTE_PCR_SLOTS`).
pub const QUOTE_PCRS: [u32; 24] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
];

/// The PCRs of Azure's guest attestation flow on Linux: 0-7 of the SHA-256 bank, quoted and
/// bound into the ephemeral key's policy (CGA `AttestationLibUtils.cpp`,
/// `GetAttestationPcrList`; Windows adds 11-14).
pub const GUEST_ATTESTATION_PCRS: [u32; 8] = [0, 1, 2, 3, 4, 5, 6, 7];

/// Largest qualifying data accepted: `TPM2B_DATA` holds at most `sizeof(TPMT_HA)`, which is 66
/// bytes on a TPM with SHA-512 and less on one without; 64 covers every nonce thimble makes.
pub const MAX_QUALIFYING_DATA_LEN: usize = 64;

/// How long [`VtpmClient::fresh_hcl_report`] callers usually wait for the echo: the paravisor's
/// 2 s rate limit plus its round trip to the host for a new hardware report, with margin.
pub const DEFAULT_FRESH_REPORT_DEADLINE: Duration = Duration::from_secs(10);

/// Pause between reads while waiting for the echo.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Largest response accepted from any transport (the kernel's own limit is 4096).
pub const MAX_RESPONSE_LEN: usize = 64 * 1024;

/// Rounds of quote + PCR read before giving up on PCRs that keep changing between the two.
const QUOTE_ATTEMPTS: u32 = 3;

/// What an NV index holds on Azure, for messages.
fn nv_index_role(index: u32) -> &'static str {
    match index {
        HCL_REPORT_NV_INDEX => " (HCL report)",
        HCL_USER_DATA_NV_INDEX => " (HCL report user data)",
        AK_CERT_NV_INDEX => " (AK certificate)",
        _ => "",
    }
}

// ---------------------------------------------------------------------------------------------
// Transport
// ---------------------------------------------------------------------------------------------

/// One TPM 2.0 command in, its whole response out: the contract of the Linux TPM character
/// devices (one `write(2)` of the command, one `read(2)` of the response) and of swtpm's socket.
pub trait TpmTransport {
    /// Sends a complete marshalled command and returns the complete response.
    fn transact(&mut self, command: &[u8]) -> io::Result<Vec<u8>>;
}

impl<T: TpmTransport + ?Sized> TpmTransport for &mut T {
    fn transact(&mut self, command: &[u8]) -> io::Result<Vec<u8>> {
        (**self).transact(command)
    }
}

impl<T: TpmTransport + ?Sized> TpmTransport for Box<T> {
    fn transact(&mut self, command: &[u8]) -> io::Result<Vec<u8>> {
        (**self).transact(command)
    }
}

/// A TPM character device, `/dev/tpmrm0` or `/dev/tpm0`.
#[derive(Debug)]
pub struct DeviceTransport {
    file: File,
    path: PathBuf,
}

/// `TPM_BUFSIZE` in drivers/char/tpm/tpm.h: the kernel's command and response buffer.
const TPM_BUFSIZE: usize = 4096;

impl DeviceTransport {
    /// Opens `path` read-write.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, VtpmError> {
        let path = path.into();
        match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => Ok(Self { file, path }),
            Err(source) if source.kind() == io::ErrorKind::NotFound => {
                Err(VtpmError::NoDevice { tried: vec![path] })
            }
            Err(source) => Err(VtpmError::Open { path, source }),
        }
    }

    /// Opens the first of [`DEFAULT_DEVICE_PATHS`] that exists. A device that exists but cannot
    /// be opened (permissions, busy `/dev/tpm0`) is reported rather than skipped, unless a later
    /// one opens.
    pub fn open_default() -> Result<Self, VtpmError> {
        let mut first_failure = None;
        let mut tried = Vec::new();
        for path in DEFAULT_DEVICE_PATHS {
            match Self::open(path) {
                Ok(device) => return Ok(device),
                Err(VtpmError::NoDevice { .. }) => tried.push(PathBuf::from(path)),
                Err(e) => {
                    first_failure.get_or_insert(e);
                }
            }
        }
        Err(first_failure.unwrap_or(VtpmError::NoDevice { tried }))
    }

    /// The device path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl TpmTransport for DeviceTransport {
    fn transact(&mut self, command: &[u8]) -> io::Result<Vec<u8>> {
        // The driver takes the command in a single write and rejects a partial one.
        let written = loop {
            match self.file.write(command) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        if written != command.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write: {written} of {} bytes", command.len()),
            ));
        }
        // Read the whole response at once: kernels before partial-read support (v5.0-era
        // tpm-dev-common.c) discard whatever a short read leaves behind.
        let mut response = vec![0u8; TPM_BUFSIZE];
        let mut len = read_some(&mut self.file, &mut response)?;
        response.truncate(len);
        // Newer kernels allow the rest of a response to be read later; collect it if the header
        // says there is more.
        while let Some(declared) = declared_size(&response) {
            if len >= declared || declared > MAX_RESPONSE_LEN {
                break;
            }
            let mut more = vec![0u8; declared - len];
            let n = read_some(&mut self.file, &mut more)?;
            if n == 0 {
                break;
            }
            response.extend_from_slice(&more[..n]);
            len += n;
        }
        Ok(response)
    }
}

fn read_some(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match file.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// Unmarshals a response to `code` ([`tpm2::decode_response`]), naming the command in the
/// error: a non-zero response code is [`VtpmError::Tpm`], bytes that do not frame a response
/// [`VtpmError::Malformed`].
pub fn decode_response(
    code: u32,
    bytes: &[u8],
    response_handles: usize,
    sessions: bool,
) -> Result<ResponseBody, VtpmError> {
    let command = command_name(code);
    tpm2::decode_response(bytes, response_handles, sessions).map_err(|e| match e {
        ResponseError::Tpm(rc) => VtpmError::Tpm { command, rc },
        ResponseError::Malformed(reason) => VtpmError::Malformed { command, reason },
    })
}

/// Turns a parameter area that does not unmarshal into [`VtpmError::Malformed`] for `code`.
fn malformed(code: u32) -> impl Fn(Malformed) -> VtpmError {
    move |reason| VtpmError::Malformed {
        command: command_name(code),
        reason,
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Failure to talk to the vTPM or to get what thimble needs from it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VtpmError {
    /// No TPM device exists.
    #[error(
        "no TPM device ({}): not a VM with a (v)TPM, or no TPM driver is loaded",
        tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NoDevice {
        /// The device paths tried.
        tried: Vec<PathBuf>,
    },
    /// The device cannot be opened.
    #[error("cannot open TPM device {}", path.display())]
    Open {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Sending or receiving failed.
    #[error("{command}: TPM transport failed")]
    Transport {
        /// The TPM command.
        command: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The response does not decode.
    #[error("{command} returned a malformed response")]
    Malformed {
        /// The TPM command.
        command: &'static str,
        /// What is wrong.
        #[source]
        reason: Malformed,
    },
    /// The TPM failed the command.
    #[error("{command} failed with {rc}: {}", rc.meaning())]
    Tpm {
        /// The TPM command.
        command: &'static str,
        /// The response code.
        rc: ResponseCode,
    },
    /// An NV index is not defined.
    #[error("NV index {index:#010x}{} is not defined in this TPM", nv_index_role(*index))]
    NvIndexMissing {
        /// The NV index.
        index: u32,
    },
    /// An NV index is smaller than needed.
    #[error(
        "NV index {index:#010x}{} holds {size} bytes, fewer than the {needed} needed",
        nv_index_role(*index)
    )]
    NvIndexTooSmall {
        /// The NV index.
        index: u32,
        /// Its size.
        size: u16,
        /// Bytes needed.
        needed: usize,
    },
    /// An NV index cannot be read.
    #[error(
        "NV index {index:#010x}{} allows neither owner nor index-password reads (attributes {attributes:#010x})",
        nv_index_role(*index)
    )]
    NvNotReadable {
        /// The NV index.
        index: u32,
        /// Its `TPMA_NV` attributes.
        attributes: u32,
    },
    /// An NV index cannot be written.
    #[error(
        "NV index {index:#010x}{} allows neither owner nor index-password writes (attributes {attributes:#010x})",
        nv_index_role(*index)
    )]
    NvNotWritable {
        /// The NV index.
        index: u32,
        /// Its `TPMA_NV` attributes.
        attributes: u32,
    },
    /// Something is larger than the TPM or thimble accepts.
    #[error("{what} is {len} bytes, above the {max}-byte limit")]
    TooLarge {
        /// What is too large, or does not match.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A PCR index out of range.
    #[error("PCR {index} does not exist (PCRs 0-23)")]
    PcrIndex {
        /// The PCR index.
        index: u32,
    },
    /// A command could not be marshalled.
    #[error("cannot marshal the command")]
    Marshal(#[source] MarshalError),
    /// The TPM did not return every PCR asked for.
    #[error(
        "the TPM returned no SHA-256 value for PCRs {missing:?}; is the SHA-256 bank allocated?"
    )]
    PcrsUnavailable {
        /// The PCRs the TPM did not return.
        missing: Vec<u32>,
    },
    /// The quote is signed with another scheme than asked.
    #[error(
        "the quote is signed with algorithm {sig_alg:#06x} and hash {hash_alg:#06x}, not RSASSA (0x0014) with SHA-256 (0x000b) as Azure's AK signs"
    )]
    UnexpectedSignature {
        /// The signature algorithm (`TPM_ALG_ID`).
        sig_alg: u16,
        /// Its hash algorithm.
        hash_alg: u16,
    },
    /// The quote's `TPMS_ATTEST` does not decode.
    #[error("the quote's TPMS_ATTEST cannot be parsed")]
    Attest {
        /// The underlying error.
        #[source]
        source: AttestError,
    },
    /// The quote does not match the request.
    #[error(
        "the quote's {what} does not match the request; it does not belong to this quote request"
    )]
    QuoteMismatch {
        /// What is too large, or does not match.
        what: &'static str,
    },
    /// The TPM answered a key command with something other than what was asked for.
    #[error("the ephemeral key's {what} is not what was asked for")]
    EphemeralKeyMismatch {
        /// What differs.
        what: &'static str,
    },
    /// The PCRs kept changing.
    #[error(
        "the PCR values changed between the quote and the PCR read in {attempts} attempts; something keeps extending PCRs"
    )]
    PcrsChanged {
        /// Attempts made.
        attempts: u32,
    },
    /// The HCL report does not parse.
    #[error("the HCL report in NV index {HCL_REPORT_NV_INDEX:#010x} cannot be parsed")]
    HclReport {
        /// The underlying error.
        #[source]
        source: HclError,
    },
    /// The runtime data does not parse.
    #[error("the runtime data of the HCL report cannot be parsed")]
    RuntimeData {
        /// The underlying error.
        #[source]
        source: RuntimeDataError,
    },
    /// The HCL report never echoed the user data.
    #[error(
        "stale HCL report: its runtime data user-data did not echo the {USER_DATA_LEN} bytes written to NV index {HCL_USER_DATA_NV_INDEX:#010x} within {}ms ({attempts} reads; it holds {}); the paravisor did not regenerate the report (accepting a stale report needs --allow-stale-report)",
        waited.as_millis(),
        describe_user_data(.observed)
    )]
    StaleReport {
        /// Attempts made.
        attempts: u32,
        /// How long thimble polled.
        waited: Duration,
        /// The user-data the last report held.
        observed: Option<Vec<u8>>,
    },
}

fn describe_user_data(observed: &Option<Vec<u8>>) -> String {
    match observed {
        None => "no user-data".to_owned(),
        Some(d) if d.iter().all(|&b| b == 0) => "zeros, the boot-time report".to_owned(),
        Some(d) => format!("other user data, {}", hex::encode(d)),
    }
}

impl From<MarshalError> for VtpmError {
    /// The codec's refusals, as the variants this client has always reported them with.
    fn from(e: MarshalError) -> Self {
        match e {
            MarshalError::TooLarge { what, len, max } => VtpmError::TooLarge { what, len, max },
            MarshalError::PcrIndex { index } => VtpmError::PcrIndex { index },
            other => VtpmError::Marshal(other),
        }
    }
}

impl VtpmError {
    /// The TPM response code behind this error, when there is one.
    pub fn response_code(&self) -> Option<ResponseCode> {
        match self {
            Self::Tpm { rc, .. } => Some(*rc),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Data types
// ---------------------------------------------------------------------------------------------

/// How a command proves it may use an NV index (Part 3 §31: `authHandle` is the owner, the
/// platform or the index itself). Owner and platform use an empty password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NvAuth<'a> {
    /// The owner hierarchy, with an empty password.
    Owner,
    /// The platform hierarchy, with an empty password.
    Platform,
    /// The index, with its password.
    Index(&'a [u8]),
}

impl NvAuth<'_> {
    fn handle(&self, index: u32) -> u32 {
        match self {
            Self::Owner => rh::OWNER,
            Self::Platform => rh::PLATFORM,
            Self::Index(_) => index,
        }
    }

    fn password(&self) -> &[u8] {
        match self {
            Self::Index(p) => p,
            _ => &[],
        }
    }
}

/// `TPMS_NV_PUBLIC` (Part 2 §13.5) and the index's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvPublic {
    /// The NV index.
    pub index: u32,
    /// The name algorithm (`TPM_ALG_ID`).
    pub name_alg: u16,
    /// `TPMA_NV` bits ([`nv_attr`]).
    pub attributes: u32,
    /// The authorization policy digest.
    pub auth_policy: Vec<u8>,
    /// The size of the data, in bytes.
    pub data_size: u16,
    /// `TPM2B_NAME` from `NV_ReadPublic`; empty in a template.
    pub name: Vec<u8>,
}

impl NvPublic {
    /// The authorization thimble reads with: the owner when allowed (how Azure's tools read the
    /// HCL report), else the index with an empty password.
    pub fn read_auth(&self) -> Option<NvAuth<'static>> {
        if self.attributes & nv_attr::OWNERREAD != 0 {
            Some(NvAuth::Owner)
        } else if self.attributes & nv_attr::AUTHREAD != 0 {
            Some(NvAuth::Index(&[]))
        } else {
            None
        }
    }

    /// The authorization thimble writes with, chosen as in [`NvPublic::read_auth`].
    pub fn write_auth(&self) -> Option<NvAuth<'static>> {
        if self.attributes & nv_attr::OWNERWRITE != 0 {
            Some(NvAuth::Owner)
        } else if self.attributes & nv_attr::AUTHWRITE != 0 {
            Some(NvAuth::Index(&[]))
        } else {
            None
        }
    }

    /// The `TPMS_NV_PUBLIC` part, without the name.
    pub fn tpms(&self) -> TpmsNvPublic {
        TpmsNvPublic {
            nv_index: self.index,
            name_alg: self.name_alg,
            attributes: self.attributes,
            auth_policy: self.auth_policy.clone(),
            data_size: self.data_size,
        }
    }

    /// `TPMS_NV_PUBLIC` marshalled (the inside of a `TPM2B_NV_PUBLIC`).
    pub fn to_bytes(&self) -> Result<Vec<u8>, VtpmError> {
        Ok(self.tpms().to_bytes()?)
    }

    /// Parses a marshalled `TPMS_NV_PUBLIC`, all of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<NvPublic, Malformed> {
        TpmsNvPublic::parse(bytes).map(NvPublic::from)
    }
}

impl From<TpmsNvPublic> for NvPublic {
    /// An index's public area with an empty name (a template, or before the name is known).
    fn from(p: TpmsNvPublic) -> Self {
        NvPublic {
            index: p.nv_index,
            name_alg: p.name_alg,
            attributes: p.attributes,
            auth_policy: p.auth_policy,
            data_size: p.data_size,
            name: Vec::new(),
        }
    }
}

/// The index Azure's tools define for the user data when it is missing: owner read and write,
/// physical-presence read, SHA-256 name, no policy, 64 bytes (kinvolk/azure-cvm-tooling
/// `az-cvm-vtpm/src/vtpm/mod.rs`, `write_nv_index`).
pub fn user_data_index_template() -> NvPublic {
    NvPublic {
        index: HCL_USER_DATA_NV_INDEX,
        name_alg: alg::SHA256,
        attributes: nv_attr::OWNERWRITE | nv_attr::OWNERREAD | nv_attr::PPREAD,
        auth_policy: Vec::new(),
        data_size: USER_DATA_LEN as u16,
        name: Vec::new(),
    }
}

/// The public part of a loaded or persistent object, from `TPM2_ReadPublic`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmPublic {
    /// The marshalled `TPMT_PUBLIC`, as received.
    pub public_area: Vec<u8>,
    /// `nameAlg` ‖ H(`TPMT_PUBLIC`), checked against `public_area` for SHA-256.
    pub name: Vec<u8>,
    /// What a quote reports as `qualifiedSigner`.
    pub qualified_name: Vec<u8>,
    /// The object type (`TPM_ALG_ID`).
    pub object_type: u16,
    /// The name algorithm (`TPM_ALG_ID`).
    pub name_alg: u16,
    /// `TPMA_OBJECT` bits.
    pub object_attributes: u32,
    /// For an RSA key: modulus and public exponent, big-endian (exponent 0 in the structure
    /// means 65537, Part 2 §12.2.3.5, and is given here as `01 00 01`).
    pub rsa: Option<RsaPublicKey>,
    /// For an RSA key: its signing scheme and hash (`TPM_ALG_NULL` if none).
    pub rsa_scheme: Option<(u16, u16)>,
}

/// A quote as `TPM2_Quote` returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The marshalled `TPMS_ATTEST` (the inside of `TPM2B_ATTEST`): what the AK signed.
    pub attest: Vec<u8>,
    /// The RSASSA-PKCS1-v1_5 signature (the `sig` buffer of `TPMS_SIGNATURE_RSA`).
    pub signature: Vec<u8>,
}

/// Everything the bundle needs from the vTPM for one nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VtpmQuote {
    /// The quote over [`QUOTE_PCRS`] with the nonce as qualifying data.
    pub quote: Quote,
    /// SHA-256 PCR values 0-23, read after the quote and checked against its `pcrDigest`.
    pub pcrs: Vec<[u8; 32]>,
    /// The AK at [`VTPM_AK_HANDLE`].
    pub ak_public: TpmPublic,
    /// The AK certificate from [`AK_CERT_NV_INDEX`] (DER, padding removed), when present.
    pub ak_cert: Option<Vec<u8>>,
    /// Why `ak_cert` is `None` although the index exists: the TPM refused to read it. The
    /// certificate is optional evidence, so this does not fail the quote; callers should warn.
    pub ak_cert_error: Option<String>,
}

impl VtpmQuote {
    /// The quote in the evidence crate's `tpm_quote.json` shape.
    pub fn to_tpm_quote(&self) -> TpmQuote {
        TpmQuote {
            signature: self.quote.signature.clone(),
            message: self.quote.attest.clone(),
            pcrs: self.pcrs.iter().map(|p| p.to_vec()).collect(),
        }
    }
}

/// The ephemeral key of Azure's guest attestation flow, certified by the AK: what the
/// `AzureGuest` request's `EncKeyPub`, `EncKeyCertifyInfo` and `EncKeyCertifyInfoSignature` carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifiedKey {
    /// The key's marshalled `TPMT_PUBLIC` as the TPM returned it (the inside of its
    /// `TPM2B_PUBLIC`).
    pub public_area: Vec<u8>,
    /// Its name: `nameAlg` ‖ SHA-256 of `public_area`.
    pub name: Vec<u8>,
    /// The `TPMS_ATTEST` of `TPM2_Certify` (the inside of its `TPM2B_ATTEST`), as received.
    pub certify_info: Vec<u8>,
    /// The AK's RSASSA-PKCS1-v1_5 SHA-256 signature over `certify_info` (the `sig` buffer).
    pub certify_signature: Vec<u8>,
}

/// The result of [`VtpmClient::fresh_hcl_report`]: the report and which case happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreshHcl {
    /// The contents of NV index `0x01400001`.
    pub bytes: Vec<u8>,
    /// Whether its runtime data's `user-data` equals the user data written. `false` only when
    /// the caller allowed a stale report.
    pub echoed: bool,
    /// Reads of `0x01400001` made.
    pub attempts: u32,
    /// Time from the write of the user data to the last read.
    pub waited: Duration,
    /// Whether `0x01400002` had to be defined first.
    pub defined_user_data_index: bool,
    /// The `user-data` the returned report holds.
    pub observed_user_data: Option<Vec<u8>>,
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

/// The vTPM commands thimble uses, over a [`TpmTransport`].
#[derive(Debug)]
pub struct VtpmClient<T: TpmTransport> {
    transport: T,
    max_chunk: Option<u16>,
    nv_buffer_max: Option<u16>,
    poll_interval: Duration,
}

impl<T: TpmTransport> VtpmClient<T> {
    /// A client over `transport`, with the default chunk size and poll interval.
    pub fn new(transport: T) -> Self {
        Self {
            transport,
            max_chunk: None,
            nv_buffer_max: None,
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }

    /// Reads NV indices in chunks of at most `n` bytes (at least 1), below what the TPM allows.
    pub fn with_max_chunk(mut self, n: u16) -> Self {
        self.max_chunk = Some(n.max(1));
        self
    }

    /// The pause between reads of the HCL report while waiting for the echo.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport, mutably.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// The transport, giving up the client.
    pub fn into_transport(self) -> T {
        self.transport
    }

    /// Sends one command: `passwords` has one entry per authorized handle (empty: no sessions).
    pub fn execute(
        &mut self,
        code: u32,
        handles: &[u32],
        passwords: &[&[u8]],
        params: &[u8],
        response_handles: usize,
    ) -> Result<ResponseBody, VtpmError> {
        let command = encode_command(code, handles, passwords, params)?;
        let response =
            self.transport
                .transact(&command)
                .map_err(|source| VtpmError::Transport {
                    command: command_name(code),
                    source,
                })?;
        decode_response(code, &response, response_handles, !passwords.is_empty())
    }

    /// One `TPM_PT` property from `TPM2_GetCapability(TPM_CAP_TPM_PROPERTIES)` (Part 3 §30.2),
    /// `None` if the TPM does not report it (it then starts the list at the next property).
    pub fn tpm_property(&mut self, property: u32) -> Result<Option<u32>, VtpmError> {
        let p = GetCapabilityCommand {
            capability: cap::TPM_PROPERTIES,
            property,
            property_count: 1,
        }
        .to_bytes()?;
        let body = self.execute(cc::GET_CAPABILITY, &[], &[], &p, 0)?;
        let answer =
            GetCapabilityResponse::parse(&body.params).map_err(malformed(cc::GET_CAPABILITY))?;
        Ok(answer
            .tpm_properties
            .iter()
            .rfind(|p| p.property == property)
            .map(|p| p.value))
    }

    /// `TPM_PT_NV_BUFFER_MAX`, the largest `NV_Read`/`NV_Write` this TPM takes in one command,
    /// or [`DEFAULT_NV_BUFFER_MAX`] if it does not say; capped at [`MAX_NV_CHUNK`]. Asked once.
    pub fn nv_buffer_max(&mut self) -> Result<u16, VtpmError> {
        if let Some(v) = self.nv_buffer_max {
            return Ok(v);
        }
        let value = match self.tpm_property(pt::NV_BUFFER_MAX)? {
            Some(0) | None => DEFAULT_NV_BUFFER_MAX,
            Some(v) => u16::try_from(v).unwrap_or(u16::MAX).min(MAX_NV_CHUNK),
        };
        self.nv_buffer_max = Some(value);
        Ok(value)
    }

    fn chunk_size(&mut self) -> Result<u16, VtpmError> {
        let tpm = self.nv_buffer_max()?;
        Ok(self.max_chunk.map_or(tpm, |m| m.min(tpm)))
    }

    /// `TPM2_NV_ReadPublic` (Part 3 §31.6). A missing index is [`VtpmError::NvIndexMissing`].
    pub fn nv_read_public(&mut self, index: u32) -> Result<NvPublic, VtpmError> {
        let body = match self.execute(cc::NV_READ_PUBLIC, &[index], &[], &[], 0) {
            Ok(b) => b,
            // TPM_RC_HANDLE on handle 1, nvIndex: no such index (the reference implementation
            // answers 0x18b; openvmm's tpm_lib `find_nv_index` tests for exactly that).
            Err(VtpmError::Tpm { rc, .. })
                if rc.base() == rc::HANDLE && rc.position() == Some(RcPosition::Handle(1)) =>
            {
                return Err(VtpmError::NvIndexMissing { index });
            }
            Err(e) => return Err(e),
        };
        let answer =
            NvReadPublicResponse::parse(&body.params).map_err(malformed(cc::NV_READ_PUBLIC))?;
        if answer.nv_public.nv_index != index {
            return Err(malformed(cc::NV_READ_PUBLIC)(Malformed::Unexpected {
                what: "nvIndex",
                found: u64::from(answer.nv_public.nv_index),
                expected: u64::from(index),
            }));
        }
        Ok(NvPublic {
            name: answer.nv_name,
            ..NvPublic::from(answer.nv_public)
        })
    }

    /// Reads all of an NV index in chunks no larger than the TPM's NV buffer (and the limit set
    /// with [`VtpmClient::with_max_chunk`]), authorizing as [`NvPublic::read_auth`] says.
    pub fn nv_read(&mut self, index: u32) -> Result<Vec<u8>, VtpmError> {
        let public = self.nv_read_public(index)?;
        let auth = public.read_auth().ok_or(VtpmError::NvNotReadable {
            index,
            attributes: public.attributes,
        })?;
        self.nv_read_range(auth, index, 0, public.data_size)
    }

    /// `TPM2_NV_Read` (Part 3 §31.13) of `len` bytes from `offset`, chunked.
    pub fn nv_read_range(
        &mut self,
        auth: NvAuth<'_>,
        index: u32,
        offset: u16,
        len: u16,
    ) -> Result<Vec<u8>, VtpmError> {
        let chunk = self.chunk_size()?;
        let malformed = malformed(cc::NV_READ);
        let end = u32::from(offset) + u32::from(len);
        let mut out = Vec::with_capacity(usize::from(len));
        let mut at = u32::from(offset);
        while at < end {
            // Both fit a u16: `at` < `end` <= offset + len, and chunk is a u16.
            let size = (end - at).min(u32::from(chunk)) as u16;
            let p = NvReadCommand {
                size,
                offset: at as u16,
            }
            .to_bytes()?;
            let body = self.execute(
                cc::NV_READ,
                &[auth.handle(index), index],
                &[auth.password()],
                &p,
                0,
            )?;
            let data = NvReadResponse::parse(&body.params)
                .map_err(&malformed)?
                .data;
            if data.len() != usize::from(size) {
                return Err(malformed(Malformed::Unexpected {
                    what: "NV_Read data size",
                    found: data.len() as u64,
                    expected: u64::from(size),
                }));
            }
            out.extend_from_slice(&data);
            at += u32::from(size);
        }
        Ok(out)
    }

    /// `TPM2_NV_DefineSpace` (Part 3 §31.3) of `public` with index password `auth_value`.
    pub fn nv_define_space(
        &mut self,
        hierarchy: NvAuth<'_>,
        auth_value: &[u8],
        public: &NvPublic,
    ) -> Result<(), VtpmError> {
        let p = NvDefineSpaceCommand {
            auth: auth_value.to_vec(),
            public_info: public.tpms(),
        }
        .to_bytes()?;
        self.execute(
            cc::NV_DEFINE_SPACE,
            &[hierarchy.handle(public.index)],
            &[hierarchy.password()],
            &p,
            0,
        )?;
        Ok(())
    }

    /// `TPM2_NV_Write` (Part 3 §31.7) of `data` at `offset`, chunked like reads.
    pub fn nv_write(
        &mut self,
        auth: NvAuth<'_>,
        index: u32,
        offset: u16,
        data: &[u8],
    ) -> Result<(), VtpmError> {
        let chunk = usize::from(self.chunk_size()?);
        let end = usize::from(offset) + data.len();
        if end > usize::from(u16::MAX) {
            return Err(VtpmError::TooLarge {
                what: "NV write",
                len: end,
                max: usize::from(u16::MAX),
            });
        }
        for (i, piece) in data.chunks(chunk).enumerate() {
            // Below `end`, which fits a u16.
            let at = (usize::from(offset) + i * chunk) as u16;
            let p = NvWriteCommand {
                data: piece.to_vec(),
                offset: at,
            }
            .to_bytes()?;
            self.execute(
                cc::NV_WRITE,
                &[auth.handle(index), index],
                &[auth.password()],
                &p,
                0,
            )?;
        }
        Ok(())
    }

    /// Writes `user_data` to NV index `0x01400002`, first defining it as Azure's tools do if it is
    /// missing. Returns whether it had to be defined.
    pub fn nv_define_and_write_user_data(
        &mut self,
        user_data: &[u8; USER_DATA_LEN],
    ) -> Result<bool, VtpmError> {
        let index = HCL_USER_DATA_NV_INDEX;
        let (public, defined) = match self.nv_read_public(index) {
            Ok(p) => (p, false),
            Err(VtpmError::NvIndexMissing { .. }) => {
                let template = user_data_index_template();
                match self.nv_define_space(NvAuth::Owner, &[], &template) {
                    Ok(()) => (template, true),
                    // Someone else defined it in between: use theirs.
                    Err(VtpmError::Tpm { rc, .. }) if rc.base() == rc::NV_DEFINED => {
                        (self.nv_read_public(index)?, false)
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        // openvmm reads exactly 64 bytes from the index; a smaller one cannot carry the data.
        if usize::from(public.data_size) < USER_DATA_LEN {
            return Err(VtpmError::NvIndexTooSmall {
                index,
                size: public.data_size,
                needed: USER_DATA_LEN,
            });
        }
        let auth = public.write_auth().ok_or(VtpmError::NvNotWritable {
            index,
            attributes: public.attributes,
        })?;
        self.nv_write(auth, index, 0, user_data)?;
        Ok(defined)
    }

    /// The HCL report as it is now (boot-time unless something refreshed it).
    pub fn hcl_report(&mut self) -> Result<Vec<u8>, VtpmError> {
        self.nv_read(HCL_REPORT_NV_INDEX)
    }

    /// A fresh HCL report for `report_data`: writes it to `0x01400002`, then reads `0x01400001`
    /// until the runtime data's `user-data` equals it, pausing between reads, for at most
    /// `deadline`. If the echo never comes the result is [`VtpmError::StaleReport`], or, with
    /// `allow_stale`, the last report with `echoed: false`. A report that does not parse while
    /// waiting is read again (a concurrent reader can make the paravisor rewrite the index
    /// between chunks); one that still does not parse at the deadline is an error either way.
    pub fn fresh_hcl_report(
        &mut self,
        report_data: &[u8; USER_DATA_LEN],
        deadline: Duration,
        allow_stale: bool,
    ) -> Result<FreshHcl, VtpmError> {
        self.fresh_hcl_report_with_progress(report_data, deadline, allow_stale, &Progress::none())
    }

    /// As [`VtpmClient::fresh_hcl_report`], telling `progress` that it waits for the paravisor
    /// before the first read, and again on the retries numbered 2, 4, 8, … (a line per read would
    /// be one every [`DEFAULT_POLL_INTERVAL`]).
    pub fn fresh_hcl_report_with_progress(
        &mut self,
        report_data: &[u8; USER_DATA_LEN],
        deadline: Duration,
        allow_stale: bool,
        progress: &Progress,
    ) -> Result<FreshHcl, VtpmError> {
        let defined = self.nv_define_and_write_user_data(report_data)?;
        let start = Instant::now();
        let mut attempts = 0u32;
        progress.report(&format!(
            "waiting for the paravisor to refresh the HCL report (vTPM NV {HCL_REPORT_NV_INDEX:#010x})"
        ));
        loop {
            attempts += 1;
            if attempts > 1 && attempts.is_power_of_two() {
                progress.report(&format!(
                    "waiting for the paravisor to refresh the HCL report (attempt {attempts})"
                ));
            }
            let bytes = self.nv_read(HCL_REPORT_NV_INDEX)?;
            let observed = observed_user_data(&bytes);
            let waited = start.elapsed();
            let echoed = matches!(&observed, Ok(Some(d)) if d[..] == report_data[..]);
            if echoed || waited >= deadline {
                let observed = observed?;
                if !echoed && !allow_stale {
                    return Err(VtpmError::StaleReport {
                        attempts,
                        waited,
                        observed,
                    });
                }
                return Ok(FreshHcl {
                    bytes,
                    echoed,
                    attempts,
                    waited,
                    defined_user_data_index: defined,
                    observed_user_data: observed,
                });
            }
            thread::sleep(self.poll_interval.min(deadline - waited));
        }
    }

    /// `TPM2_PCR_Read` (Part 3 §22.4) of SHA-256 PCRs, in the order asked. The TPM returns at
    /// most eight digests per call (`TPML_DIGEST`), so this asks again for what is missing.
    pub fn pcr_read_sha256(&mut self, pcrs: &[u32]) -> Result<Vec<[u8; 32]>, VtpmError> {
        let malformed = malformed(cc::PCR_READ);
        // The PCRs still to read, as a SHA-256 bitmap.
        let mut wanted = PcrSelection::sha256(pcrs)?;
        let is_wanted = |wanted: &PcrSelection, index: u32| {
            wanted
                .select
                .get((index / 8) as usize)
                .is_some_and(|b| b & (1 << (index % 8)) != 0)
        };
        let mut values: [Option<[u8; 32]>; 24] = [None; 24];
        while wanted.select.iter().any(|&b| b != 0) {
            let missing = wanted.indices();
            let p = PcrReadCommand {
                pcr_selection_in: TpmlPcrSelection::sha256(&missing)?,
            }
            .to_bytes()?;
            let body = self.execute(cc::PCR_READ, &[], &[], &p, 0)?;
            let answer = PcrReadResponse::parse(&body.params).map_err(&malformed)?;
            // The digests follow the selection out, bank by bank, each bitmap ascending.
            let returned: Vec<(u16, u32)> = answer
                .pcr_selection_out
                .pcr_selections
                .iter()
                .flat_map(|s| s.indices().into_iter().map(move |i| (s.hash, i)))
                .collect();
            let digests = answer.pcr_values.digests;
            if returned.len() != digests.len() {
                return Err(malformed(Malformed::Unexpected {
                    what: "pcrValues.count",
                    found: digests.len() as u64,
                    expected: returned.len() as u64,
                }));
            }
            let mut progress = false;
            for ((hash, index), value) in returned.into_iter().zip(digests) {
                if hash != alg::SHA256 || !is_wanted(&wanted, index) {
                    return Err(malformed(Malformed::Unexpected {
                        what: "PCR returned without being asked for",
                        found: u64::from(index),
                        expected: u64::from(hash),
                    }));
                }
                let value: [u8; 32] = value.as_slice().try_into().map_err(|_| {
                    malformed(Malformed::Unexpected {
                        what: "SHA-256 PCR value length",
                        found: value.len() as u64,
                        expected: 32,
                    })
                })?;
                // `is_wanted` held, so `index` is below 24.
                values[index as usize] = Some(value);
                wanted.select[(index / 8) as usize] &= !(1 << (index % 8));
                progress = true;
            }
            if !progress {
                return Err(VtpmError::PcrsUnavailable { missing });
            }
        }
        let mut out = Vec::with_capacity(pcrs.len());
        for &i in pcrs {
            // Every requested index was filled before the loop ended.
            match values[i as usize] {
                Some(v) => out.push(v),
                None => return Err(VtpmError::PcrsUnavailable { missing: vec![i] }),
            }
        }
        Ok(out)
    }

    /// `TPM2_Quote` (Part 3 §18.4) with the key at `ak_handle` over SHA-256 `pcrs`, with
    /// `qualifying_data` as `extraData`. The scheme is `TPM_ALG_NULL`: a restricted signing key
    /// signs with its own scheme and refuses any other. Only RSASSA with SHA-256 is accepted
    /// back, the scheme of Azure's AK and of what `thimble-verify` checks.
    pub fn quote(
        &mut self,
        ak_handle: u32,
        qualifying_data: &[u8],
        pcrs: &[u32],
    ) -> Result<Quote, VtpmError> {
        if qualifying_data.len() > MAX_QUALIFYING_DATA_LEN {
            return Err(VtpmError::TooLarge {
                what: "qualifying data",
                len: qualifying_data.len(),
                max: MAX_QUALIFYING_DATA_LEN,
            });
        }
        let p = QuoteCommand {
            qualifying_data: qualifying_data.to_vec(),
            in_scheme: TpmtSigScheme::NULL,
            pcr_select: TpmlPcrSelection::sha256(pcrs)?,
        }
        .to_bytes()?;
        let body = self.execute(cc::QUOTE, &[ak_handle], &[&[]], &p, 0)?;
        let answer = QuoteResponse::parse(&body.params).map_err(malformed(cc::QUOTE))?;
        match answer.signature {
            TpmtSignature::Rsassa {
                hash: alg::SHA256,
                sig,
            } => Ok(Quote {
                attest: answer.quoted,
                signature: sig,
            }),
            TpmtSignature::Rsassa { hash, .. } => Err(VtpmError::UnexpectedSignature {
                sig_alg: alg::RSASSA,
                hash_alg: hash,
            }),
            other => Err(VtpmError::UnexpectedSignature {
                sig_alg: other.sig_alg(),
                hash_alg: alg::NULL,
            }),
        }
    }

    /// `TPM2_ReadPublic` (Part 3 §12.4). For a SHA-256 name the name is checked to be the hash of
    /// the public area received, so the key and the name a quote reports belong together.
    pub fn read_public(&mut self, handle: u32) -> Result<TpmPublic, VtpmError> {
        let body = self.execute(cc::READ_PUBLIC, &[handle], &[], &[], 0)?;
        let malformed = malformed(cc::READ_PUBLIC);
        let answer = ReadPublicResponse::parse(&body.params).map_err(&malformed)?;
        let area = TpmtPublic::parse(&answer.out_public).map_err(&malformed)?;
        if area.name_alg == alg::SHA256 {
            let expected = sha256_name(&answer.out_public);
            if answer.name != expected {
                return Err(malformed(Malformed::Unexpected {
                    what: "name (not SHA-256 of the public area)",
                    found: answer.name.len() as u64,
                    expected: expected.len() as u64,
                }));
            }
        }
        let (rsa, rsa_scheme) = match &area.detail {
            PublicDetail::Rsa { parameters, unique } => (
                Some(RsaPublicKey {
                    n: unique.clone(),
                    e: parameters.exponent_bytes(),
                }),
                Some((parameters.scheme.scheme, parameters.scheme.hash_alg)),
            ),
            PublicDetail::Undecoded { .. } => (None, None),
        };
        Ok(TpmPublic {
            object_type: area.object_type(),
            name_alg: area.name_alg,
            object_attributes: area.object_attributes,
            public_area: answer.out_public,
            name: answer.name,
            qualified_name: answer.qualified_name,
            rsa,
            rsa_scheme,
        })
    }

    /// The AK certificate from [`AK_CERT_NV_INDEX`], `None` if the index is missing or was never
    /// written. The host writes a DER certificate into an index sized for the largest one
    /// (openvmm `TPM_DEFAULT_AKCERT_SIZE`), so bytes after the DER length are dropped.
    pub fn ak_certificate(&mut self) -> Result<Option<Vec<u8>>, VtpmError> {
        match self.nv_read(AK_CERT_NV_INDEX) {
            Ok(bytes) => Ok(Some(trim_der(bytes))),
            Err(VtpmError::NvIndexMissing { .. }) => Ok(None),
            Err(VtpmError::Tpm { rc, .. }) if rc.base() == rc::NV_UNINITIALIZED => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends `command` as built (sessions of any kind), expecting `response_handles` handles
    /// back.
    pub fn execute_command(
        &mut self,
        command: &Command,
        response_handles: usize,
    ) -> Result<ResponseBody, VtpmError> {
        let bytes = command.encode()?;
        let response = self
            .transport
            .transact(&bytes)
            .map_err(|source| VtpmError::Transport {
                command: command_name(command.code),
                source,
            })?;
        decode_response(
            command.code,
            &response,
            response_handles,
            !command.sessions.is_empty(),
        )
    }

    /// `TPM2_FlushContext` (Part 3 §28.4) of a transient object or a session.
    pub fn flush_context(&mut self, handle: u32) -> Result<(), VtpmError> {
        let p = FlushContextCommand {
            flush_handle: handle,
        }
        .to_bytes()?;
        self.execute(cc::FLUSH_CONTEXT, &[], &[], &p, 0)?;
        Ok(())
    }

    /// `TPM2_StartAuthSession` (Part 3 §11.1) of a policy session with SHA-256, neither salted
    /// nor bound, without parameter encryption, as CGA's `Tss2Session::Start` opens it. The
    /// caller's nonce is zeros like CGA's: it would key an HMAC or a salt, and this session has
    /// neither (its authorization is its policy digest alone). Returns the session handle.
    pub fn start_policy_session(&mut self) -> Result<u32, VtpmError> {
        let p = StartAuthSessionCommand {
            nonce_caller: vec![0; 32],
            encrypted_salt: Vec::new(),
            session_type: tpm2::SE_POLICY,
            symmetric: TpmtSymDefObject::NULL,
            auth_hash: alg::SHA256,
        }
        .to_bytes()?;
        let body = self.execute(cc::START_AUTH_SESSION, &[rh::NULL, rh::NULL], &[], &p, 1)?;
        StartAuthSessionResponse::parse(&body.params).map_err(malformed(cc::START_AUTH_SESSION))?;
        body.handles
            .first()
            .copied()
            .ok_or(VtpmError::EphemeralKeyMismatch {
                what: "session handle",
            })
    }

    /// `TPM2_PolicyPCR` (Part 3 §23.7) in `session` over SHA-256 `pcrs` holding `values`.
    pub fn policy_pcr(
        &mut self,
        session: u32,
        pcrs: &[u32],
        values: &[[u8; 32]],
    ) -> Result<(), VtpmError> {
        let p = PolicyPcrCommand {
            pcr_digest: sha256_pcr_digest(values).to_vec(),
            pcrs: TpmlPcrSelection::sha256(pcrs)?,
        }
        .to_bytes()?;
        self.execute(cc::POLICY_PCR, &[session], &[], &p, 0)?;
        Ok(())
    }

    /// `TPM2_CreatePrimary` (Part 3 §24.1) of the ephemeral key in the null hierarchy, as CGA's
    /// `CreateEphemeralKey` does: [`ephemeral_key_template`] with the `PolicyPCR` digest of
    /// `pcrs` holding `values` as its `authPolicy`. The null hierarchy's seed stays the same
    /// until the TPM resets, so the same template gives the same key again: that is how the
    /// key is created once to be certified and again to decrypt the answer. Returns the
    /// transient handle (the caller flushes it) and the public area, checked to be the
    /// template's, with the name checked to be its hash.
    pub fn create_ephemeral_key(
        &mut self,
        pcrs: &[u32],
        values: &[[u8; 32]],
    ) -> Result<(u32, Vec<u8>, Vec<u8>), VtpmError> {
        let selection = TpmlPcrSelection::sha256(pcrs)?;
        let policy = policy_pcr_digest(&selection, &sha256_pcr_digest(values))?;
        let template = ephemeral_key_template(&policy);
        let p = CreatePrimaryCommand {
            user_auth: Vec::new(),
            sensitive_data: Vec::new(),
            in_public: template.clone(),
            outside_info: Vec::new(),
            creation_pcr: TpmlPcrSelection::default(),
        }
        .to_bytes()?;
        let body = self.execute(cc::CREATE_PRIMARY, &[rh::NULL], &[&[]], &p, 1)?;
        let handle = body
            .handles
            .first()
            .copied()
            .ok_or(VtpmError::EphemeralKeyMismatch {
                what: "object handle",
            })?;
        let checked = check_created(&body.params, &template);
        match checked {
            Ok((public, name)) => Ok((handle, public, name)),
            Err(e) => {
                // The key is loaded whatever the answer said; do not leave it behind. The
                // answer's own failure is the one to report.
                let _ = self.flush_context(handle);
                Err(e)
            }
        }
    }

    /// `TPM2_Certify` (Part 3 §18.2) of `object` by `signer` (both with empty passwords: the
    /// ephemeral key's ADMIN role takes its empty authValue, as CGA's `Esys_Certify` with two
    /// password sessions), no qualifying data, the signer's own scheme. Returns the
    /// `TPMS_ATTEST` and the RSASSA-SHA-256 signature, checked to certify `name`.
    pub fn certify(
        &mut self,
        object: u32,
        signer: u32,
        name: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), VtpmError> {
        let p = CertifyCommand {
            qualifying_data: Vec::new(),
            in_scheme: TpmtSigScheme::NULL,
        }
        .to_bytes()?;
        let body = self.execute(cc::CERTIFY, &[object, signer], &[&[], &[]], &p, 0)?;
        let malformed = malformed(cc::CERTIFY);
        let answer = CertifyResponse::parse(&body.params).map_err(&malformed)?;
        let attest = CertifyAttest::parse(&answer.certify_info).map_err(&malformed)?;
        if attest.name != name {
            return Err(VtpmError::EphemeralKeyMismatch {
                what: "certified name",
            });
        }
        match answer.signature {
            TpmtSignature::Rsassa {
                hash: alg::SHA256,
                sig,
            } => Ok((answer.certify_info, sig)),
            TpmtSignature::Rsassa { hash, .. } => Err(VtpmError::UnexpectedSignature {
                sig_alg: alg::RSASSA,
                hash_alg: hash,
            }),
            other => Err(VtpmError::UnexpectedSignature {
                sig_alg: other.sig_alg(),
                hash_alg: alg::NULL,
            }),
        }
    }

    /// `TPM2_RSA_Decrypt` (Part 3 §14.3) of `cipher_text` with `key`, authorized by the policy
    /// `session`, RSAES-PKCS1-v1_5 as CGA asks for, no label. The session is kept open
    /// (`continueSession`); the caller flushes it.
    pub fn rsa_decrypt(
        &mut self,
        key: u32,
        session: u32,
        cipher_text: &[u8],
    ) -> Result<Vec<u8>, VtpmError> {
        if cipher_text.len() > tpm2::MAX_RSA_BLOCK {
            return Err(VtpmError::TooLarge {
                what: "RSA ciphertext",
                len: cipher_text.len(),
                max: tpm2::MAX_RSA_BLOCK,
            });
        }
        let params = RsaDecryptCommand {
            cipher_text: cipher_text.to_vec(),
            in_scheme: RsaDecryptScheme::Rsaes,
            label: Vec::new(),
        }
        .to_bytes()?;
        let command = Command {
            code: cc::RSA_DECRYPT,
            handles: vec![key],
            // A policy session without PolicyAuthValue or PolicyPassword carries no HMAC
            // (Part 1 §19.6.13); its nonce only feeds HMACs, so zeros do.
            sessions: vec![TpmsAuthCommand {
                session_handle: session,
                nonce: vec![0; 32],
                session_attributes: tpma_session::CONTINUE_SESSION,
                hmac: Vec::new(),
            }],
            params,
        };
        let body = self.execute_command(&command, 0)?;
        Ok(RsaDecryptResponse::parse(&body.params)
            .map_err(malformed(cc::RSA_DECRYPT))?
            .message)
    }

    /// The ephemeral key for `pcrs` holding `values`, created, certified by the AK at
    /// `ak_handle`, and flushed whatever happened (CGA `GetEphemeralKey`).
    pub fn certified_ephemeral_key(
        &mut self,
        ak_handle: u32,
        pcrs: &[u32],
        values: &[[u8; 32]],
    ) -> Result<CertifiedKey, VtpmError> {
        let (handle, public_area, name) = self.create_ephemeral_key(pcrs, values)?;
        let certified = self.certify(handle, ak_handle, &name);
        let flushed = self.flush_context(handle);
        let (certify_info, certify_signature) = certified?;
        flushed?;
        Ok(CertifiedKey {
            public_area,
            name,
            certify_info,
            certify_signature,
        })
    }

    /// Decrypts `cipher_text` with the ephemeral key for `pcrs` (CGA
    /// `DecryptWithEphemeralKey`): reads the PCRs, creates the key again, opens a policy
    /// session, satisfies `PolicyPCR` with the values read, decrypts, and flushes the key and
    /// the session on every path. If the PCRs changed since the key was certified, the key's
    /// policy (fixed at creation from the values then) and the session's no longer agree and
    /// the TPM refuses with `TPM_RC_POLICY_FAIL`.
    pub fn decrypt_with_ephemeral_key(
        &mut self,
        pcrs: &[u32],
        cipher_text: &[u8],
    ) -> Result<Vec<u8>, VtpmError> {
        let values = self.pcr_read_sha256(pcrs)?;
        self.decrypt_with_ephemeral_key_for(pcrs, &values, &values, cipher_text)
    }

    /// As [`VtpmClient::decrypt_with_ephemeral_key`] with the key made for `key_values` and the
    /// session's `PolicyPCR` given `session_values` (the two are the same outside tests of the
    /// policy check).
    pub fn decrypt_with_ephemeral_key_for(
        &mut self,
        pcrs: &[u32],
        key_values: &[[u8; 32]],
        session_values: &[[u8; 32]],
        cipher_text: &[u8],
    ) -> Result<Vec<u8>, VtpmError> {
        let (key, _, _) = self.create_ephemeral_key(pcrs, key_values)?;
        let session = match self.start_policy_session() {
            Ok(s) => s,
            Err(e) => {
                let _ = self.flush_context(key);
                return Err(e);
            }
        };
        let decrypted = self
            .policy_pcr(session, pcrs, session_values)
            .and_then(|()| self.rsa_decrypt(key, session, cipher_text));
        // Flush both whatever happened; the first failure is the one reported.
        let flushed_session = self.flush_context(session);
        let flushed_key = self.flush_context(key);
        let plain = decrypted?;
        flushed_session?;
        flushed_key?;
        Ok(plain)
    }

    /// The quote, PCR values, AK public key and AK certificate for `nonce`: a quote with the AK
    /// at [`VTPM_AK_HANDLE`] over PCRs 0-23, the PCRs read after it, checked to hash to its
    /// `pcrDigest` (again from the quote if a PCR moved in between), with its `extraData` checked
    /// to be `nonce` and its signer to be the AK.
    pub fn collect_quote(&mut self, nonce: &[u8]) -> Result<VtpmQuote, VtpmError> {
        let ak_public = self.read_public(VTPM_AK_HANDLE)?;
        // A TPM that answers but will not hand out the certificate (authorization, locking)
        // leaves the quote valid; a transport or framing failure does not.
        let (ak_cert, ak_cert_error) = match self.ak_certificate() {
            Ok(cert) => (cert, None),
            Err(e @ (VtpmError::Tpm { .. } | VtpmError::NvNotReadable { .. })) => {
                (None, Some(e.to_string()))
            }
            Err(e) => return Err(e),
        };
        for _ in 0..QUOTE_ATTEMPTS {
            let quote = self.quote(VTPM_AK_HANDLE, nonce, &QUOTE_PCRS)?;
            let pcrs = self.pcr_read_sha256(&QUOTE_PCRS)?;
            let attest =
                TpmsAttest::parse(&quote.attest).map_err(|source| VtpmError::Attest { source })?;
            if attest.extra_data != nonce {
                return Err(VtpmError::QuoteMismatch { what: "extraData" });
            }
            if attest.qualified_signer != ak_public.qualified_name {
                return Err(VtpmError::QuoteMismatch {
                    what: "qualifiedSigner",
                });
            }
            let values: Vec<Vec<u8>> = pcrs.iter().map(|p| p.to_vec()).collect();
            let digest = attest
                .compute_pcr_digest(&values)
                .map_err(|source| VtpmError::Attest { source })?;
            if digest[..] == attest.pcr_digest[..] {
                return Ok(VtpmQuote {
                    quote,
                    pcrs,
                    ak_public,
                    ak_cert,
                    ak_cert_error,
                });
            }
        }
        Err(VtpmError::PcrsChanged {
            attempts: QUOTE_ATTEMPTS,
        })
    }
}

/// The public area and name of a `TPM2_CreatePrimary` answer, checked to be `template`'s
/// (attributes, policy, RSA-2048; the TPM fills in only `unique`) with the name its hash.
fn check_created(params: &[u8], template: &TpmtPublic) -> Result<(Vec<u8>, Vec<u8>), VtpmError> {
    let malformed = malformed(cc::CREATE_PRIMARY);
    let answer = CreatePrimaryResponse::parse(params).map_err(&malformed)?;
    let area = TpmtPublic::parse(&answer.out_public).map_err(&malformed)?;
    let same = area.name_alg == template.name_alg
        && area.object_attributes == template.object_attributes
        && area.auth_policy == template.auth_policy;
    let rsa_2048 = matches!(
        &area.detail,
        PublicDetail::Rsa { parameters, unique }
            if parameters.key_bits == 2048 && unique.len() == 256
    );
    if !same || !rsa_2048 {
        return Err(VtpmError::EphemeralKeyMismatch {
            what: "public area",
        });
    }
    if answer.name != sha256_name(&answer.out_public) {
        return Err(VtpmError::EphemeralKeyMismatch { what: "name" });
    }
    Ok((answer.out_public, answer.name))
}

/// The `user-data` of the runtime data in HCL report `bytes`.
fn observed_user_data(bytes: &[u8]) -> Result<Option<Vec<u8>>, VtpmError> {
    let report = HclReport::parse(bytes).map_err(|source| VtpmError::HclReport { source })?;
    let runtime = report
        .runtime_data()
        .map_err(|source| VtpmError::RuntimeData { source })?;
    Ok(runtime.user_data)
}

/// `bytes` cut after the DER element it starts with, if it starts with a SEQUENCE whose
/// definite length fits; otherwise unchanged.
pub fn trim_der(mut bytes: Vec<u8>) -> Vec<u8> {
    let total = match bytes.as_slice() {
        [0x30, len, ..] if *len < 0x80 => Some(2 + usize::from(*len)),
        [0x30, 0x81, len, ..] => Some(3 + usize::from(*len)),
        [0x30, 0x82, hi, lo, ..] => Some(4 + usize::from(u16::from_be_bytes([*hi, *lo]))),
        _ => None,
    };
    if let Some(total) = total.filter(|&t| t <= bytes.len()) {
        bytes.truncate(total);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use thimble_evidence::tpm2::{
        TpmsAuthResponse, TpmsTaggedProperty, encode_error_response, encode_response,
    };

    use super::*;

    /// Answers commands from a script and records them.
    #[derive(Default)]
    struct Scripted {
        responses: VecDeque<io::Result<Vec<u8>>>,
        sent: Vec<Vec<u8>>,
    }

    impl TpmTransport for Scripted {
        fn transact(&mut self, command: &[u8]) -> io::Result<Vec<u8>> {
            self.sent.push(command.to_vec());
            self.responses
                .pop_front()
                .unwrap_or_else(|| Err(io::Error::other("script exhausted")))
        }
    }

    fn without_session(params: &impl Marshal) -> Vec<u8> {
        let body = ResponseBody {
            handles: vec![],
            params: params.to_bytes().unwrap(),
        };
        encode_response(&body, &[]).unwrap()
    }

    fn with_session(params: &impl Marshal) -> Vec<u8> {
        let body = ResponseBody {
            handles: vec![],
            params: params.to_bytes().unwrap(),
        };
        encode_response(&body, &[TpmsAuthResponse::password()]).unwrap()
    }

    #[test]
    fn responses_are_mapped_to_the_command() {
        match decode_response(cc::NV_READ, &[0x80, 0x01, 0, 0], 0, true) {
            Err(VtpmError::Malformed { command, reason }) => {
                assert_eq!(command, "TPM2_NV_Read");
                assert_eq!(reason, Malformed::ShortHeader { len: 4 });
            }
            other => panic!("{other:?}"),
        }
        // A TPM error is reported even with a session tag on the request.
        let err = decode_response(cc::NV_READ, &encode_error_response(0x14a), 0, true).unwrap_err();
        assert_eq!(err.response_code(), Some(ResponseCode(0x14a)));
        assert!(err.to_string().contains("never written"), "{err}");
        assert!(err.to_string().starts_with("TPM2_NV_Read failed"), "{err}");
    }

    #[test]
    fn nv_read_chunks_and_checks_sizes() {
        let mut t = Scripted::default();
        let p = NvPublic {
            index: 0x0150_0000,
            name_alg: alg::SHA256,
            attributes: nv_attr::AUTHREAD | nv_attr::AUTHWRITE | nv_attr::WRITTEN,
            auth_policy: vec![],
            data_size: 10,
            name: vec![],
        };
        let public = NvReadPublicResponse {
            nv_public: p.tpms(),
            nv_name: vec![0, 0x0b, 1, 2],
        };
        let mut client = VtpmClient::new(&mut t);
        client
            .transport_mut()
            .responses
            .push_back(Ok(without_session(&public)));
        // GetCapability: NV_BUFFER_MAX = 4.
        let cap = GetCapabilityResponse {
            more_data: false,
            tpm_properties: vec![TpmsTaggedProperty {
                property: pt::NV_BUFFER_MAX,
                value: 4,
            }],
        };
        client
            .transport_mut()
            .responses
            .push_back(Ok(without_session(&cap)));
        for chunk in [&b"abcd"[..], b"efgh", b"ij"] {
            let data = NvReadResponse {
                data: chunk.to_vec(),
            };
            client
                .transport_mut()
                .responses
                .push_back(Ok(with_session(&data)));
        }
        assert_eq!(client.nv_read(0x0150_0000).unwrap(), b"abcdefghij");
        let sent = &t.sent;
        assert_eq!(sent.len(), 5);
        // Index authorization: the index is both the auth handle and the nvIndex.
        assert_eq!(sent[2][10..18], [1, 0x50, 0, 0, 1, 0x50, 0, 0]);
        // size 2 at offset 8 in the last chunk.
        assert_eq!(sent[4][sent[4].len() - 4..], [0, 2, 0, 8]);

        // A chunk shorter than asked for is malformed.
        let mut t = Scripted::default();
        t.responses.push_back(Ok(without_session(&public)));
        let short = NvReadResponse {
            data: b"abc".to_vec(),
        };
        t.responses.push_back(Ok(with_session(&short)));
        let mut client = VtpmClient::new(&mut t);
        client.nv_buffer_max = Some(4);
        assert!(matches!(
            client.nv_read(0x0150_0000),
            Err(VtpmError::Malformed {
                reason: Malformed::Unexpected { .. },
                ..
            })
        ));
    }

    #[test]
    fn transport_errors_and_missing_index() {
        let mut t = Scripted::default();
        t.responses
            .push_back(Err(io::Error::new(io::ErrorKind::BrokenPipe, "gone")));
        t.responses.push_back(Ok(encode_error_response(0x18b)));
        let mut client = VtpmClient::new(t);
        let e = client.nv_read_public(HCL_REPORT_NV_INDEX).unwrap_err();
        assert!(
            matches!(
                e,
                VtpmError::Transport {
                    command: "TPM2_NV_ReadPublic",
                    ..
                }
            ),
            "{e:?}"
        );
        let e = client.nv_read_public(HCL_REPORT_NV_INDEX).unwrap_err();
        assert!(matches!(
            e,
            VtpmError::NvIndexMissing { index: 0x0140_0001 }
        ));
        assert!(
            e.to_string()
                .contains("0x01400001 (HCL report) is not defined"),
            "{e}"
        );
    }

    #[test]
    fn codec_refusals_keep_the_client_s_variants() {
        let mut client = VtpmClient::new(Scripted::default());
        assert!(matches!(
            client.pcr_read_sha256(&[24]),
            Err(VtpmError::PcrIndex { index: 24 })
        ));
        assert!(matches!(
            client.quote(VTPM_AK_HANDLE, b"nonce", &[3, 30]),
            Err(VtpmError::PcrIndex { index: 30 })
        ));
        assert!(client.transport().sent.is_empty());
    }

    #[test]
    fn der_trimming() {
        assert_eq!(trim_der(vec![0x30, 2, 5, 6, 0, 0]), [0x30, 2, 5, 6]);
        assert_eq!(trim_der(vec![0x30, 0x81, 1, 9, 0]), [0x30, 0x81, 1, 9]);
        let mut long = vec![0x30, 0x82, 0x01, 0x00];
        long.extend(vec![7u8; 256]);
        long.extend([0u8; 100]);
        assert_eq!(trim_der(long).len(), 260);
        assert_eq!(
            trim_der(vec![0x30, 0x82, 0xff, 0xff]),
            [0x30, 0x82, 0xff, 0xff]
        );
        assert_eq!(trim_der(vec![1, 2, 3]), [1, 2, 3]);
    }

    #[test]
    fn no_device_message() {
        let e = DeviceTransport::open("/nonexistent/tpmrm0").unwrap_err();
        assert!(matches!(e, VtpmError::NoDevice { .. }));
        assert!(e.to_string().contains("/nonexistent/tpmrm0"), "{e}");
    }
}
