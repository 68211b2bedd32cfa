// SPDX-License-Identifier: Apache-2.0
//! The parameter areas of the commands behind Azure's guest attestation flow (TPM 2.0 Library
//! Part 3), each with its [`Marshal`] pair like the rest of the codec: a policy session
//! (`TPM2_StartAuthSession`, `TPM2_PolicyPCR`), the ephemeral decryption key
//! (`TPM2_CreatePrimary`, `TPM2_Certify`, `TPM2_RSA_Decrypt`) and `TPM2_FlushContext`; the
//! `TPMS_ATTEST` of a certification ([`CertifyAttest`]); and the policy digest a `PolicyPCR`
//! leaves in a session ([`policy_pcr_digest`]), which the key's `authPolicy` must equal for the
//! TPM to let a policy session use it.
//!
//! Microsoft's C++ client (Azure/confidential-computing-cvm-guest-attestation,
//! `LinuxTpm/lib/Tss2Util.cpp` `CreateEphemeralKey`, `Tss2Wrapper.cpp` `DecryptWithEphemeralKey`)
//! is the model for what is sent: [`ephemeral_key_template`] is its template. Responses keep the
//! bytes that a signature or a name covers (`TPMT_PUBLIC`, `TPMS_ATTEST`) as received. No I/O.

use crate::digest::Sha256;

use super::structures::{
    ClockInfo, PublicDetail, TpmlPcrSelection, TpmsRsaParms, TpmtPublic, TpmtSigScheme,
    TpmtSignature, TpmtSymDefObject,
};
use super::wire::{Malformed, Marshal, MarshalError, TpmReader, TpmWriter};
use super::{TPM_GENERATED_VALUE, alg, cc, tpma_object};

/// `TPM_SE_POLICY` (Part 2 §6.11): a policy session.
pub const SE_POLICY: u8 = 0x01;
/// `TPM_SE_TRIAL` (Part 2 §6.11): a session that only computes a policy digest.
pub const SE_TRIAL: u8 = 0x03;

/// `TPM_ST_ATTEST_CERTIFY` (Part 2 §6.9): the `type` of a `TPM2_Certify` `TPMS_ATTEST`.
pub const ST_ATTEST_CERTIFY: u16 = 0x8017;
/// `TPM_ST_CREATION` (Part 2 §6.9): the tag of a creation ticket.
pub const ST_CREATION: u16 = 0x8021;

/// The most bytes of a ciphertext `TPM2_RSA_Decrypt` takes here: an RSA-2048 block
/// (`MAX_RSA_KEY_BYTES` of a TPM with RSA-2048 keys, what CGA checks before sending).
pub const MAX_RSA_BLOCK: usize = 256;

/// `TPM2_StartAuthSession` command parameters (Part 3 §11.1). Handles: `tpmKey` and `bind`,
/// both `TPM_RH_NULL` for a session neither salted nor bound; no sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartAuthSessionCommand {
    /// `nonceCaller`: at least 16 bytes and at most the session hash's size.
    pub nonce_caller: Vec<u8>,
    /// `encryptedSalt`: empty without a `tpmKey`.
    pub encrypted_salt: Vec<u8>,
    /// `sessionType` (`TPM_SE`): [`SE_POLICY`] or [`SE_TRIAL`].
    pub session_type: u8,
    /// `symmetric` (`TPMT_SYM_DEF`, the same layout as `TPMT_SYM_DEF_OBJECT` for the
    /// algorithms thimble names): `TPM_ALG_NULL` for no parameter encryption.
    pub symmetric: TpmtSymDefObject,
    /// `authHash`: the session's hash, `TPM_ALG_SHA256` here.
    pub auth_hash: u16,
}

impl Marshal for StartAuthSessionCommand {
    const NAME: &'static str = "StartAuthSession command parameters";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.tpm2b("nonceCaller", &self.nonce_caller)?
            .tpm2b("encryptedSalt", &self.encrypted_salt)?
            .u8(self.session_type)
            .marshal(&self.symmetric)?
            .u16(self.auth_hash);
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(StartAuthSessionCommand {
            nonce_caller: r.tpm2b("nonceCaller")?.to_vec(),
            encrypted_salt: r.tpm2b("encryptedSalt")?.to_vec(),
            session_type: r.u8("sessionType")?,
            symmetric: r.unmarshal()?,
            auth_hash: r.u16("authHash")?,
        })
    }
}

