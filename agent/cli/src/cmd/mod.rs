// SPDX-License-Identifier: Apache-2.0
//! One module per subcommand; each turns its arguments into a plan, runs it and returns the exit
//! code.

pub mod attest;
pub mod collect;
pub mod detect;
pub mod exec;
pub mod export;
pub mod import;
pub mod show;
pub mod verify;
pub mod verify_chain;
