// SPDX-License-Identifier: Apache-2.0
//! `/dev/tdx_guest` client (include/uapi/linux/tdx-guest.h, drivers/virt/coco/tdx-guest).
//!
//! [`TdxGuestDevice`] is a narrow trait shaped like the kernel's one report ioctl,
//! `TDX_CMD_GET_REPORT0`; the Linux implementation ([`LinuxTdxGuest`]) and
//! `thimble_sim::fake_tdx_guest::FakeTdxGuest` both stand behind it. [`TdxGuestClient`] turns the
//! ioctl outcome into a 1024-byte TDREPORT: it maps errno values to [`TdxGuestError`] and checks
//! that the report is a TDX report whose `REPORTMACSTRUCT.report_data` echoes the request. The
//! TDREPORT is not a quote; it is MACed with a platform key and only means something to a quoting
//! enclave (the host's Quote Generation Service, see [`crate::qgs`], or Azure IMDS). Parsing the
//! rest of it is `thimble-evidence`'s job. `unsafe` lives only in [`linux`].

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use thimble_evidence::tdx::td_report;

pub use linux::TdxReportReq;

/// Where the kernel creates the device node.
pub const DEFAULT_DEVICE_PATH: &str = "/dev/tdx_guest";

/// `TDX_REPORTDATA_LEN`: caller data bound into the report.
pub const TDX_REPORTDATA_LEN: usize = 64;

/// `TDX_REPORT_LEN`: size of a `TDREPORT_STRUCT`, under the kernel's name; the layout itself is
/// `thimble_evidence::tdx::td_report`'s.
pub const TDX_REPORT_LEN: usize = td_report::TD_REPORT_LEN;

/// `REPORTMACSTRUCT.report_type.type` (first byte of the TDREPORT): 0x81 is TDX (Intel TDX module
/// ABI, `REPORTTYPE`; 0x00 would be an SGX report).
pub const TDX_REPORT_TYPE: u8 = td_report::REPORT_TYPE_TDX;

/// Offset of `REPORTMACSTRUCT.report_data` in the TDREPORT, from the evidence crate's layout
/// (docs/formats.md §6.2).
pub const REPORT_DATA_OFFSET: usize = match td_report::TdReportFields::field("report_data") {
    Some(f) => f.offset,
    None => panic!("REPORTMACSTRUCT has report_data"),
};

/// The kernel's `/dev/tdx_guest` ABI: the `#[repr(C)]` request structure and the ioctl. The only
/// place in this module with `unsafe`.
#[expect(
    unsafe_code,
    reason = "ioctl(2) hands the kernel the raw address of this #[repr(C)] buffer"
)]
pub mod linux {
    use std::fs::File;
    use std::os::fd::AsRawFd;

    use nix::errno::Errno;

    use super::{TDX_REPORT_LEN, TDX_REPORTDATA_LEN};

    /// `struct tdx_report_req`: the kernel reads `reportdata` and writes `tdreport`.
    #[repr(C)]
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct TdxReportReq {
        /// User data bound into `REPORTMACSTRUCT.report_data`.
        pub reportdata: [u8; TDX_REPORTDATA_LEN],
        /// The `TDREPORT_STRUCT` the TDX module produced.
        pub tdreport: [u8; TDX_REPORT_LEN],
    }

    const _: () = assert!(size_of::<TdxReportReq>() == 1088);

    impl TdxReportReq {
        /// A request for `reportdata`.
        pub fn new(reportdata: [u8; TDX_REPORTDATA_LEN]) -> Self {
            Self {
                reportdata,
                tdreport: [0; TDX_REPORT_LEN],
            }
        }
    }

    impl Default for TdxReportReq {
        fn default() -> Self {
            Self::new([0; TDX_REPORTDATA_LEN])
        }
    }

    /// The raw ioctl, kept private so that no `unsafe fn` leaves this module.
    mod ioctl {
        use super::TdxReportReq;

        // TDX_CMD_GET_REPORT0 = _IOWR('T', 1, struct tdx_report_req) = 0xC4405401.
        nix::ioctl_readwrite!(tdx_cmd_get_report0, b'T', 1, TdxReportReq);
    }

    /// `TDX_CMD_GET_REPORT0`.
    pub(super) fn get_report0(file: &File, req: &mut TdxReportReq) -> Result<(), Errno> {
        // SAFETY: `req` is a live, exclusively borrowed `struct tdx_report_req` of exactly the
        // size encoded in the ioctl number; the kernel reads `reportdata` from it and writes
        // `tdreport` into it, nothing else.
        let result =
            unsafe { ioctl::tdx_cmd_get_report0(file.as_raw_fd(), std::ptr::from_mut(req)) };
        result.map(drop)
    }

