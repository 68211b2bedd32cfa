// SPDX-License-Identifier: Apache-2.0
//! configfs-tsm report client (Linux `Documentation/ABI/testing/configfs-tsm-report`).
//!
//! This module owns the whole conversation with `/sys/kernel/config/tsm/report`: it creates a
//! private report entry, checks the provider, writes `privlevel` and the 64-byte `inblob`, reads
//! `outblob` and `auxblob`, proves with `generation` that nobody else wrote to the entry in
//! between, and always removes the entry again. Kernel errno values become typed [`TsmError`]
//! variants; `EBUSY` is retried a bounded number of times. All file system access goes through the
//! narrow [`ConfigFs`] trait (shaped like go-configfs-tsm's client) so that the kernel-faithful
//! fake in `thimble-sim` can stand in for configfs. It does not parse the blobs it returns.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::rand::{SecureRandom, SystemRandom};

/// Errno values of the configfs-tsm ABI, re-exported so that fakes and callers can name them
/// without a direct dependency on `nix`.
pub use nix::errno::Errno;

/// Where the kernel mounts the report group when configfs is mounted at its usual place.
pub const DEFAULT_TSM_ROOT: &str = "/sys/kernel/config/tsm/report";

/// Length of `inblob` in bytes. The ABI allows up to `TSM_REPORT_INBLOB_MAX` = 64, and both
/// `sev_guest` and `tdx_guest` reject anything other than exactly 64 with `EINVAL`.
pub const INBLOB_LEN: usize = 64;

/// Highest value the kernel accepts in `privlevel` (`TSM_REPORT_PRIVLEVEL_MAX`, the SEV-SNP VMPL
/// count minus one).
pub const PRIVLEVEL_MAX: u32 = 3;

/// Attribute names, verbatim from the ABI document.
pub mod attr {
    /// Write-only binary attribute holding the caller's 64 bytes of report data.
    pub const INBLOB: &str = "inblob";
    /// Read-only binary attribute holding the report (SNP report or TDX quote).
    pub const OUTBLOB: &str = "outblob";
    /// Read-only binary attribute holding the SEV certificate table (`sev_guest` only).
    pub const AUXBLOB: &str = "auxblob";
    /// Read-only binary attribute holding the SVSM service manifest (v6.10, SVSM only).
    pub const MANIFESTBLOB: &str = "manifestblob";
    /// Read-only provider name, `sev_guest\n` or `tdx_guest\n`.
    pub const PROVIDER: &str = "provider";
    /// Read-only decimal count of writes to the entry.
    pub const GENERATION: &str = "generation";
    /// Write-only requested privilege level (`sev_guest` only: the VMPL of the report).
    pub const PRIVLEVEL: &str = "privlevel";
    /// Read-only lowest privilege level the provider accepts.
    pub const PRIVLEVEL_FLOOR: &str = "privlevel_floor";
    /// Write-only service provider name (v6.10, SVSM only; `svsm` is the only valid value).
    pub const SERVICE_PROVIDER: &str = "service_provider";
    /// Write-only service GUID (v6.10, SVSM only).
    pub const SERVICE_GUID: &str = "service_guid";
    /// Write-only service manifest version (v6.10, SVSM only).
    pub const SERVICE_MANIFEST_VERSION: &str = "service_manifest_version";
}

/// The file operations the report client needs, over absolute paths.
///
/// Errors must keep the kernel errno in [`io::Error::raw_os_error`]; the client classifies
/// failures by it.
pub trait ConfigFs {
    /// `mkdir`: under the report root this creates a report entry.
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// Reads a whole attribute.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Writes the whole buffer to an attribute in a single `write(2)`. configfs hands each
    /// `write(2)` of a text attribute to the kernel's store function on its own, so splitting the
    /// buffer would store a fragment.
    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// `rmdir`: removes a report entry.
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    /// Whether a directory or attribute exists. Attributes the provider hides do not exist.
    fn exists(&self, path: &Path) -> bool;
}

impl<T: ConfigFs + ?Sized> ConfigFs for &T {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        (**self).create_dir(path)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        (**self).read(path)
    }
    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        (**self).write(path, data)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        (**self).remove_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        (**self).exists(path)
    }
}

