// SPDX-License-Identifier: Apache-2.0
//! `collect --every` as the Kubernetes DaemonSet runs it, driven with a short interval against a
//! THIM/KDS emulator whose faults change as the rounds go by: THIM refusing (KDS takes over),
//! THIM and KDS both refusing (rounds fail), THIM slow, THIM answering garbage, KDS's CRL
//! missing (a bundle without it is worse than the one on disk). Checks that memory stays flat,
//! the bundle on disk is always whole and never replaced by a failed or worse round, each
//! failure is said once when it starts (and again only as a rare reminder), the recovery once,
//! and that SIGTERM, even in the middle of a round, ends thimble with exit 0 and the bundle
//! intact.
//!
//! Faults are `403` (not retried by thimble's HTTP client), so that each round makes a known
//! number of requests and the phases below fall on known rounds.

#![expect(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{bin, p, sim_emulator_config, verify_json};
use thimble_sim::emulator::{Emulator, Fault, FaultRule, THIM_AMD_PATH};
use thimble_sim::signer::{SIM_CHIP_ID, sim_chain};

/// Rounds of the long run: the number.
const ROUNDS: u64 = 1000;

/// The THIM phases, in THIM requests (one per round): healthy, refusing while KDS is down
/// too, refusing with KDS up, slow, garbage; then healthy to the end.
const HEALTHY: u32 = 100;
const BOTH_DOWN: u32 = 150;
const THIM_DOWN: u32 = 100;
const SLOW: u32 = 100;
const GARBAGE: u32 = 100;
/// Successful rounds (one CRL request each) before KDS stops serving the CRL, and for how
/// many rounds it does not.
const CRL_UNTIL: u32 = 450;
const CRL_DOWN: u32 = 30;

/// RSS growth allowed between round ~100 and the end.
const RSS_SLACK_KIB: u64 = 4 * 1024;

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Whether the bundle at `path` holds an endorsement of `kind`; panics unless it is whole JSON.
fn has_kind(path: &Path, kind: &str) -> bool {
    let text = std::fs::read_to_string(path).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("a reader saw a bundle that is not whole ({e})"));
    v["endorsements"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == kind)
}

fn spawn_every(args: &[&str]) -> Child {
    bin()
        .arg("collect")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn count(lines: &[&str], what: &str) -> usize {
    lines.iter().filter(|l| l.contains(what)).count()
}

#[test]
fn a_thousand_rounds_through_faults() {
    let chain = sim_chain();
    let thim = |fault, times| FaultRule::times(THIM_AMD_PATH, fault, times);
    let normal_thim = Fault::Body(chain.thim_json.as_bytes().to_vec());
    let vcek = format!("/vcek/v1/Milan/{}", hex::encode(SIM_CHIP_ID));
    let crl = "/vcek/v1/Milan/crl";
    let mut config = sim_emulator_config();
    config.faults = vec![
        thim(normal_thim, HEALTHY),
        thim(Fault::Status(403), BOTH_DOWN + THIM_DOWN),
        thim(Fault::Delay(Duration::from_millis(30)), SLOW),
        thim(Fault::MalformedBody(b"{\"vcekCert\": [".to_vec()), GARBAGE),
        // KDS's VCEK refused while THIM is: the rounds of BOTH_DOWN fail.
        FaultRule::times(vcek, Fault::Status(403), BOTH_DOWN),
        FaultRule::times(crl, Fault::Body(chain.crl_der.to_vec()), CRL_UNTIL),
        FaultRule::times(crl, Fault::Status(403), CRL_DOWN),
    ];
    let emu = Emulator::start(config).unwrap();
    let url = emu.base_url();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("evidence.json");
    let rounds = ROUNDS.to_string();
    let started = Instant::now();
    let mut child = spawn_every(&[
        "--simulate",
        "snp",
        "--imds",
        &url,
        "--kds",
        &url,
        "--no-cache",
        "--timeout",
        "5",
        "--deadline",
        "10",
        "--every",
        "20ms",
        "--rounds",
        &rounds,
        "-o",
        p(&out),
    ]);
    let pid = child.id();
    // Read as it comes, so that a chatty child never blocks on a full pipe.
    let stderr_reader = {
        let mut pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut pipe, &mut text).unwrap();
            text
        })
    };

    // A reader that keeps opening the bundle, as a consumer on the node would: it must always
    // find it whole and, once it has the AMD CRL, with it.
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (done, reads, out) = (Arc::clone(&done), Arc::clone(&reads), out.clone());
        std::thread::spawn(move || {
            let mut had_crl = false;
            while !done.load(Ordering::SeqCst) {
                if out.exists() {
                    let crl = has_kind(&out, "crl");
                    assert!(
                        crl || !had_crl,
                        "a bundle with the CRL was replaced by one without"
                    );
                    had_crl |= crl;
                    reads.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(3));
            }
        })
    };

    // RSS once about HEALTHY rounds have run, and the most it reaches after.
    let thim_requests = || {
        emu.requests()
            .iter()
            .filter(|r| r.path == THIM_AMD_PATH)
            .count()
    };
    let mut baseline = None;
    let mut highest = 0;
    while child.try_wait().unwrap().is_none() {
        if let Some(kib) = rss_kib(pid) {
            if baseline.is_none() && thim_requests() >= HEALTHY as usize {
                baseline = Some(kib);
            }
            if baseline.is_some() {
                highest = highest.max(kib);
            }
        }
        if started.elapsed() > Duration::from_secs(240) {
            let _ = child.kill();
            panic!("{ROUNDS} rounds took too long");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let elapsed = started.elapsed();
    let status = child.wait().unwrap();
    done.store(true, Ordering::SeqCst);
    reader.join().unwrap();
    let stderr = stderr_reader.join().unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(thim_requests(), ROUNDS as usize, "one THIM request a round");
    assert!(reads.load(Ordering::SeqCst) > 100, "the reader barely ran");

    let baseline = baseline.expect("no RSS sample after the first rounds");
    assert!(
        highest <= baseline + RSS_SLACK_KIB,
        "RSS grew from {baseline} KiB to {highest} KiB over {ROUNDS} rounds"
    );

    // Each change is said once: the first bundle, the failure (with one reminder after 100
    // more failed rounds), its recovery, the worse bundle kept, its recovery. Nothing else.
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(count(&lines, "bundle written to"), 3, "{stderr}");
    assert_eq!(count(&lines, "collecting again every 20 ms"), 1, "{stderr}");
    assert_eq!(count(&lines, "error: "), 1, "{stderr}");
    assert_eq!(count(&lines, "collection failed (exit 5)"), 1, "{stderr}");
    assert_eq!(count(&lines, "still failing (101 rounds)"), 1, "{stderr}");
    assert_eq!(
        count(
            &lines,
            &format!("recovered after {BOTH_DOWN} failed rounds")
        ),
        1,
        "{stderr}"
    );
    assert_eq!(
        count(
            &lines,
            "kept the previous bundle: the new bundle lacks the AMD CRL"
        ),
        1,
        "{stderr}"
    );
    assert_eq!(
        count(&lines, &format!("recovered after {CRL_DOWN} failed rounds")),
        1,
        "{stderr}"
    );
    let said = lines
        .iter()
        .filter(|l| {
            l.starts_with("thimble: ") || l.starts_with("warning: ") || l.starts_with("error: ")
        })
        .count();
    assert_eq!(said, 7, "{stderr}");

    // The last bundle verifies and has the CRL.
    assert!(has_kind(&out, "crl"));
    let (r, outcome) = verify_json(&out, &["--insecure-allow-simulated"]);
    assert_eq!(r.code, 0, "{outcome}");
    eprintln!("{ROUNDS} rounds in {elapsed:?}, RSS {baseline} KiB -> at most {highest} KiB");
}

/// Sends `signal` to `child`.
fn signal(child: &Child, signal: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, signal).unwrap();
}

