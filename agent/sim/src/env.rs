// SPDX-License-Identifier: Apache-2.0
//! [`SimEnvironment`]: a simulated confidential VM as a `thimble_collect::Environment`, so that
//! `thimble_collect::collect` runs the same detection, client, endorsement and bundle code
//! against the kernel-faithful fakes of this crate that it runs against a real guest. It is what
//! `thimble collect --simulate snp|tdx|azure-snp|azure-tdx` uses.
//!
//! Each [`SimMachine`] has the interfaces of one kind of guest, and its host's services run as
//! emulators on loopback, started on first use and stopped with the environment. An endpoint the
//! request names explicitly always wins over the emulator (tests aim a simulated guest at an
//! emulator with faults that way). The simulation reads no QCNL file, uses no cache unless the
//! request names a directory, and never goes through a proxy. The clock, the random generator and
//! the kernel release are the host's. Its measured-boot logs are those of [`crate::boot_log`]:
//! a TD's CCEL log, an Azure CVM's vTPM log, none for an SEV-SNP guest.
//!
//! Trust is not the environment's business: the test roots the simulated evidence chains to are
//! trusted only when the caller puts them in the request ([`insecure_trust_test_roots`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use thimble_collect::env::{EnvError, Environment, LogFile, Opened, SystemEnvironment};
use thimble_collect::http::{Fetch, FetchError, HttpClient, HttpConfig, HttpResponse};
use thimble_collect::intel::qcnl::{QcnlConfig, QcnlError};
use thimble_collect::qgs::{QgsEndpoint, QgsError};
use thimble_collect::request::{DEFAULT_CCEL_DATA, DEFAULT_CCEL_TABLE, DEFAULT_TCG2_LOG};
use thimble_collect::sev_guest::SevGuestError;
use thimble_collect::tdx_guest::TdxGuestError;
use thimble_collect::tsm::Provider;
use thimble_collect::vtpm::VtpmError;
use thimble_collect::{CollectRequest, env::Endpoint};
use thimble_evidence::snp::Product;
use thimble_verify::IntelRoots;

use crate::azure_sim::{AzureImds, SimHcl};
use crate::boot_log;
use crate::emulator::{Emulator, EmulatorConfig};
use crate::fake_qgs::FakeQgs;
use crate::fake_sev_guest::{FakeSevGuest, sim_cert_table};
use crate::fake_tdx_guest::FakeTdxGuest;
use crate::fake_tsm::{FakeTsm, KernelProfile};
use crate::fake_vtpm::{AZURE_HCL_REPORT_LEN, FakeVtpm};
use crate::signer::{ReportSigner, ReportTemplate, sim_chain};
use crate::tdx_signer::{SimTdx, TdQuoteTemplate, sim_tdx_pki};

/// Where the simulated configfs-tsm says it is (it is not a file system).
pub const SIM_TSM_ROOT: &str = "/simulated/sys/kernel/config/tsm/report";
/// What the simulated SEV-SNP guest device is called in bundles.
pub const SIM_SEV_GUEST_PATH: &str = "simulated:/dev/sev-guest";
/// What the simulated TDX guest device is called in bundles.
pub const SIM_TDX_GUEST_PATH: &str = "simulated:/dev/tdx_guest";
/// What the simulated vTPM is called in bundles.
pub const SIM_TPM_PATH: &str = "simulated:/dev/tpmrm0";

/// The kind of simulated guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimMachine {
    /// An SEV-SNP guest with `/dev/sev-guest` and no configfs-tsm, whose host attaches no
    /// certificates (as on Azure), so that the VCEK chain comes from the THIM and KDS emulator.
    SnpDevice,
    /// An SEV-SNP guest on a Linux 6.10 kernel with configfs-tsm (provider `sev_guest`) and no
    /// `/dev/sev-guest`, whose host attaches the VCEK chain as `auxblob`: no fetch is needed for
    /// the certificates. The ARK's CRL still comes from the KDS emulator.
    SnpConfigfs,
    /// A TD with configfs-tsm (provider `tdx_guest`, Linux 6.10) and `/dev/tdx_guest` with a
    /// host Quote Generation Service, quotes signed by the test Intel PKI, and a THIM-shaped
    /// collateral emulator.
    Tdx,
    /// An Azure SEV-SNP CVM behind the paravisor: a vTPM whose HCL report wraps a simulated
    /// SEV-SNP report, and an IMDS emulator serving THIM (and KDS).
    AzureSnp,
    /// An Azure TDX CVM behind the paravisor: a vTPM whose HCL report wraps a TD report, and an
    /// IMDS emulator serving `/acc/tdquote` and the collateral.
    AzureTdx,
}

