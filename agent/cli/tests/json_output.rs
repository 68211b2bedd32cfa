// SPDX-License-Identifier: Apache-2.0
//! Machine output and verbosity: `show`, `collect`, `import` and `export` with `--json` print
//! one parseable document with the members docs/verify.md and docs/collect.md name, `--json`
//! is refused where stdout already holds the bundle, `-q` leaves stderr to errors, and `-v`
//! adds the collection's log lines and its progress (stderr here is a pipe, not a terminal).

mod common;

use common::{json, p, run, simulate, snp_case};

#[test]
fn collect_json_summarises_on_stdout_and_is_refused_with_o_dash() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, r) = simulate(tmp.path(), "e.json", &["--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json(&r.stdout);
    assert_eq!(v["path"], p(&out));
    assert_eq!(v["tee"], "sev-snp");
    assert_eq!(v["simulated"], true);
    assert_eq!(v["source"], "sev-guest");
    assert_eq!(v["endorsement_origins"], serde_json::json!(["thim", "kds"]));
    assert!(v["warnings"].as_array().unwrap().is_empty());
    assert!(v["nonce"].is_string());
    // The JSON replaces the summary line; the bundle was written.
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    assert!(out.exists());

    let r = run(&["collect", "--simulate", "snp", "--json", "-o", "-"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("-o -"), "{}", r.stderr);
}

#[test]
fn collect_json_lists_the_warnings() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("t.json");
    let r = run(&[
        "collect",
        "--simulate",
        "tdx",
        "--no-thim",
        "--json",
        "-o",
        p(&out),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json(&r.stdout);
    assert_eq!(v["tee"], "tdx");
    let warnings = v["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .unwrap()
            .starts_with("--no-thim applies to SEV-SNP")),
        "{v}"
    );
    // Warnings still go to stderr too.
    assert!(r.stderr.contains("warning: --no-thim"), "{}", r.stderr);
}

#[test]
fn quiet_silences_the_summary_and_warnings_but_not_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, r) = simulate(tmp.path(), "q.json", &["-q"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    assert!(out.exists());
    // -q before the command works as well (a global flag), and warnings go too.
    let out = tmp.path().join("q2.json");
    let r = run(&[
        "-q",
        "collect",
        "--simulate",
        "tdx",
        "--no-thim",
        "-o",
        p(&out),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    // Errors are always printed.
    let r = run(&["-q", "show", p(&tmp.path().join("missing.json"))]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
    // -q and -v contradict each other.
    let r = run(&["-q", "-v", "show", p(&out)]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn verbose_adds_the_endorsement_log_and_progress() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, r) = simulate(tmp.path(), "v.json", &["-v"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("thimble: log: thim: VCEK and chain from ")),
        "{}",
        r.stderr
    );
    assert!(
        lines.iter().any(|l| l.starts_with("thimble: log: crl: ")),
        "{}",
        r.stderr
    );
    // Progress, shown with -v although stderr is not a terminal, comes before the summary.
    let fetch = lines
        .iter()
        .position(|l| l.starts_with("thimble: fetching the VCEK and its chain from THIM ("));
    let summary = lines.iter().position(|l| l.starts_with("collected "));
    assert!(
        matches!((fetch, summary), (Some(f), Some(s)) if f < s),
        "{}",
        r.stderr
    );

    // Without -v, on a pipe: the one summary line only.
    let (_, r) = simulate(tmp.path(), "n.json", &[]);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
}

#[test]
fn show_json_has_the_documented_sections() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("a.json");
    let r = run(&["collect", "--simulate", "azure-tdx", "-o", p(&out)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(&["show", "--json", "--insecure-allow-simulated", p(&out)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json(&r.stdout);
    for member in [
        "format",
        "version",
        "tee",
        "simulated",
        "created_at",
        "agent",
        "kernel_release",
        "collection",
        "nonce",
        "claims",
        "tpm_quote",
        "tdx_tcb",
        "endorsements",
        "auxblob",
        "endorsement_log",
        "event_logs",
    ] {
        assert!(v.get(member).is_some(), "no {member}: {v}");
    }
    assert_eq!(v["tee"], "azure-tdx");
    assert_eq!(v["claims"]["hcl_report_type"], "tdx");
    assert!(v["claims"]["hardware"]["mrtd"].is_string(), "{v}");
    assert_eq!(v["tdx_tcb"]["status"], "UpToDate");
    assert_eq!(v["tpm_quote"]["covers"], "PCRs 0-23 (sha256)");
    assert_eq!(v["endorsements"][0]["origin"], "thim");
    // The event log is a table of values, not text.
    let log = &v["event_logs"][0];
    assert_eq!(log["kind"], "tcg2");
    assert_eq!(log["decoded"], true);
    assert_eq!(log["bank"], "sha256");
    let events = log["events"].as_array().unwrap();
    assert_eq!(events.len() as u64, log["events_total"].as_u64().unwrap());
    let extended = events.iter().find(|e| e["extended"] == true).unwrap();
    assert_eq!(extended["digest"].as_str().unwrap().len(), 64);
    assert!(extended["register"].is_u64());
    assert!(
        extended["register_name"]
            .as_str()
            .unwrap()
            .starts_with("PCR ")
    );
    assert!(extended["type"].as_str().unwrap().starts_with("EV_"));
    assert!(log["claims"]["secure_boot_variables"].is_array());

    // Without --json, the text is unchanged (the goldens pin it); it is not JSON.
    let r = run(&["show", p(&out)]);
    assert!(
        r.stdout
            .starts_with("bundle:        thimble-evidence-bundle v1")
    );
}

#[test]
fn show_json_of_an_snp_bundle_carries_its_claims() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, r) = simulate(tmp.path(), "s.json", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(&["show", "--json", p(&out)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json(&r.stdout);
    assert_eq!(v["tee"], "sev-snp");
    assert!(v["claims"]["measurement"].is_string(), "{v}");
    assert!(v["claims"]["reported_tcb"].is_object(), "{v}");
    assert!(v["tdx_tcb"].is_null());
    assert!(v["tpm_quote"].is_null());
    assert_eq!(v["auxblob"], false);
    assert!(
        v["endorsements"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "vcek" && e["subject"] == "SEV-VCEK"),
        "{v}"
    );
}

#[test]
fn import_and_export_json_say_what_was_written() {
    let tmp = tempfile::tempdir().unwrap();
    let case = snp_case("milan-v2-aci-thim");
    let bundle = tmp.path().join("i.json");
    let r = run(&[
        "import",
        "--snp-report",
        p(&case.join("report.bin")),
        "--add",
        p(&case.join("thim.json")),
        "--json",
        "-o",
        p(&bundle),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json(&r.stdout);
    assert_eq!(v["path"], p(&bundle));
    assert_eq!(v["tee"], "sev-snp");
    assert!(v["from"].is_null());
    assert_eq!(v["evidence"], p(&case.join("report.bin")));
    let endorsements = v["endorsements"].as_array().unwrap();
    assert!(!endorsements.is_empty());
    assert!(
        endorsements
            .iter()
            .all(|e| e["path"] == p(&case.join("thim.json"))),
        "{v}"
    );
    assert!(v["event_logs"].as_array().unwrap().is_empty());
    let r = run(&[
        "import",
        "--snp-report",
        p(&case.join("report.bin")),
        "--json",
        "-o",
        "-",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stdout.is_empty());

    // A file form.
    let tsm = tmp.path().join("tsm.json");
    let r = run(&[
        "export",
        p(&bundle),
        "--format",
        "tsm-report",
        "--json",
        "-o",
        p(&tsm),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json(&r.stdout);
    assert_eq!(v["path"], p(&tsm));
    assert_eq!(v["format"], "tsm-report");
    assert_eq!(v["tee"], "sev-snp");
    assert_eq!(v["kind"], "file");
    assert_eq!(
        v["bytes"].as_u64().unwrap(),
        std::fs::metadata(&tsm).unwrap().len()
    );
    // A directory form.
    let dir = tmp.path().join("snpguest");
    let r = run(&[
        "export",
        p(&bundle),
        "--format",
        "snpguest",
        "--json",
        "-o",
        p(&dir),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json(&r.stdout);
    assert_eq!(v["kind"], "directory");
    let files = v["files"].as_array().unwrap();
    assert!(
        files
            .iter()
            .any(|f| f["name"] == "attestation-report.bin" && f["bytes"] == 1184),
        "{v}"
    );
    let r = run(&[
        "export",
        p(&bundle),
        "--format",
        "tsm-report",
        "--json",
        "-o",
        "-",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}
