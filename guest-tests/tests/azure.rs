// SPDX-License-Identifier: Apache-2.0
//! Azure confidential VM checks (`THIMBLE_GUEST_TESTS=azure cargo test -p guest-tests --test azure
//! -- --include-ignored`, on a DCasv5/ECasv5 or DCesv5/ECesv5 VM, as root): the HCL report from the
//! vTPM made fresh for the nonce, a TPM quote, the hardware endorsements from THIM (and the TD
//! quote from IMDS on TDX), and `verify` accepting it. Fails, not skips, without a vTPM.

use guest_tests::{Platform, collect_and_verify, selected};

#[test]
#[ignore = "needs an Azure CVM: THIMBLE_GUEST_TESTS=azure cargo test -p guest-tests --test azure -- --include-ignored"]
fn collect_then_verify_from_the_vtpm() {
    assert_eq!(
        selected(),
        Some(Platform::Azure),
        "set THIMBLE_GUEST_TESTS=azure to run the Azure guest tests"
    );
    let present = ["/dev/tpmrm0", "/dev/tpm0"]
        .iter()
        .any(|p| std::path::Path::new(p).exists());
    assert!(
        present,
        "THIMBLE_GUEST_TESTS=azure but this machine has no TPM (/dev/tpmrm0 or /dev/tpm0)"
    );
    collect_and_verify("azure-");
}
