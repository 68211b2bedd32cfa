// SPDX-License-Identifier: Apache-2.0
//! Boots a real Linux kernel in QEMU with the project's test initramfs and reads what the early
//! collection printed on the serial console, for `tests/boot.rs`.
//!
//! The pieces, each cached under `target/guest-tests/` and rebuilt only when an input changes:
//! Debian's newest `linux-image-6.12.*-cloud-amd64` (found with `apt-cache search`, fetched with
//! `apt-get download`, one package kept), the initramfs built from it by
//! `initramfs/build-test-initramfs.sh` with the static thimble binary, and one console log per
//! test under `runs/`. The static binary is not built here (a `cargo build` inside `cargo test`
//! would fight over the build lock): it must exist, fresher than the sources, at
//! `target/x86_64-unknown-linux-musl/release/thimble`, or be named by `THIMBLE_BIN`. A missing
//! prerequisite fails the test with the command that provides it.
//!
//! The guest has no network unless a test asks for it, and then only QEMU user networking with
//! `restrict=on`: it can reach nothing but the `guestfwd` program the test names (the IMDS
//! emulator, or the relay to a server the test runs on the host's loopback), which QEMU runs once
//! per connection on its stdin and stdout. Boots run one at a time (the machines have two cores,
//! and a TCG boot keeps one busy), each under a hard wall-clock limit after which QEMU is killed.
//!
//! A boot may also have a TPM: QEMU's `tpm-crb` backed by an swtpm on a Unix control socket
//! ([`QemuSwtpm`]), which the kernel's built-in `tpm_crb` driver turns into `/dev/tpmrm0`.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// The package family the boot tests use: Debian 12's 6.12 cloud kernel (bookworm-security, and
/// bookworm-backports), whose configfs-tsm, sev-guest and tdx-guest are modules, as on a real
/// cloud image.
pub const KERNEL_FAMILY: &str = "linux-image-6.12.*-cloud-amd64";

/// How a missing QEMU is installed. The bookworm build of qemu-system-x86 would remove the
/// newer qemu-utils these machines have, so it comes from bookworm-backports.
pub const QEMU_INSTALL: &str = "echo 'deb http://deb.debian.org/debian bookworm-backports main' \
     >/etc/apt/sources.list.d/bookworm-backports.list && apt-get update && \
     apt-get install -y --no-install-recommends --no-remove -t bookworm-backports qemu-system-x86";

/// How the static binary the initramfs needs is built.
pub const STATIC_BUILD: &str =
    "cargo build --release --locked --target x86_64-unknown-linux-musl -p thimble";

/// The kernel command line every boot starts with: the serial console the harness reads, an
/// immediate exit of QEMU on a panic (`-no-reboot` turns the reboot into an exit) instead of a
/// hang until the time limit, and informational kernel messages on the console, so that the
/// `thimble:` lines the early logic writes to the kernel log come with the kernel's timestamps.
pub const BASE_CMDLINE: &str = "console=ttyS0 panic=-1 loglevel=7";

/// The link-local network QEMU's user networking gives the guest when a test wants one. IMDS's
/// address must lie inside it for `guestfwd` to accept it, as it does on Azure.
pub const GUEST_NET: &str = "169.254.0.0/16";

/// Azure's IMDS address, where `guestfwd` puts the emulator.
pub const IMDS_ADDR: &str = "169.254.169.254";

/// Default hard limit of one boot. A TCG boot of the cloud kernel with this initramfs takes 4 to
/// 11 s here; the longest path the early logic can take is its network wait plus the `timeout`
/// it puts around thimble (the deadline plus 60 s), so a boot that is still running after this
/// is hung, not slow. `THIMBLE_QEMU_TIMEOUT` (seconds) overrides it.
pub const DEFAULT_BOOT_TIMEOUT: Duration = Duration::from_secs(180);

/// Bound of `apt-get download` of the kernel (about 30 MB from a Debian mirror).
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// Bound of `build-test-initramfs.sh` (about 5 s here: unpacking the package and gzip -9).
const BUILD_TIMEOUT: Duration = Duration::from_secs(300);

/// How long swtpm may take to create its control socket.
const SWTPM_START_TIMEOUT: Duration = Duration::from_secs(10);

// --- places ---------------------------------------------------------------------------------

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    here.canonicalize().unwrap_or(here)
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, else `target/` in the workspace).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Where the boot tests keep the kernel, the initramfs and the console logs.
pub fn cache_dir() -> PathBuf {
    target_dir().join("guest-tests")
}

/// `tool` on PATH.
fn on_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

// --- prerequisites --------------------------------------------------------------------------

/// `qemu-system-x86_64`, or a panic with the command that installs it.
pub fn qemu_binary() -> PathBuf {
    on_path("qemu-system-x86_64")
        .unwrap_or_else(|| panic!("qemu-system-x86_64 is not installed; as root: {QEMU_INSTALL}"))
}

