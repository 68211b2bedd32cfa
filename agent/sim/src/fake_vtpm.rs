// SPDX-License-Identifier: Apache-2.0
//! A fake Azure vTPM: an in-memory TPM 2.0 that answers the commands `thimble_collect::vtpm`
//! sends with byte-exact TPM 2.0 responses (TPM 2.0 Library Part 3), and a paravisor in front of
//! it that regenerates the HCL report from the user data the way Azure's does.
//!
//! The TPM part holds NV indices (with `TPMA_NV` owner/index authorization, `WRITTEN`, ranges and
//! the NV buffer limit), 24 SHA-256 PCRs, and the attestation key at `0x81000003`
//! ([`crate::azure_sim::SimAk`], restricted RSASSA-SHA-256 like Azure's AK) that signs real
//! quotes. It answers what it does not implement with `TPM_RC_COMMAND_CODE`, and faults can be
//! injected per command: a response code, a truncated or mis-sized response, garbage, a transport
//! error. `vtpm_swtpm.rs` in thimble-collect checks its NV answers byte for byte against swtpm.
//! Commands are unmarshalled and responses marshalled by `thimble_evidence::tpm2`, the codec the
//! client uses; this module decides only what a TPM would answer, and with which response code.
//!
//! For Azure's guest attestation flow it also has policy sessions (`TPM2_StartAuthSession`,
//! `TPM2_PolicyPCR`, with the policy digest computed as Part 3 §23.7 says and the PCR update
//! counter recorded), decryption keys created in the null hierarchy (`TPM2_CreatePrimary`: one
//! [`SimNullKey`] per template, see there), `TPM2_Certify` by the AK, `TPM2_RSA_Decrypt` (RSAES) that
//! only a policy session whose digest equals the key's `authPolicy` may use, and
//! `TPM2_FlushContext`, with the reference implementation's limit of three loaded objects and
//! three sessions, so that a client that leaks handles runs out.
//!
//! The paravisor part follows microsoft/openvmm `vm/devices/tpm/tpm_device/src/lib.rs`: when an
//! `NV_Read` of `0x01400001` starts at offset 0, the report is rebuilt from the 64 bytes in
//! `0x01400002` (zeros if that index is missing or unwritten), at most once per rate-limit
//! period (2 s there); a read inside the period gets the previous report. The report builder is
//! a closure, [`SimHcl::snp`] by default: an HCL report around a simulated SEV-SNP report signed
//! by the simulated VCEK, whose REPORT_DATA binds runtime data that names the fake's AK.
//! Nothing here is trusted by a real verification.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::time::{Duration, Instant};

use ring::digest::{SHA256, digest};
use thimble_collect::vtpm::{
    AK_CERT_NV_INDEX, HCL_REPORT_NV_INDEX, HCL_USER_DATA_NV_INDEX, NvPublic, TpmTransport,
    USER_DATA_LEN, VTPM_AK_HANDLE,
};
use thimble_evidence::azure::{ClockInfo, TpmsAttest};
use thimble_evidence::tpm2::{
    CertifyAttest, CertifyCommand, CertifyResponse, CreatePrimaryCommand, CreatePrimaryResponse,
    FlushContextCommand, PolicyPcrCommand, PublicDetail, RsaDecryptCommand, RsaDecryptResponse,
    RsaDecryptScheme, SE_POLICY, SE_TRIAL, ST_CREATION, StartAuthSessionCommand,
    StartAuthSessionResponse, TkCreation, TpmWriter, TpmtPublic, TpmtSymDefObject, tpma_object,
    tpma_session,
};
use thimble_evidence::tpm2::{
    Command, CommandError, GetCapabilityCommand, GetCapabilityResponse, Malformed, Marshal,
    NvDefineSpaceCommand, NvReadCommand, NvReadPublicResponse, NvReadResponse, NvWriteCommand,
    PCR_COUNT, PcrReadCommand, PcrReadResponse, PcrSelection, QuoteCommand, QuoteResponse,
    RcPosition, ReadPublicResponse, ResponseBody, TpmlDigest, TpmlPcrSelection, TpmsAuthResponse,
    TpmsTaggedProperty, TpmtSigScheme, TpmtSignature, alg, cap, cc, command_code,
    encode_error_response, encode_response, handle_count, is_nv_index, pt, rc, rh, sha256_name,
    sha256_qualified_name, tpma_nv as nv_attr,
};

use crate::azure_sim::{SimAk, SimHcl, SimTpmQuote};
use crate::rsa_sim::SimNullKey;

/// Size of the HCL report index on a real Azure vTPM (every captured report is 2600 bytes).
pub const AZURE_HCL_REPORT_LEN: usize = 2600;

/// `TPMA_NV` of the HCL report index as the paravisor defines it under the platform hierarchy
/// (openvmm `tpm_lib` `nv_define_space`: AUTHREAD, AUTHWRITE, OWNERREAD, PLATFORMCREATE, NO_DA).
pub const HCL_REPORT_NV_ATTRIBUTES: u32 = nv_attr::AUTHREAD
    | nv_attr::AUTHWRITE
    | nv_attr::OWNERREAD
    | nv_attr::PLATFORMCREATE
    | nv_attr::NO_DA;

/// `firmwareVersion` in the fake's quotes: the value Azure's vTPM reports in the vectors.
const FIRMWARE_VERSION: u64 = 0x2020_0312_0012_0003;

/// The largest qualifying data the fake quotes (`TPM2B_DATA` on a TPM with SHA-512 at most).
const MAX_QUALIFYING_DATA_LEN: usize = 64;

/// `TPM_RC_AUTH_UNAVAILABLE` (Part 2 §6.6.3): the authorization the session offers is not one
/// the entity takes (a password for a key without `userWithAuth`).
const AUTH_UNAVAILABLE: u32 = rc::VER1 + 0x02F;
/// `TPM_RC_PCR_CHANGED`: a PCR changed since `TPM2_PolicyPCR` was run in the session.
const PCR_CHANGED: u32 = rc::VER1 + 0x028;
/// `TPM_RC_SYMMETRIC`: an unsupported symmetric algorithm.
const SYMMETRIC: u32 = rc::FMT1 + 0x016;

/// Loaded objects and open sessions at once, as the reference implementation's
/// `MAX_LOADED_OBJECTS` and `MAX_ACTIVE_SESSIONS` (3 each in its default configuration).
const MAX_LOADED: usize = 3;

/// Format-one codes about handle, parameter or session `n` (Part 2 §6.6.3).
const fn on_handle(base: u32, n: u8) -> u32 {
    rc::format_one(base, RcPosition::Handle(n))
}
const fn on_parameter(base: u32, n: u8) -> u32 {
    rc::format_one(base, RcPosition::Parameter(n))
}
const fn on_session(base: u32, n: u8) -> u32 {
    rc::format_one(base, RcPosition::Session(n))
}

/// What the reference implementation answers a parameter area that does not unmarshal with:
/// bytes left over are `TPM_RC_SIZE`, a field that runs past the end `TPM_RC_INSUFFICIENT`.
fn parameters_rc(e: Malformed) -> u32 {
    match e {
        Malformed::Trailing { .. } => rc::SIZE,
        _ => rc::INSUFFICIENT,
    }
}

