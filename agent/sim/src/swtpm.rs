// SPDX-License-Identifier: Apache-2.0
//! swtpm (libtpms, a TPM 2.0 implementation built from the TCG reference code) as a real TPM for
//! tests: [`Swtpm::start`] spawns `swtpm socket` on a free loopback port with a fresh state
//! directory, and [`TcpTransport`] speaks to its TCP server, which takes and returns raw TPM 2.0
//! commands and responses. Hosts without CUSE cannot get a `/dev/tpmrm0` from swtpm, so this is
//! how `thimble_collect::vtpm` meets a real TPM off Azure.
//!
//! The `provision_*` helpers then make the TPM look like an Azure vTPM: the HCL report index
//! defined under the platform hierarchy with the paravisor's attributes, an AK created and
//! persisted at `0x81000003` with the attributes of Azure's AK, PCRs extended. They marshal their
//! commands with the codec the client uses (`thimble_evidence::tpm2`). Loopback only; the spawned process is
//! ended by its own id when the [`Swtpm`] is dropped, and it exits by itself when its one
//! connection closes (`--terminate`).

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ring::digest::{SHA256, digest};
use thimble_collect::vtpm::{
    HCL_REPORT_NV_INDEX, HEADER_LEN, MAX_RESPONSE_LEN, NvAuth, NvPublic, TpmPublic, TpmTransport,
    TpmWriter, USER_DATA_LEN, VTPM_AK_HANDLE, VtpmClient, VtpmError, alg, cc, declared_size,
    nv_attr, rh,
};
use thimble_evidence::azure::RsaPublicKey;
use thimble_evidence::tpm2::{Marshal, TpmtPublic, TpmtSigScheme, tpma_object};

use crate::fake_vtpm::HCL_REPORT_NV_ATTRIBUTES;
use crate::signer::ReportSigner;

/// The Debian packages the swtpm tests need (`swtpm` has the binary; `swtpm-tools` adds
/// `swtpm_setup`, which these tests do not use).
pub const DEBIAN_PACKAGES: &str = "swtpm";

/// swtpm's largest NV index on Debian bookworm (libtpms 0.9: `TPM_PT_NV_INDEX_MAX` = 2048).
pub const SWTPM_NV_INDEX_MAX: usize = 2048;

/// The password the helpers give the indices they define as the platform (the paravisor uses a
/// random one per boot; the guest never knows it).
pub const PLATFORM_INDEX_AUTH: &[u8] = b"paravisor";

/// How long to wait for swtpm to accept a connection.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Ports tried if swtpm loses the race for a port picked free.
const START_ATTEMPTS: u32 = 5;
/// Read and write timeout on the socket: libtpms creates RSA keys in well under a second.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// `TPM2_FlushContext` (Part 3 §28.4): not needed by the client, so not in its table.
const CC_FLUSH_CONTEXT: u32 = 0x0000_0165;

