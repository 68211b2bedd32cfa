// SPDX-License-Identifier: Apache-2.0
//! Azure confidential VMs behind the paravisor (OpenHCL / HCL): the HCL report the vTPM exposes at
//! NV index `0x01400001` ([`hcl`]), with its runtime data (the vTPM keys and VM configuration the
//! hardware report binds), and the TPM quote made with the vTPM attestation key ([`tpm`]).
//! Parsing only, no verification.
//!
//! The trust path on these VMs is indirect: the guest cannot ask the AMD-SP or the TDX module for
//! a report itself. The paravisor does, at boot, with REPORT_DATA = hash of the runtime data; the
//! runtime data carries the public part of the vTPM attestation key (`HCLAkPub`); that key signs
//! TPM quotes over the PCRs and a verifier's nonce. So the hardware report vouches for the key and
//! the key vouches for the PCRs and the freshness.

pub mod hcl;
pub mod tpm;

pub use hcl::{
    HashType, HclError, HclHeader, HclReport, HclReportType, IgvmRequestData, Jwk, RsaPublicKey,
    RuntimeData, RuntimeDataError, VmConfiguration,
};
pub use tpm::{
    ClockInfo, PcrSelection, QuoteClaims, TPM_ALG_SHA256, TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE,
    TpmError, TpmQuote, TpmsAttest,
};

/// The vTPM NV index that holds the HCL report.
pub const HCL_REPORT_NV_INDEX: u32 = 0x0140_0001;
/// The vTPM NV index a guest writes 64 bytes of user data to before reading a fresh HCL report.
pub const HCL_USER_DATA_NV_INDEX: u32 = 0x0140_0002;
/// The persistent handle of the vTPM attestation key (`HCLAkPub` in the runtime data).
pub const VTPM_AK_HANDLE: u32 = 0x8100_0003;