/// [`ConfigFs`] over the real file system with `std::fs`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealConfigFs;

impl ConfigFs for RealConfigFs {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        fs::create_dir(path)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        // No O_CREAT or O_TRUNC: configfs attributes exist or they do not, and a missing one
        // must surface as ENOENT rather than as a created regular file.
        let mut file = fs::OpenOptions::new().write(true).open(path)?;
        let written = file.write(data)?;
        if written != data.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write: {written} of {} bytes", data.len()),
            ));
        }
        // configfs commits binary attributes (inblob) when the file is released; dropping the
        // file here closes it, and the kernel ignores the result of that commit.
        drop(file);
        Ok(())
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir(path)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
}

/// The `provider` attribute: which guest driver produces the report, and so the format of
/// `outblob` and `auxblob`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Provider {
    /// `sev_guest`: `outblob` is an SEV-SNP `ATTESTATION_REPORT`, `auxblob` the certificate table.
    SevGuest,
    /// `tdx_guest`: `outblob` is a TDX quote from the host's quote generation service.
    TdxGuest,
    /// Any other provider name (for example `arm_cca_guest`), without the trailing newline.
    Other(String),
}

impl Provider {
    /// Parses the contents of the `provider` attribute, which ends in a newline.
    pub fn parse(raw: &[u8]) -> Self {
        let text = String::from_utf8_lossy(raw);
        let name = text.strip_suffix('\n').unwrap_or(&text);
        match name {
            "sev_guest" => Self::SevGuest,
            "tdx_guest" => Self::TdxGuest,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The provider name as the kernel spells it, without the newline.
    pub fn as_str(&self) -> &str {
        match self {
            Self::SevGuest => "sev_guest",
            Self::TdxGuest => "tdx_guest",
            Self::Other(name) => name,
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to ask the kernel for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsmRequest {
    /// Report data bound into the report (SNP `REPORT_DATA`, TDX `REPORTDATA`).
    pub inblob: [u8; INBLOB_LEN],
    /// Privilege level (SEV VMPL) to request; `None` leaves the kernel default.
    pub privlevel: Option<u32>,
    /// Fail with [`TsmError::ProviderMismatch`] unless the provider is this one.
    pub expected_provider: Option<Provider>,
}

impl TsmRequest {
    /// A request for `inblob` with the kernel's default privilege level and any provider.
    pub fn new(inblob: [u8; INBLOB_LEN]) -> Self {
        Self {
            inblob,
            privlevel: None,
            expected_provider: None,
        }
    }
}

/// What the kernel returned for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsmReport {
    /// The provider that produced the blobs.
    pub provider: Provider,
    /// The report: SEV-SNP `ATTESTATION_REPORT` or TDX quote. Never empty.
    pub outblob: Vec<u8>,
    /// `None` when the provider has no `auxblob` attribute (`tdx_guest`); `Some(empty)` when the
    /// host supplied no certificates.
    pub auxblob: Option<Vec<u8>>,
    /// The final value of `generation`, which matched the writes this request made.
    pub generation: u64,
    /// The privilege level this request wrote, if any.
    pub privlevel: Option<u32>,
    /// `privlevel_floor` when the provider exposes it.
    pub privlevel_floor: Option<u32>,
    /// Name of the (already removed) entry the report was produced in.
    pub entry_name: String,
}

/// Failure to obtain a report through configfs-tsm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TsmError {
    /// The report directory does not exist.
    #[error(
        "configfs-tsm report directory {root} does not exist; configfs is not mounted or the \
         kernel has no tsm report support"
    )]
    Unavailable {
        /// The report root that was looked for.
        root: PathBuf,
    },
    /// `ENXIO`: no provider is registered, or the firmware failed the request.
    #[error(
        "configfs-tsm {path}: no provider answered (ENXIO); no guest driver is registered or the \
         firmware failed the request"
    )]
    NoProvider {
        /// The path whose operation failed.
        path: PathBuf,
    },
    /// The provider is not the one the request expected.
    #[error("configfs-tsm provider is {actual}, expected {expected}")]
    ProviderMismatch {
        /// The provider the request asked for.
        expected: Provider,
        /// The provider the kernel reported.
        actual: Provider,
    },
    /// `EBUSY` on every attempt.
    #[error("configfs-tsm {path} stayed busy (EBUSY) through {attempts} attempts")]
    Busy {
        /// The path that returned `EBUSY` on the last attempt.
        path: PathBuf,
        /// How many full attempts were made.
        attempts: u32,
    },
    /// `EINVAL` from an attribute.
    #[error(
        "configfs-tsm rejected {attribute} at {path} (EINVAL){}",
        invalid_argument_hint(.attribute, .privlevel, .privlevel_floor)
    )]
    InvalidArgument {
        /// The attribute whose write or read failed.
        attribute: &'static str,
        /// Its path.
        path: PathBuf,
        /// The privilege level the request wrote, if any.
        privlevel: Option<u32>,
        /// `privlevel_floor`, if it could be read.
        privlevel_floor: Option<u32>,
    },
    /// `EFBIG`: a blob exceeds the kernel's size limit for it.
    #[error("configfs-tsm {attribute} at {path} exceeds the kernel's size limit (EFBIG)")]
    TooBig {
        /// The attribute that was too big.
        attribute: &'static str,
        /// Its path.
        path: PathBuf,
    },
    /// `ETIMEDOUT`: the host did not complete the request in time.
    #[error(
        "configfs-tsm {attribute} at {path} timed out (ETIMEDOUT); the host did not complete \
         the request"
    )]
    TimedOut {
        /// The attribute whose read timed out.
        attribute: &'static str,
        /// Its path.
        path: PathBuf,
    },
    /// The provider returned an empty `outblob`.
    #[error("configfs-tsm outblob at {path} is empty: {}", empty_outblob_reason(.provider))]
    EmptyOutblob {
        /// The provider that returned nothing.
        provider: Provider,
        /// The `outblob` path.
        path: PathBuf,
    },
    /// `generation` moved by more than this request's writes: another writer used the entry, so
    /// `outblob` may not belong to this request's `inblob`.
    #[error(
        "configfs-tsm entry {path}: generation was {actual}, expected {expected}; another writer \
         raced this request"
    )]
    GenerationMismatch {
        /// The entry directory.
        path: PathBuf,
        /// The starting generation plus this request's writes.
        expected: u64,
        /// The generation read after `outblob` (and `auxblob`).
        actual: u64,
    },
    /// The request needs an attribute this provider or kernel does not expose.
    #[error(
        "configfs-tsm provider {provider} has no {attribute} attribute at {path}; this kernel or \
         provider does not support it"
    )]
    Unsupported {
        /// The missing attribute.
        attribute: &'static str,
        /// The provider of the entry.
        provider: Provider,
        /// Where the attribute was looked for.
        path: PathBuf,
    },
    /// A numeric attribute did not hold a decimal integer.
    #[error("configfs-tsm {attribute} at {path} holds {value:?}, which is not a decimal integer")]
    MalformedAttribute {
        /// The attribute.
        attribute: &'static str,
        /// Its path.
        path: PathBuf,
        /// What it held (lossily decoded).
        value: String,
    },
    /// Any other error from the file system.
    #[error("configfs-tsm {op} {path}")]
    Io {
        /// The operation: `mkdir`, `read`, `write` or `rmdir`.
        op: &'static str,
        /// The path it was applied to.
        path: PathBuf,
        /// The error, with the kernel errno.
        #[source]
        source: io::Error,
    },
    /// The request succeeded but its entry could not be removed.
    #[error("removing configfs-tsm entry {path}")]
    Cleanup {
        /// The entry directory.
        path: PathBuf,
        /// The `rmdir` error.
        #[source]
        source: io::Error,
    },
}

