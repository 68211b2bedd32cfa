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
//! - The commands of Azure's guest attestation flow:
//!   `TPM2_StartAuthSession`, `TPM2_PolicyPCR`, `TPM2_CreatePrimary`, `TPM2_Certify`,
//!   `TPM2_RSA_Decrypt`, `TPM2_FlushContext`, the certification's `TPMS_ATTEST`, and the
//!   `PolicyPCR` policy digest.
//! - [`rc`]: response codes, decoded into names and positions.
//! - The constants: command codes, tags, handles, algorithms, `TPMA_NV`, `TPMA_OBJECT`.
//!
//! Pure: bytes in, values out, and back. Transports, retries, chunking and what a response
//! means for Azure are the client's (`thimble_collect::vtpm`); what a TPM does with a command is
//! the fake's. Everything a TPM sends is hostile input to this module: every length is checked
//! before it is used, and nothing here panics on input.

mod commands;
mod frame;
mod keys;
pub mod rc;
mod structures;
mod wire;

use crate::digest::Sha256;

pub use commands::{
    GetCapabilityCommand, GetCapabilityResponse, NvDefineSpaceCommand, NvReadCommand,
    NvReadPublicResponse, NvReadResponse, NvWriteCommand, PcrReadCommand, PcrReadResponse,
    QuoteCommand, QuoteResponse, ReadPublicResponse,
};
pub use frame::{
    Command, CommandError, Header, ResponseBody, ResponseError, command_code, declared_size,
    decode_response, encode_command, encode_error_response, encode_response,
};
pub use keys::{
    CertifyAttest, CertifyCommand, CertifyResponse, CreatePrimaryCommand, CreatePrimaryResponse,
    EPHEMERAL_KEY_ATTRIBUTES, FlushContextCommand, MAX_RSA_BLOCK, PolicyPcrCommand,
    RsaDecryptCommand, RsaDecryptResponse, RsaDecryptScheme, SE_POLICY, SE_TRIAL,
    ST_ATTEST_CERTIFY, ST_CREATION, StartAuthSessionCommand, StartAuthSessionResponse, TkCreation,
    ephemeral_key_template, policy_pcr_digest, sha256_pcr_digest,
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
    /// `TPM_CC_EvictControl`: make a key persistent, or evict a persistent one.
    pub const EVICT_CONTROL: u32 = 0x0000_0120;
    /// `TPM_CC_NV_UndefineSpace`: delete an NV index.
    pub const NV_UNDEFINE_SPACE: u32 = 0x0000_0122;
    /// `TPM_CC_NV_DefineSpace`: create an NV index.
    pub const NV_DEFINE_SPACE: u32 = 0x0000_012A;
    /// `TPM_CC_CreatePrimary`: create a primary key under a hierarchy.
    pub const CREATE_PRIMARY: u32 = 0x0000_0131;
    /// `TPM_CC_NV_Write`: write bytes of an NV index.
    pub const NV_WRITE: u32 = 0x0000_0137;
    /// `TPM_CC_Certify`: sign that an object is loaded in the TPM.
    pub const CERTIFY: u32 = 0x0000_0148;
    /// `TPM_CC_NV_Read`: read bytes of an NV index.
    pub const NV_READ: u32 = 0x0000_014E;
    /// `TPM_CC_Quote`: sign a `TPMS_ATTEST` over PCR values and qualifying data.
    pub const QUOTE: u32 = 0x0000_0158;
    /// `TPM_CC_RSA_Decrypt`: decrypt with a loaded RSA key.
    pub const RSA_DECRYPT: u32 = 0x0000_0159;
    /// `TPM_CC_FlushContext`: unload a transient object or end a session.
    pub const FLUSH_CONTEXT: u32 = 0x0000_0165;
    /// `TPM_CC_NV_ReadPublic`: an NV index's public area and name.
    pub const NV_READ_PUBLIC: u32 = 0x0000_0169;
    /// `TPM_CC_ReadPublic`: a loaded object's public area and names.
    pub const READ_PUBLIC: u32 = 0x0000_0173;
    /// `TPM_CC_StartAuthSession`: start an HMAC, policy or trial session.
    pub const START_AUTH_SESSION: u32 = 0x0000_0176;
    /// `TPM_CC_GetCapability`: TPM properties and other capabilities.
    pub const GET_CAPABILITY: u32 = 0x0000_017A;
    /// `TPM_CC_PCR_Read`: PCR values.
    pub const PCR_READ: u32 = 0x0000_017E;
    /// `TPM_CC_PolicyPCR`: bind a policy session to PCR values.
    pub const POLICY_PCR: u32 = 0x0000_017F;
    /// `TPM_CC_PCR_Extend`: extend a PCR.
    pub const PCR_EXTEND: u32 = 0x0000_0182;
}

