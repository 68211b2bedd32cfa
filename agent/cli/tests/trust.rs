// SPDX-License-Identifier: Apache-2.0
//! Regression tests, through the built binary, for the findings of the independent review of
//! `verify` on hostile bundles: bounded input, revocation that cannot be stripped (Intel and
//! AMD), checks that no unsigned member can switch off, one nonce rule for every TEE, the vendor
//! mix-up that used to be "malformed", the policy file, and what `show` says a TPM quote covers.
//! Each test fails on the code the review ran against.

#![expect(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use base64::Engine;
use common::{
    bin, error_codes, p, read_json, run, simulate, vectors, verify_json, write, write_json,
};
use serde_json::Value;

const SIM: &str = "--insecure-allow-simulated";

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn sim_bundle(dir: &Path) -> PathBuf {
    let (b, r) = simulate(dir, "sim.json", &["--nonce", "c0ffee"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    b
}

/// Imports the TDX vector `v4-uptodate-dcapqvl` with all its collateral; returns the bundle and
/// the time to verify at.
fn tdx_bundle(dir: &Path) -> (PathBuf, &'static str) {
    let case = vectors().join("tdx/v4-uptodate-dcapqvl");
    let out = dir.join("tdx.json");
    let mut args = vec![
        "import".to_string(),
        "--tdx-quote".into(),
        case.join("quote.bin").display().to_string(),
    ];
    for f in [
        "tcb_info.json",
        "tcb_info_issuer_chain.pem",
        "qe_identity.json",
        "pck_crl.der",
        "pck_crl_issuer_chain.pem",
        "root_ca_crl.der",
    ] {
        args.push("--add".into());
        args.push(case.join(f).display().to_string());
    }
    args.extend(["-o".into(), out.display().to_string()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = run(&argv);
    assert_eq!(r.code, 0, "{}", r.stderr);
    (out, "2025-07-01T00:00:00Z")
}

#[test]
fn bundles_larger_than_the_limit_are_refused_unread() {
    let tmp = tempfile::tempdir().unwrap();
    // 9 MiB: over the default 8 MiB.
    let big = write(tmp.path(), "big.json", &vec![b' '; 9 << 20]);
    for cmd in ["verify", "show"] {
        let r = run(&[cmd, p(&big)]);
        assert_eq!(r.code, 6, "{cmd}: {}", r.stderr);
        assert!(r.stderr.contains("--max-bundle-size"), "{}", r.stderr);
    }
    // The limit is adjustable: with room for it, the file is read (and is not JSON).
    let r = run(&["verify", "--max-bundle-size", "16M", p(&big)]);
    assert_eq!(r.code, 6);
    assert!(!r.stderr.contains("--max-bundle-size"), "{}", r.stderr);
    // Standard input is bounded the same way.
    let mut child = bin()
        .args(["verify", "--max-bundle-size", "1K", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The writer may see a broken pipe once thimble stops reading; that is the point.
    let _ = child.stdin.take().unwrap().write_all(&vec![b' '; 64 << 10]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(6));
    // A real bundle over a small limit.
    let sim = sim_bundle(tmp.path());
    let r = run(&["verify", "--max-bundle-size", "100", SIM, p(&sim)]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    let r = run(&["verify", "--max-bundle-size", "0", p(&sim)]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

fn without(bundle: &Value, kinds: &[&str]) -> Value {
    let mut b = bundle.clone();
    b["endorsements"]
        .as_array_mut()
        .unwrap()
        .retain(|e| !kinds.contains(&e["kind"].as_str().unwrap()));
    b
}

#[test]
fn intel_crls_cannot_be_stripped() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, at) = tdx_bundle(tmp.path());
    let (r, _) = verify_json(&bundle, &["--at", at]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let b = read_json(&bundle);

    for (name, edited) in [
        ("no-pck-crl", without(&b, &["pck-crl"])),
        ("no-root-crl", without(&b, &["root-ca-crl"])),
        ("no-crls", without(&b, &["pck-crl", "root-ca-crl"])),
    ] {
        let path = write_json(tmp.path(), &format!("{name}.json"), &edited);
        let (r, v) = verify_json(&path, &["--at", at]);
        assert_eq!(r.code, 7, "{name}: {}", r.stdout);
        assert_eq!(error_codes(&v), ["missing-endorsement"], "{name}");
        // Accepting their absence is the verifier's explicit choice, and warned about.
        let (r, v) = verify_json(&path, &["--at", at, "--allow-missing-crl"]);
        assert_eq!(r.code, 0, "{name}: {}", r.stdout);
        assert!(
            v["warnings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|w| w.as_str().unwrap().contains("revocation")),
            "{v}"
        );
    }
    // Relabelling the CRLs as certificates is the same as removing them.
    let mut relabelled = b.clone();
    for e in relabelled["endorsements"].as_array_mut().unwrap() {
        if e["kind"] == "pck-crl" || e["kind"] == "root-ca-crl" {
            e["kind"] = "certificate".into();
        }
    }
    let path = write_json(tmp.path(), "relabelled.json", &relabelled);
    let (r, v) = verify_json(&path, &["--at", at]);
    assert_eq!(r.code, 7, "{}", r.stdout);
    assert_eq!(error_codes(&v), ["missing-endorsement"]);
    // The two settings contradict each other.
    let r = run(&[
        "verify",
        "--require-revocation",
        "--allow-missing-crl",
        p(&bundle),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn two_of_one_collateral_item_are_refused() {
    // With two TCB infos the verdict would depend on which one the verifier picked (an old,
    // still validly signed one can rate the platform differently): a bundle carries one of each.
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, at) = tdx_bundle(tmp.path());
    let b = read_json(&bundle);
    for kind in ["tcb-info", "qe-identity", "pck-crl", "root-ca-crl"] {
        let mut doubled = b.clone();
        let list = doubled["endorsements"].as_array_mut().unwrap();
        let item = list.iter().find(|e| e["kind"] == kind).unwrap().clone();
        list.push(item);
        let path = write_json(tmp.path(), &format!("two-{kind}.json"), &doubled);
        let (r, v) = verify_json(&path, &["--at", at]);
        assert_eq!(r.code, 6, "{kind}: {}", r.stdout);
        assert_eq!(error_codes(&v), ["malformed-bundle"], "{kind}");
        assert!(r.stdout.contains(kind), "{kind}: {}", r.stdout);
    }
}

/// Replaces the bundle's CRL endorsements with `crl` (or removes them).
fn with_crl(bundle: &Value, crl: Option<&[u8]>) -> Value {
    let mut b = without(bundle, &["crl"]);
    if let Some(der) = crl {
        b["endorsements"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "kind": "crl",
                "format": "der",
                "data": b64(der),
                "sha256": "",
                "origin": {"kind": "file"},
            }));
    }
    b
}

#[test]
fn amd_revocation_is_checked_and_can_be_required() {
    let tmp = tempfile::tempdir().unwrap();
    let chain = thimble_sim::signer::sim_chain();
    let bundle = sim_bundle(tmp.path());
    let b = read_json(&bundle);
    assert!(
        b["endorsements"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "crl"),
        "collect adds the ARK's CRL: {b}"
    );
    let at = "2026-06-01T00:00:00Z";
    let (r, v) = verify_json(&bundle, &[SIM, "--at", at, "--require-revocation"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        !v["warnings"].to_string().contains("CRL"),
        "a current CRL that does not list the ASK: {v}"
    );

    // A CRL listing the ASK: authentic evidence of a revoked chain.
    let revoked = write_json(
        tmp.path(),
        "revoked.json",
        &with_crl(&b, Some(chain.crl_ask_revoked_der)),
    );
    let (r, v) = verify_json(&revoked, &[SIM, "--at", at]);
    assert_eq!(r.code, 7, "{}", r.stdout);
    assert_eq!(error_codes(&v), ["crl-revoked"]);

    // Without a CRL: a warning by default, a missing endorsement when revocation is required.
    let stripped = write_json(tmp.path(), "stripped.json", &with_crl(&b, None));
    let (r, v) = verify_json(&stripped, &[SIM, "--at", at]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(v["warnings"].to_string().contains("no CRL"), "{v}");
    let (r, v) = verify_json(&stripped, &[SIM, "--at", at, "--require-revocation"]);
    assert_eq!(r.code, 7, "{}", r.stdout);
    assert_eq!(error_codes(&v), ["missing-endorsement"]);
    // Junk where the CRL was counts as no CRL, and is named.
    let junk = write_json(
        tmp.path(),
        "junk.json",
        &with_crl(&b, Some(b"not a CRL at all")),
    );
    let (r, v) = verify_json(&junk, &[SIM, "--at", at, "--require-revocation"]);
    assert_eq!(r.code, 7, "{}", r.stdout);
    assert!(v["warnings"].to_string().contains("ignored"), "{v}");
    // AMD's real Milan CRL against a real Milan chain: checked (long stale at this time).
    let oak = vectors().join("snp/milan-v3-oak");
    let out = tmp.path().join("oak.json");
    let r = run(&[
        "import",
        "--snp-report",
        p(&oak.join("report.bin")),
        "--add",
        p(&oak.join("vcek.der")),
        "--add",
        p(&oak.join("ask_ark.pem")),
        "--add",
        p(&vectors().join("crl/amd/milan.crl")),
        "-o",
        p(&out),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // AMD's CRL of 2022 is long past its nextUpdate in 2026: a warning by default, an error
    // when revocation data is required.
    let (r, v) = verify_json(&out, &["--at", at]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(v["warnings"].to_string().contains("nextUpdate"), "{v}");
    let (r, v) = verify_json(&out, &["--at", at, "--require-revocation"]);
    assert_eq!(r.code, 7, "{}", r.stdout);
    assert_eq!(error_codes(&v), ["collateral-expired"]);
}

#[test]
fn a_bundle_nonce_that_gives_no_report_data_is_a_mismatch_for_every_tee() {
    let tmp = tempfile::tempdir().unwrap();
    let (tdx, at) = tdx_bundle(tmp.path());
    let sim = sim_bundle(tmp.path());
    for (name, bundle, extra) in [("tdx", tdx, vec!["--at", at]), ("snp", sim, vec![SIM])] {
        let mut b = read_json(&bundle);
        b["nonce"] = serde_json::json!({"value": "abcd", "report_data_derivation": "raw"});
        let edited = write_json(tmp.path(), &format!("{name}-raw.json"), &b);
        let (r, v) = verify_json(&edited, &extra);
        assert_eq!(r.code, 8, "{name}: {}", r.stdout);
        assert_eq!(error_codes(&v), ["nonce-mismatch"], "{name}");
    }
}

/// An Azure SEV-SNP bundle of the vector `snp-hcl-milan-v3-v1`.
fn azure_bundle(dir: &Path) -> PathBuf {
    let case = vectors().join("azure/snp-hcl-milan-v3-v1");
    let out = dir.join("azure.json");
    let r = run(&[
        "import",
        "--hcl-report",
        p(&case.join("hcl_report.bin")),
        "--tpm-quote",
        p(&case.join("tpm_quote.json")),
        "--add",
        p(&case.join("vcek.der")),
        "--add",
        p(&case.join("ask_ark.pem")),
        "--nonce",
        "6368616c6c656e6765",
        "-o",
        p(&out),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    out
}

#[test]
fn intel_collateral_in_an_azure_snp_bundle_is_a_missing_endorsement() {
    let tmp = tempfile::tempdir().unwrap();
    let (tdx, _) = tdx_bundle(tmp.path());
    let azure = azure_bundle(tmp.path());
    let mut b = read_json(&azure);
    b["endorsements"] = read_json(&tdx)["endorsements"].clone();
    let edited = write_json(tmp.path(), "mixed.json", &b);
    let (r, v) = verify_json(&edited, &["--at", "2026-06-01T00:00:00Z"]);
    assert_eq!(r.code, 7, "{}", r.stdout);
    assert_eq!(error_codes(&v), ["missing-endorsement"]);
    assert!(
        v["warnings"].to_string().contains("Intel TDX collateral"),
        "{v}"
    );
}

#[test]
fn unsigned_members_switch_no_check_off() {
    let tmp = tempfile::tempdir().unwrap();
    let azure = azure_bundle(tmp.path());
    let at = ["--at", "2026-06-01T00:00:00Z"];
    let nonce = ["--nonce", "6368616c6c656e6765"];
    let args: Vec<&str> = at.iter().chain(&nonce).copied().collect();
    // A boot-time HCL report is not fresh for the verifier's nonce.
    let (r, v) = verify_json(&azure, &args);
    assert_eq!(r.code, 8, "{}", r.stdout);
    assert_eq!(error_codes(&v), ["stale-hcl-report"]);
    // Editing the unsigned members that used to decide whether this ran changes nothing.
    for (name, edit) in [
        ("source", serde_json::json!({"source": "import"})),
        ("source-vtpm", serde_json::json!({"source": "vtpm"})),
    ] {
        let mut b = read_json(&azure);
        b["collection"] = edit;
        b.as_object_mut().unwrap().remove("nonce");
        b["simulated"] = true.into();
        let edited = write_json(tmp.path(), &format!("{name}.json"), &b);
        let (r, v) = verify_json(&edited, &args);
        assert_eq!(r.code, 8, "{name}: {}", r.stdout);
        assert_eq!(error_codes(&v), ["stale-hcl-report"], "{name}");
        // And `simulated: true` does not make it simulated.
        assert_eq!(v["simulated"], false);
    }
}

#[test]
fn a_policy_file_holds_reference_values_and_flags_override_it() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = sim_bundle(tmp.path());
    let measurement = read_json(&bundle)["claims"]["measurement"]
        .as_str()
        .unwrap()
        .to_string();
    let wrong = "ab".repeat(48);
    let policy = |text: &str| write(tmp.path(), "policy.toml", text.as_bytes());
    // One file for every TEE: the TDX and Azure sections do not apply here and are not refused.
    let file = policy(&format!(
        "require_revocation = true\n\
         [snp]\nmeasurement = \"{wrong}\"\nmin_tcb = \"bl=3,tee=0,snp=8,ucode=115\"\n\
         [tdx]\nmrtd = [\"{wrong}\"]\n\
         [azure]\nallow_unknown_paravisor = false\n"
    ));
    let (r, v) = verify_json(&bundle, &[SIM, "--policy", p(&file)]);
    assert_eq!(r.code, 8, "{}", r.stdout);
    assert_eq!(error_codes(&v), ["policy-measurement"]);
    let (r, _) = verify_json(
        &bundle,
        &[SIM, "--policy", p(&file), "--measurement", &measurement],
    );
    assert_eq!(r.code, 0, "the flag overrides the file: {}", r.stdout);
    // A misspelt key is refused with its name, never ignored.
    let file = policy("[snp]\nmeasurment = \"00\"\n");
    let r = run(&["verify", SIM, "--policy", p(&file), p(&bundle)]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("measurment"), "{}", r.stderr);
    // A file past the 1 MiB limit is refused whole: read truncated, this one would parse into a
    // policy without its measurement (the key sits after a long comment).
    let long = format!(
        "#{}\n[snp]\nmeasurement = \"{wrong}\"\n",
        " ".repeat(1 << 20)
    );
    let file = policy(&long);
    let r = run(&["verify", SIM, "--policy", p(&file), p(&bundle)]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("larger than the 1048576 bytes"),
        "{}",
        r.stderr
    );
    // A bad value names the file and the key.
    let file = policy("[snp]\nmin_version = \"one\"\n");
    let r = run(&["verify", SIM, "--policy", p(&file), p(&bundle)]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("snp.min_version"), "{}", r.stderr);
    // The examples in docs/policy.md parse.
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/policy.md"))
            .unwrap();
    let mut examples = 0;
    for block in doc.split("```toml").skip(1) {
        let text = block.split("```").next().unwrap();
        let file = policy(text);
        let r = run(&["verify", SIM, "--policy", p(&file), p(&bundle)]);
        assert_ne!(r.code, 2, "docs/policy.md example {examples}: {}", r.stderr);
        examples += 1;
    }
    assert!(examples >= 3, "one example per TEE");
}

#[test]
fn show_says_what_the_tpm_quote_covers() {
    let tmp = tempfile::tempdir().unwrap();
    let azure = azure_bundle(tmp.path());
    let r = run(&["show", p(&azure)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("covers PCRs 0-23 (sha256); 24 PCR value(s) given"),
        "{}",
        r.stdout
    );
}
