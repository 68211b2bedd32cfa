// SPDX-License-Identifier: Apache-2.0
//! Endorsement fetching against a misbehaving THIM, through the built binary: each test starts a
//! THIM/KDS emulator on loopback with a fault, runs `collect --simulate snp` against it (`--imds`
//! and `--kds` point at the emulator or at a refused loopback port, never elsewhere), then checks
//! the documented outcome: which source the bundle's endorsements came from, what the endorsement
//! log says about THIM, that the bundle verifies and carries the ARK's CRL from KDS, and how long
//! it took. With `--no-kds`, or with
//! KDS down too, a THIM failure is exit 5 with a message naming the problem. Also checks the
//! request contract THIM relies on (`Metadata: true`, never `X-Forwarded-For`).
//!
//! Timeouts are small (`--timeout 1 --deadline 3`) to keep the file's wall time reasonable.

#![expect(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

mod common;

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use common::{Collected, collect_snp, refused_url, sim_emulator, verify_json};
use thimble_sim::emulator::{Emulator, Fault, FaultRule, THIM_AMD_PATH};
use thimble_sim::signer::sim_chain;

const TIMEOUT: &str = "1";
// Generous enough that a loaded 2-core machine still fits THIM (half of it) and the KDS fallback.
const DEADLINE: &str = "6";

/// What these tests ask of a collect beyond `common::Collected`.
impl Collected {
    /// Asserts exit 0, a bundle that verifies, and endorsements all from `origin`.
    fn assert_used(&self, origin: &str) {
        assert_eq!(self.run.code, 0, "{}", self.run.stderr);
        assert_eq!(self.origins(), [origin; 3], "log: {:?}", self.log());
        assert_eq!(self.crl_origin(), ["kds"], "log: {:?}", self.log());
        let (r, _) = verify_json(&self.bundle, &["--insecure-allow-simulated"]);
        assert_eq!(r.code, 0, "{}", r.stdout);
    }
}

/// `collect --simulate snp --imds IMDS --kds KDS` with this file's timeouts, into `dir`.
fn collect(dir: &Path, imds: &str, kds: &str, extra: &[&str]) -> Collected {
    collect_snp(dir, imds, kds, (TIMEOUT, DEADLINE), extra)
}

/// Collects with THIM and KDS both on `emu`.
fn collect_from(emu: &Emulator, dir: &Path, extra: &[&str]) -> Collected {
    collect(dir, &emu.base_url(), &emu.base_url(), extra)
}

fn thim_requests(emu: &Emulator) -> usize {
    emu.requests()
        .iter()
        .filter(|r| r.path == THIM_AMD_PATH)
        .count()
}

/// Requests for the VCEK and its chain (not the CRL).
fn kds_requests(emu: &Emulator) -> usize {
    emu.requests()
        .iter()
        .filter(|r| r.path.starts_with("/vcek/") && !r.path.ends_with("/crl"))
        .count()
}

