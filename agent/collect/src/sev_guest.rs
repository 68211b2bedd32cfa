// SPDX-License-Identifier: Apache-2.0
//! `/dev/sev-guest` client (include/uapi/linux/sev-guest.h, drivers/virt/coco/sev-guest).
//!
//! [`SevGuestDevice`] is a narrow trait shaped like the kernel's two report ioctls; the Linux
//! implementation ([`LinuxSevGuest`]) and `thimble_sim::fake_sev_guest::FakeSevGuest` both stand
//! behind it. [`SevGuestClient`] turns raw ioctl outcomes into reports and certificate tables: it
//! negotiates the certificate buffer size, maps errno / firmware / VMM errors to
//! [`SevGuestError`], and bounds-checks everything the host put into the response. It does not
//! interpret the report; that is `thimble-evidence`'s job.
//!
//! The channel is fragile: any host or firmware error makes the kernel wipe the VMPCK (to prevent
//! AES-GCM IV reuse), after which every request fails with `ENOTTY` until reboot. So the client
//! never loops and never retries anything but the one certificate-length renegotiation the kernel
//! itself asks for. `unsafe` lives only in [`linux`].

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

pub use linux::{SnpExtReportReq, SnpGuestRequestIoctl, SnpReportReq, SnpReportResp};

/// Where the kernel creates the device node.
pub const DEFAULT_DEVICE_PATH: &str = "/dev/sev-guest";

/// Size of an `ATTESTATION_REPORT`: the one layout in `thimble_evidence::snp::report`.
pub const SNP_REPORT_LEN: usize = thimble_evidence::snp::report::SNP_REPORT_LEN;

/// Largest certificate buffer the driver accepts (`SEV_FW_BLOB_MAX_SIZE`).
pub const SEV_FW_BLOB_MAX_SIZE: u32 = 0x4000;

/// `certs_len` must be a multiple of the guest page size.
pub const CERTS_PAGE_SIZE: u32 = 4096;

/// `exitinfo2` bits 63:32: the host's certificate data does not fit the buffer.
pub const SNP_GUEST_VMM_ERR_INVALID_LEN: u32 = 1;

/// `exitinfo2` bits 63:32: the host is throttling guest requests.
pub const SNP_GUEST_VMM_ERR_BUSY: u32 = 2;

/// `SEV_RET_NO_FW_CALL` (psp-sev.h): the request never reached the firmware.
const SEV_RET_NO_FW_CALL: u32 = u32::MAX;

/// The driver presets `exitinfo2` to 0xff and copies it back on failures that never reached the
/// firmware (bad `certs_len`, wiped VMPCK), so this value is not a firmware status.
const EXITINFO2_PRESET: u32 = 0xff;

/// `msg_version` of `MSG_REPORT_REQ`; the kernel rejects 0.
const MSG_VERSION: u8 = 1;

/// `MSG_REPORT_RSP` (SEV-SNP ABI spec, Table "MSG_REPORT_RSP Message Structure"): u32 status,
/// u32 report_size, 24 reserved bytes, then the report.
const MSG_REPORT_RSP_HEADER_LEN: usize = 0x20;

/// Certificate table entry (GHCB spec, section "SNP Extended Guest Request"): GUID[16],
/// u32 offset, u32 length, little-endian; the table ends with an all-zero entry.
const CERT_TABLE_ENTRY_LEN: usize = 24;

/// The kernel's `/dev/sev-guest` ABI: `#[repr(C)]` request structures and the ioctls. The only
/// place in thimble with `unsafe`.
#[expect(
    unsafe_code,
    reason = "ioctl(2) hands the kernel raw addresses of these #[repr(C)] buffers"
)]
pub mod linux {
    use std::fs::File;
    use std::os::fd::AsRawFd;

    use nix::errno::Errno;

