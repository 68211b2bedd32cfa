// SPDX-License-Identifier: Apache-2.0
//! Azure vTPM client: the HCL report in NV index `0x01400001`, fresh reports through the user-data
//! index `0x01400002`, and quotes with the attestation key at `0x81000003`, over a TPM 2.0
//! character device.
//!
//! The few TPM 2.0 commands thimble needs (TPM 2.0 Library Part 3: `TPM2_GetCapability`,
//! `TPM2_NV_ReadPublic`, `TPM2_NV_Read`, `TPM2_NV_DefineSpace`, `TPM2_NV_Write`, `TPM2_PCR_Read`,
//! `TPM2_Quote`, `TPM2_ReadPublic`) are marshalled here by hand, with empty-password sessions
//! (`TPM_RS_PW`, Part 1 "Password Authorizations"), and every response is bounds-checked and decoded into
//! [`VtpmError`] with the TPM response code named (Part 2 §6.6). Bytes go through the narrow
//! [`TpmTransport`] trait (one command in, one response out, the contract of `/dev/tpmrm0`), so
//! that `thimble_sim::fake_vtpm::FakeVtpm` and swtpm's TCP server can stand in for the device in
//! tests. This module does not verify anything; it checks only what tells a response apart from
//! garbage and what ties the quote to the request (its nonce, its signer, its PCR digest).
//!
//! Freshness on Azure: the paravisor regenerates the HCL report from the 64 bytes in `0x01400002`
//! when the guest starts an `NV_Read` of `0x01400001` at offset 0, at most once every 2 s, and a
//! read inside that window returns the previous report (microsoft/openvmm
//! `vm/devices/tpm/tpm_device/src/lib.rs`, `refresh_device_attestation_data_on_nv_read`,
//! `REPORT_TIMER_PERIOD`). So [`VtpmClient::fresh_hcl_report`] writes the user data, then reads the
//! report until its runtime data's `user-data` echoes what was written, within a deadline, and
//! says which case happened; it never returns a stale report unless the caller opted in.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use ring::digest::{SHA256, digest};
pub use thimble_evidence::azure::{HCL_REPORT_NV_INDEX, HCL_USER_DATA_NV_INDEX, VTPM_AK_HANDLE};
use thimble_evidence::azure::{
    HclError, HclReport, RsaPublicKey, RuntimeDataError, TpmError as AttestError, TpmQuote,
    TpmsAttest,
};

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

/// Length of a command or response header: tag, size, command or response code.
pub const HEADER_LEN: usize = 10;

/// Rounds of quote + PCR read before giving up on PCRs that keep changing between the two.
const QUOTE_ATTEMPTS: u32 = 3;

/// Command codes (Part 2 §6.5.2, `TPM_CC`).
pub mod cc {
    pub const EVICT_CONTROL: u32 = 0x0000_0120;
    pub const NV_UNDEFINE_SPACE: u32 = 0x0000_0122;
    pub const NV_DEFINE_SPACE: u32 = 0x0000_012A;
    pub const CREATE_PRIMARY: u32 = 0x0000_0131;
    pub const NV_WRITE: u32 = 0x0000_0137;
    pub const NV_READ: u32 = 0x0000_014E;
    pub const QUOTE: u32 = 0x0000_0158;
    pub const NV_READ_PUBLIC: u32 = 0x0000_0169;
    pub const READ_PUBLIC: u32 = 0x0000_0173;
    pub const GET_CAPABILITY: u32 = 0x0000_017A;
    pub const PCR_READ: u32 = 0x0000_017E;
    pub const PCR_EXTEND: u32 = 0x0000_0182;
}

/// Structure tags (Part 2 §6.9, `TPM_ST`).
pub mod st {
    pub const NO_SESSIONS: u16 = 0x8001;
    pub const SESSIONS: u16 = 0x8002;
}

/// Permanent handles (Part 2 §7.4, `TPM_RH` / `TPM_RS`).
pub mod rh {
    pub const OWNER: u32 = 0x4000_0001;
    pub const NULL: u32 = 0x4000_0007;
    /// `TPM_RS_PW`: the password session.
    pub const PW: u32 = 0x4000_0009;
    pub const PLATFORM: u32 = 0x4000_000C;
}

/// Algorithm identifiers (TCG Algorithm Registry, `TPM_ALG`).
pub mod alg {
    pub const RSA: u16 = 0x0001;
    pub const SHA256: u16 = 0x000B;
    pub const NULL: u16 = 0x0010;
    pub const RSASSA: u16 = 0x0014;
    pub const RSAPSS: u16 = 0x0016;
    pub const ECDSA: u16 = 0x0018;
}

/// `TPMA_NV` bits (Part 2 §13.4).
pub mod nv_attr {
    pub const PPWRITE: u32 = 1 << 0;
    pub const OWNERWRITE: u32 = 1 << 1;
    pub const AUTHWRITE: u32 = 1 << 2;
    pub const POLICYWRITE: u32 = 1 << 3;
    pub const PPREAD: u32 = 1 << 16;
    pub const OWNERREAD: u32 = 1 << 17;
    pub const AUTHREAD: u32 = 1 << 18;
    pub const POLICYREAD: u32 = 1 << 19;
    pub const NO_DA: u32 = 1 << 25;
    pub const WRITTEN: u32 = 1 << 29;
    pub const PLATFORMCREATE: u32 = 1 << 30;
}

/// `TPM_CAP_TPM_PROPERTIES` and the property the chunk size comes from (Part 2 §6.12, §6.13).
const TPM_CAP_TPM_PROPERTIES: u32 = 6;
const TPM_PT_NV_BUFFER_MAX: u32 = 0x100 + 44;

/// `sizeofSelect` for 24 PCRs (`PCR_SELECT_MIN`).
const PCR_SELECT_LEN: usize = 3;
/// Upper bound on list counts in responses (PCR banks, properties); real TPMs stay far below.
const MAX_LIST: u32 = 64;
/// `TPML_DIGEST` holds at most 8 digests (Part 2 §10.9.2), which is why `PCR_Read` loops.
const MAX_DIGESTS: u32 = 8;

