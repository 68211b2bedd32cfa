// SPDX-License-Identifier: Apache-2.0
//! A fake `/dev/tdx_guest` that behaves like the Linux driver (drivers/virt/coco/tdx-guest) in
//! front of a simulated TDX module: `TDX_CMD_GET_REPORT0` copies the caller's report data into a
//! plausible `TDREPORT_STRUCT` (docs/formats.md §6.2: type 0x81, deterministic measurements, hashes
//! that match the structures they cover) and, like the kernel, writes nothing back when the
//! request fails. Error injection covers the errno values the driver returns and a module that
//! answers with someone else's report.
//!
//! The report is laid out by `thimble_evidence::tdx::td_report`'s encoder, the layout its parser
//! reads; this module only fills in values and the hashes. The report MAC is not a real MAC (only
//! the TDX module knows the key); nothing produced here can be quoted by a real quoting enclave.

use nix::errno::Errno;
use ring::digest::{SHA256, SHA384, digest};
use thimble_collect::tdx_guest::{
    TDX_REPORT_LEN, TDX_REPORTDATA_LEN, TdxGuestDevice, TdxReportReq,
};
use thimble_evidence::tdx::TdReportFields;
use thimble_evidence::tdx::td_report::{
    MAC_INPUT_RANGE, REPORT_TYPE_TDX, TD_INFO_RANGE, TEE_TCB_INFO_RANGE,
};

fn sha384(label: &str) -> [u8; 48] {
    sha384_of(label.as_bytes())
}

/// What the simulated TDX module reports besides the caller's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdReportTemplate {
    /// REPORTMACSTRUCT.CPUSVN: the platform's CPU security version, 16 bytes as the report
    /// carries them.
    pub cpu_svn: [u8; 16],
    /// TEE_TCB_INFO.TEE_TCB_SVN of the TDX module (byte 0 its SVN, byte 1 its major version);
    /// a quote of the report carries it, and TCB info levels are matched against it.
    pub tee_tcb_svn: [u8; 16],
    /// TEE_TCB_INFO.MRSEAM: SHA-384 measurement of the TDX module.
    pub mr_seam: [u8; 48],
    /// TEE_TCB_INFO.MRSIGNERSEAM: measurement of the module's signer (all zero for Intel's).
    pub mr_signer_seam: [u8; 48],
    /// TEE_TCB_INFO.ATTRIBUTES of the TDX module (zero for a production module).
    pub seam_attributes: [u8; 8],
    /// TDINFO_STRUCT.ATTRIBUTES, little-endian: bit 0 DEBUG, bit 28 SEPT_VE_DISABLE, …
    pub td_attributes: [u8; 8],
    /// TDINFO_STRUCT.XFAM: the XCR0/IA32_XSS feature bits the TD may use.
    pub xfam: [u8; 8],
    /// TDINFO_STRUCT.MRTD: SHA-384 build-time measurement of the TD.
    pub mr_td: [u8; 48],
    /// TDINFO_STRUCT.MRCONFIGID, set by the host when it creates the TD.
    pub mr_config_id: [u8; 48],
    /// TDINFO_STRUCT.MROWNER, set by the host when it creates the TD.
    pub mr_owner: [u8; 48],
    /// TDINFO_STRUCT.MROWNERCONFIG, set by the host when it creates the TD.
    pub mr_owner_config: [u8; 48],
    /// TDINFO_STRUCT.RTMR\[0..4\]: the runtime measurement registers the guest extends.
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
    td_report_fields(template, report_data).encode()
}

/// The fields of [`build_td_report`]'s report, hashes and MAC filled in.
fn td_report_fields(
    template: &TdReportTemplate,
    report_data: &[u8; TDX_REPORTDATA_LEN],
) -> TdReportFields {
    let mut r = TdReportFields {
        // REPORTTYPE: type, subtype 0, version 0, reserved.
        report_type: [REPORT_TYPE_TDX, 0, 0, 0],
        cpu_svn: template.cpu_svn,
        tee_tcb_info_hash: [0; 48],
        tee_info_hash: [0; 48],
        report_data: *report_data,
        mac: [0; 32],
        // A non-zero validity bitmap; its exact bit assignment is not modelled.
        tee_tcb_info_valid: [0xff, 0x01, 0, 0, 0, 0, 0, 0],
        tee_tcb_svn: template.tee_tcb_svn,
        mrseam: template.mr_seam,
        mrsignerseam: template.mr_signer_seam,
        seam_attributes: template.seam_attributes,
        tee_tcb_svn_2: [0; 16],
        td_attributes: template.td_attributes,
        xfam: template.xfam,
        mrtd: template.mr_td,
        mrconfigid: template.mr_config_id,
        mrowner: template.mr_owner,
        mrownerconfig: template.mr_owner_config,
        rtmr: template.rtmr,
        servtd_hash: [0; 48],
    };
    let bytes = r.encode();
    r.tee_tcb_info_hash = sha384_of(&bytes[TEE_TCB_INFO_RANGE]);
    r.tee_info_hash = sha384_of(&bytes[TD_INFO_RANGE]);
    // Stand-in for the MAC, which is keyed with a secret of the CPU: a plain digest of the MAC'd
    // bytes (hashes included), so that it changes with them.
    let mac = digest(&SHA256, &r.encode()[MAC_INPUT_RANGE]);
    r.mac.copy_from_slice(mac.as_ref());
    r
}

fn sha384_of(bytes: &[u8]) -> [u8; 48] {
    let mut out = [0u8; 48];
    out.copy_from_slice(digest(&SHA384, bytes).as_ref());
    out
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
        let mut report = td_report_fields(&self.template, &data);
        // Set after the MAC, as a module that mislabels its report would.
        if let Some(report_type) = self.report_type {
            report.report_type[0] = report_type;
        }
        req.tdreport = report.encode();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use thimble_evidence::tdx::TdReport;

    use super::*;

    #[test]
    fn report_layout() {
        let template = TdReportTemplate::default();
        let r = build_td_report(&template, &[0x5a; 64]);
        assert_eq!(&r[0..4], &[0x81, 0, 0, 0]);
        assert_eq!(&r[128..192], &[0x5a; 64]);
        let parsed = TdReport::parse(&r).unwrap();
        assert_eq!(parsed.mrtd, template.mr_td);
        assert_eq!(parsed.rtmr[2], template.rtmr[2]);
        assert_eq!(&r[0x200 + 0x10..0x200 + 0x40], &template.mr_td);
        assert_eq!(
            parsed.tee_info_hash,
            digest(&SHA384, &r[512..1024]).as_ref()
        );
        assert_eq!(
            parsed.tee_tcb_info_hash,
            digest(&SHA384, &r[256..495]).as_ref()
        );
        // Deterministic, and the MAC covers the report data.
        assert_eq!(r, build_td_report(&template, &[0x5a; 64]));
        let other = build_td_report(&template, &[0x5b; 64]);
        assert_ne!(&r[224..], &other[224..]);
        assert_eq!(&r[256..], &other[256..]);
        assert_eq!(parsed.mac, digest(&SHA256, &r[..224]).as_ref());
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