    /// `struct snp_report_req`.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct SnpReportReq {
        /// Guest data placed in `REPORT_DATA`.
        pub user_data: [u8; 64],
        /// VMPL the report is requested for.
        pub vmpl: u32,
        /// Reserved, zero.
        pub rsvd: [u8; 28],
    }

    /// `struct snp_report_resp`: the decrypted `MSG_REPORT_RSP`.
    #[repr(C)]
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct SnpReportResp {
        /// The response message.
        pub data: [u8; 4000],
    }

    /// `struct snp_guest_request_ioctl`; `exitinfo2` is the union of `{fw_error, vmm_error}`
    /// (low and high 32 bits on little-endian x86).
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct SnpGuestRequestIoctl {
        /// Message version (1).
        pub msg_version: u8,
        /// Address of the request structure.
        pub req_data: u64,
        /// Address of the response structure.
        pub resp_data: u64,
        /// `{fw_error, vmm_error}`, written by the kernel.
        pub exitinfo2: u64,
    }

    /// `struct snp_ext_report_req`.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct SnpExtReportReq {
        /// The report request.
        pub data: SnpReportReq,
        /// Address of the certificate buffer.
        pub certs_address: u64,
        /// Page-aligned buffer length; on `INVALID_LEN` the kernel rewrites it with the size the
        /// host needs.
        pub certs_len: u32,
    }

    const _: () = assert!(size_of::<SnpReportReq>() == 96);
    const _: () = assert!(size_of::<SnpReportResp>() == 4000);
    const _: () = assert!(size_of::<SnpGuestRequestIoctl>() == 32);
    const _: () = assert!(size_of::<SnpExtReportReq>() == 112);

    impl SnpReportReq {
        /// A request for `user_data` at `vmpl`.
        pub fn new(user_data: [u8; 64], vmpl: u32) -> Self {
            Self {
                user_data,
                vmpl,
                rsvd: [0; 28],
            }
        }
    }

    impl Default for SnpReportReq {
        fn default() -> Self {
            Self::new([0; 64], 0)
        }
    }

    impl Default for SnpReportResp {
        fn default() -> Self {
            Self { data: [0; 4000] }
        }
    }

    /// The raw ioctls, kept private so that no `unsafe fn` leaves this module.
    mod ioctl {
        use super::SnpGuestRequestIoctl;

        // SNP_GET_REPORT = _IOWR('S', 0x0, struct snp_guest_request_ioctl) = 0xC0205300.
        nix::ioctl_readwrite!(snp_get_report, b'S', 0x0, SnpGuestRequestIoctl);
        // SNP_GET_EXT_REPORT = _IOWR('S', 0x2, struct snp_guest_request_ioctl) = 0xC0205302.
        nix::ioctl_readwrite!(snp_get_ext_report, b'S', 0x2, SnpGuestRequestIoctl);
    }

    /// Result of one ioctl: the errno (if any) and `exitinfo2` as the kernel left it.
    pub(super) struct Outcome {
        pub result: Result<(), Errno>,
        pub exitinfo2: u64,
        /// `certs_len` after the call (the kernel rewrites it on `INVALID_LEN`).
        pub certs_len: u32,
    }

    fn addr<T>(p: *mut T) -> u64 {
        p.expose_provenance() as u64
    }

    /// `SNP_GET_REPORT`.
    pub(super) fn get_report(
        file: &File,
        msg_version: u8,
        req: &SnpReportReq,
        resp: &mut SnpReportResp,
    ) -> Outcome {
        let mut req = *req;
        let mut ioctl = SnpGuestRequestIoctl {
            msg_version,
            req_data: addr(&raw mut req),
            resp_data: addr(std::ptr::from_mut(resp)),
            exitinfo2: 0,
        };
        // SAFETY: `ioctl` points at a live `snp_guest_request_ioctl` whose `req_data` and
        // `resp_data` point at live, exclusively borrowed buffers of exactly the sizes the kernel
        // reads (`snp_report_req`) and writes (`snp_report_resp`) for this command.
        let result = unsafe { ioctl::snp_get_report(file.as_raw_fd(), &raw mut ioctl) };
        Outcome {
            result: result.map(drop),
            exitinfo2: ioctl.exitinfo2,
            certs_len: 0,
        }
    }

    /// `SNP_GET_EXT_REPORT` with `certs` as the certificate buffer (empty: no certificates).
    pub(super) fn get_ext_report(
        file: &File,
        msg_version: u8,
        req: &SnpReportReq,
        certs: &mut [u8],
        resp: &mut SnpReportResp,
    ) -> Outcome {
        let Ok(certs_len) = u32::try_from(certs.len()) else {
            return Outcome {
                result: Err(Errno::EINVAL),
                exitinfo2: 0,
                certs_len: 0,
            };
        };
        let mut ext = SnpExtReportReq {
            data: *req,
            certs_address: if certs.is_empty() {
                0
            } else {
                addr(certs.as_mut_ptr())
            },
            certs_len,
        };
        let mut ioctl = SnpGuestRequestIoctl {
            msg_version,
            req_data: addr(&raw mut ext),
            resp_data: addr(std::ptr::from_mut(resp)),
            exitinfo2: 0,
        };
        // SAFETY: as for `get_report`; in addition `certs_address`/`certs_len` describe the
        // exclusively borrowed `certs` slice, and the kernel writes at most `certs_len` bytes
        // there. It writes back only `ext` (a live local) and `ioctl`.
        let result = unsafe { ioctl::snp_get_ext_report(file.as_raw_fd(), &raw mut ioctl) };
        Outcome {
            result: result.map(drop),
            exitinfo2: ioctl.exitinfo2,
            certs_len: ext.certs_len,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::SnpGuestRequestIoctl;

        #[test]
        fn ioctl_numbers_match_the_uapi_header() {
            let size = size_of::<SnpGuestRequestIoctl>();
            assert_eq!(
                nix::request_code_readwrite!(b'S', 0x0, size) as u32,
                0xC020_5300
            );
            assert_eq!(
                nix::request_code_readwrite!(b'S', 0x2, size) as u32,
                0xC020_5302
            );
        }
    }
}