/// The name of a command code, as the specification spells it.
pub fn command_name(code: u32) -> &'static str {
    match code {
        cc::EVICT_CONTROL => "TPM2_EvictControl",
        cc::NV_UNDEFINE_SPACE => "TPM2_NV_UndefineSpace",
        cc::NV_DEFINE_SPACE => "TPM2_NV_DefineSpace",
        cc::CREATE_PRIMARY => "TPM2_CreatePrimary",
        cc::NV_WRITE => "TPM2_NV_Write",
        cc::NV_READ => "TPM2_NV_Read",
        cc::QUOTE => "TPM2_Quote",
        cc::NV_READ_PUBLIC => "TPM2_NV_ReadPublic",
        cc::READ_PUBLIC => "TPM2_ReadPublic",
        cc::GET_CAPABILITY => "TPM2_GetCapability",
        cc::PCR_READ => "TPM2_PCR_Read",
        cc::PCR_EXTEND => "TPM2_PCR_Extend",
        _ => "TPM2 command",
    }
}

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

/// The `responseSize` field of a response header, if the header is complete.
pub fn declared_size(bytes: &[u8]) -> Option<usize> {
    let size = bytes.get(2..6)?;
    Some(u32::from_be_bytes([size[0], size[1], size[2], size[3]]) as usize)
}

// ---------------------------------------------------------------------------------------------
// Wire format
// ---------------------------------------------------------------------------------------------

/// Big-endian marshalling (Part 1 "Command/Response Structure": all integers big-endian; a `TPM2B` is a `u16` size
/// followed by that many bytes).
#[derive(Debug, Default, Clone)]
pub struct TpmWriter {
    buf: Vec<u8>,
}

