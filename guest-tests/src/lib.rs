// SPDX-License-Identifier: AGPL-3.0-or-later
//! Support for the guest tests: checks that run `thimble` inside a real confidential VM (or a
//! QEMU guest) against the real devices and endpoints.
//!
//! They are opt-in: `THIMBLE_GUEST_TESTS=snp` selects the SEV-SNP checks. When a platform is
//! selected and its hardware is missing, the tests fail rather than skip, so a misconfigured
//! runner cannot pass by accident. Without the variable they are `#[ignore]`d and
//! `cargo test --workspace` needs no hardware.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The platforms a guest run can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Snp,
}

/// The platform selected by `THIMBLE_GUEST_TESTS`, or a panic naming the bad value.
pub fn selected() -> Option<Platform> {
    match std::env::var("THIMBLE_GUEST_TESTS").ok().as_deref() {
        None | Some("") => None,
        Some("snp") => Some(Platform::Snp),
        Some(other) => {
            panic!("THIMBLE_GUEST_TESTS={other:?} is not a platform this version tests (snp)")
        }
    }
}

/// The thimble binary: `THIMBLE_BIN`, else the workspace's release, then debug build.
pub fn thimble_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("THIMBLE_BIN") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    for profile in ["release", "debug"] {
        let p = target.join(profile).join("thimble");
        if p.exists() {
            return p;
        }
    }
    panic!("no thimble binary: build it (cargo build -p thimble) or set THIMBLE_BIN");
}

/// Runs thimble with `args`.
pub fn thimble(args: &[&str]) -> Output {
    Command::new(thimble_bin())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run thimble: {e}"))
}