/// `TPM2_StartAuthSession` response parameters; the session handle travels in the response
/// handle area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartAuthSessionResponse {
    /// `nonceTPM`.
    pub nonce_tpm: Vec<u8>,
}

impl Marshal for StartAuthSessionResponse {
    const NAME: &'static str = "StartAuthSession parameters";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.tpm2b("nonceTPM", &self.nonce_tpm)?;
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(StartAuthSessionResponse {
            nonce_tpm: r.tpm2b("nonceTPM")?.to_vec(),
        })
    }
}

/// `TPM2_PolicyPCR` command parameters (Part 3 §23.7). Handle: `policySession`; no sessions.
/// No response parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyPcrCommand {
    /// `pcrDigest`: the hash of the selected PCR values the policy expects (empty: the TPM
    /// takes the current values, which a policy session then no longer pins).
    pub pcr_digest: Vec<u8>,
    /// `pcrs`: the PCRs.
    pub pcrs: TpmlPcrSelection,
}

impl Marshal for PolicyPcrCommand {
    const NAME: &'static str = "PolicyPCR command parameters";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.tpm2b("pcrDigest", &self.pcr_digest)?
            .marshal(&self.pcrs)?;
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(PolicyPcrCommand {
            pcr_digest: r.tpm2b("pcrDigest")?.to_vec(),
            pcrs: r.unmarshal()?,
        })
    }
}

/// The SHA-256 policy digest after `TPM2_PolicyPCR` in a fresh session (Part 3 §23.7.1):
/// `SHA-256(0^32 ‖ TPM_CC_PolicyPCR ‖ pcrs ‖ pcrDigest)`, where `pcr_digest` is SHA-256 of the
/// selected PCR values concatenated in selection order. What a trial session would return; a
/// key whose `authPolicy` is this may be used only by a policy session that ran `PolicyPCR` over
/// the same PCRs holding the same values.
pub fn policy_pcr_digest(
    pcrs: &TpmlPcrSelection,
    pcr_digest: &[u8],
) -> Result<[u8; 32], MarshalError> {
    let mut h = Sha256::new();
    h.update([0u8; 32]);
    h.update(cc::POLICY_PCR.to_be_bytes());
    h.update(pcrs.to_bytes()?);
    h.update(pcr_digest);
    Ok(h.finalize())
}

/// SHA-256 of PCR values concatenated: the `pcrDigest` of `TPM2_PolicyPCR` and of a quote.
pub fn sha256_pcr_digest(values: &[[u8; 32]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for v in values {
        h.update(v);
    }
    h.finalize()
}

/// The public area of the ephemeral key of Azure's guest attestation, as CGA's
/// `PopulateEphemeralKeyPublicTemplate` builds it: RSA-2048 decryption key (`decrypt`,
/// `fixedTPM`, `fixedParent`, `sensitiveDataOrigin`, `noDA`; no `userWithAuth`, so that only a
/// policy session satisfying `auth_policy` can use it), SHA-256 names, no scheme (the caller of
/// `TPM2_RSA_Decrypt` names one), the default exponent, no symmetric algorithm, and, as CGA
/// leaves it, a `unique` of 256 zero bytes.
pub fn ephemeral_key_template(auth_policy: &[u8]) -> TpmtPublic {
    TpmtPublic {
        name_alg: alg::SHA256,
        object_attributes: EPHEMERAL_KEY_ATTRIBUTES,
        auth_policy: auth_policy.to_vec(),
        detail: PublicDetail::Rsa {
            parameters: TpmsRsaParms {
                symmetric: TpmtSymDefObject::NULL,
                scheme: TpmtSigScheme::NULL,
                key_bits: 2048,
                exponent: 0,
            },
            unique: vec![0; 256],
        },
    }
}

/// `TPMA_OBJECT` of [`ephemeral_key_template`].
pub const EPHEMERAL_KEY_ATTRIBUTES: u32 = tpma_object::DECRYPT
    | tpma_object::FIXED_TPM
    | tpma_object::FIXED_PARENT
    | tpma_object::SENSITIVE_DATA_ORIGIN
    | tpma_object::NO_DA;

/// `TPM2_CreatePrimary` command parameters (Part 3 §24.1). Handle: `primaryHandle` (a
/// hierarchy); one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatePrimaryCommand {
    /// `inSensitive.userAuth` (`TPM2B_AUTH`): the key's password.
    pub user_auth: Vec<u8>,
    /// `inSensitive.data` (`TPM2B_SENSITIVE_DATA`): empty for an asymmetric key.
    pub sensitive_data: Vec<u8>,
    /// `inPublic` (`TPM2B_PUBLIC`): the template.
    pub in_public: TpmtPublic,
    /// `outsideInfo` (`TPM2B_DATA`): copied into the creation data.
    pub outside_info: Vec<u8>,
    /// `creationPCR`: PCRs recorded in the creation data.
    pub creation_pcr: TpmlPcrSelection,
}