impl TpmWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    /// A `TPM2B_*`; fails if `b` is longer than a `u16` can say.
    pub fn tpm2b(&mut self, what: &'static str, b: &[u8]) -> Result<&mut Self, VtpmError> {
        let len = u16::try_from(b.len()).map_err(|_| VtpmError::TooLarge {
            what,
            len: b.len(),
            max: usize::from(u16::MAX),
        })?;
        self.u16(len);
        self.buf.extend_from_slice(b);
        Ok(self)
    }

    /// A `TPML_PCR_SELECTION` with one `TPMS_PCR_SELECTION` for the SHA-256 bank (empty `pcrs`
    /// selects nothing). PCR indices must be below 24.
    pub fn pcr_selection_sha256(&mut self, pcrs: &[u32]) -> Result<&mut Self, VtpmError> {
        let bitmap = pcr_bitmap(pcrs)?;
        self.u32(1).u16(alg::SHA256).u8(PCR_SELECT_LEN as u8);
        self.buf.extend_from_slice(&bitmap);
        Ok(self)
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

fn pcr_bitmap(pcrs: &[u32]) -> Result<[u8; PCR_SELECT_LEN], VtpmError> {
    let mut bitmap = [0u8; PCR_SELECT_LEN];
    for &pcr in pcrs {
        if pcr >= 24 {
            return Err(VtpmError::PcrIndex { index: pcr });
        }
        bitmap[(pcr / 8) as usize] |= 1 << (pcr % 8);
    }
    Ok(bitmap)
}

/// A bounds-checked big-endian cursor over a response (or, in fakes, a command).
#[derive(Debug, Clone)]
pub struct TpmReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> TpmReader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Malformed> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(Malformed::Truncated {
                what,
                offset: self.pos,
                needed: n,
                available: self.remaining(),
            }),
        }
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Malformed> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, Malformed> {
        Ok(self.array::<1>(what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, Malformed> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, Malformed> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, Malformed> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// A `TPM2B_*`: its bytes without the size.
    pub fn tpm2b(&mut self, what: &'static str) -> Result<&'a [u8], Malformed> {
        let n = self.u16(what)?;
        self.take(usize::from(n), what)
    }

    /// A `TPML_PCR_SELECTION`: `(hash, bitmap)` per bank.
    pub fn pcr_selection(&mut self, what: &'static str) -> Result<Vec<(u16, Vec<u8>)>, Malformed> {
        let count = self.u32(what)?;
        if count > MAX_LIST {
            return Err(Malformed::Count {
                what,
                count,
                max: MAX_LIST,
            });
        }
        let mut out = Vec::new();
        for _ in 0..count {
            let hash = self.u16(what)?;
            let size = self.u8(what)?;
            out.push((hash, self.take(usize::from(size), what)?.to_vec()));
        }
        Ok(out)
    }

    /// Fails if bytes are left.
    pub fn finish(&self, what: &'static str) -> Result<(), Malformed> {
        match self.remaining() {
            0 => Ok(()),
            len => Err(Malformed::Trailing { what, len }),
        }
    }
}

/// Marshals a command (Part 1 "Command/Response Structure"): header, handle area, then, if
/// `passwords` is not empty, the authorization area with one password session per entry (Part 1
/// "Password Authorizations": `TPM_RS_PW`, empty nonce, attributes 0, the password as `hmac`),
/// then the parameters.
pub fn encode_command(
    code: u32,
    handles: &[u32],
    passwords: &[&[u8]],
    params: &[u8],
) -> Result<Vec<u8>, VtpmError> {
    let mut body = TpmWriter::new();
    for &h in handles {
        body.u32(h);
    }
    if !passwords.is_empty() {
        let mut auth = TpmWriter::new();
        for password in passwords {
            auth.u32(rh::PW).u16(0).u8(0);
            auth.tpm2b("session password", password)?;
        }
        let auth_size = u32::try_from(auth.len()).map_err(|_| VtpmError::TooLarge {
            what: "authorization area",
            len: auth.len(),
            max: u32::MAX as usize,
        })?;
        body.u32(auth_size).bytes(auth.as_bytes());
    }
    body.bytes(params);
    let total = HEADER_LEN + body.len();
    let size = u32::try_from(total).map_err(|_| VtpmError::TooLarge {
        what: "command",
        len: total,
        max: u32::MAX as usize,
    })?;
    let tag = if passwords.is_empty() {
        st::NO_SESSIONS
    } else {
        st::SESSIONS
    };
    let mut out = TpmWriter::new();
    out.u16(tag).u32(size).u32(code).bytes(body.as_bytes());
    Ok(out.into_bytes())
}

/// A successful response's handle area and parameter area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseBody {
    pub handles: Vec<u32>,
    pub params: Vec<u8>,
}

/// Unmarshals a response to `code`: checks the header, turns a non-zero response code into
/// [`VtpmError::Tpm`], and splits the body. With sessions the body is handles, `parameterSize`,
/// parameters, then one `TPMS_AUTH_RESPONSE` per session, each checked for shape.
pub fn decode_response(
    code: u32,
    bytes: &[u8],
    response_handles: usize,
    sessions: bool,
) -> Result<ResponseBody, VtpmError> {
    let command = command_name(code);
    let malformed = |reason| VtpmError::Malformed { command, reason };
    if bytes.len() < HEADER_LEN {
        return Err(malformed(Malformed::ShortHeader { len: bytes.len() }));
    }
    let mut r = TpmReader::new(bytes);
    let tag = r.u16("tag").map_err(malformed)?;
    let size = r.u32("responseSize").map_err(malformed)?;
    let rc = r.u32("responseCode").map_err(malformed)?;
    if size as usize != bytes.len() {
        return Err(malformed(Malformed::SizeMismatch {
            declared: size,
            actual: bytes.len(),
        }));
    }
    if rc != 0 {
        return Err(VtpmError::Tpm {
            command,
            rc: ResponseCode(rc),
        });
    }
    let expected_tag = if sessions {
        st::SESSIONS
    } else {
        st::NO_SESSIONS
    };
    if tag != expected_tag {
        return Err(malformed(Malformed::Unexpected {
            what: "tag",
            found: u64::from(tag),
            expected: u64::from(expected_tag),
        }));
    }
    let mut handles = Vec::with_capacity(response_handles);
    for _ in 0..response_handles {
        handles.push(r.u32("handle").map_err(malformed)?);
    }
    let params = if sessions {
        let n = r.u32("parameterSize").map_err(malformed)?;
        let params = r
            .take(n as usize, "parameters")
            .map_err(malformed)?
            .to_vec();
        // Password sessions answer with an empty nonce, the attributes and an empty hmac; at
        // least one, and nothing after the last.
        loop {
            r.tpm2b("session nonce").map_err(malformed)?;
            r.u8("session attributes").map_err(malformed)?;
            r.tpm2b("session hmac").map_err(malformed)?;
            if r.remaining() == 0 {
                break;
            }
        }
        params
    } else {
        let rest = r.remaining();
        r.take(rest, "parameters").map_err(malformed)?.to_vec()
    };
    Ok(ResponseBody { handles, params })
}

// ---------------------------------------------------------------------------------------------
// Response codes
// ---------------------------------------------------------------------------------------------

/// Base response codes thimble names (Part 2 §6.6.3, `TPM_RC`): format-one codes as
/// `RC_FMT1 + n` without their handle/parameter/session number, format-zero as `RC_VER1 + n` or
/// `RC_WARN + n`.
pub mod rc {
    pub const SUCCESS: u32 = 0x000;
    pub const FMT1: u32 = 0x080;
    pub const VER1: u32 = 0x100;
    pub const WARN: u32 = 0x900;

    pub const ASYMMETRIC: u32 = FMT1 + 0x001;
    pub const ATTRIBUTES: u32 = FMT1 + 0x002;
    pub const HASH: u32 = FMT1 + 0x003;
    pub const VALUE: u32 = FMT1 + 0x004;
    pub const HIERARCHY: u32 = FMT1 + 0x005;
    pub const KEY_SIZE: u32 = FMT1 + 0x007;
    pub const TYPE: u32 = FMT1 + 0x00A;
    pub const HANDLE: u32 = FMT1 + 0x00B;
    pub const RANGE: u32 = FMT1 + 0x00D;
    pub const AUTH_FAIL: u32 = FMT1 + 0x00E;
    pub const SCHEME: u32 = FMT1 + 0x012;
    pub const SIZE: u32 = FMT1 + 0x015;
    pub const TAG: u32 = FMT1 + 0x017;
    pub const SELECTOR: u32 = FMT1 + 0x018;
    pub const INSUFFICIENT: u32 = FMT1 + 0x01A;
    pub const KEY: u32 = FMT1 + 0x01C;
    pub const POLICY_FAIL: u32 = FMT1 + 0x01D;
    pub const BAD_AUTH: u32 = FMT1 + 0x022;

    pub const INITIALIZE: u32 = VER1;
    pub const FAILURE: u32 = VER1 + 0x001;
    pub const DISABLED: u32 = VER1 + 0x020;
    pub const AUTH_MISSING: u32 = VER1 + 0x025;
    pub const COMMAND_SIZE: u32 = VER1 + 0x042;
    pub const COMMAND_CODE: u32 = VER1 + 0x043;
    pub const AUTHSIZE: u32 = VER1 + 0x044;
    pub const NV_RANGE: u32 = VER1 + 0x046;
    pub const NV_SIZE: u32 = VER1 + 0x047;
    pub const NV_LOCKED: u32 = VER1 + 0x048;
    pub const NV_AUTHORIZATION: u32 = VER1 + 0x049;
    pub const NV_UNINITIALIZED: u32 = VER1 + 0x04A;
    pub const NV_SPACE: u32 = VER1 + 0x04B;
    pub const NV_DEFINED: u32 = VER1 + 0x04C;

    pub const OBJECT_MEMORY: u32 = WARN + 0x002;
    pub const SESSION_MEMORY: u32 = WARN + 0x003;
    pub const MEMORY: u32 = WARN + 0x004;
    pub const YIELDED: u32 = WARN + 0x008;
    pub const CANCELED: u32 = WARN + 0x009;
    pub const TESTING: u32 = WARN + 0x00A;
    pub const NV_RATE: u32 = WARN + 0x020;
    pub const LOCKOUT: u32 = WARN + 0x021;
    pub const RETRY: u32 = WARN + 0x022;
    pub const NV_UNAVAILABLE: u32 = WARN + 0x023;
}

/// Where a format-one response code points (Part 2 §6.6.3: bits 11:8 with the P bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RcPosition {
    Handle(u8),
    Parameter(u8),
    Session(u8),
}

impl fmt::Display for RcPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Handle(n) => write!(f, "handle {n}"),
            Self::Parameter(n) => write!(f, "parameter {n}"),
            Self::Session(n) => write!(f, "session {n}"),
        }
    }
}

/// A TPM 2.0 response code (`TPM_RC`), decoded on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResponseCode(pub u32);

impl ResponseCode {
    pub fn raw(self) -> u32 {
        self.0
    }

    fn is_format_one(self) -> bool {
        self.0 & rc::FMT1 != 0
    }

    /// The code without its position, to compare with the constants in [`rc`].
    pub fn base(self) -> u32 {
        if self.is_format_one() {
            rc::FMT1 | (self.0 & 0x3F)
        } else {
            self.0 & 0xFFF
        }
    }