impl TsmError {
    /// The kernel errno behind this error, when there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::NoProvider { .. } => Some(Errno::ENXIO as i32),
            Self::Busy { .. } => Some(Errno::EBUSY as i32),
            Self::InvalidArgument { .. } => Some(Errno::EINVAL as i32),
            Self::TooBig { .. } => Some(Errno::EFBIG as i32),
            Self::TimedOut { .. } => Some(Errno::ETIMEDOUT as i32),
            Self::Io { source, .. } | Self::Cleanup { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

fn invalid_argument_hint(
    attribute: &str,
    privlevel: &Option<u32>,
    privlevel_floor: &Option<u32>,
) -> String {
    match attribute {
        attr::PRIVLEVEL => {
            let requested = privlevel.map_or_else(|| "?".to_owned(), |v| v.to_string());
            match privlevel_floor {
                Some(floor) => format!(
                    "; privlevel {requested} must be within privlevel_floor {floor} ..= \
                     {PRIVLEVEL_MAX}"
                ),
                None => format!(
                    "; privlevel {requested} must be within privlevel_floor (unreadable) ..= \
                     {PRIVLEVEL_MAX}"
                ),
            }
        }
        attr::INBLOB | attr::OUTBLOB | attr::AUXBLOB => {
            format!("; inblob was not written or is not exactly {INBLOB_LEN} bytes")
        }
        _ => String::new(),
    }
}

fn empty_outblob_reason(provider: &Provider) -> &'static str {
    match provider {
        Provider::SevGuest => "the SEV firmware returned no report",
        Provider::TdxGuest => "the host's quote generation service returned no quote",
        Provider::Other(_) => "the provider returned no report",
    }
}

const DEFAULT_BUSY_ATTEMPTS: u32 = 5;
const DEFAULT_BUSY_BASE_DELAY: Duration = Duration::from_millis(20);
/// Doubling stops here so that a large attempt count cannot produce an absurd sleep.
const MAX_BACKOFF_SHIFT: u32 = 8;

/// Client for the configfs-tsm report interface.
#[derive(Debug, Clone)]
pub struct TsmClient<F: ConfigFs> {
    fs: F,
    root: PathBuf,
    busy_attempts: u32,
    busy_base_delay: Duration,
}

impl<F: ConfigFs> TsmClient<F> {
    /// A client for the report group at `root` (normally [`DEFAULT_TSM_ROOT`]).
    pub fn new(fs: F, root: impl Into<PathBuf>) -> Self {
        Self {
            fs,
            root: root.into(),
            busy_attempts: DEFAULT_BUSY_ATTEMPTS,
            busy_base_delay: DEFAULT_BUSY_BASE_DELAY,
        }
    }

