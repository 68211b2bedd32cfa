// SPDX-License-Identifier: Apache-2.0
//! TPM 2.0 marshalling and unmarshalling (TPM 2.0 Library, Part 1 "Architecture" for the
//! command and response format, Part 2 "Structures", Part 3 "Commands"), one codec for both
//! sides of thimble's vTPM code: `thimble_collect::vtpm` encodes commands and decodes responses,
//! `thimble_sim::fake_vtpm` decodes commands and encodes responses, and
//! [`crate::azure::TpmsAttest`] reads (and the simulators write) the quoted `TPMS_ATTEST` with
//! the same reader and writer. Each layout is written once, as a [`Marshal`] pair.
//!
//! - [`TpmReader`] / [`TpmWriter`]: bounds-checked big-endian cursor and builder, `TPM2B`
//!   buffers, bounded `TPML` counts; [`Malformed`] and [`MarshalError`].
//! - [`Command`] / [`encode_command`] and [`decode_response`] / [`encode_response`]: the header,
//!   handle area, password sessions and parameter area.
//! - The structures (`TPMS_NV_PUBLIC`, `TPML_PCR_SELECTION`, `TPMT_PUBLIC`, `TPMT_SIGNATURE`, …)
//!   and the parameters of `TPM2_GetCapability`, `TPM2_NV_ReadPublic`, `TPM2_NV_Read`,
//!   `TPM2_NV_Write`, `TPM2_NV_DefineSpace`, `TPM2_PCR_Read`, `TPM2_Quote` and
//!   `TPM2_ReadPublic`, with their responses.
//! - [`rc`]: response codes, decoded into names and positions.
//! - The constants: command codes, tags, handles, algorithms, `TPMA_NV`, `TPMA_OBJECT`.
//!
//! Pure: bytes in, values out, and back. Transports, retries, chunking and what a response
//! means for Azure are the client's (`thimble_collect::vtpm`); what a TPM does with a command is
//! the fake's. Everything a TPM sends is hostile input to this module: every length is checked
//! before it is used, and nothing here panics on input.

mod commands;
mod frame;
pub mod rc;
mod structures;
mod wire;

use sha2::{Digest, Sha256};

pub use commands::{
    GetCapabilityCommand, GetCapabilityResponse, NvDefineSpaceCommand, NvReadCommand,
    NvReadPublicResponse, NvReadResponse, NvWriteCommand, PcrReadCommand, PcrReadResponse,
    QuoteCommand, QuoteResponse, ReadPublicResponse,
};
pub use frame::{
    Command, CommandError, Header, ResponseBody, ResponseError, command_code, declared_size,
    decode_response, encode_command, encode_error_response, encode_response,
};
pub use rc::{RcPosition, ResponseCode};
pub use structures::{
    ClockInfo, MAX_DIGESTS, MAX_PCR_SELECTIONS, MAX_TPM_PROPERTIES, PCR_COUNT, PCR_SELECT_LEN,
    PcrSelection, PublicDetail, TpmlDigest, TpmlPcrSelection, TpmsAuthCommand, TpmsAuthResponse,
    TpmsNvPublic, TpmsRsaParms, TpmsTaggedProperty, TpmtPublic, TpmtSigScheme, TpmtSignature,
    TpmtSymDefObject,
};
pub use wire::{Malformed, Marshal, MarshalError, TpmReader, TpmWriter};

/// Length of a command or response header: tag, size, command or response code.
pub const HEADER_LEN: usize = 10;

/// `TPM_GENERATED_VALUE` (Part 2 §6.2): every structure the TPM signs starts with it, so a
/// restricted key never signs outside data that looks like a TPM attestation.
pub const TPM_GENERATED_VALUE: u32 = 0xff54_4347;

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
    /// The `type` of a quote's `TPMS_ATTEST`.
    pub const ATTEST_QUOTE: u16 = 0x8018;
}

/// Permanent handles (Part 2 §7.4, `TPM_RH` / `TPM_RS`).
pub mod rh {
    pub const OWNER: u32 = 0x4000_0001;
    pub const NULL: u32 = 0x4000_0007;
    /// `TPM_RS_PW`: the password session.
    pub const PW: u32 = 0x4000_0009;
    pub const PLATFORM: u32 = 0x4000_000C;
}

