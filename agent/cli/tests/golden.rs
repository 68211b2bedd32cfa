// SPDX-License-Identifier: Apache-2.0
//! Golden files for what a user reads: the command reference `docs/cli.md` (`thimble --help` and
//! `thimble <command> --help` for every command), compared exactly, and one run per documented
//! exit code (0 to 8, `tests/golden/*.txt`) with its exact standard output and error. Where a run
//! prints something that varies between runs (the temporary directory, a loopback port) it is normalised to `<TMP>` or
//! `<PORT>` before the comparison; times are pinned with `--at` and nonces are fixed. Every
//! failed `collect` here is also checked to leave nothing (no bundle, no temporary file) in its
//! output directory. No run reaches the network: collects use the built-in simulation or refused
//! loopback ports, or fail before fetching.
//!
//! After an intended change of the CLI's text, rewrite the files with
//! `UPDATE_GOLDEN=1 cargo test -p thimble --test golden` and review the diff.

#![expect(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

mod common;

use std::path::{Path, PathBuf};

use common::{Run, dir_names, p, refused_url};
use thimble_sim::emulator::Emulator;

const AT: &str = "2026-06-01T00:00:00Z";

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Runs the binary with an environment that cannot change clap's rendering.
fn run(args: &[&str]) -> Run {
    let out = common::bin()
        .args(args)
        .env_remove("COLUMNS")
        .env_remove("CLICOLOR_FORCE")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Compares `actual` with `tests/golden/{name}.txt`, or writes it when `UPDATE_GOLDEN` is set.
fn assert_golden(name: &str, actual: &str) {
    let path = golden_dir().join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the output, first at line {} \
             (UPDATE_GOLDEN=1 rewrites it if the change is intended)\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display(),
            first + 1
        );
    }
}

