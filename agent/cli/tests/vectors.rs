// SPDX-License-Identifier: Apache-2.0
//! Every SEV-SNP vector (`tests/vectors/snp`, real hardware evidence) through the CLI: `import`
//! the report with every other file of the case as `--add`, then `verify --at` the case's time,
//! and compare exit code and error code with what `case.toml` declares (also for `alt_args`).

#![expect(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

mod common;

use common::{error_codes, json, p, run, vectors};

#[derive(serde::Deserialize)]
struct Case {
    id: String,
    expect: String,
    verify_at: String,
    #[serde(default)]
    alt_args: Vec<String>,
    #[serde(default)]
    alt_expect: Option<String>,
    #[serde(default)]
    tcb_status: Option<String>,
    #[serde(default)]
    alt_tcb_status: Option<String>,
}

fn expect_code(expect: &str) -> (i32, Option<String>) {
    match expect {
        "valid" | "valid:chain-only" => (0, None),
        e => {
            let why = e.strip_prefix("invalid:").unwrap().to_string();
            let code = if why.starts_with("policy") { 8 } else { 7 };
            (code, Some(why))
        }
    }
}

fn check(args: &[&str], expect: &str, id: &str) -> serde_json::Value {
    let r = run(args);
    let (code, why) = expect_code(expect);
    assert_eq!(r.code, code, "{id}: {args:?}\n{}{}", r.stdout, r.stderr);
    let v = json(&r.stdout);
    match why {
        None => assert_eq!(v["verdict"], "valid", "{id}"),
        Some(w) => {
            assert_eq!(v["verdict"], "invalid", "{id}");
            assert_eq!(v["errors"][0]["code"], w.as_str(), "{id}: {}", r.stdout);
        }
    }
    v
}

#[test]
fn snp_vectors_import_then_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let mut n = 0;
    for entry in std::fs::read_dir(vectors().join("snp")).unwrap() {
        let dir = entry.unwrap().path();
        let case: Case =
            toml::from_str(&std::fs::read_to_string(dir.join("case.toml")).unwrap()).unwrap();
        let mut adds: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|f| {
                !matches!(
                    f.file_name().unwrap().to_str().unwrap(),
                    "case.toml" | "report.bin"
                )
            })
            .map(|f| f.to_str().unwrap().to_string())
            .collect();
        adds.sort();
        n += 1;
        if case.expect == "valid:chain-only" {
            let mut args = vec!["verify-chain", "--json", "--at", &case.verify_at];
            args.extend(adds.iter().map(String::as_str));
            check(&args, &case.expect, &case.id);
            continue;
        }
        let bundle = tmp.path().join(format!("{}.json", case.id));
        let report = dir.join("report.bin");
        let mut args = vec!["import", "--snp-report", p(&report), "-o", p(&bundle)];
        for a in &adds {
            args.push("--add");
            args.push(a);
        }
        let r = run(&args);
        assert_eq!(r.code, 0, "{}: import failed: {}", case.id, r.stderr);
        check(
            &["verify", "--json", "--at", &case.verify_at, p(&bundle)],
            &case.expect,
            &case.id,
        );
        if let Some(alt) = &case.alt_expect {
            let mut args = vec!["verify", "--json", "--at", &case.verify_at, p(&bundle)];
            args.extend(case.alt_args.iter().map(String::as_str));
            check(&args, alt, &case.id);
        }
    }
    assert_eq!(n, 9, "every SNP case ran");
}

#[test]
fn tdx_vectors_import_then_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let mut n = 0;
    for entry in std::fs::read_dir(vectors().join("tdx")).unwrap() {
        let dir = entry.unwrap().path();
        let case: Case =
            toml::from_str(&std::fs::read_to_string(dir.join("case.toml")).unwrap()).unwrap();
        let mut adds: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|f| {
                !matches!(
                    f.file_name().unwrap().to_str().unwrap(),
                    "case.toml" | "quote.bin"
                )
            })
            .map(|f| f.to_str().unwrap().to_string())
            .collect();
        adds.sort();
        n += 1;
        let bundle = tmp.path().join(format!("{}.json", case.id));
        let quote = dir.join("quote.bin");
        let mut args = vec!["import", "--tdx-quote", p(&quote), "-o", p(&bundle)];
        for a in &adds {
            args.push("--add");
            args.push(a);
        }
        let r = run(&args);
        assert_eq!(r.code, 0, "{}: import failed: {}", case.id, r.stderr);
        let v = check(
            &["verify", "--json", "--at", &case.verify_at, p(&bundle)],
            &case.expect,
            &case.id,
        );
        if let Some(status) = &case.tcb_status {
            assert_eq!(v["tcb_status"], status.as_str(), "{}: {v}", case.id);
        }
        if let Some(alt) = &case.alt_expect {
            let mut args = vec!["verify", "--json", "--at", &case.verify_at, p(&bundle)];
            args.extend(case.alt_args.iter().map(String::as_str));
            let v = check(&args, alt, &case.id);
            if let Some(status) = &case.alt_tcb_status {
                assert_eq!(v["tcb_status"], status.as_str(), "{}: {v}", case.id);
            }
        }
        // `show` reads every TDX bundle.
        let r = run(&["show", p(&bundle)]);
        assert_eq!(r.code, 0, "{}: show: {}", case.id, r.stderr);
        assert!(
            r.stdout.contains("mrtd:") && r.stdout.contains("fmspc:"),
            "{}",
            r.stdout
        );
    }
    assert_eq!(n, 5, "every TDX case ran");
}