/// A failed guest request as the kernel reports it: the errno of the ioctl (0 if it succeeded)
/// and `exitinfo2` split into its firmware (low 32 bits) and VMM (high 32 bits) halves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestRequestError {
    /// The errno of the ioctl (0 when it succeeded).
    pub errno: i32,
    /// The firmware error: the low 32 bits of `exitinfo2`.
    pub fw_error: u32,
    /// The VMM error: the high 32 bits of `exitinfo2`.
    pub vmm_error: u32,
}

impl GuestRequestError {
    /// Splits `exitinfo2` as the kernel fills it.
    pub fn from_exitinfo2(errno: i32, exitinfo2: u64) -> Self {
        Self {
            errno,
            fw_error: exitinfo2 as u32,
            vmm_error: (exitinfo2 >> 32) as u32,
        }
    }

    /// `exitinfo2` again.
    pub fn exitinfo2(&self) -> u64 {
        (u64::from(self.vmm_error) << 32) | u64::from(self.fw_error)
    }
}

/// A failed extended report request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtReportError {
    /// The request error.
    pub error: GuestRequestError,
    /// On `vmm_error == INVALID_LEN`: the `certs_len` the kernel wrote back, i.e. the buffer size
    /// the host needs.
    pub needed_certs_len: Option<u32>,
}

/// The two report ioctls of `/dev/sev-guest`, as the kernel defines them.
pub trait SevGuestDevice {
    /// `SNP_GET_REPORT`.
    fn get_report(
        &mut self,
        msg_version: u8,
        req: &SnpReportReq,
    ) -> Result<Box<SnpReportResp>, GuestRequestError>;

    /// `SNP_GET_EXT_REPORT`. The length of `certs` is the `certs_len` sent (page aligned, 0 for
    /// no certificates); on VMM `INVALID_LEN` the kernel rewrites `certs_len`, returned in
    /// `needed_certs_len`.
    fn get_ext_report(
        &mut self,
        msg_version: u8,
        req: &SnpReportReq,
        certs: &mut [u8],
    ) -> Result<Box<SnpReportResp>, ExtReportError>;
}

impl<T: SevGuestDevice + ?Sized> SevGuestDevice for &mut T {
    fn get_report(
        &mut self,
        msg_version: u8,
        req: &SnpReportReq,
    ) -> Result<Box<SnpReportResp>, GuestRequestError> {
        (**self).get_report(msg_version, req)
    }

    fn get_ext_report(
        &mut self,
        msg_version: u8,
        req: &SnpReportReq,
        certs: &mut [u8],
    ) -> Result<Box<SnpReportResp>, ExtReportError> {
        (**self).get_ext_report(msg_version, req, certs)
    }
}

/// The real device node.
#[derive(Debug)]
pub struct LinuxSevGuest {
    file: File,
    path: PathBuf,
}

/// The kernel name of the character device `file` refers to (`DEVNAME` in
/// `/sys/dev/char/MAJOR:MINOR/uevent`); `Some("")` for a file that is not a character device, and
/// `None` when sysfs cannot tell (not mounted, as in an early initramfs).
fn char_device_name(file: &File) -> Option<String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = file.metadata().ok()?;
    if !meta.file_type().is_char_device() {
        return Some(String::new());
    }
    let rdev = meta.rdev();
    let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
    let uevent = std::fs::read_to_string(format!("/sys/dev/char/{major}:{minor}/uevent")).ok()?;
    uevent
        .lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))
        .map(str::to_string)
}

