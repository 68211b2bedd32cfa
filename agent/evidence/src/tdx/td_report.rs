// SPDX-License-Identifier: Apache-2.0
//! The 1024-byte TDREPORT_STRUCT that TDG.MR.REPORT returns (Intel TDX Module ABI spec 348551,
//! "TDREPORT_STRUCT"; Intel `sgx_report2.h`): REPORTMACSTRUCT (256 B), TEE_TCB_INFO (239 B),
//! 17 reserved bytes, TDINFO_STRUCT (512 B). One layout table ([`crate::tdx::layout`]) names
//! their fields at the spec's offsets within each structure, in hex, and gives both the decoder
//! and the encoder. No I/O.
//!
//! The report is MAC-ed with a platform key, not signed: it proves nothing on its own. It matters
//! where it travels unsigned next to a quote (Azure's HCL report, `/acc/tdquote`), so that a
//! verifier can check it is the report the quote was made from ([`TdReport::mismatches`]).
//! The encoder ([`TdReportFields::encode`]) is for the simulator and tests. It computes neither
//! the two hashes nor the MAC: the caller fills them in over [`TEE_TCB_INFO_RANGE`],
//! [`TD_INFO_RANGE`] and [`MAC_INPUT_RANGE`] of a first encoding.

use std::ops::{Deref, Range};

use thiserror::Error;

use crate::tdx::layout::layout;
use crate::tdx::quote::TdxBody;

/// Size of TDREPORT_STRUCT.
pub const TD_REPORT_LEN: usize = 1024;
/// REPORTTYPE.TYPE of a TDX report.
pub const REPORT_TYPE_TDX: u8 = 0x81;

/// Where REPORTMACSTRUCT (256 bytes), TEE_TCB_INFO (239 bytes) and TDINFO_STRUCT (512 bytes)
/// start; 17 reserved bytes separate the last two.
const MAC: usize = 0x000;
const TEE_TCB_INFO: usize = 0x100;
const TEE_TCB_INFO_LEN: usize = 239;
const TD_INFO: usize = 0x200;
const TD_INFO_LEN: usize = 512;

/// TEE_TCB_INFO in the report: `tee_tcb_info_hash` is SHA-384 of these bytes.
pub const TEE_TCB_INFO_RANGE: Range<usize> = TEE_TCB_INFO..TEE_TCB_INFO + TEE_TCB_INFO_LEN;
/// TDINFO_STRUCT in the report: `tee_info_hash` is SHA-384 of these bytes.
pub const TD_INFO_RANGE: Range<usize> = TD_INFO..TD_INFO + TD_INFO_LEN;
/// What the MAC covers: REPORTMACSTRUCT up to the MAC.
pub const MAC_INPUT_RANGE: Range<usize> = MAC..match TdReportFields::field("mac") {
    Some(f) => f.offset,
    None => panic!("REPORTMACSTRUCT has a MAC"),
};

/// Why a TD report could not be parsed.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TdReportError {
    /// The input is not exactly [`TD_REPORT_LEN`] bytes.
    #[error("TD report is {actual} bytes, expected {expected}")]
    Length {
        /// Always [`TD_REPORT_LEN`].
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// REPORTTYPE.TYPE is not [`REPORT_TYPE_TDX`].
    #[error("TD report type is {report_type:#x}, expected 0x81 (TDX)")]
    ReportType {
        /// As read.
        report_type: u8,
    },
}

