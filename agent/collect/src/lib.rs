// SPDX-License-Identifier: Apache-2.0
//! Collecting confidential-VM attestation evidence, as a library: everything in thimble that
//! touches the outside world, and the orchestration of one collection.
//!
//! A program that wants a bundle describes what it asks for in a [`CollectRequest`], gives an
//! [`Environment`] ([`SystemEnvironment`] on a real guest; `thimble_sim::SimEnvironment` for a
//! simulated one) and calls [`collect`]:
//!
//! ```no_run
//! use thimble_collect::{CollectRequest, SystemEnvironment, collect};
//! use thimble_collect::env::Environment;
//!
//! let env = SystemEnvironment::new();
//! let request = CollectRequest::with_nonce(b"the verifier's nonce".to_vec());
//! let collected = collect(&env, &request, env.now())?;
//! std::fs::write("evidence.json", collected.bundle.to_json())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`collect`] chooses the TEE's collector ([`plan`]: configfs-tsm, `/dev/sev-guest`,
//! `/dev/tdx_guest` with the host's Quote Generation Service, or the Azure vTPM), gets evidence
//! bound to REPORT_DATA and checks that it echoes it, gathers endorsements from the ordered
//! sources of each vendor (AMD: [`endorse`]; Intel: [`collateral`]), keeps each answer only once
//! `thimble-verify` finds that it verifies the evidence, and builds the bundle ([`bundle`]).
//! Failures are typed ([`CollectError`]); nothing here prints.
//!
//! Each outside interface sits behind a narrow trait shaped like the kernel or service contract
//! ([`tsm::ConfigFs`], [`sev_guest::SevGuestDevice`], [`tdx_guest::TdxGuestDevice`],
//! [`qgs::QgsTransport`], [`vtpm::TpmTransport`], [`http::Fetch`]), which the fakes in
//! `thimble-sim` implement. Parsing and verification are not done here; they belong to the pure
//! crates `thimble-evidence` and `thimble-verify`.

#![warn(missing_docs)]
// Libraries return what they found; only the binary prints (agent/cli/src/output.rs).
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod acc;
pub mod attest;
mod azure;
pub mod bundle;
pub mod cache;
pub mod collateral;
mod collector;
mod context;
pub mod endorse;
pub mod env;
pub mod error;
pub mod eventlog;
pub mod http;
pub mod intel;
pub mod qgs;
pub mod request;
pub mod sev_guest;
mod snp;
mod tdx;
pub mod tdx_guest;
pub mod tsm;
pub mod vtpm;

pub use collector::{Collected, Plan, collect, plan, tee_of};
pub use env::{Environment, SystemEnvironment};
pub use error::{CollectError, NoSource, SourceError, SourceName, Warning};
pub use request::{
    Binding, CacheChoice, CollectRequest, Devices, EventLogs, Fetching, IntelService, Progress,
    QcnlSource, SourceChoice,
};
pub use tdx::TdxSource;
