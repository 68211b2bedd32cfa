// SPDX-License-Identifier: Apache-2.0
//! SEV-SNP checks on a real guest (`THIMBLE_GUEST_TESTS=snp cargo test -p guest-tests --test snp
//! -- --include-ignored`): `detect` finds a usable source, `collect` produces a bundle bound to the
//! given nonce with endorsements from the host, THIM or KDS, and `verify` accepts it against the
//! pinned AMD roots. Each fails, not skips, when the guest has no SEV-SNP device.

use guest_tests::{Platform, selected, thimble};

fn require_snp() {
    assert_eq!(
        selected(),
        Some(Platform::Snp),
        "set THIMBLE_GUEST_TESTS=snp to run the SEV-SNP guest tests"
    );
    let present = std::path::Path::new("/dev/sev-guest").exists()
        || std::path::Path::new("/sys/kernel/config/tsm/report").exists();
    assert!(
        present,
        "THIMBLE_GUEST_TESTS=snp but this machine has neither /dev/sev-guest nor configfs-tsm"
    );
}

#[test]
#[ignore = "needs an SEV-SNP guest: THIMBLE_GUEST_TESTS=snp cargo test -p guest-tests --test snp -- --include-ignored"]
fn detect_finds_a_usable_source() {
    require_snp();
    let out = thimble(&["detect", "--json"]);
    assert!(
        out.status.success(),
        "detect: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
#[ignore = "needs an SEV-SNP guest: THIMBLE_GUEST_TESTS=snp cargo test -p guest-tests --test snp -- --include-ignored"]
fn collect_then_verify_with_a_nonce() {
    require_snp();
    let dir = std::env::temp_dir().join(format!("thimble-guest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bundle = dir.join("evidence.json");
    let bundle = bundle.to_str().unwrap();
    let nonce = "00112233445566778899aabbccddeeff";
    let out = thimble(&["collect", "--nonce", nonce, "--no-cache", "-o", bundle]);
    assert!(
        out.status.success(),
        "collect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = thimble(&["verify", "--json", "--nonce", nonce, bundle]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "verify: {stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["verdict"], "valid");
    assert_eq!(v["simulated"], false);
    let _ = std::fs::remove_dir_all(&dir);
}