/// The handle area of the commands the fake implements; `None` for the others, which it
/// answers with `TPM_RC_COMMAND_CODE` before looking further.
fn implemented(code: u32) -> Option<usize> {
    match code {
        cc::GET_CAPABILITY
        | cc::NV_READ_PUBLIC
        | cc::NV_READ
        | cc::NV_WRITE
        | cc::NV_DEFINE_SPACE
        | cc::PCR_READ
        | cc::QUOTE
        | cc::READ_PUBLIC
        | cc::START_AUTH_SESSION
        | cc::POLICY_PCR
        | cc::CREATE_PRIMARY
        | cc::CERTIFY
        | cc::RSA_DECRYPT
        | cc::FLUSH_CONTEXT => handle_count(code),
        _ => None,
    }
}

/// The password of a password session; a policy session where the fake takes passwords only
/// is refused.
fn password(auth: Auth<'_>) -> Result<&[u8], u32> {
    match auth {
        Auth::Password(p) => Ok(p),
        Auth::Policy(_) => Err(on_session(rc::VALUE, 1)),
    }
}

/// A key `TPM2_CreatePrimary` loaded (always [`SimNullKey`]).
#[derive(Debug, Clone)]
struct LoadedKey {
    /// Which [`SimNullKey`] it is.
    key: usize,
    public_area: Vec<u8>,
    name: Vec<u8>,
    auth_policy: Vec<u8>,
}

/// An open policy or trial session.
#[derive(Debug, Clone)]
struct PolicySession {
    trial: bool,
    digest: [u8; 32],
    /// The PCR update counter when `PolicyPCR` ran, if it did.
    pcr_counter: Option<u32>,
}

/// How a session of a command authorizes.
#[derive(Debug, Clone, Copy)]
enum Auth<'a> {
    Password(&'a [u8]),
    Policy(u32),
}

/// The AK as the fake's `TPM2_ReadPublic` and `TPM2_Quote` present it: [`SimAk`] as a primary
/// key of the owner hierarchy, persisted at `0x81000003`.
#[derive(Debug, Clone)]
struct AkObject {
    public_area: Vec<u8>,
    name: Vec<u8>,
    qualified_name: Vec<u8>,
}

impl AkObject {
    fn sim() -> AkObject {
        let ak = SimAk::get();
        let name = ak.name();
        // A primary key's parent is its hierarchy, whose qualified name is its handle.
        let qualified_name = sha256_qualified_name(&rh::OWNER.to_be_bytes(), &name);
        AkObject {
            public_area: ak.tpmt_public(),
            name,
            qualified_name,
        }
    }
}

/// Builds the HCL report for given user data (the paravisor's job).
pub type Paravisor = Box<dyn FnMut(&[u8; USER_DATA_LEN]) -> Vec<u8> + Send>;

/// When the paravisor regenerates the HCL report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportRefresh {
    /// On an `NV_Read` of `0x01400001` at offset 0, unless it did so less than this long ago
    /// (openvmm: 2 s).
    OnRead {
        /// The rate limit: a read within this time of the last rebuild gets the previous
        /// report.
        min_interval: Duration,
    },
    /// Never: the boot-time report stays (a paravisor without fresh-report support).
    Never,
}

/// A fault to inject into the next response to a command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this response code and no body.
    ResponseCode(u32),
    /// Cut the last byte off the real response.
    Truncate,
    /// Declare one byte more in the header than is sent.
    WrongSize,
    /// Send these bytes instead.
    Garbage(Vec<u8>),
    /// Fail the transport itself.
    Transport(io::ErrorKind),
}

#[derive(Debug, Clone)]
struct NvIndex {
    public: NvPublic,
    auth: Vec<u8>,
    data: Vec<u8>,
}

impl NvIndex {
    fn written(&self) -> bool {
        self.public.attributes & nv_attr::WRITTEN != 0
    }
}

/// One `NV_Read` the fake answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NvReadRecord {
    /// The NV index handle read (`nvIndex`).
    pub index: u32,
    /// Bytes asked for (`size`), before any check against the index or `TPM_PT_NV_BUFFER_MAX`.
    pub size: u16,
    /// Byte offset into the index (`offset`).
    pub offset: u16,
}

/// The fake vTPM (see the module docs).
pub struct FakeVtpm {
    nv: BTreeMap<u32, NvIndex>,
    pcrs: [[u8; 32]; 24],
    pcr_update_counter: u32,
    ak: AkObject,
    ak_present: bool,
    paravisor: Paravisor,
    refresh: ReportRefresh,
    last_refresh: Option<Instant>,
    refreshes: u32,
    nv_buffer_max: Option<u16>,
    nv_index_max: u16,
    faults: Vec<(u32, Fault)>,
    extend_after_quote: VecDeque<u32>,
    commands: Vec<u32>,
    nv_reads: Vec<NvReadRecord>,
    clock: u64,
    objects: BTreeMap<u32, LoadedKey>,
    sessions: BTreeMap<u32, PolicySession>,
    next_handle: u32,
    /// The templates `TPM2_CreatePrimary` has seen in the null hierarchy, in order: template
    /// `i` gets `SimNullKey::nth(i)`.
    null_templates: Vec<Vec<u8>>,
}

impl std::fmt::Debug for FakeVtpm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeVtpm")
            .field("nv", &self.nv.keys().collect::<Vec<_>>())
            .field("refresh", &self.refresh)
            .field("refreshes", &self.refreshes)
            .field("commands", &self.commands.len())
            .finish_non_exhaustive()
    }
}

impl Default for FakeVtpm {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeVtpm {
    /// An Azure SEV-SNP CVM's vTPM right after boot: the HCL report index defined by the
    /// platform, no user-data index, the AK persisted, PCRs as
    /// [`SimTpmQuote::default_pcrs`] (a PCR update counter of 16), the paravisor
    /// regenerating reports on read with openvmm's 2 s rate limit, a 1024-byte NV buffer.
    pub fn new() -> Self {
        let paravisor: Paravisor = Box::new(|user_data: &[u8; USER_DATA_LEN]| {
            let mut report = SimHcl::snp(user_data);
            report.resize(AZURE_HCL_REPORT_LEN, 0);
            report
        });
        let mut fake = FakeVtpm {
            nv: BTreeMap::new(),
            pcrs: SimTpmQuote::default_pcrs(),
            pcr_update_counter: 16,
            ak: AkObject::sim(),
            ak_present: true,
            paravisor,
            refresh: ReportRefresh::OnRead {
                min_interval: Duration::from_secs(2),
            },
            last_refresh: None,
            refreshes: 0,
            nv_buffer_max: Some(1024),
            nv_index_max: 4096,
            faults: Vec::new(),
            extend_after_quote: VecDeque::new(),
            commands: Vec::new(),
            nv_reads: Vec::new(),
            clock: 1_000_000,
            objects: BTreeMap::new(),
            sessions: BTreeMap::new(),
            next_handle: 0,
            null_templates: Vec::new(),
        };
        let boot = (fake.paravisor)(&[0u8; USER_DATA_LEN]);
        fake.define_platform_index(HCL_REPORT_NV_INDEX, HCL_REPORT_NV_ATTRIBUTES, boot);
        fake
    }

