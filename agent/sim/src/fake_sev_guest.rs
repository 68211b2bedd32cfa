// SPDX-License-Identifier: Apache-2.0
//! A fake `/dev/sev-guest` that behaves like the Linux driver (drivers/virt/coco/sev-guest) in
//! front of the simulated chip: it validates requests as the kernel does, signs reports with the
//! simulated VCEK, serves the simulated chain as a GHCB certificate table, and reproduces the
//! failure modes a guest sees, including the kernel wiping the VMPCK after a host or firmware
//! error so that every later request fails with `ENOTTY`.

use nix::errno::Errno;
use thimble_collect::sev_guest::{
    CERTS_PAGE_SIZE, ExtReportError, GuestRequestError, SEV_FW_BLOB_MAX_SIZE,
    SNP_GUEST_VMM_ERR_BUSY, SNP_GUEST_VMM_ERR_INVALID_LEN, SevGuestDevice, SnpReportReq,
    SnpReportResp,
};

use thimble_evidence::snp::CertTable;
use thimble_evidence::snp::report::SNP_REPORT_LEN;

use crate::signer::{ReportSigner, ReportTemplate, sim_chain};

/// Certificate table GUIDs (GHCB spec; RFC 4122 byte order), from the parser's own table.
pub use thimble_evidence::snp::cert_table::{ARK_GUID, ASK_GUID, VCEK_GUID};

/// SEV firmware status `INVALID_PARAM` (psp-sev.h), returned for a VMPL the guest may not request.
const SEV_RET_INVALID_PARAM: u32 = 0x16;

/// The driver presets `exitinfo2` to 0xff and copies it back on failures before the firmware.
const EXITINFO2_PRESET: u64 = 0xff;

/// The simulated chain as a GHCB certificate table: VCEK, ASK, ARK entries (DER), a terminating
/// all-zero entry, then the certificates. Offsets are relative to the table start.
pub fn sim_cert_table() -> Vec<u8> {
    sim_cert_table_with_gap(0)
}

/// [`sim_cert_table`] with `gap` zero bytes between the entries and the certificates, so the
/// table's used length grows by `gap` (to exercise buffer negotiation).
pub fn sim_cert_table_with_gap(gap: usize) -> Vec<u8> {
    let chain = sim_chain();
    build_cert_table(
        &[
            (VCEK_GUID, chain.vcek_der),
            (ASK_GUID, chain.ask_der),
            (ARK_GUID, chain.ark_der),
        ],
        gap,
    )
}

/// A certificate table holding `certs` in order, with `gap` bytes before the first certificate.
pub fn build_cert_table(certs: &[([u8; 16], &[u8])], gap: usize) -> Vec<u8> {
    CertTable::build_raw(certs, gap)
}

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Fake `/dev/sev-guest` (see the module docs). Configure with the `with_*` builders.
#[derive(Debug)]
pub struct FakeSevGuest {
    signer: ReportSigner,
    template: ReportTemplate,
    cert_table: Vec<u8>,
    guest_vmpl: u32,
    report_status: Option<u32>,
    firmware_error: Option<u32>,
    busy: bool,
    invalid_len_errno: i32,
    disabled: bool,
    requests: usize,
    certs_lens: Vec<usize>,
}

impl Default for FakeSevGuest {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeSevGuest {
    /// A guest at VMPL 0 on the simulated chip, with a host that supplies the simulated chain.
    pub fn new() -> Self {
        Self {
            signer: ReportSigner::sim(),
            template: ReportTemplate::default(),
            cert_table: sim_cert_table(),
            guest_vmpl: 0,
            report_status: None,
            firmware_error: None,
            busy: false,
            invalid_len_errno: Errno::EIO as i32,
            disabled: false,
            requests: 0,
            certs_lens: Vec::new(),
        }
    }

    /// Reports are built from `template` (`report_data` and `vmpl` still come from the request).
    pub fn with_template(mut self, template: ReportTemplate) -> Self {
        self.template = template;
        self
    }

    /// The host serves these bytes as the certificate table (empty: no certificates).
    pub fn with_cert_table(mut self, table: Vec<u8>) -> Self {
        self.cert_table = table;
        self
    }

    /// Pads the simulated table by `n` bytes before the certificates.
    pub fn with_extra_cert_bytes(mut self, n: usize) -> Self {
        self.cert_table = sim_cert_table_with_gap(n);
        self
    }

    /// The guest runs at `vmpl`; the firmware refuses reports for a more privileged (lower) VMPL.
    pub fn with_guest_vmpl(mut self, vmpl: u32) -> Self {
        self.guest_vmpl = vmpl;
        self
    }

    /// The firmware answers every report request with this `MSG_REPORT_RSP` status (the ioctl
    /// itself succeeds, and the channel stays usable).
    pub fn with_report_status(mut self, status: u32) -> Self {
        self.report_status = Some(status);
        self
    }

    /// The next request fails in the firmware with `fw_error` (`EIO`); the kernel then wipes the
    /// VMPCK and every later request fails with `ENOTTY`.
    pub fn with_firmware_error(mut self, fw_error: u32) -> Self {
        self.firmware_error = Some(fw_error);
        self
    }

