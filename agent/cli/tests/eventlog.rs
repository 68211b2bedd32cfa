// SPDX-License-Identifier: Apache-2.0
//! Measured-boot event logs through the built binary: `collect --simulate tdx` carries the TD's
//! CCEL log and `--simulate azure-snp` the vTPM's log, and `verify` replays each to the verified
//! registers; a log edited in the bundle mismatches (exit 7), a garbled one is malformed (exit 6),
//! and the measured-boot policy (`--require-event-log`, `--expect-secure-boot`,
//! `--expect-kernel-cmdline`, `--expect-boot-digest`, the policy file's `[event_log]`) passes on
//! what the log measured and fails with its own code (exit 8) on anything else. `import` carries
//! logs given as files, and refuses one that does not parse.

#![expect(clippy::unwrap_used, reason = "test assertions")]

mod common;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use common::{error_codes, p, read_json, run, verify_json, write, write_json};
use thimble_evidence::eventlog::EventLog;

const SIM: &str = "--insecure-allow-simulated";

fn collect(dir: &Path, tee: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(format!("{tee}.json"));
    let mut args = vec!["collect", "--simulate", tee, "-o", p(&out)];
    args.extend_from_slice(extra);
    let r = run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    out
}

/// `verify --json --insecure-allow-simulated BUNDLE EXTRA`: exit code, error codes, outcome.
fn check(bundle: &Path, extra: &[&str]) -> (i32, Vec<String>, serde_json::Value) {
    let mut args = vec![SIM];
    args.extend_from_slice(extra);
    let (r, v) = verify_json(bundle, &args);
    (r.code, error_codes(&v), v)
}

fn b64(s: &serde_json::Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s.as_str().unwrap())
        .unwrap()
}

/// The bundle with its first log's data replaced by `data` (and its size set to match).
fn with_log_data(dir: &Path, bundle: &Path, data: &[u8]) -> PathBuf {
    let mut v = read_json(bundle);
    v["event_logs"][0]["data"] = base64::engine::general_purpose::STANDARD
        .encode(data)
        .into();
    v["event_logs"][0]["size"] = data.len().into();
    write_json(dir, "edited.json", &v)
}