/// Why swtpm could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SwtpmError {
    /// No `swtpm` on `PATH`; the message names the package to install.
    #[error(
        "swtpm is not installed (no `swtpm` on PATH): the vTPM tests run against a real TPM 2.0; \
         install it with `apt-get install -y {DEBIAN_PACKAGES}`"
    )]
    NotInstalled,
    /// The fresh state directory, or the log file in it, could not be created.
    #[error("cannot create the swtpm state directory {}", path.display())]
    StateDir {
        /// The directory or log file that could not be created.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The `swtpm` process could not be spawned.
    #[error("cannot spawn {}", binary.display())]
    Spawn {
        /// The binary found on `PATH`.
        binary: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// swtpm exited before it accepted a connection (or the accepted connection could not be
    /// configured), on every port tried; most likely another process took each port first.
    #[error("swtpm exited during start-up ({status}) after {attempts} attempts; its log: {log}")]
    Exited {
        /// The exit status of the last attempt (or why its connection failed), as text.
        status: String,
        /// Ports tried.
        attempts: u32,
        /// swtpm's stderr log of the last attempt.
        log: String,
    },
    /// swtpm kept running but did not accept a connection in time.
    #[error("swtpm did not accept connections on 127.0.0.1:{port} within {}s", waited.as_secs())]
    NotListening {
        /// The loopback port swtpm was told to listen on.
        port: u16,
        /// How long the start-up waited.
        waited: Duration,
    },
    /// No free loopback port could be bound to pick one.
    #[error("cannot pick a free loopback port")]
    Port(#[source] io::Error),
}

/// Held by every running [`Swtpm`] of this process. The port is picked free and then handed to
/// swtpm, and the readiness check connects to whatever listens there: two tests starting swtpm
/// at once could pick the same port and one connect to the other's TPM (which, with
/// `--terminate`, then exits under its owner). One swtpm at a time per process rules that out;
/// cargo runs test binaries one after another.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A running `swtpm socket --tpm2` (see the module docs).
#[derive(Debug)]
pub struct Swtpm {
    child: Child,
    port: u16,
    state_dir: PathBuf,
    /// Taken once the swtpm is known to be ours (see [`ONE_AT_A_TIME`]).
    _serial: Option<MutexGuard<'static, ()>>,
}

impl Swtpm {
    /// The `swtpm` binary on `PATH`.
    pub fn binary() -> Result<PathBuf, SwtpmError> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|dir| dir.join("swtpm"))
            .find(|candidate| candidate.is_file())
            .ok_or(SwtpmError::NotInstalled)
    }

    /// Starts a fresh TPM (manufactured on first use, `TPM2_Startup(CLEAR)` done by swtpm) and
    /// connects to it. The connection is the only one it serves.
    pub fn start() -> Result<(Swtpm, TcpTransport), SwtpmError> {
        let binary = Self::binary()?;
        let state_dir = fresh_state_dir()?;
        let started = Self::start_in(&binary, &state_dir);
        if started.is_err() {
            let _ = fs::remove_dir_all(&state_dir);
        }
        started
    }

    /// Starts swtpm on `state_dir`, which must exist, and leaves the directory in place when it
    /// is dropped: what is provisioned through the connection (persistent keys, NV indices)
    /// stays there for a later swtpm, such as the one a QEMU guest's `tpm-crb` talks to.
    pub fn start_keeping_state(state_dir: &Path) -> Result<(Swtpm, TcpTransport), SwtpmError> {
        let binary = Self::binary()?;
        let (mut swtpm, transport) = Self::start_in(&binary, state_dir)?;
        // An empty path is what Drop takes for "not ours to remove".
        swtpm.state_dir = PathBuf::new();
        Ok((swtpm, transport))
    }

    fn start_in(binary: &Path, state_dir: &Path) -> Result<(Swtpm, TcpTransport), SwtpmError> {
        // A test that panicked while holding the lock leaves nothing behind that matters here.
        let mut serial = Some(ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner));
        let mut last_log = String::new();
        let mut last_status = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let log_path = state_dir.join("swtpm.log");
            let log = fs::File::create(&log_path).map_err(|source| SwtpmError::StateDir {
                path: log_path.clone(),
                source,
            })?;
            let mut command = Command::new(binary);
            command
                .arg("socket")
                .arg("--tpm2")
                .arg("--server")
                .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
                .arg("--tpmstate")
                .arg(format!("dir={}", state_dir.display()))
                .arg("--flags")
                .arg("not-need-init,startup-clear")
                .arg("--terminate")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log));
            let child = command.spawn().map_err(|source| SwtpmError::Spawn {
                binary: binary.to_path_buf(),
                source,
            })?;
            let mut swtpm = Swtpm {
                child,
                port,
                state_dir: state_dir.to_path_buf(),
                _serial: None,
            };
            match swtpm.connect() {
                Ok(transport) => {
                    swtpm._serial = serial.take();
                    return Ok((swtpm, transport));
                }
                Err(Some(status)) => {
                    // Most likely another process took the port between our probe and swtpm's
                    // bind; try another one.
                    last_status = status;
                    last_log = fs::read_to_string(&log_path).unwrap_or_default();
                    swtpm.state_dir = PathBuf::new();
                }
                Err(None) => {
                    swtpm.state_dir = PathBuf::new();
                    return Err(SwtpmError::NotListening {
                        port,
                        waited: START_TIMEOUT,
                    });
                }
            }
        }
        Err(SwtpmError::Exited {
            status: last_status,
            attempts: START_ATTEMPTS,
            log: last_log,
        })
    }

    /// Connects as soon as swtpm listens; `Err(Some(status))` if it exited first, `Err(None)` on
    /// timeout. The first connection is kept: with `--terminate` swtpm serves only one.
    fn connect(&mut self) -> Result<TcpTransport, Option<String>> {
        let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port));
        let start = Instant::now();
        while start.elapsed() < START_TIMEOUT {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Some(status.to_string()));
            }
            if let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                return TcpTransport::new(stream).map_err(|e| Some(e.to_string()));
            }
            thread::sleep(Duration::from_millis(20));
        }
        Err(None)
    }

    /// The loopback TCP port of swtpm's server. Its one connection is already taken by the
    /// [`TcpTransport`] returned with this handle.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id of the spawned swtpm, which dropping the [`Swtpm`] ends.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        // Our own child, by its handle; it may already have exited after its connection closed.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.state_dir.as_os_str().is_empty() {
            let _ = fs::remove_dir_all(&self.state_dir);
        }
    }
}

