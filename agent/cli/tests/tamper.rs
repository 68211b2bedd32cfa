// SPDX-License-Identifier: Apache-2.0
//! Authenticity failures through the built binary. One bit is flipped in every signed field of a
//! real report (`tests/vectors/snp/milan-v3-oak`), and in the signature itself, and each damaged
//! report is imported and verified: every case must fail with exit 7 and a signature or
//! VCEK-binding error, never pass. Fields whose damage makes the report unparseable
//! (`signature_algo`, an unsupported `version`, the zero-padding of `r`) are refused by `import`
//! and `verify` with exit 6 instead. Then the endorsement side: a VCEK of another chip or TCB, a
//! forged or expired VCEK, an expired verification time, another product's chain, a missing VCEK,
//! and simulated evidence presented without `--insecure-allow-simulated` (with and without its
//! `simulated` mark).

#![expect(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

mod common;

use std::path::{Path, PathBuf};

use base64::Engine;
use common::{
    error_codes, import, p, read_json, run, sim_chain_files, simulate, snp_case, verify_json,
    write, write_json,
};
use thimble_sim::signer::{ReportSigner, ReportTemplate, sim_chain};

const AT: &str = "2026-06-01T00:00:00Z";

/// The milan-v3-oak report, VCEK and ASK+ARK.
fn oak() -> (Vec<u8>, PathBuf, PathBuf) {
    let dir = snp_case("milan-v3-oak");
    (
        std::fs::read(dir.join("report.bin")).unwrap(),
        dir.join("vcek.der"),
        dir.join("ask_ark.pem"),
    )
}

fn flipped(report: &[u8], offset: usize, bit: u8) -> Vec<u8> {
    let mut r = report.to_vec();
    r[offset] ^= 1 << bit;
    r
}

/// Imports `report` with `adds` and verifies it at [`AT`]; returns exit code and error codes.
fn import_verify(dir: &Path, name: &str, report: &[u8], adds: &[&Path]) -> (i32, Vec<String>) {
    let rp = write(dir, &format!("{name}.bin"), report);
    let bundle = import(dir, &format!("{name}.json"), &rp, adds);
    let (r, v) = verify_json(&bundle, &["--at", AT]);
    (r.code, error_codes(&v))
}

#[test]
fn untampered_vector_verifies() {
    // The control for every case below: the same import and verify with the report intact.
    let tmp = tempfile::tempdir().unwrap();
    let (report, vcek, chain) = oak();
    let (code, errors) = import_verify(tmp.path(), "intact", &report, &[&vcek, &chain]);
    assert_eq!((code, errors), (0, vec![]));
}

