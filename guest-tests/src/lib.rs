// SPDX-License-Identifier: Apache-2.0
//! Support for the guest tests: checks that run `thimble` inside a real confidential VM (or a
//! QEMU guest) against the real devices and endpoints.
//!
//! They are opt-in: `THIMBLE_GUEST_TESTS=snp|tdx|azure` selects the SEV-SNP, TDX or Azure
//! (paravisor vTPM) checks. When a platform is
//! selected and its hardware is missing, the tests fail rather than skip, so a misconfigured
//! runner cannot pass by accident. Without the variable they are `#[ignore]`d and
//! `cargo test --workspace` needs no hardware.
//!
//! [`qemu`] boots a real kernel with the test initramfs for `tests/boot.rs`, which checks the
//! early-boot path from the host; those tests are `#[ignore]`d too and need QEMU, a Debian
//! kernel package and the static binary (see README.md).

pub mod qemu;

use std::path::PathBuf;
use std::process::{Command, Output};

/// The platforms a guest run can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Snp,
    Tdx,
    /// An Azure confidential VM behind the paravisor (SEV-SNP or TDX underneath).
    Azure,
}

/// The platform selected by `THIMBLE_GUEST_TESTS`, or a panic naming the bad value.
pub fn selected() -> Option<Platform> {
    match std::env::var("THIMBLE_GUEST_TESTS").ok().as_deref() {
        None | Some("") => None,
        Some("snp") => Some(Platform::Snp),
        Some("tdx") => Some(Platform::Tdx),
        Some("azure") => Some(Platform::Azure),
        Some(other) => {
            panic!("THIMBLE_GUEST_TESTS={other:?} is not a platform this version tests (snp)")
        }
    }
}

/// The thimble binary: `THIMBLE_BIN`, else the most recently built of the workspace's release
/// and debug builds (a stale release build must not shadow the debug build `cargo test` just
/// made).
pub fn thimble_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("THIMBLE_BIN") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    ["release", "debug"]
        .iter()
        .map(|profile| target.join(profile).join("thimble"))
        .filter_map(|p| {
            let modified = std::fs::metadata(&p).and_then(|m| m.modified()).ok()?;
            Some((modified, p))
        })
        .max_by_key(|(modified, _)| *modified)
        .map(|(_, p)| p)
        .unwrap_or_else(|| {
            panic!("no thimble binary: build it (cargo build -p thimble) or set THIMBLE_BIN")
        })
}

/// Runs thimble with `args`.
pub fn thimble(args: &[&str]) -> Output {
    Command::new(thimble_bin())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run thimble: {e}"))
}

/// The shared guest check: `detect` finds a usable source, `collect` with a nonce succeeds and
/// `verify` accepts the bundle with that nonce against the pinned roots; returns the verify JSON.
/// `expected_tee` is the bundle's `tee` (or its prefix, for `azure-`).
pub fn collect_and_verify(expected_tee: &str) -> String {
    let out = thimble(&["detect", "--json"]);
    assert!(
        out.status.success(),
        "detect: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let dir = std::env::temp_dir().join(format!("thimble-guest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let bundle = dir.join("evidence.json");
    let bundle = bundle.to_string_lossy().into_owned();
    let nonce = "00112233445566778899aabbccddeeff";
    let out = thimble(&["collect", "--nonce", nonce, "--no-cache", "-o", &bundle]);
    assert!(
        out.status.success(),
        "collect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = thimble(&["verify", "--json", "--nonce", nonce, &bundle]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "verify: {stdout}");
    assert!(
        stdout.contains(&format!("\"tee\": \"{expected_tee}")),
        "tee is not {expected_tee}: {stdout}"
    );
    assert!(stdout.contains("\"simulated\": false"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
    stdout
}
