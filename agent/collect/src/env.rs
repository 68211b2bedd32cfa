// SPDX-License-Identifier: Apache-2.0
//! What the outside world provides to a collection, as one trait: the guest interfaces
//! (configfs-tsm, `/dev/sev-guest`, `/dev/tdx_guest` and the host's Quote Generation Service, the
//! TPM), HTTP, the operator's QCNL file, default endpoints and cache directory, the clock,
//! randomness and the kernel release. [`SystemEnvironment`] is real Linux; `thimble-sim`'s
//! `SimEnvironment` is a simulated guest with emulators on loopback.
//!
//! The trait hands out the narrow building blocks the clients already use ([`ConfigFs`],
//! [`SevGuestDevice`], [`TdxGuestDevice`], [`QgsTransport`], [`TpmTransport`], [`Fetch`]), so that
//! a simulated guest runs exactly the client, endorsement and bundle code a real one does. It
//! decides nothing about trust: the roots are in the request.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::http::{Fetch, HttpClient, HttpConfig};
use crate::intel::qcnl::{self, QcnlConfig, QcnlError};
use crate::qgs::{QgsError, QgsTransport, VsockTransport};
use crate::sev_guest::{LinuxSevGuest, SevGuestDevice, SevGuestError};
use crate::tdx_guest::{LinuxTdxGuest, TdxGuestDevice, TdxGuestError};
use crate::tsm::{ConfigFs, RealConfigFs};
use crate::vtpm::{DeviceTransport, TpmTransport, VtpmError};

/// Where the real cache lives unless the request says otherwise.
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/thimble";

/// A service whose base URL an environment may provide when the request names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// Azure IMDS: THIM for AMD certificates, the local PCK certificate agent, `/acc/tdquote`.
    Imds,
    /// AMD KDS.
    Kds,
    /// The Intel collateral service (THIM, PCS or a PCCS).
    IntelCollateral,
}

/// A measured-boot log file the collection reads ([`Environment::read_log_file`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LogFile {
    /// The ACPI CCEL table (`/sys/firmware/acpi/tables/CCEL`): where a TD's log area is and how
    /// long.
    CcelTable,
    /// A TD's CCEL log area (`/sys/firmware/acpi/tables/data/CCEL`).
    CcelData,
    /// A TPM's TCG2 log (`/sys/kernel/security/tpm0/binary_bios_measurements`).
    Tcg2,
    /// The IMA log (`/sys/kernel/security/ima/binary_runtime_measurements`).
    Ima,
}

/// A device the environment opened, with the name the bundle records for it
/// (`collection.path`).
#[derive(Debug)]
pub struct Opened<D> {
    /// The device.
    pub device: D,
    /// Its path, or what stands for it (`simulated:/dev/sev-guest`).
    pub path: String,
}

/// Something the environment could not do that is not a guest interface's failure: start a
/// service it stands in for, draw random bytes.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct EnvError {
    /// What failed, as a message fragment ("cannot start the THIM emulator on loopback").
    pub what: String,
    /// Why, when there is an underlying error.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl EnvError {
    /// An error described by `what`, caused by `source`.
    pub fn new(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> EnvError {
        EnvError {
            what: what.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// The outside world of one collection. Each method is called when the collection needs it and
/// not before: an environment may start what it stands in for lazily.
pub trait Environment {
    /// The configfs filesystem.
    type ConfigFs: ConfigFs;
    /// The SEV-SNP guest device.
    type SevGuest: SevGuestDevice;
    /// The TDX guest device.
    type TdxGuest: TdxGuestDevice;
    /// The transport to the host's Quote Generation Service.
    type Qgs: QgsTransport;
    /// The TPM.
    type Tpm: TpmTransport;
    /// An HTTP client.
    type Http: Fetch + Sync;

    /// configfs-tsm: the filesystem and the report directory to use for the request's
    /// `tsm_root`; `None` when this environment has no configfs-tsm at all.
    fn configfs_tsm(&self, tsm_root: &Path) -> Option<(Self::ConfigFs, PathBuf)>;

    /// Whether the SEV-SNP guest device at `path` exists (it may still fail to open).
    fn sev_guest_present(&self, path: &Path) -> bool;

    /// Opens the SEV-SNP guest device at `path`.
    fn open_sev_guest(&self, path: &Path) -> Result<Opened<Self::SevGuest>, SevGuestError>;

    /// Whether the TDX guest device at `path` exists.
    fn tdx_guest_present(&self, path: &Path) -> bool;

    /// Opens the TDX guest device at `path`.
    fn open_tdx_guest(&self, path: &Path) -> Result<Opened<Self::TdxGuest>, TdxGuestError>;

    /// The transport to the host's Quote Generation Service at vsock `port`, or at the port the
    /// environment configures when `None`.
    fn qgs(&self, port: Option<u32>) -> Result<Self::Qgs, QgsError>;

    /// Opens the TPM at `path`, or the environment's default TPM when `None`. Each call opens
    /// it anew: detecting an Azure vTPM and collecting from it are two sessions.
    fn open_tpm(&self, path: Option<&Path>) -> Result<Opened<Self::Tpm>, VtpmError>;

    /// An HTTP client with `config`. An environment may tighten it (a simulation never goes
    /// through a proxy) but must keep its bounds.
    fn http(&self, config: HttpConfig) -> Self::Http;

    /// The operator's QCNL configuration, if the environment has one.
    fn qcnl(&self) -> Result<Option<QcnlConfig>, QcnlError>;

    /// The base URL of `endpoint` when the request names none; `Ok(None)` takes thimble's
    /// default (the real service).
    fn endpoint(&self, endpoint: Endpoint) -> Result<Option<String>, EnvError>;

    /// The cache directory when the request asks for the default one; `None` for no cache.
    fn default_cache_dir(&self) -> Option<PathBuf>;

    /// Whether the evidence this environment yields is simulated (recorded in the bundle; it
    /// decides nothing in a verification).
    fn simulated(&self) -> bool;

    /// Seconds since the Unix epoch, now.
    fn now(&self) -> i64;

    /// Fills `buf` with random bytes fit for a nonce.
    fn fill_random(&self, buf: &mut [u8]) -> Result<(), EnvError>;

    /// The kernel release (`uname -r`), recorded in the bundle.
    fn kernel_release(&self) -> Option<String>;

    /// Reads the measured-boot log file `which`, found at `path` on a real guest, with the path
    /// the bundle records for it: `Ok(None)` when the guest has none (the file does not exist),
    /// an error when it exists but cannot be read or holds more than `max_len` bytes (a read
    /// never takes more than `max_len + 1` bytes into memory).
    fn read_log_file(
        &self,
        which: LogFile,
        path: &Path,
        max_len: usize,
    ) -> Result<Option<(Vec<u8>, String)>, std::io::Error>;
}

/// The first `limit` bytes of `file` (all of it when shorter). The buffer starts at the file's
/// length, capped by `limit`, as `fs::read` sizes its own (a size-capped reader hides the length
/// from `read_to_end`, which would otherwise grow it from 32 bytes, each size a fresh
/// allocation); a length of 0 or a wrong one (a pipe, /proc, sysfs) only sizes that first buffer.
pub fn read_at_most(file: std::fs::File, limit: u64) -> Result<Vec<u8>, std::io::Error> {
    use std::io::Read;
    let hint = file.metadata().map_or(0, |m| m.len()).min(limit);
    let mut out = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
    file.take(limit).read_to_end(&mut out)?;
    Ok(out)
}

/// Reads at most `max_len` bytes of the file at `path`: `Ok(None)` when it does not exist, an
/// error of kind `FileTooLarge` when it holds more. sysfs files report a size of 4096 or 0
/// whatever they hold, so the read, not the metadata, decides.
pub fn read_bounded(path: &Path, max_len: usize) -> Result<Option<Vec<u8>>, std::io::Error> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let limit = u64::try_from(max_len).unwrap_or(u64::MAX).saturating_add(1);
    let out = read_at_most(file, limit)?;
    if out.len() > max_len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("more than {max_len} bytes"),
        ));
    }
    Ok(Some(out))
}