layout! {
    /// The fields of TDREPORT_STRUCT as plain values, named after the TDX Module ABI spec, at
    /// the offsets the spec gives within each structure: what [`TdReport::parse`] reads and
    /// what [`TdReportFields::encode`] writes.
    pub struct TdReportFields[TD_REPORT_LEN] {
        /// REPORTMACSTRUCT.REPORTTYPE: type, subtype, version, reserved.
        [MAC] report_type: [u8; 4],
        /// REPORTMACSTRUCT.CPUSVN of the platform.
        [MAC + 0x10] cpu_svn: [u8; 16],
        /// SHA-384 of TEE_TCB_INFO ([`TEE_TCB_INFO_RANGE`]).
        [MAC + 0x20] tee_tcb_info_hash: [u8; 48],
        /// SHA-384 of TDINFO_STRUCT ([`TD_INFO_RANGE`]).
        [MAC + 0x50] tee_info_hash: [u8; 48],
        /// REPORTMACSTRUCT.REPORTDATA: the 64 bytes the TD supplied to TDG.MR.REPORT.
        [MAC + 0x80] report_data: [u8; 64],
        /// REPORTMACSTRUCT.MAC, over [`MAC_INPUT_RANGE`] with a key only the platform has (not
        /// checkable outside it).
        [MAC + 0xe0] mac: [u8; 32],
        /// TEE_TCB_INFO.VALID: which of the following fields are valid.
        [TEE_TCB_INFO] tee_tcb_info_valid: [u8; 8],
        /// TEE_TCB_INFO.TEE_TCB_SVN: the TDX module's security version numbers.
        [TEE_TCB_INFO + 0x08] tee_tcb_svn: [u8; 16],
        /// TEE_TCB_INFO.MRSEAM: the TDX module's measurement.
        [TEE_TCB_INFO + 0x18] mrseam: [u8; 48],
        /// TEE_TCB_INFO.MRSIGNERSEAM: the measurement of the TDX module's signer.
        [TEE_TCB_INFO + 0x48] mrsignerseam: [u8; 48],
        /// TEE_TCB_INFO.ATTRIBUTES of the TDX module.
        [TEE_TCB_INFO + 0x78] seam_attributes: [u8; 8],
        /// TDX 1.5 (zero on 1.0 modules).
        [TEE_TCB_INFO + 0x80] tee_tcb_svn_2: [u8; 16],
        /// TDINFO_STRUCT.ATTRIBUTES (see [`crate::tdx::TdAttributes`]).
        [TD_INFO] td_attributes: [u8; 8],
        /// TDINFO_STRUCT.XFAM.
        [TD_INFO + 0x008] xfam: [u8; 8],
        /// TDINFO_STRUCT.MRTD: the TD's build-time measurement.
        [TD_INFO + 0x010] mrtd: [u8; 48],
        /// TDINFO_STRUCT.MRCONFIGID.
        [TD_INFO + 0x040] mrconfigid: [u8; 48],
        /// TDINFO_STRUCT.MROWNER.
        [TD_INFO + 0x070] mrowner: [u8; 48],
        /// TDINFO_STRUCT.MROWNERCONFIG.
        [TD_INFO + 0x0a0] mrownerconfig: [u8; 48],
        /// TDINFO_STRUCT.RTMR[0..4].
        [TD_INFO + 0x0d0] rtmr: [[u8; 48]; 4],
        /// TDX 1.5: SERVTD_HASH (zero on 1.0 modules).
        [TD_INFO + 0x190] servtd_hash: [u8; 48],
    }
}

/// A parsed TD report: its fields, read through `Deref` (`report.mrtd`), and the bytes
/// they were read from. There is no `DerefMut`, so the fields cannot drift from the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdReport {
    raw: Vec<u8>,
    fields: TdReportFields,
}

impl Deref for TdReport {
    type Target = TdReportFields;

    fn deref(&self) -> &TdReportFields {
        &self.fields
    }
}

impl TdReport {
    /// Parses exactly [`TD_REPORT_LEN`] bytes.
    pub fn parse(bytes: &[u8]) -> Result<TdReport, TdReportError> {
        let whole: &[u8; TD_REPORT_LEN] = bytes.try_into().map_err(|_| TdReportError::Length {
            expected: TD_REPORT_LEN,
            actual: bytes.len(),
        })?;
        let fields = TdReportFields::decode(whole);
        let report_type = fields.report_type[0];
        if report_type != REPORT_TYPE_TDX {
            return Err(TdReportError::ReportType { report_type });
        }
        Ok(TdReport {
            raw: bytes.to_vec(),
            fields,
        })
    }

