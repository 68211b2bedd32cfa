// SPDX-License-Identifier: Apache-2.0
//! The TPM 2.0 structures thimble's commands carry (TPM 2.0 Library Part 2), each with its
//! [`Marshal`] pair: PCR selections and digests (§10), clock info (§10.11), tagged properties
//! (§10.8), the public areas of NV indices (§13.5) and of RSA keys (§12.2), signing schemes and
//! signatures (§11), and the password session's authorization structures (§10.13).
//!
//! Only the variants thimble meets are decoded (RSA keys, RSASSA/RSAPSS/ECDSA signatures, the
//! TPM properties capability); anything else is kept as bytes or refused with a [`Malformed`]
//! that names the field, never guessed at. No I/O.

use serde::Serialize;

use super::wire::{Malformed, Marshal, MarshalError, TpmReader, TpmWriter};
use super::{alg, rh, tpma_session};

/// Upper bound on `TPML_PCR_SELECTION.count`: a TPM has one entry per PCR bank, and the
/// reference implementation's `HASH_COUNT` is far below this.
pub const MAX_PCR_SELECTIONS: u32 = 16;

/// `TPML_DIGEST` holds at most 8 digests (Part 2 §10.9.2), which is why `TPM2_PCR_Read` is
/// repeated for more PCRs.
pub const MAX_DIGESTS: u32 = 8;

/// Upper bound on the properties in one `TPM2_GetCapability` answer; real TPMs send far fewer.
pub const MAX_TPM_PROPERTIES: u32 = 64;

/// Number of PCRs in a bank on the TPMs thimble talks to (`IMPLEMENTATION_PCR`).
pub const PCR_COUNT: u32 = 24;
/// Bytes of a PCR bitmap that covers [`PCR_COUNT`] PCRs (`PCR_SELECT_MIN`).
pub const PCR_SELECT_LEN: usize = 3;

/// `TPMS_CLOCK_INFO` (Part 2 §10.11.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClockInfo {
    /// Milliseconds the TPM has been running (since its last clear).
    pub clock: u64,
    /// `resetCount`: TPM Resets since the last `TPM2_Clear`.
    pub reset_count: u32,
    /// `restartCount`: TPM Restarts and Resumes since the last TPM Reset.
    pub restart_count: u32,
    /// `safe`: `clock` has not gone backwards since it was last reported.
    pub safe: bool,
}

impl Marshal for ClockInfo {
    const NAME: &'static str = "TPMS_CLOCK_INFO";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.u64(self.clock)
            .u32(self.reset_count)
            .u32(self.restart_count)
            .u8(u8::from(self.safe));
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(ClockInfo {
            clock: r.u64("clockInfo.clock")?,
            reset_count: r.u32("clockInfo.resetCount")?,
            restart_count: r.u32("clockInfo.restartCount")?,
            // TPMI_YES_NO: any non-zero byte is read as yes, as the TPMS_ATTEST parser always did.
            safe: r.u8("clockInfo.safe")? != 0,
        })
    }
}

/// `TPMS_PCR_SELECTION` (Part 2 §10.6.2): a bank and a bitmap (bit `i` of byte `j` selects PCR
/// `8j + i`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrSelection {
    /// The bank's hash algorithm (`TPM_ALG_ID`).
    pub hash: u16,
    /// `pcrSelect`, the bitmap (its length is `sizeofSelect`).
    pub select: Vec<u8>,
}

impl PcrSelection {
    /// The SHA-256 bank with `pcrs` selected, in a [`PCR_SELECT_LEN`]-byte bitmap.
    pub fn sha256(pcrs: &[u32]) -> Result<PcrSelection, MarshalError> {
        let mut select = vec![0u8; PCR_SELECT_LEN];
        for &pcr in pcrs {
            if pcr >= PCR_COUNT {
                return Err(MarshalError::PcrIndex { index: pcr });
            }
            select[(pcr / 8) as usize] |= 1 << (pcr % 8);
        }
        Ok(PcrSelection {
            hash: alg::SHA256,
            select,
        })
    }