    #[cfg(test)]
    mod tests {
        use super::TdxReportReq;

        #[test]
        fn ioctl_number_matches_the_uapi_header() {
            let size = size_of::<TdxReportReq>();
            assert_eq!(
                nix::request_code_readwrite!(b'T', 1, size) as u32,
                0xC440_5401
            );
        }
    }
}

/// The report ioctl of `/dev/tdx_guest`, as the kernel defines it.
pub trait TdxGuestDevice {
    /// `TDX_CMD_GET_REPORT0`: fills `req.tdreport` for `req.reportdata`, or fails with an errno.
    fn get_report0(&mut self, req: &mut TdxReportReq) -> Result<(), i32>;
}

impl<T: TdxGuestDevice + ?Sized> TdxGuestDevice for &mut T {
    fn get_report0(&mut self, req: &mut TdxReportReq) -> Result<(), i32> {
        (**self).get_report0(req)
    }
}

/// The real device node.
#[derive(Debug)]
pub struct LinuxTdxGuest {
    file: File,
    path: PathBuf,
}

impl LinuxTdxGuest {
    /// Opens the device read-write (the ioctl is `_IOWR`).
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, TdxGuestError> {
        let path = path.into();
        match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => Ok(Self { file, path }),
            Err(source) => Err(TdxGuestError::Open { path, source }),
        }
    }

    /// Opens [`DEFAULT_DEVICE_PATH`].
    pub fn open_default() -> Result<Self, TdxGuestError> {
        Self::open(DEFAULT_DEVICE_PATH)
    }

    /// The device path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl TdxGuestDevice for LinuxTdxGuest {
    fn get_report0(&mut self, req: &mut TdxReportReq) -> Result<(), i32> {
        linux::get_report0(&self.file, req).map_err(|errno| errno as i32)
    }
}

/// Why a `/dev/tdx_guest` report request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TdxGuestError {
    /// The device cannot be opened.
    #[error("cannot open {}", path.display())]
    Open {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The TDCALL failed (EIO).
    #[error("TDG.MR.REPORT TDCALL failed (EIO): the TDX module refused to produce a TDREPORT")]
    TdcallFailed,
    /// The TDX module rejected the operands.
    #[error(
        "TDX module rejected the report request's operands ({:?}); the report data or report \
         buffer was not acceptable to TDG.MR.REPORT",
        Errno::from_raw(*errno)
    )]
    InvalidOperand {
        /// The errno the kernel returned.
        errno: i32,
    },
    /// The TDX module is busy (EBUSY).
    #[error("TDX module is busy (EBUSY, TDCALL_OPERAND_BUSY); retry later")]
    Busy,
    /// The driver speaks another ioctl ABI (ENOTTY).
    #[error(
        "device does not implement TDX_CMD_GET_REPORT0 (ENOTTY); the tdx-guest driver speaks \
         another ioctl ABI (out-of-tree drivers differ)"
    )]
    NotSupported,
    /// Another errno.
    #[error("report request failed with errno {errno} ({})", Errno::from_raw(*errno).desc())]
    Io {
        /// The errno the kernel returned.
        errno: i32,
    },
    /// The TDREPORT is not a TDX one.
    #[error("TDREPORT type is {actual:#04x}, expected {TDX_REPORT_TYPE:#04x} (TDX)")]
    NotTdxReport {
        /// The report type found.
        actual: u8,
    },
    /// The TDREPORT is for other report data.
    #[error(
        "TDREPORT report_data does not echo the requested report data; the report does not \
         belong to this request"
    )]
    ReportDataMismatch,
}

/// Maps the errno of `TDX_CMD_GET_REPORT0`. `tdx_mcall_get_report0` (arch/x86/coco/tdx/tdx.c)
/// returns `EIO` for a failed TDCALL and, for `TDCALL_INVALID_OPERAND`, `EINVAL` (`ENXIO` since
/// the TSM measurement rework, which also added `EBUSY` for `TDCALL_OPERAND_BUSY`).
fn request_error(errno: i32) -> TdxGuestError {
    match Errno::from_raw(errno) {
        Errno::EIO => TdxGuestError::TdcallFailed,
        Errno::EINVAL | Errno::ENXIO => TdxGuestError::InvalidOperand { errno },
        Errno::EBUSY => TdxGuestError::Busy,
        Errno::ENOTTY => TdxGuestError::NotSupported,
        _ => TdxGuestError::Io { errno },
    }
}