/// Waits up to `limit` for `child` to exit; its exit code and stderr.
fn wait_for(mut child: Child, limit: Duration) -> (Option<i32>, String) {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("still running {limit:?} after the signal");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn sigterm_between_rounds_exits_zero_with_the_bundle_intact() {
    let emu = Emulator::start(sim_emulator_config()).unwrap();
    let url = emu.base_url();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("evidence.json");
    let child = spawn_every(&[
        "--simulate",
        "snp",
        "--imds",
        &url,
        "--kds",
        &url,
        "--every",
        "30s",
        "-o",
        p(&out),
    ]);
    let start = Instant::now();
    while !out.exists() {
        assert!(start.elapsed() < Duration::from_secs(30), "no first bundle");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Asleep for 30 s now: the signal must end the sleep, not wait it out.
    std::thread::sleep(Duration::from_millis(100));
    signal(&child, nix::sys::signal::Signal::SIGTERM);
    let (code, stderr) = wait_for(child, Duration::from_secs(2));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stderr.lines().last(),
        Some("thimble: stopping on SIGTERM"),
        "{stderr}"
    );
    let (r, outcome) = verify_json(&out, &["--insecure-allow-simulated"]);
    assert_eq!(r.code, 0, "{outcome}");
}

#[test]
fn sigterm_during_a_round_finishes_it_first() {
    // The third round's THIM answer comes after 1.5 s; the signal arrives while it waits.
    let mut config = sim_emulator_config();
    config.faults = vec![
        FaultRule::times(
            THIM_AMD_PATH,
            Fault::Body(sim_chain().thim_json.as_bytes().to_vec()),
            2,
        ),
        FaultRule::always(THIM_AMD_PATH, Fault::Delay(Duration::from_millis(1500))),
    ];
    let emu = Emulator::start(config).unwrap();
    let url = emu.base_url();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("evidence.json");
    let child = spawn_every(&[
        "--simulate",
        "snp",
        "--imds",
        &url,
        "--kds",
        &url,
        "--every",
        "10ms",
        "-o",
        p(&out),
    ]);
    let start = Instant::now();
    while emu
        .requests()
        .iter()
        .filter(|r| r.path == THIM_AMD_PATH)
        .count()
        < 3
    {
        assert!(start.elapsed() < Duration::from_secs(30), "no third round");
        std::thread::sleep(Duration::from_millis(5));
    }
    let before = std::fs::read(&out).unwrap();
    signal(&child, nix::sys::signal::Signal::SIGTERM);
    let (code, stderr) = wait_for(child, Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.ends_with("thimble: stopping on SIGTERM\n"),
        "{stderr}"
    );
    // The round in flight finished and wrote its own bundle, whole, before thimble stopped.
    let after = std::fs::read(&out).unwrap();
    assert_ne!(before, after, "the round in flight was abandoned");
    let (r, outcome) = verify_json(&out, &["--insecure-allow-simulated"]);
    assert_eq!(r.code, 0, "{outcome}");
    assert_eq!(
        emu.requests()
            .iter()
            .filter(|r| r.path == THIM_AMD_PATH)
            .count(),
        3,
        "no round after the signal"
    );
}