    /// The selected PCR indices, ascending: the order the TPM concatenates them in.
    pub fn indices(&self) -> Vec<u32> {
        let mut out = Vec::new();
        for (j, byte) in self.select.iter().enumerate() {
            for i in 0..8u32 {
                if byte & (1 << i) != 0 {
                    out.push(j as u32 * 8 + i);
                }
            }
        }
        out
    }
}

impl Marshal for PcrSelection {
    const NAME: &'static str = "TPMS_PCR_SELECTION";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        let size = u8::try_from(self.select.len()).map_err(|_| MarshalError::TooLarge {
            what: "pcrSelections.sizeofSelect",
            len: self.select.len(),
            max: usize::from(u8::MAX),
        })?;
        w.u16(self.hash).u8(size).bytes(&self.select);
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        let hash = r.u16("pcrSelections.hash")?;
        let size = r.u8("pcrSelections.sizeofSelect")?;
        let select = r.take(usize::from(size), "pcrSelections.pcrSelect")?;
        Ok(PcrSelection {
            hash,
            select: select.to_vec(),
        })
    }
}

/// `TPML_PCR_SELECTION` (Part 2 §10.9.7).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TpmlPcrSelection {
    /// The selections, one per bank (at most [`MAX_PCR_SELECTIONS`]).
    pub pcr_selections: Vec<PcrSelection>,
}

impl TpmlPcrSelection {
    /// One selection, of the SHA-256 bank (empty `pcrs` selects nothing). PCR indices must be
    /// below 24.
    pub fn sha256(pcrs: &[u32]) -> Result<TpmlPcrSelection, MarshalError> {
        Ok(TpmlPcrSelection {
            pcr_selections: vec![PcrSelection::sha256(pcrs)?],
        })
    }
}

impl Marshal for TpmlPcrSelection {
    const NAME: &'static str = "TPML_PCR_SELECTION";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.count(Self::NAME, self.pcr_selections.len(), MAX_PCR_SELECTIONS)?;
        for s in &self.pcr_selections {
            w.marshal(s)?;
        }
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        let count = r.count(Self::NAME, MAX_PCR_SELECTIONS)?;
        let mut pcr_selections = Vec::with_capacity(count as usize);
        for _ in 0..count {
            pcr_selections.push(r.unmarshal()?);
        }
        Ok(TpmlPcrSelection { pcr_selections })
    }
}

/// `TPML_DIGEST` (Part 2 §10.9.2): the PCR values `TPM2_PCR_Read` returns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TpmlDigest {
    /// The digests, in order (at most [`MAX_DIGESTS`]).
    pub digests: Vec<Vec<u8>>,
}

impl Marshal for TpmlDigest {
    const NAME: &'static str = "TPML_DIGEST";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.count(Self::NAME, self.digests.len(), MAX_DIGESTS)?;
        for d in &self.digests {
            w.tpm2b("digests", d)?;
        }
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        let count = r.count(Self::NAME, MAX_DIGESTS)?;
        let mut digests = Vec::with_capacity(count as usize);
        for _ in 0..count {
            digests.push(r.tpm2b("digests")?.to_vec());
        }
        Ok(TpmlDigest { digests })
    }
}

/// `TPMS_TAGGED_PROPERTY` (Part 2 §10.8.2): a `TPM_PT` and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TpmsTaggedProperty {
    /// The property (`TPM_PT`, [`pt`](super::pt)).
    pub property: u32,
    /// Its value.
    pub value: u32,
}

impl Marshal for TpmsTaggedProperty {
    const NAME: &'static str = "TPMS_TAGGED_PROPERTY";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.u32(self.property).u32(self.value);
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(TpmsTaggedProperty {
            property: r.u32("property")?,
            value: r.u32("value")?,
        })
    }
}