#[test]
fn one_bit_in_each_signed_field_fails_authenticity() {
    let tmp = tempfile::tempdir().unwrap();
    let (report, vcek, chain) = oak();
    // (field, offset, bit, the error the verifier must give). CHIP_ID and REPORTED_TCB are the
    // VCEK binding, checked before the signature so that the error names the mismatch.
    // VERSION is not here: any change to it makes a report thimble cannot read (another version
    // means other reserved fields; see `unparseable_reports_are_malformed_input`).
    let cases: &[(&str, usize, u8, &str)] = &[
        ("guest_svn", 0x04, 0, "signature"),
        ("policy", 0x08, 0, "signature"),
        ("family_id", 0x10, 0, "signature"),
        ("image_id", 0x20, 0, "signature"),
        ("vmpl", 0x30, 0, "signature"),
        ("current_tcb", 0x38, 0, "signature"),
        ("platform_info", 0x40, 0, "signature"),
        // Bit 0 is AUTHOR_KEY_EN; the SIGNING_KEY bits (4:2) would change which key is meant.
        ("key_info.author_key_en", 0x48, 0, "signature"),
        ("report_data", 0x50, 0, "signature"),
        ("measurement", 0x90, 0, "signature"),
        ("host_data", 0xC0, 0, "signature"),
        ("id_key_digest", 0xE0, 0, "signature"),
        ("author_key_digest", 0x110, 0, "signature"),
        ("report_id", 0x140, 0, "signature"),
        ("report_id_ma", 0x160, 0, "signature"),
        ("reported_tcb", 0x180, 0, "vcek-mismatch"),
        ("chip_id", 0x1A0, 0, "vcek-mismatch"),
        ("committed_tcb", 0x1E0, 0, "signature"),
        ("current_version", 0x1E8, 0, "signature"),
        ("committed_version", 0x1EC, 0, "signature"),
        ("launch_tcb", 0x1F0, 0, "signature"),
        // The mitigation vectors, meaningful from version 5: in this version 3 report they are
        // not read, but they are signed.
        ("launch_mit_vector", 0x1F8, 0, "signature"),
        ("signature_r", 0x2A0, 0, "signature"),
        ("signature_s", 0x2E8, 0, "signature"),
    ];
    let mut failures = Vec::new();
    for &(field, offset, bit, want) in cases {
        let damaged = flipped(&report, offset, bit);
        let (code, errors) = import_verify(tmp.path(), field, &damaged, &[&vcek, &chain]);
        let ok = code == 7
            && errors.len() == 1
            && ["signature", "vcek-mismatch"].contains(&errors[0].as_str())
            && errors[0] == want;
        if !ok {
            failures.push(format!(
                "{field} (offset {offset:#x} bit {bit}): exit {code}, errors {errors:?}, want 7 [{want}]"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Asserts that `import` refuses `report` with exit 6 naming the file, and that a bundle carrying
/// it (spliced into a good bundle) fails `verify` with exit 6 `malformed-report`.
fn assert_unparseable(dir: &Path, name: &str, report: &[u8], good_bundle: &Path) {
    let rp = write(dir, &format!("{name}.bin"), report);
    let out = dir.join(format!("{name}.json"));
    let r = run(&["import", "--snp-report", p(&rp), "-o", p(&out)]);
    assert_eq!(r.code, 6, "{name}: {}", r.stderr);
    assert!(
        r.stderr.starts_with(&format!("error: {}: ", rp.display())),
        "{name}: the error names the file: {}",
        r.stderr
    );
    assert!(!out.exists(), "{name}: no bundle written");

    let mut b = read_json(good_bundle);
    b["evidence"]["snp_report"] = base64::engine::general_purpose::STANDARD
        .encode(report)
        .into();
    let spliced = write_json(dir, &format!("{name}-spliced.json"), &b);
    let (r, v) = verify_json(&spliced, &["--at", AT]);
    assert_eq!(r.code, 6, "{name}: {}", r.stdout);
    assert_eq!(error_codes(&v), ["malformed-report"], "{name}");
}

#[test]
fn unparseable_reports_are_malformed_input() {
    let tmp = tempfile::tempdir().unwrap();
    let (report, vcek, chain) = oak();
    let good = import(
        tmp.path(),
        "good.json",
        &snp_case("milan-v3-oak").join("report.bin"),
        &[&vcek, &chain],
    );

    // signature_algo 1 -> 0: no algorithm thimble knows.
    let algo = flipped(&report, 0x34, 0);
    assert_unparseable(tmp.path(), "signature_algo", &algo, &good);
    let rp = tmp.path().join("signature_algo.bin");
    let r = run(&["import", "--snp-report", p(&rp), "-o", "-"]);
    assert!(r.stderr.contains("signature_algo is 0"), "{}", r.stderr);

    // version 3 -> 7 (bit 2): beyond the versions thimble knows.
    let version = flipped(&report, 0x00, 2);
    assert_eq!(version[0], 7);
    assert_unparseable(tmp.path(), "version", &version, &good);
    let rp = tmp.path().join("version.bin");
    let r = run(&["import", "--snp-report", p(&rp), "-o", "-"]);
    assert!(
        r.stderr.contains("version 7 is not supported"),
        "{}",
        r.stderr
    );

    // Reserved fields must be zero; a signed report with data there is not the firmware's (the
    // review found each of these accepted). The last signed byte is reserved too.
    for (name, offset) in [
        ("reserved_4c", 0x4C),
        ("reserved_18b", 0x18B),
        ("reserved_1eb", 0x1EB),
        ("reserved_208", 0x208),
        ("last_signed_byte", 0x29F),
    ] {
        assert_unparseable(tmp.path(), name, &flipped(&report, offset, 0), &good);
    }
    // Version 3 -> 2 (bit 0): the CPUID bytes this report carries are reserved in version 2.
    let v2 = flipped(&report, 0x00, 0);
    assert_eq!(v2[0], 2);
    assert_unparseable(tmp.path(), "version_2_with_cpuid", &v2, &good);

    // The 24 bytes above the P-384 scalar in each 72-byte signature field must be zero.
    assert_unparseable(
        tmp.path(),
        "signature_r_high",
        &flipped(&report, 0x2A0 + 48, 0),
        &good,
    );
    assert_unparseable(
        tmp.path(),
        "signature_s_high",
        &flipped(&report, 0x2E8 + 48, 0),
        &good,
    );
    // A report one byte short.
    assert_unparseable(tmp.path(), "truncated", &report[..report.len() - 1], &good);
}

/// A report signed by the simulated VCEK with the default template.
fn sim_report(dir: &Path) -> PathBuf {
    let r = ReportSigner::sim().sign(&ReportTemplate::default(), &[0x11; 64]);
    write(dir, "sim_report.bin", &r)
}

/// Imports the simulated report with `vcek_der` and the simulated ASK+ARK, then verifies it with
/// the simulation root trusted; returns exit code and error codes.
fn sim_with_vcek(dir: &Path, name: &str, vcek_der: &[u8]) -> (i32, Vec<String>, String) {
    let report = sim_report(dir);
    let vcek = write(dir, &format!("{name}.der"), vcek_der);
    let (_, chain) = sim_chain_files(dir);
    let bundle = import(dir, &format!("{name}.json"), &report, &[&vcek, &chain]);
    let (r, v) = verify_json(&bundle, &["--insecure-allow-simulated", "--at", AT]);
    (r.code, error_codes(&v), r.stdout)
}

#[test]
fn simulated_report_with_the_right_vcek_verifies() {
    // The control for the VCEK variants below.
    let tmp = tempfile::tempdir().unwrap();
    let (code, errors, out) = sim_with_vcek(tmp.path(), "right", sim_chain().vcek_der);
    assert_eq!((code, errors), (0, vec![]), "{out}");
}

#[test]
fn vcek_of_another_chip_is_a_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, errors, out) =
        sim_with_vcek(tmp.path(), "other_chip", sim_chain().vcek_other_chip_der);
    assert_eq!(
        (code, errors),
        (7, vec!["vcek-mismatch".to_string()]),
        "{out}"
    );
    assert!(out.contains("another chip"), "{out}");
}

#[test]
fn vcek_of_another_tcb_is_a_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, errors, out) =
        sim_with_vcek(tmp.path(), "other_tcb", sim_chain().vcek_other_tcb_der);
    assert_eq!(
        (code, errors),
        (7, vec!["vcek-mismatch".to_string()]),
        "{out}"
    );
    assert!(out.contains("REPORTED_TCB"), "{out}");
}

#[test]
fn forged_vcek_breaks_the_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, errors, out) = sim_with_vcek(tmp.path(), "forged", sim_chain().vcek_forged_der);
    assert_eq!((code, errors), (7, vec!["chain".to_string()]), "{out}");
}