/// The accelerator: KVM only when the CPU shows hardware virtualization (`vmx` or `svm` in
/// /proc/cpuinfo) and /dev/kvm is there. These machines have /dev/kvm without either flag, and
/// a stock kernel does not boot on it, so anything else is TCG. Never found out by booting.
pub fn accelerator() -> &'static str {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    if cpu_has_virtualization(&cpuinfo) && Path::new("/dev/kvm").exists() {
        "kvm"
    } else {
        "tcg"
    }
}

/// Whether a /proc/cpuinfo text has a `flags` line with `vmx` or `svm`.
pub fn cpu_has_virtualization(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"))
}

/// The newest modification time of the files under `dir` (recursively) that can change the
/// binary: `tests/` and `benches/` directories are left out.
fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        let t = if p.is_dir() {
            if p.file_name()
                .is_some_and(|n| n == "tests" || n == "benches")
            {
                continue;
            }
            newest_mtime(&p)
        } else {
            fs::metadata(&p).and_then(|m| m.modified()).ok()
        };
        newest = newest.max(t);
    }
    newest
}

/// The static thimble binary that goes into the initramfs (and verifies on the host): the one
/// `THIMBLE_BIN` names, else the musl release build, which must be newer than every file under
/// `agent/` (but its tests) and the lock file, so that the guest never runs yesterday's code.
pub fn static_thimble() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("THIMBLE_BIN") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("THIMBLE_BIN={} does not exist", p.display()))
        };
    }
    let bin = target_dir().join("x86_64-unknown-linux-musl/release/thimble");
    let built = fs::metadata(&bin).and_then(|m| m.modified()).map_err(|_| {
        format!(
            "no static thimble at {}: build it with `{STATIC_BUILD}` (or set THIMBLE_BIN)",
            bin.display()
        )
    })?;
    let root = workspace_root();
    let sources = [
        newest_mtime(&root.join("agent")),
        fs::metadata(root.join("Cargo.lock"))
            .and_then(|m| m.modified())
            .ok(),
    ]
    .into_iter()
    .flatten()
    .max();
    if sources.is_some_and(|s| s > built) {
        return Err(format!(
            "{} is older than the sources under agent/: rebuild it with `{STATIC_BUILD}`",
            bin.display()
        ));
    }
    Ok(bin)
}

/// Runs `cmd` with stdout and stderr captured, killed after `limit`.
fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<(ExitStatus, String), String> {
    let dir = std::env::temp_dir();
    let log = dir.join(format!(
        "thimble-guest-tests-{}-{:?}.log",
        std::process::id(),
        std::thread::current().id()
    ));
    let file = fs::File::create(&log).map_err(|e| format!("create {}: {e}", log.display()))?;
    let file2 = file
        .try_clone()
        .map_err(|e| format!("dup {}: {e}", log.display()))?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(file2)
        .spawn()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let (status, timed_out) = wait_bounded(&mut child, limit);
    let out = fs::read_to_string(&log).unwrap_or_default();
    let _ = fs::remove_file(&log);
    if timed_out {
        return Err(format!("{cmd:?} did not finish within {limit:?}:\n{out}"));
    }
    status
        .map(|s| (s, out))
        .map_err(|e| format!("waiting for {cmd:?}: {e}"))
}

/// Waits for `child` at most `limit`, killing it then. Returns its status and whether it was
/// killed.
fn wait_bounded(child: &mut Child, limit: Duration) -> (std::io::Result<ExitStatus>, bool) {
    let end = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return (Ok(status), false),
            Ok(None) if Instant::now() >= end => {
                let _ = child.kill();
                return (child.wait(), true);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return (Err(e), false);
            }
        }
    }
}

// --- the kernel -----------------------------------------------------------------------------

/// The version part of a [`KERNEL_FAMILY`] package name (`6.12.90+deb12.1` of
/// `linux-image-6.12.90+deb12.1-cloud-amd64`): exactly `6.12.N+debNN[.M]`, so that the `-dbg`
/// and `-unsigned` packages and the meta-packages do not match.
fn kernel_version(name: &str) -> Option<&str> {
    let version = name
        .strip_prefix("linux-image-")?
        .strip_suffix("-cloud-amd64")?;
    let (upstream, abi) = version.split_once('+')?;
    let n = upstream.strip_prefix("6.12.")?;
    let abi = abi.strip_prefix("deb")?;
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    (digits(n) && abi.split('.').all(digits)).then_some(version)
}

/// The numbers of a version, in order, for comparing versions of the family:
/// `6.12.90+deb12.1` is `[6, 12, 90, 12, 1]`, newer than `6.12.90+deb12`.
fn version_key(version: &str) -> Vec<u64> {
    version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(u64::MAX))
        .collect()
}