#[test]
fn a_simulated_td_carries_its_ccel_log_and_it_replays() {
    let tmp = tempfile::tempdir().unwrap();
    let b = collect(tmp.path(), "tdx", &[]);
    let v = read_json(&b);
    assert_eq!(v["event_logs"][0]["kind"], "ccel");
    assert!(
        v["event_logs"][0]["source"]
            .as_str()
            .unwrap()
            .ends_with("/sys/firmware/acpi/tables/data/CCEL")
    );
    let (code, errors, out) = check(&b, &[]);
    assert_eq!((code, errors), (0, vec![]));
    let log = &out["event_logs"][0];
    assert_eq!(log["status"], "replayed", "{log}");
    assert_eq!(log["claims"]["secure_boot"], true, "{log}");
    // The human output says so too.
    let r = run(&["verify", SIM, p(&b)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("event log: ccel"), "{}", r.stdout);
    assert!(r.stdout.contains("replayed"), "{}", r.stdout);
    assert!(r.stdout.contains("secure boot: on"), "{}", r.stdout);
}

#[test]
fn the_measured_boot_policy_passes_on_what_was_measured_and_fails_on_anything_else() {
    let tmp = tempfile::tempdir().unwrap();
    let b = collect(tmp.path(), "tdx", &[]);
    let (_, _, out) = check(&b, &[]);
    let claims = &out["event_logs"][0]["claims"];
    let cmdline = claims["kernel_cmdlines"][0]["text"].as_str().unwrap();
    let (_, args) = cmdline.split_once(' ').unwrap();
    let app = claims["boot_applications"][0]["digests"]["sha384"]
        .as_str()
        .unwrap();
    let pass = [
        "--require-event-log",
        "--expect-secure-boot",
        "--expect-kernel-cmdline",
        args,
        "--expect-boot-digest",
        app,
    ];
    let (code, errors, _) = check(&b, &pass);
    assert_eq!((code, errors), (0, vec![]));

    let other = "ab".repeat(48);
    let (code, errors, _) = check(
        &b,
        &[
            "--expect-kernel-cmdline",
            "root=/dev/sda1 init=/bin/sh",
            "--expect-boot-digest",
            &other,
        ],
    );
    assert_eq!(code, 8);
    assert_eq!(errors, ["policy-kernel-cmdline", "policy-boot-digest"]);

    // The same from a policy file.
    let file = write(
        tmp.path(),
        "policy.toml",
        format!(
            "[event_log]\nsecure_boot = true\nkernel_cmdline = {args:?}\nboot_digests = [\"{app}\"]\n"
        )
        .as_bytes(),
    );
    let (code, errors, _) = check(&b, &["--policy", p(&file)]);
    assert_eq!((code, errors), (0, vec![]));
    let bad = write(
        tmp.path(),
        "bad.toml",
        b"[event_log]\nboot_digests = [\"abc\"]\n",
    );
    let r = run(&["verify", SIM, "--policy", p(&bad), p(&b)]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("event_log.boot_digests"), "{}", r.stderr);
}

#[test]
fn an_edited_log_mismatches_and_a_garbled_one_is_malformed() {
    let tmp = tempfile::tempdir().unwrap();
    let b = collect(tmp.path(), "tdx", &[]);
    let data = b64(&read_json(&b)["event_logs"][0]["data"]);
    let log = EventLog::parse(&data).unwrap();
    // The first digest byte of the last extended event.
    let last = log.events.iter().rev().find(|e| e.is_extended()).unwrap();
    let mut edited = data.clone();
    edited[last.offset + 4 + 4 + 4 + 2] ^= 1;
    let e = with_log_data(tmp.path(), &b, &edited);
    let (code, errors, out) = check(&e, &[]);
    assert_eq!((code, errors), (7, vec!["event-log-mismatch".to_string()]));
    assert_eq!(out["event_logs"][0]["status"], "mismatch");
    assert!(out["event_logs"][0].get("claims").is_none());

    let e = with_log_data(tmp.path(), &b, &data[..data.len() - 5]);
    let (code, errors, _) = check(&e, &[]);
    assert_eq!((code, errors), (6, vec!["malformed-event-log".to_string()]));

    // A size that does not match the data: the bundle itself is malformed.
    let mut v = read_json(&b);
    v["event_logs"][0]["size"] = (data.len() + 1).into();
    let e = write_json(tmp.path(), "size.json", &v);
    let r = run(&["verify", SIM, p(&e)]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(r.stderr.contains("event log"), "{}", r.stderr);
}

#[test]
fn without_a_log_a_policy_that_needs_one_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let b = collect(tmp.path(), "tdx", &["--no-event-logs"]);
    assert!(read_json(&b).get("event_logs").is_none());
    let (code, errors, _) = check(&b, &[]);
    assert_eq!((code, errors), (0, vec![]));
    let (code, errors, out) = check(&b, &["--expect-secure-boot"]);
    assert_eq!((code, errors), (8, vec!["policy-event-log".to_string()]));
    assert!(
        out["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("carries no event log")
    );
}

#[test]
fn an_azure_vtpm_log_replays_to_the_pcrs_the_quote_covers() {
    let tmp = tempfile::tempdir().unwrap();
    let b = collect(tmp.path(), "azure-snp", &[]);
    let v = read_json(&b);
    assert_eq!(v["event_logs"][0]["kind"], "tcg2", "{}", v["collection"]);
    let (code, errors, out) = check(&b, &["--expect-secure-boot"]);
    assert_eq!((code, errors), (0, vec![]));
    let log = &out["event_logs"][0];
    assert_eq!(log["status"], "replayed", "{log}");
    assert!(
        log["replay"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["register"] == "PCR 7" && c["status"] == "matches"),
        "{log}"
    );
}

#[test]
fn an_snp_guest_without_a_tpm_notes_that_it_has_no_log() {
    let tmp = tempfile::tempdir().unwrap();
    let b = collect(tmp.path(), "snp", &[]);
    let v = read_json(&b);
    assert!(v.get("event_logs").is_none());
    let notes = v["collection"]["log"].as_array().unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n.as_str().unwrap().contains("no TPM log")),
        "{notes:?}"
    );
}

#[test]
fn import_carries_a_log_and_refuses_one_that_does_not_parse() {
    let tmp = tempfile::tempdir().unwrap();
    let vectors = common::vectors();
    let report = common::snp_case("milan-v2-virtee").join("report.bin");
    let tpm_log = vectors.join("eventlog/tpm-gce-rhel8/event_log.bin");
    let out = tmp.path().join("imported.json");
    let r = run(&[
        "import",
        "--snp-report",
        p(&report),
        "--tpm-event-log",
        p(&tpm_log),
        "-o",
        p(&out),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = read_json(&out);
    assert_eq!(v["event_logs"][0]["kind"], "tcg2");
    assert_eq!(
        b64(&v["event_logs"][0]["data"]),
        std::fs::read(&tpm_log).unwrap()
    );

    let junk = write(tmp.path(), "junk.bin", b"not an event log at all");
    let r = run(&[
        "import",
        "--snp-report",
        p(&report),
        "--ccel-log",
        p(&junk),
        "-o",
        p(&tmp.path().join("no.json")),
    ]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(r.stderr.contains("junk.bin"), "{}", r.stderr);
    assert!(!tmp.path().join("no.json").exists());
}