fn free_port() -> Result<u16, SwtpmError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(SwtpmError::Port)?;
    let port = listener.local_addr().map_err(SwtpmError::Port)?.port();
    Ok(port)
}

fn fresh_state_dir() -> Result<PathBuf, SwtpmError> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let path = std::env::temp_dir().join(format!(
        "thimble-swtpm-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir(&path).map_err(|source| SwtpmError::StateDir {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// swtpm's TCP server: one raw TPM 2.0 command per request, the raw response back, framed only
/// by the size in the header.
#[derive(Debug)]
pub struct TcpTransport {
    stream: TcpStream,
}

impl TcpTransport {
    /// Wraps a connected stream, with 30 s read and write timeouts and Nagle's algorithm off
    /// (every command is one small write answered before the next).
    pub fn new(stream: TcpStream) -> io::Result<TcpTransport> {
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(TcpTransport { stream })
    }
}

impl TpmTransport for TcpTransport {
    fn transact(&mut self, command: &[u8]) -> io::Result<Vec<u8>> {
        self.stream.write_all(command)?;
        let mut response = vec![0u8; HEADER_LEN];
        self.stream.read_exact(&mut response)?;
        let declared = declared_size(&response).unwrap_or(HEADER_LEN);
        if !(HEADER_LEN..=MAX_RESPONSE_LEN).contains(&declared) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("swtpm response declares {declared} bytes"),
            ));
        }
        response.resize(declared, 0);
        self.stream.read_exact(&mut response[HEADER_LEN..])?;
        Ok(response)
    }
}

/// Defines `index` under the platform hierarchy with the HCL report index's attributes and
/// [`PLATFORM_INDEX_AUTH`], sized for `data`, and writes `data` (what the paravisor does at
/// boot). swtpm leaves the platform hierarchy enabled with an empty password.
pub fn provision_platform_index<T: TpmTransport>(
    client: &mut VtpmClient<T>,
    index: u32,
    data: &[u8],
) -> Result<(), VtpmError> {
    let public = NvPublic {
        index,
        name_alg: alg::SHA256,
        attributes: HCL_REPORT_NV_ATTRIBUTES,
        auth_policy: Vec::new(),
        data_size: u16::try_from(data.len()).unwrap_or(u16::MAX),
        name: Vec::new(),
    };
    client.nv_define_space(NvAuth::Platform, PLATFORM_INDEX_AUTH, &public)?;
    client.nv_write(NvAuth::Index(PLATFORM_INDEX_AUTH), index, 0, data)
}

/// The HCL report index holding `report`.
pub fn provision_hcl_report<T: TpmTransport>(
    client: &mut VtpmClient<T>,
    report: &[u8],
) -> Result<(), VtpmError> {
    provision_platform_index(client, HCL_REPORT_NV_INDEX, report)
}

/// Overwrites the HCL report (what the paravisor does when it regenerates it).
pub fn rewrite_hcl_report<T: TpmTransport>(
    client: &mut VtpmClient<T>,
    report: &[u8],
) -> Result<(), VtpmError> {
    client.nv_write(
        NvAuth::Index(PLATFORM_INDEX_AUTH),
        HCL_REPORT_NV_INDEX,
        0,
        report,
    )
}

/// `TPMA_OBJECT` of Azure's AK: fixedTPM, fixedParent, sensitiveDataOrigin, userWithAuth, noDA,
/// restricted, sign (openvmm `tpm_protocol` `expected_ak_attributes`; Part 2 §8.3).
pub const AZURE_AK_ATTRIBUTES: u32 = tpma_object::FIXED_TPM
    | tpma_object::FIXED_PARENT
    | tpma_object::SENSITIVE_DATA_ORIGIN
    | tpma_object::USER_WITH_AUTH
    | tpma_object::NO_DA
    | tpma_object::RESTRICTED
    | tpma_object::SIGN_ENCRYPT;