/// The newest package of [`KERNEL_FAMILY`] in `apt-cache search --names-only` output.
pub fn newest_cloud_kernel(apt_cache_search: &str) -> Option<String> {
    apt_cache_search
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|name| Some((version_key(kernel_version(name)?), name)))
        .max()
        .map(|(_, name)| name.to_owned())
}

/// The .deb files in `dir`.
fn debs_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "deb"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The kernel package: `THIMBLE_KERNEL_DEB` if set, else the newest [`KERNEL_FAMILY`] package
/// the apt lists know, downloaded once into `target/guest-tests/kernel/` (which keeps only that
/// one package, so the cache stays at one kernel however often Debian updates it).
pub fn kernel_deb() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("THIMBLE_KERNEL_DEB") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("THIMBLE_KERNEL_DEB={} does not exist", p.display()))
        };
    }
    let dir = cache_dir().join("kernel");
    fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let cached = debs_in(&dir);
    let how = format!(
        "the boot tests need Debian's {KERNEL_FAMILY} from bookworm-security: add \
         `deb http://deb.debian.org/debian-security bookworm-security main` to the apt sources \
         and run `apt-get update`, or set THIMBLE_KERNEL_DEB to such a .deb"
    );
    let apt_cache = on_path("apt-cache").ok_or_else(|| format!("no apt-cache: {how}"))?;
    let (status, out) = run_bounded(
        Command::new(apt_cache).args([
            "search",
            "--names-only",
            r"^linux-image-6\.12\..*-cloud-amd64$",
        ]),
        Duration::from_secs(60),
    )?;
    let newest = if status.success() {
        newest_cloud_kernel(&out)
    } else {
        None
    };
    let Some(name) = newest else {
        // Offline lists without the family: a kernel fetched earlier still serves.
        return match cached.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(format!("apt-cache knows no {KERNEL_FAMILY}: {how}")),
        };
    };
    let prefix = format!("{name}_");
    if let Some(hit) = cached.iter().find(|p| {
        p.file_name()
            .and_then(|f| f.to_str())
            .is_some_and(|f| f.starts_with(&prefix))
    }) {
        return Ok(hit.clone());
    }
    // apt-get download writes into the current directory; a fresh one, so that a download cut
    // short never passes for a package.
    let partial = dir.join("download.partial");
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial).map_err(|e| format!("create {}: {e}", partial.display()))?;
    let apt_get = on_path("apt-get").ok_or_else(|| format!("no apt-get: {how}"))?;
    let (status, out) = run_bounded(
        Command::new(apt_get)
            .args(["download", &name])
            .current_dir(&partial),
        DOWNLOAD_TIMEOUT,
    )?;
    let got = debs_in(&partial);
    let [deb] = got.as_slice() else {
        return Err(format!(
            "apt-get download {name} failed ({status}):\n{out}\n{how}"
        ));
    };
    let file_name = deb.file_name().ok_or("a .deb without a name")?;
    let dest = dir.join(file_name);
    fs::rename(deb, &dest).map_err(|e| format!("move {}: {e}", deb.display()))?;
    let _ = fs::remove_dir_all(&partial);
    for old in cached {
        let _ = fs::remove_file(old);
    }
    Ok(dest)
}

// --- the image ------------------------------------------------------------------------------

/// A kernel image and the test initramfs built for it.
#[derive(Debug, Clone)]
pub struct Image {
    pub vmlinuz: PathBuf,
    pub initrd: PathBuf,
    /// The static thimble inside the initramfs, which also verifies on the host.
    pub thimble: PathBuf,
    /// The kernel package both come from.
    pub kernel_deb: PathBuf,
}

/// What an initramfs was built from: every input's path, size and modification time.
fn stamp_of(inputs: &[PathBuf]) -> String {
    inputs
        .iter()
        .map(|p| {
            let m = fs::metadata(p).ok();
            let size = m.as_ref().map_or(0, |m| m.len());
            let mtime = m
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{} {size} {mtime}\n", p.display())
        })
        .collect()
}