impl Marshal for CreatePrimaryCommand {
    const NAME: &'static str = "CreatePrimary command parameters";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        // TPM2B_SENSITIVE_CREATE: a size, then TPMS_SENSITIVE_CREATE.
        let mut sensitive = TpmWriter::new();
        sensitive
            .tpm2b("inSensitive.userAuth", &self.user_auth)?
            .tpm2b("inSensitive.data", &self.sensitive_data)?;
        w.tpm2b("inSensitive", sensitive.as_bytes())?
            .sized("inPublic", &self.in_public)?
            .tpm2b("outsideInfo", &self.outside_info)?
            .marshal(&self.creation_pcr)?;
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        let sensitive = r.tpm2b("inSensitive")?;
        let mut s = TpmReader::new(sensitive);
        let inner = |e| Malformed::Inner {
            what: "inSensitive",
            reason: Box::new(e),
        };
        let user_auth = s.tpm2b("inSensitive.userAuth").map_err(inner)?.to_vec();
        let sensitive_data = s.tpm2b("inSensitive.data").map_err(inner)?.to_vec();
        s.finish("TPMS_SENSITIVE_CREATE").map_err(inner)?;
        Ok(CreatePrimaryCommand {
            user_auth,
            sensitive_data,
            in_public: r.sized("inPublic")?,
            outside_info: r.tpm2b("outsideInfo")?.to_vec(),
            creation_pcr: r.unmarshal()?,
        })
    }
}

/// `TPMT_TK_CREATION` (Part 2 §10.7.3): the ticket that a key was created by this TPM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TkCreation {
    /// `tag`: [`ST_CREATION`].
    pub tag: u16,
    /// `hierarchy`: the hierarchy of the key (`TPM_RH_NULL` gives a null ticket).
    pub hierarchy: u32,
    /// `digest`: the ticket's HMAC (empty for a null ticket).
    pub digest: Vec<u8>,
}

impl Marshal for TkCreation {
    const NAME: &'static str = "TPMT_TK_CREATION";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.u16(self.tag)
            .u32(self.hierarchy)
            .tpm2b("creationTicket.digest", &self.digest)?;
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(TkCreation {
            tag: r.u16("creationTicket.tag")?,
            hierarchy: r.u32("creationTicket.hierarchy")?,
            digest: r.tpm2b("creationTicket.digest")?.to_vec(),
        })
    }
}

/// `TPM2_CreatePrimary` response parameters; the object handle travels in the response handle
/// area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatePrimaryResponse {
    /// The inside of `outPublic` (`TPM2B_PUBLIC`): the marshalled `TPMT_PUBLIC` as received,
    /// which `name` is the hash of.
    pub out_public: Vec<u8>,
    /// The inside of `creationData` (`TPM2B_CREATION_DATA`), as received (not decoded: nothing
    /// thimble does depends on it).
    pub creation_data: Vec<u8>,
    /// `creationHash` (`TPM2B_DIGEST`).
    pub creation_hash: Vec<u8>,
    /// `creationTicket`.
    pub creation_ticket: TkCreation,
    /// `name` (`TPM2B_NAME`).
    pub name: Vec<u8>,
}