fn crl_requests(emu: &Emulator) -> usize {
    emu.requests()
        .iter()
        .filter(|r| r.path == "/vcek/v1/Milan/crl")
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

/// A THIM body like the simulated one, with another VCEK and `tcbm`.
fn thim_body(vcek_der: &[u8], tcbm: &str) -> Vec<u8> {
    serde_json::json!({
        "vcekCert": pem(vcek_der),
        "certificateChain": sim_chain().ask_ark_pem,
        "tcbm": tcbm,
        "cacheControl": "86400",
    })
    .to_string()
    .into_bytes()
}

/// The THIM faults with their expected log fragment, each of which must make collect fall back
/// to KDS (or, with `--no-kds`, fail with exit 5 naming the problem).
fn thim_faults() -> Vec<(&'static str, Fault, &'static str)> {
    let c = sim_chain();
    vec![
        ("hang", Fault::Hang, "timed out"),
        ("status 500", Fault::Status(500), "http status 500"),
        ("status 403", Fault::Status(403), "http status 403"),
        (
            "malformed JSON",
            Fault::MalformedBody(b"{\"vcekCert\": ".to_vec()),
            "not a JSON object",
        ),
        (
            "oversize",
            Fault::Oversize(2 * 1024 * 1024),
            "exceeds the limit",
        ),
        (
            "close without response",
            Fault::CloseWithoutResponse,
            "connection failed",
        ),
        (
            "redirect",
            Fault::Redirect {
                status: 302,
                location: "http://127.0.0.1:1/elsewhere".into(),
            },
            "refusing redirect",
        ),
        (
            "VCEK of another chip",
            Fault::Body(thim_body(c.vcek_other_chip_der, "7308000000000003")),
            "another chip",
        ),
        (
            "VCEK of another TCB",
            Fault::Body(thim_body(c.vcek_other_tcb_der, "7308000000000003")),
            "REPORTED_TCB",
        ),
        (
            "wrong tcbm",
            Fault::Body(thim_body(c.vcek_der, "7408000000000003")),
            "tcbm 7408000000000003 is not the report's REPORTED_TCB",
        ),
        (
            "forged VCEK",
            Fault::Body(thim_body(c.vcek_forged_der, "7308000000000003")),
            "(chain)",
        ),
    ]
}

#[test]
fn thim_healthy_is_used_and_gets_the_imds_headers() {
    let tmp = tempfile::tempdir().unwrap();
    let emu = sim_emulator(Vec::new());
    let c = collect_from(&emu, tmp.path(), &[]);
    c.assert_used("thim");
    assert_eq!(
        (thim_requests(&emu), kds_requests(&emu), crl_requests(&emu)),
        (1, 0, 1)
    );
    for r in emu.requests() {
        assert_eq!(r.method, "GET");
        assert_eq!(r.header("X-Forwarded-For"), None, "{r:?}");
        if r.path == THIM_AMD_PATH {
            assert_eq!(r.header("Metadata"), Some("true"), "{r:?}");
        }
    }
}

#[test]
fn thim_refused_falls_back_to_kds() {
    let tmp = tempfile::tempdir().unwrap();
    let kds = sim_emulator(Vec::new());
    let imds = refused_url();
    let c = collect(tmp.path(), &imds, &kds.base_url(), &[]);
    c.assert_used("kds");
    let log = c.thim_log();
    assert!(
        log.contains(&imds) && log.contains("connection failed"),
        "{log}"
    );
    assert!(
        c.log().iter().any(|l| l.starts_with("kds: ")),
        "{:?}",
        c.log()
    );
    // KDS is not IMDS: no Metadata header needed, and never X-Forwarded-For.
    assert!(kds_requests(&kds) >= 2);
    assert!(
        kds.requests()
            .iter()
            .all(|r| r.header("X-Forwarded-For").is_none())
    );
}

#[test]
fn thim_hang_falls_back_within_the_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    let emu = sim_emulator(vec![FaultRule::always(THIM_AMD_PATH, Fault::Hang)]);
    let c = collect_from(&emu, tmp.path(), &[]);
    c.assert_used("kds");
    assert!(c.thim_log().contains("deadline"), "{}", c.thim_log());
    let deadline = Duration::from_secs(DEADLINE.parse().unwrap());
    assert!(
        c.elapsed < deadline + Duration::from_secs(5),
        "took {:?}",
        c.elapsed
    );
    // The per-request timeout was applied: more than one attempt fit in the deadline.
    assert!(thim_requests(&emu) >= 2, "{}", thim_requests(&emu));
}

#[test]
fn whole_fetch_respects_the_deadline_when_everything_hangs() {
    // `--deadline` is documented as the overall deadline for fetching endorsements.
    let tmp = tempfile::tempdir().unwrap();
    let emu = sim_emulator(vec![FaultRule::always("/", Fault::Hang)]);
    let c = collect_from(&emu, tmp.path(), &[]);
    assert_eq!(c.run.code, 5, "{}", c.run.stderr);
    let deadline = Duration::from_secs(DEADLINE.parse().unwrap());
    assert!(
        c.elapsed < deadline + Duration::from_millis(1500),
        "took {:?} with --deadline {DEADLINE}",
        c.elapsed
    );
}

#[test]
fn thim_503_twice_then_ok_is_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let emu = sim_emulator(vec![FaultRule::times(THIM_AMD_PATH, Fault::Status(503), 2)]);
    let c = collect_from(&emu, tmp.path(), &[]);
    c.assert_used("thim");
    assert_eq!((thim_requests(&emu), kds_requests(&emu)), (3, 0));
}

#[test]
fn thim_429_retry_after_is_honoured() {
    let tmp = tempfile::tempdir().unwrap();
    let emu = sim_emulator(vec![FaultRule::times(
        THIM_AMD_PATH,
        Fault::RateLimited {
            retry_after_secs: 1,
        },
        1,
    )]);
    let c = collect_from(&emu, tmp.path(), &[]);
    c.assert_used("thim");
    assert!(c.elapsed >= Duration::from_secs(1), "took {:?}", c.elapsed);
    assert_eq!((thim_requests(&emu), kds_requests(&emu)), (2, 0));
}

