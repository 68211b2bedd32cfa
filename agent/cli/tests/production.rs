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

/// A little-endian field of `len` bytes at `at`, or a failed test naming what was short.
fn field(elf: &[u8], at: usize, len: usize) -> u64 {
    let bytes = elf
        .get(at..at + len)
        .unwrap_or_else(|| panic!("ELF file too short for a field at {at}"));
    bytes
        .iter()
        .rev()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

/// The dynamic-section tags of an ELF64 file, with their values.
fn dynamic_tags(elf: &[u8]) -> Vec<(u64, u64)> {
    const PT_DYNAMIC: u64 = 2;
    let phoff = usize::try_from(field(elf, 0x20, 8)).unwrap();
    let phentsize = usize::try_from(field(elf, 0x36, 2)).unwrap();
    let phnum = usize::try_from(field(elf, 0x38, 2)).unwrap();
    let mut tags = Vec::new();
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if field(elf, ph, 4) != PT_DYNAMIC {
            continue;
        }
        let off = usize::try_from(field(elf, ph + 8, 8)).unwrap();
        let size = usize::try_from(field(elf, ph + 32, 8)).unwrap();
        for entry in (off..off + size).step_by(16) {
            let tag = field(elf, entry, 8);
            if tag == 0 {
                break;
            }
            tags.push((tag, field(elf, entry + 8, 8)));
        }
    }
    tags
}

/// The static binary stays position-independent, so that the kernel loads it at a random address
/// (docs/performance.md refuses a fixed one), and carries its relative relocations packed as
/// DT_RELR (agent/cli/build.rs) rather than as 24-byte RELA entries. The binary ran above, so
/// musl's start-up code applied them.
#[test]
fn the_production_build_is_position_independent_with_packed_relocations() {
    const ET_DYN: u64 = 3;
    const DT_RELASZ: u64 = 8;
    const DT_RELR: u64 = 36;
    let Some(bin) = std::env::var_os("THIMBLE_PRODUCTION_BIN") else {
        eprintln!("THIMBLE_PRODUCTION_BIN not set (see the_production_build_holds_no_simulator)");
        return;
    };
    let elf = std::fs::read(&bin).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(elf[4], 2, "not a 64-bit ELF file");
    assert_eq!(field(&elf, 16, 2), ET_DYN, "not position-independent");
    let tags = dynamic_tags(&elf);
    assert!(
        tags.iter().any(|(t, _)| *t == DT_RELR),
        "no DT_RELR entry: {tags:?}"
    );
    let rela = tags
        .iter()
        .find(|(t, _)| *t == DT_RELASZ)
        .map_or(0, |(_, v)| *v);
    assert!(rela < 4096, "{rela} bytes of RELA relocations remain");
    let out = Command::new(&bin).arg("--version").output().unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// The sections of an ELF64 file: name, flags, address and size.
fn sections(elf: &[u8]) -> Vec<(String, u64, u64, u64)> {
    let shoff = usize::try_from(field(elf, 0x28, 8)).unwrap();
    let shentsize = usize::try_from(field(elf, 0x3a, 2)).unwrap();
    let shnum = usize::try_from(field(elf, 0x3c, 2)).unwrap();
    let shstrndx = usize::try_from(field(elf, 0x3e, 2)).unwrap();
    let names = usize::try_from(field(elf, shoff + shstrndx * shentsize + 0x18, 8)).unwrap();
    (0..shnum)
        .map(|i| {
            let sh = shoff + i * shentsize;
            let name_at = names + usize::try_from(field(elf, sh, 4)).unwrap();
            let len = elf[name_at..].iter().position(|b| *b == 0).unwrap();
            let name = String::from_utf8_lossy(&elf[name_at..name_at + len]).into_owned();
            (
                name,
                field(elf, sh + 8, 8),
                field(elf, sh + 0x10, 8),
                field(elf, sh + 0x20, 8),
            )
        })
        .collect()
}

/// The code that `verify` and a warm `collect` never run (the HTTPS stack, std's backtrace
/// symboliser, the other subcommands, TOML) sits in its own section ahead of `.text`
/// (agent/cli/link/cold-text.ld), so that its pages are never mapped by those runs. A linker script
/// that stopped being applied, or patterns that stopped matching the toolchain's symbol names,
/// would leave the section missing or small; about 770 KiB match today.
#[test]
fn the_production_build_keeps_cold_code_apart() {
    const SHF_EXECINSTR: u64 = 4;
    let Some(bin) = std::env::var_os("THIMBLE_PRODUCTION_BIN") else {
        eprintln!("THIMBLE_PRODUCTION_BIN not set (see the_production_build_holds_no_simulator)");
        return;
    };
    let elf = std::fs::read(&bin).unwrap();
    let sections = sections(&elf);
    let find = |name: &str| {
        sections
            .iter()
            .find(|s| s.0 == name)
            .unwrap_or_else(|| panic!("no {name} section: {sections:?}"))
    };
    let cold = find(".text.cold");
    let text = find(".text");
    assert_ne!(cold.1 & SHF_EXECINSTR, 0, "{cold:?} is not code");
    assert!(
        cold.2 + cold.3 <= text.2,
        "{cold:?} does not precede {text:?}"
    );
    assert!(cold.3 >= 512 * 1024, "only {} bytes of cold code", cold.3);
}
