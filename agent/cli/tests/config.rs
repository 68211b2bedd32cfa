// SPDX-License-Identifier: Apache-2.0
//! The configuration file and `THIMBLE_*` variables as a user meets them: `thimble config` shows
//! each value with its source, the environment outweighs the file and a flag outweighs both, an
//! `attest` runs from the configuration alone, and a bad file or value is a usage error (exit 2)
//! that names it.

#![expect(clippy::unwrap_used, reason = "test assertions")]

mod common;

use std::process::Command;

use common::{json, p};
use thimble_collect::{CollectRequest, Environment, collect};
use thimble_evidence::attest::Verifier;
use thimble_sim::emulator::Emulator;
use thimble_sim::verifiers::{VerifierConfig, VerifierEmulator};
use thimble_sim::{SimEnvironment, SimMachine, insecure_trust_test_roots};

fn thimble(config: &std::path::Path) -> Command {
    let mut c = common::bin();
    c.env("THIMBLE_CONFIG", config);
    for v in [
        "THIMBLE_VERIFIER",
        "THIMBLE_VERIFIER_URL",
        "THIMBLE_DEADLINE",
        "THIMBLE_POLICY",
    ] {
        c.env_remove(v);
    }
    c
}

fn out(c: &mut Command) -> (i32, String, String) {
    let o = c.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn config_shows_values_and_their_sources() {
    let dir = tempfile::tempdir().unwrap();
    let file = common::write(
        dir.path(),
        "config.toml",
        b"[collect]\ndeadline = 12\ntimeout = 3\n[attest]\nverifier = \"kbs\"\n",
    );
    let (code, stdout, stderr) = out(thimble(&file)
        .args(["config", "--json"])
        .env("THIMBLE_DEADLINE", "20"));
    assert_eq!(code, 0, "{stderr}");
    let v = json(&stdout);
    assert_eq!(v["file"], p(&file));
    assert_eq!(v["file_exists"], true);
    let setting = |key: &str| {
        v["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .unwrap()
            .clone()
    };
    assert_eq!(setting("collect.deadline")["value"], "20");
    assert_eq!(setting("collect.deadline")["source"], "environment");
    assert_eq!(setting("collect.timeout")["source"], "file");
    assert_eq!(setting("attest.url")["source"], "default");
    assert_eq!(setting("attest.url")["env"], "THIMBLE_VERIFIER_URL");
    let (code, stdout, _) = out(thimble(&file).arg("config"));
    assert_eq!(code, 0);
    assert!(stdout.contains("attest.verifier = kbs"), "{stdout}");
}

#[test]
fn attest_runs_from_the_configuration_and_flags_win() {
    let env = SimEnvironment::new(SimMachine::SnpDevice);
    let mut r = CollectRequest::default();
    insecure_trust_test_roots(&mut r);
    let collateral = collect(&env, &r, env.now()).unwrap().bundle.endorsements;
    let (routes, _) =
        VerifierEmulator::new(VerifierConfig::sim(Verifier::Kbs, collateral, env.now()));
    let em = Emulator::start_routes(routes).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let file = common::write(
        dir.path(),
        "config.toml",
        format!(
            "[attest]\nverifier = \"kbs\"\nurl = \"{}\"\n",
            em.base_url()
        )
        .as_bytes(),
    );
    let (code, stdout, stderr) = out(thimble(&file).args(["attest", "--simulate", "snp"]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim().split('.').count(), 3, "{stdout}");
    // The environment outweighs the file, a flag outweighs the environment.
    let refused = common::refused_url();
    let (code, _, stderr) = out(thimble(&file)
        .args(["attest", "--simulate", "snp", "--deadline", "2"])
        .env("THIMBLE_VERIFIER_URL", &refused));
    assert_eq!(code, 9, "{stderr}");
    let (code, _, stderr) = out(thimble(&file)
        .args(["attest", "--simulate", "snp", "--url", &em.base_url()])
        .env("THIMBLE_VERIFIER_URL", &refused));
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn bad_configuration_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    for (text, needle) in [
        (&b"[collect]\ndeadlin = 3\n"[..], "collect.deadlin"),
        (&b"[collect]\ndeadline = \"soon\"\n"[..], "whole number"),
        (&b"[attest]\nverifier = \"nobody\"\n"[..], "attest.verifier"),
    ] {
        let file = common::write(dir.path(), "bad.toml", text);
        let (code, _, stderr) = out(thimble(&file).args(["attest", "--simulate", "snp"]));
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
    }
    let missing = dir.path().join("absent.toml");
    let (code, _, stderr) =
        out(thimble(&missing).args(["collect", "--simulate", "snp", "-o", "-"]));
    assert_eq!(code, 2, "{stderr}");
    // Commands without configurable settings do not read the file.
    let (code, _, _) = out(thimble(&missing).args(["detect", "--json"]));
    assert_ne!(code, 2);
}

#[test]
fn the_documented_table_is_the_codes() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md"),
    )
    .unwrap();
    let (code, stdout, _) = out(thimble(std::path::Path::new("/nonexistent-thimble-config"))
        .env_remove("THIMBLE_CONFIG")
        .args(["config", "--json"]));
    assert_eq!(code, 0);
    let v = json(&stdout);
    let settings = v["settings"].as_array().unwrap();
    let rows = doc.lines().filter(|l| l.starts_with("| `")).count();
    assert_eq!(rows, settings.len(), "docs/configuration.md rows");
    for s in settings {
        let row = format!(
            "| `{}` | `{}` | `{}` |",
            s["key"].as_str().unwrap(),
            s["env"].as_str().unwrap(),
            s["flag"].as_str().unwrap()
        );
        assert!(doc.contains(&row), "docs/configuration.md lacks {row}");
    }
}