    /// How often a request that meets `EBUSY` is tried in total (at least once), and the first
    /// delay between tries. The delay doubles each time and gets up to as much again of random
    /// jitter, so that agents started together do not retry in lockstep.
    pub fn with_busy_retries(mut self, max_attempts: u32, base_delay: Duration) -> Self {
        self.busy_attempts = max_attempts.max(1);
        self.busy_base_delay = base_delay;
        self
    }

    /// The report root this client uses.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Finds out which provider serves reports, without requesting one: creates a temporary
    /// entry, reads `provider` and removes the entry.
    pub fn probe(&self) -> Result<Provider, TsmError> {
        self.require_root()?;
        let entry = self.create_entry()?;
        let provider = self.read_provider(&entry.path)?;
        entry.remove()?;
        Ok(provider)
    }

    /// Requests a report for `req`. Every attempt uses a fresh entry, and the entry is removed
    /// on every path out of this function.
    pub fn get_report(&self, req: &TsmRequest) -> Result<TsmReport, TsmError> {
        self.require_root()?;
        let mut attempt = 1;
        loop {
            match self.attempt(req) {
                Err(TsmError::Busy { path, .. }) => {
                    if attempt >= self.busy_attempts {
                        return Err(TsmError::Busy {
                            path,
                            attempts: attempt,
                        });
                    }
                    thread::sleep(self.busy_delay(attempt));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn require_root(&self) -> Result<(), TsmError> {
        if self.fs.exists(&self.root) {
            Ok(())
        } else {
            Err(TsmError::Unavailable {
                root: self.root.clone(),
            })
        }
    }

    fn attempt(&self, req: &TsmRequest) -> Result<TsmReport, TsmError> {
        let entry = self.create_entry()?;
        let dir = entry.path.clone();

        let provider = self.read_provider(&dir)?;
        if let Some(expected) = &req.expected_provider {
            if *expected != provider {
                return Err(TsmError::ProviderMismatch {
                    expected: expected.clone(),
                    actual: provider,
                });
            }
        }

        let floor_path = dir.join(attr::PRIVLEVEL_FLOOR);
        let privlevel_floor = if self.fs.exists(&floor_path) {
            Some(
                self.read_u64(attr::PRIVLEVEL_FLOOR, &floor_path)
                    .and_then(|v| {
                        u32::try_from(v).map_err(|_| TsmError::MalformedAttribute {
                            attribute: attr::PRIVLEVEL_FLOOR,
                            path: floor_path.clone(),
                            value: v.to_string(),
                        })
                    })?,
            )
        } else {
            None
        };

        // The ABI's conflict detection: note generation before writing, count our writes, and
        // compare after reading the blobs.
        let generation_path = dir.join(attr::GENERATION);
        let start = self.read_u64(attr::GENERATION, &generation_path)?;
        let mut writes: u64 = 0;

        if let Some(level) = req.privlevel {
            let path = dir.join(attr::PRIVLEVEL);
            if !self.fs.exists(&path) {
                return Err(TsmError::Unsupported {
                    attribute: attr::PRIVLEVEL,
                    provider,
                    path,
                });
            }
            let text = format!("{level}\n");
            self.fs.write(&path, text.as_bytes()).map_err(|e| {
                classify(
                    Op::Write,
                    attr::PRIVLEVEL,
                    &path,
                    e,
                    req.privlevel,
                    privlevel_floor,
                )
            })?;
            writes += 1;
        }

        let inblob_path = dir.join(attr::INBLOB);
        self.fs
            .write(&inblob_path, &req.inblob)
            .map_err(|e| classify(Op::Write, attr::INBLOB, &inblob_path, e, None, None))?;
        writes += 1;

        let outblob_path = dir.join(attr::OUTBLOB);
        let outblob = self
            .fs
            .read(&outblob_path)
            .map_err(|e| classify(Op::Read, attr::OUTBLOB, &outblob_path, e, None, None))?;

        // sev_guest always has auxblob (empty when the host supplied no certificates);
        // tdx_guest hides it, so absence is not an error.
        let auxblob_path = dir.join(attr::AUXBLOB);
        let auxblob = if self.fs.exists(&auxblob_path) {
            Some(
                self.fs
                    .read(&auxblob_path)
                    .map_err(|e| classify(Op::Read, attr::AUXBLOB, &auxblob_path, e, None, None))?,
            )
        } else {
            None
        };

        // Read last: a writer that slipped in before the auxblob read would have made the kernel
        // regenerate auxblob for its inblob, and only this read can notice. It also catches an
        // inblob write the kernel dropped: configfs commits binary attributes on close and
        // discards the result, so a refused write does not fail `write(2)`.
        let generation = self.read_u64(attr::GENERATION, &generation_path)?;
        let expected = start.wrapping_add(writes);
        if generation != expected {
            return Err(TsmError::GenerationMismatch {
                path: dir,
                expected,
                actual: generation,
            });
        }

        // Checked after the generation: an empty blob produced for someone else's request is a
        // race, not a provider failure.
        if outblob.is_empty() {
            return Err(TsmError::EmptyOutblob {
                provider,
                path: outblob_path,
            });
        }

        let entry_name = entry.name.clone();
        entry.remove()?;
        Ok(TsmReport {
            provider,
            outblob,
            auxblob,
            generation,
            privlevel: req.privlevel,
            privlevel_floor,
            entry_name,
        })
    }

    fn create_entry(&self) -> Result<Entry<'_, F>, TsmError> {
        // Entries of concurrent collections (container entrypoints starting together, perhaps
        // all with PID 1 in their own namespaces) must never be shared: `generation` would
        // catch the cross-talk, but only as a failure. The random part makes a clash
        // improbable; should one happen all the same (`EEXIST`), another name is drawn.
        let mut clashes = 0;
        loop {
            let name = entry_name();
            let path = self.root.join(&name);
            match self.fs.create_dir(&path) {
                Ok(()) => {
                    return Ok(Entry {
                        fs: &self.fs,
                        name,
                        path,
                        removed: false,
                    });
                }
                Err(source) => match source.raw_os_error().map(Errno::from_raw) {
                    Some(Errno::EEXIST) if clashes < MAX_NAME_CLASHES => clashes += 1,
                    Some(Errno::ENXIO) => return Err(TsmError::NoProvider { path }),
                    _ => {
                        return Err(TsmError::Io {
                            op: "mkdir",
                            path,
                            source,
                        });
                    }
                },
            }
        }
    }

    fn read_provider(&self, dir: &Path) -> Result<Provider, TsmError> {
        let path = dir.join(attr::PROVIDER);
        let raw = self
            .fs
            .read(&path)
            .map_err(|e| classify(Op::Read, attr::PROVIDER, &path, e, None, None))?;
        Ok(Provider::parse(&raw))
    }

    fn read_u64(&self, attribute: &'static str, path: &Path) -> Result<u64, TsmError> {
        let raw = self
            .fs
            .read(path)
            .map_err(|e| classify(Op::Read, attribute, path, e, None, None))?;
        parse_decimal(&raw).ok_or_else(|| TsmError::MalformedAttribute {
            attribute,
            path: path.to_owned(),
            value: String::from_utf8_lossy(&raw).into_owned(),
        })
    }

    fn busy_delay(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(MAX_BACKOFF_SHIFT);
        let base = self.busy_base_delay.saturating_mul(1 << shift);
        let base_nanos = u64::try_from(base.as_nanos()).unwrap_or(u64::MAX);
        let jitter = match random_u64() {
            Some(r) if base_nanos > 0 => r % base_nanos,
            _ => 0,
        };
        base.saturating_add(Duration::from_nanos(jitter))
    }
}

/// A created report entry; dropping it removes the entry, so every error path cleans up.
struct Entry<'a, F: ConfigFs> {
    fs: &'a F,
    name: String,
    path: PathBuf,
    removed: bool,
}

impl<F: ConfigFs> Entry<'_, F> {
    /// Removes the entry and reports failure, for the success path.
    fn remove(mut self) -> Result<(), TsmError> {
        self.removed = true;
        self.fs
            .remove_dir(&self.path)
            .map_err(|source| TsmError::Cleanup {
                path: self.path.clone(),
                source,
            })
    }
}

impl<F: ConfigFs> Drop for Entry<'_, F> {
    fn drop(&mut self) {
        if !self.removed {
            // Best effort: the request has already failed and that error is the one to report.
            let _ = self.fs.remove_dir(&self.path);
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Read,
    Write,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// Maps an attribute's errno to the variant callers branch on; the errno stays available through
/// [`TsmError::errno`] either way.
fn classify(
    op: Op,
    attribute: &'static str,
    path: &Path,
    source: io::Error,
    privlevel: Option<u32>,
    privlevel_floor: Option<u32>,
) -> TsmError {
    let path = path.to_owned();
    let errno = source.raw_os_error().map(Errno::from_raw);
    match errno {
        Some(Errno::ENXIO) => TsmError::NoProvider { path },
        // `attempts` is filled in by the retry loop.
        Some(Errno::EBUSY) => TsmError::Busy { path, attempts: 0 },
        Some(Errno::EINVAL) => TsmError::InvalidArgument {
            attribute,
            path,
            privlevel,
            privlevel_floor,
        },
        Some(Errno::EFBIG) => TsmError::TooBig { attribute, path },
        Some(Errno::ETIMEDOUT) => TsmError::TimedOut { attribute, path },
        _ => TsmError::Io {
            op: op.name(),
            path,
            source,
        },
    }
}

/// Parses a sysfs-style decimal: digits with at most one trailing newline.
fn parse_decimal(raw: &[u8]) -> Option<u64> {
    let digits = raw.strip_suffix(b"\n").unwrap_or(raw);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// How many times an entry name that exists already is replaced by another before `mkdir`'s
/// `EEXIST` is reported.
const MAX_NAME_CLASHES: u32 = 3;

fn random_u64() -> Option<u64> {
    let mut bytes = [0u8; 8];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// `thimble-{pid}-{16 hex digits}`. The name only has to be unique among the entries of all
/// processes, not secret, so if the system RNG fails a process-wide counter mixed with the clock
/// stands in for the random part.
fn entry_name() -> String {
    static FALLBACK: AtomicU64 = AtomicU64::new(0);
    let suffix = random_u64().unwrap_or_else(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        (FALLBACK.fetch_add(1, Ordering::Relaxed) << 32) | u64::from(nanos)
    });
    format!("thimble-{}-{suffix:016x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::{Provider, TsmError, entry_name, invalid_argument_hint, parse_decimal};
    use std::path::PathBuf;

    #[test]
    fn provider_parses_with_and_without_newline() {
        assert_eq!(Provider::parse(b"sev_guest\n"), Provider::SevGuest);
        assert_eq!(Provider::parse(b"tdx_guest"), Provider::TdxGuest);
        assert_eq!(
            Provider::parse(b"arm_cca_guest\n"),
            Provider::Other("arm_cca_guest".into())
        );
        assert_eq!(Provider::SevGuest.to_string(), "sev_guest");
    }

    #[test]
    fn decimal_parsing_is_strict() {
        assert_eq!(parse_decimal(b"0\n"), Some(0));
        assert_eq!(parse_decimal(b"18446744073709551615\n"), Some(u64::MAX));
        assert_eq!(parse_decimal(b"18446744073709551616\n"), None);
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b"\n"), None);
        assert_eq!(parse_decimal(b"-1\n"), None);
        assert_eq!(parse_decimal(b"1\n\n"), None);
        assert_eq!(parse_decimal(b" 1"), None);
    }

    #[test]
    fn entry_names_are_unique_and_carry_the_pid() {
        let a = entry_name();
        let b = entry_name();
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("thimble-{}-", std::process::id())));
    }

    /// A configfs whose first `clashes` mkdirs find the name taken.
    struct Clashing {
        clashes: std::cell::Cell<u32>,
        made: std::cell::RefCell<Vec<PathBuf>>,
    }

    impl super::ConfigFs for Clashing {
        fn create_dir(&self, path: &std::path::Path) -> std::io::Result<()> {
            if self.clashes.get() > 0 {
                self.clashes.set(self.clashes.get() - 1);
                return Err(std::io::Error::from_raw_os_error(
                    nix::errno::Errno::EEXIST as i32,
                ));
            }
            self.made.borrow_mut().push(path.to_owned());
            Ok(())
        }
        fn read(&self, _: &std::path::Path) -> std::io::Result<Vec<u8>> {
            Ok(b"sev_guest\n".to_vec())
        }
        fn write(&self, _: &std::path::Path, _: &[u8]) -> std::io::Result<()> {
            Ok(())
        }
        fn remove_dir(&self, _: &std::path::Path) -> std::io::Result<()> {
            Ok(())
        }
        fn exists(&self, _: &std::path::Path) -> bool {
            true
        }
    }

    #[test]
    fn an_entry_name_that_exists_is_replaced_by_another() {
        let fs = Clashing {
            clashes: std::cell::Cell::new(2),
            made: std::cell::RefCell::new(Vec::new()),
        };
        let client = super::TsmClient::new(&fs, "/tsm/report");
        assert!(client.create_entry().is_ok());
        assert_eq!(fs.made.borrow().len(), 1);

        // A name that stays taken is an error after a few draws, not a loop.
        fs.clashes.set(u32::MAX);
        match client.create_entry() {
            Err(TsmError::Io { op: "mkdir", .. }) => {}
            Err(e) => panic!("{e:?}"),
            Ok(_) => panic!("created"),
        }
    }

    #[test]
    fn privlevel_message_names_the_floor() {
        let hint = invalid_argument_hint("privlevel", &Some(0), &Some(2));
        assert!(hint.contains("privlevel_floor 2"), "{hint}");
        let err = TsmError::InvalidArgument {
            attribute: "privlevel",
            path: PathBuf::from("/x/privlevel"),
            privlevel: Some(0),
            privlevel_floor: Some(2),
        };
        assert_eq!(err.errno(), Some(libc_einval()));
        assert!(err.to_string().contains("privlevel_floor 2"));
    }

    fn libc_einval() -> i32 {
        nix::errno::Errno::EINVAL as i32
    }
}
