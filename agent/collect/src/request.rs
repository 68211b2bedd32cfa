// SPDX-License-Identifier: Apache-2.0
//! What a caller asks [`crate::collect`] for: how REPORT_DATA is bound, which evidence source to
//! use and where the guest interfaces are, where endorsements may come from and within what
//! time, the cache, and the roots fetched endorsements must chain to before they are kept. Plain
//! data whose defaults are those of the `thimble collect` command line, so that a program
//! embedding thimble sets only what it cares about. Nothing here touches the outside world: that
//! is the [`crate::Environment`]'s part.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use thimble_evidence::tdx::qcnl::QcnlConfig;
use thimble_verify::{IntelRoots, TrustedRoots};

use crate::endorse::AmdSource;

/// What the 64 bytes of REPORT_DATA bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// The verifier's nonce: REPORT_DATA = SHA-512(nonce). On Azure it is also the TPM quote's
    /// qualifying data.
    Nonce(Vec<u8>),
    /// REPORT_DATA verbatim, for callers that bind something else (a key hash, a TLS exporter).
    /// The bundle records the derivation `raw`.
    ReportData([u8; 64]),
    /// A fresh random nonce of [`RANDOM_NONCE_LEN`] bytes from the environment, recorded in the
    /// bundle as generated.
    RandomNonce,
    /// A verifier's value of 1 to 64 bytes, zero-padded into REPORT_DATA (Trustee's digest). On
    /// Azure the padded 64 bytes are the HCL report's `user-data` and the value itself the TPM
    /// quote's qualifying data. The bundle records the derivation `padded`.
    Padded(Vec<u8>),
}

/// Length of the nonce [`Binding::RandomNonce`] draws.
pub const RANDOM_NONCE_LEN: usize = 32;

/// Which evidence source to use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SourceChoice {
    /// configfs-tsm first (its provider tells SEV-SNP from TDX), then `/dev/sev-guest`, then
    /// `/dev/tdx_guest` with the host's Quote Generation Service, then the Azure vTPM if it
    /// holds an HCL report.
    #[default]
    Auto,
    /// configfs-tsm, whichever of the two providers it has.
    ConfigfsTsm,
    /// `/dev/sev-guest`.
    SevGuest,
    /// `/dev/tdx_guest` for the TDREPORT, quoted by the host's QGS over vsock.
    TdxGuest,
    /// The Azure vTPM behind the paravisor: the HCL report and a TPM quote.
    Vtpm,
}

/// Where the guest interfaces are. The defaults are Linux's; an environment may map them
/// elsewhere (the simulator's are not files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Devices {
    /// The configfs-tsm report directory.
    pub tsm_root: PathBuf,
    /// The SEV-SNP guest device.
    pub sev_guest: PathBuf,
    /// The TDX guest device.
    pub tdx_guest: PathBuf,
    /// The TPM device; `None` tries `/dev/tpmrm0`, then `/dev/tpm0`.
    pub tpm: Option<PathBuf>,
    /// The vsock port of the host's Quote Generation Service; `None` reads
    /// `/etc/tdx-attest.conf`, else 4050.
    pub qgs_port: Option<u32>,
}

impl Default for Devices {
    fn default() -> Self {
        Devices {
            tsm_root: PathBuf::from(crate::tsm::DEFAULT_TSM_ROOT),
            sev_guest: PathBuf::from(crate::sev_guest::DEFAULT_DEVICE_PATH),
            tdx_guest: PathBuf::from(crate::tdx_guest::DEFAULT_DEVICE_PATH),
            tpm: None,
            qgs_port: None,
        }
    }
}

/// The Intel collateral service asked for TDX collateral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntelService {
    /// Azure THIM's collateral cache.
    Thim,
    /// Intel PCS, or a PCCS speaking its API when a base URL other than Intel's is given.
    Pcs,
}

/// Where the operator's QCNL configuration (`/etc/sgx_default_qcnl.conf`) comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum QcnlSource {
    /// Whatever the environment has: on a real guest `$QCNL_CONF_PATH`, else
    /// `/etc/sgx_default_qcnl.conf`; none in a simulation.
    #[default]
    FromEnvironment,
    /// No QCNL configuration: only the request's settings and thimble's defaults count.
    Ignore,
    /// This configuration, parsed by the caller.
    Given(QcnlConfig),
}