/// Replaces every `127.0.0.1:N` port with `<PORT>`.
fn normalise_ports(s: &str) -> String {
    const HOST: &str = "127.0.0.1:";
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(HOST) {
        out.push_str(&rest[..i + HOST.len()]);
        rest = &rest[i + HOST.len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            out.push_str("<PORT>");
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// A run as a golden text: the command, exit code, stdout and stderr, normalised.
fn transcript(args: &[&str], r: &Run, tmp: Option<&Path>) -> String {
    let norm = |s: &str| {
        let s = match tmp {
            Some(t) => s.replace(p(t), "<TMP>"),
            None => s.to_string(),
        };
        normalise_ports(&s)
    };
    format!(
        "$ thimble {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
        norm(&args.join(" ")),
        r.code,
        norm(&r.stdout),
        norm(&r.stderr)
    )
}

/// Runs `args`, checks the exit code and compares the transcript with the golden `name`.
fn check(name: &str, args: &[&str], code: i32, tmp: Option<&Path>) -> Run {
    let r = run(args);
    assert_eq!(r.code, code, "{name}: {args:?}\n{}{}", r.stdout, r.stderr);
    assert_golden(name, &transcript(args, &r, tmp));
    r
}

/// A simulated bundle with a fixed nonce, in `dir/sim.json`.
fn sim_bundle(dir: &Path) -> PathBuf {
    let (b, r) = common::simulate(dir, "sim.json", &["--nonce", "aa"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    b
}

/// An empty output directory for a collect that must fail.
fn out_dir(tmp: &Path) -> PathBuf {
    let d = tmp.join("out");
    std::fs::create_dir(&d).unwrap();
    d
}

fn assert_left_nothing(dir: &Path) {
    assert_eq!(
        dir_names(dir),
        Vec::<String>::new(),
        "a failed collect left files in {}",
        dir.display()
    );
}

/// The command reference, `docs/cli.md`, is the `--help` of every command, generated from the
/// command line's definition: this test compares it with what the binary prints, and
/// `UPDATE_GOLDEN=1` writes it.
#[test]
fn command_reference_is_the_help_texts() {
    let mut doc = String::from(
        "# Command reference\n\n\
         Generated from the command line's definition: this is what `thimble --help` and\n\
         `thimble COMMAND --help` print (`UPDATE_GOLDEN=1 cargo test -p thimble --test golden`\n\
         rewrites it, and the test fails when it is out of date). The README gives the tour;\n\
         [collect.md](collect.md), [verify.md](verify.md) and [policy.md](policy.md) explain the\n\
         flags in depth.\n",
    );
    for cmd in [
        "",
        "collect",
        "detect",
        "verify",
        "import",
        "show",
        "verify-chain",
        "exec",
        "export",
        "attest",
        "config",
    ] {
        let args: Vec<&str> = if cmd.is_empty() {
            vec!["--help"]
        } else {
            vec![cmd, "--help"]
        };
        let r = run(&args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr, "", "{args:?}");
        let title = if cmd.is_empty() {
            "`thimble`".to_string()
        } else {
            format!("`thimble {cmd}`")
        };
        doc.push_str(&format!("\n## {title}\n\n```text\n{}```\n", r.stdout));
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli.md");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &doc).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == doc,
        "docs/cli.md is not what the binary prints; UPDATE_GOLDEN=1 cargo test -p thimble --test \
         golden rewrites it\n--- expected\n{expected}\n--- actual\n{doc}"
    );
}

#[test]
fn exit_0_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let b = sim_bundle(tmp.path());
    let r = check(
        "exit-0-verify-valid",
        &["verify", "--insecure-allow-simulated", "--at", AT, p(&b)],
        0,
        Some(tmp.path()),
    );
    assert_eq!(r.stderr, "");
}

#[test]
fn exit_1_other() {
    let r = check(
        "exit-1-collect-unwritable",
        &[
            "collect",
            "--simulate",
            "snp",
            "-o",
            "/nonexistent-dir/x.json",
        ],
        1,
        None,
    );
    assert!(r.stdout.is_empty());

    // The output path is a directory: the temporary file is written, the rename fails, and the
    // temporary file is removed.
    let tmp = tempfile::tempdir().unwrap();
    let out = out_dir(tmp.path());
    let target = out.join("bundle.json");
    std::fs::create_dir(&target).unwrap();
    check(
        "exit-1-collect-output-is-a-directory",
        &["collect", "--simulate", "snp", "-o", p(&target)],
        1,
        Some(tmp.path()),
    );
    assert_eq!(dir_names(&out), ["bundle.json"]);
    assert_left_nothing(&target);
}

#[test]
fn exit_2_usage() {
    check(
        "exit-2-unknown-flag",
        &["verify", "--no-such-flag", "x.json"],
        2,
        None,
    );
    check(
        "exit-2-verify-at-not-rfc3339",
        &["verify", "--at", "yesterday", "x.json"],
        2,
        None,
    );
    check(
        "exit-2-verify-missing-file",
        &["verify", "/no/such/file"],
        2,
        None,
    );
}

#[test]
fn exit_3_no_tee() {
    let tmp = tempfile::tempdir().unwrap();
    let out = out_dir(tmp.path());
    let none = tmp.path().join("none");
    let target = out.join("x.json");
    // Source detection fails before any fetch: an emulator standing in for IMDS and KDS must see
    // no request.
    let emu = Emulator::start(common::sim_emulator_config()).unwrap();
    let (imds, kds) = (emu.base_url(), emu.base_url());
    check(
        "exit-3-no-tee-source",
        &[
            "collect",
            "--tsm-root",
            p(&none),
            "--device",
            p(&none),
            "-o",
            p(&target),
            "--imds",
            &imds,
            "--kds",
            &kds,
        ],
        3,
        Some(tmp.path()),
    );
    assert_left_nothing(&out);
    assert_eq!(emu.requests(), vec![]);
}

#[test]
fn exit_4_collection_failed() {
    // /dev/null opens read-write but implements no ioctl: SNP_GET_EXT_REPORT fails with ENOTTY.
    let tmp = tempfile::tempdir().unwrap();
    let out = out_dir(tmp.path());
    let target = out.join("x.json");
    let emu = Emulator::start(common::sim_emulator_config()).unwrap();
    let (imds, kds) = (emu.base_url(), emu.base_url());
    let r = check(
        "exit-4-sev-guest-ioctl-enotty",
        &[
            "collect",
            "--source",
            "sev-guest",
            "--device",
            "/dev/null",
            "-o",
            p(&target),
            "--imds",
            &imds,
            "--kds",
            &kds,
        ],
        4,
        Some(tmp.path()),
    );
    assert!(
        r.stderr.contains("is not the SEV-SNP guest device"),
        "{}",
        r.stderr
    );
    assert_left_nothing(&out);
    assert_eq!(emu.requests(), vec![]);
}

#[test]
fn exit_5_endorsements_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let out = out_dir(tmp.path());
    let target = out.join("x.json");
    let (imds, kds) = (refused_url(), refused_url());
    // A deadline well above the retries' backoff, so that the attempt count is always the maximum.
    check(
        "exit-5-thim-and-kds-refused",
        &[
            "collect",
            "--simulate",
            "snp",
            "--nonce",
            "aa",
            "-o",
            p(&target),
            "--imds",
            &imds,
            "--kds",
            &kds,
            "--timeout",
            "1",
            "--deadline",
            "20",
        ],
        5,
        Some(tmp.path()),
    );
    assert_left_nothing(&out);
}

#[test]
fn exit_6_malformed() {
    let tmp = tempfile::tempdir().unwrap();
    let not_json = common::write(tmp.path(), "not-json.json", b"hello\n");
    check(
        "exit-6-verify-not-json",
        &["verify", p(&not_json)],
        6,
        Some(tmp.path()),
    );
    // A copy of the report, so that no path outside <TMP> appears in the golden.
    let report = common::write(
        tmp.path(),
        "report.bin",
        &std::fs::read(common::snp_case("milan-v3-oak").join("report.bin")).unwrap(),
    );
    let out = out_dir(tmp.path());
    let target = out.join("x.json");
    let r = check(
        "exit-6-import-unrecognised-file",
        &[
            "import",
            "--snp-report",
            p(&report),
            "--add",
            p(&not_json),
            "-o",
            p(&target),
        ],
        6,
        Some(tmp.path()),
    );
    assert!(r.stderr.contains(p(&not_json)), "{}", r.stderr);
    assert_left_nothing(&out);
}

#[test]
fn exit_7_authenticity() {
    let tmp = tempfile::tempdir().unwrap();
    let b = sim_bundle(tmp.path());
    check(
        "exit-7-verify-simulated-without-flag",
        &["verify", "--at", AT, p(&b)],
        7,
        Some(tmp.path()),
    );
}

#[test]
fn exit_8_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let b = sim_bundle(tmp.path());
    check(
        "exit-8-verify-nonce-mismatch",
        &[
            "verify",
            "--insecure-allow-simulated",
            "--at",
            AT,
            "--nonce",
            "bb",
            p(&b),
        ],
        8,
        Some(tmp.path()),
    );
}

#[test]
fn port_normalisation() {
    assert_eq!(
        normalise_ports("http://127.0.0.1:4242/x and 127.0.0.1:1, 127.0.0.1:"),
        "http://127.0.0.1:<PORT>/x and 127.0.0.1:<PORT>, 127.0.0.1:"
    );
}
