// SPDX-License-Identifier: Apache-2.0
//! Pure verification of thimble evidence: bytes and a time in, a verdict out. No I/O, no clock.
//!
//! Authenticity ([`chain`], [`signature`]) is kept apart from policy ([`policy`]): an
//! authenticity failure stops verification at the first problem (nothing after it would mean
//! anything), while policy checks report every violation. Each error carries a stable `code`
//! and maps to an exit-code category through [`ErrorClass`].
//!
//! - [`snp`]: SEV-SNP reports under AMD's pinned ARKs ([`chain`]); [`amd_crl`] checks the chain's
//!   ASK or ASVK against the ARK's CRLs.
//! - [`tdx`]: Intel TDX quotes with DCAP collateral under the pinned Intel SGX Root CA
//!   ([`intel_chain`] for the Intel chains and CRLs).

pub mod amd_crl;
pub mod azure;
pub mod bundle;
pub mod chain;
pub mod intel_chain;
pub mod options;
pub mod outcome;
pub mod policy;
pub mod roots;
pub mod signature;
pub mod snp;
pub mod tdx;

pub use options::{Options, Policy};
pub use outcome::{Code, ErrorClass, Outcome, Verdict, VerifyError};
pub use roots::{IntelRoots, TrustedRoots};