    fn define_platform_index(&mut self, index: u32, attributes: u32, data: Vec<u8>) {
        let public = NvPublic {
            index,
            name_alg: alg::SHA256,
            attributes: attributes | nv_attr::WRITTEN,
            auth_policy: Vec::new(),
            data_size: data.len().min(usize::from(u16::MAX)) as u16,
            name: Vec::new(),
        };
        self.nv.insert(
            index,
            NvIndex {
                public,
                auth: b"paravisor".to_vec(),
                data,
            },
        );
    }

    /// The HCL report is built by `paravisor` (the boot-time report is rebuilt with zeros).
    pub fn with_paravisor(mut self, mut paravisor: Paravisor) -> Self {
        let boot = paravisor(&[0u8; USER_DATA_LEN]);
        self.paravisor = paravisor;
        self.define_platform_index(HCL_REPORT_NV_INDEX, HCL_REPORT_NV_ATTRIBUTES, boot);
        self
    }

    /// When the paravisor rebuilds the HCL report (default: on read, at most every 2 s);
    /// [`ReportRefresh::Never`] models a paravisor that only writes the boot-time report.
    pub fn with_report_refresh(mut self, refresh: ReportRefresh) -> Self {
        self.refresh = refresh;
        self
    }

    /// `TPM_PT_NV_BUFFER_MAX` (`None`: the TPM does not report it).
    pub fn with_nv_buffer_max(mut self, max: Option<u16>) -> Self {
        self.nv_buffer_max = max;
        self
    }

    /// No HCL report index (a VM without a paravisor report).
    pub fn without_hcl_report(mut self) -> Self {
        self.nv.remove(&HCL_REPORT_NV_INDEX);
        self
    }

    /// No AK at `0x81000003`.
    pub fn without_ak(mut self) -> Self {
        self.ak_present = false;
        self
    }

    /// An AK certificate index holding `der` followed by zeros up to `index_len`, as the host
    /// fills it.
    pub fn with_ak_cert(mut self, der: &[u8], index_len: usize) -> Self {
        let mut data = der.to_vec();
        data.resize(index_len.max(der.len()), 0);
        self.define_platform_index(
            AK_CERT_NV_INDEX,
            nv_attr::AUTHREAD | nv_attr::OWNERREAD | nv_attr::PPREAD | nv_attr::NO_DA,
            data,
        );
        self
    }

    /// Defines an NV index directly (as the platform would), written with `data` if given.
    pub fn with_nv_index(mut self, public: NvPublic, data: Option<Vec<u8>>) -> Self {
        let mut public = public;
        let written = data.is_some();
        let mut data = data.unwrap_or_default();
        data.resize(usize::from(public.data_size), 0);
        if written {
            public.attributes |= nv_attr::WRITTEN;
        }
        self.nv.insert(
            public.index,
            NvIndex {
                public,
                auth: Vec::new(),
                data,
            },
        );
        self
    }

    /// The next response to command `code` carries `fault` (one-shot; several queue up).
    pub fn fail_next(&mut self, code: u32, fault: Fault) {
        self.faults.push((code, fault));
    }

    /// Right after the next quote not already claimed by an earlier call, extend `pcr`
    /// (something measuring between the quote and the PCR read). Calls queue up, one quote each.
    pub fn extend_after_next_quote(&mut self, pcr: u32) {
        self.extend_after_quote.push_back(pcr);
    }

    /// `PCR[i] = SHA-256(PCR[i] ‖ data)`.
    pub fn extend_pcr(&mut self, pcr: u32, data: &[u8; 32]) {
        if let Some(value) = self.pcrs.get_mut(pcr as usize) {
            let mut input = value.to_vec();
            input.extend_from_slice(data);
            value.copy_from_slice(digest(&SHA256, &input).as_ref());
            self.pcr_update_counter += 1;
        }
    }

    /// The SHA-256 bank as it stands, PCR 0 first: what a test compares a collected quote's
    /// PCR values with.
    pub fn pcrs(&self) -> &[[u8; 32]; 24] {
        &self.pcrs
    }

    /// Command codes received, in order.
    pub fn commands(&self) -> &[u32] {
        &self.commands
    }

    /// `NV_Read`s answered (before faults), in order.
    pub fn nv_reads(&self) -> &[NvReadRecord] {
        &self.nv_reads
    }

    /// How many times the paravisor rebuilt the report.
    pub fn refreshes(&self) -> u32 {
        self.refreshes
    }

    /// The current contents of an NV index, written or not.
    pub fn nv_data(&self, index: u32) -> Option<&[u8]> {
        self.nv.get(&index).map(|i| i.data.as_slice())
    }

    /// How many transient objects are loaded and sessions open: what a client that flushes
    /// everything leaves at `(0, 0)`.
    pub fn loaded(&self) -> (usize, usize) {
        (self.objects.len(), self.sessions.len())
    }

    /// The public area of an NV index.
    pub fn nv_public(&self, index: u32) -> Option<&NvPublic> {
        self.nv.get(&index).map(|i| &i.public)
    }