/// Structure tags (Part 2 §6.9, `TPM_ST`).
pub mod st {
    /// `TPM_ST_NO_SESSIONS`: a command or response without an authorization area.
    pub const NO_SESSIONS: u16 = 0x8001;
    /// `TPM_ST_SESSIONS`: a command or response with an authorization area.
    pub const SESSIONS: u16 = 0x8002;
    /// The `type` of a quote's `TPMS_ATTEST`.
    pub const ATTEST_QUOTE: u16 = 0x8018;
}

/// Permanent handles (Part 2 §7.4, `TPM_RH` / `TPM_RS`).
pub mod rh {
    /// `TPM_RH_OWNER`: the owner (storage) hierarchy.
    pub const OWNER: u32 = 0x4000_0001;
    /// `TPM_RH_ENDORSEMENT`: the endorsement hierarchy.
    pub const ENDORSEMENT: u32 = 0x4000_000B;
    /// `TPM_RH_NULL`: no hierarchy or handle.
    pub const NULL: u32 = 0x4000_0007;
    /// `TPM_RS_PW`: the password session.
    pub const PW: u32 = 0x4000_0009;
    /// `TPM_RH_PLATFORM`: the platform hierarchy.
    pub const PLATFORM: u32 = 0x4000_000C;
}

/// Handle types (Part 2 §7.2, `TPM_HT`): the top byte of a handle.
pub mod ht {
    /// `TPM_HT_NV_INDEX`.
    pub const NV_INDEX: u8 = 0x01;
    /// `TPM_HT_POLICY_SESSION`: policy sessions.
    pub const POLICY_SESSION: u8 = 0x03;
    /// `TPM_HT_TRANSIENT`: loaded objects.
    pub const TRANSIENT: u8 = 0x80;
    /// `TPM_HT_PERSISTENT`: persistent objects (keys).
    pub const PERSISTENT: u8 = 0x81;
}

/// Algorithm identifiers (TCG Algorithm Registry, `TPM_ALG`).
pub mod alg {
    /// `TPM_ALG_RSA`.
    pub const RSA: u16 = 0x0001;
    /// `TPM_ALG_SHA256`.
    pub const SHA256: u16 = 0x000B;
    /// `TPM_ALG_NULL`: no algorithm (for example, no scheme).
    pub const NULL: u16 = 0x0010;
    /// `TPM_ALG_RSASSA`: RSASSA-PKCS1-v1_5 signatures.
    pub const RSASSA: u16 = 0x0014;
    /// `TPM_ALG_RSAES`: RSAES-PKCS1-v1_5 encryption.
    pub const RSAES: u16 = 0x0015;
    /// `TPM_ALG_RSAPSS`: RSASSA-PSS signatures.
    pub const RSAPSS: u16 = 0x0016;
    /// `TPM_ALG_OAEP`: RSAES-OAEP encryption.
    pub const OAEP: u16 = 0x0017;
    /// `TPM_ALG_ECDSA`.
    pub const ECDSA: u16 = 0x0018;
}

