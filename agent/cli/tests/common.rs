// SPDX-License-Identifier: AGPL-3.0-or-later
//! Helpers shared by the CLI integration tests: running the built binary, temporary files, and
//! the paths of the vectors.

#![allow(dead_code)]

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