#[test]
fn expired_vcek_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, errors, out) = sim_with_vcek(tmp.path(), "expired", sim_chain().vcek_expired_der);
    assert_eq!(
        (code, errors),
        (7, vec!["certificate-expired".to_string()]),
        "{out}"
    );
}

#[test]
fn real_vector_verified_in_2099_is_expired() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, vcek, chain) = oak();
    let bundle = import(
        tmp.path(),
        "oak.json",
        &snp_case("milan-v3-oak").join("report.bin"),
        &[&vcek, &chain],
    );
    let (r, v) = verify_json(&bundle, &["--at", "2099-01-01T00:00:00Z"]);
    assert_eq!(r.code, 7, "{}", r.stdout);
    assert_eq!(error_codes(&v), ["certificate-expired"]);
}

#[test]
fn chain_of_another_product_does_not_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let (report, vcek, _) = oak();
    let genoa = common::vectors().join("roots/amd/genoa_ask_ark.pem");
    let (code, errors) = import_verify(tmp.path(), "genoa_chain", &report, &[&vcek, &genoa]);
    assert_eq!((code, errors), (7, vec!["chain".to_string()]));
}

#[test]
fn bundle_without_vcek_is_missing_an_endorsement() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, vcek, chain) = oak();
    let bundle = import(
        tmp.path(),
        "oak.json",
        &snp_case("milan-v3-oak").join("report.bin"),
        &[&vcek, &chain],
    );
    let mut b = read_json(&bundle);
    let before = b["endorsements"].as_array().unwrap().len();
    b["endorsements"]
        .as_array_mut()
        .unwrap()
        .retain(|e| e["kind"] != "vcek");
    assert_eq!(b["endorsements"].as_array().unwrap().len(), before - 1);
    let edited = write_json(tmp.path(), "no_vcek.json", &b);
    let (r, v) = verify_json(&edited, &["--at", AT]);
    assert_eq!(r.code, 7, "{}", r.stdout);
    assert_eq!(error_codes(&v), ["missing-endorsement"]);
}