impl LinuxSevGuest {
    /// Opens the device read-write (the ioctls are `_IOWR`).
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, SevGuestError> {
        let path = path.into();
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => file,
            Err(source) => return Err(SevGuestError::Open { path, source }),
        };
        // The kernel answers ENOTTY both for an ioctl the device does not know and for a
        // sev-guest whose VMPCK was wiped; tell the first case apart up front, so that a wrong
        // --device is not reported as a disabled guest channel.
        if let Some(found) = char_device_name(&file) {
            if found != "sev-guest" {
                let found = if found.is_empty() {
                    "not a character device".to_string()
                } else {
                    format!("the character device {found:?}")
                };
                return Err(SevGuestError::NotSevGuest { path, found });
            }
        }
        Ok(Self { file, path })
    }

    /// Opens [`DEFAULT_DEVICE_PATH`].
    pub fn open_default() -> Result<Self, SevGuestError> {
        Self::open(DEFAULT_DEVICE_PATH)
    }

    /// The device path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl SevGuestDevice for LinuxSevGuest {
    fn get_report(
        &mut self,
        msg_version: u8,
        req: &SnpReportReq,
    ) -> Result<Box<SnpReportResp>, GuestRequestError> {
        let mut resp = Box::<SnpReportResp>::default();
        let outcome = linux::get_report(&self.file, msg_version, req, &mut resp);
        match outcome.result {
            Ok(()) => Ok(resp),
            Err(errno) => Err(GuestRequestError::from_exitinfo2(
                errno as i32,
                outcome.exitinfo2,
            )),
        }
    }

    fn get_ext_report(
        &mut self,
        msg_version: u8,
        req: &SnpReportReq,
        certs: &mut [u8],
    ) -> Result<Box<SnpReportResp>, ExtReportError> {
        let mut resp = Box::<SnpReportResp>::default();
        let outcome = linux::get_ext_report(&self.file, msg_version, req, certs, &mut resp);
        let errno = match outcome.result {
            Ok(()) => 0,
            Err(errno) => errno as i32,
        };
        let error = GuestRequestError::from_exitinfo2(errno, outcome.exitinfo2);
        let invalid_len = error.vmm_error == SNP_GUEST_VMM_ERR_INVALID_LEN;
        // Kernels before the IV-reuse fix could report INVALID_LEN with a successful ioctl; the
        // response is then not the one for this buffer, so it is an error either way.
        if errno == 0 && !invalid_len {
            return Ok(resp);
        }
        Err(ExtReportError {
            error,
            needed_certs_len: invalid_len.then_some(outcome.certs_len),
        })
    }
}

/// Why a `/dev/sev-guest` request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SevGuestError {
    /// The device cannot be opened.
    #[error("cannot open {}", path.display())]
    Open {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The path is not the SEV-SNP guest device.
    #[error("{path} is not the SEV-SNP guest device (it is {found})")]
    NotSevGuest {
        /// The path.
        path: PathBuf,
        /// What the path is instead.
        found: String,
    },
    /// The firmware refused the request.
    #[error("firmware rejected the report request with status {status:#x} ({name})")]
    Firmware {
        /// The firmware status (`SEV_RET_*`).
        status: u32,
        /// Its name.
        name: &'static str,
    },
    /// The host refused the request.
    #[error(
        "host rejected the guest request with vmm_error {vmm_error} ({}), errno {errno}",
        vmm_error_name(*vmm_error)
    )]
    Vmm {
        /// The VMM error: the high 32 bits of `exitinfo2`.
        vmm_error: u32,
        /// The errno of the ioctl (0 when it succeeded).
        errno: i32,
    },
    /// The kernel disabled the channel (ENOTTY).
    #[error(
        "guest request channel is disabled (ENOTTY): the kernel wipes the VMPCK after a host or \
         firmware error and every later request fails until the guest reboots (or the device does \
         not implement this ioctl)"
    )]
    ChannelDisabled,
    /// The host throttles (vmm_error BUSY).
    #[error("host is busy and throttles guest requests (vmm_error BUSY)")]
    Busy,
    /// The host throttled past the driver's retry window (ETIMEDOUT).
    #[error(
        "host throttled the guest request for longer than the driver's 60 s retry window \
         (ETIMEDOUT); the kernel disables the channel until the guest reboots"
    )]
    TimedOut,
    /// The host asked for an impossible certificate buffer.
    #[error(
        "host asked for a certificate buffer of {requested} bytes, which is not a multiple of \
         4096 larger than the buffer offered and at most 16384 (SEV_FW_BLOB_MAX_SIZE)"
    )]
    BadCertsLength {
        /// The buffer length the host asked for.
        requested: u32,
    },
    /// The response does not decode.
    #[error("malformed guest request response: {reason}")]
    MalformedResponse {
        /// What is wrong.
        reason: String,
    },
    /// Another errno.
    #[error("guest request failed with errno {errno} ({})", Errno::from_raw(*errno).desc())]
    Io {
        /// The errno of the ioctl (0 when it succeeded).
        errno: i32,
    },
}