/// `TPMA_NV` bits (Part 2 §13.4).
pub mod tpma_nv {
    /// `TPMA_NV_PPWRITE`: platform authorization may write the index.
    pub const PPWRITE: u32 = 1 << 0;
    /// `TPMA_NV_OWNERWRITE`: owner authorization may write the index.
    pub const OWNERWRITE: u32 = 1 << 1;
    /// `TPMA_NV_AUTHWRITE`: the index's authValue may authorize writes.
    pub const AUTHWRITE: u32 = 1 << 2;
    /// `TPMA_NV_POLICYWRITE`: the index's authPolicy may authorize writes.
    pub const POLICYWRITE: u32 = 1 << 3;
    /// `TPMA_NV_PPREAD`: platform authorization may read the index.
    pub const PPREAD: u32 = 1 << 16;
    /// `TPMA_NV_OWNERREAD`: owner authorization may read the index.
    pub const OWNERREAD: u32 = 1 << 17;
    /// `TPMA_NV_AUTHREAD`: the index's authValue may authorize reads.
    pub const AUTHREAD: u32 = 1 << 18;
    /// `TPMA_NV_POLICYREAD`: the index's authPolicy may authorize reads.
    pub const POLICYREAD: u32 = 1 << 19;
    /// `TPMA_NV_NO_DA`: failed authorizations do not count toward dictionary-attack lockout.
    pub const NO_DA: u32 = 1 << 25;
    /// `TPMA_NV_WRITTEN`: the index has been written since it was defined.
    pub const WRITTEN: u32 = 1 << 29;
    /// `TPMA_NV_PLATFORMCREATE`: the index was defined with platform authorization.
    pub const PLATFORMCREATE: u32 = 1 << 30;
}

/// `TPMA_OBJECT` bits (Part 2 §8.3).
pub mod tpma_object {
    /// `fixedTPM`: the object cannot be duplicated to another TPM.
    pub const FIXED_TPM: u32 = 1 << 1;
    /// `stClear`: saved contexts of the object do not survive a TPM Restart.
    pub const ST_CLEAR: u32 = 1 << 2;
    /// `fixedParent`: the object's parent cannot change.
    pub const FIXED_PARENT: u32 = 1 << 4;
    /// `sensitiveDataOrigin`: the TPM generated the object's secret.
    pub const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
    /// `userWithAuth`: the object's authValue may authorize its USER role.
    pub const USER_WITH_AUTH: u32 = 1 << 6;
    /// `adminWithPolicy`: its ADMIN role needs a policy session.
    pub const ADMIN_WITH_POLICY: u32 = 1 << 7;
    /// `noDA`: not subject to dictionary-attack protection.
    pub const NO_DA: u32 = 1 << 10;
    /// `encryptedDuplication`: duplication needs an inner wrapper.
    pub const ENCRYPTED_DUPLICATION: u32 = 1 << 11;
    /// `restricted`: a signing key signs only digests the TPM made itself, so never outside data
    /// that starts with [`TPM_GENERATED_VALUE`](super::TPM_GENERATED_VALUE).
    pub const RESTRICTED: u32 = 1 << 16;
    /// `decrypt`: a decryption key.
    pub const DECRYPT: u32 = 1 << 17;
    /// `sign`: a signing key (`encrypt` for a symmetric key).
    pub const SIGN_ENCRYPT: u32 = 1 << 18;
}

/// `TPMA_SESSION` bits (Part 2 §8.4).
pub mod tpma_session {
    /// `continueSession`: the session stays open after the command.
    pub const CONTINUE_SESSION: u8 = 1 << 0;
}

/// Capabilities (Part 2 §6.12, `TPM_CAP`).
pub mod cap {
    /// `TPM_CAP_TPM_PROPERTIES`: `TPM_PT` properties.
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
        cc::CERTIFY => "TPM2_Certify",
        cc::RSA_DECRYPT => "TPM2_RSA_Decrypt",
        cc::FLUSH_CONTEXT => "TPM2_FlushContext",
        cc::START_AUTH_SESSION => "TPM2_StartAuthSession",
        cc::POLICY_PCR => "TPM2_PolicyPCR",
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
        cc::GET_CAPABILITY | cc::PCR_READ | cc::FLUSH_CONTEXT => Some(0),
        cc::NV_READ_PUBLIC
        | cc::READ_PUBLIC
        | cc::QUOTE
        | cc::NV_DEFINE_SPACE
        | cc::CREATE_PRIMARY
        | cc::PCR_EXTEND
        | cc::POLICY_PCR
        | cc::RSA_DECRYPT => Some(1),
        cc::NV_READ
        | cc::NV_WRITE
        | cc::NV_UNDEFINE_SPACE
        | cc::EVICT_CONTROL
        | cc::CERTIFY
        | cc::START_AUTH_SESSION => Some(2),
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
