// SPDX-License-Identifier: Apache-2.0
//! Rows of the fault matrix (docs/faults.md) checked through the built binary that no other CLI
//! test covered: THIM answering 404, 410, 429 (with and without `Retry-After`) or 503 throughout,
//! unreachable, cutting its body short, dripping it in slowly, or serving an expired VCEK or the
//! chain of another product (each falls back to KDS, or is exit 5 without it); KDS and the Intel
//! collateral service failing or speaking plain HTTP on an `https` URL (exit 5, no bundle); and
//! the output: a process killed inside the write of the bundle, a write that fails partway, a
//! full device on standard output, and a read-only directory for a writer that is not root.
//! Every server is on loopback; timeouts are short.

#![expect(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use common::{Collected, collect_snp, p, refused_url, run, sim_emulator, verify_json};
use thimble_sim::emulator::{Emulator, Fault, FaultRule, THIM_AMD_PATH, unused_loopback_port};
use thimble_sim::signer::sim_chain;

const TIMEOUT: &str = "1";
const DEADLINE: &str = "6";
/// The simulated report's REPORTED_TCB, as THIM's `tcbm`.
const SIM_TCBM: &str = "7308000000000003";

/// What these rows ask of a collect beyond `common::Collected`.
impl Collected {
    /// `None` when the collect ended as `origin` says, with a bundle that verifies; else why not.
    fn check_used(&self, origin: &str) -> Option<String> {
        if self.run.code != 0 {
            return Some(format!("exit {}: {}", self.run.code, self.run.stderr));
        }
        let origins = self.origins();
        if origins != [origin; 3] {
            return Some(format!(
                "origins {origins:?}, THIM log {:?}",
                self.thim_log()
            ));
        }
        let (r, _) = verify_json(&self.bundle, &["--insecure-allow-simulated"]);
        if r.code != 0 {
            return Some(format!("the bundle does not verify: {}", r.stdout));
        }
        None
    }
}

/// A collect with this file's timeouts and no cache.
fn collect(dir: &Path, imds: &str, kds: &str, extra: &[&str]) -> Collected {
    collect_with_timeout(dir, imds, kds, TIMEOUT, extra)
}

fn collect_with_timeout(
    dir: &Path,
    imds: &str,
    kds: &str,
    timeout: &str,
    extra: &[&str],
) -> Collected {
    let mut args = vec!["--no-cache"];
    args.extend_from_slice(extra);
    collect_snp(dir, imds, kds, (timeout, DEADLINE), &args)
}

fn thim_requests(emu: &Emulator) -> usize {
    emu.requests()
        .iter()
        .filter(|r| r.path == THIM_AMD_PATH)
        .count()
}

fn pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(line).unwrap());
        s.push('\n');
    }
    s.push_str("-----END CERTIFICATE-----\n");
    s
}

/// A THIM answer with this VCEK and chain.
fn thim_body(vcek_der: &[u8], chain_pem: &str) -> Vec<u8> {
    serde_json::json!({
        "vcekCert": pem(vcek_der),
        "certificateChain": chain_pem,
        "tcbm": SIM_TCBM,
        "cacheControl": "86400",
    })
    .to_string()
    .into_bytes()
}

/// A loopback server answering every connection at once with plain HTTP, as an HTTP server does
/// to a TLS ClientHello.
fn plain_http_server() -> String {
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            );
        }
    });
    format!("https://127.0.0.1:{port}")
}

fn names(dir: &Path) -> Vec<String> {
    common::dir_names(dir)
}