/// Name of an SEV firmware status code (`sev_ret_code` in include/uapi/linux/psp-sev.h).
pub fn sev_status_name(status: u32) -> &'static str {
    match status {
        0x00 => "SUCCESS",
        0x01 => "INVALID_PLATFORM_STATE",
        0x02 => "INVALID_GUEST_STATE",
        0x03 => "INVALID_CONFIG",
        0x04 => "INVALID_LEN",
        0x05 => "ALREADY_OWNED",
        0x06 => "INVALID_CERTIFICATE",
        0x07 => "POLICY_FAILURE",
        0x08 => "INACTIVE",
        0x09 => "INVALID_ADDRESS",
        0x0A => "BAD_SIGNATURE",
        0x0B => "BAD_MEASUREMENT",
        0x0C => "ASID_OWNED",
        0x0D => "INVALID_ASID",
        0x0E => "WBINVD_REQUIRED",
        0x0F => "DFFLUSH_REQUIRED",
        0x10 => "INVALID_GUEST",
        0x11 => "INVALID_COMMAND",
        0x12 => "ACTIVE",
        0x13 => "HWSEV_RET_PLATFORM",
        0x14 => "HWSEV_RET_UNSAFE",
        0x15 => "UNSUPPORTED",
        0x16 => "INVALID_PARAM",
        0x17 => "RESOURCE_LIMIT",
        0x18 => "SECURE_DATA_INVALID",
        0x19 => "INVALID_PAGE_SIZE",
        0x1A => "INVALID_PAGE_STATE",
        0x1B => "INVALID_MDATA_ENTRY",
        0x1C => "INVALID_PAGE_OWNER",
        0x1D => "INVALID_PAGE_AEAD_OFLOW",
        0x1F => "RB_MODE_EXITED",
        0x20 => "RMP_INIT_REQUIRED",
        0x21 => "BAD_SVN",
        0x22 => "BAD_VERSION",
        0x23 => "SHUTDOWN_REQUIRED",
        0x24 => "UPDATE_FAILED",
        0x25 => "RESTORE_REQUIRED",
        0x26 => "RMP_INITIALIZATION_FAILED",
        0x27 => "INVALID_KEY",
        SEV_RET_NO_FW_CALL => "NO_FW_CALL",
        _ => "UNKNOWN",
    }
}

fn vmm_error_name(vmm_error: u32) -> &'static str {
    match vmm_error {
        SNP_GUEST_VMM_ERR_INVALID_LEN => "INVALID_LEN",
        SNP_GUEST_VMM_ERR_BUSY => "BUSY",
        _ => "unknown",
    }
}

/// Maps a failed request to an error. Only `EIO` carries a meaningful `exitinfo2`: on other
/// errnos the driver may copy back its 0xff preset.
fn request_error(e: GuestRequestError) -> SevGuestError {
    const EIO: i32 = Errno::EIO as i32;
    match e.errno {
        x if x == Errno::ENOTTY as i32 => SevGuestError::ChannelDisabled,
        x if x == Errno::ETIMEDOUT as i32 => SevGuestError::TimedOut,
        EIO | 0 if e.vmm_error == SNP_GUEST_VMM_ERR_BUSY => SevGuestError::Busy,
        EIO | 0 if e.vmm_error != 0 && e.vmm_error != SEV_RET_NO_FW_CALL => SevGuestError::Vmm {
            vmm_error: e.vmm_error,
            errno: e.errno,
        },
        EIO if !matches!(e.fw_error, 0 | EXITINFO2_PRESET | SEV_RET_NO_FW_CALL) => {
            SevGuestError::Firmware {
                status: e.fw_error,
                name: sev_status_name(e.fw_error),
            }
        }
        errno => SevGuestError::Io { errno },
    }
}