/// The emulators a simulated machine's host runs, once bound. Each is bound when a collection
/// first asks for its address and serves from the first request made through [`SimHttp`]; one
/// that is never asked anything (a `collect` whose endorsements all come from its cache) never
/// starts a thread.
#[derive(Default)]
struct Services {
    /// THIM (AMD) and KDS.
    amd: Option<Emulator>,
    /// The Intel collateral service (TDX).
    intel: Option<Emulator>,
    /// IMDS with `/acc/tdquote` and the collateral (Azure TDX).
    azure_imds: Option<Emulator>,
}

/// A simulated guest (see the module documentation).
pub struct SimEnvironment {
    machine: SimMachine,
    tdx: Option<Arc<SimTdx>>,
    services: Arc<Mutex<Services>>,
    host: SystemEnvironment,
}

/// The simulation's HTTP client: the real one, which first has every bound emulator serve.
pub struct SimHttp {
    inner: HttpClient,
    services: Arc<Mutex<Services>>,
}

impl SimHttp {
    fn serve_all(&self) -> Result<(), FetchError> {
        let s = lock_services(&self.services);
        for emulator in [&s.amd, &s.intel, &s.azure_imds].into_iter().flatten() {
            emulator.serve().map_err(|e| FetchError::Transport {
                url: emulator.base_url(),
                attempts: 0,
                reason: format!("cannot start the emulator's thread: {e}"),
            })?;
        }
        Ok(())
    }
}

impl Fetch for SimHttp {
    fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<HttpResponse, FetchError> {
        self.serve_all()?;
        self.inner.get(url, headers)
    }

    fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpResponse, FetchError> {
        self.serve_all()?;
        self.inner.post(url, headers, body)
    }
}

fn lock_services(services: &Mutex<Services>) -> std::sync::MutexGuard<'_, Services> {
    // A panic while starting an emulator leaves nothing half-made: the slot is still empty.
    services.lock().unwrap_or_else(|e| e.into_inner())
}

impl std::fmt::Debug for SimEnvironment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimEnvironment")
            .field("machine", &self.machine)
            .finish_non_exhaustive()
    }
}

impl SimEnvironment {
    /// A simulated guest of kind `machine`; nothing is started until a collection needs it.
    pub fn new(machine: SimMachine) -> SimEnvironment {
        let tdx = matches!(machine, SimMachine::Tdx | SimMachine::AzureTdx)
            .then(|| Arc::new(SimTdx::load()));
        SimEnvironment {
            machine,
            tdx,
            services: Arc::new(Mutex::new(Services::default())),
            host: SystemEnvironment::new(),
        }
    }

    /// The kind of guest.
    pub fn machine(&self) -> SimMachine {
        self.machine
    }

    fn services(&self) -> std::sync::MutexGuard<'_, Services> {
        lock_services(&self.services)
    }

    /// The THIM and KDS emulator, bound on first use.
    fn amd_emulator(&self) -> Result<String, EnvError> {
        let mut s = self.services();
        if s.amd.is_none() {
            let emu = Emulator::bind_routes(EmulatorConfig::sim())
                .map_err(|e| EnvError::new("cannot start the THIM emulator on loopback", e))?;
            s.amd = Some(emu);
        }
        Ok(s.amd.as_ref().map(Emulator::base_url).unwrap_or_default())
    }

    /// The Intel collateral emulator, its collateral dated around now, bound on first use.
    fn intel_emulator(&self, tdx: &SimTdx) -> Result<String, EnvError> {
        let mut s = self.services();
        if s.intel.is_none() {
            let emu =
                Emulator::bind_routes(tdx.intel_emulator_config(self.host.now())).map_err(|e| {
                    EnvError::new("cannot start the collateral emulator on loopback", e)
                })?;
            s.intel = Some(emu);
        }
        Ok(s.intel.as_ref().map(Emulator::base_url).unwrap_or_default())
    }

    /// Azure's IMDS for a TD (`/acc/tdquote`, and the collateral on the same server), bound on
    /// first use.
    fn azure_imds(&self, tdx: &Arc<SimTdx>) -> Result<String, EnvError> {
        let mut s = self.services();
        if s.azure_imds.is_none() {
            let emu = Emulator::bind_routes(
                AzureImds::sim_tdx(Arc::clone(tdx))
                    .with_inner(tdx.intel_emulator_config(self.host.now())),
            )
            .map_err(|e| EnvError::new("cannot start the IMDS emulator on loopback", e))?;
            s.azure_imds = Some(emu);
        }
        Ok(s.azure_imds
            .as_ref()
            .map(Emulator::base_url)
            .unwrap_or_default())
    }

    fn has_sev_guest(&self) -> bool {
        self.machine == SimMachine::SnpDevice
    }

    fn has_tdx_guest(&self) -> bool {
        self.machine == SimMachine::Tdx
    }
}