impl Marshal for CreatePrimaryResponse {
    const NAME: &'static str = "CreatePrimary parameters";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.tpm2b("outPublic", &self.out_public)?
            .tpm2b("creationData", &self.creation_data)?
            .tpm2b("creationHash", &self.creation_hash)?
            .marshal(&self.creation_ticket)?
            .tpm2b("name", &self.name)?;
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(CreatePrimaryResponse {
            out_public: r.tpm2b("outPublic")?.to_vec(),
            creation_data: r.tpm2b("creationData")?.to_vec(),
            creation_hash: r.tpm2b("creationHash")?.to_vec(),
            creation_ticket: r.unmarshal()?,
            name: r.tpm2b("name")?.to_vec(),
        })
    }
}

/// `TPM2_Certify` command parameters (Part 3 §18.2). Handles: `objectHandle` (ADMIN role) and
/// `signHandle` (USER role); two sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifyCommand {
    /// `qualifyingData` (`TPM2B_DATA`): becomes the `extraData`.
    pub qualifying_data: Vec<u8>,
    /// `inScheme`: `TPM_ALG_NULL` for the signing key's own.
    pub in_scheme: TpmtSigScheme,
}

impl Marshal for CertifyCommand {
    const NAME: &'static str = "Certify command parameters";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.tpm2b("qualifyingData", &self.qualifying_data)?
            .marshal(&self.in_scheme)?;
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(CertifyCommand {
            qualifying_data: r.tpm2b("qualifyingData")?.to_vec(),
            in_scheme: r.unmarshal()?,
        })
    }
}

/// `TPM2_Certify` response parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifyResponse {
    /// The inside of `certifyInfo` (`TPM2B_ATTEST`): the marshalled `TPMS_ATTEST` the key
    /// signed, as received ([`CertifyAttest`] parses it).
    pub certify_info: Vec<u8>,
    /// The signature over `certify_info`.
    pub signature: TpmtSignature,
}

impl Marshal for CertifyResponse {
    const NAME: &'static str = "Certify parameters";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.tpm2b("certifyInfo", &self.certify_info)?
            .marshal(&self.signature)?;
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(CertifyResponse {
            certify_info: r.tpm2b("certifyInfo")?.to_vec(),
            signature: r.unmarshal()?,
        })
    }
}

/// The `TPMS_ATTEST` of a `TPM2_Certify` (Part 2 §10.12.12 with `TPMS_CERTIFY_INFO`,
/// §10.12.3): the signer says that an object with `name` is loaded in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifyAttest {
    /// `qualifiedSigner`: the signing key's qualified name.
    pub qualified_signer: Vec<u8>,
    /// `extraData`: the qualifying data.
    pub extra_data: Vec<u8>,
    /// `clockInfo`.
    pub clock_info: ClockInfo,
    /// `firmwareVersion`.
    pub firmware_version: u64,
    /// `attested.certify.name`: the certified object's name (`nameAlg` ‖ hash of its
    /// `TPMT_PUBLIC`).
    pub name: Vec<u8>,
    /// `attested.certify.qualifiedName`.
    pub qualified_name: Vec<u8>,
}

impl Marshal for CertifyAttest {
    const NAME: &'static str = "TPMS_ATTEST (certify)";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.u32(TPM_GENERATED_VALUE)
            .u16(ST_ATTEST_CERTIFY)
            .tpm2b("qualifiedSigner", &self.qualified_signer)?
            .tpm2b("extraData", &self.extra_data)?
            .marshal(&self.clock_info)?
            .u64(self.firmware_version)
            .tpm2b("certify.name", &self.name)?
            .tpm2b("certify.qualifiedName", &self.qualified_name)?;
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        let magic = r.u32("magic")?;
        if magic != TPM_GENERATED_VALUE {
            return Err(Malformed::Unexpected {
                what: "magic",
                found: u64::from(magic),
                expected: u64::from(TPM_GENERATED_VALUE),
            });
        }
        let attest_type = r.u16("type")?;
        if attest_type != ST_ATTEST_CERTIFY {
            return Err(Malformed::Unexpected {
                what: "type",
                found: u64::from(attest_type),
                expected: u64::from(ST_ATTEST_CERTIFY),
            });
        }
        Ok(CertifyAttest {
            qualified_signer: r.tpm2b("qualifiedSigner")?.to_vec(),
            extra_data: r.tpm2b("extraData")?.to_vec(),
            clock_info: r.unmarshal()?,
            firmware_version: r.u64("firmwareVersion")?,
            name: r.tpm2b("certify.name")?.to_vec(),
            qualified_name: r.tpm2b("certify.qualifiedName")?.to_vec(),
        })
    }
}