    /// Answers one command as the reference implementation checks it: header, size, tag,
    /// command code, handles, sessions, authorization, then the command's own parameters.
    fn execute(&mut self, bytes: &[u8]) -> Vec<u8> {
        let command = Command::decode(bytes, implemented);
        if let Err(CommandError::Header(_)) = command {
            return encode_error_response(rc::COMMAND_SIZE);
        }
        self.commands.push(command_code(bytes).unwrap_or(0));
        self.clock += 7;
        let command = match command {
            Ok(command) => command,
            Err(e) => {
                return encode_error_response(match e {
                    CommandError::Tag { .. } => rc::BAD_TAG,
                    CommandError::CommandCode { .. } => rc::COMMAND_CODE,
                    CommandError::Handles(_) => rc::INSUFFICIENT,
                    CommandError::AuthArea(_) | CommandError::NoSessions => rc::AUTHSIZE,
                    // The size (and whatever the codec refuses later on): the frame as a whole.
                    _ => rc::COMMAND_SIZE,
                });
            }
        };
        // Password sessions, each yielding its password, and open policy sessions (which only
        // `TPM2_RSA_Decrypt` takes here).
        let mut auths = Vec::new();
        for (i, session) in command.sessions.iter().enumerate() {
            let n = u8::try_from(i + 1).unwrap_or(u8::MAX);
            if session.session_handle == rh::PW {
                if !session.nonce.is_empty() {
                    return encode_error_response(on_session(rc::SIZE, n));
                }
                auths.push(Auth::Password(session.hmac.as_slice()));
            } else if self.sessions.contains_key(&session.session_handle) {
                auths.push(Auth::Policy(session.session_handle));
            } else {
                return encode_error_response(on_session(rc::VALUE, n));
            }
        }
        let needs_auth = match command.code {
            cc::NV_READ
            | cc::NV_WRITE
            | cc::NV_DEFINE_SPACE
            | cc::QUOTE
            | cc::CREATE_PRIMARY
            | cc::RSA_DECRYPT => 1,
            cc::CERTIFY => 2,
            _ => 0,
        };
        let (handles, params) = (&command.handles, command.params.as_slice());
        let mut response_handles = Vec::new();
        let result = if auths.len() < needs_auth {
            Err(rc::AUTH_MISSING)
        } else if auths.len() > needs_auth {
            Err(rc::AUTH_CONTEXT)
        } else {
            // `handles` holds as many entries as `implemented` says the command takes, and
            // `auths` as many as `needs_auth`.
            match command.code {
                cc::GET_CAPABILITY => self.get_capability(params),
                cc::NV_READ_PUBLIC => self.nv_read_public(handles[0], params),
                cc::PCR_READ => self.pcr_read(params),
                cc::READ_PUBLIC => self.read_public(handles[0], params),
                cc::START_AUTH_SESSION => {
                    self.start_auth_session(handles, params, &mut response_handles)
                }
                cc::POLICY_PCR => self.policy_pcr(handles[0], params),
                cc::FLUSH_CONTEXT => self.flush_context(params),
                cc::NV_READ => {
                    password(auths[0]).and_then(|p| self.nv_read(handles[0], handles[1], p, params))
                }
                cc::NV_WRITE => password(auths[0])
                    .and_then(|p| self.nv_write(handles[0], handles[1], p, params)),
                cc::NV_DEFINE_SPACE => {
                    password(auths[0]).and_then(|p| self.nv_define_space(handles[0], p, params))
                }
                cc::QUOTE => password(auths[0]).and_then(|p| self.quote(handles[0], p, params)),
                cc::CREATE_PRIMARY => password(auths[0]).and_then(|p| {
                    self.create_primary(handles[0], p, params, &mut response_handles)
                }),
                cc::CERTIFY => password(auths[0]).and_then(|object_auth| {
                    let sign_auth = match auths[1] {
                        Auth::Password(p) => p,
                        Auth::Policy(_) => return Err(on_session(rc::VALUE, 2)),
                    };
                    self.certify(handles[0], handles[1], object_auth, sign_auth, params)
                }),
                cc::RSA_DECRYPT => self.rsa_decrypt(handles[0], auths[0], params),
                _ => Err(rc::COMMAND_CODE),
            }
        };
        let sessions: Vec<TpmsAuthResponse> = command
            .sessions
            .iter()
            .map(|s| {
                if s.session_handle == rh::PW {
                    TpmsAuthResponse::password()
                } else {
                    // A policy session answers with a new nonceTPM and, without PolicyAuthValue
                    // or PolicyPassword, no HMAC.
                    TpmsAuthResponse {
                        nonce: digest(&SHA256, &self.clock.to_be_bytes()).as_ref().to_vec(),
                        session_attributes: s.session_attributes & tpma_session::CONTINUE_SESSION,
                        hmac: Vec::new(),
                    }
                }
            })
            .collect();
        if result.is_ok() {
            // A session without continueSession ends with a successful command.
            for s in &command.sessions {
                if s.session_handle != rh::PW
                    && s.session_attributes & tpma_session::CONTINUE_SESSION == 0
                {
                    self.sessions.remove(&s.session_handle);
                }
            }
        }
        let response = result.and_then(|params| {
            let body = ResponseBody {
                handles: response_handles,
                params,
            };
            encode_response(&body, &sessions).map_err(|_| rc::FAILURE)
        });
        response.unwrap_or_else(encode_error_response)
    }

    fn new_handle(&mut self, handle_type: u8) -> u32 {
        self.next_handle = self.next_handle.wrapping_add(1);
        (u32::from(handle_type) << 24) | (self.next_handle & 0x00ff_ffff)
    }

    /// Part 3 §11.1, for unsalted, unbound policy and trial sessions with SHA-256 and no
    /// parameter encryption.
    fn start_auth_session(
        &mut self,
        handles: &[u32],
        params: &[u8],
        response_handles: &mut Vec<u32>,
    ) -> Result<Vec<u8>, u32> {
        if handles[0] != rh::NULL {
            return Err(on_handle(rc::VALUE, 1));
        }
        if handles[1] != rh::NULL {
            return Err(on_handle(rc::VALUE, 2));
        }
        let asked = StartAuthSessionCommand::parse(params).map_err(parameters_rc)?;
        // nonceCaller: at least 16 bytes, at most the session hash's digest size.
        if !(16..=32).contains(&asked.nonce_caller.len()) {
            return Err(on_parameter(rc::SIZE, 1));
        }
        if !asked.encrypted_salt.is_empty() {
            return Err(on_parameter(rc::VALUE, 2));
        }
        let trial = match asked.session_type {
            SE_POLICY => false,
            SE_TRIAL => true,
            _ => return Err(on_parameter(rc::VALUE, 3)),
        };
        if asked.symmetric != TpmtSymDefObject::NULL {
            return Err(on_parameter(SYMMETRIC, 4));
        }
        if asked.auth_hash != alg::SHA256 {
            return Err(on_parameter(rc::HASH, 5));
        }
        if self.sessions.len() >= MAX_LOADED {
            return Err(rc::SESSION_MEMORY);
        }
        let handle = self.new_handle(thimble_evidence::tpm2::ht::POLICY_SESSION);
        self.sessions.insert(
            handle,
            PolicySession {
                trial,
                digest: [0; 32],
                pcr_counter: None,
            },
        );
        response_handles.push(handle);
        StartAuthSessionResponse {
            nonce_tpm: digest(&SHA256, &handle.to_be_bytes()).as_ref().to_vec(),
        }
        .to_bytes()
        .map_err(|_| rc::FAILURE)
    }

    /// Part 3 §23.7: `policyDigest' = H(policyDigest ‖ TPM_CC_PolicyPCR ‖ pcrs ‖ digestTPM)`,
    /// where `digestTPM` is the hash of the PCRs' current values, and a given `pcrDigest` must
    /// equal it (a trial session takes `pcrDigest` as given).
    fn policy_pcr(&mut self, handle: u32, params: &[u8]) -> Result<Vec<u8>, u32> {
        let asked = PolicyPcrCommand::parse(params).map_err(parameters_rc)?;
        let session = self
            .sessions
            .get(&handle)
            .cloned()
            .ok_or(on_handle(rc::HANDLE, 1))?;
        let mut values = Vec::new();
        for selection in &asked.pcrs.pcr_selections {
            if selection.hash != alg::SHA256 {
                return Err(on_parameter(rc::HASH, 2));
            }
            for i in selection.indices() {
                let value = self
                    .pcrs
                    .get(i as usize)
                    .ok_or(on_parameter(rc::VALUE, 2))?;
                values.extend_from_slice(value);
            }
        }
        let current = digest(&SHA256, &values);
        let pcr_digest = if session.trial && !asked.pcr_digest.is_empty() {
            asked.pcr_digest.clone()
        } else {
            if !asked.pcr_digest.is_empty() && asked.pcr_digest != current.as_ref() {
                return Err(on_parameter(rc::VALUE, 1));
            }
            current.as_ref().to_vec()
        };
        let mut input = session.digest.to_vec();
        input.extend_from_slice(&cc::POLICY_PCR.to_be_bytes());
        input.extend_from_slice(&asked.pcrs.to_bytes().map_err(|_| rc::FAILURE)?);
        input.extend_from_slice(&pcr_digest);
        let mut next = [0u8; 32];
        next.copy_from_slice(digest(&SHA256, &input).as_ref());
        self.sessions.insert(
            handle,
            PolicySession {
                trial: session.trial,
                digest: next,
                pcr_counter: Some(self.pcr_update_counter),
            },
        );
        Ok(Vec::new())
    }