/// Creates an RSA-2048 restricted signing key (RSASSA, SHA-256) as a primary key of the owner
/// hierarchy (`TPM2_CreatePrimary`, Part 3 §24.1), persists it at `0x81000003`
/// (`TPM2_EvictControl`, Part 3 §28.5), flushes the transient copy, and returns it as
/// `TPM2_ReadPublic` shows it.
pub fn provision_ak<T: TpmTransport>(client: &mut VtpmClient<T>) -> Result<TpmPublic, VtpmError> {
    let template = TpmtPublic::rsa_signing_key(
        AZURE_AK_ATTRIBUTES,
        TpmtSigScheme::RSASSA_SHA256,
        2048,
        Vec::new(),
    );
    let mut p = TpmWriter::new();
    p.u16(4).u16(0).u16(0); // inSensitive: empty userAuth and data
    p.tpm2b("inPublic", &template.to_bytes()?)?;
    p.u16(0); // outsideInfo
    p.u32(0); // creationPCR: none
    let created = client.execute(cc::CREATE_PRIMARY, &[rh::OWNER], &[&[]], p.as_bytes(), 1)?;
    let transient = created.handles.first().copied().unwrap_or(rh::NULL);
    let mut p = TpmWriter::new();
    p.u32(VTPM_AK_HANDLE);
    client.execute(
        cc::EVICT_CONTROL,
        &[rh::OWNER, transient],
        &[&[]],
        p.as_bytes(),
        0,
    )?;
    let mut p = TpmWriter::new();
    p.u32(transient);
    client.execute(CC_FLUSH_CONTEXT, &[], &[], p.as_bytes(), 0)?;
    client.read_public(VTPM_AK_HANDLE)
}

/// `TPM2_PCR_Extend` (Part 3 §22.2) of the SHA-256 bank of `pcr` with `value`, under an empty
/// password session (a PCR's authValue is empty unless someone set one).
pub fn extend_pcr<T: TpmTransport>(
    client: &mut VtpmClient<T>,
    pcr: u32,
    value: &[u8; 32],
) -> Result<(), VtpmError> {
    let mut p = TpmWriter::new();
    p.u32(1).u16(alg::SHA256).bytes(value);
    client.execute(cc::PCR_EXTEND, &[pcr], &[&[]], p.as_bytes(), 0)?;
    Ok(())
}

/// Defines an owner index with owner and index-password access (for tests of error paths).
pub fn define_owner_index<T: TpmTransport>(
    client: &mut VtpmClient<T>,
    index: u32,
    size: u16,
) -> Result<(), VtpmError> {
    let public = NvPublic {
        index,
        name_alg: alg::SHA256,
        attributes: nv_attr::OWNERREAD
            | nv_attr::OWNERWRITE
            | nv_attr::AUTHREAD
            | nv_attr::AUTHWRITE
            | nv_attr::NO_DA,
        auth_policy: Vec::new(),
        data_size: size,
        name: Vec::new(),
    };
    client.nv_define_space(NvAuth::Owner, &[], &public)
}

/// An SEV-SNP HCL report naming `ak` as `HCLAkPub`, with `user_data`, padded to `total_len`: a
/// simulated SNP report signed by the simulated VCEK, REPORT_DATA = SHA-256(runtime data) ‖
/// zeros. `crate::azure_sim::SimHcl` builds the same for its own AK; a TPM that makes its own key
/// needs the report to name that one. The runtime data has only the AK so that the report fits
/// swtpm's 2048-byte index.
pub fn snp_hcl_report_for(
    ak: &RsaPublicKey,
    user_data: &[u8; USER_DATA_LEN],
    total_len: usize,
) -> Vec<u8> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let runtime = format!(
        concat!(
            r#"{{"keys":[{{"kid":"HCLAkPub","key_ops":["sign"],"kty":"RSA","e":"{}","n":"{}"}}],"#,
            r#""vm-configuration":{{"console-enabled":false,"secure-boot":true,"tpm-enabled":true}},"#,
            r#""user-data":"{}"}}"#
        ),
        URL_SAFE_NO_PAD.encode(&ak.e),
        URL_SAFE_NO_PAD.encode(&ak.n),
        hex::encode_upper(user_data)
    )
    .into_bytes();
    let mut report_data = [0u8; 64];
    report_data[..32].copy_from_slice(digest(&SHA256, &runtime).as_ref());
    let hw = ReportSigner::sim().sign(&crate::azure_sim::paravisor_snp_template(), &report_data);
    // Layout: thimble_evidence::azure::hcl (header, 1184-byte slot, request data, runtime data).
    let var = u32::try_from(runtime.len()).unwrap_or(u32::MAX);
    let mut w = TpmWriter::new();
    w.bytes(b"HCLA");
    for word in [1, 32 + 1184 + 20 + var, 2, 0, 0, 0, 0] {
        w.bytes(&u32::to_le_bytes(word));
    }
    let mut slot = hw;
    slot.resize(1184, 0);
    w.bytes(&slot);
    for word in [20 + var, 1, 2, 1, var] {
        w.bytes(&u32::to_le_bytes(word));
    }
    w.bytes(&runtime);
    let mut out = w.into_bytes();
    if out.len() < total_len {
        out.resize(total_len, 0);
    }
    out
}
