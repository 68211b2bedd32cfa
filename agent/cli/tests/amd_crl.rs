// SPDX-License-Identifier: Apache-2.0
//! AMD's CRL through `collect`: simulated bundles (THIM, configfs-tsm `auxblob`, Azure) carry the
//! ARK's CRL from the emulated KDS; `--offline` and `--no-kds` fetch none and say why; a CRL that
//! revokes the chain's ASK is kept and warned about; a failed CRL fetch is a log line, not a
//! failed collect. `--imds`/`--kds` point at a loopback emulator, never elsewhere.

#![expect(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

mod common;

use std::path::Path;

use common::{json, p, read_json, run, sim_emulator_config, simulate, verify_json};
use serde_json::Value;
use thimble_sim::emulator::Emulator;
use thimble_sim::signer::sim_chain;

fn crls(bundle: &Value) -> Vec<Value> {
    bundle["endorsements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "crl")
        .cloned()
        .collect()
}

fn log(bundle: &Value) -> Vec<String> {
    bundle["endorsement_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

fn b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Asserts that `bundle` carries the simulated ARK's CRL from the emulated KDS.
fn assert_sim_crl(bundle: &Value) {
    let crls = crls(bundle);
    assert_eq!(crls.len(), 1, "{bundle}");
    let crl = &crls[0];
    assert_eq!(crl["format"], "der");
    assert_eq!(crl["data"], b64(sim_chain().crl_der));
    assert_eq!(crl["origin"]["kind"], "kds");
    let url = crl["origin"]["url"].as_str().unwrap();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/vcek/v1/Milan/crl"),
        "{url}"
    );
    assert_eq!(crl["next_update"], "2045-01-01T00:00:00Z");
    assert!(
        log(bundle)
            .iter()
            .any(|l| l.contains("does not list this chain's ASK")),
        "{:?}",
        log(bundle)
    );
}

#[test]
fn simulated_bundles_carry_the_arks_crl() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, extra) in [
        ("thim.json", &[][..]),
        ("auxblob.json", &["--source", "configfs-tsm"][..]),
    ] {
        let (out, r) = simulate(tmp.path(), name, extra);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        assert_sim_crl(&read_json(&out));
        let (v, outcome) = verify_json(&out, &["--insecure-allow-simulated"]);
        assert_eq!(v.code, 0, "{name}: {outcome}");
    }

    let out = tmp.path().join("azure.json");
    let r = run(&[
        "collect",
        "--simulate",
        "azure-snp",
        "--nonce",
        "6368616c6c656e6765",
        "-o",
        p(&out),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_sim_crl(&read_json(&out));
}

#[test]
fn offline_and_no_kds_fetch_no_crl() {
    let tmp = tempfile::tempdir().unwrap();
    // The simulated configfs-tsm host attaches the chain, so there is an ARK to ask about.
    let (out, r) = simulate(
        tmp.path(),
        "offline.json",
        &["--source", "configfs-tsm", "--offline"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let b = read_json(&out);
    assert!(crls(&b).is_empty(), "{b}");
    assert!(
        log(&b).contains(&"crl: offline: AMD's CRL was not fetched".to_string()),
        "{:?}",
        log(&b)
    );

    let (out, r) = simulate(tmp.path(), "no-kds.json", &["--no-kds"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let b = read_json(&out);
    assert!(crls(&b).is_empty(), "{b}");
    assert!(
        log(&b).contains(&"crl: --no-kds: AMD's CRL was not fetched".to_string()),
        "{:?}",
        log(&b)
    );

    let out = tmp.path().join("azure.json");
    let r = run(&[
        "collect",
        "--simulate",
        "azure-snp",
        "--no-kds",
        "-o",
        p(&out),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let b = read_json(&out);
    assert!(crls(&b).is_empty(), "{b}");
    assert!(
        log(&b).contains(&"crl: --no-kds: AMD's CRL was not fetched".to_string()),
        "{:?}",
        log(&b)
    );
}

/// `collect --simulate snp` with THIM and KDS on `emu`.
fn collect_from(emu: &Emulator, dir: &Path, name: &str) -> (Value, common::Run) {
    let base = emu.base_url();
    let (out, r) = simulate(
        dir,
        name,
        &[
            "--imds",
            &base,
            "--kds",
            &base,
            "--timeout",
            "1",
            "--deadline",
            "6",
        ],
    );
    let b = if out.exists() {
        read_json(&out)
    } else {
        json("null")
    };
    (b, r)
}

#[test]
fn a_crl_that_revokes_the_ask_is_kept_and_warned_about() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = sim_emulator_config();
    c.kds_vcek_crl = vec![("Milan".into(), sim_chain().crl_ask_revoked_der.to_vec())];
    let emu = Emulator::start(c).unwrap();
    let (b, r) = collect_from(&emu, tmp.path(), "revoked.json");
    // Collecting is not judging: the bundle is written, with the revocation for the verifier.
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("REVOKED") && r.stderr.contains("SEV-Milan"),
        "{}",
        r.stderr
    );
    let crls = crls(&b);
    assert_eq!(crls.len(), 1, "{b}");
    assert_eq!(crls[0]["data"], b64(sim_chain().crl_ask_revoked_der));
    assert!(log(&b).iter().any(|l| l.starts_with("crl: REVOKED")), "{b}");
}

#[test]
fn a_failed_crl_fetch_does_not_fail_the_collect() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = sim_emulator_config();
    c.kds_vcek_crl = Vec::new();
    let emu = Emulator::start(c).unwrap();
    let (b, r) = collect_from(&emu, tmp.path(), "no-crl.json");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(crls(&b).is_empty(), "{b}");
    assert!(
        log(&b)
            .iter()
            .any(|l| l.starts_with("crl: ") && l.contains("the bundle has no AMD CRL")),
        "{:?}",
        log(&b)
    );
    let out = tmp.path().join("no-crl.json");
    let (v, outcome) = verify_json(&out, &["--insecure-allow-simulated"]);
    assert_eq!(v.code, 0, "{outcome}");
}