#[test]
fn tdx_import_rejects_amd_files_and_snp_import_rejects_intel_collateral() {
    let tmp = tempfile::tempdir().unwrap();
    let tdx = vectors().join("tdx/v4-uptodate-dcapqvl");
    let snp = vectors().join("snp/milan-v2-aci-thim");
    let out = tmp.path().join("x.json");
    let r = run(&[
        "import",
        "--tdx-quote",
        p(&tdx.join("quote.bin")),
        "--add",
        p(&snp.join("thim.json")),
        "-o",
        p(&out),
    ]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(
        r.stderr.contains("thim.json") && r.stderr.contains("does not endorse TDX"),
        "{}",
        r.stderr
    );
    let r = run(&[
        "import",
        "--snp-report",
        p(&snp.join("report.bin")),
        "--add",
        p(&tdx.join("tcb_info.json")),
        "-o",
        p(&out),
    ]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(r.stderr.contains("tcb_info.json"), "{}", r.stderr);
    assert!(!out.exists());
    let r = run(&["import", "-o", p(&out)]);
    assert_eq!(
        r.code, 2,
        "one of --snp-report and --tdx-quote is required: {}",
        r.stderr
    );
}

#[test]
fn azure_vectors_import_then_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let mut n = 0;
    for entry in std::fs::read_dir(vectors().join("azure")).unwrap() {
        let dir = entry.unwrap().path();
        let text = std::fs::read_to_string(dir.join("case.toml")).unwrap();
        let case: Case = toml::from_str(&text).unwrap();
        let nonce: Option<String> = toml::from_str::<toml::Value>(&text)
            .unwrap()
            .get("nonce_hex")
            .and_then(|v| v.as_str())
            .map(String::from);
        let mut args: Vec<String> = vec![
            "import".into(),
            "--hcl-report".into(),
            dir.join("hcl_report.bin").display().to_string(),
            "--tpm-quote".into(),
            dir.join("tpm_quote.json").display().to_string(),
        ];
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            match f.file_name().unwrap().to_str().unwrap() {
                "case.toml" | "hcl_report.bin" | "tpm_quote.json" => {}
                "quote.bin" => args.extend(["--tdx-quote".into(), f.display().to_string()]),
                _ => args.extend(["--add".into(), f.display().to_string()]),
            }
        }
        let bundle = tmp.path().join(format!("{}.json", case.id));
        args.extend(["-o".into(), bundle.display().to_string()]);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = run(&argv);
        assert_eq!(r.code, 0, "{}: import: {}", case.id, r.stderr);
        n += 1;
        // Default flags: the declared outcome (the pinned paravisors include every vector's).
        let verify = vec!["verify", "--json", "--at", &case.verify_at, p(&bundle)];
        let v = check(&verify, &case.expect, &case.id);
        assert!(v["tee"].as_str().unwrap().starts_with("azure-"), "{v}");
        if let Some(status) = &case.tcb_status {
            assert_eq!(v["tcb_status"], status.as_str(), "{}: {v}", case.id);
        }
        if let Some(nonce) = &nonce {
            // With the verifier's nonce, the HCL report must have been made for it too. These
            // reports were made at boot (zero user-data), so the nonce alone is not enough: the
            // verifier states the user-data the collecting tool left (or accepts a stale report).
            let with_nonce = [
                "verify",
                "--json",
                "--at",
                &case.verify_at,
                "--nonce",
                nonce,
            ];
            let mut stale = with_nonce.to_vec();
            stale.push(p(&bundle));
            let r = run(&stale);
            assert_eq!(r.code, 8, "{}: {}", case.id, r.stdout);
            assert_eq!(
                error_codes(&json(&r.stdout)),
                ["stale-hcl-report"],
                "{}",
                case.id
            );
            let zero = "00".repeat(64);
            for extra in [
                ["--hcl-user-data", zero.as_str()],
                ["--allow-stale-report", ""],
            ] {
                let mut args = with_nonce.to_vec();
                args.extend(extra.iter().filter(|a| !a.is_empty()));
                args.push(p(&bundle));
                check(&args, &case.expect, &case.id);
            }
            let r = run(&[
                "verify",
                "--json",
                "--at",
                &case.verify_at,
                "--nonce",
                "00ff",
                p(&bundle),
            ]);
            assert_eq!(r.code, 8, "{}: wrong nonce: {}", case.id, r.stdout);
            // A wrong nonce is said to be wrong, and nothing else.
            assert_eq!(
                error_codes(&json(&r.stdout)),
                ["nonce-mismatch"],
                "{}",
                case.id
            );
        }
        let r = run(&["show", p(&bundle)]);
        assert_eq!(r.code, 0, "{}: show: {}", case.id, r.stderr);
        assert!(
            r.stdout.contains("hcl report:") && r.stdout.contains("tpm quote:"),
            "{}",
            r.stdout
        );
    }
    assert_eq!(n, 5, "every Azure case ran");
}

