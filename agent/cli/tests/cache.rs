// SPDX-License-Identifier: Apache-2.0
//! The endorsement cache through the CLI: a first simulated collect fetches from the THIM
//! emulator and stores the endorsements and the ARK's CRL; a second one with every endpoint
//! unreachable is served from the cache, CRL included; a cache entry that does not verify the report (edited, or for another chip) is
//! ignored and the collect falls back to fetching; `--no-cache` neither reads nor writes; TDX
//! collateral is served from the cache when its service is unreachable.

#![expect(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

mod common;

use common::{json, p, run, simulate};
use thimble_sim::emulator::unused_loopback_port;

fn dead() -> String {
    format!("http://127.0.0.1:{}", unused_loopback_port().unwrap())
}

/// The cache's entries: (VCEK and chain, CRL), by file name.
fn entries(cache: &std::path::Path) -> (Vec<std::path::PathBuf>, Vec<std::path::PathBuf>) {
    std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .partition(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("amd-crl-")
        })
}

#[test]
fn second_collect_is_served_from_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (_, r) = simulate(tmp.path(), "a.json", &["--cache-dir", p(&cache)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (chains, crls) = entries(&cache);
    assert_eq!(chains.len(), 1, "one entry per chip and TCB");
    assert_eq!(crls.len(), 1, "one CRL entry per ARK");

    let dead = dead();
    let (b, r) = simulate(
        tmp.path(),
        "b.json",
        &[
            "--cache-dir",
            p(&cache),
            "--imds",
            &dead,
            "--kds",
            &dead,
            "--deadline",
            "1",
            "--timeout",
            "1",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let bundle = json(&std::fs::read_to_string(&b).unwrap());
    assert!(
        bundle["endorsement_log"][0]
            .as_str()
            .unwrap()
            .starts_with("cache: endorsements from thim"),
        "{bundle}"
    );
    assert!(
        bundle["endorsement_log"]
            .to_string()
            .contains("cache: AMD CRL from kds"),
        "{bundle}"
    );
    let crl = bundle["endorsements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "crl")
        .unwrap_or_else(|| panic!("no CRL in {bundle}"));
    assert_eq!(crl["origin"]["kind"], "kds");
    let v = run(&["verify", "--insecure-allow-simulated", p(&b)]);
    assert_eq!(v.code, 0, "{}", v.stdout);
}

#[test]
fn a_cache_entry_that_does_not_verify_is_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (_, r) = simulate(tmp.path(), "a.json", &["--cache-dir", p(&cache)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let entry = entries(&cache).0.remove(0);
    // Replace the cached VCEK with the other chip's: a poisoned cache must not be believed.
    let mut e = json(&std::fs::read_to_string(&entry).unwrap());
    let other = thimble_sim::signer::sim_chain().vcek_other_chip_der;
    e["endorsements"][0]["data"] = base64_std(other).into();
    std::fs::write(&entry, serde_json::to_vec(&e).unwrap()).unwrap();

    let dead = dead();
    let (_, r) = simulate(
        tmp.path(),
        "b.json",
        &[
            "--cache-dir",
            p(&cache),
            "--imds",
            &dead,
            "--kds",
            &dead,
            "--deadline",
            "1",
            "--timeout",
            "1",
        ],
    );
    assert_eq!(
        r.code, 5,
        "the poisoned entry is not used, and nothing else answers: {}",
        r.stderr
    );

    // With THIM reachable again the entry is replaced by a good one.
    let (c, r) = simulate(tmp.path(), "c.json", &["--cache-dir", p(&cache)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let bundle = json(&std::fs::read_to_string(&c).unwrap());
    let log = bundle["endorsement_log"].to_string();
    assert!(
        log.contains("cache: entry") && log.contains("ignored"),
        "{log}"
    );
    assert!(log.contains("cache: stored"), "{log}");
}

#[test]
fn no_cache_neither_reads_nor_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (_, r) = simulate(tmp.path(), "a.json", &["--no-cache"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!cache.exists());
    let r = run(&[
        "collect",
        "--simulate",
        "snp",
        "--no-cache",
        "--cache-dir",
        p(&cache),
        "-o",
        "-",
    ]);
    assert_eq!(r.code, 2, "--no-cache and --cache-dir conflict");
}

#[test]
fn tdx_collateral_is_served_from_the_cache_when_the_service_is_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let collect = |name: &str, extra: &[&str]| {
        let out = tmp.path().join(name);
        let mut args = vec![
            "collect",
            "--simulate",
            "tdx",
            "--nonce",
            "7d",
            "--cache-dir",
            p(&cache),
            "-o",
            p(&out),
        ];
        args.extend_from_slice(extra);
        let r = run(&args);
        (out, r)
    };
    let (_, r) = collect("a.json", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        !r.stderr.contains("--cache-dir"),
        "applies to TDX: {}",
        r.stderr
    );
    let dead = dead();
    let (b, r) = collect(
        "b.json",
        &[
            "--intel-collateral-url",
            &dead,
            "--deadline",
            "1",
            "--timeout",
            "1",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let bundle = json(&std::fs::read_to_string(&b).unwrap());
    assert!(
        bundle["endorsement_log"]
            .to_string()
            .contains("cache: TDX collateral from thim"),
        "{bundle}"
    );
    let v = run(&[
        "verify",
        "--insecure-allow-simulated",
        "--nonce",
        "7d",
        p(&b),
    ]);
    assert_eq!(v.code, 0, "{}", v.stdout);
}

fn base64_std(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}