    /// Part 3 §28.4.
    fn flush_context(&mut self, params: &[u8]) -> Result<Vec<u8>, u32> {
        let FlushContextCommand { flush_handle } =
            FlushContextCommand::parse(params).map_err(parameters_rc)?;
        let removed = self.objects.remove(&flush_handle).is_some()
            || self.sessions.remove(&flush_handle).is_some();
        if !removed {
            return Err(on_parameter(rc::HANDLE, 1));
        }
        Ok(Vec::new())
    }

    /// Part 3 §24.1, for RSA-2048 decryption keys in the null hierarchy: one [`SimNullKey`] per
    /// template (see there).
    fn create_primary(
        &mut self,
        hierarchy: u32,
        password: &[u8],
        params: &[u8],
        response_handles: &mut Vec<u32>,
    ) -> Result<Vec<u8>, u32> {
        if hierarchy != rh::NULL {
            // The fake keeps no seeds for the other hierarchies.
            return Err(on_handle(rc::HIERARCHY, 1));
        }
        if !password.is_empty() {
            return Err(on_session(rc::BAD_AUTH, 1));
        }
        let asked = CreatePrimaryCommand::parse(params).map_err(|e| match e {
            Malformed::Inner { .. } => on_parameter(rc::SIZE, 2),
            other => parameters_rc(other),
        })?;
        let template = asked.in_public;
        let PublicDetail::Rsa { parameters, .. } = &template.detail else {
            return Err(on_parameter(rc::TYPE, 2));
        };
        let a = template.object_attributes;
        if a & tpma_object::DECRYPT == 0
            || a & (tpma_object::SIGN_ENCRYPT | tpma_object::RESTRICTED) != 0
        {
            return Err(on_parameter(rc::ATTRIBUTES, 2));
        }
        if parameters.key_bits != 2048 || parameters.exponent != 0 {
            return Err(on_parameter(rc::KEY_SIZE, 2));
        }
        if template.name_alg != alg::SHA256 {
            return Err(on_parameter(rc::HASH, 2));
        }
        if self.objects.len() >= MAX_LOADED {
            return Err(rc::OBJECT_MEMORY);
        }
        // One key per template, as a derivation from the null seed gives.
        let template_bytes = template.to_bytes().map_err(|_| rc::FAILURE)?;
        let key_index = match self
            .null_templates
            .iter()
            .position(|t| *t == template_bytes)
        {
            Some(i) => i,
            None => {
                self.null_templates.push(template_bytes);
                self.null_templates.len() - 1
            }
        };
        let public = TpmtPublic {
            detail: PublicDetail::Rsa {
                parameters: *parameters,
                unique: SimNullKey::nth(key_index).modulus(),
            },
            ..template.clone()
        };
        let public_area = public.to_bytes().map_err(|_| rc::FAILURE)?;
        let name = sha256_name(&public_area);
        // TPMS_CREATION_DATA (Part 2 §15.1) of a primary key: no PCRs, locality 0, the
        // hierarchy's handle as parent name and qualified name.
        let mut creation = TpmWriter::new();
        creation
            .marshal(&asked.creation_pcr)
            .and_then(|w| w.tpm2b("pcrDigest", digest(&SHA256, &[]).as_ref()))
            .and_then(|w| {
                w.u8(0).u16(alg::NULL);
                w.tpm2b("parentName", &hierarchy.to_be_bytes())
            })
            .and_then(|w| w.tpm2b("parentQualifiedName", &hierarchy.to_be_bytes()))
            .and_then(|w| w.tpm2b("outsideInfo", &asked.outside_info))
            .map_err(|_| rc::FAILURE)?;
        let creation_data = creation.into_bytes();
        let handle = self.new_handle(thimble_evidence::tpm2::ht::TRANSIENT);
        self.objects.insert(
            handle,
            LoadedKey {
                key: key_index,
                public_area: public_area.clone(),
                name: name.clone(),
                auth_policy: template.auth_policy.clone(),
            },
        );
        response_handles.push(handle);
        CreatePrimaryResponse {
            out_public: public_area,
            creation_hash: digest(&SHA256, &creation_data).as_ref().to_vec(),
            creation_data,
            // A key of the null hierarchy gets a null ticket.
            creation_ticket: TkCreation {
                tag: ST_CREATION,
                hierarchy: rh::NULL,
                digest: Vec::new(),
            },
            name,
        }
        .to_bytes()
        .map_err(|_| rc::FAILURE)
    }

    /// Part 3 §18.2: the AK signs that a loaded key has its name.
    fn certify(
        &mut self,
        object: u32,
        signer: u32,
        object_auth: &[u8],
        sign_auth: &[u8],
        params: &[u8],
    ) -> Result<Vec<u8>, u32> {
        let key = self
            .objects
            .get(&object)
            .cloned()
            .ok_or(on_handle(rc::HANDLE, 1))?;
        if signer != VTPM_AK_HANDLE || !self.ak_present {
            return Err(on_handle(rc::HANDLE, 2));
        }
        // Both authValues are empty.
        if !object_auth.is_empty() {
            return Err(on_session(rc::BAD_AUTH, 1));
        }
        if !sign_auth.is_empty() {
            return Err(on_session(rc::AUTH_FAIL, 2));
        }
        let asked = CertifyCommand::parse(params).map_err(parameters_rc)?;
        if asked.in_scheme != TpmtSigScheme::NULL && asked.in_scheme != TpmtSigScheme::RSASSA_SHA256
        {
            return Err(on_parameter(rc::SCHEME, 2));
        }
        if asked.qualifying_data.len() > MAX_QUALIFYING_DATA_LEN {
            return Err(on_parameter(rc::SIZE, 1));
        }
        let certify_info = CertifyAttest {
            qualified_signer: self.ak.qualified_name.clone(),
            extra_data: asked.qualifying_data,
            clock_info: ClockInfo {
                clock: self.clock,
                reset_count: 1,
                restart_count: 0,
                safe: true,
            },
            firmware_version: FIRMWARE_VERSION,
            qualified_name: sha256_qualified_name(&rh::NULL.to_be_bytes(), &key.name),
            name: key.name,
        }
        .to_bytes()
        .map_err(|_| rc::FAILURE)?;
        let signature = TpmtSignature::Rsassa {
            hash: alg::SHA256,
            sig: SimAk::get().sign(&certify_info),
        };
        CertifyResponse {
            certify_info,
            signature,
        }
        .to_bytes()
        .map_err(|_| rc::FAILURE)
    }

