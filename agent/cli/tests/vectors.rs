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

fn check(args: &[&str], expect: &str, id: &str) {
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
