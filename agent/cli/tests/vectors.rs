// SPDX-License-Identifier: AGPL-3.0-or-later
//! Every SEV-SNP vector (`tests/vectors/snp`, real hardware evidence) through the CLI: `import`
//! the report with every other file of the case as `--add`, then `verify --at` the case's time,
//! and compare exit code and error code with what `case.toml` declares (also for `alt_args`).

#![expect(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

mod common;

use common::{json, p, run, vectors};

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
