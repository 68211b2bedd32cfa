// SPDX-License-Identifier: Apache-2.0
//! Policy over authentic (simulated) evidence through the built binary: the nonce binding
//! (`collect --nonce` / `--report-data` against `verify --nonce` / `--report-data` and against the
//! bundle's own nonce, including a bundle whose nonce was edited), the minimum TCB in both of its
//! notations, the expected measurement, a debug-enabled guest with and without `--allow-debug`,
//! and that several violations at once are all reported. Policy failures exit 8; meeting the
//! policy exits 0.

mod common;

use std::path::{Path, PathBuf};

use common::{
    error_codes, import, read_json, sim_chain_files, simulate, verify_json, write, write_json,
};
use sha2::{Digest, Sha384, Sha512};
use thimble_sim::signer::{ReportSigner, ReportTemplate};

const NONCE: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const SIM: &str = "--insecure-allow-simulated";

/// A simulated bundle collected with `--nonce NONCE`.
fn sim_bundle(dir: &Path) -> PathBuf {
    let (b, r) = simulate(dir, "sim.json", &["--nonce", NONCE]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    b
}

/// Verifies with the simulation root trusted; returns exit code and error codes.
fn check(bundle: &Path, extra: &[&str]) -> (i32, Vec<String>) {
    let mut args = vec![SIM];
    args.extend_from_slice(extra);
    let (r, v) = verify_json(bundle, &args);
    (r.code, error_codes(&v))
}

fn ok() -> (i32, Vec<String>) {
    (0, vec![])
}

fn fails(code: &str) -> (i32, Vec<String>) {
    (8, vec![code.to_string()])
}

#[test]
fn nonce_binding() {
    let tmp = tempfile::tempdir().unwrap();
    let b = sim_bundle(tmp.path());
    // The bundle's own nonce alone.
    assert_eq!(check(&b, &[]), ok());
    assert_eq!(check(&b, &["--nonce", NONCE]), ok());
    let other = format!("bb{}", &NONCE[2..]);
    assert_eq!(check(&b, &["--nonce", &other]), fails("nonce-mismatch"));
    // The nonce the verifier expects overrides the one the bundle claims.
    assert_eq!(check(&b, &["--nonce", "aa"]), fails("nonce-mismatch"));

    let rd = hex::encode(Sha512::digest(hex::decode(NONCE).unwrap()));
    assert_eq!(check(&b, &["--report-data", &rd]), ok());
    assert_eq!(
        check(&b, &["--report-data", &"00".repeat(64)]),
        fails("nonce-mismatch")
    );
}

#[test]
fn collected_with_raw_report_data() {
    let tmp = tempfile::tempdir().unwrap();
    let rd: String = (0u8..64).map(|i| format!("{i:02x}")).collect();
    let (b, r) = simulate(tmp.path(), "raw.json", &["--report-data", &rd]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = read_json(&b);
    assert_eq!(v["nonce"]["report_data_derivation"], "raw");
    assert_eq!(v["claims"]["report_data"], rd.as_str());
    // The bundle's own (raw) nonce is checked, then the verifier's.
    assert_eq!(check(&b, &[]), ok());
    assert_eq!(check(&b, &["--report-data", &rd]), ok());
    // SHA-512 of the value is not the value.
    assert_eq!(check(&b, &["--nonce", &rd]), fails("nonce-mismatch"));
}

#[test]
fn edited_nonce_is_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let b = sim_bundle(tmp.path());
    let mut v = read_json(&b);
    v["nonce"]["value"] = format!("bb{}", &NONCE[2..]).into();
    let edited = write_json(tmp.path(), "edited.json", &v);
    assert_eq!(check(&edited, &[]), fails("nonce-mismatch"));
    // Claiming the raw derivation instead does not help either.
    let mut v = read_json(&b);
    v["nonce"]["report_data_derivation"] = "raw".into();
    let edited = write_json(tmp.path(), "edited-raw.json", &v);
    assert_eq!(check(&edited, &[]), fails("nonce-mismatch"));
}

#[test]
fn minimum_tcb() {
    let tmp = tempfile::tempdir().unwrap();
    let b = sim_bundle(tmp.path());
    // The simulated chip: bl=3 tee=0 snp=8 ucode=115, tcbm 7308000000000003.
    for equal in ["7308000000000003", "bl=3,tee=0,snp=8,ucode=115"] {
        assert_eq!(check(&b, &["--min-tcb", equal]), ok(), "{equal}");
    }
    for below in ["0000000000000000", "bl=2,snp=7", "ucode=100"] {
        assert_eq!(check(&b, &["--min-tcb", below]), ok(), "{below}");
    }
    for above in [
        "7408000000000003",
        "7309000000000003",
        "7308000000000004",
        "bl=4,tee=0,snp=8,ucode=115",
        "tee=1",
        "snp=9",
        "ucode=116",
    ] {
        assert_eq!(
            check(&b, &["--min-tcb", above]),
            fails("policy-tcb"),
            "{above}"
        );
    }
}

#[test]
fn expected_measurement() {
    let tmp = tempfile::tempdir().unwrap();
    let b = sim_bundle(tmp.path());
    let m = hex::encode(Sha384::digest(b"thimble simulated guest"));
    assert_eq!(check(&b, &["--measurement", &m]), ok());
    let mut wrong = m.clone();
    wrong.replace_range(0..2, "00");
    assert_ne!(wrong, m);
    assert_eq!(
        check(&b, &["--measurement", &wrong]),
        fails("policy-measurement")
    );
}

/// A simulated report from `template`, imported with the simulated chain.
fn imported(dir: &Path, template: &ReportTemplate, report_data: &[u8; 64]) -> PathBuf {
    let report = write(
        dir,
        "report.bin",
        &ReportSigner::sim().sign(template, report_data),
    );
    let (vcek, chain) = sim_chain_files(dir);
    import(dir, "imported.json", &report, &[&vcek, &chain])
}

fn debug_template() -> ReportTemplate {
    let mut t = ReportTemplate::default();
    t.policy |= 1 << 19;
    t
}

#[test]
fn debug_guest() {
    let tmp = tempfile::tempdir().unwrap();
    let b = imported(tmp.path(), &debug_template(), &[0x22; 64]);
    assert_eq!(check(&b, &[]), fails("policy-debug"));
    assert_eq!(check(&b, &["--allow-debug"]), ok());
}

#[test]
fn every_violation_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let t = ReportTemplate {
        vmpl: 2,
        host_data: [0x44; 32],
        ..debug_template()
    };
    let b = imported(tmp.path(), &t, &[0x22; 64]);
    let (r, v) = verify_json(
        &b,
        &[
            SIM,
            "--report-data",
            &"00".repeat(64),
            "--min-tcb",
            "ucode=200",
            "--measurement",
            &"00".repeat(48),
            "--host-data",
            &"00".repeat(32),
            "--max-vmpl",
            "1",
        ],
    );
    assert_eq!(r.code, 8, "{}", r.stdout);
    let mut codes = error_codes(&v);
    assert_eq!(v["errors"].as_array().unwrap().len(), 6, "{}", r.stdout);
    codes.sort();
    assert_eq!(
        codes,
        [
            "nonce-mismatch",
            "policy-debug",
            "policy-host-data",
            "policy-measurement",
            "policy-tcb",
            "policy-vmpl",
        ]
    );
    for e in v["errors"].as_array().unwrap() {
        assert_eq!(e["class"], "policy", "{e}");
    }
    // Meeting all of it passes.
    let (r, _) = verify_json(
        &b,
        &[
            SIM,
            "--allow-debug",
            "--report-data",
            &"22".repeat(64),
            "--min-tcb",
            "7308000000000003",
            "--measurement",
            &hex::encode(t.measurement),
            "--host-data",
            &"44".repeat(32),
            "--max-vmpl",
            "2",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stdout);
}

#[test]
fn authenticity_failure_outranks_policy() {
    // A simulated debug guest verified without the simulation root: exit 7, not 8, and no
    // policy verdict is given for evidence that is not authentic.
    let tmp = tempfile::tempdir().unwrap();
    let b = imported(tmp.path(), &debug_template(), &[0x22; 64]);
    let (r, v) = verify_json(&b, &["--nonce", "00"]);
    assert_eq!(r.code, 7, "{}", r.stdout);
    assert_eq!(error_codes(&v), ["chain"]);
}
