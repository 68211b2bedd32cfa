// SPDX-License-Identifier: Apache-2.0
//! `thimble export` and `thimble import --from` through the built binary, on simulated bundles:
//! each evidence form round-trips (export, import, and the imported bundle verifies as the
//! original did), a directory form appears whole or not at all, and a form that does not fit the
//! bundle (another TEE, no runtime data for MAA) is refused with exit 2 and the reason.

mod common;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use common::{error_codes, json, p, read_json, run, verify_json};

const SIM: &str = "--insecure-allow-simulated";

fn collect(dir: &Path, tee: &str) -> PathBuf {
    let out = dir.join(format!("{tee}.json"));
    let r = run(&["collect", "--simulate", tee, "-o", p(&out)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    out
}

fn export(bundle: &Path, format: &str, out: &Path) -> common::Run {
    run(&["export", "--format", format, p(bundle), "-o", p(out)])
}

/// Imports `input` in `format` and checks the result verifies, with the same evidence bytes.
fn round_trip(dir: &Path, original: &Path, format: &str, input: &Path) {
    let back = dir.join(format!("back-{format}.json"));
    let r = run(&["import", "--from", format, p(input), "-o", p(&back)]);
    assert_eq!(r.code, 0, "import --from {format}: {}", r.stderr);
    let (a, b) = (read_json(original), read_json(&back));
    assert_eq!(a["tee"], b["tee"]);
    for member in ["snp_report", "tdx_quote"] {
        assert_eq!(
            a["evidence"][member], b["evidence"][member],
            "{format}: {member}"
        );
    }
    let (r, v) = verify_json(&back, &[SIM]);
    assert_eq!(r.code, 0, "{format}: {v}");
    assert_eq!(error_codes(&v), Vec::<String>::new());
}

#[test]
fn snpguest_directory_round_trips_and_is_written_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let b = collect(tmp.path(), "snp");
    let dir = tmp.path().join("snpguest");
    let r = export(&b, "snpguest", &dir);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(dir.join("attestation-report.bin").is_file());
    for cert in ["ark.pem", "ask.pem", "vcek.pem"] {
        assert!(dir.join("certs").join(cert).is_file(), "{cert}");
    }
    round_trip(tmp.path(), &b, "snpguest", &dir);

    // An existing directory is never written into.
    let r = export(&b, "snpguest", &dir);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("exists"), "{}", r.stderr);
    // Nothing else was left beside it.
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn go_sev_guest_tsm_report_and_cmw_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let b = collect(tmp.path(), "snp");
    for format in ["go-sev-guest", "tsm-report", "cmw"] {
        let out = tmp.path().join(format!("out.{format}"));
        let r = export(&b, format, &out);
        assert_eq!(r.code, 0, "{format}: {}", r.stderr);
        round_trip(tmp.path(), &b, format, &out);
    }
    let tsm = json(&std::fs::read_to_string(tmp.path().join("out.tsm-report")).unwrap());
    assert_eq!(tsm["provider"], "sev_guest");
    let cmw = json(&std::fs::read_to_string(tmp.path().join("out.cmw")).unwrap());
    assert_eq!(cmw[0], "application/vnd.veraison.tsm-report+json");
}

#[test]
fn maa_needs_the_runtime_data_outside_azure_and_binds_it_on_azure() {
    let tmp = tempfile::tempdir().unwrap();
    let b = collect(tmp.path(), "snp");
    let r = export(&b, "maa", &tmp.path().join("maa.json"));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("runtime data"), "{}", r.stderr);
    assert!(!tmp.path().join("maa.json").exists());

    let az = collect(tmp.path(), "azure-snp");
    let out = tmp.path().join("maa-az.json");
    let r = export(&az, "maa", &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let body = read_json(&out);
    assert_eq!(body["runtimeData"]["dataType"], "JSON");
    let report = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body["report"].as_str().unwrap())
        .unwrap();
    let inner = json(std::str::from_utf8(&report).unwrap());
    assert!(inner["SnpReport"].is_string() && inner["VcekCertChain"].is_string());
}

#[test]
fn trustee_evidence_of_a_td_carries_its_event_log_and_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let b = collect(tmp.path(), "tdx");
    let out = tmp.path().join("trustee.json");
    let r = export(&b, "trustee", &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ev = read_json(&out);
    let bundle = read_json(&b);
    assert_eq!(ev["quote"], bundle["evidence"]["tdx_quote"]);
    assert_eq!(ev["cc_eventlog"], bundle["event_logs"][0]["data"]);
    let back = tmp.path().join("back.json");
    let r = run(&["import", "--from", "trustee", p(&out), "-o", p(&back)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = read_json(&back);
    assert_eq!(v["evidence"]["tdx_quote"], bundle["evidence"]["tdx_quote"]);
    assert_eq!(v["event_logs"][0]["data"], bundle["event_logs"][0]["data"]);
}

#[test]
fn a_form_of_another_tee_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let b = collect(tmp.path(), "tdx");
    for format in ["snpguest", "go-sev-guest"] {
        let out = tmp.path().join(format);
        let r = export(&b, format, &out);
        assert_eq!(r.code, 2, "{format}: {}", r.stderr);
        assert!(r.stderr.contains("tdx"), "{}", r.stderr);
        assert!(!out.exists());
    }
    // maa is a request, not evidence: import does not read it.
    let r = run(&[
        "import",
        "--from",
        "maa",
        p(&b),
        "-o",
        p(&tmp.path().join("x")),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn an_oversized_input_is_refused_unread_with_its_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let big = tmp.path().join("big.bin");
    std::fs::write(&big, vec![0u8; (8 << 20) + 1]).unwrap();
    let out = tmp.path().join("x.json");
    let r = run(&["import", "--from", "go-sev-guest", p(&big), "-o", p(&out)]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(
        r.stderr.contains("larger than the 8388608 bytes"),
        "{}",
        r.stderr
    );
    assert!(!out.exists());
}