/// `TPMS_NV_PUBLIC` (Part 2 §13.5): what an NV index is. Its name is `nameAlg` ‖ the hash of
/// this structure marshalled ([`super::sha256_name`] for SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmsNvPublic {
    /// `nvIndex`: the index's handle.
    pub nv_index: u32,
    /// `nameAlg`: the hash of the index's name.
    pub name_alg: u16,
    /// `TPMA_NV` bits ([`super::tpma_nv`]).
    pub attributes: u32,
    /// `authPolicy`: the policy digest that may authorize access (empty for none).
    pub auth_policy: Vec<u8>,
    /// `dataSize`: the index's size in bytes.
    pub data_size: u16,
}

impl Marshal for TpmsNvPublic {
    const NAME: &'static str = "TPMS_NV_PUBLIC";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.u32(self.nv_index).u16(self.name_alg).u32(self.attributes);
        w.tpm2b("authPolicy", &self.auth_policy)?;
        w.u16(self.data_size);
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(TpmsNvPublic {
            nv_index: r.u32("nvIndex")?,
            name_alg: r.u16("nameAlg")?,
            attributes: r.u32("attributes")?,
            auth_policy: r.tpm2b("authPolicy")?.to_vec(),
            data_size: r.u16("dataSize")?,
        })
    }
}

/// `TPMT_SYM_DEF_OBJECT` (Part 2 §11.1.7): `keyBits` and `mode` follow only a non-null
/// algorithm; for `TPM_ALG_NULL` they are 0 here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TpmtSymDefObject {
    /// The symmetric algorithm (`TPM_ALG_NULL` for none).
    pub algorithm: u16,
    /// `keyBits`; 0 for `TPM_ALG_NULL`.
    pub key_bits: u16,
    /// `mode`; 0 for `TPM_ALG_NULL`.
    pub mode: u16,
}

impl TpmtSymDefObject {
    /// No symmetric algorithm: what a signing key has.
    pub const NULL: TpmtSymDefObject = TpmtSymDefObject {
        algorithm: alg::NULL,
        key_bits: 0,
        mode: 0,
    };
}

impl Marshal for TpmtSymDefObject {
    const NAME: &'static str = "TPMT_SYM_DEF_OBJECT";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.u16(self.algorithm);
        if self.algorithm != alg::NULL {
            w.u16(self.key_bits).u16(self.mode);
        }
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        let algorithm = r.u16("symmetric.algorithm")?;
        if algorithm == alg::NULL {
            return Ok(Self::NULL);
        }
        Ok(TpmtSymDefObject {
            algorithm,
            key_bits: r.u16("symmetric.keyBits")?,
            mode: r.u16("symmetric.mode")?,
        })
    }
}

/// `TPMT_SIG_SCHEME` (Part 2 §11.2.1.5), and `TPMT_RSA_SCHEME` (§11.2.4.2), which has the same
/// layout for the signing schemes: the scheme, then its hash unless the scheme is
/// `TPM_ALG_NULL` (then `hash_alg` is `TPM_ALG_NULL` here). Every signing scheme's details start
/// with the hash; only ECDAA adds a count, and thimble never meets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TpmtSigScheme {
    /// The scheme (`TPM_ALG_RSASSA`, …, or `TPM_ALG_NULL`).
    pub scheme: u16,
    /// The scheme's hash (`TPM_ALG_NULL` when the scheme is).
    pub hash_alg: u16,
}

impl TpmtSigScheme {
    /// `TPM_ALG_NULL`: the key's own scheme (what a restricted key insists on).
    pub const NULL: TpmtSigScheme = TpmtSigScheme {
        scheme: alg::NULL,
        hash_alg: alg::NULL,
    };

    /// RSASSA-PKCS1-v1_5 with SHA-256: the scheme of Azure's AK, and the only one
    /// `thimble-verify` checks quotes with.
    pub const RSASSA_SHA256: TpmtSigScheme = TpmtSigScheme {
        scheme: alg::RSASSA,
        hash_alg: alg::SHA256,
    };
}