#[test]
fn every_thim_fault_falls_back_to_kds() {
    let mut failures = Vec::new();
    for (name, fault, why) in thim_faults() {
        let tmp = tempfile::tempdir().unwrap();
        let emu = sim_emulator(vec![FaultRule::always(THIM_AMD_PATH, fault)]);
        let c = collect_from(&emu, tmp.path(), &[]);
        if c.run.code != 0 {
            failures.push(format!("{name}: exit {}: {}", c.run.code, c.run.stderr));
            continue;
        }
        let origins = c.origins();
        let log = c.thim_log();
        if origins != ["kds"; 3] || !log.contains(why) {
            failures.push(format!(
                "{name}: origins {origins:?}, THIM log {log:?} (want {why:?})"
            ));
        }
        let (r, _) = verify_json(&c.bundle, &["--insecure-allow-simulated"]);
        if r.code != 0 {
            failures.push(format!("{name}: bundle does not verify: {}", r.stdout));
        }
        for r in emu.requests().iter().filter(|r| r.path == THIM_AMD_PATH) {
            if r.header("Metadata") != Some("true") || r.header("X-Forwarded-For").is_some() {
                failures.push(format!("{name}: THIM request headers {:?}", r.headers));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn thim_failure_without_kds_is_exit_5() {
    let mut failures = Vec::new();
    for (name, fault, why) in thim_faults() {
        let tmp = tempfile::tempdir().unwrap();
        let emu = sim_emulator(vec![FaultRule::always(THIM_AMD_PATH, fault)]);
        let c = collect_from(&emu, tmp.path(), &["--no-kds"]);
        let e = &c.run.stderr;
        if c.run.code != 5
            || !e.starts_with("error: endorsements could not be fetched\n")
            || !e.contains(THIM_AMD_PATH)
            || !e.contains(why)
        {
            failures.push(format!(
                "{name}: exit {} (want 5, {why:?}): {e}",
                c.run.code
            ));
        }
        if kds_requests(&emu) != 0 {
            failures.push(format!("{name}: KDS asked despite --no-kds"));
        }
        if c.bundle.exists() {
            failures.push(format!("{name}: a bundle was written"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn thim_refused_without_kds_is_exit_5() {
    let tmp = tempfile::tempdir().unwrap();
    let imds = refused_url();
    let c = collect(tmp.path(), &imds, &refused_url(), &["--no-kds"]);
    assert_eq!(c.run.code, 5, "{}", c.run.stderr);
    assert!(
        c.run
            .stderr
            .contains(&format!("thim {imds}{THIM_AMD_PATH}"))
            && c.run.stderr.contains("connection failed"),
        "{}",
        c.run.stderr
    );
    assert!(!c.bundle.exists());
}

#[test]
fn thim_and_kds_down_is_exit_5() {
    let tmp = tempfile::tempdir().unwrap();
    let emu = sim_emulator(vec![
        FaultRule::always(THIM_AMD_PATH, Fault::Status(500)),
        FaultRule::always("/vcek/", Fault::Status(500)),
    ]);
    let c = collect_from(&emu, tmp.path(), &[]);
    assert_eq!(c.run.code, 5, "{}", c.run.stderr);
    let e = &c.run.stderr;
    assert!(e.contains("thim ") && e.contains("kds (Milan)"), "{e}");
    assert!(!c.bundle.exists());

    // Both refused outright.
    let c = collect(tmp.path(), &refused_url(), &refused_url(), &[]);
    assert_eq!(c.run.code, 5, "{}", c.run.stderr);
    assert!(!c.bundle.exists());
    assert_eq!(common::dir_names(tmp.path()), Vec::<String>::new());
}

#[test]
fn kds_only_and_offline() {
    let tmp = tempfile::tempdir().unwrap();
    // --no-thim: THIM is never asked.
    let emu = sim_emulator(Vec::new());
    let c = collect_from(&emu, tmp.path(), &["--no-thim"]);
    c.assert_used("kds");
    assert_eq!(thim_requests(&emu), 0);

    // --offline: nothing is fetched, and the simulated host attaches nothing, so the bundle has
    // no endorsements and cannot be verified.
    let emu = sim_emulator(Vec::new());
    let c = collect_from(&emu, tmp.path(), &["--offline"]);
    assert_eq!(c.run.code, 0, "{}", c.run.stderr);
    assert!(emu.requests().is_empty());
    assert_eq!(c.origins(), Vec::<String>::new());
    let (r, v) = verify_json(&c.bundle, &["--insecure-allow-simulated"]);
    assert_eq!(r.code, 7);
    assert_eq!(common::error_codes(&v), ["missing-endorsement"]);
}
