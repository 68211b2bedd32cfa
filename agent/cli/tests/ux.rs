// SPDX-License-Identifier: Apache-2.0
//! What a new user sees: `collect` says what it wrote (on stderr, so that `-o -` keeps stdout for
//! the bundle), `collect` without a TEE names every source it looked for and how to try thimble
//! anyway, and `detect`'s table has a header row.

mod common;

use common::{p, run};

#[test]
fn collect_prints_one_summary_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("e.json");
    let r = run(&["collect", "--simulate", "snp", "-o", p(&out)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(
        lines,
        [format!(
            "collected {}: sev-snp (simulated) evidence from sev-guest, endorsements from thim, kds",
            out.display()
        )],
        "{}",
        r.stderr
    );
    // To standard output, the bundle alone is on stdout.
    let r = run(&["collect", "--simulate", "snp", "-o", "-"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with('{'));
    assert!(
        r.stderr
            .starts_with("collected to standard output: sev-snp"),
        "{}",
        r.stderr
    );
}

#[test]
fn no_tee_names_every_source_and_the_simulation() {
    let tmp = tempfile::tempdir().unwrap();
    let none = tmp.path().join("none");
    let r = run(&[
        "collect",
        "--tsm-root",
        p(&none),
        "--device",
        p(&none),
        "--offline",
        "-o",
        p(&tmp.path().join("x.json")),
    ]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    for needle in [
        "configfs-tsm",
        "/dev/tdx_guest",
        "vTPM",
        "--simulate",
        "thimble detect",
    ] {
        assert!(r.stderr.contains(needle), "{needle}: {}", r.stderr);
    }
}

#[test]
fn detect_has_a_header_row() {
    let tmp = tempfile::tempdir().unwrap();
    let none = tmp.path().join("none");
    let r = run(&["detect", "--tsm-root", p(&none), "--device", p(&none)]);
    let header: Vec<&str> = r
        .stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["SOURCE", "TEE", "PATH", "USABLE", "DETAIL"],
        "{}",
        r.stdout
    );
}
