// SPDX-License-Identifier: Apache-2.0
//! Intel TDX: the quote, the TD report, the PCK certificate's platform data, Intel's signed
//! collateral and CRLs, and the claims thimble reports for a TD. Parsing only, no verification;
//! the quote and TD report layouts also encode ([`layout`]), for the simulator and tests.

pub mod collateral;
pub mod layout;
pub mod pck;
pub mod pcs;
pub mod qcnl;
pub mod quote;
pub mod td_report;

use serde::Serialize;

pub use collateral::{CollateralError, QeIdentityBody, SignedCollateral, TcbInfoBody};
// Intel's CRLs are parsed by the vendor-neutral `crate::crl`; the old names stay for callers.
pub use crate::crl::{Crl as IntelCrl, CrlError};
pub use layout::FieldSpan;
pub use pck::{PckCaType, PckError, PckInfo};
pub use quote::{
    EnclaveReport, QeCertification, QuoteBodyDescriptor, QuoteEncodeError, QuoteError, QuoteHeader,
    SignatureData, TdAttributes, TdxBody, TdxQuote, UnsignedQuote,
};
pub use td_report::{TdReport, TdReportError, TdReportFields};

/// The platform a quote's PCK certificate was issued for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PckClaims {
    /// FMSPC, hex.
    pub fmspc: String,
    /// PCE-ID, hex.
    pub pce_id: String,
    /// CPUSVN, hex.
    pub cpusvn: String,
    /// PCESVN.
    pub pcesvn: u16,
    /// Which PCK CA issued the certificate.
    pub ca: PckCaType,
}

impl PckClaims {
    /// The claims of a decoded PCK certificate.
    pub fn from_info(info: &PckInfo) -> PckClaims {
        PckClaims {
            fmspc: hex::encode(info.fmspc),
            pce_id: hex::encode(info.pce_id),
            cpusvn: hex::encode(info.cpusvn),
            pcesvn: info.pcesvn,
            ca: info.ca_type,
        }
    }
}

/// What a TDX quote says about the TD, for output. Byte fields are lower-case hex; names follow
/// Intel's (`sgx_report2_body_t`). SEPT_VE_DISABLE, the migratable bit and MRSERVICETD are
/// reported here and only enforced when a policy asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TdxClaims {
    /// The quote's header version, 4 or 5.
    pub quote_version: u16,
    /// v5 body type: 2 (TDX 1.0) or 3 (TDX 1.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_type: Option<u16>,
    /// The quoting enclave's vendor ID.
    pub qe_vendor_id: String,
    /// TEE_TCB_SVN.
    pub tee_tcb_svn: String,
    /// MRSEAM: the TDX module's measurement.
    pub mrseam: String,
    /// MRSIGNERSEAM.
    pub mrsignerseam: String,
    /// SEAMATTRIBUTES.
    pub seam_attributes: String,
    /// TDATTRIBUTES, decoded.
    pub td_attributes: TdAttributes,
    /// XFAM.
    pub xfam: String,
    /// MRTD: the TD's build-time measurement.
    pub mrtd: String,
    /// MRCONFIGID.
    pub mrconfigid: String,
    /// MROWNER.
    pub mrowner: String,
    /// MROWNERCONFIG.
    pub mrownerconfig: String,
    /// RTMR0 to RTMR3.
    pub rtmr: [String; 4],
    /// REPORT_DATA.
    pub report_data: String,
    /// TEE_TCB_SVN_2 (TDX 1.5 body only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tee_tcb_svn_2: Option<String>,
    /// MRSERVICETD (TDX 1.5 body only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mrservicetd: Option<String>,
    /// Bytes after the quote's signature data (padding), ignored.
    pub trailing_bytes: usize,
    /// The platform the PCK certificate names, when the caller had it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pck: Option<PckClaims>,
}

impl TdxClaims {
    /// Claims of `quote`, with the PCK platform data when it is known.
    pub fn from_quote(quote: &TdxQuote, pck: Option<&PckInfo>) -> TdxClaims {
        let b = &quote.body;
        TdxClaims {
            quote_version: quote.header.version,
            body_type: quote.body_type,
            qe_vendor_id: hex::encode(quote.header.qe_vendor_id),
            tee_tcb_svn: hex::encode(b.tee_tcb_svn),
            mrseam: hex::encode(b.mrseam),
            mrsignerseam: hex::encode(b.mrsignerseam),
            seam_attributes: hex::encode(b.seam_attributes),
            td_attributes: TdAttributes::decode(b.td_attributes),
            xfam: hex::encode(b.xfam),
            mrtd: hex::encode(b.mrtd),
            mrconfigid: hex::encode(b.mrconfigid),
            mrowner: hex::encode(b.mrowner),
            mrownerconfig: hex::encode(b.mrownerconfig),
            rtmr: b.rtmr.map(hex::encode),
            report_data: hex::encode(b.report_data),
            tee_tcb_svn_2: b.tee_tcb_svn_2.map(hex::encode),
            mrservicetd: b.mrservicetd.map(hex::encode),
            trailing_bytes: quote.trailing_len,
            pck: pck.map(PckClaims::from_info),
        }
    }
}