    /// The host keeps answering BUSY: the driver gives up after 60 s with `ETIMEDOUT`, and wipes
    /// the VMPCK.
    pub fn with_busy_host(mut self) -> Self {
        self.busy = true;
        self
    }

    /// Errno for a certificate buffer that is too small. The current driver returns `EIO`;
    /// kernels before the IV-reuse fix could let the ioctl succeed (0).
    pub fn with_invalid_len_errno(mut self, errno: i32) -> Self {
        self.invalid_len_errno = errno;
        self
    }

    /// Ioctl calls so far, failed ones included.
    pub fn requests(&self) -> usize {
        self.requests
    }

    /// `certs_len` of every extended report request so far, in order.
    pub fn certs_lens(&self) -> &[usize] {
        &self.certs_lens
    }

    /// Whether the VMPCK has been wiped.
    pub fn is_disabled(&self) -> bool {
        self.disabled
    }

    /// Checks shared by both ioctls, in the driver's order; `Err` is an errno and `exitinfo2`.
    fn admit(&mut self, msg_version: u8) -> Result<(), (Errno, u64)> {
        self.requests += 1;
        if msg_version == 0 {
            // Rejected before the driver copies anything back.
            return Err((Errno::EINVAL, 0));
        }
        if self.disabled {
            return Err((Errno::ENOTTY, EXITINFO2_PRESET));
        }
        Ok(())
    }

    /// The guest request itself: host and firmware failures, then the report.
    fn guest_request(&mut self, req: &SnpReportReq) -> Result<Box<SnpReportResp>, (Errno, u64)> {
        if self.busy {
            self.disabled = true;
            return Err((Errno::ETIMEDOUT, u64::from(SNP_GUEST_VMM_ERR_BUSY) << 32));
        }
        if let Some(fw_error) = self.firmware_error.take() {
            self.disabled = true;
            return Err((Errno::EIO, u64::from(fw_error)));
        }
        Ok(self.report_response(req))
    }

    fn report_response(&self, req: &SnpReportReq) -> Box<SnpReportResp> {
        let mut resp = Box::<SnpReportResp>::default();
        let status = match self.report_status {
            Some(status) => status,
            None if req.vmpl < self.guest_vmpl || req.vmpl > 3 => SEV_RET_INVALID_PARAM,
            None => 0,
        };
        resp.data[0..4].copy_from_slice(&status.to_le_bytes());
        if status == 0 {
            let template = ReportTemplate {
                vmpl: req.vmpl,
                ..self.template.clone()
            };
            let report = self.signer.sign(&template, &req.user_data);
            resp.data[4..8].copy_from_slice(&len_u32(SNP_REPORT_LEN).to_le_bytes());
            resp.data[0x20..0x20 + SNP_REPORT_LEN].copy_from_slice(&report);
        }
        resp
    }
}

fn request_error((errno, exitinfo2): (Errno, u64)) -> GuestRequestError {
    GuestRequestError::from_exitinfo2(errno as i32, exitinfo2)
}

impl SevGuestDevice for FakeSevGuest {
    fn get_report(
        &mut self,
        msg_version: u8,
        req: &SnpReportReq,
    ) -> Result<Box<SnpReportResp>, GuestRequestError> {
        self.admit(msg_version).map_err(request_error)?;
        self.guest_request(req).map_err(request_error)
    }

