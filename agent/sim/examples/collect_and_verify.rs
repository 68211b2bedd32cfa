// SPDX-License-Identifier: Apache-2.0
//! Embedding thimble in a Rust program: collect an evidence bundle with the `thimble-collect`
//! library, then verify it in the same process with `thimble-verify`, as an attestation agent
//! that attests itself at start-up would (the verifier normally runs elsewhere, on the bundle's
//! JSON). It runs on any machine, against a simulated guest from `thimble-sim`:
//!
//! ```sh
//! cargo run -p thimble-sim --example collect_and_verify            # SEV-SNP
//! cargo run -p thimble-sim --example collect_and_verify -- tdx     # or azure-snp, azure-tdx
//! ```
//!
//! On a real guest the program is the same with `thimble_collect::SystemEnvironment` in place of
//! the simulation, and without the test roots. `agent/sim/tests/collect_and_verify.rs` runs
//! [`collect_and_verify`] for every simulated machine, so that this example cannot rot.

use std::error::Error;

use thimble_collect::{CollectRequest, Environment, collect};
use thimble_evidence::bundle::Bundle;
use thimble_evidence::report_data;
use thimble_sim::azure_sim::{SIM_PARAVISOR_ID_KEY_DIGEST, SIM_PARAVISOR_MRTD};
use thimble_sim::{SimEnvironment, SimMachine, insecure_trust_test_roots};
use thimble_verify::Outcome;
use thimble_verify::azure::TrustedParavisor;
use thimble_verify::bundle::{VerifyOptions, verify_bundle};

/// Collects from a simulated `machine` with `nonce`, and verifies the bundle as a verifier that
/// sent that nonce would. Returns the bundle (as a verifier parses it) and the outcome.
pub fn collect_and_verify(
    machine: SimMachine,
    nonce: &[u8],
) -> Result<(Bundle, Outcome), Box<dyn Error>> {
    // The collecting side: what to ask for, and in which world.
    let env = SimEnvironment::new(machine);
    let mut request = CollectRequest::with_nonce(nonce);
    // The simulation's evidence is signed by thimble's test keys: trust them for this run only.
    insecure_trust_test_roots(&mut request);
    let collected = collect(&env, &request, env.now())?;
    for warning in &collected.warnings {
        eprintln!("warning: {warning}");
    }
    // What travels to the verifier is the bundle's JSON.
    let json = collected.bundle.to_json();

    // The verifying side: the bundle, the nonce it sent, the time and the roots it trusts.
    let bundle = Bundle::parse(&json)?;
    let mut options = VerifyOptions::strict(env.now());
    options.nonce = Some(nonce.to_vec());
    let expected = report_data::from_nonce(nonce);
    options.snp.report_data = Some(expected);
    options.tdx.report_data = Some(expected);
    options.amd_roots = request.amd_roots.clone();
    options.intel_simulated_roots = request.intel_test_roots.clone();
    options.allow_simulated = true;
    let test = |value: [u8; 48]| TrustedParavisor {
        value,
        label: "thimble simulation (test identity)".into(),
    };
    options
        .paravisor
        .snp_keys
        .push(test(SIM_PARAVISOR_ID_KEY_DIGEST));
    options.paravisor.tdx_mrtds.push(test(SIM_PARAVISOR_MRTD));
    let outcome = verify_bundle(&bundle, &options);
    Ok((bundle, outcome))
}

fn main() -> Result<(), Box<dyn Error>> {
    let machine = match std::env::args().nth(1).as_deref() {
        None | Some("snp") => SimMachine::SnpDevice,
        Some("tdx") => SimMachine::Tdx,
        Some("azure-snp") => SimMachine::AzureSnp,
        Some("azure-tdx") => SimMachine::AzureTdx,
        Some(other) => return Err(format!("{other}: not snp, tdx, azure-snp or azure-tdx").into()),
    };
    let (bundle, outcome) = collect_and_verify(machine, b"a verifier's nonce")?;
    println!(
        "{} bundle from {}, {} endorsement(s): {:?}",
        bundle.tee(),
        bundle.collection.source,
        bundle.endorsements.len(),
        outcome.verdict
    );
    for e in &outcome.errors {
        println!("  error {}: {}", e.code, e.message);
    }
    for w in &outcome.warnings {
        println!("  warning: {w}");
    }
    if outcome.errors.is_empty() {
        Ok(())
    } else {
        Err("the bundle does not verify".into())
    }
}
