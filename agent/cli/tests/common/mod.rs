// SPDX-License-Identifier: Apache-2.0
//! Helpers shared by the CLI integration tests: running the built binary, temporary files, and
//! the paths of the vectors.

#![allow(dead_code)]
#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_thimble"));
    // The tests must never reach a real address, whatever the environment says.
    for v in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        c.env_remove(v);
    }
    c
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(args: &[&str]) -> Run {
    let out: Output = bin().args(args).output().expect("run thimble");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `thimble collect --simulate snp` with extra args into `dir/name`; returns the path.
pub fn simulate(dir: &Path, name: &str, extra: &[&str]) -> (PathBuf, Run) {
    let out = dir.join(name);
    let mut args = vec!["collect", "--simulate", "snp", "-o", p(&out)];
    args.extend_from_slice(extra);
    let r = run(&args);
    (out, r)
}

/// The directory of one SNP vector case.
pub fn snp_case(id: &str) -> PathBuf {
    vectors().join("snp").join(id)
}

/// Writes `bytes` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `thimble import --snp-report REPORT [--add FILE]... -o dir/name`; asserts success.
pub fn import(dir: &Path, name: &str, report: &Path, adds: &[&Path]) -> PathBuf {
    let out = dir.join(name);
    let mut args = vec!["import", "--snp-report", p(report), "-o", p(&out)];
    for a in adds {
        args.push("--add");
        args.push(p(a));
    }
    let r = run(&args);
    assert_eq!(r.code, 0, "import {args:?}: {}", r.stderr);
    out
}

/// `thimble verify --json BUNDLE EXTRA...`: the run and the parsed outcome.
pub fn verify_json(bundle: &Path, extra: &[&str]) -> (Run, serde_json::Value) {
    let mut args = vec!["verify", "--json", p(bundle)];
    args.extend_from_slice(extra);
    let r = run(&args);
    let v = json(&r.stdout);
    (r, v)
}

/// The `code` of every error of a `verify --json` outcome, in order.
pub fn error_codes(outcome: &serde_json::Value) -> Vec<String> {
    outcome["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors array: {outcome}"))
        .iter()
        .map(|e| e["code"].as_str().unwrap().to_string())
        .collect()
}

/// Reads a bundle as JSON.
pub fn read_json(path: &Path) -> serde_json::Value {
    json(&std::fs::read_to_string(path).unwrap())
}

/// Writes a bundle edited as JSON next to the original, as `name`.
pub fn write_json(dir: &Path, name: &str, v: &serde_json::Value) -> PathBuf {
    write(
        dir,
        name,
        serde_json::to_string_pretty(v).unwrap().as_bytes(),
    )
}

/// The simulated chain's VCEK (DER) and ASK+ARK (PEM) written into `dir`.
pub fn sim_chain_files(dir: &Path) -> (PathBuf, PathBuf) {
    let c = thimble_sim::signer::sim_chain();
    (
        write(dir, "sim_vcek.der", c.vcek_der),
        write(dir, "sim_ask_ark.pem", c.ask_ark_pem.as_bytes()),
    )
}

/// What the built-in `--simulate snp` emulator serves: THIM and KDS with the simulated chain and
/// its ARK's CRL.
pub fn sim_emulator_config() -> thimble_sim::emulator::EmulatorConfig {
    thimble_sim::emulator::EmulatorConfig::sim()
}

/// `http://127.0.0.1:PORT` with nothing listening.
pub fn refused_url() -> String {
    format!(
        "http://127.0.0.1:{}",
        thimble_sim::emulator::unused_loopback_port().unwrap()
    )
}

/// The names in `dir`, sorted.
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// One `collect --simulate snp` against endorsement services at given URLs (the fault tests'
/// subject), timed, with what those tests read from its bundle.
pub struct Collected {
    pub run: Run,
    pub bundle: PathBuf,
    pub elapsed: std::time::Duration,
}

impl Collected {
    pub fn json(&self) -> serde_json::Value {
        read_json(&self.bundle)
    }

    /// `origin.kind` of every certificate endorsement (the CRL comes from KDS whatever served
    /// the chain; [`Collected::crl_origin`] looks at it).
    pub fn origins(&self) -> Vec<String> {
        self.kinds(|kind| kind != "crl")
    }

    /// `origin.kind` of the CRL endorsements.
    pub fn crl_origin(&self) -> Vec<String> {
        self.kinds(|kind| kind == "crl")
    }

    fn kinds(&self, keep: impl Fn(&serde_json::Value) -> bool) -> Vec<String> {
        self.json()["endorsements"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| keep(&e["kind"]))
            .map(|e| e["origin"]["kind"].as_str().unwrap().to_string())
            .collect()
    }

    /// The bundle's endorsement log.
    pub fn log(&self) -> Vec<String> {
        self.json()["endorsement_log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect()
    }

    /// The log line about THIM.
    pub fn thim_log(&self) -> String {
        self.log()
            .into_iter()
            .find(|l| l.starts_with("thim"))
            .unwrap_or_else(|| panic!("no THIM line in {:?}", self.log()))
    }
}

/// `collect --simulate snp -o DIR/bundle.json --imds IMDS --kds KDS --timeout TIMEOUT
/// --deadline DEADLINE EXTRA...`, timed.
pub fn collect_snp(
    dir: &Path,
    imds: &str,
    kds: &str,
    (timeout, deadline): (&str, &str),
    extra: &[&str],
) -> Collected {
    let bundle = dir.join("bundle.json");
    let mut args = vec![
        "collect",
        "--simulate",
        "snp",
        "-o",
        p(&bundle),
        "--imds",
        imds,
        "--kds",
        kds,
        "--timeout",
        timeout,
        "--deadline",
        deadline,
    ];
    args.extend_from_slice(extra);
    let start = std::time::Instant::now();
    let run = run(&args);
    Collected {
        run,
        bundle,
        elapsed: start.elapsed(),
    }
}

/// An emulator serving the simulated chain and its CRL, with `faults`.
pub fn sim_emulator(
    faults: Vec<thimble_sim::emulator::FaultRule>,
) -> thimble_sim::emulator::Emulator {
    let mut c = sim_emulator_config();
    c.faults = faults;
    thimble_sim::emulator::Emulator::start(c).unwrap()
}