    /// Part 3 §14.3, RSAES only. The key has no `userWithAuth`, so its USER role takes only a
    /// policy session, whose digest must be the key's `authPolicy` (Part 1 §19.7.1) and whose
    /// PCRs must not have changed since `PolicyPCR`.
    fn rsa_decrypt(&mut self, handle: u32, auth: Auth<'_>, params: &[u8]) -> Result<Vec<u8>, u32> {
        let key = self
            .objects
            .get(&handle)
            .cloned()
            .ok_or(on_handle(rc::HANDLE, 1))?;
        match auth {
            Auth::Password(_) => return Err(AUTH_UNAVAILABLE),
            Auth::Policy(session) => {
                let s = self
                    .sessions
                    .get(&session)
                    .ok_or(on_session(rc::VALUE, 1))?;
                if s.trial {
                    return Err(on_session(rc::ATTRIBUTES, 1));
                }
                if s.digest[..] != key.auth_policy[..] {
                    return Err(on_session(rc::POLICY_FAIL, 1));
                }
                if s.pcr_counter.is_some_and(|c| c != self.pcr_update_counter) {
                    return Err(PCR_CHANGED);
                }
            }
        }
        let asked = RsaDecryptCommand::parse(params).map_err(|e| match e {
            Malformed::Unexpected { .. } => on_parameter(rc::SCHEME, 2),
            other => parameters_rc(other),
        })?;
        if asked.in_scheme != RsaDecryptScheme::Rsaes {
            // The key has no scheme of its own and the fake implements RSAES only.
            return Err(on_parameter(rc::SCHEME, 2));
        }
        let message = SimNullKey::nth(key.key)
            .decrypt(&asked.cipher_text)
            .map_err(|_| on_parameter(rc::VALUE, 1))?;
        RsaDecryptResponse { message }
            .to_bytes()
            .map_err(|_| rc::FAILURE)
    }

    fn get_capability(&mut self, params: &[u8]) -> Result<Vec<u8>, u32> {
        let asked = GetCapabilityCommand::parse(params).map_err(parameters_rc)?;
        if asked.capability != cap::TPM_PROPERTIES {
            return Err(on_parameter(rc::VALUE, 1));
        }
        // Sorted by tag: TPM_PT_NV_INDEX_MAX, TPM_PT_NV_BUFFER_MAX. The TPM lists what it has
        // from `property` on (Part 3 §30.2).
        let mut table = vec![TpmsTaggedProperty {
            property: pt::NV_INDEX_MAX,
            value: u32::from(self.nv_index_max),
        }];
        if let Some(max) = self.nv_buffer_max {
            table.push(TpmsTaggedProperty {
                property: pt::NV_BUFFER_MAX,
                value: u32::from(max),
            });
        }
        let listed: Vec<_> = table
            .into_iter()
            .filter(|p| p.property >= asked.property)
            .collect();
        let take = listed.len().min(asked.property_count as usize);
        GetCapabilityResponse {
            more_data: take < listed.len(),
            tpm_properties: listed[..take].to_vec(),
        }
        .to_bytes()
        .map_err(|_| rc::FAILURE)
    }

    fn nv_read_public(&mut self, index: u32, params: &[u8]) -> Result<Vec<u8>, u32> {
        if !params.is_empty() {
            return Err(rc::SIZE);
        }
        let nv = self.nv.get(&index).ok_or(on_handle(rc::HANDLE, 1))?;
        let nv_public = nv.public.tpms();
        let nv_name = sha256_name(&nv_public.to_bytes().map_err(|_| rc::FAILURE)?);
        NvReadPublicResponse { nv_public, nv_name }
            .to_bytes()
            .map_err(|_| rc::FAILURE)
    }

    /// Part 3 §31.13 / §31.7: who may read or write `index` with `auth_handle` and `password`.
    fn authorize(
        &self,
        auth_handle: u32,
        index: u32,
        password: &[u8],
        owner_bit: u32,
        auth_bit: u32,
    ) -> Result<(), u32> {
        let nv = self.nv.get(&index).ok_or(on_handle(rc::HANDLE, 2))?;
        match auth_handle {
            rh::OWNER => {
                if nv.public.attributes & owner_bit == 0 {
                    return Err(rc::NV_AUTHORIZATION);
                }
                // The owner hierarchy has an empty password on these VMs, and hierarchies are
                // exempt from dictionary-attack protection.
                if !password.is_empty() {
                    return Err(on_session(rc::BAD_AUTH, 1));
                }
            }
            h if h == index => {
                if nv.public.attributes & auth_bit == 0 {
                    return Err(rc::NV_AUTHORIZATION);
                }
                if password != nv.auth.as_slice() {
                    // A wrong password on an entity exempt from dictionary-attack protection is
                    // TPM_RC_BAD_AUTH, otherwise TPM_RC_AUTH_FAIL (the reference
                    // implementation's `IsDAExempted`; swtpm answers so).
                    let base = if nv.public.attributes & nv_attr::NO_DA != 0 {
                        rc::BAD_AUTH
                    } else {
                        rc::AUTH_FAIL
                    };
                    return Err(on_session(base, 1));
                }
            }
            // The platform hierarchy belongs to the paravisor; the guest cannot use it.
            rh::PLATFORM => return Err(on_handle(rc::HIERARCHY, 1)),
            _ => return Err(on_handle(rc::HANDLE, 1)),
        }
        Ok(())
    }

    fn refresh_report(&mut self) {
        let ReportRefresh::OnRead { min_interval } = self.refresh else {
            return;
        };
        if self
            .last_refresh
            .is_some_and(|at| at.elapsed() <= min_interval)
        {
            return;
        }
        let mut user_data = [0u8; USER_DATA_LEN];
        if let Some(input) = self.nv.get(&HCL_USER_DATA_NV_INDEX).filter(|i| i.written()) {
            let n = input.data.len().min(USER_DATA_LEN);
            user_data[..n].copy_from_slice(&input.data[..n]);
        }
        let report = (self.paravisor)(&user_data);
        if let Some(nv) = self.nv.get_mut(&HCL_REPORT_NV_INDEX) {
            let mut data = report;
            data.resize(nv.data.len(), 0);
            nv.data = data;
        }
        self.last_refresh = Some(Instant::now());
        self.refreshes += 1;
    }

    fn nv_read(
        &mut self,
        auth_handle: u32,
        index: u32,
        password: &[u8],
        params: &[u8],
    ) -> Result<Vec<u8>, u32> {
        let NvReadCommand { size, offset } = NvReadCommand::parse(params).map_err(parameters_rc)?;
        self.authorize(
            auth_handle,
            index,
            password,
            nv_attr::OWNERREAD,
            nv_attr::AUTHREAD,
        )?;
        self.nv_reads.push(NvReadRecord {
            index,
            size,
            offset,
        });
        if index == HCL_REPORT_NV_INDEX && offset == 0 {
            self.refresh_report();
        }
        let nv = self.nv.get(&index).ok_or(on_handle(rc::HANDLE, 2))?;
        if !nv.written() {
            return Err(rc::NV_UNINITIALIZED);
        }
        if self.nv_buffer_max.is_some_and(|max| size > max) {
            return Err(on_parameter(rc::VALUE, 1));
        }
        let data = nv
            .data
            .get(usize::from(offset)..usize::from(offset) + usize::from(size))
            .ok_or(rc::NV_RANGE)?;
        NvReadResponse {
            data: data.to_vec(),
        }
        .to_bytes()
        .map_err(|_| rc::FAILURE)
    }

