// SPDX-License-Identifier: Apache-2.0
//! Intel TDX checks on a real TD (`THIMBLE_GUEST_TESTS=tdx cargo test -p guest-tests --test tdx
//! -- --include-ignored`): a quote through configfs-tsm (or /dev/tdx_guest and the host's QGS),
//! collateral from THIM or PCS, and `verify` accepting it with the nonce and reporting a TCB
//! status. Fails, not skips, when the machine is not a TD.

use guest_tests::{Platform, collect_and_verify, selected};

#[test]
#[ignore = "needs a TDX guest: THIMBLE_GUEST_TESTS=tdx cargo test -p guest-tests --test tdx -- --include-ignored"]
fn collect_then_verify_a_quote() {
    assert_eq!(
        selected(),
        Some(Platform::Tdx),
        "set THIMBLE_GUEST_TESTS=tdx to run the TDX guest tests"
    );
    let present = std::path::Path::new("/dev/tdx_guest").exists()
        || std::path::Path::new("/sys/kernel/config/tsm/report").exists();
    assert!(
        present,
        "THIMBLE_GUEST_TESTS=tdx but this machine has neither /dev/tdx_guest nor configfs-tsm"
    );
    let out = collect_and_verify("tdx");
    assert!(out.contains("\"tcb_status\""), "{out}");
}