impl Marshal for TpmtSigScheme {
    const NAME: &'static str = "TPMT_SIG_SCHEME";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.u16(self.scheme);
        if self.scheme != alg::NULL {
            w.u16(self.hash_alg);
        }
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        let scheme = r.u16("scheme.scheme")?;
        if scheme == alg::NULL {
            return Ok(Self::NULL);
        }
        Ok(TpmtSigScheme {
            scheme,
            hash_alg: r.u16("scheme.hashAlg")?,
        })
    }
}

/// `TPMS_RSA_PARMS` (Part 2 §12.2.3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TpmsRsaParms {
    /// `symmetric`: for a signing key, `TPM_ALG_NULL`.
    pub symmetric: TpmtSymDefObject,
    /// `scheme`: the key's signing scheme, or `TPM_ALG_NULL` for any.
    pub scheme: TpmtSigScheme,
    /// `keyBits`: the modulus size in bits.
    pub key_bits: u16,
    /// 0 stands for 65537.
    pub exponent: u32,
}

impl TpmsRsaParms {
    /// The public exponent big-endian without leading zeros, 0 read as 65537 (`01 00 01`).
    pub fn exponent_bytes(&self) -> Vec<u8> {
        let exponent = if self.exponent == 0 {
            65537
        } else {
            self.exponent
        };
        let bytes = exponent.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        bytes[skip..].to_vec()
    }
}

impl Marshal for TpmsRsaParms {
    const NAME: &'static str = "TPMS_RSA_PARMS";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.marshal(&self.symmetric)?
            .marshal(&self.scheme)?
            .u16(self.key_bits)
            .u32(self.exponent);
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(TpmsRsaParms {
            symmetric: r.unmarshal()?,
            scheme: r.unmarshal()?,
            key_bits: r.u16("keyBits")?,
            exponent: r.u32("exponent")?,
        })
    }
}

/// The type-dependent part of a `TPMT_PUBLIC`: `parameters` and `unique`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicDetail {
    /// `TPM_ALG_RSA`: `TPMS_RSA_PARMS` and the modulus (`TPM2B_PUBLIC_KEY_RSA`).
    Rsa {
        /// `parameters.rsaDetail`.
        parameters: TpmsRsaParms,
        /// `unique.rsa`: the modulus, big-endian (empty in a creation template).
        unique: Vec<u8>,
    },
    /// Any other type, with `parameters` and `unique` as marshalled: the rest of the
    /// `TPM2B_PUBLIC` that carries it.
    Undecoded {
        /// The `type` field (`TPMI_ALG_PUBLIC`).
        object_type: u16,
        /// The bytes after `authPolicy`.
        rest: Vec<u8>,
    },
}

/// `TPMT_PUBLIC` (Part 2 §12.2.4): the public area of a key. RSA keys are decoded; other types
/// keep their parameters as bytes, so a `TPMT_PUBLIC` must be all of the buffer it is read from
/// (it always travels in a `TPM2B_PUBLIC`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmtPublic {
    /// `nameAlg`: the hash of the key's name.
    pub name_alg: u16,
    /// `TPMA_OBJECT` bits ([`super::tpma_object`]).
    pub object_attributes: u32,
    /// `authPolicy`: the policy digest for the key's ADMIN role and policy sessions.
    pub auth_policy: Vec<u8>,
    /// The type and the type-dependent `parameters` and `unique`.
    pub detail: PublicDetail,
}

impl TpmtPublic {
    /// The public area of an RSA signing key with SHA-256 names, no policy, no symmetric
    /// algorithm and the default exponent (65537): the shape of an attestation key. `modulus`
    /// is empty in a creation template (the TPM fills it in).
    pub fn rsa_signing_key(
        object_attributes: u32,
        scheme: TpmtSigScheme,
        key_bits: u16,
        modulus: Vec<u8>,
    ) -> TpmtPublic {
        TpmtPublic {
            name_alg: alg::SHA256,
            object_attributes,
            auth_policy: Vec::new(),
            detail: PublicDetail::Rsa {
                parameters: TpmsRsaParms {
                    symmetric: TpmtSymDefObject::NULL,
                    scheme,
                    key_bits,
                    exponent: 0,
                },
                unique: modulus,
            },
        }
    }

