// SPDX-License-Identifier: Apache-2.0
//! A fake `/dev/tdx_guest` that behaves like the Linux driver (drivers/virt/coco/tdx-guest) in
//! front of a simulated TDX module: `TDX_CMD_GET_REPORT0` copies the caller's report data into a
//! plausible `TDREPORT_STRUCT` (docs/formats.md §6.2: type 0x81, deterministic measurements, hashes
//! that match the structures they cover) and, like the kernel, writes nothing back when the
//! request fails. Error injection covers the errno values the driver returns and a module that
//! answers with someone else's report.
//!
//! The report MAC is not a real MAC (only the TDX module knows the key); nothing produced here
//! can be quoted by a real quoting enclave.

use nix::errno::Errno;
use ring::digest::{SHA256, SHA384, digest};
use thimble_collect::tdx_guest::{
    REPORT_DATA_OFFSET, TDX_REPORT_LEN, TDX_REPORT_TYPE, TDX_REPORTDATA_LEN, TdxGuestDevice,
    TdxReportReq,
};

/// Offsets inside the TDREPORT (docs/formats.md §6.2; Intel `sgx_report2.h`).
pub mod offsets {
    /// `REPORTMACSTRUCT.cpu_svn`.
    pub const CPU_SVN: usize = 16;
    /// `REPORTMACSTRUCT.tee_tcb_info_hash`: SHA-384 of `TEE_TCB_INFO`.
    pub const TEE_TCB_INFO_HASH: usize = 32;
    /// `REPORTMACSTRUCT.tee_info_hash`: SHA-384 of `TDINFO`.
    pub const TEE_INFO_HASH: usize = 80;
    /// `REPORTMACSTRUCT.mac`.
    pub const MAC: usize = 224;
    /// `TEE_TCB_INFO` (239 bytes).
    pub const TEE_TCB_INFO: usize = 256;
    pub const TEE_TCB_INFO_LEN: usize = 239;
    /// `TEE_TCB_INFO.tee_tcb_svn`.
    pub const TEE_TCB_SVN: usize = TEE_TCB_INFO + 8;
    /// `TEE_TCB_INFO.mr_seam`.
    pub const MR_SEAM: usize = TEE_TCB_INFO + 24;
    /// `TEE_TCB_INFO.mr_signer_seam`.
    pub const MR_SIGNER_SEAM: usize = TEE_TCB_INFO + 72;
    /// `TEE_TCB_INFO.attributes` (SEAM attributes).
    pub const SEAM_ATTRIBUTES: usize = TEE_TCB_INFO + 120;
    /// `TDINFO` (512 bytes).
    pub const TD_INFO: usize = 512;
    pub const TD_INFO_LEN: usize = 512;
    /// `TDINFO.attributes`.
    pub const TD_ATTRIBUTES: usize = TD_INFO;
    /// `TDINFO.xfam`.
    pub const XFAM: usize = TD_INFO + 8;
    /// `TDINFO.mr_td`.
    pub const MR_TD: usize = TD_INFO + 16;
    /// `TDINFO.mr_config_id`.
    pub const MR_CONFIG_ID: usize = TD_INFO + 64;
    /// `TDINFO.mr_owner`.
    pub const MR_OWNER: usize = TD_INFO + 112;
    /// `TDINFO.mr_owner_config`.
    pub const MR_OWNER_CONFIG: usize = TD_INFO + 160;
    /// `TDINFO.rtmr[0]`; the four RTMRs follow each other.
    pub const RTMR0: usize = TD_INFO + 208;
}

fn sha384(label: &str) -> [u8; 48] {
    let mut out = [0u8; 48];
    out.copy_from_slice(digest(&SHA384, label.as_bytes()).as_ref());
    out
}

/// What the simulated TDX module reports besides the caller's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdReportTemplate {
    pub cpu_svn: [u8; 16],
    pub tee_tcb_svn: [u8; 16],
    pub mr_seam: [u8; 48],
    pub mr_signer_seam: [u8; 48],
    pub seam_attributes: [u8; 8],
    pub td_attributes: [u8; 8],
    pub xfam: [u8; 8],
    pub mr_td: [u8; 48],
    pub mr_config_id: [u8; 48],
    pub mr_owner: [u8; 48],
    pub mr_owner_config: [u8; 48],
    pub rtmr: [[u8; 48]; 4],
}

