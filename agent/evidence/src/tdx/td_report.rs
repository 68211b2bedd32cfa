// SPDX-License-Identifier: Apache-2.0
//! The 1024-byte TDREPORT_STRUCT that TDG.MR.REPORT returns (Intel TDX Module ABI spec 348551,
//! "TDREPORT_STRUCT"; Intel `sgx_report2.h`): REPORTMACSTRUCT (256 B), TEE_TCB_INFO (239 B),
//! 17 reserved bytes, TDINFO_STRUCT (512 B). Offsets below are relative to each structure, in hex.
//!
//! The report is MAC-ed with a platform key, not signed: it proves nothing on its own. It matters
//! where it travels unsigned next to a quote (Azure's HCL report, `/acc/tdquote`), so that a
//! verifier can check it is the report the quote was made from ([`TdReport::mismatches`]).

use thiserror::Error;

use crate::tdx::quote::TdxBody;

/// Size of TDREPORT_STRUCT.
pub const TD_REPORT_LEN: usize = 1024;
/// REPORTTYPE.TYPE of a TDX report.
pub const REPORT_TYPE_TDX: u8 = 0x81;

const MAC: usize = 0x000;
const TEE_TCB_INFO: usize = 0x100;
const TD_INFO: usize = 0x200;

/// Why a TD report could not be parsed.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TdReportError {
    #[error("TD report is {actual} bytes, expected {expected}")]
    Length { expected: usize, actual: usize },
    #[error("TD report type is {report_type:#x}, expected 0x81 (TDX)")]
    ReportType { report_type: u8 },
}

/// A parsed TD report. Field names follow the TDX Module ABI spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdReport {
    raw: Vec<u8>,
    /// REPORTMACSTRUCT.REPORTTYPE: type, subtype, version, reserved.
    pub report_type: [u8; 4],
    pub cpu_svn: [u8; 16],
    pub tee_tcb_info_hash: [u8; 48],
    pub tee_info_hash: [u8; 48],
    pub report_data: [u8; 64],
    pub mac: [u8; 32],
    /// TEE_TCB_INFO.VALID: which of the following fields are valid.
    pub tee_tcb_info_valid: [u8; 8],
    pub tee_tcb_svn: [u8; 16],
    pub mrseam: [u8; 48],
    pub mrsignerseam: [u8; 48],
    pub seam_attributes: [u8; 8],
    /// TDX 1.5 (zero on 1.0 modules).
    pub tee_tcb_svn_2: [u8; 16],
    pub td_attributes: [u8; 8],
    pub xfam: [u8; 8],
    pub mrtd: [u8; 48],
    pub mrconfigid: [u8; 48],
    pub mrowner: [u8; 48],
    pub mrownerconfig: [u8; 48],
    pub rtmr: [[u8; 48]; 4],
    /// TDX 1.5: SERVTD_HASH (zero on 1.0 modules).
    pub servtd_hash: [u8; 48],
}

fn arr<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[off..off + N]);
    a
}

