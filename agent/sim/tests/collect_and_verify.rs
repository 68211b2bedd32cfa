// SPDX-License-Identifier: Apache-2.0
//! Runs the `collect_and_verify` example's code for every simulated machine, so that the example
//! of embedding thimble keeps compiling and keeps working: each collection must give a bundle of
//! the machine's TEE, from the source the simulation has, that verifies with the nonce it was
//! bound to. Everything runs on loopback.

#[expect(dead_code, reason = "the example's main runs as a program, not here")]
#[path = "../examples/collect_and_verify.rs"]
mod example;

use thimble_evidence::bundle::Tee;
use thimble_sim::SimMachine;
use thimble_verify::Verdict;

#[test]
fn every_simulated_machine_collects_a_bundle_that_verifies_in_process() {
    for (machine, tee, source) in [
        (SimMachine::SnpDevice, Tee::SevSnp, "sev-guest"),
        (SimMachine::SnpConfigfs, Tee::SevSnp, "configfs-tsm"),
        (SimMachine::Tdx, Tee::Tdx, "configfs-tsm"),
        (SimMachine::AzureSnp, Tee::AzureSevSnp, "vtpm"),
        (SimMachine::AzureTdx, Tee::AzureTdx, "vtpm"),
    ] {
        let (bundle, outcome) = example::collect_and_verify(machine, b"example nonce").unwrap();
        assert_eq!(bundle.tee(), tee, "{machine:?}");
        assert_eq!(bundle.collection.source, source, "{machine:?}");
        assert!(bundle.simulated, "{machine:?}");
        assert!(!bundle.endorsements.is_empty(), "{machine:?}");
        assert_eq!(
            outcome.verdict,
            Verdict::Valid,
            "{machine:?}: {:?}",
            outcome.errors
        );
    }
}
