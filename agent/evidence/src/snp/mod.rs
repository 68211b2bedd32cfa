// SPDX-License-Identifier: Apache-2.0
//! AMD SEV-SNP: what the report, its words and the AMD certificates mean (no transport here).

pub mod cert;
pub mod cert_table;
pub mod policy;
pub mod product;
pub mod report;
pub mod tcb;

pub use cert::{AmdCert, AmdCertError, AmdExtensions};
pub use cert_table::{CertKind, CertTable, CertTableEntry, CertTableError};
pub use policy::GuestPolicy;
pub use product::Product;
pub use report::{
    PLATFORM_INFO_BITS, ReportError, SigningKey, SnpReport, SnpReportFields, platform_info_bit,
    platform_info_names,
};
pub use tcb::TcbVersion;
