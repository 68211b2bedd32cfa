// SPDX-License-Identifier: Apache-2.0
//! Simulation and fakes: simulated SEV-SNP, TDX and Azure guests as a
//! `thimble_collect::Environment` ([`SimEnvironment`]), built from kernel-faithful fakes (a
//! configfs-tsm fake, `/dev/sev-guest`, `/dev/tdx_guest`, the host's Quote Generation Service, a
//! vTPM with a paravisor), test signers, and HTTP emulators of Azure THIM and IMDS, AMD KDS and
//! Intel's collateral services with fault injection. Compiled into development builds of the
//! binary (the CLI's `simulate` feature, on by default) for `thimble collect --simulate
//! snp|tdx|azure-snp|azure-tdx`, absent from the production build (`--no-default-features`), and
//! used by the tests of every other crate. Nothing
//! here is trusted by a real verification: the test roots it signs under are accepted only with
//! `--insecure-allow-simulated` ([`insecure_trust_test_roots`] for a collection request).

#![warn(missing_docs)]
// Libraries return what they found; only the binary prints (agent/cli/src/output.rs).
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod azure_sim;
pub mod boot_log;
pub mod emulator;
pub mod env;
pub mod fake_qgs;
pub mod fake_sev_guest;
pub mod fake_tdx_guest;
pub mod fake_tsm;
pub mod fake_vtpm;
pub mod intel_emulator;
pub mod rsa_sim;
pub mod signer;
pub mod swtpm;
pub mod tdx_signer;
pub mod verifiers;

pub use env::{SimEnvironment, SimMachine, insecure_trust_test_roots};