#[test]
fn thim_error_statuses_throughout_fall_back_to_kds() {
    let mut failures = Vec::new();
    for (name, fault, why) in [
        ("404", Fault::Status(404), "http status 404"),
        ("410", Fault::Status(410), "http status 410"),
        (
            "429 without Retry-After",
            Fault::Status(429),
            "http status 429",
        ),
        ("500", Fault::Status(500), "http status 500"),
        ("503", Fault::Status(503), "http status 503"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let emu = sim_emulator(vec![FaultRule::always(THIM_AMD_PATH, fault)]);
        let c = collect(tmp.path(), &emu.base_url(), &emu.base_url(), &[]);
        if let Some(why_not) = c.check_used("kds") {
            failures.push(format!("{name}: {why_not}"));
            continue;
        }
        let log = c.thim_log();
        if !log.contains(why) {
            failures.push(format!("{name}: THIM log {log:?} (want {why:?})"));
        }
        // Transient statuses are retried before the fallback.
        if thim_requests(&emu) < 2 {
            failures.push(format!("{name}: {} THIM request(s)", thim_requests(&emu)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn thim_retry_after_beyond_the_deadline_falls_back_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let emu = sim_emulator(vec![FaultRule::always(
        THIM_AMD_PATH,
        Fault::RateLimited {
            retry_after_secs: 600,
        },
    )]);
    let c = collect(tmp.path(), &emu.base_url(), &emu.base_url(), &[]);
    assert_eq!(c.check_used("kds"), None);
    let log = c.thim_log();
    assert!(log.contains("deadline") && log.contains("429"), "{log}");
    assert_eq!(
        thim_requests(&emu),
        1,
        "no second attempt past the deadline"
    );
    assert!(c.elapsed < Duration::from_secs(5), "took {:?}", c.elapsed);
}

#[test]
fn thim_unreachable_truncated_expired_or_of_another_product_falls_back_to_kds() {
    let c = sim_chain();
    let genoa_chain =
        std::fs::read_to_string(common::vectors().join("roots/amd/genoa_ask_ark.pem")).unwrap();
    let mut failures = Vec::new();

    // No route: as a refusal (a loopback address with nothing listening, see docs/faults.md).
    let tmp = tempfile::tempdir().unwrap();
    let kds = sim_emulator(Vec::new());
    let imds = format!("http://127.0.0.2:{}", unused_loopback_port().unwrap());
    let run = collect(tmp.path(), &imds, &kds.base_url(), &[]);
    match run.check_used("kds") {
        Some(why_not) => failures.push(format!("no route: {why_not}")),
        None if !run.thim_log().contains("connection failed") => {
            failures.push(format!("no route: THIM log {:?}", run.thim_log()));
        }
        None => {}
    }

    for (name, fault, why) in [
        (
            "truncated body",
            Fault::Truncated { sent: 100 },
            "connection failed",
        ),
        (
            "expired VCEK",
            Fault::Body(thim_body(c.vcek_expired_der, c.ask_ark_pem)),
            "(certificate-expired)",
        ),
        (
            "chain of another product",
            Fault::Body(thim_body(c.vcek_der, &genoa_chain)),
            "(chain)",
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let emu = sim_emulator(vec![FaultRule::always(THIM_AMD_PATH, fault)]);
        let run = collect(tmp.path(), &emu.base_url(), &emu.base_url(), &[]);
        if let Some(why_not) = run.check_used("kds") {
            failures.push(format!("{name}: {why_not}"));
            continue;
        }
        let log = run.thim_log();
        if !log.contains(why) {
            failures.push(format!("{name}: THIM log {log:?} (want {why:?})"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn thim_dripping_its_answer_within_the_timeout_is_used() {
    let tmp = tempfile::tempdir().unwrap();
    let len = sim_chain().thim_json.len();
    // Eight chunks, 80 ms apart: about 0.56 s, within a 3 s per-request timeout.
    let emu = sim_emulator(vec![FaultRule::always(
        THIM_AMD_PATH,
        Fault::Drip {
            chunk: len.div_ceil(8),
            interval: Duration::from_millis(80),
        },
    )]);
    let c = collect_with_timeout(tmp.path(), &emu.base_url(), &emu.base_url(), "3", &[]);
    assert_eq!(c.check_used("thim"), None);
    assert_eq!(thim_requests(&emu), 1);
    assert!(
        c.elapsed >= Duration::from_millis(500),
        "the answer was not dripped: {:?}",
        c.elapsed
    );
}

#[test]
fn kds_failing_without_thim_is_exit_5_and_writes_nothing() {
    // 410 throughout (retried, then final), and an https URL answered in plain HTTP (a TLS
    // failure).
    let emu = sim_emulator(vec![FaultRule::always("/vcek/", Fault::Status(410))]);
    let tls = plain_http_server();
    for (name, kds, why) in [
        ("410", emu.base_url(), "http status 410".to_string()),
        ("TLS", tls.clone(), tls.clone()),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let c = collect(tmp.path(), &refused_url(), &kds, &["--no-thim"]);
        assert_eq!(c.run.code, 5, "{name}: {}", c.run.stderr);
        let e = &c.run.stderr;
        assert!(
            e.starts_with("error: endorsements could not be fetched\n"),
            "{name}: {e}"
        );
        assert!(e.contains("kds (Milan)") && e.contains(&why), "{name}: {e}");
        assert!(!c.bundle.exists(), "{name}");
        assert_eq!(names(tmp.path()), Vec::<String>::new(), "{name}");
    }
}

#[test]
fn intel_collateral_over_tls_to_a_plain_server_is_exit_5() {
    let tmp = tempfile::tempdir().unwrap();
    let url = plain_http_server();
    let out = tmp.path().join("tdx.json");
    let r = run(&[
        "collect",
        "--simulate",
        "tdx",
        "--no-cache",
        "--intel-collateral",
        "pcs",
        "--intel-collateral-url",
        &url,
        "--timeout",
        "1",
        "--deadline",
        "2",
        "-o",
        p(&out),
    ]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.stderr.contains(&url), "{}", r.stderr);
    assert!(!out.exists());
}

/// `thimble collect --simulate snp --no-cache -o OUT` under `sh` with a file size limit of
/// `blocks` 512-byte blocks (`ulimit -f`), SIGXFSZ left at its default (the process is killed in
/// the write that crosses the limit) or ignored (that write fails with EFBIG).
fn collect_with_file_size_limit(
    cwd: &Path,
    out: &Path,
    blocks: u64,
    ignore_sigxfsz: bool,
) -> std::process::Output {
    let trap = if ignore_sigxfsz { "trap '' XFSZ; " } else { "" };
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -c 0; ulimit -f {blocks}; {trap}exec \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_thimble"))
        .args(["collect", "--simulate", "snp", "--no-cache", "-o", p(out)])
        .current_dir(cwd)
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The previous bundle, and a size limit that lets every other file through but not the bundle.
fn previous_bundle(dir: &Path) -> (PathBuf, Vec<u8>, u64) {
    let out = dir.join("evidence.json");
    let r = run(&["collect", "--simulate", "snp", "--no-cache", "-o", p(&out)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let previous = std::fs::read(&out).unwrap();
    let len = previous.len() as u64;
    assert!(len > 2048, "a bundle of {len} bytes");
    (out, previous, len / 512 - 1)
}

#[test]
fn killed_inside_the_write_leaves_the_previous_bundle_and_no_temporary() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let (out, previous, blocks) = previous_bundle(dir.path());
    let o = collect_with_file_size_limit(cwd.path(), &out, blocks, false);
    // SIGXFSZ is delivered in the write(2) that crosses the limit: the process dies inside the
    // write of the new bundle, as SIGKILL or SIGTERM (which thimble does not catch) would.
    assert_eq!(
        o.status.signal(),
        Some(nix::libc::SIGXFSZ),
        "{:?}: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(std::fs::read(&out).unwrap(), previous);
    assert_eq!(names(dir.path()), ["evidence.json"]);
    assert_eq!(names(cwd.path()), Vec::<String>::new());
}

#[test]
fn a_write_that_fails_partway_is_exit_1_and_keeps_the_previous_bundle() {
    // EFBIG here; a full disk (ENOSPC) fails the same write the same way.
    let dir = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let (out, previous, blocks) = previous_bundle(dir.path());
    let o = collect_with_file_size_limit(cwd.path(), &out, blocks, true);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("error: cannot write {}", out.display())),
        "{stderr}"
    );
    assert!(stderr.contains("File too large"), "{stderr}");
    assert_eq!(std::fs::read(&out).unwrap(), previous);
    assert_eq!(names(dir.path()), ["evidence.json"]);
    assert_eq!(names(cwd.path()), Vec::<String>::new());
}

#[test]
fn a_full_device_on_standard_output_is_exit_1() {
    // /dev/full answers every write with ENOSPC, as a full disk does.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = common::bin()
        .args(["collect", "--simulate", "snp", "--no-cache", "-o", "-"])
        .stdout(full)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error: cannot write -"), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
}

#[test]
fn a_read_only_directory_refuses_a_writer_that_is_not_root() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    // Root writes anywhere, so the binary runs as `nobody` when the tests run as root: a copy of
    // it in a directory everyone may enter, so that the build directory's permissions do not
    // matter.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let binary = dir.path().join("thimble");
    std::fs::copy(env!("CARGO_BIN_EXE_thimble"), &binary).unwrap();
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::write(ro.join("evidence.json"), b"previous").unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let out = ro.join("evidence.json");
    let mut cmd = Command::new(&binary);
    cmd.args(["collect", "--simulate", "snp", "--no-cache", "-o", p(&out)])
        .current_dir(dir.path())
        .env("HOME", dir.path());
    // The directory was made by this process: its owner is this process's user.
    if std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(dir.path()).unwrap()) == 0 {
        cmd.uid(65534).gid(65534);
    }
    // The copy was just written: a child that another test thread forked meanwhile holds the
    // copy's write descriptor until it execs, and until then the kernel refuses to run the file
    // (ETXTBSY). That passes within milliseconds; retry for up to a second.
    let mut tries = 0;
    let o = loop {
        match cmd.output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => break other.unwrap(),
        }
    };
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("error: cannot write {}", out.display())),
        "{stderr}"
    );
    assert!(stderr.contains("Permission denied"), "{stderr}");
    assert_eq!(std::fs::read(&out).unwrap(), b"previous");
    assert_eq!(names(&ro), ["evidence.json"]);
}