impl TdReport {
    /// Parses exactly [`TD_REPORT_LEN`] bytes.
    pub fn parse(bytes: &[u8]) -> Result<TdReport, TdReportError> {
        if bytes.len() != TD_REPORT_LEN {
            return Err(TdReportError::Length {
                expected: TD_REPORT_LEN,
                actual: bytes.len(),
            });
        }
        let b = bytes;
        let report_type: [u8; 4] = arr(b, MAC);
        if report_type[0] != REPORT_TYPE_TDX {
            return Err(TdReportError::ReportType {
                report_type: report_type[0],
            });
        }
        let rtmr = |i: usize| arr(b, TD_INFO + 0xd0 + 48 * i);
        Ok(TdReport {
            report_type,
            cpu_svn: arr(b, MAC + 0x10),
            tee_tcb_info_hash: arr(b, MAC + 0x20),
            tee_info_hash: arr(b, MAC + 0x50),
            report_data: arr(b, MAC + 0x80),
            mac: arr(b, MAC + 0xe0),
            tee_tcb_info_valid: arr(b, TEE_TCB_INFO),
            tee_tcb_svn: arr(b, TEE_TCB_INFO + 0x08),
            mrseam: arr(b, TEE_TCB_INFO + 0x18),
            mrsignerseam: arr(b, TEE_TCB_INFO + 0x48),
            seam_attributes: arr(b, TEE_TCB_INFO + 0x78),
            tee_tcb_svn_2: arr(b, TEE_TCB_INFO + 0x80),
            td_attributes: arr(b, TD_INFO),
            xfam: arr(b, TD_INFO + 0x08),
            mrtd: arr(b, TD_INFO + 0x10),
            mrconfigid: arr(b, TD_INFO + 0x40),
            mrowner: arr(b, TD_INFO + 0x70),
            mrownerconfig: arr(b, TD_INFO + 0xa0),
            rtmr: [rtmr(0), rtmr(1), rtmr(2), rtmr(3)],
            servtd_hash: arr(b, TD_INFO + 0x190),
            raw: bytes.to_vec(),
        })
    }

    /// The exact bytes received.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The fields of a quote body that differ from this report (empty: the quote was made from
    /// this report). TDX 1.5 fields are compared only when the body has them.
    pub fn mismatches(&self, body: &TdxBody) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut cmp = |name: &'static str, a: &[u8], b: &[u8]| {
            if a != b {
                out.push(name);
            }
        };
        cmp("tee_tcb_svn", &self.tee_tcb_svn, &body.tee_tcb_svn);
        cmp("mrseam", &self.mrseam, &body.mrseam);
        cmp("mrsignerseam", &self.mrsignerseam, &body.mrsignerseam);
        cmp(
            "seam_attributes",
            &self.seam_attributes,
            &body.seam_attributes,
        );
        cmp("td_attributes", &self.td_attributes, &body.td_attributes);
        cmp("xfam", &self.xfam, &body.xfam);
        cmp("mrtd", &self.mrtd, &body.mrtd);
        cmp("mrconfigid", &self.mrconfigid, &body.mrconfigid);
        cmp("mrowner", &self.mrowner, &body.mrowner);
        cmp("mrownerconfig", &self.mrownerconfig, &body.mrownerconfig);
        for (i, name) in ["rtmr0", "rtmr1", "rtmr2", "rtmr3"].into_iter().enumerate() {
            cmp(name, &self.rtmr[i], &body.rtmr[i]);
        }
        cmp("report_data", &self.report_data, &body.report_data);
        if let Some(svn2) = &body.tee_tcb_svn_2 {
            cmp("tee_tcb_svn_2", &self.tee_tcb_svn_2, svn2);
        }
        if let Some(servtd) = &body.mrservicetd {
            cmp("mrservicetd", &self.servtd_hash, servtd);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let mut b = vec![0u8; TD_REPORT_LEN];
        b[0] = 0x81;
        b[0x80] = 0xaa; // report_data[0]
        b[0x100 + 0x08] = 3; // tee_tcb_svn[0]
        b[0x200] = 0x01; // td_attributes: DEBUG
        b[0x200 + 0x10] = 0x11; // mrtd[0]
        b[0x200 + 0xd0 + 48 * 3 + 47] = 0x33; // rtmr3[47]
        b[0x200 + 0x190] = 0x55; // servtd_hash[0]
        let r = TdReport::parse(&b).unwrap();
        assert_eq!(r.report_data[0], 0xaa);
        assert_eq!(r.tee_tcb_svn[0], 3);
        assert_eq!(r.td_attributes[0], 1);
        assert_eq!(r.mrtd[0], 0x11);
        assert_eq!(r.rtmr[3][47], 0x33);
        assert_eq!(r.servtd_hash[0], 0x55);
        b[0] = 0;
        assert_eq!(
            TdReport::parse(&b),
            Err(TdReportError::ReportType { report_type: 0 })
        );
        assert!(matches!(
            TdReport::parse(&b[..1000]),
            Err(TdReportError::Length { .. })
        ));
    }
}