    /// The handle, parameter or session a format-one code refers to (numbered from 1).
    pub fn position(self) -> Option<RcPosition> {
        if !self.is_format_one() {
            return None;
        }
        let n = ((self.0 >> 8) & 0xF) as u8;
        if self.0 & 0x040 != 0 {
            Some(RcPosition::Parameter(n))
        } else if n & 0x8 != 0 {
            Some(RcPosition::Session(n & 0x7))
        } else if n != 0 {
            Some(RcPosition::Handle(n))
        } else {
            None
        }
    }

    /// A warning: the command may succeed if sent again (`RC_WARN`).
    pub fn is_warning(self) -> bool {
        !self.is_format_one() && self.0 & rc::WARN == rc::WARN
    }

    /// The specification's name, e.g. `TPM_RC_NV_UNINITIALIZED`.
    pub fn name(self) -> &'static str {
        if !self.is_format_one() {
            if self.0 & 0x100 == 0 {
                return "TPM 1.2 response code";
            }
            if self.0 & 0x400 != 0 {
                return "vendor-defined response code";
            }
        }
        match self.base() {
            rc::SUCCESS => "TPM_RC_SUCCESS",
            rc::ASYMMETRIC => "TPM_RC_ASYMMETRIC",
            rc::ATTRIBUTES => "TPM_RC_ATTRIBUTES",
            rc::HASH => "TPM_RC_HASH",
            rc::VALUE => "TPM_RC_VALUE",
            rc::HIERARCHY => "TPM_RC_HIERARCHY",
            rc::KEY_SIZE => "TPM_RC_KEY_SIZE",
            rc::TYPE => "TPM_RC_TYPE",
            rc::HANDLE => "TPM_RC_HANDLE",
            rc::RANGE => "TPM_RC_RANGE",
            rc::AUTH_FAIL => "TPM_RC_AUTH_FAIL",
            rc::SCHEME => "TPM_RC_SCHEME",
            rc::SIZE => "TPM_RC_SIZE",
            rc::TAG => "TPM_RC_TAG",
            rc::SELECTOR => "TPM_RC_SELECTOR",
            rc::INSUFFICIENT => "TPM_RC_INSUFFICIENT",
            rc::KEY => "TPM_RC_KEY",
            rc::POLICY_FAIL => "TPM_RC_POLICY_FAIL",
            rc::BAD_AUTH => "TPM_RC_BAD_AUTH",
            rc::INITIALIZE => "TPM_RC_INITIALIZE",
            rc::FAILURE => "TPM_RC_FAILURE",
            rc::DISABLED => "TPM_RC_DISABLED",
            rc::AUTH_MISSING => "TPM_RC_AUTH_MISSING",
            rc::COMMAND_SIZE => "TPM_RC_COMMAND_SIZE",
            rc::COMMAND_CODE => "TPM_RC_COMMAND_CODE",
            rc::AUTHSIZE => "TPM_RC_AUTHSIZE",
            rc::NV_RANGE => "TPM_RC_NV_RANGE",
            rc::NV_SIZE => "TPM_RC_NV_SIZE",
            rc::NV_LOCKED => "TPM_RC_NV_LOCKED",
            rc::NV_AUTHORIZATION => "TPM_RC_NV_AUTHORIZATION",
            rc::NV_UNINITIALIZED => "TPM_RC_NV_UNINITIALIZED",
            rc::NV_SPACE => "TPM_RC_NV_SPACE",
            rc::NV_DEFINED => "TPM_RC_NV_DEFINED",
            rc::OBJECT_MEMORY => "TPM_RC_OBJECT_MEMORY",
            rc::SESSION_MEMORY => "TPM_RC_SESSION_MEMORY",
            rc::MEMORY => "TPM_RC_MEMORY",
            rc::YIELDED => "TPM_RC_YIELDED",
            rc::CANCELED => "TPM_RC_CANCELED",
            rc::TESTING => "TPM_RC_TESTING",
            rc::NV_RATE => "TPM_RC_NV_RATE",
            rc::LOCKOUT => "TPM_RC_LOCKOUT",
            rc::RETRY => "TPM_RC_RETRY",
            rc::NV_UNAVAILABLE => "TPM_RC_NV_UNAVAILABLE",
            _ if self.is_format_one() => "format-one TPM error",
            _ if self.is_warning() => "TPM warning",
            _ => "TPM error",
        }
    }

    /// What the code means for thimble's commands, in words.
    pub fn meaning(self) -> &'static str {
        match self.base() {
            rc::HANDLE => "the handle does not refer to a loaded object or defined NV index",
            rc::NV_UNINITIALIZED => "the NV index is defined but was never written",
            rc::NV_RANGE => "the read or write goes past the end of the NV index",
            rc::NV_SIZE => "the NV index size is larger than this TPM allows",
            rc::NV_LOCKED => "the NV index is read- or write-locked",
            rc::NV_AUTHORIZATION => "this authorization may not read or write the NV index",
            rc::NV_SPACE => "the TPM has no NV space left",
            rc::NV_DEFINED => "the NV index is already defined",
            rc::NV_RATE | rc::LOCKOUT => "the TPM is rate-limiting or in dictionary-attack lockout",
            rc::AUTH_FAIL | rc::BAD_AUTH => {
                "authorization failed: the owner hierarchy or the index has a password"
            }
            rc::HIERARCHY | rc::DISABLED => "the hierarchy is disabled",
            rc::INITIALIZE => "the TPM has not been started (TPM2_Startup)",
            rc::FAILURE => "the TPM is in failure mode",
            rc::COMMAND_CODE => "the TPM does not implement this command",
            rc::KEY | rc::SCHEME | rc::ATTRIBUTES => {
                "the key cannot sign this quote (not a restricted RSASSA signing key)"
            }
            rc::VALUE | rc::SIZE | rc::SELECTOR => "the TPM rejected a parameter's value",
            rc::RETRY | rc::YIELDED | rc::TESTING | rc::CANCELED => {
                "the TPM asked for the command to be sent again later"
            }
            rc::OBJECT_MEMORY | rc::SESSION_MEMORY | rc::MEMORY => {
                "the TPM is out of object or session memory"
            }
            _ => "see TPM 2.0 Library Part 2, TPM_RC",
        }
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:#05x}", self.name(), self.0)?;
        if let Some(p) = self.position() {
            write!(f, ", {p}")?;
        }
        f.write_str(")")
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a response could not be unmarshalled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformed {
    #[error("{len} bytes is shorter than the 10-byte response header")]
    ShortHeader { len: usize },
    #[error("the header declares {declared} bytes but {actual} arrived")]
    SizeMismatch { declared: u32, actual: usize },
    #[error("{what} needs {needed} bytes at offset {offset} but {available} remain")]
    Truncated {
        what: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error("{len} unexpected bytes after {what}")]
    Trailing { what: &'static str, len: usize },
    #[error("{what} count {count} is above {max}")]
    Count {
        what: &'static str,
        count: u32,
        max: u32,
    },
    #[error("{what} is {found:#x}, expected {expected:#x}")]
    Unexpected {
        what: &'static str,
        found: u64,
        expected: u64,
    },
}

/// Failure to talk to the vTPM or to get what thimble needs from it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VtpmError {
    #[error(
        "no TPM device ({}): not a VM with a (v)TPM, or no TPM driver is loaded",
        tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NoDevice { tried: Vec<PathBuf> },
    #[error("cannot open TPM device {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{command}: TPM transport failed")]
    Transport {
        command: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{command} returned a malformed response")]
    Malformed {
        command: &'static str,
        #[source]
        reason: Malformed,
    },
    #[error("{command} failed with {rc}: {}", rc.meaning())]
    Tpm {
        command: &'static str,
        rc: ResponseCode,
    },
    #[error("NV index {index:#010x}{} is not defined in this TPM", nv_index_role(*index))]
    NvIndexMissing { index: u32 },
    #[error(
        "NV index {index:#010x}{} holds {size} bytes, fewer than the {needed} needed",
        nv_index_role(*index)
    )]
    NvIndexTooSmall {
        index: u32,
        size: u16,
        needed: usize,
    },
    #[error(
        "NV index {index:#010x}{} allows neither owner nor index-password reads (attributes {attributes:#010x})",
        nv_index_role(*index)
    )]
    NvNotReadable { index: u32, attributes: u32 },
    #[error(
        "NV index {index:#010x}{} allows neither owner nor index-password writes (attributes {attributes:#010x})",
        nv_index_role(*index)
    )]
    NvNotWritable { index: u32, attributes: u32 },
    #[error("{what} is {len} bytes, above the {max}-byte limit")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("PCR {index} does not exist (PCRs 0-23)")]
    PcrIndex { index: u32 },
    #[error(
        "the TPM returned no SHA-256 value for PCRs {missing:?}; is the SHA-256 bank allocated?"
    )]
    PcrsUnavailable { missing: Vec<u32> },
    #[error(
        "the quote is signed with algorithm {sig_alg:#06x} and hash {hash_alg:#06x}, not RSASSA (0x0014) with SHA-256 (0x000b) as Azure's AK signs"
    )]
    UnexpectedSignature { sig_alg: u16, hash_alg: u16 },
    #[error("the quote's TPMS_ATTEST cannot be parsed")]
    Attest {
        #[source]
        source: AttestError,
    },
    #[error(
        "the quote's {what} does not match the request; it does not belong to this quote request"
    )]
    QuoteMismatch { what: &'static str },
    #[error(
        "the PCR values changed between the quote and the PCR read in {attempts} attempts; something keeps extending PCRs"
    )]
    PcrsChanged { attempts: u32 },
    #[error("the HCL report in NV index {HCL_REPORT_NV_INDEX:#010x} cannot be parsed")]
    HclReport {
        #[source]
        source: HclError,
    },
    #[error("the runtime data of the HCL report cannot be parsed")]
    RuntimeData {
        #[source]
        source: RuntimeDataError,
    },
    #[error(
        "stale HCL report: its runtime data user-data did not echo the {USER_DATA_LEN} bytes written to NV index {HCL_USER_DATA_NV_INDEX:#010x} within {}ms ({attempts} reads; it holds {}); the paravisor did not regenerate the report (accepting a stale report needs --allow-stale-report)",
        waited.as_millis(),
        describe_user_data(.observed)
    )]
    StaleReport {
        attempts: u32,
        waited: Duration,
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
    Owner,
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
    pub index: u32,
    pub name_alg: u16,
    /// `TPMA_NV` bits ([`nv_attr`]).
    pub attributes: u32,
    pub auth_policy: Vec<u8>,
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

    /// `TPMS_NV_PUBLIC` marshalled (the inside of a `TPM2B_NV_PUBLIC`).
    pub fn to_bytes(&self) -> Result<Vec<u8>, VtpmError> {
        let mut w = TpmWriter::new();
        w.u32(self.index).u16(self.name_alg).u32(self.attributes);
        w.tpm2b("authPolicy", &self.auth_policy)?;
        w.u16(self.data_size);
        Ok(w.into_bytes())
    }

    /// Parses a marshalled `TPMS_NV_PUBLIC`, all of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<NvPublic, Malformed> {
        let mut r = TpmReader::new(bytes);
        let index = r.u32("nvIndex")?;
        let name_alg = r.u16("nameAlg")?;
        let attributes = r.u32("attributes")?;
        let auth_policy = r.tpm2b("authPolicy")?.to_vec();
        let data_size = r.u16("dataSize")?;
        r.finish("TPMS_NV_PUBLIC")?;
        Ok(NvPublic {
            index,
            name_alg,
            attributes,
            auth_policy,
            data_size,
            name: Vec::new(),
        })
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
    pub object_type: u16,
    pub name_alg: u16,
    /// `TPMA_OBJECT` bits.
    pub object_attributes: u32,
    /// For an RSA key: modulus and public exponent, big-endian (exponent 0 in the structure
    /// means 65537, Part 2 §12.2.3.5, and is given here as `01 00 01`).
    pub rsa: Option<RsaPublicKey>,
    /// For an RSA key: its signing scheme and hash (`TPM_ALG_NULL` if none).
    pub rsa_scheme: Option<(u16, u16)>,
}

