// SPDX-License-Identifier: Apache-2.0
//! The simulated TDX pipeline through the CLI (configfs-tsm with provider `tdx_guest`, and
//! `/dev/tdx_guest` with the Quote Generation Service, each with the collateral emulator), and
//! `thimble exec`: environment, exit status of the command, `--required`.

mod common;

use common::{json, p, run};

fn collect_tdx(
    dir: &std::path::Path,
    name: &str,
    extra: &[&str],
) -> (std::path::PathBuf, common::Run) {
    let out = dir.join(name);
    let mut args = vec!["collect", "--simulate", "tdx", "-o", p(&out)];
    args.extend_from_slice(extra);
    let r = run(&args);
    (out, r)
}

#[test]
fn simulated_tdx_through_configfs_and_through_the_qgs_verifies_with_the_nonce() {
    let tmp = tempfile::tempdir().unwrap();
    for source in [&[][..], &["--source", "tdx-guest"][..]] {
        let mut extra = vec!["--nonce", "c0ffee"];
        extra.extend_from_slice(source);
        let (b, r) = collect_tdx(tmp.path(), "tdx.json", &extra);
        assert_eq!(r.code, 0, "{source:?}: {}", r.stderr);
        let bundle = json(&std::fs::read_to_string(&b).unwrap());
        assert_eq!(bundle["tee"], "tdx");
        assert_eq!(bundle["simulated"], true);
        let expected_source = if source.is_empty() {
            "configfs-tsm"
        } else {
            "tdx-guest+qgs"
        };
        assert_eq!(bundle["collection"]["source"], expected_source);
        assert_eq!(
            bundle["evidence"]["td_report"].is_string(),
            !source.is_empty()
        );
        let kinds: Vec<&str> = bundle["endorsements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["tcb-info", "qe-identity", "pck-crl", "root-ca-crl"]);

        let v = run(&[
            "verify",
            "--json",
            "--insecure-allow-simulated",
            "--nonce",
            "c0ffee",
            p(&b),
        ]);
        assert_eq!(v.code, 0, "{}", v.stdout);
        let out = json(&v.stdout);
        assert_eq!(out["tcb_status"], "UpToDate");
        assert_eq!(out["tee"], "tdx");
        let v = run(&[
            "verify",
            "--json",
            "--insecure-allow-simulated",
            "--nonce",
            "c0ffef",
            p(&b),
        ]);
        assert_eq!(v.code, 8, "{}", v.stdout);
        assert_eq!(json(&v.stdout)["errors"][0]["code"], "nonce-mismatch");
        let v = run(&["verify", "--json", p(&b)]);
        assert_eq!(v.code, 7, "{}", v.stdout);
        assert_eq!(json(&v.stdout)["errors"][0]["code"], "simulated");
        // Stricter settings: an MRTD that is not the TD's is a policy failure.
        let v = run(&[
            "verify",
            "--json",
            "--insecure-allow-simulated",
            "--mrtd",
            &"00".repeat(48),
            p(&b),
        ]);
        assert_eq!(v.code, 8, "{}", v.stdout);
        // `show` trusts the test root only when told to: the bundle's own `simulated` mark is
        // unsigned (the review found `show` printing UpToDate on the mark's word).
        let r = run(&["show", p(&b)]);
        assert!(r.stdout.contains("tcb status:    unknown"), "{}", r.stdout);
        let r = run(&["show", "--insecure-allow-simulated", p(&b)]);
        assert!(r.stdout.contains("tcb status:    UpToDate"), "{}", r.stdout);
    }
}

#[test]
fn simulated_tdx_collateral_faults_give_exit_5_and_offline_skips_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dead = format!(
        "http://127.0.0.1:{}",
        thimble_sim::emulator::unused_loopback_port().unwrap()
    );
    let (out, r) = collect_tdx(
        tmp.path(),
        "x.json",
        &[
            "--intel-collateral-url",
            &dead,
            "--deadline",
            "2",
            "--timeout",
            "1",
        ],
    );
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.stderr.contains("127.0.0.1"), "{}", r.stderr);
    assert!(!out.exists());
    let (out, r) = collect_tdx(tmp.path(), "y.json", &["--offline"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = run(&["verify", "--json", "--insecure-allow-simulated", p(&out)]);
    assert_eq!(v.code, 7, "no collateral: {}", v.stdout);
    assert_eq!(json(&v.stdout)["errors"][0]["code"], "missing-endorsement");
}

#[test]
fn exec_passes_the_evidence_and_becomes_the_command() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run/evidence.json");
    let r = run(&[
        "exec",
        "--simulate",
        "snp",
        "--nonce",
        "abcd",
        "--out",
        p(&out),
        "--",
        "sh",
        "-c",
        "echo \"$THIMBLE_EVIDENCE $THIMBLE_NONCE\"; exit 42",
    ]);
    assert_eq!(
        r.code, 42,
        "the command's exit status is thimble's: {}",
        r.stderr
    );
    assert_eq!(r.stdout.trim(), format!("{} abcd", out.display()));
    assert!(out.exists());

    // No TEE: the command still runs, without the variables, after a warning.
    let none = tmp.path().join("none");
    let args = [
        "--tsm-root",
        p(&none),
        "--device",
        p(&none),
        "--tdx-device",
        p(&none),
    ];
    let e_json = tmp.path().join("e.json");
    let mut a = vec!["exec"];
    a.extend_from_slice(&args);
    a.extend_from_slice(&[
        "--out",
        p(&e_json),
        "--",
        "sh",
        "-c",
        "echo ran:${THIMBLE_EVIDENCE:-none}",
    ]);
    let r = run(&a);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "ran:none");
    assert!(
        r.stderr.contains("warning: collection failed (exit 3)"),
        "{}",
        r.stderr
    );

    // --required: the collection's exit code, and the command never runs.
    let marker = tmp.path().join("ran");
    let mut a = vec!["exec", "--required"];
    a.extend_from_slice(&args);
    let touch = format!("touch {}", marker.display());
    a.extend_from_slice(&["--out", p(&e_json), "--", "sh", "-c", &touch]);
    let r = run(&a);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(!marker.exists());

    let r = run(&[
        "exec",
        "--simulate",
        "snp",
        "--out",
        p(&tmp.path().join("f.json")),
        "--",
        "/no/such/program",
    ]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("cannot run /no/such/program"),
        "{}",
        r.stderr
    );
    let r = run(&["exec", "--simulate", "snp", "--out", "-", "--", "true"]);
    assert_eq!(r.code, 2);
}