/// Where endorsements may come from, and within what time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetching {
    /// Fetch nothing and skip the cache: keep only what the host attached (SEV-SNP) or the bare
    /// quote (TDX). On Azure TDX the quote itself still comes from IMDS.
    pub offline: bool,
    /// The whole gathering of endorsements, every source together. On Azure it is also, apart,
    /// the time the HCL report has to echo REPORT_DATA.
    pub deadline: Duration,
    /// Each HTTP request.
    pub per_request_timeout: Duration,
    /// The IMDS base URL (THIM, the local PCK certificate agent, `/acc/tdquote`); `None` takes
    /// the environment's, else `http://169.254.169.254`.
    pub imds: Option<String>,
    /// The AMD KDS base URL; `None` takes the environment's, else AMD's.
    pub kds: Option<String>,
    /// SEV-SNP: the certificate sources, tried in this order (see [`AmdSource`]). Azure uses the
    /// fetching ones among them (THIM, KDS) and no cache.
    pub amd_sources: Vec<AmdSource>,
    /// SEV-SNP: once the chain is settled, fetch its ARK's CRL from KDS when neither the host
    /// nor the cache has it.
    pub amd_crl_from_kds: bool,
    /// TDX: the collateral service; `None` takes QCNL's, else Azure THIM.
    pub intel_service: Option<IntelService>,
    /// TDX: the collateral service's base URL; `None` takes the environment's, else the
    /// service's own.
    pub intel_url: Option<String>,
    /// TDX: the QCNL configuration.
    pub qcnl: QcnlSource,
}

impl Default for Fetching {
    fn default() -> Self {
        Fetching {
            offline: false,
            deadline: Duration::from_secs(30),
            per_request_timeout: Duration::from_secs(5),
            imds: None,
            kds: None,
            amd_sources: AmdSource::ALL.to_vec(),
            amd_crl_from_kds: true,
            intel_service: None,
            intel_url: None,
            qcnl: QcnlSource::FromEnvironment,
        }
    }
}

/// The endorsement cache (SEV-SNP certificates and CRLs, TDX collateral).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CacheChoice {
    /// The environment's default directory (`/var/cache/thimble` on a real guest; none in a
    /// simulation).
    #[default]
    Default,
    /// This directory.
    Dir(PathBuf),
    /// Neither read nor write a cache.
    Disabled,
}

/// Everything a collection depends on besides the outside world ([`crate::Environment`]) and
/// the time.
#[derive(Debug, Clone)]
pub struct CollectRequest {
    /// What REPORT_DATA binds.
    pub binding: Binding,
    /// Which evidence source to use.
    pub source: SourceChoice,
    /// Where the guest interfaces are.
    pub devices: Devices,
    /// SEV-SNP: the VMPL to ask the report for (configfs-tsm `privlevel`, the sev-guest
    /// request's VMPL, 0 by default). Not used on Azure, where the paravisor asks.
    pub privlevel: Option<u32>,
    /// Azure: keep an HCL report whose `user-data` never echoed this collection's REPORT_DATA
    /// (the bundle records it) instead of failing.
    pub allow_stale_report: bool,
    /// Where endorsements may come from.
    pub fetching: Fetching,
    /// The endorsement cache.
    pub cache: CacheChoice,
    /// The roots AMD certificates (host-attached, cached or fetched) must chain to before they
    /// are kept.
    pub amd_roots: TrustedRoots,
    /// The roots Intel collateral must chain to before it is kept.
    pub intel_roots: IntelRoots,
    /// A test Intel root, tried only when `intel_roots` does not chain (simulations and test
    /// guests signed by a test PKI); `None` in production.
    pub intel_test_roots: Option<IntelRoots>,
    /// The measured-boot event logs to carry.
    pub event_logs: EventLogs,
    /// Told, in a few words, whenever the collection is about to wait on something outside the
    /// guest's memory: an endorsement service, the host's Quote Generation Service, the
    /// paravisor. None by default.
    pub progress: Progress,
}

