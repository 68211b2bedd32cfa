// SPDX-License-Identifier: Apache-2.0
//! Many `thimble collect` at once on one node, as when container entrypoints start together:
//! 32 processes share one cache directory and one emulator (THIM and KDS for SEV-SNP, the Intel
//! collateral service for TDX). Each bundle must verify with its own nonce (no cross-talk
//! between the processes' reports), and between them the processes must fetch each item once:
//! the cache's lock lets one process fetch while the others wait and read its entry. That is
//! also what keeps IMDS under its limit of five requests a second per VM, which the test checks
//! at the emulator, second by second.

#![expect(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{bin, p, read_json, verify_json};
use thimble_sim::emulator::{
    Emulator, EmulatorConfig, FaultRule, RecordedRequest, Reply, Routes, THIM_AMD_PATH,
};
use thimble_sim::tdx_signer::SimTdx;

/// How many collections run at once.
const PROCESSES: usize = 32;

/// IMDS's documented limit, requests per second per VM.
const IMDS_PER_SECOND: usize = 5;

/// A service that notes when each request came (the emulator records what, not when).
#[derive(Debug)]
struct Timed<R> {
    inner: R,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl<R: Routes> Routes for Timed<R> {
    fn route(&self, request: &RecordedRequest) -> Reply {
        self.arrivals.lock().unwrap().push(Instant::now());
        self.inner.route(request)
    }

    fn faults(&self) -> &[FaultRule] {
        self.inner.faults()
    }
}

/// Starts `routes`; returns the emulator and its arrival times.
fn start(routes: impl Routes) -> (Emulator, Arc<Mutex<Vec<Instant>>>) {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let emu = Emulator::start_routes(Timed {
        inner: routes,
        arrivals: Arc::clone(&arrivals),
    })
    .unwrap();
    (emu, arrivals)
}

/// The most requests that arrived within any one second.
fn busiest_second(arrivals: &[Instant]) -> usize {
    let mut t = arrivals.to_vec();
    t.sort();
    (0..t.len())
        .map(|i| {
            t[i..]
                .iter()
                .take_while(|&&x| x.duration_since(t[i]) < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// The nonce of process `n`: distinct for each, so that a report made for another shows.
fn nonce(n: usize) -> String {
    format!("c0ffee{n:04x}")
}

/// Starts `collect ARGS --nonce N -o dir/N.json` for every N at once, then waits for all;
/// returns the bundles' paths.
fn collect_all(dir: &Path, args: &[&str]) -> Vec<PathBuf> {
    let children: Vec<(PathBuf, Child)> = (0..PROCESSES)
        .map(|n| {
            let out = dir.join(format!("{n}.json"));
            let child = bin()
                .arg("collect")
                .args(args)
                .args(["--nonce", &nonce(n), "-o", p(&out)])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (out, child)
        })
        .collect();
    children
        .into_iter()
        .enumerate()
        .map(|(n, (out, child))| {
            let done = child.wait_with_output().unwrap();
            assert!(
                done.status.success(),
                "collection {n}: {}",
                String::from_utf8_lossy(&done.stderr)
            );
            out
        })
        .collect()
}

/// Every bundle verifies with its own process's nonce, and no two carry the same report.
fn assert_each_verifies_with_its_nonce(bundles: &[PathBuf]) {
    let mut reports = Vec::new();
    for (n, b) in bundles.iter().enumerate() {
        let (r, outcome) = verify_json(b, &["--insecure-allow-simulated", "--nonce", &nonce(n)]);
        assert_eq!(r.code, 0, "bundle {n}: {outcome}");
        let bundle = read_json(b);
        assert_eq!(bundle["nonce"]["value"], nonce(n), "bundle {n}");
        reports.push(bundle["evidence"].to_string());
    }
    reports.sort();
    reports.dedup();
    assert_eq!(reports.len(), bundles.len(), "two bundles share a report");
}

/// The names left in the cache directory: entries only, no lock or temporary file.
fn cache_names(cache: &Path) -> Vec<String> {
    common::dir_names(cache)
}

#[test]
fn thirty_two_snp_collections_share_one_fetch_per_item() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (emu, arrivals) = start(EmulatorConfig::sim());
    let url = emu.base_url();
    let bundles = collect_all(
        tmp.path(),
        &[
            "--simulate",
            "snp",
            "--imds",
            &url,
            "--kds",
            &url,
            "--cache-dir",
            p(&cache),
            "--deadline",
            "30",
        ],
    );
    assert_each_verifies_with_its_nonce(&bundles);

    let requests = emu.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    let thim = paths.iter().filter(|&&p| p == THIM_AMD_PATH).count();
    assert_eq!(thim, 1, "one THIM request between them: {paths:?}");
    let crl = paths.iter().filter(|p| p.ends_with("/crl")).count();
    assert_eq!(crl, 1, "one CRL request between them: {paths:?}");
    assert_eq!(paths.len(), 2, "{paths:?}");
    let busiest = busiest_second(&arrivals.lock().unwrap());
    assert!(
        busiest <= IMDS_PER_SECOND,
        "{busiest} requests in one second"
    );

    // The VCEK came from THIM once and from the cache for everyone else.
    let from_cache = bundles
        .iter()
        .filter(|b| {
            read_json(b)["endorsement_log"]
                .to_string()
                .contains("cache: endorsements from thim")
        })
        .count();
    assert_eq!(from_cache, PROCESSES - 1);
    let names = cache_names(&cache);
    assert_eq!(names.len(), 2, "the chain's entry and the CRL's: {names:?}");
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
}

#[test]
fn thirty_two_tdx_collections_share_one_fetch_of_the_collateral() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (emu, arrivals) = start(SimTdx::load().intel_emulator_config(i64::try_from(now).unwrap()));
    let url = emu.base_url();
    let bundles = collect_all(
        tmp.path(),
        &[
            "--simulate",
            "tdx",
            "--intel-collateral-url",
            &url,
            "--cache-dir",
            p(&cache),
            "--deadline",
            "30",
        ],
    );
    assert_each_verifies_with_its_nonce(&bundles);

    // The four items (TCB info, QE identity, PCK CRL, root CA CRL), once each.
    let requests = emu.requests();
    let mut paths: Vec<String> = requests
        .iter()
        .map(|r| format!("{}?{}", r.path, r.query.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(paths.len(), 4, "{paths:?}");
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), 4, "an item fetched twice: {paths:?}");
    let busiest = busiest_second(&arrivals.lock().unwrap());
    assert!(
        busiest <= IMDS_PER_SECOND,
        "{busiest} requests in one second"
    );
    let names = cache_names(&cache);
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn without_a_cache_nothing_is_shared() {
    // The documented limit of --no-cache: each collection fetches for itself.
    let tmp = tempfile::tempdir().unwrap();
    let (emu, _) = start(EmulatorConfig::sim());
    let url = emu.base_url();
    let bundles: Vec<PathBuf> = collect_all(
        tmp.path(),
        &[
            "--simulate",
            "snp",
            "--imds",
            &url,
            "--kds",
            &url,
            "--no-cache",
        ],
    )
    .into_iter()
    .take(4)
    .collect();
    assert_each_verifies_with_its_nonce(&bundles);
    let thim = emu
        .requests()
        .iter()
        .filter(|r| r.path == THIM_AMD_PATH)
        .count();
    assert_eq!(thim, PROCESSES);
}
