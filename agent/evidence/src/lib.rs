// SPDX-License-Identifier: Apache-2.0
//! Pure parsing for thimble: bytes in, typed values out, no I/O and no clock.
//!
//! - [`snp`]: the SEV-SNP `ATTESTATION_REPORT`, its TCB and policy words, the extended-report
//!   certificate table, and the AMD VCEK/VLEK/ASK/ARK certificates with their extensions.
//! - [`tdx`]: the Intel TDX quote (v4/v5), the TD report, the PCK certificate's SGX extension,
//!   Intel's signed TCB info / QE identity bodies and CRLs, and the claims of a TD.
//! - [`thim`] and [`kds`]: the Azure THIM AMD response body and the AMD KDS URL scheme.
//! - [`cert_file`]: recognising certificate files (DER, PEM with one or several certificates).
//! - [`crl`]: X.509 CRLs, AMD's (KDS, issued by the ARK) and Intel's (PCK and root CA).
//! - [`report_data`]: how REPORT_DATA is derived from a nonce.
//! - [`tpm2`]: TPM 2.0 marshalling and unmarshalling, shared by the vTPM client and its fake.
//! - [`bundle`]: the versioned evidence bundle, the one public contract of the project.
//!
//! Every parsed value keeps the bytes it was parsed from, so that signatures are verified over the
//! bytes received and never over a re-encoding.

pub mod azure;
pub mod bundle;
pub mod cert_file;
pub mod crl;
pub mod kds;
pub mod report_data;
pub mod snp;
pub mod tdx;
pub mod thim;
pub mod time_fmt;
pub mod tpm2;