impl Default for TdReportTemplate {
    /// Deterministic, obviously synthetic values: measurements are SHA-384 of labels such as
    /// `thimble simulated MRTD`; `mr_signer_seam` is zero as for Intel's own TDX module;
    /// attributes are those of a production (non-debug) TD; `xfam` enables x87, SSE, AVX, the
    /// AVX-512 state and PKRU (0x602e7), a typical value.
    fn default() -> Self {
        Self {
            cpu_svn: [3, 3, 2, 2, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            tee_tcb_svn: [5, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            mr_seam: sha384("thimble simulated TDX module"),
            mr_signer_seam: [0; 48],
            seam_attributes: [0; 8],
            td_attributes: [0; 8],
            xfam: [0xe7, 0x02, 0x06, 0, 0, 0, 0, 0],
            mr_td: sha384("thimble simulated MRTD"),
            mr_config_id: [0; 48],
            mr_owner: [0; 48],
            mr_owner_config: [0; 48],
            rtmr: [
                sha384("thimble simulated RTMR0"),
                sha384("thimble simulated RTMR1"),
                sha384("thimble simulated RTMR2"),
                [0; 48],
            ],
        }
    }
}

/// A `TDREPORT_STRUCT` for `report_data`, laid out as the TDX module lays it out.
pub fn build_td_report(
    template: &TdReportTemplate,
    report_data: &[u8; TDX_REPORTDATA_LEN],
) -> [u8; TDX_REPORT_LEN] {
    use offsets::*;
    let mut r = [0u8; TDX_REPORT_LEN];
    let mut put = |at: usize, bytes: &[u8]| r[at..at + bytes.len()].copy_from_slice(bytes);

    // REPORTTYPE: type, subtype 0, version 0, reserved.
    put(0, &[TDX_REPORT_TYPE, 0, 0, 0]);
    put(CPU_SVN, &template.cpu_svn);
    put(REPORT_DATA_OFFSET, report_data);

    // TEE_TCB_INFO.valid: a non-zero validity bitmap; its exact bit assignment is not modelled.
    put(TEE_TCB_INFO, &[0xff, 0x01, 0, 0, 0, 0, 0, 0]);
    put(TEE_TCB_SVN, &template.tee_tcb_svn);
    put(MR_SEAM, &template.mr_seam);
    put(MR_SIGNER_SEAM, &template.mr_signer_seam);
    put(SEAM_ATTRIBUTES, &template.seam_attributes);

    put(TD_ATTRIBUTES, &template.td_attributes);
    put(XFAM, &template.xfam);
    put(MR_TD, &template.mr_td);
    put(MR_CONFIG_ID, &template.mr_config_id);
    put(MR_OWNER, &template.mr_owner);
    put(MR_OWNER_CONFIG, &template.mr_owner_config);
    for (i, rtmr) in template.rtmr.iter().enumerate() {
        put(RTMR0 + 48 * i, rtmr);
    }

    let tee_tcb_info_hash = digest(&SHA384, &r[TEE_TCB_INFO..TEE_TCB_INFO + TEE_TCB_INFO_LEN]);
    r[TEE_TCB_INFO_HASH..TEE_TCB_INFO_HASH + 48].copy_from_slice(tee_tcb_info_hash.as_ref());
    let tee_info_hash = digest(&SHA384, &r[TD_INFO..TD_INFO + TD_INFO_LEN]);
    r[TEE_INFO_HASH..TEE_INFO_HASH + 48].copy_from_slice(tee_info_hash.as_ref());
    // Stand-in for the MAC, which is keyed with a secret of the CPU: a plain digest of the MAC'd
    // bytes, so that it changes with them.
    let mac = digest(&SHA256, &r[..MAC]);
    r[MAC..MAC + 32].copy_from_slice(mac.as_ref());
    r
}

/// Fake `/dev/tdx_guest` (see the module docs). Configure with the `with_*` builders.
#[derive(Debug, Clone, Default)]
pub struct FakeTdxGuest {
    template: TdReportTemplate,
    errno: Option<i32>,
    fail_next: Option<i32>,
    foreign_report_data: Option<[u8; TDX_REPORTDATA_LEN]>,
    report_type: Option<u8>,
    requests: usize,
    last_report_data: Option<[u8; TDX_REPORTDATA_LEN]>,
}

impl FakeTdxGuest {
    /// A TD on the simulated TDX module with the default template.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reports are built from `template` (`report_data` still comes from the request).
    pub fn with_template(mut self, template: TdReportTemplate) -> Self {
        self.template = template;
        self
    }

    /// Every request fails with `errno`: `EIO` for a failed TDCALL, `EINVAL` (`ENXIO` on newer
    /// kernels) for operands the module rejects, `EBUSY`, or `ENOTTY` for a driver with another
    /// ioctl ABI.
    pub fn with_errno(mut self, errno: Errno) -> Self {
        self.errno = Some(errno as i32);
        self
    }

    /// Only the next request fails with `errno`.
    pub fn fail_next(mut self, errno: Errno) -> Self {
        self.fail_next = Some(errno as i32);
        self
    }

    /// Reports carry `report_data` instead of the caller's, as if the module answered another
    /// request.
    pub fn with_foreign_report_data(mut self, report_data: [u8; TDX_REPORTDATA_LEN]) -> Self {
        self.foreign_report_data = Some(report_data);
        self
    }

    /// Reports carry this `REPORTTYPE.type` instead of 0x81.
    pub fn with_report_type(mut self, report_type: u8) -> Self {
        self.report_type = Some(report_type);
        self
    }

    /// Ioctl calls so far, failed ones included.
    pub fn requests(&self) -> usize {
        self.requests
    }

    /// The report data of the last request that reached the fake.
    pub fn last_report_data(&self) -> Option<[u8; TDX_REPORTDATA_LEN]> {
        self.last_report_data
    }

    /// The report this fake produces for `report_data` when nothing is injected.
    pub fn report_for(&self, report_data: &[u8; TDX_REPORTDATA_LEN]) -> [u8; TDX_REPORT_LEN] {
        build_td_report(&self.template, report_data)
    }
}

impl TdxGuestDevice for FakeTdxGuest {
    fn get_report0(&mut self, req: &mut TdxReportReq) -> Result<(), i32> {
        self.requests += 1;
        self.last_report_data = Some(req.reportdata);
        if let Some(errno) = self.fail_next.take().or(self.errno) {
            // The driver copies the TDREPORT out only after the TDCALL succeeded.
            return Err(errno);
        }
        let data = self.foreign_report_data.unwrap_or(req.reportdata);
        let mut report = build_td_report(&self.template, &data);
        if let Some(report_type) = self.report_type {
            report[0] = report_type;
        }
        req.tdreport = report;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::offsets::*;
    use super::*;

    #[test]
    fn report_layout() {
        let template = TdReportTemplate::default();
        let r = build_td_report(&template, &[0x5a; 64]);
        assert_eq!(&r[0..4], &[0x81, 0, 0, 0]);
        assert_eq!(&r[128..192], &[0x5a; 64]);
        assert_eq!(&r[MR_TD..MR_TD + 48], &template.mr_td);
        assert_eq!(&r[RTMR0 + 96..RTMR0 + 144], &template.rtmr[2]);
        assert_eq!(
            &r[TEE_INFO_HASH..TEE_INFO_HASH + 48],
            digest(&SHA384, &r[512..1024]).as_ref()
        );
        assert_eq!(
            &r[TEE_TCB_INFO_HASH..TEE_TCB_INFO_HASH + 48],
            digest(&SHA384, &r[256..495]).as_ref()
        );
        // Deterministic, and the MAC covers the report data.
        assert_eq!(r, build_td_report(&template, &[0x5a; 64]));
        let other = build_td_report(&template, &[0x5b; 64]);
        assert_ne!(&r[MAC..], &other[MAC..]);
        assert_eq!(&r[256..], &other[256..]);
    }

    #[test]
    fn failures_leave_the_buffer_alone() {
        let mut fake = FakeTdxGuest::new().fail_next(Errno::EIO);
        let mut req = TdxReportReq::new([1; 64]);
        assert_eq!(fake.get_report0(&mut req), Err(Errno::EIO as i32));
        assert_eq!(req.tdreport, [0; TDX_REPORT_LEN]);
        fake.get_report0(&mut req).unwrap();
        assert_eq!(&req.tdreport[128..192], &[1; 64]);
        assert_eq!(fake.requests(), 2);
        assert_eq!(fake.last_report_data(), Some([1; 64]));
    }
}
