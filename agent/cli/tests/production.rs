// SPDX-License-Identifier: Apache-2.0
//! The production build holds no simulator. A binary built with `--no-default-features` (the one
//! the initramfs, dracut, systemd, cloud-init and container recipes install) must contain none of
//! the simulator's test keys, test certificates, test CRLs or test paravisor identities, and must
//! not know `--simulate` or `--insecure-allow-simulated`.
//!
//! CI builds that binary and names it in `THIMBLE_PRODUCTION_BIN`. The detector itself is checked
//! on every run against the development binary, which must contain the test material: a check
//! that could not find it would pass any binary.

#![expect(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The simulator's key directory.
fn keys() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sim/keys")
}

/// Every file of test material (keys, certificates, CRLs, THIM body, EK modulus), by path
/// relative to the key directory; scripts and READMEs are not material.
fn material() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if !matches!(p.extension().and_then(|e| e.to_str()), Some("md" | "sh")) {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&keys(), &mut out);
    out.sort();
    out
}

/// 48 bytes from the middle of `data`: long enough never to occur by chance, and inside the
/// unique part of a key or certificate rather than its common header.
fn needle(data: &[u8]) -> Vec<u8> {
    let len = data.len().min(48);
    let start = (data.len() - len) / 2;
    data[start..start + len].to_vec()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

/// The test material found in `binary`, by file name, plus the paravisor test identities.
fn test_material_in(binary: &Path) -> Vec<String> {
    let bytes = std::fs::read(binary).unwrap();
    let mut found: Vec<String> = material()
        .iter()
        .filter(|f| contains(&bytes, &needle(&std::fs::read(f).unwrap())))
        .map(|f| f.strip_prefix(keys()).unwrap().display().to_string())
        .collect();
    for (name, value) in [
        (
            "SIM_PARAVISOR_ID_KEY_DIGEST",
            thimble_sim::azure_sim::SIM_PARAVISOR_ID_KEY_DIGEST,
        ),
        (
            "SIM_PARAVISOR_MRTD",
            thimble_sim::azure_sim::SIM_PARAVISOR_MRTD,
        ),
    ] {
        if contains(&bytes, &value) {
            found.push(name.to_string());
        }
    }
    found
}

#[test]
fn the_detector_finds_the_test_material_in_the_development_build() {
    let found = test_material_in(Path::new(env!("CARGO_BIN_EXE_thimble")));
    // What `collect --simulate` and `--insecure-allow-simulated` cannot work without.
    for expected in [
        "ark.der",
        "vcek.pk8",
        "tdx/root_ca.der",
        "tdx/pck.pk8",
        "azure/ak.pk8",
        "SIM_PARAVISOR_ID_KEY_DIGEST",
        "SIM_PARAVISOR_MRTD",
    ] {
        assert!(
            found.iter().any(|f| f == expected),
            "{expected} not found in the development binary; found {found:?}"
        );
    }
}

#[test]
fn the_production_build_holds_no_simulator() {
    let Some(bin) = std::env::var_os("THIMBLE_PRODUCTION_BIN") else {
        eprintln!(
            "THIMBLE_PRODUCTION_BIN not set: build with `cargo build --release --locked \
             --target x86_64-unknown-linux-musl -p thimble --no-default-features` and name the \
             binary there (CI does)"
        );
        return;
    };
    let bin = PathBuf::from(bin);
    let found = test_material_in(&bin);
    assert!(
        found.is_empty(),
        "{} holds test material: {found:?}",
        bin.display()
    );
    for args in [
        &["collect", "--simulate", "snp", "-o", "-"][..],
        &["verify", "--insecure-allow-simulated", "bundle.json"],
        &["show", "--insecure-allow-simulated", "bundle.json"],
        &["verify-chain", "--insecure-allow-simulated", "cert.der"],
    ] {
        let out = Command::new(&bin).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("unexpected argument"), "{args:?}: {stderr}");
    }
}