fn build_image() -> Result<Image, String> {
    let thimble = static_thimble()?;
    let kernel_deb = kernel_deb()?;
    let root = workspace_root();
    let script = root.join("initramfs/build-test-initramfs.sh");
    let inputs = vec![
        kernel_deb.clone(),
        thimble.clone(),
        script.clone(),
        root.join("initramfs/thimble-early.sh"),
        root.join("initramfs/test-initramfs/init"),
        root.join("initramfs/test-initramfs/udhcpc.script"),
    ];
    let dir = cache_dir().join("image");
    fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let image = Image {
        vmlinuz: dir.join("vmlinuz"),
        initrd: dir.join("initrd.cpio.gz"),
        thimble,
        kernel_deb,
    };
    let stamp_path = dir.join("stamp");
    let stamp = stamp_of(&inputs);
    if image.vmlinuz.is_file()
        && image.initrd.is_file()
        && fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp)
    {
        return Ok(image);
    }
    let _ = fs::remove_file(&stamp_path);
    let (tmp_initrd, tmp_vmlinuz) = (dir.join("initrd.partial"), dir.join("vmlinuz.partial"));
    let (status, out) = run_bounded(
        Command::new("sh")
            .arg(&script)
            .arg(&image.kernel_deb)
            .arg(&image.thimble)
            .arg(&tmp_initrd)
            .arg("--vmlinuz")
            .arg(&tmp_vmlinuz),
        BUILD_TIMEOUT,
    )?;
    if !status.success() {
        return Err(format!("{} failed ({status}):\n{out}", script.display()));
    }
    for (from, to) in [(&tmp_initrd, &image.initrd), (&tmp_vmlinuz, &image.vmlinuz)] {
        fs::rename(from, to).map_err(|e| format!("move {}: {e}", from.display()))?;
    }
    fs::write(&stamp_path, stamp).map_err(|e| format!("write {}: {e}", stamp_path.display()))?;
    Ok(image)
}

/// The kernel and initramfs, prepared once per test process (an error too, so that six tests
/// do not try six downloads); a panic with the instruction when a prerequisite is missing.
pub fn image() -> Image {
    static IMAGE: Mutex<Option<Result<Image, String>>> = Mutex::new(None);
    let mut slot = IMAGE.lock().unwrap_or_else(PoisonError::into_inner);
    slot.get_or_insert_with(build_image)
        .clone()
        .unwrap_or_else(|e| panic!("cannot prepare the guest: {e}"))
}

// --- booting --------------------------------------------------------------------------------

/// The guest's network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Net {
    /// No network device at all.
    None,
    /// A virtio NIC on QEMU user networking with `restrict=on` and nothing forwarded: DHCP
    /// answers, every packet leaving the guest is dropped.
    Restricted,
    /// As `Restricted`, plus `guestfwd` from IMDS's address, port 80, to this program, run once
    /// per connection with the connection on its stdin and stdout.
    Imds(PathBuf),
    /// As `Restricted`, plus `guestfwd` from `guest` (`ADDR:PORT`, ADDR inside [`GUEST_NET`]) to
    /// `relay target`, run once per connection: `tcp-relay` joining it to a server the test runs
    /// on the host's loopback at `target`, which keeps its state across connections.
    Relay {
        guest: String,
        relay: PathBuf,
        target: std::net::SocketAddr,
    },
}

/// QEMU's arguments for `net`.
pub fn net_args(net: &Net) -> Vec<String> {
    // libslirp splits the command with g_shell_parse_argv, so the path is single-quoted; QEMU's
    // option parser then needs every comma doubled.
    let quoted = |program: &Path| {
        format!("'{}'", program.display().to_string().replace('\'', r"'\''")).replace(',', ",,")
    };
    let user = format!("user,id=n0,restrict=on,net={GUEST_NET}");
    let netdev = match net {
        Net::None => return vec!["-nic".into(), "none".into()],
        Net::Restricted => user,
        Net::Imds(program) => {
            format!("{user},guestfwd=tcp:{IMDS_ADDR}:80-cmd:{}", quoted(program))
        }
        Net::Relay {
            guest,
            relay,
            target,
        } => format!("{user},guestfwd=tcp:{guest}-cmd:{} {target}", quoted(relay)),
    };
    vec![
        "-netdev".into(),
        netdev,
        "-device".into(),
        "virtio-net-pci,netdev=n0".into(),
    ]
}

/// QEMU's arguments for a TPM 2.0 on the CRB interface, backed by the swtpm whose control
/// socket is `ctrl`: QEMU's `emulator` backend hands swtpm the data channel over that socket,
/// initializes it (`CMD_INIT`) at every reset, and the firmware or the kernel sends
/// `TPM2_Startup`.
pub fn tpm_args(ctrl: &Path) -> Vec<String> {
    vec![
        "-chardev".into(),
        // QEMU's option parser needs every comma of the path doubled.
        format!(
            "socket,id=chrtpm,path={}",
            ctrl.display().to_string().replace(',', ",,")
        ),
        "-tpmdev".into(),
        "emulator,id=tpm0,chardev=chrtpm".into(),
        "-device".into(),
        "tpm-crb,tpmdev=tpm0".into(),
    ]
}

/// One boot of the test initramfs.
#[derive(Debug, Clone)]
pub struct Boot {
    /// Names the directory of its logs, `target/guest-tests/runs/NAME/`.
    pub name: String,
    /// `thimble.*` options, added to [`BASE_CMDLINE`].
    pub cmdline: String,
    pub net: Net,
    /// The control socket of the swtpm backing a `tpm-crb` ([`QemuSwtpm::ctrl`]); no TPM when
    /// `None`.
    pub tpm: Option<PathBuf>,
    /// Hard wall-clock limit: QEMU is killed after it.
    pub timeout: Duration,
}