/// Report requests over a [`TdxGuestDevice`].
#[derive(Debug)]
pub struct TdxGuestClient<D: TdxGuestDevice> {
    device: D,
}

impl<D: TdxGuestDevice> TdxGuestClient<D> {
    /// A client over `device`.
    pub fn new(device: D) -> Self {
        Self { device }
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The device, giving up the client.
    pub fn into_device(self) -> D {
        self.device
    }

    /// A TDREPORT (1024 bytes) binding `report_data`. The request is made once; a TDCALL failure
    /// is not retried here.
    pub fn get_report(&mut self, report_data: &[u8; 64]) -> Result<Vec<u8>, TdxGuestError> {
        let mut req = TdxReportReq::new(*report_data);
        self.device.get_report0(&mut req).map_err(request_error)?;
        check_report(&req.tdreport, report_data)?;
        Ok(req.tdreport.to_vec())
    }
}

/// Checks that `tdreport` is a TDX report for `report_data`.
pub fn check_report(
    tdreport: &[u8; TDX_REPORT_LEN],
    report_data: &[u8; TDX_REPORTDATA_LEN],
) -> Result<(), TdxGuestError> {
    if tdreport[0] != TDX_REPORT_TYPE {
        return Err(TdxGuestError::NotTdxReport {
            actual: tdreport[0],
        });
    }
    if tdreport[REPORT_DATA_OFFSET..REPORT_DATA_OFFSET + TDX_REPORTDATA_LEN] != report_data[..] {
        return Err(TdxGuestError::ReportDataMismatch);
    }
    Ok(())
}

/// Whether `path` can serve report requests, for `detect`: it must be a character device this
/// process can open read-write. Issues no ioctl. `Err` carries the reason in words.
pub fn probe(path: &Path) -> Result<(), String> {
    let shown = path.display();
    let metadata = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "{shown} does not exist: not a TDX guest, or the tdx_guest driver is not loaded"
            ));
        }
        Err(e) => return Err(format!("cannot stat {shown}: {e}")),
    };
    if !metadata.file_type().is_char_device() {
        return Err(format!("{shown} is not a character device"));
    }
    match LinuxTdxGuest::open(path) {
        Ok(_) => Ok(()),
        Err(TdxGuestError::Open { source, .. })
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            Err(format!(
                "{shown} exists but cannot be opened read-write: permission denied (run as root \
                 or grant access to the device)"
            ))
        }
        Err(TdxGuestError::Open { source, .. }) => Err(format!("cannot open {shown}: {source}")),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report_for(report_data: &[u8; 64]) -> [u8; TDX_REPORT_LEN] {
        let mut r = [0u8; TDX_REPORT_LEN];
        r[0] = TDX_REPORT_TYPE;
        r[REPORT_DATA_OFFSET..REPORT_DATA_OFFSET + 64].copy_from_slice(report_data);
        r
    }

    #[test]
    fn errno_mapping() {
        assert!(matches!(
            request_error(Errno::EIO as i32),
            TdxGuestError::TdcallFailed
        ));
        assert!(matches!(
            request_error(Errno::EINVAL as i32),
            TdxGuestError::InvalidOperand { .. }
        ));
        assert!(matches!(
            request_error(Errno::ENXIO as i32),
            TdxGuestError::InvalidOperand { .. }
        ));
        assert!(matches!(
            request_error(Errno::EBUSY as i32),
            TdxGuestError::Busy
        ));
        assert!(matches!(
            request_error(Errno::ENOTTY as i32),
            TdxGuestError::NotSupported
        ));
        assert!(
            matches!(request_error(Errno::EFAULT as i32), TdxGuestError::Io { errno } if errno == Errno::EFAULT as i32)
        );
        assert!(
            request_error(Errno::EIO as i32)
                .to_string()
                .contains("TDCALL failed")
        );
    }

    #[test]
    fn report_checks() {
        let data = [7u8; 64];
        let report = report_for(&data);
        check_report(&report, &data).unwrap();
        assert!(matches!(
            check_report(&report, &[8; 64]),
            Err(TdxGuestError::ReportDataMismatch)
        ));
        let mut sgx = report;
        sgx[0] = 0;
        assert!(matches!(
            check_report(&sgx, &data),
            Err(TdxGuestError::NotTdxReport { actual: 0 })
        ));
    }

    #[test]
    fn probe_reasons() {
        let missing = probe(Path::new("/nonexistent/tdx_guest")).unwrap_err();
        assert!(missing.contains("does not exist"), "{missing}");
        let dir = std::env::temp_dir();
        let not_char = probe(&dir).unwrap_err();
        assert!(not_char.contains("not a character device"), "{not_char}");
    }
}
