// SPDX-License-Identifier: Apache-2.0
//! The parameter areas of the eight commands thimble sends a vTPM and of their responses (TPM
//! 2.0 Library Part 3), each with its [`Marshal`] pair: the client marshals the command and
//! unmarshals the response, the fake vTPM the other way round. Handles travel in the handle
//! area ([`super::Command`]); each type says which its command takes. `TPM2_NV_ReadPublic` and
//! `TPM2_ReadPublic` have no command parameters, and `TPM2_NV_DefineSpace` and `TPM2_NV_Write`
//! no response parameters.
//!
//! Responses that carry what a signature or a name covers (`TPM2_Quote`'s `TPMS_ATTEST`,
//! `TPM2_ReadPublic`'s `TPMT_PUBLIC`) keep those bytes as received: they are checked over those
//! bytes, never over a re-encoding. No I/O.

use super::structures::{
    TpmlDigest, TpmlPcrSelection, TpmsNvPublic, TpmsTaggedProperty, TpmtSigScheme, TpmtSignature,
};
use super::wire::{Malformed, Marshal, MarshalError, TpmReader, TpmWriter};
use super::{cap, structures::MAX_TPM_PROPERTIES};

/// `TPM2_GetCapability` command parameters (Part 3 §30.2). No handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetCapabilityCommand {
    /// The capability (`TPM_CAP`, [`cap`]).
    pub capability: u32,
    /// The first property wanted; the TPM lists from there on.
    pub property: u32,
    /// The most properties wanted.
    pub property_count: u32,
}

impl Marshal for GetCapabilityCommand {
    const NAME: &'static str = "GetCapability parameters";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.u32(self.capability)
            .u32(self.property)
            .u32(self.property_count);
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(GetCapabilityCommand {
            capability: r.u32("capability")?,
            property: r.u32("property")?,
            property_count: r.u32("propertyCount")?,
        })
    }
}

/// `TPM2_GetCapability` response parameters for `TPM_CAP_TPM_PROPERTIES`: `moreData` and a
/// `TPMS_CAPABILITY_DATA` holding a `TPML_TAGGED_TPM_PROPERTY`. Other capabilities are refused
/// when unmarshalled (thimble asks for none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetCapabilityResponse {
    /// `moreData`: the TPM has properties after the last one listed.
    pub more_data: bool,
    /// The properties listed (at most [`MAX_TPM_PROPERTIES`]).
    pub tpm_properties: Vec<TpmsTaggedProperty>,
}

impl Marshal for GetCapabilityResponse {
    const NAME: &'static str = "TPMS_CAPABILITY_DATA";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.u8(u8::from(self.more_data))
            .u32(cap::TPM_PROPERTIES)
            .count("tpmProperty", self.tpm_properties.len(), MAX_TPM_PROPERTIES)?;
        for p in &self.tpm_properties {
            w.marshal(p)?;
        }
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        // TPMI_YES_NO: any non-zero byte is read as yes.
        let more_data = r.u8("moreData")? != 0;
        let capability = r.u32("capability")?;
        if capability != cap::TPM_PROPERTIES {
            return Err(Malformed::Unexpected {
                what: "capability",
                found: u64::from(capability),
                expected: u64::from(cap::TPM_PROPERTIES),
            });
        }
        let count = r.count("tpmProperty", MAX_TPM_PROPERTIES)?;
        let mut tpm_properties = Vec::with_capacity(count as usize);
        for _ in 0..count {
            tpm_properties.push(r.unmarshal()?);
        }
        Ok(GetCapabilityResponse {
            more_data,
            tpm_properties,
        })
    }
}

/// `TPM2_NV_ReadPublic` response parameters (Part 3 §31.6). Handle: `nvIndex`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvReadPublicResponse {
    /// `TPM2B_NV_PUBLIC`.
    pub nv_public: TpmsNvPublic,
    /// `TPM2B_NAME`.
    pub nv_name: Vec<u8>,
}

impl Marshal for NvReadPublicResponse {
    const NAME: &'static str = "NV_ReadPublic parameters";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.sized("nvPublic", &self.nv_public)?
            .tpm2b("nvName", &self.nv_name)?;
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(NvReadPublicResponse {
            nv_public: r.sized("nvPublic")?,
            nv_name: r.tpm2b("nvName")?.to_vec(),
        })
    }
}

/// `TPM2_NV_Read` command parameters (Part 3 §31.13). Handles: `authHandle` (the owner, the
/// platform or the index), `nvIndex`; one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NvReadCommand {
    /// How many bytes to read.
    pub size: u16,
    /// Where to start reading, in bytes from the start of the index.
    pub offset: u16,
}

impl Marshal for NvReadCommand {
    const NAME: &'static str = "NV_Read command parameters";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.u16(self.size).u16(self.offset);
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(NvReadCommand {
            size: r.u16("size")?,
            offset: r.u16("offset")?,
        })
    }
}

/// `TPM2_NV_Read` response parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvReadResponse {
    /// `TPM2B_MAX_NV_BUFFER`.
    pub data: Vec<u8>,
}

impl Marshal for NvReadResponse {
    const NAME: &'static str = "NV_Read parameters";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.tpm2b("data", &self.data)?;
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(NvReadResponse {
            data: r.tpm2b("data")?.to_vec(),
        })
    }
}

/// `TPM2_NV_Write` command parameters (Part 3 §31.7). Handles: `authHandle`, `nvIndex`; one
/// session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvWriteCommand {
    /// `TPM2B_MAX_NV_BUFFER`.
    pub data: Vec<u8>,
    /// Where to start writing, in bytes from the start of the index.
    pub offset: u16,
}