    fn nv_write(
        &mut self,
        auth_handle: u32,
        index: u32,
        password: &[u8],
        params: &[u8],
    ) -> Result<Vec<u8>, u32> {
        let NvWriteCommand { data, offset } =
            NvWriteCommand::parse(params).map_err(parameters_rc)?;
        self.authorize(
            auth_handle,
            index,
            password,
            nv_attr::OWNERWRITE,
            nv_attr::AUTHWRITE,
        )?;
        if self
            .nv_buffer_max
            .is_some_and(|max| data.len() > usize::from(max))
        {
            return Err(on_parameter(rc::VALUE, 1));
        }
        let nv = self.nv.get_mut(&index).ok_or(on_handle(rc::HANDLE, 2))?;
        let target = nv
            .data
            .get_mut(usize::from(offset)..usize::from(offset) + data.len())
            .ok_or(rc::NV_RANGE)?;
        target.copy_from_slice(&data);
        nv.public.attributes |= nv_attr::WRITTEN;
        Ok(Vec::new())
    }

    fn nv_define_space(
        &mut self,
        auth_handle: u32,
        password: &[u8],
        params: &[u8],
    ) -> Result<Vec<u8>, u32> {
        if auth_handle != rh::OWNER {
            return Err(on_handle(rc::HIERARCHY, 1));
        }
        if !password.is_empty() {
            return Err(on_session(rc::BAD_AUTH, 1));
        }
        let NvDefineSpaceCommand { auth, public_info } = NvDefineSpaceCommand::parse(params)
            .map_err(|e| match e {
                // publicInfo's TPMS_NV_PUBLIC does not fill its TPM2B.
                Malformed::Inner { .. } => on_parameter(rc::SIZE, 2),
                other => parameters_rc(other),
            })?;
        let public = NvPublic::from(public_info);
        // Part 3 §31.3: the caller may not set WRITTEN or PLATFORMCREATE under the owner, must
        // allow some read and some write, and stay within the index size limit.
        let a = public.attributes;
        let reads = nv_attr::PPREAD | nv_attr::OWNERREAD | nv_attr::AUTHREAD | nv_attr::POLICYREAD;
        let writes =
            nv_attr::PPWRITE | nv_attr::OWNERWRITE | nv_attr::AUTHWRITE | nv_attr::POLICYWRITE;
        if a & (nv_attr::WRITTEN | nv_attr::PLATFORMCREATE) != 0
            || a & reads == 0
            || a & writes == 0
        {
            return Err(on_parameter(rc::ATTRIBUTES, 2));
        }
        if !is_nv_index(public.index) {
            return Err(on_parameter(rc::VALUE, 2));
        }
        if public.data_size > self.nv_index_max {
            return Err(on_parameter(rc::SIZE, 2));
        }
        if self.nv.contains_key(&public.index) {
            return Err(rc::NV_DEFINED);
        }
        let data = vec![0u8; usize::from(public.data_size)];
        self.nv.insert(public.index, NvIndex { public, auth, data });
        Ok(Vec::new())
    }

    fn pcr_read(&mut self, params: &[u8]) -> Result<Vec<u8>, u32> {
        let asked = PcrReadCommand::parse(params).map_err(parameters_rc)?;
        // Only the SHA-256 bank is allocated; at most eight digests go back (TPML_DIGEST), the
        // lowest first, with the selection out saying which.
        let mut out = PcrSelection::sha256(&[]).map_err(|_| rc::FAILURE)?;
        let mut digests = Vec::new();
        let mut sha256_selected = false;
        for selection in &asked.pcr_selection_in.pcr_selections {
            if selection.hash != alg::SHA256 {
                continue;
            }
            sha256_selected = true;
            for i in selection.indices() {
                if i < PCR_COUNT && digests.len() < 8 {
                    out.select[(i / 8) as usize] |= 1 << (i % 8);
                    digests.push(self.pcrs[i as usize].to_vec());
                }
            }
        }
        PcrReadResponse {
            pcr_update_counter: self.pcr_update_counter,
            pcr_selection_out: TpmlPcrSelection {
                pcr_selections: if sha256_selected { vec![out] } else { vec![] },
            },
            pcr_values: TpmlDigest { digests },
        }
        .to_bytes()
        .map_err(|_| rc::FAILURE)
    }

    fn quote(&mut self, handle: u32, password: &[u8], params: &[u8]) -> Result<Vec<u8>, u32> {
        if handle != VTPM_AK_HANDLE || !self.ak_present {
            return Err(on_handle(rc::HANDLE, 1));
        }
        if !password.is_empty() {
            return Err(on_session(rc::AUTH_FAIL, 1));
        }
        let asked = QuoteCommand::parse(params).map_err(parameters_rc)?;
        // The AK is a restricted RSASSA-SHA-256 key: its own scheme, or that scheme named.
        if asked.in_scheme != TpmtSigScheme::NULL && asked.in_scheme != TpmtSigScheme::RSASSA_SHA256
        {
            return Err(on_parameter(rc::SCHEME, 2));
        }
        if asked.qualifying_data.len() > MAX_QUALIFYING_DATA_LEN {
            return Err(on_parameter(rc::SIZE, 1));
        }
        let mut hashed = Vec::new();
        for selection in &asked.pcr_select.pcr_selections {
            if selection.hash != alg::SHA256 {
                return Err(on_parameter(rc::HASH, 3));
            }
            for i in selection.indices() {
                let value = self
                    .pcrs
                    .get(i as usize)
                    .ok_or(on_parameter(rc::VALUE, 3))?;
                hashed.extend_from_slice(value);
            }
        }
        let clock_info = ClockInfo {
            clock: self.clock,
            reset_count: 1,
            restart_count: 0,
            safe: true,
        };
        let quoted = TpmsAttest::marshal_quote(
            &self.ak.qualified_name,
            &asked.qualifying_data,
            &clock_info,
            FIRMWARE_VERSION,
            &asked.pcr_select.pcr_selections,
            digest(&SHA256, &hashed).as_ref(),
        )
        .map_err(|_| rc::FAILURE)?;
        let signature = TpmtSignature::Rsassa {
            hash: alg::SHA256,
            sig: SimAk::get().sign(&quoted),
        };
        if let Some(pcr) = self.extend_after_quote.pop_front() {
            self.extend_pcr(pcr, &[0x5a; 32]);
        }
        QuoteResponse { quoted, signature }
            .to_bytes()
            .map_err(|_| rc::FAILURE)
    }