fn absent(path: &Path) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("the simulated guest has no {}", path.display()),
    )
}

impl Environment for SimEnvironment {
    type ConfigFs = FakeTsm;
    type SevGuest = FakeSevGuest;
    type TdxGuest = FakeTdxGuest;
    type Qgs = FakeQgs;
    type Tpm = FakeVtpm;
    type Http = SimHttp;

    fn configfs_tsm(&self, _tsm_root: &Path) -> Option<(FakeTsm, PathBuf)> {
        let fake = match (self.machine, &self.tdx) {
            (SimMachine::SnpConfigfs, _) => {
                let signer = ReportSigner::sim();
                let generator = Box::new(move |inblob: &[u8; 64], privlevel: u32| {
                    let template = ReportTemplate {
                        vmpl: privlevel,
                        ..ReportTemplate::default()
                    };
                    Ok((signer.sign(&template, inblob), sim_cert_table()))
                });
                FakeTsm::new(KernelProfile::Linux6_10, Provider::SevGuest, generator)
            }
            (SimMachine::Tdx, Some(tdx)) => FakeTsm::new(
                KernelProfile::Linux6_10,
                Provider::TdxGuest,
                Arc::clone(tdx).tsm_generator(TdQuoteTemplate::default()),
            ),
            _ => return None,
        };
        let fake = fake.with_root(SIM_TSM_ROOT);
        let root = fake.root().to_path_buf();
        Some((fake, root))
    }

    fn sev_guest_present(&self, _path: &Path) -> bool {
        self.has_sev_guest()
    }

    fn open_sev_guest(&self, path: &Path) -> Result<Opened<FakeSevGuest>, SevGuestError> {
        if !self.has_sev_guest() {
            return Err(SevGuestError::Open {
                path: path.to_path_buf(),
                source: absent(path),
            });
        }
        Ok(Opened {
            device: FakeSevGuest::new().with_cert_table(Vec::new()),
            path: SIM_SEV_GUEST_PATH.into(),
        })
    }

    fn tdx_guest_present(&self, _path: &Path) -> bool {
        self.has_tdx_guest()
    }

    fn open_tdx_guest(&self, path: &Path) -> Result<Opened<FakeTdxGuest>, TdxGuestError> {
        if !self.has_tdx_guest() {
            return Err(TdxGuestError::Open {
                path: path.to_path_buf(),
                source: absent(path),
            });
        }
        // The same TD whichever interface asks: the TD report the QGS quotes carries the
        // measurements and attributes the configfs-tsm path's quotes carry.
        Ok(Opened {
            device: FakeTdxGuest::new()
                .with_template(TdQuoteTemplate::default().td_report_template()),
            path: SIM_TDX_GUEST_PATH.into(),
        })
    }

    fn qgs(&self, port: Option<u32>) -> Result<FakeQgs, QgsError> {
        match (&self.tdx, self.machine) {
            (Some(tdx), SimMachine::Tdx) => {
                Ok(FakeQgs::new().with_quote_maker(Arc::clone(tdx).quote_maker()))
            }
            _ => Err(QgsError::NoService {
                endpoint: QgsEndpoint::host(port.unwrap_or(thimble_collect::qgs::DEFAULT_PORT)),
            }),
        }
    }