impl Marshal for NvWriteCommand {
    const NAME: &'static str = "NV_Write command parameters";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.tpm2b("data", &self.data)?.u16(self.offset);
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(NvWriteCommand {
            data: r.tpm2b("data")?.to_vec(),
            offset: r.u16("offset")?,
        })
    }
}

/// `TPM2_NV_DefineSpace` command parameters (Part 3 §31.3). Handle: `authHandle` (the owner or
/// the platform); one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvDefineSpaceCommand {
    /// `TPM2B_AUTH`: the new index's password.
    pub auth: Vec<u8>,
    /// `TPM2B_NV_PUBLIC`.
    pub public_info: TpmsNvPublic,
}

impl Marshal for NvDefineSpaceCommand {
    const NAME: &'static str = "NV_DefineSpace command parameters";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.tpm2b("auth", &self.auth)?
            .sized("publicInfo", &self.public_info)?;
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(NvDefineSpaceCommand {
            auth: r.tpm2b("auth")?.to_vec(),
            public_info: r.sized("publicInfo")?,
        })
    }
}

/// `TPM2_PCR_Read` command parameters (Part 3 §22.4). No handles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrReadCommand {
    /// `pcrSelectionIn`: the PCRs to read.
    pub pcr_selection_in: TpmlPcrSelection,
}

impl Marshal for PcrReadCommand {
    const NAME: &'static str = "PCR_Read command parameters";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.marshal(&self.pcr_selection_in)?;
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(PcrReadCommand {
            pcr_selection_in: r.unmarshal()?,
        })
    }
}

/// `TPM2_PCR_Read` response parameters: the values follow `pcr_selection_out`, bank by bank,
/// each bitmap ascending, at most [`super::MAX_DIGESTS`] of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrReadResponse {
    /// `pcrUpdateCounter`: the TPM's PCR update counter when it read them.
    pub pcr_update_counter: u32,
    /// `pcrSelectionOut`: the PCRs whose values follow (may be fewer than asked for).
    pub pcr_selection_out: TpmlPcrSelection,
    /// `pcrValues`: their values, in selection order.
    pub pcr_values: TpmlDigest,
}

impl Marshal for PcrReadResponse {
    const NAME: &'static str = "PCR_Read parameters";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.u32(self.pcr_update_counter)
            .marshal(&self.pcr_selection_out)?
            .marshal(&self.pcr_values)?;
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(PcrReadResponse {
            pcr_update_counter: r.u32("pcrUpdateCounter")?,
            pcr_selection_out: r.unmarshal()?,
            pcr_values: r.unmarshal()?,
        })
    }
}

/// `TPM2_Quote` command parameters (Part 3 §18.4). Handle: `signHandle`; one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteCommand {
    /// `TPM2B_DATA`: becomes the quote's `extraData`.
    pub qualifying_data: Vec<u8>,
    /// `inScheme`: the signing scheme, `TPM_ALG_NULL` for the key's own.
    pub in_scheme: TpmtSigScheme,
    /// `PCRselect`.
    pub pcr_select: TpmlPcrSelection,
}

impl Marshal for QuoteCommand {
    const NAME: &'static str = "Quote command parameters";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.tpm2b("qualifyingData", &self.qualifying_data)?
            .marshal(&self.in_scheme)?
            .marshal(&self.pcr_select)?;
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(QuoteCommand {
            qualifying_data: r.tpm2b("qualifyingData")?.to_vec(),
            in_scheme: r.unmarshal()?,
            pcr_select: r.unmarshal()?,
        })
    }
}

/// `TPM2_Quote` response parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteResponse {
    /// The inside of the `TPM2B_ATTEST`: the marshalled `TPMS_ATTEST` the key signed, as
    /// received (`crate::azure::TpmsAttest` parses it).
    pub quoted: Vec<u8>,
    /// The signature over `quoted`.
    pub signature: TpmtSignature,
}

impl Marshal for QuoteResponse {
    const NAME: &'static str = "Quote parameters";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.tpm2b("quoted", &self.quoted)?.marshal(&self.signature)?;
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(QuoteResponse {
            quoted: r.tpm2b("quoted")?.to_vec(),
            signature: r.unmarshal()?,
        })
    }
}

/// `TPM2_ReadPublic` response parameters (Part 3 §12.4). Handle: `objectHandle`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPublicResponse {
    /// The inside of the `TPM2B_PUBLIC`: the marshalled `TPMT_PUBLIC` as received, which
    /// `name` is the hash of ([`super::TpmtPublic`] parses it).
    pub out_public: Vec<u8>,
    /// `TPM2B_NAME`: the object's name (`nameAlg` ‖ hash of `out_public`).
    pub name: Vec<u8>,
    /// `TPM2B_NAME`: the object's qualified name.
    pub qualified_name: Vec<u8>,
}

impl Marshal for ReadPublicResponse {
    const NAME: &'static str = "ReadPublic parameters";

    fn marshal(&self, w: &mut TpmWriter) -> Result<(), MarshalError> {
        w.tpm2b("outPublic", &self.out_public)?
            .tpm2b("name", &self.name)?
            .tpm2b("qualifiedName", &self.qualified_name)?;
        Ok(())
    }

    fn unmarshal(r: &mut TpmReader<'_>) -> Result<Self, Malformed> {
        Ok(ReadPublicResponse {
            out_public: r.tpm2b("outPublic")?.to_vec(),
            name: r.tpm2b("name")?.to_vec(),
            qualified_name: r.tpm2b("qualifiedName")?.to_vec(),
        })
    }
}