/// Real Linux: the kernel's devices and configfs, vsock to the host, the network, the system
/// clock and random generator.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemEnvironment;

impl SystemEnvironment {
    /// The machine thimble runs on.
    pub fn new() -> SystemEnvironment {
        SystemEnvironment
    }
}

impl Environment for SystemEnvironment {
    type ConfigFs = RealConfigFs;
    type SevGuest = LinuxSevGuest;
    type TdxGuest = LinuxTdxGuest;
    type Qgs = VsockTransport;
    type Tpm = DeviceTransport;
    type Http = HttpClient;

    fn configfs_tsm(&self, tsm_root: &Path) -> Option<(RealConfigFs, PathBuf)> {
        Some((RealConfigFs, tsm_root.to_path_buf()))
    }

    fn sev_guest_present(&self, path: &Path) -> bool {
        path.exists()
    }

    fn open_sev_guest(&self, path: &Path) -> Result<Opened<LinuxSevGuest>, SevGuestError> {
        Ok(Opened {
            device: LinuxSevGuest::open(path)?,
            path: path.display().to_string(),
        })
    }

    fn tdx_guest_present(&self, path: &Path) -> bool {
        path.exists()
    }

    fn open_tdx_guest(&self, path: &Path) -> Result<Opened<LinuxTdxGuest>, TdxGuestError> {
        Ok(Opened {
            device: LinuxTdxGuest::open(path)?,
            path: path.display().to_string(),
        })
    }

    fn qgs(&self, port: Option<u32>) -> Result<VsockTransport, QgsError> {
        match port {
            Some(p) => Ok(VsockTransport::new(p)),
            None => VsockTransport::from_default_conf(),
        }
    }

    fn open_tpm(&self, path: Option<&Path>) -> Result<Opened<DeviceTransport>, VtpmError> {
        let device = match path {
            Some(p) => DeviceTransport::open(p)?,
            None => DeviceTransport::open_default()?,
        };
        let path = device.path().display().to_string();
        Ok(Opened { device, path })
    }

    fn http(&self, config: HttpConfig) -> HttpClient {
        HttpClient::new(config)
    }

    fn qcnl(&self) -> Result<Option<QcnlConfig>, QcnlError> {
        let path = qcnl::conf_path(std::env::var_os(crate::intel::QCNL_CONF_PATH_ENV).as_deref());
        qcnl::load(&path)
    }

    fn endpoint(&self, _: Endpoint) -> Result<Option<String>, EnvError> {
        Ok(None)
    }

    fn default_cache_dir(&self) -> Option<PathBuf> {
        Some(PathBuf::from(DEFAULT_CACHE_DIR))
    }

    fn simulated(&self) -> bool {
        false
    }

    fn now(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }

    fn fill_random(&self, buf: &mut [u8]) -> Result<(), EnvError> {
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), buf).map_err(|_| {
            EnvError {
                what: "the system random generator failed".into(),
                source: None,
            }
        })
    }

    fn kernel_release(&self) -> Option<String> {
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|s| s.trim().to_string())
    }

    fn read_log_file(
        &self,
        _: LogFile,
        path: &Path,
        max_len: usize,
    ) -> Result<Option<(Vec<u8>, String)>, std::io::Error> {
        Ok(read_bounded(path, max_len)?.map(|data| (data, path.display().to_string())))
    }
}