    fn get_ext_report(
        &mut self,
        msg_version: u8,
        req: &SnpReportReq,
        certs: &mut [u8],
    ) -> Result<Box<SnpReportResp>, ExtReportError> {
        let plain = |e| ExtReportError {
            error: request_error(e),
            needed_certs_len: None,
        };
        self.admit(msg_version).map_err(plain)?;
        self.certs_lens.push(certs.len());
        if certs.is_empty() {
            // "caller does not want certificate data": a plain report.
            return self.guest_request(req).map_err(plain);
        }
        if certs.len() % CERTS_PAGE_SIZE as usize != 0
            || certs.len() > SEV_FW_BLOB_MAX_SIZE as usize
        {
            return Err(plain((Errno::EINVAL, EXITINFO2_PRESET)));
        }
        let resp = self.guest_request(req).map_err(plain)?;
        if self.cert_table.len() > certs.len() {
            // The driver reissues the request without certificates (to keep the IV sequence) and
            // reports the host's size, in whole pages, through certs_len.
            let page = CERTS_PAGE_SIZE as usize;
            let needed = self.cert_table.len().div_ceil(page) * page;
            return Err(ExtReportError {
                error: GuestRequestError::from_exitinfo2(
                    self.invalid_len_errno,
                    u64::from(SNP_GUEST_VMM_ERR_INVALID_LEN) << 32,
                ),
                needed_certs_len: Some(len_u32(needed)),
            });
        }
        // The driver zeroes its bounce buffer and copies all of it out.
        certs.fill(0);
        certs[..self.cert_table.len()].copy_from_slice(&self.cert_table);
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One certificate table entry: GUID, offset, length (GHCB spec).
    const CERT_TABLE_ENTRY_LEN: usize = 24;

    fn req() -> SnpReportReq {
        SnpReportReq::new([7; 64], 0)
    }

    #[test]
    fn guids_are_rfc4122_byte_order() {
        assert_eq!(hex::encode(VCEK_GUID), "63da758de6644564adc5f4b93be8accd");
        assert_eq!(hex::encode(ASK_GUID), "4ab7b379bbac4fe4a02f05aef327c782");
        assert_eq!(hex::encode(ARK_GUID), "c0b406a4a803495297433fb6014cd0ae");
    }

    #[test]
    fn sim_cert_table_layout() {
        let chain = sim_chain();
        let table = sim_cert_table();
        let header = 4 * CERT_TABLE_ENTRY_LEN;
        assert_eq!(
            table.len(),
            header + chain.vcek_der.len() + chain.ask_der.len() + chain.ark_der.len()
        );
        assert_eq!(&table[..16], &VCEK_GUID);
        let offset = u32::from_le_bytes(table[16..20].try_into().unwrap()) as usize;
        let length = u32::from_le_bytes(table[20..24].try_into().unwrap()) as usize;
        assert_eq!((offset, length), (header, chain.vcek_der.len()));
        assert_eq!(&table[offset..offset + length], chain.vcek_der);
        assert!(
            table[3 * CERT_TABLE_ENTRY_LEN..header]
                .iter()
                .all(|b| *b == 0)
        );
        let padded = sim_cert_table_with_gap(100);
        assert_eq!(padded.len(), table.len() + 100);
        let offset = u32::from_le_bytes(padded[16..20].try_into().unwrap()) as usize;
        assert_eq!(&padded[offset..offset + length], chain.vcek_der);
    }

    #[test]
    fn kernel_argument_checks() {
        let mut fake = FakeSevGuest::new();
        let e = fake.get_report(0, &req()).unwrap_err();
        assert_eq!(e.errno, Errno::EINVAL as i32);
        let e = fake.get_ext_report(1, &req(), &mut [0; 100]).unwrap_err();
        assert_eq!(e.error.errno, Errno::EINVAL as i32);
        let e = fake
            .get_ext_report(1, &req(), &mut [0; 0x5000])
            .unwrap_err();
        assert_eq!(e.error.errno, Errno::EINVAL as i32);
        // No certificates wanted: a plain report.
        fake.get_ext_report(1, &req(), &mut []).unwrap();
        assert_eq!(fake.requests(), 4);
        assert!(!fake.is_disabled());
    }

    #[test]
    fn small_buffer_gets_invalid_len_with_page_rounded_size() {
        let mut fake = FakeSevGuest::new();
        let e = fake.get_ext_report(1, &req(), &mut [0; 4096]).unwrap_err();
        assert_eq!(e.error.errno, Errno::EIO as i32);
        assert_eq!(e.error.vmm_error, SNP_GUEST_VMM_ERR_INVALID_LEN);
        let needed = sim_cert_table().len().div_ceil(4096) * 4096;
        assert_eq!(e.needed_certs_len, Some(needed as u32));
        let mut certs = vec![0xEE; needed];
        fake.get_ext_report(1, &req(), &mut certs).unwrap();
        assert_eq!(&certs[..sim_cert_table().len()], sim_cert_table());
        assert!(certs[sim_cert_table().len()..].iter().all(|b| *b == 0));
    }

    #[test]
    fn failures_wipe_the_vmpck() {
        let mut fake = FakeSevGuest::new().with_firmware_error(0x27);
        let e = fake.get_report(1, &req()).unwrap_err();
        assert_eq!((e.errno, e.fw_error), (Errno::EIO as i32, 0x27));
        let e = fake.get_report(1, &req()).unwrap_err();
        assert_eq!(e.errno, Errno::ENOTTY as i32);

        let mut fake = FakeSevGuest::new().with_busy_host();
        let e = fake.get_report(1, &req()).unwrap_err();
        assert_eq!(
            (e.errno, e.vmm_error),
            (Errno::ETIMEDOUT as i32, SNP_GUEST_VMM_ERR_BUSY)
        );
        assert!(fake.is_disabled());
    }

    #[test]
    fn report_carries_request_fields() {
        let mut fake = FakeSevGuest::new().with_guest_vmpl(1);
        let resp = fake.get_report(1, &SnpReportReq::new([9; 64], 2)).unwrap();
        assert_eq!(&resp.data[0..8], &[0, 0, 0, 0, 0xA0, 0x04, 0, 0]);
        let report = &resp.data[0x20..0x20 + SNP_REPORT_LEN];
        assert_eq!(&report[0x50..0x90], &[9; 64]);
        assert_eq!(&report[0x30..0x34], &2u32.to_le_bytes());
        let resp = fake.get_report(1, &SnpReportReq::new([9; 64], 0)).unwrap();
        assert_eq!(&resp.data[0..4], &SEV_RET_INVALID_PARAM.to_le_bytes());
    }
}