/// A caller's hook for progress: a function given one short line (`fetching the VCEK from THIM
/// (http://…)`) just before the collection waits on a service, the host or the paravisor, so that
/// a caller can show why nothing seems to happen. The library never prints; what to do with the
/// line is the caller's (the `thimble` binary prints it on a terminal). The function is called
/// from the collecting thread, or from a worker thread while TDX collateral is fetched, and must
/// return quickly.
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<ProgressFn>>);

/// The function a [`Progress`] hook calls.
type ProgressFn = dyn Fn(&str) + Send + Sync;

impl Progress {
    /// A hook that calls `f` with each line.
    pub fn new(f: impl Fn(&str) + Send + Sync + 'static) -> Progress {
        Progress(Some(Arc::new(f)))
    }

    /// No hook: lines are dropped (the default).
    pub fn none() -> Progress {
        Progress(None)
    }

    /// Whether a hook is set.
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// Tells the hook `line`, if there is one.
    pub fn report(&self, line: &str) {
        if let Some(f) = &self.0 {
            f(line);
        }
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_set() {
            "Progress(set)"
        } else {
            "Progress(none)"
        })
    }
}

/// Two hooks are equal when both are absent or both are the same function (the same `Arc`):
/// functions cannot be compared otherwise.
impl PartialEq for Progress {
    fn eq(&self, other: &Progress) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// Which measured-boot event logs a collection reads, and where they are. A log the guest does
/// not have, or that cannot be read or does not parse, is noted in the bundle's
/// `collection.log` and left out: it never fails the collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLogs {
    /// Read the firmware logs: a TD's CCEL log (TDX) and a TPM's TCG2 log (any TEE whose guest
    /// has one). On by default.
    pub firmware: bool,
    /// Also read the kernel's IMA log (large, and growing while the guest runs). Off by default.
    pub ima: bool,
    /// The ACPI CCEL table.
    pub ccel_table: PathBuf,
    /// The CCEL log area.
    pub ccel_data: PathBuf,
    /// The TPM's TCG2 log.
    pub tcg2: PathBuf,
    /// The IMA log.
    pub ima_log: PathBuf,
}

/// Where Linux exposes the ACPI CCEL table.
pub const DEFAULT_CCEL_TABLE: &str = "/sys/firmware/acpi/tables/CCEL";
/// Where Linux exposes the CCEL log area.
pub const DEFAULT_CCEL_DATA: &str = "/sys/firmware/acpi/tables/data/CCEL";
/// Where Linux exposes the first TPM's firmware event log.
pub const DEFAULT_TCG2_LOG: &str = "/sys/kernel/security/tpm0/binary_bios_measurements";
/// Where Linux exposes the IMA log, in its binary form.
pub const DEFAULT_IMA_LOG: &str = "/sys/kernel/security/ima/binary_runtime_measurements";

impl Default for EventLogs {
    fn default() -> Self {
        EventLogs {
            firmware: true,
            ima: false,
            ccel_table: PathBuf::from(DEFAULT_CCEL_TABLE),
            ccel_data: PathBuf::from(DEFAULT_CCEL_DATA),
            tcg2: PathBuf::from(DEFAULT_TCG2_LOG),
            ima_log: PathBuf::from(DEFAULT_IMA_LOG),
        }
    }
}

impl Default for CollectRequest {
    fn default() -> Self {
        CollectRequest {
            binding: Binding::RandomNonce,
            source: SourceChoice::Auto,
            devices: Devices::default(),
            privlevel: None,
            allow_stale_report: false,
            fetching: Fetching::default(),
            cache: CacheChoice::Default,
            amd_roots: TrustedRoots::amd(),
            intel_roots: IntelRoots::intel(),
            intel_test_roots: None,
            event_logs: EventLogs::default(),
            progress: Progress::none(),
        }
    }
}

impl CollectRequest {
    /// A request for evidence bound to the verifier's `nonce`, with every other setting at its
    /// default.
    pub fn with_nonce(nonce: impl Into<Vec<u8>>) -> CollectRequest {
        CollectRequest {
            binding: Binding::Nonce(nonce.into()),
            ..CollectRequest::default()
        }
    }
}