    fn open_tpm(&self, path: Option<&Path>) -> Result<Opened<FakeVtpm>, VtpmError> {
        let device = match self.machine {
            SimMachine::AzureSnp => FakeVtpm::new(),
            SimMachine::AzureTdx => {
                FakeVtpm::new().with_paravisor(Box::new(|user_data: &[u8; 64]| {
                    let mut report = SimHcl::tdx(user_data);
                    report.resize(AZURE_HCL_REPORT_LEN, 0);
                    report
                }))
            }
            _ => {
                return Err(VtpmError::NoDevice {
                    tried: vec![
                        path.map_or_else(|| PathBuf::from(SIM_TPM_PATH), Path::to_path_buf),
                    ],
                });
            }
        };
        Ok(Opened {
            device,
            path: SIM_TPM_PATH.into(),
        })
    }

    fn http(&self, config: HttpConfig) -> SimHttp {
        // Every service of the simulation is on loopback.
        SimHttp {
            inner: HttpClient::new(HttpConfig {
                use_proxy_env: false,
                ..config
            }),
            services: Arc::clone(&self.services),
        }
    }

    fn qcnl(&self) -> Result<Option<QcnlConfig>, QcnlError> {
        // The simulation is self-contained: the operator's file is for real guests.
        Ok(None)
    }

    fn endpoint(&self, endpoint: Endpoint) -> Result<Option<String>, EnvError> {
        match (self.machine, endpoint, &self.tdx) {
            (
                SimMachine::SnpDevice | SimMachine::SnpConfigfs | SimMachine::AzureSnp,
                Endpoint::Imds | Endpoint::Kds,
                _,
            ) => self.amd_emulator().map(Some),
            (SimMachine::Tdx, Endpoint::IntelCollateral, Some(tdx)) => {
                self.intel_emulator(tdx).map(Some)
            }
            (SimMachine::AzureTdx, Endpoint::Imds | Endpoint::IntelCollateral, Some(tdx)) => {
                self.azure_imds(tdx).map(Some)
            }
            _ => Ok(None),
        }
    }

    fn default_cache_dir(&self) -> Option<PathBuf> {
        None
    }

    fn simulated(&self) -> bool {
        true
    }

    fn now(&self) -> i64 {
        self.host.now()
    }

    fn fill_random(&self, buf: &mut [u8]) -> Result<(), EnvError> {
        self.host.fill_random(buf)
    }

    fn kernel_release(&self) -> Option<String> {
        self.host.kernel_release()
    }

    fn read_log_file(
        &self,
        which: LogFile,
        _path: &Path,
        max_len: usize,
    ) -> Result<Option<(Vec<u8>, String)>, std::io::Error> {
        // The logs of the simulated boot, which the simulated RTMRs and PCRs hold. Like the
        // devices, a file is answered for whatever path is asked and named by its Linux path.
        // A TD publishes its CCEL log; an Azure CVM's TDX guest does not (its RTMRs are the
        // paravisor's), and both Azure guests have the vTPM's log.
        let (bytes, path) = match (self.machine, which) {
            (SimMachine::Tdx, LogFile::CcelTable) => {
                (&boot_log::td_boot().ccel_table, DEFAULT_CCEL_TABLE)
            }
            (SimMachine::Tdx, LogFile::CcelData) => {
                (&boot_log::td_boot().log_area, DEFAULT_CCEL_DATA)
            }
            (SimMachine::AzureSnp | SimMachine::AzureTdx, LogFile::Tcg2) => {
                (&boot_log::vtpm_boot().log, DEFAULT_TCG2_LOG)
            }
            _ => return Ok(None),
        };
        if bytes.len() > max_len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                format!("more than {max_len} bytes"),
            ));
        }
        Ok(Some((bytes.clone(), format!("simulated:{path}"))))
    }
}

/// Makes `request` trust the simulation's test roots besides the vendors' (the test ARK for
/// Milan, the test Intel root as a fallback): what `--insecure-allow-simulated` does. Never in
/// production: evidence signed by thimble's committed test keys would then pass.
pub fn insecure_trust_test_roots(request: &mut CollectRequest) {
    request.amd_roots = std::mem::take(&mut request.amd_roots)
        .insecure_add_simulated(Product::Milan, sim_chain().ark_der);
    request.intel_test_roots = Some(IntelRoots::insecure_custom(sim_tdx_pki().root_ca_der));
}