    /// The `type` field (`TPMI_ALG_PUBLIC`).
    pub fn object_type(&self) -> u16 {
        match &self.detail {
            PublicDetail::Rsa { .. } => alg::RSA,
            PublicDetail::Undecoded { object_type, .. } => *object_type,
        }
    }
}

impl Marshal for TpmtPublic {
    const NAME: &'static str = "TPMT_PUBLIC";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.u16(self.object_type())
            .u16(self.name_alg)
            .u32(self.object_attributes);
        w.tpm2b("authPolicy", &self.auth_policy)?;
        match &self.detail {
            PublicDetail::Rsa { parameters, unique } => {
                w.marshal(parameters)?.tpm2b("unique.rsa", unique)?;
            }
            PublicDetail::Undecoded { rest, .. } => {
                w.bytes(rest);
            }
        }
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        let object_type = r.u16("type")?;
        let name_alg = r.u16("nameAlg")?;
        let object_attributes = r.u32("objectAttributes")?;
        let auth_policy = r.tpm2b("authPolicy")?.to_vec();
        let detail = if object_type == alg::RSA {
            PublicDetail::Rsa {
                parameters: r.unmarshal()?,
                unique: r.tpm2b("unique.rsa")?.to_vec(),
            }
        } else {
            PublicDetail::Undecoded {
                object_type,
                rest: r.rest().to_vec(),
            }
        };
        Ok(TpmtPublic {
            name_alg,
            object_attributes,
            auth_policy,
            detail,
        })
    }
}

/// `TPMT_SIGNATURE` (Part 2 §11.3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TpmtSignature {
    /// `TPMS_SIGNATURE_RSASSA`: PKCS#1 v1.5.
    Rsassa {
        /// The digest's `TPM_ALG_ID`.
        hash: u16,
        /// The signature, big-endian, as long as the modulus.
        sig: Vec<u8>,
    },
    /// `TPMS_SIGNATURE_RSAPSS`.
    Rsapss {
        /// The digest's `TPM_ALG_ID`.
        hash: u16,
        /// The signature, big-endian, as long as the modulus.
        sig: Vec<u8>,
    },
    /// `TPMS_SIGNATURE_ECDSA`.
    Ecdsa {
        /// The digest's `TPM_ALG_ID`.
        hash: u16,
        /// `r`, big-endian.
        signature_r: Vec<u8>,
        /// `s`, big-endian.
        signature_s: Vec<u8>,
    },
    /// `TPM_ALG_NULL`: no signature.
    Null,
    /// Another algorithm, whose layout is not decoded: the rest of the buffer. A
    /// `TPMT_SIGNATURE` is the last parameter of every response thimble reads one from.
    Undecoded {
        /// The `sigAlg` field.
        sig_alg: u16,
        /// The bytes after it.
        rest: Vec<u8>,
    },
}

impl TpmtSignature {
    /// The `sigAlg` field.
    pub fn sig_alg(&self) -> u16 {
        match self {
            Self::Rsassa { .. } => alg::RSASSA,
            Self::Rsapss { .. } => alg::RSAPSS,
            Self::Ecdsa { .. } => alg::ECDSA,
            Self::Null => alg::NULL,
            Self::Undecoded { sig_alg, .. } => *sig_alg,
        }
    }
}