    fn read_public(&mut self, handle: u32, params: &[u8]) -> Result<Vec<u8>, u32> {
        if !params.is_empty() {
            return Err(rc::SIZE);
        }
        if let Some(key) = self.objects.get(&handle) {
            return ReadPublicResponse {
                out_public: key.public_area.clone(),
                name: key.name.clone(),
                qualified_name: sha256_qualified_name(&rh::NULL.to_be_bytes(), &key.name),
            }
            .to_bytes()
            .map_err(|_| rc::FAILURE);
        }
        if handle != VTPM_AK_HANDLE || !self.ak_present {
            return Err(on_handle(rc::HANDLE, 1));
        }
        ReadPublicResponse {
            out_public: self.ak.public_area.clone(),
            name: self.ak.name.clone(),
            qualified_name: self.ak.qualified_name.clone(),
        }
        .to_bytes()
        .map_err(|_| rc::FAILURE)
    }
}

impl TpmTransport for FakeVtpm {
    fn transact(&mut self, command: &[u8]) -> io::Result<Vec<u8>> {
        let code = command_code(command);
        let code_or_zero = code.unwrap_or(0);
        let fault = code.and_then(|code| {
            let at = self.faults.iter().position(|(c, _)| *c == code)?;
            Some(self.faults.remove(at).1)
        });
        if let Some(Fault::ResponseCode(code)) = fault {
            self.commands.push(code_or_zero);
            return Ok(encode_error_response(code));
        }
        if let Some(Fault::Transport(kind)) = fault {
            self.commands.push(code_or_zero);
            return Err(io::Error::new(kind, "injected transport failure"));
        }
        if let Some(Fault::Garbage(bytes)) = fault {
            self.commands.push(code_or_zero);
            return Ok(bytes);
        }
        let mut response = self.execute(command);
        match fault {
            Some(Fault::Truncate) => {
                response.pop();
            }
            Some(Fault::WrongSize) => {
                let declared = (response.len() + 1) as u32;
                response[2..6].copy_from_slice(&declared.to_be_bytes());
            }
            _ => {}
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use thimble_evidence::tpm2::{Header, ResponseCode, TpmWriter, encode_command, st};

    use super::*;

    #[test]
    fn unknown_commands_and_bad_frames() {
        let mut fake = FakeVtpm::new();
        let mut w = TpmWriter::new();
        w.u16(st::NO_SESSIONS).u32(10).u32(0x0000_0144);
        let r = fake.transact(w.as_bytes()).unwrap();
        assert_eq!(r, encode_error_response(rc::COMMAND_CODE));
        let mut w = TpmWriter::new();
        w.u16(st::NO_SESSIONS).u32(11).u32(cc::PCR_READ);
        let r = fake.transact(w.as_bytes()).unwrap();
        assert_eq!(r, encode_error_response(rc::COMMAND_SIZE));
        // A command the codec knows but the fake does not implement is refused before its
        // handles and sessions are looked at, as a TPM without it would.
        let extend = encode_command(cc::PCR_EXTEND, &[0], &[&[]], &[]).unwrap();
        let r = fake.transact(&extend).unwrap();
        assert_eq!(r, encode_error_response(rc::COMMAND_CODE));
        assert_eq!(fake.commands(), [0x0000_0144, cc::PCR_READ, cc::PCR_EXTEND]);
    }

    #[test]
    fn sessions_and_parameters_are_answered_with_the_tpm_s_codes() {
        let mut fake = FakeVtpm::new();
        let mut ask = |command: Vec<u8>| ResponseCode(decode_rc(&fake.transact(&command).unwrap()));
        let read_public = encode_command(cc::READ_PUBLIC, &[VTPM_AK_HANDLE], &[], &[]).unwrap();
        assert_eq!(ask(read_public.clone()).raw(), rc::SUCCESS);
        // A session on a command that takes none; none on one that needs one.
        let with_session = encode_command(cc::READ_PUBLIC, &[VTPM_AK_HANDLE], &[&[]], &[]).unwrap();
        assert_eq!(ask(with_session).raw(), rc::AUTH_CONTEXT);
        let read = NvReadCommand { size: 4, offset: 0 }.to_bytes().unwrap();
        let bare =
            encode_command(cc::NV_READ, &[rh::OWNER, HCL_REPORT_NV_INDEX], &[], &read).unwrap();
        assert_eq!(ask(bare).raw(), rc::AUTH_MISSING);
        // Parameters cut short, and one byte too many.
        let short = encode_command(
            cc::NV_READ,
            &[rh::OWNER, HCL_REPORT_NV_INDEX],
            &[&[]],
            &read[..3],
        )
        .unwrap();
        assert_eq!(ask(short).raw(), rc::INSUFFICIENT);
        let mut long = read.clone();
        long.push(0);
        let long = encode_command(
            cc::NV_READ,
            &[rh::OWNER, HCL_REPORT_NV_INDEX],
            &[&[]],
            &long,
        )
        .unwrap();
        assert_eq!(ask(long).raw(), rc::SIZE);
        // A TPMS_NV_PUBLIC that does not fill its TPM2B_NV_PUBLIC.
        let mut p = TpmWriter::new();
        p.tpm2b("auth", b"")
            .unwrap()
            .tpm2b("publicInfo", &[0; 5])
            .unwrap();
        let define =
            encode_command(cc::NV_DEFINE_SPACE, &[rh::OWNER], &[&[]], p.as_bytes()).unwrap();
        let code = ask(define);
        assert_eq!(
            (code.base(), code.position()),
            (rc::SIZE, Some(RcPosition::Parameter(2)))
        );
    }

    #[test]
    fn the_simulated_ak_has_the_azure_ak_template() {
        // Restricted signing key, RSASSA/SHA-256, RSA-2048 with the default exponent: what
        // `TPM2_ReadPublic` of Azure's AK shows, and what the quote check in collect expects.
        use thimble_evidence::tpm2::{PublicDetail, TpmtPublic, TpmtSigScheme, tpma_object};

        let ak = SimAk::get();
        let area = TpmtPublic::parse(&ak.tpmt_public()).unwrap();
        for bit in [
            tpma_object::FIXED_TPM,
            tpma_object::FIXED_PARENT,
            tpma_object::SENSITIVE_DATA_ORIGIN,
            tpma_object::USER_WITH_AUTH,
            tpma_object::NO_DA,
            tpma_object::RESTRICTED,
            tpma_object::SIGN_ENCRYPT,
        ] {
            assert_ne!(area.object_attributes & bit, 0, "{bit:#x}");
        }
        assert_eq!(area.object_attributes & tpma_object::DECRYPT, 0);
        let PublicDetail::Rsa { parameters, unique } = &area.detail else {
            panic!("{area:?}");
        };
        assert_eq!(parameters.scheme, TpmtSigScheme::RSASSA_SHA256);
        assert_eq!(parameters.key_bits, 2048);
        assert_eq!(parameters.exponent, 0);
        assert_eq!(unique, &ak.modulus());
        assert_eq!(sha256_name(&ak.tpmt_public()), ak.name());
    }

    fn decode_rc(response: &[u8]) -> u32 {
        Header::parse(&response[..10]).unwrap().code
    }
}