#[test]
fn azure_report_without_tpm_quote_is_refused_unless_stale_reports_are_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = vectors().join("azure/snp-hcl-milan-v3-v1");
    let out = tmp.path().join("hcl.json");
    let r = run(&[
        "import",
        "--hcl-report",
        p(&dir.join("hcl_report.bin")),
        "--add",
        p(&dir.join("vcek.der")),
        "--add",
        p(&dir.join("ask_ark.pem")),
        "-o",
        p(&out),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = run(&["verify", "--json", "--at", "2026-06-01T00:00:00Z", p(&out)]);
    assert_eq!(v.code, 8, "{}", v.stdout);
    assert_eq!(json(&v.stdout)["errors"][0]["code"], "missing-tpm-quote");
    let v = run(&[
        "verify",
        "--json",
        "--at",
        "2026-06-01T00:00:00Z",
        "--allow-stale-report",
        p(&out),
    ]);
    assert_eq!(v.code, 0, "{}", v.stdout);
    // A TDX HCL report needs its TD quote.
    let tdx = vectors().join("azure/tdx-hcl-v4-outofdate");
    let r = run(&[
        "import",
        "--hcl-report",
        p(&tdx.join("hcl_report.bin")),
        "-o",
        p(&out),
    ]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(r.stderr.contains("--tdx-quote"), "{}", r.stderr);
}

#[test]
fn flags_of_another_tee_are_refused_and_vendor_mixups_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let tdx = vectors().join("tdx/v4-uptodate-dcapqvl");
    let snp = vectors().join("snp/milan-v3-oak");
    let bundle = tmp.path().join("tdx.json");
    let r = run(&[
        "import",
        "--tdx-quote",
        p(&tdx.join("quote.bin")),
        "--add",
        p(&tdx.join("tcb_info.json")),
        "--add",
        p(&tdx.join("qe_identity.json")),
        "--add",
        p(&tdx.join("tcb_info_issuer_chain.pem")),
        "-o",
        p(&bundle),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // An SEV-SNP check on a TDX bundle would otherwise be skipped in silence.
    let r = run(&[
        "verify",
        "--at",
        "2025-07-01T00:00:00Z",
        "--measurement",
        &"00".repeat(48),
        p(&bundle),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("--measurement") && r.stderr.contains("tdx"),
        "{}",
        r.stderr
    );
    // An AMD certificate offered as TDX collateral, and an Intel chain offered for SEV-SNP.
    let r = run(&[
        "import",
        "--tdx-quote",
        p(&tdx.join("quote.bin")),
        "--add",
        p(&snp.join("vcek.der")),
        "-o",
        p(&bundle),
    ]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(
        r.stderr.contains("vcek.der") && r.stderr.contains("AMD certificate"),
        "{}",
        r.stderr
    );
    let r = run(&[
        "import",
        "--snp-report",
        p(&snp.join("report.bin")),
        "--add",
        p(&tdx.join("pck_crl_issuer_chain.pem")),
        "-o",
        p(&bundle),
    ]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(r.stderr.contains("Intel certificate"), "{}", r.stderr);
}