impl Boot {
    pub fn new(name: &str, cmdline: &str, net: Net) -> Self {
        let timeout = std::env::var("THIMBLE_QEMU_TIMEOUT")
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(DEFAULT_BOOT_TIMEOUT, Duration::from_secs);
        Boot {
            name: name.to_owned(),
            cmdline: cmdline.to_owned(),
            net,
            tpm: None,
            timeout,
        }
    }

    /// The same boot with a `tpm-crb` backed by `swtpm`.
    pub fn with_tpm(mut self, swtpm: &QemuSwtpm) -> Self {
        self.tpm = Some(swtpm.ctrl().to_path_buf());
        self
    }
}

/// An swtpm serving a QEMU guest's TPM: `swtpm socket --tpm2 --tpmstate dir=STATE --ctrl
/// type=unixio,path=SOCKET --terminate`, on a state directory provisioned beforehand. It has no
/// data socket of its own: QEMU passes one over the control channel. It needs no `--flags`
/// either, unlike the TCP swtpm that provisions the state: QEMU sends `CMD_INIT` on every
/// reset (so `not-need-init` is not wanted), and the guest's firmware, SeaBIOS, sends
/// `TPM2_Startup(CLEAR)` and `TPM2_SelfTest` (seen in swtpm's command log on bookworm's swtpm
/// 0.7.1 and QEMU 10), as firmware does on a real machine; `startup-clear` would only add a
/// start-up of swtpm's own before it.
///
/// QEMU sends `CMD_SHUTDOWN` when it exits, which ends swtpm. Dropping the guard ends it by its
/// own handle all the same (a QEMU killed at the time limit sends nothing) and removes the
/// socket. The state directory and swtpm's error log in it (`swtpm-qemu.log`) stay, for a look
/// after a failure.
#[derive(Debug)]
pub struct QemuSwtpm {
    child: Child,
    ctrl: PathBuf,
    log: PathBuf,
}