/// Handle types (Part 2 §7.2, `TPM_HT`): the top byte of a handle.
pub mod ht {
    pub const NV_INDEX: u8 = 0x01;
    pub const PERSISTENT: u8 = 0x81;
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
pub mod tpma_nv {
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

/// `TPMA_OBJECT` bits (Part 2 §8.3).
pub mod tpma_object {
    pub const FIXED_TPM: u32 = 1 << 1;
    pub const ST_CLEAR: u32 = 1 << 2;
    pub const FIXED_PARENT: u32 = 1 << 4;
    pub const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
    pub const USER_WITH_AUTH: u32 = 1 << 6;
    pub const ADMIN_WITH_POLICY: u32 = 1 << 7;
    pub const NO_DA: u32 = 1 << 10;
    pub const ENCRYPTED_DUPLICATION: u32 = 1 << 11;
    pub const RESTRICTED: u32 = 1 << 16;
    pub const DECRYPT: u32 = 1 << 17;
    pub const SIGN_ENCRYPT: u32 = 1 << 18;
}

/// `TPMA_SESSION` bits (Part 2 §8.4).
pub mod tpma_session {
    pub const CONTINUE_SESSION: u8 = 1 << 0;
}

/// Capabilities (Part 2 §6.12, `TPM_CAP`).
pub mod cap {
    pub const TPM_PROPERTIES: u32 = 6;
}

/// Fixed TPM properties (Part 2 §6.13, `TPM_PT`, from `PT_FIXED` = `0x100`).
pub mod pt {
    /// `TPM_PT_NV_INDEX_MAX`: the largest NV index data size.
    pub const NV_INDEX_MAX: u32 = 0x100 + 23;
    /// `TPM_PT_NV_BUFFER_MAX`: the largest `NV_Read`/`NV_Write` in one command.
    pub const NV_BUFFER_MAX: u32 = 0x100 + 44;
}

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

/// How many handles the handle area of command `code` holds (Part 3, each command's table),
/// for the commands in [`cc`]; `None` for any other.
pub fn handle_count(code: u32) -> Option<usize> {
    match code {
        cc::GET_CAPABILITY | cc::PCR_READ => Some(0),
        cc::NV_READ_PUBLIC
        | cc::READ_PUBLIC
        | cc::QUOTE
        | cc::NV_DEFINE_SPACE
        | cc::CREATE_PRIMARY
        | cc::PCR_EXTEND => Some(1),
        cc::NV_READ | cc::NV_WRITE | cc::NV_UNDEFINE_SPACE | cc::EVICT_CONTROL => Some(2),
        _ => None,
    }
}

/// Whether `handle` is an NV index handle (`TPM_HT_NV_INDEX`).
pub fn is_nv_index(handle: u32) -> bool {
    handle >> 24 == u32::from(ht::NV_INDEX)
}

/// The `TPM2B_NAME` contents of an entity with a SHA-256 `nameAlg` (Part 1 "Names"): the
/// algorithm identifier, then SHA-256 of its marshalled public area (`TPMT_PUBLIC` or
/// `TPMS_NV_PUBLIC`).
pub fn sha256_name(public_area: &[u8]) -> Vec<u8> {
    let mut name = alg::SHA256.to_be_bytes().to_vec();
    name.extend_from_slice(&Sha256::digest(public_area));
    name
}

/// The qualified name of an object with SHA-256 names under a parent (Part 1 "Qualified
/// Name"): `nameAlg` ‖ SHA-256(parent's qualified name ‖ the object's name). A hierarchy's
/// qualified name is its handle, so a primary key of the owner hierarchy has
/// `sha256_qualified_name(&rh::OWNER.to_be_bytes(), &name)`.
pub fn sha256_qualified_name(parent_qualified_name: &[u8], name: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(parent_qualified_name);
    h.update(name);
    let mut qualified = alg::SHA256.to_be_bytes().to_vec();
    qualified.extend_from_slice(&h.finalize());
    qualified
}

#[cfg(test)]
mod tests;
