// SPDX-License-Identifier: Apache-2.0
//! Simulation and fakes: a simulated SEV-SNP guest (report signer with test keys, `/dev/sev-guest`
//! fake), a configfs-tsm fake that follows the kernel ABI, and an HTTP emulator of Azure THIM and
//! AMD KDS with fault injection. Shipped in the binary for `thimble collect --simulate snp`, and
//! used by the tests of every other crate. Nothing here is trusted by a real verification: the
//! test root it signs under is accepted only with `--insecure-allow-simulated`.

pub mod azure_sim;
pub mod emulator;
pub mod fake_qgs;
pub mod fake_sev_guest;
pub mod fake_tdx_guest;
pub mod fake_tsm;
pub mod fake_vtpm;
pub mod intel_emulator;
pub mod signer;
pub mod swtpm;
pub mod tdx_signer;