/// The decoded head of a `TPMT_PUBLIC`.
#[derive(Debug)]
struct PublicArea {
    object_type: u16,
    name_alg: u16,
    attributes: u32,
    /// Key, scheme and scheme hash of an RSA key.
    rsa: Option<(RsaPublicKey, (u16, u16))>,
}

/// Parses a `TPMT_PUBLIC` (Part 2 §12.2.4); RSA parameters are decoded, other types are kept raw.
fn parse_public_area(area: &[u8]) -> Result<PublicArea, Malformed> {
    let mut r = TpmReader::new(area);
    let object_type = r.u16("type")?;
    let name_alg = r.u16("nameAlg")?;
    let attributes = r.u32("objectAttributes")?;
    r.tpm2b("authPolicy")?;
    let mut out = PublicArea {
        object_type,
        name_alg,
        attributes,
        rsa: None,
    };
    if object_type != alg::RSA {
        return Ok(out);
    }
    // TPMS_RSA_PARMS: symmetric (algorithm, then keyBits and mode unless NULL), scheme (then
    // its hash unless NULL), keyBits, exponent; then the unique field, the modulus.
    let symmetric = r.u16("symmetric.algorithm")?;
    if symmetric != alg::NULL {
        r.u16("symmetric.keyBits")?;
        r.u16("symmetric.mode")?;
    }
    let scheme = r.u16("scheme.scheme")?;
    let scheme_hash = if scheme == alg::NULL {
        alg::NULL
    } else {
        r.u16("scheme.hashAlg")?
    };
    r.u16("keyBits")?;
    let exponent = r.u32("exponent")?;
    let n = r.tpm2b("unique.rsa")?.to_vec();
    r.finish("TPMT_PUBLIC")?;
    let exponent = if exponent == 0 { 65537 } else { exponent };
    let e_bytes = exponent.to_be_bytes();
    let skip = e_bytes.iter().take_while(|&&b| b == 0).count();
    let key = RsaPublicKey {
        n,
        e: e_bytes[skip..].to_vec(),
    };
    out.rsa = Some((key, (scheme, scheme_hash)));
    Ok(out)
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

    pub fn transport(&self) -> &T {
        &self.transport
    }

    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

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
        let mut p = TpmWriter::new();
        p.u32(TPM_CAP_TPM_PROPERTIES).u32(property).u32(1);
        let body = self.execute(cc::GET_CAPABILITY, &[], &[], p.as_bytes(), 0)?;
        let malformed = |reason| VtpmError::Malformed {
            command: command_name(cc::GET_CAPABILITY),
            reason,
        };
        let mut r = TpmReader::new(&body.params);
        r.u8("moreData").map_err(malformed)?;
        let capability = r.u32("capability").map_err(malformed)?;
        if capability != TPM_CAP_TPM_PROPERTIES {
            return Err(malformed(Malformed::Unexpected {
                what: "capability",
                found: u64::from(capability),
                expected: u64::from(TPM_CAP_TPM_PROPERTIES),
            }));
        }
        let count = r.u32("tpmProperty.count").map_err(malformed)?;
        if count > MAX_LIST {
            return Err(malformed(Malformed::Count {
                what: "tpmProperty",
                count,
                max: MAX_LIST,
            }));
        }
        let mut found = None;
        for _ in 0..count {
            let tag = r.u32("property").map_err(malformed)?;
            let value = r.u32("value").map_err(malformed)?;
            if tag == property {
                found = Some(value);
            }
        }
        r.finish("TPMS_CAPABILITY_DATA").map_err(malformed)?;
        Ok(found)
    }

    /// `TPM_PT_NV_BUFFER_MAX`, the largest `NV_Read`/`NV_Write` this TPM takes in one command,
    /// or [`DEFAULT_NV_BUFFER_MAX`] if it does not say; capped at [`MAX_NV_CHUNK`]. Asked once.
    pub fn nv_buffer_max(&mut self) -> Result<u16, VtpmError> {
        if let Some(v) = self.nv_buffer_max {
            return Ok(v);
        }
        let value = match self.tpm_property(TPM_PT_NV_BUFFER_MAX)? {
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
        let malformed = |reason| VtpmError::Malformed {
            command: command_name(cc::NV_READ_PUBLIC),
            reason,
        };
        let mut r = TpmReader::new(&body.params);
        let inner = r.tpm2b("nvPublic").map_err(malformed)?;
        let name = r.tpm2b("nvName").map_err(malformed)?.to_vec();
        r.finish("NV_ReadPublic parameters").map_err(malformed)?;
        let mut public = NvPublic::parse(inner).map_err(malformed)?;
        if public.index != index {
            return Err(malformed(Malformed::Unexpected {
                what: "nvIndex",
                found: u64::from(public.index),
                expected: u64::from(index),
            }));
        }
        public.name = name;
        Ok(public)
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
        let malformed = |reason| VtpmError::Malformed {
            command: command_name(cc::NV_READ),
            reason,
        };
        let end = u32::from(offset) + u32::from(len);
        let mut out = Vec::with_capacity(usize::from(len));
        let mut at = u32::from(offset);
        while at < end {
            // Both fit a u16: `at` < `end` <= offset + len, and chunk is a u16.
            let size = (end - at).min(u32::from(chunk)) as u16;
            let mut p = TpmWriter::new();
            p.u16(size).u16(at as u16);
            let body = self.execute(
                cc::NV_READ,
                &[auth.handle(index), index],
                &[auth.password()],
                p.as_bytes(),
                0,
            )?;
            let mut r = TpmReader::new(&body.params);
            let data = r.tpm2b("data").map_err(malformed)?;
            r.finish("NV_Read parameters").map_err(malformed)?;
            if data.len() != usize::from(size) {
                return Err(malformed(Malformed::Unexpected {
                    what: "NV_Read data size",
                    found: data.len() as u64,
                    expected: u64::from(size),
                }));
            }
            out.extend_from_slice(data);
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
        let mut p = TpmWriter::new();
        p.tpm2b("auth", auth_value)?;
        p.tpm2b("publicInfo", &public.to_bytes()?)?;
        self.execute(
            cc::NV_DEFINE_SPACE,
            &[hierarchy.handle(public.index)],
            &[hierarchy.password()],
            p.as_bytes(),
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
            let mut p = TpmWriter::new();
            p.tpm2b("data", piece)?;
            p.u16(at);
            self.execute(
                cc::NV_WRITE,
                &[auth.handle(index), index],
                &[auth.password()],
                p.as_bytes(),
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
        let defined = self.nv_define_and_write_user_data(report_data)?;
        let start = Instant::now();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
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
        let malformed = |reason| VtpmError::Malformed {
            command: command_name(cc::PCR_READ),
            reason,
        };
        let mut wanted = pcr_bitmap(pcrs)?;
        let mut values: [Option<[u8; 32]>; 24] = [None; 24];
        while wanted.iter().any(|&b| b != 0) {
            let missing: Vec<u32> = (0..24u32)
                .filter(|&i| wanted[(i / 8) as usize] & (1 << (i % 8)) != 0)
                .collect();
            let mut p = TpmWriter::new();
            p.pcr_selection_sha256(&missing)?;
            let body = self.execute(cc::PCR_READ, &[], &[], p.as_bytes(), 0)?;
            let mut r = TpmReader::new(&body.params);
            r.u32("pcrUpdateCounter").map_err(malformed)?;
            let selection = r.pcr_selection("pcrSelectionOut").map_err(malformed)?;
            let count = r.u32("pcrValues.count").map_err(malformed)?;
            if count > MAX_DIGESTS {
                return Err(malformed(Malformed::Count {
                    what: "pcrValues",
                    count,
                    max: MAX_DIGESTS,
                }));
            }
            let mut digests = Vec::new();
            for _ in 0..count {
                digests.push(r.tpm2b("pcrValues.digest").map_err(malformed)?);
            }
            r.finish("PCR_Read parameters").map_err(malformed)?;
            // The digests follow the selection out, bank by bank, each bitmap ascending.
            let mut returned = Vec::new();
            for (hash, bitmap) in &selection {
                for (j, byte) in bitmap.iter().enumerate() {
                    for bit in 0..8u32 {
                        if byte & (1 << bit) != 0 {
                            returned.push((*hash, j as u32 * 8 + bit));
                        }
                    }
                }
            }
            if returned.len() != digests.len() {
                return Err(malformed(Malformed::Unexpected {
                    what: "pcrValues.count",
                    found: digests.len() as u64,
                    expected: returned.len() as u64,
                }));
            }
            let mut progress = false;
            for ((hash, index), value) in returned.into_iter().zip(digests) {
                let asked = index < 24 && wanted[(index / 8) as usize] & (1 << (index % 8)) != 0;
                if hash != alg::SHA256 || !asked {
                    return Err(malformed(Malformed::Unexpected {
                        what: "PCR returned without being asked for",
                        found: u64::from(index),
                        expected: u64::from(hash),
                    }));
                }
                let value: [u8; 32] = value.try_into().map_err(|_| {
                    malformed(Malformed::Unexpected {
                        what: "SHA-256 PCR value length",
                        found: value.len() as u64,
                        expected: 32,
                    })
                })?;
                values[index as usize] = Some(value);
                wanted[(index / 8) as usize] &= !(1 << (index % 8));
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
        let mut p = TpmWriter::new();
        p.tpm2b("qualifyingData", qualifying_data)?;
        p.u16(alg::NULL);
        p.pcr_selection_sha256(pcrs)?;
        let body = self.execute(cc::QUOTE, &[ak_handle], &[&[]], p.as_bytes(), 0)?;
        let malformed = |reason| VtpmError::Malformed {
            command: command_name(cc::QUOTE),
            reason,
        };
        let mut r = TpmReader::new(&body.params);
        let attest = r.tpm2b("quoted").map_err(malformed)?.to_vec();
        let sig_alg = r.u16("signature.sigAlg").map_err(malformed)?;
        if sig_alg != alg::RSASSA {
            return Err(VtpmError::UnexpectedSignature {
                sig_alg,
                hash_alg: alg::NULL,
            });
        }
        let hash_alg = r.u16("signature.hash").map_err(malformed)?;
        if hash_alg != alg::SHA256 {
            return Err(VtpmError::UnexpectedSignature { sig_alg, hash_alg });
        }
        let signature = r.tpm2b("signature.sig").map_err(malformed)?.to_vec();
        r.finish("Quote parameters").map_err(malformed)?;
        Ok(Quote { attest, signature })
    }

    /// `TPM2_ReadPublic` (Part 3 §12.4). For a SHA-256 name the name is checked to be the hash of
    /// the public area received, so the key and the name a quote reports belong together.
    pub fn read_public(&mut self, handle: u32) -> Result<TpmPublic, VtpmError> {
        let body = self.execute(cc::READ_PUBLIC, &[handle], &[], &[], 0)?;
        let malformed = |reason| VtpmError::Malformed {
            command: command_name(cc::READ_PUBLIC),
            reason,
        };
        let mut r = TpmReader::new(&body.params);
        let public_area = r.tpm2b("outPublic").map_err(malformed)?.to_vec();
        let name = r.tpm2b("name").map_err(malformed)?.to_vec();
        let qualified_name = r.tpm2b("qualifiedName").map_err(malformed)?.to_vec();
        r.finish("ReadPublic parameters").map_err(malformed)?;
        let area = parse_public_area(&public_area).map_err(malformed)?;
        if area.name_alg == alg::SHA256 {
            let mut expected = alg::SHA256.to_be_bytes().to_vec();
            expected.extend_from_slice(digest(&SHA256, &public_area).as_ref());
            if name != expected {
                return Err(malformed(Malformed::Unexpected {
                    what: "name (not SHA-256 of the public area)",
                    found: name.len() as u64,
                    expected: expected.len() as u64,
                }));
            }
        }
        let (rsa, rsa_scheme) = match area.rsa {
            Some((key, scheme)) => (Some(key), Some(scheme)),
            None => (None, None),
        };
        Ok(TpmPublic {
            public_area,
            name,
            qualified_name,
            object_type: area.object_type,
            name_alg: area.name_alg,
            object_attributes: area.attributes,
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

    fn response(tag: u16, rc: u32, body: &[u8]) -> Vec<u8> {
        let mut w = TpmWriter::new();
        w.u16(tag)
            .u32((HEADER_LEN + body.len()) as u32)
            .u32(rc)
            .bytes(body);
        w.into_bytes()
    }

    fn with_session(params: &[u8]) -> Vec<u8> {
        let mut w = TpmWriter::new();
        w.u32(params.len() as u32).bytes(params).u16(0).u8(1).u16(0);
        response(st::SESSIONS, 0, w.as_bytes())
    }

    #[test]
    fn command_encoding_is_byte_exact() {
        // TPM2_NV_Read of 0x01400001, 1024 bytes at 0, owner auth with an empty password.
        let mut p = TpmWriter::new();
        p.u16(1024).u16(0);
        let cmd = encode_command(
            cc::NV_READ,
            &[rh::OWNER, HCL_REPORT_NV_INDEX],
            &[&[]],
            p.as_bytes(),
        )
        .unwrap();
        assert_eq!(
            hex::encode(&cmd),
            concat!(
                "8002", "00000023", "0000014e", // header: sessions, 35 bytes, NV_Read
                "40000001", "01400001", // authHandle TPM_RH_OWNER, nvIndex
                "00000009", "40000009", "0000", "00", "0000", // one TPM_RS_PW session
                "0400", "0000", // size, offset
            )
        );
        let cmd = encode_command(cc::NV_READ_PUBLIC, &[HCL_REPORT_NV_INDEX], &[], &[]).unwrap();
        assert_eq!(hex::encode(&cmd), "80010000000e0000016901400001");
    }

    #[test]
    fn response_codes_decode() {
        let missing = ResponseCode(0x18b);
        assert_eq!(missing.base(), rc::HANDLE);
        assert_eq!(missing.position(), Some(RcPosition::Handle(1)));
        assert_eq!(missing.to_string(), "TPM_RC_HANDLE (0x18b, handle 1)");
        let uninit = ResponseCode(0x14a);
        assert_eq!(uninit.base(), rc::NV_UNINITIALIZED);
        assert_eq!(uninit.position(), None);
        assert_eq!(uninit.name(), "TPM_RC_NV_UNINITIALIZED");
        let auth = ResponseCode(0x98e);
        assert_eq!(auth.base(), rc::AUTH_FAIL);
        assert_eq!(auth.position(), Some(RcPosition::Session(1)));
        let param = ResponseCode(0x2c4);
        assert_eq!(param.base(), rc::VALUE);
        assert_eq!(param.position(), Some(RcPosition::Parameter(2)));
        assert!(ResponseCode(rc::RETRY).is_warning());
        assert!(!ResponseCode(rc::NV_LOCKED).is_warning());
        assert_eq!(ResponseCode(0x1e).name(), "TPM 1.2 response code");
        assert_eq!(ResponseCode(0x500).name(), "vendor-defined response code");
    }

    #[test]
    fn malformed_responses_are_typed() {
        type Check = fn(&Malformed) -> bool;
        let cases: Vec<(Vec<u8>, Check)> = vec![
            (vec![0x80, 0x01, 0, 0], |m| {
                matches!(m, Malformed::ShortHeader { len: 4 })
            }),
            (
                {
                    let mut r = response(st::NO_SESSIONS, 0, &[1, 2]);
                    r.pop();
                    r
                },
                |m| {
                    matches!(
                        m,
                        Malformed::SizeMismatch {
                            declared: 12,
                            actual: 11
                        }
                    )
                },
            ),
            (response(st::SESSIONS, 0, &[0, 0, 0, 9, 1]), |m| {
                matches!(m, Malformed::Truncated { .. })
            }),
            (response(st::NO_SESSIONS, 0, &[]), |m| {
                matches!(m, Malformed::Unexpected { what: "tag", .. })
            }),
        ];
        for (bytes, check) in cases {
            match decode_response(cc::NV_READ, &bytes, 0, true) {
                Err(VtpmError::Malformed { command, reason }) => {
                    assert_eq!(command, "TPM2_NV_Read");
                    assert!(check(&reason), "{reason:?}");
                }
                other => panic!("{other:?}"),
            }
        }
        // A TPM error is reported even with a session tag on the request.
        let err = decode_response(cc::NV_READ, &response(st::NO_SESSIONS, 0x14a, &[]), 0, true)
            .unwrap_err();
        assert_eq!(err.response_code(), Some(ResponseCode(0x14a)));
        assert!(err.to_string().contains("never written"), "{err}");
    }

    #[test]
    fn nv_read_chunks_and_checks_sizes() {
        let mut t = Scripted::default();
        let mut public = TpmWriter::new();
        let p = NvPublic {
            index: 0x0150_0000,
            name_alg: alg::SHA256,
            attributes: nv_attr::AUTHREAD | nv_attr::AUTHWRITE | nv_attr::WRITTEN,
            auth_policy: vec![],
            data_size: 10,
            name: vec![],
        };
        public.tpm2b("", &p.to_bytes().unwrap()).unwrap();
        public.tpm2b("", &[0, 0x0b, 1, 2]).unwrap();
        let mut client = VtpmClient::new(&mut t);
        client.transport_mut().responses.push_back(Ok(response(
            st::NO_SESSIONS,
            0,
            public.as_bytes(),
        )));
        // GetCapability: NV_BUFFER_MAX = 4.
        let mut cap = TpmWriter::new();
        cap.u8(0)
            .u32(TPM_CAP_TPM_PROPERTIES)
            .u32(1)
            .u32(TPM_PT_NV_BUFFER_MAX)
            .u32(4);
        client.transport_mut().responses.push_back(Ok(response(
            st::NO_SESSIONS,
            0,
            cap.as_bytes(),
        )));
        for chunk in [&b"abcd"[..], b"efgh", b"ij"] {
            let mut w = TpmWriter::new();
            w.tpm2b("", chunk).unwrap();
            client
                .transport_mut()
                .responses
                .push_back(Ok(with_session(w.as_bytes())));
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
        t.responses
            .push_back(Ok(response(st::NO_SESSIONS, 0, public.as_bytes())));
        let mut w = TpmWriter::new();
        w.tpm2b("", b"abc").unwrap();
        t.responses.push_back(Ok(with_session(w.as_bytes())));
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
        t.responses
            .push_back(Ok(response(st::NO_SESSIONS, 0x18b, &[])));
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
    fn public_area_rsa_exponent_default() {
        let mut w = TpmWriter::new();
        w.u16(alg::RSA).u16(alg::SHA256).u32(0x0005_0472);
        w.tpm2b("", &[]).unwrap();
        w.u16(alg::NULL)
            .u16(alg::RSASSA)
            .u16(alg::SHA256)
            .u16(2048)
            .u32(0);
        w.tpm2b("", &[0xC5; 256]).unwrap();
        let area = parse_public_area(w.as_bytes()).unwrap();
        assert_eq!(
            (area.object_type, area.name_alg, area.attributes),
            (alg::RSA, alg::SHA256, 0x0005_0472)
        );
        let (key, (scheme, hash)) = area.rsa.unwrap();
        assert_eq!(key.e, [1, 0, 1]);
        assert_eq!(key.n.len(), 256);
        assert_eq!((scheme, hash), (alg::RSASSA, alg::SHA256));
        let mut trailing = w.into_bytes();
        trailing.push(0);
        assert!(matches!(
            parse_public_area(&trailing),
            Err(Malformed::Trailing { .. })
        ));
    }

    #[test]
    fn no_device_message() {
        let e = DeviceTransport::open("/nonexistent/tpmrm0").unwrap_err();
        assert!(matches!(e, VtpmError::NoDevice { .. }));
        assert!(e.to_string().contains("/nonexistent/tpmrm0"), "{e}");
    }
}
