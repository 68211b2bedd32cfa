// SPDX-License-Identifier: Apache-2.0
//! `thimble verify` given several bundles (a relying party checking a fleet's): one result per
//! bundle in the order given, whatever order the worker threads finish in; the exit code of the
//! first bundle that fails (0 when all pass); with `--json`, an array of `{bundle, exit_code,
//! outcome | error}`; and one bundle printed exactly as before. Built from the real Milan vectors
//! (`tests/vectors/snp`): a valid report and one whose VCEK is forged. Nothing here is timed.

#![expect(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

mod common;

use std::path::{Path, PathBuf};

use common::{import, json, p, run, snp_case, write};

const AT: &str = "2026-06-01T00:00:00Z";

/// A valid bundle (milan-v3-oak), an invalid one (a forged VCEK: exit 7) and a malformed one
/// (exit 6), in `dir`.
fn bundles(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let oak = snp_case("milan-v3-oak");
    let valid = import(
        dir,
        "valid.json",
        &oak.join("report.bin"),
        &[&oak.join("vcek.der"), &oak.join("ask_ark.pem")],
    );
    let forged_dir = snp_case("negative-forged-vcek-new");
    let mut adds: Vec<PathBuf> = std::fs::read_dir(&forged_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|f| {
            !matches!(
                f.file_name().unwrap().to_str().unwrap(),
                "case.toml" | "report.bin"
            )
        })
        .collect();
    adds.sort();
    let adds: Vec<&Path> = adds.iter().map(PathBuf::as_path).collect();
    let forged = import(dir, "forged.json", &forged_dir.join("report.bin"), &adds);
    let malformed = write(dir, "malformed.json", b"{\"format\": 7}");
    (valid, forged, malformed)
}

fn verify(paths: &[&Path], extra: &[&str]) -> common::Run {
    let mut args = vec!["verify", "--at", AT];
    args.extend_from_slice(extra);
    args.extend(paths.iter().map(|path| p(path)));
    run(&args)
}

#[test]
fn exit_code_is_the_first_failing_bundles() {
    let tmp = tempfile::tempdir().unwrap();
    let (valid, forged, malformed) = bundles(tmp.path());
    let missing = tmp.path().join("missing.json");
    for (paths, code) in [
        (vec![&valid, &valid], 0),
        (vec![&valid, &forged, &malformed], 7),
        (vec![&valid, &malformed, &forged], 6),
        (vec![&malformed, &valid], 6),
        (vec![&valid, &missing, &forged], 2),
    ] {
        let paths: Vec<&Path> = paths.iter().map(|x| x.as_path()).collect();
        let r = verify(&paths, &[]);
        assert_eq!(r.code, code, "{paths:?}\n{}{}", r.stdout, r.stderr);
        let r = verify(&paths, &["--json"]);
        assert_eq!(r.code, code, "--json {paths:?}\n{}{}", r.stdout, r.stderr);
    }
}

#[test]
fn json_is_an_array_of_results_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (valid, forged, malformed) = bundles(tmp.path());
    let missing = tmp.path().join("missing.json");
    let r = verify(&[&forged, &valid, &malformed, &missing], &["--json"]);
    assert_eq!(r.code, 7, "{}{}", r.stdout, r.stderr);
    let v = json(&r.stdout);
    let results = v.as_array().unwrap();
    assert_eq!(results.len(), 4, "{v}");
    let expect = [(&forged, 7), (&valid, 0), (&malformed, 6), (&missing, 2)];
    for (result, (path, code)) in results.iter().zip(expect) {
        assert_eq!(result["bundle"], p(path), "{result}");
        assert_eq!(result["exit_code"], code, "{result}");
    }
    assert_eq!(results[0]["outcome"]["verdict"], "invalid");
    assert_eq!(results[0]["outcome"]["errors"][0]["code"], "chain");
    assert_eq!(results[1]["outcome"]["verdict"], "valid");
    assert!(results[1].get("error").is_none(), "{}", results[1]);
    assert!(results[2].get("outcome").is_none(), "{}", results[2]);
    assert!(
        results[2]["error"]
            .as_str()
            .unwrap()
            .contains("malformed.json"),
        "{}",
        results[2]
    );
    assert!(
        results[3]["error"]
            .as_str()
            .unwrap()
            .contains("missing.json"),
        "{}",
        results[3]
    );

    // Each outcome is the one a single verify prints.
    let single = run(&["verify", "--json", "--at", AT, p(&valid)]);
    assert_eq!(single.code, 0);
    assert_eq!(results[1]["outcome"], json(&single.stdout));
}

#[test]
fn many_bundles_come_back_in_the_order_given() {
    let tmp = tempfile::tempdir().unwrap();
    let (valid, forged, _) = bundles(tmp.path());
    // More bundles than any machine's cores, alternating, so that workers finish out of order.
    let paths: Vec<&Path> = (0..40)
        .map(|i| if i % 3 == 1 { &forged } else { &valid }.as_path())
        .collect();
    let r = verify(&paths, &["--json"]);
    assert_eq!(r.code, 7, "{}", r.stderr);
    let v = json(&r.stdout);
    let results = v.as_array().unwrap();
    assert_eq!(results.len(), paths.len());
    for (i, result) in results.iter().enumerate() {
        let (path, verdict) = if i % 3 == 1 {
            (&forged, "invalid")
        } else {
            (&valid, "valid")
        };
        assert_eq!(result["bundle"], p(path), "{i}");
        assert_eq!(result["outcome"]["verdict"], verdict, "{i}");
    }

    let r = verify(&paths, &[]);
    assert_eq!(r.code, 7, "{}", r.stderr);
    let headers: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("==> ")).collect();
    assert_eq!(headers.len(), paths.len(), "{}", r.stdout);
    for (header, path) in headers.iter().zip(&paths) {
        assert_eq!(*header, format!("==> {} <==", p(path)));
    }
}

#[test]
fn human_form_has_one_block_per_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let (valid, _, malformed) = bundles(tmp.path());
    let r = verify(&[&valid, &malformed], &[]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    let single = run(&["verify", "--at", AT, p(&valid)]);
    let expected = format!(
        "==> {} <==\n{}\n==> {} <==\nerror: ",
        p(&valid),
        single.stdout,
        p(&malformed)
    );
    assert!(r.stdout.starts_with(&expected), "{}", r.stdout);
    assert!(r.stdout.contains("malformed.json"), "{}", r.stdout);
}

#[test]
fn one_bundle_is_printed_as_before() {
    let tmp = tempfile::tempdir().unwrap();
    let (valid, forged, malformed) = bundles(tmp.path());
    // An object, not an array.
    let r = run(&["verify", "--json", "--at", AT, p(&valid)]);
    assert_eq!(r.code, 0);
    assert_eq!(json(&r.stdout)["verdict"], "valid");
    let r = run(&["verify", "--at", AT, p(&forged)]);
    assert_eq!(r.code, 7);
    assert!(r.stdout.starts_with("verdict:   INVALID\n"), "{}", r.stdout);
    // A bundle that cannot be read is an error on stderr, as always.
    let r = run(&["verify", "--json", "--at", AT, p(&malformed)]);
    assert_eq!(r.code, 6);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
}

#[test]
fn standard_input_at_most_once() {
    let r = run(&["verify", "-", "-"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("only once"), "{}", r.stderr);
}