impl Marshal for TpmtSignature {
    const NAME: &'static str = "TPMT_SIGNATURE";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.u16(self.sig_alg());
        match self {
            Self::Rsassa { hash, sig } | Self::Rsapss { hash, sig } => {
                w.u16(*hash).tpm2b("signature.sig", sig)?;
            }
            Self::Ecdsa {
                hash,
                signature_r,
                signature_s,
            } => {
                w.u16(*hash)
                    .tpm2b("signature.signatureR", signature_r)?
                    .tpm2b("signature.signatureS", signature_s)?;
            }
            Self::Null => {}
            Self::Undecoded { rest, .. } => {
                w.bytes(rest);
            }
        }
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        let sig_alg = r.u16("signature.sigAlg")?;
        Ok(match sig_alg {
            alg::RSASSA => Self::Rsassa {
                hash: r.u16("signature.hash")?,
                sig: r.tpm2b("signature.sig")?.to_vec(),
            },
            alg::RSAPSS => Self::Rsapss {
                hash: r.u16("signature.hash")?,
                sig: r.tpm2b("signature.sig")?.to_vec(),
            },
            alg::ECDSA => Self::Ecdsa {
                hash: r.u16("signature.hash")?,
                signature_r: r.tpm2b("signature.signatureR")?.to_vec(),
                signature_s: r.tpm2b("signature.signatureS")?.to_vec(),
            },
            alg::NULL => Self::Null,
            _ => Self::Undecoded {
                sig_alg,
                rest: r.rest().to_vec(),
            },
        })
    }
}

/// `TPMS_AUTH_COMMAND` (Part 2 §10.13.2): one session of a command's authorization area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmsAuthCommand {
    /// `sessionHandle`: [`TPM_RS_PW`](super::rh::PW) for a password session.
    pub session_handle: u32,
    /// `nonce`: the caller's nonce (empty for a password session).
    pub nonce: Vec<u8>,
    /// `TPMA_SESSION` bits ([`tpma_session`]).
    pub session_attributes: u8,
    /// `hmac`: the HMAC, or the password of a password session.
    pub hmac: Vec<u8>,
}

impl TpmsAuthCommand {
    /// A password authorization (Part 1 "Password Authorizations"): `TPM_RS_PW`, an empty
    /// nonce, no attributes, and the password where the HMAC would be.
    pub fn password(password: &[u8]) -> TpmsAuthCommand {
        TpmsAuthCommand {
            session_handle: rh::PW,
            nonce: Vec::new(),
            session_attributes: 0,
            hmac: password.to_vec(),
        }
    }
}

impl Marshal for TpmsAuthCommand {
    const NAME: &'static str = "TPMS_AUTH_COMMAND";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.u32(self.session_handle);
        w.tpm2b("nonce", &self.nonce)?;
        w.u8(self.session_attributes);
        w.tpm2b("session password", &self.hmac)?;
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(TpmsAuthCommand {
            session_handle: r.u32("sessionHandle")?,
            nonce: r.tpm2b("nonce")?.to_vec(),
            session_attributes: r.u8("sessionAttributes")?,
            hmac: r.tpm2b("hmac")?.to_vec(),
        })
    }
}

/// `TPMS_AUTH_RESPONSE` (Part 2 §10.13.3): one session of a response's authorization area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmsAuthResponse {
    /// `nonce`: the TPM's nonce (empty for a password session).
    pub nonce: Vec<u8>,
    /// `sessionAttributes`: `TPMA_SESSION` bits ([`tpma_session`]).
    pub session_attributes: u8,
    /// `hmac`: the response HMAC (empty for a password session).
    pub hmac: Vec<u8>,
}

impl TpmsAuthResponse {
    /// A TPM's answer to a password authorization: empty nonce and HMAC, `continueSession` set
    /// (a password session never ends).
    pub fn password() -> TpmsAuthResponse {
        TpmsAuthResponse {
            nonce: Vec::new(),
            session_attributes: tpma_session::CONTINUE_SESSION,
            hmac: Vec::new(),
        }
    }
}

impl Marshal for TpmsAuthResponse {
    const NAME: &'static str = "TPMS_AUTH_RESPONSE";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.tpm2b("session nonce", &self.nonce)?;
        w.u8(self.session_attributes);
        w.tpm2b("session hmac", &self.hmac)?;
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(TpmsAuthResponse {
            nonce: r.tpm2b("session nonce")?.to_vec(),
            session_attributes: r.u8("session attributes")?,
            hmac: r.tpm2b("session hmac")?.to_vec(),
        })
    }
}