#[test]
fn simulated_bundle_needs_the_insecure_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, r) = simulate(tmp.path(), "sim.json", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    let (r, v) = verify_json(&bundle, &[]);
    assert_eq!(r.code, 7, "{}", r.stdout);
    assert_eq!(error_codes(&v), ["simulated"]);
    // `simulated` in the outcome says a test root was used, which it was not: the bundle's own
    // mark is unsigned and only explains the failure.
    assert_eq!(v["simulated"], false);

    // Removing the mark does not make test keys trusted: the chain does not reach a pinned root.
    let mut b = read_json(&bundle);
    b["simulated"] = false.into();
    let unmarked = write_json(tmp.path(), "unmarked.json", &b);
    let (r, v) = verify_json(&unmarked, &[]);
    assert_eq!(r.code, 7, "{}", r.stdout);
    assert_eq!(error_codes(&v), ["chain"]);
    assert_eq!(v["verdict"], "invalid");

    // With the flag, both verify (the mark is informational; the root decides).
    for b in [&bundle, &unmarked] {
        let (r, v) = verify_json(b, &["--insecure-allow-simulated"]);
        assert_eq!(r.code, 0, "{}", r.stdout);
        assert_eq!(v["simulated"], true);
    }

    // A simulated bundle that fails for another reason, checked with the flag, reports that
    // reason, not "pass --insecure-allow-simulated" (the review found the cause dropped).
    let mut b = read_json(&bundle);
    let vcek = b["endorsements"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["kind"] == "vcek")
        .unwrap();
    vcek["data"] = base64::engine::general_purpose::STANDARD
        .encode(thimble_sim::signer::sim_chain().vcek_forged_der)
        .into();
    let forged = write_json(tmp.path(), "forged.json", &b);
    let (r, v) = verify_json(&forged, &["--insecure-allow-simulated", "--at", AT]);
    assert_eq!(r.code, 7, "{}", r.stdout);
    assert_eq!(error_codes(&v), ["chain"], "{}", r.stdout);
    assert!(
        !r.stdout.contains("pass --insecure-allow-simulated"),
        "{}",
        r.stdout
    );
}