/// Report and certificate requests over a [`SevGuestDevice`].
#[derive(Debug)]
pub struct SevGuestClient<D: SevGuestDevice> {
    device: D,
}

impl<D: SevGuestDevice> SevGuestClient<D> {
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

    /// An `ATTESTATION_REPORT` (1184 bytes) binding `report_data`, for `vmpl`.
    pub fn get_report(
        &mut self,
        report_data: &[u8; 64],
        vmpl: u32,
    ) -> Result<Vec<u8>, SevGuestError> {
        let req = SnpReportReq::new(*report_data, vmpl);
        let resp = self
            .device
            .get_report(MSG_VERSION, &req)
            .map_err(request_error)?;
        parse_report_response(&resp)
    }

    /// A report plus the host's certificate table (GHCB extended guest request), trimmed to the
    /// bytes the table uses; empty when the host supplies no certificates.
    ///
    /// Starts with one page. If the host needs more it answers `INVALID_LEN` with the size, and
    /// the request is repeated once with that size; a second refusal is an error, not a loop.
    pub fn get_ext_report(
        &mut self,
        report_data: &[u8; 64],
        vmpl: u32,
    ) -> Result<(Vec<u8>, Vec<u8>), SevGuestError> {
        let req = SnpReportReq::new(*report_data, vmpl);
        let mut certs = vec![0u8; CERTS_PAGE_SIZE as usize];
        let resp = match self.device.get_ext_report(MSG_VERSION, &req, &mut certs) {
            Ok(resp) => resp,
            Err(e) if e.error.vmm_error == SNP_GUEST_VMM_ERR_INVALID_LEN => {
                let requested = e.needed_certs_len.ok_or_else(|| {
                    malformed("host answered INVALID_LEN without a certificate length")
                })?;
                // The host chooses this number; the driver would reject anything unaligned or
                // above SEV_FW_BLOB_MAX_SIZE, and a size that is not larger cannot succeed.
                if requested % CERTS_PAGE_SIZE != 0
                    || requested > SEV_FW_BLOB_MAX_SIZE
                    || requested as usize <= certs.len()
                {
                    return Err(SevGuestError::BadCertsLength { requested });
                }
                certs = vec![0u8; requested as usize];
                self.device
                    .get_ext_report(MSG_VERSION, &req, &mut certs)
                    .map_err(|e| request_error(e.error))?
            }
            Err(e) => return Err(request_error(e.error)),
        };
        let report = parse_report_response(&resp)?;
        let used = cert_table_len(&certs)?;
        certs.truncate(used);
        Ok((report, certs))
    }
}