    /// The exact bytes received.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The fields, as plain values.
    pub fn fields(&self) -> &TdReportFields {
        &self.fields
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

impl TdReportFields {
    /// The body a quoting enclave makes of this report: a TDX 1.0 body, or a 1.5 one with
    /// TEE_TCB_SVN_2 and SERVTD_HASH (as MRSERVICETD) when `tdx15`.
    pub fn quote_body(&self, tdx15: bool) -> TdxBody {
        TdxBody {
            tee_tcb_svn: self.tee_tcb_svn,
            mrseam: self.mrseam,
            mrsignerseam: self.mrsignerseam,
            seam_attributes: self.seam_attributes,
            td_attributes: self.td_attributes,
            xfam: self.xfam,
            mrtd: self.mrtd,
            mrconfigid: self.mrconfigid,
            mrowner: self.mrowner,
            mrownerconfig: self.mrownerconfig,
            rtmr: self.rtmr,
            report_data: self.report_data,
            tee_tcb_svn_2: tdx15.then_some(self.tee_tcb_svn_2),
            mrservicetd: tdx15.then_some(self.servtd_hash),
        }
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

    #[test]
    fn structures_sit_where_the_spec_puts_them() {
        assert_eq!(TEE_TCB_INFO_RANGE, 0x100..0x1ef);
        assert_eq!(TD_INFO_RANGE, 0x200..0x400);
        assert_eq!(MAC_INPUT_RANGE, 0x000..0x0e0);
        let inside = |r: &Range<usize>| {
            TdReportFields::FIELDS
                .iter()
                .filter(|f| r.contains(&f.offset))
                .map(|f| {
                    assert!(f.end() <= r.end, "{} crosses a structure's end", f.name);
                    f.len
                })
                .sum::<usize>()
        };
        // Named bytes per structure, as the ABI spec lists them; the rest is reserved.
        assert_eq!(inside(&(0x000..0x100)), 4 + 16 + 48 + 48 + 64 + 32);
        assert_eq!(inside(&TEE_TCB_INFO_RANGE), 239 - 95);
        assert_eq!(inside(&(0x1ef..0x200)), 0);
        assert_eq!(inside(&TD_INFO_RANGE), 512 - 64);
        assert_eq!(
            TdReportFields::field("rtmr").map(|f| f.range()),
            Some(0x2d0..0x390)
        );
    }

    #[test]
    fn encode_then_parse_round_trips() {
        // Every named byte set to a value that tells the fields apart; reserved bytes stay
        // zero, as the encoder writes them.
        let mut b = [0u8; TD_REPORT_LEN];
        for (i, f) in TdReportFields::FIELDS.iter().enumerate() {
            for (j, x) in b[f.range()].iter_mut().enumerate() {
                *x = (i as u8 + 1).wrapping_mul(31).wrapping_add(j as u8);
            }
        }
        b[0] = REPORT_TYPE_TDX;
        let fields = TdReportFields::decode(&b);
        assert_eq!(fields.encode(), b);
        let r = TdReport::parse(&b).unwrap();
        assert_eq!(r.fields(), &fields);
        assert_eq!(r.as_bytes(), b);

        // The quote made of the report matches it, and a changed field is named.
        for tdx15 in [false, true] {
            let mut body = r.quote_body(tdx15);
            assert!(r.mismatches(&body).is_empty());
            assert_eq!(body.to_bytes().len(), if tdx15 { 648 } else { 584 });
            body.rtmr[1][0] ^= 1;
            body.mrownerconfig[47] ^= 1;
            assert_eq!(r.mismatches(&body), ["mrownerconfig", "rtmr1"]);
        }
    }
}