#[test]
fn detect_json_lists_every_source_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let none = tmp.path().join("none");
    let r = run(&[
        "detect",
        "--json",
        "--tsm-root",
        p(&none),
        "--device",
        p(&none),
        "--tdx-device",
        p(&none),
    ]);
    assert_eq!(r.code, 3);
    let v = json(&r.stdout);
    assert_eq!(v["usable"], false);
    let sources: Vec<&str> = v["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    assert_eq!(
        sources,
        ["configfs-tsm", "sev-guest", "tdx-guest+qgs", "vtpm"]
    );
    for s in v["sources"].as_array().unwrap() {
        assert!(!s["detail"].as_str().unwrap().is_empty());
    }
}

#[test]
fn simulated_azure_cvms_verify_with_the_nonce_in_the_tpm_quote() {
    let tmp = tempfile::tempdir().unwrap();
    for (sim, tee) in [("azure-snp", "azure-sev-snp"), ("azure-tdx", "azure-tdx")] {
        let out = tmp.path().join(format!("{sim}.json"));
        let r = run(&[
            "collect",
            "--simulate",
            sim,
            "--nonce",
            "5eed",
            "-o",
            p(&out),
        ]);
        assert_eq!(r.code, 0, "{sim}: {}", r.stderr);
        let bundle = json(&std::fs::read_to_string(&out).unwrap());
        assert_eq!(bundle["tee"], tee);
        assert_eq!(bundle["collection"]["source"], "vtpm");
        assert_eq!(bundle["collection"]["hcl_user_data_echoed"], true);
        assert!(
            bundle["evidence"]["tpm_quote"]["pcrs"]
                .as_array()
                .unwrap()
                .len()
                == 24
        );
        let v = run(&[
            "verify",
            "--json",
            "--insecure-allow-simulated",
            "--nonce",
            "5eed",
            p(&out),
        ]);
        assert_eq!(v.code, 0, "{sim}: {}", v.stdout);
        assert_eq!(json(&v.stdout)["tee"], tee);
        let v = run(&[
            "verify",
            "--json",
            "--insecure-allow-simulated",
            "--nonce",
            "5eee",
            p(&out),
        ]);
        assert_eq!(v.code, 8, "{sim}: {}", v.stdout);
        assert_eq!(json(&v.stdout)["errors"][0]["code"], "nonce-mismatch");
        let v = run(&["verify", "--json", p(&out)]);
        assert_eq!(v.code, 7, "{sim}: {}", v.stdout);
        let r = run(&["show", p(&out)]);
        assert!(r.stdout.contains("user-data echoed"), "{}", r.stdout);
    }
}

#[test]
fn simulated_tdx_with_a_pccs_gets_everything_from_it_and_sources_must_fit_the_simulation() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, r) = collect_tdx(tmp.path(), "pcs.json", &["--intel-collateral", "pcs"]);
    assert_eq!(
        r.code, 0,
        "nothing may go to Intel's own hosts: {}",
        r.stderr
    );
    let v = run(&["verify", "--insecure-allow-simulated", p(&out)]);
    assert_eq!(v.code, 0, "{}", v.stdout);
    let r = run(&[
        "collect",
        "--simulate",
        "snp",
        "--source",
        "tdx-guest",
        "-o",
        p(&tmp.path().join("x.json")),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--source tdx-guest"), "{}", r.stderr);
    let (_, r) = collect_tdx(tmp.path(), "w.json", &["--no-kds"]);
    assert_eq!(r.code, 0);
    assert!(
        r.stderr.contains("--no-kds applies to SEV-SNP collection"),
        "{}",
        r.stderr
    );
}

#[test]
fn collect_every_keeps_replacing_the_bundle_and_exec_refuses_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("e.json");
    let mut child = common::bin()
        .args([
            "collect",
            "--simulate",
            "snp",
            "--source",
            "configfs-tsm",
            "--every",
            "1",
            "-o",
            p(&out),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A healthy `--every` logs its first round only (docs/collect.md); that the bundle keeps
    // being replaced shows in its bytes, each round's bundle having its own nonce.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let first = std::fs::read(&out).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1300));
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.matches("bundle written to").count(), 1, "{stderr}");
    assert_ne!(
        std::fs::read(&out).unwrap(),
        first,
        "the bundle was not replaced"
    );
    let v = run(&["verify", "--insecure-allow-simulated", p(&out)]);
    assert_eq!(v.code, 0, "{}", v.stdout);
    let r = run(&[
        "collect",
        "--simulate",
        "snp",
        "--every",
        "0",
        "-o",
        p(&out),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = run(&["exec", "--simulate", "snp", "--every", "5", "--", "true"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}