fn malformed(reason: impl Into<String>) -> SevGuestError {
    SevGuestError::MalformedResponse {
        reason: reason.into(),
    }
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

/// The report inside a `MSG_REPORT_RSP`, or the firmware status it carries.
fn parse_report_response(resp: &SnpReportResp) -> Result<Vec<u8>, SevGuestError> {
    let status = le_u32(&resp.data, 0);
    if status != 0 {
        return Err(SevGuestError::Firmware {
            status,
            name: sev_status_name(status),
        });
    }
    let report_size = le_u32(&resp.data, 4) as usize;
    if report_size != SNP_REPORT_LEN {
        return Err(malformed(format!(
            "report_size is {report_size}, expected {SNP_REPORT_LEN}"
        )));
    }
    let report = resp
        .data
        .get(MSG_REPORT_RSP_HEADER_LEN..MSG_REPORT_RSP_HEADER_LEN + report_size)
        .ok_or_else(|| malformed("report does not fit the response buffer"))?;
    Ok(report.to_vec())
}

/// Bytes of `certs` the certificate table uses: through its terminating all-zero entry and every
/// certificate it points at (0 when the first entry is the terminator). The host fills this
/// buffer, so every entry is bounds-checked.
fn cert_table_len(certs: &[u8]) -> Result<usize, SevGuestError> {
    let mut used = 0usize;
    for (index, entry) in certs.chunks(CERT_TABLE_ENTRY_LEN).enumerate() {
        if entry.len() < CERT_TABLE_ENTRY_LEN {
            break;
        }
        if entry.iter().all(|b| *b == 0) {
            if index == 0 {
                return Ok(0);
            }
            return Ok(used.max((index + 1) * CERT_TABLE_ENTRY_LEN));
        }
        let offset = le_u32(entry, 16) as usize;
        let length = le_u32(entry, 20) as usize;
        let end = offset
            .checked_add(length)
            .filter(|end| *end <= certs.len())
            .ok_or_else(|| {
                malformed(format!(
                    "certificate table entry {index} (offset {offset}, length {length}) \
                     points past the {}-byte buffer",
                    certs.len()
                ))
            })?;
        used = used.max(end);
    }
    Err(malformed(
        "certificate table has no terminating all-zero entry",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(guid_byte: u8, offset: u32, length: u32) -> Vec<u8> {
        let mut e = vec![guid_byte; 16];
        e.extend(offset.to_le_bytes());
        e.extend(length.to_le_bytes());
        e
    }

    #[test]
    fn exitinfo2_splits_firmware_low_vmm_high() {
        let e = GuestRequestError::from_exitinfo2(5, 0x0000_0001_0000_0016);
        assert_eq!((e.fw_error, e.vmm_error), (0x16, 1));
        assert_eq!(e.exitinfo2(), 0x0000_0001_0000_0016);
    }

    #[test]
    fn cert_table_len_covers_table_and_certificates() {
        let mut table = entry(1, 72, 10);
        table.extend(entry(2, 82, 5));
        table.extend([0u8; 24]);
        table.extend([0xAA; 15]);
        table.resize(4096, 0);
        assert_eq!(cert_table_len(&table).unwrap(), 87);
        assert_eq!(cert_table_len(&[0u8; 4096]).unwrap(), 0);
    }

    #[test]
    fn cert_table_len_rejects_hostile_tables() {
        let mut past_end = entry(1, 4090, 10);
        past_end.resize(4096, 0);
        assert!(matches!(
            cert_table_len(&past_end),
            Err(SevGuestError::MalformedResponse { .. })
        ));
        let mut overflow = entry(1, u32::MAX, u32::MAX);
        overflow.resize(4096, 0);
        assert!(cert_table_len(&overflow).is_err());
        let unterminated: Vec<u8> = (0..4096 / 24).flat_map(|_| entry(1, 0, 0)).collect();
        assert!(cert_table_len(&unterminated).is_err());
    }

    #[test]
    fn report_response_status_and_size() {
        let mut resp = SnpReportResp::default();
        resp.data[0] = 0x27;
        let err = parse_report_response(&resp).unwrap_err();
        assert!(matches!(
            err,
            SevGuestError::Firmware {
                status: 0x27,
                name: "INVALID_KEY"
            }
        ));
        resp.data[0] = 0;
        resp.data[4..8].copy_from_slice(&4000u32.to_le_bytes());
        assert!(matches!(
            parse_report_response(&resp),
            Err(SevGuestError::MalformedResponse { .. })
        ));
        resp.data[4..8].copy_from_slice(&0x4A0u32.to_le_bytes());
        resp.data[0x20] = 3;
        assert_eq!(parse_report_response(&resp).unwrap()[0], 3);
    }

    #[test]
    fn error_mapping_ignores_the_driver_preset() {
        let e = |errno: Errno, exitinfo2| {
            request_error(GuestRequestError::from_exitinfo2(errno as i32, exitinfo2))
        };
        assert!(
            matches!(e(Errno::EINVAL, 0xff), SevGuestError::Io { errno } if errno == Errno::EINVAL as i32)
        );
        assert!(matches!(e(Errno::EIO, 0xff), SevGuestError::Io { .. }));
        assert!(matches!(e(Errno::EIO, u64::MAX), SevGuestError::Io { .. }));
        assert!(matches!(
            e(Errno::ENOTTY, 0xff),
            SevGuestError::ChannelDisabled
        ));
        assert!(matches!(
            e(Errno::ETIMEDOUT, 2 << 32),
            SevGuestError::TimedOut
        ));
        assert!(matches!(e(Errno::EIO, 2 << 32), SevGuestError::Busy));
        assert!(matches!(
            e(Errno::EIO, 0x16),
            SevGuestError::Firmware {
                status: 0x16,
                name: "INVALID_PARAM"
            }
        ));
        assert!(matches!(
            e(Errno::EIO, 1 << 32),
            SevGuestError::Vmm { vmm_error: 1, .. }
        ));
    }
}