/// `TPMT_RSA_DECRYPT` (Part 2 §11.2.4.4): the padding `TPM2_RSA_Decrypt` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RsaDecryptScheme {
    /// `TPM_ALG_NULL`: the key's own scheme.
    Null,
    /// `TPM_ALG_RSAES`: RSAES-PKCS1-v1_5, no details. What CGA asks for ("MAA uses RSA-ES").
    Rsaes,
    /// `TPM_ALG_OAEP` with its hash.
    Oaep {
        /// `hashAlg`.
        hash_alg: u16,
    },
}

impl Marshal for RsaDecryptScheme {
    const NAME: &'static str = "TPMT_RSA_DECRYPT";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        match self {
            Self::Null => w.u16(alg::NULL),
            Self::Rsaes => w.u16(alg::RSAES),
            Self::Oaep { hash_alg } => w.u16(alg::OAEP).u16(*hash_alg),
        };
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        match r.u16("inScheme.scheme")? {
            alg::NULL => Ok(Self::Null),
            alg::RSAES => Ok(Self::Rsaes),
            alg::OAEP => Ok(Self::Oaep {
                hash_alg: r.u16("inScheme.hashAlg")?,
            }),
            // Any other scheme's details have a layout this codec does not know.
            other => Err(Malformed::Unexpected {
                what: "inScheme.scheme",
                found: u64::from(other),
                expected: u64::from(alg::RSAES),
            }),
        }
    }
}

/// `TPM2_RSA_Decrypt` command parameters (Part 3 §14.3). Handle: `keyHandle` (USER role); one
/// session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaDecryptCommand {
    /// `cipherText` (`TPM2B_PUBLIC_KEY_RSA`).
    pub cipher_text: Vec<u8>,
    /// `inScheme`.
    pub in_scheme: RsaDecryptScheme,
    /// `label` (`TPM2B_DATA`): OAEP's label, empty here.
    pub label: Vec<u8>,
}

impl Marshal for RsaDecryptCommand {
    const NAME: &'static str = "RSA_Decrypt command parameters";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.tpm2b("cipherText", &self.cipher_text)?
            .marshal(&self.in_scheme)?
            .tpm2b("label", &self.label)?;
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(RsaDecryptCommand {
            cipher_text: r.tpm2b("cipherText")?.to_vec(),
            in_scheme: r.unmarshal()?,
            label: r.tpm2b("label")?.to_vec(),
        })
    }
}

/// `TPM2_RSA_Decrypt` response parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaDecryptResponse {
    /// `message` (`TPM2B_PUBLIC_KEY_RSA`): the plaintext.
    pub message: Vec<u8>,
}

impl Marshal for RsaDecryptResponse {
    const NAME: &'static str = "RSA_Decrypt parameters";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.tpm2b("message", &self.message)?;
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(RsaDecryptResponse {
            message: r.tpm2b("message")?.to_vec(),
        })
    }
}

/// `TPM2_FlushContext` command parameters (Part 3 §28.4). The handle to flush is a parameter,
/// not in the handle area; no sessions, no response parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushContextCommand {
    /// `flushHandle`: a transient object or a session.
    pub flush_handle: u32,
}

impl Marshal for FlushContextCommand {
    const NAME: &'static str = "FlushContext command parameters";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.u32(self.flush_handle);
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(FlushContextCommand {
            flush_handle: r.u32("flushHandle")?,
        })
    }
}
