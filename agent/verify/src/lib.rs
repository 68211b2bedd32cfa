// SPDX-License-Identifier: AGPL-3.0-or-later
//! Pure verification of thimble evidence: bytes and a time in, a verdict out. No I/O, no clock.
//!
//! Authenticity ([`chain`], [`signature`]) is kept apart from policy ([`policy`]): an
//! authenticity failure stops verification at the first problem (nothing after it would mean
//! anything), while policy checks report every violation. Each error carries a stable `code`
//! and maps to an exit-code category through [`ErrorClass`].

pub mod chain;
pub mod options;
pub mod outcome;
pub mod policy;
pub mod roots;
pub mod signature;
pub mod snp;

pub use options::{Options, Policy};
pub use outcome::{ErrorClass, Outcome, Verdict, VerifyError};
pub use roots::TrustedRoots;