impl QemuSwtpm {
    /// Starts swtpm on `state_dir` and waits for its control socket. The socket goes to the
    /// temporary directory: a Unix socket path is limited to 107 bytes, which a deep
    /// `CARGO_TARGET_DIR` could exceed.
    pub fn start(state_dir: &Path) -> Result<QemuSwtpm, String> {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let binary = on_path("swtpm").ok_or(
            "swtpm is not installed (no `swtpm` on PATH): the Azure boot test backs the guest's \
             tpm-crb with it; install it with `apt-get install -y swtpm`",
        )?;
        let ctrl = std::env::temp_dir().join(format!(
            "thimble-qemu-swtpm-{}-{}.sock",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = fs::remove_file(&ctrl);
        let log = state_dir.join("swtpm-qemu.log");
        let _ = fs::remove_file(&log);
        let mut cmd = Command::new(&binary);
        cmd.args(["socket", "--tpm2", "--terminate"])
            .arg("--tpmstate")
            .arg(format!("dir={}", state_dir.display()))
            .arg("--ctrl")
            .arg(format!("type=unixio,path={}", ctrl.display()))
            .arg("--log")
            .arg(format!("file={},level=1", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut swtpm = QemuSwtpm { child, ctrl, log };
        let start = Instant::now();
        while !swtpm.ctrl.exists() {
            if let Ok(Some(status)) = swtpm.child.try_wait() {
                return Err(format!(
                    "{cmd:?} exited during start-up ({status}); its log:\n{}",
                    swtpm.log_text()
                ));
            }
            if start.elapsed() > SWTPM_START_TIMEOUT {
                return Err(format!(
                    "{cmd:?} made no control socket within {SWTPM_START_TIMEOUT:?}; its log:\n{}",
                    swtpm.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(swtpm)
    }

    /// The control socket QEMU's `-chardev socket` connects to.
    pub fn ctrl(&self) -> &Path {
        &self.ctrl
    }

    /// What swtpm logged so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for QemuSwtpm {
    fn drop(&mut self) {
        // Our own child, by its handle; an exited one is only reaped.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_file(&self.ctrl);
    }
}

/// The `THIMBLE-RESULT` line of the test initramfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThimbleResult {
    /// thimble's exit code (or the shell's 124/126/127).
    pub exit: i32,
    /// `continue` or `stop`.
    pub boot: String,
    pub required: bool,
    /// The verifier of `thimble.attest`, when the boot had one.
    pub attest: Option<String>,
    /// `thimble attest`'s exit code, or `skipped` when collection had failed.
    pub attest_exit: Option<String>,
}

/// What a boot left behind.
#[derive(Debug)]
pub struct Booted {
    /// The serial console, `\r` removed.
    pub console: String,
    /// From starting QEMU to its exit (or to killing it).
    pub elapsed: Duration,
    /// QEMU was killed at the time limit.
    pub timed_out: bool,
    pub status: Option<ExitStatus>,
    /// QEMU's own stderr.
    pub qemu_stderr: String,
    /// What the guestfwd programs (`imds-once`, `tcp-relay`) logged (`THIMBLE_IMDS_LOG`), one
    /// line per connection.
    pub imds_log: String,
    /// Where the logs are.
    pub run_dir: PathBuf,
    /// The image that was booted.
    pub image: Image,
}

/// Parses the `THIMBLE-RESULT exit=N boot=B required=R` line. Found anywhere in a line, because
/// a kernel message can share the line the console was on.
pub fn parse_result(console: &str) -> Option<ThimbleResult> {
    let line = tagged_line(console, "THIMBLE-RESULT")?;
    let mut exit = None;
    let mut boot = None;
    let mut required = None;
    let mut attest = None;
    let mut attest_exit = None;
    for word in line.split_whitespace() {
        match word.split_once('=') {
            Some(("exit", v)) => exit = v.parse().ok(),
            Some(("boot", v)) => boot = Some(v.to_owned()),
            Some(("required", v)) => required = Some(v == "1"),
            Some(("attest", v)) => attest = Some(v.to_owned()),
            Some(("attest_exit", v)) => attest_exit = Some(v.to_owned()),
            _ => {}
        }
    }
    Some(ThimbleResult {
        exit: exit?,
        boot: boot?,
        required: required?,
        attest,
        attest_exit,
    })
}

/// What follows `TAG ` on the first console line holding it (anywhere in the line, as for
/// [`parse_result`]): the rest of a `THIMBLE-RESOURCE` or `THIMBLE-TOKEN` line, for example.
pub fn tagged_line<'a>(console: &'a str, tag: &str) -> Option<&'a str> {
    let tag = format!("{tag} ");
    console
        .lines()
        .find_map(|l| l.find(&tag).map(|i| l[i + tag.len()..].trim_end()))
}

/// Whether `line` starts with a kernel timestamp (`[    2.457223] `).
fn is_kernel_line(line: &str) -> bool {
    line.strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .is_some_and(|(t, _)| {
            let t = t.trim();
            !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.')
        })
}

/// The bundle between `THIMBLE-BUNDLE-BEGIN` and `THIMBLE-BUNDLE-END`, decoded. Kernel
/// messages that landed between the base64 lines are skipped.
pub fn parse_bundle(console: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let mut lines = console.lines().map(str::trim);
    lines
        .by_ref()
        .find(|l| *l == "THIMBLE-BUNDLE-BEGIN")
        .ok_or("no THIMBLE-BUNDLE-BEGIN on the console")?;
    let mut b64 = String::new();
    let mut ended = false;
    for l in lines {
        if l == "THIMBLE-BUNDLE-END" {
            ended = true;
            break;
        }
        if !is_kernel_line(l) {
            b64.push_str(l);
        }
    }
    if !ended {
        return Err("no THIMBLE-BUNDLE-END after THIMBLE-BUNDLE-BEGIN".into());
    }
    base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(|e| format!("the bundle is not base64: {e}"))
}

/// The kernel timestamp, in seconds since boot, of the first console line holding `needle`
/// with one.
pub fn kernel_time(console: &str, needle: &str) -> Option<f64> {
    console
        .lines()
        .filter(|l| is_kernel_line(l) && l.contains(needle))
        .find_map(|l| {
            let inner = l.strip_prefix('[')?.split_once(']')?.0;
            inner.trim().parse().ok()
        })
}

impl Booted {
    /// The last lines of the console and the log paths, for assertion messages.
    pub fn describe(&self) -> String {
        let lines: Vec<&str> = self.console.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!(
            "QEMU {} after {:.1?}{}; console: {}\n--- last console lines ---\n{tail}\n\
             --- QEMU stderr ---\n{}\n--- guestfwd log (imds-once, tcp-relay) ---\n{}",
            self.status
                .map_or_else(|| "did not exit".to_owned(), |s| s.to_string()),
            self.elapsed,
            if self.timed_out {
                " (killed at the time limit)"
            } else {
                ""
            },
            self.run_dir.join("console.log").display(),
            self.qemu_stderr.trim(),
            self.imds_log.trim(),
        )
    }

    /// Asserts that the guest ran to its own power-off: not killed, QEMU exited 0, no panic,
    /// and a `THIMBLE-RESULT` line, which it returns.
    pub fn assert_finished(&self) -> ThimbleResult {
        assert!(!self.timed_out, "the boot hung: {}", self.describe());
        assert!(
            self.status.is_some_and(|s| s.success()),
            "QEMU failed: {}",
            self.describe()
        );
        assert!(
            !self.console.contains("Kernel panic"),
            "the guest panicked: {}",
            self.describe()
        );
        assert!(
            self.console.contains("reboot: Power down"),
            "the guest did not power off: {}",
            self.describe()
        );
        parse_result(&self.console)
            .unwrap_or_else(|| panic!("no THIMBLE-RESULT line: {}", self.describe()))
    }

    /// The bundle printed on the console, or a panic.
    pub fn bundle(&self) -> Vec<u8> {
        parse_bundle(&self.console).unwrap_or_else(|e| panic!("{e}: {}", self.describe()))
    }

    /// Seconds between the kernel starting /init and the kernel-log line holding `needle`.
    pub fn seconds_after_init(&self, needle: &str) -> f64 {
        let start = kernel_time(&self.console, "Run /init as init process")
            .unwrap_or_else(|| panic!("no `Run /init` line: {}", self.describe()));
        let end = kernel_time(&self.console, needle)
            .unwrap_or_else(|| panic!("no kernel-log line with {needle:?}: {}", self.describe()));
        end - start
    }
}

/// Boots `boot`, one boot at a time per test process, and returns what the console showed.
/// Panics (failing the test) when QEMU, the kernel or the static binary is missing.
pub fn boot(boot: &Boot) -> Booted {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let qemu = qemu_binary();
    let image = image();
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);

    let run_dir = cache_dir().join("runs").join(&boot.name);
    let _ = fs::remove_dir_all(&run_dir);
    fs::create_dir_all(&run_dir).unwrap_or_else(|e| panic!("create {}: {e}", run_dir.display()));
    let console_path = run_dir.join("console.log");
    let stderr_path = run_dir.join("qemu-stderr.log");
    let imds_log_path = run_dir.join("imds.log");
    let console_file = fs::File::create(&console_path)
        .unwrap_or_else(|e| panic!("create {}: {e}", console_path.display()));
    let stderr_file = fs::File::create(&stderr_path)
        .unwrap_or_else(|e| panic!("create {}: {e}", stderr_path.display()));

    let append = format!("{BASE_CMDLINE} {}", boot.cmdline);
    let mut cmd = Command::new(&qemu);
    // -nodefaults: no default NIC (q35 would add an unrestricted one), no VGA, no CD-ROM.
    cmd.args(["-nodefaults", "-machine", "q35", "-cpu", "max", "-m", "512"])
        .args(["-smp", "1", "-nographic", "-serial", "stdio", "-no-reboot"])
        .args(["-accel", accelerator()])
        .arg("-kernel")
        .arg(&image.vmlinuz)
        .arg("-initrd")
        .arg(&image.initrd)
        .arg("-append")
        .arg(&append)
        .args(net_args(&boot.net))
        .args(boot.tpm.as_deref().map(tpm_args).unwrap_or_default())
        .env("THIMBLE_IMDS_LOG", &imds_log_path)
        .stdin(Stdio::null())
        .stdout(console_file)
        .stderr(stderr_file);
    fs::write(run_dir.join("command"), format!("{cmd:?}\n")).unwrap_or_default();
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", qemu.display()));
    let (status, timed_out) = wait_bounded(&mut child, boot.timeout);
    let elapsed = start.elapsed();
    // Shown with --nocapture, and in the output of a failing test: boot times are the cost of
    // these tests.
    eprintln!(
        "boot {}: {:.1} s under {}{}",
        boot.name,
        elapsed.as_secs_f64(),
        accelerator(),
        if timed_out {
            " (killed at the limit)"
        } else {
            ""
        }
    );

    let read = |p: &Path| {
        let mut s = String::new();
        let _ = fs::File::open(p).and_then(|mut f| {
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes)?;
            s = String::from_utf8_lossy(&bytes).replace('\r', "");
            Ok(())
        });
        s
    };
    Booted {
        console: read(&console_path),
        elapsed,
        timed_out,
        status: status.ok(),
        qemu_stderr: read(&stderr_path),
        imds_log: read(&imds_log_path),
        run_dir,
        image,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_newest_cloud_kernel() {
        let out = "\
linux-image-6.12.9+deb12-cloud-amd64 - Linux 6.12 for x86-64 cloud (signed)
linux-image-6.12.90+deb12.1-cloud-amd64 - Linux 6.12 for x86-64 cloud (signed)
linux-image-6.12.117+deb12-cloud-amd64 - Linux 6.12 for x86-64 cloud (signed)
linux-image-6.12.117+deb12-cloud-amd64-dbg - Debug symbols for linux-image-6.12.117+deb12-cloud-amd64
linux-image-6.12.200+deb12-cloud-amd64-unsigned - Linux 6.12 for x86-64 cloud
linux-image-6.12.90+deb12-cloud-amd64 - Linux 6.12 for x86-64 cloud (signed)
";
        assert_eq!(
            newest_cloud_kernel(out).as_deref(),
            Some("linux-image-6.12.117+deb12-cloud-amd64")
        );
        // A point release of the ABI beats its base.
        let out = "linux-image-6.12.90+deb12-cloud-amd64 - x\n\
                   linux-image-6.12.90+deb12.1-cloud-amd64 - x\n";
        assert_eq!(
            newest_cloud_kernel(out).as_deref(),
            Some("linux-image-6.12.90+deb12.1-cloud-amd64")
        );
        assert_eq!(
            newest_cloud_kernel("linux-image-cloud-amd64 - meta\n"),
            None
        );
        assert_eq!(newest_cloud_kernel(""), None);
    }

    #[test]
    fn kvm_only_with_vmx_or_svm() {
        assert!(cpu_has_virtualization("flags\t\t: fpu vme vmx sse\n"));
        assert!(cpu_has_virtualization("flags\t\t: fpu svm\n"));
        assert!(!cpu_has_virtualization("flags\t\t: fpu vme hypervisor\n"));
        assert!(!cpu_has_virtualization("model name\t: vmx-like svm\n"));
    }

    #[test]
    fn parses_the_console_protocol() {
        let console = "\
[    2.4] Run /init as init process
thimble: evidence collected: /run/thimble/evidence.json
[    6.339213] thimble: evidence collected: /run/thimble/evidence.json
THIMBLE-RESULT exit=0 boot=continue required=0
THIMBLE-BUNDLE-BEGIN
eyJ0ZWUiOiJz
[    6.5] random: crng init done
bnAifQ==
THIMBLE-BUNDLE-END
";
        assert_eq!(
            parse_result(console),
            Some(ThimbleResult {
                exit: 0,
                boot: "continue".into(),
                required: false,
                attest: None,
                attest_exit: None,
            })
        );
        let r = parse_result(
            "THIMBLE-RESULT exit=0 boot=continue required=0 attest=kbs attest_exit=10\n\
             THIMBLE-RESOURCE sha256=ab bytes=2\n",
        )
        .unwrap();
        assert_eq!(
            (r.attest.as_deref(), r.attest_exit.as_deref()),
            (Some("kbs"), Some("10"))
        );
        assert_eq!(parse_bundle(console).unwrap(), br#"{"tee":"snp"}"#);
        let secs = kernel_time(console, "thimble: evidence collected").unwrap()
            - kernel_time(console, "Run /init").unwrap();
        assert!((secs - 3.939213).abs() < 1e-9, "{secs}");
        // A kernel message that shares the line.
        let r = parse_result("[ 1.0] x THIMBLE-RESULT exit=3 boot=stop required=1\n").unwrap();
        assert_eq!((r.exit, r.boot.as_str(), r.required), (3, "stop", true));
        assert_eq!(parse_result("THIMBLE-RESULT exit=3\n"), None);
        assert!(parse_bundle("THIMBLE-BUNDLE-BEGIN\nAAAA\n").is_err());
        assert!(parse_bundle("nothing\n").is_err());
        assert_eq!(
            tagged_line("x\n[ 1.0] y THIMBLE-TOKEN a.b.c\n", "THIMBLE-TOKEN"),
            Some("a.b.c")
        );
        assert_eq!(tagged_line("THIMBLE-TOKENS x\n", "THIMBLE-TOKEN"), None);
    }

    #[test]
    fn the_network_is_restricted_and_quoted() {
        assert_eq!(net_args(&Net::None), ["-nic", "none"]);
        let r = net_args(&Net::Restricted);
        assert_eq!(r[1], "user,id=n0,restrict=on,net=169.254.0.0/16");
        let i = net_args(&Net::Imds(PathBuf::from("/a,b/it's/imds-once")));
        assert_eq!(
            i[1],
            "user,id=n0,restrict=on,net=169.254.0.0/16,\
             guestfwd=tcp:169.254.169.254:80-cmd:'/a,,b/it'\\''s/imds-once'"
        );
        assert_eq!(i[3], "virtio-net-pci,netdev=n0");
        let r = net_args(&Net::Relay {
            guest: "169.254.169.200:8080".into(),
            relay: PathBuf::from("/t,x/tcp-relay"),
            target: "127.0.0.1:4000".parse().unwrap(),
        });
        assert_eq!(
            r[1],
            "user,id=n0,restrict=on,net=169.254.0.0/16,\
             guestfwd=tcp:169.254.169.200:8080-cmd:'/t,,x/tcp-relay' 127.0.0.1:4000"
        );
    }

    #[test]
    fn the_tpm_is_a_crb_on_the_swtpm_socket() {
        assert_eq!(
            tpm_args(Path::new("/tmp/a,b.sock")),
            [
                "-chardev",
                "socket,id=chrtpm,path=/tmp/a,,b.sock",
                "-tpmdev",
                "emulator,id=tpm0,chardev=chrtpm",
                "-device",
                "tpm-crb,tpmdev=tpm0"
            ]
        );
    }
}
